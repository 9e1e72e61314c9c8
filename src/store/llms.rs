//! The read side of `export --format llms-txt` and `llms-full`: the pages
//! a site's `llms.txt` lists, and each site's home page.
//!
//! In: the store. Out: [`ListedPage`]s in a stable order (origin, then
//! section, then URL), streamed; per origin, how many pages are listed and
//! how many of them have no Markdown; a site's [`Home`].
//!
//! A page is listed when it is stored with a 2xx status, was read as HTML
//! (it has text), is not marked `noindex`, is not a sitemap and was not
//! found gone by a recrawl: the rule is written here once.

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use sqlx::Row;

use super::{Store, StoreError};

/// A page as [`Store::home`] reads it: status, final URL, title,
/// description, summary.
type HomeRow = (i64, String, Option<String>, Option<String>, Option<String>);

/// The conditions on `pages p JOIN urls u` of a listed page.
const LISTED: &str = "u.sitemap = FALSE AND p.status BETWEEN 200 AND 299 AND p.text IS NOT NULL \
     AND p.noindex = FALSE AND NOT EXISTS \
     (SELECT 1 FROM page_checks c WHERE c.url_id = p.url_id AND c.removed_run IS NOT NULL)";

/// The section of a URL: its first path segment with its slashes
/// (`/docs/` for `/docs/a/b.html`), or `/` for a page at the root. The
/// path starts at the first `/` after the scheme's `//` (position 9 is
/// past `https://`); a query is cut off first.
const SECTION: &str = "CASE WHEN instr(substr(path, 2), '/') > 0 \
     THEN substr(path, 1, instr(substr(path, 2), '/') + 1) ELSE '/' END";

/// A page as `llms.txt` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPage {
    /// `scheme://host:port`, as `status` prints origins.
    pub origin: String,
    pub url: String,
    /// `/` or the first path segment with its slashes (`/docs/`).
    pub section: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// A done summary of the page's content (the first by summarizer,
    /// model and prompt version, when it has several).
    pub summary: Option<String>,
    /// Only when asked for; `None` also for a page stored before schema
    /// v13.
    pub markdown: Option<String>,
}

/// How many pages of an origin are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOrigin {
    pub origin: String,
    pub pages: i64,
    /// Of those, the pages stored without Markdown (before schema v13).
    pub without_markdown: i64,
}

/// What a site's home page says about the site.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Home {
    pub title: Option<String>,
    pub description: Option<String>,
    pub summary: Option<String>,
}

impl Store {
    /// The origins with listed pages, in order, with their counts.
    pub async fn listed_origins(&self) -> Result<Vec<ListedOrigin>, StoreError> {
        let sql = format!(
            "SELECT u.origin, COUNT(*) AS n, COUNT(*) FILTER (WHERE p.markdown IS NULL) AS bare \
             FROM pages p JOIN urls u ON u.id = p.url_id WHERE {LISTED} \
             GROUP BY u.origin ORDER BY u.origin"
        );
        let rows: Vec<(String, i64, i64)> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(origin, pages, without_markdown)| ListedOrigin {
                origin,
                pages,
                without_markdown,
            })
            .collect())
    }

    /// Every listed page, by origin, section and URL; with its Markdown
    /// when `markdown` is set. Streamed: memory stays flat however many
    /// pages there are.
    pub fn listed_pages(&self, markdown: bool) -> BoxStream<'_, Result<ListedPage, StoreError>> {
        let sql = format!(
            "WITH l AS (SELECT u.origin, u.url, p.title, p.description, p.content_hash, \
             CASE WHEN $1 THEN p.markdown END AS markdown, \
             CASE WHEN instr(u.url, '?') > 0 \
                  THEN substr(substr(u.url, 1, instr(u.url, '?') - 1), instr(substr(u.url, 9), '/') + 8) \
                  ELSE substr(u.url, instr(substr(u.url, 9), '/') + 8) END AS path \
             FROM pages p JOIN urls u ON u.id = p.url_id WHERE {LISTED}) \
             SELECT origin, url, title, description, markdown, {SECTION} AS section, \
             (SELECT s.summary FROM summaries s WHERE s.content_hash = l.content_hash \
              AND s.state = 'done' ORDER BY s.backend, s.model, s.prompt_version LIMIT 1) AS summary \
             FROM l ORDER BY origin, section, url"
        );
        // PostgreSQL's name for SQLite's instr().
        let sql = if self.is_postgres() {
            sql.replace("instr(", "strpos(")
        } else {
            sql
        };
        on_pool!(self, pool => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(markdown)
            .fetch(pool)
            .map_err(StoreError::from)
            .map(|r| {
                r.map(|r| ListedPage {
                    origin: r.get("origin"),
                    url: r.get("url"),
                    section: r.get("section"),
                    title: r.get("title"),
                    description: r.get("description"),
                    summary: r.get("summary"),
                    markdown: r.get("markdown"),
                })
            })
            .boxed())
    }

    /// What the page at `url_id` says of its site, following its
    /// redirect (`/` → `/en/`) to the page it ended at; `None` when it is
    /// not stored.
    pub async fn home(&self, url_id: i64) -> Result<Option<Home>, StoreError> {
        match self.home_page(url_id).await? {
            Some(Err(end)) => Ok(self.home_page(end).await?.and_then(Result::ok)),
            Some(Ok(home)) => Ok(Some(home)),
            None => Ok(None),
        }
    }

    /// The page at `url_id` as a [`Home`], or the id of the page a
    /// redirect ended at.
    async fn home_page(&self, url_id: i64) -> Result<Option<Result<Home, i64>>, StoreError> {
        let row: Option<HomeRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT p.status, p.final_url, p.title, p.description, \
             (SELECT s.summary FROM summaries s WHERE s.content_hash = p.content_hash \
              AND s.state = 'done' ORDER BY s.backend, s.model, s.prompt_version LIMIT 1) AS summary \
             FROM pages p WHERE p.url_id = $1",
        )
        .bind(url_id)
        .fetch_optional(pool)
        .await)?;
        let Some((status, final_url, title, description, summary)) = row else {
            return Ok(None);
        };
        if (300..400).contains(&status) {
            let end = url::Url::parse(&final_url).ok();
            return Ok(end.map(|end| Err(crate::canon::fingerprint(&end) as i64)));
        }
        Ok(Some(Ok(Home {
            title,
            description,
            summary,
        })))
    }
}
