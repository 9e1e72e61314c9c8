//! Frontier memory benchmark: peak RSS with a million URLs queued.
//!
//! `cargo run --release --example frontier -- [HUBS] [--keep DB]`
//!
//! A child process serves a site whose home page links to HUBS (default
//! 100) hub pages of 10,000 links each. The crawler fetches the hubs first
//! (breadth first), so the frontier grows to HUBS × 10,000 queued URLs;
//! then it fetches a few thousand of them and stops at its page budget.
//! Prints the largest frontier seen, the crawler's peak RSS, and how fast
//! URLs were discovered and stored. With `--keep DB` the database is
//! written to DB (which must not exist) and kept, e.g. for timing `trawl
//! report` on a million URLs (`bench/report/run.sh`).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::header;
use trawl::config::CrawlConfig;
use trawl::progress::Counters;

#[path = "common/mod.rs"]
mod common;
use common::proc_status;

const LINKS_PER_HUB: u64 = 10_000;
const LEAVES_FETCHED: u64 = 2_000;

fn html(body: String) -> impl axum::response::IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
}

async fn serve(hubs: u64) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new()
        .route(
            "/",
            axum::routing::get(move || async move {
                let mut b = String::from("<title>Hubs</title>");
                for n in 0..hubs {
                    b.push_str(&format!("<a href=\"/hub/{n}\">hub {n}</a>\n"));
                }
                html(b)
            }),
        )
        .route(
            "/hub/{n}",
            axum::routing::get(|Path(n): Path<u64>| async move {
                let mut b = format!("<title>Hub {n}</title>");
                for m in 0..LINKS_PER_HUB {
                    b.push_str(&format!("<a href=\"/leaf/{n}/{m}\">{m}</a>\n"));
                }
                html(b)
            }),
        )
        .route(
            "/leaf/{n}/{m}",
            axum::routing::get(|Path((n, m)): Path<(u64, u64)>| async move {
                html(format!("<title>Leaf {n}/{m}</title><p>A leaf.</p>"))
            }),
        );
    println!("{port}");
    std::io::stdout().flush().ok();
    axum::serve(listener, app).await.ok();
}

fn main() {
    trawl::memory::tune_allocator();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        let hubs: u64 = args[2].parse().expect("hubs");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(serve(hubs));
        return;
    }
    let keep_at = args.iter().position(|a| a == "--keep");
    let keep =
        keep_at.map(|i| std::path::PathBuf::from(args.get(i + 1).expect("--keep takes a path")));
    let hubs: u64 = args
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, _)| keep_at.is_none_or(|k| *i != k && *i != k + 1))
        .find_map(|(_, a)| a.parse().ok())
        .unwrap_or(100);
    if let Some(db) = &keep {
        assert!(
            !db.exists(),
            "{} exists; --keep writes a new database",
            db.display()
        );
    }
    let (mut child, ports) = common::spawn_server(&["--serve", &hubs.to_string()]);
    let port = ports[0];

    let dir = tempfile::tempdir().expect("tempdir");
    let db = keep.unwrap_or_else(|| dir.path().join("frontier.db"));
    let mut cfg = CrawlConfig::new(&[format!("http://127.0.0.1:{port}/")]).expect("config");
    cfg.concurrency = 32;
    cfg.politeness.per_host_concurrency = 16;
    cfg.politeness.per_host_rate = 0.0;
    cfg.limits.max_pages = Some(1 + hubs + LEAVES_FETCHED);

    // Sample the frontier size and RSS while the crawl runs.
    let counters = Arc::new(Counters::default());
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (counters, done) = (counters.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut max_queued, mut rss_at_max) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                let q = counters.get(&counters.queued);
                if q > max_queued {
                    max_queued = q;
                    rss_at_max = proc_status("VmRSS:");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (max_queued, rss_at_max)
        })
    };

    let (report, wall, cpu) = common::crawl(&db, cfg, counters);
    done.store(true, Ordering::Relaxed);
    let (max_queued, rss_at_max) = sampler.join().expect("sampler");
    let peak_mb = proc_status("VmHWM:") as f64 / 1024.0;
    let _ = child.kill();
    let _ = child.wait();

    let discovered = hubs * LINKS_PER_HUB;
    let skipped: i64 = report.skipped_by_reason.iter().map(|(_, n)| n).sum();
    let db_mb = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!("site               {hubs} hubs x {LINKS_PER_HUB} links = {discovered} URLs");
    println!("pages fetched      {}", report.fetched);
    println!("largest frontier   {max_queued} URLs queued");
    println!("RSS at that point  {:.0} MB", rss_at_max as f64 / 1024.0);
    println!("crawler peak RSS   {peak_mb:.0} MB");
    println!("left queued        {skipped} recorded as skipped (page budget)");
    println!(
        "wall time          {wall:.2} s ({:.0} URLs stored/s)",
        discovered as f64 / wall
    );
    println!("crawler CPU        {cpu:.2} s");
    println!("database size      {db_mb:.0} MB");
}
