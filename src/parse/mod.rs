//! HTML page analysis: bytes in, owned page facts out.
//!
//! In: the response body, the final URL and the `Content-Type` header.
//! Out: a [`ParsedPage`] with title, description, canonical, language,
//! `<base href>`, meta robots, meta refresh, canonical outgoing links (with
//! anchor text and `rel=nofollow`) and the readable main text with the
//! kind of each of its lines.
//!
//! Whether a body is HTML at all is [`mime`]'s answer ([`is_html`]: the
//! `Content-Type`, else WHATWG MIME sniffing of the first bytes).
//! [`parse`] decodes the body ([`decode`]: BOM, header, `<meta charset>`)
//! and reads it in one streaming pass with no tree ([`extract`] over
//! [`tokenize`]): time linear in the body, memory bounded by the text and
//! link caps whatever the page's structure. It is a plain blocking
//! function: the crawler calls it on the fetching task for small bodies
//! and on the blocking pool for large ones.

pub mod entities;
pub mod extract;
pub mod markdown;
pub mod mime;
pub mod tokenize;

pub use mime::{is_html, looks_binary, may_be_html};

use std::borrow::Cow;

use encoding_rs::Encoding;
use tokenize::is_ws;
use url::Url;

/// A link found on a page, already resolved and canonicalized.
#[derive(Debug, Clone)]
pub struct Link {
    pub url: Url,
    pub anchor: String,
    pub nofollow: bool,
    pub kind: LinkKind,
}

/// Which markup a link came from (stored as `links.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkKind {
    /// `<a href>` (HTML or SVG).
    #[default]
    Anchor,
    /// `<area href>` of an image map.
    Area,
    /// `<frame src>` of a frameset.
    Frame,
    /// `<iframe src>`.
    Iframe,
    /// The target of a `<meta http-equiv=refresh>`.
    Refresh,
}

impl LinkKind {
    /// The stored name: the element, or `refresh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anchor => "a",
            Self::Area => "area",
            Self::Frame => "frame",
            Self::Iframe => "iframe",
            Self::Refresh => "refresh",
        }
    }
}

/// What a page says about itself and where it points.
#[derive(Debug, Clone, Default)]
pub struct ParsedPage {
    pub title: Option<String>,
    pub description: Option<String>,
    /// `<link rel=canonical>`, resolved against the base URL.
    pub canonical: Option<String>,
    /// `<html lang>` or `Content-Language` from a meta http-equiv.
    pub language: Option<String>,
    /// `<base href>`, resolved against the page URL.
    pub base: Option<String>,
    /// The content of `<meta name=robots>` (lower-cased), if any.
    pub meta_robots: Option<String>,
    /// `<meta http-equiv=refresh>` with a URL.
    pub refresh: Option<Refresh>,
    /// Outgoing links, one per canonical target, in document order.
    pub links: Vec<Link>,
    /// Links dropped because the page had more than the per-page cap.
    pub links_dropped: usize,
    /// The text was cut at [`MAX_TEXT_BYTES`].
    pub cut: bool,
    /// Readable text: no scripts, styles or markup; one line per block.
    pub text: String,
    /// One byte per line of `text`: what the line is (see
    /// [`extract::kind`]: `h` heading, `c` code, `t` table, `l` list item,
    /// `p` prose).
    pub text_kinds: String,
    /// The main content as Markdown (see [`markdown`]): the same content
    /// as `text`, with its structure, links and images (absolute URLs),
    /// at most [`MAX_TEXT_BYTES`]. Empty unless [`ParseLimits::markdown`].
    pub markdown: String,
    /// The encoding the body was decoded with.
    pub encoding: &'static str,
}

/// A `<meta http-equiv=refresh>` that names a URL (HTML's "shared
/// declarative refresh steps"): `0; url=/next/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    /// Seconds before the refresh.
    pub delay: u32,
    pub url: Url,
}

impl Refresh {
    /// Reads a refresh `content` value that names no URL (`5`, `0;`): the
    /// page reloads itself, `page` (the document's own URL), after the
    /// delay. `None` when the value names a URL or is not a refresh.
    pub fn reload(content: &str, page: &Url) -> Option<Refresh> {
        let s = content.trim_matches(|c: char| c.is_ascii_whitespace() || c == ';' || c == ',');
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let rest = s[digits..].trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        if (digits == 0 && !s.starts_with('.')) || !rest.trim().is_empty() {
            return None;
        }
        let delay = s[..digits].parse::<u32>().unwrap_or(0);
        Some(Refresh {
            delay,
            url: page.clone(),
        })
    }

