#!/usr/bin/env sh
# `trawl report` on a crawl of a million URLs: time and peak memory.
#
#   bench/report/run.sh [DB]
#
# Without DB, makes one once with the frontier benchmark (100 hubs of
# 10,000 links: 1,000,101 URLs, 2,101 pages fetched; about a minute) in
# bench/report/.cache/frontier.db and reuses it. Then writes the report
# RUNS times (default 3) under /usr/bin/time -v and prints the wall time
# and peak RSS of each run. Needs a release build and `time` (Debian:
# apt-get install -y time).
set -eu
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
TRAWL=${TRAWL:-target/release/trawl}
DB=${1:-bench/report/.cache/frontier.db}
[ -x /usr/bin/time ] || { echo "/usr/bin/time not found (Debian: apt-get install -y time)" >&2; exit 1; }
[ -x "$TRAWL" ] || { echo "$TRAWL not found: cargo build --release" >&2; exit 1; }
if [ ! -f "$DB" ]; then
	mkdir -p "$(dirname "$DB")"
	cargo run --release --example frontier -- --keep "$DB"
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
urls=$(sqlite3 -readonly "$DB" "SELECT COUNT(*) FROM urls")
links=$(sqlite3 -readonly "$DB" "SELECT COUNT(*) FROM links")
pages=$(sqlite3 -readonly "$DB" "SELECT COUNT(*) FROM pages")
echo "database   $DB: $(du -m "$DB" | cut -f1) MB, $urls URLs, $pages pages, $links links"
i=1
while [ "$i" -le "$RUNS" ]; do
	/usr/bin/time -v "$TRAWL" report --db "$DB" --out "$OUT/report.html" 2> "$OUT/time.txt"
	wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$OUT/time.txt")
	cpu_user=$(sed -n 's/.*User time (seconds): //p' "$OUT/time.txt")
	cpu_sys=$(sed -n 's/.*System time (seconds): //p' "$OUT/time.txt")
	rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/time.txt")
	echo "run $i      wall $wall, CPU ${cpu_user}s user + ${cpu_sys}s system, peak RSS $((rss / 1024)) MB, report $(du -k "$OUT/report.html" | cut -f1) KB"
	i=$((i + 1))
done
