//! Page analysis in one streaming pass: tokens in, [`ParsedPage`] out, no
//! tree.
//!
//! A crawler needs a page's links, its head metadata and its readable
//! text, and each of those is decided by which elements are open around a
//! token: inside `<script>`, `<nav>`, `<main>`, an `<a>`, a `<pre>`. So
//! instead of building a DOM, this keeps the stack of open elements as a
//! tree builder would (HTML §13.2.6), with only a hash and a few flags per
//! element, and applies the tree builder's rules that change which
//! elements are open: void elements, `<p>`/`<li>`/`<dd>`/`<td>`/`<tr>`/
//! `<option>` closed by what follows them, end tags matched within scope
//! and ignored across special elements, a second `<a>` closing the first,
//! HTML elements breaking out of `<svg>`/`<math>`, head content before the
//! body. Memory is the stack (at most [`MAX_DEPTH`] entries), the text
//! (at most [`MAX_TEXT_BYTES`]) and the links (at most `max_links`),
//! whatever the page's size or shape.

use url::Url;

use super::entities;
use super::markdown::{self, Markdown};
use super::tokenize::{Raw, Token, Tokenizer, attr, is_blank};
use super::{
    Link, LinkKind, MAX_ANCHOR_CHARS, MAX_TEXT_BYTES, ParseLimits, ParsedPage, TextBuf, collapse,
};
use crate::canon;
use crate::util::FpSet;

/// Open elements tracked at most; deeper ones are counted, not kept. No
/// real page nests this deep; a hostile one costs nothing more.
pub const MAX_DEPTH: usize = 1024;

/// Elements looked through when asking "is a `<p>` open in scope?": far
/// enough for any real page, and bounded so that a hostile page of deep
/// nesting cannot make each tag cost its depth.
const SCOPE_SCAN: usize = 64;

// What a tag is, by its name (see `props`).
const VOID: u32 = 1;
const HIDDEN: u32 = 1 << 1;
const BLOCK: u32 = 1 << 2;
const CONTENT: u32 = 1 << 3;
/// `<nav>`, `<aside>`; `<header>`/`<footer>` outside content.
const BOILER: u32 = 1 << 4;
const HEADER_FOOTER: u32 = 1 << 5;
const MAIN: u32 = 1 << 6;
/// Special elements of HTML §13.2.4.3: end tags of other elements are not
/// matched across them.
const SPECIAL: u32 = 1 << 7;
/// Ends the default scope (HTML §13.2.4.2).
const SCOPE: u32 = 1 << 8;
/// Closes an open `<p>` (HTML §13.2.6.4.7, "A start tag whose tag name is
/// one of: address, article…").
const CLOSES_P: u32 = 1 << 9;
const HEADING: u32 = 1 << 10;
const CODE: u32 = 1 << 11;
const LIST_ITEM: u32 = 1 << 12;
const TABLE_CELL: u32 = 1 << 13;
/// `<svg>`, `<math>`: foreign content.
const FOREIGN: u32 = 1 << 14;
/// An HTML element that leaves foreign content when it starts inside it.
const BREAKOUT: u32 = 1 << 15;
/// Formatting elements: their end tag closes them even across special
/// elements (the adoption agency, simplified).
const FORMATTING: u32 = 1 << 16;
/// Allowed in `<head>`: anything else starts the body.
const HEAD_CONTENT: u32 = 1 << 17;
/// `<address>`, `<div>`, `<p>`: special elements that a new `<li>`,
/// `<dd>` or `<dt>` looks through for an open item to close.
const ITEM_TRANSPARENT: u32 = 1 << 18;

