//! Sitemaps against a server on loopback: robots.txt `Sitemap:` lines,
//! `/sitemap.xml`, index files, gzip, scope and robots on listed URLs,
//! failures recorded, and resume.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::Row;

use crate::crawl::{Crawled, config, resume, run};
use crate::util::{Server, listener};

/// Path → (content type, body). Anything else is a 404.
type Files = HashMap<String, (&'static str, Vec<u8>)>;

struct Site {
    files: Files,
    log: Arc<Mutex<Vec<(Instant, String)>>>,
}

async fn handle(State(site): State<Arc<Site>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    site.log
        .lock()
        .unwrap()
        .push((Instant::now(), path.clone()));
    match site.files.get(&path) {
        Some((ct, body)) => ([(header::CONTENT_TYPE, *ct)], body.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Serves `files`, built with the server's own base URL.
async fn serve(files: impl FnOnce(&str) -> Vec<(&'static str, &'static str, Vec<u8>)>) -> Server {
    let l = listener().await;
    let addr = l.local_addr().unwrap();
    let base = format!("http://127.0.0.1:{}", addr.port());
    let site = Arc::new(Site {
        files: files(&base)
            .into_iter()
            .map(|(p, ct, body)| (p.to_string(), (ct, body)))
            .collect(),
        log: Arc::default(),
    });
    let log = site.log.clone();
    let app = Router::new().fallback(handle).with_state(site);
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    Server { addr, log }
}

fn page(links: &[&str]) -> Vec<u8> {
    let a: String = links
        .iter()
        .map(|l| format!("<a href=\"{l}\">{l}</a>"))
        .collect();
    format!("<html><head><title>t</title></head><body><p>text</p>{a}</body></html>").into_bytes()
}

const HTML: &str = "text/html";
const XML: &str = "application/xml";

fn urlset(locs: &[String]) -> Vec<u8> {
    let body: String = locs
        .iter()
        .map(|l| format!("<url><loc>{l}</loc><lastmod>2026-01-01</lastmod></url>\n"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n{body}</urlset>\n"
    )
    .into_bytes()
}

fn index(locs: &[String]) -> Vec<u8> {
    let body: String = locs
        .iter()
        .map(|l| format!("<sitemap><loc>{l}</loc></sitemap>\n"))
        .collect();
    format!(
        "<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n{body}</sitemapindex>\n"
    )
    .into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Sitemap rows as url → (state, reason).
async fn sitemaps(c: &Crawled) -> HashMap<String, (String, String)> {
    sqlx::query("SELECT url, state, COALESCE(reason, '') FROM urls WHERE sitemap")
        .fetch_all(&c.db.sql().await)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

fn sitemaps_on(seed: String) -> trawl::config::CrawlConfig {
    let mut cfg = config(&[seed]);
    cfg.politeness.sitemaps = true;
    cfg
}

/// A site whose robots.txt names an index of two sitemaps, one gzipped,
/// listing pages no link reaches, a disallowed page and foreign URLs.
async fn indexed_site() -> Server {
    serve(|base| {
        vec![
            (
                "/robots.txt",
                "text/plain",
                format!("User-agent: *\nDisallow: /private/\n\nSitemap: {base}/maps/index.xml\n")
                    .into_bytes(),
            ),
            (
                "/maps/index.xml",
                XML,
                index(&[
                    format!("{base}/maps/a.xml"),
                    format!("{base}/maps/b.xml.gz"),
                    "http://elsewhere.invalid/map.xml".to_string(),
                ]),
            ),
            (
                "/maps/a.xml",
                XML,
                urlset(&[
                    format!("{base}/orphan/1"),
                    format!("{base}/private/secret"),
                    format!("{base}/q?a=1&amp;b=2"),
                    "http://elsewhere.invalid/page".to_string(),
                    format!("{base}/"),
                ]),
            ),
            (
                "/maps/b.xml.gz",
                "application/gzip",
                gzip(&urlset(&[
                    format!("{base}/orphan/2"),
                    format!("{base}/orphan/3"),
                ])),
            ),
            ("/", HTML, page(&["/linked"])),
            ("/linked", HTML, page(&[])),
            ("/orphan/1", HTML, page(&[])),
            ("/orphan/2", HTML, page(&["/orphan/deeper"])),
            ("/orphan/3", HTML, page(&[])),
            ("/orphan/deeper", HTML, page(&[])),
            ("/q", HTML, page(&[])),
            ("/private/secret", HTML, page(&[])),
        ]
    })
    .await
}

#[tokio::test]
async fn robots_sitemap_index_and_gzip_reveal_unlinked_pages() {
    let s = indexed_site().await;
    let c = run(sitemaps_on(s.url("/"))).await;

    let pages = c.pages().await;
    for p in [
        "/",
        "/linked",
        "/orphan/1",
        "/orphan/2",
        "/orphan/3",
        "/orphan/deeper",
        "/q?a=1&b=2",
    ] {
        assert!(pages.contains_key(&s.url(p)), "{p} not stored: {pages:?}");
    }
    // Listed pages are one step from the seed; their links one more.
    assert_eq!(pages[&s.url("/orphan/2")].1, 1);
    assert_eq!(pages[&s.url("/orphan/deeper")].1, 2);
    // The seed stays a seed.
    assert_eq!(pages[&s.url("/")].1, 0);
    // Sitemaps are not pages.
    assert_eq!(pages.len(), 7, "{pages:?}");
    assert_eq!(c.report.pages_stored, 7);

    // Listed URLs pass robots and scope like links.
    let requests = s.all_requests();
    assert!(!requests.iter().any(|p| p.starts_with("/private/")));
    let skipped = c.urls_in("skipped").await;
    assert_eq!(skipped[&s.url("/private/secret")], "robots");
    assert_eq!(skipped["http://elsewhere.invalid/page"], "out_of_scope");

    // robots.txt named the sitemaps, so /sitemap.xml is not guessed.
    assert!(
        !requests.contains(&"/sitemap.xml".to_string()),
        "{requests:?}"
    );
    let maps = sitemaps(&c).await;
    let done = |p: &str| maps[&s.url(p)] == ("done".to_string(), String::new());
    assert!(done("/maps/index.xml") && done("/maps/a.xml") && done("/maps/b.xml.gz"));
    assert_eq!(
        maps["http://elsewhere.invalid/map.xml"],
        ("skipped".to_string(), "out_of_scope".to_string())
    );
    assert_eq!(maps.len(), 4);
    // Each file read once; the sitemaps come before the pages they list.
    s.assert_no_duplicates();
    let pos = |p: &str| requests.iter().position(|r| r == p).unwrap();
    assert!(pos("/maps/a.xml") < pos("/orphan/1"));
    assert_eq!(
        c.report.sitemaps,
        vec![
            ("done".to_string(), 3),
            ("skipped:out_of_scope".to_string(), 1)
        ]
    );
    // The page counters are about pages.
    assert_eq!(c.report.fetched, 7);
    assert_eq!(c.report.failed, 0);
}

#[tokio::test]
async fn sitemap_xml_is_tried_when_robots_names_none_and_not_with_no_sitemaps() {
    let site = |base: &str| {
        vec![
            ("/", HTML, page(&[])),
            // A plain-text sitemap.
            (
                "/sitemap.xml",
                "text/plain",
                format!("{base}/listed\n{base}/also\n").into_bytes(),
            ),
            ("/listed", HTML, page(&[])),
            ("/also", HTML, page(&[])),
        ]
    };
    let s = serve(site).await;
    let c = run(sitemaps_on(s.url("/"))).await;
    assert_eq!(c.pages().await.len(), 3);
    assert_eq!(c.report.sitemaps, vec![("done".to_string(), 1)]);

    let s = serve(site).await;
    let mut cfg = sitemaps_on(s.url("/"));
    cfg.politeness.sitemaps = false;
    let c = run(cfg).await;
    assert_eq!(s.all_requests(), ["/robots.txt", "/"]);
    assert_eq!(c.pages().await.len(), 1);

    // Without robots.txt there is nothing to name sitemaps: /sitemap.xml it is.
    let s = serve(site).await;
    let mut cfg = sitemaps_on(s.url("/"));
    cfg.politeness.robots = false;
    let c = run(cfg).await;
    assert!(!s.all_requests().contains(&"/robots.txt".to_string()));
    assert_eq!(c.pages().await.len(), 3);
}

#[tokio::test]
async fn missing_and_broken_sitemaps_are_recorded_not_failed_pages() {
    let s = serve(|base| {
        vec![
            (
                "/robots.txt",
                "text/plain",
                format!(
                    "Sitemap: {base}/gone.xml\nSitemap: {base}/soft404.xml\nSitemap: {base}/cut.xml\n"
                )
                .into_bytes(),
            ),
            ("/", HTML, page(&[])),
            // A "soft 404": an HTML page where the sitemap should be.
            ("/soft404.xml", HTML, page(&["/from-soft404"])),
            // Malformed part-way: the URLs before the break are kept.
            (
                "/cut.xml",
                XML,
                format!("<urlset><url><loc>{base}/kept</loc></url><url><loc>{base}/lost</url>")
                    .into_bytes(),
            ),
            ("/kept", HTML, page(&[])),
            ("/lost", HTML, page(&[])),
            ("/from-soft404", HTML, page(&[])),
        ]
    })
    .await;
    let c = run(sitemaps_on(s.url("/"))).await;
    let maps = sitemaps(&c).await;
    let at = |p: &str| maps[&s.url(p)].clone();
    assert_eq!(at("/gone.xml"), ("failed".into(), "http_404".into()));
    assert_eq!(at("/soft404.xml"), ("failed".into(), "bad_sitemap".into()));
    assert_eq!(at("/cut.xml"), ("done".into(), String::new()));
    let pages = c.pages().await;
    assert!(pages.contains_key(&s.url("/kept")));
    assert!(!pages.contains_key(&s.url("/lost")));
    assert!(!pages.contains_key(&s.url("/from-soft404")));
    assert_eq!(pages.len(), 2);
    // Page failures (and so the exit code) do not count sitemaps.
    assert_eq!(c.report.failed, 0);
    assert!(c.report.failed_by_reason.is_empty());
    assert_eq!(
        c.report.sitemaps,
        vec![
            ("done".to_string(), 1),
            ("failed:bad_sitemap".to_string(), 1),
            ("failed:http_404".to_string(), 1)
        ]
    );
}

#[tokio::test]
async fn a_resumed_crawl_reads_sitemaps_left_queued_as_sitemaps() {
    // With a budget of one page, the seed alone spends it: no sitemap is
    // read for nothing.
    let s = indexed_site().await;
    let mut cfg = sitemaps_on(s.url("/"));
    cfg.limits.max_pages = Some(1);
    let c = run(cfg).await;
    assert_eq!(s.requests(), ["/"]);
    assert_eq!(
        sitemaps(&c).await[&s.url("/maps/index.xml")],
        ("skipped".into(), "max_pages".into())
    );

    // With two, the index is read (sitemaps do not spend the budget) but
    // not all the sitemaps it lists: the queue covers the budget first.
    let s = indexed_site().await;
    let mut cfg = sitemaps_on(s.url("/"));
    cfg.limits.max_pages = Some(2);
    cfg.politeness.per_host_concurrency = 2;
    let c = run(cfg).await;
    assert!(c.report.fetched <= 2);
    let maps = sitemaps(&c).await;
    assert_eq!(
        maps[&s.url("/maps/index.xml")],
        ("done".into(), String::new())
    );
    assert_eq!(
        maps[&s.url("/maps/b.xml.gz")],
        ("skipped".into(), "max_pages".into())
    );

    let report = resume(&c.store, |cfg| cfg.limits.max_pages = None).await;
    assert_eq!(report.pages_stored, 7, "{report:?}");
    let pages = c.pages().await;
    assert!(pages.contains_key(&s.url("/orphan/3")));
    // Read as sitemaps after the resume, not stored as pages.
    assert_eq!(
        report.sitemaps,
        vec![
            ("done".to_string(), 3),
            ("skipped:out_of_scope".to_string(), 1)
        ]
    );
    s.assert_no_duplicates();
}

#[tokio::test]
async fn a_sitemap_given_as_seed_is_read_as_one() {
    let s = indexed_site().await;
    let mut cfg = sitemaps_on(s.url("/maps/a.xml"));
    // Even with sitemap discovery off: the seed's body says what it is.
    cfg.politeness.sitemaps = false;
    let c = run(cfg).await;
    let pages = c.pages().await;
    assert!(pages.contains_key(&s.url("/orphan/1")), "{pages:?}");
    assert!(!pages.contains_key(&s.url("/maps/a.xml")));
    assert_eq!(pages[&s.url("/orphan/1")].1, 1);
    let maps = sitemaps(&c).await;
    assert_eq!(maps[&s.url("/maps/a.xml")], ("done".into(), String::new()));
    assert!(!s.all_requests().iter().any(|p| p.contains("index")));
}
