//! The LLM stage against servers that behave like real ones: a context
//! reported the llama.cpp way (`/props`) or the vLLM way (`/v1/models`),
//! their own `/tokenize`, context-overflow 400s in each server's wording,
//! `finish_reason: "length"`, a refused connection; summaries committed as
//! they are made, parts kept when the reduce step fails, the crawl's
//! `summarizing` state.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sqlx::Row;

use crate::cli::{quick_crawl, stderr};
use crate::summaries::{args, site, summaries, text, trawl_llm};
use crate::util::{Server, TestDb, listener};

/// How the fake server describes itself and words its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `/props` with `default_generation_settings.n_ctx`, `/tokenize`
    /// taking `content`, llama.cpp's overflow body.
    LlamaCpp,
    /// `/v1/models` with `max_model_len`, `/tokenize` taking `prompt`,
    /// vLLM's overflow message.
    Vllm,
    /// Says nothing about itself and has no `/tokenize`; overflows in
    /// llama.cpp's wording.
    Silent,
}

#[derive(Debug, Clone)]
struct Request {
    system: String,
    user: String,
    max_tokens: usize,
}

struct Fake {
    style: Style,
    /// Tokens of context per request.
    n_ctx: usize,
    requests: Mutex<Vec<Request>>,
    overflows: AtomicUsize,
    /// Fail every reduce request (400) while set.
    fail_reduce: AtomicBool,
    /// Hang every chat request after this many were answered (0: never).
    hang_after: AtomicUsize,
    answered: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// The fake tokenizer: two tokens a word, more than o200k counts for
/// English (as small models' tokenizers do).
fn tokens(s: &str) -> usize {
    2 * s.split_whitespace().count()
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn complete(State(f): State<Arc<Fake>>, body: String) -> Response {
    let req: serde_json::Value = serde_json::from_str(&body).unwrap();
    let system = req["messages"][0]["content"].as_str().unwrap().to_string();
    let user = req["messages"][1]["content"].as_str().unwrap().to_string();
    let max_tokens = req["max_tokens"].as_u64().unwrap_or(400) as usize;
    f.requests.lock().unwrap().push(Request {
        system: system.clone(),
        user: user.clone(),
        max_tokens,
    });
    // Long enough for requests sent together to overlap here.
    let now = f.in_flight.fetch_add(1, SeqCst) + 1;
    f.max_in_flight.fetch_max(now, SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    f.in_flight.fetch_sub(1, SeqCst);
    let hang = f.hang_after.load(SeqCst);
    if hang > 0 && f.answered.load(SeqCst) >= hang {
        std::future::pending::<()>().await;
    }
    let prompt = tokens(&system) + tokens(&user) + 10;
    if prompt + max_tokens > f.n_ctx {
        f.overflows.fetch_add(1, SeqCst);
        let body = match f.style {
            Style::Vllm => serde_json::json!({
                "object": "error",
                "message": format!("This model's maximum context length is {} tokens. However, you requested {} tokens ({prompt} in the messages, {max_tokens} in the completion). Please reduce the length of the messages or completion.", f.n_ctx, prompt + max_tokens),
                "type": "BadRequestError", "param": null, "code": 400
            }),
            _ => serde_json::json!({"error": {
                "code": 400,
                "message": format!("request ({prompt} tokens) exceeds the available context size ({} tokens), try increasing it", f.n_ctx),
                "type": "exceed_context_size_error",
                "n_prompt_tokens": prompt,
                "n_ctx": f.n_ctx
            }}),
        };
        return json(StatusCode::BAD_REQUEST, body);
    }
    let reduce = system.contains("partial summaries");
    if reduce && f.fail_reduce.load(SeqCst) {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": {"message": "reduce refused (fixture)"}}),
        );
    }
    // A page marked LONGANSWER needs 300 tokens of answer; ALWAYSLONG more
    // than anyone asks.
    let need = if user.contains("ALWAYSLONG") {
        usize::MAX
    } else if user.contains("LONGANSWER") {
        300
    } else {
        20
    };
    let cut = need > max_tokens;
    let words: Vec<&str> = user.split_whitespace().take(4).collect();
    let answer = if cut {
        format!("Summary of {} and then it goes on and", words.join(" "))
    } else {
        format!("Summary of {}.", words.join(" "))
    };
    f.answered.fetch_add(1, SeqCst);
    json(
        StatusCode::OK,
        serde_json::json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                         "finish_reason": if cut { "length" } else { "stop" }}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": need.min(max_tokens)},
        }),
    )
}

