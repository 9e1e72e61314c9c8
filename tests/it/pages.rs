//! Page analysis end to end: what a crawl keeps of large and cut pages.

use axum::Router;
use sqlx::Row;

use crate::crawl::{config, run};
use crate::util::{html, listener};

/// Serves `home` at `/` and a small page at every `/p/N`.
async fn site(home: String) -> u16 {
    let l = listener().await;
    let port = l.local_addr().unwrap().port();
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let home = home.clone();
        async move {
            match req.uri().path() {
                "/" => html(home),
                p if p.starts_with("/p/") => html(format!("<title>{p}</title><p>page {p}</p>")),
                _ => axum::http::StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    port
}

use axum::response::IntoResponse;

/// Link targets stored for the page at `from`.
async fn links_from(c: &crate::crawl::Crawled, from: &str) -> Vec<String> {
    sqlx::query(
        "SELECT t.url FROM links l JOIN urls f ON f.id = l.from_id JOIN urls t ON t.id = l.to_id \
         WHERE f.url = ?",
    )
    .bind(from)
    .fetch_all(c.store.pool())
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
