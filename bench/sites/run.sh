#!/usr/bin/env bash
# Benchmark trawl against `wget -r` on a real documentation site served on
# loopback by a private nginx instance. See README.md beside this file.
#
#   bench/sites/run.sh [sphinx|rustdoc]
#
# Environment:
#   RUNS=N          runs of each tool (default: 3 for sphinx, 1 for rustdoc)
#   PORT=N          port for nginx on 127.0.0.1 (default: the first free from 18480)
#   TRAWL=PATH      trawl binary (default: target/release/trawl of this checkout)
#   TRAWL_FLAGS=..  extra flags for `trawl crawl` (e.g. --no-summaries)
#   WGET_FLAGS=..   extra flags for wget
#   ONLY=wget|trawl run one tool only
#   KEEP=1          keep wget's downloaded trees (they are deleted after counting)
set -euo pipefail

SITE=${1:-sphinx}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=$HERE/.cache
TRAWL=${TRAWL:-$REPO/target/release/trawl}
TRAWL_FLAGS=${TRAWL_FLAGS:-}
WGET_FLAGS=${WGET_FLAGS:-}
ONLY=${ONLY:-}
KEEP=${KEEP:-0}

case $SITE in
sphinx)
	# Python 3.11's documentation (Sphinx). Its _static/ links jQuery and
	# Underscore from the libjs-* packages, hence those two.
	PKGS=(python3.11-doc libjs-jquery libjs-underscore)
	DOCROOT=usr/share/doc/python3.11/html
	START=index.html
	RUNS=${RUNS:-3}
	;;
rustdoc)
	# Rust 1.63's documentation: std/core/alloc/... (rustdoc) plus the mdBook
	# books. The books' highlight.js, MathJax and Font Awesome are symlinks
	# into the other packages.
	PKGS=(rust-doc libjs-jquery libjs-highlight.js libjs-mathjax fonts-font-awesome)
	DOCROOT=usr/share/doc/rust-doc/html
	START=index.html
	RUNS=${RUNS:-1}
	;;
*)
	echo "usage: $0 [sphinx|rustdoc]" >&2
	exit 2
	;;
esac