/// What the tree builder and the text rules need to know of a tag name
/// (lower case).
fn props(name: &str) -> u32 {
    match name {
        "a" => FORMATTING,
        "b" | "big" | "em" | "i" | "s" | "small" | "strike" | "strong" | "tt" | "u" => {
            FORMATTING | BREAKOUT
        }
        "code" => FORMATTING | BREAKOUT,
        "font" | "nobr" => FORMATTING,
        "span" | "sub" | "sup" | "var" | "ruby" => BREAKOUT,
        "area" | "col" | "embed" | "img" | "input" | "keygen" | "source" | "track" | "wbr"
        | "param" | "frame" | "image" => VOID | SPECIAL,
        "base" | "basefont" | "bgsound" | "link" | "meta" => VOID | SPECIAL | HEAD_CONTENT,
        "br" => VOID | SPECIAL | BLOCK | BREAKOUT,
        "hr" => VOID | SPECIAL | BLOCK | CLOSES_P | BREAKOUT,
        "script" | "style" | "noscript" | "template" => HIDDEN | SPECIAL | HEAD_CONTENT,
        "iframe" | "select" | "textarea" => HIDDEN | SPECIAL,
        "object" => HIDDEN | SPECIAL | SCOPE,
        "canvas" => HIDDEN,
        "svg" | "math" => HIDDEN | FOREIGN,
        "title" => BLOCK | SPECIAL | HEAD_CONTENT,
        "head" => SPECIAL | HEAD_CONTENT,
        "html" => SPECIAL | SCOPE | HEAD_CONTENT,
        "body" => BLOCK | SPECIAL | BREAKOUT,
        "p" | "div" => BLOCK | SPECIAL | CLOSES_P | BREAKOUT | ITEM_TRANSPARENT,
        "blockquote" | "dl" | "ol" | "ul" | "center" | "menu" | "dir" => {
            BLOCK | SPECIAL | CLOSES_P | BREAKOUT
        }
        "li" => BLOCK | SPECIAL | LIST_ITEM | BREAKOUT,
        "dt" | "dd" => BLOCK | SPECIAL | LIST_ITEM | BREAKOUT,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => BLOCK | SPECIAL | CLOSES_P | HEADING | BREAKOUT,
        "pre" | "listing" => BLOCK | SPECIAL | CLOSES_P | CODE | BREAKOUT,
        "article" | "section" => BLOCK | SPECIAL | CLOSES_P | CONTENT,
        "main" => BLOCK | SPECIAL | CLOSES_P | CONTENT | MAIN,
        "nav" | "aside" => BLOCK | SPECIAL | CLOSES_P | BOILER,
        "header" | "footer" => BLOCK | SPECIAL | CLOSES_P | HEADER_FOOTER,
        "address" => BLOCK | SPECIAL | CLOSES_P | ITEM_TRANSPARENT,
        "figure" | "figcaption" | "details" | "summary" | "fieldset" | "hgroup" | "search"
        | "dialog" => BLOCK | SPECIAL | CLOSES_P,
        "form" => BLOCK | SPECIAL | CLOSES_P,
        "table" => BLOCK | SPECIAL | SCOPE | CLOSES_P | BREAKOUT | TABLE_CELL,
        "tr" => BLOCK | SPECIAL | TABLE_CELL,
        "td" | "th" => SPECIAL | SCOPE | TABLE_CELL,
        "caption" => SPECIAL | SCOPE,
        "thead" | "tbody" | "tfoot" | "colgroup" => SPECIAL,
        "applet" | "marquee" => SPECIAL | SCOPE,
        "xmp" => SPECIAL | CLOSES_P,
        "plaintext" => SPECIAL | CLOSES_P | CODE,
        "button" | "noembed" | "noframes" | "frameset" => SPECIAL,
        _ => 0,
    }
}

/// How the content of an HTML element is tokenized.
fn raw_mode(name: &str) -> Option<Raw> {
    match name {
        "title" | "textarea" => Some(Raw::Rcdata),
        // `<noscript>` is read as markup, as a browser without scripting
        // does (a crawler runs no scripts): its links, such as mdBook's
        // `<noscript><iframe src="toc.html">`, are the ones it sees.
        "style" | "xmp" | "iframe" | "noembed" | "noframes" => Some(Raw::Rawtext),
        "script" => Some(Raw::Script),
        "plaintext" => Some(Raw::Plaintext),
        _ => None,
    }
}

/// Landmark roles that are not the page's content.
fn is_boiler_role(role: &str) -> bool {
    [
        "navigation",
        "banner",
        "contentinfo",
        "complementary",
        "search",
    ]
    .iter()
    .any(|r| role.eq_ignore_ascii_case(r))
}

/// A tag name in lower case, on the stack when short (every HTML name is).
struct Lower {
    buf: [u8; 16],
    len: usize,
}

impl Lower {
    fn new(name: &str) -> Self {
        let mut buf = [0u8; 16];
        let len = name.len();
        if len <= 16 {
            for (d, s) in buf.iter_mut().zip(name.bytes()) {
                *d = s.to_ascii_lowercase();
            }
        }
        Self { buf, len }
    }

