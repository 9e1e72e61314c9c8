//! A hostile web on loopback: bombs, drips, stalls, resets, lying
//! Content-Lengths, binary "HTML", 100,000 links, deep nesting, odd
//! encodings, traps. The crawl finishes within its timeouts, records what
//! happened to each, and crawls the rest of the site fully.

use std::io::Write;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::crawl::{config, run};
use crate::util::{html, listener};

const OK_PAGES: usize = 5;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A raw HTTP server for what a framework will not send: HTTP/1.0
/// close-delimited bodies, Content-Lengths that lie, resets mid-body.
async fn raw_server() -> u16 {
    let l = listener().await;
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                let page = b"<html><head><title>Raw</title></head><body><p>Close-delimited text.</p></body></html>";
                match path.as_str() {
                    "/http10" => {
                        let _ = sock
                            .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n")
                            .await;
                        let _ = sock.write_all(page).await;
                    }
                    "/short-body" => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n<html><body>only this")
                            .await;
                    }
                    "/reset" => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n<html><body>")
                            .await;
                        let _ = sock.set_zero_linger();
                    }
                    _ => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                    }
                }
                drop(sock);
            });
        }
    });
    port
}

async fn hostile_site(raw: u16) -> (u16, Vec<&'static str>) {
    let l = listener().await;
    let port = l.local_addr().unwrap().port();
    let paths = vec![
        "/bomb", "/drip", "/stall", "/binary", "/links", "/deep", "/empty", "/sjis", "/w1252",
        "/badutf8", "/loop/x/", "/long", "/to-ftp",
    ];
    let mut home = String::from("<html><body>");
    for p in &paths {
        home.push_str(&format!("<a href=\"{p}\">{p}</a>"));
    }
    for i in 0..OK_PAGES {
        home.push_str(&format!("<a href=\"/ok/{i}\">ok</a>"));
    }
    for p in ["/http10", "/short-body", "/reset"] {
        home.push_str(&format!("<a href=\"http://127.0.0.1:{raw}{p}\">raw</a>"));
    }
    home.push_str("</body></html>");
    let bomb = gzip(&[b"<p>".as_slice(), &b"bomb text ".repeat((16 << 20) / 10)].concat());
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let home = home.clone();
        let bomb = bomb.clone();
        async move {
            let path = req.uri().path().to_string();
            match path.as_str() {
                "/" => html(home),
                // 16 MiB of HTML in a few hundred KB of gzip.
                "/bomb" => (
                    [
                        (header::CONTENT_TYPE, "text/html"),
                        (header::CONTENT_ENCODING, "gzip"),
                    ],
                    bomb,
                )
                    .into_response(),
                // One byte every 300 ms, for ever.
                "/drip" => {
                    let stream = futures_util::stream::unfold((), |()| async {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"x")), ()))
                    });
                    html(Body::from_stream(stream))
                }
                // Headers, then nothing.
                "/stall" => html(Body::from_stream(futures_util::stream::pending::<
                    Result<bytes::Bytes, std::io::Error>,
                >())),
                "/binary" => {
                    let mut x = 0x9E37_79B9u32;
                    let noise: Vec<u8> = (0..200_000)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 17;
                            x ^= x << 5;
                            x as u8
                        })
                        .collect();
                    html(noise)
                }
                "/links" => {
                    let mut b = String::from("<html><body>");
                    for i in 0..100_000 {
                        // Out of scope: recorded, not fetched.
                        b.push_str(&format!("<a href=\"http://elsewhere.invalid/{i}\">{i}</a>"));
                    }
                    html(b)
                }
                "/deep" => html(format!(
                    "<html><body>{}deep text{}</body></html>",
                    "<div>".repeat(100_000),
                    "</div>".repeat(100_000)
                )),
                "/empty" => html(Vec::<u8>::new()),
                "/sjis" => {
                    // "日本語" in Shift_JIS, declared by <meta charset>.
                    let mut b = b"<html><head><meta charset=\"shift_jis\"><title>".to_vec();
                    b.extend_from_slice(&[0x93, 0xfa, 0x96, 0x7b, 0x8c, 0xea]);
                    b.extend_from_slice(b"</title></head><body><p>x</p></body></html>");
                    ([(header::CONTENT_TYPE, "text/html")], b).into_response()
                }
                "/w1252" => {
                    // "café" in windows-1252, declared by the header.
                    let b = b"<html><head><title>caf\xe9</title></head><body>x</body></html>".to_vec();
                    ([(header::CONTENT_TYPE, "text/html; charset=windows-1252")], b)
                        .into_response()
                }
                "/badutf8" => html(
                    b"<html><head><title>bad \xff\xfe bytes</title></head><body>x</body></html>"
                        .to_vec(),
                ),
                // A relative link that nests for ever: /loop/x/x/x/...
                p if p.starts_with("/loop/") => html("<html><body><a href=\"x/\">deeper</a></body></html>"),
                "/long" => html(format!(
                    "<html><body><a href=\"/l/{}\">long</a></body></html>",
                    "y".repeat(3000)
                )),
                "/to-ftp" => (
                    StatusCode::FOUND,
                    [(header::LOCATION, "ftp://127.0.0.1/file")],
                )
                    .into_response(),
                p if p.starts_with("/ok/") => {
                    html("<html><head><title>fine</title></head><body><p>A normal page.</p></body></html>")
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (port, paths)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_site_is_crawled_to_the_end_with_every_failure_recorded() {
    let raw = raw_server().await;
    let (port, _) = hostile_site(raw).await;
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let mut cfg = config(&[url("/")]);
    cfg.fetch.max_body_size = 8 << 20;
    cfg.fetch.timeout = Duration::from_secs(3);
    cfg.fetch.read_timeout = Duration::from_secs(3);
    cfg.politeness.retries = 0;
    cfg.concurrency = 16;
    cfg.politeness.per_host_concurrency = 16;
    let started = Instant::now();
    let c = run(cfg).await;
    let took = started.elapsed();
    // Bounded by the timeouts (3 s), with room for a loaded machine.
    assert!(took < Duration::from_secs(120), "{took:?}");

    let pages = c.pages().await;
    let failed = c.urls_in("failed").await;
    let skipped = c.urls_in("skipped").await;
    // The rest of the site is all there.
    for i in 0..OK_PAGES {
        assert_eq!(pages[&url(&format!("/ok/{i}"))].0, 200);
    }
    // Nothing panicked.
    assert!(!failed.values().any(|r| r == "panic"), "{failed:?}");

    // A gzip bomb is cut at --max-body-size (counted decompressed).
    assert_eq!(
        c.page_field(&url("/bomb"), "truncated").await.as_deref(),
        Some("1")
    );
    assert_eq!(
        c.page_field(&url("/bomb"), "size").await.as_deref(),
        Some("8388608")
    );
    // Its hash covers all 8 MiB read, though only the 4 MiB parsed were
    // held.
    let plain = [b"<p>".as_slice(), &b"bomb text ".repeat((16 << 20) / 10)].concat();
    assert_eq!(
        c.page_field(&url("/bomb"), "content_hash").await,
        Some(trawl::worker::sha256_hex(&plain[..8 << 20]))
    );
    // Its text is cut at 1 MiB.
    let text = c.page_field(&url("/bomb"), "text").await.unwrap();
    assert!(
        text.len() <= 1 << 20 && text.len() > 1 << 19,
        "{}",
        text.len()
    );
    assert!(text.starts_with("bomb text bomb"));
    // A drip and a stall are cut off by the timeouts.
    assert_eq!(failed[&url("/drip")], "timeout");
    assert_eq!(failed[&url("/stall")], "timeout");
    // Binary served as HTML, an empty body, 100,000 nested divs: stored.
    for p in ["/binary", "/empty", "/deep"] {
        assert_eq!(pages[&url(p)].0, 200, "{p}");
    }
    // The binary one unparsed: no text, no encoding; `status` counts it.
    assert_eq!(c.page_field(&url("/binary"), "text").await, None);
    assert_eq!(c.page_field(&url("/binary"), "encoding").await, None);
    let status = trawl::status::collect(&c.store).await.unwrap();
    assert_eq!(status.pages_binary, 1);
    // Only the bomb, cut at --max-body-size, is stored in part: /deep and
    // /links are read whole by the streaming parser.
    assert_eq!(status.pages_truncated, 1);
    assert_eq!(
        c.page_field(&url("/empty"), "encoding").await.as_deref(),
        Some("UTF-8")
    );
    for p in ["/deep", "/links"] {
        assert_eq!(
            c.page_field(&url(p), "truncated").await.as_deref(),
            Some("0"),
            "{p}"
        );
    }
    // 100,000 links: every one seen and counted, 10,000 kept.
    let counted: i64 = c
        .page_field(&url("/links"), "links_count")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(counted, 100_000);
    let kept: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM links WHERE from_id = (SELECT id FROM urls WHERE url = $1)",
    )
    .bind(url("/links"))
    .fetch_one(&c.db.sql().await)
    .await
    .unwrap();
    assert_eq!(kept, 10_000);
    // Encodings: readable text whatever the bytes.
    assert_eq!(
        c.page_field(&url("/sjis"), "title").await.as_deref(),
        Some("日本語")
    );
    assert_eq!(
        c.page_field(&url("/w1252"), "title").await.as_deref(),
        Some("café")
    );
    assert_eq!(
        c.page_field(&url("/badutf8"), "title").await.as_deref(),
        Some("bad \u{FFFD}\u{FFFD} bytes")
    );
    // Traps: a path that repeats itself, a URL over 2,048 bytes.
    assert_eq!(skipped[&url("/loop/x/x/x/x/")], "trap");
    assert!(pages.contains_key(&url("/loop/x/x/x/")));
    let long = skipped
        .iter()
        .find(|(u, _)| u.contains("/l/yyy"))
        .expect("long URL recorded");
    assert_eq!(long.1, "trap");
    // A redirect to another scheme is refused.
    assert_eq!(failed[&url("/to-ftp")], "bad_redirect");
    // Raw HTTP: a close-delimited HTTP/1.0 body is read; a body shorter
    // than its Content-Length and a reset mid-body are failures.
    let raw_url = |p: &str| format!("http://127.0.0.1:{raw}{p}");
    assert_eq!(pages[&raw_url("/http10")].0, 200);
    assert_eq!(
        c.page_field(&raw_url("/http10"), "title").await.as_deref(),
        Some("Raw")
    );
    assert_eq!(failed[&raw_url("/short-body")], "body");
    assert_eq!(failed[&raw_url("/reset")], "body");
}

