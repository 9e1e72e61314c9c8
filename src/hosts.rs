//! What the crawl knows about each host beyond its queue: its robots.txt
//! and how it has been answering.
//!
//! In: robots.txt fetches and fetch outcomes, per origin. Out: verdicts
//! (may this URL be fetched, not yet known, never) and back-off delays.
//! Owned by the coordinator alone, like the scheduler; entries of idle
//! hosts are forgotten with the scheduler's (a later URL of the host reads
//! robots.txt back from the `hosts` table, not from the network).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use crate::reason::SkipReason;
use crate::robots::{ROBOTS_TTL, Robots, RobotsFetch};
use crate::util::Jitter;

/// Attempts at an unavailable robots.txt before the host's URLs are
/// recorded as `robots_unavailable` (about two minutes in all).
pub const ROBOTS_ATTEMPTS: u32 = 6;
/// Attempts at robots.txt of a host that cannot be reached at all
/// (connection refused, no DNS name, TLS failure) before its URLs are
/// recorded as failed with that reason: a few seconds, not minutes.
pub const UNREACHABLE_ATTEMPTS: u32 = 3;
/// First wait before asking an unavailable robots.txt again; doubles.
const ROBOTS_RETRY_BASE: Duration = Duration::from_secs(2);
/// First back-off after a transient failure on a host; doubles with each
/// consecutive one.
const FAILURE_BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The shortest time a request runs before it may count as slow.
pub const SLOW_REQUEST_MIN: Duration = Duration::from_secs(2);
/// Answers per host remembered to tell a slow URL from a failing host.
const RECENT: u8 = 8;
/// Longest back-off for consecutive failures.
const FAILURE_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// May a URL be fetched?
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Never (in this run), for this reason.
    Skip(SkipReason),
    /// The host cannot be reached (`connection_refused`, `dns`, `tls`,
    /// `connect`): the URL fails with this reason, unfetched.
    Fail(&'static str),
    /// robots.txt is being read; hold the host back.
    Wait,
    /// robots.txt has not been asked for: hold the host back and load it.
    Load,
}

/// What a robots.txt answer means for its host.
#[derive(Debug)]
pub enum Loaded {
    /// Rules known. The host's own spacing, if robots.txt asks for one
    /// longer than nothing (already capped), and whether it was capped.
    Ready {
        crawl_delay: Option<Duration>,
        capped_from: Option<Duration>,
        sitemaps: Vec<String>,
        /// Rules of our group that could not be used and were left out.
        unusable_rules: u32,
    },
    /// Unavailable; ask again after this long.
    Retry { after: Duration, why: String },
    /// Unavailable through every attempt, or never to be asked: the
    /// host's URLs are recorded with `reason`.
    GaveUp { why: String, reason: SkipReason },
    /// The host could not be reached through [`UNREACHABLE_ATTEMPTS`]
    /// attempts: its URLs fail with `reason`.
    Unreachable { why: String, reason: &'static str },
}

enum RobotsState {
    Loading { attempt: u32 },
    Ready { robots: Robots, expires: Instant },
    GaveUp(SkipReason),
    Unreachable(&'static str),
}

/// An origin's last [`RECENT`] answers, newest in bit 0 of `timeouts` (1 a
/// timeout, 0 anything else), how many are known (≤ 8), and the mean time
/// of its answers (exponentially weighted, ⅛ per answer).
#[derive(Debug, Default, Clone, Copy)]
struct Recent {
    timeouts: u8,
    known: u8,
    mean_ms: Option<f64>,
}

/// Transient failures in a row (timeouts, connection errors, 5xx, 408,
/// 429) after which a host that has not answered once in this run is given
/// up on: about 30 s of back-off.
pub const GIVE_UP_SILENT: u32 = 5;
/// The same for a host that did answer before: about 15 minutes.
pub const GIVE_UP_ANSWERED: u32 = 10;
/// The reason of URLs failed, unfetched, on a host given up on.
pub const HOST_UNRESPONSIVE: &str = "host_unresponsive";

impl Recent {
    fn push(&mut self, timeout: bool) {
        self.timeouts = (self.timeouts << 1) | u8::from(timeout);
        self.known = (self.known + 1).min(RECENT);
    }

