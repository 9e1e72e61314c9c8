//! What the benchmarks share: running a crawl and measuring it (Linux
//! `/proc`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use trawl::config::CrawlConfig;
use trawl::crawl::{self, Controls, CrawlReport};
use trawl::progress::Counters;
use trawl::store::Store;

/// Crawls into a new database at `db` on a fresh runtime; returns the
/// report, the wall time and the CPU seconds used, both in seconds.
pub fn crawl(db: &Path, cfg: CrawlConfig, counters: Arc<Counters>) -> (CrawlReport, f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("rt");
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let report = rt
        .block_on(async {
            let store = Store::open(db).await.map_err(|e| e.to_string())?;
            let r = crawl::start(&store, cfg, Controls::default(), counters).await;
            store.close().await;
            r.map_err(|e| e.to_string())
        })
        .expect("crawl");
    (
        report,
        started.elapsed().as_secs_f64(),
        cpu_seconds() - cpu0,
    )
}

/// Recrawls the crawl in `db` on a fresh runtime, every page; returns the
/// report, the wall time and the CPU seconds used.
// Only the crawl benchmark recrawls; the other examples share this module.
#[allow(dead_code)]
pub fn recrawl(db: &Path, counters: Arc<Counters>) -> (CrawlReport, f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("rt");
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let opts = crawl::RecrawlOptions {
        due_only: false,
        now: trawl::util::now_ms(),
    };
    let report = rt
        .block_on(async {
            let store = Store::open(db).await.map_err(|e| e.to_string())?;
            let r = crawl::recrawl(&store, |_| {}, opts, Controls::default(), counters).await;
            store.close().await;
            r.map_err(|e| e.to_string())
        })
        .expect("recrawl");
    (
        report,
        started.elapsed().as_secs_f64(),
        cpu_seconds() - cpu0,
    )
}

/// Runs this program again with `args` (its server mode, in a process of
/// its own so it does not count in the crawler's CPU and memory) and
/// returns it with the ports it prints on its first line.
pub fn spawn_server(args: &[&str]) -> (Child, Vec<u16>) {
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ports");
    let ports = line
        .split_whitespace()
        .map(|p| p.parse().expect("port"))
        .collect();
    (child, ports)
}

/// A `kB` field of `/proc/self/status` (`VmHWM:` is the peak RSS).
pub fn proc_status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) this process has used.
pub fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime), counted after the ")" from field 3.
    (ticks(11) + ticks(12)) / 100.0
}
