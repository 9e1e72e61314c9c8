//! Sitemaps (sitemaps.org protocol 0.9): what a sitemap file lists.
//!
//! In: a sitemap's body as fetched (XML `<urlset>` or `<sitemapindex>`,
//! a plain-text list of URLs, either possibly gzipped). Out: a [`Sitemap`]
//! with the `<loc>` values in document order, entity references resolved.
//!
//! The protocol's caps are enforced here: at most [`MAX_BYTES`]
//! uncompressed (a gzip bomb stops there) and [`MAX_URLS`] entries per file.
//! A file cut by either cap, or malformed part-way, still yields the URLs
//! read before the cut; the cut is reported, never silent.

use std::borrow::Cow;
use std::io::Read;

use quick_xml::Reader;
use quick_xml::events::Event;

/// Largest uncompressed sitemap read, as the protocol allows.
pub const MAX_BYTES: u64 = 50 * 1024 * 1024;
/// Most entries read from one sitemap, as the protocol allows.
pub const MAX_URLS: usize = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `<urlset>` or a text file: page URLs.
    UrlSet,
    /// `<sitemapindex>`: more sitemaps.
    Index,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Sitemap {
    pub kind: Kind,
    /// `<loc>` values (or lines), trimmed, in document order.
    pub locs: Vec<String>,
    /// For each of `locs`, its `<lastmod>` as the latest instant it can
    /// name, in epoch milliseconds (see [`lastmod`]); `None` when absent
    /// or unreadable.
    pub lastmods: Vec<Option<i64>>,
    /// Why reading stopped early, if it did (a cap, malformed XML).
    pub cut: Option<String>,
}

/// Why a body is not a sitemap at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SitemapError {
    #[error("gzip data is corrupt: {0}")]
    Gzip(String),
    #[error("not a sitemap: {0}")]
    NotSitemap(String),
}

/// Reads a sitemap body. `truncated` says the transfer was cut at
/// [`MAX_BYTES`] already.
pub fn parse(body: &[u8], truncated: bool) -> Result<Sitemap, SitemapError> {
    let (data, mut cut) = if body.starts_with(&[0x1f, 0x8b]) {
        gunzip(body, MAX_BYTES)?
    } else {
        (Cow::Borrowed(body), None)
    };
    if truncated && cut.is_none() {
        cut = Some(format!("larger than {} MiB", MAX_BYTES >> 20));
    }
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&data);
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    let mut map = match first {
        Some(b'<') => parse_xml(data)?,
        Some(_) => parse_text(data)?,
        None => return Err(SitemapError::NotSitemap("empty body".into())),
    };
    // A cap says more than the malformed end it leaves behind.
    if cut.is_some() {
        map.cut = cut;
    }
    Ok(map)
}

/// Decompresses up to `limit` bytes; beyond that the data is cut.
fn gunzip(body: &[u8], limit: u64) -> Result<(Cow<'_, [u8]>, Option<String>), SitemapError> {
    let mut out = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(body).take(limit + 1);
    match reader.read_to_end(&mut out) {
        Ok(_) => {}
        // A transfer cut short still gives what it decompressed.
        Err(e) if !out.is_empty() => return Ok((Cow::Owned(out), Some(format!("gzip: {e}")))),
        Err(e) => return Err(SitemapError::Gzip(e.to_string())),
    }
    if out.len() as u64 > limit {
        out.truncate(limit as usize);
        return Ok((
            Cow::Owned(out),
            Some(format!("larger than {limit} bytes uncompressed")),
        ));
    }
    Ok((Cow::Owned(out), None))
}

