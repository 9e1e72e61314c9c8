//! Kept HTML bodies and extracted fields (schema v14).
//!
//! In: bodies to keep and fields found by `fields` (during a crawl, through
//! the writer; for `trawl extract`, through [`Store::replace_fields`]).
//! Out: kept bodies in batches, the fields of pages for export, counts.
//!
//! A body is kept zlib-compressed (RFC 1950, flate2's fastest level: the
//! benchmark's pages shrink to 17% of their size for about twice the CPU
//! of their streaming parse); a field's values are a JSON array of strings. A field that matched
//! nothing on a page has no row.

use std::io::{Read, Write};

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use sqlx::{QueryBuilder, Row};

use super::{Store, StoreError, push_id_list};
use crate::fields::FieldValues;

/// A page's body, compressed for keeping.
#[derive(Debug, Clone)]
pub struct KeptHtml {
    /// Bytes before compression.
    pub size: u64,
    /// zlib (RFC 1950).
    pub packed: Vec<u8>,
}

impl KeptHtml {
    /// Compresses `body` (CPU: the caller's thread; the writer only
    /// stores the result).
    pub fn pack(body: &[u8]) -> KeptHtml {
        let mut enc = flate2::write::ZlibEncoder::new(
            Vec::with_capacity(body.len() / 4 + 64),
            flate2::Compression::fast(),
        );
        // Writing to a Vec cannot fail.
        let packed = enc
            .write_all(body)
            .and_then(|()| enc.finish())
            .unwrap_or_default();
        KeptHtml {
            size: body.len() as u64,
            packed,
        }
    }
}

/// The body of a kept page, decompressed; at most `size` bytes are
/// expected (more is refused: the row is not what was stored).
pub fn unpack(packed: &[u8], size: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size.min(64 << 20) as usize);
    flate2::read::ZlibDecoder::new(packed)
        .take(size + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 != size {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} bytes unpacked, {size} stored", out.len()),
        ));
    }
    Ok(out)
}

/// A field of a page as stored: its name and its values as JSON.
#[derive(Debug, Clone)]
pub struct FieldRow {
    pub name: String,
    /// A JSON array of strings.
    pub json: String,
}

impl FieldRow {
    /// The rows to store for a page's fields: those with values (a field
    /// that matched nothing is not stored).
    pub fn of(fields: &[FieldValues]) -> Vec<FieldRow> {
        fields
            .iter()
            .filter(|f| !f.values.is_empty())
            .map(|f| FieldRow {
                name: f.name.clone(),
                json: serde_json::to_string(&f.values).unwrap_or_else(|_| "[]".into()),
            })
            .collect()
    }
}

/// A kept page, as `trawl extract` reads it.
#[derive(Debug)]
pub struct KeptPage {
    pub url_id: i64,
    /// The URL as crawled (its host is the charset detector's hint).
    pub url: String,
    /// The page's stored `Content-Type` (its charset decides the decoding).
    pub content_type: Option<String>,
    /// Bytes of the body before compression.
    pub size: u64,
    /// The body, zlib (see [`unpack`]).
    pub packed: Vec<u8>,
}

/// A stored field of a page, for export.
#[derive(Debug, Clone)]
pub struct StoredField {
    pub url_id: i64,
    pub name: String,
    /// The values, a JSON array of strings in document order.
    pub json: String,
}

/// The statement that stores these fields (url id, field), replacing a
/// page's field of the same name: for the crawl's writer and for `trawl
/// extract` alike.
pub(super) fn insert_fields<DB: sqlx::Database>(rows: &[(i64, &FieldRow)]) -> QueryBuilder<DB>
where
    i64: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    String: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let mut qb = QueryBuilder::new("INSERT INTO extracted (url_id, name, vals) ");
    qb.push_values(rows, |mut b, (id, r)| {
        b.push_bind(*id)
            .push_bind(r.name.clone())
            .push_bind(r.json.clone());
    });
    qb.push(" ON CONFLICT (url_id, name) DO UPDATE SET vals = excluded.vals");
    qb
}

