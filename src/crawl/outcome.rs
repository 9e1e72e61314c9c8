//! What a worker's result means: a retry, a page with its links, a
//! redirect hop, a sitemap's URLs, a revisit's change. Each result becomes
//! one [`FetchRecord`], returned to the loop that sends it to the writer.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use super::coordinator::{Coordinator, Found};
use crate::canon;
use crate::fetch::FetchError;
use crate::hosts::parse_retry_after;
use crate::parse::LinkKind;
use crate::reason::SkipReason;
use crate::recrawl::{self as revisits, Answer};
use crate::sitemap::{self, SitemapError};
use crate::store::records::{FetchRecord, LinkRecord, RevisitRecord, UrlState};
use crate::summarize::stage::Item;
use crate::util::FpMap;
use crate::worker::{self, Job, Outcome, SitemapRead, WorkerOutput};

/// Most sitemap `<lastmod>` values a recrawl keeps (16 bytes each).
const MAX_LASTMODS: usize = 4_000_000;

/// Deepest chain of sitemap indexes followed (robots.txt's sitemap is 0).
const MAX_SITEMAP_NESTING: u32 = 3;

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

impl Coordinator {
    /// What a worker's result means, as the record to send to the writer
    /// (`None`: nothing to record yet, the job is queued again for a
    /// retry).
    pub(super) fn on_output(&mut self, out: WorkerOutput) -> Option<FetchRecord> {
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
                    None => return None,
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
                None => return None,
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
        let mut rec = FetchRecord::new(job.id as i64, origin.clone());
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
                    rec.links.reserve(f.links.len());
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
            let mut revisit = self.revisit_record(run_id, &job, change);
            revisit.bytes = bytes;
            (revisit.etag, revisit.last_modified) = kept_validators;
            rec.revisit = Some(revisit);
        }
        // Page failures are what the report and the exit code count; a
        // missing sitemap is recorded, not a failed page.
        if rec.state == UrlState::Failed && !job.sitemap {
            c.failed.fetch_add(1, Relaxed);
        }
        Some(rec)
    }

    /// A transient failure: backs the host off (for `retry_after` if the
    /// server said, capped, else exponentially), and queues the job again
    /// if it has retries left. Returns the job if it has none.
    pub(super) fn retry(
        &mut self,
        origin: &Arc<str>,
        job: Job,
        retry_after: Option<Duration>,
    ) -> Option<Job> {
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
        // Kept in the store too: a run started before the wait is over
        // waits it out.
        self.delays_out.push((
            origin.clone(),
            crate::util::now_ms() + wait.as_millis() as i64,
        ));
        if job.attempts >= self.cfg.politeness.retries {
            return Some(job);
        }
        tracing::debug!("{}: retrying in {wait:.1?}", job.url);
        self.requeue(origin, job, true, now);
        None
    }

    /// Queues a job again for another attempt (`front`: ahead of its
    /// host's queue). A retry does not spend the page budget again.
    pub(super) fn requeue(&mut self, origin: &Arc<str>, mut job: Job, front: bool, now: Instant) {
        job.attempts += 1;
        if !job.sitemap {
            self.frontier.undispatched(origin);
        }
        self.sched.push(origin, job, front, now);
    }

    /// A URL that timed out (or whose body broke off) while its host
    /// answers others: the host is not backed off; the URL is tried once
    /// more after the host's other queued URLs, holding no slot while it
    /// waits. Returns the job if it was tried twice already.
    pub(super) fn retry_slow(&mut self, origin: &Arc<str>, job: Job) -> Option<Job> {
        if job.attempts >= self.cfg.politeness.retries.min(1) {
            return Some(job);
        }
        tracing::debug!("{}: slow; trying again after its host's queue", job.url);
        self.requeue(origin, job, false, Instant::now());
        None
    }

    /// A 3xx with a usable Location, or a refresh at once: the target is
    /// the next hop, scheduled like any URL (scope, robots, dedup,
    /// politeness) but ahead of its host's queue.
    ///
    /// A redirect back to a URL of its own chain (or to itself) is a loop,
    /// unless the response set a cookie and cookies are on: then it is a
    /// session being set up (`302 Location: /shop/` with `Set-Cookie`), and
    /// the URL is fetched again, with the cookie, within `--max-redirects`.
    pub(super) fn on_redirect(
        &mut self,
        job: &Job,
        target: Url,
        sets_cookie: bool,
        page: &mut crate::store::records::PageRecord,
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

    /// A sitemap that answered 2xx: queues the pages (or, for an index,
    /// the sitemaps) it lists, through scope and robots like any link.
    pub(super) fn on_sitemap(
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
    pub(super) fn unchanged_since_lastmod(&self, job: &Job) -> bool {
        self.this.changes_run.is_some() && unchanged_since(&self.lastmods, job)
    }

    /// A revisit of `job` found `change`: checked now, next due after the
    /// interval its history gives (nothing downloaded, validators kept).
    fn revisit_record(
        &self,
        run_id: i64,
        job: &Job,
        change: Option<revisits::Change>,
    ) -> RevisitRecord {
        let previous = job.revisit.as_ref().and_then(|r| r.revisit_ms);
        let interval = revisits::next_interval(previous, change, &self.cfg.revisit);
        RevisitRecord {
            run_id,
            change,
            checked_at: self.this.clock,
            revisit_ms: interval,
            due_at: self.this.clock + interval,
            bytes: 0,
            etag: None,
            last_modified: None,
        }
    }

    /// The record of a revisit a sitemap's `<lastmod>` showed unchanged:
    /// the page is kept, checked now, its interval doubled, as after a 304,
    /// with no request made. `None` outside a recrawl.
    pub(super) fn unchanged_by_lastmod(&mut self, job: Job) -> Option<FetchRecord> {
        let run_id = self.this.changes_run?;
        let mut rec = FetchRecord::new(job.id as i64, canon::origin_key(&job.url).into());
        rec.attempts = 0;
        rec.revisit = Some(self.revisit_record(run_id, &job, Some(revisits::Change::Unchanged)));
        self.counters.unchanged_by_sitemap.fetch_add(1, Relaxed);
        Some(rec)
    }

    pub(super) fn offer_summary(&self, page: &crate::store::records::PageRecord) {
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
        let offered = tx.try_send(Item {
            url: page.final_url.clone(),
            content_hash: hash.clone(),
            text: text.clone(),
            kinds: page.text_kinds.clone(),
        });
        if offered.is_err() {
            self.counters.summary_offers_dropped.fetch_add(1, Relaxed);
        }
    }
}
