#!/usr/bin/env sh
# A slow URL must not stall its host: crawls bench/slow/server.py's 60-URL
# site (5 slow URLs) with the default politeness and --timeout 10, and
# prints the wall time and the outcome. Needs a release build.
set -eu
cd "$(dirname "$0")/../.."
PORT=${PORT:-18577}
python3 bench/slow/server.py "$PORT" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT
sleep 1
DB=$(mktemp -d)/slow.db
start=$(date +%s.%N)
./target/release/trawl crawl "http://127.0.0.1:$PORT/" --db "$DB" --timeout 10 -q || true
end=$(date +%s.%N)
echo "wall: $(echo "$end - $start" | bc) s"
./target/release/trawl status --db "$DB" | head -20
