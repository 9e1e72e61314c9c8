//! The summary stage against a fake OpenAI-compatible server on loopback:
//! concurrency, retries, failures with the server's message, map-reduce of
//! long pages, the token budget, a server that dies mid-run, streaming, the
//! API key kept out of logs and the database; and the extractive default.

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::Row;

use crate::cli::{quick_crawl, stderr};
use crate::util::{Server, TestDb, listener};

const KEY: &str = "sk-test-SECRET-4242";

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    at: std::time::Instant,
    system: String,
    pub user: String,
    auth: Option<String>,
}

#[derive(Default)]
struct Llm {
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Markers answered 429 once already.
    limited: Mutex<HashMap<String, u32>>,
    delay_ms: std::sync::atomic::AtomicU64,
    /// Texts answered with a summary, in order.
    answered: Mutex<Vec<String>>,
    /// Set when the server is killed: a request in flight loses its
    /// connection.
    dead: AtomicBool,
    /// Everything fails with 500 while set.
    broken: AtomicBool,
}

pub struct FakeLlm {
    state: Arc<Llm>,
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl FakeLlm {
    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Answers by markers in the page text: `FAIL500`, `MALFORMED`, `BADREQ`,
/// `LIMITED` (429 with Retry-After: 1 the first time); else a summary
/// naming the text's first words, with usage 100 + 10.
async fn complete(State(llm): State<Arc<Llm>>, headers: HeaderMap, body: String) -> Response {
    let req: serde_json::Value = serde_json::from_str(&body).unwrap();
    let system = req["messages"][0]["content"].as_str().unwrap().to_string();
    let user = req["messages"][1]["content"].as_str().unwrap().to_string();
    let stream = req["stream"].as_bool().unwrap_or(false);
    llm.seen.lock().unwrap().push(Seen {
        at: std::time::Instant::now(),
        system,
        user: user.clone(),
        auth: headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_string()),
    });
    let now = llm.in_flight.fetch_add(1, SeqCst) + 1;
    llm.max_in_flight.fetch_max(now, SeqCst);
    tokio::time::sleep(Duration::from_millis(llm.delay_ms.load(SeqCst))).await;
    llm.in_flight.fetch_sub(1, SeqCst);
    if llm.dead.load(SeqCst) {
        panic!("dropping the connection: the server was killed (fixture)");
    }

    let error = |status: StatusCode, msg: &str| {
        json(
            status,
            serde_json::json!({"error": {"message": msg, "type": "x"}}),
        )
    };
    if llm.broken.load(SeqCst) || user.contains("FAIL500") {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded");
    }
    if user.contains("BADREQ") {
        return error(StatusCode::BAD_REQUEST, "this model refuses such pages");
    }
    if user.contains("MALFORMED") {
        return (StatusCode::OK, "{\"choices\": [oops").into_response();
    }
    if user.contains("LIMITED") {
        let mut l = llm.limited.lock().unwrap();
        let n = l.entry("LIMITED".into()).or_insert(0);
        *n += 1;
        if *n == 1 {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "slow down");
            r.headers_mut()
                .insert(header::RETRY_AFTER, "1".parse().unwrap());
            return r;
        }
    }
    llm.answered.lock().unwrap().push(user.clone());
    let words: Vec<&str> = user.split_whitespace().take(4).collect();
    let answer = format!("Summary of {}", words.join(" "));
    if stream {
        let mut sse = String::new();
        for piece in answer.split_inclusive(' ') {
            sse.push_str(&format!(
                "data: {}\n\n",
                serde_json::json!({"choices": [{"delta": {"content": piece}}]})
            ));
        }
        sse.push_str(&format!(
            "data: {}\n\ndata: [DONE]\n\n",
            serde_json::json!({"choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 10}})
        ));
        return ([(header::CONTENT_TYPE, "text/event-stream")], sse).into_response();
    }
    json(
        StatusCode::OK,
        serde_json::json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10},
        }),
    )
}