    /// Reads a refresh `content` value, resolving its URL against `base`.
    /// `None` when it names no URL (a page that reloads itself) or the URL
    /// is not one a crawler can follow.
    pub fn parse(content: &str, base: &Url) -> Option<Refresh> {
        let s = content.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 && !s.starts_with('.') {
            return None;
        }
        // `.5` is no whole second: 0.
        let delay = if digits == 0 {
            0
        } else {
            s[..digits].parse::<u32>().unwrap_or(u32::MAX)
        };
        let s = s[digits..].trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let s = s
            .strip_prefix([';', ','])
            .unwrap_or(s)
            .trim_start_matches(|c: char| c.is_ascii_whitespace());
        let s = match s.get(..3) {
            Some(p) if p.eq_ignore_ascii_case("url") => {
                let rest = s[3..].trim_start_matches(|c: char| c.is_ascii_whitespace());
                match rest.strip_prefix('=') {
                    Some(r) => r.trim_start_matches(|c: char| c.is_ascii_whitespace()),
                    None => s,
                }
            }
            _ => s,
        };
        let s = match s.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let inner = &s[1..];
                inner.find(q).map_or(inner, |e| &inner[..e])
            }
            _ => s,
        };
        crate::canon::resolve(base, s).map(|url| Refresh { delay, url })
    }
}

/// What parsing keeps, and its limits.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    pub max_links: usize,
    /// Write the main content as Markdown too ([`ParsedPage::markdown`];
    /// empty when off, and nothing of it is done).
    pub markdown: bool,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_links: 10_000,
            markdown: false,
        }
    }
}

/// How far the prescan for `<meta charset>` reads (HTML §13.2.3.2,
/// "prescan a byte stream to determine its encoding": 1024 bytes).
const PRESCAN_BYTES: usize = 1024;

/// How many bytes past the first one that is not UTF-8 the detector
/// reads: enough text to tell legacy encodings apart (Firefox decides on
/// far less), and a bound on its cost for a body of megabytes.
const DETECT_BYTES: usize = 64 << 10;

/// Decodes an HTML body. The encoding is, first found first (the order of
/// HTML §13.2.3.1 "determining the character encoding"):
///
/// 1. a byte order mark (WHATWG Encoding, "BOM sniff");
/// 2. the `charset` of the `Content-Type`;
/// 3. a `<meta charset>` or `<meta http-equiv=Content-Type>` in the first
///    1024 bytes (the prescan);
/// 4. UTF-8, when the bytes are valid UTF-8 (also when only a character
///    cut at the end of a body read in part is not);
/// 5. a `<meta charset>` further on: a browser that meets one while its
///    encoding is still a guess starts again with it;
/// 6. the guess of chardetng, Firefox's detector, from the bytes and the
///    host's top-level domain (`.ru` favours Cyrillic encodings).
///
/// Steps 5 and 6 cost something only for a body that declares nothing
/// and is not UTF-8; one that declares its encoding, or is UTF-8, is
/// decoded with no more work than that. A label naming UTF-16 found in
/// ASCII bytes means UTF-8 (HTML: the bytes could not be UTF-16).
pub fn decode<'a>(body: &'a [u8], content_type: Option<&str>) -> (Cow<'a, str>, &'static Encoding) {
    decode_from(body, content_type, None)
}

/// [`decode`] for a body fetched from `host` (a domain or an IP address,
/// as in a URL): its top-level domain is the detector's hint.
pub fn decode_from<'a>(
    body: &'a [u8],
    content_type: Option<&str>,
    host: Option<&str>,
) -> (Cow<'a, str>, &'static Encoding) {
    let bom = Encoding::for_bom(body).map(|(e, _)| e);
    let declared = bom
        .or_else(|| {
            content_type
                .and_then(mime::parse)
                .and_then(|m| Encoding::for_label(m.charset?.as_bytes()))
        })
        .or_else(|| meta_charset(&body[..body.len().min(PRESCAN_BYTES)]));
    let encoding = match declared {
        Some(e) => label_in_ascii(e, bom.is_some()),
        None => match std::str::from_utf8(body) {
            Ok(_) => encoding_rs::UTF_8,
            // Valid UTF-8 with non-ASCII characters, up to a character cut
            // at the end: a body read in part.
            Err(e) if e.error_len().is_none() && !body[..e.valid_up_to()].is_ascii() => {
                encoding_rs::UTF_8
            }
            Err(e) => undeclared(body, e.valid_up_to(), host),
        },
    };
    let (text, used, _had_errors) = encoding.decode(body);
    (text, used)
}

