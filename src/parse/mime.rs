//! MIME types: the one a response's `Content-Type` headers give, and the
//! one its first bytes give when the headers give none.
//!
//! In: every `Content-Type` value of a response, and the start of its
//! body. Out: the MIME type a browser would use ([`extract`], WHATWG Fetch
//! "extract a MIME type"), parsed ([`parse`], WHATWG MIME Sniffing §4.4),
//! and whether the body is read as HTML ([`is_html`]; without a usable
//! type, the rules of MIME Sniffing §7.1 over its first bytes, [`sniff`]).

use std::borrow::Cow;

use encoding_rs::Encoding;

/// A parsed MIME type: what trawl reads of it, borrowed from the header
/// where it can be (nearly always: parsing costs no allocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimeType<'a> {
    /// `type/subtype`, ASCII lower-case.
    pub essence: Cow<'a, str>,
    /// The first `charset` parameter's value, unquoted, as sent.
    pub charset: Option<Cow<'a, str>>,
}

impl MimeType<'_> {
    /// HTML by its type: `text/html` or `application/xhtml+xml`.
    pub fn is_html(&self) -> bool {
        matches!(&*self.essence, "text/html" | "application/xhtml+xml")
    }

    /// A type that says nothing, so the body is sniffed (MIME Sniffing §7,
    /// "determining the computed MIME type": `unknown/unknown`,
    /// `application/unknown`, `*/*`).
    pub fn is_unknown(&self) -> bool {
        matches!(
            &*self.essence,
            "unknown/unknown" | "application/unknown" | "*/*"
        )
    }
}

/// HTTP whitespace (Fetch): tab, LF, CR, space.
fn is_http_ws(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' ')
}

/// HTTP token code points (RFC 9110 `tchar`).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Reads an HTTP quoted string starting at the `"` that opens `s`
/// (Fetch, "collect an HTTP quoted string" with the extract-value flag):
/// its value with backslash escapes undone, and the bytes it took.
fn quoted(s: &str) -> (Cow<'_, str>, usize) {
    let inner = &s[1..];
    match inner.find(['"', '\\']) {
        Some(i) if inner.as_bytes()[i] == b'"' => return (Cow::Borrowed(&inner[..i]), i + 2),
        None => return (Cow::Borrowed(inner), s.len()),
        Some(_) => {}
    }
    let mut value = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (Cow::Owned(value), i + 1),
            '\\' => match chars.next() {
                Some((_, e)) => value.push(e),
                None => {
                    value.push('\\');
                    return (Cow::Owned(value), s.len());
                }
            },
            c => value.push(c),
        }
    }
    (Cow::Owned(value), s.len())
}

/// Parses one MIME type (WHATWG MIME Sniffing §4.4, "parse a MIME type"):
/// `None` when it is not one (no `/`, an empty or non-token type or
/// subtype). Of the parameters only `charset` is kept (the first one, as
/// the standard keeps the first of each name).
pub fn parse(input: &str) -> Option<MimeType<'_>> {
    let s = input.trim_matches(is_http_ws);
    let (ty, rest) = s.split_once('/')?;
    let (subtype, mut params) = match rest.find(';') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let subtype = subtype.trim_end_matches(is_http_ws);
    if !is_token(ty) || !is_token(subtype) {
        return None;
    }
    // `type/subtype` as sent: the subtype follows the `/` directly.
    let essence = &s[..ty.len() + 1 + subtype.len()];
    let mut mime = MimeType {
        essence: if essence.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(essence.to_ascii_lowercase())
        } else {
            Cow::Borrowed(essence)
        },
        charset: None,
    };
    // Each turn starts at a `;`.
    while let Some(p) = params.strip_prefix(';') {
        let p = p.trim_start_matches(is_http_ws);
        let name_end = p.find([';', '=']).unwrap_or(p.len());
        let name = &p[..name_end];
        let p = &p[name_end..];
        let Some(p) = p.strip_prefix('=') else {
            // At a `;` (a name with no value) or the end.
            params = p;
            continue;
        };
        let (value, rest) = if p.starts_with('"') {
            let (v, used) = quoted(p);
            let rest = &p[used..];
            (v, &rest[rest.find(';').unwrap_or(rest.len())..])
        } else {
            let end = p.find(';').unwrap_or(p.len());
            let v = p[..end].trim_end_matches(is_http_ws);
            if v.is_empty() {
                params = &p[end..];
                continue;
            }
            (Cow::Borrowed(v), &p[end..])
        };
        params = rest;
        // Quoted-string token code points: tab, U+0020–U+007E, U+0080–U+00FF.
        let valid_value = value
            .chars()
            .all(|c| c == '\t' || (' '..='~').contains(&c) || ('\u{80}'..='\u{ff}').contains(&c));
        if name.eq_ignore_ascii_case("charset") && valid_value && mime.charset.is_none() {
            mime.charset = Some(value);
        }
    }
    Some(mime)
}

