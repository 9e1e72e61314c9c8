//! The crawl: frontier, scheduler, fetch workers and store writer wired
//! together.
//!
//! In: a validated [`CrawlConfig`] and an open [`Store`]. Out: the crawl in
//! the database and a [`CrawlReport`].
//!
//! One coordinator task owns the frontier (the seen-set, the in-memory window
//! of ready URLs, the per-host [`Scheduler`]) and is the only one to decide
//! what is fetched next. Workers fetch and parse in parallel and hand results
//! back; the coordinator turns them into one [`FetchRecord`](crate::store::records::FetchRecord) each for the
//! writer. The database is the source of truth: URLs beyond the in-memory
//! window wait there as `queued` and are leased back in depth order when the
//! window runs low, so memory stays bounded however large the frontier grows.
//!
//! The crawl is finished when nothing is queued (in memory or in the
//! database), no refill is pending and nothing is in flight: a count, not a
//! channel closing.
//!
//! This module starts a run (`start`, `resume`, `recrawl`) and sets it up
//! and down; the coordinator's loop is in `coordinator`, where a found URL
//! goes in [`frontier`], what a worker's result means in `outcome`, and
//! each host's robots.txt and sitemaps in `lifecycle`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use url::Url;

use crate::config::{ConfigError, CrawlConfig};
use crate::fetch::{AddressPolicy, FetchError, Fetcher};
use crate::hosts::Hosts;
use crate::parse::ParseLimits;
use crate::progress::Counters;
use crate::reason::SkipReason;
use crate::robots::{self};
use crate::scheduler::Scheduler;
use crate::store::processes::{HEARTBEAT, ProcessInfo};
use crate::store::records::{Committed, Lease, WriterStats};
use crate::store::{CrawlState, RunKind, Store, StoreError};
use crate::summarize::Summarizer;
use crate::summarize::stage::{self, StageReport, SweepOptions};
use crate::util::FpMap;
use crate::worker::WorkerCtx;

mod coordinator;
pub mod frontier;

use coordinator::Coordinator;
use frontier::Frontier;
mod lifecycle;
mod outcome;
mod shared;

/// URLs held in memory, ready to be scheduled. Beyond this, discovered URLs
/// wait in the database.
pub const DEFAULT_WINDOW: usize = 50_000;
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
    #[error("{path} holds no crawl to join; start one with `trawl crawl SEED --db {path}`")]
    NothingToJoin { path: String },
    #[error("the crawl stored in {path} is finished; there is nothing to join")]
    JoinedFinished { path: String },
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
            path: store.target().to_string(),
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
        joining: false,
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
    let path = store.target().to_string();
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
        joining: false,
    };
    run(store, row.id, cfg, this, controls, counters).await
}

/// Adds this process to the crawl running in `store` (PostgreSQL, opened
/// with [`crate::store::Access::Join`]): it works the crawl's current run
/// with the crawl's stored settings, its own `concurrency` if given, beside
/// the processes already at work, leasing hosts none of them holds.
/// Refuses a database without a crawl; a finished crawl is
/// [`CrawlError::JoinedFinished`].
pub async fn join(
    store: &Store,
    concurrency: Option<usize>,
    controls: Controls,
    counters: Arc<Counters>,
) -> Result<CrawlReport, CrawlError> {
    let path = store.target().to_string();
    let Some(row) = store.crawl().await? else {
        return Err(CrawlError::NothingToJoin { path });
    };
    if row.state == CrawlState::Finished.as_str() || row.state == CrawlState::Summarizing.as_str() {
        return Err(CrawlError::JoinedFinished { path });
    }
    let mut cfg: CrawlConfig = serde_json::from_str(&row.config)
        .map_err(|e| CrawlError::BadStoredConfig(e.to_string()))?;
    if let Some(n) = concurrency {
        cfg.concurrency = n;
    }
    let cfg = cfg.validated()?;
    let Some((run_id, kind)) = store.current_run().await? else {
        return Err(CrawlError::NothingToJoin { path });
    };
    let kind = match kind.as_str() {
        "recrawl" => RunKind::Recrawl,
        "resume" => RunKind::Resume,
        _ => RunKind::Crawl,
    };
    let this = ThisRun {
        id: run_id,
        kind,
        changes_run: store.changes_run(row.id).await?,
        clock: crate::util::clock_ms(),
        joining: true,
    };
    run(store, row.id, cfg, this, controls, counters).await
}

