//! Recrawls: conditional requests, change records, page history, removed
//! and new pages, due revisits on a controlled clock, summaries redone only
//! for changed content, and exports of the changes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::Row;
use trawl::crawl::{self, Controls, RecrawlOptions};
use trawl::export::{self, ExportOptions, Format, What};
use trawl::progress::Counters;
use trawl::store::Store;

use crate::crawl::{Crawled, config, run};
use crate::util::{TestDb, listener};

/// A site whose pages the test edits between runs. With `validators`, it
/// sends an ETag (and Last-Modified) and answers 304 to a request that
/// matches; without, it ignores conditional requests and always sends 200.
struct Site {
    port: u16,
    pages: Arc<Mutex<BTreeMap<String, String>>>,
    log: Arc<Mutex<Vec<String>>>,
    not_modified: Arc<AtomicUsize>,
    /// Added to every ETag (a server whose tags change while the content
    /// does not, e.g. after a redeploy); a request with the body's tag of
    /// any epoch still gets its 304, which carries the current tag.
    epoch: Arc<AtomicUsize>,
}

impl Site {
    async fn start(validators: bool) -> Site {
        let l = listener().await;
        let port = l.local_addr().unwrap().port();
        let pages: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let not_modified = Arc::new(AtomicUsize::new(0));
        let epoch = Arc::new(AtomicUsize::new(0));
        let (p, lg, nm, ep) = (
            pages.clone(),
            log.clone(),
            not_modified.clone(),
            epoch.clone(),
        );
        let app = Router::new().fallback(move |req: axum::extract::Request| {
            let (pages, log, nm, ep) = (p.clone(), lg.clone(), nm.clone(), ep.clone());
            async move {
                let path = req.uri().path().to_string();
                log.lock().unwrap().push(path.clone());
                let Some(body) = pages.lock().unwrap().get(&path).cloned() else {
                    return StatusCode::NOT_FOUND.into_response();
                };
                // A redirect, as the test set it (see `Site::redirect`).
                if let Some(to) = body.strip_prefix("REDIRECT ") {
                    return (StatusCode::FOUND, [(header::LOCATION, to.to_string())])
                        .into_response();
                }
                if !validators {
                    return html(body, None);
                }
                let base = etag(&body);
                let tag = match ep.load(Ordering::SeqCst) {
                    0 => base.clone(),
                    n => format!("{}-{n}\"", base.trim_end_matches('"')),
                };
                let asked = req
                    .headers()
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| {
                        v.trim_matches('"')
                            .split('-')
                            .next()
                            .unwrap_or("")
                            .to_string()
                    });
                if asked.as_deref() == Some(base.trim_matches('"')) {
                    nm.fetch_add(1, Ordering::SeqCst);
                    return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
                }
                html(body, Some(tag))
            }
        });
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Site {
            port,
            pages,
            log,
            not_modified,
            epoch,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `path` answers `302 Location: to`, with an empty body.
    fn redirect(&self, path: &str, to: &str) {
        self.pages
            .lock()
            .unwrap()
            .insert(path.to_string(), format!("REDIRECT {to}"));
    }

    fn set(&self, path: &str, title: &str, links: &[&str]) {
        let links: String = links
            .iter()
            .map(|l| format!("<a href=\"{l}\">{l}</a> "))
            .collect();
        let body = format!(
            "<html><head><title>{title}</title></head><body><h1>{title}</h1>\
             <p>{title} is a page about {title}. It has sentences about {title} to summarize.</p>\
             <p>{links}</p></body></html>"
        );
        self.pages.lock().unwrap().insert(path.into(), body);
    }

    /// `path` answers `body` as it is.
    fn raw(&self, path: &str, body: String) {
        self.pages.lock().unwrap().insert(path.into(), body);
    }

    fn remove(&self, path: &str) {
        self.pages.lock().unwrap().remove(path);
    }

    /// Page requests since the last call (robots.txt left out).
    fn take_requests(&self) -> Vec<String> {
        let mut log = self.log.lock().unwrap();
        let mut out: Vec<String> = log.drain(..).filter(|p| p != "/robots.txt").collect();
        out.sort();
        out
    }

    fn take_not_modified(&self) -> usize {
        self.not_modified.swap(0, Ordering::SeqCst)
    }
}

fn etag(body: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:x}\"", h.finish())
}

fn html(body: String, tag: Option<String>) -> Response {
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    if let Some(tag) = tag {
        r.headers_mut().insert(header::ETAG, tag.parse().unwrap());
        r.headers_mut().insert(
            header::LAST_MODIFIED,
            "Mon, 30 Nov 2026 00:00:00 GMT".parse().unwrap(),
        );
    }
    r
}

