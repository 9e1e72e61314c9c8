//! `trawl report`: the crawl as one self-contained HTML page.
//!
//! In: an open [`Store`] (read-only, beside a running crawl or not). Out:
//! a [`Report`], every number and list the page shows, read through the
//! store's report queries (`store::report`) and [`crate::status`], then
//! rendered by [`html`] into one file with its CSS, script and SVG charts
//! inline: opened in a browser it makes no request.
//!
//! Every list is capped (see [`Caps`]) and says how many it left out;
//! the work is done by SQLite's aggregates, so a crawl of a million URLs
//! costs a few scans of its tables, not its size in memory.

pub mod chart;
pub mod html;

use std::collections::HashSet;

use crate::robots::{Directives, product_token};
use crate::status::Status;
use crate::store::report::{
    BrokenLinks, Capped, ContentTypeRow, DepthRow, Duplicates, HostRow, PageBrief, SummarySample,
    UrlFate,
};
use crate::store::{Store, StoreError};

/// How long each list of the report may be.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Rows of a table (hosts, broken links, reasons…).
    pub rows: usize,
    /// Example URLs under one row (a reason's URLs, a broken link's pages).
    pub examples: usize,
    /// Hops followed along one redirect chain.
    pub hops: usize,
    /// Bars of the pages-per-second chart (at most; the bucket width is
    /// rounded up to a whole step).
    pub time_bars: i64,
    /// Depths drawn one by one; deeper URLs share the last bar.
    pub depths: i64,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            rows: 50,
            examples: 3,
            hops: 20,
            time_bars: 60,
            depths: 20,
        }
    }
}

/// Upper edges of the body-size histogram's bins, bytes: under 1 KiB,
/// 1–10 KiB, 10–100 KiB, 100 KiB–1 MiB, 1–10 MiB, 10 MiB and more.
pub const SIZE_EDGES: [i64; 5] = [1 << 10, 10 << 10, 100 << 10, 1 << 20, 10 << 20];

/// Pages fetched over time in the last run.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Epoch ms of the run's start: bucket 0 starts here.
    pub started_at: i64,
    pub width_ms: i64,
    /// Fetches per bucket, every bucket from the start to the last fetch.
    pub buckets: Vec<i64>,
}

/// A failure or skip reason with its count and some of its URLs.
#[derive(Debug, Clone)]
pub struct ReasonRow {
    pub reason: String,
    pub urls: i64,
    pub examples: Vec<String>,
}

/// A redirect chain: its hops in order, the last being where it ended
/// (a page, a failure, a URL skipped or never recorded).
#[derive(Debug, Clone)]
pub struct Chain {
    pub hops: Vec<UrlFate>,
    /// Set when the chain ends at a URL the crawl did not record (the
    /// target of a hop cut by `--max-redirects` or by a loop is recorded
    /// on the hop itself): the URL.
    pub unrecorded: Option<String>,
    /// The chain came back to a URL already in it.
    pub looped: bool,
}

/// Everything the report shows.
#[derive(Debug)]
pub struct Report {
    /// When the report was made, epoch ms.
    pub generated_at: i64,
    /// The numbers `trawl status --json` gives: the report shows them as
    /// they are (marked `data-stat` in the HTML).
    pub status: Status,
    pub timeline: Option<Timeline>,
    /// From the crawl's start to its end (or, while it has not ended, to
    /// the last run's last fetch), ms.
    pub crawl_duration_ms: Option<i64>,
    pub depths: Vec<DepthRow>,
    pub depth_cap: i64,
    pub content_types: Capped<ContentTypeRow>,
    /// Pages per bin of [`SIZE_EDGES`].
    pub sizes: Vec<i64>,
    /// Body bytes of all stored pages.
    pub bytes_stored: i64,
    pub slowest: Vec<PageBrief>,
    pub largest: Vec<PageBrief>,
    pub hosts: Capped<HostRow>,
    /// robots.txt was ignored (`--ignore-robots`).
    pub robots_ignored: bool,
    /// The longest Crawl-delay the crawl honoured, seconds.
    pub max_crawl_delay_secs: Option<f64>,
    pub failures: Capped<ReasonRow>,
    pub skips: Capped<ReasonRow>,
    pub broken: BrokenLinks,
    pub redirects: Capped<Chain>,
    pub duplicates: Duplicates,
    pub summaries: Vec<SummarySample>,
    /// Pages marked `noindex`, by URL.
    pub noindex: Capped<String>,
    /// Pages whose directives say `nofollow` to trawl, by URL.
    pub nofollow: Capped<String>,
    pub caps: Caps,
}

