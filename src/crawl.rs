//! The crawl: frontier, scheduler, fetch workers and store writer wired
//! together.
//!
//! In: a validated [`CrawlConfig`] and an open [`Store`]. Out: the crawl in
//! the database and a [`CrawlReport`].
//!
//! One coordinator task owns the frontier (the seen-set, the in-memory window
//! of ready URLs, the per-host [`Scheduler`]) and is the only one to decide
//! what is fetched next. Workers fetch and parse in parallel and hand results
//! back; the coordinator turns them into one [`FetchRecord`] each for the
//! writer. The database is the source of truth: URLs beyond the in-memory
//! window wait there as `queued` and are leased back in depth order when the
//! window runs low, so memory stays bounded however large the frontier grows.
//!
//! The crawl is finished when nothing is queued (in memory or in the
//! database), no refill is pending and nothing is in flight: a count, not a
//! channel closing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::canon;
use crate::config::{ConfigError, CrawlConfig};
use crate::fetch::{AddressPolicy, FetchError, Fetcher};
use crate::hosts::{Hosts, Loaded, Verdict, parse_retry_after};
use crate::parse::{LinkKind, ParseLimits};
use crate::progress::Counters;
use crate::reason::SkipReason;
use crate::recrawl::{self as revisits, Answer};
use crate::robots::{self, RobotsFetch};
use crate::scheduler::{Next, Scheduler};
use crate::sitemap::{self, SitemapError};
use crate::store::writer::{
    self, Committed, FetchRecord, HostRecord, LeasedUrl, LinkRecord, NewUrl, RevisitRecord,
    UrlState, WriteOp, WriterHandle, WriterStats,
};
use crate::store::{CrawlState, RunKind, Store, StoreError};
use crate::summarize::Summarizer;
use crate::summarize::stage::{self, Item, StageReport, SweepOptions};
use crate::util::{FpMap, FpSet};
use crate::worker::{self, Job, Outcome, SitemapRead, WorkerCtx, WorkerOutput};

/// URLs held in memory, ready to be scheduled. Beyond this, discovered URLs
/// wait in the database.
pub const DEFAULT_WINDOW: usize = 50_000;
/// Most URLs leased from the database at once.
const REFILL_BATCH: usize = 10_000;
/// Rows (links, new URLs, a row per KiB of page text) that may wait for the
/// writer before new fetches are held back: a few tens of MB, however
/// link-heavy or text-heavy the pages.
const MAX_UNCOMMITTED_ROWS: u64 = 50_000;
/// Fetched pages that may wait for the writer at most (see
/// [`uncommitted_bound`]).
const MAX_UNCOMMITTED_FETCHES: usize = 256;

/// Fetched pages that may wait for their batch to be committed, beyond the
/// `concurrency` fetches in flight: 8 per fetch slot, at most 256. This is
/// what lets the writer commit batches of ~100 pages instead of ~16, which
/// halves the database's cost per page (random-key B-tree leaves and index
/// pages are written to the WAL once per batch, not once per page), and
/// it is what a `kill -9` can cost beyond the fetches in flight: those
/// pages are fetched again on resume, never lost.
pub fn uncommitted_bound(concurrency: usize) -> usize {
    (concurrency * 8)
        .min(MAX_UNCOMMITTED_FETCHES)
        .max(concurrency)
}
/// How long in-flight fetches may run on after a stop is requested.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Most sitemap `<lastmod>` values a recrawl keeps (16 bytes each).
const MAX_LASTMODS: usize = 4_000_000;

/// Whether `job` revisits a stored page whose URL a sitemap gave a
/// `<lastmod>` before the page was last fetched or confirmed unchanged.
fn unchanged_since(lastmods: &FpMap<i64>, job: &Job) -> bool {
    let Some(r) = job.revisit.as_deref() else {
        return false;
    };
    let (Some(checked), true) = (r.checked_at, r.was_ok && !job.sitemap) else {
        return false;
    };
    // A URL's id is its fingerprint, the key of `lastmods`.
    lastmods
        .get(&job.id)
        .is_some_and(|&lastmod| lastmod < checked)
}

/// Deepest chain of sitemap indexes followed (robots.txt's sitemap is 0).
const MAX_SITEMAP_NESTING: u32 = 3;

/// Why a crawl could not run.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Client(FetchError),
    #[error(
        "{path} already holds a crawl ({state}, started {started}); run `trawl resume --db {path}` to continue it, or choose another --db"
    )]
    CrawlExists {
        path: String,
        state: String,
        started: String,
    },
    #[error("{path} holds no crawl to resume; start one with `trawl crawl`")]
    NothingToResume { path: String },
    #[error("the crawl stored in {path} is already finished; nothing to resume")]
    AlreadyFinished { path: String },
    #[error("the crawl's stored configuration cannot be read: {0}")]
    BadStoredConfig(String),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrawlOutcome {
    /// Nothing left to fetch within the limits.
    Finished,
    /// Stopped on request; `trawl resume` continues.
    Interrupted,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct CrawlReport {
    pub outcome: CrawlOutcome,
    /// Fetches completed in this run.
    pub fetched: u64,
    /// Fetches in this run that failed.
    pub failed: u64,
    /// Body bytes received in this run.
    pub bytes: u64,
    /// Recrawl revisits not asked because a sitemap's `<lastmod>` showed
    /// the page unchanged since its last check.
    pub unchanged_by_sitemap: u64,
    pub elapsed: Duration,
    /// Totals over the whole crawl, from the database.
    pub pages_stored: i64,
    pub failed_by_reason: Vec<(String, i64)>,
    pub skipped_by_reason: Vec<(String, i64)>,
    /// Sitemaps by state and reason (`done`, `failed:http_404`).
    pub sitemaps: Vec<(String, i64)>,
    pub queued: i64,
    pub writer: WriterStats,
    /// Time spent analysing bodies, summed over all workers.
    pub parse_time: Duration,
    /// What the summary stage did in this run (`None`: summaries off).
    pub summaries: Option<StageReport>,
}

impl CrawlReport {
    pub fn pages_per_sec(&self) -> f64 {
        self.fetched as f64 / self.elapsed.as_secs_f64().max(0.001)
    }
}

/// The two stop signals: `stop` finishes in-flight work (up to a grace
/// period) and returns the rest to the queue; `abort` drops in-flight work
/// at once. Either way the database stays consistent.
#[derive(Clone, Default)]
pub struct Controls {
    pub stop: CancellationToken,
    pub abort: CancellationToken,
}

impl Controls {
    /// Cancels `token` once a stop of either kind is asked for (a task;
    /// abort it when it is no longer needed).
    pub fn cancel_when_stopped(&self, token: CancellationToken) -> tokio::task::JoinHandle<()> {
        let (stop, abort) = (self.stop.clone(), self.abort.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = abort.cancelled() => {}
            }
            token.cancel();
        })
    }
}

/// Starts a new crawl in `store`. Refuses a database that already holds one.
pub async fn start(
    store: &Store,
    cfg: CrawlConfig,
    controls: Controls,
    counters: Arc<Counters>,
) -> Result<CrawlReport, CrawlError> {
    let cfg = cfg.validated()?;
    if let Some(existing) = store.crawl().await? {
        return Err(CrawlError::CrawlExists {
            path: store.path().display().to_string(),
            state: existing.state,
            started: crate::util::rfc3339(existing.started_at),
        });
    }
    let json =
        serde_json::to_string(&cfg).map_err(|e| CrawlError::BadStoredConfig(e.to_string()))?;
    let crawl_id = store.create_crawl(&json).await?;
    let now = crate::util::now_ms();
    let (run_id, _) = store.begin_run(crawl_id, RunKind::Crawl, now).await?;
    let this = ThisRun {
        id: run_id,
        kind: RunKind::Crawl,
        changes_run: None,
        clock: now,
    };
    run(store, crawl_id, cfg, this, controls, counters).await
}

