//! A batch of [`WriteOp`]s as one transaction: the writer's SQL, written
//! once and compiled for each backend (the parent module gives `Db`, the
//! `sqlx::Database`, and `PG`). Statements run on both SQLite and
//! PostgreSQL: upserts rather than `INSERT OR REPLACE`, and a multi-row
//! statement never holds one key twice (PostgreSQL refuses an upsert that
//! touches a row twice), see [`distinct_runs`].

use std::collections::{HashMap, HashSet};

use sqlx::{Connection, QueryBuilder, Row};

use super::{Db, PG};
use crate::store::records::*;
use crate::store::writer::Reply;
use crate::store::{CrawlState, StoreError, URL_ROWS_PER_STMT, push_id_list};
use crate::util::now_ms;

/// The backend's connection.
pub(in crate::store::writer) type Conn = <Db as sqlx::Database>::Connection;

/// Rows accumulated from consecutive data operations, written with
/// multi-row statements.
#[derive(Default)]
struct Pending {
    urls: Vec<NewUrl>,
    fetches: Vec<FetchRecord>,
}

/// Sets the state and reason of URLs that were not fetched.
async fn settle(
    tx: &mut sqlx::Transaction<'_, Db>,
    ids: &[i64],
    state: UrlState,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    for chunk in ids.chunks(URL_ROWS_PER_STMT) {
        let mut qb: QueryBuilder<Db> = QueryBuilder::new(SET_STATE);
        qb.push_bind(state.as_str())
            .push(", reason = ")
            .push_bind(reason)
            .push(", updated_at = ")
            .push_bind(now)
            .push(" WHERE id IN ");
        push_id_list(&mut qb, chunk);
        execute_once(tx, qb).await?;
    }
    Ok(())
}

