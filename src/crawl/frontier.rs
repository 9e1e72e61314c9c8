//! The frontier's bookkeeping: which URLs are known, where the ones to
//! fetch wait (the in-memory window or the database), and the page
//! budgets.
//!
//! In: URLs found on pages, in sitemaps and in redirects, with their scope
//! verdict; fetches started and retried. Out: an [`Admit`] decision per
//! URL and whether a budget is spent. It owns no queue and does no I/O:
//! the coordinator queues what it admits to the window on the per-host
//! scheduler and records the rest through the writer.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::LimitsConfig;
use crate::reason::SkipReason;
use crate::util::FpSet;

/// Most URLs leased from the database at once.
pub const REFILL_BATCH: usize = 10_000;
/// The first refill of a run asks for this many URLs at most, each next
/// one for twice the last: fetching starts as soon as the first few
/// hundred are read (a resume or recrawl of 10,000 stored URLs spent
/// 0.15 s reading them before its first request), and the larger
/// refills that follow are read while those are fetched.
pub const FIRST_REFILL: usize = 500;

/// What happens to a URL found somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Seen before (or recorded as skipped for the same reason before):
    /// nothing to record.
    Known,
    /// Recorded as skipped, for this reason.
    Skip(SkipReason),
    /// To fetch; goes into the in-memory window (leased).
    Window,
    /// To fetch; waits in the database (queued) because the window is full.
    Database,
}

/// A URL on its way into the frontier, as the admission rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// The canonical URL's fingerprint (its id).
    pub fp: u64,
    /// Link distance from a seed; for a sitemap, its nesting.
    pub depth: u32,
    /// The scope's verdict on the URL.
    pub scope: Result<(), SkipReason>,
    pub sitemap: bool,
    /// A redirect target continuing a fetch: it always goes into the
    /// window, however full.
    pub redirect: bool,
}

/// The seen-set, the window's and the database's share of the queued
/// URLs, and the page budgets (`--max-pages`, `--max-pages-per-host`,
/// `--max-depth`).
#[derive(Debug)]
pub struct Frontier {
    max_pages: Option<u64>,
    max_pages_per_host: Option<u64>,
    max_depth: Option<u32>,
    /// In a recrawl the revisits queued have the page budget first.
    revisits_first: bool,
    seen: FpSet,
    /// URLs recorded as too deep (or found only on nofollow pages, or
    /// assets); found again on a shorter path, they are queued after all.
    depth_skipped: FpSet,
    /// URLs held in memory at most.
    window: usize,
    /// URLs waiting in the database, not in memory.
    db_queued: u64,
    db_queued_at_request: u64,
    /// The last refill's limit: the next asks for twice as many.
    refill_limit: usize,
    /// Fetches of pages started, including earlier runs of this crawl.
    dispatched: u64,
    /// Pages fetched per origin (with `--max-pages-per-host`).
    host_pages: HashMap<Arc<str>, u64>,
    /// A crawl several processes share: every URL to fetch waits in the
    /// database, where its host's holder leases it.
    shared: bool,
}

impl Frontier {
    /// An empty frontier under these limits, holding at most `window` URLs
    /// in memory.
    pub fn new(limits: &LimitsConfig, window: usize, revisits_first: bool) -> Self {
        Self {
            max_pages: limits.max_pages,
            max_pages_per_host: limits.max_pages_per_host,
            max_depth: limits.max_depth,
            revisits_first,
            seen: FpSet::default(),
            depth_skipped: FpSet::default(),
            window,
            db_queued: 0,
            db_queued_at_request: 0,
            refill_limit: 0,
            dispatched: 0,
            host_pages: HashMap::new(),
            shared: false,
        }
    }

    /// Makes this the frontier of a process in a shared crawl: URLs to
    /// fetch go to the database, never straight into the window (their
    /// host may be another process's).
    pub fn set_shared(&mut self) {
        self.shared = true;
    }

    /// A URL stored by an earlier run (resume): `depth_skipped` if it was
    /// recorded as too deep or as found only on nofollow pages, else seen.
    pub fn restore(&mut self, fp: u64, depth_skipped: bool) {
        if depth_skipped {
            self.depth_skipped.insert(fp);
        } else {
            self.seen.insert(fp);
        }
    }

    /// What earlier runs spent: pages fetched so far (they count against
    /// `--max-pages`), and per origin.
    pub fn restore_counts(
        &mut self,
        dispatched: u64,
        host_pages: impl IntoIterator<Item = (Arc<str>, u64)>,
    ) {
        self.dispatched = dispatched;
        self.host_pages.extend(host_pages);
    }

    /// URLs queued in the database when the run starts.
    pub fn restore_queued(&mut self, db_queued: u64) {
        self.db_queued = db_queued;
    }

    /// A seed: true if it was not seen before (it is queued in the
    /// database).
    pub fn add_seed(&mut self, fp: u64) -> bool {
        let new = self.seen.insert(fp);
        if new {
            self.db_queued += 1;
        }
        new
    }

