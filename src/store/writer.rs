//! The store writer: the one task that writes to the database during a crawl.
//!
//! In: [`WriteOp`]s over a bounded channel (a full channel is back-pressure
//! on the crawl). Out: committed transactions; replies on `oneshot`s for
//! operations that need an answer (refill, flush).
//!
//! Batching is group commit: the writer takes whatever is waiting when it is
//! ready (up to [`MAX_BATCH`] operations) and commits it as one transaction,
//! so under load batches grow and per-commit cost is shared. A batch smaller
//! than `MIN_BATCH` waits up to `LINGER` for company, unless someone is
//! waiting on its reply (a refill, a flush) or it holds as many fetches as
//! the crawl lets wait (see below). A page, the state change of its URL,
//! its links and the URLs it revealed are one operation, so they are always
//! committed together.
//!
//! The writer publishes how many fetches (and rows of links and new URLs
//! with them) it has committed. The crawl counts a fetch against its
//! concurrency until then, so however the process dies, at most
//! `concurrency` fetched pages are lost and fetched again on resume; and it
//! holds back new fetches while too many rows wait, which bounds the memory
//! of a backlog of link-heavy pages.

use std::collections::{HashMap, HashSet};

use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::records::*;
use super::{CrawlState, StoreError};
use crate::util::now_ms;

/// Most operations committed in one transaction.
pub const MAX_BATCH: usize = 512;
/// A batch smaller than this waits up to [`LINGER`] for more.
const MIN_BATCH: usize = 64;
/// ... unless it carries this many rows (the crawl holds back fetches
/// while rows wait).
const MIN_BATCH_ROWS: u64 = 5_000;
const LINGER: std::time::Duration = std::time::Duration::from_millis(25);

/// Starts the writer on its own connection, with a checkpointer on a
/// second one. The task ends when every handle is dropped (after committing
/// what was sent) or on the first database error, which it returns.
///
/// A batch holding `linger_fetches` fetches is committed without lingering:
/// the crawl is waiting on them.
pub fn spawn(
    conn: SqliteConnection,
    checkpoint_conn: SqliteConnection,
    capacity: usize,
    linger_fetches: usize,
) -> (
    WriterHandle,
    tokio::task::JoinHandle<Result<WriterStats, StoreError>>,
) {
    let (tx, rx) = mpsc::channel(capacity);
    let (committed_tx, committed) = watch::channel(Committed::default());
    // The writer is the crawl's one serial stage: it runs on a thread and
    // runtime of its own, so that each of its statements' replies is
    // picked up at once, not after the page analyses queued on the
    // crawl's runtime threads (that wait was a fifth of its busy time).
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("trawl-writer".into())
        .spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(rt) => rt.block_on(run(conn, rx, committed_tx, linger_fetches.max(1))),
                Err(e) => Err(StoreError::Sql(sqlx::Error::Io(e))),
            };
            let _ = done_tx.send(result);
        });
    let task = tokio::spawn(async move {
        let stop = CancellationToken::new();
        let checkpointer = tokio::spawn(checkpoint(checkpoint_conn, stop.clone()));
        let result = match thread {
            Ok(_) => done_rx.await.unwrap_or(Err(StoreError::WriterGone)),
            Err(e) => Err(StoreError::Sql(sqlx::Error::Io(e))),
        };
        stop.cancel();
        let _ = checkpointer.await;
        result
    });
    (WriterHandle { tx, committed }, task)
}

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<WriteOp>,
    committed: watch::Sender<Committed>,
    linger_fetches: usize,
) -> Result<WriterStats, StoreError> {
    // Checkpoints copy the WAL back into the database file and fsync it:
    // the most expensive thing SQLite does. Left automatic, every few
    // hundred commits the writer would stop for it; the checkpointer does it
    // on its own connection instead, beside the writer.
    sqlx::query("PRAGMA wal_autocheckpoint = 0")
        .execute(&mut conn)
        .await?;
    let mut stats = WriterStats::default();
    let mut batch: Vec<WriteOp> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        linger(&mut rx, &mut batch, linger_fetches).await;
        let n = batch.len() as u64;
        let fetches = count_fetches(&batch) as u64;
        let rows = count_rows(&batch);
        let t = std::time::Instant::now();
        let replies = commit(&mut conn, &mut batch).await?;
        if fetches > 0 {
            committed.send_modify(|c| {
                c.fetches += fetches;
                c.rows += rows;
            });
        }
        stats.busy += t.elapsed();
        stats.transactions += 1;
        stats.ops += n;
        for reply in replies {
            reply.send();
        }
    }
    conn.close().await.ok();
    Ok(stats)
}

