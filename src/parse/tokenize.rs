//! A streaming HTML tokenizer: a decoded document in, tokens out, nothing
//! allocated per token.
//!
//! In: the whole decoded document as one `&str`. Out: [`Token`]s borrowing
//! from it: start tags (their attributes in [`Tokenizer::attrs`] until the
//! next call), end tags, text, and the raw content of elements whose
//! content is not markup (`<script>`, `<style>`, `<title>`…).
//!
//! It follows the tokenization rules of the WHATWG HTML standard (§13.2.5)
//! where they decide what is a tag, what is text and where a tag ends:
//! comments (including `<!-->` and `--!>`), bogus comments (`<!x>`, `<?x>`,
//! `</ x>`), quoted attribute values that hold `>`, the tag-name and
//! attribute-name character sets, a tag cut by the end of input (dropped),
//! and the RCDATA / RAWTEXT / script-data / PLAINTEXT states, which the
//! caller selects with [`Tokenizer::set_raw`] after a start tag, as a tree
//! builder does, including the script-data escape states (`<!--` … `-->`
//! inside a script, where `<script>…</script>` does not end it). What it
//! leaves out does not change tags or text a crawler reads: parse errors,
//! and character references, which [`super::entities::decode`] resolves
//! in the text and values that are actually read.
//!
//! Every step scans forward with `memchr` and never looks back, so a
//! document costs time linear in its length whatever its markup.

use memchr::{memchr, memmem};

/// One token. Names are as written (compare with `eq_ignore_ascii_case`);
/// text and values are raw: character references are not yet decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// A start tag; its attributes are in [`Tokenizer::attrs`].
    Start {
        name: &'a str,
        self_closing: bool,
    },
    End {
        name: &'a str,
    },
    /// Text between tags (character references not decoded).
    Text(&'a str),
    /// The content of an element read in a raw mode (see [`Raw`]).
    Raw(&'a str),
}

/// How the content of the element just started is read (HTML §13.2.5.2–5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raw {
    /// `<title>`, `<textarea>`: text with character references, no tags.
    Rcdata,
    /// `<style>`, `<xmp>`, `<iframe>`, `<noembed>`, `<noframes>`,
    /// `<noscript>`: text without character references or tags.
    Rawtext,
    /// `<script>`.
    Script,
    /// `<plaintext>`: everything to the end of the document.
    Plaintext,
}

pub struct Tokenizer<'a> {
    src: &'a str,
    pos: usize,
    /// The attributes of the last start tag: raw name and raw value (a
    /// name without a value has an empty value).
    pub attrs: Vec<(&'a str, &'a str)>,
    /// Set after a start tag: its name and how its content is read.
    raw: Option<(&'a str, Raw)>,
}

/// HTML's ASCII whitespace (WHATWG Infra), inside tags and in text: TAB,
/// LF, FF, CR and SPACE.
pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

impl<'a> Tokenizer<'a> {
    pub fn new(src: &'a str) -> Self {
        Self {
            src,
            pos: 0,
            attrs: Vec::new(),
            raw: None,
        }
    }

    /// Reads the content of the element whose start tag was just returned
    /// in `mode`, up to its end tag (`name` is the element's name).
    pub fn set_raw(&mut self, name: &'a str, mode: Raw) {
        self.raw = Some((name, mode));
    }

