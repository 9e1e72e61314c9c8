//! End-to-end crawls of the fixture sites through the library API.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sqlx::Row;
use trawl::config::CrawlConfig;
use trawl::crawl::{self, Controls, CrawlOutcome, CrawlReport};
use trawl::progress::Counters;
use trawl::store::Store;

use crate::util::{self, TestDb};

pub struct Crawled {
    pub store: Store,
    pub report: CrawlReport,
    /// The crawl's database (for assertions: [`TestDb::sql`]).
    pub db: TestDb,
    /// The test's directory, for other files.
    pub dir: tempfile::TempDir,
}

/// Columns stored as booleans (0/1 in SQLite, BOOLEAN in PostgreSQL).
const BOOLEAN_COLUMNS: [&str; 2] = ["truncated", "noindex"];

impl Crawled {
    /// Stored pages (sitemaps left out) as (url, status, depth).
    pub async fn pages(&self) -> BTreeMap<String, (i64, i64)> {
        sqlx::query(
            "SELECT u.url, p.status, u.depth FROM pages p JOIN urls u ON u.id = p.url_id WHERE NOT u.sitemap",
        )
            .fetch_all(&self.db.sql().await)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<String, _>(0), (r.get(1), r.get(2))))
            .collect()
    }

    /// URLs in `state` with their reasons.
    pub async fn urls_in(&self, state: &str) -> BTreeMap<String, String> {
        sqlx::query("SELECT url, COALESCE(reason, '') FROM urls WHERE state = $1")
            .bind(state)
            .fetch_all(&self.db.sql().await)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
            .collect()
    }

    /// A column of `url`'s page (or of its `page_checks` row: a recrawl's
    /// check time, schedule and removal); a boolean as "1" or "0".
    pub async fn page_field(&self, url: &str, field: &str) -> Option<String> {
        let value = if BOOLEAN_COLUMNS.contains(&field) {
            format!("CASE WHEN {field} THEN '1' WHEN NOT {field} THEN '0' END")
        } else {
            format!("CAST({field} AS TEXT)")
        };
        let sql = format!(
            "SELECT {value} FROM pages p JOIN urls u ON u.id = p.url_id \
             LEFT JOIN page_checks c ON c.url_id = p.url_id WHERE u.url = $1"
        );
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(url)
            .fetch_one(&self.db.sql().await)
            .await
            .unwrap()
    }
}

/// Test defaults: no rate limit, so tests are quick.
pub fn config(seeds: &[String]) -> CrawlConfig {
    let mut cfg = CrawlConfig::new(seeds).unwrap();
    cfg.politeness.per_host_rate = 0.0;
    cfg.concurrency = 8;
    // Sitemaps have their own tests; here they would add a request per host.
    cfg.politeness.sitemaps = false;
    cfg
}

pub async fn run(cfg: CrawlConfig) -> Crawled {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path(), "t.db");
    run_in(cfg, dir, db).await
}

/// [`run`] into `db`, in the test directory `dir`.
pub async fn run_in(cfg: CrawlConfig, dir: tempfile::TempDir, db: TestDb) -> Crawled {
    let store = Store::open(db.target()).await.unwrap();
    let report = crawl::start(
        &store,
        cfg,
        Controls::default(),
        Arc::new(Counters::default()),
    )
    .await
    .unwrap();
    Crawled {
        store,
        report,
        db,
        dir,
    }
}

/// Resumes the crawl in `store` with its settings changed by `adjust`.
pub async fn resume(store: &Store, adjust: impl FnOnce(&mut CrawlConfig)) -> CrawlReport {
    crawl::resume(
        store,
        adjust,
        Controls::default(),
        Arc::new(Counters::default()),
    )
    .await
    .unwrap()
}

/// The reason recorded for `url` in a map from [`Crawled::urls_in`].
fn reason<'a>(urls: &'a BTreeMap<String, String>, url: &str) -> Option<&'a str> {
    urls.get(url).map(String::as_str)
}

fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