/// Continues the crawl stored in `store`, with its stored configuration
/// changed by `adjust` (raised limits, say).
pub async fn resume(
    store: &Store,
    adjust: impl FnOnce(&mut CrawlConfig),
    controls: Controls,
    counters: Arc<Counters>,
) -> Result<CrawlReport, CrawlError> {
    let path = store.path().display().to_string();
    let (row, mut cfg) = stored_crawl(store).await?;
    let per_host_before = cfg.limits.max_pages_per_host;
    adjust(&mut cfg);
    let cfg = cfg.validated()?;
    let per_host_raised = match (per_host_before, cfg.limits.max_pages_per_host) {
        (Some(before), Some(now)) => now > before,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let requeued = if per_host_raised {
        requeue_host_budget_traps(store, &cfg).await?
    } else {
        0
    };
    if row.state == CrawlState::Finished.as_str()
        && requeued == 0
        && !limits_allow_more(store, &cfg).await?
    {
        return Err(CrawlError::AlreadyFinished { path });
    }
    let json =
        serde_json::to_string(&cfg).map_err(|e| CrawlError::BadStoredConfig(e.to_string()))?;
    let now = crate::util::now_ms();
    store.run_again(row.id, &json, now).await?;
    let (run_id, changes_run) = store.begin_run(row.id, RunKind::Resume, now).await?;
    let this = ThisRun {
        id: run_id,
        kind: RunKind::Resume,
        changes_run,
        clock: crate::util::clock_ms(),
    };
    run(store, row.id, cfg, this, controls, counters).await
}

/// The crawl stored in `store` and its settings, for a new run of it.
async fn stored_crawl(store: &Store) -> Result<(crate::store::CrawlRow, CrawlConfig), CrawlError> {
    let Some(row) = store.crawl().await? else {
        let path = store.path().display().to_string();
        return Err(CrawlError::NothingToResume { path });
    };
    let cfg = serde_json::from_str(&row.config)
        .map_err(|e| CrawlError::BadStoredConfig(e.to_string()))?;
    Ok((row, cfg))
}

/// What a recrawl revisits.
#[derive(Debug, Clone, Copy)]
pub struct RecrawlOptions {
    /// Only the pages whose next revisit is due by `now`.
    pub due_only: bool,
    /// The time revisit schedules are read and set by, in epoch
    /// milliseconds (see [`crate::util::clock_ms`]).
    pub now: i64,
}

/// A new run of the crawl stored in `store` that revisits its stored
/// pages (every one, or only those due) with conditional requests and
/// continues the crawl from them with its stored configuration changed by
/// `adjust`. Records what changed; a killed recrawl is continued by
/// [`resume`].
pub async fn recrawl(
    store: &Store,
    adjust: impl FnOnce(&mut CrawlConfig),
    opts: RecrawlOptions,
    controls: Controls,
    counters: Arc<Counters>,
) -> Result<CrawlReport, CrawlError> {
    let (row, mut cfg) = stored_crawl(store).await?;
    adjust(&mut cfg);
    let cfg = cfg.validated()?;
    let json =
        serde_json::to_string(&cfg).map_err(|e| CrawlError::BadStoredConfig(e.to_string()))?;
    let now = crate::util::now_ms();
    store.index_links_by_page().await?;
    let (run_id, changes_run) = store.begin_run(row.id, RunKind::Recrawl, now).await?;
    // Leases a killed run left are queued again by `run`, as on resume.
    let queued = store
        .queue_revisits(opts.due_only.then_some(opts.now), now)
        .await?;
    tracing::info!("recrawl: {queued} stored URLs to revisit");
    store.run_again(row.id, &json, now).await?;
    let this = ThisRun {
        id: run_id,
        kind: RunKind::Recrawl,
        changes_run,
        clock: opts.now,
    };
    run(store, row.id, cfg, this, controls, counters).await
}

/// The run being made.
#[derive(Debug, Clone, Copy)]
struct ThisRun {
    id: i64,
    kind: RunKind,
    /// The recrawl whose changes fetches record (`None`: a first crawl
    /// and its resumes record none).
    changes_run: Option<i64>,
    /// Revisit schedules are set from this time.
    clock: i64,
}

/// Queues again the URLs recorded `trap` because their host had reached
/// `--max-pages-per-host` (not for their shape: too long, or a segment
/// repeated), now that the budget was raised. Hosts still over the new
/// budget trap them again at dispatch. Returns how many were queued.
async fn requeue_host_budget_traps(store: &Store, cfg: &CrawlConfig) -> Result<u64, CrawlError> {
    let scope = cfg.scope()?;
    use futures_util::TryStreamExt;
    let mut ids = Vec::new();
    {
        let mut rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT id, url FROM urls WHERE state = 'skipped' AND reason = 'trap'",
        )
        .fetch(store.pool());
        while let Some((id, url)) = rows.try_next().await.map_err(StoreError::from)? {
            if Url::parse(&url).is_ok_and(|u| scope.check(&u) != Err(SkipReason::Trap)) {
                ids.push(id);
            }
        }
    }
    store.requeue(&ids).await?;
    Ok(ids.len() as u64)
}

/// Whether a finished crawl has URLs that the (raised) limits now admit.
async fn limits_allow_more(store: &Store, cfg: &CrawlConfig) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM urls WHERE state IN ('queued', 'leased') \
         OR (state = 'skipped' AND reason IN ('max_pages', 'robots_unavailable')) \
         OR (state = 'failed' AND reason = 'host_unresponsive') \
         OR (state = 'skipped' AND reason = 'max_depth' AND depth <= ?)",
    )
    .bind(cfg.limits.max_depth.map_or(i64::MAX, i64::from))
    .fetch_one(store.pool())
    .await?;
    let fetched: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM urls WHERE state IN ('done', 'failed') AND sitemap = 0",
    )
    .fetch_one(store.pool())
    .await?;
    Ok(n > 0 && cfg.limits.max_pages.is_none_or(|m| (fetched as u64) < m))
}

