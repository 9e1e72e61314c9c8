//! Per-host scheduling, Mercator style.
//!
//! In: jobs, each tagged with its origin (scheme://host:port). Out: the next
//! job whose host may be fetched now, or the instant at which one will be.
//!
//! One FIFO queue per origin and a min-heap of origins keyed by the time each
//! may next be fetched. A host leaves the heap while it has nothing queued or
//! has reached its concurrency cap, and comes back when that changes; so a
//! slow or rate-limited host never holds up the others, and picking the next
//! job costs O(log hosts). Each host keeps its own clock (`next_at`): the rate
//! limit is a minimum spacing between request starts, which is exact, needs
//! no token bucket per host, and is the same mechanism a Crawl-delay or a
//! Retry-After needs.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// What [`Scheduler::next`] found.
#[derive(Debug)]
pub enum Next<J> {
    /// Fetch this now.
    Ready(Arc<str>, J),
    /// Nothing may be fetched before this instant.
    Wait(Instant),
    /// Nothing is queued on any host that may be fetched (all empty, or all
    /// at their concurrency cap).
    Idle,
}

struct Host<J> {
    key: Arc<str>,
    queue: VecDeque<J>,
    in_flight: u32,
    next_at: Instant,
    /// Spacing of request starts on this host, when it is longer than the
    /// crawl's (a Crawl-delay).
    interval: Option<Duration>,
    /// Held back entirely (robots.txt not known yet).
    blocked: bool,
    /// Whether the heap holds an entry for this host.
    scheduled: bool,
}

/// Per-host queues and the heap of hosts by next allowed time.
pub struct Scheduler<J> {
    hosts: HashMap<Arc<str>, Host<J>>,
    heap: BinaryHeap<Reverse<(Instant, u64, Arc<str>)>>,
    seq: u64,
    queued: usize,
    per_host_concurrency: u32,
    interval: Duration,
    /// When this run started, if it continues an earlier one: no host is
    /// asked before one of its intervals from then.
    restarted: Option<Instant>,
    /// Hosts an earlier run's clock holds back until then (a back-off, a
    /// Retry-After, a stored Crawl-delay), applied when the host is first
    /// seen.
    held: HashMap<Arc<str>, Instant>,
}

impl<J> Scheduler<J> {
    /// `interval` is the minimum spacing of request starts on one host
    /// (zero for no rate limit).
    pub fn new(per_host_concurrency: u32, interval: Duration) -> Self {
        Self {
            hosts: HashMap::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            queued: 0,
            per_host_concurrency: per_host_concurrency.max(1),
            interval,
            restarted: None,
            held: HashMap::new(),
        }
    }

    /// Carries an earlier run's host clocks into this one, which started at
    /// `start`: every host waits one of its intervals from `start` (the
    /// earlier process may have made a request just before it ended), and
    /// each host in `held` until its time.
    pub fn restart(&mut self, start: Instant, held: HashMap<Arc<str>, Instant>) {
        self.restarted = Some(start);
        self.held = held;
    }

    /// The earliest time an earlier run's clock lets a request to `origin`
    /// start (`None` in a first run): for a request made outside the
    /// queue, such as robots.txt. Once the host is known, its own clock
    /// carries the earlier run's.
    pub fn not_before(&self, origin: &str) -> Option<Instant> {
        let start = self.restarted?;
        let mut at = start + self.interval;
        if let Some(&held) = self.held.get(origin) {
            at = at.max(held);
        }
        if let Some(host) = self.hosts.get(origin) {
            at = at.max(host.next_at);
        }
        Some(at)
    }

    /// Jobs waiting in all host queues.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Hosts with state in memory.
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    /// Adds a job to its host's queue (`front`: ahead of the others, for a
    /// redirect hop that continues a fetch already begun).
    pub fn push(&mut self, origin: &str, job: J, front: bool, now: Instant) {
        let host = self.host(origin, now);
        if front {
            host.queue.push_front(job);
        } else {
            host.queue.push_back(job);
        }
        self.queued += 1;
        self.schedule(origin);
    }

    fn host(&mut self, origin: &str, now: Instant) -> &mut Host<J> {
        if !self.hosts.contains_key(origin) {
            let key: Arc<str> = Arc::from(origin);
            let mut next_at = now;
            if let Some(start) = self.restarted {
                next_at = next_at.max(start + self.interval);
            }
            if let Some(held) = self.held.remove(origin) {
                next_at = next_at.max(held);
            }
            let host = Host {
                key: key.clone(),
                queue: VecDeque::new(),
                in_flight: 0,
                next_at,
                interval: None,
                blocked: false,
                scheduled: false,
            };
            self.hosts.insert(key, host);
        }
        self.hosts.get_mut(origin).expect("inserted")
    }

