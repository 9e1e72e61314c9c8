//! The processes that work on a crawl: each registers when its run
//! starts, beats every [`HEARTBEAT`] while it runs, and records its end. A
//! process that stopped beating without an end was killed (or lost its
//! machine); `status` shows which.

use std::time::Duration;

use super::records::Lease;
use super::{Store, StoreError};

/// How often a running process writes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// A process whose last heartbeat is older than this, and that recorded
/// no end, is taken as lost (six heartbeats missed).
pub const LOST_AFTER: Duration = Duration::from_secs(30);

/// Who a process is, as it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The machine's host name.
    pub hostname: String,
    pub pid: u32,
    /// Its `--concurrency`.
    pub concurrency: u32,
}

/// A row of `processes`. Times are epoch ms.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProcessRow {
    pub id: i64,
    /// The run (`runs.id`) it worked on.
    pub run_id: i64,
    pub hostname: String,
    pub pid: i64,
    pub concurrency: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// `None` while it runs, and after it was killed.
    pub finished_at: Option<i64>,
    /// Pages it fetched, as of its last heartbeat (or its end).
    pub fetched: i64,
    /// Hosts it had work for, as of its last heartbeat.
    pub hosts: i64,
}

impl Store {
    /// Records a process starting on run `run_id` at `now`; returns its id.
    pub async fn register_process(
        &self,
        run_id: i64,
        who: &ProcessInfo,
        now: i64,
    ) -> Result<i64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "INSERT INTO processes (run_id, hostname, pid, concurrency, started_at, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(run_id)
        .bind(&who.hostname)
        .bind(i64::from(who.pid))
        .bind(i64::from(who.concurrency))
        .bind(now)
        .bind(now)
        .fetch_one(pool).await)?)
    }

    /// A heartbeat of process `id` at `now`, with what it has done so far.
    pub async fn heartbeat(
        &self,
        id: i64,
        now: i64,
        fetched: u64,
        hosts: u64,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE processes SET heartbeat_at = $1, fetched = $2, hosts = $3 WHERE id = $4")
            .bind(now)
            .bind(fetched as i64)
            .bind(hosts as i64)
            .bind(id)
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Records the end of process `id` at `now` (a stop or the crawl's
    /// end), with the pages it fetched; it has no hosts any more.
    pub async fn finish_process(&self, id: i64, now: i64, fetched: u64) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE processes SET heartbeat_at = $1, finished_at = $2, fetched = $3, hosts = 0 WHERE id = $4",
        )
        .bind(now)
        .bind(now)
        .bind(fetched as i64)
        .bind(id)
        .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// The last `limit` processes, oldest first.
    pub async fn processes(&self, limit: i64) -> Result<Vec<ProcessRow>, StoreError> {
        let mut out: Vec<ProcessRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, run_id, hostname, pid, concurrency, started_at, heartbeat_at, finished_at, \
             fetched, hosts FROM processes ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool).await)?;
        out.reverse();
        Ok(out)
    }

    /// Processes other than `me` that are at work on the crawl now: no
    /// end recorded and a heartbeat within [`LOST_AFTER`].
    pub async fn others_at_work(&self, me: i64) -> Result<i64, StoreError> {
        let since = crate::util::now_ms() - LOST_AFTER.as_millis() as i64;
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM processes WHERE id <> $1 AND finished_at IS NULL AND heartbeat_at > $2",
        )
        .bind(me)
        .bind(since)
        .fetch_one(pool)
        .await)?)
    }

    /// Renews the host leases of `lease` until `now + ttl`; returns how
    /// many hosts it holds.
    pub async fn renew_leases(&self, lease: &Lease, now: i64) -> Result<u64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query(
            "UPDATE hosts SET lease_expires_at = $1 WHERE lease_owner = $2 AND lease_token = $3",
        )
        .bind(now + lease.ttl_ms)
        .bind(lease.owner)
        .bind(lease.token)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// The crawl's current run: its id and kind.
    pub async fn current_run(&self) -> Result<Option<(i64, String)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT id, kind FROM runs ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(pool)
        .await)?)
    }

    /// The run whose changes the crawl's fetches record now
    /// (`crawls.changes_run`: the latest recrawl's), if any.
    pub async fn changes_run(&self, crawl_id: i64) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "SELECT changes_run FROM crawls WHERE id = $1",
        )
        .bind(crawl_id)
        .fetch_one(pool)
        .await)?)
    }
}