/// Commits `batch` as one transaction. `lease`: this process's, in a
/// crawl several processes share; fetches of URLs whose host it no
/// longer holds are then left out (their host's new holder fetches them
/// again), so a process that lost a lease cannot overwrite another's work.
/// `known_hosts`: the origins whose `hosts` row this writer has committed
/// (see [`record_urls`]); those the batch adds are added once it commits.
pub(in crate::store::writer) async fn commit(
    conn: &mut Conn,
    batch: &mut Vec<WriteOp>,
    lease: Option<&Lease>,
    known_hosts: &mut HashSet<String>,
) -> Result<Vec<Reply>, StoreError> {
    // SQLite: take the write lock at the start, not at the first write.
    let mut tx = conn
        .begin_with(if PG { "BEGIN" } else { "BEGIN IMMEDIATE" })
        .await?;
    let mut replies = Vec::new();
    let mut pending = Pending::default();
    let now = now_ms();
    let mut new_hosts = Vec::new();
    if lease.is_some() {
        // A shared crawl: every URL the batch records goes in first, in
        // one pass in key order, so that processes writing overlapping
        // URLs and hosts cannot deadlock (locks taken in one order).
        let urls: Vec<&NewUrl> = batch
            .iter()
            .flat_map(|op| match op {
                WriteOp::Urls(urls) => urls.iter().collect::<Vec<_>>(),
                WriteOp::Fetch(rec) => rec.new_urls.iter().collect(),
                _ => Vec::new(),
            })
            .collect();
        new_hosts = record_urls(&mut tx, urls, now, Some(known_hosts)).await?;
    }
    for op in batch.drain(..) {
        match op {
            WriteOp::Urls(urls) => pending.urls.extend(urls),
            WriteOp::Fetch(rec) => pending.fetches.push(*rec),
            other => {
                write_pending(&mut tx, &mut pending, now, lease).await?;
                match other {
                    WriteOp::Refill {
                        limit,
                        revisits,
                        reply,
                    } => {
                        // On SQLite what is stored of the pages to
                        // revisit is read once the batch is committed, on
                        // a reading connection, off the writer's path.
                        let rows = refill(&mut tx, limit, revisits && PG, now).await?;
                        replies.push(Reply::Refill(reply, rows, revisits && !PG));
                    }
                    WriteOp::Claim {
                        max_hosts,
                        limit,
                        max_pages,
                        revisits,
                        count,
                        reply,
                    } => {
                        let Some(lease) = lease else {
                            return Err(StoreError::NotShared);
                        };
                        let ask = Ask {
                            max_hosts,
                            limit,
                            max_pages,
                            revisits,
                            count,
                        };
                        let claimed = claim(&mut tx, lease, ask, now).await?;
                        replies.push(Reply::Claim(reply, claimed));
                    }
                    WriteOp::SkipPending { reason } => {
                        // A revisit not made goes back to what it was
                        // (a stored page stays `done`, as of when it was
                        // last settled: the run did not visit it); a new
                        // URL is skipped.
                        sqlx::query(
                            "UPDATE urls SET state = COALESCE(revisit_state, 'skipped'), \
                             reason = CASE WHEN revisit_state IS NULL THEN $1 ELSE revisit_reason END, \
                             updated_at = CASE WHEN revisit_state IS NULL THEN $2 ELSE updated_at END, \
                             revisit_state = NULL, revisit_reason = NULL \
                             WHERE state IN ('queued', 'leased')",
                        )
                        .bind(reason)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    WriteOp::Skip { ids, reason } => {
                        settle(&mut tx, &ids, UrlState::Skipped, reason, now).await?;
                    }
                    WriteOp::Fail { ids, reason } => {
                        settle(&mut tx, &ids, UrlState::Failed, reason, now).await?;
                    }
                    WriteOp::Cookies(jars) => {
                        for (host, jar) in jars {
                            sqlx::query(
                                "INSERT INTO cookies (host, jar) VALUES ($1, $2) \
                                 ON CONFLICT (host) DO UPDATE SET jar = excluded.jar",
                            )
                            .bind(host)
                            .bind(jar)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                    WriteOp::Host(h) => {
                        sqlx::query(
                            "INSERT INTO hosts (origin, robots_status, robots_body, robots_error, robots_fetched_at, crawl_delay_ms, \
                             robots_unusable_rules) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (origin) DO UPDATE SET \
                             robots_status = excluded.robots_status, robots_body = excluded.robots_body, \
                             robots_error = excluded.robots_error, robots_fetched_at = excluded.robots_fetched_at, \
                             crawl_delay_ms = excluded.crawl_delay_ms, robots_unusable_rules = excluded.robots_unusable_rules",
                        )
                        .bind(&h.origin)
                        .bind(h.robots.status.map(i64::from))
                        .bind(&h.robots.body)
                        .bind(&h.robots.error)
                        .bind(h.robots.fetched_at)
                        .bind(h.crawl_delay_ms)
                        .bind(i64::from(h.unusable_rules))
                        .execute(&mut *tx)
                        .await?;
                    }
                    WriteOp::HostDelay { origin, until } => {
                        sqlx::query(
                            "INSERT INTO hosts (origin, robots_fetched_at, next_fetch_at) VALUES ($1, 0, $2) \
                             ON CONFLICT (origin) DO UPDATE SET \
                             next_fetch_at = CASE WHEN hosts.next_fetch_at > excluded.next_fetch_at \
                             THEN hosts.next_fetch_at ELSE excluded.next_fetch_at END",
                        )
                        .bind(&origin)
                        .bind(until)
                        .execute(&mut *tx)
                        .await?;
                    }
                    WriteOp::ReleaseLeased => match lease {
                        None => {
                            sqlx::query("UPDATE urls SET state = 'queued', updated_at = $1 WHERE state = 'leased'")
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                        }
                        Some(lease) => release(&mut tx, lease, now).await?,
                    },
                    WriteOp::CrawlState { id, state } => {
                        let finished = (state == CrawlState::Finished).then_some(now);
                        sqlx::query(
                            "UPDATE crawls SET state = $1, updated_at = $2, finished_at = COALESCE($3, finished_at) WHERE id = $4",
                        )
                        .bind(state.as_str())
                        .bind(now)
                        .bind(finished)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    WriteOp::Flush(reply) => replies.push(Reply::Flush(reply)),
                    WriteOp::Urls(_) | WriteOp::Fetch(_) => unreachable!("handled above"),
                }
            }
        }
    }
    write_pending(&mut tx, &mut pending, now, lease).await?;
    tx.commit().await?;
    known_hosts.extend(new_hosts);
    Ok(replies)
}

async fn write_pending(
    conn: &mut Conn,
    pending: &mut Pending,
    now: i64,
    lease: Option<&Lease>,
) -> Result<(), StoreError> {
    let lone_urls = std::mem::take(&mut pending.urls);
    let mut fetches = std::mem::take(&mut pending.fetches);
    if let Some(lease) = lease
        && !fetches.is_empty()
    {
        let held = held_origins(conn, lease).await?;
        let before = fetches.len();
        fetches.retain(|f| held.contains(&*f.origin));
        if fetches.len() < before {
            tracing::warn!(
                "{} fetches not recorded: their host's lease was lost to another process, which fetches them again",
                before - fetches.len()
            );
        }
    }
    let same_links = write_revisits(conn, &fetches).await?;
    // (A shared crawl's batch recorded its URLs first.)
    let urls: Vec<&NewUrl> = match lease {
        None => lone_urls
            .iter()
            .chain(fetches.iter().flat_map(|f| &f.new_urls))
            .collect(),
        Some(_) => Vec::new(),
    };
    let with_pages: Vec<&FetchRecord> = fetches.iter().filter(|f| f.page.is_some()).collect();
    let mut summaries: Vec<(&str, &SummaryRecord)> = with_pages
        .iter()
        .filter_map(|f| {
            let p = f.page.as_ref()?;
            Some((p.content_hash.as_deref()?, p.summary.as_ref()?))
        })
        .collect();
    if PG {
        summaries.sort_by_key(|(hash, _)| *hash);
    }
    let links: Vec<(i64, &LinkRecord)> = fetches
        .iter()
        .filter(|f| !same_links.contains(&f.url_id))
        .flat_map(|f| f.links.iter().map(move |l| (f.url_id, l)))
        .collect();
    // One statement per (state, reason, attempts) rather than one per page:
    // the attempt counter is incremented in SQL.
    let mut groups: HashMap<(UrlState, Option<&str>, u32), Vec<i64>> = HashMap::new();
    for f in &fetches {
        groups
            .entry((f.state, f.reason.as_deref(), f.attempts))
            .or_default()
            .push(f.url_id);
    }
    // A URL fetched twice in the batch with one outcome counts its
    // attempts once, however its group is written.
    for ids in groups.values_mut() {
        ids.sort_unstable();
        ids.dedup();
    }
    let rows = Rows {
        urls,
        pages: with_pages,
        summaries,
        links,
        states: groups,
    };
    // Each backend its own way (`sqlite_rows`, `pg_rows`).
    super::rows::write(conn, &rows, now).await?;
    let with_pages = rows.pages;
    // Kept bodies and fields (only crawls that keep HTML or extract).
    let kept: Vec<(i64, &crate::store::fields::KeptHtml)> = with_pages
        .iter()
        .filter_map(|f| Some((f.url_id, f.page.as_ref()?.html.as_ref()?)))
        .collect();
    for chunk in ladder_by(&kept, |k| k.0) {
        let mut qb: QueryBuilder<Db> =
            QueryBuilder::new("INSERT INTO page_html (url_id, size, body) ");
        qb.push_values(chunk, |mut b, (id, h)| {
            b.push_bind(*id)
                .push_bind(h.size as i64)
                .push_bind(h.packed.clone());
        });
        qb.push(" ON CONFLICT (url_id) DO UPDATE SET size = excluded.size, body = excluded.body");
        execute_cached(conn, qb).await?;
    }
    let fields: Vec<(i64, &crate::store::fields::FieldRow)> = with_pages
        .iter()
        .flat_map(|f| {
            let rows = f.page.as_ref().map_or(&[][..], |p| &p.fields[..]);
            rows.iter().map(move |r| (f.url_id, r))
        })
        .collect();
    for chunk in ladder_by(&fields, |(id, r)| (*id, r.name.clone())) {
        execute_cached(conn, crate::store::fields::insert_fields::<Db>(chunk)).await?;
    }
    let became: Vec<i64> = fetches
        .iter()
        .filter(|f| f.became_sitemap)
        .map(|f| f.url_id)
        .collect();
    if !became.is_empty() {
        let mut qb: QueryBuilder<Db> =
            QueryBuilder::new("UPDATE urls SET sitemap = TRUE WHERE id IN ");
        push_id_list(&mut qb, &became);
        execute_once(conn, qb).await?;
    }
    // A URL leased again stays leased unless its own later fetch is in
    // this batch too.
    let relet: Vec<i64> = fetches
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.relet.iter().map(move |&id| (i, id)))
        .filter(|&(i, id)| !fetches[i + 1..].iter().any(|g| g.url_id == id))
        .map(|(_, id)| id)
        .collect();
    if !relet.is_empty() {
        let mut qb: QueryBuilder<Db> =
            QueryBuilder::new("UPDATE urls SET state = 'leased', reason = NULL WHERE id IN ");
        push_id_list(&mut qb, &relet);
        execute_once(conn, qb).await?;
    }
    for f in &fetches {
        if !f.chain.is_empty()
            && let Some(page) = &f.page
        {
            let mut qb: QueryBuilder<Db> = QueryBuilder::new("UPDATE pages SET final_url = ");
            qb.push_bind(page.final_url.clone())
                .push(" WHERE url_id IN ");
            push_id_list(&mut qb, &f.chain);
            execute_once(conn, qb).await?;
        }
    }
    Ok(())
}

/// The rows of a batch's fetches (and of the URLs it records) that a batch
/// writes most: a page, its summary, ~40 links, the URLs found, the URL's
/// new state.
pub(super) struct Rows<'a> {
    /// New URLs, in the order found (empty in a shared crawl, whose batch
    /// records them first).
    pub urls: Vec<&'a NewUrl>,
    pub pages: Vec<&'a FetchRecord>,
    /// `(content_hash, summary)`.
    pub summaries: Vec<(&'a str, &'a SummaryRecord)>,
    /// `(from_id, link)`, in order.
    pub links: Vec<(i64, &'a LinkRecord)>,
    /// URL ids by `(state, reason, attempts made)`, each once per group.
    pub states: HashMap<(UrlState, Option<&'a str>, u32), Vec<i64>>,
}

/// The rows a batch writes most, shared by the multi-row statements (here
/// and in `pg_rows`) and SQLite's single-row ones (`sqlite_rows`):
/// `INSERT INTO t (columns) `, then `VALUES …`, then the conflict clause.
pub(super) const INSERT_URLS: &str = "INSERT INTO urls (id, url, origin, depth, state, reason, discovered_from, \
     redirect_hops, sitemap, discovered_at, updated_at) ";
pub(super) const INSERT_PAGES: &str = "INSERT INTO pages (url_id, status, final_url, redirect_to, content_type, \
     size, truncated, fetched_at, fetch_ms, etag, last_modified, content_hash, title, description, language, \
     canonical, base_href, meta_robots, encoding, text, text_kinds, markdown, links_count, noindex, \
     x_robots_tag, links_hash) ";
/// A page fetched again replaces the stored one, every column.
pub(super) const PAGES_UPSERT: &str = " ON CONFLICT (url_id) DO UPDATE SET status = excluded.status, \
     final_url = excluded.final_url, redirect_to = excluded.redirect_to, content_type = excluded.content_type, \
     size = excluded.size, truncated = excluded.truncated, fetched_at = excluded.fetched_at, \
     fetch_ms = excluded.fetch_ms, etag = excluded.etag, last_modified = excluded.last_modified, \
     content_hash = excluded.content_hash, title = excluded.title, description = excluded.description, \
     language = excluded.language, canonical = excluded.canonical, base_href = excluded.base_href, \
     meta_robots = excluded.meta_robots, encoding = excluded.encoding, text = excluded.text, \
     text_kinds = excluded.text_kinds, markdown = excluded.markdown, links_count = excluded.links_count, \
     noindex = excluded.noindex, x_robots_tag = excluded.x_robots_tag, links_hash = excluded.links_hash";
pub(super) const INSERT_SUMMARIES: &str = "INSERT INTO summaries (content_hash, backend, model, prompt_version, \
     state, summary, attempts, created_at, updated_at) ";
/// The same body at two URLs, or seen before: one summary.
pub(super) const SUMMARIES_UPSERT: &str =
    " ON CONFLICT (content_hash, backend, model, prompt_version) DO NOTHING";
/// A URL's new state (a fetch's, or a URL settled unfetched): then
/// `state`, `reason`, for a fetch the attempts made, `updated_at`, and the
/// URLs. A revisit made, or not made, forgets the state it was queued
/// from.
pub(super) const SET_STATE: &str = "UPDATE urls SET revisit_state = NULL, state = ";

/// Row counts of the multi-row statements the writer keeps prepared: a
/// batch's rows go in chunks of these sizes, largest first, so the same
/// statement text comes back and SQLite parses each size once per
/// connection, not once per batch (parsing was ~7% of a crawl's CPU). The
/// largest stays far below SQLite's 32,766 bound parameters.
const LADDER: [usize; 5] = [256, 64, 16, 4, 1];

/// `rows` in chunks of [`LADDER`] sizes.
fn ladder<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        let n = LADDER.into_iter().find(|&n| n <= rest.len())?;
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

/// `rows` in chunks of [`LADDER`] sizes; on PostgreSQL no chunk holds one
/// `key` twice (see [`runs_by`]). SQLite applies the rows of one
/// statement in order, and is spared the look at every key.
fn ladder_by<T, K: Eq + std::hash::Hash>(rows: &[T], key: impl Fn(&T) -> K) -> Vec<&[T]> {
    if !PG {
        return ladder(rows).collect();
    }
    runs_by(rows, key).into_iter().flat_map(ladder).collect()
}

/// `rows` in runs in which no `key` is twice, in order: PostgreSQL
/// refuses an upsert that meets the same row twice in one statement, so a
/// repeated key starts the next statement and the rows still apply in
/// order.
pub(in crate::store::writer) fn runs_by<T, K: Eq + std::hash::Hash>(
    rows: &[T],
    key: impl Fn(&T) -> K,
) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut start = 0;
    for (i, row) in rows.iter().enumerate() {
        if !seen.insert(key(row)) {
            out.push(&rows[start..i]);
            seen.clear();
            seen.insert(key(row));
            start = i;
        }
    }
    if start < rows.len() {
        out.push(&rows[start..]);
    }
    out
}

/// Runs a statement of one of the [`LADDER`] sizes, kept in the
/// connection's statement cache.
async fn execute_cached(conn: &mut Conn, mut qb: QueryBuilder<Db>) -> Result<(), StoreError> {
    qb.build().execute(conn).await?;
    Ok(())
}

/// Runs a statement built for one batch. Multi-row statements differ in
/// SQL with their row count, so they are not kept in the connection's
/// statement cache: cached, up to 100 of these multi-megabyte prepared
/// statements stayed alive.
async fn execute_once(conn: &mut Conn, mut qb: QueryBuilder<Db>) -> Result<(), StoreError> {
    qb.build().persistent(false).execute(conn).await?;
    Ok(())
}

/// Records new URLs. On PostgreSQL they go in key order, all inserts
/// before the updates that queue again URLs skipped for a limit, and in a
/// shared crawl (`known_hosts` given) every origin with queued URLs gets a
/// `hosts` row to be leased by, after them: locks taken in one order by
/// every process, so none waits on another that waits on it. Returns the
/// origins whose row it wrote (none are in `known_hosts`: a row once
/// committed stays, and the caller adds them to the set once this
/// transaction is committed). Inserting every origin of every batch again
/// cost a statement each time, and it waited on a claim of the same
/// process renewing those rows.
pub(super) async fn record_urls(
    conn: &mut Conn,
    mut urls: Vec<&NewUrl>,
    now: i64,
    known_hosts: Option<&HashSet<String>>,
) -> Result<Vec<String>, StoreError> {
    if PG {
        // A stable sort: a URL found twice keeps its order.
        urls.sort_by_key(|u| u.id);
    }
    let inserted: HashSet<i64> = super::rows::insert_urls(conn, &urls, now)
        .await?
        .into_iter()
        .collect();
    if PG {
        // Only a URL that was there already can have been skipped: one
        // recorded before, or by an earlier row of this batch (a URL found
        // too deep, then by a shallower path).
        let mut first = HashSet::new();
        let again: Vec<&NewUrl> = urls
            .iter()
            .copied()
            .filter(|u| {
                let inserted_by_this_row = first.insert(u.id) && inserted.contains(&u.id);
                matches!(u.state, UrlState::Queued | UrlState::Leased) && !inserted_by_this_row
            })
            .collect();
        for chunk in ladder_by(&again, |u| u.id) {
            queue_again(conn, chunk, now).await?;
        }
    }
    let Some(known) = known_hosts else {
        return Ok(Vec::new());
    };
    let mut origins: Vec<&str> = urls
        .iter()
        .filter(|u| u.state == UrlState::Queued && !known.contains(u.origin.as_str()))
        .map(|u| u.origin.as_str())
        .collect();
    origins.sort_unstable();
    origins.dedup();
    for chunk in origins.chunks(URL_ROWS_PER_STMT) {
        let mut qb: QueryBuilder<Db> =
            QueryBuilder::new("INSERT INTO hosts (origin, robots_fetched_at) ");
        qb.push_values(chunk, |mut b, o| {
            b.push_bind(o.to_string()).push_bind(0i64);
        });
        qb.push(" ON CONFLICT (origin) DO NOTHING");
        execute_once(conn, qb).await?;
    }
    Ok(origins.into_iter().map(str::to_owned).collect())
}

/// On PostgreSQL: URLs found again within the limits (`rows`, queued or
/// leased) that were recorded as skipped for a limit are queued again.
async fn queue_again(conn: &mut Conn, rows: &[&NewUrl], now: i64) -> Result<(), StoreError> {
    let mut qb: QueryBuilder<Db> = QueryBuilder::new(
        "UPDATE urls SET state = v.state, reason = NULL, depth = v.depth, discovered_from = v.found_from, \
         sitemap = v.sitemap, updated_at = v.at FROM (",
    );
    qb.push_values(rows, |mut b, u| {
        b.push_bind(u.id)
            .push_bind(u.state.as_str())
            .push_bind(u.depth as i64)
            .push_bind(u.discovered_from)
            .push_bind(u.sitemap)
            .push_bind(now);
    });
    qb.push(
        ") AS v (id, state, depth, found_from, sitemap, at) WHERE urls.id = v.id \
         AND urls.state = 'skipped' AND urls.reason IN ('max_depth', 'max_pages', 'nofollow')",
    );
    execute_cached(conn, qb).await?;
    Ok(())
}

/// Leases up to `limit` queued URLs, shallowest first. A URL waiting for
/// a revisit keeps its `updated_at` until the revisit settles (see
/// `Store::queue_revisits`).
async fn refill(
    conn: &mut Conn,
    limit: u32,
    revisits: bool,
    now: i64,
) -> Result<Vec<LeasedUrl>, StoreError> {
    let rows = sqlx::query(
        "UPDATE urls SET state = 'leased', updated_at = CASE WHEN revisit_state IS NULL THEN $1 \
         ELSE updated_at END WHERE id IN \
         (SELECT id FROM urls WHERE state = 'queued' ORDER BY depth, id LIMIT $2) \
         RETURNING id, url, depth, redirect_hops, sitemap",
    )
    .bind(now)
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: Vec<LeasedUrl> = rows
        .iter()
        .map(|r| LeasedUrl {
            id: r.get("id"),
            url: r.get("url"),
            depth: r.get::<i64, _>("depth") as u32,
            redirect_hops: r.get::<i64, _>("redirect_hops") as u32,
            sitemap: r.get("sitemap"),
            revisit: None,
            chain: Vec::new(),
        })
        .collect();
    if revisits {
        read_revisits(conn, &mut out).await?;
    }
    // RETURNING gives no order guarantee; keep breadth-first order.
    out.sort_by_key(|u| (u.depth, u.id));
    Ok(out)
}

/// The origins whose host `lease` still holds, with their host rows
/// locked until the transaction ends (a claim that would take them over
/// waits for it). A fetch is checked by the origin it carries: looking
/// its URL up in `urls` too was a sixth of the writer's time (2.7 ms a
/// batch of ~135 fetches).
async fn held_origins(conn: &mut Conn, lease: &Lease) -> Result<HashSet<String>, StoreError> {
    Ok(sqlx::query_scalar(if PG {
        "SELECT origin FROM hosts WHERE lease_owner = $1 AND lease_token = $2 FOR SHARE"
    } else {
        "SELECT origin FROM hosts WHERE lease_owner = $1 AND lease_token = $2"
    })
    .bind(lease.owner)
    .bind(lease.token)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect())
}

/// `… IN ($1, $2, …)` over `origins`.
fn push_text_list(qb: &mut QueryBuilder<Db>, items: &[String]) {
    qb.push("(");
    let mut sep = qb.separated(", ");
    for o in items {
        sep.push_bind(o.clone());
    }
    qb.push(")");
}

/// What a claim asks for (the fields of [`WriteOp::Claim`]).
struct Ask {
    max_hosts: u32,
    limit: u32,
    max_pages: Option<u64>,
    revisits: bool,
    count: bool,
}

/// See [`WriteOp::Claim`]. Claims of all processes are serialized by a
/// transaction-level advisory lock, so the page budget they share is
/// counted once; hosts are taken with `FOR UPDATE SKIP LOCKED`.
async fn claim(conn: &mut Conn, lease: &Lease, ask: Ask, now: i64) -> Result<Claimed, StoreError> {
    let Ask {
        max_hosts,
        limit,
        max_pages,
        revisits,
        count,
    } = ask;
    if PG {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CLAIM_LOCK_KEY)
            .execute(&mut *conn)
            .await?;
    }
    let expires = now + lease.ttl_ms;
    // Hosts with nothing queued or in flight go back to the pool. (One
    // test per state: each is answered by its partial index, where
    // `state IN ('queued', 'leased')` matched neither and scanned the
    // table for every host held, 10 ms a claim at 20,000 URLs.)
    sqlx::query(
        "UPDATE hosts SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
         WHERE lease_owner = $1 AND lease_token = $2 \
         AND NOT EXISTS (SELECT 1 FROM urls u WHERE u.origin = hosts.origin AND u.state = 'queued') \
         AND NOT EXISTS (SELECT 1 FROM urls u WHERE u.origin = hosts.origin AND u.state = 'leased')",
    )
    .bind(lease.owner)
    .bind(lease.token)
    .execute(&mut *conn)
    .await?;
    let mut held: Vec<String> = sqlx::query_scalar(
        "UPDATE hosts SET lease_expires_at = $1 WHERE lease_owner = $2 AND lease_token = $3 RETURNING origin",
    )
    .bind(expires)
    .bind(lease.owner)
    .bind(lease.token)
    .fetch_all(&mut *conn)
    .await?;
    let mut new_hosts = Vec::new();
    let want = (max_hosts as usize).saturating_sub(held.len());
    if want > 0 {
        let rows: Vec<(String, Option<i64>, Option<i64>)> = sqlx::query_as(if PG {
            "UPDATE hosts SET lease_owner = $1, lease_token = $2, lease_expires_at = $3 WHERE origin IN \
             (SELECT h.origin FROM hosts h WHERE (h.lease_expires_at IS NULL OR h.lease_expires_at < $4) \
              AND (EXISTS (SELECT 1 FROM urls u WHERE u.origin = h.origin AND u.state = 'queued') \
               OR (h.lease_owner IS NOT NULL AND EXISTS \
                   (SELECT 1 FROM urls u WHERE u.origin = h.origin AND u.state = 'leased'))) \
              ORDER BY h.origin LIMIT $5 FOR UPDATE SKIP LOCKED) \
             RETURNING origin, next_fetch_at, crawl_delay_ms"
        } else {
            "UPDATE hosts SET lease_owner = $1, lease_token = $2, lease_expires_at = $3 WHERE origin IN \
             (SELECT h.origin FROM hosts h WHERE (h.lease_expires_at IS NULL OR h.lease_expires_at < $4) \
              AND (EXISTS (SELECT 1 FROM urls u WHERE u.origin = h.origin AND u.state = 'queued') \
               OR (h.lease_owner IS NOT NULL AND EXISTS \
                   (SELECT 1 FROM urls u WHERE u.origin = h.origin AND u.state = 'leased'))) \
              ORDER BY h.origin LIMIT $5) \
             RETURNING origin, next_fetch_at, crawl_delay_ms"
        })
        .bind(lease.owner)
        .bind(lease.token)
        .bind(expires)
        .bind(now)
        .bind(want as i64)
        .fetch_all(&mut *conn)
        .await?;
        if !rows.is_empty() {
            // Only a host's holder leases its URLs: those still leased
            // were in flight at a holder whose lease ran out.
            let origins: Vec<String> = rows.iter().map(|(o, _, _)| o.clone()).collect();
            let mut qb: QueryBuilder<Db> =
                QueryBuilder::new("UPDATE urls SET state = 'queued', updated_at = ");
            qb.push_bind(now)
                .push(" WHERE state = 'leased' AND origin IN ");
            push_text_list(&mut qb, &origins);
            execute_once(conn, qb).await?;
            held.extend(origins);
        }
        new_hosts = rows;
    }
    let mut budget_left = None;
    let mut limit = i64::from(limit);
    if let Some(max) = max_pages {
        let spent: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM urls WHERE sitemap = FALSE AND state IN ('done', 'failed', 'leased')",
        )
        .fetch_one(&mut *conn)
        .await?;
        let left = (max as i64 - spent).max(0);
        budget_left = Some(left);
        // A few turns of this process's slots at a time: what is leased
        // counts against the budget, so leasing more would leave the
        // other processes none of it.
        limit = limit.min(left).min(4 * i64::from(max_hosts.max(1)));
    }
    let mut urls = Vec::new();
    if !held.is_empty() && limit > 0 {
        let mut qb: QueryBuilder<Db> = QueryBuilder::new(
            "UPDATE urls SET state = 'leased', updated_at = CASE WHEN revisit_state IS NULL THEN ",
        );
        qb.push_bind(now)
            .push(" ELSE updated_at END WHERE id IN (SELECT id FROM urls WHERE state = 'queued' AND origin IN ");
        push_text_list(&mut qb, &held);
        qb.push(" ORDER BY depth, id LIMIT ")
            .push_bind(limit)
            .push(") RETURNING id, url, depth, redirect_hops, sitemap");
        for r in qb.build().persistent(false).fetch_all(&mut *conn).await? {
            urls.push(LeasedUrl {
                id: r.get("id"),
                url: r.get("url"),
                depth: r.get::<i64, _>("depth") as u32,
                redirect_hops: r.get::<i64, _>("redirect_hops") as u32,
                sitemap: r.get("sitemap"),
                revisit: None,
                chain: Vec::new(),
            });
        }
        if revisits {
            read_revisits(conn, &mut urls).await?;
        }
        read_chains(conn, &mut urls).await?;
        urls.sort_by_key(|u| (u.depth, u.id));
    }
    let counts = if count || urls.is_empty() {
        let (queued, leased): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM urls WHERE state = 'queued'), \
             (SELECT COUNT(*) FROM urls WHERE state = 'leased')",
        )
        .fetch_one(&mut *conn)
        .await?;
        Some(QueueCounts { queued, leased })
    } else {
        None
    };
    Ok(Claimed {
        urls,
        new_hosts,
        held,
        counts,
        budget_left,
    })
}

