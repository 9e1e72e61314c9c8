//! The read side of `trawl status` (and of the report's copy of its
//! numbers): counts over the whole crawl.
//!
//! In: an open [`Store`] (read-only beside a running crawl is fine). Out:
//! counts, as plain values or short lists of `(key, count)`.
//!
//! Every query aggregates in the database: memory does not grow with the crawl.
//! Joins of `pages` and `urls` are written `pages p CROSS JOIN urls u` so
//! that SQLite reads the pages and looks their URLs up: without
//! statistics it may drive the join from `urls` and scan every URL of a
//! crawl to count a few thousand pages. Sitemaps are left out of the page
//! counts.

use super::{Store, StoreError};

/// A summarizer that has stored any summary (done or failed), as the
/// `summaries` table keys it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSummarizer {
    /// `extractive` or `llm`.
    pub backend: String,
    /// The LLM's model, or the extractive method.
    pub model: String,
    /// A hash of the prompt (or of the extractive settings).
    pub prompt_version: String,
}

impl Store {
    /// Stored pages (sitemaps left out) by the HTTP status of their latest
    /// answer, as `(status, pages)` with the status as text (`"200"`),
    /// unordered. A page a recrawl found gone keeps its last version, but
    /// counts under the 404 or 410 its URL failed with.
    pub async fn http_status_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            super::dialect(PG, "SELECT CASE WHEN c.removed_run IS NOT NULL AND u.reason LIKE 'http\\_%' ESCAPE '\\' \
             THEN substr(u.reason, 6) ELSE CAST(p.status AS TEXT) END AS answer, COUNT(*) \
             FROM pages p CROSS JOIN urls u ON u.id = p.url_id LEFT JOIN page_checks c ON c.url_id = p.url_id \
             WHERE u.sitemap = FALSE GROUP BY answer"),
        )
        .fetch_all(pool).await)?)
    }

    /// Stored pages (sitemaps left out) as `(truncated, binary)`:
    /// truncated, those stored in part (`pages.truncated`); binary, 2xx
    /// pages served as HTML (or XHTML) that have no text, their body being
    /// binary.
    pub async fn truncated_and_binary_pages(&self) -> Result<(i64, i64), StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            super::dialect(PG, "SELECT COUNT(*) FILTER (WHERE p.truncated), COUNT(*) FILTER (WHERE p.text IS NULL \
             AND p.status BETWEEN 200 AND 299 \
             AND (lower(p.content_type) LIKE 'text/html%' OR lower(p.content_type) LIKE 'application/xhtml+xml%')) \
             FROM pages p CROSS JOIN urls u ON u.id = p.url_id WHERE u.sitemap = FALSE"),
        )
        .fetch_one(pool).await)?)
    }

    /// The ten origins (`scheme://host:port`) with the most stored pages
    /// (sitemaps left out), as `(origin, pages)`, most first, then by
    /// origin.
    pub async fn top_hosts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            super::dialect(PG, "SELECT u.origin, COUNT(*) AS n FROM pages p CROSS JOIN urls u ON u.id = p.url_id WHERE u.sitemap = FALSE \
             GROUP BY u.origin ORDER BY n DESC, u.origin LIMIT 10"),
        )
        .fetch_all(pool)
        .await)?)
    }

    /// Tokens the summaries used, summed over every stored summary (done
    /// or failed): `(prompt, completion)`, as the LLM reported them (0 for
    /// extractive summaries).
    pub async fn summary_tokens(&self) -> Result<(i64, i64), StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT), \
             CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) FROM summaries",
        )
        .fetch_one(pool)
        .await)?)
    }

    /// Every summarizer with a stored summary, by backend, model and
    /// prompt version.
    pub async fn stored_summarizers(&self) -> Result<Vec<StoredSummarizer>, StoreError> {
        let keys: Vec<(String, String, String)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT DISTINCT backend, model, prompt_version FROM summaries ORDER BY backend, model, prompt_version",
        )
        .fetch_all(pool).await)?;
        Ok(keys
            .into_iter()
            .map(|(backend, model, prompt_version)| StoredSummarizer {
                backend,
                model,
                prompt_version,
            })
            .collect())
    }

    /// Failed summaries by their error, as `(error, summaries)` with an
    /// empty error for none, unordered. The error is the whole stored
    /// text: grouping it into kinds is the caller's.
    pub async fn summary_errors(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT COALESCE(error, ''), COUNT(*) FROM summaries WHERE state = 'failed' GROUP BY error",
        )
        .fetch_all(pool).await)?)
    }

    /// Origins whose robots.txt had rules for trawl that could not be used
    /// (left out), as `(origin, rules)`, most rules first, then by origin.
    pub async fn unusable_robots_rules(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT origin, robots_unusable_rules FROM hosts WHERE robots_unusable_rules > 0 \
             ORDER BY robots_unusable_rules DESC, origin",
        )
        .fetch_all(pool)
        .await)?)
    }
}
