//! Export: rows out of the database, one JSON object per line.
//!
//! In: an open [`Store`] and what to export. Out: JSON Lines on any writer.
//! Rows are streamed from the database in a stable order (by key), so memory
//! stays flat however large the crawl, and two runs give identical output.

use std::io::Write;

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::Row;

use crate::store::{Store, StoreError};
use crate::util::rfc3339;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    /// One row per page and summary (pages with several summarizers' summaries get one row each).
    Summaries,
    /// One row per fetched URL.
    Pages,
    /// One row per link edge.
    Links,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<sqlx::Error> for ExportError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Sql(e))
    }
}

/// Options of an export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub what: What,
    pub format: Format,
    /// Include each page's extracted text.
    pub with_text: bool,
    /// Include pages whose robots directives say `noindex` (left out by
    /// default: their owners asked for them not to be republished).
    pub include_noindex: bool,
}

#[derive(Serialize)]
struct PageOut<'a> {
    url: &'a str,
    final_url: &'a str,
    status: i64,
    depth: i64,
    state: &'a str,
    reason: Option<&'a str>,
    redirect_to: Option<&'a str>,
    content_type: Option<&'a str>,
    size: i64,
    truncated: bool,
    title: Option<&'a str>,
    description: Option<&'a str>,
    canonical: Option<&'a str>,
    language: Option<&'a str>,
    content_hash: Option<&'a str>,
    links_count: i64,
    fetch_ms: i64,
    fetched_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

#[derive(Serialize)]
struct SummaryOut<'a> {
    url: &'a str,
    title: Option<&'a str>,
    summary: &'a str,
    summarizer: &'a str,
    model: &'a str,
    prompt_version: &'a str,
    prompt_tokens: i64,
    completion_tokens: i64,
    fetched_at: String,
    summarized_at: String,
}

#[derive(Serialize)]
struct LinkOut<'a> {
    from: &'a str,
    to: &'a str,
    anchor: Option<&'a str>,
    nofollow: bool,
}

/// Writes the export to `out`; returns the number of rows written.
pub async fn export(
    store: &Store,
    opts: &ExportOptions,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let Format::Jsonl = opts.format;
    let mut n = 0u64;
    match opts.what {
        What::Pages => {
            let sql = "SELECT u.url, u.depth, u.state, u.reason, p.status, p.final_url, p.redirect_to, \
                       p.content_type, p.size, p.truncated, p.title, p.description, p.canonical, p.language, \
                       p.content_hash, p.links_count, p.fetch_ms, p.fetched_at, \
                       CASE WHEN ? THEN p.text END AS text \
                       FROM pages p JOIN urls u ON u.id = p.url_id WHERE u.sitemap = 0 AND (? OR p.noindex = 0) ORDER BY p.url_id";
            let mut rows = sqlx::query(sql)
                .bind(opts.with_text)
                .bind(opts.include_noindex)
                .fetch(store.pool());
            while let Some(r) = rows.try_next().await? {
                let row = PageOut {
                    url: r.try_get("url")?,
                    final_url: r.try_get("final_url")?,
                    status: r.try_get("status")?,
                    depth: r.try_get("depth")?,
                    state: r.try_get("state")?,
                    reason: r.try_get("reason")?,
                    redirect_to: r.try_get("redirect_to")?,
                    content_type: r.try_get("content_type")?,
                    size: r.try_get("size")?,
                    truncated: r.try_get("truncated")?,
                    title: r.try_get("title")?,
                    description: r.try_get("description")?,
                    canonical: r.try_get("canonical")?,
                    language: r.try_get("language")?,
                    content_hash: r.try_get("content_hash")?,
                    links_count: r.try_get("links_count")?,
                    fetch_ms: r.try_get("fetch_ms")?,
                    fetched_at: rfc3339(r.try_get("fetched_at")?),
                    text: r.try_get("text")?,
                };
                serde_json::to_writer(&mut *out, &row).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
                n += 1;
            }
        }
        What::Summaries => {
            let sql = "SELECT u.url, p.title, s.summary, s.backend, s.model, s.prompt_version, \
                       s.prompt_tokens, s.completion_tokens, p.fetched_at, s.updated_at \
                       FROM pages p JOIN urls u ON u.id = p.url_id \
                       JOIN summaries s ON s.content_hash = p.content_hash \
                       WHERE s.state = 'done' AND u.sitemap = 0 AND (? OR p.noindex = 0) \
                       ORDER BY p.url_id, s.backend, s.model, s.prompt_version";
            let mut rows = sqlx::query(sql)
                .bind(opts.include_noindex)
                .fetch(store.pool());
            while let Some(r) = rows.try_next().await? {
                let row = SummaryOut {
                    url: r.try_get("url")?,
                    title: r.try_get("title")?,
                    summary: r.try_get("summary")?,
                    summarizer: r.try_get("backend")?,
                    model: r.try_get("model")?,
                    prompt_version: r.try_get("prompt_version")?,
                    prompt_tokens: r.try_get("prompt_tokens")?,
                    completion_tokens: r.try_get("completion_tokens")?,
                    fetched_at: rfc3339(r.try_get("fetched_at")?),
                    summarized_at: rfc3339(r.try_get("updated_at")?),
                };
                serde_json::to_writer(&mut *out, &row).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
                n += 1;
            }
        }
        What::Links => {
            let sql = "SELECT f.url AS from_url, t.url AS to_url, l.anchor, l.nofollow \
                       FROM links l JOIN urls f ON f.id = l.from_id JOIN urls t ON t.id = l.to_id \
                       ORDER BY l.rowid";
            let mut rows = sqlx::query(sql).fetch(store.pool());
            while let Some(r) = rows.try_next().await? {
                let row = LinkOut {
                    from: r.try_get("from_url")?,
                    to: r.try_get("to_url")?,
                    anchor: r.try_get("anchor")?,
                    nofollow: r.try_get("nofollow")?,
                };
                serde_json::to_writer(&mut *out, &row).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
                n += 1;
            }
        }
    }
    out.flush()?;
    Ok(n)
}
