//! The real web's rough edges: refresh redirects, raw bytes in `Location`,
//! cookie-gated redirects, frames, slow URLs, assets, unreachable hosts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::Row;

use crate::cli::{stderr, trawl_async};
use crate::crawl::{Crawled, config, resume, run};
use crate::util::{TestDb, html, listener};

/// A site whose answers `route` decides, given the path and the request's
/// headers (`None`: 404). Every request is logged as "path?query".
struct Site {
    port: u16,
    log: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Site {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, p)| p.clone())
            .filter(|p| p != "/robots.txt" && p != "/sitemap.xml")
            .collect()
    }
}

type Route = dyn Fn(&str, &HeaderMap, u16) -> Option<Response> + Send + Sync;

async fn site(
    route: impl Fn(&str, &HeaderMap, u16) -> Option<Response> + Send + Sync + 'static,
) -> Site {
    let l = listener().await;
    let port = l.local_addr().unwrap().port();
    let log: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let route: Arc<Route> = Arc::new(route);
    let log2 = log.clone();
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let route = route.clone();
        let log = log2.clone();
        async move {
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            log.lock().unwrap().push((Instant::now(), pq));
            match route(req.uri().path(), req.headers(), port) {
                Some(r) if r.status().as_u16() == HANG => std::future::pending().await,
                Some(r) => r,
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    Site { port, log }
}

/// A status a route returns for "never answer".
const HANG: u16 = 599;

fn with_header(mut r: Response, name: &'static str, value: &[u8]) -> Response {
    r.headers_mut()
        .append(name, HeaderValue::from_bytes(value).unwrap());
    r
}

fn status(code: u16) -> Response {
    StatusCode::from_u16(code).unwrap().into_response()
}

async fn redirects(c: &Crawled) -> Vec<(String, Option<String>, i64)> {
    sqlx::query(
        "SELECT u.url, p.redirect_to, p.status FROM pages p JOIN urls u ON u.id = p.url_id ORDER BY u.url",
    )
    .fetch_all(&c.db.sql().await)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

async fn url_row(c: &Crawled, url: &str) -> (i64, i64) {
    let r = sqlx::query("SELECT depth, redirect_hops FROM urls WHERE url = $1")
        .bind(url)
        .fetch_one(&c.db.sql().await)
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

fn redirect_of(rows: &[(String, Option<String>, i64)], url: &str) -> Option<String> {
    rows.iter()
        .find(|(u, _, _)| u == url)
        .unwrap_or_else(|| panic!("{url} not stored"))
        .1
        .clone()
}

#[tokio::test]
async fn refresh_redirects_are_followed_as_redirect_hops() {
    let s = site(|path, _, port| {
        let page = |body: String| Some(html(body));
        match path {
            "/robots.txt" => Some("User-agent: *\nDisallow: /private/\n".into_response()),
            "/" => page(
                "<a href=/upper>1</a><a href=/unquoted>2</a><a href=/absolute>3</a>\
                 <a href=/header>4</a><a href=/later>5</a><a href=/self>6</a>\
                 <a href=/loop1>7</a><a href=/to-private>8</a>"
                    .into(),
            ),
            "/upper" => page(r#"<META HTTP-EQUIV=REFRESH CONTENT="0; URL=/start/">"#.into()),
            "/unquoted" => page("<meta http-equiv=refresh content=0;url=/a/>".into()),
            "/absolute" => page(format!(
                "<meta http-equiv=\"Refresh\" content=\"3; url='http://127.0.0.1:{port}/b/'\"><p>Moved."
            )),
            "/header" => Some(with_header(html("moved"), "refresh", b"0; url=/c/")),
            "/later" => page(
                "<meta http-equiv=refresh content=\"60; url=/d/\"><title>Later</title><p>Read me first."
                    .into(),
            ),
            "/self" => page("<meta http-equiv=refresh content=\"30\"><title>Self</title><p>Live.".into()),
            "/loop1" => page("<meta http-equiv=refresh content=\"0; url=/loop2\">".into()),
            "/loop2" => page("<meta http-equiv=refresh content=\"0; url=/loop1\">".into()),
            "/to-private" => page("<meta http-equiv=refresh content=\"0; url=/private/x\">".into()),
            "/start/" | "/a/" | "/b/" | "/c/" | "/d/" | "/private/x" => {
                page(format!("<title>{path}</title><p>Here."))
            }
            _ => None,
        }
    })
    .await;
    let c = run(config(&[s.url("/")])).await;
    let rows = redirects(&c).await;
    for (from, to) in [
        ("/upper", "/start/"),
        ("/unquoted", "/a/"),
        ("/absolute", "/b/"),
        ("/header", "/c/"),
        ("/to-private", "/private/x"),
    ] {
        assert_eq!(redirect_of(&rows, &s.url(from)), Some(s.url(to)), "{from}");
    }
    // A long delay is a page with a link; refreshing itself, a page.
    assert_eq!(redirect_of(&rows, &s.url("/later")), None);
    assert_eq!(redirect_of(&rows, &s.url("/self")), None);
    // The hop keeps the stub's depth and counts as a redirect hop; the
    // delayed one is one link further.
    assert_eq!(url_row(&c, &s.url("/start/")).await, (1, 1));
    assert_eq!(url_row(&c, &s.url("/c/")).await, (1, 1));
    assert_eq!(url_row(&c, &s.url("/d/")).await, (2, 0));
    let failed = c.urls_in("failed").await;
    assert_eq!(
        failed.get(&s.url("/loop2")).map(String::as_str),
        Some("redirect_loop")
    );
    let skipped = c.urls_in("skipped").await;
    assert_eq!(
        skipped.get(&s.url("/private/x")).map(String::as_str),
        Some("robots")
    );
    assert!(!s.requests().contains(&"/private/x".to_string()));
    // A stub is not summarized; its target is.
    let summaries: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM summaries s JOIN pages p ON p.content_hash = s.content_hash \
         JOIN urls u ON u.id = p.url_id WHERE u.url = $1",
    )
    .bind(s.url("/absolute"))
    .fetch_one(&c.db.sql().await)
    .await
    .unwrap();
    assert_eq!(summaries, 0);
}

#[tokio::test]
async fn a_location_of_raw_bytes_is_followed_and_an_unusable_one_fails() {
    let s = site(|path, _, _| match path {
        "/" => Some(html(
            "<a href=/utf8>1</a><a href=/latin1>2</a><a href=/none>3</a><a href=/mailto>4</a>",
        )),
        "/utf8" => Some(with_header(status(302), "location", b"/caf\xc3\xa9")),
        "/latin1" => Some(with_header(status(301), "location", b"/na\xefve")),
        "/none" => Some(status(302)),
        "/mailto" => Some(with_header(status(302), "location", b"mailto:a@b.test")),
        "/caf%C3%A9" | "/na%C3%AFve" => Some(html("<title>Arrived</title>")),
        _ => None,
    })
    .await;
    let c = run(config(&[s.url("/")])).await;
    let requests = s.requests();
    assert!(requests.contains(&"/caf%C3%A9".to_string()), "{requests:?}");
    assert!(
        requests.contains(&"/na%C3%AFve".to_string()),
        "{requests:?}"
    );
    let rows = redirects(&c).await;
    assert_eq!(
        redirect_of(&rows, &s.url("/utf8")),
        Some(s.url("/caf%C3%A9"))
    );
    assert_eq!(
        redirect_of(&rows, &s.url("/latin1")),
        Some(s.url("/na%C3%AFve"))
    );
    assert_eq!(
        c.page_field(&s.url("/caf%C3%A9"), "title").await.as_deref(),
        Some("Arrived")
    );
    let failed = c.urls_in("failed").await;
    assert_eq!(
        failed.get(&s.url("/none")).map(String::as_str),
        Some("bad_redirect")
    );
    assert_eq!(
        failed.get(&s.url("/mailto")).map(String::as_str),
        Some("bad_redirect")
    );
    assert_eq!(
        redirect_of(&rows, &s.url("/mailto")),
        Some("mailto:a@b.test".into())
    );
}

fn has_cookie(headers: &HeaderMap, pair: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split("; ").any(|p| p == pair))
}

/// `/shop/` sets a cookie and redirects to itself until the cookie comes
/// back; `/login` sets a session that `/account` requires.
async fn cookie_site() -> Site {
    site(|path, headers, _| match path {
        "/" => Some(html("<a href=/shop/>shop</a>")),
        "/shop/" if has_cookie(headers, "visited=1") => Some(html("<title>Shop</title><p>Open.")),
        "/shop/" => {
            let r = with_header(status(302), "location", b"/shop/");
            Some(with_header(r, "set-cookie", b"visited=1; Path=/"))
        }
        "/login" => Some(with_header(
            html("<title>Welcome</title><a href=/account>account</a>"),
            "set-cookie",
            b"session=s3cr3t-value; Path=/; HttpOnly",
        )),
        "/account" if has_cookie(headers, "session=s3cr3t-value") => {
            Some(html("<title>Your account</title>"))
        }
        "/account" => Some(status(403)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_redirect_that_sets_a_cookie_is_followed_with_it() {
    let s = cookie_site().await;
    let c = run(config(&[s.url("/")])).await;
    assert_eq!(
        c.page_field(&s.url("/shop/"), "title").await.as_deref(),
        Some("Shop")
    );
    assert_eq!(
        c.page_field(&s.url("/shop/"), "status").await.as_deref(),
        Some("200")
    );
    assert!(c.urls_in("failed").await.is_empty());
    assert_eq!(
        s.requests().iter().filter(|p| *p == "/shop/").count(),
        2,
        "once to get the cookie, once with it"
    );

    // Without cookies it is the loop it looks like.
    let s = cookie_site().await;
    let mut cfg = config(&[s.url("/")]);
    cfg.fetch.cookies = false;
    let c = run(cfg).await;
    assert_eq!(
        c.urls_in("failed")
            .await
            .get(&s.url("/shop/"))
            .map(String::as_str),
        Some("redirect_loop")
    );
}

#[tokio::test]
async fn resume_keeps_the_session_and_cookie_values_are_never_shown() {
    let s = cookie_site().await;
    let mut cfg = config(&[s.url("/login")]);
    cfg.limits.max_pages = Some(1);
    let c = run(cfg).await;
    assert_eq!(
        c.page_field(&s.url("/login"), "title").await.as_deref(),
        Some("Welcome")
    );
    // A new run (a new client) sends the stored session cookie.
    resume(&c.store, |cfg| cfg.limits.max_pages = None).await;
    assert_eq!(
        c.page_field(&s.url("/account"), "title").await.as_deref(),
        Some("Your account")
    );
    let db = c.db.target();
    for args in [
        vec!["status", "--db", db],
        vec!["export", "--db", db, "--what", "pages", "--with-text"],
        vec!["export", "--db", db, "--what", "links"],
    ] {
        let out = trawl_async(args.iter().map(|a| a.to_string()).collect()).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(!all.contains("s3cr3t"), "{args:?} shows a cookie value");
    }
}

#[tokio::test]
async fn frame_and_iframe_sources_are_links_with_their_kind() {
    let s = site(|path, _, _| match path {
        "/" => Some(html(
            "<title>Book</title><noscript><iframe src=\"toc.html\" title=\"Contents\"></iframe></noscript>\
             <p>Intro. <a href=/next>next</a>",
        )),
        "/toc.html" => Some(html("<a href=/ch1>1</a><a href=/ch2>2</a>")),
        "/frames" => Some(html(
            "<frameset cols=\"20%,80%\"><frame src=/nav><frame src=/main></frameset>",
        )),
        "/next" => Some(html("<a href=/frames>frames</a>")),
        "/ch1" | "/ch2" | "/nav" | "/main" => Some(html(format!("<title>{path}</title>"))),
        _ => None,
    })
    .await;
    let c = run(config(&[s.url("/")])).await;
    let pages = c.pages().await;
    assert_eq!(pages.get(&s.url("/toc.html")).map(|p| p.1), Some(1));
    assert_eq!(pages.get(&s.url("/ch1")).map(|p| p.1), Some(2));
    assert_eq!(pages.get(&s.url("/main")).map(|p| p.1), Some(3));
    let kinds: Vec<(String, String, String)> = sqlx::query(
        "SELECT f.url, t.url, COALESCE(l.kind, 'a') FROM links l JOIN urls f ON f.id = l.from_id \
         JOIN urls t ON t.id = l.to_id",
    )
    .fetch_all(&c.db.sql().await)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    let kind = |to: &str| {
        kinds
            .iter()
            .find(|(_, t, _)| *t == s.url(to))
            .map(|(_, _, k)| k.clone())
    };
    assert_eq!(kind("/toc.html").as_deref(), Some("iframe"));
    assert_eq!(kind("/nav").as_deref(), Some("frame"));
    assert_eq!(kind("/next").as_deref(), Some("a"));
}

/// A body that sends a byte every 100 ms, forever.
fn drip() -> Response {
    let stream = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b" ")), ()))
    });
    let mut r = Body::from_stream(stream).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}

#[tokio::test]
async fn a_slow_url_does_not_hold_up_its_host() {
    let s = site(|path, _, _| match path {
        "/" => {
            let mut body = String::from("<a href=/stall>s</a><a href=/drip>d</a>");
            for i in 0..30 {
                body.push_str(&format!("<a href=/p/{i}>{i}</a>"));
                if i == 10 {
                    body.push_str("<a href=/never>n</a>");
                }
            }
            Some(html(body))
        }
        "/drip" => Some(drip()),
        // No headers, ever: the whole request times out.
        "/stall" | "/never" => Some(status(HANG)),
        p if p.starts_with("/p/") => Some(html(format!("<title>{p}</title>"))),
        _ => None,
    })
    .await;
    let mut cfg = config(&[s.url("/")]);
    cfg.fetch.timeout = Duration::from_secs(1);
    cfg.fetch.read_timeout = Duration::from_secs(1);
    cfg.politeness.per_host_concurrency = 2;
    let c = run(cfg).await;
    let pages = c.pages().await;
    for i in 0..30 {
        assert_eq!(
            pages.get(&s.url(&format!("/p/{i}"))).map(|p| p.0),
            Some(200),
            "/p/{i}"
        );
    }
    let failed = c.urls_in("failed").await;
    for slow in ["/stall", "/drip", "/never"] {
        assert_eq!(
            failed.get(&s.url(slow)).map(String::as_str),
            Some("timeout"),
            "{slow}"
        );
    }
    // Each slow URL is tried twice, the second time only after every
    // other page of the host was asked for: no back-off held them up.
    let requests = s.requests();
    let last_page = requests.iter().rposition(|p| p.starts_with("/p/")).unwrap();
    for slow in ["/stall", "/drip", "/never"] {
        let at: Vec<usize> = requests
            .iter()
            .enumerate()
            .filter(|(_, p)| *p == slow)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at.len(), 2, "{slow}: {requests:?}");
        assert!(
            at[1] > last_page,
            "{slow} retried before the host's other pages: {requests:?}"
        );
    }
}