/// A UTF-16 label read from ASCII bytes (a header or a `<meta>`) means
/// UTF-8: the bytes it was found in could not be UTF-16. A BOM is not such
/// a label.
fn label_in_ascii(e: &'static Encoding, from_bom: bool) -> &'static Encoding {
    if !from_bom && (e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE) {
        encoding_rs::UTF_8
    } else {
        e
    }
}

/// The encoding of a body that declares none in its first 1024 bytes and
/// is not UTF-8 from byte `valid_up_to` on: a later `<meta charset>`, else
/// chardetng's guess over the body up to [`DETECT_BYTES`] past that byte.
/// UTF-8 is never guessed (the bytes are not UTF-8), nor ISO-2022-JP
/// (as browsers, for pages that can run scripts; it is 7-bit, so valid
/// UTF-8 anyway).
fn undeclared(body: &[u8], valid_up_to: usize, host: Option<&str>) -> &'static Encoding {
    if let Some(e) = meta_charset(body) {
        return label_in_ascii(e, false);
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    let end = body.len().min(valid_up_to.saturating_add(DETECT_BYTES));
    detector.feed(&body[..end], true);
    detector.guess(top_level_domain(host), chardetng::Utf8Detection::Deny)
}

/// The last label of a domain name, in the form chardetng takes (ASCII
/// lower case, no dot); `None` for an IP address or anything else.
fn top_level_domain(host: Option<&str>) -> Option<&[u8]> {
    let host = host?;
    if host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() {
        return None;
    }
    let label = host.trim_end_matches('.').rsplit('.').next()?;
    (!label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
    .then_some(label.as_bytes())
}

/// Finds the encoding a `<meta>` tag of `head` declares: a prescan in the
/// spirit of HTML §13.2.3.2. Comments are skipped (`<!-- … -->`); in each
/// `<meta` tag (followed by whitespace or `/`), the first `charset=` whose
/// value is a known label counts, which covers both `<meta charset=…>` and
/// `<meta http-equiv=Content-Type content="text/html; charset=…">`. No
/// allocation: the scan goes from `<` to `<` with memchr.
fn meta_charset(head: &[u8]) -> Option<&'static Encoding> {
    let mut at = 0;
    while let Some(lt) = memchr::memchr(b'<', &head[at..]) {
        let start = at + lt;
        let rest = &head[start..];
        if rest.starts_with(b"<!--") {
            // To the first `>` after two dashes (`<!-->` is a comment too).
            at = start + 2 + memchr::memmem::find(&rest[2..], b"-->")? + 3;
            continue;
        }
        if rest.len() > 5
            && rest[1..5].eq_ignore_ascii_case(b"meta")
            && matches!(rest[5], b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/')
        {
            let end = memchr::memchr(b'>', rest).unwrap_or(rest.len());
            if let Some(e) = charset_in(&rest[5..end]) {
                return Some(e);
            }
            at = start + end;
        } else {
            at = start + 1;
        }
    }
    None
}

/// The encoding named by the first `charset = value` in a tag's
/// attributes whose value is a known label.
fn charset_in(tag: &[u8]) -> Option<&'static Encoding> {
    let mut from = 0;
    while from + 7 <= tag.len() {
        let c = tag[from..]
            .windows(7)
            .position(|w| w.eq_ignore_ascii_case(b"charset"))?;
        from += c + 7;
        let rest = tag[from..].trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b"=") else {
            continue;
        };
        let rest = rest.trim_ascii_start();
        let rest = rest
            .strip_prefix(b"\"")
            .or_else(|| rest.strip_prefix(b"'"))
            .unwrap_or(rest);
        let len = rest
            .iter()
            .position(|b| matches!(b, b'"' | b'\'' | b';' | b'/' | b'>') || b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        if let Some(e) = Encoding::for_label(&rest[..len]) {
            return Some(e);
        }
    }
    None
}

/// Whitespace-collapsing text accumulator, holding at most `cap` bytes.
struct TextBuf {
    out: String,
    /// One byte a line: the kind given when the line's first word came.
    kinds: Vec<u8>,
    pending_space: bool,
    cap: usize,
    /// Text was dropped at the cap.
    full: bool,
}

impl TextBuf {
    fn new(cap: usize) -> Self {
        Self {
            out: String::new(),
            kinds: Vec::new(),
            pending_space: false,
            cap,
            full: false,
        }
    }

    /// Appends text, collapsing runs of HTML whitespace (ASCII space, tab,
    /// LF, FF, CR) to one space. This is the hottest loop of parsing, so it
    /// scans bytes: whitespace is ASCII, and slicing at ASCII bytes always
    /// leaves valid UTF-8. Past the cap, text is dropped (a word at the cap
    /// is cut at a character boundary).
    fn push(&mut self, t: &str) {
        self.push_kind(t, 0);
    }

    /// [`Self::push`], recording `kind` for a line this text starts (0:
    /// record nothing).
    fn push_kind(&mut self, t: &str, kind: u8) {
        if self.full {
            return;
        }
        let bytes = t.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if is_ws(bytes[i]) {
                self.pending_space = true;
                i += 1;
                continue;
            }
            // A run of words separated by single spaces is already
            // collapsed: copy it whole.
            let start = i;
            i = run_end(bytes, i);
            let space = self.pending_space && !self.out.is_empty() && !self.out.ends_with('\n');
            let mut word = &t[start..i];
            let room = self.cap.saturating_sub(self.out.len() + usize::from(space));
            if word.len() > room {
                let mut end = room;
                while !word.is_char_boundary(end) {
                    end -= 1;
                }
                word = word[..end].trim_end_matches(' ');
                self.full = true;
            }
            if space && !word.is_empty() {
                self.out.push(' ');
            }
            if kind != 0 && !word.is_empty() && (self.out.is_empty() || self.out.ends_with('\n')) {
                self.kinds.push(kind);
            }
            self.out.push_str(word);
            self.pending_space = false;
            if self.full {
                return;
            }
        }
    }

    /// Separates what comes next from what came before by a space (table
    /// cells), unless a line starts there anyway.
    fn space(&mut self) {
        self.pending_space = true;
    }

    fn newline(&mut self) {
        if !self.full && !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
        self.pending_space = false;
    }

    fn finish(mut self) -> String {
        while self.out.ends_with('\n') {
            self.out.pop();
        }
        self.out
    }

    /// The text and its line kinds, one byte per line.
    fn finish_with_kinds(mut self) -> (String, String) {
        let mut kinds = std::mem::take(&mut self.kinds);
        let text = self.finish();
        let lines = if text.is_empty() {
            0
        } else {
            memchr::memchr_iter(b'\n', text.as_bytes()).count() + 1
        };
        kinds.resize(lines, extract::kind::PROSE);
        (text, String::from_utf8(kinds).unwrap_or_default())
    }
}

