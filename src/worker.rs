//! A fetch worker: one job from request to owned, parsed result.
//!
//! In: a [`Job`] (a canonical URL the scheduler released). Out: a
//! [`WorkerOutput`] for the coordinator: the page record (status, headers,
//! hash, parsed fields) and the page's links (or the URLs a sitemap lists),
//! already canonicalized, fingerprinted and checked against the scope. All
//! the per-link CPU work
//! happens here, in parallel on the blocking pool, so the single
//! coordinator only does set lookups.
//!
//! Workers never write to the store; a worker that is aborted (a stop)
//! leaves nothing half-done.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use url::Url;

use crate::canon;
use crate::fetch::{FetchError, Fetcher, Response};
use crate::parse::{self, ParseLimits};
use crate::progress::Counters;
use crate::reason::SkipReason;
use crate::robots;
use crate::scope::Scope;
use crate::sitemap::{self, SitemapError};
use crate::store::records::{PageRecord, SummaryRecord};
use crate::util::now_ms;

/// A URL on its way through the pipeline.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: u64,
    pub url: Url,
    pub depth: u32,
    /// Redirect hops taken to reach this URL.
    pub hops: u32,
    /// Earlier hops of the redirect chain this URL continues (oldest first).
    pub chain: Vec<u64>,
    /// Requests already made for this URL in this run (retries so far).
    pub attempts: u32,
    /// A sitemap to read for URLs, not a page.
    pub sitemap: bool,
    /// What was stored about the URL, when a recrawl revisits it.
    pub revisit: Option<Arc<crate::recrawl::Revisit>>,
}

/// A link as the coordinator needs it.
#[derive(Debug)]
pub struct ScopedLink {
    pub url: Url,
    pub fp: u64,
    pub anchor: String,
    pub nofollow: bool,
    pub kind: parse::LinkKind,
    pub scope: Result<(), SkipReason>,
}

/// What came back from the server.
#[derive(Debug)]
pub struct Fetched {
    pub page: PageRecord,
    /// `Location` of a 3xx, as sent.
    pub location: Option<String>,
    /// `Retry-After`, as sent.
    pub retry_after: Option<String>,
    /// The response set a cookie.
    pub sets_cookie: bool,
    /// Where a 2xx page sends its reader at once: a `Refresh` header or a
    /// `<meta http-equiv=refresh>` whose delay is at most
    /// [`MAX_REFRESH_REDIRECT_SECS`]. Followed as a redirect hop.
    pub refresh: Option<Url>,
    /// Robots directives say `nofollow` (or `none`) for us.
    pub nofollow: bool,
    /// The page's links, or the URLs a sitemap lists.
    pub links: Vec<ScopedLink>,
    /// What a sitemap turned out to be (only for sitemap jobs answered
    /// with a 2xx): its kind and whether reading it stopped early, or why
    /// it is not a sitemap.
    pub sitemap: Option<Result<SitemapRead, SitemapError>>,
}

/// A sitemap that was read.
#[derive(Debug)]
pub struct SitemapRead {
    pub kind: sitemap::Kind,
    /// Why reading stopped before the end (a cap, malformed XML).
    pub cut: Option<String>,
    /// `(fingerprint, lastmod)` of each listed URL that gave a readable
    /// `<lastmod>` (epoch ms, read late: see [`sitemap::lastmod`]).
    pub lastmods: Vec<(u64, i64)>,
}

#[derive(Debug)]
pub enum Outcome {
    Fetched(Box<Fetched>),
    Failed(FetchError),
    /// Analysis of the body panicked (a parser bug); recorded, never fatal.
    Panicked(String),
}

#[derive(Debug)]
pub struct WorkerOutput {
    pub job: Job,
    pub origin: Arc<str>,
    pub outcome: Outcome,
}

/// What every worker shares.
pub struct WorkerCtx {
    pub fetcher: Fetcher,
    pub scope: Scope,
    pub parse_limits: ParseLimits,
    /// Bounds CPU-heavy parsing to the number of cores, however many
    /// fetches are in flight.
    pub parse_permits: Semaphore,
    pub counters: Arc<Counters>,
    /// The product token robots directives are matched against.
    pub agent: String,
    /// Summaries made with the parse (the extractive summarizer), if on.
    pub summary: Option<crate::summarize::Inline>,
    /// Follow page links to assets (`--fetch-assets`); else they are
    /// recorded as skipped, reason `asset`.
    pub fetch_assets: bool,
    /// Fields taken from each HTML page by CSS selectors (`--extract`).
    pub fields: Option<crate::fields::Fields>,
    /// Keep each HTML page's body, compressed (`--keep-html`).
    pub keep_html: bool,
}

impl WorkerCtx {
    /// Bodies up to this size are analysed on the fetching task, larger
    /// ones on the blocking pool: [`INLINE_ANALYSIS_BYTES`], or for HTML
    /// with fields to extract (a document tree is built for them)
    /// [`INLINE_EXTRACT_BYTES`].
    fn inline_bytes(&self, body: Body) -> usize {
        if body == Body::Html && self.fields.is_some() {
            INLINE_EXTRACT_BYTES
        } else {
            INLINE_ANALYSIS_BYTES
        }
    }
}

