//! The read side of `trawl export` for summaries, pages and links: typed
//! rows in a stable order, streamed.
//!
//! In: the store, the filters every kind of row shares
//! ([`ExportFilter`]) and what each kind adds. Out: a stream of
//! [`SummaryRow`]s, [`PageRow`]s or [`LinkRow`]s. Each query is one pass
//! in key order (pages by URL id, summaries by URL id and summarizer,
//! links in the order they were written), read as it goes: memory stays
//! flat however large the crawl, and two exports give the same rows.
//!
//! Sitemaps are left out of summaries and pages; `noindex` pages too
//! unless asked for. Changes are read by [`Store::changes`].

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use sqlx::Row;

use super::{Store, StoreError, numbered};
use crate::export::HostFilter;

/// The filters every kind of exported row shares.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportFilter<'a> {
    /// Only URLs stored under an origin this keeps.
    pub host: Option<&'a HostFilter>,
    /// Only rows fetched (summaries: summarized) at or after this time, in
    /// epoch milliseconds.
    pub since: Option<i64>,
    /// Only pages with this HTTP status (links: from such pages).
    pub status: Option<u16>,
    /// Also pages whose robots directives say `noindex` (summaries and
    /// pages; links do not look).
    pub include_noindex: bool,
}

/// What a pages export reads besides the page's columns.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageColumns {
    /// Each page's extracted text.
    pub text: bool,
    /// Each page's main content as Markdown.
    pub markdown: bool,
    /// Also URLs that were not stored (skipped, or failed without an
    /// answer): a row with their URL, depth, state and reason, and no page
    /// columns. URLs still queued or leased are left out.
    pub include_skipped: bool,
}

/// A page with one of its summaries (a page summarized by two
/// summarizers is two rows).
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    pub url: String,
    pub title: Option<String>,
    /// `None` for a failed summary.
    pub summary: Option<String>,
    /// `extractive` or `llm`.
    pub backend: String,
    /// The LLM's model, or the extractive method.
    pub model: String,
    /// A hash of the prompt (or of the extractive settings).
    pub prompt_version: String,
    /// Tokens as the LLM reported them, summed over chunks; 0 for
    /// extractive summaries.
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// When the page was fetched, epoch milliseconds.
    pub fetched_at: i64,
    /// When the summary was last written, epoch milliseconds.
    pub summarized_at: i64,
    /// Cut at the LLM's `max_tokens`.
    pub truncated: bool,
    /// `done` or `failed`.
    pub state: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// A URL of the crawl and its stored page. Every page column is `None`
/// for a URL with no page (only with [`PageColumns::include_skipped`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PageRow {
    /// The URL's id (its fingerprint): the key rows come in.
    pub url_id: i64,
    pub url: String,
    /// Where the redirect chain starting at this URL ended.
    pub final_url: Option<String>,
    /// HTTP status of the answer.
    pub status: Option<i64>,
    /// Link distance from a seed (0 for seeds).
    pub depth: i64,
    /// `done`, `failed` or `skipped`.
    pub state: String,
    /// Why it was skipped or failed (`out_of_scope`, `http_404`…).
    pub reason: Option<String>,
    /// The `Location` of a 3xx answer (or a refresh), resolved.
    pub redirect_to: Option<String>,
    pub content_type: Option<String>,
    /// Body bytes read (after decompression).
    pub size: Option<i64>,
    /// Stored in part: the body passed `--max-body-size`, or the text
    /// passed 1 MiB.
    pub truncated: Option<bool>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub canonical: Option<String>,
    pub language: Option<String>,
    /// SHA-256 of the body, hex.
    pub content_hash: Option<String>,
    /// Links found on the page.
    pub links_count: Option<i64>,
    /// Time of the request, from sending it to the end of the body, in
    /// milliseconds.
    pub fetch_ms: Option<i64>,
    /// When the page was fetched, epoch milliseconds.
    pub fetched_at: Option<i64>,
    /// The main text; only read with [`PageColumns::text`].
    pub text: Option<String>,
    /// The main content as Markdown; only read with
    /// [`PageColumns::markdown`], and `None` for a page stored without it.
    pub markdown: Option<String>,
}

/// A link edge: one per page and canonical target.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRow {
    /// The page the link is on.
    pub from: String,
    /// Its target, canonical.
    pub to: String,
    pub anchor: Option<String>,
    /// `rel="nofollow"`.
    pub nofollow: bool,
    /// The markup the link came from: `a`, `area`, `frame`, `iframe` or
    /// `refresh` (a `<meta http-equiv=refresh>`).
    pub kind: String,
}