/// The redirect chains of the redirect targets among `leased`: each hop
/// was recorded with the URL whose redirect revealed it and its hop
/// count, so the chain is walked back to its first hop.
async fn read_chains(conn: &mut Conn, leased: &mut [LeasedUrl]) -> Result<(), StoreError> {
    for u in leased.iter_mut().filter(|u| u.redirect_hops > 0) {
        let hops: Vec<i64> = sqlx::query_scalar(
            "WITH RECURSIVE c (id, from_id, n) AS ( \
               SELECT id, discovered_from, redirect_hops FROM urls WHERE id = $1 \
               UNION ALL \
               SELECT u.id, u.discovered_from, u.redirect_hops FROM urls u JOIN c ON u.id = c.from_id \
               WHERE c.n > 0 AND u.redirect_hops < c.n) \
             SELECT id FROM c WHERE id <> $1 ORDER BY n",
        )
        .bind(u.id)
        .fetch_all(&mut *conn)
        .await?;
        u.chain = hops;
    }
    Ok(())
}

/// A stop of one process of a shared crawl: its leased URLs go back to
/// the queue and its hosts to the pool, at once (not when the leases run
/// out).
async fn release(conn: &mut Conn, lease: &Lease, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE urls SET state = 'queued', updated_at = $1 WHERE state = 'leased' AND origin IN \
         (SELECT origin FROM hosts WHERE lease_owner = $2 AND lease_token = $3)",
    )
    .bind(now)
    .bind(lease.owner)
    .bind(lease.token)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE hosts SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
         WHERE lease_owner = $1 AND lease_token = $2",
    )
    .bind(lease.owner)
    .bind(lease.token)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The transaction-level advisory lock that serializes claims