pub async fn run(ctx: Arc<WorkerCtx>, origin: Arc<str>, job: Job) -> WorkerOutput {
    let fetched_at = now_ms();
    let fetch = if job.sitemap {
        ctx.fetcher.get_limited(&job.url, sitemap::MAX_BYTES).await
    } else {
        // A page's HTML is read whole (up to --max-body-size): the
        // streaming parse holds nothing per element. XML may be a sitemap,
        // also read whole; other types, and error pages, are only hashed.
        let validators = job
            .revisit
            .as_ref()
            .filter(|r| r.was_ok && (r.etag.is_some() || r.last_modified.is_some()))
            .map(|r| {
                (
                    r.etag.as_deref().unwrap_or(""),
                    r.last_modified.as_deref().unwrap_or(""),
                )
            });
        ctx.fetcher
            .get_page(&job.url, validators, |status, ct| {
                if !(200..300).contains(&status) {
                    0
                } else if parse::may_be_html(ct) || maybe_sitemap(ct) {
                    usize::MAX
                } else {
                    0
                }
            })
            .await
    };
    let outcome = match fetch {
        Err(e) => Outcome::Failed(e),
        Ok(resp) => {
            // A sitemap is read again even when it is the same: its
            // `<lastmod>`s are what a recrawl uses it for.
            let same = !job.sitemap
                && job.revisit.as_ref().is_some_and(|r| {
                    r.was_ok
                        && r.status == Some(resp.status)
                        && r.content_hash.as_deref() == Some(resp.content_hash.as_str())
                });
            let body = if !(200..300).contains(&resp.status) || same {
                // A revisited page whose body is the stored one: nothing
                // to read again.
                Body::Other
            } else if job.sitemap {
                Body::Sitemap
            } else if parse::is_html(resp.content_type.as_deref(), &resp.body) {
                Body::Html
            } else if maybe_sitemap(resp.content_type.as_deref())
                || parse::mime::sniffs_as_xml(resp.content_type.as_deref(), &resp.body)
            {
                // A sitemap linked, or given as a seed, before any
                // robots.txt named it.
                Body::MaybeSitemap
            } else {
                Body::Other
            };
            if body != Body::Other && resp.body.len() > ctx.inline_bytes(body) {
                let permit = ctx.parse_permits.acquire().await;
                let ctx2 = ctx.clone();
                let url = job.url.clone();
                let res = tokio::task::spawn_blocking(move || {
                    analyze(&ctx2, &url, resp, fetched_at, body)
                })
                .await;
                drop(permit);
                match res {
                    Ok(f) => Outcome::Fetched(Box::new(f)),
                    Err(e) => Outcome::Panicked(e.to_string()),
                }
            } else {
                // A small body (nearly every page) costs less to read here
                // than to hand to another thread.
                Outcome::Fetched(Box::new(analyze(&ctx, &job.url, resp, fetched_at, body)))
            }
        }
    };
    WorkerOutput {
        job,
        origin,
        outcome,
    }
}

/// Bodies up to this size are analysed on the fetching task (~0.15 ms
/// of CPU at most); larger ones on the blocking pool, at most one per
/// core at a time.
const INLINE_ANALYSIS_BYTES: usize = 64 << 10;
/// The same bound for HTML when fields are extracted: building the
/// document tree and matching selectors cost six to seven times the
/// streaming pass (~1 ms for the benchmark's 19 KB page), so only bodies
/// that stay within about the same CPU are read on the fetching task.
const INLINE_EXTRACT_BYTES: usize = 4 << 10;

/// The longest delay of a refresh (header or meta) that is followed as a
/// redirect; a longer one is a page that moves on after it is read, and
/// its target is only a link.
pub const MAX_REFRESH_REDIRECT_SECS: u32 = 30;

/// What a successful body is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Html,
    Sitemap,
    /// XML or gzip fetched as a page: read as a sitemap if it is one.
    MaybeSitemap,
    /// Stored as fetched (hashed, not parsed).
    Other,
}