/// Each commit has a fixed cost (WAL frames for the pages every batch
/// touches), so a small batch is worth holding back a moment for company
/// — but only data nobody waits for: a batch holding a refill or a flush,
/// or `linger_fetches` fetches holding up the crawl's slots, goes at once.
async fn linger(rx: &mut mpsc::Receiver<WriteOp>, batch: &mut Vec<WriteOp>, linger_fetches: usize) {
    let deadline = tokio::time::Instant::now() + LINGER;
    while batch.len() < MIN_BATCH
        && count_fetches(batch) < linger_fetches
        && count_rows(batch) < MIN_BATCH_ROWS
        && !batch.iter().any(WriteOp::is_awaited)
    {
        match tokio::time::timeout_at(deadline, rx.recv_many(batch, MAX_BATCH - batch.len())).await
        {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
}

/// Rows of links and new URLs carried by the fetches in `batch`.
fn count_rows(batch: &[WriteOp]) -> u64 {
    batch
        .iter()
        .map(|op| match op {
            WriteOp::Fetch(rec) => rec.rows(),
            _ => 0,
        })
        .sum()
}

fn count_fetches(batch: &[WriteOp]) -> usize {
    batch
        .iter()
        .filter(|op| matches!(op, WriteOp::Fetch(_)))
        .count()
}

/// Passive checkpoints while the writer runs (they never block it), every
/// 5 seconds, and a truncating one at the end so the WAL file does not stay
/// large. Every 500 ms cost a fifth more CPU per page on the benchmark: a
/// page rewritten by several batches (B-tree interior pages, leaves of the
/// random-key `urls` and `pages` tables) was copied to the database once
/// per checkpoint instead of once.
async fn checkpoint(mut conn: SqliteConnection, stop: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(5000));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await {
                    tracing::debug!("checkpoint: {e}");
                }
            }
        }
    }
    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
    {
        tracing::debug!("final checkpoint: {e}");
    }
    conn.close().await.ok();
}

/// A reply to send once the batch is committed.
enum Reply {
    Refill(oneshot::Sender<Vec<LeasedUrl>>, Vec<LeasedUrl>),
    Flush(oneshot::Sender<()>),
}

impl Reply {
    fn send(self) {
        // A receiver that went away (a stopping crawl) is not an error.
        match self {
            Reply::Refill(tx, rows) => drop(tx.send(rows)),
            Reply::Flush(tx) => drop(tx.send(())),
        }
    }
}

/// Rows accumulated from consecutive data operations, written with
/// multi-row statements.
#[derive(Default)]
struct Pending {
    urls: Vec<NewUrl>,
    fetches: Vec<FetchRecord>,
}