/// The end of the run of words separated by single spaces that starts
/// at `start` (a byte that is not HTML whitespace): the first whitespace
/// byte other than a space, or the first of two spaces, or the end, less
/// a space just before it. Eight bytes a step, as text is most of a page:
/// `x - 0x20…20 & !x & 0x80…80` flags the bytes below 0x20 (UTF-8's bytes,
/// 0x80 and up, never), the same on `y | y >> 8`, `y` the chunk with its
/// spaces zeroed, flags a space followed by a space; the lowest flag of
/// either is exact (a borrow only runs upward from a flagged byte).
#[inline]
fn run_end(bytes: &[u8], start: usize) -> usize {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    const SPACES: u64 = u64::from_le_bytes([b' '; 8]);
    let mut i = start;
    loop {
        // The first byte below 0x20 or double space at or after `i`.
        let p = loop {
            let Some(chunk) = bytes.get(i..i + 8) else {
                while i < bytes.len()
                    && bytes[i] >= b' '
                    && !(bytes[i] == b' ' && bytes.get(i + 1) == Some(&b' '))
                {
                    i += 1;
                }
                break i;
            };
            let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            let low = x.wrapping_sub(SPACES) & !x & HIGH;
            let y = x ^ SPACES;
            let z = y | (y >> 8);
            // (The last byte's pair is in the next chunk: looked at there.)
            let double = z.wrapping_sub(ONES) & !z & (HIGH >> 8);
            let flags = low | double;
            if flags != 0 {
                break i + (flags.trailing_zeros() / 8) as usize;
            }
            i += 7;
        };
        if p < bytes.len() && !is_ws(bytes[p]) {
            // A control character: part of the word.
            i = p + 1;
            continue;
        }
        return if p > start && bytes[p - 1] == b' ' {
            p - 1
        } else {
            p
        };
    }
}