/// The values of headers as Fetch "get, decode, and split" makes them:
/// every value isomorphic-decoded (a byte a character), all joined with
/// ", ", split at commas outside quoted strings, each trimmed of spaces
/// and tabs.
fn split_values<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Vec<String> {
    let mut joined = String::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            joined.push_str(", ");
        }
        joined.extend(v.iter().map(|&b| b as char));
    }
    let mut out = Vec::new();
    let mut current = String::new();
    let mut rest = joined.as_str();
    loop {
        let end = rest.find(['"', ',']).unwrap_or(rest.len());
        current.push_str(&rest[..end]);
        rest = &rest[end..];
        if rest.starts_with('"') {
            let (_, used) = quoted(rest);
            current.push_str(&rest[..used]);
            rest = &rest[used..];
            if !rest.is_empty() {
                continue;
            }
        }
        out.push(current.trim_matches([' ', '\t']).to_string());
        current.clear();
        match rest.strip_prefix(',') {
            Some(r) => rest = r,
            None => break,
        }
    }
    out
}

/// The MIME type of a response with these `Content-Type` header values,
/// in the order received, as browsers read it (WHATWG Fetch, "extract a
/// MIME type"): values are combined and split at commas, the last one
/// that parses (other than `*/*`) wins, and a `charset` an earlier value
/// of the same essence gave is kept when the winner gives none (a
/// different essence drops it). `None` when no value parses: the type is
/// unknown and the body will be sniffed.
///
/// The answer is the winning value as the server wrote it, with
/// `; charset=…` appended when the charset was carried over:
/// `text/html` then `text/html; charset=windows-1251` give the second;
/// the two the other way round give `text/html; charset=windows-1251`.
pub fn extract<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<String> {
    let mut values = values.into_iter().peekable();
    let first = values.next()?;
    // Nearly every response: one ASCII value with no comma or quote. The
    // general steps below come to the same answer, with more copies.
    if values.peek().is_none()
        && first.is_ascii()
        && !first.contains(&b',')
        && !first.contains(&b'"')
    {
        let value = std::str::from_utf8(first).ok()?.trim_matches([' ', '\t']);
        return parse(value)
            .filter(|m| m.essence != "*/*")
            .map(|_| value.to_string());
    }
    extract_all(std::iter::once(first).chain(values))
}

/// [`extract`] in full, for any number of values.
fn extract_all<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<String> {
    let mut essence: Option<String> = None;
    let mut charset: Option<String> = None;
    let mut winner: Option<(String, bool)> = None;
    for value in split_values(values) {
        let Some(mime) = parse(&value) else { continue };
        if mime.essence == "*/*" {
            continue;
        }
        let mime_charset = mime.charset.map(Cow::into_owned);
        // As the standard has it, a value of the same essence with a
        // charset of its own wins with that charset but does not replace
        // the one later values without a charset inherit.
        let carried = if essence.as_deref() != Some(&*mime.essence) {
            essence = Some(mime.essence.into_owned());
            charset = mime_charset;
            false
        } else {
            mime_charset.is_none() && charset.is_some()
        };
        winner = Some((value, carried));
    }
    let (value, carried) = winner?;
    Some(match (carried, charset) {
        (true, Some(c)) if is_token(&c) => format!("{value}; charset={c}"),
        (true, Some(c)) => {
            let escaped = c.replace('\\', "\\\\").replace('"', "\\\"");
            format!("{value}; charset=\"{escaped}\"")
        }
        _ => value,
    })
}

