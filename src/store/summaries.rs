//! The summary stage's storage: which stored pages still need a summary
//! under a summarizer's key, the parts of split pages kept between
//! attempts, and the writes of results (on a connection of the stage's
//! own, beside the crawl's writer); how far the summaries are (`status`,
//! `trawl summarize`) and one page's text (`trawl summarize --url`).
//!
//! A summary is keyed by (content hash, backend, model, prompt version):
//! the same content at two URLs, or fetched again unchanged, is summarized
//! once.

use sqlx::Connection;

use super::{Conn, Store, StoreError};
use crate::summarize::SummaryKey;
use crate::util::now_ms;

/// The pages the stage can summarize: stored 2xx HTML pages with text, not
/// sitemaps, not `noindex`, not a refresh redirect (`p`: pages, `u`:
/// urls).
pub const SUMMARIZABLE: &str = "p.status BETWEEN 200 AND 299 AND p.noindex = FALSE \
    AND p.text IS NOT NULL AND p.text <> '' AND p.content_hash IS NOT NULL AND u.sitemap = FALSE \
    AND p.redirect_to IS NULL";

/// Which summarizable pages need a summary under the summarizer's key,
/// with its five binds numbered from `$first`: force, backend, model,
/// prompt version, retry failed.
fn needs_summary(first: usize) -> String {
    let [force, backend, model, prompt, retry] = std::array::from_fn(|i| first + i);
    format!(
        "(${force} OR NOT EXISTS (SELECT 1 FROM summaries s \
         WHERE s.content_hash = p.content_hash AND s.backend = ${backend} AND s.model = ${model} \
         AND s.prompt_version = ${prompt} AND (s.state = 'done' OR NOT ${retry})))"
    )
}

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
    /// Where the sweep goes on from: the page's place in the keyset the
    /// sweep pages by (see [`Store::pending_summaries`]).
    pub after: i64,
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
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "SELECT state FROM summaries WHERE content_hash = $1 AND backend = $2 AND model = $3 AND prompt_version = $4",
        )
        .bind(hash)
        .bind(key.backend)
        .bind(&key.model)
        .bind(&key.prompt_version)
        .fetch_optional(pool).await)?)
    }

    /// How many distinct contents a sweep under `key` will summarize.
    pub async fn pending_summary_count(
        &self,
        key: &SummaryKey,
        filter: SweepOptions,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT COUNT(DISTINCT p.content_hash) FROM pages p JOIN urls u ON u.id = p.url_id \
             WHERE {SUMMARIZABLE} AND {}",
            needs_summary(1)
        );
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar(super::dialect(PG, sql))
            .bind(filter.force)
            .bind(key.backend)
            .bind(&key.model)
            .bind(&key.prompt_version)
            .bind(filter.retry_failed)
            .fetch_one(pool).await)?;
        Ok(n.max(0) as u64)
    }

    /// Up to `limit` summarizable pages after `after` that need a summary
    /// under `key`, in the order they are stored: SQLite's rowid (pages
    /// are appended, schema v20; by URL id the sweep read them at random
    /// and took twice as long), PostgreSQL's URL id. Start from
    /// `i64::MIN`, go on from the last page's [`PendingPage::after`].
    pub async fn pending_summaries(
        &self,
        key: &SummaryKey,
        filter: SweepOptions,
        after: i64,
        limit: i64,
    ) -> Result<Vec<PendingPage>, StoreError> {
        let sql = |order: &str| {
            format!(
                "SELECT {order}, u.url, p.content_hash, p.text, p.text_kinds FROM pages p JOIN urls u ON u.id = p.url_id \
                 WHERE {order} > $1 AND {SUMMARIZABLE} AND {} ORDER BY {order} LIMIT $7",
                needs_summary(2)
            )
        };
        let rows: Vec<(i64, String, String, String, Option<String>)> = on_pool!(self, pool => sqlx::query_as(super::dialect(PG, sql(if PG { "p.url_id" } else { "p.rowid" })))
            .bind(after)
            .bind(filter.force)
            .bind(key.backend)
            .bind(&key.model)
            .bind(&key.prompt_version)
            .bind(filter.retry_failed)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(after, url, content_hash, text, kinds)| PendingPage {
                after,
                url,
                content_hash,
                text,
                kinds,
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
        let rows: Vec<(String, String, bool)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT part_key, summary, cut FROM summary_parts WHERE content_hash = $1 AND backend = $2 \
             AND model = $3 AND prompt_version = $4",
        )
        .bind(hash)
        .bind(key.backend)
        .bind(&key.model)
        .bind(&key.prompt_version)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(part_key, summary, cut)| StoredPart {
                part_key,
                summary,
                cut,
                prompt_tokens: 0,
                completion_tokens: 0,
            })
            .collect())
    }

    /// [`KeyCounts`] for `key` over the summarizable pages.
    pub async fn summary_counts_for(&self, key: &SummaryKey) -> Result<KeyCounts, StoreError> {
        let sql = format!(
            "WITH c AS (SELECT DISTINCT p.content_hash AS h FROM pages p CROSS JOIN urls u ON u.id = p.url_id WHERE {SUMMARIZABLE}) \
             SELECT COUNT(*) FILTER (WHERE s.state = 'done'), COUNT(*) FILTER (WHERE s.state = 'done' AND s.truncated), \
             COUNT(*) FILTER (WHERE s.state = 'failed'), COUNT(*) FILTER (WHERE s.state IS NULL) \
             FROM c LEFT JOIN summaries s ON s.content_hash = c.h AND s.backend = $1 AND s.model = $2 AND s.prompt_version = $3"
        );
        let (done, truncated, failed, pending) = on_pool!(self, pool => sqlx::query_as(super::dialect(PG, sql))
            .bind(key.backend)
            .bind(&key.model)
            .bind(&key.prompt_version)
            .fetch_one(pool)
            .await)?;
        Ok(KeyCounts {
            done,
            truncated,
            failed,
            pending,
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
        Ok(
            on_pool!(self, pool => sqlx::query_as(super::dialect(PG, sql))
            .fetch_one(pool)
            .await)?,
        )
    }

    /// The text of the page stored for the URL with this id (its
    /// fingerprint); `None` when no page is stored for it.
    pub async fn page_text(&self, url_id: i64) -> Result<Option<PageText>, StoreError> {
        let row = on_pool!(self, pool => sqlx::query_as::<_, (Option<String>, Option<String>, Option<String>)>(
            "SELECT content_hash, text, text_kinds FROM pages WHERE url_id = $1",
        )
        .bind(url_id)
        .fetch_optional(pool)
        .await)?;
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
    conn: Conn,
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
        on_conn!(&mut self.conn, conn => sqlx::query(
            "INSERT INTO summary_parts (content_hash, backend, model, prompt_version, part_key, summary, \
             cut, prompt_tokens, completion_tokens, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
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
        .execute(conn)
        .await
        .map(|_| ()))?;
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
        on_conn!(&mut self.conn, conn => {
        let mut tx = conn.begin().await?;
        for r in rows {
            let (state, summary, error) = match r.summary {
                Ok(s) => ("done", Some(s), None),
                Err(e) => ("failed", None, Some(e)),
            };
            if r.summary.is_ok() {
                sqlx::query(
                    "DELETE FROM summary_parts WHERE content_hash = $1 AND backend = $2 AND model = $3 \
                     AND prompt_version = $4",
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
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
        });
        Ok(())
    }

    /// Summaries are the last writes of a run: leaves no WAL behind
    /// (a failure is only logged).
    pub async fn checkpoint(&mut self) {
        let Conn::Sqlite(conn) = &mut self.conn else {
            return;
        };
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(conn)
            .await
        {
            tracing::debug!("final checkpoint: {e}");
        }
    }
}