async fn run(
    store: &Store,
    crawl_id: i64,
    cfg: CrawlConfig,
    this: ThisRun,
    controls: Controls,
    counters: Arc<Counters>,
) -> Result<CrawlReport, CrawlError> {
    let started = Instant::now();
    let resuming = this.kind != RunKind::Crawl;
    let scope = cfg.scope()?;
    // Hosts the user named may be internal (a crawl of one's own intranet);
    // any other host that resolves to an internal address is refused.
    let policy = if cfg.scope.allow_private_addresses {
        AddressPolicy::Any
    } else {
        AddressPolicy::TrustedHosts(scope.named_hosts())
    };
    let jar = if cfg.fetch.cookies {
        Some(Arc::new(crate::cookies::Jar::load(
            store.cookie_jars().await?,
        )))
    } else {
        None
    };
    let fetcher = Fetcher::build(&cfg.fetch, policy, jar.clone()).map_err(CrawlError::Client)?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let summarizer = if cfg.summarize.enabled {
        Some(Arc::new(Summarizer::new(&cfg.summarize)?))
    } else {
        None
    };
    let ctx = Arc::new(WorkerCtx {
        fetcher,
        scope,
        parse_limits: ParseLimits {
            max_links: cfg.limits.max_links_per_page,
            markdown: cfg.markdown,
        },
        parse_permits: Semaphore::new(cores),
        counters: counters.clone(),
        agent: robots::product_token(&cfg.fetch.user_agent),
        summary: summarizer.as_ref().and_then(|s| s.inline()),
        fetch_assets: cfg.scope.fetch_assets,
        fields: cfg.extract.compiled()?,
        keep_html: cfg.extract.keep_html,
    });
    if !cfg.politeness.robots {
        tracing::warn!(
            "--ignore-robots: robots.txt is NOT fetched or obeyed in this crawl; only do this on sites you run"
        );
    }

    // The frontier as it stands in the database.
    let pool = store.pool();
    let mut seen = FpSet::default();
    let mut depth_skipped = FpSet::default();
    let mut fetched_before = 0u64;
    if resuming {
        let max_depth = cfg.limits.max_depth.map_or(i64::MAX, i64::from);
        let now = crate::util::now_ms();
        // A run that was killed left its leases behind; URLs skipped for a
        // limit that has since been raised, or never asked because their
        // host was given up on, get their turn. (Not in a recrawl: the
        // page budget is the revisits' first.)
        sqlx::query(
            "UPDATE urls SET state = 'queued', updated_at = ? WHERE state = 'leased' \
             OR (state = 'skipped' AND reason IN ('max_pages', 'robots_unavailable') AND ?) \
             OR (state = 'failed' AND reason = 'host_unresponsive') \
             OR (state = 'skipped' AND reason = 'max_depth' AND depth <= ?)",
        )
        .bind(now)
        .bind(this.kind != RunKind::Recrawl)
        .bind(max_depth)
        .execute(pool)
        .await
        .map_err(StoreError::from)?;
        sqlx::query("UPDATE urls SET reason = NULL WHERE state = 'queued' AND reason IS NOT NULL")
            .execute(pool)
            .await
            .map_err(StoreError::from)?;
        let mut rows =
            sqlx::query_as::<_, (i64, String)>("SELECT id, COALESCE(reason, '') FROM urls")
                .fetch(pool);
        use futures_util::TryStreamExt;
        while let Some((id, reason)) = rows.try_next().await.map_err(StoreError::from)? {
            if reason == SkipReason::MaxDepth.as_str() || reason == SkipReason::Nofollow.as_str() {
                depth_skipped.insert(id as u64);
            } else {
                seen.insert(id as u64);
            }
        }
        drop(rows);
        fetched_before = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM urls WHERE state IN ('done', 'failed') AND sitemap = 0",
        )
        .fetch_one(pool)
        .await
        .map_err(StoreError::from)? as u64;
    }
    // Pages per host so far, for --max-pages-per-host.
    let mut host_pages: HashMap<Arc<str>, u64> = HashMap::new();
    if resuming && cfg.limits.max_pages_per_host.is_some() {
        let rows = sqlx::query_as::<_, (String, i64)>(
            "SELECT origin, COUNT(*) FROM urls WHERE sitemap = 0 AND state IN ('done', 'failed') GROUP BY origin",
        )
        .fetch_all(pool)
        .await
        .map_err(StoreError::from)?;
        host_pages.extend(rows.into_iter().map(|(o, n)| (Arc::from(o), n as u64)));
    }
    let db_queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM urls WHERE state = 'queued'")
        .fetch_one(pool)
        .await
        .map_err(StoreError::from)?;

    let conn = store.connection().await?;
    let checkpoint_conn = store.connection().await?;
    let (writer, writer_task) = writer::spawn(
        conn,
        checkpoint_conn,
        4 * cfg.concurrency.max(64),
        cfg.concurrency / 2,
    );
    let committed = writer.committed();

    // The summary stage runs beside the crawl on its own connection; the
    // crawl offers it pages and never waits for it.
    let stage_stop = CancellationToken::new();
    let (summary_tx, stage_task) = match summarizer {
        Some(s) => {
            let (tx, rx) = tokio::sync::mpsc::channel(256);
            let task = tokio::spawn(stage::run(
                s,
                pool.clone(),
                store.connection().await?,
                Some(rx),
                SweepOptions::default(),
                stage_stop.clone(),
                Some(counters.clone()),
            ));
            (Some(tx), Some(task))
        }
        None => (None, None),
    };

    let hosts = Hosts::new(
        cfg.politeness.robots,
        robots::product_token(&cfg.fetch.user_agent),
        cfg.politeness.max_crawl_delay,
    );
    let mut coord = Coordinator {
        sched: Scheduler::new(
            cfg.politeness.per_host_concurrency,
            cfg.politeness.interval(),
        ),
        cfg: Arc::new(cfg),
        crawl_id,
        this,
        writer,
        committed,
        sent: Committed::default(),
        seen,
        depth_skipped,
        window: DEFAULT_WINDOW,
        db_queued: db_queued as u64,
        db_queued_at_request: 0,
        refill: None,
        refill_limit: 0,
        tasks: JoinSet::new(),
        task_jobs: HashMap::new(),
        slow_running: HashMap::new(),
        given_up: Vec::new(),
        dispatched: fetched_before,
        ctx,
        counters: counters.clone(),
        wake: None,
        hosts,
        robots_tasks: JoinSet::new(),
        pool: store.pool().clone(),
        sitemap_hosts: HashSet::new(),
        sitemaps_wanted: Vec::new(),
        host_pages,
        trapped: Vec::new(),
        lastmods: FpMap::default(),
        unchanged_by_sitemap: Vec::new(),
        summary_tx,
        jar,
    };
    if !resuming {
        coord.add_seeds().await?;
    }

    let result = coord.run_loop(&controls).await;
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            stage_stop.cancel();
            coord.tasks.abort_all();
            drop(coord);
            // The writer's own error says more than "writer gone".
            return Err(match writer_task.await {
                Ok(Err(we)) => CrawlError::Store(we),
                _ => e,
            });
        }
    };
    // A stopped crawl leaves what is not summarized for later; a finished
    // one lets the stage sweep, and a stop during the sweep ends it too.
    if outcome == CrawlOutcome::Interrupted {
        stage_stop.cancel();
    }
    let watch_stop = controls.cancel_when_stopped(stage_stop.clone());
    // The stage's channel stays open until everything is committed, so
    // its sweep sees every stored page.
    let summary_tx = coord.summary_tx.take();
    drop(coord);
    let writer_stats = match writer_task.await {
        Ok(r) => r?,
        Err(_) => return Err(CrawlError::Store(StoreError::WriterGone)),
    };
    drop(summary_tx);
    let summaries = match stage_task {
        Some(task) => match task.await {
            Ok(Ok(mut r)) => {
                r.done += counters.get(&counters.summarized_inline);
                Some(r)
            }
            // The crawl itself is done and recorded; summaries can be
            // made later.
            Ok(Err(e)) => {
                tracing::error!(
                    "the summary stage failed: {e}; `trawl summarize` makes the missing summaries"
                );
                None
            }
            Err(e) => {
                tracing::error!("the summary stage panicked: {e}");
                None
            }
        },
        None => None,
    };
    watch_stop.abort();
    // Before the final checkpoint, which leaves no WAL behind.
    store
        .finish_run(
            this.id,
            counters.get(&counters.bytes),
            crate::util::now_ms(),
        )
        .await?;
    if outcome == CrawlOutcome::Finished {
        store.finish_summarizing(crawl_id).await?;
    }

    let counts = store.state_counts().await?;
    let count = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    let pages_stored: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pages p JOIN urls u ON u.id = p.url_id WHERE u.sitemap = 0",
    )
    .fetch_one(pool)
    .await
    .map_err(StoreError::from)?;
    Ok(CrawlReport {
        outcome,
        fetched: counters.get(&counters.fetched),
        failed: counters.get(&counters.failed),
        bytes: counters.get(&counters.bytes),
        unchanged_by_sitemap: counters.get(&counters.unchanged_by_sitemap),
        elapsed: started.elapsed(),
        pages_stored,
        failed_by_reason: store.reason_counts("failed").await?,
        skipped_by_reason: store.reason_counts("skipped").await?,
        sitemaps: store.sitemap_counts().await?,
        queued: count("queued") + count("leased"),
        writer: writer_stats,
        parse_time: Duration::from_nanos(counters.get(&counters.parse_nanos)),
        summaries,
    })
}

struct Coordinator {
    cfg: Arc<CrawlConfig>,
    crawl_id: i64,
    this: ThisRun,
    writer: WriterHandle,
    /// What the writer has committed, of what was `sent` to it. Waiting
    /// fetches count against [`uncommitted_bound`] (which bounds what a
    /// crash costs), and waiting rows against [`MAX_UNCOMMITTED_ROWS`].
    committed: tokio::sync::watch::Receiver<Committed>,
    sent: Committed,
    sched: Scheduler<Job>,
    seen: FpSet,
    /// URLs recorded as too deep; found again on a shorter path, they are
    /// queued after all.
    depth_skipped: FpSet,
    window: usize,
    /// URLs waiting in the database, not in memory.
    db_queued: u64,
    db_queued_at_request: u64,
    refill: Option<oneshot::Receiver<Vec<LeasedUrl>>>,
    refill_limit: usize,
    tasks: JoinSet<WorkerOutput>,
    /// Each running worker's job.
    task_jobs: HashMap<tokio::task::Id, Running>,
    /// Per origin, requests running that gave their slot back as slow.
    slow_running: HashMap<Arc<str>, u32>,
    /// URLs of hosts given up on, to be recorded as failed.
    given_up: Vec<i64>,
    /// Fetches started, including earlier runs of this crawl.
    dispatched: u64,
    ctx: Arc<WorkerCtx>,
    counters: Arc<Counters>,
    /// When the scheduler said the next host becomes ready.
    wake: Option<Instant>,
    /// robots.txt and failure state per host.
    hosts: Hosts,
    /// robots.txt being read (from the `hosts` table or the host).
    robots_tasks: JoinSet<(Arc<str>, RobotsLoad)>,
    pool: sqlx::SqlitePool,
    /// Without robots.txt: hosts whose `/sitemap.xml` was queued already,
    /// and those seen since the last turn of the loop.
    sitemap_hosts: HashSet<Arc<str>>,
    sitemaps_wanted: Vec<Arc<str>>,
    /// Pages fetched per origin (with `--max-pages-per-host`), and URLs
    /// taken out of the queue when their host's budget ran out.
    host_pages: HashMap<Arc<str>, u64>,
    trapped: Vec<i64>,
    /// In a recrawl: the `<lastmod>` the sitemaps read in this run gave
    /// each URL (epoch ms, by fingerprint; at most [`MAX_LASTMODS`]).
    lastmods: FpMap<i64>,
    /// Revisits a sitemap's `<lastmod>` showed unchanged since their last
    /// check, to record as such without a request.
    unchanged_by_sitemap: Vec<Job>,
    /// Stored pages offered to the summary stage; when its queue is full
    /// the page waits in the database for the stage's sweep.
    summary_tx: Option<tokio::sync::mpsc::Sender<Item>>,
    /// The cookie jar, if cookies are on: jars a response changed are
    /// written with that response's fetch.
    jar: Option<Arc<crate::cookies::Jar>>,
}

/// A robots.txt answer and whether it was just fetched (else it came from
/// the `hosts` table).
struct RobotsLoad {
    fetch: RobotsFetch,
    fresh: bool,
}