fn collapse(s: &str) -> String {
    let mut b = TextBuf::new(usize::MAX);
    b.push(s);
    b.finish()
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

const MAX_ANCHOR_CHARS: usize = 256;

/// Text kept at most, in bytes of UTF-8: a page's text is cut here (and
/// the page marked truncated). A long book is ~3 MB of text; the
/// summarizers read far less.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// Parses an HTML body fetched from `url`: decodes it ([`decode`]) and
/// reads it in one pass ([`extract::extract`]).
pub fn parse(
    body: &[u8],
    url: &Url,
    content_type: Option<&str>,
    limits: ParseLimits,
) -> ParsedPage {
    let (text, encoding) = decode_from(body, content_type, url.host_str());
    let mut page = extract::extract(&text, url, limits);
    page.encoding = encoding.name();
    page
}

/// Reads an already decoded HTML document.
pub fn parse_str(html: &str, url: &Url, limits: ParseLimits) -> ParsedPage {
    extract::extract(html, url, limits)
}
#[cfg(test)]
mod tests {
    use super::*;

    fn p(html: &str) -> ParsedPage {
        parse_str(
            html,
            &Url::parse("http://site.test/dir/page.html").unwrap(),
            ParseLimits {
                markdown: true,
                ..ParseLimits::default()
            },
        )
    }

    /// Whitespace collapsed one byte at a time: the rule `TextBuf::push`
    /// implements eight bytes a step.
    fn collapse_slowly(s: &str) -> String {
        s.split([' ', '\t', '\n', '\x0c', '\r'])
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// [`run_end`] one byte at a time.
    fn run_end_slowly(bytes: &[u8], mut i: usize) -> usize {
        loop {
            while i < bytes.len() && !is_ws(bytes[i]) {
                i += 1;
            }
            if i + 1 < bytes.len() && bytes[i] == b' ' && !is_ws(bytes[i + 1]) {
                i += 1;
            } else {
                return i;
            }
        }
    }

    #[test]
    fn whitespace_collapses_as_the_byte_rule_says_at_every_offset() {
        let pieces = [
            "a",
            "word",
            " ",
            "  ",
            "\t",
            "\n",
            "\r\n",
            "\x0c",
            "\x01",
            "\x1f",
            "!",
            "\u{e9}",
            "\u{1f980}",
            "\u{4e2d}\u{6587}",
            "twelve chars",
            "\u{a0}",
            "\x7f",
            " \x00 ",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut longest = 0;
        for _ in 0..5_000 {
            let mut s = String::new();
            for _ in 0..next() % 24 {
                s.push_str(pieces[(next() % pieces.len() as u64) as usize]);
            }
            longest = longest.max(s.len());
            assert_eq!(collapse(&s), collapse_slowly(&s), "{s:?}");
            for i in (0..s.len()).filter(|&i| s.as_bytes()[i] > b' ' || s.as_bytes()[i] < b'\t') {
                assert_eq!(
                    run_end(s.as_bytes(), i),
                    run_end_slowly(s.as_bytes(), i),
                    "{s:?} from {i}"
                );
            }
        }
        assert!(longest > 40, "{longest}");
    }

    #[test]
    fn extracts_metadata() {
        let page = p(r#"<!doctype html><html lang="en-GB"><head>
            <title>  Hello
              World </title>
            <meta name="Description" content=" A   page ">
            <meta name="robots" content="NOINDEX">
            <link rel="alternate canonical" href="/canon#x">
            </head><body><p>Text</p></body></html>"#);
        assert_eq!(page.title.as_deref(), Some("Hello World"));
        assert_eq!(page.description.as_deref(), Some("A page"));
        assert_eq!(page.language.as_deref(), Some("en-GB"));
        assert_eq!(page.canonical.as_deref(), Some("http://site.test/canon"));
        assert_eq!(page.meta_robots.as_deref(), Some("noindex"));
        assert_eq!(page.text, "Text");
    }

    #[test]
    fn links_resolve_against_base_and_dedupe() {
        let page = p(r#"<html><head><base href="/other/"></head><body>
            <a href="a.html">First <b>one</b></a>
            <a href="a.html#frag">dup</a>
            <a href="mailto:x@y">mail</a>
            <a href="javascript:void(0)">js</a>
            <a rel="nofollow noopener" href="http://Elsewhere.test:80/x">ext</a>
            <a>no href</a>
            <map><area href="/map" alt="Map"></map>
            </body></html>"#);
        let got: Vec<(String, &str, bool)> = page
            .links
            .iter()
            .map(|l| (l.url.to_string(), l.anchor.as_str(), l.nofollow))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "http://site.test/other/a.html".to_string(),
                    "First one",
                    false
                ),
                ("http://elsewhere.test/x".to_string(), "ext", true),
                ("http://site.test/map".to_string(), "Map", false),
            ]
        );
        assert_eq!(page.base.as_deref(), Some("http://site.test/other/"));
    }

    #[test]
    fn readable_text_skips_scripts_and_keeps_blocks() {
        let page = p(
            "<html><head><style>p{}</style><script>var x = 1;</script></head><body>\
             <h1>Title</h1><p>One <i>two</i>\n three.</p><script>evil()</script><div>Four<br>Five</div>\
             <noscript>no</noscript><p>a<b>b</b>c</p></body></html>",
        );
        assert_eq!(page.text, "Title\nOne two three.\nFour\nFive\nabc");
    }

    #[test]
    fn any_shape_is_read_whole_in_linear_time() {
        // 100,000 nested elements: read to the end, nothing held per element.
        let deep = format!(
            "<html><body><p>before</p>{}deep<a href=/after>after</a>{}</body></html>",
            "<div>".repeat(100_000),
            "</div>".repeat(100_000)
        );
        let page = p(&deep);
        assert!(!page.cut);
        assert_eq!(page.text, "before\ndeepafter");
        assert_eq!(page.links.len(), 1);
        // The same for every way HTML nests: `<div/>` opens a div, HTML
        // inside SVG, void names in SVG, unclosed list items and cells.
        for shape in [
            "<div/>".repeat(50_000),
            format!("<svg>{}", "<div/>".repeat(50_000)),
            format!("<svg>{}</svg>", "<path/>".repeat(50_000)),
            format!("<svg>{}", "<input>".repeat(50_000)),
            format!("<ul>{}</ul>", "<li>x".repeat(50_000)),
            format!("<table>{}</table>", "<tr><td>a<td>b".repeat(20_000)),
            "</span>".repeat(100_000),
            format!("{}{}", "<span>".repeat(2000), "</div>".repeat(100_000)),
        ] {
            let mut page = shape.clone();
            page.push_str("<p>tail <a href=/t>t</a>");
            let got = p(&page);
            assert!(got.text.ends_with("tail t"), "{}", &shape[..20]);
            assert_eq!(got.links.len(), 1, "{}", &shape[..20]);
        }
        // `<` in scripts and comments is not a tag.
        let scripted = format!(
            "<body><p>Text</p><script>{}</script><!--{}--><a href=/y>y</a></body>",
            "if(i<n){a<b}".repeat(2000),
            "<div>".repeat(2000)
        );
        let page = p(&scripted);
        assert!(!page.cut);
        assert_eq!(page.links.len(), 1);
        assert_eq!(page.text, "Text\ny");
    }

    #[test]
    fn every_link_of_a_page_of_60000_elements_is_kept() {
        let mut html = String::from("<html><body><ul>");
        for i in 0..6000 {
            html.push_str(&format!(
                "<li><span class=a><b>{i}</b></span><a href=\"/p/{i}.html\"><i>page</i> {i}</a><span>x</span><em>y</em><code>z</code><small>w</small><u>v</u></li>"
            ));
        }
        html.push_str("</ul></body></html>");
        assert!(html.matches('<').count() - html.matches("</").count() > 60_000);
        let page = p(&html);
        assert_eq!(page.links.len(), 6000);
        assert_eq!(page.links[5999].url.path(), "/p/5999.html");
        assert_eq!(page.links[5999].anchor, "page 5999");
        assert!(!page.cut);
    }

    #[test]
    fn tree_builder_rules_that_decide_what_is_text() {
        // Any heading end tag closes the open heading.
        let page = p("<h1>Title</h2><p>First sentence here.</p>");
        assert_eq!(page.text, "Title\nFirst sentence here.");
        assert_eq!(page.text_kinds, "hp");
        // Table parts outside a table are ignored; cells are words apart.
        let page = p("<div><td>cell</div><p>Prose follows.</p>");
        assert_eq!(
            (page.text.as_str(), page.text_kinds.as_str()),
            ("cell\nProse follows.", "pp")
        );
        let page = p(
            "<table><tr><th>Name</th><th>Age</th></tr><tr><td>Alice</td><td>30</td></tr></table>",
        );
        assert_eq!(page.text, "Name Age\nAlice 30");
        // Past the depth limit a script, a style or a nav stays hidden, and
        // `<a name>`s without href do not nest.
        let deep = format!(
            "{}<script>var leaked=1</script><style>.x{{}}</style><nav>MENU</nav><p>end",
            "<div>x ".repeat(1030)
        );
        let page = p(&deep);
        assert!(
            page.text.ends_with("x\nend"),
            "{:?}",
            &page.text[page.text.len() - 40..]
        );
        assert!(!page.text.contains("leaked") && !page.text.contains("MENU"));
        let anchors = format!("{}<nav>MENU</nav><p>end</p>", "<a name=s>x ".repeat(2000));
        assert!(!p(&anchors).text.contains("MENU"));
        // `<!--` in a script hides a nested `</script>`.
        let page = p(
            "<script><!-- document.write(\"<script src=x></script>\"); var a = \"<a href=/js>\"; --></script><p>text",
        );
        assert_eq!((page.text.as_str(), page.links.len()), ("text", 0));
        // `<base href>` after a canonical or an open link still applies.
        let page = p(
            "<link rel=canonical href=c.html><base href=\"/other/\"><a href=a.html><base href=/x/>a</a>",
        );
        assert_eq!(
            page.canonical.as_deref(),
            Some("http://site.test/other/c.html")
        );
        assert_eq!(page.links[0].url.as_str(), "http://site.test/other/a.html");
        // SVG links are links.
        let page = p("<svg><a href=\"/svglink\"><text>t</text></a></svg>");
        assert_eq!(page.links[0].url.as_str(), "http://site.test/svglink");
        // A meta refresh target is a link.
        let page = p("<meta http-equiv=REFRESH content=\"0; URL='/start/'\">");
        assert_eq!(page.links[0].url.as_str(), "http://site.test/start/");
        assert_eq!(page.refresh.as_ref().map(|r| r.delay), Some(0));
        let half = Refresh::parse(".5; url=/next", &Url::parse("http://s.test/").unwrap());
        assert_eq!(half.map(|r| r.delay), Some(0));
    }

    #[test]
    fn text_is_capped() {
        let long = format!("<body><p>{}</p></body>", "wörd ".repeat(300_000));
        let page = p(&long);
        assert!(page.cut);
        assert!(page.text.len() <= MAX_TEXT_BYTES);
        assert!(page.text.len() > MAX_TEXT_BYTES - 8);
        // One word longer than the cap is cut at a character boundary.
        let word = format!("<body><p>{}</p></body>", "ü".repeat(MAX_TEXT_BYTES));
        let page = p(&word);
        assert!(page.cut && page.text.len() == MAX_TEXT_BYTES);
        // Anchor text is bounded too.
        let anchor = format!("<a href=/a>{}</a>", "a ".repeat(100_000));
        assert_eq!(p(&anchor).links[0].anchor.chars().count(), MAX_ANCHOR_CHARS);
        assert!(!p("<p>short</p>").cut);
    }

    #[test]
    fn text_is_the_main_content_without_navigation_headers_and_footers() {
        let page = p(
            "<body><header>Site name</header><nav><a href=/a>Home</a></nav>\
             <article><header><h1>Headline</h1></header><p>Body text.</p><footer>By me</footer></article>\
             <aside>Related</aside><div role=navigation>Menu</div><footer>Copyright</footer></body>",
        );
        assert_eq!(page.text, "Headline\nBody text.\nBy me");
        // Links in boilerplate are still links, with their anchor text.
        assert_eq!(page.links.len(), 1);
        assert_eq!(page.links[0].anchor, "Home");

        // Nested mains (a common theme pattern), a main inside a template,
        // a header in a plain section.
        let page = p(
            "<body><nav>x</nav><main><div role=main><p>Inner</p></div><p>Outer</p></main></body>",
        );
        assert_eq!(page.text, "Inner\nOuter");
        let page = p("<body><template><main>t</main></template><p>Real text</p></body>");
        assert_eq!(page.text, "Real text");
        let page = p("<body><section><header><h1>Title</h1></header><p>Post</p></section></body>");
        assert_eq!(page.text, "Title\nPost");

        let page = p(
            "<body><div>Sidebar</div><main><h1>Only</h1><p>this <nav>x</nav>counts</p></main><p>Not this</p>\
             <div role=main>and this</div></body>",
        );
        assert_eq!(page.text, "Only\nthis\ncounts\nand this");
    }

    #[test]
    fn markdown_has_the_structure_of_the_main_content() {
        let md = |html: &str| p(html).markdown;
        // The content the text has: navigation, asides and what is outside
        // a `<main>` that has text are left out.
        assert_eq!(
            md(
                "<body><nav><a href=/>Home</a></nav><p>Before</p><main><h2>T</h2><p>x</p></main>\
                <footer>f</footer><div role=main>y</div></body>"
            ),
            "## T\n\nx\n\ny"
        );
        // An empty main: the whole page.
        assert_eq!(md("<p>a</p><main> </main><p>b</p>"), "a\n\nb");
        // Emphasis that spans a block break is closed and opened again;
        // empty emphasis and links write nothing.
        assert_eq!(
            md("<b>bold<p>next</p></b><p><em> </em><a href=/x></a>end</p>"),
            "**bold**\n\n**next**\n\nend"
        );
        // Nested lists, items of several blocks, a quote in an item.
        assert_eq!(
            md("<ol><li>a<ul><li>b</li></ul></li><li><p>c</p><blockquote>q</blockquote></li></ol>"),
            "1. a\n   - b\n2. c\n\n   > q"
        );
        // A table whose cells hold block content is written as its text.
        assert_eq!(
            md("<table><tr><td><h3>Menu</h3></td><td><p>Body</p></td></tr></table>"),
            "### Menu\n\nBody"
        );
        // Links keep their fragment and resolve against `<base href>`;
        // an image without alt text is decoration.
        assert_eq!(
            md(
                "<base href=/b/><p><a href=\"p.html#s 1\">p</a> <img src=i.png> <img src=j.png alt=J></p>"
            ),
            "[p](http://site.test/b/p.html#s%201) [J](http://site.test/b/j.png)"
        );
        // A code span holding backticks, a code block holding a fence.
        assert_eq!(
            md("<p><code>a`b</code></p><pre>```\n</pre>"),
            "``a`b``\n\n````\n```\n````"
        );
        // Hard line breaks inside a paragraph, none at its end.
        assert_eq!(md("<p>a<br>b<br></p><p>c</p>"), "a\\\nb\n\nc");
        // Cut at the cap like the text, at a line's end, and marked.
        let long = format!("<body>{}</body>", "<p>wörd wörd</p>".repeat(100_000));
        let page = p(&long);
        assert!(page.cut && page.markdown.len() <= MAX_TEXT_BYTES);
        assert!(page.markdown.ends_with("wörd wörd"));
    }

    #[test]
    fn link_cap_counts_dropped() {
        let mut html = String::from("<html><body>");
        for i in 0..50 {
            html.push_str(&format!("<a href='/p{i}'>x</a>"));
        }
        let page = parse_str(
            &html,
            &Url::parse("http://s.test/").unwrap(),
            ParseLimits {
                max_links: 10,
                markdown: false,
            },
        );
        assert_eq!(page.links.len(), 10);
        assert_eq!(page.links_dropped, 40);
    }

    #[test]
    fn charset_detection() {
        // UTF-8 cut inside a character (a body read in part) is UTF-8.
        let cut = "<p>é café</p>".as_bytes();
        assert_eq!(decode(&cut[..10], None).1, encoding_rs::UTF_8);
        assert_eq!(decode(&cut[..10], None).0, "<p>é caf\u{fffd}");
        assert_eq!(decode(b"<p>caf\xe9</p>", None).1, encoding_rs::WINDOWS_1252);
        // windows-1252 "café" declared in the header
        let body = b"<html><body>caf\xe9</body></html>";
        let (t, e) = decode(body, Some("text/html; charset=ISO-8859-1"));
        assert!(t.contains("café"));
        assert_eq!(e.name(), "windows-1252");
        // declared by <meta charset>
        let (t, e) = decode(b"<meta charset=\"shift_jis\"><p>\x93\xfa\x96\x7b", None);
        assert_eq!(e.name(), "Shift_JIS");
        assert!(t.contains("日本"));
        // http-equiv form
        let (_, e) = decode(
            b"<meta http-equiv=Content-Type content='text/html; charset=koi8-r'>",
            None,
        );
        assert_eq!(e.name(), "KOI8-R");
        // BOM wins over the header
        let (t, e) = decode(b"\xef\xbb\xbfhi", Some("text/html; charset=windows-1252"));
        assert_eq!((t.as_ref(), e.name()), ("hi", "UTF-8"));
        // undeclared, invalid UTF-8: the detector says windows-1252 for
        // Latin text; never a panic
        let (t, e) = decode(b"caf\xe9", None);
        assert_eq!((t.as_ref(), e.name()), ("café", "windows-1252"));
        // undeclared valid UTF-8
        let (_, e) = decode("café".as_bytes(), None);
        assert_eq!(e.name(), "UTF-8");
    }

    #[test]
    fn undeclared_legacy_encodings_are_detected_and_late_metas_honoured() {
        let cp1251 = |s: &str| encoding_rs::WINDOWS_1251.encode(s).0.into_owned();
        // Cyrillic in windows-1251, declared nowhere: detected, on any host.
        let ru = cp1251(
            "<title>Новости</title><p>Сегодня в городе прошёл дождь, а завтра обещают солнце.</p>",
        );
        for host in [
            None,
            Some("example.com"),
            Some("пример.рф"),
            Some("127.0.0.1"),
        ] {
            let (t, e) = decode_from(&ru, None, host);
            assert_eq!(e.name(), "windows-1251", "{host:?}");
            assert!(t.contains("Сегодня в городе"), "{host:?}");
        }
        // A <meta charset> past the first 1024 bytes is honoured over a
        // guess: x-mac-cyrillic, which the detector never guesses (its
        // capitals are other letters in windows-1251).
        let mac = encoding_rs::Encoding::for_label(b"x-mac-cyrillic").unwrap();
        let late = [
            format!("<html><head><!-- {} -->", "x".repeat(1100)).as_bytes(),
            b"<meta charset=\"x-mac-cyrillic\">",
            &mac.encode("<title>Привет, мир</title><p>Новости дня.</p>")
                .0,
        ]
        .concat();
        let (t, e) = decode(&late, None);
        assert_eq!(e.name(), "x-mac-cyrillic");
        assert!(t.contains("<title>Привет, мир</title>"));
        // ...but not over a declaration, nor over valid UTF-8.
        let (_, e) = decode(&late, Some("text/html; charset=windows-1251"));
        assert_eq!(e.name(), "windows-1251");
        let utf8 = format!("{}<meta charset=windows-1251><p>Привет", " ".repeat(1100));
        assert_eq!(decode(utf8.as_bytes(), None).1.name(), "UTF-8");
        // A late label naming UTF-16 means UTF-8.
        let u16 = [
            " ".repeat(1100).as_bytes(),
            b"<meta charset=utf-16><p>caf\xe9",
        ]
        .concat();
        assert_eq!(decode(&u16, None).1.name(), "UTF-8");
    }

    #[test]
    fn the_prescan_skips_comments_and_reads_both_meta_forms() {
        let enc = |b: &[u8]| meta_charset(b).map(|e| e.name());
        assert_eq!(enc(b"<meta charset=koi8-r>"), Some("KOI8-R"));
        assert_eq!(enc(b"<META CHARSET='Shift_JIS'/>"), Some("Shift_JIS"));
        assert_eq!(
            enc(b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1251\">"),
            Some("windows-1251")
        );
        assert_eq!(
            enc(b"<!-- <meta charset=koi8-r> --><meta charset=iso-8859-2>"),
            Some("ISO-8859-2")
        );
        assert_eq!(enc(b"<!--><meta charset=koi8-r>"), Some("KOI8-R"));
        assert_eq!(enc(b"<!-- <meta charset=koi8-r>"), None);
        // Not a meta tag; a charset word with no value, then one with.
        assert_eq!(enc(b"<metadata charset=koi8-r>"), None);
        assert_eq!(
            enc(b"<meta name=charset content=x charset=euc-kr>"),
            Some("EUC-KR")
        );
        assert_eq!(enc(b"<meta charset=bogus><meta charset=gbk>"), Some("GBK"));
        assert_eq!(enc(b"<p>charset=koi8-r"), None);
    }

    #[test]
    fn top_level_domains_as_the_detector_takes_them() {
        fn tld(h: &str) -> Option<String> {
            top_level_domain(Some(h)).map(|t| String::from_utf8_lossy(t).into_owned())
        }
        assert_eq!(tld("news.example.ru").as_deref(), Some("ru"));
        assert_eq!(tld("example.com.").as_deref(), Some("com"));
        assert_eq!(tld("xn--p1ai").as_deref(), Some("xn--p1ai"));
        assert_eq!(tld("localhost").as_deref(), Some("localhost"));
        assert_eq!(tld("127.0.0.1"), None);
        assert_eq!(tld("[::1]"), None);
        assert_eq!(
            tld("Example.COM"),
            None,
            "never upper case (chardetng panics)"
        );
        assert_eq!(top_level_domain(None), None);
    }
}
