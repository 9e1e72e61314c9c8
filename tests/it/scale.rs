//! Several `trawl` processes on one crawl in PostgreSQL (`trawl join`):
//! real processes against a 20-host site whose server records every
//! request. Always on PostgreSQL, whatever `TRAWL_TEST_DB` says.

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse};

use crate::cli::{stderr, trawl_async};
use crate::util::{self, TestDb};

const HOSTS: usize = 20;
const PAGES_PER_HOST: usize = 15;

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Hit {
    host: usize,
    path: String,
    at: Instant,
}

#[derive(Default)]
struct Log {
    hits: Vec<Hit>,
    /// Per host: requests being answered now, and the most at once.
    in_flight: HashMap<usize, (usize, usize)>,
}

struct Web {
    ports: Vec<u16>,
    log: Arc<Mutex<Log>>,
    /// While `false`, page requests are recorded but not answered.
    gate: tokio::sync::watch::Sender<bool>,
}

impl Web {
    fn seed(&self) -> String {
        self.seed_of(0)
    }

    /// The first page of host `host`.
    fn seed_of(&self, host: usize) -> String {
        format!("http://127.0.0.1:{}/p/0.html", self.ports[host])
    }

    /// Holds page requests (robots.txt is answered) until [`Web::open`].
    fn close(&self) {
        self.gate.send_replace(false);
    }

    fn open(&self) {
        self.gate.send_replace(true);
    }

    /// Page requests (robots.txt left out).
    fn hits(&self) -> Vec<Hit> {
        self.log
            .lock()
            .unwrap()
            .hits
            .iter()
            .filter(|h| h.path.starts_with("/p/"))
            .cloned()
            .collect()
    }

    /// Requests per (host, path) made more than once.
    fn repeats(&self) -> BTreeMap<(usize, String), usize> {
        let mut n: BTreeMap<(usize, String), usize> = BTreeMap::new();
        for h in self.hits() {
            *n.entry((h.host, h.path)).or_default() += 1;
        }
        n.into_iter().filter(|(_, k)| *k > 1).collect()
    }

    fn max_in_flight(&self) -> usize {
        let log = self.log.lock().unwrap();
        log.in_flight
            .values()
            .map(|(_, most)| *most)
            .max()
            .unwrap_or(0)
    }

    /// How far the requests to one host came closer together than
    /// `interval` apart each, at worst: for every host and every two of
    /// its requests `i < j`, by how much their span falls short of
    /// `(j - i) × interval`. A request's arrival carries the jitter of its
    /// way there (held up a few ms in a loaded machine's scheduler, it
    /// arrives late and the next one seems early); a span holds that
    /// jitter only at its two ends, while a wait skipped anywhere in it
    /// (two holders of a host at once, a hand-over that does not wait out
    /// the interval) falls short by that whole wait.
    fn worst_deficit(&self, interval: Duration) -> Duration {
        let mut by_host: HashMap<usize, Vec<Instant>> = HashMap::new();
        for h in self.hits() {
            by_host.entry(h.host).or_default().push(h.at);
        }
        let mut worst = Duration::ZERO;
        for times in by_host.values_mut() {
            times.sort();
            for i in 0..times.len() {
                for j in i + 1..times.len() {
                    let due = interval * (j - i) as u32;
                    worst = worst.max(due.saturating_sub(times[j] - times[i]));
                }
            }
        }
        worst
    }
}

