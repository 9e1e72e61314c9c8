//! The summary stage's storage: which stored pages still need a summary
//! under a summarizer's key, the parts of split pages kept between
//! attempts, and the writes of results (on a connection of the stage's
//! own, beside the crawl's writer); how far the summaries are (`status`,
//! `trawl summarize`) and one page's text (`trawl summarize --url`).
//!
//! A summary is keyed by (content hash, backend, model, prompt version):
//! the same content at two URLs, or fetched again unchanged, is summarized
//! once.

use sqlx::{Connection, Row, SqliteConnection};

use super::{Store, StoreError};
use crate::summarize::SummaryKey;
use crate::util::now_ms;

/// The pages the stage can summarize: stored 2xx HTML pages with text, not
/// sitemaps, not `noindex`, not a refresh redirect (`p`: pages, `u`:
/// urls).
pub const SUMMARIZABLE: &str = "p.status BETWEEN 200 AND 299 AND p.noindex = 0 \
    AND p.text IS NOT NULL AND p.text <> '' AND p.content_hash IS NOT NULL AND u.sitemap = 0 \
    AND p.redirect_to IS NULL";

/// Which summarizable pages need a summary under the summarizer's key
/// (binds: force, backend, model, prompt version, retry failed).
const NEEDS_SUMMARY: &str = "(? OR NOT EXISTS (SELECT 1 FROM summaries s \
    WHERE s.content_hash = p.content_hash AND s.backend = ? AND s.model = ? AND s.prompt_version = ? \
    AND (s.state = 'done' OR NOT ?)))";

/// Which pages a sweep takes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SweepOptions {
    /// Also pages whose summary failed before.
    pub retry_failed: bool,
    /// Every page, summarized or not.
    pub force: bool,
}

/// A stored page the sweep summarizes.
#[derive(Debug, Clone)]
pub struct PendingPage {
    /// The URL's id (the keyset the sweep pages by).
    pub url_id: i64,
    pub url: String,
    /// SHA-256 of the body, hex.
    pub content_hash: String,
    pub text: String,
    /// One byte per line of `text` (see `parse::extract::kind`).
    pub kinds: Option<String>,
}

/// A part of a split page, summarized (map-reduce), kept so that a retry
/// pays only for the parts still missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    /// SHA-256 (hex) of the system prompt and the part's text.
    pub part_key: String,
    pub summary: String,
    /// The part's answer stopped at `max_tokens`.
    pub cut: bool,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A stored page's text, as a summarizer takes it (`trawl summarize
/// --url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageText {
    /// SHA-256 of the body, hex (the key of its summaries); `None` when no
    /// body was read.
    pub content_hash: Option<String>,
    /// The main text; `None` when the page was not read as HTML.
    pub text: Option<String>,
    /// The kind of each line of `text`, one byte per line; `None` for a
    /// page stored before schema v6.
    pub text_kinds: Option<String>,
}

/// One summary result to write.
#[derive(Debug, Clone, Copy)]
pub struct SummaryResult<'a> {
    pub content_hash: &'a str,
    /// The summary, or why it failed.
    pub summary: Result<&'a str, &'a str>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Parts the input was split into (1 when it fit).
    pub chunks: u32,
    /// Requests made, retries included.
    pub attempts: u32,
    /// The answer was cut at `max_tokens`.
    pub truncated: bool,
}

/// Summaries of the pages' distinct contents under one summarizer key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct KeyCounts {
    pub done: i64,
    /// Done, but cut at `max_tokens`.
    pub truncated: i64,
    pub failed: i64,
    /// No summary under this key yet.
    pub pending: i64,
}