/// The test clock's start, in epoch milliseconds.
const T0: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;

async fn recrawl(store: &Store, due_only: bool, now: i64) -> crawl::CrawlReport {
    crawl::recrawl(
        store,
        |_| {},
        RecrawlOptions { due_only, now },
        Controls::default(),
        Arc::new(Counters::default()),
    )
    .await
    .unwrap()
}

/// A four-page site: `/` links to `/a`, `/b` and `/c`.
async fn four_pages(validators: bool) -> (Site, Crawled) {
    let site = Site::start(validators).await;
    site.set("/", "Home", &["/a", "/b", "/c"]);
    site.set("/a", "Alpha", &[]);
    site.set("/b", "Beta", &[]);
    site.set("/c", "Gamma", &[]);
    let c = run(config(&[site.url("/")])).await;
    assert_eq!(c.report.fetched, 4);
    assert_eq!(site.take_requests(), ["/", "/a", "/b", "/c"]);
    (site, c)
}

/// The changes recorded for a run, by path.
async fn changes(site: &Site, db: &TestDb, run: i64) -> BTreeMap<String, String> {
    sqlx::query("SELECT u.url, c.change FROM page_changes c JOIN urls u ON u.id = c.url_id WHERE c.run_id = $1")
        .bind(run)
        .fetch_all(&db.sql().await)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let url: String = r.get(0);
            (url.replace(&site.url(""), ""), r.get(1))
        })
        .collect()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&db.sql().await)
        .await
        .unwrap()
}

fn map(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn conditional_recrawl_records_unchanged_changed_removed_and_new_pages() {
    let (site, c) = four_pages(true).await;
    let summaries_before = count(&c.db, "SELECT COUNT(*) FROM summaries").await;
    assert_eq!(summaries_before, 4);
    // Between runs: /b changes and links a new page, /c goes away.
    site.set("/b", "Beta two", &["/d"]);
    site.set("/d", "Delta", &[]);
    site.remove("/c");

    let report = recrawl(&c.store, false, T0).await;
    assert_eq!(report.outcome, crawl::CrawlOutcome::Finished);
    assert_eq!(site.take_requests(), ["/", "/a", "/b", "/c", "/d"]);
    // `/` and `/a` answered 304: nothing downloaded for them.
    assert_eq!(site.take_not_modified(), 2);
    let run = c.store.latest_recrawl().await.unwrap().unwrap();
    assert_eq!(
        changes(&site, &c.db, run).await,
        map(&[
            ("/", "unchanged"),
            ("/a", "unchanged"),
            ("/b", "changed"),
            ("/c", "removed"),
            ("/d", "new"),
        ])
    );
    // The changed page keeps its history; the new version is stored.
    let versions = sqlx::query("SELECT v.title, v.run_id FROM page_versions v")
        .fetch_all(&c.db.sql().await)
        .await
        .unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].get::<String, _>(0), "Beta");
    assert_eq!(versions[0].get::<i64, _>(1), run);
    assert_eq!(
        c.page_field(&site.url("/b"), "title").await.as_deref(),
        Some("Beta two")
    );
    // Its links were replaced: /b links only to /d now.
    let b = trawl::canon::fingerprint(&url::Url::parse(&site.url("/b")).unwrap()) as i64;
    let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM links WHERE from_id = $1")
        .bind(b)
        .fetch_one(&c.db.sql().await)
        .await
        .unwrap();
    assert_eq!(links, 1);
    // The removed page stays, marked with the run that saw it go.
    assert_eq!(
        c.page_field(&site.url("/c"), "title").await.as_deref(),
        Some("Gamma")
    );
    assert_eq!(
        c.page_field(&site.url("/c"), "removed_run").await,
        Some(run.to_string())
    );
    // `status` counts it under the answer that removed it.
    let status = trawl::status::collect(&c.store).await.unwrap();
    assert_eq!(
        status.http_status,
        map(&[("200", "4"), ("404", "1")])
            .into_iter()
            .map(|(k, v)| (k, v.parse().unwrap()))
            .collect()
    );
    assert_eq!(status.pages_stored, 5);
    // The unchanged pages were checked at the recrawl's time, not refetched.
    assert_eq!(
        c.page_field(&site.url("/a"), "checked_at").await,
        Some(T0.to_string())
    );
    // Summaries only for the new contents: /b's second version and /d.
    assert_eq!(count(&c.db, "SELECT COUNT(*) FROM summaries").await, 6);
    assert_eq!(
        count(
            &c.db,
            "SELECT COUNT(DISTINCT content_hash) FROM pages WHERE content_hash IN (SELECT content_hash FROM summaries)"
        )
        .await,
        5
    );

    // The runs, as status shows them.
    let runs = c.store.runs().await.unwrap();
    let kinds: Vec<&str> = runs.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["crawl", "recrawl"]);
    let r = &runs[1];
    assert_eq!(
        (r.checked, r.unchanged, r.changed, r.new, r.removed),
        (4, 2, 1, 1, 1)
    );
    assert!(r.finished_at.is_some());

    // A second recrawl with nothing changed: every page answers 304; the
    // page that is gone is still gone, which is no change.
    let _ = recrawl(&c.store, false, T0 + HOUR).await;
    assert_eq!(site.take_requests(), ["/", "/a", "/b", "/c", "/d"]);
    assert_eq!(site.take_not_modified(), 4);
    let run2 = c.store.latest_recrawl().await.unwrap().unwrap();
    assert_eq!(
        changes(&site, &c.db, run2).await,
        map(&[
            ("/", "unchanged"),
            ("/a", "unchanged"),
            ("/b", "unchanged"),
            ("/d", "unchanged"),
        ])
    );
    assert_eq!(count(&c.db, "SELECT COUNT(*) FROM summaries").await, 6);
}