die() { echo "error: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx not found (Debian: apt-get install -y nginx; the system service is not used)"
for t in wget sqlite3 jq apt-get dpkg-deb; do
	command -v $t >/dev/null || die "$t not found (Debian: apt-get install -y wget sqlite3 jq)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (Debian: apt-get install -y time)"
[ -x "$TRAWL" ] || die "$TRAWL not found: cargo build --release"

# ---------------------------------------------------------------- the site
SITEDIR=$CACHE/$SITE
ROOT=$SITEDIR/root
if [ ! -e "$SITEDIR/.extracted" ]; then
	say "fetching ${PKGS[*]}"
	rm -rf "$SITEDIR"
	mkdir -p "$SITEDIR/debs" "$ROOT"
	# apt-get download runs its fetcher as _apt where it can: let it write here.
	chmod 777 "$SITEDIR/debs" 2>/dev/null || true
	(cd "$SITEDIR/debs" && apt-get download -q "${PKGS[@]}") ||
		die "apt-get download failed (run apt-get update first?)"
	: >"$SITEDIR/PACKAGES"
	for deb in "$SITEDIR"/debs/*.deb; do
		dpkg-deb -x "$deb" "$ROOT"
		dpkg-deb -f "$deb" Package Version | paste -sd' ' | sed 's/Package: //; s/Version: //' >>"$SITEDIR/PACKAGES"
	done
	touch "$SITEDIR/.extracted"
fi
WEBROOT=$ROOT/$DOCROOT
[ -f "$WEBROOT/$START" ] || die "$WEBROOT/$START missing"

HTML_FILES=$(find -L "$WEBROOT" -type f -name '*.html' | wc -l)
HTML_MB=$(find -L "$WEBROOT" -type f -name '*.html' -printf '%s\n' | awk '{s+=$1} END {printf "%.1f", s/1e6}')
ALL_MB=$(du -sbL "$WEBROOT" | awk '{printf "%.1f", $1/1e6}')
BIGGEST=$(find -L "$WEBROOT" -type f -name '*.html' -printf '%s %P\n' | sort -n | tail -1 |
	awk '{printf "%s (%.1f MB)", $2, $1/1e6}')

# Warm the page cache so the first run does not pay for disk reads.
find -L "$WEBROOT" -type f -print0 | xargs -0 cat >/dev/null

# ------------------------------------------------------------------- nginx
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "${PORT:-}" ]; then
	PORT=18480
	while port_busy $PORT; do PORT=$((PORT + 1)); done
fi
port_busy "$PORT" && die "port $PORT is in use"

PREFIX=$CACHE/nginx-$SITE
rm -rf "$PREFIX"
mkdir -p "$PREFIX/logs" "$PREFIX/tmp"
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user $(id -un) $(id -gn);"
cat >"$PREFIX/nginx.conf" <<EOF
$USER_LINE
worker_processes 1;
pid $PREFIX/nginx.pid;
error_log $PREFIX/logs/error.log warn;
events { worker_connections 1024; }
http {
    types {
        text/html                html htm;
        text/css                 css;
        text/plain               txt;
        application/javascript   js;
        application/json         json;
        application/xml          xml;
        image/png                png;
        image/gif                gif;
        image/jpeg               jpg jpeg;
        image/svg+xml            svg;
        image/x-icon             ico;
        font/woff                woff;
        font/woff2               woff2;
        font/ttf                 ttf;
        application/vnd.ms-fontobject eot;
        application/gzip         gz;
    }
    default_type application/octet-stream;
    log_format bench '\$status\t\$body_bytes_sent\t\$sent_http_content_type\t\$request_method\t\$uri\t\$http_user_agent';
    access_log $PREFIX/logs/access.log bench;
    client_body_temp_path $PREFIX/tmp/body;
    proxy_temp_path $PREFIX/tmp/proxy;
    fastcgi_temp_path $PREFIX/tmp/fastcgi;
    uwsgi_temp_path $PREFIX/tmp/uwsgi;
    scgi_temp_path $PREFIX/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    server_tokens off;
    server {
        listen 127.0.0.1:$PORT;
        server_name localhost;
        root $WEBROOT;
        index index.html;
    }
}
EOF

NGINX_PID=
cleanup() {
	if [ -n "$NGINX_PID" ]; then
		kill "$NGINX_PID" 2>/dev/null || true
		wait "$NGINX_PID" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$NGINX" -p "$PREFIX" -c "$PREFIX/nginx.conf" -e "$PREFIX/logs/error.log" -g 'daemon off;' &
NGINX_PID=$!
BASE=http://127.0.0.1:$PORT
for _ in $(seq 50); do
	wget -q -O /dev/null "$BASE/$START" 2>/dev/null && break
	kill -0 "$NGINX_PID" 2>/dev/null || die "nginx did not start: $(cat "$PREFIX/logs/error.log")"
	sleep 0.1
done
wget -q -O /dev/null "$BASE/$START" || die "nginx does not answer on $BASE"
ACCESS=$PREFIX/logs/access.log
: >"$ACCESS"
URL=$BASE/$START

# ---------------------------------------------------------------- the runs
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$CACHE/runs/$SITE-$STAMP
mkdir -p "$OUT"
RESULTS=$OUT/results.tsv
printf 'tool\trun\tload1\twall_s\tcpu_s\tmaxrss_mb\tnginx_cpu_s\tother_cpu_s\texit\trequests\tok_200\thtml_200\tmb_sent\tsaved\n' >"$RESULTS"

TRAWL_VERSION=$("$TRAWL" --version)
TRAWL_COMMIT=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
{
	echo "site: $SITE ($(paste -sd, "$SITEDIR/PACKAGES"))"
	echo "web root: $WEBROOT"
	echo "html files in tree: $HTML_FILES, html $HTML_MB MB, all files $ALL_MB MB; largest page $BIGGEST"
	echo "seed: $URL"
	echo "trawl: $TRAWL_VERSION, tree $TRAWL_COMMIT, binary built $(date -u -r "$TRAWL" +%Y-%m-%dT%H:%MZ); $(wget --version | head -1); nginx $("$NGINX" -v 2>&1 | sed 's/.*\///')"
	echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB"
} | tee "$OUT/site.txt" >&2

# CPU ticks used by the whole machine (busy, not idle or iowait) and by nginx.
HZ=$(getconf CLK_TCK)
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
nginx_ticks() {
	local t=0 p
	for p in $NGINX_PID $(pgrep -P "$NGINX_PID"); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo $t
}
# mark: remember where the machine stands before a run
mark() {
	LOAD=$(cut -d' ' -f1 /proc/loadavg)
	FROM=$(wc -l <"$ACCESS")
	BUSY0=$(busy_ticks)
	NGINX0=$(nginx_ticks)
}

# timev FILE KEY -> value from /usr/bin/time -v output
timev() { grep -F "$2" "$1" | sed 's/.*: //'; }
wall_secs() { # h:mm:ss or m:ss.ss -> seconds
	awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }' <<<"$1"
}

# record TOOL RUN TIMEFILE EXIT SAVED (after mark, run and unmark)
unmark() {
	BUSY1=$(busy_ticks)
	NGINX1=$(nginx_ticks)
}
record() {
	local tool=$1 run=$2 tf=$3 rc=$4 saved=$5 load=$LOAD from=$FROM
	local wall cpu rss ngx other
	wall=$(wall_secs "$(timev "$tf" 'Elapsed (wall clock)')")
	cpu=$(awk -v u="$(timev "$tf" 'User time')" -v s="$(timev "$tf" 'System time')" 'BEGIN {printf "%.2f", u+s}')
	rss=$(awk -v k="$(timev "$tf" 'Maximum resident set size')" 'BEGIN {printf "%.0f", k/1024}')
	ngx=$(awk -v t=$((NGINX1 - NGINX0)) -v hz="$HZ" 'BEGIN {printf "%.2f", t/hz}')
	# CPU the rest of the machine used meanwhile (other work competing for
	# the 2 cores); small negative values are rounding.
	other=$(awk -v t=$((BUSY1 - BUSY0)) -v hz="$HZ" -v c="$cpu" -v n="$ngx" 'BEGIN {printf "%.1f", t/hz - c - n}')
	# This run's slice of the access log.
	tail -n +"$((from + 1))" "$ACCESS" >"$OUT/$tool-$run.access.tsv"
	local reqs ok html mb
	read -r reqs ok html mb < <(awk -F'\t' '
		{ n++; b += $2 }
		$1 == 200 { ok++ }
		$1 == 200 && $3 ~ /^text\/html/ { html++ }
		END { printf "%d %d %d %.1f\n", n, ok, html, b/1e6 }' "$OUT/$tool-$run.access.tsv")
	# Distinct HTML pages served with 200, for the comparison below.
	awk -F'\t' '$1 == 200 && $3 ~ /^text\/html/ { print $5 }' "$OUT/$tool-$run.access.tsv" |
		sort -u >"$OUT/$tool-$run.html-paths"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$tool" "$run" "$load" "$wall" "$cpu" "$rss" "$ngx" "$other" "$rc" "$reqs" "$ok" "$html" "$mb" "$saved" >>"$RESULTS"
}

run_wget() {
	local run=$1 dir=$OUT/wget-$run rc=0
	mark
	say "wget run $run (load $LOAD)"
	# -l inf: wget -r stops at depth 5 by default; trawl has no depth limit.
	# robots.txt is obeyed by both (wget: robots=on by default).
	# shellcheck disable=SC2086
	/usr/bin/time -v -o "$OUT/wget-$run.time" \
		wget -r -l inf -np -nv -P "$dir" $WGET_FLAGS "$URL" >"$OUT/wget-$run.log" 2>&1 || rc=$?
	unmark
	# 8 = some request got an HTTP error (a 404 for robots.txt or a broken link).
	local saved
	saved="$(find "$dir" -type f | wc -l) files/$(find "$dir" -type f -name '*.html' | wc -l) html"
	[ "$KEEP" = 1 ] || rm -rf "$dir"
	record wget "$run" "$OUT/wget-$run.time" "$rc" "$saved"
}

run_trawl() {
	local run=$1 db=$OUT/trawl-$run.db rc=0
	mark
	say "trawl run $run (load $LOAD)"
	# --per-host-rate 0: no spacing between requests to the host (the default
	# is 2/s, a politeness delay wget does not have). Everything else is the
	# default: per-host concurrency 2, summaries on, robots.txt obeyed; a host
	# named in a seed may be loopback.
	# shellcheck disable=SC2086
	/usr/bin/time -v -o "$OUT/trawl-$run.time" \
		"$TRAWL" crawl "$URL" --db "$db" --per-host-rate 0 $TRAWL_FLAGS >"$OUT/trawl-$run.log" 2>&1 || rc=$?
	unmark
	"$TRAWL" status --db "$db" >"$OUT/trawl-$run.status" 2>&1 || true
	"$TRAWL" status --db "$db" --json >"$OUT/trawl-$run.status.json" 2>/dev/null || true
	local saved
	saved=$(jq -r '"\(.pages_stored) stored/\(.pages_truncated) truncated/\(.failed) failed"' "$OUT/trawl-$run.status.json" 2>/dev/null || echo "?")
	record trawl "$run" "$OUT/trawl-$run.time" "$rc" "$saved"
}

for run in $(seq "$RUNS"); do
	if [ -n "$ONLY" ]; then
		"run_$ONLY" "$run"
	elif [ $((run % 2)) = 1 ]; then
		run_wget "$run"
		run_trawl "$run"
	else
		run_trawl "$run"
		run_wget "$run"
	fi
done

# ----------------------------------------------------------------- report
{
	echo
	echo "per run (load1: 1-minute load average at the start; other_cpu_s: CPU used meanwhile by everything but the tool and nginx; html_200: 200 responses with an HTML type)"
	column -t -s$'\t' "$RESULTS"
	echo
	echo "summary over $RUNS run(s): min / median"
	awk -F'\t' '
		NR == 1 { next }
		{ t = $1; k = ++n[t]; w[t, k] = $4; c[t, k] = $5; r[t, k] = $6; g[t, k] = $7; o[t, k] = $8
		  q[t] = $10; h[t] = $12; m[t] = $13 }
		function mm(a, t,   i, j, x, v) {
			for (i = 1; i <= n[t]; i++) v[i] = a[t, i] + 0
			for (i = 2; i <= n[t]; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j+1] = v[j]; v[j+1] = x }
			return sprintf("%s / %s", v[1], v[int((n[t] + 1) / 2)])
		}
		END {
			f = "%-6s  %-15s  %-15s  %-11s  %-13s  %-11s  %8s  %8s  %7s\n"
			printf f, "tool", "wall s", "cpu s", "RSS MB", "nginx cpu s", "other cpu s", "html 200", "requests", "MB sent"
			split("wget trawl", T, " ")
			for (i = 1; i <= 2; i++) if ((t = T[i]) in n)
				printf f, t, mm(w, t), mm(c, t), mm(r, t), mm(g, t), mm(o, t), h[t], q[t], m[t]
		}' "$RESULTS"
	last=$RUNS
	if [ -z "$ONLY" ]; then
		comm -23 "$OUT/wget-$last.html-paths" "$OUT/trawl-$last.html-paths" >"$OUT/html-wget-only"
		comm -13 "$OUT/wget-$last.html-paths" "$OUT/trawl-$last.html-paths" >"$OUT/html-trawl-only"
		echo
		echo "html pages (run $last): in the tree $HTML_FILES, wget $(wc -l <"$OUT/wget-$last.html-paths"), trawl $(wc -l <"$OUT/trawl-$last.html-paths"), both $(comm -12 "$OUT/wget-$last.html-paths" "$OUT/trawl-$last.html-paths" | wc -l)"
		echo "  fetched by wget only: $(wc -l <"$OUT/html-wget-only") (list: $OUT/html-wget-only)"
		head -5 "$OUT/html-wget-only" | sed 's/^/    /'
		echo "  fetched by trawl only: $(wc -l <"$OUT/html-trawl-only") (list: $OUT/html-trawl-only)"
		head -5 "$OUT/html-trawl-only" | sed 's/^/    /'
	fi
	if [ "$ONLY" != wget ]; then
		echo
		echo "trawl status (run $last):"
		sed 's/^/  /' "$OUT/trawl-$last.status"
	fi
	echo
	echo "output: $OUT"
} | tee "$OUT/summary.txt"
