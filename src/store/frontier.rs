//! The frontier as a new run of a stored crawl reads it back: URLs put
//! back in the queue, the seen-set, what the page budgets have spent so
//! far; and robots.txt answers kept in the `hosts` table.

use futures_util::TryStreamExt;

use super::{Store, StoreError};

/// A robots.txt answer stored in the `hosts` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRobots {
    /// The HTTP status of the robots.txt request (`None`: it failed).
    pub status: Option<u16>,
    /// The body as received.
    pub body: Vec<u8>,
    /// When it was fetched, epoch milliseconds.
    pub fetched_at: i64,
}

impl Store {
    /// Before a resumed run (or a recrawl) starts: URLs a killed run left
    /// leased are queued again, with the URLs skipped for a limit since
    /// raised (`max_pages`, and `robots_unavailable`, when
    /// `retry_budget_skips`; `max_depth` at a depth of at most
    /// `max_depth`) and those never asked because their host was given up
    /// on. Queued URLs lose their reason. `now` is epoch ms.
    pub async fn requeue_for_resume(
        &self,
        now: i64,
        retry_budget_skips: bool,
        max_depth: i64,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE urls SET state = 'queued', updated_at = $1 WHERE state = 'leased' \
             OR (state = 'skipped' AND reason IN ('max_pages', 'robots_unavailable') AND $2) \
             OR (state = 'failed' AND reason = 'host_unresponsive') \
             OR (state = 'skipped' AND reason = 'max_depth' AND depth <= $3)",
        )
        .bind(now)
        .bind(retry_budget_skips)
        .bind(max_depth)
        .execute(pool).await.map(|_| ()))?;
        on_pool!(self, pool => sqlx::query("UPDATE urls SET reason = NULL WHERE state = 'queued' AND reason IS NOT NULL")
            .execute(pool).await.map(|_| ()))?;
        // No process is at work (this one holds the crawl alone): host
        // leases a dead process left are void.
        on_pool!(self, pool => sqlx::query(
            "UPDATE hosts SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
             WHERE lease_owner IS NOT NULL",
        )
        .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Calls `f` with every stored URL's id and reason (`""` when it has
    /// none), streaming: memory stays flat however many there are.
    pub async fn for_each_url_reason(
        &self,
        mut f: impl FnMut(i64, &str),
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut rows =
                sqlx::query_as::<_, (i64, String)>("SELECT id, COALESCE(reason, '') FROM urls")
                    .fetch(pool);
            while let Some((id, reason)) = rows.try_next().await? {
                f(id, &reason);
            }
        });
        Ok(())
    }

    /// Pages fetched so far (`done` or `failed`, sitemaps left out): what
    /// earlier runs spent of `--max-pages`.
    pub async fn pages_fetched(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM urls WHERE state IN ('done', 'failed') AND sitemap = FALSE",
        )
        .fetch_one(pool).await)?;
        Ok(n.max(0) as u64)
    }

    /// Pages fetched so far per origin, for `--max-pages-per-host`.
    pub async fn pages_fetched_by_origin(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = on_pool!(self, pool => sqlx::query_as::<_, (String, i64)>(
            "SELECT origin, COUNT(*) FROM urls WHERE sitemap = FALSE AND state IN ('done', 'failed') GROUP BY origin",
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(o, n)| (o, n.max(0) as u64))
            .collect())
    }

    /// URLs waiting in the queue.
    pub async fn queued_count(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM urls WHERE state = 'queued'")
            .fetch_one(pool).await)?;
        Ok(n.max(0) as u64)
    }

    /// URLs that a resume with these limits would fetch: queued or
    /// leased, skipped for the page budget or an unavailable robots.txt,
    /// failed because their host was given up on, or skipped as too deep
    /// at a depth of at most `max_depth`.
    pub async fn resumable_count(&self, max_depth: i64) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM urls WHERE state IN ('queued', 'leased') \
             OR (state = 'skipped' AND reason IN ('max_pages', 'robots_unavailable')) \
             OR (state = 'failed' AND reason = 'host_unresponsive') \
             OR (state = 'skipped' AND reason = 'max_depth' AND depth <= $1)",
        )
        .bind(max_depth)
        .fetch_one(pool).await)?;
        Ok(n.max(0) as u64)
    }

    /// Calls `f` with each URL recorded as `trap` (id, URL): those of
    /// hosts that had reached `--max-pages-per-host`, and those of a
    /// trap's shape. Streaming.
    pub async fn for_each_trapped_url(
        &self,
        mut f: impl FnMut(i64, &str),
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut rows = sqlx::query_as::<_, (i64, String)>(
                "SELECT id, url FROM urls WHERE state = 'skipped' AND reason = 'trap'",
            )
            .fetch(pool);
            while let Some((id, url)) = rows.try_next().await? {
                f(id, &url);
            }
        });
        Ok(())
    }

    /// Pages stored (sitemaps left out).
    pub async fn pages_stored(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM pages p JOIN urls u ON u.id = p.url_id WHERE u.sitemap = FALSE",
        )
        .fetch_one(pool).await)?)
    }

    /// Hosts that may not be asked before a time after `now` (a back-off
    /// or a Retry-After an earlier run was given): (origin, epoch ms).
    pub async fn host_delays(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, (String, i64)>(
            "SELECT origin, next_fetch_at FROM hosts WHERE next_fetch_at > $1",
        )
        .bind(now)
        .fetch_all(pool)
        .await)?)
    }

    /// Every host's stored clock: (origin, `next_fetch_at`, the
    /// Crawl-delay its stored robots.txt asks, in ms), for the hosts that
    /// have either.
    pub async fn host_clocks(&self) -> Result<Vec<(String, Option<i64>, Option<i64>)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT origin, next_fetch_at, crawl_delay_ms FROM hosts \
             WHERE next_fetch_at IS NOT NULL OR crawl_delay_ms IS NOT NULL",
        )
        .fetch_all(pool).await)?)
    }

    /// `origin`'s robots.txt as stored, if it was fetched after `oldest`
    /// (epoch ms) and answered below 500 (a 5xx or a failed request is
    /// asked again).
    pub async fn stored_robots(
        &self,
        origin: &str,
        oldest: i64,
    ) -> Result<Option<StoredRobots>, StoreError> {
        let row = on_pool!(self, pool => sqlx::query_as::<_, (Option<i64>, Option<Vec<u8>>, i64)>(
            "SELECT robots_status, robots_body, robots_fetched_at FROM hosts \
             WHERE origin = $1 AND robots_status IS NOT NULL AND robots_status < 500 AND robots_fetched_at > $2",
        )
        .bind(origin)
        .bind(oldest)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(status, body, fetched_at)| StoredRobots {
            status: status.map(|s| s as u16),
            body: body.unwrap_or_default(),
            fetched_at,
        }))
    }
}