/// A 5 MB UTF-8 page with no charset anywhere: only its first 4 MiB (what
/// is parsed) is kept, and the cut falls inside a character. It is still
/// read as UTF-8, not as windows-1252.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_kept_in_part_keeps_its_encoding() {
    let l = listener().await;
    let port = l.local_addr().unwrap().port();
    let app = Router::new().fallback(|req: axum::extract::Request| async move {
        match req.uri().path() {
            "/" => (
                [(header::CONTENT_TYPE, "text/html")],
                format!("<p>{}</p>", "é".repeat(5 << 19)),
            )
                .into_response(),
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let c = run(config(&[format!("http://127.0.0.1:{port}/")])).await;
    let u = format!("http://127.0.0.1:{port}/");
    assert_eq!(c.page_field(&u, "encoding").await.as_deref(), Some("UTF-8"));
    assert_eq!(c.page_field(&u, "truncated").await.as_deref(), Some("1"));
    assert_eq!(
        c.page_field(&u, "size").await.as_deref(),
        Some(((5 << 20) + 7).to_string().as_str())
    );
    let text = c.page_field(&u, "text").await.unwrap();
    assert!(text.starts_with("éééé"), "{}", &text[..20]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_pages_per_host_stops_an_infinite_calendar() {
    let l = listener().await;
    let port = l.local_addr().unwrap().port();
    // Every day links to the next one, for ever.
    let app = Router::new().fallback(|req: axum::extract::Request| async move {
        let day: u64 = req
            .uri()
            .path()
            .trim_start_matches("/day/")
            .parse()
            .unwrap_or(0);
        html(format!(
            "<html><body><a href=\"/day/{}\">next</a><a href=\"/day/{}\">after</a></body></html>",
            day + 1,
            day + 2
        ))
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let mut cfg = config(&[format!("http://127.0.0.1:{port}/day/0")]);
    cfg.limits.max_pages_per_host = Some(20);
    let c = run(cfg).await;
    assert_eq!(c.report.fetched, 20);
    assert_eq!(c.pages().await.len(), 20);
    let skipped = c.urls_in("skipped").await;
    assert!(!skipped.is_empty());
    assert!(skipped.values().all(|r| r == "trap"), "{skipped:?}");
    assert_eq!(c.report.queued, 0);

    // A higher budget on resume: the trapped days are queued again, and
    // the crawl stops at the new budget.
    let r = crate::crawl::resume(&c.store, |cfg| cfg.limits.max_pages_per_host = Some(30)).await;
    assert_eq!(r.fetched, 10);
    assert_eq!(c.pages().await.len(), 30);
    let skipped = c.urls_in("skipped").await;
    assert!(!skipped.is_empty());
    assert!(skipped.values().all(|r| r == "trap"), "{skipped:?}");
    // A trap for its shape (a segment repeated) stays one.
    let shaped = format!("http://127.0.0.1:{port}/x/x/x/x/day/1");
    sqlx::query(
        "INSERT INTO urls (id, url, origin, depth, state, reason, discovered_at, updated_at) \
         VALUES (1, $1, $2, 1, 'skipped', 'trap', 0, 0)",
    )
    .bind(&shaped)
    .bind(format!("http://127.0.0.1:{port}"))
    .execute(&c.db.sql().await)
    .await
    .unwrap();
    let r = crate::crawl::resume(&c.store, |cfg| cfg.limits.max_pages_per_host = Some(35)).await;
    assert_eq!(r.fetched, 5);
    assert_eq!(
        c.urls_in("skipped").await.get(&shaped).map(String::as_str),
        Some("trap")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_resolving_to_internal_addresses_are_fetched_only_when_named() {
    // `localhost` resolves to loopback: reached through a `*.` pattern it
    // stands for any name that resolves (or rebinds) to an internal address.
    let inner = listener().await;
    let inner_port = inner.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            html("<html><body><p>internal</p></body></html>")
        }
    });
    tokio::spawn(async move { axum::serve(inner, app).await.unwrap() });
    let outer = listener().await;
    let outer_port = outer.local_addr().unwrap().port();
    let secret = format!("http://localhost:{inner_port}/secret");
    let page = format!("<html><body><a href=\"{secret}\">x</a></body></html>");
    let app = Router::new().fallback(move || {
        let page = page.clone();
        async move { html(page) }
    });
    tokio::spawn(async move { axum::serve(outer, app).await.unwrap() });
    let seed = format!("http://127.0.0.1:{outer_port}/");
    let hits_now = || hits.load(std::sync::atomic::Ordering::SeqCst);

    // Through a wildcard: refused when connecting, nothing sent to it.
    let mut cfg = config(std::slice::from_ref(&seed));
    cfg.scope.allow_hosts = vec!["*.localhost".into()];
    let c = run(cfg.clone()).await;
    assert_eq!(c.urls_in("skipped").await[&secret], "blocked_address");
    assert_eq!(hits_now(), 0);
    // The same without robots.txt: the page fetch itself is refused.
    let mut no_robots = cfg.clone();
    no_robots.politeness.robots = false;
    let c = run(no_robots).await;
    assert_eq!(c.urls_in("failed").await[&secret], "blocked_address");
    assert_eq!(hits_now(), 0);

    // Named exactly, or with --allow-private-addresses: fetched.
    let mut named = config(std::slice::from_ref(&seed));
    named.scope.allow_hosts = vec!["localhost".into()];
    let c = run(named).await;
    assert_eq!(c.pages().await[&secret].0, 200);
    let before = hits_now();
    assert!(before >= 2, "robots.txt and the page");
    let mut allowed = cfg;
    allowed.scope.allow_private_addresses = true;
    let c = run(allowed).await;
    assert_eq!(c.pages().await[&secret].0, 200);
    assert!(hits_now() > before);
}

#[tokio::test]
async fn ip_literals_are_checked_too_and_proxies_are_not_used() {
    use trawl::fetch::{AddressPolicy, FetchConfig, FetchError, Fetcher};
    let l = listener().await;
    let port = l.local_addr().unwrap().port();
    let app = Router::new().fallback(|| async { html("<p>in</p>") });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let f = Fetcher::with_policy(
        &FetchConfig::default(),
        AddressPolicy::TrustedHosts(vec!["localhost".into()]),
    )
    .unwrap();
    // An IP never reaches a resolver: it is checked before connecting.
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ] {
        let err = f.get(&url::Url::parse(&url).unwrap()).await.unwrap_err();
        assert!(matches!(err, FetchError::Blocked(_)), "{url}: {err}");
        assert_eq!(err.reason(), "blocked_address");
    }
    // The named host is fetched.
    let ok = f
        .get(&url::Url::parse(&format!("http://localhost:{port}/")).unwrap())
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn only_the_origins_own_host_refused_blocks_it_not_a_robots_redirect() {
    use trawl::fetch::{AddressPolicy, FetchConfig, Fetcher};
    let l = listener().await;
    let port = l.local_addr().unwrap().port();
    // robots.txt redirects to the cloud metadata address.
    let app = Router::new().fallback(|| async {
        (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, "http://169.254.169.254/robots.txt")],
        )
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let f = Fetcher::with_policy(
        &FetchConfig::default(),
        AddressPolicy::TrustedHosts(vec!["127.0.0.1".into()]),
    )
    .unwrap();
    // The named origin answered; only its redirect hop was refused: an
    // unavailable robots.txt, not a blocked host.
    let named = trawl::robots::fetch(&f, &format!("http://127.0.0.1:{port}")).await;
    assert!(!named.blocked);
    assert!(named.error.unwrap().contains("address blocked"));
    // An origin whose own host is internal and not named is blocked.
    let other = trawl::robots::fetch(&f, &format!("http://localhost:{port}")).await;
    assert!(other.blocked, "{:?}", other.error);
}
