//! The records a crawl hands to storage and the protocol it hands them
//! over with: what one fetch learned ([`FetchRecord`]: the page, its
//! links, the URLs it revealed, a recrawl's change), URLs found elsewhere,
//! hosts' robots.txt, and the [`WriteOp`]s a storage writer takes.
//!
//! Plain owned data: workers build records without touching the store, and
//! the coordinator talks to whichever writer runs through [`WriterHandle`]
//! alone.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::{CrawlState, StoreError};

/// State of a URL row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UrlState {
    Queued,
    Leased,
    Done,
    Failed,
    Skipped,
}

impl UrlState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Leased => "leased",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// A URL to record in the frontier.
#[derive(Debug, Clone)]
pub struct NewUrl {
    pub id: i64,
    pub url: String,
    pub origin: String,
    pub depth: u32,
    pub state: UrlState,
    pub reason: Option<&'static str>,
    pub discovered_from: Option<i64>,
    pub redirect_hops: u32,
    /// A sitemap to read for URLs, not a page.
    pub sitemap: bool,
}

/// What was learned by fetching a URL.
#[derive(Debug, Clone, Default)]
pub struct PageRecord {
    pub status: u16,
    pub final_url: String,
    pub redirect_to: Option<String>,
    pub content_type: Option<String>,
    pub size: u64,
    pub truncated: bool,
    pub fetched_at: i64,
    pub fetch_ms: i64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_hash: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub language: Option<String>,
    pub canonical: Option<String>,
    pub base_href: Option<String>,
    pub meta_robots: Option<String>,
    /// Every `X-Robots-Tag` header.
    pub x_robots_tag: Option<String>,
    /// Meta robots or X-Robots-Tag say `noindex` (or `none`) for us.
    pub noindex: bool,
    pub encoding: Option<String>,
    pub text: Option<String>,
    /// One byte per line of `text` (see `parse::extract::kind`).
    pub text_kinds: Option<String>,
    /// The main content as Markdown (see `parse::markdown`).
    pub markdown: Option<String>,
    /// The page's summary, made with the parse (extractive summaries):
    /// written to `summaries` in the page's transaction.
    pub summary: Option<SummaryRecord>,
    pub links_count: u32,
    /// The fingerprint of the fetch's links ([`links_hash`]), set when the
    /// record goes to the writer (`pages.links_hash`).
    pub links_hash: i64,
    /// The body, compressed, when the crawl keeps HTML (`page_html`).
    pub html: Option<super::fields::KeptHtml>,
    /// Fields found by the crawl's selectors that matched (`extracted`).
    pub fields: Vec<super::fields::FieldRow>,
}

/// A summary made during the crawl, under its summarizer's key.
#[derive(Debug, Clone)]
pub struct SummaryRecord {
    pub key: std::sync::Arc<crate::summarize::SummaryKey>,
    pub text: String,
}

/// An edge from the fetched page.
#[derive(Debug, Clone)]
pub struct LinkRecord {
    pub to_id: i64,
    pub anchor: String,
    pub nofollow: bool,
    /// The markup it came from; `None` for `<a href>` (stored as NULL).
    pub kind: Option<&'static str>,
}

/// The fingerprint of a page's links as stored (`pages.links_hash`):
/// xxh3-64 over each link's target id, nofollow flag, kind and anchor, in
/// order, length-prefixed so no two lists share an encoding. Stable across
/// builds (xxh3 is a specified function), so a recrawl compares it with
/// the fingerprint a page was stored with years before.
pub fn links_hash(links: &[LinkRecord]) -> i64 {
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    h.update(&(links.len() as u64).to_le_bytes());
    for l in links {
        h.update(&l.to_id.to_le_bytes());
        h.update(&[u8::from(l.nofollow)]);
        let kind = l.kind.unwrap_or("");
        h.update(&(kind.len() as u32).to_le_bytes());
        h.update(kind.as_bytes());
        h.update(&(l.anchor.len() as u32).to_le_bytes());
        h.update(l.anchor.as_bytes());
    }
    h.digest() as i64
}