/// The link rows of the page at `path`, by target id, in insertion order.
async fn link_rows(site: &Site, db: &TestDb, path: &str) -> Vec<i64> {
    let from = trawl::canon::fingerprint(&url::Url::parse(&site.url(path)).unwrap()) as i64;
    let order = if db.is_postgres() { "seq" } else { "rowid" };
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT to_id FROM links WHERE from_id = $1 ORDER BY {order}"
    )))
    .bind(from)
    .fetch_all(&db.sql().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_changed_page_that_kept_its_links_keeps_their_rows_and_one_whose_links_changed_replaces_them()
 {
    let (site, c) = four_pages(true).await;
    let home_links = link_rows(&site, &c.db, "/").await;
    assert_eq!(home_links.len(), 3);
    let rows_before = count(&c.db, "SELECT COUNT(*) FROM links").await;
    // The usual edit: new text, the same links. And /a gains a link.
    site.raw(
        "/",
        "<html><head><title>Home</title></head><body><h1>Home</h1><p>Edited since.</p>\
         <p><a href=\"/a\">/a</a> <a href=\"/b\">/b</a> <a href=\"/c\">/c</a> </p></body></html>"
            .to_string(),
    );
    let _ = recrawl(&c.store, false, T0).await;
    let run = c.store.latest_recrawl().await.unwrap().unwrap();
    assert_eq!(changes(&site, &c.db, run).await["/"], "changed");
    assert_eq!(link_rows(&site, &c.db, "/").await, home_links);
    assert_eq!(
        count(&c.db, "SELECT COUNT(*) FROM links").await,
        rows_before
    );
    assert_eq!(count(&c.db, "SELECT COUNT(*) FROM link_changes").await, 0);
    if !c.db.is_postgres() {
        // No page needed its stored links read: SQLite made no index.
        assert_eq!(
            count(
                &c.db,
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'links_from'"
            )
            .await,
            0
        );
    }

    // Links that changed, on a page stored before fingerprints were kept
    // (no fingerprint to compare): read, replaced, and recorded.
    sqlx::query("UPDATE pages SET links_hash = NULL")
        .execute(&c.db.sql().await)
        .await
        .unwrap();
    site.set("/", "Home", &["/a", "/b"]);
    let _ = recrawl(&c.store, false, T0 + HOUR).await;
    let run2 = c.store.latest_recrawl().await.unwrap().unwrap();
    assert_eq!(changes(&site, &c.db, run2).await["/"], "changed");
    assert_eq!(link_rows(&site, &c.db, "/").await, home_links[..2]);
    let gone: Vec<String> = sqlx::query_scalar(
        "SELECT u.url FROM link_changes l JOIN urls u ON u.id = l.to_id \
         WHERE l.run_id = $1 AND l.change = 'gone'",
    )
    .bind(run2)
    .fetch_all(&c.db.sql().await)
    .await
    .unwrap();
    assert_eq!(gone, [site.url("/c")]);
    // The page's fingerprint is kept again: a third look with the same
    // links reads nothing.
    let stored: Option<i64> = sqlx::query_scalar("SELECT links_hash FROM pages WHERE url_id = $1")
        .bind(trawl::canon::fingerprint(&url::Url::parse(&site.url("/")).unwrap()) as i64)
        .fetch_one(&c.db.sql().await)
        .await
        .unwrap();
    assert!(stored.is_some());
}

#[tokio::test]
async fn a_304_with_a_new_etag_keeps_the_page_and_stores_the_new_tag() {
    let (site, c) = four_pages(true).await;
    let a = site.url("/a");
    let first = c.page_field(&a, "etag").await.unwrap();
    // The server's tags change; the content does not.
    site.epoch.store(1, Ordering::SeqCst);
    let _ = recrawl(&c.store, false, T0).await;
    assert_eq!(site.take_not_modified(), 4);
    let run = c.store.latest_recrawl().await.unwrap().unwrap();
    assert!(
        changes(&site, &c.db, run)
            .await
            .values()
            .all(|c| c == "unchanged")
    );
    let second = c.page_field(&a, "etag").await.unwrap();
    assert_eq!(second, format!("{}-1\"", first.trim_end_matches('"')));
    // A 304 that repeats the stored tag leaves it as it is.
    let _ = recrawl(&c.store, false, T0 + HOUR).await;
    assert_eq!(site.take_not_modified(), 4);
    assert_eq!(c.page_field(&a, "etag").await.unwrap(), second);
}

#[tokio::test]
async fn a_server_that_ignores_conditional_requests_is_unchanged_by_hash() {
    let (site, c) = four_pages(false).await;
    site.set("/a", "Alpha two", &[]);
    let _ = recrawl(&c.store, false, T0).await;
    assert_eq!(site.take_requests(), ["/", "/a", "/b", "/c"]);
    assert_eq!(site.take_not_modified(), 0);
    let run = c.store.latest_recrawl().await.unwrap().unwrap();
    assert_eq!(
        changes(&site, &c.db, run).await,
        map(&[
            ("/", "unchanged"),
            ("/a", "changed"),
            ("/b", "unchanged"),
            ("/c", "unchanged"),
        ])
    );
    // Four pages, one new version: five summaries, one per content.
    assert_eq!(count(&c.db, "SELECT COUNT(*) FROM summaries").await, 5);
    // The unchanged pages' links were kept, not written twice.
    assert_eq!(count(&c.db, "SELECT COUNT(*) FROM links").await, 3);
}

#[tokio::test]
async fn due_recrawl_revisits_only_pages_that_are_due() {
    let (site, c) = four_pages(true).await;
    site.set("/b", "Beta two", &[]);
    // First recrawl at T0: everything is due (never revisited). /b
    // changed (next in 12 h), the rest did not (next in 48 h).
    let _ = recrawl(&c.store, true, T0).await;
    assert_eq!(site.take_requests(), ["/", "/a", "/b", "/c"]);
    site.take_not_modified();
    assert_eq!(
        c.page_field(&site.url("/b"), "due_at").await,
        Some((T0 + 12 * HOUR).to_string())
    );
    assert_eq!(
        c.page_field(&site.url("/a"), "due_at").await,
        Some((T0 + 48 * HOUR).to_string())
    );
    // A day later only /b is due.
    let _ = recrawl(&c.store, true, T0 + 24 * HOUR).await;
    assert_eq!(site.take_requests(), ["/b"]);
    assert_eq!(site.take_not_modified(), 1);
    // /b unchanged this time: its interval doubles back to 24 h.
    assert_eq!(
        c.page_field(&site.url("/b"), "due_at").await,
        Some((T0 + 48 * HOUR).to_string())
    );
    // Nothing is due an hour later; two days later, all of them are.
    let _ = recrawl(&c.store, true, T0 + 25 * HOUR).await;
    assert!(site.take_requests().is_empty());
    let _ = recrawl(&c.store, true, T0 + 48 * HOUR).await;
    assert_eq!(site.take_requests(), ["/", "/a", "/b", "/c"]);
    // Without --due, every page is revisited whatever its schedule.
    let _ = recrawl(&c.store, false, T0 + 48 * HOUR).await;
    assert_eq!(site.take_requests(), ["/", "/a", "/b", "/c"]);
}

#[tokio::test]
async fn revisits_a_page_budget_leaves_unmade_are_kept_for_the_next_recrawl() {
    let (site, c) = four_pages(true).await;
    site.remove("/c");
    let _ = recrawl(&c.store, false, T0).await;
    assert_eq!(site.take_requests(), ["/", "/a", "/b", "/c"]);
    // A recrawl with room for one page: the home page (shallowest first).
    let report = crawl::recrawl(
        &c.store,
        |cfg| cfg.limits.max_pages = Some(1),
        RecrawlOptions {
            due_only: false,
            now: T0 + HOUR,
        },
        Controls::default(),
        Arc::new(Counters::default()),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, crawl::CrawlOutcome::Finished);
    assert_eq!(site.take_requests(), ["/"]);
    // The run (its final line, `status`'s last run) counts the one fetch
    // made, not the revisits it left.
    let run = c.store.last_run().await.unwrap().unwrap();
    assert_eq!((run.fetched, run.failed()), (1, 0), "{run:?}");
    // The others keep what they were: pages done, the gone one failed
    // with its reason; none is skipped for the budget.
    let states: BTreeMap<String, String> = c
        .urls_in("done")
        .await
        .into_iter()
        .chain(c.urls_in("failed").await)
        .map(|(u, r)| (u.replace(&site.url(""), ""), r))
        .collect();
    assert_eq!(
        states,
        map(&[("/", ""), ("/a", ""), ("/b", ""), ("/c", "http_404")])
    );
    assert!(c.urls_in("skipped").await.is_empty());
    // So the next recrawl, with the budget lifted, asks for all of them
    // again.
    crawl::recrawl(
        &c.store,
        |cfg| cfg.limits.max_pages = None,
        RecrawlOptions {
            due_only: false,
            now: T0 + 2 * HOUR,
        },
        Controls::default(),
        Arc::new(Counters::default()),
    )
    .await
    .unwrap();
    assert_eq!(site.take_requests(), ["/", "/a", "/b", "/c"]);
}

/// A sitemap listing `entries` of (path, lastmod).
fn sitemap(site: &Site, entries: &[(&str, Option<&str>)]) -> String {
    let body: String = entries
        .iter()
        .map(|(path, lastmod)| {
            let lastmod = lastmod.map_or(String::new(), |t| format!("<lastmod>{t}</lastmod>"));
            format!("<url><loc>{}</loc>{lastmod}</url>\n", site.url(path))
        })
        .collect();
    format!("<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n{body}</urlset>\n")
}

#[tokio::test]
async fn a_sitemap_lastmod_before_the_last_check_spares_the_request() {
    let site = Site::start(true).await;
    site.set("/", "Home", &["/a", "/b", "/c"]);
    site.set("/a", "Alpha", &[]);
    site.set("/b", "Beta", &[]);
    site.set("/c", "Gamma", &[]);
    let entries = |a: &'static str| {
        [
            ("/", Some("2020-01-01")),
            ("/a", Some(a)),
            ("/b", Some("2099-01-01T00:00:00Z")),
            ("/c", None),
        ]
    };
    site.raw(
        "/sitemap.xml",
        sitemap(&site, &entries("2020-01-01T10:00+02:00")),
    );
    let mut cfg = config(&[site.url("/")]);
    cfg.politeness.sitemaps = true;
    // One request at a time per host: the sitemap, pushed to the front of
    // its host's queue, is read before any page is asked.
    cfg.politeness.per_host_concurrency = 1;
    let c = run(cfg).await;
    assert_eq!(c.report.fetched, 4);
    site.take_requests();

    // /b changes (its lastmod is later than any check); the sitemap says
    // `/` and /a have not changed since 2020; /c gives no lastmod.
    site.set("/b", "Beta two", &[]);
    let report = recrawl(&c.store, false, T0).await;
    assert_eq!(site.take_requests(), ["/b", "/c", "/sitemap.xml"]);
    assert_eq!(report.unchanged_by_sitemap, 2);
    assert_eq!(site.take_not_modified(), 1);
    let run1 = c.store.latest_recrawl().await.unwrap().unwrap();
    assert_eq!(
        changes(&site, &c.db, run1).await,
        map(&[
            ("/", "unchanged"),
            ("/a", "unchanged"),
            ("/b", "changed"),
            ("/c", "unchanged"),
        ])
    );
    // Checked now (the sitemap vouches for it), its interval doubled.
    assert_eq!(
        c.page_field(&site.url("/a"), "checked_at").await,
        Some(T0.to_string())
    );
    assert_eq!(
        c.page_field(&site.url("/a"), "due_at").await,
        Some((T0 + 48 * HOUR).to_string())
    );
    assert_eq!(
        c.urls_in("done").await.len(),
        5,
        "the pages and the sitemap stay done"
    );

    // The next recrawl: /a's lastmod is now after its last check (T0).
    site.set("/a", "Alpha two", &[]);
    site.raw(
        "/sitemap.xml",
        sitemap(&site, &entries("2027-01-15T08:30:00Z")),
    );
    assert!(trawl::sitemap::lastmod("2027-01-15T08:30:00Z").unwrap() > T0);
    let report = recrawl(&c.store, false, T0 + HOUR).await;
    assert_eq!(report.unchanged_by_sitemap, 1);
    assert_eq!(site.take_requests(), ["/a", "/b", "/c", "/sitemap.xml"]);
    let run2 = c.store.latest_recrawl().await.unwrap().unwrap();
    assert_eq!(
        changes(&site, &c.db, run2).await,
        map(&[
            ("/", "unchanged"),
            ("/a", "changed"),
            ("/b", "unchanged"),
            ("/c", "unchanged"),
        ])
    );
}