#[tokio::test]
async fn links_to_assets_are_skipped_unless_asked_for() {
    let route = |path: &str, _: &HeaderMap, port: u16| match path {
        "/" => Some(html(
            "<a href=/doc.pdf>pdf</a><a href=/img/logo.PNG>logo</a><a href=/a.tar.gz>tar</a>\
             <a href=/page.html>page</a><a href=/go>manual</a>",
        )),
        "/sitemap.xml" => Some(
            format!(
                "<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                 <url><loc>http://127.0.0.1:{port}/report.pdf</loc></url></urlset>"
            )
            .into_response(),
        ),
        "/go" => Some(with_header(status(302), "location", b"/manual.pdf")),
        "/page.html" => Some(html("<title>Page</title>")),
        "/doc.pdf" | "/img/logo.PNG" | "/a.tar.gz" | "/report.pdf" | "/manual.pdf" => {
            Some("%PDF-1.4".into_response())
        }
        _ => None,
    };
    let s = site(route).await;
    let mut cfg = config(&[s.url("/")]);
    cfg.politeness.sitemaps = true;
    let c = run(cfg).await;
    let skipped = c.urls_in("skipped").await;
    for a in ["/doc.pdf", "/img/logo.PNG", "/a.tar.gz"] {
        assert_eq!(
            skipped.get(&s.url(a)).map(String::as_str),
            Some("asset"),
            "{a}"
        );
    }
    let mut requests = s.requests();
    requests.sort();
    assert_eq!(
        requests,
        ["/", "/go", "/manual.pdf", "/page.html", "/report.pdf"]
    );

    let s = site(route).await;
    let mut cfg = config(&[s.url("/")]);
    cfg.scope.fetch_assets = true;
    let c = run(cfg).await;
    assert!(c.urls_in("skipped").await.is_empty());
    assert!(s.requests().contains(&"/doc.pdf".to_string()));
}

