//! Crawl benchmark on loopback.
//!
//! `cargo run --release --example bench -- [PAGES] [HOSTS] [--text-heavy] [--no-summaries] [--concurrency N] [--per-host-concurrency N] [--crawl-only] [--recrawl] [--keep-html] [--extract NAME=SELECTOR]...`
//!
//! Serves a synthetic multi-host site (default 20,000 pages of ~20 KB with
//! 20–60 links each, over 8 hosts) from a child process, crawls all of it
//! with trawl's default settings but no per-host rate limit, and prints
//! pages/s, the crawler's CPU seconds (and per page) and its peak RSS.
//! Then (unless `--crawl-only`) times the parser alone on the same pages.
//! Pages are article-shaped by default (~6 KB of text in 20 KB of HTML);
//! `--text-heavy` makes them almost all text, the store's worst case. The
//! crawl summarizes as it goes (the extractive default) unless
//! `--no-summaries`; the summarizer alone is timed on one core too.
//!
//! `--keep-html` and `--extract` (repeatable) crawl with those settings;
//! then compressing a page's body and applying the fields are timed alone
//! on one core too (and the fields on a page of 100,000 nested elements).
//!
//! `--recrawl`: the server sends an ETag with each page and answers 304 to
//! a request that matches; after the crawl, 5% of the pages (every 20th)
//! change, and a recrawl of every page is timed against the crawl (wall
//! time, CPU, bytes received, changes found).

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use trawl::config::CrawlConfig;
use trawl::progress::Counters;

#[path = "common/mod.rs"]
mod common;
use common::proc_status;

const WORDS: &[&str] = &[
    "crawler",
    "frontier",
    "politeness",
    "robots",
    "sitemap",
    "server",
    "latency",
    "document",
    "anchor",
    "canonical",
    "summary",
    "queue",
    "network",
    "bandwidth",
    "index",
    "search",
    "parser",
    "token",
    "stream",
    "request",
    "response",
    "header",
    "content",
    "budget",
    "depth",
    "scope",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "with",
    "on",
    "as",
    "by",
    "at",
    "from",
];

struct Site {
    pages: u64,
    ports: Vec<u16>,
    text_heavy: bool,
}

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// A link from page `id` to a random page, 80% on the same host.
fn link(site: &Site, id: u64, r: &mut impl FnMut() -> u64, class: &str) -> String {
    let hosts = site.ports.len() as u64;
    let target = r() % site.pages;
    let home = id % hosts;
    let same_host = !r().is_multiple_of(5);
    let host = if same_host { home } else { target % hosts };
    // Pages are numbered per host: page n lives on host n % hosts.
    let target = (target / hosts) * hosts + host;
    if same_host {
        format!("<a class=\"{class}\" href=\"/p/{target}\">Page {target}</a>")
    } else {
        let port = site.ports[host as usize];
        format!(
            "<a class=\"{class}\" href=\"http://127.0.0.1:{port}/p/{target}\">Page {target}</a>"
        )
    }
}

fn words(r: &mut impl FnMut() -> u64, n: usize, s: &mut String) {
    for _ in 0..n {
        s.push_str(WORDS[(r() % WORDS.len() as u64) as usize]);
        s.push(' ');
    }
}