/// Sets the state and reason of URLs that were not fetched.
async fn settle(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    ids: &[i64],
    state: UrlState,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    for chunk in ids.chunks(URL_ROWS_PER_STMT) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("UPDATE urls SET revisit_state = NULL, state = ");
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

async fn commit(
    conn: &mut SqliteConnection,
    batch: &mut Vec<WriteOp>,
) -> Result<Vec<Reply>, StoreError> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut replies = Vec::new();
    let mut pending = Pending::default();
    let now = now_ms();
    for op in batch.drain(..) {
        match op {
            WriteOp::Urls(urls) => pending.urls.extend(urls),
            WriteOp::Fetch(rec) => pending.fetches.push(*rec),
            other => {
                write_pending(&mut tx, &mut pending, now).await?;
                match other {
                    WriteOp::Refill {
                        limit,
                        revisits,
                        reply,
                    } => {
                        let rows = refill(&mut tx, limit, revisits, now).await?;
                        replies.push(Reply::Refill(reply, rows));
                    }
                    WriteOp::SkipPending { reason } => {
                        // A revisit not made goes back to what it was
                        // (a stored page stays `done`); a new URL is
                        // skipped.
                        sqlx::query(
                            "UPDATE urls SET state = COALESCE(revisit_state, 'skipped'), \
                             reason = CASE WHEN revisit_state IS NULL THEN ? ELSE revisit_reason END, \
                             revisit_state = NULL, revisit_reason = NULL, updated_at = ? \
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
                                "INSERT INTO cookies (host, jar) VALUES (?, ?) \
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
                             robots_unusable_rules) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET \
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
                            "INSERT INTO hosts (origin, robots_fetched_at, next_fetch_at) VALUES (?, 0, ?) \
                             ON CONFLICT (origin) DO UPDATE SET \
                             next_fetch_at = MAX(COALESCE(hosts.next_fetch_at, 0), excluded.next_fetch_at)",
                        )
                        .bind(&origin)
                        .bind(until)
                        .execute(&mut *tx)
                        .await?;
                    }
                    WriteOp::ReleaseLeased => {
                        sqlx::query("UPDATE urls SET state = 'queued', updated_at = ? WHERE state = 'leased'")
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    WriteOp::CrawlState { id, state } => {
                        let finished = (state == CrawlState::Finished).then_some(now);
                        sqlx::query(
                            "UPDATE crawls SET state = ?, updated_at = ?, finished_at = COALESCE(?, finished_at) WHERE id = ?",
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
    write_pending(&mut tx, &mut pending, now).await?;
    tx.commit().await?;
    Ok(replies)
}

// SQLite allows 32766 bound parameters per statement; stay well below.
pub(super) const URL_ROWS_PER_STMT: usize = 2000;

async fn write_pending(
    conn: &mut SqliteConnection,
    pending: &mut Pending,
    now: i64,
) -> Result<(), StoreError> {
    let lone_urls = std::mem::take(&mut pending.urls);
    let fetches = std::mem::take(&mut pending.fetches);
    let urls: Vec<&NewUrl> = lone_urls
        .iter()
        .chain(fetches.iter().flat_map(|f| &f.new_urls))
        .collect();
    for chunk in ladder(&urls) {
        insert_urls(conn, chunk, now).await?;
    }
    let same_links = write_revisits(conn, &fetches).await?;
    let with_pages: Vec<&FetchRecord> = fetches.iter().filter(|f| f.page.is_some()).collect();
    for chunk in ladder(&with_pages) {
        insert_pages(conn, chunk).await?;
    }
    // Kept bodies and fields (only crawls that keep HTML or extract).
    let kept: Vec<(i64, &super::fields::KeptHtml)> = with_pages
        .iter()
        .filter_map(|f| Some((f.url_id, f.page.as_ref()?.html.as_ref()?)))
        .collect();
    for chunk in ladder(&kept) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT OR REPLACE INTO page_html (url_id, size, body) ");
        qb.push_values(chunk, |mut b, (id, h)| {
            b.push_bind(*id)
                .push_bind(h.size as i64)
                .push_bind(h.packed.clone());
        });
        execute_cached(conn, qb).await?;
    }
    let fields: Vec<(i64, &super::fields::FieldRow)> = with_pages
        .iter()
        .flat_map(|f| {
            let rows = f.page.as_ref().map_or(&[][..], |p| &p.fields[..]);
            rows.iter().map(move |r| (f.url_id, r))
        })
        .collect();
    for chunk in ladder(&fields) {
        execute_cached(conn, super::fields::insert_fields(chunk)).await?;
    }
    let summaries: Vec<(&str, &SummaryRecord)> = with_pages
        .iter()
        .filter_map(|f| {
            let p = f.page.as_ref()?;
            Some((p.content_hash.as_deref()?, p.summary.as_ref()?))
        })
        .collect();
    for chunk in ladder(&summaries) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO summaries (content_hash, backend, model, prompt_version, state, summary, \
             attempts, created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, (hash, s)| {
            b.push_bind(hash.to_string())
                .push_bind(s.key.backend)
                .push_bind(s.key.model.clone())
                .push_bind(s.key.prompt_version.clone())
                .push_bind("done")
                .push_bind(s.text.clone())
                .push_bind(1i64)
                .push_bind(now)
                .push_bind(now);
        });
        // The same body at two URLs, or seen before: one summary.
        qb.push(" ON CONFLICT (content_hash, backend, model, prompt_version) DO NOTHING");
        execute_cached(conn, qb).await?;
    }
    let links: Vec<(i64, &LinkRecord)> = fetches
        .iter()
        .filter(|f| !same_links.contains(&f.url_id))
        .flat_map(|f| f.links.iter().map(move |l| (f.url_id, l)))
        .collect();
    for chunk in ladder(&links) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO links (from_id, to_id, anchor, nofollow, kind) ");
        qb.push_values(chunk, |mut b, (from, l)| {
            b.push_bind(*from)
                .push_bind(l.to_id)
                .push_bind(l.anchor.clone())
                .push_bind(l.nofollow)
                .push_bind(l.kind);
        });
        execute_cached(conn, qb).await?;
    }
    // One statement per (state, reason, attempts) rather than one per page:
    // the attempt counter is incremented in SQL.
    let mut groups: HashMap<(UrlState, Option<&str>, u32), Vec<i64>> = HashMap::new();
    for f in &fetches {
        groups
            .entry((f.state, f.reason.as_deref(), f.attempts))
            .or_default()
            .push(f.url_id);
    }
    for ((state, reason, attempts), ids) in groups {
        for chunk in ladder(&ids) {
            // A revisit made forgets the state it was queued from.
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("UPDATE urls SET revisit_state = NULL, state = ");
            qb.push_bind(state.as_str())
                .push(", reason = ")
                .push_bind(reason.map(str::to_string))
                .push(", attempts = attempts + ")
                .push_bind(attempts as i64)
                .push(", updated_at = ")
                .push_bind(now)
                .push(" WHERE id IN ");
            push_id_list(&mut qb, chunk);
            execute_cached(conn, qb).await?;
        }
    }
    let became: Vec<i64> = fetches
        .iter()
        .filter(|f| f.became_sitemap)
        .map(|f| f.url_id)
        .collect();
    if !became.is_empty() {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("UPDATE urls SET sitemap = 1 WHERE id IN ");
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
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("UPDATE urls SET state = 'leased', reason = NULL WHERE id IN ");
        push_id_list(&mut qb, &relet);
        execute_once(conn, qb).await?;
    }
    for f in &fetches {
        if !f.chain.is_empty()
            && let Some(page) = &f.page
        {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE pages SET final_url = ");
            qb.push_bind(page.final_url.clone())
                .push(" WHERE url_id IN ");
            push_id_list(&mut qb, &f.chain);
            execute_once(conn, qb).await?;
        }
    }
    Ok(())
}

/// Appends `(id, id, …)` as bound parameters.
pub(super) fn push_id_list(qb: &mut QueryBuilder<Sqlite>, ids: &[i64]) {
    qb.push("(");
    let mut sep = qb.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    qb.push(")");
}

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

/// Runs a statement of one of the [`LADDER`] sizes, kept in the
/// connection's statement cache.
async fn execute_cached(
    conn: &mut SqliteConnection,
    mut qb: QueryBuilder<Sqlite>,
) -> Result<(), StoreError> {
    qb.build().execute(conn).await?;
    Ok(())
}

/// Runs a statement built for one batch. Multi-row statements differ in
/// SQL with their row count, so they are not kept in the connection's
/// statement cache: cached, up to 100 of these multi-megabyte prepared
/// statements stayed alive.
pub(super) async fn execute_once(
    conn: &mut SqliteConnection,
    mut qb: QueryBuilder<Sqlite>,
) -> Result<(), StoreError> {
    qb.build().persistent(false).execute(conn).await?;
    Ok(())
}

async fn insert_urls(
    conn: &mut SqliteConnection,
    rows: &[&NewUrl],
    now: i64,
) -> Result<(), StoreError> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO urls (id, url, origin, depth, state, reason, discovered_from, redirect_hops, sitemap, discovered_at, updated_at) ",
    );
    qb.push_values(rows, |mut b, u| {
        b.push_bind(u.id)
            .push_bind(u.url.clone())
            .push_bind(u.origin.clone())
            .push_bind(u.depth as i64)
            .push_bind(u.state.as_str())
            .push_bind(u.reason)
            .push_bind(u.discovered_from)
            .push_bind(u.redirect_hops as i64)
            .push_bind(u.sitemap)
            .push_bind(now)
            .push_bind(now);
    });
    // A URL recorded as skipped for a limit can be queued again when it is
    // found again within the limits (a shallower path to it, say). Every
    // other conflict keeps the first record.
    qb.push(
        " ON CONFLICT (id) DO UPDATE SET state = excluded.state, reason = NULL, depth = excluded.depth, \
         discovered_from = excluded.discovered_from, sitemap = excluded.sitemap, updated_at = excluded.updated_at \
         WHERE urls.state = 'skipped' AND urls.reason IN ('max_depth', 'max_pages', 'nofollow') \
         AND excluded.state IN ('queued', 'leased')",
    );
    execute_cached(conn, qb).await?;
    Ok(())
}

async fn insert_pages(
    conn: &mut SqliteConnection,
    rows: &[&FetchRecord],
) -> Result<(), StoreError> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT OR REPLACE INTO pages (url_id, status, final_url, redirect_to, content_type, size, truncated, \
         fetched_at, fetch_ms, etag, last_modified, content_hash, title, description, language, canonical, \
         base_href, meta_robots, encoding, text, text_kinds, markdown, links_count, noindex, x_robots_tag) ",
    );
    qb.push_values(rows, |mut b, f| {
        let p = f.page.as_ref().expect("filtered to fetches with pages");
        b.push_bind(f.url_id)
            .push_bind(p.status as i64)
            .push_bind(p.final_url.clone())
            .push_bind(p.redirect_to.clone())
            .push_bind(p.content_type.clone())
            .push_bind(p.size as i64)
            .push_bind(p.truncated)
            .push_bind(p.fetched_at)
            .push_bind(p.fetch_ms)
            .push_bind(p.etag.clone())
            .push_bind(p.last_modified.clone())
            .push_bind(p.content_hash.clone())
            .push_bind(p.title.clone())
            .push_bind(p.description.clone())
            .push_bind(p.language.clone())
            .push_bind(p.canonical.clone())
            .push_bind(p.base_href.clone())
            .push_bind(p.meta_robots.clone())
            .push_bind(p.encoding.clone())
            .push_bind(p.text.clone())
            .push_bind(p.text_kinds.clone())
            .push_bind(p.markdown.clone())
            .push_bind(p.links_count as i64)
            .push_bind(p.noindex)
            .push_bind(p.x_robots_tag.clone());
    });
    execute_cached(conn, qb).await?;
    Ok(())
}

