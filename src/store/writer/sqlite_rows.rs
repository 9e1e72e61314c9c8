//! SQLite's way to write a batch's hot rows (see `batch::Rows`): on the
//! writer's own thread, through the connection's handle, one prepared
//! single-row statement per table stepped once per row.
//!
//! sqlx runs each SQLite connection on a thread of its own: every
//! statement is a message there and a reply back (two context switches),
//! and every bound value is copied into an argument list first. A batch of
//! ~100 pages carries ~4,000 links and as many bound values again for the
//! pages, URLs and summaries, so those hand-offs, copies and the parsing
//! of multi-row statements were most of the writer's cost. Here the
//! writer takes the handle from sqlx's thread for the length of these
//! statements (`lock_handle`), inside the transaction sqlx began, and
//! binds straight from the records. The SQL is the multi-row statements'
//! own (`batch::INSERT_URLS` and the rest), one row at a time.

use rusqlite::{Connection, Statement, params};

use super::batch::{self, Rows};
use crate::store::StoreError;
use crate::store::records::NewUrl;

/// SQLite's: a URL recorded as skipped for a limit can be queued again
/// when it is found again within the limits (a shallower path to it, say).
/// Every other conflict keeps the first record.
const URLS_UPSERT: &str = " ON CONFLICT (id) DO UPDATE SET state = excluded.state, reason = NULL, \
     depth = excluded.depth, discovered_from = excluded.discovered_from, sitemap = excluded.sitemap, \
     updated_at = excluded.updated_at \
     WHERE urls.state = 'skipped' AND urls.reason IN ('max_depth', 'max_pages', 'nofollow') \
     AND excluded.state IN ('queued', 'leased')";

/// (PostgreSQL's links go by `COPY`: the statement is SQLite's alone.)
const INSERT_LINKS: &str = "INSERT INTO links (from_id, to_id, anchor, nofollow, kind) ";

/// Writes `rows` in the open transaction of `conn`.
pub(super) async fn write(
    conn: &mut sqlx::SqliteConnection,
    rows: &Rows<'_>,
    now: i64,
) -> Result<(), StoreError> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is valid and no other thread uses it while
    // `handle` (sqlx's lock on it) lives, which outlives `db`;
    // `from_handle` leaves the connection open when `db` is dropped.
    let db = unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr())? };
    let result = write_on(&db, rows, now);
    drop(db);
    drop(handle);
    result.map_err(StoreError::from)
}

fn write_on(db: &Connection, rows: &Rows<'_>, now: i64) -> rusqlite::Result<()> {
    write_urls(db, &rows.urls, now)?;
    if !rows.pages.is_empty() {
        let mut st = prepare(db, batch::INSERT_PAGES, 26, batch::PAGES_UPSERT)?;
        for f in &rows.pages {
            let Some(p) = &f.page else { continue };
            st.execute(params![
                f.url_id,
                p.status,
                p.final_url,
                p.redirect_to,
                p.content_type,
                p.size as i64,
                p.truncated,
                p.fetched_at,
                p.fetch_ms,
                p.etag,
                p.last_modified,
                p.content_hash,
                p.title,
                p.description,
                p.language,
                p.canonical,
                p.base_href,
                p.meta_robots,
                p.encoding,
                p.text,
                p.text_kinds,
                p.markdown,
                p.links_count,
                p.noindex,
                p.x_robots_tag,
                p.links_hash
            ])?;
        }
    }
    if !rows.summaries.is_empty() {
        let mut st = prepare(db, batch::INSERT_SUMMARIES, 9, batch::SUMMARIES_UPSERT)?;
        for (hash, s) in &rows.summaries {
            st.execute(params![
                hash,
                s.key.backend,
                s.key.model,
                s.key.prompt_version,
                "done",
                s.text,
                1,
                now,
                now
            ])?;
        }
    }
    if !rows.links.is_empty() {
        let mut st = prepare(db, INSERT_LINKS, 5, "")?;
        for (from, l) in &rows.links {
            st.execute(params![from, l.to_id, l.anchor, l.nofollow, l.kind])?;
        }
    }
    if !rows.states.is_empty() {
        let sql = format!(
            "{}?1, reason = ?2, attempts = attempts + ?3, updated_at = ?4 WHERE id = ?5",
            batch::SET_STATE
        );
        let mut st = db.prepare(&sql)?;
        for (&(state, reason, attempts), ids) in &rows.states {
            for id in ids {
                st.execute(params![state.as_str(), reason, attempts, now, id])?;
            }
        }
    }
    Ok(())
}

/// Inserts `urls` (a URL recorded as skipped for a limit queued again,
/// [`URLS_UPSERT`]) in the open transaction of `conn`. Returns no
/// ids: SQLite's upsert needs no second pass (see `batch::record_urls`).
pub(super) async fn insert_urls(
    conn: &mut sqlx::SqliteConnection,
    urls: &[&NewUrl],
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: as in `write`.
    let db = unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr())? };
    let result = write_urls(&db, urls, now);
    drop(db);
    drop(handle);
    result.map_err(StoreError::from)?;
    Ok(Vec::new())
}

fn write_urls(db: &Connection, urls: &[&NewUrl], now: i64) -> rusqlite::Result<()> {
    if urls.is_empty() {
        return Ok(());
    }
    let mut st = prepare(db, batch::INSERT_URLS, 11, URLS_UPSERT)?;
    for u in urls {
        st.execute(params![
            u.id,
            u.url,
            u.origin,
            u.depth,
            u.state.as_str(),
            u.reason,
            u.discovered_from,
            u.redirect_hops,
            u.sitemap,
            now,
            now
        ])?;
    }
    Ok(())
}

/// `insert VALUES (?1, …, ?columns) upsert`.
fn prepare<'c>(
    db: &'c Connection,
    insert: &str,
    columns: usize,
    upsert: &str,
) -> rusqlite::Result<Statement<'c>> {
    let mut sql = String::with_capacity(insert.len() + upsert.len() + 8 * columns);
    sql.push_str(insert);
    sql.push_str("VALUES (");
    for i in 1..=columns {
        if i > 1 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("?{i}"));
    }
    sql.push(')');
    sql.push_str(upsert);
    db.prepare(&sql)
}
