//! The read side of `trawl report`: aggregates over the whole crawl.
//!
//! In: an open [`Store`] (read-only beside a running crawl is fine) and a
//! cap on every list. Out: counts and short lists, each list with the
//! total it was cut from, so a report can say "and N more".
//!
//! Every query aggregates in SQLite or stops at its cap: memory does not
//! grow with the crawl. Joins of `pages` and `urls` are written `pages p
//! CROSS JOIN urls u` so that SQLite reads the pages and looks their URLs
//! up: without statistics it may choose the other order and scan every
//! URL (a million, where a few thousand pages were fetched). A query that needs every row (a histogram, the
//! hosts) is one scan of a table; the few that look for link edges scan
//! `links` once (it has no index on `to_id`), and only when there is
//! something to look for. Sitemaps are left out everywhere, as in
//! `status`.

use futures_util::TryStreamExt;
use sqlx::{QueryBuilder, Row};

use super::{Store, StoreError};

/// A list cut at a cap, and how many rows there were in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Capped<T> {
    pub rows: Vec<T>,
    /// Rows before the cut (at least `rows.len()`).
    pub total: i64,
}

impl<T> Default for Capped<T> {
    fn default() -> Self {
        Capped {
            rows: Vec::new(),
            total: 0,
        }
    }
}

impl<T> Capped<T> {
    /// Rows left out by the cap.
    pub fn more(&self) -> i64 {
        (self.total - self.rows.len() as i64).max(0)
    }
}

/// Page URLs by depth and state; depths at or past a cap are one row.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthRow {
    /// Link distance from a seed (0 for seeds), or the cap for every
    /// depth at or past it.
    pub depth: i64,
    /// `queued`, `leased`, `done`, `failed` or `skipped`.
    pub state: String,
    pub urls: i64,
}

/// Stored pages of one media type.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentTypeRow {
    /// The `Content-Type` without parameters, lower-cased; empty when the
    /// response had none.
    pub mime: String,
    pub pages: i64,
    /// Body bytes read (after decompression), summed.
    pub bytes: i64,
    /// The largest body, in bytes.
    pub largest: i64,
}

/// One stored page, briefly.
#[derive(Debug, Clone, PartialEq)]
pub struct PageBrief {
    pub url: String,
    pub status: i64,
    /// Time of the request, from sending it to the end of the body, in
    /// milliseconds.
    pub fetch_ms: i64,
    /// Body bytes read (after decompression).
    pub size: i64,
    pub content_type: Option<String>,
    pub title: Option<String>,
}

/// What a host's stored robots.txt answer says (the `hosts` table).
#[derive(Debug, Clone, PartialEq)]
pub struct RobotsRow {
    /// Final HTTP status after redirects; `None` when there was no answer.
    pub status: Option<i64>,
    /// Why robots.txt was unavailable, when it was.
    pub error: Option<String>,
    /// When it was fetched, epoch milliseconds.
    pub fetched_at: i64,
    /// The Crawl-delay of trawl's group as the file says it, milliseconds
    /// (the crawl honours at most `--max-crawl-delay`).
    pub crawl_delay_ms: Option<i64>,
    /// Rules of trawl's group that could not be used (left out).
    pub unusable_rules: i64,
}

/// One host (origin: scheme, host and port) of the crawl.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    pub origin: String,
    /// Pages stored (any status).
    pub pages: i64,
    /// URLs whose fetch failed.
    pub failed: i64,
    /// URLs not fetched (any reason).
    pub skipped: i64,
    /// URLs waiting (queued or leased).
    pub queued: i64,
    /// Mean time of a stored page's request, milliseconds.
    pub mean_fetch_ms: Option<f64>,
    /// Attempts beyond the first of the URLs fetched: each is a retry
    /// after a transient failure (or a revisit by a recrawl, which counts
    /// as an attempt too).
    pub extra_attempts: i64,
    /// `None`: no robots.txt answer is stored (not asked yet, or robots
    /// ignored).
    pub robots: Option<RobotsRow>,
}

/// A page that links to a broken target.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkFrom {
    pub url: String,
    pub anchor: Option<String>,
}

/// A link target whose fetch failed, and the pages that link to it.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokenTarget {
    pub url: String,
    /// The failure reason (`http_404`, `timeout`, `dns`…).
    pub reason: Option<String>,
    /// The HTTP status, when there was an answer.
    pub status: Option<i64>,
    /// Pages linking to it.
    pub linked_from: i64,
    /// Some of them (at most the examples asked for).
    pub from: Vec<LinkFrom>,
}