/// (`"trawl\0\0\2"`).
const CLAIM_LOCK_KEY: i64 = 0x7472_6177_6c00_0002;

/// Fills in what is stored of the leased URLs' pages.
pub(in crate::store::writer) async fn read_revisits(
    conn: &mut Conn,
    leased: &mut [LeasedUrl],
) -> Result<(), StoreError> {
    let ids: Vec<i64> = leased.iter().map(|u| u.id).collect();
    let mut stored = HashMap::new();
    for chunk in ids.chunks(URL_ROWS_PER_STMT) {
        let mut qb: QueryBuilder<Db> = QueryBuilder::new(
            "SELECT p.url_id, p.status, p.etag, p.last_modified, p.content_hash, p.redirect_to, c.revisit_ms, \
             c.removed_run, COALESCE(c.checked_at, p.fetched_at) AS checked_at \
             FROM pages p LEFT JOIN page_checks c ON c.url_id = p.url_id WHERE p.url_id IN ",
        );
        push_id_list(&mut qb, chunk);
        for r in qb.build().persistent(false).fetch_all(&mut *conn).await? {
            let status: i64 = r.get("status");
            let removed: Option<i64> = r.get("removed_run");
            stored.insert(
                r.get::<i64, _>("url_id"),
                crate::recrawl::Revisit {
                    was_ok: status < 400 && removed.is_none(),
                    status: u16::try_from(status).ok(),
                    etag: r.get("etag"),
                    last_modified: r.get("last_modified"),
                    content_hash: r.get("content_hash"),
                    redirect_to: r.get("redirect_to"),
                    revisit_ms: r.get("revisit_ms"),
                    checked_at: r.get("checked_at"),
                },
            );
        }
    }
    for u in leased {
        u.revisit = stored.remove(&u.id);
    }
    Ok(())
}

