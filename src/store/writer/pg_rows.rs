//! PostgreSQL's way to write a batch's hot rows (see `batch::Rows`): the
//! URLs (which `batch::record_urls` records first), the pages, the
//! summaries and each URL state change as one statement each (arrays, one
//! per column: each statement is a round trip to the server, whatever its
//! rows), and the links, most of a batch's rows, by one `COPY … FROM
//! STDIN` in the binary format. The SQL is the shared statements'
//! (`batch::INSERT_PAGES` and the rest), as SQLite's single-row path
//! (`sqlite_rows`) uses it.

use sqlx::PgConnection;

use super::batch::{self, Rows};
use crate::store::StoreError;
use crate::store::records::{FetchRecord, LinkRecord, NewUrl, PageRecord, SummaryRecord};

/// Writes `rows` in the open transaction of `conn`.
pub(super) async fn write(
    conn: &mut PgConnection,
    rows: &Rows<'_>,
    now: i64,
) -> Result<(), StoreError> {
    if !rows.urls.is_empty() {
        batch::record_urls(conn, rows.urls.clone(), now, None).await?;
    }
    for run in batch::runs_by(&rows.pages, |f| f.url_id) {
        insert_pages(conn, run).await?;
    }
    if !rows.summaries.is_empty() {
        insert_summaries(conn, &rows.summaries, now).await?;
    }
    if !rows.links.is_empty() {
        write_links(conn, &rows.links).await?;
    }
    for (&(state, reason, attempts), ids) in &rows.states {
        // A URL twice in `ids` counts its attempts once, as SQLite's
        // `WHERE id IN (…)` does.
        let sql = format!(
            "{}$1, reason = $2, attempts = attempts + $3, updated_at = $4 WHERE id = ANY($5)",
            batch::SET_STATE
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.as_str())
            .bind(reason)
            .bind(attempts as i64)
            .bind(now)
            .bind(ids)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Inserts `urls` as one statement of arrays (see [`insert_pages`]), in
/// the order given (`batch::record_urls` sorts them by id: the order in
/// which every process takes the rows' locks). Returns the ids inserted.
/// A URL already recorded is left alone: PostgreSQL locks the row of
/// every conflict of an upsert (rows a claim of another process may be
/// leasing), so `batch::queue_again` takes the few skipped for a limit.
/// As multi-row statements in chunks of the ladder's sizes, a batch's
/// ~130 new URLs took four to six round trips.
pub(super) async fn insert_urls(
    conn: &mut PgConnection,
    urls: &[&NewUrl],
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    if urls.is_empty() {
        return Ok(Vec::new());
    }
    fn col<'a, T>(urls: &[&'a NewUrl], f: impl Fn(&'a NewUrl) -> T) -> Vec<T> {
        urls.iter().map(|u| f(u)).collect()
    }
    // `WITH ORDINALITY … ORDER BY`: the rows go in the arrays' order.
    let sql = format!(
        "{}SELECT id, url, origin, depth, state, reason, found_from, hops, sitemap, $10, $10 \
         FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], \
         $7::int8[], $8::int8[], $9::bool[]) WITH ORDINALITY \
         AS v (id, url, origin, depth, state, reason, found_from, hops, sitemap, n) ORDER BY n \
         ON CONFLICT (id) DO NOTHING RETURNING id",
        batch::INSERT_URLS
    );
    let ids = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
        .bind(col(urls, |u| u.id))
        .bind(col(urls, |u| u.url.as_str()))
        .bind(col(urls, |u| u.origin.as_str()))
        .bind(col(urls, |u| i64::from(u.depth)))
        .bind(col(urls, |u| u.state.as_str()))
        .bind(col(urls, |u| u.reason))
        .bind(col(urls, |u| u.discovered_from))
        .bind(col(urls, |u| i64::from(u.redirect_hops)))
        .bind(col(urls, |u| u.sitemap))
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    Ok(ids)
}

/// The pages of `rows` (fetches with a page, no URL twice) as one
/// statement: each column an array, `unnest` making them rows. One round
/// trip however many pages; as multi-row statements in chunks of the
/// ladder's sizes a batch took four, and the round trips (not the
/// server's work) were most of the writer's time.
async fn insert_pages(conn: &mut PgConnection, rows: &[&FetchRecord]) -> Result<(), StoreError> {
    let pages: Vec<(i64, &PageRecord)> = rows
        .iter()
        .filter_map(|f| Some((f.url_id, f.page.as_ref()?)))
        .collect();
    if pages.is_empty() {
        return Ok(());
    }
    fn col<'a, T>(pages: &[(i64, &'a PageRecord)], f: impl Fn(&'a PageRecord) -> T) -> Vec<T> {
        pages.iter().map(|(_, p)| f(p)).collect()
    }
    let text = |f: fn(&PageRecord) -> &Option<String>| col(&pages, move |p| f(p).as_deref());
    let sql = format!(
        "{}SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], \
         $6::int8[], $7::bool[], $8::int8[], $9::int8[], $10::text[], $11::text[], $12::text[], \
         $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], \
         $20::text[], $21::text[], $22::text[], $23::int8[], $24::bool[], $25::text[], $26::int8[]){}",
        batch::INSERT_PAGES,
        batch::PAGES_UPSERT
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(pages.iter().map(|(id, _)| *id).collect::<Vec<i64>>())
        .bind(col(&pages, |p| i64::from(p.status)))
        .bind(col(&pages, |p| p.final_url.as_str()))
        .bind(text(|p| &p.redirect_to))
        .bind(text(|p| &p.content_type))
        .bind(col(&pages, |p| p.size as i64))
        .bind(col(&pages, |p| p.truncated))
        .bind(col(&pages, |p| p.fetched_at))
        .bind(col(&pages, |p| p.fetch_ms))
        .bind(text(|p| &p.etag))
        .bind(text(|p| &p.last_modified))
        .bind(text(|p| &p.content_hash))
        .bind(text(|p| &p.title))
        .bind(text(|p| &p.description))
        .bind(text(|p| &p.language))
        .bind(text(|p| &p.canonical))
        .bind(text(|p| &p.base_href))
        .bind(text(|p| &p.meta_robots))
        .bind(text(|p| &p.encoding))
        .bind(text(|p| &p.text))
        .bind(text(|p| &p.text_kinds))
        .bind(text(|p| &p.markdown))
        .bind(col(&pages, |p| i64::from(p.links_count)))
        .bind(col(&pages, |p| p.noindex))
        .bind(text(|p| &p.x_robots_tag))
        .bind(col(&pages, |p| p.links_hash))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The batch's extractive summaries as one statement of arrays (see
/// [`insert_pages`]). A content twice is one summary: `DO NOTHING` takes
/// the first, in one statement as in two.
async fn insert_summaries(
    conn: &mut PgConnection,
    summaries: &[(&str, &SummaryRecord)],
    now: i64,
) -> Result<(), StoreError> {
    let col =
        |f: fn(&SummaryRecord) -> &str| summaries.iter().map(|(_, s)| f(s)).collect::<Vec<&str>>();
    let sql = format!(
        "{}SELECT h, b, m, v, 'done', s, 1, $6, $6 FROM unnest($1::text[], $2::text[], $3::text[], \
         $4::text[], $5::text[]) AS r (h, b, m, v, s){}",
        batch::INSERT_SUMMARIES,
        batch::SUMMARIES_UPSERT
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(summaries.iter().map(|(h, _)| *h).collect::<Vec<&str>>())
        .bind(col(|s| s.key.backend))
        .bind(col(|s| &s.key.model))
        .bind(col(|s| &s.key.prompt_version))
        .bind(col(|s| &s.text))
        .bind(now)
        .execute(&mut *conn)
        .await?;
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