/// How much of a body the sniffing rules read: the "resource header" of
/// MIME Sniffing §5.2 (1,445 bytes).
const RESOURCE_HEADER: usize = 1445;

/// The patterns of MIME Sniffing §7.1 that make a body HTML, each to be
/// followed by a tag-terminating byte (a space or `>`) and compared
/// ignoring the case of ASCII letters, after leading whitespace bytes.
const HTML_PATTERNS: &[&[u8]] = &[
    b"<!DOCTYPE HTML",
    b"<HTML",
    b"<HEAD",
    b"<SCRIPT",
    b"<IFRAME",
    b"<H1",
    b"<DIV",
    b"<FONT",
    b"<TABLE",
    b"<A",
    b"<STYLE",
    b"<TITLE",
    b"<B",
    b"<BODY",
    b"<BR",
    b"<P",
    b"<!--",
];

/// The MIME type a body with no usable type is read as: WHATWG MIME
/// Sniffing §7.1, "identifying a resource with an unknown MIME type",
/// with the sniff-scriptable flag set (a crawler reads what a browser
/// would display). Over the first 1,445 bytes:
///
/// - `text/html`: after leading whitespace bytes (TAB, LF, FF, CR,
///   space), one of `HTML_PATTERNS` (`<!DOCTYPE HTML`, `<HTML`, `<HEAD`,
///   `<SCRIPT`, `<IFRAME`, `<H1`, `<DIV`, `<FONT`, `<TABLE`, `<A`,
///   `<STYLE`, `<TITLE`, `<B`, `<BODY`, `<BR`, `<P`, `<!--`), any case,
///   then a space or `>`;
/// - `text/xml`: `<?xml` after leading whitespace bytes;
/// - `application/pdf`: `%PDF-`; `application/postscript`: `%!PS-Adobe-`;
/// - `text/plain`: a UTF-8 or UTF-16 byte order mark, or no binary data
///   byte (§7.2: 0x00–0x08, 0x0B, 0x0E–0x1A, 0x1C–0x1F);
/// - `application/octet-stream` otherwise.
///
/// One departure: a byte order mark is skipped before the HTML and XML
/// patterns are tried (for UTF-16, on the ASCII characters that follow
/// it), where the standard's table, which lets only whitespace lead,
/// would call `\u{FEFF}<!DOCTYPE html>` plain text. The BOM only says
/// how the markup is encoded; pages saved by editors that write one are
/// common. The image, audio, video and archive signatures (§7.1 steps
/// 4–6) are left out: they never match where an HTML or XML pattern
/// does, and trawl treats those types as it treats any other non-HTML.
pub fn sniff(body: &[u8]) -> &'static str {
    let header = &body[..body.len().min(RESOURCE_HEADER)];
    let bom = Encoding::for_bom(header);
    let markup: Cow<[u8]> = match bom {
        None => Cow::Borrowed(header),
        Some((e, len)) if e == encoding_rs::UTF_8 => Cow::Borrowed(&header[len..]),
        // UTF-16: the code units that are ASCII, up to the first that is
        // not (enough to read a tag name).
        Some((e, len)) => {
            let be = e == encoding_rs::UTF_16BE;
            Cow::Owned(
                header[len..]
                    .chunks_exact(2)
                    .map(|u| if be { [u[0], u[1]] } else { [u[1], u[0]] })
                    .take_while(|u| u[0] == 0 && u[1] < 0x80)
                    .map(|u| u[1])
                    .collect(),
            )
        }
    };
    let start = markup
        .iter()
        .position(|b| !matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
        .unwrap_or(markup.len());
    let rest = &markup[start..];
    let html = HTML_PATTERNS.iter().any(|p| {
        rest.len() > p.len()
            && rest[..p.len()].eq_ignore_ascii_case(p)
            && matches!(rest[p.len()], b' ' | b'>')
    });
    if html {
        return "text/html";
    }
    if rest.len() >= 5 && &rest[..5] == b"<?xml" {
        return "text/xml";
    }
    if bom.is_some() {
        return "text/plain";
    }
    if header.starts_with(b"%PDF-") {
        return "application/pdf";
    }
    if header.starts_with(b"%!PS-Adobe-") {
        return "application/postscript";
    }
    if header.iter().any(|&b| is_binary_data_byte(b)) {
        "application/octet-stream"
    } else {
        "text/plain"
    }
}