fn parse_xml(data: &[u8]) -> Result<Sitemap, SitemapError> {
    // Sitemaps must be UTF-8; a stray byte costs one character, not the
    // rest of the file.
    let text = String::from_utf8_lossy(data);
    let mut reader = Reader::from_str(&text);
    let mut kind = None;
    let mut locs = Vec::new();
    let mut lastmods = Vec::new();
    // The `<lastmod>` of the entry being read.
    let mut entry_lastmod = None;
    // How many locs were read before the entry.
    let mut entry_start = 0;
    let mut cut = None;
    // Local names of the open elements: only a `<loc>` directly inside a
    // `<url>` or `<sitemap>` entry counts (not `<image:loc>` and the like,
    // nested one level deeper in extensions).
    let mut open: Vec<String> = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::End(_)) => {
                if open.len() == 2 && open[1] == "url" {
                    // The entry's lastmod, wherever it stood in it, goes
                    // with its loc.
                    let entry_has_loc = locs.len() > entry_start;
                    if let (true, Some(slot), Some(t)) =
                        (entry_has_loc, lastmods.last_mut(), entry_lastmod.take())
                    {
                        *slot = Some(t);
                    }
                }
                open.pop();
            }
            Ok(Event::Start(e)) => {
                let name = e.local_name();
                let is_entry_loc = name.as_ref() == "loc"
                    && open.len() == 2
                    && matches!(open[1].as_str(), "url" | "sitemap");
                let is_lastmod = name.as_ref() == "lastmod" && open.len() == 2 && open[1] == "url";
                if open.len() == 1 && name.as_ref() == "url" {
                    entry_lastmod = None;
                    entry_start = locs.len();
                }
                match kind {
                    None => {
                        kind = Some(match name.as_ref() {
                            "urlset" => Kind::UrlSet,
                            "sitemapindex" => Kind::Index,
                            other => {
                                return Err(SitemapError::NotSitemap(format!(
                                    "the root element is <{}>",
                                    other
                                )));
                            }
                        });
                        open.push(name.as_ref().to_string());
                    }
                    Some(_) if is_entry_loc => {
                        let end = e.name().as_ref().to_string();
                        match reader.read_text(quick_xml::name::QName(&end)) {
                            Ok(text) => {
                                if locs.len() == MAX_URLS {
                                    cut = Some(format!("more than {MAX_URLS} entries"));
                                    break;
                                }
                                if let Some(loc) = loc_text(&text.into_inner()) {
                                    locs.push(loc);
                                    lastmods.push(None);
                                }
                            }
                            Err(e) => {
                                cut = Some(format!("malformed XML: {e}"));
                                break;
                            }
                        }
                    }
                    Some(_) if is_lastmod => {
                        let end = e.name().as_ref().to_string();
                        match reader.read_text(quick_xml::name::QName(&end)) {
                            Ok(text) => entry_lastmod = lastmod(text.trim()),
                            Err(e) => {
                                cut = Some(format!("malformed XML: {e}"));
                                break;
                            }
                        }
                    }
                    Some(_) => open.push(name.as_ref().to_string()),
                }
            }
            Ok(Event::Empty(e)) if kind.is_none() => {
                // `<urlset/>`: a valid sitemap listing nothing.
                kind = Some(match e.local_name().as_ref() {
                    "urlset" => Kind::UrlSet,
                    "sitemapindex" => Kind::Index,
                    other => {
                        return Err(SitemapError::NotSitemap(format!(
                            "the root element is <{other}/>"
                        )));
                    }
                });
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                if kind.is_none() {
                    return Err(SitemapError::NotSitemap(format!("malformed XML: {e}")));
                }
                cut = Some(format!("malformed XML: {e}"));
                break;
            }
        }
    }
    let Some(kind) = kind else {
        return Err(SitemapError::NotSitemap("no root element".into()));
    };
    Ok(Sitemap {
        kind,
        locs,
        lastmods,
        cut,
    })
}

/// A `<lastmod>` value (W3C Datetime, as the sitemaps.org protocol
/// requires: `2026-11-30`, `2026-11-30T10:15+01:00`,
/// `2026-11-30T10:15:30.5Z`; also `2026` and `2026-11`) as the latest
/// instant it can name, in epoch milliseconds: a bare date is taken as
/// the end of that day in the last time zone to see it end (12:00 UTC the
/// next day), a month or year as the end of it likewise. A page is only
/// ever taken as unchanged from a lastmod before its last fetch, so a
/// value is read late rather than early. `None` when it is none of these.
pub fn lastmod(s: &str) -> Option<i64> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    const HALF_DAY_MS: i64 = 12 * 3_600_000;
    let ms = |t: time::OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(ms(t));
    }
    if s.contains('T') {
        // Hours and minutes with no seconds, as W3C Datetime allows.
        return time::OffsetDateTime::parse(s, &Iso8601::PARSING)
            .ok()
            .map(ms);
    }
    let next_midnight = |d: time::Date| {
        let next = d.next_day()?;
        Some(ms(next.midnight().assume_utc()) + HALF_DAY_MS)
    };
    let parts: Vec<&str> = s.split('-').collect();
    let num = |p: &str, len: usize| {
        (p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<i32>().ok())
            .flatten()
    };
    let year = num(parts.first()?, 4)?;
    match parts[1..] {
        [m, d] => {
            let month = time::Month::try_from(u8::try_from(num(m, 2)?).ok()?).ok()?;
            let day = u8::try_from(num(d, 2)?).ok()?;
            next_midnight(time::Date::from_calendar_date(year, month, day).ok()?)
        }
        [m] => {
            let month = time::Month::try_from(u8::try_from(num(m, 2)?).ok()?).ok()?;
            let first = time::Date::from_calendar_date(year, month, 1).ok()?;
            let last = first.replace_day(month.length(year)).ok()?;
            next_midnight(last)
        }
        [] => next_midnight(time::Date::from_calendar_date(year, time::Month::December, 31).ok()?),
        _ => None,
    }
}