async fn refill(
    conn: &mut SqliteConnection,
    limit: u32,
    revisits: bool,
    now: i64,
) -> Result<Vec<LeasedUrl>, StoreError> {
    let rows = sqlx::query(
        "UPDATE urls SET state = 'leased', updated_at = ? WHERE id IN \
         (SELECT id FROM urls WHERE state = 'queued' ORDER BY depth, id LIMIT ?) \
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
        })
        .collect();
    if revisits {
        read_revisits(conn, &mut out).await?;
    }
    // RETURNING gives no order guarantee; keep breadth-first order.
    out.sort_by_key(|u| (u.depth, u.id));
    Ok(out)
}

/// Fills in what is stored of the leased URLs' pages.
async fn read_revisits(
    conn: &mut SqliteConnection,
    leased: &mut [LeasedUrl],
) -> Result<(), StoreError> {
    let ids: Vec<i64> = leased.iter().map(|u| u.id).collect();
    let mut stored = HashMap::new();
    for chunk in ids.chunks(URL_ROWS_PER_STMT) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
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

/// A recrawl's records: the change of each page, the earlier version of a
/// page that changed (and its links, replaced by the new ones, with the
/// links added and gone in `link_changes`), and the check time, schedule
/// and new validators of a page that is kept. Returns the pages stored
/// again whose links are the ones stored: their links are not written
/// again.
async fn write_revisits(
    conn: &mut SqliteConnection,
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
    for chunk in ladder(&changes) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT OR REPLACE INTO page_changes (run_id, url_id, change, checked_at, bytes) ",
        );
        qb.push_values(chunk, |mut b, (url_id, r)| {
            b.push_bind(r.run_id)
                .push_bind(*url_id)
                .push_bind(r.change.expect("filtered").as_str())
                .push_bind(r.checked_at)
                .push_bind(r.bytes as i64);
        });
        execute_cached(conn, qb).await?;
    }
    for f in fetches {
        let Some(r) = &f.revisit else { continue };
        if f.page.is_some() && r.change == Some(Change::Changed) {
            sqlx::query(
                "INSERT OR REPLACE INTO page_versions (url_id, run_id, status, fetched_at, content_hash, title, text) \
                 SELECT url_id, ?, status, fetched_at, content_hash, title, text FROM pages WHERE url_id = ?",
            )
            .bind(r.run_id)
            .bind(f.url_id)
            .execute(&mut *conn)
            .await?;
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
        for chunk in ladder(&checks) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
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
                "COALESCE(excluded.removed_run, removed_run)"
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
            "UPDATE pages SET etag = COALESCE(?, etag), last_modified = COALESCE(?, last_modified) \
             WHERE url_id = ?",
        )
        .bind(&r.etag)
        .bind(&r.last_modified)
        .bind(f.url_id)
        .execute(&mut *conn)
        .await?;
    }
    // A page stored again (changed, or back after it was gone) replaces
    // its links, found by the index a recrawl makes, unless they are the
    // same ones (the usual edit leaves a page's links alone). For a page
    // that changed, the links added and gone are recorded.
    let mut same_links = HashSet::new();
    let mut link_changes: Vec<(i64, i64, i64, &str)> = Vec::new();
    let mut replaced: Vec<i64> = Vec::new();
    let mut stored_again: Vec<i64> = Vec::new();
    for f in fetches {
        let Some(r) = &f.revisit else { continue };
        if f.page.is_none() || !matches!(r.change, Some(Change::Changed | Change::New)) {
            continue;
        }
        let old: Vec<(i64, String, bool, Option<String>)> = sqlx::query_as(
            "SELECT to_id, anchor, nofollow, kind FROM links WHERE from_id = ? ORDER BY rowid",
        )
        .bind(f.url_id)
        .fetch_all(&mut *conn)
        .await?;
        stored_again.push(f.url_id);
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
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("DELETE FROM links WHERE from_id IN ");
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
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(sql);
            push_id_list(&mut qb, chunk);
            execute_once(conn, qb).await?;
        }
    }
    for chunk in ladder(&link_changes) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT OR REPLACE INTO link_changes (run_id, from_id, to_id, change) ",
        );
        qb.push_values(chunk, |mut b, (run, from, to, change)| {
            b.push_bind(*run)
                .push_bind(*from)
                .push_bind(*to)
                .push_bind(*change);
        });
        execute_cached(conn, qb).await?;
    }
    Ok(same_links)
}