/// An OpenAI-compatible chat completions server on loopback that answers
/// each request after `delay_ms` with "Summary of …".
pub async fn fake_llm(delay_ms: u64) -> FakeLlm {
    let l = listener().await;
    let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    let state = Arc::new(Llm {
        delay_ms: delay_ms.into(),
        ..Llm::default()
    });
    let app = Router::new()
        .route("/v1/chat/completions", axum::routing::post(complete))
        .with_state(state.clone());
    let task = tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    FakeLlm { state, base, task }
}

/// A site of `n` pages, each with its own text (and `marks[i]` in page i).
pub async fn site(texts: Vec<String>) -> Server {
    let l = listener().await;
    let addr = l.local_addr().unwrap();
    let mut pages: HashMap<String, String> = HashMap::new();
    let links: String = (0..texts.len())
        .map(|i| format!("<a href=\"/p/{i}\">page {i}</a> "))
        .collect();
    pages.insert(
        "/".into(),
        format!("<html><body><nav>{links}</nav></body></html>"),
    );
    for (i, t) in texts.into_iter().enumerate() {
        pages.insert(
            format!("/p/{i}"),
            format!(
                "<html><head><title>Page {i}</title>{}</head><body><main><p>{t}</p></main></body></html>",
                if t.contains("NOINDEX") {
                    "<meta name=\"robots\" content=\"noindex\">"
                } else {
                    ""
                }
            ),
        );
    }
    let pages = Arc::new(pages);
    let log: Arc<Mutex<Vec<(std::time::Instant, String)>>> = Arc::default();
    let log2 = log.clone();
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let pages = pages.clone();
        let log = log2.clone();
        async move {
            let path = req.uri().path().to_string();
            log.lock()
                .unwrap()
                .push((std::time::Instant::now(), path.clone()));
            match pages.get(&path) {
                Some(b) => ([(header::CONTENT_TYPE, "text/html")], b.clone()).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    Server { addr, log }
}

pub fn text(i: usize, mark: &str) -> String {
    format!(
        "Topic{i} is what page number {i} is about. It says several things about topic{i}. \
         Each of them matters to readers of page {i}. {mark}"
    )
}

/// Runs trawl with the API key in its environment (and no other LLM
/// settings from the machine's).
pub async fn trawl_llm(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args(&args)
            .env("RUST_LOG", "debug")
            .env("TRAWL_LLM_API_KEY", KEY)
            .env_remove("OPENAI_API_KEY")
            .env_remove("TRAWL_LLM_BASE_URL")
            .env_remove("TRAWL_LLM_MODEL")
            .stdin(Stdio::null())
            .output()
            .expect("run trawl")
    })
    .await
    .unwrap()
}

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// content text → (state, summary or error, chunks), for every summary row
/// joined to the page it belongs to.
pub async fn summaries(db: &TestDb) -> HashMap<String, (String, String, i64)> {
    let rows = sqlx::query(
        "SELECT p.text, s.state, COALESCE(s.summary, s.error), s.chunks FROM summaries s \
         JOIN pages p ON p.content_hash = s.content_hash",
    )
    .fetch_all(&db.sql().await)
    .await
    .unwrap();
    rows.iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect()
}

