#!/usr/bin/env sh
# A screenshot of `trawl report`: crawls bench/report/site.py's two-host
# demo site (or reads the database DB names), writes the report and has
# headless Chromium take a picture of it.
#
#   bench/report/screenshot.sh [OUT.png]        (default docs/report.png)
#
# Environment: DB=PATH to picture the report of an existing database;
# TRAWL=PATH for the binary (default target/release/trawl); WIDTH and
# HEIGHT of the window (default 1280 x 3000); PORT, OTHER_PORT for the
# demo site (default 18621, 18622).
set -eu
cd "$(dirname "$0")/../.."
OUT=${1:-docs/report.png}
TRAWL=${TRAWL:-target/release/trawl}
WIDTH=${WIDTH:-1280}
HEIGHT=${HEIGHT:-3000}
PORT=${PORT:-18621}
OTHER_PORT=${OTHER_PORT:-18622}
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "chromium not found (Debian: apt-get install -y chromium)" >&2; exit 1; }
[ -x "$TRAWL" ] || { echo "$TRAWL not found: cargo build --release" >&2; exit 1; }
WORK=$(mktemp -d)
SERVER=
cleanup() {
	[ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "${DB:-}" ]; then
	DB=$WORK/demo.db
	python3 bench/report/site.py "$PORT" "$OTHER_PORT" > "$WORK/server.out" &
	SERVER=$!
	# Wait for the server's "ready" line.
	while ! grep -q ready "$WORK/server.out" 2>/dev/null; do
		kill -0 "$SERVER" 2>/dev/null || { echo "the demo site did not start" >&2; exit 1; }
		sleep 0.1
	done
	# A rate per host that draws a few seconds of pages/s; one retry, so
	# the 500 fails quickly.
	"$TRAWL" crawl "http://127.0.0.1:$PORT/" --db "$DB" --allow-host localhost \
		--per-host-rate 20 --retries 1 -q || true
fi
"$TRAWL" report --db "$DB" --out "$WORK/report.html"
SANDBOX=
[ "$(id -u)" != 0 ] || SANDBOX=--no-sandbox
"$CHROMIUM" --headless $SANDBOX --disable-gpu --hide-scrollbars --no-first-run \
	--user-data-dir="$WORK/profile" --window-size="$WIDTH,$HEIGHT" \
	--screenshot="$WORK/shot.png" "file://$WORK/report.html" 2>/dev/null
mv "$WORK/shot.png" "$OUT"
echo "$OUT: report of $DB"