    /// How far into the document the tokenizer has read, in bytes.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    /// The next token, or `None` at the end of the document.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Token<'a>> {
        if let Some((name, mode)) = self.raw.take() {
            let start = self.pos;
            let end = match mode {
                Raw::Plaintext => self.src.len(),
                Raw::Script => self.find_script_end(),
                _ => self.find_end_tag(name),
            };
            self.pos = end;
            if end > start {
                return Some(Token::Raw(&self.src[start..end]));
            }
        }
        let bytes = self.bytes();
        loop {
            if self.pos >= bytes.len() {
                return None;
            }
            let start = self.pos;
            if bytes[start] != b'<' {
                let end = memchr(b'<', &bytes[start..]).map_or(bytes.len(), |i| start + i);
                self.pos = end;
                return Some(Token::Text(&self.src[start..end]));
            }
            match bytes.get(start + 1).copied() {
                Some(b) if b.is_ascii_alphabetic() => {
                    match self.tag(start + 1) {
                        Some((name, self_closing, end)) => {
                            self.pos = end;
                            return Some(Token::Start { name, self_closing });
                        }
                        // A tag cut by the end of input is dropped.
                        None => {
                            self.pos = bytes.len();
                            return None;
                        }
                    }
                }
                Some(b'/') => match bytes.get(start + 2).copied() {
                    Some(b) if b.is_ascii_alphabetic() => match self.tag(start + 2) {
                        Some((name, _, end)) => {
                            self.pos = end;
                            return Some(Token::End { name });
                        }
                        None => {
                            self.pos = bytes.len();
                            return None;
                        }
                    },
                    // `</>` is nothing at all.
                    Some(b'>') => self.pos = start + 3,
                    // `</` at the end is text.
                    None => {
                        self.pos = bytes.len();
                        return Some(Token::Text(&self.src[start..]));
                    }
                    // `</ x>`, `</3>`: a bogus comment.
                    Some(_) => self.pos = self.skip_to_gt(start + 2),
                },
                Some(b'!') => {
                    let rest = &bytes[start + 2..];
                    if rest.starts_with(b"--") {
                        self.pos = self.comment_end(start + 4);
                    } else {
                        self.pos = self.skip_to_gt(start + 2);
                    }
                }
                Some(b'?') => self.pos = self.skip_to_gt(start + 2),
                // A `<` that starts nothing is text, with what follows it.
                _ => {
                    let end =
                        memchr(b'<', &bytes[start + 1..]).map_or(bytes.len(), |i| start + 1 + i);
                    self.pos = end;
                    return Some(Token::Text(&self.src[start..end]));
                }
            }
        }
    }

    /// Past the `>` at or after `from` (or the end): a bogus comment.
    fn skip_to_gt(&self, from: usize) -> usize {
        let bytes = self.bytes();
        memchr(b'>', &bytes[from.min(bytes.len())..]).map_or(bytes.len(), |i| from + i + 1)
    }

    /// Past the end of a comment whose text starts at `from` (just after
    /// `<!--`): `-->` or `--!>`, and `<!-->` / `<!--->` end at once.
    fn comment_end(&self, from: usize) -> usize {
        let bytes = self.bytes();
        let rest = &bytes[from.min(bytes.len())..];
        if rest.starts_with(b">") {
            return from + 1;
        }
        if rest.starts_with(b"->") {
            return from + 2;
        }
        let mut at = 0;
        while let Some(i) = memmem::find(&rest[at..], b"--") {
            let dash = at + i;
            let after = &rest[dash + 2..];
            if after.starts_with(b">") {
                return from + dash + 3;
            }
            if after.starts_with(b"!>") {
                return from + dash + 4;
            }
            at = dash + 1;
        }
        bytes.len()
    }

    /// Reads a tag whose name starts at `from`: its name, whether it ends
    /// in `/>`, and the position after its `>`. Attributes go to
    /// [`Self::attrs`]. `None` if the input ends inside the tag.
    fn tag(&mut self, from: usize) -> Option<(&'a str, bool, usize)> {
        let src = self.src;
        let bytes = src.as_bytes();
        let mut i = from;
        while i < bytes.len() && !is_ws(bytes[i]) && bytes[i] != b'/' && bytes[i] != b'>' {
            i += 1;
        }
        let name = &src[from..i];
        self.attrs.clear();
        let mut self_closing = false;
        loop {
            // Before an attribute name: whitespace and stray slashes.
            while i < bytes.len() && (is_ws(bytes[i]) || bytes[i] == b'/') {
                self_closing = bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'>');
                i += 1;
            }
            match bytes.get(i) {
                None => return None,
                Some(b'>') => return Some((name, self_closing, i + 1)),
                _ => {}
            }
            self_closing = false;
            // The name: a leading `=` belongs to it.
            let name_start = i;
            i += 1;
            while i < bytes.len()
                && !matches!(
                    bytes[i],
                    b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/' | b'>' | b'='
                )
            {
                i += 1;
            }
            let attr_name = &src[name_start..i];
            while i < bytes.len() && is_ws(bytes[i]) {
                i += 1;
            }
            let mut value = "";
            if bytes.get(i) == Some(&b'=') {
                i += 1;
                while i < bytes.len() && is_ws(bytes[i]) {
                    i += 1;
                }
                match bytes.get(i) {
                    None => return None,
                    Some(&q @ (b'"' | b'\'')) => {
                        let end = memchr(q, &bytes[i + 1..])? + i + 1;
                        value = &src[i + 1..end];
                        i = end + 1;
                    }
                    // `a=>`: an empty value, and the tag ends.
                    Some(b'>') => {}
                    Some(_) => {
                        let start = i;
                        while i < bytes.len() && !is_ws(bytes[i]) && bytes[i] != b'>' {
                            i += 1;
                        }
                        value = &src[start..i];
                    }
                }
            }
            self.attrs.push((attr_name, value));
        }
    }

    /// Where a script's end tag starts (or the end of the document),
    /// through the script-data escape states of HTML §13.2.5.4–5.30: after
    /// `<!--`, a `<script` opens a nested script whose `</script>` does not
    /// end this one, until `-->`.
    fn find_script_end(&self) -> usize {
        #[derive(PartialEq)]
        enum State {
            Data,
            Escaped,
            DoubleEscaped,
        }
        let bytes = self.bytes();
        let tag_at = |i: usize, name: &[u8]| {
            bytes.len() >= i + name.len()
                && bytes[i..i + name.len()].eq_ignore_ascii_case(name)
                && bytes
                    .get(i + name.len())
                    .is_none_or(|&b| is_ws(b) || b == b'/' || b == b'>')
        };
        let mut state = State::Data;
        let mut at = self.pos;
        while let Some(i) = memchr::memchr2(b'<', b'-', &bytes[at..]) {
            let i = at + i;
            at = i + 1;
            if bytes[i] == b'-' {
                if state != State::Data && bytes[i..].starts_with(b"-->") {
                    state = State::Data;
                    at = i + 3;
                }
                continue;
            }
            match state {
                State::Data => {
                    if tag_at(i + 1, b"/script") {
                        return i;
                    }
                    if bytes[i..].starts_with(b"<!--") {
                        state = State::Escaped;
                        // `<!-->` and `<!--->` close at once.
                        at = i + 2;
                    }
                }
                State::Escaped => {
                    if tag_at(i + 1, b"/script") {
                        return i;
                    }
                    if tag_at(i + 1, b"script") {
                        state = State::DoubleEscaped;
                    }
                }
                State::DoubleEscaped => {
                    if tag_at(i + 1, b"/script") {
                        state = State::Escaped;
                    }
                }
            }
        }
        bytes.len()
    }

    /// Where the end tag of the raw element `name` starts (`</name`
    /// followed by whitespace, `/` or `>`), or the end of the document.
    fn find_end_tag(&self, name: &str) -> usize {
        let bytes = self.bytes();
        let n = name.len();
        let mut at = self.pos;
        while let Some(i) = memchr(b'<', &bytes[at..]) {
            let lt = at + i;
            if bytes.get(lt + 1) == Some(&b'/')
                && bytes.len() >= lt + 2 + n
                && bytes[lt + 2..lt + 2 + n].eq_ignore_ascii_case(name.as_bytes())
                && bytes
                    .get(lt + 2 + n)
                    .is_none_or(|&b| is_ws(b) || b == b'/' || b == b'>')
            {
                return lt;
            }
            at = lt + 1;
        }
        bytes.len()
    }
}