#[tokio::test]
async fn crawls_the_fixture_site_across_two_hosts() {
    let (a, b) = util::two_hosts().await;
    let mut cfg = config(&[a.url("/")]);
    cfg.scope.allow_hosts = vec!["localhost".into()];
    // The linked PDF too (by default, links to assets are not fetched).
    cfg.scope.fetch_assets = true;
    let c = run(cfg).await;
    assert_eq!(c.report.outcome, CrawlOutcome::Finished);

    let pb = b.addr.port();
    let other = |p: &str| format!("http://localhost:{pb}{p}");
    let pages = c.pages().await;
    let want: BTreeMap<String, (i64, i64)> = [
        (a.url("/"), (200, 0)),
        (a.url("/about.html"), (200, 1)),
        (a.url("/docs/"), (200, 1)),
        (a.url("/redirect/start"), (301, 1)),
        (a.url("/redirect/middle"), (302, 1)),
        (a.url("/moved.html"), (200, 1)),
        (a.url("/redirect/away"), (301, 1)),
        (a.url("/loop/a"), (302, 1)),
        (a.url("/loop/b"), (302, 1)),
        (a.url("/missing.html"), (404, 1)),
        (a.url("/files/report.pdf"), (200, 1)),
        (a.url("/index.html"), (200, 2)),
        (a.url("/docs/sub/page.html"), (200, 2)),
        (a.url("/docs/sub/deeper.html"), (200, 3)),
        (other("/"), (200, 1)),
        (other("/x.html"), (200, 2)),
    ]
    .into_iter()
    .collect();
    assert_eq!(pages, want);

    // Every canonical URL was requested once, whatever its spelling.
    a.assert_no_duplicates();
    b.assert_no_duplicates();
    assert_eq!(a.requests().len(), 14);
    assert_eq!(b.requests().len(), 2);

    let failed = c.urls_in("failed").await;
    assert_eq!(reason(&failed, &a.url("/missing.html")), Some("http_404"));
    assert_eq!(reason(&failed, &a.url("/loop/b")), Some("redirect_loop"));
    assert_eq!(failed.len(), 2, "{failed:?}");

    let skipped = c.urls_in("skipped").await;
    let want_skipped: BTreeMap<String, String> = [
        (
            "http://example.invalid/elsewhere".to_string(),
            "out_of_scope".to_string(),
        ),
        (
            "http://example.invalid/away".to_string(),
            "out_of_scope".to_string(),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(skipped, want_skipped);
    assert_eq!(c.urls_in("queued").await.len(), 0);
    assert_eq!(c.urls_in("leased").await.len(), 0);

    // One attempt per fetched URL, none for skipped ones.
    let attempts: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, attempts FROM urls GROUP BY state, attempts ORDER BY state")
            .fetch_all(&c.db.sql().await)
            .await
            .unwrap();
    assert_eq!(
        attempts,
        vec![
            ("done".into(), 1),
            ("failed".into(), 1),
            ("skipped".into(), 0)
        ]
    );
}

#[tokio::test]
async fn records_page_fields_and_redirect_chains() {
    let (a, _b) = util::two_hosts().await;
    let mut cfg = config(&[a.url("/")]);
    cfg.scope.fetch_assets = true;
    let c = run(cfg).await;

    assert_eq!(
        c.page_field(&a.url("/"), "title").await.as_deref(),
        Some("Fixture Home")
    );
    assert_eq!(
        c.page_field(&a.url("/"), "description").await.as_deref(),
        Some("The home page of the fixture site.")
    );
    assert_eq!(
        c.page_field(&a.url("/"), "canonical").await,
        Some(a.url("/"))
    );
    assert_eq!(
        c.page_field(&a.url("/"), "language").await.as_deref(),
        Some("en")
    );
    assert_eq!(
        c.page_field(&a.url("/about.html"), "title")
            .await
            .as_deref(),
        Some("About the fixture")
    );
    assert_eq!(
        c.page_field(&a.url("/about.html"), "language")
            .await
            .as_deref(),
        Some("en-GB")
    );
    let text = c.page_field(&a.url("/about.html"), "text").await.unwrap();
    assert!(text.contains("We crawl politely."), "{text}");
    assert!(
        !text.contains("not text"),
        "script content leaked into text: {text}"
    );
    assert_eq!(
        c.page_field(&a.url("/docs/"), "base_href").await,
        Some(a.url("/docs/sub/"))
    );
    let hash = c.page_field(&a.url("/"), "content_hash").await.unwrap();
    assert_eq!(hash.len(), 64);

    // The redirect chain: each hop records where it pointed and where the
    // chain ended.
    assert_eq!(
        c.page_field(&a.url("/redirect/start"), "redirect_to").await,
        Some(a.url("/redirect/middle"))
    );
    assert_eq!(
        c.page_field(&a.url("/redirect/start"), "final_url").await,
        Some(a.url("/moved.html"))
    );
    assert_eq!(
        c.page_field(&a.url("/redirect/middle"), "final_url").await,
        Some(a.url("/moved.html"))
    );
    assert_eq!(
        c.page_field(&a.url("/moved.html"), "title")
            .await
            .as_deref(),
        Some("Moved Here")
    );

    // Non-HTML: recorded, not parsed.
    let pdf = a.url("/files/report.pdf");
    assert_eq!(
        c.page_field(&pdf, "content_type").await.as_deref(),
        Some("application/pdf")
    );
    assert_eq!(c.page_field(&pdf, "title").await, None);
    assert_eq!(c.page_field(&pdf, "size").await.as_deref(), Some("47"));

    // Links keep anchor text and nofollow.
    let row = sqlx::query(
        "SELECT l.anchor, CASE WHEN l.nofollow THEN 1 ELSE 0 END FROM links l JOIN urls t ON t.id = l.to_id JOIN urls f ON f.id = l.from_id \
         WHERE f.url = $1 AND t.url = $2",
    )
    .bind(a.url("/"))
    .bind(&pdf)
    .fetch_one(&c.db.sql().await)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>(0), "Report");
    assert_eq!(row.get::<i64, _>(1), 1);

    // Without --allow-host, the other host is out of scope.
    let skipped = c.urls_in("skipped").await;
    let other = format!("http://localhost:{}/", _b.addr.port());
    assert_eq!(reason(&skipped, &other), Some("out_of_scope"));
    assert!(_b.requests().is_empty());
}

#[tokio::test]
async fn max_depth_stops_at_the_limit_and_records_why() {
    let (a, _b) = util::two_hosts().await;
    let mut cfg = config(&[a.url("/")]);
    cfg.limits.max_depth = Some(1);
    let c = run(cfg).await;
    let pages = c.pages().await;
    assert!(pages.values().all(|&(_, depth)| depth <= 1), "{pages:?}");
    let skipped = c.urls_in("skipped").await;
    assert_eq!(
        reason(&skipped, &a.url("/docs/sub/page.html")),
        Some("max_depth")
    );
    assert_eq!(reason(&skipped, &a.url("/index.html")), Some("max_depth"));
    assert!(!a.requests().iter().any(|r| r.starts_with("/docs/sub/")));
    // Redirect hops keep the depth of the URL that redirected.
    assert_eq!(pages.get(&a.url("/moved.html")), Some(&(200, 1)));
}

#[tokio::test]
async fn max_pages_caps_fetches_and_records_the_rest() {
    let (a, _b) = util::two_hosts().await;
    let mut cfg = config(&[a.url("/gen/1")]);
    cfg.limits.max_pages = Some(25);
    let c = run(cfg).await;
    assert_eq!(a.requests().len(), 25);
    assert_eq!(c.pages().await.len(), 25);
    assert_eq!(c.report.fetched, 25);
    let skipped = c.urls_in("skipped").await;
    assert!(!skipped.is_empty());
    assert!(skipped.values().all(|r| r == "max_pages"), "{skipped:?}");
    assert_eq!(
        c.urls_in("queued").await.len() + c.urls_in("leased").await.len(),
        0
    );
}

#[tokio::test]
async fn include_and_exclude_filter_discovered_urls() {
    let (a, _b) = util::two_hosts().await;
    let mut cfg = config(&[a.url("/")]);
    cfg.scope.exclude = vec![r"\.pdf$".into()];
    cfg.scope.include = vec!["/docs/".into(), "/about".into(), "/index".into()];
    let c = run(cfg).await;
    let skipped = c.urls_in("skipped").await;
    assert_eq!(
        reason(&skipped, &a.url("/files/report.pdf")),
        Some("excluded")
    );
    assert_eq!(
        reason(&skipped, &a.url("/missing.html")),
        Some("not_included")
    );
    assert_eq!(
        reason(&skipped, &a.url("/redirect/start")),
        Some("not_included")
    );
    let fetched: BTreeSet<String> = a.requests().into_iter().collect();
    assert_eq!(
        fetched,
        set(&[
            "/".into(),
            "/about.html".into(),
            "/docs/".into(),
            "/docs/sub/page.html".into(),
            "/docs/sub/deeper.html".into(),
            "/index.html".into(),
        ])
    );
}

#[tokio::test]
async fn too_many_redirects_is_recorded() {
    let (a, _b) = util::two_hosts().await;
    let mut cfg = config(&[a.url("/hop/0")]);
    cfg.limits.max_redirects = 3;
    let c = run(cfg).await;
    // /hop/0 is the seed; hops 1..=3 are followed; /hop/3's redirect is one too many.
    assert_eq!(a.requests(), vec!["/hop/0", "/hop/1", "/hop/2", "/hop/3"]);
    let failed = c.urls_in("failed").await;
    assert_eq!(
        reason(&failed, &a.url("/hop/3")),
        Some("too_many_redirects")
    );
}

#[tokio::test]
async fn the_wal_is_checkpointed_and_truncated_when_the_crawl_ends() {
    // SQLite file behaviour
    let (a, _b) = util::two_hosts().await;
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path(), "t.db");
    let c = run_in(config(&[a.url("/gen/1")]), dir, db).await;
    assert_eq!(c.pages().await.len() as u64, util::GEN_PAGES);
    let wal = c.dir.path().join("t.db-wal");
    let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(len, 0, "WAL left at {len} bytes");
}