/// The URL in a `<loc>`'s raw content: CDATA unwrapped, entities
/// resolved, whitespace trimmed.
fn loc_text(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let text = match raw
        .strip_prefix("<![CDATA[")
        .and_then(|r| r.strip_suffix("]]>"))
    {
        Some(inner) => Cow::Borrowed(inner),
        // An entity XML does not define (`&nbsp;`) makes unescape fail;
        // the predefined ones are still resolved.
        None => quick_xml::escape::unescape(raw).unwrap_or_else(|_| {
            Cow::Owned(
                raw.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&"),
            )
        }),
    };
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// A text sitemap: one absolute URL per line.
fn parse_text(data: &[u8]) -> Result<Sitemap, SitemapError> {
    let text = String::from_utf8_lossy(data);
    let mut locs = Vec::new();
    let mut cut = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !(line.starts_with("http://") || line.starts_with("https://")) {
            if locs.is_empty() {
                return Err(SitemapError::NotSitemap(
                    "neither XML nor a list of URLs".into(),
                ));
            }
            continue;
        }
        if locs.len() == MAX_URLS {
            cut = Some(format!("more than {MAX_URLS} entries"));
            break;
        }
        locs.push(line.to_string());
    }
    let lastmods = vec![None; locs.len()];
    Ok(Sitemap {
        kind: Kind::UrlSet,
        lastmods,
        locs,
        cut,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn lastmods_go_with_their_entries_and_read_late() {
        let xml = br#"<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><lastmod>2026-11-30T10:15:30Z</lastmod><loc>http://e.com/a</loc></url>
  <url><loc>http://e.com/b</loc></url>
  <url><loc>http://e.com/c</loc><lastmod> 2026-11-30 </lastmod><changefreq>daily</changefreq></url>
  <url><loc>http://e.com/d</loc><lastmod>last tuesday</lastmod></url>
  <url><lastmod>2026-11-30</lastmod></url>
  <url><loc>http://e.com/e</loc></url>
</urlset>"#;
        let m = parse(xml, false).unwrap();
        assert_eq!(m.locs.len(), 5);
        let day = 86_400_000;
        let nov30 = 20_787 * day; // 2026-11-30T00:00:00Z
        assert_eq!(
            m.lastmods,
            [
                Some(nov30 + 10 * 3_600_000 + 15 * 60_000 + 30_000),
                None,
                // The end of the 30th wherever it ends last.
                Some(nov30 + day + day / 2),
                None,
                // An entry with no loc lends its lastmod to no one.
                None,
            ]
        );
        // W3C Datetime's reduced forms and offsets.
        assert_eq!(
            lastmod("2026-11-30T10:15+01:00"),
            Some(nov30 + 9 * 3_600_000 + 15 * 60_000)
        );
        assert_eq!(lastmod("2026-11-30T10:15:30.25Z"), Some(nov30 + 36_930_250));
        // A month or year: its end, read late.
        assert_eq!(lastmod("2026-11"), Some(nov30 + day + day / 2));
        assert_eq!(lastmod("2026"), Some(nov30 + 32 * day + day / 2));
        for bad in [
            "",
            "2026-13-01",
            "2026-02-30",
            "26-11-30",
            "2026-11-30T25:00Z",
            "yesterday",
        ] {
            assert_eq!(lastmod(bad), None, "{bad}");
        }
    }

    #[test]
    fn urlset_with_entities_cdata_and_namespaces() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<!-- generated -->
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc> http://e.com/a?x=1&amp;y=2 </loc><lastmod>2024-01-01</lastmod></url>
  <url><loc><![CDATA[http://e.com/b?p=1&q=2]]></loc></url>
  <url><loc>http://e.com/&#x63;</loc></url>
  <url><loc></loc></url>
</urlset>"#;
        let m = parse(xml, false).unwrap();
        assert_eq!(m.kind, Kind::UrlSet);
        assert_eq!(
            m.locs,
            [
                "http://e.com/a?x=1&y=2",
                "http://e.com/b?p=1&q=2",
                "http://e.com/c"
            ]
        );
        assert_eq!(m.cut, None);
    }

    #[test]
    fn prefixed_index() {
        let xml = b"\xEF\xBB\xBF<sm:sitemapindex xmlns:sm=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
            <sm:sitemap><sm:loc>http://e.com/s1.xml</sm:loc></sm:sitemap>\
            <sm:sitemap><sm:loc>http://e.com/s2.xml.gz</sm:loc></sm:sitemap></sm:sitemapindex>";
        let m = parse(xml, false).unwrap();
        assert_eq!(m.kind, Kind::Index);
        assert_eq!(m.locs, ["http://e.com/s1.xml", "http://e.com/s2.xml.gz"]);
    }

    #[test]
    fn gzipped_and_text() {
        let m = parse(
            &gzip(b"<urlset><url><loc>http://e.com/z</loc></url></urlset>"),
            false,
        )
        .unwrap();
        assert_eq!(m.locs, ["http://e.com/z"]);
        let m = parse(b"http://e.com/1\r\n\r\nhttps://e.com/2\n", false).unwrap();
        assert_eq!((m.kind, m.locs.len()), (Kind::UrlSet, 2));
    }

    #[test]
    fn invalid_utf8_costs_one_character() {
        let m = parse(
            b"<urlset><url><loc>http://e.com/a</loc></url><url><loc>http://e.com/\xe9</loc></url>\
              <url><loc>http://e.com/c</loc></url></urlset>",
            false,
        )
        .unwrap();
        assert_eq!(
            m.locs,
            ["http://e.com/a", "http://e.com/\u{FFFD}", "http://e.com/c"]
        );
        assert_eq!(m.cut, None);
    }

    #[test]
    fn only_entry_locs_count() {
        let xml = br#"<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
            xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
          <url><loc>http://e.com/post</loc>
            <image:image><image:loc>http://e.com/pic.jpg</image:loc></image:image></url>
          <url><loc>http://e.com/a?x=1&amp;y=&nbsp;</loc></url>
        </urlset>"#;
        let m = parse(xml, false).unwrap();
        assert_eq!(m.locs, ["http://e.com/post", "http://e.com/a?x=1&y=&nbsp;"]);
        // An empty sitemap is a sitemap.
        let m = parse(b"<?xml version=\"1.0\"?><urlset/>", false).unwrap();
        assert_eq!((m.kind, m.locs.len()), (Kind::UrlSet, 0));
    }

    #[test]
    fn what_is_not_a_sitemap() {
        for body in [
            &b"<!DOCTYPE html><html><body>Not found</body></html>"[..],
            b"<rss version=\"2.0\"></rss>",
            b"<urlset",
            b"   ",
            b"hello world",
            b"\x1f\x8b\x08garbage",
        ] {
            assert!(
                parse(body, false).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn caps_cut_and_say_so() {
        let mut xml = String::from("<urlset>");
        for i in 0..MAX_URLS + 5 {
            xml.push_str(&format!("<url><loc>http://e.com/{i}</loc></url>"));
        }
        xml.push_str("</urlset>");
        let m = parse(xml.as_bytes(), false).unwrap();
        assert_eq!(m.locs.len(), MAX_URLS);
        assert!(m.cut.unwrap().contains("50000"));

        // A truncated document keeps what came before the cut.
        let m = parse(
            b"<urlset><url><loc>http://e.com/1</loc></url><url><loc>http://e.",
            true,
        )
        .unwrap();
        assert_eq!(m.locs, ["http://e.com/1"]);
        assert!(m.cut.is_some());

        // A gzip bomb stops at the uncompressed cap.
        let bomb = gzip(&vec![b' '; 1 << 20]);
        assert!(bomb.len() < 16 * 1024);
        let (data, cut) = gunzip(&bomb, 1000).unwrap();
        assert_eq!(data.len(), 1000);
        assert_eq!(cut.unwrap(), "larger than 1000 bytes uncompressed");
    }
}