/// Reads `origin`'s robots.txt from the `hosts` table if a usable answer
/// younger than 24 hours is there, else fetches it.
async fn load_robots(ctx: &WorkerCtx, pool: &sqlx::SqlitePool, origin: &str) -> RobotsLoad {
    let oldest = crate::util::now_ms() - robots::ROBOTS_TTL.as_millis() as i64;
    let stored = sqlx::query_as::<_, (Option<i64>, Option<Vec<u8>>, i64)>(
        "SELECT robots_status, robots_body, robots_fetched_at FROM hosts \
         WHERE origin = ? AND robots_status IS NOT NULL AND robots_status < 500 AND robots_fetched_at > ?",
    )
    .bind(origin)
    .bind(oldest)
    .fetch_optional(pool)
    .await;
    match stored {
        Ok(Some((status, body, fetched_at))) => RobotsLoad {
            fetch: RobotsFetch {
                status: status.map(|s| s as u16),
                body: body.unwrap_or_default(),
                fetched_at,
                ..RobotsFetch::default()
            },
            fresh: false,
        },
        other => {
            if let Err(e) = other {
                tracing::debug!("reading stored robots.txt of {origin}: {e}");
            }
            RobotsLoad {
                fetch: robots::fetch(&ctx.fetcher, origin).await,
                fresh: true,
            }
        }
    }
}

impl Coordinator {
    fn budget_spent(&self) -> bool {
        self.cfg
            .limits
            .max_pages
            .is_some_and(|m| self.dispatched >= m)
    }

    /// Whether the URLs already queued would spend the page budget: no
    /// more sitemaps need reading for it (`resume` with a larger budget
    /// queues the ones skipped).
    fn budget_covered(&self) -> bool {
        self.cfg
            .limits
            .max_pages
            .is_some_and(|m| self.dispatched + self.sched.queued() as u64 + self.db_queued >= m)
    }

    async fn add_seeds(&mut self) -> Result<(), CrawlError> {
        let mut rows = Vec::new();
        for url in self.cfg.seed_urls() {
            let fp = canon::fingerprint(&url);
            if self.seen.insert(fp) {
                rows.push(NewUrl {
                    id: fp as i64,
                    origin: canon::origin_key(&url),
                    url: url.to_string(),
                    depth: 0,
                    state: UrlState::Queued,
                    reason: None,
                    discovered_from: None,
                    redirect_hops: 0,
                    sitemap: false,
                });
            }
        }
        self.db_queued += rows.len() as u64;
        self.writer.send(WriteOp::Urls(rows)).await?;
        Ok(())
    }

    async fn run_loop(&mut self, controls: &Controls) -> Result<CrawlOutcome, CrawlError> {
        let mut stopping = false;
        let mut aborted = false;
        let mut grace_deadline: Option<Instant> = None;
        let mut evict = tokio::time::interval(Duration::from_secs(10));
        evict.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut slow_check = tokio::time::interval(SLOW_CHECK);
        slow_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if !stopping {
                for origin in std::mem::take(&mut self.sitemaps_wanted) {
                    self.add_sitemaps(&origin, &[]).await?;
                }
                self.dispatch();
                let given_up = std::mem::take(&mut self.given_up);
                self.fail(given_up, crate::hosts::HOST_UNRESPONSIVE).await?;
                let trapped = std::mem::take(&mut self.trapped);
                self.skip(trapped, SkipReason::Trap).await?;
                for job in std::mem::take(&mut self.unchanged_by_sitemap) {
                    self.record_unchanged_by_sitemap(job).await?;
                }
                self.maybe_refill().await?;
            }
            self.publish();
            let idle = self.tasks.is_empty();
            if idle && (stopping || self.budget_spent() || self.frontier_empty()) {
                break;
            }
            let wake = self.wake;
            tokio::select! {
                _ = controls.abort.cancelled(), if !aborted => {
                    aborted = true;
                    stopping = true;
                    self.tasks.abort_all();
                }
                _ = controls.stop.cancelled(), if !stopping => {
                    stopping = true;
                    grace_deadline = Some(Instant::now() + STOP_GRACE);
                    tracing::info!("stopping: waiting for {} fetches in flight", self.tasks.len());
                }
                Some(res) = self.tasks.join_next_with_id(), if !idle => {
                    self.on_task_done(res).await?;
                }
                rows = async { self.refill.as_mut().expect("guarded").await }, if self.refill.is_some() => {
                    self.refill = None;
                    self.on_refill(rows.unwrap_or_default()).await?;
                }
                _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() && !stopping => {}
                _ = tokio::time::sleep_until(grace_deadline.unwrap_or_else(Instant::now)), if grace_deadline.is_some() => {
                    grace_deadline = None;
                    if !self.tasks.is_empty() {
                        tracing::warn!("aborting {} fetches still in flight; their URLs stay queued", self.tasks.len());
                        self.tasks.abort_all();
                    }
                }
                r = self.committed.changed(), if self.uncommitted() > 0 => {
                    if r.is_err() {
                        return Err(CrawlError::Store(StoreError::WriterGone));
                    }
                }
                Some(res) = self.robots_tasks.join_next(), if !self.robots_tasks.is_empty() => {
                    match res {
                        Ok((origin, load)) => self.on_robots(origin, load).await?,
                        Err(e) if e.is_cancelled() => {}
                        Err(e) => tracing::error!("robots.txt task panicked: {e}"),
                    }
                }
                _ = slow_check.tick(), if !idle && !stopping => {
                    self.release_slow(Instant::now());
                }
                _ = evict.tick() => {
                    let now = Instant::now();
                    for origin in self.sched.evict_idle(now) {
                        self.hosts.forget(&origin);
                    }
                    for origin in self.hosts.take_expired(now) {
                        tracing::info!("{origin}: robots.txt is 24 hours old; reading it again");
                        self.sched.set_blocked(&origin, true, now);
                        self.load_robots(origin, Duration::ZERO);
                    }
                }
            }
        }