#[tokio::test]
async fn a_generated_site_is_crawled_completely_once() {
    let (a, _b) = util::two_hosts().await;
    let mut cfg = config(&[a.url("/gen/1")]);
    cfg.concurrency = 16;
    cfg.politeness.per_host_concurrency = 8;
    let c = run(cfg).await;
    assert_eq!(c.pages().await.len() as u64, util::GEN_PAGES);
    assert_eq!(a.requests().len() as u64, util::GEN_PAGES);
    a.assert_no_duplicates();
    assert_eq!(c.report.failed, 0);
}

#[tokio::test]
async fn per_host_rate_spaces_requests() {
    let (a, _b) = util::two_hosts().await;
    let mut cfg = config(&[a.url("/gen/1")]);
    cfg.limits.max_pages = Some(6);
    cfg.politeness.per_host_rate = 10.0;
    cfg.politeness.per_host_concurrency = 4;
    let started = std::time::Instant::now();
    run(cfg).await;
    // Six request starts, at least 100 ms apart: at least 500 ms in all.
    // (A lower bound only: a loaded machine can only make it slower.)
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_second_crawl_into_the_same_database_is_refused() {
    let (a, _b) = util::two_hosts().await;
    let mut cfg = config(&[a.url("/gen/1")]);
    cfg.limits.max_pages = Some(2);
    let c = run(cfg.clone()).await;
    let err = crawl::start(
        &c.store,
        cfg,
        Controls::default(),
        Arc::new(Counters::default()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("trawl resume"), "{err}");
}

#[tokio::test]
async fn resume_with_a_higher_budget_continues_without_refetching() {
    let (a, _b) = util::two_hosts().await;
    let mut cfg = config(&[a.url("/gen/1")]);
    cfg.limits.max_pages = Some(30);
    let c = run(cfg).await;
    assert_eq!(a.requests().len(), 30);
    let report = resume(&c.store, |cfg| cfg.limits.max_pages = None).await;
    assert_eq!(report.outcome, CrawlOutcome::Finished);
    assert_eq!(c.pages().await.len() as u64, util::GEN_PAGES);
    a.assert_no_duplicates();
    assert_eq!(a.requests().len() as u64, util::GEN_PAGES);
}

#[tokio::test]
async fn stop_returns_unfinished_work_to_the_queue_and_resume_finishes_it() {
    let (a, _b) = util::two_hosts().await;
    let mut cfg = config(&[a.url("/gen/1")]);
    cfg.politeness.per_host_rate = 20.0;
    cfg.politeness.per_host_concurrency = 1;
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path(), "t.db");
    let store = Store::open(db.target()).await.unwrap();
    let controls = Controls::default();
    let stop = controls.stop.clone();
    let log = a.log.clone();
    tokio::spawn(async move {
        // Stop once the crawl is under way, however slow the machine.
        while log.lock().unwrap().len() < 5 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        stop.cancel();
    });
    let report = crawl::start(&store, cfg, controls, Arc::new(Counters::default()))
        .await
        .unwrap();
    assert_eq!(report.outcome, CrawlOutcome::Interrupted);
    let sql = db.sql().await;
    let leased: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM urls WHERE state = 'leased'")
        .fetch_one(&sql)
        .await
        .unwrap();
    assert_eq!(leased, 0, "a stopped crawl leaves no leases");
    let state: String = sqlx::query_scalar("SELECT state FROM crawls")
        .fetch_one(&sql)
        .await
        .unwrap();
    assert_eq!(state, "stopped");
    let before = a.requests().len();
    assert!(before > 0 && (before as u64) < util::GEN_PAGES);

    let report = resume(&store, |c| c.politeness.per_host_rate = 0.0).await;
    assert_eq!(report.outcome, CrawlOutcome::Finished);
    assert_eq!(report.pages_stored as u64, util::GEN_PAGES);
    a.assert_no_duplicates();
}

#[tokio::test]
async fn status_shows_each_process_that_worked_on_the_crawl() {
    let (a, _b) = util::two_hosts().await;
    let mut cfg = config(&[a.url("/gen/1")]);
    cfg.limits.max_pages = Some(5);
    let c = run(cfg).await;
    resume(&c.store, |cfg| cfg.limits.max_pages = Some(8)).await;
    let st = trawl::status::collect(&c.store).await.unwrap();
    assert_eq!(st.processes.len(), 2, "one per run");
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    for (p, run) in st.processes.iter().zip(&st.runs) {
        assert_eq!(p.run_id, run.id);
        assert_eq!(p.state, "finished");
        assert_eq!(p.pid, i64::from(std::process::id()));
        assert_eq!(p.hostname, host);
        assert_eq!(p.concurrency, 8);
        assert!(p.finished_at.is_some());
        assert_eq!(p.hosts, 0, "a finished process has no hosts");
    }
    assert_eq!(st.processes[0].fetched, 5);
    assert_eq!(st.processes[1].fetched, 3);

    // A process that recorded no end: running while the database is held
    // and its heartbeat is fresh, lost once the heartbeat is 30 s old.
    let now = trawl::util::now_ms();
    let sql = c.db.sql().await;
    let set = |beat: i64| {
        sqlx::query(
            "UPDATE processes SET finished_at = NULL, heartbeat_at = $1 WHERE id = (SELECT MAX(id) FROM processes)",
        )
        .bind(beat)
        .execute(&sql)
    };
    set(now).await.unwrap();
    let st = trawl::status::collect(&c.store).await.unwrap();
    assert_eq!(st.processes[1].state, "running");
    assert!(st.to_text().contains("running"), "{}", st.to_text());
    set(now - 31_000).await.unwrap();
    let st = trawl::status::collect(&c.store).await.unwrap();
    assert_eq!(st.processes[1].state, "lost");
    // With a fresh heartbeat, but a pid of this machine that is gone (a
    // kill -9 and a resume within 30 s): lost too.
    set(now).await.unwrap();
    sqlx::query("UPDATE processes SET pid = 999999999 WHERE id = (SELECT MAX(id) FROM processes)")
        .execute(&sql)
        .await
        .unwrap();
    let st = trawl::status::collect(&c.store).await.unwrap();
    assert_eq!(st.processes[1].state, "lost");
    assert_eq!(st.processes[0].state, "finished");
}