enum Bind {
    Bool(bool),
    Int(i64),
    Text(String),
}

/// The rows of `$sql` (`?` placeholders) with `$binds`, each read by
/// the closure `$read` (`|r: &Row| -> Result<T, sqlx::Error>`, written once
/// and compiled for each backend's row), as a stream.
macro_rules! stream_rows {
    ($store:expr, $sql:expr, $binds:expr, $read:expr) => {{
        let sql = numbered(&$sql);
        let binds: Vec<Bind> = $binds;
        on_pool!($store, pool => {
            let read = typed_reader::<<Db as sqlx::Database>::Row, _, _>($read);
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in binds {
                query = match b {
                    Bind::Bool(v) => query.bind(v),
                    Bind::Int(v) => query.bind(v),
                    Bind::Text(v) => query.bind(v),
                };
            }
            query
                .fetch(pool)
                .and_then(move |r| std::future::ready(read(&r)))
                .map_err(StoreError::from)
                .boxed()
        })
    }};
}

/// `f`, with its argument's type fixed to `&R` (a closure's argument type
/// must be known before its body is checked).
fn typed_reader<R, T, F: Fn(&R) -> Result<T, sqlx::Error>>(f: F) -> F {
    f
}

impl Store {
    /// Every stored summary of a page (only the `done` ones unless
    /// `include_failed`), by URL id, backend, model and prompt version.
    /// Streamed.
    pub fn export_summaries(
        &self,
        filter: &ExportFilter<'_>,
        include_failed: bool,
    ) -> BoxStream<'_, Result<SummaryRow, StoreError>> {
        let mut binds = Vec::new();
        let mut sql = String::from(
            "SELECT u.url, p.title, s.summary, s.backend, s.model, s.prompt_version, \
             s.prompt_tokens, s.completion_tokens, p.fetched_at, s.updated_at, s.truncated, \
             s.state, s.error \
             FROM pages p JOIN urls u ON u.id = p.url_id \
             JOIN summaries s ON s.content_hash = p.content_hash \
             WHERE (s.state = 'done' OR ?) AND u.sitemap = FALSE AND (? OR p.noindex = FALSE)",
        );
        binds.push(Bind::Bool(include_failed));
        binds.push(Bind::Bool(filter.include_noindex));
        filters(filter, "s.updated_at", &mut sql, &mut binds);
        sql.push_str(" ORDER BY p.url_id, s.backend, s.model, s.prompt_version");
        stream_rows!(self, sql, binds, |r| {
            Ok(SummaryRow {
                url: r.try_get(0)?,
                title: r.try_get(1)?,
                summary: r.try_get(2)?,
                backend: r.try_get(3)?,
                model: r.try_get(4)?,
                prompt_version: r.try_get(5)?,
                prompt_tokens: r.try_get(6)?,
                completion_tokens: r.try_get(7)?,
                fetched_at: r.try_get(8)?,
                summarized_at: r.try_get(9)?,
                truncated: r.try_get(10)?,
                state: r.try_get(11)?,
                error: r.try_get(12)?,
            })
        })
    }

    /// Every fetched URL (sitemaps left out) with its stored page, by URL
    /// id; with `columns.include_skipped`, every URL not fetched too.
    /// Streamed.
    pub fn export_pages(
        &self,
        filter: &ExportFilter<'_>,
        columns: PageColumns,
    ) -> BoxStream<'_, Result<PageRow, StoreError>> {
        let mut binds = Vec::new();
        // With --include-skipped the URL is the driving table, and a
        // URL without a page has NULL page columns.
        let (from, page_filter) = if columns.include_skipped {
            (
                "FROM urls u LEFT JOIN pages p ON p.url_id = u.id",
                " AND u.state <> 'queued' AND u.state <> 'leased' AND (p.url_id IS NULL OR ? OR p.noindex = FALSE)",
            )
        } else {
            (
                "FROM pages p JOIN urls u ON u.id = p.url_id",
                " AND (? OR p.noindex = FALSE)",
            )
        };
        let mut sql = format!(
            "SELECT u.url, p.final_url, p.status, u.depth, u.state, u.reason, p.redirect_to, \
             p.content_type, p.size, p.truncated, p.title, p.description, p.canonical, p.language, \
             p.content_hash, p.links_count, p.fetch_ms, p.fetched_at{text}{markdown}, \
             u.id {from} WHERE u.sitemap = FALSE{page_filter}",
            // Selected only when asked for; `u.id` last.
            text = if columns.text { ", p.text" } else { "" },
            markdown = if columns.markdown { ", p.markdown" } else { "" },
        );
        binds.push(Bind::Bool(filter.include_noindex));
        filters(
            filter,
            "COALESCE(p.fetched_at, u.updated_at)",
            &mut sql,
            &mut binds,
        );
        sql.push_str(" ORDER BY u.id");
        stream_rows!(self, sql, binds, move |r| {
            let mut next = 18;
            let mut optional = |asked: bool| -> Result<Option<String>, sqlx::Error> {
                if !asked {
                    return Ok(None);
                }
                next += 1;
                r.try_get(next - 1)
            };
            let text = optional(columns.text)?;
            let markdown = optional(columns.markdown)?;
            Ok(PageRow {
                url: r.try_get(0)?,
                final_url: r.try_get(1)?,
                status: r.try_get(2)?,
                depth: r.try_get(3)?,
                state: r.try_get(4)?,
                reason: r.try_get(5)?,
                redirect_to: r.try_get(6)?,
                content_type: r.try_get(7)?,
                size: r.try_get(8)?,
                truncated: r.try_get(9)?,
                title: r.try_get(10)?,
                description: r.try_get(11)?,
                canonical: r.try_get(12)?,
                language: r.try_get(13)?,
                content_hash: r.try_get(14)?,
                links_count: r.try_get(15)?,
                fetch_ms: r.try_get(16)?,
                fetched_at: r.try_get(17)?,
                text,
                markdown,
                url_id: r.try_get(r.len() - 1)?,
            })
        })
    }

    /// Every link edge of a stored page, in the order they were written
    /// (a page's links together, in document order). Streamed.
    pub fn export_links(
        &self,
        filter: &ExportFilter<'_>,
    ) -> BoxStream<'_, Result<LinkRow, StoreError>> {
        let mut binds = Vec::new();
        let mut sql = String::from(
            "SELECT u.url, t.url, l.anchor, l.nofollow, COALESCE(l.kind, 'a') \
             FROM links l JOIN urls u ON u.id = l.from_id JOIN urls t ON t.id = l.to_id \
             JOIN pages p ON p.url_id = l.from_id WHERE TRUE",
        );
        filters(filter, "p.fetched_at", &mut sql, &mut binds);
        // Insertion order: SQLite's rowid, PostgreSQL's identity column.
        sql.push_str(if self.is_postgres() {
            " ORDER BY l.seq"
        } else {
            " ORDER BY l.rowid"
        });
        stream_rows!(self, sql, binds, |r| {
            Ok(LinkRow {
                from: r.try_get(0)?,
                to: r.try_get(1)?,
                anchor: r.try_get(2)?,
                nofollow: r.try_get(3)?,
                kind: r.try_get(4)?,
            })
        })
    }
}

