#!/usr/bin/env bash
# Scale-out benchmark: trawl on PostgreSQL, one process against three.
#
#   bench/scale/run.sh [PAGES] [HOSTS] [DELAY_MS]   (defaults: 6000 20 50)
#
# 1. A latency-bound site (every page answered DELAY_MS late, HOSTS hosts)
#    crawled by one process (`--concurrency 8`), then by three (`trawl
#    crawl` and two `trawl join`, `--concurrency 8` each) into a fresh
#    PostgreSQL database each time: pages/s of each, and the ratio.
# 2. The synthetic site without delay crawled by one process with trawl's
#    defaults (but no per-host rate limit) into SQLite, then into
#    PostgreSQL: pages/s, trawl's CPU per page, and the whole machine's
#    (trawl, the site's server and PostgreSQL's server processes).
#
# Environment:
#   TRAWL_PG           server URL without a database (default
#                      postgres://postgres@127.0.0.1:5432); the script makes
#                      and drops databases trawl_bench_*
#   TRAWL_TARGET_DIR   cargo target dir (default: $CARGO_TARGET_DIR or ./target)
#   SKIP_BUILD=1       use the binaries already built
#
# Needs Linux, psql, GNU time at /usr/bin/time, and cargo.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
TRAWL_DIR=$(cd "$here/../.." && pwd)
TRAWL_TARGET_DIR=${TRAWL_TARGET_DIR:-${CARGO_TARGET_DIR:-$TRAWL_DIR/target}}
PG=${TRAWL_PG:-postgres://postgres@127.0.0.1:5432}
PAGES=${1:-6000}
HOSTS=${2:-20}
DELAY=${3:-50}

for tool in psql /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "run.sh: needs $tool" >&2; exit 1; }
done
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$TRAWL_DIR" && cargo build --release --bin trawl --example bench \
        --target-dir "$TRAWL_TARGET_DIR")
fi
trawl_bin=$TRAWL_TARGET_DIR/release/trawl
server_bin=$TRAWL_TARGET_DIR/release/examples/bench

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trawl-scale.XXXXXX")
servers=()
cleanup() {
    for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done
    for db in trawl_bench_one trawl_bench_three trawl_bench_pg; do
        psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# serve DELAY_MS: starts the bench server; sets `seeds`.
serve() {
    "$server_bin" --serve "$PAGES" "$HOSTS" article "$1" >"$tmp/ports" 2>"$tmp/server.err" &
    servers+=($!)
    for _ in $(seq 1 600); do
        [ -s "$tmp/ports" ] && break
        sleep 0.2
    done
    read -r -a ports <"$tmp/ports"
    seeds=()
    for p in "${ports[@]}"; do seeds+=("http://127.0.0.1:$p/"); done
    : >"$tmp/ports"
}

fresh_db() {
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
}

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
# CPU seconds the whole machine has spent so far (user, nice, system, irq,
# softirq): trawl, the site's server and, on PostgreSQL, its server
# processes (which end with their connections, so they cannot be timed
# one by one).
machine_cpu() {
    local f
    read -r -a f </proc/stat
    awk -v a="${f[1]}" -v b="${f[2]}" -v c="${f[3]}" -v d="${f[6]}" -v e="${f[7]}" \
        -v h="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (a + b + c + d + e) / h }'
}
stored() { psql -qtA "$PG/$1" -c "SELECT COUNT(*) FROM pages"; }

echo "trawl $(git -C "$TRAWL_DIR" describe --always --dirty 2>/dev/null || echo '?'); $(nproc) cores; $(date -u +%F)"
echo
echo "== 1. latency-bound site: $PAGES pages on $HOSTS hosts, every page $DELAY ms late"
serve "$DELAY"
flags=(--per-host-rate 0 --concurrency 8 --no-summaries -q)

fresh_db trawl_bench_one
t0=$(now)
"$trawl_bin" crawl --db "$PG/trawl_bench_one" "${flags[@]}" "${seeds[@]}"
t1=$(now)
one_wall=$(secs "$t0" "$t1")
one_pages=$(stored trawl_bench_one)

fresh_db trawl_bench_three
t0=$(now)
"$trawl_bin" crawl --db "$PG/trawl_bench_three" "${flags[@]}" "${seeds[@]}" &
first=$!
# Join once the crawl is recorded (a join waits while the crawl sets
# itself up, holding the database alone; before that it finds no crawl).
until psql -qtA "$PG/trawl_bench_three" -c "SELECT id FROM crawls" 2>/dev/null | grep -q .; do
    sleep 0.05
done
"$trawl_bin" join --db "$PG/trawl_bench_three" --concurrency 8 -q &
second=$!
"$trawl_bin" join --db "$PG/trawl_bench_three" --concurrency 8 -q &
third=$!
wait "$first" "$second" "$third"
t1=$(now)
three_wall=$(secs "$t0" "$t1")
three_pages=$(stored trawl_bench_three)
printf '%-12s %7s %8s %8s\n' processes pages "wall s" pages/s
awk -v p="$one_pages" -v w="$one_wall" 'BEGIN { printf "%-12s %7d %8.2f %8.0f\n", 1, p, w, p / w }'
awk -v p="$three_pages" -v w="$three_wall" 'BEGIN { printf "%-12s %7d %8.2f %8.0f\n", 3, p, w, p / w }'
awk -v a="$one_pages" -v b="$one_wall" -v c="$three_pages" -v d="$three_wall" \
    'BEGIN { printf "3 processes: %.2fx the pages/s of one\n", (c / d) / (a / b) }'
psql -qtA "$PG/trawl_bench_three" -c \
    "SELECT 'process ' || id || ': ' || fetched || ' pages' FROM processes ORDER BY id"

echo
# Part 1's databases go first: the server's autovacuum would otherwise
# work through their fresh rows during part 2's crawls.
for db in trawl_bench_one trawl_bench_three; do
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
done
echo "== 2. one process, trawl's defaults (no per-host rate limit): SQLite against PostgreSQL"
serve 0
defaults=(--per-host-rate 0 -q)
measure() {
    local label=$1 db=$2 m0 m1 t0 t1 user sys
    m0=$(machine_cpu)
    t0=$(now)
    /usr/bin/time -f '%U %S' -o "$tmp/time" "$trawl_bin" crawl --db "$db" "${defaults[@]}" "${seeds[@]}"
    t1=$(now)
    m1=$(machine_cpu)
    read -r user sys <"$tmp/time"
    wall=$(secs "$t0" "$t1")
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    mcpu=$(awk -v a="$m0" -v b="$m1" 'BEGIN { printf "%.2f", b - a }')
    rows+=("$label $wall $cpu $mcpu")
}
rows=()
measure sqlite "$tmp/bench.db"
fresh_db trawl_bench_pg
measure postgres "$PG/trawl_bench_pg"
printf '%-10s %8s %8s %14s %16s\n' backend "wall s" pages/s "trawl ms/page" "machine ms/page"
n=$((PAGES + HOSTS))
for r in "${rows[@]}"; do
    # shellcheck disable=SC2086
    set -- $r
    awk -v l="$1" -v w="$2" -v c="$3" -v g="$4" -v n="$n" \
        'BEGIN { printf "%-10s %8.2f %8.0f %14.3f %16.3f\n", l, w, n / w, c * 1000 / n, g * 1000 / n }'
done
set -- ${rows[0]}
sqlite_wall=$2
set -- ${rows[1]}
awk -v a="$sqlite_wall" -v b="$2" 'BEGIN { printf "PostgreSQL: %.2fx the pages/s of SQLite\n", a / b }'
