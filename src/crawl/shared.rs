//! A crawl several processes share (on PostgreSQL): this process's side
//! of the host leases.
//!
//! Every URL to fetch waits in the database. The process claims hosts
//! (origins) that have queued URLs and that no live process holds, at
//! most as many as its `--concurrency` can work at once, and leases URLs
//! of those hosts only; the claim also renews its leases and gives back
//! hosts left with no work. A host taken over waits a full interval (its
//! Crawl-delay, a stored back-off or Retry-After) before the first
//! request, since the last holder's requests cannot be seen from here.
//! The crawl is over when no URL is queued or leased anywhere.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::CrawlError;
use super::coordinator::Coordinator;
use crate::store::records::{Claimed, Lease, WriteOp};

/// How long to wait before claiming again after a claim that found no
/// URL for this process.
const CLAIM_IDLE: Duration = Duration::from_millis(200);

/// Claims while URLs come, at most this often unless the window is
/// nearly empty.
const CLAIM_EVERY: Duration = Duration::from_millis(100);

/// A claim that leases URLs counts the whole crawl's queue (for the
/// progress line) at most this often; one that leases none always does
/// (it may be the last).
const COUNT_EVERY: Duration = Duration::from_secs(1);

/// What the last claim saw of the whole crawl.
#[derive(Debug, Clone, Copy)]
pub(super) struct CrawlView {
    queued: i64,
    leased: i64,
    budget_left: Option<i64>,
}

/// A process's state in a shared crawl.
pub(super) struct Shared {
    pub(super) lease: Lease,
    /// Most hosts held at once.
    pub(super) max_hosts: u32,
    /// The hosts this process holds.
    held: HashSet<Arc<str>>,
    /// No claim before this.
    next_claim: Instant,
    claim: Option<oneshot::Receiver<Claimed>>,
    /// Writes sent that may queue URLs (fetches, URLs) when the claim in
    /// flight was asked.
    claim_after: (u64, u64),
    /// The last claim's view of the crawl, if no fetch has been sent
    /// since it was asked (a fetch sent since may have queued URLs).
    view: Option<CrawlView>,
    /// URLs queued in the whole crawl, as of the last claim that counted.
    last_queued: u64,
    /// When a claim that counts was last asked for.
    last_count: Option<Instant>,
    /// Whether this process said it waits for a host (said once per wait).
    said_waiting: bool,
}

impl Shared {
    pub(super) fn new(lease: Lease, max_hosts: u32) -> Self {
        Self {
            lease,
            max_hosts: max_hosts.max(1),
            held: HashSet::new(),
            next_claim: Instant::now(),
            claim: None,
            claim_after: (0, 0),
            view: None,
            last_queued: 0,
            last_count: None,
            said_waiting: false,
        }
    }

    /// Hosts held now.
    pub(super) fn hosts_held(&self) -> usize {
        self.held.len()
    }

    /// URLs queued in the whole crawl, as of the last claim that counted.
    pub(super) fn queued_anywhere(&self) -> u64 {
        self.last_queued
    }

    /// A claim's answer, once it comes.
    pub(super) async fn claimed(&mut self) -> Option<Claimed> {
        let rx = self.claim.as_mut()?;
        let got = rx.await.ok();
        self.claim = None;
        got
    }

    /// Whether fetches were sent since the last claim was asked (they may
    /// have queued URLs for the hosts held).
    fn view_stale(&self, fetches_sent: u64) -> bool {
        self.claim_after.0 != fetches_sent
    }

    pub(super) fn claiming(&self) -> bool {
        self.claim.is_some()
    }
}