/// Reads everything the report shows. On a running crawl the sections
/// are read one after another, so two of them may differ by what was
/// committed in between.
pub async fn collect(store: &Store, caps: Caps, now_ms: i64) -> Result<Report, StoreError> {
    let status = crate::status::collect(store).await?;
    let settings = status.crawl.as_ref().map(|c| &c.settings);
    let robots_ignored = settings.is_some_and(|s| s["politeness"]["robots"] == false);
    let max_crawl_delay_secs =
        settings.and_then(|s| s["politeness"]["max_crawl_delay_secs"].as_f64());
    let agent = settings
        .and_then(|s| s["fetch"]["user_agent"].as_str())
        .map(product_token)
        .unwrap_or_else(|| "trawl".into());

    let run = status.last_run_stats.clone();
    let timeline = match &run {
        Some(run) => match run.last_fetch_at {
            Some(last) => {
                let span = (last - run.started_at).max(0);
                let width_ms = bucket_width(span, caps.time_bars);
                let n = (span / width_ms + 1) as usize;
                let mut buckets = vec![0; n];
                for (b, count) in store.fetches_by_time(run.started_at, width_ms).await? {
                    if let Some(slot) = usize::try_from(b).ok().and_then(|b| buckets.get_mut(b)) {
                        *slot += count;
                    }
                }
                Some(Timeline {
                    started_at: run.started_at,
                    width_ms,
                    buckets,
                })
            }
            None => None,
        },
        None => None,
    };

    let crawl_duration_ms = match store.crawl().await? {
        Some(c) => c
            .finished_at
            .or(run.as_ref().and_then(|r| r.last_fetch_at))
            .map(|end| end - c.started_at),
        None => None,
    };
    let depths = store.urls_by_depth(caps.depths).await?;
    let content_types = store.content_types(caps.rows).await?;
    let (sizes, bytes_stored) = store.size_histogram(&SIZE_EDGES).await?;
    let slowest = store.slowest_pages(caps.rows.min(10)).await?;
    let largest = store.largest_pages(caps.rows.min(10)).await?;
    let hosts = store.hosts(caps.rows).await?;

    let failures = reasons(store, "failed", &status.failed_by_reason, caps).await?;
    let skips = reasons(store, "skipped", &status.skipped, caps).await?;
    let broken = if status.failed > 0 {
        store.broken_links(caps.rows, caps.examples).await?
    } else {
        BrokenLinks::default()
    };
    let redirects = chains(store, caps).await?;
    // A site's print views can make hundreds of pairs: the largest groups
    // say enough.
    let duplicates = store
        .duplicates(caps.rows.min(20), caps.examples.max(2))
        .await?;
    let summaries = store.summary_samples(5).await?;

    let mut noindex = Capped {
        rows: Vec::new(),
        total: 0,
    };
    let mut nofollow = noindex.clone();
    store
        .directive_pages(|row| {
            let d = Directives::of(
                row.meta_robots.as_deref(),
                row.x_robots_tag.as_deref(),
                &agent,
            );
            for (yes, list) in [(row.noindex, &mut noindex), (d.nofollow, &mut nofollow)] {
                if yes {
                    list.total += 1;
                    if list.rows.len() < caps.rows {
                        list.rows.push(row.url.clone());
                    }
                }
            }
        })
        .await?;

    Ok(Report {
        generated_at: now_ms,
        status,
        timeline,
        crawl_duration_ms,
        depths,
        depth_cap: caps.depths,
        content_types,
        sizes,
        bytes_stored,
        slowest,
        largest,
        hosts,
        robots_ignored,
        max_crawl_delay_secs,
        failures,
        skips,
        broken,
        redirects,
        duplicates,
        summaries,
        noindex,
        nofollow,
        caps,
    })
}