async fn props(State(f): State<Arc<Fake>>) -> Response {
    if f.style != Style::LlamaCpp {
        return StatusCode::NOT_FOUND.into_response();
    }
    json(
        StatusCode::OK,
        serde_json::json!({"default_generation_settings": {"n_ctx": f.n_ctx}, "total_slots": 2}),
    )
}

async fn models(State(f): State<Arc<Fake>>) -> Response {
    match f.style {
        Style::Vllm => json(
            StatusCode::OK,
            serde_json::json!({"object": "list", "data": [{"id": "fake-1", "object": "model", "max_model_len": f.n_ctx}]}),
        ),
        // llama.cpp lists the model with its training context, which is
        // not what one slot has.
        Style::LlamaCpp => json(
            StatusCode::OK,
            serde_json::json!({"object": "list", "data": [{"id": "fake-1", "object": "model", "meta": {"n_ctx_train": 8192}}]}),
        ),
        Style::Silent => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn tokenize(State(f): State<Arc<Fake>>, body: String) -> Response {
    let req: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (field, text) = match f.style {
        Style::LlamaCpp => ("content", req["content"].as_str()),
        Style::Vllm => ("prompt", req["prompt"].as_str()),
        Style::Silent => return StatusCode::NOT_FOUND.into_response(),
    };
    let Some(text) = text else {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": format!("{field} is required")}),
        );
    };
    let ids: Vec<usize> = (0..tokens(text)).collect();
    match f.style {
        Style::Vllm => json(
            StatusCode::OK,
            serde_json::json!({"count": ids.len(), "tokens": ids, "max_model_len": f.n_ctx}),
        ),
        _ => json(StatusCode::OK, serde_json::json!({"tokens": ids})),
    }
}

async fn fake(style: Style, n_ctx: usize) -> (Arc<Fake>, String) {
    let l = listener().await;
    let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    let f = Arc::new(Fake {
        style,
        n_ctx,
        requests: Mutex::default(),
        overflows: AtomicUsize::new(0),
        fail_reduce: AtomicBool::new(false),
        hang_after: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(complete))
        .route("/props", get(props))
        .route("/v1/models", get(models))
        .route("/tokenize", post(tokenize))
        .with_state(f.clone());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (f, base)
}

/// A page of `n` sentences (about 12 words each).
fn long_page(tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{tag} sentence {i} explains one more detail of the subject at length. "))
        .collect()
}

fn llm_crawl(site: &Server, base: &str, db: &str, extra: &[&str]) -> Vec<String> {
    let mut a = quick_crawl(
        &site.url("/"),
        db,
        &[
            "--summarizer",
            "llm",
            "--llm-base-url",
            base,
            "--llm-model",
            "fake-1",
        ],
    );
    a.extend(args(extra));
    a
}

/// Starts `trawl` with these arguments, output discarded, no API key.
fn spawn_trawl(args: Vec<String>) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("TRAWL_LLM_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_context_is_learned_from_the_server_and_no_request_overflows() {
    for style in [Style::LlamaCpp, Style::Vllm] {
        // Pages of ~150, ~1,500 and ~4,000 server tokens; 1,024 of context.
        let texts = vec![text(0, ""), long_page("Alpha", 60), long_page("Beta", 160)];
        let s = site(texts.clone()).await;
        let (f, base) = fake(style, 1024).await;
        let dir = tempfile::tempdir().unwrap();
        let tdb = TestDb::new(dir.path(), "t.db");
        let db = tdb.target().to_string();
        // Default LLM settings: only the endpoint and the model.
        let o = trawl_llm(llm_crawl(&s, &base, &db, &[])).await;
        assert_eq!(o.status.code(), Some(0), "{style:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("summaries: 3 done, 0 failed"),
            "{style:?}: {}",
            stderr(&o)
        );
        assert_eq!(f.overflows.load(SeqCst), 0, "{style:?}");
        let requests = f.requests.lock().unwrap().clone();
        for r in &requests {
            let n = tokens(&r.system) + tokens(&r.user) + 10;
            assert!(
                n + r.max_tokens <= 1024,
                "{style:?}: {n} + {}",
                r.max_tokens
            );
            assert!(r.max_tokens <= 256, "{style:?}: room kept for input");
        }
        // A split page's parts are answered within their share of one
        // reduce request.
        for tag in ["Alpha", "Beta"] {
            let parts: Vec<&Request> = requests
                .iter()
                .filter(|r| !r.system.contains("partial summaries") && r.user.contains(tag))
                .collect();
            let room: usize = parts.iter().map(|r| r.max_tokens + 12).sum();
            assert!(
                room <= 1024 - 256,
                "{style:?} {tag}: {} parts, {room} tokens",
                parts.len()
            );
        }
        // llama.cpp says it has 2 slots: no more requests at once.
        if style == Style::LlamaCpp {
            assert!(f.max_in_flight.load(SeqCst) <= 2, "{style:?}");
        }
        let sums = summaries(&tdb).await;
        assert!(
            texts.iter().all(|t| sums[t.trim()].0 == "done"),
            "{style:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflow_answer_teaches_the_limit_and_the_page_is_split_again() {
    let texts = vec![long_page("Gamma", 120), text(1, "")];
    let s = site(texts.clone()).await;
    let (f, base) = fake(Style::Silent, 1024).await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let mut a = llm_crawl(&s, &base, &db, &["--llm-concurrency", "1"]);
    a.retain(|x| x != "-q");
    let o = trawl_llm(a).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("summaries: 2 done, 0 failed"),
        "{}",
        stderr(&o)
    );
    assert!(
        f.overflows.load(SeqCst) >= 1,
        "the limit was not known before"
    );
    assert!(
        stderr(&o).contains("limited to 1024 tokens of context"),
        "{}",
        stderr(&o)
    );
    let sums = summaries(&tdb).await;
    assert!(texts.iter().all(|t| sums[t.trim()].0 == "done"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_answer_is_asked_again_with_more_room_else_marked_truncated() {
    let texts = vec![text(0, "LONGANSWER"), text(1, "ALWAYSLONG"), text(2, "")];
    let s = site(texts.clone()).await;
    let (f, base) = fake(Style::LlamaCpp, 4096).await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let o = trawl_llm(llm_crawl(
        &s,
        &base,
        &db,
        // 0 is no limit, as elsewhere on the command line.
        &[
            "--llm-max-output-tokens",
            "200",
            "--llm-max-total-tokens",
            "0",
        ],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 cut at max_tokens (stored, marked truncated)"),
        "{}",
        stderr(&o)
    );
    // The LONGANSWER page was asked at 200, then at 400.
    let asked: Vec<usize> = f
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.user.contains("LONGANSWER"))
        .map(|r| r.max_tokens)
        .collect();
    assert_eq!(asked, [200, 400]);
    let rows: Vec<(String, bool)> = sqlx::query(
        "SELECT p.text, CASE WHEN s.truncated THEN 1 ELSE 0 END FROM summaries s \
         JOIN pages p ON p.content_hash = s.content_hash",
    )
    .fetch_all(&tdb.sql().await)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get::<i64, _>(1) == 1))
    .collect();
    for (t, truncated) in rows {
        assert_eq!(truncated, t.contains("ALWAYSLONG"), "{t}");
    }
    // Export and status say so too.
    let o = trawl_llm(args(&["export", "--db", &db])).await;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(out.matches("\"truncated\":true").count(), 1, "{out}");
    let o = trawl_llm(args(&["status", "--db", &db])).await;
    let status = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(status.contains("3 done (1 cut at max_tokens)"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_summary_is_committed_as_it_is_made() {
    let texts: Vec<String> = (0..6).map(|i| text(i, "")).collect();
    let s = site(texts).await;
    let (f, base) = fake(Style::LlamaCpp, 4096).await;
    // Three answers, then every request hangs.
    f.hang_after.store(3, SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let mut child = spawn_trawl(llm_crawl(&s, &base, &db, &["--llm-concurrency", "1"]));
    // The fourth request is sent after the third answer was handled.
    while f.requests.lock().unwrap().len() < 4 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM summaries WHERE state = 'done'")
        .fetch_one(&tdb.sql().await)
        .await
        .unwrap();
    assert_eq!(done, 3, "every answered summary survives a kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reduce_keeps_the_parts_and_a_retry_pays_only_for_the_reduce() {
    let page = long_page("Delta", 120);
    let s = site(vec![page.clone()]).await;
    let (f, base) = fake(Style::LlamaCpp, 1024).await;
    f.fail_reduce.store(true, SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let o = trawl_llm(llm_crawl(&s, &base, &db, &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("0 done, 1 failed"), "{}", stderr(&o));
    let first: Vec<Request> = f.requests.lock().unwrap().clone();
    let parts = first
        .iter()
        .filter(|r| !r.system.contains("partial summaries"))
        .count();
    assert!(parts >= 2, "{parts} parts");
    // The reduce prompt says plainly what its input is.
    let reduce = first
        .iter()
        .find(|r| r.system.contains("partial summaries"))
        .expect("a reduce request");
    assert!(
        reduce
            .system
            .contains("several partial summaries of consecutive parts of ONE long web page"),
        "{}",
        reduce.system
    );
    assert!(reduce.user.starts_with("Part 1 of "), "{}", reduce.user);

    // Failures are listed with their error.
    let o = trawl_llm(args(&[
        "export",
        "--db",
        &db,
        "--what",
        "summaries",
        "--include-failed",
    ]))
    .await;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains("\"state\":\"failed\""), "{out}");
    assert!(out.contains("reduce refused (fixture)"), "{out}");
    let o = trawl_llm(args(&["status", "--db", &db])).await;
    let status = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        status.contains("summaries failed by reason: HTTP 400=1"),
        "{status}"
    );

    // The retry sends the reduce alone: the parts were kept.
    f.fail_reduce.store(false, SeqCst);
    let o = trawl_llm(args(&["summarize", "--db", &db])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let all = f.requests.lock().unwrap().clone();
    let again = &all[first.len()..];
    assert!(
        again.iter().all(|r| r.system.contains("partial summaries")),
        "{again:?}"
    );
    assert_eq!(summaries(&tdb).await[page.trim()].0, "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_endpoint_leaves_pages_pending_and_summarize_exits_1() {
    let texts: Vec<String> = (0..4).map(|i| text(i, "")).collect();
    let s = site(texts).await;
    let closed = {
        let l = listener().await;
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let o = trawl_llm(quick_crawl(&s.url("/"), &db, &["--no-summaries"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = trawl_llm(args(&[
        "summarize",
        "--db",
        &db,
        "--summarizer",
        "llm",
        "--llm-base-url",
        &closed,
        "--llm-model",
        "fake-1",
    ]))
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains(&closed), "{err}");
    assert!(err.contains("0 done, 0 failed"), "{err}");
    assert!(err.contains("4 pages without a llm summary"), "{err}");
    // Nothing was recorded as failed: the pages wait for a later run.
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM summaries WHERE backend = 'llm'")
        .fetch_one(&tdb.sql().await)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_summarizing_while_only_summaries_remain() {
    let texts: Vec<String> = (0..3).map(|i| text(i, "")).collect();
    let s = site(texts).await;
    let (f, base) = fake(Style::LlamaCpp, 4096).await;
    f.hang_after.store(1, SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let mut child = spawn_trawl(llm_crawl(&s, &base, &db, &["--llm-concurrency", "1"]));
    // Every page is fetched; the second summary hangs. (A crawl that never
    // leaves `running` fails after a minute.)
    let mut polls = 0;
    let state = loop {
        polls += 1;
        assert!(polls < 1200, "the crawl stayed `running`");
        if f.requests.lock().unwrap().len() >= 2 {
            let o = trawl_llm(args(&["status", "--db", &db, "--json"])).await;
            let v: serde_json::Value =
                serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
            let state = v["crawl"]["state"].as_str().unwrap_or("").to_string();
            if state != "running" {
                break state;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(state, "summarizing");
}
