//! What a response is and how it is read: MIME sniffing of bodies with no
//! usable Content-Type, several Content-Type headers, undeclared charsets,
//! and robots.txt files with a rule that cannot be used or a group named
//! with a version.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::crawl::{Crawled, config, run};
use crate::util::{Server, html, listener};

/// One answer: its headers (in order, repeats kept) and body.
#[derive(Clone)]
struct Answer {
    headers: Vec<(HeaderName, Vec<u8>)>,
    body: Vec<u8>,
}

fn answer(headers: &[(HeaderName, &[u8])], body: impl Into<Vec<u8>>) -> Answer {
    Answer {
        headers: headers
            .iter()
            .map(|(n, v)| (n.clone(), v.to_vec()))
            .collect(),
        body: body.into(),
    }
}

/// Serves `pages` by path, exactly as given (no Content-Type is added);
/// `/robots.txt` is a 404 unless given; any other path is a small HTML
/// page with no links.
async fn serve(pages: Vec<(&'static str, Answer)>) -> Server {
    let l = listener().await;
    let addr = l.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let pages: Arc<BTreeMap<&'static str, Answer>> = Arc::new(pages.into_iter().collect());
    let seen = log.clone();
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let path = req.uri().path().to_string();
        seen.lock().unwrap().push((Instant::now(), path.clone()));
        let page = pages.get(path.as_str()).cloned();
        async move {
            match page {
                Some(a) => {
                    let mut r = Response::new(Body::from(a.body));
                    for (name, value) in a.headers {
                        r.headers_mut()
                            .append(name, HeaderValue::from_bytes(&value).unwrap());
                    }
                    r
                }
                None if path == "/robots.txt" => StatusCode::NOT_FOUND.into_response(),
                None => html(format!("<title>{path}</title><p>Page {path}.</p>")),
            }
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await });
    Server { addr, log }
}

/// A home page (`text/html`) linking to `paths`.
fn home(paths: &[&str]) -> Answer {
    let mut b = String::from("<!doctype html><title>Home</title>");
    for p in paths {
        b.push_str(&format!("<a href=\"{p}\">{p}</a>\n"));
    }
    answer(&[(header::CONTENT_TYPE, b"text/html")], b)
}

async fn crawl(s: &Server) -> Crawled {
    run(config(&[s.url("/")])).await
}

fn requested(s: &Server) -> BTreeSet<String> {
    s.requests().into_iter().collect()
}

/// Links are stored as found, in order, with their anchor text and kind,
/// whatever characters the text holds: on PostgreSQL they go in by
/// `COPY … (FORMAT binary)`, where a field's length, not an escape,
/// ends it (in COPY's text format a backslash or tab would).
#[tokio::test]
async fn links_keep_their_anchor_text_order_and_kind_whatever_the_text_holds() {
    let body = "<!doctype html><title>Home</title>\
        <a href=\"/a\">back\\slash \\N \"quoted\" 'single'</a>\
        <a href=\"/b\">tab&#9;and\nnewline</a>\
        <a href=\"/c\">\u{fc}n\u{ef}c\u{f6}d\u{e9} \u{1f980} \u{4e2d}\u{6587}</a>\
        <a href=\"/d\"><img src=x></a>\
        <iframe src=\"/e\"></iframe>\
        <a href=\"/f\" rel=nofollow>PGCOPY\n\u{ff}\r\n</a>";
    let s = serve(vec![(
        "/",
        answer(&[(header::CONTENT_TYPE, b"text/html; charset=utf-8")], body),
    )])
    .await;
    let c = crawl(&s).await;
    let order = if c.db.is_postgres() {
        "l.seq"
    } else {
        "l.rowid"
    };
    let rows: Vec<(String, String, bool, Option<String>)> =
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t.url, l.anchor, CASE WHEN l.nofollow THEN 1 ELSE 0 END, l.kind FROM links l \
         JOIN urls f ON f.id = l.from_id JOIN urls t ON t.id = l.to_id \
         WHERE f.url = $1 ORDER BY {order}"
        )))
        .bind(s.url("/"))
        .fetch_all(&c.db.sql().await)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            use sqlx::Row;
            (r.get(0), r.get(1), r.get::<i64, _>(2) != 0, r.get(3))
        })
        .collect();
    let want = [
        ("/a", "back\\slash \\N \"quoted\" 'single'", false, None),
        ("/b", "tab and newline", false, None),
        (
            "/c",
            "\u{fc}n\u{ef}c\u{f6}d\u{e9} \u{1f980} \u{4e2d}\u{6587}",
            false,
            None,
        ),
        ("/d", "", false, None),
        ("/e", "", false, Some("iframe")),
        ("/f", "PGCOPY \u{ff}", true, None),
    ];
    let want: Vec<(String, String, bool, Option<String>)> = want
        .iter()
        .map(|(p, a, n, k)| (s.url(p), a.to_string(), *n, k.map(str::to_string)))
        .collect();
    assert_eq!(rows, want);
}