/// The reasons of `state` (`failed`, `skipped`), most URLs first, each
/// with some of its URLs.
async fn reasons(
    store: &Store,
    state: &str,
    counts: &std::collections::BTreeMap<String, i64>,
    caps: Caps,
) -> Result<Capped<ReasonRow>, StoreError> {
    let mut sorted: Vec<(&String, &i64)> = counts.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut rows = Vec::new();
    for (reason, n) in sorted.iter().take(caps.rows) {
        rows.push(ReasonRow {
            reason: (*reason).clone(),
            urls: **n,
            examples: store.reason_examples(state, reason, caps.examples).await?,
        });
    }
    Ok(Capped {
        rows,
        total: counts.len() as i64,
    })
}

/// Redirect chains, by their first URL, each followed hop by hop.
async fn chains(store: &Store, caps: Caps) -> Result<Capped<Chain>, StoreError> {
    let starts = store.redirect_starts(caps.rows).await?;
    let mut out = Vec::with_capacity(starts.rows.len());
    for start in &starts.rows {
        let mut seen = HashSet::from([start.id]);
        let mut chain = Chain {
            hops: vec![UrlFate {
                url: start.url.clone(),
                state: "done".into(),
                reason: None,
                status: Some(start.status),
                redirect_to: Some(start.redirect_to.clone()),
            }],
            unrecorded: None,
            looped: false,
        };
        if let Some(first) = store.url_fate(start.id).await? {
            chain.hops[0] = first;
        }
        let mut next = Some(start.redirect_to.clone());
        while let Some(target) = next.take() {
            if chain.hops.len() > caps.hops {
                break;
            }
            // A hop's target is stored canonical, so its fingerprint is
            // the id of its row; one that is not a URL ended the chain
            // (`bad_redirect`, recorded on the hop).
            let Ok(url) = crate::canon::parse(&target) else {
                break;
            };
            let id = crate::canon::fingerprint(&url) as i64;
            if !seen.insert(id) {
                chain.looped = true;
                break;
            }
            match store.url_fate(id).await? {
                Some(fate) => {
                    next = fate.redirect_to.clone();
                    chain.hops.push(fate);
                }
                None => chain.unrecorded = Some(target),
            }
        }
        out.push(chain);
    }
    Ok(Capped {
        rows: out,
        total: starts.total,
    })
}

/// A bucket width for `span` ms in at most `bars` buckets: the smallest
/// step of a 1–2–5 series (100 ms at least; then whole minutes and hours
/// past a minute) that fits.
pub fn bucket_width(span: i64, bars: i64) -> i64 {
    let bars = bars.max(1);
    let up = |n: i64, d: i64| (n + d - 1) / d;
    let need = up(span.max(0) + 1, bars);
    const STEPS: [i64; 21] = [
        100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
        600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000,
        86_400_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| *s >= need)
        .unwrap_or_else(|| up(need, 86_400_000) * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_round_and_few_enough() {
        for (span, bars, want) in [
            (0, 60, 100),
            (50, 60, 100),
            (5_999, 60, 100),
            (6_000, 60, 200),
            (59_000, 60, 1_000),
            (3_600_000, 60, 60_000 * 2),
            (86_400_000 * 30, 60, 86_400_000),
            (86_400_000 * 600, 60, 86_400_000 * 11),
        ] {
            let w = bucket_width(span, bars);
            assert_eq!(w, want, "span {span}");
            assert!(span / w < bars, "span {span}: {} bars", span / w + 1);
        }
    }
}