/// Page `id` of the site: ~20 KB of HTML with 20–60 links.
///
/// The default page is shaped like a typical article page: a head with
/// styles and a script, navigation, an article of ~6 KB of text, a footer.
/// `text_heavy` pages are almost all text (~19 KB of the 20 KB), the worst
/// case for the store.
fn page(site: &Site, id: u64) -> String {
    let mut r = rng(id + 1);
    let links = 20 + (r() % 41) as usize;
    let mut s = String::with_capacity(22_000);
    s.push_str(&format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Page {id}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"description\" content=\"Synthetic page number {id}\">\
         <link rel=\"stylesheet\" href=\"/static/site.css\"><link rel=\"canonical\" href=\"/p/{id}\">"
    ));
    if site.text_heavy {
        s.push_str("</head><body><main>");
        let mut emitted = 0;
        while s.len() < 20_000 || emitted < links {
            s.push_str("<p>");
            words(&mut r, 40, &mut s);
            if emitted < links {
                s.push_str(&link(site, id, &mut r, "t"));
                emitted += 1;
            }
            s.push_str(".</p>\n");
        }
        s.push_str("</main></body></html>");
        return s;
    }
    s.push_str("<style>");
    for i in 0..40 {
        s.push_str(&format!(".c{i}{{margin:{i}px 0;padding:0 {i}px;font:16px/1.5 system-ui,sans-serif;color:#333}}\n"));
    }
    s.push_str("</style><script>window.dataLayer=window.dataLayer||[];");
    for i in 0..30 {
        s.push_str(&format!(
            "dataLayer.push({{event:'view',page:{id},slot:{i},ts:Date.now()}});\n"
        ));
    }
    s.push_str(
        "</script></head><body><header class=\"site-header c1\"><nav class=\"main-nav\"><ul>",
    );
    let nav = 10.min(links);
    for _ in 0..nav {
        s.push_str("<li class=\"nav-item c2\">");
        s.push_str(&link(site, id, &mut r, "nav-link"));
        s.push_str("</li>");
    }
    s.push_str(&format!(
        "</ul></nav></header><main class=\"content c3\"><article class=\"post\"><h1 class=\"post-title\">Page {id}</h1>"
    ));
    let mut emitted = nav;
    while s.len() < 17_000 || emitted < links {
        s.push_str("<p class=\"para c4\" data-track=\"paragraph\">");
        words(&mut r, 12, &mut s);
        if emitted < links {
            s.push_str(&link(site, id, &mut r, "inline-link c5"));
            emitted += 1;
        }
        s.push_str("<span class=\"note c6\" aria-hidden=\"false\"></span>.</p>\n");
    }
    s.push_str("</article></main><footer class=\"site-footer c7\"><p class=\"legal\">Copyright. All rights reserved.</p>");
    for i in 0..20 {
        s.push_str(&format!(
            "<div class=\"widget c{i}\" data-id=\"{i}\"><span class=\"icon\"></span></div>"
        ));
    }
    s.push_str("</footer></body></html>");
    s
}

struct HostSite {
    index: u64,
    hosts: u64,
    pages: Arc<Vec<bytes::Bytes>>,
    /// The second versions of the pages that change (every 20th), served
    /// once `/bump` was asked for (any host).
    changed: Arc<Vec<bytes::Bytes>>,
    bumped: Arc<std::sync::atomic::AtomicBool>,
}

impl HostSite {
    /// The body of page `id` now and its ETag.
    fn body(&self, id: u64) -> (bytes::Bytes, String) {
        if id.is_multiple_of(20) && self.bumped.load(std::sync::atomic::Ordering::Relaxed) {
            (
                self.changed[(id / 20) as usize].clone(),
                format!("\"{id}-2\""),
            )
        } else {
            (self.pages[id as usize].clone(), format!("\"{id}-1\""))
        }
    }
}