/// Shared WHERE terms for the filters; `fetched` is the column a `since`
/// compares against.
fn filters(filter: &ExportFilter<'_>, fetched: &str, sql: &mut String, binds: &mut Vec<Bind>) {
    if let Some(host) = filter.host {
        let (condition, values) = host_condition(host);
        sql.push_str(" AND ");
        sql.push_str(condition);
        binds.extend(values.into_iter().map(Bind::Text));
    }
    if let Some(since) = filter.since {
        sql.push_str(&format!(" AND {fetched} >= ?"));
        binds.push(Bind::Int(since));
    }
    if let Some(status) = filter.status {
        sql.push_str(" AND p.status = ?");
        binds.push(Bind::Int(i64::from(status)));
    }
}

/// The SQL condition on `u.origin` of a host filter, with its bound
/// values: the same test as [`HostFilter::matches`].
fn host_condition(host: &HostFilter) -> (&'static str, Vec<String>) {
    match host {
        HostFilter::Host(host) => {
            let escaped = host
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            (
                "u.origin LIKE ? ESCAPE '\\'",
                vec![format!("%://{escaped}:%")],
            )
        }
        HostFilter::HostPort(host, port) => (
            "u.origin IN (?, ?)",
            vec![
                format!("http://{host}:{port}"),
                format!("https://{host}:{port}"),
            ],
        ),
        HostFilter::Origin(origin) => ("u.origin = ?", vec![origin.clone()]),
    }
}
