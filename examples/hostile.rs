//! Memory on a hostile site against an ordinary one.
//!
//! `cargo run --release --example hostile`
//!
//! Crawls two loopback sites, each in its own process so peak RSS is its
//! own: an ordinary one (2,000 pages of ~20 KB with 20 links each) and the
//! same site with hostile pages linked from its home page: gzip bombs
//! (16 MiB of HTML text each, cut at the 10 MiB body cap), pages of 100,000
//! links, 100,000-deep nesting, 1 MB of binary served as HTML, drips and
//! stalls. Prints each crawl's peak RSS, time and outcome, and the ratio.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use common::proc_status;
use trawl::config::CrawlConfig;
use trawl::progress::Counters;

const PAGES: usize = 2000;

fn html(body: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, "text/html")], body.into()).into_response()
}

fn page(i: usize) -> String {
    let mut s = format!("<html><head><title>Page {i}</title></head><body><main>");
    for p in 0..20 {
        s.push_str(&format!(
            "<p>Paragraph {p} of page {i} says something about topic {} in a sentence. \
             Another sentence follows it here, and a third one ends it.</p>",
            (i + p) % 50
        ));
    }
    for l in 0..20 {
        s.push_str(&format!(
            "<a href=\"/p/{}\">link {l}</a> ",
            (i * 7 + l * 13) % PAGES
        ));
    }
    s.push_str("</main></body></html>");
    s
}

async fn serve(hostile: bool) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    let bomb = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"<html><body><p>").expect("gzip");
        for _ in 0..(16 << 20) / 16 {
            enc.write_all(b"bomb text again ").expect("gzip");
        }
        enc.finish().expect("gzip")
    };
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let bomb = bomb.clone();
        async move {
            let path = req.uri().path().to_string();
            let n = |prefix: &str| {
                path.strip_prefix(prefix)
                    .and_then(|x| x.parse::<usize>().ok())
            };
            if path == "/" {
                let mut s = String::from("<html><body>");
                for i in 0..PAGES.min(50) {
                    s.push_str(&format!("<a href=\"/p/{i}\">p</a>"));
                }
                if hostile {
                    for (kind, count) in [
                        ("bomb", 20),
                        ("links", 5),
                        ("deep", 5),
                        ("binary", 10),
                        ("drip", 3),
                        ("stall", 3),
                    ] {
                        // HOSTILE_ONLY=bomb,links narrows the hostile pages.
                        let only = std::env::var("HOSTILE_ONLY").unwrap_or_default();
                        if !only.is_empty() && !only.split(',').any(|k| k == kind) {
                            continue;
                        }
                        for i in 0..count {
                            s.push_str(&format!("<a href=\"/{kind}/{i}\">x</a>"));
                        }
                    }
                }
                s.push_str("</body></html>");
                return html(s);
            }
            if let Some(i) = n("/p/") {
                return html(page(i));
            }
            if !hostile {
                return axum::http::StatusCode::NOT_FOUND.into_response();
            }
            if path.starts_with("/bomb/") {
                return (
                    [
                        (header::CONTENT_TYPE, "text/html"),
                        (header::CONTENT_ENCODING, "gzip"),
                    ],
                    bomb,
                )
                    .into_response();
            }
            if path.starts_with("/links/") {
                let mut s = String::from("<html><body>");
                for i in 0..100_000 {
                    s.push_str(&format!("<a href=\"http://out.invalid/{i}\">{i}</a>"));
                }
                return html(s);
            }
            if path.starts_with("/deep/") {
                return html(format!(
                    "<html><body>{}x{}</body></html>",
                    "<div>".repeat(100_000),
                    "</div>".repeat(100_000)
                ));
            }
            if path.starts_with("/binary/") {
                let mut x = 0x2545_F491u32;
                let noise: Vec<u8> = (0..1_000_000)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        x as u8
                    })
                    .collect();
                return html(noise);
            }
            if path.starts_with("/drip/") {
                let s = futures_util::stream::unfold((), |()| async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"x")), ()))
                });
                return html(Body::from_stream(s));
            }
            if path.starts_with("/stall/") {
                return html(Body::from_stream(futures_util::stream::pending::<
                    Result<bytes::Bytes, std::io::Error>,
                >()));
            }
            axum::http::StatusCode::NOT_FOUND.into_response()
        }
    });
    println!("{port}");
    std::io::stdout().flush().ok();
    axum::serve(l, app).await.expect("serve");
}

/// Crawls one site in this process; prints `peak_rss_mb pages failed secs`.
fn crawl(hostile: bool) {
    let kind = if hostile { "hostile" } else { "ordinary" };
    let (mut child, ports) = common::spawn_server(&["--serve", kind]);
    let port = ports[0];
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = CrawlConfig::new(&[format!("http://127.0.0.1:{port}/")]).expect("config");
    // Default concurrency (32, 2 per host); no rate limit, so it is quick.
    cfg.politeness.per_host_rate = 0.0;
    cfg.politeness.retries = 0;
    cfg.fetch.timeout = Duration::from_secs(5);
    cfg.fetch.read_timeout = Duration::from_secs(5);
    let (report, wall, _cpu) =
        common::crawl(&dir.path().join("h.db"), cfg, Arc::new(Counters::default()));
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "{:.1} {} {} {wall:.1}",
        proc_status("VmHWM:") as f64 / 1024.0,
        report.pages_stored,
        report.failed
    );
}

fn main() {
    trawl::memory::tune_allocator();
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--serve") => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(serve(args[2] == "hostile"));
            return;
        }
        Some("--crawl") => return crawl(args[2] == "hostile"),
        _ => {}
    }
    let mut rss = Vec::new();
    for kind in ["ordinary", "hostile"] {
        let out = Command::new(std::env::current_exe().expect("exe"))
            .args(["--crawl", kind])
            .stderr(Stdio::null())
            .output()
            .expect("crawl");
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let f: Vec<&str> = line.split_whitespace().collect();
        println!(
            "{kind:<9} peak RSS {} MB, {} pages stored, {} failed, {} s",
            f.first().unwrap_or(&"?"),
            f.get(1).unwrap_or(&"?"),
            f.get(2).unwrap_or(&"?"),
            f.get(3).unwrap_or(&"?")
        );
        rss.push(f.first().and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0));
    }
    println!(
        "hostile / ordinary peak RSS: {:.2}×",
        rss[1] / rss[0].max(0.1)
    );
}