/// The outcome of one fetch: committed atomically.
#[derive(Debug, Clone)]
pub struct FetchRecord {
    pub url_id: i64,
    /// The URL's origin (`scheme://host:port`, `canon::origin_key`): on
    /// PostgreSQL the record is written only while this process holds
    /// the origin's host lease.
    pub origin: Arc<str>,
    /// `Done` or `Failed`.
    pub state: UrlState,
    pub reason: Option<String>,
    pub page: Option<PageRecord>,
    pub links: Vec<LinkRecord>,
    pub new_urls: Vec<NewUrl>,
    /// URLs seen before that are leased again by this fetch (a redirect
    /// back into its chain that set a cookie): set back to `leased` after
    /// the fetch's own row is settled.
    pub relet: Vec<i64>,
    /// Earlier hops of a redirect chain that ended at this URL: their
    /// `final_url` becomes this page's URL.
    pub chain: Vec<i64>,
    /// Requests this outcome took (1 + retries).
    pub attempts: u32,
    /// Fetched as a page, the body turned out to be a sitemap.
    pub became_sitemap: bool,
    /// In a recrawl: what the fetch found, and the page's next revisit.
    pub revisit: Option<RevisitRecord>,
}

/// What a recrawl's fetch of a URL found.
#[derive(Debug, Clone)]
pub struct RevisitRecord {
    /// The run the change is recorded under.
    pub run_id: i64,
    /// `None`: nothing to record (a broken URL still broken, a passing
    /// failure of a stored page).
    pub change: Option<crate::recrawl::Change>,
    pub checked_at: i64,
    pub revisit_ms: i64,
    pub due_at: i64,
    /// Body bytes downloaded.
    pub bytes: u64,
    /// With no `page` in the record, the stored page is kept: these
    /// validators (a 304 may send new ones) replace its own when given.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl FetchRecord {
    /// What the record weighs in the writer's backlog, in rows: its links
    /// and newly found URLs, and its page's text, Markdown, kept body and
    /// fields at a row per KiB (so that pages with a megabyte of text each
    /// cannot pile up by the hundred).
    pub fn rows(&self) -> u64 {
        let bytes = self.page.as_ref().map_or(0, |p| {
            p.text.as_ref().map_or(0, String::len)
                + p.markdown.as_ref().map_or(0, String::len)
                + p.html.as_ref().map_or(0, |h| h.packed.len())
                + p.fields.iter().map(|f| f.json.len()).sum::<usize>()
        });
        (self.links.len() + self.new_urls.len() + bytes / 1024) as u64
    }

    /// A successful fetch of `url_id` (of `origin`) with nothing recorded
    /// yet. (Attempts are not carried: each committed fetch adds one in
    /// the database.)
    pub fn new(url_id: i64, origin: Arc<str>) -> Self {
        Self {
            url_id,
            origin,
            state: UrlState::Done,
            reason: None,
            page: None,
            links: Vec::new(),
            new_urls: Vec::new(),
            became_sitemap: false,
            chain: Vec::new(),
            relet: Vec::new(),
            attempts: 1,
            revisit: None,
        }
    }

    /// Marks the fetch failed, with its reason.
    pub fn fail(&mut self, reason: impl Into<String>) {
        self.state = UrlState::Failed;
        self.reason = Some(reason.into());
    }
}

/// A row of `hosts`: an origin's robots.txt as fetched.
#[derive(Debug, Clone)]
pub struct HostRecord {
    pub origin: String,
    pub robots: crate::robots::RobotsFetch,
    pub crawl_delay_ms: Option<i64>,
    /// Rules of our group that could not be used (left out).
    pub unusable_rules: u32,
}

/// A URL handed to the crawler by a refill.
#[derive(Debug, Clone)]
pub struct LeasedUrl {
    pub id: i64,
    pub url: String,
    pub depth: u32,
    pub redirect_hops: u32,
    pub sitemap: bool,
    /// What is stored of its page, when a recrawl revisits it.
    pub revisit: Option<crate::recrawl::Revisit>,
    /// For a redirect target leased by a claim (a shared crawl): the URLs
    /// of the redirect chain that led to it, first hop first (on SQLite a
    /// target goes straight into the window with its chain).
    pub chain: Vec<i64>,
}

/// A process's hold on the hosts it works, in a crawl that several
/// processes share (PostgreSQL): `hosts.lease_owner` is its
/// `processes.id`, `lease_token` a random number of its run, and a lease
/// runs out `ttl_ms` after it was last renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub owner: i64,
    pub token: i64,
    pub ttl_ms: i64,
}

/// What a [`WriteOp::Claim`] got.
#[derive(Debug, Default)]
pub struct Claimed {
    /// URLs of the held hosts, leased to this process, shallowest first.
    pub urls: Vec<LeasedUrl>,
    /// Hosts newly held, with the time their stored clock allows a request
    /// (`hosts.next_fetch_at`, epoch ms) and the Crawl-delay of their
    /// stored robots.txt (ms).
    pub new_hosts: Vec<(String, Option<i64>, Option<i64>)>,
    /// Every host held after the claim.
    pub held: Vec<String>,
    /// URLs queued, and leased (by any process), in the whole crawl:
    /// counted when the claim leased nothing or was asked to count
    /// (`WriteOp::Claim::count`), else `None`.
    pub counts: Option<QueueCounts>,
    /// Page fetches the crawl may still start under `--max-pages`
    /// (`None`: no limit).
    pub budget_left: Option<i64>,
}

