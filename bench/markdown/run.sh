#!/usr/bin/env bash
# HTML to Markdown, trawl's streaming pass against three crates, on the
# golden fixtures and on real documentation pages found on this machine:
# the Rust toolchain's own docs (rustdoc and mdBook, `rustup component add
# rust-docs`) and Sphinx pages under /usr/share/doc.
#
#   bench/markdown/run.sh [OUT_DIR]     (default: bench/markdown/out)
#
# Environment: CARGO_TARGET_DIR as for any build (sharing trawl's target
# dir reuses its compiled dependencies).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/out}
mkdir -p "$out"
list=$out/pages.txt
{
    echo "# corpus fixtures"
    for f in guide/sphinx guide/table-code book/mdbook api/rustdoc news/article; do
        echo "$root/fixtures/markdown/$f.html http://127.0.0.1:9/$f.html"
    done
    docs=$(ls -d "$HOME"/.rustup/toolchains/*/share/doc/rust/html 2>/dev/null | head -1 || true)
    if [ -n "$docs" ]; then
        echo "# corpus rustdoc"
        find "$docs/std/collections" "$docs/std/vec" -name '*.html' | sort | head -60 |
            sed "s|^$docs/\(.*\)|$docs/\1 https://doc.rust-lang.org/\1|"
        echo "# corpus mdbook"
        find "$docs/book" -maxdepth 1 -name 'ch0*.html' | sort | head -60 |
            sed "s|^$docs/\(.*\)|$docs/\1 https://doc.rust-lang.org/\1|"
    fi
    sphinx=$(grep -l 'Docutils\|sphinx' /usr/share/doc/*/*.html /usr/share/doc/*/*/*.html 2>/dev/null | head -60 || true)
    if [ -n "$sphinx" ]; then
        echo "# corpus sphinx"
        for f in $sphinx; do echo "$f https://docs.test${f#/usr/share/doc}"; done
    fi
} >"$list"
cd "$here"
cargo build --release -q
bin=${CARGO_TARGET_DIR:-$here/target}/release/markdown-compare
taskset -c 0 "$bin" "$out" "$list" 2>/dev/null || "$bin" "$out" "$list"
