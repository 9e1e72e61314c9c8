//! Runs and recrawls in the database.
//!
//! In: a crawl's runs starting and ending, a recrawl's choice of pages to
//! revisit. Out: run ids, the frontier set up for a recrawl, and what each
//! run found ([`RunSummary`], [`ChangeRow`]) for `status` and `export`.

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, StoreError};

/// What kind of run of a crawl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// The first run (`trawl crawl`).
    Crawl,
    /// A continuation (`trawl resume`).
    Resume,
    /// A revisit of stored pages (`trawl recrawl`).
    Recrawl,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crawl => "crawl",
            Self::Resume => "resume",
            Self::Recrawl => "recrawl",
        }
    }
}

/// One run, with what it found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RunSummary {
    pub id: i64,
    pub kind: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// Stored pages asked for again that answered (unchanged, changed or
    /// removed).
    pub checked: i64,
    pub unchanged: i64,
    pub changed: i64,
    pub new: i64,
    pub removed: i64,
    /// Body bytes downloaded (written when the run ends).
    pub bytes: i64,
}

/// A page a run found new, changed, removed (or unchanged), with its
/// previous and current versions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeRow {
    pub run_id: i64,
    pub url: String,
    pub change: String,
    pub previous_title: Option<String>,
    pub title: Option<String>,
    pub previous_hash: Option<String>,
    pub content_hash: Option<String>,
    pub previous_fetched_at: Option<i64>,
    pub fetched_at: Option<i64>,
    pub previous_text: Option<String>,
    pub text: Option<String>,
    pub summary: Option<String>,
    /// A changed page's links not there before, by URL.
    pub links_added: Vec<String>,
    /// A changed page's links no longer there, by URL.
    pub links_gone: Vec<String>,
}

