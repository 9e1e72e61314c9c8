//! The coordinator: the one task that decides what is fetched next.
//!
//! Its select loop takes worker results, refills, robots.txt answers,
//! commits and stop requests in turn; between turns it dispatches every
//! job the scheduler, the page budget and the writer's backlog allow.
//! What a result means is decided in `outcome`, what robots.txt and
//! sitemaps mean in `lifecycle`, where a found URL goes in `frontier`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use url::Url;

use super::frontier::{Admit, Candidate, Frontier};
use super::lifecycle::RobotsLoad;
use super::{
    Controls, CrawlError, CrawlOutcome, MAX_UNCOMMITTED_ROWS, STOP_GRACE, ThisRun,
    uncommitted_bound,
};
use crate::canon;
use crate::config::CrawlConfig;
use crate::hosts::{Hosts, Verdict};
use crate::progress::Counters;
use crate::reason::SkipReason;
use crate::scheduler::{Next, Scheduler};
use crate::store::records::{
    Committed, FetchRecord, LeasedUrl, NewUrl, UrlState, WriteOp, WriterHandle,
};
use crate::store::{CrawlState, Store, StoreError};
use crate::summarize::stage::Item;
use crate::util::FpMap;
use crate::worker::{self, Job, WorkerCtx, WorkerOutput};

pub(super) struct Coordinator {
    pub(super) cfg: Arc<CrawlConfig>,
    pub(super) crawl_id: i64,
    pub(super) this: ThisRun,
    pub(super) writer: WriterHandle,
    /// What the writer has committed, of what was `sent` to it. Waiting
    /// fetches count against [`uncommitted_bound`] (which bounds what a
    /// crash costs), and waiting rows against [`MAX_UNCOMMITTED_ROWS`].
    pub(super) committed: tokio::sync::watch::Receiver<Committed>,
    pub(super) sent: Committed,
    pub(super) sched: Scheduler<Job>,
    /// The seen-set, what waits in the database, the page budgets.
    pub(super) frontier: Frontier,
    pub(super) refill: Option<oneshot::Receiver<Result<Vec<LeasedUrl>, StoreError>>>,
    pub(super) tasks: JoinSet<WorkerOutput>,
    /// Each running worker's job.
    pub(super) task_jobs: HashMap<tokio::task::Id, Running>,
    /// Per origin, requests running that gave their slot back as slow.
    pub(super) slow_running: HashMap<Arc<str>, u32>,
    /// URLs of hosts given up on, to be recorded as failed.
    pub(super) given_up: Vec<i64>,
    /// Waits decided in this run (back-off, Retry-After), to be stored:
    /// (origin, epoch ms).
    pub(super) delays_out: Vec<(Arc<str>, i64)>,
    pub(super) ctx: Arc<WorkerCtx>,
    pub(super) counters: Arc<Counters>,
    /// When the scheduler said the next host becomes ready.
    pub(super) wake: Option<Instant>,
    /// robots.txt and failure state per host.
    pub(super) hosts: Hosts,
    /// robots.txt being read (from the `hosts` table or the host).
    pub(super) robots_tasks: JoinSet<(Arc<str>, RobotsLoad)>,
    pub(super) store: Store,
    /// Without robots.txt: hosts whose `/sitemap.xml` was queued already,
    /// and those seen since the last turn of the loop.
    pub(super) sitemap_hosts: HashSet<Arc<str>>,
    pub(super) sitemaps_wanted: Vec<Arc<str>>,
    /// URLs taken out of the queue when their host's budget
    /// (`--max-pages-per-host`) ran out.
    pub(super) trapped: Vec<i64>,
    /// In a recrawl: the `<lastmod>` the sitemaps read in this run gave
    /// each URL (epoch ms, by fingerprint; at most [`MAX_LASTMODS`]).
    pub(super) lastmods: FpMap<i64>,
    /// Revisits a sitemap's `<lastmod>` showed unchanged since their last
    /// check, to record as such without a request.
    pub(super) unchanged_by_sitemap: Vec<Job>,
    /// Stored pages offered to the summary stage; when its queue is full
    /// the page waits in the database for the stage's sweep.
    pub(super) summary_tx: Option<tokio::sync::mpsc::Sender<Item>>,
    /// The cookie jar, if cookies are on: jars a response changed are
    /// written with that response's fetch.
    pub(super) jar: Option<Arc<crate::cookies::Jar>>,
    /// In a crawl several processes share: this process's host leases.
    pub(super) shared: Option<super::shared::Shared>,
    /// `WriteOp::Urls` sent (they may queue URLs).
    pub(super) urls_sent: u64,
}