#[tokio::test]
async fn html_without_a_usable_content_type_is_sniffed_by_the_whatwg_rules() {
    // Each body links to /found/<name>; it is followed only if the body
    // is read as HTML.
    let untyped = |start: &[u8], name: &str| {
        let body = [
            start,
            format!("<title>{name}</title><a href=\"/found/{name}\">x</a>").as_bytes(),
        ]
        .concat();
        answer(&[], body)
    };
    let typed = |ct: &'static [u8], name: &str| {
        let body = format!("<!DOCTYPE html><title>{name}</title><a href=\"/found/{name}\">x</a>");
        answer(&[(header::CONTENT_TYPE, ct)], body)
    };
    let pages = vec![
        ("/comment", untyped(b"<!-- generated -->\n", "comment")),
        ("/title", untyped(b"", "title")),
        ("/head", untyped(b"<head>", "head")),
        ("/body", untyped(b"<BODY class=x>", "body")),
        ("/p", untyped(b"<p>Hello</p>", "p")),
        ("/a", untyped(b"<a href=\"/found/a-first\">first</a>", "a")),
        ("/ws", untyped(b"\n\t  \r\n<p>", "ws")),
        ("/bom", untyped(b"\xef\xbb\xbf<!DOCTYPE html>", "bom")),
        ("/unknown", typed(b"unknown/unknown", "unknown")),
        ("/any", typed(b"*/*", "any")),
        // Not HTML: plain text, a tag name that is not in the table, a
        // type that is not HTML (text/plain stays text; a download stays
        // a download).
        ("/words", untyped(b"Hello. ", "words")),
        ("/bogus", untyped(b"<bogus>", "bogus")),
        ("/plain", typed(b"text/plain", "plain")),
        ("/octets", typed(b"application/octet-stream", "octets")),
    ];
    let paths: Vec<&str> = pages.iter().map(|(p, _)| *p).collect();
    let mut all = vec![("/", home(&paths))];
    all.extend(pages);
    let s = serve(all).await;
    let c = crawl(&s).await;
    let sniffed = [
        "comment", "title", "head", "body", "p", "a", "ws", "bom", "unknown", "any",
    ];
    let mut want: BTreeSet<String> = paths.iter().map(|p| p.to_string()).collect();
    want.insert("/".into());
    want.extend(sniffed.iter().map(|n| format!("/found/{n}")));
    want.insert("/found/a-first".into());
    assert_eq!(requested(&s), want);
    for name in sniffed {
        assert_eq!(
            c.page_field(&s.url(&format!("/{name}")), "title")
                .await
                .as_deref(),
            Some(name),
            "{name}"
        );
    }
    for name in ["words", "bogus", "plain", "octets"] {
        assert_eq!(
            c.page_field(&s.url(&format!("/{name}")), "title").await,
            None,
            "{name}"
        );
    }
    assert_eq!(c.report.failed, 0);
}

/// `text` in windows-1251.
fn cp1251(text: &str) -> Vec<u8> {
    encoding_rs::WINDOWS_1251.encode(text).0.into_owned()
}

#[tokio::test]
async fn the_last_content_type_header_wins_and_keeps_an_earlier_charset() {
    let body = cp1251("<title>Привет, мир</title><p>Новости дня.</p>");
    let ct = header::CONTENT_TYPE;
    let pages = vec![
        // The last one wins: windows-1251, not ISO-8859-1.
        (
            "/last",
            answer(
                &[
                    (ct.clone(), b"text/html; charset=iso-8859-1"),
                    (ct.clone(), b"text/html; charset=windows-1251"),
                ],
                body.clone(),
            ),
        ),
        (
            "/then-charset",
            answer(
                &[
                    (ct.clone(), b"text/html"),
                    (ct.clone(), b"text/html; charset=windows-1251"),
                ],
                body.clone(),
            ),
        ),
        // A last value of the same type without a charset keeps the
        // earlier one.
        (
            "/kept",
            answer(
                &[
                    (ct.clone(), b"text/html; charset=windows-1251"),
                    (ct.clone(), b"text/html"),
                ],
                body.clone(),
            ),
        ),
        // The type is the last one's too.
        (
            "/type",
            answer(
                &[(ct.clone(), b"text/plain"), (ct.clone(), b"text/html")],
                "<title>Typed</title><a href=\"/found/type\">x</a>",
            ),
        ),
    ];
    let paths: Vec<&str> = pages.iter().map(|(p, _)| *p).collect();
    let mut all = vec![("/", home(&paths))];
    all.extend(pages);
    let s = serve(all).await;
    let c = crawl(&s).await;
    for p in ["/last", "/then-charset", "/kept"] {
        let url = s.url(p);
        assert_eq!(
            c.page_field(&url, "title").await.as_deref(),
            Some("Привет, мир"),
            "{p}"
        );
        assert_eq!(
            c.page_field(&url, "encoding").await.as_deref(),
            Some("windows-1251"),
            "{p}"
        );
        assert_eq!(
            c.page_field(&url, "content_type").await.as_deref(),
            Some("text/html; charset=windows-1251"),
            "{p}"
        );
    }
    assert_eq!(
        c.page_field(&s.url("/type"), "title").await.as_deref(),
        Some("Typed")
    );
    assert!(requested(&s).contains("/found/type"));
}