/// 20 hosts of 15 pages. Page `i` of a host links to pages `i+1..i+3` of
/// it and to page `i` of the next two hosts; every answer takes `delay`.
async fn web(delay: Duration) -> Web {
    let mut listeners = Vec::new();
    for _ in 0..HOSTS {
        listeners.push(util::listener().await);
    }
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let log = Arc::new(Mutex::new(Log::default()));
    let gate = tokio::sync::watch::Sender::new(true);
    for (host, listener) in listeners.into_iter().enumerate() {
        let st = (host, ports.clone(), log.clone(), delay, gate.clone());
        let app = Router::new()
            .route("/p/{page}", axum::routing::get(page))
            .fallback(|| async { axum::http::StatusCode::NOT_FOUND })
            .layer(axum::middleware::from_fn_with_state(st.clone(), record))
            .with_state(st);
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    Web { ports, log, gate }
}

type St = (
    usize,
    Vec<u16>,
    Arc<Mutex<Log>>,
    Duration,
    tokio::sync::watch::Sender<bool>,
);

async fn record(
    State((host, _, log, delay, gate)): State<St>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    {
        let mut l = log.lock().unwrap();
        l.hits.push(Hit {
            host,
            path: req.uri().path().to_string(),
            at: Instant::now(),
        });
        let e = l.in_flight.entry(host).or_default();
        e.0 += 1;
        e.1 = e.1.max(e.0);
    }
    if req.uri().path().starts_with("/p/") {
        let _ = gate.subscribe().wait_for(|open| *open).await;
    }
    tokio::time::sleep(delay).await;
    let res = next.run(req).await;
    log.lock().unwrap().in_flight.entry(host).or_default().0 -= 1;
    res
}

async fn page(
    State((host, ports, _, _, _)): State<St>,
    Path(page): Path<String>,
) -> impl IntoResponse {
    let i: usize = page.trim_end_matches(".html").parse().unwrap_or(0);
    let mut body = format!(
        "<html><head><title>Host {host} page {i}</title></head><body><main><p>Page {i} of host {host}.</p>"
    );
    for j in i + 1..=(i + 3).min(PAGES_PER_HOST - 1) {
        body.push_str(&format!("<a href=\"/p/{j}.html\">next {j}</a> "));
    }
    for k in 1..=2 {
        let port = ports[(host + k) % HOSTS];
        body.push_str(&format!(
            "<a href=\"http://127.0.0.1:{port}/p/{i}.html\">over</a> "
        ));
    }
    body.push_str("</main></body></html>");
    Html(body)
}

/// `trawl crawl SEED --db TARGET FLAGS… --no-summaries --no-sitemaps -q`,
/// running.
fn crawl_process(seed: &str, target: &str, flags: &[&str]) -> Child {
    let mut args = vec!["crawl", seed, "--db", target];
    args.extend(flags);
    args.extend(["--no-summaries", "--no-sitemaps", "-q"]);
    spawn(&args)
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run trawl")
}

async fn wait(child: Child) -> std::process::Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// `trawl crawl` of `web` into `db` up to `pages` pages, quick and quiet,
/// to its end.
async fn small_crawl(web: &Web, db: &str, pages: u32) -> std::process::Output {
    let pages = pages.to_string();
    trawl_async(
        [
            "crawl",
            &web.seed(),
            "--db",
            db,
            "--per-host-rate",
            "0",
            "--max-pages",
            &pages,
            "--no-summaries",
            "--no-sitemaps",
            "-q",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await
}

/// Waits until the server has seen `n` page requests.
async fn until_hits(web: &Web, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while web.hits().len() < n {
        assert!(
            Instant::now() < deadline,
            "the crawl never got to {n} requests"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `sql` counts at least `n` (a count that fails, on tables a
/// crawl has not made yet, is 0).
async fn until_count(db: &TestDb, sql: &'static str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let pool = db.sql().await;
    while sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&pool)
        .await
        .unwrap_or(0)
        < n
    {
        assert!(Instant::now() < deadline, "never {n}: {sql}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (pid, pages fetched, finished) of every process, in start order.
async fn processes(db: &TestDb) -> Vec<(i64, i64, bool)> {
    use sqlx::Row;
    sqlx::query("SELECT pid, fetched, CASE WHEN finished_at IS NULL THEN 0 ELSE 1 END FROM processes ORDER BY id")
        .fetch_all(&db.sql().await)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get::<i64, _>(2) == 1))
        .collect()
}

async fn count(db: &TestDb, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&db.sql().await)
        .await
        .unwrap()
}

/// As [`count`], on a connection of its own (after the server ended the
/// pool's).
async fn count_afresh(db: &TestDb, sql: &'static str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(db.target()).await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
}

#[tokio::test]
async fn three_processes_crawl_one_site_together_politely_and_fetch_nothing_twice() {
    let web = web(Duration::from_millis(5)).await;
    let db = TestDb::postgres();
    let target = db.target().to_string();
    let first = crawl_process(
        &web.seed(),
        &target,
        &[
            "--concurrency",
            "8",
            "--per-host-rate",
            "5",
            "--per-host-concurrency",
            "1",
        ],
    );
    until_hits(&web, 1).await;
    let second = spawn(&["join", "--db", &target, "--concurrency", "8", "-q"]);
    let third = spawn(&["join", "--db", &target, "--concurrency", "8", "-q"]);
    for child in [first, second, third] {
        let o = wait(child).await;
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }

    assert_eq!(web.repeats(), BTreeMap::new(), "URLs fetched twice");
    assert_eq!(web.hits().len(), HOSTS * PAGES_PER_HOST);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM pages").await,
        (HOSTS * PAGES_PER_HOST) as i64
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM urls WHERE state <> 'done'").await,
        0
    );
    // Politeness held across processes: one request at a time per host,
    // 200 ms apart (no run of requests to a host shorter than that by
    // more than the jitter of two arrivals on a loaded machine; a skipped
    // wait falls short by the whole interval).
    assert_eq!(web.max_in_flight(), 1);
    let short = web.worst_deficit(Duration::from_millis(200));
    assert!(
        short <= Duration::from_millis(50),
        "requests to a host {short:?} closer than 200 ms apart each"
    );
    // Every process did a share, and each recorded its end.
    let procs = processes(&db).await;
    assert_eq!(procs.len(), 3, "{procs:?}");
    assert!(
        procs
            .iter()
            .all(|(_, fetched, finished)| *fetched > 0 && *finished),
        "{procs:?}"
    );
    assert_eq!(
        procs.iter().map(|p| p.1).sum::<i64>(),
        (HOSTS * PAGES_PER_HOST) as i64
    );
    // The same final state for all: finished, no lease left.
    let o = trawl_async(vec!["status".into(), "--db".into(), target.clone()]).await;
    let status = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(status.contains("(finished)"), "{status}");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM hosts WHERE lease_owner IS NOT NULL"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_killed_process_loses_nothing_and_the_others_finish_its_hosts() {
    let web = web(Duration::from_millis(20)).await;
    let db = TestDb::postgres();
    let target = db.target().to_string();
    let seed = web.seed();
    let first = crawl_process(
        &seed,
        &target,
        &[
            "--concurrency",
            "4",
            "--per-host-rate",
            "10",
            "--per-host-concurrency",
            "2",
            "--lease-ttl",
            "3",
        ],
    );
    until_hits(&web, 1).await;
    let mut doomed = spawn(&["join", "--db", &target, "--concurrency", "4", "-q"]);
    let third = spawn(&["join", "--db", &target, "--concurrency", "4", "-q"]);
    // Kill the second once it has stored pages of the hosts it holds
    // (only a host's holder fetches from it).
    let deadline = Instant::now() + Duration::from_secs(120);
    let pool = db.sql().await;
    loop {
        let stored: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pages p JOIN urls u ON u.id = p.url_id \
             JOIN hosts h ON h.origin = u.origin JOIN processes r ON r.id = h.lease_owner \
             WHERE r.pid = $1",
        )
        .bind(i64::from(doomed.id()))
        .fetch_one(&pool)
        .await
        .unwrap();
        if stored > 0 {
            break;
        }
        let procs = processes(&db).await;
        if count(
            &db,
            "SELECT COUNT(*) FROM urls WHERE state IN ('queued', 'leased')",
        )
        .await
            == 0
        {
            panic!("the crawl ended before the process to kill had fetched: {procs:?}");
        }
        assert!(
            Instant::now() < deadline,
            "the second process never fetched"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    for child in [first, third] {
        let o = wait(child).await;
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }

    // Everything was fetched and stored once; only what the killed
    // process had in flight or not yet committed was asked again.
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM pages").await,
        (HOSTS * PAGES_PER_HOST) as i64
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM urls WHERE state <> 'done'").await,
        0
    );
    let again: usize = web.repeats().values().map(|n| n - 1).sum();
    let bound = 4 + trawl::crawl::uncommitted_bound(4);
    assert!(again <= bound, "{again} fetched again: {:?}", web.repeats());
    assert!(web.max_in_flight() <= 2, "{} at once", web.max_in_flight());
}

#[tokio::test]
async fn join_says_what_it_cannot_join() {
    // An SQLite file: one process.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.db").display().to_string();
    let o = trawl_async(["join", "--db", &file].map(String::from).to_vec()).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is an SQLite file"), "{}", stderr(&o));
    assert!(!dir.path().join("t.db").exists());
    // A database without a crawl.
    let db = TestDb::postgres();
    // A URL that names no database (it would be the server's default).
    let server = &db.target()[..db.target().rfind('/').unwrap() + 1];
    for cmd in ["status", "join"] {
        let o = trawl_async([cmd, "--db", server].map(String::from).to_vec()).await;
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("names no database"), "{}", stderr(&o));
    }
    let o = trawl_async(["join", "--db", db.target()].map(String::from).to_vec()).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("holds no crawl"), "{}", stderr(&o));
    // A finished crawl: nothing to do, and that is no failure.
    let web = web(Duration::ZERO).await;
    let o = small_crawl(&web, db.target(), 5).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = trawl_async(["join", "--db", db.target()].map(String::from).to_vec()).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("is finished"), "{}", stderr(&o));
}

#[tokio::test]
async fn the_page_budget_holds_for_the_whole_crawl() {
    let web = web(Duration::from_millis(5)).await;
    // Pages are held until every process holds hosts: each then has URLs
    // leased within the budget, so each fetches, however fast the others.
    web.close();
    let db = TestDb::postgres();
    let target = db.target().to_string();
    let more: Vec<String> = (1..7).map(|h| web.seed_of(h)).collect();
    let mut flags = vec![
        "--concurrency",
        "2",
        "--per-host-rate",
        "20",
        "--max-pages",
        "60",
    ];
    flags.extend(more.iter().map(String::as_str));
    let first = crawl_process(&web.seed(), &target, &flags);
    until_hits(&web, 1).await;
    let second = spawn(&["join", "--db", &target, "-q"]);
    let third = spawn(&["join", "--db", &target, "-q"]);
    until_count(
        &db,
        "SELECT COUNT(DISTINCT lease_owner) FROM hosts WHERE lease_owner IS NOT NULL",
        3,
    )
    .await;
    web.open();
    for child in [first, second, third] {
        let o = wait(child).await;
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    assert_eq!(web.hits().len(), 60);
    assert_eq!(web.repeats(), BTreeMap::new());
    assert_eq!(count(&db, "SELECT COUNT(*) FROM pages").await, 60);
    // No process leased the whole budget: the ones that joined had a
    // share of it.
    let procs = processes(&db).await;
    assert!(procs.iter().all(|p| p.1 > 0), "{procs:?}");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM urls WHERE state IN ('queued', 'leased')"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn losing_the_database_mid_crawl_stops_with_its_reason_and_resume_finishes() {
    let web = web(Duration::from_millis(5)).await;
    let db = TestDb::postgres();
    let target = db.target().to_string();
    let seed = web.seed();
    let child = crawl_process(
        &seed,
        &target,
        &["--concurrency", "4", "--per-host-rate", "10"],
    );
    until_count(&db, "SELECT COUNT(*) FROM pages", 20).await;
    // The server ends every connection to the crawl's database (as a
    // restart or an administrator would).
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&db.sql().await)
    .await
    .unwrap();
    let o = wait(child).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("lost the connection to"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(&format!("trawl resume --db {target}")),
        "{}",
        stderr(&o)
    );
    let stored = count_afresh(&db, "SELECT COUNT(*) FROM pages").await;
    assert!(stored >= 20);

    let o = trawl_async(["resume", "--db", &target, "-q"].map(String::from).to_vec()).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        count_afresh(&db, "SELECT COUNT(*) FROM pages").await,
        (HOSTS * PAGES_PER_HOST) as i64
    );
    // What was committed was not asked again; only what was in flight.
    let again: usize = web.repeats().values().map(|n| n - 1).sum();
    let bound = 4 + trawl::crawl::uncommitted_bound(4);
    assert!(again <= bound, "{again} fetched again: {:?}", web.repeats());
}

#[tokio::test]
async fn a_postgres_database_of_a_newer_trawl_is_refused_untouched() {
    let web = web(Duration::ZERO).await;
    let db = TestDb::postgres();
    let target = db.target().to_string();
    let o = small_crawl(&web, &target, 3).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (999, 'from the future', TRUE, '\\x00'::bytea, 0)",
    )
    .execute(&db.sql().await)
    .await
    .unwrap();
    for cmd in [
        vec!["status", "--db", &target],
        vec!["resume", "--db", &target],
        vec!["join", "--db", &target],
    ] {
        let o = trawl_async(cmd.iter().map(|s| s.to_string()).collect()).await;
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("written by a newer trawl"),
            "{cmd:?}: {}",
            stderr(&o)
        );
    }
    assert_eq!(count_afresh(&db, "SELECT COUNT(*) FROM pages").await, 3);
}