    /// Whether `--max-pages` fetches have started.
    pub fn budget_spent(&self) -> bool {
        self.max_pages.is_some_and(|m| self.dispatched >= m)
    }

    /// Whether the URLs already queued (`in_memory` of them in the
    /// window) would spend the page budget: no more sitemaps need reading
    /// for it (`resume` with a larger budget queues the ones skipped).
    pub fn budget_covered(&self, in_memory: usize) -> bool {
        self.max_pages
            .is_some_and(|m| self.dispatched + in_memory as u64 + self.db_queued >= m)
    }

    /// Whether `origin` has had `--max-pages-per-host` page fetches.
    pub fn host_spent(&self, origin: &str) -> bool {
        self.max_pages_per_host
            .is_some_and(|max| self.host_pages.get(origin).is_some_and(|&n| n >= max))
    }

    /// A page fetch of `origin` starts. Returns true when that spends the
    /// host's budget (the rest of its queued pages are then a trap).
    pub fn dispatched(&mut self, origin: &Arc<str>) -> bool {
        self.dispatched += 1;
        match self.max_pages_per_host {
            Some(max) => {
                let n = self.host_pages.entry(origin.clone()).or_insert(0);
                *n += 1;
                *n >= max
            }
            None => false,
        }
    }

    /// A page fetch of `origin` is to be made again (a retry): it does not
    /// spend the budgets twice.
    pub fn undispatched(&mut self, origin: &str) {
        self.dispatched = self.dispatched.saturating_sub(1);
        if let Some(n) = self.host_pages.get_mut(origin) {
            *n = n.saturating_sub(1);
        }
    }