/// The first attribute named `name` (ASCII case-insensitive); later
/// duplicates are ignored, as HTML says.
pub fn attr<'a>(attrs: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// Whether `s` is only HTML whitespace.
pub fn is_blank(s: &str) -> bool {
    s.bytes().all(is_ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(html: &str) -> Vec<String> {
        let mut t = Tokenizer::new(html);
        let mut out = Vec::new();
        while let Some(tok) = t.next() {
            out.push(match tok {
                Token::Start { name, self_closing } => {
                    let attrs: Vec<String> =
                        t.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    if name.eq_ignore_ascii_case("script") {
                        t.set_raw(name, Raw::Script);
                    }
                    if name.eq_ignore_ascii_case("title") {
                        t.set_raw(name, Raw::Rcdata);
                    }
                    format!(
                        "<{name}{}{}>",
                        attrs.iter().map(|a| format!(" {a}")).collect::<String>(),
                        if self_closing { "/" } else { "" }
                    )
                }
                Token::End { name } => format!("</{name}>"),
                Token::Text(s) => format!("T:{s}"),
                Token::Raw(s) => format!("R:{s}"),
            });
        }
        out
    }

    #[test]
    fn tags_text_comments_and_raw_content() {
        let cases: &[(&str, &[&str])] = &[
            ("<p>a</p>", &["<p>", "T:a", "</p>"]),
            (
                "<a href=\"x>y\" b='1' c=2 d>t",
                &["<a href=x>y b=1 c=2 d=>", "T:t"],
            ),
            ("<br/><svg/ ><svg />", &["<br/>", "<svg>", "<svg/>"]),
            ("a<!-- <p> -->b<!-->c<!--->d", &["T:a", "T:b", "T:c", "T:d"]),
            ("a<!-- x --!>b", &["T:a", "T:b"]),
            (
                "a<!doctype html>b<?xml x?>c</ x>d</>e",
                &["T:a", "T:b", "T:c", "T:d", "T:e"],
            ),
            ("1 < 2 <3", &["T:1 ", "T:< 2 ", "T:<3"]),
            (
                "<script>if (a<b) x='</p>'</script ><p>",
                &["<script>", "R:if (a<b) x='</p>'", "</script>", "<p>"],
            ),
            (
                "<title>a <b>&amp;</title>",
                &["<title>", "R:a <b>&amp;", "</title>"],
            ),
            ("<script>never closed", &["<script>", "R:never closed"]),
            (
                "<script><!-- w(\"<script>x</script>\"); --></script><p>",
                &[
                    "<script>",
                    "R:<!-- w(\"<script>x</script>\"); -->",
                    "</script>",
                    "<p>",
                ],
            ),
            (
                "<script><!-- a </script><p>",
                &["<script>", "R:<!-- a ", "</script>", "<p>"],
            ),
            (
                "<script><!--></script>",
                &["<script>", "R:<!-->", "</script>"],
            ),
            ("<p class=\"cut", &[]),
            ("text</", &["T:text", "T:</"]),
            ("<a =x>", &["<a =x=>"]),
            ("<a x=>", &["<a x=>"]),
        ];
        for (html, want) in cases {
            assert_eq!(tokens(html), *want, "{html}");
        }
    }
}
