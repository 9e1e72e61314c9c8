//! The read side of summaries outside the summary stage: how far the
//! summaries are (for `status` and `trawl summarize`).
//!
//! In: an open [`Store`]. Out: counts over the summarizable pages'
//! distinct contents.
//!
//! The counts' SQL is still that of `summarize::stage` (which shares its
//! rule of a summarizable page with the stage's sweep): these methods are
//! the store's entry to it, so that callers need no pool.

use super::{Store, StoreError};
use crate::summarize::SummaryKey;
use crate::summarize::stage::KeyCounts;

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
}