impl Coordinator {
    /// Asks the writer for hosts and URLs when the window has room and the
    /// last claim is not too recent; otherwise makes sure the loop wakes
    /// for the next one.
    pub(super) async fn maybe_claim(&mut self) -> Result<(), CrawlError> {
        let in_memory = self.sched.queued();
        let window = super::DEFAULT_WINDOW;
        let Some(shared) = self.shared.as_mut() else {
            return Ok(());
        };
        // Claims go on when this process's share of the page budget is
        // spent: they tell when the whole crawl is over.
        if shared.claim.is_some() || in_memory > window / 2 {
            return Ok(());
        }
        let now = Instant::now();
        let starving = in_memory < 2 * self.cfg.concurrency;
        if now < shared.next_claim && !(starving && shared.view_stale(self.sent.fetches)) {
            self.wake = Some(
                self.wake
                    .map_or(shared.next_claim, |w| w.min(shared.next_claim)),
            );
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        shared.claim = Some(rx);
        shared.claim_after = (self.sent.fetches, self.urls_sent);
        let count = shared
            .last_count
            .is_none_or(|t| now.duration_since(t) >= COUNT_EVERY);
        if count {
            shared.last_count = Some(now);
        }
        let op = WriteOp::Claim {
            max_hosts: shared.max_hosts,
            limit: (window - in_memory).min(super::frontier::REFILL_BATCH) as u32,
            max_pages: self.cfg.limits.max_pages,
            revisits: self.this.changes_run.is_some(),
            count,
            reply: tx,
        };
        self.writer.send(op).await?;
        Ok(())
    }

    /// Takes in what a claim got: the hosts lost (their queued jobs are
    /// dropped: the new holder leases them again), the hosts newly held
    /// (held back for an interval), and the URLs.
    pub(super) async fn on_claim(&mut self, c: Claimed) -> Result<(), CrawlError> {
        let now = Instant::now();
        let interval = self.cfg.politeness.interval();
        let max_delay = self.cfg.politeness.max_crawl_delay;
        let robots = self.cfg.politeness.robots;
        let sent = (self.sent.fetches, self.urls_sent);
        let Some(shared) = self.shared.as_mut() else {
            return Ok(());
        };
        let held: HashSet<Arc<str>> = c.held.iter().map(|o| Arc::from(o.as_str())).collect();
        let lost: Vec<Arc<str>> = shared.held.difference(&held).cloned().collect();
        shared.held = held;
        // A claim that leased URLs may not have counted (the crawl is not
        // over then, and the progress line's count can wait).
        if let Some(counts) = c.counts {
            shared.last_queued = counts.queued.max(0) as u64;
            // Work waits, but on hosts other processes hold: say so once.
            let waiting = shared.held.is_empty() && counts.queued + counts.leased > 0;
            if waiting && !shared.said_waiting {
                tracing::info!(
                    "every host with work is held by another process; waiting for one to be free \
                     (a host is given back when it has nothing left, or when its holder's lease runs out)"
                );
            }
            shared.said_waiting = waiting;
        }
        shared.view = c
            .counts
            .filter(|_| shared.claim_after == sent)
            .map(|counts| CrawlView {
                queued: counts.queued,
                leased: counts.leased,
                budget_left: c.budget_left,
            });
        // Nothing for this process: ask again a moment later. Some: ask
        // again once the window runs low (or soon, for the URLs found
        // meanwhile), not at every turn of the loop: each claim is a
        // transaction of the writer's.
        shared.next_claim = if c.urls.is_empty() {
            now + CLAIM_IDLE
        } else {
            now + CLAIM_EVERY
        };
        let wall = crate::util::now_ms();
        for (origin, next_fetch_at, crawl_delay) in &c.new_hosts {
            let delay = crawl_delay.filter(|_| robots).map_or(Duration::ZERO, |d| {
                Duration::from_millis(d.max(0) as u64).min(max_delay)
            });
            let stored = next_fetch_at.map_or(Duration::ZERO, |t| {
                Duration::from_millis((t - wall).max(0) as u64)
            });
            self.sched
                .hold(origin, now + interval.max(delay).max(stored));
        }
        for origin in lost {
            let gone = self.sched.remove_where(&origin, |_| true);
            if !gone.is_empty() {
                tracing::warn!(
                    "{origin}: lease lost to another process; {} queued URLs left to it",
                    gone.len()
                );
            }
        }
        for u in &c.urls {
            self.frontier.restore(u.id as u64, false);
        }
        self.on_refill(c.urls).await
    }

    /// Whether the shared crawl is over for this process: nothing of its
    /// own left, and (as of a claim made after its last fetch was sent)
    /// nothing queued or leased anywhere, or the page budget spent with
    /// nothing in flight.
    pub(super) fn shared_done(&self) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        let Some(v) = shared.view else {
            return false;
        };
        self.sched.queued() == 0
            && shared.claim.is_none()
            && shared.claim_after == (self.sent.fetches, self.urls_sent)
            && self.uncommitted() == 0
            && v.leased == 0
            && (v.queued == 0 || v.budget_left == Some(0))
    }

    /// Whether the shared crawl's page budget is what ended it.
    pub(super) fn shared_budget_spent(&self) -> bool {
        self.shared
            .as_ref()
            .and_then(|s| s.view)
            .is_some_and(|v| v.budget_left == Some(0) && v.queued > 0)
    }
}