    /// Holds the host back (`true`) or releases it (`false`); a held host
    /// keeps its queue but nothing of it is fetched.
    pub fn set_blocked(&mut self, origin: &str, blocked: bool, now: Instant) {
        self.host(origin, now).blocked = blocked;
        self.schedule(origin);
    }

    /// Sets a host's own spacing of request starts (used when longer than
    /// the crawl's). In a run that continues an earlier one it holds from
    /// the run's start too.
    pub fn set_interval(&mut self, origin: &str, interval: Duration, now: Instant) {
        let restarted = self.restarted.map(|s| s + interval.max(self.interval));
        let host = self.host(origin, now);
        host.interval = Some(interval);
        if let Some(at) = restarted
            && host.next_at < at
        {
            host.next_at = at;
        }
    }

    /// Removes and returns the jobs of `origin` that `drop` selects.
    pub fn remove_where(&mut self, origin: &str, mut drop: impl FnMut(&J) -> bool) -> Vec<J> {
        let Some(host) = self.hosts.get_mut(origin) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        let mut kept = VecDeque::with_capacity(host.queue.len());
        for job in host.queue.drain(..) {
            if drop(&job) {
                removed.push(job);
            } else {
                kept.push_back(job);
            }
        }
        host.queue = kept;
        self.queued -= removed.len();
        removed
    }

    /// Puts the host in the heap if it is eligible and not there yet.
    fn schedule(&mut self, origin: &str) {
        let Some(host) = self.hosts.get_mut(origin) else {
            return;
        };
        if !host.scheduled
            && !host.blocked
            && !host.queue.is_empty()
            && host.in_flight < self.per_host_concurrency
        {
            host.scheduled = true;
            self.seq += 1;
            self.heap
                .push(Reverse((host.next_at, self.seq, host.key.clone())));
        }
    }

    /// Takes the next job that may be fetched at `now`.
    pub fn next(&mut self, now: Instant) -> Next<J> {
        loop {
            let Some(Reverse((at, _, _))) = self.heap.peek() else {
                return Next::Idle;
            };
            if *at > now {
                return Next::Wait(*at);
            }
            let Reverse((_, _, origin)) = self.heap.pop().expect("peeked");
            let Some(host) = self.hosts.get_mut(&origin) else {
                continue;
            };
            host.scheduled = false;
            if host.blocked || host.queue.is_empty() || host.in_flight >= self.per_host_concurrency
            {
                continue;
            }
            if host.next_at > now {
                // The host was slowed down after it was scheduled.
                self.schedule(&origin);
                continue;
            }
            let job = host.queue.pop_front().expect("non-empty");
            host.in_flight += 1;
            host.next_at = now + host.interval.unwrap_or(self.interval).max(self.interval);
            self.queued -= 1;
            self.schedule(&origin);
            return Next::Ready(origin, job);
        }
    }

    /// A fetch on `origin` finished.
    pub fn complete(&mut self, origin: &str) {
        if let Some(host) = self.hosts.get_mut(origin) {
            host.in_flight = host.in_flight.saturating_sub(1);
        }
        self.schedule(origin);
    }

    /// No request to `origin` starts before `at`: for a host this process
    /// has just taken over from another (a shared crawl), whose last
    /// request it cannot see.
    pub fn hold(&mut self, origin: &str, at: Instant) {
        match self.hosts.get_mut(origin) {
            Some(host) => host.next_at = host.next_at.max(at),
            None => {
                let e = self.held.entry(Arc::from(origin)).or_insert(at);
                *e = (*e).max(at);
            }
        }
    }

    /// Pushes the host's next allowed time back to at least `at`.
    pub fn delay_host(&mut self, origin: &str, at: Instant) {
        if let Some(host) = self.hosts.get_mut(origin)
            && host.next_at < at
        {
            host.next_at = at;
        }
    }

    /// Forgets hosts with nothing queued, nothing in flight and no pending
    /// delay, so memory follows the active hosts, not every host ever seen.
    /// Returns the hosts forgotten.
    pub fn evict_idle(&mut self, now: Instant) -> Vec<Arc<str>> {
        let mut gone = Vec::new();
        self.hosts.retain(|key, h| {
            let keep = !h.queue.is_empty()
                || h.in_flight > 0
                || h.next_at > now
                || h.scheduled
                || h.blocked;
            if !keep {
                gone.push(key.clone());
            }
            keep
        });
        gone
    }