impl Coordinator {
    pub(super) async fn add_seeds(&mut self) -> Result<(), CrawlError> {
        let mut rows = Vec::new();
        for url in self.cfg.seed_urls() {
            let fp = canon::fingerprint(&url);
            if self.frontier.add_seed(fp) {
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
        self.urls_sent += 1;
        self.writer.send(WriteOp::Urls(rows)).await?;
        Ok(())
    }

    pub(super) async fn run_loop(
        &mut self,
        controls: &Controls,
    ) -> Result<CrawlOutcome, CrawlError> {
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
                for (origin, until) in std::mem::take(&mut self.delays_out) {
                    let origin = origin.to_string();
                    self.writer
                        .send(WriteOp::HostDelay { origin, until })
                        .await?;
                }
                let given_up = std::mem::take(&mut self.given_up);
                self.fail(given_up, crate::hosts::HOST_UNRESPONSIVE).await?;
                let trapped = std::mem::take(&mut self.trapped);
                self.skip(trapped, SkipReason::Trap).await?;
                for job in std::mem::take(&mut self.unchanged_by_sitemap) {
                    if let Some(rec) = self.unchanged_by_lastmod(job) {
                        self.send_fetch(rec).await?;
                    }
                }
                if self.shared.is_some() {
                    self.maybe_claim().await?;
                } else {
                    self.maybe_refill().await?;
                }
            }
            self.publish();
            let idle = self.tasks.is_empty();
            // (This process's count of the pages fetched is at most the
            // crawl's: once it reaches `--max-pages`, so has the crawl.)
            let over = self.frontier.budget_spent()
                || match self.shared {
                    Some(_) => self.shared_done(),
                    None => self.frontier_empty(),
                };
            if idle && (stopping || over) {
                break;
            }
            let claiming = self.shared.as_ref().is_some_and(|s| s.claiming());
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
                    // (A writer gone says why where it is awaited.)
                    let rows = rows.unwrap_or(Ok(Vec::new())).map_err(CrawlError::Store)?;
                    self.on_refill(rows).await?;
                }
                claimed = async { self.shared.as_mut().expect("guarded").claimed().await }, if claiming => {
                    match claimed {
                        Some(c) => self.on_claim(c).await?,
                        None => return Err(CrawlError::Store(StoreError::WriterGone)),
                    }
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
            // In a shared crawl, the crawl goes on while other processes
            // work on it.
            let others = match &self.shared {
                Some(s) => self.store.others_at_work(s.lease.owner).await?,
                None => 0,
            };
            if others == 0 {
                self.writer
                    .send(WriteOp::CrawlState {
                        id: self.crawl_id,
                        state: CrawlState::Stopped,
                    })
                    .await?;
            }
            CrawlOutcome::Interrupted
        } else {
            if self.shared.is_some() {
                // Give the hosts back at once.
                self.writer.send(WriteOp::ReleaseLeased).await?;
            }
            if self.frontier.budget_spent() || self.shared_budget_spent() {
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

    pub(super) fn frontier_empty(&self) -> bool {
        self.sched.queued() == 0 && self.frontier.db_queued() == 0 && self.refill.is_none()
    }

    pub(super) fn publish(&self) {
        let c = &self.counters;
        let waiting = match &self.shared {
            // In a shared crawl, the queue is the whole crawl's.
            Some(s) => s.queued_anywhere(),
            None => self.frontier.db_queued(),
        };
        c.queued
            .store(self.sched.queued() as u64 + waiting, Relaxed);
        c.in_flight.store(self.tasks.len() as u64, Relaxed);
        let hosts = match &self.shared {
            Some(s) => s.hosts_held(),
            None => self.sched.hosts(),
        };
        c.hosts.store(hosts as u64, Relaxed);
    }

    /// Starts as many fetches as the limits allow now.
    pub(super) fn dispatch(&mut self) {
        self.wake = None;
        let now = Instant::now();
        while self.writer_has_room() && !self.frontier.budget_spent() {
            match self.sched.next(now) {
                Next::Ready(origin, job) => {
                    // Sitemaps are not pages: they do not spend the budget.
                    if !job.sitemap && self.frontier.dispatched(&origin) {
                        // The host's budget is spent: the rest of its
                        // pages are a trap (a calendar, say).
                        let rest = self.sched.remove_where(&origin, |j| !j.sitemap);
                        self.trapped.extend(rest.iter().map(|j| j.id as i64));
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

    pub(super) async fn maybe_refill(&mut self) -> Result<(), CrawlError> {
        if self.refill.is_some() {
            return Ok(());
        }
        let Some(limit) = self.frontier.refill_wanted(self.sched.queued()) else {
            return Ok(());
        };
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(WriteOp::Refill {
                limit: limit as u32,
                revisits: self.this.changes_run.is_some(),
                reply: tx,
            })
            .await?;
        self.refill = Some(rx);
        self.frontier.refill_requested(limit);
        Ok(())
    }

    pub(super) async fn on_refill(&mut self, rows: Vec<LeasedUrl>) -> Result<(), CrawlError> {
        self.frontier.refilled(rows.len());
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
                chain: row.chain.iter().map(|&id| id as u64).collect(),
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
    pub(super) fn enqueue(
        &mut self,
        origin: &str,
        job: Job,
        front: bool,
        now: Instant,
    ) -> Option<NotQueued> {
        if !job.sitemap && self.frontier.host_spent(origin) {
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

    /// Records URLs taken back from the window as failed, unfetched (their
    /// host cannot be reached).
    pub(super) async fn fail(
        &mut self,
        ids: Vec<i64>,
        reason: &'static str,
    ) -> Result<(), CrawlError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.counters.failed.fetch_add(ids.len() as u64, Relaxed);
        self.writer.send(WriteOp::Fail { ids, reason }).await?;
        Ok(())
    }

    /// Records URLs taken back from the window as skipped.
    pub(super) async fn skip(
        &mut self,
        ids: Vec<i64>,
        reason: SkipReason,
    ) -> Result<(), CrawlError> {
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

    pub(super) async fn on_task_done(
        &mut self,
        res: Result<(tokio::task::Id, WorkerOutput), JoinError>,
    ) -> Result<(), CrawlError> {
        match res {
            Ok((id, out)) => {
                if let Some(run) = self.task_jobs.remove(&id) {
                    self.finished(&run);
                }
                match self.on_output(out) {
                    Some(rec) => self.send_fetch(rec).await,
                    None => Ok(()),
                }
            }
            Err(e) => {
                let Some(run) = self.task_jobs.remove(&e.id()) else {
                    return Ok(());
                };
                self.finished(&run);
                let (url_id, sitemap) = (run.url_id, run.sitemap);
                let origin = run.origin.clone();
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
                let mut rec = FetchRecord::new(url_id as i64, origin);
                rec.fail("panic");
                self.send_fetch(rec).await
            }
        }
    }

    /// A worker ended: its host's slot is free (unless it gave the slot
    /// back already, as slow).
    pub(super) fn finished(&mut self, run: &Running) {
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
    pub(super) fn release_slow(&mut self, now: Instant) {
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

    /// Hands the cookie jars that changed to the writer, ahead of the
    /// fetch that changed them.
    pub(super) async fn save_cookies(&mut self) -> Result<(), CrawlError> {
        if let Some(jar) = &self.jar {
            let changed = jar.take_changed();
            if !changed.is_empty() {
                self.writer.send(WriteOp::Cookies(changed)).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn send_fetch(&mut self, mut rec: FetchRecord) -> Result<(), CrawlError> {
        // Here, not on the writer's thread, the crawl's one serial stage.
        if let Some(page) = &mut rec.page {
            page.links_hash = crate::store::records::links_hash(&rec.links);
        }
        self.save_cookies().await?;
        self.sent.fetches += 1;
        self.sent.rows += rec.rows();
        self.writer.send(WriteOp::Fetch(Box::new(rec))).await?;
        Ok(())
    }

    /// Fetches sent to the writer and not committed yet.
    pub(super) fn uncommitted(&self) -> usize {
        self.sent
            .fetches
            .saturating_sub(self.committed.borrow().fetches) as usize
    }

    /// Whether another fetch may start: fewer than `--concurrency` in
    /// flight, and the writer's backlog within its bounds.
    pub(super) fn writer_has_room(&self) -> bool {
        let done = *self.committed.borrow();
        self.tasks.len() < self.cfg.concurrency
            && self.uncommitted() < uncommitted_bound(self.cfg.concurrency)
            && self.sent.rows.saturating_sub(done.rows) < MAX_UNCOMMITTED_ROWS
    }

    /// Decides the fate of a URL found on a page, in a sitemap or in a
    /// redirect, records it in `new_urls`, and queues it if it is to be
    /// fetched.
    pub(super) fn discover(&mut self, found: Found<'_>, new_urls: &mut Vec<NewUrl>) {
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
        let candidate = Candidate {
            fp,
            depth,
            scope,
            sitemap,
            redirect: chain.is_some(),
        };
        // Most links of a page are known already: nothing is made for
        // them, not even their origin.
        let admit = self.frontier.admit(candidate, self.sched.queued());
        if admit == Admit::Known {
            return;
        }
        let origin = canon::origin_key(url);
        let (state, reason) = match admit {
            Admit::Known => return,
            Admit::Database => (UrlState::Queued, None),
            Admit::Skip(reason) => {
                self.counters.skipped.fetch_add(1, Relaxed);
                (UrlState::Skipped, Some(reason.as_str()))
            }
            Admit::Window => {
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
                    None => (UrlState::Leased, None),
                    Some(NotQueued::Skip(reason)) => {
                        self.counters.skipped.fetch_add(1, Relaxed);
                        (UrlState::Skipped, Some(reason.as_str()))
                    }
                    Some(NotQueued::Fail(reason)) => {
                        self.counters.failed.fetch_add(1, Relaxed);
                        (UrlState::Failed, Some(reason))
                    }
                }
            }
        };
        new_urls.push(NewUrl {
            id: fp as i64,
            url: url.to_string(),
            origin,
            depth,
            state,
            reason,
            discovered_from: from.map(|f| f as i64),
            redirect_hops: hops,
            sitemap,
        });
    }
}

/// How often running requests are checked for slowness.
const SLOW_CHECK: Duration = Duration::from_millis(250);

/// A worker that is running.
pub(super) struct Running {
    url_id: u64,
    origin: Arc<str>,
    sitemap: bool,
    started: Instant,
    /// It ran long enough to give its host's slot back.
    slow: bool,
}

/// Why a URL was not queued.
pub(super) enum NotQueued {
    /// Recorded as skipped.
    Skip(SkipReason),
    /// Recorded as failed, unfetched: its host cannot be reached.
    Fail(&'static str),
}

/// A URL found somewhere, on its way into the frontier.
pub(super) struct Found<'a> {
    pub(super) url: &'a Url,
    pub(super) fp: u64,
    /// Link distance from a seed; for a sitemap, its nesting.
    pub(super) depth: u32,
    /// The URL whose page, sitemap or redirect revealed it.
    pub(super) from: Option<u64>,
    pub(super) hops: u32,
    pub(super) scope: Result<(), SkipReason>,
    /// The redirect chain it continues, if it is a redirect target.
    pub(super) chain: Option<Vec<u64>>,
    pub(super) sitemap: bool,
}
