#!/usr/bin/env bash
# How the default summaries read on documentation: crawls the Rust book (the
# mdBook in Debian's rust-doc, unpacked by `bench/sites/run.sh rustdoc`),
# chapters only, and counts the summaries that quote code listings, and
# the longest.
#
#   bench/sites/book.sh            (TRAWL_BIN=path/to/trawl to try another build)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
book=$(find "$here/.cache/rustdoc" -type d -path '*/rust-doc/html/book' 2>/dev/null | head -n 1)
if [ -z "$book" ]; then
    echo "book.sh: run 'bench/sites/run.sh rustdoc' once first (it unpacks the Rust docs)" >&2
    exit 1
fi
bin=${TRAWL_BIN:-$root/target/release/trawl}
[ -x "$bin" ] || (cd "$root" && cargo build --release --bin trawl)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trawl-book.XXXXXX")
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$book" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) &
server_pid=$!
for _ in $(seq 1 50); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
done

base="http://127.0.0.1:$port"
"$bin" crawl -q --db "$tmp/book.db" --per-host-rate 0 \
    --include "^$base/(ch[0-9]|appendix|foreword|title-page)" \
    "$base/ch04-01-what-is-ownership.html"
"$bin" export --db "$tmp/book.db" --what summaries --format jsonl --out "$tmp/summaries.jsonl"

python3 - "$tmp/summaries.jsonl" <<'EOF'
import json, re, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
# What a code listing looks like inside a summary: a function or binding,
# a macro call, a path call, a closing brace with a semicolon, an attribute.
listing = re.compile(r'(fn \w+\(|let (mut )?\w+ = |println!\(|\w+::\w+\(|\};|\{ *let |\$ cargo|#\[)')
code = [r for r in rows if listing.search(r['summary'] or '')]
lengths = sorted(len(r['summary'] or '') for r in rows)
print(f"chapters summarized   {len(rows)}")
print(f"quoting code          {len(code)}")
print(f"empty                 {sum(1 for r in rows if not r['summary'])}")
print(f"length median / max   {lengths[len(lengths) // 2]} / {lengths[-1]} characters")
for r in code[:5]:
    print(f"  {r['url'].rsplit('/', 1)[-1]}: {r['summary'][:120]}")
EOF