    /// Most of the last answers (at least 4 known) were timeouts.
    fn failing(&self) -> bool {
        self.known >= 4 && 2 * self.timeouts.count_ones() > u32::from(self.known)
    }
}

/// Per-origin robots state (absent: not asked for yet in this run).
pub struct Hosts {
    obey_robots: bool,
    agent: String,
    max_crawl_delay: Duration,
    entries: HashMap<Arc<str>, RobotsState>,
    /// Consecutive transient failures per origin (kept apart from the
    /// robots entries: it matters for ignore-robots crawls too).
    failures: HashMap<Arc<str>, u32>,
    /// How each origin has been answering lately.
    recent: HashMap<Arc<str>, Recent>,
    /// Origins given up on in this run (see [`Hosts::give_up`]): their URLs
    /// fail with this reason, unfetched.
    down: HashMap<Arc<str>, &'static str>,
    rng: Jitter,
}

impl Hosts {
    /// `agent` is the product token matched in robots.txt.
    pub fn new(obey_robots: bool, agent: String, max_crawl_delay: Duration) -> Self {
        Self {
            obey_robots,
            agent,
            max_crawl_delay,
            entries: HashMap::new(),
            failures: HashMap::new(),
            recent: HashMap::new(),
            down: HashMap::new(),
            rng: Jitter::new(),
        }
    }

    /// Whether `url` on `origin` may be fetched. `Load` also records that
    /// loading has begun, so it is returned once per origin.
    pub fn verdict(&mut self, origin: &str, url: &Url) -> Verdict {
        if let Some(reason) = self.down.get(origin) {
            return Verdict::Fail(reason);
        }
        if !self.obey_robots {
            return Verdict::Allowed;
        }
        match self.entries.get(origin) {
            None => {
                self.entries
                    .insert(Arc::from(origin), RobotsState::Loading { attempt: 0 });
                Verdict::Load
            }
            Some(state) => match state {
                RobotsState::Loading { .. } => Verdict::Wait,
                RobotsState::Ready { robots, .. } => {
                    if robots.allowed(url) {
                        Verdict::Allowed
                    } else {
                        Verdict::Skip(SkipReason::Robots)
                    }
                }
                RobotsState::GaveUp(reason) => Verdict::Skip(*reason),
                RobotsState::Unreachable(reason) => Verdict::Fail(reason),
            },
        }
    }

    /// Takes in a robots.txt answer for `origin`, fetched `age` ago.
    pub fn loaded(&mut self, origin: &str, fetch: &RobotsFetch, age: Duration) -> Loaded {
        let robots = Robots::from_fetch(&self.agent, fetch);
        let attempt = match self.entries.get(origin) {
            Some(RobotsState::Loading { attempt }) => *attempt,
            _ => 0,
        };
        if let Robots::Unavailable(why) = robots {
            // A host that resolves to an internal address is never asked.
            if fetch.blocked {
                let reason = SkipReason::BlockedAddress;
                self.entries
                    .insert(Arc::from(origin), RobotsState::GaveUp(reason));
                return Loaded::GaveUp { why, reason };
            }
            let attempt = attempt + 1;
            if let Some(reason) = fetch.unreachable
                && attempt >= UNREACHABLE_ATTEMPTS
            {
                self.entries
                    .insert(Arc::from(origin), RobotsState::Unreachable(reason));
                return Loaded::Unreachable { why, reason };
            }
            if attempt >= ROBOTS_ATTEMPTS {
                let reason = SkipReason::RobotsUnavailable;
                self.entries
                    .insert(Arc::from(origin), RobotsState::GaveUp(reason));
                return Loaded::GaveUp { why, reason };
            }
            self.entries
                .insert(Arc::from(origin), RobotsState::Loading { attempt });
            let after = self.jitter(ROBOTS_RETRY_BASE * 2u32.pow(attempt - 1));
            return Loaded::Retry { after, why };
        }
        let asked = robots.crawl_delay();
        let crawl_delay = asked.map(|d| d.min(self.max_crawl_delay));
        let capped_from = asked.filter(|d| *d > self.max_crawl_delay);
        let sitemaps = robots.sitemaps().to_vec();
        let unusable_rules = robots.unusable_rules();
        let expires = Instant::now() + ROBOTS_TTL.saturating_sub(age);
        self.entries
            .insert(Arc::from(origin), RobotsState::Ready { robots, expires });
        Loaded::Ready {
            crawl_delay,
            capped_from,
            sitemaps,
            unusable_rules,
        }
    }