async fn export_changes(store: &Store, format: Format, unchanged: bool) -> Vec<u8> {
    let mut opts = ExportOptions::new(What::Changes, format);
    opts.include_unchanged = unchanged;
    let mut out = Vec::new();
    export::export(store, &opts, &mut out).await.unwrap();
    out
}

#[tokio::test]
async fn exports_of_changes_parse_back_and_are_byte_identical() {
    let (site, c) = four_pages(true).await;
    // The home page now links /d instead of /c.
    site.set("/", "Home", &["/a", "/b", "/d"]);
    site.set("/b", "Beta two", &["/d"]);
    site.set("/d", "Delta", &[]);
    site.remove("/c");
    let _ = recrawl(&c.store, false, T0).await;

    let jsonl = export_changes(&c.store, Format::Jsonl, false).await;
    assert_eq!(jsonl, export_changes(&c.store, Format::Jsonl, false).await);
    let rows: Vec<serde_json::Value> = std::str::from_utf8(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["url"].as_str().unwrap().replace(&site.url(""), ""),
                r["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("/", "changed"),
        ("/b", "changed"),
        ("/c", "removed"),
        ("/d", "new"),
    ];
    assert_eq!(
        got,
        want.map(|(u, c)| (u.to_string(), c.to_string())).to_vec()
    );
    // The links each changed page gained and lost.
    let home = &rows[0];
    assert_eq!(home["links_added"], serde_json::json!([site.url("/d")]));
    assert_eq!(home["links_gone"], serde_json::json!([site.url("/c")]));
    let b = &rows[1];
    assert_eq!(b["links_added"], serde_json::json!([site.url("/d")]));
    assert_eq!(b["links_gone"], serde_json::json!([]));
    assert_eq!(b["previous_title"], "Beta");
    assert_eq!(b["title"], "Beta two");
    assert_ne!(b["previous_content_hash"], b["content_hash"]);
    assert_eq!(b["diff_truncated"], false);
    let diff = b["diff"].as_str().unwrap();
    assert!(diff.starts_with("--- previous\n+++ current\n@@"), "{diff}");
    assert!(
        diff.contains("-Beta\n") && diff.contains("+Beta two\n"),
        "{diff}"
    );
    assert!(rows[2]["diff"].is_null() && rows[3]["diff"].is_null());
    assert!(rows[3]["summary"].as_str().unwrap().contains("Delta"));
    assert_eq!(rows[3]["links_added"], serde_json::json!([]));

    let csv_bytes = export_changes(&c.store, Format::Csv, true).await;
    assert_eq!(csv_bytes, export_changes(&c.store, Format::Csv, true).await);
    let mut reader = csv::Reader::from_reader(&csv_bytes[..]);
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[2], "change");
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // With --include-unchanged: `/` and `/a` too.
    assert_eq!(records.len(), 5);
    let changes: Vec<&str> = records.iter().map(|r| &r[2]).collect();
    assert_eq!(
        changes,
        ["changed", "unchanged", "changed", "removed", "new"]
    );
    assert_eq!(&headers[14], "links_gone");
    assert_eq!(&records[0][14], site.url("/c"));
    // A diff begins with `-`: like every cell a spreadsheet would run as
    // a formula, it gets a `'` in front.
    assert_eq!(records[2][10], format!("'{diff}"));

    let md = export_changes(&c.store, Format::Markdown, false).await;
    assert_eq!(md, export_changes(&c.store, Format::Markdown, false).await);
    let md = String::from_utf8(md).unwrap();
    assert!(
        md.starts_with("# What changed\n\nRun 2: 2 changed, 1 new, 1 removed.\n\n"),
        "{md}"
    );
    assert!(md.contains("## changed: Beta two\n"), "{md}");
    assert!(md.contains("```diff\n--- previous\n"), "{md}");
    assert!(md.contains("## new: Delta\n"), "{md}");
    assert!(
        md.contains(&format!(
            "Links added:\n\n- <{}>\n\nLinks gone:\n\n- <{}>\n",
            site.url("/d"),
            site.url("/c")
        )),
        "{md}"
    );
}