/// A quick crawl of `seed` summarized by `llm`, with `extra` options.
pub fn llm_crawl_args(seed: &str, llm: &FakeLlm, db: &str, extra: &[&str]) -> Vec<String> {
    let mut a = quick_crawl(
        seed,
        db,
        &[
            "--summarizer",
            "llm",
            "--llm-base-url",
            &llm.base,
            "--llm-model",
            "fake-1",
        ],
    );
    a.extend(args(extra));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_summaries_are_made_within_the_concurrency_limit_and_the_key_stays_secret() {
    let texts: Vec<String> = (0..8).map(|i| text(i, "")).collect();
    let s = site(texts.clone()).await;
    let llm = fake_llm(150).await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let o = trawl_llm(llm_crawl_args(
        &s.url("/"),
        &llm,
        &db,
        &["--llm-concurrency", "2"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("summaries: 8 done, 0 failed (800 prompt + 80 completion tokens)"),
        "{}",
        stderr(&o)
    );
    assert!(llm.state.max_in_flight.load(SeqCst) <= 2);
    assert_eq!(llm.state.max_in_flight.load(SeqCst), 2, "ran in parallel");
    let seen = llm.seen();
    assert_eq!(seen.len(), 8, "one request per page");
    assert!(
        seen.iter()
            .all(|r| r.auth.as_deref() == Some(&format!("Bearer {KEY}")))
    );
    let sums = summaries(&tdb).await;
    for t in &texts {
        let (state, summary, chunks) = &sums[t.trim()];
        assert_eq!((state.as_str(), *chunks), ("done", 1));
        assert!(summary.starts_with("Summary of Topic"), "{summary}");
    }
    // The key is in no log line and nowhere in the database.
    assert!(!stderr(&o).contains(KEY));
    let bytes = tdb.contents();
    assert!(!bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()));

    // An unchanged page is never summarized twice: export shows them, and
    // summarize has nothing to do.
    let o = trawl_llm(args(&["summarize", "--db", &db, "-q"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(llm.seen().len(), 8);
    let o = trawl_llm(args(&["export", "--db", &db])).await;
    let rows: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[0]["summarizer"], "llm");
    assert_eq!(rows[0]["model"], "fake-1");
    assert!(rows[0]["summarized_at"].as_str().unwrap().ends_with('Z'));
}

/// Pages the crawl stores faster than a slow LLM summarizes them overflow
/// the stage's channel (256): those offers are dropped, and the sweep after
/// the crawl finds them, so every page still ends with its summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_the_stage_had_no_room_for_are_summarized_by_its_sweep() {
    let texts: Vec<String> = (0..500).map(|i| text(i, "")).collect();
    let s = site(texts.clone()).await;
    let llm = fake_llm(200).await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let o = trawl_llm(llm_crawl_args(
        &s.url("/"),
        &llm,
        &db,
        &["--llm-concurrency", "16", "--per-host-concurrency", "16"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("summaries: 500 done, 0 failed"),
        "{}",
        stderr(&o)
    );
    let sums = summaries(&tdb).await;
    for t in &texts {
        assert_eq!(sums[t.trim()].0, "done");
    }
    assert_eq!(llm.seen().len(), 500, "one request per page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_recorded_with_the_servers_message_and_summarize_retries_them() {
    let texts = vec![
        text(0, ""),
        text(1, "LIMITED"),
        text(2, "FAIL500"),
        text(3, "MALFORMED"),
        text(4, "BADREQ"),
    ];
    let s = site(texts.clone()).await;
    let llm = fake_llm(0).await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let o = trawl_llm(llm_crawl_args(
        &s.url("/"),
        &llm,
        &db,
        &["--llm-retries", "1"],
    ))
    .await;
    // Summary failures do not fail the crawl.
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let sums = summaries(&tdb).await;
    let at = |i: usize| sums[texts[i].trim()].clone();
    assert_eq!(at(0).0, "done");
    assert_eq!(at(1).0, "done", "429 with Retry-After is retried");
    assert_eq!(at(2).0, "failed");
    assert!(
        at(2).1.contains("HTTP 500: upstream exploded"),
        "{:?}",
        at(2)
    );
    assert_eq!(at(3).0, "failed");
    assert!(at(3).1.contains("malformed response"), "{:?}", at(3));
    assert_eq!(at(4).0, "failed");
    assert!(
        at(4).1.contains("HTTP 400: this model refuses such pages"),
        "{:?}",
        at(4)
    );
    let count = |marker: &str| {
        llm.seen()
            .iter()
            .filter(|r| r.user.contains(marker))
            .count()
    };
    assert_eq!(count("LIMITED"), 2);
    assert_eq!(count("FAIL500"), 2, "one retry");
    assert_eq!(count("BADREQ"), 1, "a 400 is not retried");
    assert_eq!(count("MALFORMED"), 1);

    // summarize takes the failed ones again, and only those.
    let before = llm.seen().len();
    let o = trawl_llm(args(&["summarize", "--db", &db, "-q"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        llm.seen().len() - before,
        2 + 1 + 1,
        "{:?}",
        &llm.seen()[before..]
    );
    assert!(stderr(&o).contains("0 done, 3 failed"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_pages_are_split_and_the_parts_summarized_again() {
    let long: String = (0..200)
        .map(|i| format!("Sentence {i} of the long page explains detail number {i} at length. "))
        .collect();
    let s = site(vec![long.clone(), text(1, "")]).await;
    let llm = fake_llm(0).await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let o = trawl_llm(llm_crawl_args(
        &s.url("/"),
        &llm,
        &db,
        &[
            "--llm-max-input-tokens",
            "600",
            "--llm-max-output-tokens",
            "100",
        ],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let seen = llm.seen();
    let parts: Vec<&Seen> = seen
        .iter()
        .filter(|r| r.user.contains("long page"))
        .collect();
    assert!(parts.len() >= 4, "{} parts", parts.len());
    // Every request fits the budget, and nothing of the page was dropped.
    let bpe = tiktoken_rs::o200k_base_singleton();
    for r in &seen {
        let n = bpe.encode_ordinary(&r.system).len() + bpe.encode_ordinary(&r.user).len();
        assert!(n <= 600, "{n} tokens");
    }
    for i in [0, 100, 199] {
        let needle = format!("detail number {i} ");
        assert!(parts.iter().any(|r| r.user.contains(&needle)), "{needle}");
    }
    // The reduce step sees the partial summaries, with the note saying so.
    let reduce: Vec<&Seen> = seen
        .iter()
        .filter(|r| r.system.contains("summaries of consecutive parts"))
        .collect();
    assert_eq!(reduce.len(), 1);
    assert!(reduce[0].user.contains("Summary of Sentence"));
    let (state, summary, chunks) = summaries(&tdb).await[long.trim()].clone();
    assert_eq!(state, "done");
    assert_eq!(chunks as usize, parts.len());
    assert!(summary.starts_with("Summary of"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_budget_or_a_server_killed_mid_run_leaves_pages_for_summarize() {
    let texts: Vec<String> = (0..6).map(|i| text(i, "")).collect();
    let s = site(texts.clone()).await;
    let llm = fake_llm(0).await;
    let llm_state = llm.state.clone();
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    // 110 tokens a page, and each request reserves its prompt (~90 with
    // the margin), the template (32) and max_tokens (100) before it is
    // sent: the third would pass 400, and is not sent.
    let o = trawl_llm(llm_crawl_args(
        &s.url("/"),
        &llm,
        &db,
        &[
            "--llm-max-total-tokens",
            "400",
            "--llm-max-output-tokens",
            "100",
            "--llm-concurrency",
            "1",
        ],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("token budget spent"), "{}", stderr(&o));
    assert_eq!(llm.seen().len(), 2);
    // Never past the budget.
    let spent: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(prompt_tokens + completion_tokens) AS BIGINT) FROM summaries",
    )
    .fetch_one(&tdb.sql().await)
    .await
    .unwrap();
    assert!(spent <= 400, "{spent} tokens");
    let o = trawl_llm(args(&["status", "--db", &db])).await;
    let status = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        status.contains("summaries: 2 done, 0 failed, 4 pending"),
        "{status}"
    );

    // summarize, and the server dies under it after one more page: the
    // request in flight loses its connection, the next ones are refused.
    llm.state.delay_ms.store(300, SeqCst);
    let state = llm.state.clone();
    let killer = tokio::spawn(async move {
        while state.seen.lock().unwrap().len() < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        state.dead.store(true, SeqCst);
        llm.task.abort();
    });
    let o = trawl_llm(args(&[
        "summarize",
        "--db",
        &db,
        "--llm-max-total-tokens",
        "100000",
        "--llm-retries",
        "0",
    ]))
    .await;
    // The request in flight failed (no retries); then the endpoint
    // refused connections: the rest are left pending, not failed, and
    // summarize says so and exits 1.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 done, 1 failed"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the LLM endpoint is unreachable"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("connection refused"), "{}", stderr(&o));
    killer.await.unwrap();
    let first = state_answered(&llm_state);

    // A new server: summarize completes the rest, and nothing done is
    // summarized twice.
    let again = fake_llm(0).await;
    let o = trawl_llm(args(&[
        "summarize",
        "--db",
        &db,
        "--llm-base-url",
        &again.base,
        "--llm-max-total-tokens",
        "100000",
    ]))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(again.seen().len(), 3);
    let mut all = first;
    all.extend(state_answered(&again.state));
    let distinct: std::collections::HashSet<&String> = all.iter().collect();
    assert_eq!(
        (all.len(), distinct.len()),
        (6, 6),
        "each page summarized once"
    );
    let sums = summaries(&tdb).await;
    assert!(texts.iter().all(|t| sums[t.trim()].0 == "done"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summarize_one_page_streams_its_summary() {
    let texts = vec![text(0, "")];
    let s = site(texts.clone()).await;
    let llm = fake_llm(0).await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let o = trawl_llm(quick_crawl(&s.url("/"), &db, &["--no-summaries"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(summaries(&tdb).await.is_empty());
    let o = trawl_llm(args(&[
        "summarize",
        "--db",
        &db,
        "--url",
        &s.url("/p/0"),
        "--stream",
        "--summarizer",
        "llm",
        "--llm-base-url",
        &llm.base,
        "--llm-model",
        "fake-1",
    ]))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "Summary of Topic0 is what page\n"
    );
    let sums = summaries(&tdb).await;
    assert_eq!(sums[texts[0].trim()].1, "Summary of Topic0 is what page");

    // A URL that is not a stored page is a usage error.
    let o = trawl_llm(args(&["summarize", "--db", &db, "--url", &s.url("/nope")])).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_default_summarizes_every_page_deterministically() {
    let texts: Vec<String> = (0..3).map(|i| text(i, "")).collect();
    let mut served = texts.clone();
    served.push(text(3, "NOINDEX"));
    let s = site(served).await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let o = trawl_llm(quick_crawl(&s.url("/"), &db, &["--summary-sentences", "2"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let sums = summaries(&tdb).await;
    // The home page is only navigation: no text, no summary. The noindex
    // page is stored but not summarized.
    assert_eq!(sums.len(), 3, "{sums:?}");
    for t in &texts {
        let (state, summary, _) = &sums[t.trim()];
        assert_eq!(state, "done");
        assert!(t.contains(summary.split(". ").next().unwrap()), "{summary}");
    }
    let first: Vec<String> = texts.iter().map(|t| sums[t.trim()].1.clone()).collect();
    let o = trawl_llm(args(&["summarize", "--db", &db, "--force", "-q"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("3 done"), "{}", stderr(&o));
    let sums = summaries(&tdb).await;
    let again: Vec<String> = texts.iter().map(|t| sums[t.trim()].1.clone()).collect();
    assert_eq!(first, again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_minute_are_spaced_evenly() {
    let texts: Vec<String> = (0..4).map(|i| text(i, "")).collect();
    let s = site(texts).await;
    let llm = fake_llm(0).await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    // 240 a minute: one every 250 ms, even with 4 allowed in flight.
    let o = trawl_llm(llm_crawl_args(
        &s.url("/"),
        &llm,
        &db,
        &["--llm-rpm", "240", "--llm-concurrency", "4"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let seen = llm.seen();
    assert_eq!(seen.len(), 4);
    // Each request at least 250 ms after the one before (less a little
    // for timer granularity).
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(230), "{gap:?}");
    }
}

fn state_answered(state: &Llm) -> Vec<String> {
    state.answered.lock().unwrap().clone()
}