/// The fingerprints of the stored links of the pages of `fetches`
/// ([`links_hash`]), by page: a page with none stored has no entry, one
/// stored before fingerprints were kept has `None`. Read here, for the
/// pages stored again only, not with every URL a recrawl leases: the
/// column sits after the text, often in an overflow page.
async fn read_links_hashes(
    conn: &mut Conn,
    fetches: &[&FetchRecord],
) -> Result<HashMap<i64, Option<i64>>, StoreError> {
    let mut out = HashMap::new();
    let ids: Vec<i64> = fetches.iter().map(|f| f.url_id).collect();
    for chunk in ids.chunks(URL_ROWS_PER_STMT) {
        let mut qb: QueryBuilder<Db> =
            QueryBuilder::new("SELECT url_id, links_hash FROM pages WHERE url_id IN ");
        push_id_list(&mut qb, chunk);
        for r in qb.build().persistent(false).fetch_all(&mut *conn).await? {
            out.insert(r.get("url_id"), r.get("links_hash"));
        }
    }
    Ok(out)
}

/// A stored link: target id, anchor, nofollow, kind.
type StoredLink = (i64, String, bool, Option<String>);

/// The stored links of the pages of `fetches`, by page, each page's in the
/// order they were inserted (SQLite's rowid, PostgreSQL's identity
/// column). Looked up by the index on `links (from_id)`: on SQLite it is
/// made here the first time a recrawl needs it (a crawl never does, and a
/// recrawl whose pages kept their links never does either); on
/// PostgreSQL the recrawl made it before it started.
async fn read_links(
    conn: &mut Conn,
    fetches: &[&FetchRecord],
) -> Result<HashMap<i64, Vec<StoredLink>>, StoreError> {
    let mut out: HashMap<i64, Vec<StoredLink>> = HashMap::new();
    if fetches.is_empty() {
        return Ok(out);
    }
    if !PG {
        sqlx::query("CREATE INDEX IF NOT EXISTS links_from ON links (from_id)")
            .execute(&mut *conn)
            .await?;
    }
    let ids: Vec<i64> = fetches.iter().map(|f| f.url_id).collect();
    for chunk in ids.chunks(URL_ROWS_PER_STMT) {
        let mut qb: QueryBuilder<Db> = QueryBuilder::new(
            "SELECT from_id, to_id, anchor, nofollow, kind FROM links WHERE from_id IN ",
        );
        push_id_list(&mut qb, chunk);
        qb.push(if PG {
            " ORDER BY from_id, seq"
        } else {
            " ORDER BY from_id, rowid"
        });
        for r in qb.build().persistent(false).fetch_all(&mut *conn).await? {
            out.entry(r.get("from_id")).or_default().push((
                r.get("to_id"),
                r.get("anchor"),
                r.get("nofollow"),
                r.get("kind"),
            ));
        }
    }
    Ok(out)
}

