//! Crawls trawl's benchmark site (`examples/bench.rs` in server mode) with
//! the `spider` crate and prints what it did.
//!
//! `spider-peer-bench [--no-subscribe] [--dump FILE] SEED_URL...`
//!
//! spider crawls one origin per `Website`, and it treats another port on the
//! same address as another site, so each seed (one per host of the site) gets
//! its own `Website`, all crawled at once on one runtime. Robots.txt is not
//! read, there is no delay and the concurrency is spider's default. Each
//! crawl's pages are received through `subscribe` and counted by status, so
//! the figures say how many pages were actually fetched, not only how many
//! URLs were visited; `--no-subscribe` skips that (counts come from the
//! visited-link sets alone). `--dump FILE` writes every visited URL to FILE,
//! one a line, to compare with the site's pages.

use std::time::Instant;

use spider::tokio;
use spider::website::Website;

/// Pages buffered per crawl for the counting task. tokio's broadcast
/// channel keeps each slot's page (with its body) until the slot is reused,
/// so this bounds memory held for the count: 8 crawls × 256 × ~20 KB is
/// ~40 MB on the default site. The counter keeps up easily; a lag would be
/// reported, not hidden.
const SUBSCRIBE_CAPACITY: usize = 256;

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    ok: u64,
    other: u64,
    bytes: u64,
    lagged: u64,
}

/// CPU seconds (user + system) this process has used.
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime), counted after the ")" from field 3.
    // Assumes USER_HZ = 100, as on every common Linux build.
    (ticks(11) + ticks(12)) / 100.0
}

/// A `kB` field of `/proc/self/status` (`VmHWM:` is the peak RSS).
fn proc_status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn crawl_one(seed: String, subscribe: bool) -> (Vec<String>, Counts) {
    let mut website = Website::new(&seed);
    website
        .with_respect_robots_txt(false)
        .with_delay(0)
        .with_subdomains(false)
        .with_tld(false);
    let counter = if subscribe {
        let mut rx = website.subscribe(SUBSCRIBE_CAPACITY);
        Some(tokio::spawn(async move {
            let mut c = Counts::default();
            loop {
                match rx.recv().await {
                    Ok(page) => {
                        if page.status_code.is_success() {
                            c.ok += 1;
                        } else {
                            c.other += 1;
                        }
                        c.bytes += page.get_html_bytes_u8().len() as u64;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => c.lagged += n,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
            c
        }))
    } else {
        None
    };
    website.crawl().await;
    let visited: Vec<String> = website
        .get_links()
        .iter()
        .map(|l| l.inner().to_string())
        .collect();
    website.unsubscribe();
    let counts = match counter {
        Some(h) => h.await.unwrap_or_default(),
        None => Counts::default(),
    };
    (visited, counts)
}

#[tokio::main]
async fn main() {
    let mut subscribe = true;
    let mut dump = None;
    let mut seeds = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--no-subscribe" => subscribe = false,
            "--dump" => dump = args.next(),
            "-h" | "--help" => {
                eprintln!("usage: spider-peer-bench [--no-subscribe] [--dump FILE] SEED_URL...");
                return;
            }
            _ => seeds.push(a),
        }
    }
    if seeds.is_empty() {
        eprintln!("usage: spider-peer-bench [--no-subscribe] [--dump FILE] SEED_URL...");
        std::process::exit(2);
    }

    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let tasks: Vec<_> = seeds
        .iter()
        .cloned()
        .map(|s| tokio::spawn(crawl_one(s, subscribe)))
        .collect();
    let mut visited = 0usize;
    let mut urls = Vec::new();
    let mut total = Counts::default();
    for (seed, t) in seeds.iter().zip(tasks) {
        let (links, c) = t.await.expect("crawl task");
        let v = links.len();
        if dump.is_some() {
            urls.extend(links);
        }
        if subscribe {
            eprintln!(
                "{seed}: {v} visited, {} ok, {} other status, {} lagged",
                c.ok, c.other, c.lagged
            );
        } else {
            eprintln!("{seed}: {v} visited");
        }
        visited += v;
        total.ok += c.ok;
        total.other += c.other;
        total.bytes += c.bytes;
        total.lagged += c.lagged;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let rss_mb = proc_status("VmHWM:") as f64 / 1024.0;
    if let Some(path) = &dump {
        urls.sort();
        let mut text = urls.join("\n");
        text.push('\n');
        std::fs::write(path, text).expect("write --dump file");
    }
    // Pages crawled: successful fetches when counted, else URLs visited.
    let pages = if subscribe { total.ok } else { visited as u64 };

    println!("URLs visited       {visited}");
    if subscribe {
        println!("pages ok (2xx)     {}", total.ok);
        println!("other status       {}", total.other);
        println!("missed (lagged)    {}", total.lagged);
        println!("MB received        {:.0}", total.bytes as f64 / 1e6);
    }
    println!("pages crawled      {pages}");
    println!("wall time          {wall:.2} s");
    println!("pages/s            {:.0}", pages as f64 / wall);
    println!("CPU                {cpu:.2} s ({:.2} cores)", cpu / wall);
    println!("CPU per page       {:.3} ms", cpu * 1000.0 / pages.max(1) as f64);
    println!("peak RSS           {rss_mb:.0} MB");
}