/// A "binary data byte" (MIME Sniffing §3): a C0 control other than TAB,
/// LF, FF, CR and ESC.
fn is_binary_data_byte(b: u8) -> bool {
    matches!(b, 0x00..=0x08 | 0x0b | 0x0e..=0x1a | 0x1c..=0x1f)
}

/// What a `Content-Type` (as [`extract`] gives it) says: `None` for no
/// usable type (none sent, none parsed, or one of the unknown types), in
/// which case the body decides.
fn declared(content_type: Option<&str>) -> Option<MimeType<'_>> {
    content_type.and_then(parse).filter(|m| !m.is_unknown())
}

/// Whether a response with this `Content-Type` may be parsed as HTML (by
/// [`is_html`], once its first bytes are in): an HTML type, or no usable
/// type (to be sniffed).
pub fn may_be_html(content_type: Option<&str>) -> bool {
    declared(content_type).is_none_or(|m| m.is_html())
}

/// Whether a response is read as HTML: its type is `text/html` or
/// `application/xhtml+xml`, or it has no usable type and its first bytes
/// sniff as `text/html` ([`sniff`]). `text/plain`, `application/octet-stream`
/// and every other declared type are not sniffed (MIME Sniffing §7: the
/// computed type of those is never HTML). A body that [looks
/// binary](looks_binary) is not HTML whatever its header says.
pub fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    if looks_binary(body) {
        return false;
    }
    match declared(content_type) {
        Some(m) => m.is_html(),
        None => sniff(body) == "text/html",
    }
}

/// Whether a body with no usable type sniffs as XML (`<?xml`): it may be
/// a sitemap.
pub fn sniffs_as_xml(content_type: Option<&str>, body: &[u8]) -> bool {
    declared(content_type).is_none() && sniff(body) == "text/xml"
}

/// How much of a body [`looks_binary`] reads.
const SNIFF_BYTES: usize = 1024;