    /// Removes and returns every queued job.
    pub fn drain(&mut self) -> Vec<J> {
        let mut out = Vec::with_capacity(self.queued);
        for host in self.hosts.values_mut() {
            out.extend(host.queue.drain(..));
        }
        self.queued = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready<J>(n: Next<J>) -> (Arc<str>, J) {
        match n {
            Next::Ready(o, j) => (o, j),
            Next::Wait(_) => panic!("expected ready, got wait"),
            Next::Idle => panic!("expected ready, got idle"),
        }
    }

    #[test]
    fn spaces_requests_per_host_and_interleaves_hosts() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(10, Duration::from_millis(500));
        for i in 0..3 {
            s.push("a", i, false, t0);
            s.push("b", 10 + i, false, t0);
        }
        let (o1, j1) = ready(s.next(t0));
        let (o2, j2) = ready(s.next(t0));
        assert_eq!((&*o1, j1, &*o2, j2), ("a", 0, "b", 10));
        match s.next(t0) {
            Next::Wait(at) => assert_eq!(at, t0 + Duration::from_millis(500)),
            _ => panic!("expected wait"),
        }
        let t1 = t0 + Duration::from_millis(500);
        let got: Vec<i32> = (0..2).map(|_| ready(s.next(t1)).1).collect();
        assert_eq!(got, vec![1, 11]);
        assert_eq!(s.queued(), 2);
    }

    #[test]
    fn per_host_cap_and_complete() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(1, Duration::ZERO);
        s.push("a", 1, false, t0);
        s.push("a", 2, false, t0);
        assert_eq!(ready(s.next(t0)).1, 1);
        assert!(matches!(s.next(t0), Next::Idle), "host at its cap");
        s.complete("a");
        assert_eq!(ready(s.next(t0)).1, 2);
        s.complete("a");
        assert!(matches!(s.next(t0), Next::Idle));
        assert_eq!(s.evict_idle(t0).len(), 1);
        assert_eq!(s.hosts(), 0);
    }

    #[test]
    fn front_push_and_delay() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(2, Duration::ZERO);
        s.push("a", 1, false, t0);
        s.push("a", 0, true, t0);
        s.delay_host("a", t0 + Duration::from_secs(2));
        assert!(matches!(s.next(t0), Next::Wait(_)));
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(ready(s.next(t2)).1, 0);
        assert_eq!(ready(s.next(t2)).1, 1);
    }

    #[test]
    fn blocked_hosts_wait_and_own_intervals_apply() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(4, Duration::from_millis(100));
        s.set_blocked("a", true, t0);
        s.push("a", 1, false, t0);
        s.push("a", 2, false, t0);
        s.push("a", 3, false, t0);
        s.push("b", 10, false, t0);
        assert_eq!(ready(s.next(t0)).1, 10, "a is blocked, b is not");
        assert!(matches!(s.next(t0), Next::Wait(_) | Next::Idle));
        assert_eq!(s.remove_where("a", |j| *j == 2), vec![2]);
        assert_eq!(s.queued(), 2);
        s.set_interval("a", Duration::from_secs(1), t0);
        s.set_blocked("c", true, t0);
        assert!(s.evict_idle(t0).is_empty(), "blocked hosts are kept");
        s.set_blocked("a", false, t0);
        assert_eq!(ready(s.next(t0)).1, 1);
        // a's own interval (1 s), not the crawl's (100 ms), spaces its requests.
        let t1 = t0 + Duration::from_millis(500);
        assert!(matches!(s.next(t1), Next::Wait(at) if at == t0 + Duration::from_secs(1)));
        assert_eq!(ready(s.next(t0 + Duration::from_secs(1))).1, 3);
    }

    #[test]
    fn a_host_waits_one_of_its_intervals_from_a_restart() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(1, Duration::from_millis(100));
        let c: Arc<str> = Arc::from("c");
        s.restart(t0, HashMap::from([(c, t0 + Duration::from_secs(3))]));
        s.push("a", 1, false, t0);
        s.push("b", 2, false, t0);
        s.push("c", 3, false, t0);
        // A Crawl-delay learnt later holds from the start too.
        s.set_interval("b", Duration::from_secs(2), t0);
        assert_eq!(s.not_before("a"), Some(t0 + Duration::from_millis(100)));
        assert_eq!(
            s.not_before("c"),
            Some(t0 + Duration::from_secs(3)),
            "c's hold went with c into its clock"
        );
        assert!(matches!(s.next(t0), Next::Wait(at) if at == t0 + Duration::from_millis(100)));
        assert_eq!(ready(s.next(t0 + Duration::from_millis(100))).1, 1);
        assert!(
            matches!(s.next(t0 + Duration::from_secs(1)), Next::Wait(at) if at == t0 + Duration::from_secs(2))
        );
        assert_eq!(ready(s.next(t0 + Duration::from_secs(2))).1, 2);
        // c waits out what the earlier run was told.
        assert!(
            matches!(s.next(t0 + Duration::from_secs(2)), Next::Wait(at) if at == t0 + Duration::from_secs(3))
        );
        assert_eq!(ready(s.next(t0 + Duration::from_secs(3))).1, 3);
    }
}