impl Store {
    /// Records the start of a run of crawl `crawl_id` and makes it the
    /// crawl's current run. A recrawl's changes are recorded under its
    /// own id; a resume's under the run it continues (`changes_run`,
    /// unchanged); a first crawl records none.
    pub async fn begin_run(
        &self,
        crawl_id: i64,
        kind: RunKind,
        now: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        on_pool!(self, pool => {
        let mut tx = pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO runs (crawl_id, kind, started_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(crawl_id)
        .bind(kind.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if kind == RunKind::Recrawl {
            sqlx::query("UPDATE crawls SET changes_run = $1 WHERE id = $2")
                .bind(id)
                .bind(crawl_id)
                .execute(&mut *tx)
                .await?;
        }
        let changes_run: Option<i64> =
            sqlx::query_scalar("SELECT changes_run FROM crawls WHERE id = $1")
                .bind(crawl_id)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok((id, changes_run))
        })
    }

    /// Records the end of a run and what it downloaded.
    pub async fn finish_run(&self, run_id: i64, bytes: u64, now: i64) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE runs SET finished_at = $1, bytes = bytes + $2 WHERE id = $3")
            .bind(now)
            .bind(bytes as i64)
            .bind(run_id)
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Makes a page's links quick to find, which a recrawl needs to
    /// replace the links of the pages whose links changed. A crawl never
    /// looks them up, so the index is only built (once) when a database is
    /// recrawled, and it does not slow every link a crawl inserts. On
    /// PostgreSQL it is built here, before a recrawl starts (while it holds
    /// the crawl alone); on SQLite this does nothing: the writer builds it
    /// the first time a recrawl meets a page whose links changed, so a
    /// recrawl whose pages kept their links never pays for it.
    pub async fn index_links_by_page(&self) -> Result<(), StoreError> {
        if let super::Pools::Postgres(pool) = self.pools() {
            sqlx::query("CREATE INDEX IF NOT EXISTS links_from ON links (from_id)")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Puts the stored URLs a recrawl revisits back in the frontier:
    /// fetched pages (`done`) and `failed` URLs, sitemaps too, or with
    /// `due_at` only those whose next revisit is due by then (a URL never
    /// revisited is due). Returns how many were queued. Each keeps its
    /// state and reason in `revisit_state`/`revisit_reason`, for a page
    /// budget that leaves it unvisited (see `WriteOp::SkipPending`), and
    /// its `updated_at`: only a revisit made counts in the run
    /// (`Store::last_run` counts the URLs settled since the run began).
    pub async fn queue_revisits(&self, due_at: Option<i64>) -> Result<u64, StoreError> {
        let due = due_at.unwrap_or(i64::MAX);
        let n = on_pool!(self, pool => sqlx::query(
            "UPDATE urls SET revisit_state = state, revisit_reason = reason, state = 'queued', reason = NULL \
             WHERE state IN ('done', 'failed') AND id NOT IN \
             (SELECT url_id FROM page_checks WHERE due_at IS NOT NULL AND due_at > $1)",
        )
        .bind(due)
        .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n)
    }

    /// Every run of the crawl, oldest first, with what it found.
    pub async fn runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        on_pool!(self, pool => {
        let rows = sqlx::query(
            "SELECT r.id, r.kind, r.started_at, r.finished_at, r.bytes, \
             COUNT(c.url_id) FILTER (WHERE c.change = 'unchanged') AS unchanged, \
             COUNT(c.url_id) FILTER (WHERE c.change = 'changed') AS changed, \
             COUNT(c.url_id) FILTER (WHERE c.change = 'new') AS new, \
             COUNT(c.url_id) FILTER (WHERE c.change = 'removed') AS removed \
             FROM runs r LEFT JOIN page_changes c ON c.run_id = r.id \
             GROUP BY r.id, r.kind, r.started_at, r.finished_at, r.bytes ORDER BY r.id",
        )
        .fetch_all(pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let (unchanged, changed, removed): (i64, i64, i64) =
                    (r.get("unchanged"), r.get("changed"), r.get("removed"));
                RunSummary {
                    id: r.get("id"),
                    kind: r.get("kind"),
                    started_at: r.get("started_at"),
                    finished_at: r.get("finished_at"),
                    checked: unchanged + changed + removed,
                    unchanged,
                    changed,
                    new: r.get("new"),
                    removed,
                    bytes: r.get("bytes"),
                }
            })
            .collect())
        })
    }

    /// The latest recrawl's id, if any.
    pub async fn latest_recrawl(&self) -> Result<Option<i64>, StoreError> {
        Ok(
            on_pool!(self, pool => sqlx::query_scalar("SELECT MAX(id) FROM runs WHERE kind = 'recrawl'")
                .fetch_one(pool).await)?,
        )
    }

    /// The ids of the runs started at or after `since` (epoch ms).
    pub async fn runs_since(&self, since: i64) -> Result<Vec<i64>, StoreError> {
        Ok(
            on_pool!(self, pool => sqlx::query_scalar("SELECT id FROM runs WHERE started_at >= $1 ORDER BY id")
                .bind(since)
                .fetch_all(pool).await)?,
        )
    }

    /// The pages `run_id` found new, changed or removed (and unchanged,
    /// with `unchanged`), by URL. The previous version is the one the run
    /// replaced; for an unchanged or removed page it is the stored one.
    /// The summary shown is the current content's (the first by
    /// summarizer, model and prompt version when there are several).
    pub async fn changes(
        &self,
        run_id: i64,
        unchanged: bool,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        on_pool!(self, pool => {
        let rows = sqlx::query(
            "SELECT c.run_id, c.url_id, u.url, c.change, v.title AS prev_title, v.content_hash AS prev_hash, \
             v.fetched_at AS prev_fetched, v.text AS prev_text, p.title, p.content_hash, p.fetched_at, p.text, \
             (SELECT s.summary FROM summaries s WHERE s.content_hash = p.content_hash AND s.state = 'done' \
              ORDER BY s.backend, s.model, s.prompt_version LIMIT 1) AS summary \
             FROM page_changes c JOIN urls u ON u.id = c.url_id \
             LEFT JOIN pages p ON p.url_id = c.url_id \
             LEFT JOIN page_versions v ON v.url_id = c.url_id AND v.run_id = c.run_id \
             WHERE c.run_id = $1 AND ($2 OR c.change != 'unchanged') ORDER BY u.url",
        )
        .bind(run_id)
        .bind(unchanged)
        .fetch_all(pool)
        .await?;
        let mut links: HashMap<i64, (Vec<String>, Vec<String>)> = HashMap::new();
        let link_rows = sqlx::query(
            "SELECT l.from_id, u.url, l.change FROM link_changes l JOIN urls u ON u.id = l.to_id \
             WHERE l.run_id = $1 ORDER BY l.from_id, u.url",
        )
        .bind(run_id)
        .fetch_all(pool)
        .await?;
        for r in &link_rows {
            let (added, gone) = links.entry(r.get("from_id")).or_default();
            let url: String = r.get("url");
            if r.get::<String, _>("change") == "added" {
                added.push(url);
            } else {
                gone.push(url);
            }
        }
        Ok(rows
            .iter()
            .map(|r| {
                let (links_added, links_gone) =
                    links.remove(&r.get::<i64, _>("url_id")).unwrap_or_default();
                let change: String = r.get("change");
                let changed = change == "changed";
                // Only a changed page has a previous version apart from
                // the stored one.
                ChangeRow {
                    run_id: r.get("run_id"),
                    url: r.get("url"),
                    previous_title: if changed { r.get("prev_title") } else { None },
                    previous_hash: if changed { r.get("prev_hash") } else { None },
                    previous_fetched_at: if changed { r.get("prev_fetched") } else { None },
                    previous_text: if changed { r.get("prev_text") } else { None },
                    title: r.get("title"),
                    content_hash: r.get("content_hash"),
                    fetched_at: r.get("fetched_at"),
                    text: r.get("text"),
                    summary: r.get("summary"),
                    links_added,
                    links_gone,
                    change,
                }
            })
            .collect())
        })
    }
}