    /// Decides where a URL found somewhere goes, given `in_memory` URLs in
    /// the window, and notes it as seen.
    pub fn admit(&mut self, c: Candidate, in_memory: usize) -> Admit {
        if self.seen.contains(&c.fp) {
            return Admit::Known;
        }
        // A sitemap's depth is its nesting, not a link distance.
        let skip = if let Err(reason) = c.scope {
            Some(reason)
        } else if !c.sitemap && self.max_depth.is_some_and(|m| c.depth > m) {
            Some(SkipReason::MaxDepth)
        } else if self.budget_spent()
            || ((c.sitemap || self.revisits_first) && self.budget_covered(in_memory))
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
                if !self.depth_skipped.insert(c.fp) {
                    return Admit::Known; // recorded already
                }
            } else {
                self.seen.insert(c.fp);
            }
            return Admit::Skip(reason);
        }
        self.depth_skipped.remove(&c.fp);
        self.seen.insert(c.fp);
        if !self.shared && (in_memory < self.window || c.redirect) {
            Admit::Window
        } else {
            self.db_queued += 1;
            Admit::Database
        }
    }

    /// URLs waiting in the database.
    pub fn db_queued(&self) -> u64 {
        self.db_queued
    }

    /// How many URLs to lease from the database now, with `in_memory` in
    /// the window: none while the window is more than half full, the
    /// database holds none or the budget is spent; else the room left, at
    /// most [`REFILL_BATCH`], and at most twice the last refill (the
    /// first, [`FIRST_REFILL`]).
    pub fn refill_wanted(&self, in_memory: usize) -> Option<usize> {
        if self.db_queued == 0 || self.budget_spent() {
            return None;
        }
        let room = self.window.saturating_sub(in_memory);
        let ramp = (2 * self.refill_limit).max(FIRST_REFILL);
        (room >= self.window / 2).then(|| room.min(REFILL_BATCH).min(ramp))
    }

    /// A refill of up to `limit` URLs was asked for.
    pub fn refill_requested(&mut self, limit: usize) {
        self.refill_limit = limit;
        self.db_queued_at_request = self.db_queued;
    }

    /// A refill brought `n` URLs into memory.
    pub fn refilled(&mut self, n: usize) {
        if n < self.refill_limit {
            // The database had no more than this when the refill ran; only
            // URLs spilled after the request can be waiting there now.
            self.db_queued = self.db_queued.saturating_sub(self.db_queued_at_request);
        } else {
            self.db_queued = self.db_queued.saturating_sub(n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_pages: Option<u64>, per_host: Option<u64>, depth: Option<u32>) -> LimitsConfig {
        LimitsConfig {
            max_pages,
            max_pages_per_host: per_host,
            max_depth: depth,
            ..LimitsConfig::default()
        }
    }

    fn page(fp: u64, depth: u32) -> Candidate {
        Candidate {
            fp,
            depth,
            scope: Ok(()),
            sitemap: false,
            redirect: false,
        }
    }

    #[test]
    fn a_url_is_admitted_once() {
        let mut f = Frontier::new(&limits(None, None, None), 10, false);
        assert_eq!(f.admit(page(1, 1), 0), Admit::Window);
        assert_eq!(f.admit(page(1, 1), 0), Admit::Known);
        assert!(!f.add_seed(1));
        assert!(f.add_seed(2));
        assert_eq!(f.admit(page(2, 0), 0), Admit::Known);
    }

    #[test]
    fn a_full_window_spills_to_the_database_but_not_a_redirect() {
        let mut f = Frontier::new(&limits(None, None, None), 2, false);
        assert_eq!(f.admit(page(1, 1), 2), Admit::Database);
        assert_eq!(f.db_queued(), 1);
        let hop = Candidate {
            redirect: true,
            ..page(2, 1)
        };
        assert_eq!(f.admit(hop, 2), Admit::Window);
        assert_eq!(f.db_queued(), 1);
    }

    #[test]
    fn too_deep_is_skipped_once_and_admitted_when_found_shallower() {
        let mut f = Frontier::new(&limits(None, None, Some(2)), 10, false);
        assert_eq!(f.admit(page(7, 3), 0), Admit::Skip(SkipReason::MaxDepth));
        assert_eq!(f.admit(page(7, 3), 0), Admit::Known);
        assert_eq!(f.admit(page(7, 2), 0), Admit::Window);
        assert_eq!(f.admit(page(7, 1), 0), Admit::Known);
        // A sitemap's depth is its nesting: never too deep.
        let sm = Candidate {
            sitemap: true,
            ..page(8, 3)
        };
        assert_eq!(f.admit(sm, 0), Admit::Window);
    }

    #[test]
    fn out_of_scope_is_recorded_once() {
        let mut f = Frontier::new(&limits(None, None, None), 10, false);
        let c = Candidate {
            scope: Err(SkipReason::OutOfScope),
            ..page(3, 1)
        };
        assert_eq!(f.admit(c, 0), Admit::Skip(SkipReason::OutOfScope));
        assert_eq!(f.admit(page(3, 1), 0), Admit::Known);
    }

    #[test]
    fn the_page_budget_counts_fetches_started_and_not_retries() {
        let o: Arc<str> = Arc::from("http://a");
        let mut f = Frontier::new(&limits(Some(2), None, None), 10, false);
        assert!(!f.dispatched(&o));
        assert!(!f.budget_spent());
        f.dispatched(&o);
        assert!(f.budget_spent());
        assert_eq!(f.admit(page(1, 1), 0), Admit::Skip(SkipReason::MaxPages));
        f.undispatched(&o);
        assert!(!f.budget_spent());
        assert_eq!(f.refill_wanted(0), None, "nothing in the database");
    }

    #[test]
    fn sitemaps_and_recrawl_pages_leave_the_budget_to_what_is_queued() {
        let mut f = Frontier::new(&limits(Some(3), None, None), 10, true);
        // Three revisits wait in the window: the budget is covered.
        assert!(f.budget_covered(3));
        assert_eq!(f.admit(page(1, 1), 3), Admit::Skip(SkipReason::MaxPages));
        assert_eq!(f.admit(page(2, 1), 2), Admit::Window);
        let mut crawl = Frontier::new(&limits(Some(3), None, None), 10, false);
        assert_eq!(crawl.admit(page(1, 1), 3), Admit::Window);
        let sm = Candidate {
            sitemap: true,
            ..page(9, 0)
        };
        assert_eq!(crawl.admit(sm, 3), Admit::Skip(SkipReason::MaxPages));
    }

    #[test]
    fn a_host_budget_is_spent_by_its_own_pages() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("http://a"), Arc::from("http://b"));
        let mut f = Frontier::new(&limits(None, Some(2), None), 10, false);
        assert!(!f.dispatched(&a));
        assert!(!f.dispatched(&b));
        assert!(f.dispatched(&a));
        assert!(f.host_spent("http://a"));
        assert!(!f.host_spent("http://b"));
        f.undispatched("http://a");
        assert!(!f.host_spent("http://a"));
    }

    #[test]
    fn refills_start_small_and_double() {
        let mut f = Frontier::new(&limits(None, None, None), 50_000, false);
        f.restore_queued(100_000);
        let mut asked = Vec::new();
        for _ in 0..7 {
            let n = f.refill_wanted(0).expect("room");
            f.refill_requested(n);
            f.refilled(n);
            asked.push(n);
        }
        assert_eq!(asked, [500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    }

    #[test]
    fn refills_keep_the_count_of_what_waits_in_the_database() {
        let mut f = Frontier::new(&limits(None, None, None), 100, false);
        f.restore_queued(250);
        assert_eq!(f.refill_wanted(60), None, "window more than half full");
        let n = f.refill_wanted(10).expect("room");
        assert_eq!(n, 90);
        f.refill_requested(n);
        // Two URLs spilled while the refill ran.
        assert_eq!(f.admit(page(1, 1), 100), Admit::Database);
        assert_eq!(f.admit(page(2, 1), 100), Admit::Database);
        f.refilled(90);
        assert_eq!(f.db_queued(), 162);
        f.refill_requested(90);
        f.refilled(40);
        // The database held fewer than asked: only later spills remain.
        assert_eq!(f.db_queued(), 0);
    }
}