/// A recrawl's records: the change of each page, the earlier version of a
/// page that changed (and its links, replaced by the new ones, with the
/// links added and gone in `link_changes`), and the check time, schedule
/// and new validators of a page that is kept. Returns the pages stored
/// again whose links are the ones stored: their links are not written
/// again.
async fn write_revisits(
    conn: &mut Conn,
    fetches: &[FetchRecord],
) -> Result<HashSet<i64>, StoreError> {
    use crate::recrawl::Change;
    // Batched like the rest of the writer: an unchanged page (nearly every
    // revisit) costs a row in a multi-row INSERT and one in a multi-row
    // UPDATE, not two statements of its own.
    let changes: Vec<(i64, &RevisitRecord)> = fetches
        .iter()
        .filter_map(|f| Some((f.url_id, f.revisit.as_ref()?)))
        .filter(|(_, r)| r.change.is_some())
        .collect();
    for chunk in ladder_by(&changes, |c| c.0) {
        let mut qb: QueryBuilder<Db> = QueryBuilder::new(
            "INSERT INTO page_changes (run_id, url_id, change, checked_at, bytes) ",
        );
        qb.push_values(chunk, |mut b, (url_id, r)| {
            b.push_bind(r.run_id)
                .push_bind(*url_id)
                .push_bind(r.change.expect("filtered").as_str())
                .push_bind(r.checked_at)
                .push_bind(r.bytes as i64);
        });
        qb.push(
            " ON CONFLICT (run_id, url_id) DO UPDATE SET change = excluded.change, \
             checked_at = excluded.checked_at, bytes = excluded.bytes",
        );
        execute_cached(conn, qb).await?;
    }
    // The stored version of each page that changed becomes history.
    let mut versioned: HashMap<i64, Vec<i64>> = HashMap::new();
    for f in fetches {
        if let Some(r) = &f.revisit
            && f.page.is_some()
            && r.change == Some(Change::Changed)
        {
            versioned.entry(r.run_id).or_default().push(f.url_id);
        }
    }
    for (run_id, ids) in versioned {
        for chunk in ids.chunks(URL_ROWS_PER_STMT) {
            let mut qb: QueryBuilder<Db> = QueryBuilder::new(
                "INSERT INTO page_versions (url_id, run_id, status, fetched_at, content_hash, title, text) \
                 SELECT url_id, ",
            );
            qb.push_bind(run_id).push(
                ", status, fetched_at, content_hash, title, text FROM pages WHERE url_id IN ",
            );
            push_id_list(&mut qb, chunk);
            qb.push(
                " ON CONFLICT (url_id, run_id) DO UPDATE SET status = excluded.status, \
                 fetched_at = excluded.fetched_at, content_hash = excluded.content_hash, \
                 title = excluded.title, text = excluded.text",
            );
            execute_once(conn, qb).await?;
        }
    }
    // Check time, schedule and removal of every page revisited, kept or
    // stored again (a page stored again is no longer removed), in the
    // narrow `page_checks`: a kept page's row in `pages`, text and all, is
    // not rewritten.
    for stored in [false, true] {
        let checks: Vec<(i64, &RevisitRecord)> = fetches
            .iter()
            .filter(|f| f.page.is_some() == stored)
            .filter_map(|f| Some((f.url_id, f.revisit.as_ref()?)))
            .collect();
        for chunk in ladder_by(&checks, |c| c.0) {
            let mut qb: QueryBuilder<Db> = QueryBuilder::new(
                "INSERT INTO page_checks (url_id, checked_at, revisit_ms, due_at, removed_run) ",
            );
            qb.push_values(chunk, |mut b, (url_id, r)| {
                let removed = (r.change == Some(Change::Removed)).then_some(r.run_id);
                b.push_bind(*url_id)
                    .push_bind(r.checked_at)
                    .push_bind(r.revisit_ms)
                    .push_bind(r.due_at)
                    .push_bind(removed);
            });
            qb.push(
                " ON CONFLICT (url_id) DO UPDATE SET checked_at = excluded.checked_at, \
                 revisit_ms = excluded.revisit_ms, due_at = excluded.due_at, removed_run = ",
            );
            // A kept page stays removed until a page is stored again.
            qb.push(if stored {
                "excluded.removed_run"
            } else {
                "COALESCE(excluded.removed_run, page_checks.removed_run)"
            });
            execute_cached(conn, qb).await?;
        }
    }
    // New validators a 304 sent (rare: the coordinator leaves out those
    // equal to the stored ones).
    for f in fetches.iter().filter(|f| f.page.is_none()) {
        let Some(r) = &f.revisit else { continue };
        if r.etag.is_none() && r.last_modified.is_none() {
            continue;
        }
        sqlx::query(
            "UPDATE pages SET etag = COALESCE($1, etag), last_modified = COALESCE($2, last_modified) \
             WHERE url_id = $3",
        )
        .bind(&r.etag)
        .bind(&r.last_modified)
        .bind(f.url_id)
        .execute(&mut *conn)
        .await?;
    }
    // A page stored again (changed, or back after it was gone) replaces
    // its links unless they are the same ones (the usual edit leaves a
    // page's links alone), which their fingerprint tells without reading
    // them. For a page that changed, the links added and gone are
    // recorded.
    let mut same_links = HashSet::new();
    let mut link_changes: Vec<(i64, i64, i64, &str)> = Vec::new();
    let mut replaced: Vec<i64> = Vec::new();
    let mut stored_again: Vec<i64> = Vec::new();
    // Pages whose stored links are compared with the new ones, and those
    // of them whose stored links must be read for it.
    let mut compared: Vec<&FetchRecord> = Vec::new();
    let mut to_read: Vec<&FetchRecord> = Vec::new();
    let no_links = links_hash(&[]);
    let again: Vec<&FetchRecord> = fetches
        .iter()
        .filter(|f| {
            f.page.is_some()
                && f.revisit
                    .as_ref()
                    .is_some_and(|r| matches!(r.change, Some(Change::Changed | Change::New)))
        })
        .collect();
    let stored = read_links_hashes(conn, &again).await?;
    for f in again {
        stored_again.push(f.url_id);
        match stored.get(&f.url_id) {
            // No page stored: no links to replace (a new page has no
            // links added or gone).
            None => {}
            Some(Some(h)) if Some(*h) == f.page.as_ref().map(|p| p.links_hash) => {
                same_links.insert(f.url_id);
            }
            // None stored: every link is added.
            Some(Some(h)) if *h == no_links => compared.push(f),
            // Different, or stored before fingerprints were kept.
            Some(_) => {
                compared.push(f);
                to_read.push(f);
            }
        }
    }
    let old_links = read_links(conn, &to_read).await?;
    for f in compared {
        let r = f.revisit.as_ref().expect("a revisit");
        let old = old_links.get(&f.url_id).map_or(&[][..], Vec::as_slice);
        let same = old.len() == f.links.len()
            && old.iter().zip(&f.links).all(|(o, n)| {
                o.0 == n.to_id && o.1 == n.anchor && o.2 == n.nofollow && o.3.as_deref() == n.kind
            });
        if same {
            same_links.insert(f.url_id);
            continue;
        }
        if !old.is_empty() {
            replaced.push(f.url_id);
        }
        if r.change == Some(Change::Changed) {
            let before: HashSet<i64> = old.iter().map(|o| o.0).collect();
            let after: HashSet<i64> = f.links.iter().map(|l| l.to_id).collect();
            link_changes.extend(
                after
                    .difference(&before)
                    .map(|&to| (r.run_id, f.url_id, to, "added")),
            );
            link_changes.extend(
                before
                    .difference(&after)
                    .map(|&to| (r.run_id, f.url_id, to, "gone")),
            );
        }
    }
    for chunk in replaced.chunks(URL_ROWS_PER_STMT) {
        let mut qb: QueryBuilder<Db> = QueryBuilder::new("DELETE FROM links WHERE from_id IN ");
        push_id_list(&mut qb, chunk);
        execute_once(conn, qb).await?;
    }
    for chunk in stored_again.chunks(URL_ROWS_PER_STMT) {
        // Its kept body and fields were the old version's too (the new
        // version's come with it, if it has any).
        for sql in [
            "DELETE FROM page_html WHERE url_id IN ",
            "DELETE FROM extracted WHERE url_id IN ",
        ] {
            let mut qb: QueryBuilder<Db> = QueryBuilder::new(sql);
            push_id_list(&mut qb, chunk);
            execute_once(conn, qb).await?;
        }
    }
    for chunk in ladder_by(&link_changes, |l| (l.1, l.2)) {
        let mut qb: QueryBuilder<Db> =
            QueryBuilder::new("INSERT INTO link_changes (run_id, from_id, to_id, change) ");
        qb.push_values(chunk, |mut b, (run, from, to, change)| {
            b.push_bind(*run)
                .push_bind(*from)
                .push_bind(*to)
                .push_bind(*change);
        });
        qb.push(" ON CONFLICT (run_id, from_id, to_id) DO UPDATE SET change = excluded.change");
        execute_cached(conn, qb).await?;
    }
    Ok(same_links)
}
