//! `trawl extract`: fields applied to the pages a crawl stored, without
//! fetching them again.
//!
//! In: an open [`Store`] (held for writing: a running crawl holds the
//! database's lock, so this refuses to start beside one rather than race
//! its writer) and the fields. Out: the fields of every page whose body
//! was kept, replacing stored fields of the same names, and the fields
//! added to the crawl's settings so a `resume` or `recrawl` extracts them
//! too; a [`StoredReport`].
//!
//! Kept bodies are read in batches by URL id, decompressed, decoded as the
//! crawl decoded them (`parse::decode_from`, the same inputs) and read on
//! the blocking pool, one task per core; each batch's fields are written in
//! one transaction, so a run that is stopped leaves whole batches, and
//! running it again gives the same rows.

use std::sync::Arc;

use super::{FieldSpec, Fields};
use crate::config::CrawlConfig;
use crate::store::fields::{FieldRow, KeptPage, unpack};
use crate::store::{Store, StoreError};

/// Kept pages read per batch, at most.
const BATCH_ROWS: usize = 256;
/// Compressed bytes read per batch, at most (past the first page).
const BATCH_BYTES: usize = 32 << 20;

/// Why `trawl extract` could not run.
#[derive(Debug, thiserror::Error)]
pub enum StoredError {
    #[error("{path} holds no crawl; start one with `trawl crawl`")]
    NoCrawl { path: String },
    #[error(
        "the crawl in {path} kept no HTML, so there is nothing to apply selectors to; \
         crawl with --keep-html (or --extract) to keep each page's HTML"
    )]
    NoKeptHtml { path: String },
    #[error("the crawl's stored configuration cannot be read: {0}")]
    BadStoredConfig(String),
    #[error("{0}")]
    Fields(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StoredError {
    /// Whether the command was used wrongly (exit 2) rather than failing.
    pub fn is_usage(&self) -> bool {
        !matches!(self, StoredError::Store(_))
    }
}

/// What `trawl extract` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoredReport {
    /// Kept pages the fields were applied to.
    pub pages: u64,
    /// Of those, pages where at least one field matched.
    pub matched: u64,
    /// Pages read as HTML whose body was not kept (stored by a crawl
    /// that did not keep HTML, or before this schema): their fields of
    /// these names are not changed.
    pub without_body: i64,
    /// Kept bodies that could not be decompressed (a damaged row): skipped.
    pub unreadable: u64,
}

/// Applies `specs` to every kept page of the crawl in `store` (see the
/// module's notes).
pub async fn apply(store: &Store, specs: &[FieldSpec]) -> Result<StoredReport, StoredError> {
    let path = store.target().to_string();
    let Some(row) = store.crawl().await? else {
        return Err(StoredError::NoCrawl { path });
    };
    let mut cfg: CrawlConfig = serde_json::from_str(&row.config)
        .map_err(|e| StoredError::BadStoredConfig(e.to_string()))?;
    if !cfg.extract.keep_html {
        return Err(StoredError::NoKeptHtml { path });
    }
    let fields = Arc::new(Fields::new(specs).map_err(StoredError::Fields)?);
    let names: Vec<String> = fields.names().map(str::to_string).collect();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut report = StoredReport::default();
    let mut after = None;
    loop {
        let batch = store
            .kept_html_after(after, BATCH_ROWS, BATCH_BYTES)
            .await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.url_id);
        let found = extract_batch(&fields, batch, cores).await;
        let mut pages = Vec::with_capacity(found.len());
        for (id, rows) in found {
            match rows {
                Some(rows) => {
                    report.pages += 1;
                    report.matched += u64::from(!rows.is_empty());
                    pages.push((id, rows));
                }
                None => report.unreadable += 1,
            }
        }
        store.replace_fields(&names, &pages).await?;
    }
    report.without_body = store.html_pages_without_body().await?;
    super::merge(&mut cfg.extract.fields, specs);
    let json =
        serde_json::to_string(&cfg).map_err(|e| StoredError::BadStoredConfig(e.to_string()))?;
    store.set_crawl_config(row.id, &json).await?;
    Ok(report)
}

/// The fields of each page of `batch` (`None`: its body could not be
/// unpacked), on the blocking pool in `tasks` parts.
async fn extract_batch(
    fields: &Arc<Fields>,
    batch: Vec<KeptPage>,
    tasks: usize,
) -> Vec<(i64, Option<Vec<FieldRow>>)> {
    let per = batch.len().div_ceil(tasks.max(1)).max(1);
    let mut parts = Vec::new();
    let mut rest = batch;
    while !rest.is_empty() {
        let tail = rest.split_off(per.min(rest.len()));
        parts.push(std::mem::replace(&mut rest, tail));
    }
    let handles: Vec<_> = parts
        .into_iter()
        .map(|part| {
            let fields = fields.clone();
            let ids: Vec<i64> = part.iter().map(|p| p.url_id).collect();
            let task = tokio::task::spawn_blocking(move || {
                part.into_iter()
                    .map(|p| (p.url_id, page_fields(&fields, &p)))
                    .collect::<Vec<_>>()
            });
            (ids, task)
        })
        .collect();
    let mut out = Vec::new();
    for (ids, task) in handles {
        match task.await {
            Ok(rows) => out.extend(rows),
            // A panic in the tree builder or matching: the part's pages
            // are left as they were, like bodies that cannot be read.
            Err(e) => {
                tracing::warn!("extracting {} pages failed: {e}", ids.len());
                out.extend(ids.into_iter().map(|id| (id, None)));
            }
        }
    }
    out
}

/// One kept page's fields, decoded as the crawl decoded it.
fn page_fields(fields: &Fields, page: &KeptPage) -> Option<Vec<FieldRow>> {
    let body = match unpack(&page.packed, page.size) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("{}: the kept body cannot be read: {e}", page.url);
            return None;
        }
    };
    let host = url::Url::parse(&page.url).ok();
    let (html, _) = crate::parse::decode_from(
        &body,
        page.content_type.as_deref(),
        host.as_ref().and_then(|u| u.host_str()),
    );
    Some(FieldRow::of(&fields.extract(&html)))
}