/// A shared crawl's queue as a claim saw it.
#[derive(Debug, Clone, Copy)]
pub struct QueueCounts {
    /// URLs queued in the whole crawl.
    pub queued: i64,
    /// URLs leased, by any process.
    pub leased: i64,
}

pub enum WriteOp {
    /// Record URLs (seeds; URLs found outside a page).
    Urls(Vec<NewUrl>),
    /// Record a fetch and everything it revealed.
    Fetch(Box<FetchRecord>),
    /// Lease up to `limit` queued URLs, shallowest first.
    Refill {
        limit: u32,
        /// Read what is stored of each URL's page (a recrawl).
        revisits: bool,
        /// The URLs, or why what is stored of them could not be read.
        reply: oneshot::Sender<Result<Vec<LeasedUrl>, StoreError>>,
    },
    /// In a shared crawl: give back the hosts with no work left, renew the
    /// rest, take more (up to `max_hosts` held in all): hosts with queued
    /// URLs that nobody holds, and hosts whose holder's lease ran out (the
    /// URLs it had leased are queued again); then lease up to `limit`
    /// queued URLs of the hosts held, within what is left of `max_pages`
    /// for the whole crawl.
    Claim {
        max_hosts: u32,
        limit: u32,
        max_pages: Option<u64>,
        /// Read what is stored of each URL's page (a recrawl).
        revisits: bool,
        /// Count the crawl's queued and leased URLs even if the claim
        /// leases some (it counts them whenever it leases none). Two
        /// counts over `urls` took 4-8 ms a claim at 20,000 URLs.
        count: bool,
        reply: oneshot::Sender<Claimed>,
    },
    /// Mark every queued or leased URL skipped with this reason, except
    /// a recrawl's revisits, which go back to the state they were queued
    /// from (`urls.revisit_state`, schema v12).
    SkipPending { reason: &'static str },
    /// Mark these URLs skipped with this reason (robots.txt said no).
    Skip { ids: Vec<i64>, reason: &'static str },
    /// Mark these URLs failed, unfetched, with this reason (their host
    /// cannot be reached).
    Fail { ids: Vec<i64>, reason: &'static str },
    /// Record what robots.txt of an origin said.
    Host(Box<HostRecord>),
    /// No request may start to `origin` before `until` (epoch ms): a
    /// back-off or a server's Retry-After, kept for a later run. A later
    /// time already stored stays.
    HostDelay { origin: String, until: i64 },
    /// Replace the cookie jars of these hosts: `(host, JSON)`.
    Cookies(Vec<(String, String)>),
    /// Return every leased URL to the queue (a stop before the end); in a
    /// shared crawl, only those of the hosts this process holds, and give
    /// the hosts up.
    ReleaseLeased,
    /// Set the crawl's state.
    CrawlState { id: i64, state: CrawlState },
    /// Reply once everything sent before has been committed.
    Flush(oneshot::Sender<()>),
}

impl WriteOp {
    /// Whether someone waits for this operation's reply.
    pub(super) fn is_awaited(&self) -> bool {
        matches!(
            self,
            WriteOp::Refill { .. } | WriteOp::Claim { .. } | WriteOp::Flush(_)
        )
    }
}

/// Handle for sending to the writer.
#[derive(Clone)]
pub struct WriterHandle {
    pub(super) tx: mpsc::Sender<WriteOp>,
    pub(super) committed: watch::Receiver<Committed>,
}

/// What the writer has committed so far, counting [`WriteOp::Fetch`]es only.
#[derive(Debug, Default, Clone, Copy)]
pub struct Committed {
    pub fetches: u64,
    /// Their [`FetchRecord::rows`].
    pub rows: u64,
}

impl WriterHandle {
    pub async fn send(&self, op: WriteOp) -> Result<(), StoreError> {
        self.tx.send(op).await.map_err(|_| StoreError::WriterGone)
    }

    /// What has been committed so far, which changes after every commit
    /// that holds a fetch.
    pub fn committed(&self) -> watch::Receiver<Committed> {
        self.committed.clone()
    }

    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(WriteOp::Flush(tx)).await?;
        rx.await.map_err(|_| StoreError::WriterGone)
    }
}

/// Totals of what the writer committed.
#[derive(Debug, Default, Clone)]
pub struct WriterStats {
    pub transactions: u64,
    pub ops: u64,
    /// Time spent writing and committing.
    pub busy: std::time::Duration,
}