impl Store {
    /// The state (`done`, `failed`) of the summary of `hash` under `key`,
    /// if there is one.
    pub async fn summary_state(
        &self,
        hash: &str,
        key: &SummaryKey,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT state FROM summaries WHERE content_hash = ? AND backend = ? AND model = ? AND prompt_version = ?",
        )
        .bind(hash)
        .bind(key.backend)
        .bind(&key.model)
        .bind(&key.prompt_version)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// How many distinct contents a sweep under `key` will summarize.
    pub async fn pending_summary_count(
        &self,
        key: &SummaryKey,
        filter: SweepOptions,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT COUNT(DISTINCT p.content_hash) FROM pages p JOIN urls u ON u.id = p.url_id \
             WHERE {SUMMARIZABLE} AND {NEEDS_SUMMARY}"
        );
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(filter.force)
            .bind(key.backend)
            .bind(&key.model)
            .bind(&key.prompt_version)
            .bind(filter.retry_failed)
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }

    /// Up to `limit` summarizable pages after `after` (by URL id) that
    /// need a summary under `key`, by URL id.
    pub async fn pending_summaries(
        &self,
        key: &SummaryKey,
        filter: SweepOptions,
        after: i64,
        limit: i64,
    ) -> Result<Vec<PendingPage>, StoreError> {
        let sql = format!(
            "SELECT p.url_id, u.url, p.content_hash, p.text, p.text_kinds FROM pages p JOIN urls u ON u.id = p.url_id \
             WHERE p.url_id > ? AND {SUMMARIZABLE} AND {NEEDS_SUMMARY} ORDER BY p.url_id LIMIT ?"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(filter.force)
            .bind(key.backend)
            .bind(&key.model)
            .bind(&key.prompt_version)
            .bind(filter.retry_failed)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| PendingPage {
                url_id: r.get(0),
                url: r.get(1),
                content_hash: r.get(2),
                text: r.get(3),
                kinds: r.get(4),
            })
            .collect())
    }

    /// The parts of `hash` summarized under `key` so far. (Their token
    /// counts were paid before: returned as 0.)
    pub async fn summary_parts(
        &self,
        hash: &str,
        key: &SummaryKey,
    ) -> Result<Vec<StoredPart>, StoreError> {
        let rows = sqlx::query(
            "SELECT part_key, summary, cut FROM summary_parts WHERE content_hash = ? AND backend = ? \
             AND model = ? AND prompt_version = ?",
        )
        .bind(hash)
        .bind(key.backend)
        .bind(&key.model)
        .bind(&key.prompt_version)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| StoredPart {
                part_key: r.get(0),
                summary: r.get(1),
                cut: r.get(2),
                prompt_tokens: 0,
                completion_tokens: 0,
            })
            .collect())
    }

    /// [`KeyCounts`] for `key` over the summarizable pages.
    pub async fn summary_counts_for(&self, key: &SummaryKey) -> Result<KeyCounts, StoreError> {
        let sql = format!(
            "WITH c AS (SELECT DISTINCT p.content_hash AS h FROM pages p CROSS JOIN urls u ON u.id = p.url_id WHERE {SUMMARIZABLE}) \
             SELECT COALESCE(SUM(s.state = 'done'), 0), COALESCE(SUM(s.state = 'done' AND s.truncated), 0), \
             COALESCE(SUM(s.state = 'failed'), 0), COALESCE(SUM(s.state IS NULL), 0) \
             FROM c LEFT JOIN summaries s ON s.content_hash = c.h AND s.backend = ? AND s.model = ? AND s.prompt_version = ?"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key.backend)
            .bind(&key.model)
            .bind(&key.prompt_version)
            .fetch_one(&self.pool)
            .await?;
        Ok(KeyCounts {
            done: row.get(0),
            truncated: row.get(1),
            failed: row.get(2),
            pending: row.get(3),
        })
    }

    /// Summary counts for `status`: (done, failed, pending) over the
    /// summarizable pages' distinct contents, for any summarizer.
    pub async fn summary_counts(&self) -> Result<(i64, i64, i64), StoreError> {
        let sql = format!(
            "WITH c AS (SELECT DISTINCT p.content_hash AS h FROM pages p CROSS JOIN urls u ON u.id = p.url_id WHERE {SUMMARIZABLE}) \
             SELECT \
               (SELECT COUNT(*) FROM c WHERE EXISTS (SELECT 1 FROM summaries s WHERE s.content_hash = c.h AND s.state = 'done')), \
               (SELECT COUNT(*) FROM c WHERE EXISTS (SELECT 1 FROM summaries s WHERE s.content_hash = c.h AND s.state = 'failed') \
                  AND NOT EXISTS (SELECT 1 FROM summaries s WHERE s.content_hash = c.h AND s.state = 'done')), \
               (SELECT COUNT(*) FROM c WHERE NOT EXISTS (SELECT 1 FROM summaries s WHERE s.content_hash = c.h))"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await?;
        Ok((row.get(0), row.get(1), row.get(2)))
    }

    /// The text of the page stored for the URL with this id (its
    /// fingerprint); `None` when no page is stored for it.
    pub async fn page_text(&self, url_id: i64) -> Result<Option<PageText>, StoreError> {
        let row = sqlx::query_as::<_, (Option<String>, Option<String>, Option<String>)>(
            "SELECT content_hash, text, text_kinds FROM pages WHERE url_id = ?",
        )
        .bind(url_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(content_hash, text, text_kinds)| PageText {
            content_hash,
            text,
            text_kinds,
        }))
    }

    /// A writer of summaries on a connection of its own (the summary
    /// stage writes beside the crawl's writer).
    pub async fn summary_writer(&self) -> Result<SummaryWriter, StoreError> {
        Ok(SummaryWriter {
            conn: self.connection().await?,
        })
    }
}

