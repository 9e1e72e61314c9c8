#!/usr/bin/env bash
# Side-by-side crawl benchmark: trawl and the spider crate crawl the same
# synthetic site, served on loopback by one server process, one after the
# other.
#
#   bench/peers/run.sh [PAGES] [HOSTS]        (defaults: 20000 pages, 8 hosts)
#
# Environment:
#   TRAWL_DIR          trawl checkout to build and run (default: this repo)
#   TRAWL_TARGET_DIR   its cargo target dir (default: $CARGO_TARGET_DIR or
#                      $TRAWL_DIR/target)
#   SPIDER_TARGET_DIR  target dir of the spider program (default:
#                      bench/peers/spider/target)
#   SKIP_BUILD=1       use the binaries already built
#   TRAWL_FLAGS        more flags for both trawl crawls
#
# Needs Linux, GNU time at /usr/bin/time, and cargo.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
TRAWL_DIR=${TRAWL_DIR:-$(cd "$here/../.." && pwd)}
TRAWL_TARGET_DIR=${TRAWL_TARGET_DIR:-${CARGO_TARGET_DIR:-$TRAWL_DIR/target}}
SPIDER_TARGET_DIR=${SPIDER_TARGET_DIR:-$here/spider/target}
PAGES=${1:-20000}
HOSTS=${2:-8}

# trawl's defaults (extractive summaries on, robots.txt and sitemaps read:
# the server answers 404 for both) but for the per-host request rate, as
# examples/bench.rs runs it: the default 2 requests a second per host would
# measure politeness, not cost. TRAWL_FLAGS adds more (say
# "--per-host-concurrency 16").
read -r -a extra_flags <<<"${TRAWL_FLAGS:-}"
TRAWL_FLAGS=(--per-host-rate 0 "${extra_flags[@]}")

if [ ! -x /usr/bin/time ]; then
    echo "run.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2
    exit 1
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "building trawl (bin + bench example) in $TRAWL_DIR ..." >&2
    (cd "$TRAWL_DIR" && cargo build --release --bin trawl --example bench \
        --target-dir "$TRAWL_TARGET_DIR")
    echo "building the spider program ..." >&2
    cargo build --release --manifest-path "$here/spider/Cargo.toml" \
        --target-dir "$SPIDER_TARGET_DIR"
fi

trawl_bin=$TRAWL_TARGET_DIR/release/trawl
server_bin=$TRAWL_TARGET_DIR/release/examples/bench
spider_bin=$SPIDER_TARGET_DIR/release/spider-peer-bench
for b in "$trawl_bin" "$server_bin" "$spider_bin"; do
    [ -x "$b" ] || { echo "run.sh: missing $b" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trawl-peers.XXXXXX")
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One server for all crawls: the bench example in its server mode. It
# generates every page up front, then prints its ports on one line.
"$server_bin" --serve "$PAGES" "$HOSTS" article >"$tmp/ports" 2>"$tmp/server.err" &
server_pid=$!
for _ in $(seq 1 600); do
    [ -s "$tmp/ports" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.err" >&2; exit 1; }
    sleep 0.2
done
read -r -a ports <"$tmp/ports" || true
[ "${#ports[@]}" -eq "$HOSTS" ] || { echo "run.sh: server gave no ports" >&2; exit 1; }
seeds=()
for p in "${ports[@]}"; do seeds+=("http://127.0.0.1:$p/"); done

spider_version=$(awk '/^name = "spider"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' \
    "$here/spider/Cargo.lock" 2>/dev/null || true)
echo "site: $PAGES pages on $HOSTS hosts (+$HOSTS host roots = $((PAGES + HOSTS)) URLs), ports ${ports[*]}"
echo "trawl: $(git -C "$TRAWL_DIR" describe --always --dirty 2>/dev/null || echo '?'); spider: ${spider_version:-?}; $(nproc) cores"
echo

rows=()

# measure LABEL COMMAND...: runs it under GNU time, wall time from the shell
# clock (ns), CPU = user + sys, peak RSS = maximum resident set size.
measure() {
    local label=$1
    shift
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "== $label (load $load)"
    echo "   $*"
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f '%U %S %M' -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err" || {
        echo "   failed:" >&2
        tail -n 20 "$tmp/err" >&2
        return 1
    }
    t1=$(date +%s%N)
    sed 's/^/   /' "$tmp/out" "$tmp/err"
    read -r user sys rss_kb <"$tmp/time"
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    rss_mb=$(awk -v k="$rss_kb" 'BEGIN { printf "%.0f", k / 1024 }')
}

run_trawl() {
    local label=$1
    shift
    local db=$tmp/$label.db
    measure "$label" "$trawl_bin" crawl -q --db "$db" "${TRAWL_FLAGS[@]}" "$@" "${seeds[@]}"
    # Its report, on stderr: "finished: N fetched in ...; M pages in DB; ..."
    pages=$(sed -n 's/.*finished: \([0-9]*\) fetched.*/\1/p' "$tmp/out" "$tmp/err" | tail -n 1)
    rows+=("$label ${pages:-0} $wall $cpu $rss_mb")
    rm -f "$db" "$db-wal" "$db-shm"
}

run_trawl trawl
run_trawl trawl-no-summaries --no-summaries

measure spider "$spider_bin" "${seeds[@]}"
pages=$(sed -n 's/^pages crawled *\([0-9]*\).*/\1/p' "$tmp/out")
rows+=("spider ${pages:-0} $wall $cpu $rss_mb")
spider_rate=$(awk -v p="${pages:-0}" -v w="$wall" 'BEGIN { printf "%.3f", (w > 0 ? p / w : 0) }')

echo
printf '%-20s %7s %8s %8s %12s %13s %10s\n' crawler pages "wall s" pages/s "CPU ms/page" "peak RSS MB" "vs spider"
for r in "${rows[@]}"; do
    # shellcheck disable=SC2086
    set -- $r
    awk -v n="$1" -v p="$2" -v w="$3" -v c="$4" -v m="$5" -v s="$spider_rate" 'BEGIN {
        rate = (w > 0 ? p / w : 0)
        ratio = (n == "spider" ? "1.00" : (s > 0 ? sprintf("%.2f", rate / s) : "-"))
        printf "%-20s %7d %8.2f %8.0f %12.3f %13d %10s\n", n, p, w, rate, (p > 0 ? c * 1000 / p : 0), m, ratio
    }'
done
echo
echo "pages/s and 'vs spider' use wall time from process start to exit; CPU is user+sys of the whole process."