    /// Origins whose rules are older than the 24-hour limit: to be read
    /// again. Their entries go back to loading.
    pub fn take_expired(&mut self, now: Instant) -> Vec<Arc<str>> {
        let mut out = Vec::new();
        for (origin, h) in &mut self.entries {
            if let RobotsState::Ready { expires, .. } = *h
                && expires <= now
            {
                *h = RobotsState::Loading { attempt: 0 };
                out.push(origin.clone());
            }
        }
        out
    }

    /// Forgets an idle host (not one whose robots.txt is being read).
    pub fn forget(&mut self, origin: &str) {
        if let Some(state) = self.entries.get(origin)
            && !matches!(state, RobotsState::Loading { .. })
        {
            self.entries.remove(origin);
        }
        self.failures.remove(origin);
        self.recent.remove(origin);
    }

    /// Transient failures in a row on `origin`.
    pub fn failures(&self, origin: &str) -> u32 {
        self.failures.get(origin).copied().unwrap_or(0)
    }

    /// A transient failure (timeout, connection error, 5xx, 408, 429) on
    /// `origin`: how long to leave the host alone, growing with
    /// consecutive failures, with jitter.
    pub fn failed(&mut self, origin: &Arc<str>) -> Duration {
        let n = self.failures.entry(origin.clone()).or_insert(0);
        *n += 1;
        let exp = (*n - 1).min(16);
        let base = FAILURE_BACKOFF_BASE
            .saturating_mul(2u32.pow(exp))
            .min(FAILURE_BACKOFF_MAX);
        self.jitter(base)
    }

    /// A fetch on `origin` got an answer that is not a transient failure.
    pub fn succeeded(&mut self, origin: &str) {
        self.failures.remove(origin);
    }

    /// Whether `origin` has failed so many times in a row (see
    /// [`GIVE_UP_SILENT`], [`GIVE_UP_ANSWERED`]) that waiting on it any
    /// longer would only hold the crawl: if so, from now on its URLs
    /// [`Verdict::Fail`] with [`HOST_UNRESPONSIVE`] (until `resume`).
    pub fn give_up(&mut self, origin: &Arc<str>) -> bool {
        let n = self.failures.get(origin).copied().unwrap_or(0);
        let answered = self.recent.get(origin).is_some_and(|r| r.mean_ms.is_some());
        let limit = if answered {
            GIVE_UP_ANSWERED
        } else {
            GIVE_UP_SILENT
        };
        if n >= limit {
            self.down.insert(origin.clone(), HOST_UNRESPONSIVE);
            return true;
        }
        false
    }

    /// `origin` answered a request (any status) in `elapsed`.
    pub fn answered(&mut self, origin: &Arc<str>, elapsed: Duration) {
        let r = self.recent.entry(origin.clone()).or_default();
        r.push(false);
        let ms = elapsed.as_secs_f64() * 1000.0;
        r.mean_ms = Some(r.mean_ms.map_or(ms, |m| m + (ms - m) / 8.0));
    }