#[tokio::test]
async fn a_crawl_goes_over_tls_when_the_url_asks_for_it() {
    // The server on loopback offers TLS (Debian's default snakeoil
    // certificate); without `sslmode` trawl does not use it there.
    let web = web(Duration::ZERO).await;
    let db = TestDb::postgres();
    let url = format!("{}?sslmode=require", db.target());
    let o = small_crawl(&web, &url, 5).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM pages").await, 5);
    let o = trawl_async(["status", "--db", &url].map(String::from).to_vec()).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[tokio::test]
async fn a_crawl_on_postgresql_has_its_tables_analyzed_as_they_fill() {
    // A crawl starts on empty tables; without statistics the planner
    // scanned `urls` for each batch's list of ids.
    let web = web(Duration::ZERO).await;
    let db = TestDb::postgres();
    let o = wait(crawl_process(
        &web.seed(),
        db.target(),
        &["--per-host-rate", "0", "--max-pages", "150"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM pages").await, 150);
    // (The server records the ANALYZE when the session's statistics are
    // flushed, at the latest when it ends.)
    until_count(
        &db,
        "SELECT COUNT(*) FROM pg_stat_user_tables WHERE relname IN ('urls', 'hosts') \
         AND last_analyze IS NOT NULL",
        2,
    )
    .await;
}

#[tokio::test]
async fn a_crawl_reaches_a_loopback_server_without_tls_unless_asked() {
    // The server offers TLS; taken on loopback, each large statement
    // waited for a delayed ACK.
    let web = web(Duration::ZERO).await;
    web.close();
    let db = TestDb::postgres();
    let child = crawl_process(&web.seed(), db.target(), &["--per-host-rate", "0"]);
    // Its first page is held: the process is connected now.
    until_hits(&web, 1).await;
    until_count(
        &db,
        "SELECT COUNT(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'trawl'",
        1,
    )
    .await;
    let over_tls = count(
        &db,
        "SELECT COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
         WHERE a.datname = current_database() AND a.application_name = 'trawl' AND s.ssl",
    )
    .await;
    web.open();
    let o = wait(child).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(over_tls, 0);
}

#[tokio::test]
async fn long_text_is_compressed_with_lz4_where_the_server_has_it() {
    let web = web(Duration::ZERO).await;
    let db = TestDb::postgres();
    let o = small_crawl(&web, db.target(), 3).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let has_lz4 = count(
        &db,
        "SELECT COUNT(*) FROM pg_settings \
         WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)",
    )
    .await
        == 1;
    let lz4_columns = count(
        &db,
        "SELECT COUNT(*) FROM pg_attribute WHERE attcompression = 'l' AND \
         ((attrelid = 'pages'::regclass AND attname IN ('text', 'markdown', 'text_kinds')) \
          OR (attrelid = 'summaries'::regclass AND attname = 'summary') \
          OR (attrelid = 'summary_parts'::regclass AND attname = 'summary') \
          OR (attrelid = 'page_versions'::regclass AND attname = 'text'))",
    )
    .await;
    assert_eq!(lz4_columns, if has_lz4 { 6 } else { 0 });
}
