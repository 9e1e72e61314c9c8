//! Page analysis end to end: what a crawl keeps of large and cut pages.

use axum::Router;
use axum::response::IntoResponse;
use sqlx::Row;

use crate::crawl::{config, run};
use crate::util::{html, listener};

/// Serves `home` at `/`, `pages` at their paths and a small page at every
/// `/p/N`.
async fn site_with(home: String, pages: Vec<(&'static str, String)>) -> u16 {
    let l = listener().await;
    let port = l.local_addr().unwrap().port();
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let home = home.clone();
        let page = pages
            .iter()
            .find(|(p, _)| *p == req.uri().path())
            .map(|(_, body)| body.clone());
        async move {
            match (req.uri().path(), page) {
                ("/", _) => html(home),
                (_, Some(body)) => html(body),
                (p, None) if p.starts_with("/p/") => {
                    html(format!("<title>{p}</title><p>page {p}</p>"))
                }
                _ => axum::http::StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    port
}

async fn site(home: String) -> u16 {
    site_with(home, Vec::new()).await
}

/// Link targets stored for the page at `from`.
async fn links_from(c: &crate::crawl::Crawled, from: &str) -> Vec<String> {
    sqlx::query(
        "SELECT t.url FROM links l JOIN urls f ON f.id = l.from_id JOIN urls t ON t.id = l.to_id \
         WHERE f.url = $1",
    )
    .bind(from)
    .fetch_all(&c.db.sql().await)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test]
async fn every_link_of_a_page_of_60000_elements_is_stored_and_followed() {
    // 6,000 links, each among nine other elements: ~60,000 elements in
    // 1 MB, twice the element cap of the tree parser this replaced.
    let mut home = String::from("<!doctype html><html><body><main><ul>");
    for i in 0..6000 {
        home.push_str(&format!(
            "<li class=item><span><b>{i}</b></span><a href=\"/p/{i}\"><i>page</i> {i}</a>\
             <span>x</span><em>y</em><code>z</code><small>w</small><u>v</u></li>"
        ));
    }
    home.push_str("</ul></main></body></html>");
    let port = site(home).await;
    let root = format!("http://127.0.0.1:{port}/");
    let mut cfg = config(std::slice::from_ref(&root));
    cfg.concurrency = 32;
    cfg.politeness.per_host_concurrency = 16;
    let c = run(cfg).await;
    let links = links_from(&c, &root).await;
    assert_eq!(links.len(), 6000);
    assert_eq!(
        c.page_field(&root, "links_count").await.as_deref(),
        Some("6000")
    );
    assert_eq!(c.page_field(&root, "truncated").await.as_deref(), Some("0"));
    let pages = c.pages().await;
    assert_eq!(pages.len(), 6001);
    let last = format!("http://127.0.0.1:{port}/p/5999");
    assert_eq!(pages[&last], (200, 1));
    assert_eq!(c.report.failed, 0);
}

#[tokio::test]
async fn a_body_cut_at_max_body_size_still_yields_the_links_before_the_cut() {
    // 2,000 paragraphs of the same length, each with one link, ~180 KB.
    let block = |i: usize| {
        format!(
            "<p><a href=\"/p/{i:05}\">link {i:05}</a> {}</p>\n",
            "filler words ".repeat(5)
        )
    };
    let head = "<!doctype html><html><body>";
    let mut home = String::from(head);
    for i in 0..2000 {
        home.push_str(&block(i));
    }
    home.push_str("</body></html>");
    let max = 64 * 1024;
    // The links whose start tag ends before the cut.
    let mut expected = 0;
    let mut at = head.len();
    for i in 0..2000 {
        if at + "<p><a href=\"/p/00000\">".len() <= max {
            expected += 1;
        }
        at += block(i).len();
    }
    assert!(expected > 500 && expected < 2000);
    let port = site(home).await;
    let root = format!("http://127.0.0.1:{port}/");
    let mut cfg = config(std::slice::from_ref(&root));
    cfg.fetch.max_body_size = max as u64;
    cfg.concurrency = 32;
    cfg.politeness.per_host_concurrency = 16;
    let c = run(cfg).await;
    assert_eq!(c.page_field(&root, "truncated").await.as_deref(), Some("1"));
    let links = links_from(&c, &root).await;
    assert_eq!(links.len(), expected);
    let pages = c.pages().await;
    assert_eq!(pages.len(), expected + 1);
    let last = format!("http://127.0.0.1:{port}/p/{:05}", expected - 1);
    assert!(pages.contains_key(&last), "{last}");
}

#[tokio::test]
async fn a_documentation_page_is_summarized_from_its_prose_with_the_crawl() {
    // A page as documentation generators write them: a heading, prose,
    // a code listing, a YAML file, an option list, a table, a run-on
    // paragraph of 5,000 characters, plus links a tree builder finds
    // (SVG, a meta refresh stub) and one it does not (inside a script's
    // `<!--`).
    let runon = (0..250)
        .map(|i| format!("item{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let home = format!(
        "<!doctype html><html><head><title>What Is Ownership?</title></head><body>\
         <nav><a href=/p/1>Home</a></nav><main>\
         <h1>Appendix</h1>\
         <p>Ownership is a set of rules that govern how a program manages its memory.</p>\
         <pre><code>fn main() {{ let s = String::from(\"hello\"); takes_ownership(s); }}</code></pre>\
         <pre>server:\n  port: 8080\n  workers: 4</pre>\
         <p>Every value has an owner, and there can only be one owner of a value at a time.</p>\
         <ul><li>--verbose print every rule the checker applies while it runs</li></ul>\
         <table><tr><th>Type</th><th>Size of the value in memory</th></tr></table>\
         <p>{runon}</p>\
         <p>When the owner goes out of scope, the value is dropped and its memory is freed.</p>\
         <svg><a href=\"/svg-target\"><text>diagram</text></a></svg>\
         <script><!-- document.write(\"<script>var a = '<a href=/not-a-link>';</script>\"); --></script>\
         <a href=/moved>moved</a></main></body></html>"
    );
    let port = site_with(
        home,
        vec![
            (
                "/moved",
                "<META HTTP-EQUIV=REFRESH CONTENT=\"0; URL=/start/\">".to_string(),
            ),
            ("/start/", "<p>The new place.</p>".to_string()),
            ("/svg-target", "<p>Drawn.</p>".to_string()),
        ],
    )
    .await;
    let root = format!("http://127.0.0.1:{port}/");
    let c = run(config(std::slice::from_ref(&root))).await;
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let pages = c.pages().await;
    for p in ["/moved", "/start/", "/svg-target"] {
        assert_eq!(pages[&url(p)].0, 200, "{p}");
    }
    let known: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM urls WHERE url LIKE '%not-a-link%'")
        .fetch_one(&c.db.sql().await)
        .await
        .unwrap();
    assert_eq!(known, 0);
    // The text keeps its structure, one kind per line.
    let text = c.page_field(&root, "text").await.unwrap();
    assert!(
        text.starts_with("Appendix\nOwnership is a set of rules"),
        "{text}"
    );
    assert_eq!(
        c.page_field(&root, "text_kinds").await.as_deref(),
        Some("hpccpltppp")
    );
    // The summary, committed with the crawl: prose only, capped.
    let (model, summary): (String, String) = sqlx::query_as(
        "SELECT s.model, s.summary FROM summaries s JOIN pages p ON p.content_hash = s.content_hash \
         JOIN urls u ON u.id = p.url_id WHERE u.url = $1",
    )
    .bind(&root)
    .fetch_one(&c.db.sql().await)
    .await
    .unwrap();
    assert_eq!(model, "centroid");
    assert_eq!(
        summary,
        "Ownership is a set of rules that govern how a program manages its memory. \
         Every value has an owner, and there can only be one owner of a value at a time. \
         When the owner goes out of scope, the value is dropped and its memory is freed."
    );
    // Every page with text has its summary (the refresh stub has none).
    assert_eq!(pages.len(), 5);
    assert_eq!(c.report.summaries.as_ref().map(|s| s.done), Some(4));
}
