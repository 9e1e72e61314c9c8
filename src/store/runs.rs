//! What one run of a crawl did, read back from the database.
//!
//! In: the crawl's `run_started_at` and the URLs committed since. Out: a
//! [`RunStats`], the one source of the numbers the final line of `crawl`
//! and `resume` and the `last_run` of `status` print, so the two cannot
//! disagree.

use std::time::Duration;

use super::{Store, StoreError};

/// The current (or last) run of the crawl: the URLs whose fetch or skip
/// was committed since the run started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStats {
    /// When the run started, in epoch milliseconds.
    pub started_at: i64,
    /// Page URLs fetched, stored or failed (each redirect hop is one;
    /// sitemaps left out).
    pub fetched: i64,
    /// Of those, the failed ones by reason, most frequent first.
    pub failed_by_reason: Vec<(String, i64)>,
    /// Page URLs recorded as not to be fetched, by reason, most frequent
    /// first.
    pub skipped_by_reason: Vec<(String, i64)>,
    /// Sitemaps fetched or skipped, by state and reason (`done`,
    /// `failed:http_404`).
    pub sitemaps: Vec<(String, i64)>,
    /// When the run's last page fetch was committed.
    pub last_fetch_at: Option<i64>,
}

impl RunStats {
    pub fn failed(&self) -> i64 {
        self.failed_by_reason.iter().map(|(_, n)| n).sum()
    }

    pub fn skipped(&self) -> i64 {
        self.skipped_by_reason.iter().map(|(_, n)| n).sum()
    }

    /// From the run's start to its last page fetch (zero before the
    /// first): the span the rate is measured over. Time spent after it
    /// (the summaries' sweep, waiting out a stop) is not fetching.
    pub fn duration(&self) -> Duration {
        let ms = self.last_fetch_at.map_or(0, |t| t - self.started_at);
        Duration::from_millis(ms.max(0) as u64)
    }

    /// Pages fetched per second over [`duration`](Self::duration), rounded
    /// to one decimal as it is printed.
    pub fn pages_per_sec(&self) -> f64 {
        let secs = self.duration().as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        (self.fetched as f64 / secs * 10.0).round() / 10.0
    }
}

impl Store {
    /// What the crawl's current (or last) run did; `None` when the
    /// database holds no crawl.
    pub async fn last_run(&self) -> Result<Option<RunStats>, StoreError> {
        let started: Option<Option<i64>> = on_pool!(self, pool => sqlx::query_scalar("SELECT run_started_at FROM crawls ORDER BY id DESC LIMIT 1")
                .fetch_optional(pool).await)?;
        let Some(Some(started_at)) = started else {
            return Ok(None);
        };
        // Every state change is committed with its time, so one pass over
        // the URLs changed since the start is the run.
        let rows: Vec<(bool, String, String, i64, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT sitemap, state, COALESCE(reason, '') AS reason, COUNT(*) AS n, MAX(updated_at) AS last \
             FROM urls WHERE updated_at >= $1 AND state IN ('done', 'failed', 'skipped') \
             GROUP BY sitemap, state, reason",
        )
        .bind(started_at)
        .fetch_all(pool)
        .await)?;
        let mut run = RunStats {
            started_at,
            ..RunStats::default()
        };
        for (sitemap, state, reason, n, last) in rows {
            if sitemap {
                let key = if reason.is_empty() {
                    state
                } else {
                    format!("{state}:{reason}")
                };
                run.sitemaps.push((key, n));
                continue;
            }
            match state.as_str() {
                "skipped" => run.skipped_by_reason.push((reason, n)),
                _ => {
                    run.fetched += n;
                    run.last_fetch_at = run.last_fetch_at.max(Some(last));
                    if state == "failed" {
                        run.failed_by_reason.push((reason, n));
                    }
                }
            }
        }
        let by_count = |a: &(String, i64), b: &(String, i64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
        run.failed_by_reason.sort_by(by_count);
        run.skipped_by_reason.sort_by(by_count);
        run.sitemaps.sort();
        Ok(Some(run))
    }
}