async fn serve(pages: u64, hosts: usize, text_heavy: bool, delay: std::time::Duration) {
    let mut listeners = Vec::new();
    for _ in 0..hosts {
        listeners.push(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        );
    }
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect();
    // Pages are generated up front so the server costs as little CPU as
    // possible: the crawler is what is measured.
    let site = Site {
        pages,
        ports: ports.clone(),
        text_heavy,
    };
    let bodies: Arc<Vec<bytes::Bytes>> = Arc::new(
        (0..pages)
            .map(|id| bytes::Bytes::from(page(&site, id)))
            .collect(),
    );
    let changed: Arc<Vec<bytes::Bytes>> = Arc::new(
        (0..pages)
            .step_by(20)
            .map(|id| {
                let p = page(&site, id);
                let p = p.replacen("</h1>", "</h1><p>This page was edited since.</p>", 1);
                bytes::Bytes::from(p)
            })
            .collect(),
    );
    let bumped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for (index, l) in listeners.into_iter().enumerate() {
        let state = Arc::new(HostSite {
            index: index as u64,
            hosts: hosts as u64,
            pages: bodies.clone(),
            changed: changed.clone(),
            bumped: bumped.clone(),
        });
        let app = Router::new()
            .route(
                "/",
                axum::routing::get(|State(h): State<Arc<HostSite>>| async move {
                    (
                        [(header::CONTENT_TYPE, "text/html")],
                        h.pages[h.index as usize].clone(),
                    )
                }),
            )
            .route(
                "/p/{id}",
                axum::routing::get(
                    move |State(h): State<Arc<HostSite>>,
                          Path(id): Path<u64>,
                          headers: axum::http::HeaderMap| async move {
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        // Page n lives on host n % hosts only.
                        if id >= h.pages.len() as u64 || id % h.hosts != h.index {
                            return (axum::http::StatusCode::NOT_FOUND, "no").into_response();
                        }
                        let (body, etag) = h.body(id);
                        if headers
                            .get(header::IF_NONE_MATCH)
                            .is_some_and(|v| v.as_bytes() == etag.as_bytes())
                        {
                            return (axum::http::StatusCode::NOT_MODIFIED, [(header::ETAG, etag)])
                                .into_response();
                        }
                        (
                            [
                                (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
                                (header::ETAG, etag),
                            ],
                            body,
                        )
                            .into_response()
                    },
                ),
            )
            .route(
                "/bump",
                axum::routing::get(|State(h): State<Arc<HostSite>>| async move {
                    h.bumped.store(true, std::sync::atomic::Ordering::Relaxed);
                    "bumped"
                }),
            )
            .with_state(state);
        tokio::spawn(async move { axum::serve(l, app).await });
    }
    println!(
        "{}",
        ports
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    std::io::stdout().flush().ok();
    std::future::pending::<()>().await;
}

/// The number after `name` in the arguments, if any.
fn flag_value(args: &[String], name: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

fn main() {
    trawl::memory::tune_allocator();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        let pages: u64 = args[2].parse().expect("pages");
        let hosts: usize = args[3].parse().expect("hosts");
        let text_heavy = args[4] == "text-heavy";
        // A latency-bound site: every page answered this much later.
        let delay =
            std::time::Duration::from_millis(args.get(5).and_then(|a| a.parse().ok()).unwrap_or(0));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(serve(pages, hosts, text_heavy, delay));
        return;
    }
    let text_heavy = args.iter().any(|a| a == "--text-heavy");
    let summaries = !args.iter().any(|a| a == "--no-summaries");
    let keep_html = args.iter().any(|a| a == "--keep-html");
    let fields: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "--extract")
        .map(|w| w[1].clone())
        .collect();
    let markdown = args.iter().any(|a| a == "--markdown");
    // Positional numbers: those not after a flag.
    let nums: Vec<u64> = args
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, _)| !args[i - 1].ends_with("concurrency") && args[i - 1] != "--extract")
        .filter_map(|(_, a)| a.parse().ok())
        .collect();
    let pages: u64 = nums.first().copied().unwrap_or(20_000);
    let hosts: usize = nums.get(1).copied().unwrap_or(8) as usize;
    let kind = if text_heavy { "text-heavy" } else { "article" };

    let (mut child, ports) =
        common::spawn_server(&["--serve", &pages.to_string(), &hosts.to_string(), kind]);

    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("bench.db");
    let seeds: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}/"))
        .collect();
    // trawl's defaults (extractive summaries on, robots.txt and sitemaps
    // read), but for the per-host request rate: the default 2 requests a
    // second would make this a measure of politeness, not of cost.
    let mut cfg = CrawlConfig::new(&seeds).expect("config");
    cfg.politeness.per_host_rate = 0.0;
    if let Some(n) = flag_value(&args, "--concurrency") {
        cfg.concurrency = n as usize;
    }
    if let Some(n) = flag_value(&args, "--per-host-concurrency") {
        cfg.politeness.per_host_concurrency = n as u32;
    }
    cfg.summarize.enabled = summaries;
    cfg.extract = trawl::config::ExtractConfig::from_args(&fields, keep_html).expect("--extract");
    cfg.markdown = markdown;

    let (report, wall, cpu) = common::crawl(&db, cfg, Arc::new(Counters::default()));
    let rss_mb = proc_status("VmHWM:") as f64 / 1024.0;
    let db_mb = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!(
        "crawl              {} pages, summaries {}, markdown {}, per-host concurrency {}, HTML {}, fields: {}",
        report.fetched,
        if summaries { "on" } else { "off" },
        if markdown { "on" } else { "off" },
        flag_value(&args, "--per-host-concurrency").unwrap_or(2),
        if keep_html || !fields.is_empty() {
            "kept"
        } else {
            "not kept"
        },
        if fields.is_empty() {
            "none".to_string()
        } else {
            fields.join(" ")
        }
    );
    println!("pages stored       {}", report.pages_stored);
    println!("failed             {}", report.failed);
    println!("wall time          {wall:.2} s");
    println!("pages/s            {:.0}", report.fetched as f64 / wall);
    println!("crawler CPU        {cpu:.2} s ({:.2} cores)", cpu / wall);
    println!(
        "CPU per page       {:.3} ms",
        cpu * 1000.0 / report.fetched.max(1) as f64
    );
    println!("crawler peak RSS   {rss_mb:.0} MB");
    println!("MB received        {:.0}", report.bytes as f64 / 1e6);
    println!("database size      {db_mb:.0} MB");
    println!(
        "writer             {} transactions, {} ops, busy {:.2} s",
        report.writer.transactions,
        report.writer.ops,
        report.writer.busy.as_secs_f64()
    );
    if let Some(s) = &report.summaries {
        println!("summaries (crawl)  {} done, {} failed", s.done, s.failed);
    }
    if args.iter().any(|a| a == "--recrawl") {
        // Two runs' figures, side by side.
        let (first_wall, first_cpu, first_bytes) = (wall, cpu, report.bytes);
        bump(ports[0]);
        let (r, wall, cpu) = common::recrawl(&db, Arc::new(Counters::default()));
        let _ = child.kill();
        let _ = child.wait();
        let changes = changes(&db);
        println!("recrawl            {} pages asked again", r.fetched);
        println!("changes            {changes}");
        println!(
            "wall time          {wall:.2} s ({:.0}% of the crawl's {first_wall:.2} s)",
            100.0 * wall / first_wall
        );
        println!(
            "crawler CPU        {cpu:.2} s ({:.0}% of the crawl's {first_cpu:.2} s)",
            100.0 * cpu / first_cpu
        );
        println!(
            "MB received        {:.1} ({:.1}% of the crawl's {:.0})",
            r.bytes as f64 / 1e6,
            100.0 * r.bytes as f64 / first_bytes.max(1) as f64,
            first_bytes as f64 / 1e6
        );
        println!(
            "writer             {} transactions, {} ops, busy {:.2} s",
            r.writer.transactions,
            r.writer.ops,
            r.writer.busy.as_secs_f64()
        );
        return;
    }
    let _ = child.kill();
    let _ = child.wait();
    if args.iter().any(|a| a == "--crawl-only") {
        return;
    }

    let site = Site {
        pages,
        ports: ports.clone(),
        text_heavy,
    };
    let avg_html = (0..200).map(|i| page(&site, i).len()).sum::<usize>() / 200;
    let avg_text = (0..200)
        .map(|i| {
            let p = page(&site, i);
            trawl::parse::parse(
                p.as_bytes(),
                &url::Url::parse("http://127.0.0.1/").expect("url"),
                None,
                Default::default(),
            )
            .text
            .len()
        })
        .sum::<usize>()
        / 200;
    let sample: Vec<String> = (0..2000.min(pages)).map(|i| page(&site, i)).collect();
    let base = url::Url::parse("http://127.0.0.1/").expect("url");
    // As the crawl parsed them: with Markdown when it kept it.
    let limits = trawl::parse::ParseLimits {
        markdown,
        ..Default::default()
    };
    let t = Instant::now();
    let mut links = 0;
    for p in &sample {
        links += trawl::parse::parse(p.as_bytes(), &base, Some("text/html"), limits)
            .links
            .len();
    }
    let parse_secs = t.elapsed().as_secs_f64();

    let texts: Vec<String> = sample
        .iter()
        .take(500)
        .map(|p| {
            trawl::parse::parse(p.as_bytes(), &base, Some("text/html"), Default::default()).text
        })
        .collect();
    let t = Instant::now();
    for text in &texts {
        std::hint::black_box(trawl::summarize::extractive::summarize(text, 3));
    }
    let summarize_secs = t.elapsed().as_secs_f64();

    println!(
        "site               {pages} {kind} pages on {hosts} hosts, ~{avg_html} B HTML / ~{avg_text} B text each"
    );
    println!(
        "parse alone        {:.0} pages/s on one core ({:.2} ms/page, {} links)",
        sample.len() as f64 / parse_secs,
        parse_secs * 1000.0 / sample.len() as f64,
        links
    );
    println!(
        "extractive alone   {:.0} pages/s on one core ({:.2} ms/page)",
        texts.len() as f64 / summarize_secs,
        summarize_secs * 1000.0 / texts.len() as f64
    );
    if keep_html || !fields.is_empty() {
        let t = Instant::now();
        let (mut raw, mut packed) = (0, 0);
        for p in &sample {
            let kept = trawl::store::fields::KeptHtml::pack(p.as_bytes());
            raw += kept.size;
            packed += kept.packed.len();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "keep HTML alone    {:.3} ms/page on one core, {:.1}% of its size ({:.0} of {:.0} bytes)",
            secs * 1000.0 / sample.len() as f64,
            100.0 * packed as f64 / raw as f64,
            packed as f64 / sample.len() as f64,
            raw as f64 / sample.len() as f64,
        );
    }
    if let Some(f) = cfg_fields(&fields) {
        let t = Instant::now();
        let mut values = 0;
        for p in &sample {
            values += f.extract(p).iter().map(|v| v.values.len()).sum::<usize>();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "fields alone       {:.3} ms/page on one core ({} values)",
            secs * 1000.0 / sample.len() as f64,
            values
        );
        let deep = format!(
            "<html><body>{}deep text{}</body></html>",
            "<div>".repeat(100_000),
            "</div>".repeat(100_000)
        );
        let t = Instant::now();
        let got = f.extract(&deep);
        println!(
            "fields, deep page  {:.0} ms for 100,000 nested divs ({} values)",
            t.elapsed().as_secs_f64() * 1000.0,
            got.iter().map(|v| v.values.len()).sum::<usize>()
        );
    }
}

/// The compiled `--extract` fields, if any.
fn cfg_fields(fields: &[String]) -> Option<trawl::fields::Fields> {
    trawl::config::ExtractConfig::from_args(fields, false)
        .expect("--extract")
        .compiled()
        .expect("fields")
}

/// Asks the server to serve the second versions of the pages that change.
fn bump(port: u16) {
    use std::io::Read;
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(b"GET /bump HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("bump");
    let mut answer = String::new();
    c.read_to_string(&mut answer).expect("bump answer");
    assert!(answer.contains("bumped"), "{answer}");
}

/// The latest recrawl's changes, by kind.
fn changes(db: &std::path::Path) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let store = trawl::store::Store::open_with(db, trawl::store::Access::Read)
            .await
            .expect("open");
        let runs = store.runs().await.expect("runs");
        let r = runs.last().expect("a run");
        format!(
            "{} unchanged, {} changed, {} new, {} removed",
            r.unchanged, r.changed, r.new, r.removed
        )
    })
}