    /// A first request for a URL of `origin` timed out (or its body broke
    /// off). Returns whether the host itself is failing (see
    /// [`Hosts::failing`]); if not, only the URL is slow: it is retried
    /// later and the host is not backed off. (A retry's timeout says
    /// nothing new about the host and is not counted.)
    pub fn timed_out(&mut self, origin: &Arc<str>) -> bool {
        let r = self.recent.entry(origin.clone()).or_default();
        r.push(true);
        r.failing()
    }

    /// Whether most of `origin`'s last [`RECENT`] answers (at least 4
    /// known) were timeouts.
    pub fn failing(&self, origin: &str) -> bool {
        self.recent.get(origin).is_some_and(Recent::failing)
    }

    /// How long a request to `origin` may run before it counts as slow
    /// and gives its slot back: 4 × the host's mean answer time, at least
    /// [`SLOW_REQUEST_MIN`]. `None` while the host has answered nothing
    /// or is failing (its slots are held: a struggling host gets no more
    /// connections).
    pub fn slow_after(&self, origin: &str) -> Option<Duration> {
        let r = self.recent.get(origin)?;
        if r.failing() {
            return None;
        }
        let mean = Duration::from_secs_f64(r.mean_ms? * 4.0 / 1000.0);
        Some(mean.max(SLOW_REQUEST_MIN))
    }

    fn jitter(&mut self, d: Duration) -> Duration {
        self.rng.apply(d)
    }
}

/// The delay a `Retry-After` value asks for: delta-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Seconds past u64 are still a wait, the longest there is (the
        // caller caps it at --max-retry-after).
        return Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form
/// RFC 9110 requires senders to use.
fn httpdate(s: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    let day: u64 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)? as u64
        + 1;
    let year: u64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms[..] else { return None };
    if !(1..=31).contains(&day) || year < 1970 || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + sec;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_url_is_not_a_failing_host_until_most_answers_time_out() {
        let mut h = Hosts::new(true, "trawl".into(), Duration::from_secs(30));
        let o: Arc<str> = Arc::from("http://a.test");
        // A timeout among answers: a slow URL.
        assert!(!h.timed_out(&o));
        for _ in 0..4 {
            h.answered(&o, Duration::from_millis(10));
        }
        assert_eq!(h.slow_after(&o), Some(SLOW_REQUEST_MIN));
        // Then nothing but timeouts: failing at 5 of the last 8.
        let mut n = 0;
        while !h.timed_out(&o) {
            n += 1;
        }
        assert_eq!(n + 1, 5);
        // A failing host's requests keep their slots.
        assert_eq!(h.slow_after(&o), None);
        // A host that never answered is failing from its fourth timeout.
        let dead: Arc<str> = Arc::from("http://b.test");
        assert!(!h.timed_out(&dead));
        assert!(!h.timed_out(&dead));
        assert!(!h.timed_out(&dead));
        assert!(h.timed_out(&dead));
    }

    #[test]
    fn an_unreachable_host_gives_up_after_a_few_attempts() {
        let mut h = Hosts::new(true, "trawl".into(), Duration::from_secs(30));
        let refused = RobotsFetch {
            error: Some("robots.txt: connection refused".into()),
            unreachable: Some("connection_refused"),
            ..RobotsFetch::default()
        };
        let url = Url::parse("http://a.test/x").unwrap();
        assert_eq!(h.verdict("http://a.test", &url), Verdict::Load);
        for _ in 1..UNREACHABLE_ATTEMPTS {
            assert!(matches!(
                h.loaded("http://a.test", &refused, Duration::ZERO),
                Loaded::Retry { .. }
            ));
        }
        assert!(matches!(
            h.loaded("http://a.test", &refused, Duration::ZERO),
            Loaded::Unreachable {
                reason: "connection_refused",
                ..
            }
        ));
        assert_eq!(
            h.verdict("http://a.test", &url),
            Verdict::Fail("connection_refused")
        );
    }