/// The crawl stored in `store` and its settings, for a new run of it.
async fn stored_crawl(store: &Store) -> Result<(crate::store::CrawlRow, CrawlConfig), CrawlError> {
    let Some(row) = store.crawl().await? else {
        let path = store.target().to_string();
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
        .queue_revisits(opts.due_only.then_some(opts.now))
        .await?;
    tracing::info!("recrawl: {queued} stored URLs to revisit");
    store.run_again(row.id, &json, now).await?;
    let this = ThisRun {
        id: run_id,
        kind: RunKind::Recrawl,
        changes_run,
        clock: opts.now,
        joining: false,
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
    /// A process joining the run beside others (`trawl join`).
    joining: bool,
}

/// Queues again the URLs recorded `trap` because their host had reached
/// `--max-pages-per-host` (not for their shape: too long, or a segment
/// repeated), now that the budget was raised. Hosts still over the new
/// budget trap them again at dispatch. Returns how many were queued.
async fn requeue_host_budget_traps(store: &Store, cfg: &CrawlConfig) -> Result<u64, CrawlError> {
    let scope = cfg.scope()?;
    let mut ids = Vec::new();
    store
        .for_each_trapped_url(|id, url| {
            if Url::parse(url).is_ok_and(|u| scope.check(&u) != Err(SkipReason::Trap)) {
                ids.push(id);
            }
        })
        .await?;
    store.requeue(&ids).await?;
    Ok(ids.len() as u64)
}

/// Whether a finished crawl has URLs that the (raised) limits now admit.
async fn limits_allow_more(store: &Store, cfg: &CrawlConfig) -> Result<bool, StoreError> {
    let n = store
        .resumable_count(cfg.limits.max_depth.map_or(i64::MAX, i64::from))
        .await?;
    let fetched = store.pages_fetched().await?;
    Ok(n > 0 && cfg.limits.max_pages.is_none_or(|m| fetched < m))
}

/// The run's politeness, said once at its start: the per-host pace is
/// what a first crawl of one's own site is bound by, and how to lift it.
fn politeness_line(p: &crate::config::PolitenessConfig) -> String {
    let at_once = p.per_host_concurrency;
    if p.per_host_rate > 0.0 {
        format!(
            "politeness: at most {} requests a second and {at_once} at once per host \
             (--per-host-rate, --per-host-concurrency; a robots.txt Crawl-delay or a \
             Retry-After may slow a host further; --per-host-rate 0 lifts the rate on sites \
             you run)",
            p.per_host_rate
        )
    } else {
        format!(
            "politeness: no per-host rate, {at_once} requests at once per host \
             (a robots.txt Crawl-delay or a Retry-After still slows a host)"
        )
    }
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
    tracing::info!("{}", politeness_line(&cfg.politeness));
    // A run that continues what is stored: a resume, a recrawl, or a
    // process joining any run.
    let resuming = this.kind != RunKind::Crawl || this.joining;
    // On PostgreSQL the crawl is one several processes can share: hosts
    // are leased (see `shared`).
    let shared = store.is_postgres();
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
    let mut frontier = Frontier::new(&cfg.limits, DEFAULT_WINDOW, this.changes_run.is_some());
    if shared {
        frontier.set_shared();
    }
    if resuming && !this.joining {
        let max_depth = cfg.limits.max_depth.map_or(i64::MAX, i64::from);
        // A run that was killed left its leases behind; URLs skipped for a
        // limit that has since been raised, or never asked because their
        // host was given up on, get their turn. (Not in a recrawl: the
        // page budget is the revisits' first.)
        store
            .requeue_for_resume(
                crate::util::now_ms(),
                this.kind != RunKind::Recrawl,
                max_depth,
            )
            .await?;
    }
    if resuming {
        store
            .for_each_url_reason(|id, reason| {
                let depth_skipped = reason == SkipReason::MaxDepth.as_str()
                    || reason == SkipReason::Nofollow.as_str();
                frontier.restore(id as u64, depth_skipped);
            })
            .await?;
        // Pages per host so far, for --max-pages-per-host.
        let host_pages = if cfg.limits.max_pages_per_host.is_some() {
            store.pages_fetched_by_origin().await?
        } else {
            Vec::new()
        };
        frontier.restore_counts(
            store.pages_fetched().await?,
            host_pages.into_iter().map(|(o, n)| (Arc::from(o), n)),
        );
    }
    frontier.restore_queued(store.queued_count().await?);
    // An earlier run's host clocks: back-offs and Retry-Afters not over
    // yet, and the Crawl-delay each stored robots.txt asks, from now (the
    // earlier process may have made a request just before it ended).
    let held: HashMap<Arc<str>, Instant> = if resuming {
        let now = crate::util::now_ms();
        let interval = cfg.politeness.interval().as_millis() as i64;
        let max_delay = cfg.politeness.max_crawl_delay.as_millis() as i64;
        let robots = cfg.politeness.robots;
        store
            .host_clocks()
            .await?
            .into_iter()
            .filter_map(|(origin, next, crawl_delay)| {
                if let Some(next) = next.filter(|&n| n > now + 1_000) {
                    let left = Duration::from_millis((next - now) as u64);
                    tracing::info!(
                        "{origin}: waiting {left:.0?} more for the back-off or Retry-After an earlier run was given"
                    );
                }
                let delay = crawl_delay.filter(|_| robots).map(|d| d.min(max_delay));
                let until = next
                    .unwrap_or(0)
                    .max(delay.map_or(0, |d| now + d.max(interval)));
                let wait = Duration::from_millis((until - now).max(0) as u64);
                (until > now).then(|| (Arc::from(origin), Instant::now() + wait))
            })
            .collect()
    } else {
        HashMap::new()
    };

    // This process, for `status`: registered, beating until it ends.
    let who = ProcessInfo {
        hostname: gethostname::gethostname().to_string_lossy().into_owned(),
        pid: std::process::id(),
        concurrency: cfg.concurrency as u32,
    };
    let process_id = store
        .register_process(this.id, &who, crate::util::now_ms())
        .await?;
    let lease = shared.then(|| Lease {
        owner: process_id,
        token: crate::util::random_i64(),
        ttl_ms: cfg.lease_ttl.as_millis() as i64,
    });
    let heartbeat = AbortOnDropHandle::new(tokio::spawn(beat(
        store.clone(),
        process_id,
        counters.clone(),
        lease,
    )));

    let (writer, writer_task) = store
        .spawn_writer(4 * cfg.concurrency.max(64), cfg.concurrency / 2, lease)
        .await?;
    let committed = writer.committed();

    // The summary stage runs beside the crawl on its own connection; the
    // crawl offers it pages and never waits for it.
    let stage_stop = CancellationToken::new();
    let (summary_tx, stage_task) = match summarizer {
        Some(s) => {
            let (tx, rx) = tokio::sync::mpsc::channel(256);
            let live = stage::Live {
                rx,
                complete: this.kind == RunKind::Crawl && !this.joining && lease.is_none(),
            };
            let task = tokio::spawn(stage::run(
                s,
                store.clone(),
                store.summary_writer().await?,
                Some(live),
                SweepOptions::default(),
                stage_stop.clone(),
                Some(counters.clone()),
            ));
            (Some(tx), Some(task))
        }
        None => (None, None),
    };

    // A process holds at most as many hosts as its requests in flight.
    let coord_hosts = cfg.concurrency as u32;
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
        frontier,
        cfg: Arc::new(cfg),
        crawl_id,
        this,
        writer,
        committed,
        sent: Committed::default(),
        refill: None,
        tasks: JoinSet::new(),
        task_jobs: HashMap::new(),
        slow_running: HashMap::new(),
        given_up: Vec::new(),
        delays_out: Vec::new(),
        ctx,
        counters: counters.clone(),
        wake: None,
        hosts,
        robots_tasks: JoinSet::new(),
        store: store.clone(),
        sitemap_hosts: HashSet::new(),
        sitemaps_wanted: Vec::new(),
        trapped: Vec::new(),
        lastmods: FpMap::default(),
        unchanged_by_sitemap: Vec::new(),
        summary_tx,
        jar,
        shared: lease.map(|l| shared::Shared::new(l, coord_hosts)),
        urls_sent: 0,
    };
    if resuming {
        coord.sched.restart(started, held);
    } else {
        coord.add_seeds().await?;
    }
    if shared && !coord.this.joining {
        // Set up alone; from here on, processes may join.
        store.share().await?;
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
    tracing::debug!(
        "writer: {} transactions, {} operations, busy {:.2} s of {:.2} s",
        writer_stats.transactions,
        writer_stats.ops,
        writer_stats.busy.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
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
    drop(heartbeat);
    store
        .finish_process(
            process_id,
            crate::util::now_ms(),
            counters.get(&counters.fetched),
        )
        .await?;
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
    let pages_stored = store.pages_stored().await?;
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

/// Writes the heartbeat of process `id` every [`HEARTBEAT`] until aborted
/// (a failed write is only logged: the next one may pass).
async fn beat(store: Store, id: i64, counters: Arc<Counters>, lease: Option<Lease>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let (fetched, hosts) = (
            counters.get(&counters.fetched),
            counters.get(&counters.hosts),
        );
        let now = crate::util::now_ms();
        if let Err(e) = store.heartbeat(id, now, fetched, hosts).await {
            tracing::debug!("heartbeat: {e}");
        }
        if let Some(lease) = &lease
            && let Err(e) = store.renew_leases(lease, now).await
        {
            tracing::warn!("host leases not renewed: {e}");
        }
    }
}

/// Totals for the final report line, by reason.
pub fn summarize_reasons(rows: &[(String, i64)]) -> String {
    crate::util::join_counts(rows.iter().map(|(k, v)| (k.as_str(), *v)))
}