        let outcome = if stopping {
            self.writer.send(WriteOp::ReleaseLeased).await?;
            self.writer
                .send(WriteOp::CrawlState {
                    id: self.crawl_id,
                    state: CrawlState::Stopped,
                })
                .await?;
            CrawlOutcome::Interrupted
        } else {
            if self.budget_spent() {
                // What is left is recorded as skipped for the page budget;
                // `resume --max-pages` with a higher limit queues it again.
                self.writer
                    .send(WriteOp::SkipPending {
                        reason: SkipReason::MaxPages.as_str(),
                    })
                    .await?;
            }
            // With a summary stage still at work, the crawl is
            // `summarizing` until it ends.
            let state = if self.summary_tx.is_some() {
                CrawlState::Summarizing
            } else {
                CrawlState::Finished
            };
            self.writer
                .send(WriteOp::CrawlState {
                    id: self.crawl_id,
                    state,
                })
                .await?;
            CrawlOutcome::Finished
        };
        self.writer.flush().await?;
        Ok(outcome)
    }

    fn frontier_empty(&self) -> bool {
        self.sched.queued() == 0 && self.db_queued == 0 && self.refill.is_none()
    }

    fn publish(&self) {
        let c = &self.counters;
        c.queued
            .store(self.sched.queued() as u64 + self.db_queued, Relaxed);
        c.in_flight.store(self.tasks.len() as u64, Relaxed);
    }

    /// Starts as many fetches as the limits allow now.
    fn dispatch(&mut self) {
        self.wake = None;
        let now = Instant::now();
        while self.writer_has_room() && !self.budget_spent() {
            match self.sched.next(now) {
                Next::Ready(origin, job) => {
                    // Sitemaps are not pages: they do not spend the budget.
                    if !job.sitemap {
                        self.dispatched += 1;
                        if let Some(max) = self.cfg.limits.max_pages_per_host {
                            let n = self.host_pages.entry(origin.clone()).or_insert(0);
                            *n += 1;
                            if *n >= max {
                                // The host's budget is spent: the rest of its
                                // pages are a trap (a calendar, say).
                                let rest = self.sched.remove_where(&origin, |j| !j.sitemap);
                                self.trapped.extend(rest.iter().map(|j| j.id as i64));
                            }
                        }
                    }
                    let ctx = self.ctx.clone();
                    let (id, sitemap) = (job.id, job.sitemap);
                    let handle = self.tasks.spawn(worker::run(ctx, origin.clone(), job));
                    self.task_jobs.insert(
                        handle.id(),
                        Running {
                            url_id: id,
                            origin,
                            sitemap,
                            started: now,
                            slow: false,
                        },
                    );
                }
                Next::Wait(at) => {
                    self.wake = Some(at);
                    break;
                }
                Next::Idle => break,
            }
        }
    }

    async fn maybe_refill(&mut self) -> Result<(), CrawlError> {
        if self.refill.is_some() || self.db_queued == 0 || self.budget_spent() {
            return Ok(());
        }
        let room = self.window.saturating_sub(self.sched.queued());
        if room < self.window / 2 {
            return Ok(());
        }
        let limit = room.min(REFILL_BATCH);
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(WriteOp::Refill {
                limit: limit as u32,
                revisits: self.this.changes_run.is_some(),
                reply: tx,
            })
            .await?;
        self.refill = Some(rx);
        self.refill_limit = limit;
        self.db_queued_at_request = self.db_queued;
        Ok(())
    }

    async fn on_refill(&mut self, rows: Vec<LeasedUrl>) -> Result<(), CrawlError> {
        let n = rows.len() as u64;
        if rows.len() < self.refill_limit {
            // The database had no more than this when the refill ran; only
            // URLs spilled after the request can be waiting there now.
            self.db_queued = self.db_queued.saturating_sub(self.db_queued_at_request);
        } else {
            self.db_queued = self.db_queued.saturating_sub(n);
        }
        let now = Instant::now();
        let mut skipped: BTreeMap<SkipReason, Vec<i64>> = BTreeMap::new();
        let mut failed: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
        for row in rows {
            let Ok(url) = Url::parse(&row.url) else {
                tracing::warn!("stored URL cannot be parsed, skipping: {}", row.url);
                continue;
            };
            let origin = canon::origin_key(&url);
            let job = Job {
                id: row.id as u64,
                url,
                depth: row.depth,
                hops: row.redirect_hops,
                chain: Vec::new(),
                attempts: 0,
                sitemap: row.sitemap,
                revisit: row.revisit.map(Arc::new),
            };
            if self.unchanged_since_lastmod(&job) {
                self.unchanged_by_sitemap.push(job);
                continue;
            }
            match self.enqueue(&origin, job, row.sitemap, now) {
                None => {}
                Some(NotQueued::Skip(reason)) => skipped.entry(reason).or_default().push(row.id),
                Some(NotQueued::Fail(reason)) => failed.entry(reason).or_default().push(row.id),
            }
        }
        for (reason, ids) in skipped {
            self.skip(ids, reason).await?;
        }
        for (reason, ids) in failed {
            self.fail(ids, reason).await?;
        }
        Ok(())
    }

    /// Queues `job` on its host unless robots.txt already rules it out or
    /// the host is unreachable, in which case it returns why. A host whose
    /// robots.txt is not known yet is held back and its robots.txt loaded.
    fn enqueue(&mut self, origin: &str, job: Job, front: bool, now: Instant) -> Option<NotQueued> {
        if !job.sitemap
            && let Some(max) = self.cfg.limits.max_pages_per_host
            && self.host_pages.get(origin).is_some_and(|&n| n >= max)
        {
            return Some(NotQueued::Skip(SkipReason::Trap));
        }
        match self.hosts.verdict(origin, &job.url) {
            Verdict::Skip(reason) => return Some(NotQueued::Skip(reason)),
            Verdict::Fail(reason) => return Some(NotQueued::Fail(reason)),
            Verdict::Allowed
                if !self.cfg.politeness.robots
                    && self.cfg.politeness.sitemaps
                    && !self.sitemap_hosts.contains(origin) =>
            {
                // No robots.txt to name sitemaps: try /sitemap.xml.
                let origin: Arc<str> = Arc::from(origin);
                self.sitemap_hosts.insert(origin.clone());
                self.sitemaps_wanted.push(origin);
            }
            Verdict::Allowed | Verdict::Wait => {}
            Verdict::Load => {
                self.sched.set_blocked(origin, true, now);
                self.load_robots(Arc::from(origin), Duration::ZERO);
            }
        }
        self.sched.push(origin, job, front, now);
        None
    }

    /// Reads `origin`'s robots.txt (after `delay`): from the `hosts` table
    /// while it is fresh, else from the host.
    fn load_robots(&mut self, origin: Arc<str>, delay: Duration) {
        let ctx = self.ctx.clone();
        let pool = self.pool.clone();
        self.robots_tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            let load = load_robots(&ctx, &pool, &origin).await;
            (origin, load)
        });
    }

    /// Records URLs taken back from the window as failed, unfetched (their
    /// host cannot be reached).
    async fn fail(&mut self, ids: Vec<i64>, reason: &'static str) -> Result<(), CrawlError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.counters.failed.fetch_add(ids.len() as u64, Relaxed);
        self.writer.send(WriteOp::Fail { ids, reason }).await?;
        Ok(())
    }

    /// Records URLs taken back from the window as skipped.
    async fn skip(&mut self, ids: Vec<i64>, reason: SkipReason) -> Result<(), CrawlError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.counters.skipped.fetch_add(ids.len() as u64, Relaxed);
        self.writer
            .send(WriteOp::Skip {
                ids,
                reason: reason.as_str(),
            })
            .await?;
        Ok(())
    }

    async fn on_robots(&mut self, origin: Arc<str>, load: RobotsLoad) -> Result<(), CrawlError> {
        self.save_cookies().await?;
        let now = Instant::now();
        let age =
            Duration::from_millis((crate::util::now_ms() - load.fetch.fetched_at).max(0) as u64);
        let loaded = self.hosts.loaded(&origin, &load.fetch, age);
        if load.fresh {
            let (crawl_delay_ms, unusable_rules) = match &loaded {
                Loaded::Ready {
                    crawl_delay,
                    capped_from,
                    unusable_rules,
                    ..
                } => (
                    capped_from.or(*crawl_delay).map(|d| d.as_millis() as i64),
                    *unusable_rules,
                ),
                _ => (None, 0),
            };
            self.writer
                .send(WriteOp::Host(Box::new(HostRecord {
                    origin: origin.to_string(),
                    robots: load.fetch,
                    crawl_delay_ms,
                    unusable_rules,
                })))
                .await?;
        }
        match loaded {
            Loaded::Retry { after, why } => {
                tracing::info!("{origin}: {why}; its URLs wait, asking again in {after:.1?}");
                self.load_robots(origin, after);
            }
            Loaded::GaveUp { why, reason } => {
                if reason == SkipReason::RobotsUnavailable {
                    tracing::warn!(
                        "{origin}: {why}, through {} attempts; its URLs are recorded as robots_unavailable",
                        crate::hosts::ROBOTS_ATTEMPTS
                    );
                } else {
                    tracing::warn!("{origin}: {why}; its URLs are recorded as {reason}");
                }
                let ids = self.sched.remove_where(&origin, |_| true);
                self.skip(ids.iter().map(|j| j.id as i64).collect(), reason)
                    .await?;
                self.sched.set_blocked(&origin, false, now);
            }
            Loaded::Unreachable { why, reason } => {
                let ids = self.sched.remove_where(&origin, |_| true);
                tracing::warn!(
                    "{origin} cannot be reached ({why}) through {} attempts; its {} queued URLs are recorded as failed ({reason})",
                    crate::hosts::UNREACHABLE_ATTEMPTS,
                    ids.len()
                );
                self.fail(ids.iter().map(|j| j.id as i64).collect(), reason)
                    .await?;
                self.sched.set_blocked(&origin, false, now);
            }
            Loaded::Ready {
                crawl_delay,
                capped_from,
                sitemaps,
                unusable_rules,
            } => {
                if unusable_rules > 0 {
                    tracing::warn!(
                        "{origin}: robots.txt: {} could not be used and {} left out; every other rule is obeyed",
                        crate::robots::rules_count(unusable_rules.into()),
                        if unusable_rules == 1 { "is" } else { "are" }
                    );
                }
                if let Some(asked) = capped_from {
                    tracing::warn!(
                        "{origin}: robots.txt asks for a Crawl-delay of {asked:?}; using --max-crawl-delay {:?}",
                        self.cfg.politeness.max_crawl_delay
                    );
                }
                if let Some(d) = crawl_delay {
                    self.sched.set_interval(&origin, d, now);
                }
                if load.fresh {
                    // The robots.txt request counts: the next waits its turn.
                    let interval = crawl_delay
                        .unwrap_or_default()
                        .max(self.cfg.politeness.interval());
                    self.sched.delay_host(&origin, now + interval);
                }
                let hosts = &mut self.hosts;
                let removed = self.sched.remove_where(&origin, |j| {
                    hosts.verdict(&origin, &j.url) != Verdict::Allowed
                });
                self.skip(
                    removed.iter().map(|j| j.id as i64).collect(),
                    SkipReason::Robots,
                )
                .await?;
                self.sched.set_blocked(&origin, false, now);
                if self.cfg.politeness.sitemaps {
                    self.add_sitemaps(&origin, &sitemaps).await?;
                }
            }
        }
        Ok(())
    }

    async fn on_task_done(
        &mut self,
        res: Result<(tokio::task::Id, WorkerOutput), JoinError>,
    ) -> Result<(), CrawlError> {
        match res {
            Ok((id, out)) => {
                if let Some(run) = self.task_jobs.remove(&id) {
                    self.finished(&run);
                }
                self.on_output(out).await
            }
            Err(e) => {
                let Some(run) = self.task_jobs.remove(&e.id()) else {
                    return Ok(());
                };
                self.finished(&run);
                let (url_id, sitemap) = (run.url_id, run.sitemap);
                if e.is_cancelled() {
                    // Aborted by a stop: the URL stays leased and is
                    // released to the queue when the crawl stops.
                    return Ok(());
                }
                tracing::error!("worker panicked on URL {url_id}: {e}");
                if !sitemap {
                    self.counters.fetched.fetch_add(1, Relaxed);
                    self.counters.failed.fetch_add(1, Relaxed);
                }
                let mut rec = FetchRecord::new(url_id as i64);
                rec.fail("panic");
                self.send_fetch(rec).await
            }
        }
    }

    /// A worker ended: its host's slot is free (unless it gave the slot
    /// back already, as slow).
    fn finished(&mut self, run: &Running) {
        if !run.slow {
            self.sched.complete(&run.origin);
        } else if let Some(n) = self.slow_running.get_mut(&run.origin) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.slow_running.remove(&run.origin);
            }
        }
    }

    /// Requests that have run longer than their host's usual answer time
    /// (see [`Hosts::slow_after`]) give their slot back, so one URL that
    /// drips or stalls does not hold up its host's other URLs. At most
    /// twice `--per-host-concurrency` requests per host run that way (a
    /// stalled request costs the server an idle connection, not work), so
    /// a host never has more than three times its concurrency of
    /// connections open.
    fn release_slow(&mut self, now: Instant) {
        let cap = 2 * self.cfg.politeness.per_host_concurrency;
        for run in self.task_jobs.values_mut() {
            if run.slow {
                continue;
            }
            let Some(after) = self.hosts.slow_after(&run.origin) else {
                continue;
            };
            let n = self.slow_running.entry(run.origin.clone()).or_insert(0);
            if now.duration_since(run.started) >= after && *n < cap {
                *n += 1;
                run.slow = true;
                self.sched.complete(&run.origin);
                tracing::debug!(
                    "URL {} of {} is slow; its slot is free",
                    run.url_id,
                    run.origin
                );
            }
        }
        self.slow_running.retain(|_, n| *n > 0);
    }

    /// A transient failure: backs the host off (for `retry_after` if the
    /// server said, capped, else exponentially), and queues the job again
    /// if it has retries left. Returns the job if it has none.
    fn retry(&mut self, origin: &Arc<str>, job: Job, retry_after: Option<Duration>) -> Option<Job> {
        let now = Instant::now();
        let backoff = self.hosts.failed(origin);
        if self.hosts.give_up(origin) {
            // The host is not answering: its queued URLs fail now rather
            // than wait out minutes of back-off each.
            let rest = self.sched.remove_where(origin, |_| true);
            tracing::warn!(
                "{origin} failed {} requests in a row; giving up on it: its {} queued URLs are \
                 recorded as failed ({}); `trawl resume` tries again",
                self.hosts.failures(origin),
                rest.len(),
                crate::hosts::HOST_UNRESPONSIVE
            );
            self.given_up.extend(rest.iter().map(|j| j.id as i64));
            return Some(job);
        }
        let wait = match retry_after {
            Some(asked) => {
                let max = self.cfg.politeness.max_retry_after;
                if asked > max {
                    tracing::warn!(
                        "{origin}: Retry-After of {asked:?} cut to --max-retry-after {max:?}"
                    );
                }
                asked.min(max)
            }
            None => backoff,
        };
        self.sched.delay_host(origin, now + wait);
        if job.attempts >= self.cfg.politeness.retries {
            return Some(job);
        }
        tracing::debug!("{}: retrying in {wait:.1?}", job.url);
        self.requeue(origin, job, true, now);
        None
    }

    /// Queues a job again for another attempt (`front`: ahead of its
    /// host's queue). A retry does not spend the page budget again.
    fn requeue(&mut self, origin: &Arc<str>, mut job: Job, front: bool, now: Instant) {
        job.attempts += 1;
        if !job.sitemap {
            self.dispatched = self.dispatched.saturating_sub(1);
            if let Some(n) = self.host_pages.get_mut(origin) {
                *n = n.saturating_sub(1);
            }
        }
        self.sched.push(origin, job, front, now);
    }

    /// A URL that timed out (or whose body broke off) while its host
    /// answers others: the host is not backed off; the URL is tried once
    /// more after the host's other queued URLs, holding no slot while it
    /// waits. Returns the job if it was tried twice already.
    fn retry_slow(&mut self, origin: &Arc<str>, job: Job) -> Option<Job> {
        if job.attempts >= self.cfg.politeness.retries.min(1) {
            return Some(job);
        }
        tracing::debug!("{}: slow; trying again after its host's queue", job.url);
        self.requeue(origin, job, false, Instant::now());
        None
    }

    async fn on_output(&mut self, out: WorkerOutput) -> Result<(), CrawlError> {
        let origin = out.origin;
        let mut job = out.job;
        // Transient failures are retried before anything is recorded.
        if let Outcome::Fetched(f) = &out.outcome {
            self.hosts.answered(
                &origin,
                Duration::from_millis(f.page.fetch_ms.max(0) as u64),
            );
        }
        let transient = match &out.outcome {
            Outcome::Failed(FetchError::Timeout | FetchError::Body(_))
                if !if job.attempts == 0 {
                    self.hosts.timed_out(&origin)
                } else {
                    self.hosts.failing(&origin)
                } =>
            {
                // One slow URL on a host that answers the others.
                match self.retry_slow(&origin, job) {
                    None => return Ok(()),
                    Some(j) => job = j,
                }
                None
            }
            Outcome::Failed(e) => e.is_retryable().then_some(None),
            Outcome::Fetched(f) => {
                let status = f.page.status;
                if matches!(status, 408 | 429) || (500..600).contains(&status) {
                    let asked = f
                        .retry_after
                        .as_deref()
                        .filter(|_| matches!(status, 429 | 503))
                        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
                    Some(asked)
                } else {
                    None
                }
            }
            Outcome::Panicked(_) => None,
        };
        match transient {
            Some(retry_after) => match self.retry(&origin, job, retry_after) {
                None => return Ok(()),
                Some(j) => job = j,
            },
            None if matches!(out.outcome, Outcome::Failed(_)) => {}
            None => self.hosts.succeeded(&origin),
        }
        let c = self.counters.clone();
        // The counters (and the report's pages/s) are about pages.
        if !job.sitemap {
            c.fetched.fetch_add(1, Relaxed);
        }
        let mut rec = FetchRecord::new(job.id as i64);
        rec.attempts = job.attempts + 1;
        rec.chain = job.chain.iter().map(|&f| f as i64).collect();
        // For a recrawl's record: what came back, and the validators of a
        // stored page that is kept.
        let mut answered: Option<(u16, Option<String>)> = None;
        let mut kept_validators = (None, None);
        let mut bytes = 0;
        match out.outcome {
            Outcome::Failed(e) => {
                tracing::debug!("{}: {e}", job.url);
                rec.fail(e.reason());
            }
            Outcome::Panicked(msg) => {
                tracing::error!("parsing {} panicked: {msg}", job.url);
                rec.fail("panic");
            }
            Outcome::Fetched(f) => {
                let mut f = *f;
                if !job.sitemap {
                    c.bytes.fetch_add(f.page.size, Relaxed);
                }
                bytes = f.page.size;
                let status = f.page.status;
                answered = Some((status, f.page.content_hash.clone()));
                // A revisited page that is the same (304, or the stored
                // body), or that failed, keeps its stored version.
                // A redirect is the same only if it still leads where it
                // led (then its target is revisited on its own account).
                let same_target = |r: &revisits::Revisit| {
                    let target = f
                        .location
                        .as_deref()
                        .and_then(|l| canon::resolve(&job.url, l));
                    r.redirect_to.as_deref() == target.as_ref().map(Url::as_str)
                };
                // (A sitemap is always read: see `unchanged_since`.)
                let keep = !job.sitemap
                    && job.revisit.as_deref().is_some_and(|r| {
                        r.was_ok
                            && (status == 304
                                || status >= 400
                                || (r.status == Some(status)
                                    && r.content_hash == f.page.content_hash
                                    && (!(300..400).contains(&status) || same_target(r))))
                    });
                if keep {
                    if status >= 400 {
                        rec.fail(format!("http_{status}"));
                    }
                    // Only validators that differ from the stored ones
                    // are written (nearly every 304 repeats them).
                    let stored = job.revisit.as_deref();
                    let new = |v: Option<String>, old: Option<&str>| {
                        v.filter(|v| Some(v.as_str()) != old)
                    };
                    kept_validators = (
                        new(f.page.etag.take(), stored.and_then(|r| r.etag.as_deref())),
                        new(
                            f.page.last_modified.take(),
                            stored.and_then(|r| r.last_modified.as_deref()),
                        ),
                    );
                } else if (300..400).contains(&status)
                    && let Some(location) = f.location.take()
                {
                    match canon::resolve(&job.url, &location) {
                        Some(target) => {
                            let cookie = f.sets_cookie;
                            self.on_redirect(&job, target, cookie, &mut f.page, &mut rec)
                        }
                        None => {
                            // Not a URL, or one a crawler cannot follow
                            // (`mailto:`, `ftp:`): recorded as sent.
                            tracing::debug!("{}: unusable Location {location:?}", job.url);
                            f.page.redirect_to = Some(location);
                            rec.fail("bad_redirect");
                        }
                    }
                    rec.chain.clear();
                } else if matches!(status, 301 | 302 | 303 | 307 | 308) {
                    // A redirect that says nowhere (RFC 9110 §15.4).
                    tracing::debug!("{}: {status} without a Location", job.url);
                    rec.fail("bad_redirect");
                } else if status >= 400 {
                    rec.fail(format!("http_{status}"));
                } else if let Some(read) = f.sitemap.take() {
                    rec.became_sitemap = !job.sitemap;
                    self.on_sitemap(&job, read, f.links, &mut rec);
                } else {
                    // A refresh to the page itself is a redirect only to
                    // set up a session (it set a cookie, cookies are on),
                    // once: asked again, it is the page.
                    let refresh = f.refresh.take().filter(|t| {
                        canon::fingerprint(t) != job.id
                            || (f.sets_cookie && self.jar.is_some() && !job.chain.contains(&job.id))
                    });
                    let refresh_fp = refresh.as_ref().map(canon::fingerprint);
                    if let Some(target) = refresh {
                        // A refresh at once (header or meta): the next hop
                        // of a redirect; the page itself is kept too.
                        let cookie = f.sets_cookie;
                        self.on_redirect(&job, target, cookie, &mut f.page, &mut rec);
                        rec.chain.clear();
                    } else {
                        self.offer_summary(&f.page);
                    }
                    for link in f.links {
                        let to_id = link.fp as i64;
                        if Some(link.fp) == refresh_fp {
                            // The hop's target: an edge, never a second
                            // way in (a chain cut by --max-redirects or a
                            // loop stays cut).
                            rec.links.push(LinkRecord {
                                to_id,
                                anchor: link.anchor,
                                nofollow: link.nofollow,
                                kind: Some(link.kind.as_str()),
                            });
                            continue;
                        }
                        // A nofollow page's links are recorded as edges;
                        // their targets are not fetched on its account.
                        let scope = match link.scope {
                            Ok(()) if f.nofollow => Err(SkipReason::Nofollow),
                            other => other,
                        };
                        self.discover(
                            Found {
                                url: &link.url,
                                fp: link.fp,
                                depth: job.depth + 1,
                                from: Some(job.id),
                                hops: 0,
                                scope,
                                chain: None,
                                sitemap: false,
                            },
                            &mut rec.new_urls,
                        );
                        rec.links.push(LinkRecord {
                            to_id,
                            anchor: link.anchor,
                            nofollow: link.nofollow,
                            kind: (link.kind != LinkKind::Anchor).then(|| link.kind.as_str()),
                        });
                    }
                }
                if !keep {
                    rec.page = Some(f.page);
                }
            }
        }
        if let Some(run_id) = self.this.changes_run
            && !job.sitemap
        {
            let answer = match &answered {
                None => Answer::Failed,
                Some((304, _)) => Answer::NotModified,
                Some((404 | 410, _)) => Answer::Gone,
                Some(_) if rec.state == UrlState::Failed => Answer::Failed,
                Some((status, hash)) => Answer::Page {
                    status: *status,
                    content_hash: hash.as_deref().unwrap_or(""),
                    redirect_to: match &rec.page {
                        Some(p) => p.redirect_to.as_deref(),
                        // Kept: the stored target, unchanged.
                        None => job
                            .revisit
                            .as_deref()
                            .and_then(|r| r.redirect_to.as_deref()),
                    },
                },
            };
            let change = revisits::classify(job.revisit.as_deref(), answer);
            let previous = job.revisit.as_ref().and_then(|r| r.revisit_ms);
            let interval = revisits::next_interval(previous, change, &self.cfg.revisit);
            let (etag, last_modified) = kept_validators;
            rec.revisit = Some(RevisitRecord {
                run_id,
                change,
                checked_at: self.this.clock,
                revisit_ms: interval,
                due_at: self.this.clock + interval,
                bytes,
                etag,
                last_modified,
            });
        }
        // Page failures are what the report and the exit code count; a
        // missing sitemap is recorded, not a failed page.
        if rec.state == UrlState::Failed && !job.sitemap {
            c.failed.fetch_add(1, Relaxed);
        }
        self.send_fetch(rec).await
    }

    fn offer_summary(&self, page: &crate::store::writer::PageRecord) {
        let (Some(tx), Some(hash), Some(text)) = (&self.summary_tx, &page.content_hash, &page.text)
        else {
            return;
        };
        if page.summary.is_some() {
            self.counters.summarized_inline.fetch_add(1, Relaxed);
            return;
        }
        if page.noindex || text.is_empty() || !(200..300).contains(&page.status) {
            return;
        }
        let _ = tx.try_send(Item {
            url: page.final_url.clone(),
            content_hash: hash.clone(),
            text: text.clone(),
            kinds: page.text_kinds.clone(),
        });
    }

    /// A sitemap that answered 2xx: queues the pages (or, for an index,
    /// the sitemaps) it lists, through scope and robots like any link.
    fn on_sitemap(
        &mut self,
        job: &Job,
        read: Result<SitemapRead, SitemapError>,
        links: Vec<worker::ScopedLink>,
        rec: &mut FetchRecord,
    ) {
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!("{}: {e}", job.url);
                rec.fail("bad_sitemap");
                return;
            }
        };
        if let Some(cut) = &read.cut {
            tracing::warn!(
                "{}: sitemap read only in part ({cut}); {} URLs taken",
                job.url,
                links.len()
            );
        }
        let index = read.kind == sitemap::Kind::Index;
        if index && job.depth >= MAX_SITEMAP_NESTING {
            tracing::warn!(
                "{}: sitemap index nested {} deep; its {} sitemaps are not read",
                job.url,
                job.depth + 1,
                links.len()
            );
            return;
        }
        tracing::debug!("{}: sitemap lists {} URLs", job.url, links.len());
        if self.this.changes_run.is_some() && !read.lastmods.is_empty() {
            // A recrawl: revisits waiting in the window that the sitemap
            // shows unchanged since their last check are not asked.
            let room = MAX_LASTMODS.saturating_sub(self.lastmods.len());
            self.lastmods
                .extend(read.lastmods.iter().take(room).copied());
            let origins: HashSet<Arc<str>> = links
                .iter()
                .map(|l| Arc::from(canon::origin_key(&l.url)))
                .collect();
            for origin in origins {
                let lastmods = &self.lastmods;
                let unchanged = self
                    .sched
                    .remove_where(&origin, |j| unchanged_since(lastmods, j));
                self.unchanged_by_sitemap.extend(unchanged);
            }
        }
        for link in links {
            self.discover(
                Found {
                    url: &link.url,
                    fp: link.fp,
                    // Pages a site's own sitemap lists count as one link
                    // away from a seed; those of a linked one, one link
                    // further than it.
                    depth: match (index, job.sitemap) {
                        (true, _) => job.depth + 1,
                        (false, true) => 1,
                        (false, false) => job.depth + 1,
                    },
                    from: Some(job.id),
                    hops: 0,
                    scope: link.scope,
                    chain: None,
                    sitemap: index,
                },
                &mut rec.new_urls,
            );
        }
    }

    /// Whether a recrawl's sitemaps show `job`, a revisit of a stored
    /// page, unchanged since it was last checked.
    fn unchanged_since_lastmod(&self, job: &Job) -> bool {
        self.this.changes_run.is_some() && unchanged_since(&self.lastmods, job)
    }

    /// Records a revisit a sitemap's `<lastmod>` showed unchanged: the page
    /// is kept, checked now, its interval doubled, as after a 304, with no
    /// request made.
    async fn record_unchanged_by_sitemap(&mut self, job: Job) -> Result<(), CrawlError> {
        let Some(run_id) = self.this.changes_run else {
            return Ok(());
        };
        let previous = job.revisit.as_ref().and_then(|r| r.revisit_ms);
        let change = Some(revisits::Change::Unchanged);
        let interval = revisits::next_interval(previous, change, &self.cfg.revisit);
        let mut rec = FetchRecord::new(job.id as i64);
        rec.attempts = 0;
        rec.revisit = Some(RevisitRecord {
            run_id,
            change,
            checked_at: self.this.clock,
            revisit_ms: interval,
            due_at: self.this.clock + interval,
            bytes: 0,
            etag: None,
            last_modified: None,
        });
        self.counters.unchanged_by_sitemap.fetch_add(1, Relaxed);
        self.send_fetch(rec).await
    }

    /// Queues `origin`'s sitemaps: those its robots.txt names, or else
    /// `/sitemap.xml`.
    async fn add_sitemaps(&mut self, origin: &str, named: &[String]) -> Result<(), CrawlError> {
        let Ok(base) = Url::parse(origin) else {
            return Ok(());
        };
        let mut urls: Vec<Url> = named
            .iter()
            .filter_map(|s| canon::resolve(&base, s))
            .collect();
        if urls.is_empty()
            && let Some(u) = canon::resolve(&base, "/sitemap.xml")
        {
            urls.push(u);
        }
        let mut new_urls = Vec::new();
        for url in urls {
            let scope = self.ctx.scope.check(&url);
            self.discover(
                Found {
                    fp: canon::fingerprint(&url),
                    url: &url,
                    depth: 0,
                    from: None,
                    hops: 0,
                    scope,
                    chain: None,
                    sitemap: true,
                },
                &mut new_urls,
            );
        }
        if !new_urls.is_empty() {
            self.writer.send(WriteOp::Urls(new_urls)).await?;
        }
        Ok(())
    }

    /// Hands the cookie jars that changed to the writer, ahead of the
    /// fetch that changed them.
    async fn save_cookies(&mut self) -> Result<(), CrawlError> {
        if let Some(jar) = &self.jar {
            let changed = jar.take_changed();
            if !changed.is_empty() {
                self.writer.send(WriteOp::Cookies(changed)).await?;
            }
        }
        Ok(())
    }

    async fn send_fetch(&mut self, rec: FetchRecord) -> Result<(), CrawlError> {
        self.save_cookies().await?;
        self.sent.fetches += 1;
        self.sent.rows += rec.rows();
        self.writer.send(WriteOp::Fetch(Box::new(rec))).await?;
        Ok(())
    }

    /// Fetches sent to the writer and not committed yet.
    fn uncommitted(&self) -> usize {
        self.sent
            .fetches
            .saturating_sub(self.committed.borrow().fetches) as usize
    }

    /// Whether another fetch may start: fewer than `--concurrency` in
    /// flight, and the writer's backlog within its bounds.
    fn writer_has_room(&self) -> bool {
        let done = *self.committed.borrow();
        self.tasks.len() < self.cfg.concurrency
            && self.uncommitted() < uncommitted_bound(self.cfg.concurrency)
            && self.sent.rows.saturating_sub(done.rows) < MAX_UNCOMMITTED_ROWS
    }

    /// A 3xx with a usable Location, or a refresh at once: the target is
    /// the next hop, scheduled like any URL (scope, robots, dedup,
    /// politeness) but ahead of its host's queue.
    ///
    /// A redirect back to a URL of its own chain (or to itself) is a loop,
    /// unless the response set a cookie and cookies are on: then it is a
    /// session being set up (`302 Location: /shop/` with `Set-Cookie`), and
    /// the URL is fetched again, with the cookie, within `--max-redirects`.
    fn on_redirect(
        &mut self,
        job: &Job,
        target: Url,
        sets_cookie: bool,
        page: &mut crate::store::writer::PageRecord,
        rec: &mut FetchRecord,
    ) {
        page.redirect_to = Some(target.to_string());
        page.final_url = target.to_string();
        let fp = canon::fingerprint(&target);
        let back = fp == job.id || job.chain.contains(&fp);
        if back && !(sets_cookie && self.jar.is_some()) {
            rec.fail("redirect_loop");
            return;
        }
        if job.hops + 1 > self.cfg.limits.max_redirects {
            rec.fail("too_many_redirects");
            return;
        }
        let mut chain = job.chain.clone();
        chain.push(job.id);
        if back {
            // Seen already: queued again directly, ahead of its host, and
            // leased again in the store (its row was settled by the hop
            // that set the cookie), so a stop or the page budget leaves
            // it to `resume`.
            rec.relet.push(fp as i64);
            let again = Job {
                id: fp,
                url: target,
                depth: job.depth,
                hops: job.hops + 1,
                chain,
                attempts: 0,
                sitemap: job.sitemap,
                revisit: None,
            };
            let origin = canon::origin_key(&again.url);
            self.sched.push(&origin, again, true, Instant::now());
            return;
        }
        let scope = self.ctx.scope.check(&target);
        self.discover(
            Found {
                url: &target,
                fp,
                depth: job.depth,
                from: Some(job.id),
                hops: job.hops + 1,
                scope,
                chain: Some(chain),
                sitemap: job.sitemap,
            },
            &mut rec.new_urls,
        );
    }

    /// Decides the fate of a URL found on a page, in a sitemap or in a
    /// redirect, records it in `new_urls`, and queues it if it is to be
    /// fetched.
    fn discover(&mut self, found: Found<'_>, new_urls: &mut Vec<NewUrl>) {
        let Found {
            url,
            fp,
            depth,
            from,
            hops,
            scope,
            chain,
            sitemap,
        } = found;
        if self.seen.contains(&fp) {
            return;
        }
        let mut new = NewUrl {
            id: fp as i64,
            url: url.to_string(),
            origin: canon::origin_key(url),
            depth,
            state: UrlState::Skipped,
            reason: None,
            discovered_from: from.map(|f| f as i64),
            redirect_hops: hops,
            sitemap,
        };
        // A sitemap's depth is its nesting, not a link distance.
        let skip = if let Err(reason) = scope {
            Some(reason)
        } else if !sitemap && self.cfg.limits.max_depth.is_some_and(|m| depth > m) {
            Some(SkipReason::MaxDepth)
        } else if self.budget_spent()
            || ((sitemap || self.this.changes_run.is_some()) && self.budget_covered())
        {
            // In a recrawl, the pages queued for a revisit have the budget
            // first: a new page is only queued if it leaves room for them.
            Some(SkipReason::MaxPages)
        } else {
            None
        };
        if let Some(reason) = skip {
            if matches!(
                reason,
                SkipReason::MaxDepth | SkipReason::Nofollow | SkipReason::Asset
            ) {
                // Found again another way, it may be fetched after all.
                if !self.depth_skipped.insert(fp) {
                    return; // recorded already
                }
            } else {
                self.seen.insert(fp);
            }
            new.reason = Some(reason.as_str());
            self.counters.skipped.fetch_add(1, Relaxed);
            new_urls.push(new);
            return;
        }
        self.depth_skipped.remove(&fp);
        self.seen.insert(fp);
        if self.sched.queued() < self.window || chain.is_some() {
            new.state = UrlState::Leased;
            let origin = new.origin.clone();
            // Redirect targets continue a fetch; sitemaps feed the queue.
            let front = chain.is_some() || sitemap;
            let job = Job {
                id: fp,
                url: url.clone(),
                depth,
                hops,
                chain: chain.unwrap_or_default(),
                attempts: 0,
                sitemap,
                revisit: None,
            };
            match self.enqueue(&origin, job, front, Instant::now()) {
                None => {}
                Some(NotQueued::Skip(reason)) => {
                    new.state = UrlState::Skipped;
                    new.reason = Some(reason.as_str());
                    self.counters.skipped.fetch_add(1, Relaxed);
                }
                Some(NotQueued::Fail(reason)) => {
                    new.state = UrlState::Failed;
                    new.reason = Some(reason);
                    self.counters.failed.fetch_add(1, Relaxed);
                }
            }
        } else {
            new.state = UrlState::Queued;
            self.db_queued += 1;
        }
        new_urls.push(new);
    }
}

/// How often running requests are checked for slowness.
const SLOW_CHECK: Duration = Duration::from_millis(250);

/// A worker that is running.
struct Running {
    url_id: u64,
    origin: Arc<str>,
    sitemap: bool,
    started: Instant,
    /// It ran long enough to give its host's slot back.
    slow: bool,
}

/// Why a URL was not queued.
enum NotQueued {
    /// Recorded as skipped.
    Skip(SkipReason),
    /// Recorded as failed, unfetched: its host cannot be reached.
    Fail(&'static str),
}

/// A URL found somewhere, on its way into the frontier.
struct Found<'a> {
    url: &'a Url,
    fp: u64,
    /// Link distance from a seed; for a sitemap, its nesting.
    depth: u32,
    /// The URL whose page, sitemap or redirect revealed it.
    from: Option<u64>,
    hops: u32,
    scope: Result<(), SkipReason>,
    /// The redirect chain it continues, if it is a redirect target.
    chain: Option<Vec<u64>>,
    sitemap: bool,
}

/// Totals for the final report line, by reason.
pub fn summarize_reasons(rows: &[(String, i64)]) -> String {
    crate::util::join_counts(rows.iter().map(|(k, v)| (k.as_str(), *v)))
}