fn analyze(ctx: &WorkerCtx, url: &Url, resp: Response, fetched_at: i64, body: Body) -> Fetched {
    let started = std::time::Instant::now();
    let mut page = PageRecord {
        status: resp.status,
        final_url: url.to_string(),
        content_type: resp.content_type.clone(),
        size: resp.size,
        // HTML is read in part only where the parse stops anyway; a
        // sitemap is kept whole.
        truncated: resp.truncated || (body == Body::Html && (resp.body.len() as u64) < resp.size),
        fetched_at,
        fetch_ms: resp.elapsed.as_millis() as i64,
        etag: resp.etag.clone(),
        last_modified: resp.last_modified.clone(),
        content_hash: Some(resp.content_hash.clone()),
        x_robots_tag: resp.x_robots_tag.clone(),
        ..PageRecord::default()
    };
    let mut links = Vec::new();
    let mut sitemap_read = None;
    // HTML's refresh: the header first, as browsers act on it before the
    // body's `<meta>`.
    let ok = (200..300).contains(&resp.status);
    let mut refresh = resp
        .refresh
        .as_deref()
        .filter(|_| ok)
        .and_then(|v| parse::Refresh::parse(v, url).or_else(|| parse::Refresh::reload(v, url)));
    if matches!(body, Body::Sitemap | Body::MaybeSitemap) {
        let read = sitemap::parse(&resp.body, resp.truncated).map(|map| {
            let mut lastmods = Vec::new();
            links = map
                .locs
                .iter()
                .zip(&map.lastmods)
                .filter_map(|(loc, lastmod)| Some((canon::resolve(url, loc)?, lastmod)))
                .map(|(u, lastmod)| {
                    let link = scoped(ctx, u, String::new(), false, parse::LinkKind::Anchor);
                    if let Some(t) = lastmod {
                        lastmods.push((link.fp, *t));
                    }
                    link
                })
                .collect();
            page.links_count = map.locs.len() as u32;
            SitemapRead {
                kind: map.kind,
                cut: map.cut,
                lastmods,
            }
        });
        if body == Body::Sitemap || read.is_ok() {
            sitemap_read = Some(read);
        }
    }
    if body == Body::Html {
        // Decoded once, for the streaming pass and for the fields.
        let (html, encoding) =
            parse::decode_from(&resp.body, resp.content_type.as_deref(), url.host_str());
        let parsed = parse::parse_str(&html, url, ctx.parse_limits);
        if let Some(fields) = &ctx.fields {
            page.fields = crate::store::fields::FieldRow::of(&fields.extract(&html));
        }
        drop(html);
        if ctx.keep_html {
            page.html = Some(crate::store::fields::KeptHtml::pack(&resp.body));
        }
        links = parsed
            .links
            .into_iter()
            .map(|l| {
                let mut link = scoped(ctx, l.url, l.anchor, l.nofollow, l.kind);
                if !ctx.fetch_assets && link.scope.is_ok() && crate::scope::is_asset(&link.url) {
                    link.scope = Err(SkipReason::Asset);
                }
                link
            })
            .collect();
        page.title = parsed.title;
        page.description = parsed.description;
        page.language = parsed.language;
        page.canonical = parsed.canonical;
        page.base_href = parsed.base;
        page.meta_robots = parsed.meta_robots;
        page.encoding = Some(encoding.name().to_string());
        page.text = Some(parsed.text);
        page.text_kinds = Some(parsed.text_kinds);
        page.markdown = ctx.parse_limits.markdown.then_some(parsed.markdown);
        page.links_count = (links.len() + parsed.links_dropped) as u32;
        page.truncated |= parsed.cut;
        if refresh.is_none() {
            refresh = parsed.refresh;
        }
    }
    let directives = robots::Directives::of(
        page.meta_robots.as_deref(),
        page.x_robots_tag.as_deref(),
        &ctx.agent,
    );
    page.noindex = directives.noindex;
    // A refresh to the page itself is a redirect only when it sets a
    // cookie (a session set up; the coordinator decides with cookies on).
    let refresh = refresh
        .filter(|r| {
            r.delay <= MAX_REFRESH_REDIRECT_SECS
                && (resp.sets_cookie || canon::fingerprint(&r.url) != canon::fingerprint(url))
        })
        .map(|r| r.url);
    // A page that sends its reader on at once is a redirect: its target
    // is what gets summarized.
    if let Some(inline) = &ctx.summary
        && refresh.is_none()
        && let Some(text) = page.text.as_deref()
        && !text.is_empty()
        && !page.noindex
    {
        // While the text is still in this core's cache.
        page.summary = Some(SummaryRecord {
            key: inline.key.clone(),
            text: inline.summarize(text, page.text_kinds.as_deref()),
        });
    }
    ctx.counters.parse_nanos.fetch_add(
        started.elapsed().as_nanos() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    Fetched {
        page,
        location: resp.location,
        retry_after: resp.retry_after,
        sets_cookie: resp.sets_cookie,
        refresh,
        nofollow: directives.nofollow,
        links,
        sitemap: sitemap_read,
    }
}

/// XML or gzip by its Content-Type (`application/xml`, `text/xml`,
/// `application/gzip`, `application/x-gzip`).
fn maybe_sitemap(content_type: Option<&str>) -> bool {
    let mime = content_type
        .and_then(|c| c.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime.ends_with("/xml") || mime.ends_with("gzip")
}

fn scoped(
    ctx: &WorkerCtx,
    url: Url,
    anchor: String,
    nofollow: bool,
    kind: parse::LinkKind,
) -> ScopedLink {
    ScopedLink {
        fp: canon::fingerprint(&url),
        scope: ctx.scope.check(&url),
        url,
        anchor,
        nofollow,
        kind,
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::fetch::hex(&Sha256::digest(bytes))
}