/// Link edges whose target failed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BrokenLinks {
    /// Targets, most linked first.
    pub targets: Capped<BrokenTarget>,
    /// Link edges to a failed target, in all.
    pub links: i64,
}

/// A URL as the crawl left it, with its stored answer if any: one hop
/// of a redirect chain.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlFate {
    pub url: String,
    pub state: String,
    pub reason: Option<String>,
    pub status: Option<i64>,
    /// Where it redirects (a 3xx `Location`, or a refresh), resolved.
    pub redirect_to: Option<String>,
}

/// The first hop of a redirect chain (a URL reached by a link, a seed or
/// a sitemap, not by another redirect).
#[derive(Debug, Clone, PartialEq)]
pub struct RedirectStart {
    pub id: i64,
    pub url: String,
    pub status: i64,
    pub redirect_to: String,
}

/// One body (by SHA-256) stored at several URLs.
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateGroup {
    pub content_hash: String,
    /// URLs serving it.
    pub pages: i64,
    /// Its size, bytes.
    pub size: i64,
    /// Some of the URLs with their titles, by URL.
    pub urls: Vec<(String, Option<String>)>,
}

/// Bodies stored at more than one URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Duplicates {
    /// Groups, largest first.
    pub groups: Capped<DuplicateGroup>,
    /// Pages in all the groups.
    pub pages: i64,
}

/// A summary to show as an example.
#[derive(Debug, Clone, PartialEq)]
pub struct SummarySample {
    pub url: String,
    pub title: Option<String>,
    pub backend: String,
    pub model: String,
    pub summary: String,
}

/// A stored page whose robots directives may say `noindex` or
/// `nofollow`.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectiveRow {
    pub url: String,
    /// As decided when the page was stored.
    pub noindex: bool,
    /// `<meta name="robots" content>`.
    pub meta_robots: Option<String>,
    /// Every `X-Robots-Tag` header, joined.
    pub x_robots_tag: Option<String>,
}

/// A URL as [`Store::url_fate`] reads it: URL, state, reason, status,
/// redirect target.
type FateRow = (String, String, Option<String>, Option<i64>, Option<String>);

/// Page URLs (not sitemaps) fetched: stored, or failed.
const FETCHED: &str = "u.sitemap = FALSE AND u.state IN ('done', 'failed')";

impl Store {
    /// Page URLs fetched (stored or failed) at or after `from` (epoch
    /// ms), counted in buckets of `width_ms`: `(bucket, fetches)` with
    /// bucket `k` covering `[from + k·width, from + (k+1)·width)`. A
    /// fetch's time is when its state was committed, as for
    /// [`Store::last_run`], so the buckets of the current run add up to
    /// its `fetched`. One scan of `urls`.
    pub async fn fetches_by_time(
        &self,
        from: i64,
        width_ms: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let width = width_ms.max(1);
        let sql = format!(
            "SELECT (u.updated_at - $1) / $2 AS b, COUNT(*) FROM urls u \
             WHERE {FETCHED} AND u.updated_at >= $1 GROUP BY b ORDER BY b"
        );
        Ok(
            on_pool!(self, pool => sqlx::query_as(super::dialect(PG, sql))
            .bind(from)
            .bind(width)
            .fetch_all(pool).await)?,
        )
    }

