//! Each host's robots.txt and sitemaps: read (from the `hosts` table
//! while fresh, else from the host), applied to its queued URLs, read
//! again after 24 hours; its sitemaps queued once robots.txt names them.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use super::CrawlError;
use super::coordinator::{Coordinator, Found};
use crate::canon;
use crate::hosts::{Loaded, Verdict, parse_retry_after};
use crate::reason::SkipReason;
use crate::robots::{self, RobotsFetch};
use crate::store::Store;
use crate::store::records::{HostRecord, WriteOp};
use crate::worker::WorkerCtx;

/// A robots.txt answer and whether it was just fetched (else it came from
/// the `hosts` table).
pub(super) struct RobotsLoad {
    pub(super) fetch: RobotsFetch,
    pub(super) fresh: bool,
}

/// Reads `origin`'s robots.txt from the `hosts` table if a usable answer
/// younger than 24 hours is there, else fetches it, not before
/// `not_before` (the robots.txt request is a request to the host: it keeps
/// the host's clock like any other).
async fn load_robots(
    ctx: &WorkerCtx,
    store: &Store,
    origin: &str,
    not_before: Option<Instant>,
) -> RobotsLoad {
    let oldest = crate::util::now_ms() - robots::ROBOTS_TTL.as_millis() as i64;
    match store.stored_robots(origin, oldest).await {
        Ok(Some(stored)) => RobotsLoad {
            fetch: RobotsFetch {
                status: stored.status,
                body: stored.body,
                fetched_at: stored.fetched_at,
                ..RobotsFetch::default()
            },
            fresh: false,
        },
        other => {
            if let Err(e) = other {
                tracing::debug!("reading stored robots.txt of {origin}: {e}");
            }
            if let Some(at) = not_before {
                tokio::time::sleep_until(at).await;
            }
            RobotsLoad {
                fetch: robots::fetch(&ctx.fetcher, origin).await,
                fresh: true,
            }
        }
    }
}

impl Coordinator {
    /// Reads `origin`'s robots.txt (after `delay`): from the `hosts` table
    /// while it is fresh, else from the host.
    pub(super) fn load_robots(&mut self, origin: Arc<str>, delay: Duration) {
        let ctx = self.ctx.clone();
        let store = self.store.clone();
        let not_before = self.sched.not_before(&origin);
        self.robots_tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            let load = load_robots(&ctx, &store, &origin, not_before).await;
            (origin, load)
        });
    }

    pub(super) async fn on_robots(
        &mut self,
        origin: Arc<str>,
        load: RobotsLoad,
    ) -> Result<(), CrawlError> {
        self.save_cookies().await?;
        let now = Instant::now();
        let age =
            Duration::from_millis((crate::util::now_ms() - load.fetch.fetched_at).max(0) as u64);
        let loaded = self.hosts.loaded(&origin, &load.fetch, age);
        let retry_after = load.fetch.retry_after.clone();
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
                // A server that says when to come back is asked no
                // sooner (within --max-retry-after), in this run or the
                // next.
                let asked = retry_after
                    .as_deref()
                    .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
                    .map(|d| d.min(self.cfg.politeness.max_retry_after));
                let after = asked.map_or(after, |a| a.max(after));
                if asked.is_some() {
                    let until = crate::util::now_ms() + after.as_millis() as i64;
                    self.delays_out.push((origin.clone(), until));
                }
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

    /// Queues `origin`'s sitemaps: those its robots.txt names, or else
    /// `/sitemap.xml`.
    pub(super) async fn add_sitemaps(
        &mut self,
        origin: &str,
        named: &[String],
    ) -> Result<(), CrawlError> {
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
            self.urls_sent += 1;
            self.writer.send(WriteOp::Urls(new_urls)).await?;
        }
        Ok(())
    }
}