#[tokio::test]
async fn status_lists_the_runs_with_what_each_found() {
    let (site, c) = four_pages(true).await;
    site.set("/a", "Alpha two", &[]);
    let _ = recrawl(&c.store, false, T0).await;
    let status = trawl::status::collect(&c.store).await.unwrap();
    let runs: Vec<(&str, i64, i64, i64, i64, i64)> = status
        .runs
        .iter()
        .map(|r| {
            let k = r.kind.as_str();
            (k, r.checked, r.unchanged, r.changed, r.new, r.removed)
        })
        .collect();
    assert_eq!(runs, [("crawl", 0, 0, 0, 0, 0), ("recrawl", 4, 3, 1, 0, 0)]);
    // The first crawl downloaded the four bodies; the recrawl only the one
    // that changed (three 304s).
    let first = status.runs[0].bytes;
    let second = status.runs[1].bytes;
    let a_size: i64 = c
        .page_field(&site.url("/a"), "size")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(first > 0);
    assert_eq!(second, a_size);
    let text = status.to_text();
    assert!(
        text.contains("recrawl, started ")
            && text.contains(": 4 checked, 3 unchanged, 1 changed, 0 new, 0 removed, "),
        "{text}"
    );
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["runs"][1]["kind"], "recrawl");
    assert_eq!(json["runs"][1]["changed"], 1);
}