/// Whether the start of a body is binary: its first 1,024 bytes hold a
/// NUL, or more than 2% of other "binary data bytes" of the WHATWG MIME
/// Sniffing standard (C0 controls other than TAB, LF, FF, CR and ESC).
/// Images, archives, executables and random bytes served as `text/html`
/// do; text in any ASCII-compatible encoding does not, and a stray control
/// character pasted into a real page is not enough. A UTF-16 body (by its
/// BOM) is text whatever its bytes.
pub fn looks_binary(body: &[u8]) -> bool {
    if matches!(Encoding::for_bom(body), Some((e, _)) if e != encoding_rs::UTF_8) {
        return false;
    }
    let head = &body[..body.len().min(SNIFF_BYTES)];
    head.contains(&0) || head.iter().filter(|&&b| is_binary_data_byte(b)).count() > SNIFF_BYTES / 50
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types_parse_as_the_standard_says() {
        let m =
            |s: &str| parse(s).map(|m| (m.essence.into_owned(), m.charset.map(Cow::into_owned)));
        let some = |e: &str, c: Option<&str>| Some((e.to_string(), c.map(str::to_string)));
        assert_eq!(m("text/html"), some("text/html", None));
        assert_eq!(
            m(" Text/HTML ; Charset=\"windows-1251\" "),
            some("text/html", Some("windows-1251"))
        );
        assert_eq!(
            m("text/html;charset=koi8-r;charset=utf-8"),
            some("text/html", Some("koi8-r")),
            "the first charset wins"
        );
        assert_eq!(
            m("text/html; foo; charset=\"a\\\"b\" junk; x=y"),
            some("text/html", Some("a\"b"))
        );
        assert_eq!(m("text/html; charset="), some("text/html", None));
        assert_eq!(m("text/html; charset=\"\""), some("text/html", Some("")));
        for bad in [
            "",
            "html",
            "/html",
            "text/",
            "te xt/html",
            "text/ht(ml",
            "text/html x",
        ] {
            assert_eq!(m(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_last_valid_content_type_wins_and_keeps_an_earlier_charset() {
        let ex = |vals: &[&str]| {
            let got = extract(vals.iter().map(|v| v.as_bytes()));
            // The shortcut for one value agrees with the full steps.
            assert_eq!(
                got,
                extract_all(vals.iter().map(|v| v.as_bytes())),
                "{vals:?}"
            );
            got
        };
        assert_eq!(ex(&[]), None);
        assert_eq!(
            ex(&["text/html; charset=utf-8"]).as_deref(),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(
            ex(&["text/html", "text/html; charset=windows-1251"]).as_deref(),
            Some("text/html; charset=windows-1251")
        );
        assert_eq!(
            ex(&["text/html; charset=windows-1251", "text/html"]).as_deref(),
            Some("text/html; charset=windows-1251")
        );
        assert_eq!(
            ex(&[
                "text/html; charset=iso-8859-1",
                "text/html;charset=windows-1251"
            ])
            .as_deref(),
            Some("text/html;charset=windows-1251")
        );
        // Another essence drops the charset; `*/*` and junk are skipped.
        assert_eq!(
            ex(&["text/plain; charset=windows-1251", "text/html"]).as_deref(),
            Some("text/html")
        );
        assert_eq!(ex(&["text/html", "*/*"]).as_deref(), Some("text/html"));
        assert_eq!(
            ex(&["text/plain", "garbage"]).as_deref(),
            Some("text/plain")
        );
        assert_eq!(ex(&["garbage"]), None);
        assert_eq!(ex(&["*/*"]), None);
        assert_eq!(
            ex(&[" text/html ;charset=utf-8\t"]).as_deref(),
            Some("text/html ;charset=utf-8")
        );
        assert_eq!(ex(&[""]), None);
        // One header can hold several values; commas in quotes do not split.
        assert_eq!(ex(&["text/plain, text/html"]).as_deref(), Some("text/html"));
        assert_eq!(
            ex(&["text/html; charset=\"a,b\""]).as_deref(),
            Some("text/html; charset=\"a,b\"")
        );
        assert_eq!(
            ex(&["text/html; charset=\"x y\"", "text/html"]).as_deref(),
            Some("text/html; charset=\"x y\"")
        );
        assert_eq!(
            ex(&["text/html;charset=a", "text/html;charset=b", "text/html"]).as_deref(),
            Some("text/html; charset=a"),
            "the first charset of an essence is the one inherited"
        );
        // Bytes outside ASCII are read one character a byte.
        assert_eq!(
            extract([b"text/html; charset=\"\xe9\"".as_slice()]).as_deref(),
            Some("text/html; charset=\"\u{e9}\"")
        );
    }

    #[test]
    fn unknown_bodies_are_sniffed_by_the_whatwg_table() {
        for html in [
            &b"<!DOCTYPE html><p>x"[..],
            b"<!doctype HTML>",
            b"<html>",
            b"<HTML lang=en>",
            b"<head>",
            b"<script>x</script>",
            b"<iframe src=x>",
            b"<h1>T</h1>",
            b"<div>",
            b"<font face=x>",
            b"<table>",
            b"<a href=/x>",
            b"<style>",
            b"<TITLE>t</TITLE>",
            b"<b>",
            b"<body>",
            b"<br>",
            b"<p>",
            b"<!-- comment -->",
            b"<!-->",
            b" \t\r\n\x0c<p>x",
            b"\xef\xbb\xbf<!DOCTYPE html>",
            b"\xef\xbb\xbf\n<title>x</title>",
            b"\xff\xfe<\0p\0>\0",
            b"\xfe\xff\0<\0h\0t\0m\0l\0>",
        ] {
            assert_eq!(
                sniff(html),
                "text/html",
                "{:?}",
                String::from_utf8_lossy(html)
            );
        }
        for (body, want) in [
            // A tag name must end with a space or `>`.
            (&b"<bogus>"[..], "text/plain"),
            (b"<ahref=x>", "text/plain"),
            (b"<p", "text/plain"),
            (b"<html\n>", "text/plain"),
            (b"<!doctype html5>", "text/plain"),
            (b"hello <p>", "text/plain"),
            (b"<?xml version=\"1.0\"?><urlset/>", "text/xml"),
            (b"  <?xml", "text/xml"),
            (b"%PDF-1.4\n", "application/pdf"),
            (b"%!PS-Adobe-3.0", "application/postscript"),
            (b"\x89PNG\r\n\x1a\n\0\0", "application/octet-stream"),
            (b"\xef\xbb\xbfplain", "text/plain"),
            (b"", "text/plain"),
        ] {
            assert_eq!(sniff(body), want, "{:?}", String::from_utf8_lossy(body));
        }
        // Only the resource header is read.
        let late = [vec![b' '; RESOURCE_HEADER], b"<p>".to_vec()].concat();
        assert_eq!(sniff(&late), "text/plain");
    }

    #[test]
    fn html_detection() {
        assert!(is_html(Some("text/html; charset=utf-8"), b""));
        assert!(is_html(Some("application/xhtml+xml"), b""));
        assert!(!is_html(Some("application/pdf"), b"<html>"));
        assert!(is_html(None, b"  <!DOCTYPE html><html>"));
        assert!(is_html(None, b"<HTML>"));
        assert!(is_html(None, b"<!-- generated --><title>t</title>"));
        assert!(!is_html(None, b"%PDF-1.4"));
        // Types that say nothing are sniffed; text/plain and
        // application/octet-stream are what they say.
        for unknown in ["unknown/unknown", "application/unknown", "*/*", "nonsense"] {
            assert!(may_be_html(Some(unknown)), "{unknown}");
            assert!(is_html(Some(unknown), b"<p>x"), "{unknown}");
            assert!(!is_html(Some(unknown), b"plain words"), "{unknown}");
        }
        for said in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/octet-stream",
        ] {
            assert!(!may_be_html(Some(said)), "{said}");
            assert!(!is_html(Some(said), b"<!DOCTYPE html><p>x"), "{said}");
        }
        assert!(sniffs_as_xml(None, b"<?xml version='1.0'?>"));
        assert!(!sniffs_as_xml(Some("text/plain"), b"<?xml version='1.0'?>"));
        // Binary served as HTML: a PNG, zeros, a NUL in the first 1 KiB.
        assert!(!is_html(
            Some("text/html"),
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"
        ));
        assert!(!is_html(Some("text/html"), &[0u8; 4096]));
        assert!(!is_html(None, b"<p>\0\0\0\0"));
        let nul_at = |i: usize| {
            let mut b = b"<p>".repeat(500);
            b[i] = 0;
            b
        };
        assert!(!is_html(Some("text/html"), &nul_at(1000)));
        // ...but a NUL after the first 1 KiB, ESC (ISO-2022-JP), form
        // feeds and UTF-16 with its BOM are text.
        assert!(is_html(Some("text/html"), &nul_at(1100)));
        assert!(is_html(Some("text/html"), b"<p>\x1b$B$3$s\x1b(B\x0c</p>"));
        // A few stray control characters in a real page are not binary;
        // many are.
        let stray = [
            b"<p>a\x0b b\x1a c\x01</p>".as_slice(),
            &b"<p>text</p>".repeat(80),
        ]
        .concat();
        assert!(is_html(Some("text/html"), &stray));
        assert!(!is_html(Some("text/html"), &b"<p>\x01\x02\x03".repeat(50)));
        assert!(is_html(Some("text/html"), b"\xff\xfe<\0p\0>\0"));
        assert!(looks_binary(b"\xef\xbb\xbf<p>\0"));
    }
}