/// Writes summaries and parts of summaries, on its own connection.
pub struct SummaryWriter {
    conn: SqliteConnection,
}

impl SummaryWriter {
    /// Keeps a part of `hash` summarized under `key` (a part already kept
    /// stays as it is).
    pub async fn write_part(
        &mut self,
        hash: &str,
        key: &SummaryKey,
        part: &StoredPart,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO summary_parts (content_hash, backend, model, prompt_version, part_key, summary, \
             cut, prompt_tokens, completion_tokens, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(hash)
        .bind(key.backend)
        .bind(&key.model)
        .bind(&key.prompt_version)
        .bind(&part.part_key)
        .bind(&part.summary)
        .bind(part.cut)
        .bind(part.prompt_tokens as i64)
        .bind(part.completion_tokens as i64)
        .bind(now_ms())
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    /// Writes summaries under `key` in one transaction; a later result
    /// replaces an earlier one for the same content (its attempts add
    /// up). A summary that is done drops the content's kept parts.
    pub async fn write(
        &mut self,
        key: &SummaryKey,
        rows: &[SummaryResult<'_>],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.conn.begin().await?;
        for r in rows {
            let (state, summary, error) = match r.summary {
                Ok(s) => ("done", Some(s), None),
                Err(e) => ("failed", None, Some(e)),
            };
            if r.summary.is_ok() {
                sqlx::query(
                    "DELETE FROM summary_parts WHERE content_hash = ? AND backend = ? AND model = ? \
                     AND prompt_version = ?",
                )
                .bind(r.content_hash)
                .bind(key.backend)
                .bind(&key.model)
                .bind(&key.prompt_version)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO summaries (content_hash, backend, model, prompt_version, state, summary, error, \
                 prompt_tokens, completion_tokens, chunks, attempts, created_at, updated_at, truncated) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (content_hash, backend, model, prompt_version) DO UPDATE SET \
                 state = excluded.state, summary = excluded.summary, error = excluded.error, \
                 prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, \
                 chunks = excluded.chunks, attempts = summaries.attempts + excluded.attempts, \
                 updated_at = excluded.updated_at, truncated = excluded.truncated",
            )
            .bind(r.content_hash)
            .bind(key.backend)
            .bind(&key.model)
            .bind(&key.prompt_version)
            .bind(state)
            .bind(summary)
            .bind(error)
            .bind(r.prompt_tokens as i64)
            .bind(r.completion_tokens as i64)
            .bind(r.chunks as i64)
            .bind(r.attempts as i64)
            .bind(now)
            .bind(now)
            .bind(r.truncated)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Summaries are the last writes of a run: leaves no WAL behind
    /// (a failure is only logged).
    pub async fn checkpoint(&mut self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut self.conn)
            .await
        {
            tracing::debug!("final checkpoint: {e}");
        }
    }
}
