//! The read side of summaries outside the summary stage: how far the
//! summaries are (for `status` and `trawl summarize`), and one page to
//! summarize (`trawl summarize --url`).
//!
//! In: an open [`Store`]. Out: counts over the summarizable pages'
//! distinct contents, a page's text.
//!
//! The counts' SQL is still that of `summarize::stage` (which shares its
//! rule of a summarizable page with the stage's sweep): these methods are
//! the store's entry to it, so that callers need no pool.

use super::{Store, StoreError};
use crate::summarize::SummaryKey;
use crate::summarize::stage::KeyCounts;

/// A stored page's text, as a summarizer takes it.
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

impl Store {
    /// Summary counts over the summarizable pages' distinct contents, for
    /// any summarizer: `(done, failed, pending)`, a content counting as
    /// done when any summarizer made its summary, failed when none did
    /// but one failed, pending when none has tried.
    pub async fn summary_counts(&self) -> Result<(i64, i64, i64), StoreError> {
        crate::summarize::stage::counts(&self.pool).await
    }

    /// Summary counts of one summarizer (`key`) over the summarizable
    /// pages' distinct contents.
    pub async fn summary_counts_for(&self, key: &SummaryKey) -> Result<KeyCounts, StoreError> {
        crate::summarize::stage::counts_for(&self.pool, key).await
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
}