    /// Page URLs by depth and state, shallowest first; every depth at or
    /// past `cap` counts as `cap`.
    pub async fn urls_by_depth(&self, cap: i64) -> Result<Vec<DepthRow>, StoreError> {
        let rows: Vec<(i64, String, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT CASE WHEN depth < $1 THEN depth ELSE $1 END AS d, state, COUNT(*) AS n FROM urls \
             WHERE sitemap = FALSE GROUP BY d, state ORDER BY d, state",
        )
        .bind(cap)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(depth, state, urls)| DepthRow { depth, state, urls })
            .collect())
    }

    /// Stored pages by media type, most pages first, at most `limit`.
    pub async fn content_types(&self, limit: usize) -> Result<Capped<ContentTypeRow>, StoreError> {
        let sql = format!(
            "SELECT t, n, bytes, largest, COUNT(*) OVER () AS kinds FROM ( \
               SELECT lower(trim(substr(COALESCE(p.content_type, ''), 1, \
                 {}(COALESCE(p.content_type, '') || ';', ';') - 1))) AS t, \
                 COUNT(*) AS n, CAST(SUM(p.size) AS BIGINT) AS bytes, MAX(p.size) AS largest \
               FROM pages p CROSS JOIN urls u ON u.id = p.url_id WHERE u.sitemap = FALSE GROUP BY t) AS k \
             ORDER BY n DESC, t LIMIT $1",
            if self.is_postgres() {
                "strpos"
            } else {
                "instr"
            }
        );
        let rows: Vec<(String, i64, i64, i64, i64)> = on_pool!(self, pool => sqlx::query_as(super::dialect(PG, sql))
            .bind(limit as i64)
            .fetch_all(pool)
            .await)?;
        Ok(Capped {
            total: rows.first().map_or(0, |r| r.4),
            rows: rows
                .into_iter()
                .map(|(mime, pages, bytes, largest, _)| ContentTypeRow {
                    mime,
                    pages,
                    bytes,
                    largest,
                })
                .collect(),
        })
    }

    /// Stored pages by body size: `counts[i]` is the number of pages with
    /// `edges[i-1] <= size < edges[i]` (no lower bound for the first, no
    /// upper bound for the last, so there are `edges.len() + 1`), and the
    /// body bytes of all of them.
    pub async fn size_histogram(&self, edges: &[i64]) -> Result<(Vec<i64>, i64), StoreError> {
        let rows: Vec<(i64, i64, i64)> = on_pool!(self, pool => {
            let mut qb: QueryBuilder<Db> = QueryBuilder::new("SELECT CAST(CASE");
            for (i, edge) in edges.iter().enumerate() {
                qb.push(" WHEN p.size < ")
                    .push_bind(*edge)
                    .push(" THEN ")
                    .push(i.to_string());
            }
            qb.push(" ELSE ").push(edges.len().to_string()).push(
                super::dialect(
                    PG,
                    " END AS BIGINT) AS bin, COUNT(*), CAST(SUM(p.size) AS BIGINT) \
                     FROM pages p CROSS JOIN urls u ON u.id = p.url_id WHERE u.sitemap = FALSE GROUP BY bin",
                )
                .0,
            );
            qb.build_query_as().fetch_all(pool).await?
        });
        let mut counts = vec![0; edges.len() + 1];
        let mut bytes = 0;
        for (bin, n, b) in rows {
            if let Some(c) = counts.get_mut(bin as usize) {
                *c = n;
            }
            bytes += b;
        }
        Ok((counts, bytes))
    }

    /// The `limit` stored pages whose requests took longest, slowest first.
    pub async fn slowest_pages(&self, limit: usize) -> Result<Vec<PageBrief>, StoreError> {
        self.pages_by("p.fetch_ms", limit).await
    }

    /// The `limit` stored pages with the largest bodies, largest first.
    pub async fn largest_pages(&self, limit: usize) -> Result<Vec<PageBrief>, StoreError> {
        self.pages_by("p.size", limit).await
    }

    async fn pages_by(
        &self,
        column: &'static str,
        limit: usize,
    ) -> Result<Vec<PageBrief>, StoreError> {
        let sql = format!(
            "SELECT u.url, p.status, p.fetch_ms, p.size, p.content_type, p.title \
             FROM pages p CROSS JOIN urls u ON u.id = p.url_id WHERE u.sitemap = FALSE \
             ORDER BY {column} DESC, u.url LIMIT $1"
        );
        on_pool!(self, pool => {
        let rows = sqlx::query(super::dialect(PG, sql))
            .bind(limit as i64)
            .fetch_all(pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| PageBrief {
                url: r.get("url"),
                status: r.get("status"),
                fetch_ms: r.get("fetch_ms"),
                size: r.get("size"),
                content_type: r.get("content_type"),
                title: r.get("title"),
            })
            .collect())
        })
    }

    /// The hosts of the crawl, those with most pages stored and failed
    /// first, at most `limit`, each with its stored robots.txt answer.
    /// One scan of `urls` (with the stored page of each URL fetched).
    pub async fn hosts(&self, limit: usize) -> Result<Capped<HostRow>, StoreError> {
        on_pool!(self, pool => {
        let rows = sqlx::query(
            "SELECT origin, pages, failed, skipped, queued, mean_ms, extra, COUNT(*) OVER () AS hosts FROM ( \
               SELECT u.origin AS origin, COUNT(p.url_id) AS pages, \
                 COUNT(*) FILTER (WHERE u.state = 'failed') AS failed, \
                 COUNT(*) FILTER (WHERE u.state = 'skipped') AS skipped, \
                 COUNT(*) FILTER (WHERE u.state IN ('queued', 'leased')) AS queued, \
                 CAST(AVG(p.fetch_ms) AS DOUBLE PRECISION) AS mean_ms, \
                 CAST(SUM(CASE WHEN u.state IN ('done', 'failed') AND u.attempts > 1 THEN u.attempts - 1 ELSE 0 END) \
                   AS BIGINT) AS extra \
               FROM urls u LEFT JOIN pages p ON u.state IN ('done', 'failed') AND p.url_id = u.id \
               WHERE u.sitemap = FALSE GROUP BY u.origin) AS h \
             ORDER BY pages + failed DESC, origin LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(pool)
        .await?;
        let total = rows.first().map_or(0, |r| r.get("hosts"));
        let mut hosts: Vec<HostRow> = rows
            .iter()
            .map(|r| HostRow {
                origin: r.get("origin"),
                pages: r.get("pages"),
                failed: r.get("failed"),
                skipped: r.get("skipped"),
                queued: r.get("queued"),
                mean_fetch_ms: r.get("mean_ms"),
                extra_attempts: r.get("extra"),
                robots: None,
            })
            .collect();
        if !hosts.is_empty() {
            let mut qb: QueryBuilder<Db> = QueryBuilder::new(
                "SELECT origin, robots_status, robots_error, robots_fetched_at, crawl_delay_ms, \
                 robots_unusable_rules FROM hosts WHERE robots_fetched_at > 0 AND origin IN (",
            );
            let mut sep = qb.separated(", ");
            for h in &hosts {
                sep.push_bind(h.origin.clone());
            }
            qb.push(")");
            let answers = qb.build().fetch_all(pool).await?;
            for a in &answers {
                let origin: String = a.get("origin");
                if let Some(h) = hosts.iter_mut().find(|h| h.origin == origin) {
                    h.robots = Some(RobotsRow {
                        status: a.get("robots_status"),
                        error: a.get("robots_error"),
                        fetched_at: a.get("robots_fetched_at"),
                        crawl_delay_ms: a.get("crawl_delay_ms"),
                        unusable_rules: a.get("robots_unusable_rules"),
                    });
                }
            }
        }
        Ok(Capped { rows: hosts, total })
        })
    }

    /// Up to `limit` page URLs in `state` (`failed`, `skipped`) with this
    /// reason, in table order (stops at the limit; a rare reason costs a
    /// scan of `urls`).
    pub async fn reason_examples(
        &self,
        state: &str,
        reason: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "SELECT url FROM urls WHERE state = $1 AND COALESCE(reason, '') = $2 AND sitemap = FALSE LIMIT $3",
        )
        .bind(state)
        .bind(reason)
        .bind(limit as i64)
        .fetch_all(pool).await)?)
    }

    /// Links whose target failed: the `limit` targets most linked to, each
    /// with up to `examples` pages linking to it (in link order). Two
    /// scans of `links` (with a look-up of each edge's target): a caller
    /// that knows no URL failed need not ask.
    pub async fn broken_links(
        &self,
        limit: usize,
        examples: usize,
    ) -> Result<BrokenLinks, StoreError> {
        let none = BrokenLinks {
            targets: Capped {
                rows: Vec::new(),
                total: 0,
            },
            links: 0,
        };
        let failed: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM urls WHERE state = 'failed' AND sitemap = FALSE LIMIT 1) AS f",
        )
        .fetch_one(pool).await)?;
        if failed == 0 {
            return Ok(none);
        }
        // `links` drives the join (CROSS JOIN keeps SQLite from scanning
        // `urls` and then `links` once per failed URL: it has no index on
        // `to_id`).
        on_pool!(self, pool => {
        let rows = sqlx::query(
            super::dialect(PG, "SELECT id, url, reason, n, COUNT(*) OVER () AS targets, CAST(SUM(n) OVER () AS BIGINT) AS edges FROM ( \
               SELECT u.id AS id, u.url AS url, u.reason AS reason, COUNT(*) AS n \
               FROM links l CROSS JOIN urls u ON u.id = l.to_id \
               WHERE u.state = 'failed' AND u.sitemap = FALSE GROUP BY u.id) AS b \
             ORDER BY n DESC, url LIMIT $1"),
        )
        .bind(limit as i64)
        .fetch_all(pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(none);
        };
        let (total, links): (i64, i64) = (first.get("targets"), first.get("edges"));
        let mut targets: Vec<(i64, BrokenTarget)> = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.get("id");
            let status: Option<i64> = sqlx::query_scalar("SELECT status FROM pages WHERE url_id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            targets.push((
                id,
                BrokenTarget {
                    url: r.get("url"),
                    reason: r.get("reason"),
                    status,
                    linked_from: r.get("n"),
                    from: Vec::new(),
                },
            ));
        }
        if examples > 0 {
            let mut qb: QueryBuilder<Db> = QueryBuilder::new(
                super::dialect(PG, "SELECT l.to_id, f.url, l.anchor FROM links l CROSS JOIN urls f ON f.id = l.from_id \
                 WHERE l.to_id IN ").0,
            );
            let ids: Vec<i64> = targets.iter().map(|(id, _)| *id).collect();
            super::push_id_list(&mut qb, &ids);
            let mut wanted: usize = targets
                .iter()
                .map(|(_, t)| (t.linked_from as usize).min(examples))
                .sum();
            let query = qb.build();
            let mut stream = query.fetch(pool);
            while wanted > 0
                && let Some(r) = stream.try_next().await?
            {
                let to: i64 = r.get(0);
                if let Some((_, t)) = targets.iter_mut().find(|(id, _)| *id == to)
                    && t.from.len() < examples
                {
                    t.from.push(LinkFrom {
                        url: r.get(1),
                        anchor: r.get(2),
                    });
                    wanted -= 1;
                }
            }
        }
        Ok(BrokenLinks {
            targets: Capped {
                rows: targets.into_iter().map(|(_, t)| t).collect(),
                total,
            },
            links,
        })
        })
    }

    /// The first hops of redirect chains, by URL, at most `limit`.
    pub async fn redirect_starts(&self, limit: usize) -> Result<Capped<RedirectStart>, StoreError> {
        on_pool!(self, pool => {
        let rows = sqlx::query(
            super::dialect(PG, "SELECT u.id, u.url, p.status, p.redirect_to, COUNT(*) OVER () AS chains \
             FROM pages p CROSS JOIN urls u ON u.id = p.url_id \
             WHERE p.redirect_to IS NOT NULL AND u.redirect_hops = 0 AND u.sitemap = FALSE \
             ORDER BY u.url LIMIT $1"),
        )
        .bind(limit as i64)
        .fetch_all(pool)
        .await?;
        Ok(Capped {
            total: rows.first().map_or(0, |r| r.get("chains")),
            rows: rows
                .iter()
                .map(|r| RedirectStart {
                    id: r.get("id"),
                    url: r.get("url"),
                    status: r.get("status"),
                    redirect_to: r.get("redirect_to"),
                })
                .collect(),
        })
        })
    }

    /// The URL with this id (its fingerprint) as the crawl left it, with
    /// its stored answer; `None` when the crawl never recorded it.
    pub async fn url_fate(&self, id: i64) -> Result<Option<UrlFate>, StoreError> {
        let row: Option<FateRow> = on_pool!(self, pool => sqlx::query_as(
                "SELECT u.url, u.state, u.reason, p.status, p.redirect_to FROM urls u \
                 LEFT JOIN pages p ON p.url_id = u.id WHERE u.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        Ok(
            row.map(|(url, state, reason, status, redirect_to)| UrlFate {
                url,
                state,
                reason,
                status,
                redirect_to,
            }),
        )
    }

    /// Bodies (by SHA-256) stored at several URLs: 2xx pages that are not
    /// redirects. The `limit` largest groups, each with up to `examples`
    /// of its URLs.
    pub async fn duplicates(
        &self,
        limit: usize,
        examples: usize,
    ) -> Result<Duplicates, StoreError> {
        on_pool!(self, pool => {
        let rows = sqlx::query(
            super::dialect(PG, "SELECT h, n, size, COUNT(*) OVER () AS groups, CAST(SUM(n) OVER () AS BIGINT) AS pages FROM ( \
               SELECT p.content_hash AS h, COUNT(*) AS n, MAX(p.size) AS size \
               FROM pages p CROSS JOIN urls u ON u.id = p.url_id \
               WHERE u.sitemap = FALSE AND p.status BETWEEN 200 AND 299 AND p.redirect_to IS NULL \
                 AND p.content_hash IS NOT NULL \
               GROUP BY p.content_hash HAVING COUNT(*) > 1) AS d \
             ORDER BY n DESC, h LIMIT $1"),
        )
        .bind(limit as i64)
        .fetch_all(pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(Duplicates {
                groups: Capped {
                    rows: Vec::new(),
                    total: 0,
                },
                pages: 0,
            });
        };
        let (total, pages): (i64, i64) = (first.get("groups"), first.get("pages"));
        let mut groups: Vec<DuplicateGroup> = rows
            .iter()
            .map(|r| DuplicateGroup {
                content_hash: r.get("h"),
                pages: r.get("n"),
                size: r.get("size"),
                urls: Vec::new(),
            })
            .collect();
        if examples > 0 {
            let mut qb: QueryBuilder<Db> = QueryBuilder::new(
                super::dialect(PG, "SELECT p.content_hash, u.url, p.title FROM pages p CROSS JOIN urls u ON u.id = p.url_id \
                 WHERE u.sitemap = FALSE AND p.status BETWEEN 200 AND 299 AND p.redirect_to IS NULL \
                 AND p.content_hash IN (").0,
            );
            let mut sep = qb.separated(", ");
            for g in &groups {
                sep.push_bind(g.content_hash.clone());
            }
            qb.push(") ORDER BY u.url");
            let query = qb.build();
            let mut stream = query.fetch(pool);
            while let Some(r) = stream.try_next().await? {
                let hash: String = r.get(0);
                if let Some(g) = groups.iter_mut().find(|g| g.content_hash == hash)
                    && g.urls.len() < examples
                {
                    g.urls.push((r.get(1), r.get(2)));
                }
            }
        }
        Ok(Duplicates {
            groups: Capped {
                rows: groups,
                total,
            },
            pages,
        })
        })
    }

    /// Up to `limit` summaries made, of the shallowest pages (then by
    /// URL), each with its page.
    pub async fn summary_samples(&self, limit: usize) -> Result<Vec<SummarySample>, StoreError> {
        let rows: Vec<(String, Option<String>, String, String, String)> = on_pool!(self, pool => sqlx::query_as(
            super::dialect(PG, "SELECT u.url, p.title, s.backend, s.model, s.summary \
             FROM pages p CROSS JOIN urls u ON u.id = p.url_id \
             JOIN summaries s ON s.content_hash = p.content_hash \
             WHERE s.state = 'done' AND s.summary IS NOT NULL AND u.sitemap = FALSE AND p.redirect_to IS NULL \
             ORDER BY u.depth, u.url, s.backend, s.model LIMIT $1"),
        )
        .bind(limit as i64)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(url, title, backend, model, summary)| SummarySample {
                url,
                title,
                backend,
                model,
                summary,
            })
            .collect())
    }

    /// Calls `visit` with every stored page marked `noindex` or whose
    /// robots directives mention `nofollow` or `none` (in any case, for
    /// any agent: which apply to trawl is the caller's to decide, with
    /// [`crate::robots::Directives`]), by URL, streaming.
    pub async fn directive_pages(
        &self,
        mut visit: impl FnMut(DirectiveRow),
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
        let mut rows = sqlx::query_as::<_, (String, bool, Option<String>, Option<String>)>(
            super::dialect(PG, "SELECT u.url, p.noindex, p.meta_robots, p.x_robots_tag FROM pages p \
             CROSS JOIN urls u ON u.id = p.url_id WHERE u.sitemap = FALSE AND (p.noindex = TRUE \
             OR lower(p.meta_robots) LIKE '%nofollow%' OR lower(p.meta_robots) LIKE '%none%' \
             OR lower(p.x_robots_tag) LIKE '%nofollow%' OR lower(p.x_robots_tag) LIKE '%none%') ORDER BY u.url"),
        )
        .fetch(pool);
        while let Some((url, noindex, meta_robots, x_robots_tag)) = rows.try_next().await? {
            visit(DirectiveRow {
                url,
                noindex,
                meta_robots,
                x_robots_tag,
            });
        }
        });
        Ok(())
    }
}