#[tokio::test]
async fn an_undeclared_charset_is_detected_and_a_late_meta_charset_honoured() {
    let ct: &[(HeaderName, &[u8])] = &[(header::CONTENT_TYPE, b"text/html")];
    // windows-1251, declared nowhere.
    let russian = cp1251(
        "<!DOCTYPE html><html><head><title>Новости дня</title></head><body>\
         <p>Сегодня в городе прошёл сильный дождь, а на завтра синоптики обещают солнце.</p>\
         </body></html>",
    );
    // A <meta charset> after the first 1024 bytes, naming an encoding the
    // detector would not guess (x-mac-cyrillic: its capitals are other
    // letters in windows-1251).
    let mac = encoding_rs::Encoding::for_label(b"x-mac-cyrillic").unwrap();
    let late = [
        format!(
            "<!DOCTYPE html><html><head><script>var config = \"{}\";</script>",
            "x".repeat(1100)
        )
        .as_bytes(),
        b"<meta charset=\"x-mac-cyrillic\">",
        &mac.encode("<title>Привет, мир</title></head><body><p>Новости дня.</p></body></html>")
            .0,
    ]
    .concat();
    let s = serve(vec![
        ("/", home(&["/ru", "/late"])),
        ("/ru", answer(ct, russian)),
        ("/late", answer(ct, late)),
    ])
    .await;
    let c = crawl(&s).await;
    let field = |p: &str, f: &'static str| {
        let url = s.url(p);
        let c = &c;
        async move { c.page_field(&url, f).await }
    };
    assert_eq!(field("/ru", "title").await.as_deref(), Some("Новости дня"));
    assert_eq!(
        field("/ru", "encoding").await.as_deref(),
        Some("windows-1251")
    );
    assert!(
        field("/ru", "text")
            .await
            .unwrap()
            .starts_with("Сегодня в городе прошёл сильный дождь")
    );
    assert_eq!(
        field("/late", "title").await.as_deref(),
        Some("Привет, мир")
    );
    assert_eq!(
        field("/late", "encoding").await.as_deref(),
        Some("x-mac-cyrillic")
    );
}

/// A robots.txt answer.
fn robots(txt: &str) -> Answer {
    answer(&[(header::CONTENT_TYPE, b"text/plain")], txt)
}

#[tokio::test]
async fn a_robots_rule_that_cannot_be_compiled_voids_only_itself() {
    // 40 wildcards and an end anchor: past texting_robots' regex size
    // limit, which made it refuse the whole file (read as allow-all).
    let wild: String = (0..40)
        .map(|i| format!("*{}=", (b'a' + (i % 26) as u8) as char))
        .collect();
    let txt = format!("User-agent: *\nDisallow: /{wild}$\nDisallow: /secret/\n");
    let s = serve(vec![
        ("/robots.txt", robots(&txt)),
        ("/", home(&["/secret/plans", "/public"])),
    ])
    .await;
    let c = crawl(&s).await;
    assert_eq!(
        requested(&s),
        ["/", "/public"].map(String::from).into_iter().collect()
    );
    assert_eq!(
        c.urls_in("skipped")
            .await
            .get(&s.url("/secret/plans"))
            .map(String::as_str),
        Some("robots")
    );
    // `trawl status` names the host and the count.
    let status = trawl::status::collect(&c.store).await.unwrap();
    let origin = s.url("");
    assert!(
        status.to_text().contains(&format!(
            "  {origin}: robots.txt: 1 rule could not be used\n"
        )),
        "{}",
        status.to_text()
    );
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(
        json["robots_unusable_rules"],
        serde_json::json!([{"origin": origin, "rules": 1}])
    );
}

#[tokio::test]
async fn a_robots_group_named_with_a_version_applies_to_trawl() {
    let s = serve(vec![
        (
            "/robots.txt",
            robots("User-agent: trawl/1.0\nDisallow: /private/\n"),
        ),
        ("/", home(&["/private/diary", "/open"])),
    ])
    .await;
    let c = crawl(&s).await;
    assert_eq!(
        requested(&s),
        ["/", "/open"].map(String::from).into_iter().collect()
    );
    assert_eq!(
        c.urls_in("skipped")
            .await
            .get(&s.url("/private/diary"))
            .map(String::as_str),
        Some("robots")
    );
}