    fn fetch(status: Option<u16>, body: &str) -> RobotsFetch {
        RobotsFetch {
            status,
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn robots_lifecycle() {
        let mut h = Hosts::new(true, "trawl".into(), Duration::from_secs(30));
        let u = Url::parse("http://a/private/x").unwrap();
        assert_eq!(h.verdict("http://a:80", &u), Verdict::Load);
        assert_eq!(h.verdict("http://a:80", &u), Verdict::Wait);
        // Unavailable: retried with growing waits, then given up.
        let mut waits = Vec::new();
        for _ in 1..ROBOTS_ATTEMPTS {
            match h.loaded("http://a:80", &fetch(Some(503), ""), Duration::ZERO) {
                Loaded::Retry { after, .. } => waits.push(after),
                other => panic!("expected retry, got {other:?}"),
            }
            assert_eq!(h.verdict("http://a:80", &u), Verdict::Wait);
        }
        assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
        assert!(matches!(
            h.loaded("http://a:80", &fetch(None, ""), Duration::ZERO),
            Loaded::GaveUp { .. }
        ));
        assert_eq!(
            h.verdict("http://a:80", &u),
            Verdict::Skip(SkipReason::RobotsUnavailable)
        );
        // Forgotten, then loaded fine: rules apply; Crawl-delay is capped.
        h.forget("http://a:80");
        assert_eq!(h.verdict("http://a:80", &u), Verdict::Load);
        let got = h.loaded(
            "http://a:80",
            &fetch(
                Some(200),
                "user-agent: *\ndisallow: /private\ncrawl-delay: 60\n",
            ),
            Duration::ZERO,
        );
        match got {
            Loaded::Ready {
                crawl_delay,
                capped_from,
                ..
            } => {
                assert_eq!(crawl_delay, Some(Duration::from_secs(30)));
                assert_eq!(capped_from, Some(Duration::from_secs(60)));
            }
            other => panic!("expected ready, got {other:?}"),
        }
        assert_eq!(
            h.verdict("http://a:80", &u),
            Verdict::Skip(SkipReason::Robots)
        );
        let ok = Url::parse("http://a/public").unwrap();
        assert_eq!(h.verdict("http://a:80", &ok), Verdict::Allowed);
        // Rules fetched more than 24 hours ago expire at once.
        assert!(h.take_expired(Instant::now()).is_empty());
        h.loaded("http://a:80", &fetch(Some(404), ""), ROBOTS_TTL);
        assert_eq!(h.take_expired(Instant::now()).len(), 1);
        assert_eq!(h.verdict("http://a:80", &ok), Verdict::Wait);
    }

    #[test]
    fn ignoring_robots_allows_everything() {
        let mut h = Hosts::new(false, "trawl".into(), Duration::from_secs(30));
        let u = Url::parse("http://a/").unwrap();
        assert_eq!(h.verdict("http://a:80", &u), Verdict::Allowed);
    }

    #[test]
    fn failure_backoff_grows_and_resets() {
        let mut h = Hosts::new(true, "trawl".into(), Duration::from_secs(30));
        let o: Arc<str> = Arc::from("http://a:80");
        let waits: Vec<Duration> = (0..4).map(|_| h.failed(&o)).collect();
        assert!(waits[0] >= Duration::from_millis(750) && waits[0] < Duration::from_millis(1250));
        assert!(waits[3] >= Duration::from_secs(6), "{waits:?}");
        h.succeeded(&o);
        assert!(h.failed(&o) < Duration::from_millis(1250));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("99999999999999999999", now),
            Some(Duration::from_secs(u64::MAX)),
            "too many seconds to count is the longest wait, not none"
        );
        assert_eq!(
            parse_retry_after("Sun, 32 Nov 1994 08:50:07 GMT", now),
            None
        );
    }
}
