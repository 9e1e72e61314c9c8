#!/usr/bin/env bash
# ROUGE of trawl's offline summarizers against ACLSum's human-written
# summaries. See README.md. Usage: bench/rouge/run.sh
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="$here/.cache"
mkdir -p "$cache"

# The dataset: the aclsum wheel from PyPI, pinned by version and hash.
DATASET_VERSION=0.1.2
DATASET_SHA256=c75ffc48d3eabc5f37c68ea087943780a85950087957759e89746f21111f2213
wheel="$cache/aclsum-$DATASET_VERSION-py3-none-any.whl"
# The scorer: Google's rouge-score, with the NLTK whose Porter stemmer it uses.
SCORER="rouge-score==0.1.2 nltk==3.10.4"

venv="$cache/venv"
if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$SCORER" ]; then
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet $SCORER
    echo "$SCORER" > "$venv/.installed"
fi
py="$venv/bin/python"

if [ ! -f "$wheel" ]; then
    echo "aclsum==$DATASET_VERSION --hash=sha256:$DATASET_SHA256" > "$cache/dataset.txt"
    "$venv/bin/pip" download --quiet --no-deps --only-binary :all: --require-hashes \
        -r "$cache/dataset.txt" -d "$cache"
fi

docs="$cache/aclsum.jsonl"
"$py" "$here/score.py" convert "$wheel" "$docs"

summaries="$cache/summaries.jsonl"
timing="$cache/timing.txt"
(cd "$root" && cargo run --release --example summaries -- "$docs" "$summaries") 2>&1 |
    tee "$timing"

echo
"$py" "$here/score.py" score "$docs" "$summaries" "$timing"