    /// The lower-case name, or "" for a name too long to be an HTML one.
    fn as_str(&self) -> &str {
        if self.len > 16 {
            return "";
        }
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// FNV-1a of a name, ASCII case folded: the key of an open element.
const fn name_hash(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i].to_ascii_lowercase() as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

// The names the tree-builder rules look for, hashed once.
const H_A: u64 = name_hash("a");
const H_P: u64 = name_hash("p");
const H_LI: u64 = name_hash("li");
const H_DD: u64 = name_hash("dd");
const H_DT: u64 = name_hash("dt");
const H_TD: u64 = name_hash("td");
const H_TH: u64 = name_hash("th");
const H_TR: u64 = name_hash("tr");

/// An open element: its name's hash, its tag properties, and what it
/// changed when it opened (undone when it closes).
#[derive(Clone, Copy)]
struct Open {
    hash: u64,
    props: u32,
    effects: u32,
    /// What it is to the Markdown, if it opened there.
    md: markdown::Kind,
}

// Effects of an open element.
const E_HIDDEN: u32 = 1;
const E_BOILER: u32 = 1 << 1;
const E_MAIN: u32 = 1 << 2;
const E_CONTENT: u32 = 1 << 3;
/// In the SVG or MathML namespace.
const E_FOREIGN_NS: u32 = 1 << 4;
/// A foreign element whose content is HTML again (`<foreignObject>`,
/// `<desc>`, `<title>`, MathML text elements).
const E_INTEGRATION: u32 = 1 << 5;
const E_ANCHOR: u32 = 1 << 6;
const E_HEADING: u32 = 1 << 7;
const E_CODE: u32 = 1 << 8;
const E_LIST: u32 = 1 << 9;
const E_TABLE: u32 = 1 << 10;
/// Starts and ends a line of text.
const E_BLOCK: u32 = 1 << 11;

/// Tag properties an open element carries as effects unchanged.
const CARRIED: [(u32, u32); 7] = [
    (CONTENT, E_CONTENT),
    (FOREIGN, E_FOREIGN_NS),
    (BLOCK, E_BLOCK),
    (HEADING, E_HEADING),
    (CODE, E_CODE),
    (LIST_ITEM, E_LIST),
    (TABLE_CELL, E_TABLE),
];

/// The kind of a line of text, by the innermost structure around it: a
/// heading, code, a table, a list item, or ordinary prose. Stored one
/// byte a line beside the text (see [`ParsedPage::text_kinds`]).
pub mod kind {
    pub const HEADING: u8 = b'h';
    pub const CODE: u8 = b'c';
    pub const TABLE: u8 = b't';
    pub const LIST: u8 = b'l';
    pub const PROSE: u8 = b'p';
}

struct State<'a> {
    url: &'a Url,
    base: Url,
    limits: ParseLimits,
    page: ParsedPage,
    stack: Vec<Open>,
    /// Open elements per hash bucket: an end tag whose bucket is empty is
    /// ignored without a look at the stack.
    buckets: [u32; 256],
    /// Elements opened past [`MAX_DEPTH`].
    overflow: usize,
    hidden: usize,
    boiler: usize,
    in_main: usize,
    content: usize,
    // Open headings, code blocks, list items and table parts: the kind of
    // the line being written. (Table parts open only inside a `<table>`,
    // so `table > 0` also means a table is open.)
    heading: usize,
    code: usize,
    list: usize,
    table: usize,
    /// Before the body: a `<title>` here is the head's, not text.
    in_head: bool,
    text: TextBuf,
    main_text: TextBuf,
    md: Markdown,
    /// The Markdown is written ([`ParseLimits::markdown`]).
    md_on: bool,
    anchor: Option<(Url, bool, TextBuf)>,
    seen: FpSet,
    /// A URL was resolved before any `<base href>` was seen.
    resolved_before_base: bool,
    /// A `<base href>` came after a URL was resolved against the page's
    /// own URL: the page is read again with the base known from the start.
    links_before_base: bool,
}

/// Extracts everything the crawl keeps from a decoded HTML document.
pub fn extract(html: &str, url: &Url, limits: ParseLimits) -> ParsedPage {
    let first = run(html, url, url.clone(), limits);
    if !first.links_before_base {
        return first.finish();
    }
    // `<base href>` applies to every link in the document, wherever it
    // is; the rare page with one after its first link is read twice.
    let base = first.base.clone();
    run(html, url, base, limits).finish()
}

fn run<'a>(html: &str, url: &'a Url, base: Url, limits: ParseLimits) -> State<'a> {
    let mut st = State {
        url,
        base,
        limits,
        page: ParsedPage::default(),
        stack: Vec::new(),
        buckets: [0; 256],
        overflow: 0,
        hidden: 0,
        boiler: 0,
        in_main: 0,
        content: 0,
        heading: 0,
        code: 0,
        list: 0,
        table: 0,
        in_head: true,
        text: TextBuf::new(MAX_TEXT_BYTES),
        main_text: TextBuf::new(MAX_TEXT_BYTES),
        md: Markdown::new(MAX_TEXT_BYTES),
        md_on: limits.markdown,
        anchor: None,
        seen: FpSet::default(),
        resolved_before_base: false,
        links_before_base: false,
    };
    let mut tok = Tokenizer::new(html);
    // The raw element being read: the document's title, or one whose
    // content is shown as text.
    let mut raw_title = false;
    let mut raw_shown = false;
    while let Some(t) = tok.next() {
        match t {
            Token::Start { name, self_closing } => {
                let lower = Lower::new(name);
                let lname = lower.as_str();
                raw_title = false;
                raw_shown = false;
                if st.start(lname, name, self_closing, &tok.attrs)
                    && let Some(mode) = raw_mode(lname)
                {
                    raw_title = lname == "title";
                    raw_shown = matches!(lname, "xmp" | "noembed" | "noframes" | "plaintext");
                    tok.set_raw(name, mode);
                }
            }
            Token::End { name } => {
                raw_title = false;
                raw_shown = false;
                let lower = Lower::new(name);
                st.end(lower.as_str(), name);
            }
            Token::Text(s) => st.text(s, true),
            Token::Raw(s) => {
                if raw_title {
                    if st.page.title.is_none() {
                        st.page.title = super::non_empty(collapse(&entities::decode(s, false)));
                    }
                    if !st.in_head {
                        st.text(s, true);
                    }
                } else if raw_shown {
                    // `<xmp>`, `<noembed>`, `<noframes>`: shown as text.
                    st.text(s, false);
                }
                raw_title = false;
                raw_shown = false;
            }
        }
    }
    while !st.stack.is_empty() {
        st.pop();
    }
    st.finish_anchor();
    st
}