fn spawn_trawl(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run trawl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recrawl_killed_and_resumed_fetches_again_at_most_the_pages_in_flight() {
    use crate::cli::{stderr, trawl_async};
    let server = crate::util::serve_site(listener().await, "site", 0);
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let o = trawl_async(args(&[
        "crawl",
        &server.url("/big/1"),
        "--db",
        &db,
        "--concurrency",
        "4",
        "--per-host-concurrency",
        "4",
        "--per-host-rate",
        "0",
        "-q",
    ]))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let first = server.requests().len();
    assert!(first as u64 >= crate::util::BIG_PAGES);

    // The recrawl, killed a third of the way through, then resumed.
    let mut child = spawn_trawl(&["recrawl", "--db", &db, "-q"]);
    while server.requests().len() < first + 1000 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("trawl exited ({status}) before 1000 requests");
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let o = trawl_async(args(&["resume", "--db", &db, "-q"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // Every page was revisited: once, plus what the kill cost (the
    // fetches in flight and those waiting for their batch's commit).
    let again = server.requests().len() - first;
    let per_kill = 4 + trawl::crawl::uncommitted_bound(4);
    eprintln!("revisit requests: {again} with one kill, {first} pages");
    assert!(
        again >= first && again <= first + per_kill,
        "{again} requests to revisit {first} pages"
    );
    let store = Store::open_with(&db, trawl::store::Access::Read)
        .await
        .unwrap();
    let runs: Vec<(String, bool)> = store
        .runs()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.kind, r.finished_at.is_some()))
        .collect();
    let want = [("crawl", true), ("recrawl", false), ("resume", true)];
    assert_eq!(runs, want.map(|(k, f)| (k.to_string(), f)).to_vec());
    // The resume recorded its findings under the recrawl it continued:
    // one row per page, all unchanged (the server sends the same bodies).
    let pages = count(
        &tdb,
        "SELECT COUNT(*) FROM pages p JOIN urls u ON u.id = p.url_id WHERE NOT u.sitemap",
    )
    .await;
    assert_eq!(
        count(
            &tdb,
            "SELECT COUNT(*) FROM page_changes WHERE run_id = 2 AND change = 'unchanged'"
        )
        .await,
        pages
    );
    assert_eq!(
        count(&tdb, "SELECT COUNT(*) FROM page_changes").await,
        pages
    );
    assert_eq!(
        count(
            &tdb,
            "SELECT COUNT(*) FROM urls WHERE state IN ('queued', 'leased')"
        )
        .await,
        0
    );
}

/// Runs the binary with `TRAWL_NOW` set, to completion.
async fn trawl_at(now: i64, args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args(&args)
            .env("TRAWL_NOW", now.to_string())
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run trawl")
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_command_line_recrawls_due_pages_on_the_given_clock_and_exports_changes() {
    use crate::cli::stderr;
    let site = Site::start(true).await;
    site.set("/", "Home", &["/a"]);
    site.set("/a", "Alpha", &[]);
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let seed = site.url("/");
    let o = trawl_at(
        T0,
        &[
            "crawl",
            &seed,
            "--db",
            &db,
            "--per-host-rate",
            "0",
            "--no-sitemaps",
            "-q",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    site.take_requests();
    site.set("/a", "Alpha two", &[]);
    let o = trawl_at(T0, &["recrawl", "--db", &db, "--due", "-q"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(site.take_requests(), ["/", "/a"]);
    // Twelve hours on, only the page that changed is due.
    let o = trawl_at(T0 + 12 * HOUR, &["recrawl", "--db", &db, "--due", "-q"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(site.take_requests(), ["/a"]);

    let export = |run: &'static str| {
        let db = db.clone();
        async move {
            let o = trawl_at(
                T0,
                &[
                    "export", "--db", &db, "--what", "changes", "--run", run, "--format", "csv",
                ],
            )
            .await;
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            o.stdout
        }
    };
    let csv = export("2").await;
    assert_eq!(csv, export("2").await);
    let mut reader = csv::Reader::from_reader(&csv[..]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!((&rows[0][2], &rows[0][4]), ("changed", "Alpha two"));
    // The third run found nothing that changed.
    let csv = export("3").await;
    assert_eq!(csv::Reader::from_reader(&csv[..]).records().count(), 0);

    let o = trawl_at(T0, &["status", "--db", &db]).await;
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("2 recrawl, started "), "{text}");
    assert!(
        text.contains(": 2 checked, 1 unchanged, 1 changed, 0 new, 0 removed, "),
        "{text}"
    );
    assert!(
        text.contains(": 1 checked, 1 unchanged, 0 changed, 0 new, 0 removed, "),
        "{text}"
    );

    // --run belongs to --what changes.
    let o = trawl_at(
        T0,
        &["export", "--db", &db, "--what", "pages", "--run", "2"],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--run goes with --what changes"));
}

#[tokio::test]
async fn a_redirect_that_leads_elsewhere_now_is_a_change_and_its_new_target_is_crawled() {
    let site = Site::start(true).await;
    site.set("/", "Home", &["/moved"]);
    site.redirect("/moved", "/old");
    site.set("/old", "Old place", &[]);
    site.set("/new", "New place", &[]);
    let c = run(config(&[site.url("/")])).await;
    assert_eq!(site.take_requests(), ["/", "/moved", "/old"]);

    // The redirect now leads to /new, with the same status and empty body.
    site.redirect("/moved", "/new");
    let report = recrawl(&c.store, false, T0).await;
    assert_eq!(report.outcome, crawl::CrawlOutcome::Finished);
    let run: i64 = count(&c.db, "SELECT MAX(id) FROM runs").await;
    let found = changes(&site, &c.db, run).await;
    assert_eq!(found.get("/moved").map(String::as_str), Some("changed"));
    assert_eq!(found.get("/new").map(String::as_str), Some("new"));
    assert_eq!(
        c.page_field(&site.url("/moved"), "redirect_to").await,
        Some(site.url("/new"))
    );
    assert!(site.take_requests().contains(&"/new".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recrawl_asks_the_llm_only_for_content_it_has_not_summarized() {
    use crate::summaries::{args, fake_llm, trawl_llm};
    let site = Site::start(true).await;
    site.set("/", "Home", &["/a", "/b", "/c"]);
    site.set("/a", "Alpha", &[]);
    site.set("/b", "Beta", &[]);
    site.set("/c", "Gamma", &[]);
    let llm = fake_llm(0).await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let o = trawl_llm(crate::summaries::llm_crawl_args(
        &site.url("/"),
        &llm,
        &db,
        &[],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", crate::cli::stderr(&o));
    let asked = |from: usize| -> Vec<String> {
        let mut titles: Vec<String> = llm.seen()[from..]
            .iter()
            .map(|s| {
                ["Home", "Alpha", "Beta two", "Beta", "Gamma", "Delta"]
                    .into_iter()
                    .find(|t| s.user.contains(&format!("{t} is a page about")))
                    .unwrap_or("?")
                    .to_string()
            })
            .collect();
        titles.sort();
        titles
    };
    assert_eq!(asked(0), ["Alpha", "Beta", "Gamma", "Home"]);

    // /b changes and links a new page; the rest answers 304.
    site.set("/b", "Beta two", &["/d"]);
    site.set("/d", "Delta", &[]);
    let _ = site.take_requests();
    let o = trawl_llm(args(&["recrawl", "--db", &db, "-q"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", crate::cli::stderr(&o));
    let pages: Vec<String> = site
        .take_requests()
        .into_iter()
        .filter(|p| p != "/sitemap.xml")
        .collect();
    assert_eq!(pages, ["/", "/a", "/b", "/c", "/d"]);
    assert_eq!(site.take_not_modified(), 3);
    // The LLM saw the changed page's new text and the new page, nothing else.
    assert_eq!(asked(4), ["Beta two", "Delta"]);

    // /b goes back to its first text: that summary is in the cache, so a
    // change costs no request. Nothing else changed: nothing is asked.
    site.set("/b", "Beta", &[]);
    let o = trawl_llm(args(&["recrawl", "--db", &db, "-q"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", crate::cli::stderr(&o));
    assert_eq!(site.take_not_modified(), 4);
    assert_eq!(asked(6), Vec::<String>::new());
    let sums = crate::summaries::summaries(&tdb).await;
    assert_eq!(sums.len(), 5, "{sums:?}");
    assert!(sums.values().all(|(state, _, _)| state == "done"));
}
