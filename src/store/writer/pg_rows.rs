//! PostgreSQL's way to write a batch's hot rows (see `batch::Rows`): each
//! table's rows as multi-row statements in chunks of `batch::LADDER` sizes
//! (each a round trip to the server), and the links, most of a batch's
//! rows, by one `COPY … FROM STDIN` in the binary format. The SQL is the
//! shared statements' (`batch::INSERT_PAGES` and the rest), as SQLite's
//! single-row path (`sqlite_rows`) uses it.

use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::batch::{self, Rows};
use crate::store::records::{FetchRecord, LinkRecord};
use crate::store::{StoreError, push_id_list};

/// Writes `rows` in the open transaction of `conn`.
pub(super) async fn write(
    conn: &mut PgConnection,
    rows: &Rows<'_>,
    now: i64,
) -> Result<(), StoreError> {
    if !rows.urls.is_empty() {
        batch::record_urls(conn, rows.urls.clone(), now, false).await?;
    }
    for chunk in batch::ladder_by(&rows.pages, |f| f.url_id) {
        insert_pages(conn, chunk).await?;
    }
    for chunk in batch::ladder(&rows.summaries) {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(batch::INSERT_SUMMARIES);
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
        qb.push(batch::SUMMARIES_UPSERT);
        batch::execute_cached(conn, qb).await?;
    }
    if !rows.links.is_empty() {
        write_links(conn, &rows.links).await?;
    }
    for (&(state, reason, attempts), ids) in &rows.states {
        for chunk in batch::ladder(ids) {
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(batch::SET_STATE);
            qb.push_bind(state.as_str())
                .push(", reason = ")
                .push_bind(reason.map(str::to_string))
                .push(", attempts = attempts + ")
                .push_bind(attempts as i64)
                .push(", updated_at = ")
                .push_bind(now)
                .push(" WHERE id IN ");
            push_id_list(&mut qb, chunk);
            batch::execute_cached(conn, qb).await?;
        }
    }
    Ok(())
}

async fn insert_pages(conn: &mut PgConnection, rows: &[&FetchRecord]) -> Result<(), StoreError> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(batch::INSERT_PAGES);
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
            .push_bind(p.x_robots_tag.clone())
            .push_bind(p.links_hash);
    });
    qb.push(batch::PAGES_UPSERT);
    batch::execute_cached(conn, qb).await?;
    Ok(())
}

/// All of a batch's links (`(from_id, link)`, in order) in one
/// `COPY links … FROM STDIN` in PostgreSQL's binary format (PostgreSQL
/// 15 manual, COPY, "Binary Format"): no statement to parse or plan, no
/// arrays to unnest, the rows read straight into the table. A batch of a
/// hundred pages has some 4,000 links: as one `INSERT … SELECT FROM
/// unnest(…)` of five arrays they took 40% of the server's time in a
/// crawl. The identity column `seq` numbers them in the order sent.
async fn write_links(
    conn: &mut PgConnection,
    links: &[(i64, &LinkRecord)],
) -> Result<(), StoreError> {
    // Made before the server is told to wait for it.
    let data = copy_links(links);
    let mut copy = conn
        .copy_in_raw(
            "COPY links (from_id, to_id, anchor, nofollow, kind) FROM STDIN (FORMAT binary)",
        )
        .await?;
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}

/// `links` as the binary COPY format's stream: the signature, flags and
/// header extension length (both 0), then per row its field count and
/// each field as a big-endian length (-1 for NULL) and bytes (`bigint` 8
/// bytes big-endian, `boolean` 1 byte, `text` UTF-8), then the trailer,
/// -1 as the field count.
fn copy_links(links: &[(i64, &LinkRecord)]) -> Vec<u8> {
    fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
        buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        buf.extend_from_slice(bytes);
    }
    let text: usize = links.iter().map(|(_, l)| l.anchor.len()).sum();
    let mut buf = Vec::with_capacity(21 + links.len() * 56 + text);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    for (from, l) in links {
        buf.extend_from_slice(&5i16.to_be_bytes());
        field(&mut buf, &from.to_be_bytes());
        field(&mut buf, &l.to_id.to_be_bytes());
        field(&mut buf, l.anchor.as_bytes());
        field(&mut buf, &[u8::from(l.nofollow)]);
        match l.kind {
            Some(kind) => field(&mut buf, kind.as_bytes()),
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}