impl State<'_> {
    /// Whether the current node is foreign (and not an integration point):
    /// then tags are SVG/MathML, not HTML.
    fn in_foreign(&self) -> bool {
        self.stack
            .last()
            .is_some_and(|o| o.effects & E_FOREIGN_NS != 0 && o.effects & E_INTEGRATION == 0)
    }

    /// Handles a start tag; returns whether it opened an HTML element
    /// (whose content may then be raw).
    fn start(
        &mut self,
        lname: &str,
        name: &str,
        self_closing: bool,
        attrs: &[(&str, &str)],
    ) -> bool {
        let mut props = props(lname);
        let foreign = self.in_foreign();
        if foreign && props & BREAKOUT != 0 {
            // An HTML element inside SVG or MathML ends it.
            while self.in_foreign() {
                self.pop();
            }
        } else if foreign {
            let integration = matches!(
                lname,
                "foreignobject" | "desc" | "title" | "mi" | "mo" | "mn" | "ms" | "mtext"
            );
            if lname == "a"
                && let Some(target) = self.href(attrs)
            {
                // An SVG link: followed, its text is not the page's.
                let nofollow = is_nofollow(attrs);
                self.push_link(target, String::new(), nofollow, LinkKind::Anchor);
            }
            if !self_closing {
                let effects = E_FOREIGN_NS | if integration { E_INTEGRATION } else { 0 };
                self.push(name, 0, effects);
            }
            return false;
        }
        if self.in_head && props & HEAD_CONTENT == 0 {
            self.in_head = false;
        }
        match lname {
            "html" => {
                if self.page.language.is_none() {
                    self.page.language = attr(attrs, "lang")
                        .map(|l| entities::decode(l, true).trim().to_string())
                        .and_then(super::non_empty);
                }
                return false;
            }
            "head" => return false,
            "body" => {
                self.in_head = false;
                self.newline();
                return false;
            }
            "base" => {
                if self.page.base.is_none()
                    && let Some(href) = attr(attrs, "href")
                    && let Ok(b) = self.url.join(entities::decode(href, true).trim())
                {
                    self.page.base = Some(b.to_string());
                    if self.resolved_before_base && b != self.base {
                        self.links_before_base = true;
                    }
                    self.base = b;
                }
            }
            "meta" => self.meta(attrs),
            "link" if self.page.canonical.is_none() => {
                let canonical = attr(attrs, "rel").is_some_and(|r| {
                    r.split_ascii_whitespace()
                        .any(|t| t.eq_ignore_ascii_case("canonical"))
                });
                if canonical && let Some(c) = attr(attrs, "href").and_then(|h| self.resolve(h)) {
                    self.page.canonical = Some(c.to_string());
                }
            }
            "area" => {
                if let Some(target) = self.href(attrs) {
                    let nofollow = is_nofollow(attrs);
                    let alt = attr(attrs, "alt")
                        .map(|a| collapse(&entities::decode(a, true)))
                        .unwrap_or_default();
                    self.push_link(target, alt, nofollow, LinkKind::Area);
                }
            }
            // A frame's document is part of the page, as wget reads it.
            "iframe" | "frame" => {
                if let Some(target) = attr(attrs, "src").and_then(|v| self.resolve(v)) {
                    let kind = if lname == "frame" {
                        LinkKind::Frame
                    } else {
                        LinkKind::Iframe
                    };
                    let title = attr(attrs, "title")
                        .map(|a| collapse(&entities::decode(a, true)))
                        .unwrap_or_default();
                    self.push_link(target, title, false, kind);
                }
            }
            _ => {}
        }
        // Elements the start of this one closes.
        if props & CLOSES_P != 0 {
            self.close_in_scope(&[H_P]);
        }
        match lname {
            "li" => self.close_item(&[H_LI]),
            "dd" | "dt" => self.close_item(&[H_DD, H_DT]),
            // Table parts outside a table are ignored, as in a browser.
            "td" | "th" | "tr" | "caption" | "thead" | "tbody" | "tfoot" | "colgroup"
                // (Only a `<table>` opens table structure outside one.)
                if self.table == 0 =>
            {
                return false;
            }
            "td" | "th" => {
                self.close_in_scope(&[H_TD, H_TH]);
                // Cells are words apart, not run together.
                self.text.space();
                self.main_text.space();
            }
            "tr" => {
                self.close_in_scope(&[H_TD, H_TH]);
                self.close_in_scope(&[H_TR]);
            }
            "option" | "optgroup" => {
                if self.top_is("option") {
                    self.pop();
                }
                if lname == "optgroup" && self.top_is("optgroup") {
                    self.pop();
                }
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
                if self.stack.last().is_some_and(|o| o.props & HEADING != 0) =>
            {
                self.pop();
            }
            "a" => {
                // A second `<a>` closes the first, with or without an href
                // (the adoption agency).
                if let Some(i) = (self.buckets[(H_A & 255) as usize] > 0)
                    .then(|| self.stack.iter().rposition(|o| o.hash == H_A))
                    .flatten()
                {
                    self.remove(i);
                }
                // One opened past the depth limit.
                self.finish_anchor();
            }
            _ => {}
        }
        if lname == "svg" || lname == "math" {
            props |= FOREIGN;
        }
        if props & VOID != 0 || (self_closing && props & FOREIGN != 0) {
            if props & BLOCK != 0 {
                self.newline();
            }
            if self.md_active() {
                match lname {
                    "br" => self.md.line_break(),
                    "hr" => self.md.rule(),
                    "img" | "image" => {
                        let alt = attr(attrs, "alt").map(|a| entities::decode(a, true));
                        if let Some(alt) = alt.filter(|a| !is_blank(a)) {
                            let src = attr(attrs, "src").and_then(|s| self.resolve(s));
                            self.md.image(&alt, src.as_ref().map(Url::as_str));
                        }
                    }
                    _ => {}
                }
            }
            return false;
        }
        // What this element changes while it is open.
        let mut effects = 0;
        if props & HIDDEN != 0 {
            effects |= E_HIDDEN;
        } else {
            let role = attr(attrs, "role");
            let boiler = props & BOILER != 0
                || (props & HEADER_FOOTER != 0 && self.content == 0)
                || role.is_some_and(is_boiler_role);
            if boiler {
                effects |= E_BOILER;
            }
            if props & MAIN != 0 || role.is_some_and(|r| r.eq_ignore_ascii_case("main")) {
                effects |= E_MAIN;
            }
        }
        for (prop, effect) in CARRIED {
            if props & prop != 0 {
                effects |= effect;
            }
        }
        if lname == "a"
            && let Some(target) = self.href(attrs)
        {
            effects |= E_ANCHOR;
            self.anchor = Some((
                target,
                is_nofollow(attrs),
                TextBuf::new(MAX_ANCHOR_CHARS * 4),
            ));
        }
        let depth = self.stack.len();
        self.push(name, props, effects);
        if self.stack.len() > depth && self.md_active() {
            self.md_open(lname, attrs, effects);
        }
        true
    }

    /// Whether what is read now is the page's content for the Markdown:
    /// visible, not boilerplate, and inside a `<main>` once one has text
    /// (the rule of the text, see [`State::text`]).
    fn md_active(&self) -> bool {
        self.md_on
            && self.hidden == 0
            && self.boiler == 0
            && (!self.md.main_has_text || self.in_main > 0)
    }

    /// Opens the element just pushed in the Markdown.
    fn md_open(&mut self, lname: &str, attrs: &[(&str, &str)], effects: u32) {
        let mut kind = markdown::kind_of(lname);
        let mut class = None;
        let mut link = None;
        let mut start = None;
        match kind {
            markdown::NONE => return,
            markdown::BLOCK if lname == "div" => {
                class = attr(attrs, "class").filter(|c| c.contains("highlight-"));
                if class.is_some() {
                    kind = markdown::LANG_BLOCK;
                }
            }
            markdown::PRE | markdown::CODE => class = attr(attrs, "class"),
            markdown::OL => start = attr(attrs, "start"),
            markdown::LINK => {
                if effects & E_ANCHOR == 0 {
                    return;
                }
                let href = attr(attrs, "href").unwrap_or("");
                if href.starts_with('#') {
                    // A heading's own permalink: Sphinx's `¶`
                    // (`headerlink`) and rustdoc's `§` (`anchor`,
                    // `doc-anchor`) are left out; mdBook's heading text (`header`) is kept,
                    // without the link.
                    for c in attr(attrs, "class").unwrap_or("").split_ascii_whitespace() {
                        match c {
                            "headerlink" | "anchor" | "doc-anchor" => kind = markdown::SKIP,
                            "header" => return,
                            _ => {}
                        }
                    }
                }
                // The link as resolved for the crawl, with the fragment
                // the crawl leaves out.
                let Some((target, _, _)) = self.anchor.as_ref().filter(|_| kind == markdown::LINK)
                else {
                    return self.md_open_kind(markdown::SKIP, None, None, None);
                };
                let mut url = target.to_string();
                if let Some((_, fragment)) = attr(attrs, "href").and_then(|h| h.split_once('#'))
                    && !fragment.is_empty()
                {
                    url.push('#');
                    url.push_str(&entities::decode(fragment, true).replace(' ', "%20"));
                }
                link = Some(url);
            }
            _ => {}
        }
        self.md_open_kind(kind, class, link, start);
    }

    fn md_open_kind(
        &mut self,
        kind: markdown::Kind,
        class: Option<&str>,
        link: Option<String>,
        start: Option<&str>,
    ) {
        if self.md.open(kind, class, link, start)
            && let Some(o) = self.stack.last_mut()
        {
            o.md = kind;
        }
    }

    fn meta(&mut self, attrs: &[(&str, &str)]) {
        let content = attr(attrs, "content").map(|c| entities::decode(c, true));
        let content = content.as_deref().unwrap_or("");
        if let Some(n) = attr(attrs, "name") {
            if n.eq_ignore_ascii_case("description") && self.page.description.is_none() {
                self.page.description = super::non_empty(collapse(content));
            } else if n.eq_ignore_ascii_case("robots") {
                let c = content.trim().to_ascii_lowercase();
                self.page.meta_robots = Some(match self.page.meta_robots.take() {
                    Some(prev) => format!("{prev}, {c}"),
                    None => c,
                });
            }
        } else if let Some(h) = attr(attrs, "http-equiv") {
            if h.eq_ignore_ascii_case("content-language") && self.page.language.is_none() {
                self.page.language = super::non_empty(content.trim().to_string());
            } else if h.eq_ignore_ascii_case("refresh") && self.page.refresh.is_none() {
                self.resolved_before_base |= self.page.base.is_none();
                self.page.refresh = super::Refresh::parse(content, &self.base)
                    .or_else(|| super::Refresh::reload(content, self.url));
                // Where the page sends its reader: at least a link.
                if let Some(r) = &self.page.refresh
                    && r.url != *self.url
                {
                    let url = r.url.clone();
                    self.push_link(url, String::new(), false, LinkKind::Refresh);
                }
            }
        }
    }

    fn href(&mut self, attrs: &[(&str, &str)]) -> Option<Url> {
        let href = attr(attrs, "href")?;
        self.resolve(href)
    }

    /// Resolves an attribute value against the base URL known so far.
    fn resolve(&mut self, value: &str) -> Option<Url> {
        self.resolved_before_base |= self.page.base.is_none();
        canon::resolve(&self.base, &entities::decode(value, true))
    }

    fn end(&mut self, lname: &str, name: &str) {
        if self.in_foreign() {
            // Foreign end tags close the nearest element of that name
            // still in foreign content.
            let h = name_hash(name);
            if let Some(i) = self
                .stack
                .iter()
                .rposition(|o| o.hash == h || o.effects & E_FOREIGN_NS == 0)
                && self.stack[i].hash == h
            {
                while self.stack.len() > i {
                    self.pop();
                }
            }
            return;
        }
        match lname {
            "br" => {
                if self.md_active() {
                    self.md.line_break();
                }
                return self.newline();
            }
            "p" if self.buckets[(H_P & 255) as usize] == 0 => {
                if self.md_active() {
                    self.md.paragraph_break();
                }
                return self.newline();
            }
            "head" => {
                self.in_head = false;
                return;
            }
            "body" | "html" => return,
            _ => {}
        }
        if self.overflow > 0 {
            // An element tracked past the depth limit closes by its name;
            // any other end tag closes one of the untracked.
            let h = name_hash(name);
            if self.stack.len() > MAX_DEPTH && self.stack.last().is_some_and(|o| o.hash == h) {
                self.pop();
            } else {
                self.overflow -= 1;
            }
            return;
        }
        let props = props(lname);
        if props & HEADING != 0 {
            // Any heading's end tag closes the open heading, whatever its
            // level (`<h1>…</h2>`).
            if let Some(i) = self
                .stack
                .iter()
                .rposition(|o| o.props & (HEADING | SCOPE) != 0)
                && self.stack[i].props & HEADING != 0
            {
                while self.stack.len() > i {
                    self.pop();
                }
            }
            return;
        }
        let h = name_hash(name);
        if self.buckets[(h & 255) as usize] == 0 {
            return;
        }
        let mut found = None;
        for (i, o) in self.stack.iter().enumerate().rev() {
            if o.hash == h {
                found = Some(i);
                break;
            }
            if props & SPECIAL != 0 {
                // A special element's end tag closes it within scope.
                if o.props & SCOPE != 0 {
                    break;
                }
            } else if o.props & SPECIAL != 0 && props & FORMATTING == 0 {
                // Other end tags do not close across special elements.
                break;
            }
        }
        let Some(i) = found else { return };
        if props & FORMATTING != 0 && self.stack[i + 1..].iter().any(|o| o.props & SPECIAL != 0) {
            // A formatting element closed across blocks: only it ends,
            // the blocks stay open.
            self.remove(i);
        } else {
            while self.stack.len() > i {
                self.pop();
            }
        }
    }

    fn top_is(&self, lname: &str) -> bool {
        self.stack
            .last()
            .is_some_and(|o| o.hash == name_hash(lname))
    }

    /// Closes the nearest open element with one of these hashes if it is
    /// in scope (no scope boundary above it).
    fn close_in_scope(&mut self, hashes: &[u64]) {
        self.close_nearest(hashes, |o| o.props & SCOPE != 0);
    }

    /// A new list item closes the open one it belongs with (HTML
    /// §13.2.6.4.7, "A start tag whose tag name is li"): the nearest
    /// `hashes` element, looking through `<address>`, `<div>`, `<p>` and
    /// non-special elements only.
    fn close_item(&mut self, hashes: &[u64]) {
        self.close_nearest(hashes, |o| {
            o.props & SPECIAL != 0 && o.props & ITEM_TRANSPARENT == 0
        });
    }

    /// Closes the nearest open element with one of `hashes`, looking at
    /// most [`SCOPE_SCAN`] elements down and not past a `boundary` or a
    /// foreign element.
    fn close_nearest(&mut self, hashes: &[u64], boundary: impl Fn(&Open) -> bool) {
        if hashes.iter().all(|h| self.buckets[(h & 255) as usize] == 0) {
            return;
        }
        let from = self.stack.len().saturating_sub(SCOPE_SCAN);
        let found = self.stack[from..]
            .iter()
            .rposition(|o| hashes.contains(&o.hash) || boundary(o) || o.effects & E_FOREIGN_NS != 0)
            .map(|i| from + i);
        if let Some(i) = found
            && hashes.contains(&self.stack[i].hash)
        {
            while self.stack.len() > i {
                self.pop();
            }
        }
    }

    fn push(&mut self, name: &str, props: u32, effects: u32) {
        // Past the depth limit only elements that hide text are still
        // tracked (to twice the limit), so that a script, a style or a
        // navigation bar deep in a hostile page stays out of its text.
        if self.stack.len() >= MAX_DEPTH
            && (effects & (E_HIDDEN | E_BOILER) == 0 || self.stack.len() >= 2 * MAX_DEPTH)
        {
            self.overflow += 1;
            if effects & E_BLOCK != 0 {
                self.newline();
            }
            return;
        }
        self.apply(effects, true);
        let hash = name_hash(name);
        self.buckets[(hash & 255) as usize] += 1;
        self.stack.push(Open {
            hash,
            props,
            effects,
            md: markdown::NONE,
        });
    }

    fn pop(&mut self) {
        if let Some(o) = self.stack.pop() {
            self.closed(o);
        }
    }

    /// Closes the element at `i` alone, leaving those above it open.
    fn remove(&mut self, i: usize) {
        let o = self.stack.remove(i);
        self.closed(o);
    }

    fn closed(&mut self, o: Open) {
        self.buckets[(o.hash & 255) as usize] -= 1;
        self.apply(o.effects, false);
        if o.md != markdown::NONE {
            self.md.close(o.md);
        }
        if o.effects & E_ANCHOR != 0 {
            self.finish_anchor();
        }
    }

    /// Records the link being read, with its anchor text so far.
    fn finish_anchor(&mut self) {
        if let Some((target, nofollow, buf)) = self.anchor.take() {
            let mut a = buf.finish();
            if a.chars().count() > MAX_ANCHOR_CHARS {
                a = a.chars().take(MAX_ANCHOR_CHARS).collect();
            }
            self.push_link(target, a, nofollow, LinkKind::Anchor);
        }
    }

    /// Opens (`on`) or closes an element with these effects.
    fn apply(&mut self, effects: u32, on: bool) {
        fn count(c: &mut usize, on: bool) {
            if on {
                *c += 1;
            } else {
                *c = c.saturating_sub(1);
            }
        }
        let visible_before = self.hidden == 0 && self.boiler == 0;
        if effects & E_HIDDEN != 0 {
            count(&mut self.hidden, on);
        } else if effects & E_BOILER != 0 {
            count(&mut self.boiler, on);
        }
        if effects & E_MAIN != 0 {
            count(&mut self.in_main, on);
            if on == (self.in_main == 1) {
                // The outermost main opens or closes.
                self.md.main(on);
            }
        }
        if effects & E_CONTENT != 0 {
            count(&mut self.content, on);
        }
        if effects & E_HEADING != 0 {
            count(&mut self.heading, on);
        }
        if effects & E_CODE != 0 {
            count(&mut self.code, on);
        }
        if effects & E_LIST != 0 {
            count(&mut self.list, on);
        }
        if effects & E_TABLE != 0 {
            count(&mut self.table, on);
        }
        // A block starts and ends a line, unless it or what is around it
        // is not text.
        let visible = self.hidden == 0 && self.boiler == 0;
        if effects & E_BLOCK != 0
            && effects & (E_HIDDEN | E_BOILER) == 0
            && visible
            && visible_before
        {
            self.newline();
        }
    }

    fn newline(&mut self) {
        if self.hidden == 0 && self.boiler == 0 {
            if self.main_text.out.is_empty() {
                self.text.newline();
            }
            self.main_text.newline();
        }
    }

    fn line_kind(&self) -> u8 {
        if self.code > 0 {
            kind::CODE
        } else if self.heading > 0 {
            kind::HEADING
        } else if self.table > 0 {
            kind::TABLE
        } else if self.list > 0 {
            kind::LIST
        } else {
            kind::PROSE
        }
    }

    /// Text content; `refs`: character references are resolved.
    fn text(&mut self, s: &str, refs: bool) {
        if self.hidden > 0 {
            return;
        }
        if self.in_head {
            if is_blank(s) {
                return;
            }
            self.in_head = false;
        }
        let decoded = if refs {
            entities::decode(s, false)
        } else {
            s.into()
        };
        if self.boiler == 0 {
            let k = self.line_kind();
            // Once `<main>` has text, that is the page's text: the rest is
            // not collected.
            if self.main_text.out.is_empty() {
                self.text.push_kind(&decoded, k);
            }
            if self.in_main > 0 {
                self.main_text.push_kind(&decoded, k);
            }
            if self.md_on && (!self.md.main_has_text || self.in_main > 0) {
                self.md.text(&decoded);
            }
        }
        if let Some((_, _, buf)) = self.anchor.as_mut() {
            buf.push(&decoded);
        }
    }

    fn push_link(&mut self, url: Url, anchor: String, nofollow: bool, kind: LinkKind) {
        if !self.seen.insert(canon::fingerprint(&url)) {
            return;
        }
        if self.page.links.len() >= self.limits.max_links {
            self.page.links_dropped += 1;
            return;
        }
        self.page.links.push(Link {
            url,
            anchor,
            nofollow,
            kind,
        });
    }

    fn finish(self) -> ParsedPage {
        let mut page = self.page;
        let text = if self.main_text.out.is_empty() {
            self.text
        } else {
            self.main_text
        };
        page.cut |= text.full || self.md.full;
        page.markdown = self.md.finish();
        let (t, kinds) = text.finish_with_kinds();
        page.text = t;
        page.text_kinds = kinds;
        page
    }
}

fn is_nofollow(attrs: &[(&str, &str)]) -> bool {
    attr(attrs, "rel").is_some_and(|r| {
        r.split_ascii_whitespace()
            .any(|t| t.eq_ignore_ascii_case("nofollow"))
    })
}