#[tokio::test]
async fn an_unreachable_site_fails_with_the_network_reason_and_exit_1() {
    // A port nobody listens on: connection refused.
    let closed = {
        let l = listener().await;
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let seed = format!("http://127.0.0.1:{closed}/");
    let out = trawl_async(
        ["crawl", &seed, "--db", &db, "-q"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot be reached"), "{err}");
    assert!(err.contains("connection_refused"), "{err}");
    assert!(err.contains("no page was stored"), "{err}");
    let (state, reason): (String, String) =
        sqlx::query_as("SELECT state, reason FROM urls WHERE url = $1")
            .bind(&seed)
            .fetch_one(&tdb.sql().await)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("failed", "connection_refused")
    );

    // TLS to a plain-HTTP port.
    let plain = site(|_, _, _| Some(html("<p>plain"))).await;
    let seed = format!("https://127.0.0.1:{}/", plain.port);
    let tdb2 = TestDb::new(dir.path(), "t2.db");
    let db2 = tdb2.target().to_string();
    let out = trawl_async(
        ["crawl", &seed, "--db", &db2, "-q"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let reason: String = sqlx::query_scalar("SELECT reason FROM urls WHERE url = $1")
        .bind(&seed)
        .fetch_one(&tdb2.sql().await)
        .await
        .unwrap();
    assert_eq!(reason, "tls");
}

#[tokio::test]
async fn a_stalled_request_gives_its_host_slot_back() {
    // `/stall` answers only once every other page of the host has been
    // asked for. With one slot per host, that happens only if the stalled
    // request gives its slot back while it waits.
    let others_done = Arc::new(tokio::sync::Notify::new());
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let l = listener().await;
    let port = l.local_addr().unwrap().port();
    let (n2, a2) = (others_done.clone(), asked.clone());
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let (done, asked) = (n2.clone(), a2.clone());
        async move {
            match req.uri().path() {
                "/" => {
                    let mut body = String::from("<a href=/stall>s</a>");
                    for i in 0..10 {
                        body.push_str(&format!("<a href=/p/{i}>{i}</a>"));
                    }
                    html(body)
                }
                "/stall" => {
                    done.notified().await;
                    html("<title>Late</title>")
                }
                p if p.starts_with("/p/") => {
                    if asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 10 {
                        done.notify_one();
                    }
                    html(format!("<title>{p}</title>"))
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let root = format!("http://127.0.0.1:{port}/");
    let mut cfg = config(std::slice::from_ref(&root));
    cfg.politeness.per_host_concurrency = 1;
    cfg.fetch.timeout = Duration::from_secs(120);
    cfg.fetch.read_timeout = Duration::from_secs(120);
    let c = run(cfg).await;
    assert_eq!(
        c.page_field(&format!("{root}stall"), "title")
            .await
            .as_deref(),
        Some("Late")
    );
    assert!(c.urls_in("failed").await.is_empty());
}

#[tokio::test]
async fn a_session_cut_by_the_page_budget_is_finished_by_resume() {
    let s = cookie_site().await;
    let mut cfg = config(&[s.url("/shop/")]);
    cfg.limits.max_pages = Some(1);
    let c = run(cfg).await;
    // The hop that set the cookie spent the budget; the page itself waits.
    let skipped = c.urls_in("skipped").await;
    assert_eq!(
        skipped.get(&s.url("/shop/")).map(String::as_str),
        Some("max_pages")
    );
    resume(&c.store, |cfg| cfg.limits.max_pages = None).await;
    assert_eq!(
        c.page_field(&s.url("/shop/"), "title").await.as_deref(),
        Some("Shop")
    );
}

#[tokio::test]
async fn a_refresh_that_sets_a_cookie_on_itself_is_asked_again_once() {
    let s = site(|path, headers, _| match path {
        "/m" if has_cookie(headers, "m=1") => Some(html("<title>m ok</title>")),
        "/m" => Some(with_header(
            html("<meta http-equiv=refresh content=\"0\"><title>m wait</title>"),
            "set-cookie",
            b"m=1",
        )),
        // Reloads itself every 5 s and sets a cookie every time: a page.
        "/live" => Some(with_header(
            html("<meta http-equiv=refresh content=\"5\"><title>live</title>"),
            "set-cookie",
            b"seen=1",
        )),
        _ => None,
    })
    .await;
    let c = run(config(&[s.url("/m"), s.url("/live")])).await;
    assert_eq!(
        c.page_field(&s.url("/m"), "title").await.as_deref(),
        Some("m ok")
    );
    assert_eq!(
        c.page_field(&s.url("/live"), "title").await.as_deref(),
        Some("live")
    );
    assert_eq!(
        c.page_field(&s.url("/live"), "status").await.as_deref(),
        Some("200")
    );
    assert!(c.urls_in("failed").await.is_empty());
    let live = s.requests().iter().filter(|p| *p == "/live").count();
    assert_eq!(live, 2, "asked again once, with the cookie");
}

#[tokio::test]
async fn a_chain_of_meta_refreshes_stops_at_max_redirects() {
    let s = site(|path, _, _| {
        let n: u32 = path.strip_prefix("/r")?.parse().ok()?;
        Some(html(format!(
            "<meta http-equiv=refresh content=\"0; url=/r{}\"><p>hop {n}",
            n + 1
        )))
    })
    .await;
    let mut cfg = config(&[s.url("/r0")]);
    cfg.limits.max_redirects = 3;
    let c = run(cfg).await;
    assert_eq!(s.requests(), ["/r0", "/r1", "/r2", "/r3"]);
    assert_eq!(
        c.urls_in("failed")
            .await
            .get(&s.url("/r3"))
            .map(String::as_str),
        Some("too_many_redirects")
    );
}

#[tokio::test]
async fn a_host_that_never_answers_is_given_up_in_seconds() {
    let s = site(|path, _, _| match path {
        "/robots.txt" => None,
        _ => Some(status(HANG)),
    })
    .await;
    let seeds: Vec<String> = ["/a", "/b", "/c", "/d", "/e", "/f", "/g"]
        .iter()
        .map(|p| s.url(p))
        .collect();
    let mut cfg = config(&seeds);
    cfg.fetch.timeout = Duration::from_secs(1);
    cfg.fetch.read_timeout = Duration::from_secs(1);
    let c = run(cfg).await;
    let failed = c.urls_in("failed").await;
    assert_eq!(failed.len(), 7, "{failed:?}");
    let unresponsive = failed
        .values()
        .filter(|r| r.as_str() == "host_unresponsive")
        .count();
    assert!(unresponsive >= 1, "{failed:?}");
    assert!(
        failed
            .values()
            .all(|r| r == "timeout" || r == "host_unresponsive"),
        "{failed:?}"
    );
    // Far fewer requests than 7 URLs × 3 attempts.
    let asked = s.requests().len();
    assert!(asked < 15, "{:?}", s.requests());
    // `resume` asks the host again for the URLs it gave up on.
    resume(&c.store, |_| {}).await;
    let again: Vec<String> = s.requests()[asked..].to_vec();
    let never_asked: Vec<String> = failed
        .iter()
        .filter(|(_, r)| r.as_str() == "host_unresponsive")
        .map(|(u, _)| u.rsplit('/').next().map(|p| format!("/{p}")).unwrap())
        .collect();
    assert!(
        never_asked.iter().any(|p| again.contains(p)),
        "{never_asked:?} not asked again: {again:?}"
    );
}

#[tokio::test]
async fn https_to_a_server_that_never_answers_the_handshake_fails_as_connect_timeout() {
    // Accepts connections and never says a word.
    let l = listener().await;
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = l.accept().await {
            held.push(sock);
        }
    });
    let seed = format!("https://127.0.0.1:{port}/");
    let mut cfg = config(std::slice::from_ref(&seed));
    cfg.fetch.connect_timeout = Duration::from_secs(1);
    let c = run(cfg).await;
    assert_eq!(
        c.urls_in("failed").await.get(&seed).map(String::as_str),
        Some("connect_timeout")
    );
}