impl Store {
    /// The next kept pages after `after` (by URL id; `None`: from the
    /// first), at most `max_rows` of them and, past the first, no more
    /// than `max_bytes` of compressed bodies. Empty at the end.
    pub async fn kept_html_after(
        &self,
        after: Option<i64>,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<Vec<KeptPage>, StoreError> {
        let from = match after {
            None => i64::MIN,
            Some(id) => match id.checked_add(1) {
                Some(next) => next,
                None => return Ok(Vec::new()),
            },
        };
        on_pool!(self, pool => {
        let mut rows = sqlx::query(
            "SELECT h.url_id, u.url, p.content_type, h.size, h.body FROM page_html h \
             JOIN urls u ON u.id = h.url_id JOIN pages p ON p.url_id = h.url_id \
             WHERE h.url_id >= $1 ORDER BY h.url_id LIMIT $2",
        )
        .bind(from)
        .bind(max_rows as i64)
        .fetch(pool);
        let (mut out, mut bytes) = (Vec::new(), 0);
        while let Some(r) = rows.try_next().await? {
            let packed: Vec<u8> = r.get("body");
            bytes += packed.len();
            out.push(KeptPage {
                url_id: r.get("url_id"),
                url: r.get("url"),
                content_type: r.get("content_type"),
                size: r.get::<i64, _>("size") as u64,
                packed,
            });
            if bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
        })
    }

    /// Pages read as HTML (they have a decoded encoding) whose body was
    /// not kept.
    pub async fn html_pages_without_body(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM pages p JOIN urls u ON u.id = p.url_id \
             WHERE p.encoding IS NOT NULL AND u.sitemap = FALSE \
             AND NOT EXISTS (SELECT 1 FROM page_html h WHERE h.url_id = p.url_id)",
        )
        .fetch_one(pool).await)?)
    }

    /// Kept bodies: how many, and their bytes before and after
    /// compression.
    pub async fn kept_html_totals(&self) -> Result<(i64, i64, i64), StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS size, \
             CAST(COALESCE(SUM(length(body)), 0) AS BIGINT) AS packed FROM page_html",
        )
        .fetch_one(pool)
        .await)?)
    }

    /// Replaces the fields `names` of these pages with what was found, in
    /// one transaction: every stored value of those names on those pages
    /// goes, the rows given come in (so running it again gives the same
    /// rows).
    pub async fn replace_fields(
        &self,
        names: &[String],
        pages: &[(i64, Vec<FieldRow>)],
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
        let mut tx = pool.begin().await?;
        let ids: Vec<i64> = pages.iter().map(|(id, _)| *id).collect();
        for chunk in ids.chunks(super::URL_ROWS_PER_STMT) {
            let mut qb: QueryBuilder<Db> =
                QueryBuilder::new("DELETE FROM extracted WHERE url_id IN ");
            push_id_list(&mut qb, chunk);
            qb.push(" AND name IN (");
            let mut sep = qb.separated(", ");
            for n in names {
                sep.push_bind(n.clone());
            }
            qb.push(")");
            qb.build().persistent(false).execute(&mut *tx).await?;
        }
        let rows: Vec<(i64, &FieldRow)> = pages
            .iter()
            .flat_map(|(id, rows)| rows.iter().map(move |r| (*id, r)))
            .collect();
        for chunk in rows.chunks(256) {
            insert_fields::<Db>(chunk)
                .build()
                .persistent(false)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        });
        Ok(())
    }

    /// The names of every stored field, sorted.
    pub async fn field_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            on_pool!(self, pool => sqlx::query_scalar("SELECT DISTINCT name FROM extracted ORDER BY name")
                .fetch_all(pool).await)?,
        )
    }

    /// Every stored field, by URL id (in the order page exports use) and
    /// name, streamed.
    pub fn stored_fields(&self) -> BoxStream<'_, Result<StoredField, StoreError>> {
        on_pool!(self, pool => sqlx::query_as::<_, (i64, String, String)>(
            "SELECT url_id, name, vals FROM extracted ORDER BY url_id, name",
        )
        .fetch(pool)
        .map_ok(|(url_id, name, json)| StoredField { url_id, name, json })
        .map_err(StoreError::from)
        .boxed())
    }

    /// Replaces the stored settings of crawl `id` (JSON), leaving its
    /// state and times as they are.
    pub async fn set_crawl_config(&self, id: i64, config: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE crawls SET config = $1 WHERE id = $2")
            .bind(config)
            .bind(id)
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_pack_and_unpack_and_a_wrong_size_is_refused() {
        let body = "<p>some HTML, some HTML, some HTML</p>".repeat(500);
        let kept = KeptHtml::pack(body.as_bytes());
        assert_eq!(kept.size, body.len() as u64);
        assert!(kept.packed.len() * 5 < body.len(), "{}", kept.packed.len());
        assert_eq!(unpack(&kept.packed, kept.size).unwrap(), body.as_bytes());
        assert!(unpack(&kept.packed, kept.size - 1).is_err());
        assert!(unpack(&kept.packed, kept.size + 1).is_err());
        assert!(unpack(b"not zlib", 8).is_err());
        let empty = KeptHtml::pack(b"");
        assert_eq!(unpack(&empty.packed, 0).unwrap(), b"");
    }

    #[test]
    fn only_fields_with_values_are_rows() {
        let rows = FieldRow::of(&[
            FieldValues {
                name: "price".into(),
                values: vec!["9.99".into(), "12.50".into()],
            },
            FieldValues {
                name: "author".into(),
                values: vec![],
            },
        ]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].json, r#"["9.99","12.50"]"#);
    }
}
