//! HTML parsing: bytes in, owned page facts out.
//!
//! In: the response body, the final URL and the `Content-Type` header.
//! Out: a [`ParsedPage`] with title, description, canonical, language,
//! `<base href>`, meta robots, canonical outgoing links (with anchor text and
//! `rel=nofollow`) and the readable text.
//!
//! `scraper::Html` is not `Send`, so [`parse`] is a plain blocking function
//! that returns owned data; the crawler runs it on the blocking pool. One
//! walk over the tree collects everything: no CSS selector matching on the
//! hot path.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::{Condvar, Mutex};

use ego_tree::NodeId;
use ego_tree::iter::Edge;
use encoding_rs::Encoding;
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, QualName};
use scraper::{ElementRef, Html, HtmlTreeSink, Node};
use url::Url;

use crate::canon;

/// A link found on a page, already resolved and canonicalized.
#[derive(Debug, Clone)]
pub struct Link {
    pub url: Url,
    pub anchor: String,
    pub nofollow: bool,
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
    /// Outgoing links, one per canonical target, in document order.
    pub links: Vec<Link>,
    /// Links dropped because the page had more than the per-page cap.
    pub links_dropped: usize,
    /// The document was parsed only in part: it nested deeper than
    /// [`MAX_NESTING`], had more than [`MAX_ELEMENTS`] elements or more
    /// than [`MAX_PARSE_BYTES`] of HTML, or its text was cut at
    /// [`MAX_TEXT_BYTES`].
    pub cut: bool,
    /// Readable text: no scripts, styles or markup; one line per block.
    pub text: String,
    /// The encoding the body was decoded with.
    pub encoding: &'static str,
}

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    pub max_links: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self { max_links: 10_000 }
    }
}

/// Whether a response with this `Content-Type` may be parsed as HTML
/// (by [`is_html`], once its first bytes are in).
pub fn may_be_html(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| {
        let mime = ct.split(';').next().unwrap_or("").trim();
        mime.eq_ignore_ascii_case("text/html") || mime.eq_ignore_ascii_case("application/xhtml+xml")
    })
}

/// Whether a response should be parsed as HTML. Without a `Content-Type`,
/// the body is sniffed for a leading `<!doctype html` or `<html`. A body
/// that [looks binary](looks_binary) is not HTML whatever its header says.
pub fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    if looks_binary(body) || !may_be_html(content_type) {
        return false;
    }
    match content_type {
        Some(_) => true,
        None => {
            let start = body
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(body.len());
            let head = &body[start..body.len().min(start + 14)];
            head.len() >= 5
                && (head.to_ascii_lowercase().starts_with(b"<!doctype html")
                    || head[..5].eq_ignore_ascii_case(b"<html"))
        }
    }
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
    head.contains(&0)
        || head
            .iter()
            .filter(|&&b| matches!(b, 0x01..=0x08 | 0x0b | 0x0e..=0x1a | 0x1c..=0x1f))
            .count()
            > SNIFF_BYTES / 50
}

/// Decodes an HTML body: BOM first, then the `Content-Type` charset, then a
/// `<meta charset>` / `http-equiv` in the first 1024 bytes, then UTF-8 if the
/// bytes are valid UTF-8, else windows-1252 (what browsers assume).
pub fn decode<'a>(body: &'a [u8], content_type: Option<&str>) -> (Cow<'a, str>, &'static Encoding) {
    let encoding = Encoding::for_bom(body)
        .map(|(e, _)| e)
        .or_else(|| {
            content_type
                .and_then(charset_param)
                .and_then(Encoding::for_label)
        })
        .or_else(|| meta_charset(body))
        .map(|e| {
            // A page cannot really be UTF-16 if we found its label in ASCII;
            // the HTML standard says to read such a label as UTF-8.
            if e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE {
                if Encoding::for_bom(body).is_some() {
                    e
                } else {
                    encoding_rs::UTF_8
                }
            } else {
                e
            }
        })
        .unwrap_or_else(|| match std::str::from_utf8(body) {
            Ok(_) => encoding_rs::UTF_8,
            // Valid UTF-8 with non-ASCII characters, up to a character cut
            // at the end: a body read in part.
            Err(e) if e.error_len().is_none() && !body[..e.valid_up_to()].is_ascii() => {
                encoding_rs::UTF_8
            }
            Err(_) => encoding_rs::WINDOWS_1252,
        });
    let (text, used, _had_errors) = encoding.decode(body);
    (text, used)
}

fn charset_param(content_type: &str) -> Option<&[u8]> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches(['"', '\'']).as_bytes())
    })
}

/// A small prescan in the spirit of the HTML standard's: finds `charset=`
/// inside the first `<meta` tags of the first 1024 bytes.
fn meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let head = &body[..body.len().min(1024)];
    let lower = head.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = find(&lower[from..], b"<meta") {
        let start = from + pos + 5;
        let end = find(&lower[start..], b">").map_or(lower.len(), |e| start + e);
        let tag = &lower[start..end];
        if let Some(c) = find(tag, b"charset") {
            let rest = &tag[c + 7..];
            let rest = rest.trim_ascii_start();
            if let Some(rest) = rest.strip_prefix(b"=") {
                let rest = rest.trim_ascii_start();
                let rest = rest
                    .strip_prefix(b"\"")
                    .or_else(|| rest.strip_prefix(b"'"))
                    .unwrap_or(rest);
                let len = rest
                    .iter()
                    .position(|b| {
                        matches!(b, b'"' | b'\'' | b';' | b'/' | b'>') || b.is_ascii_whitespace()
                    })
                    .unwrap_or(rest.len());
                if let Some(e) = Encoding::for_label(&rest[..len]) {
                    return Some(e);
                }
            }
        }
        from = end;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Elements whose content is never readable text.
fn is_hidden(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "noscript"
            | "template"
            | "svg"
            | "math"
            | "head"
            | "iframe"
            | "object"
            | "canvas"
            | "select"
            | "textarea"
    )
}

/// The page's main content: `<main>` or `role="main"`.
fn is_main(el: &scraper::node::Element) -> bool {
    el.name() == "main" || el.attr("role") == Some("main")
}

fn is_content(name: &str) -> bool {
    matches!(name, "article" | "main" | "section")
}

/// Navigation, banners, footers and sidebars: not the page's content. A
/// header or footer inside an article, a section or `<main>` is the
/// content's own (as in HTML's banner / contentinfo rules).
fn is_boilerplate(el: &scraper::node::Element, in_content: bool) -> bool {
    match el.name() {
        "nav" | "aside" => true,
        "header" | "footer" => !in_content,
        _ => matches!(
            el.attr("role"),
            Some("navigation" | "banner" | "contentinfo" | "complementary" | "search")
        ),
    }
}

/// Elements that start a new line of text.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "br"
            | "li"
            | "ul"
            | "ol"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "tr"
            | "table"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "nav"
            | "aside"
            | "main"
            | "blockquote"
            | "pre"
            | "hr"
            | "dl"
            | "dt"
            | "dd"
            | "figure"
            | "figcaption"
            | "form"
            | "address"
            | "details"
            | "summary"
            | "body"
            | "title"
    )
}

/// Whitespace-collapsing text accumulator, holding at most `cap` bytes.
struct TextBuf {
    out: String,
    pending_space: bool,
    cap: usize,
    /// Text was dropped at the cap.
    full: bool,
}

impl TextBuf {
    fn new(cap: usize) -> Self {
        Self {
            out: String::new(),
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
        if self.full {
            return;
        }
        let bytes = t.as_bytes();
        let is_ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r');
        let mut i = 0;
        while i < bytes.len() {
            if is_ws(bytes[i]) {
                self.pending_space = true;
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && !is_ws(bytes[i]) {
                i += 1;
            }
            let space = self.pending_space && !self.out.is_empty() && !self.out.ends_with('\n');
            let mut word = &t[start..i];
            let room = self.cap.saturating_sub(self.out.len() + usize::from(space));
            if word.len() > room {
                let mut end = room;
                while !word.is_char_boundary(end) {
                    end -= 1;
                }
                word = &word[..end];
                self.full = true;
            }
            if space && !word.is_empty() {
                self.out.push(' ');
            }
            self.out.push_str(word);
            self.pending_space = false;
            if self.full {
                return;
            }
        }
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

/// Parses an HTML body fetched from `url`.
pub fn parse(
    body: &[u8],
    url: &Url,
    content_type: Option<&str>,
    limits: ParseLimits,
) -> ParsedPage {
    let (text, encoding) = decode(body, content_type);
    let mut page = parse_str(&text, url, limits);
    page.encoding = encoding.name();
    page
}

/// Parsing stops after the chunk in which the tree nests deeper than this
/// (see `parse_bounded`): html5ever's tree building is quadratic in
/// nesting depth (a page of 100,000 nested `<div>`s would take minutes of
/// CPU), and no real page comes close.
pub const MAX_NESTING: usize = 1024;
/// Elements parsed at most: a tree costs ~400 bytes an element, so this
/// bounds one tree at ~12 MB. Nearly every page has fewer than 10,000
/// elements; a page of 100,000 links would otherwise hold ~50 MB.
pub const MAX_ELEMENTS: usize = 30_000;
/// Text kept at most, in bytes of UTF-8: a page's text is cut here (and
/// the page marked truncated). A long book is ~3 MB of text; the
/// summarizers read far less.
pub const MAX_TEXT_BYTES: usize = 1 << 20;
/// HTML parsed at most (the body itself may be longer, up to
/// `--max-body-size`, and is hashed whole).
pub const MAX_PARSE_BYTES: usize = 4 << 20;

/// HTML fed to the parser at a time: the limits are checked between
/// chunks, so a chunk's worth of tags (~5,000 at most) is the overshoot.
const CHUNK_BYTES: usize = 16 << 10;

/// How deep and how big the tree being built is, as the parser builds it.
#[derive(Default)]
struct TreeStats {
    depth: RefCell<HashMap<NodeId, u32>>,
    deepest: Cell<u32>,
    elements: Cell<usize>,
}

/// scraper's tree sink, measuring the tree as html5ever builds it: the
/// depth of each appended element (from its parent's) and the number of
/// elements. [`parse_str`] stops feeding the parser when either passes
/// its limit. Measuring the real tree, not guessing from the bytes, holds
/// for every way HTML nests (foreign content, misnested tags, `<div/>`).
struct MeasuredSink {
    inner: HtmlTreeSink,
    stats: Rc<TreeStats>,
}

impl MeasuredSink {
    fn appended(&self, parent: &NodeId, child: &NodeOrText<NodeId>) {
        if let NodeOrText::AppendNode(id) = child {
            let mut depth = self.stats.depth.borrow_mut();
            let d = depth.get(parent).copied().unwrap_or(0) + 1;
            depth.insert(*id, d);
            if d > self.stats.deepest.get() {
                self.stats.deepest.set(d);
            }
        }
    }
}

impl TreeSink for MeasuredSink {
    type Handle = NodeId;
    type Output = Html;
    type ElemName<'a> = <HtmlTreeSink as TreeSink>::ElemName<'a>;

    fn finish(self) -> Html {
        self.inner.finish()
    }
    fn parse_error(&self, msg: Cow<'static, str>) {
        self.inner.parse_error(msg)
    }
    fn get_document(&self) -> NodeId {
        self.inner.get_document()
    }
    fn elem_name<'a>(&'a self, target: &'a NodeId) -> Self::ElemName<'a> {
        self.inner.elem_name(target)
    }
    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> NodeId {
        self.stats.elements.set(self.stats.elements.get() + 1);
        self.inner.create_element(name, attrs, flags)
    }
    fn create_comment(&self, text: StrTendril) -> NodeId {
        self.inner.create_comment(text)
    }
    fn create_pi(&self, target: StrTendril, data: StrTendril) -> NodeId {
        self.inner.create_pi(target, data)
    }
    fn append(&self, parent: &NodeId, child: NodeOrText<NodeId>) {
        self.appended(parent, &child);
        self.inner.append(parent, child)
    }
    fn append_based_on_parent_node(
        &self,
        element: &NodeId,
        prev_element: &NodeId,
        child: NodeOrText<NodeId>,
    ) {
        self.appended(prev_element, &child);
        self.inner
            .append_based_on_parent_node(element, prev_element, child)
    }
    fn append_doctype_to_document(
        &self,
        name: StrTendril,
        public_id: StrTendril,
        system_id: StrTendril,
    ) {
        self.inner
            .append_doctype_to_document(name, public_id, system_id)
    }
    fn mark_script_already_started(&self, node: &NodeId) {
        self.inner.mark_script_already_started(node)
    }
    fn pop(&self, node: &NodeId) {
        self.inner.pop(node)
    }
    fn get_template_contents(&self, target: &NodeId) -> NodeId {
        self.inner.get_template_contents(target)
    }
    fn same_node(&self, x: &NodeId, y: &NodeId) -> bool {
        self.inner.same_node(x, y)
    }
    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.inner.set_quirks_mode(mode)
    }
    fn append_before_sibling(&self, sibling: &NodeId, new_node: NodeOrText<NodeId>) {
        // The new node goes where the sibling is: at the sibling's depth,
        // one below the sibling's parent.
        let parent_depth = self
            .stats
            .depth
            .borrow()
            .get(sibling)
            .map_or(0, |d| d.saturating_sub(1));
        if let NodeOrText::AppendNode(id) = &new_node {
            self.stats.depth.borrow_mut().insert(*id, parent_depth + 1);
        }
        self.inner.append_before_sibling(sibling, new_node)
    }
    fn add_attrs_if_missing(&self, target: &NodeId, attrs: Vec<Attribute>) {
        self.inner.add_attrs_if_missing(target, attrs)
    }
    fn associate_with_form(
        &self,
        target: &NodeId,
        form: &NodeId,
        nodes: (&NodeId, Option<&NodeId>),
    ) {
        self.inner.associate_with_form(target, form, nodes)
    }
    fn remove_from_parent(&self, target: &NodeId) {
        self.inner.remove_from_parent(target)
    }
    fn reparent_children(&self, node: &NodeId, new_parent: &NodeId) {
        self.inner.reparent_children(node, new_parent)
    }
    fn is_mathml_annotation_xml_integration_point(&self, handle: &NodeId) -> bool {
        self.inner
            .is_mathml_annotation_xml_integration_point(handle)
    }
    fn set_current_line(&self, line_number: u64) {
        self.inner.set_current_line(line_number)
    }
    fn allow_declarative_shadow_roots(&self, intended_parent: &NodeId) -> bool {
        self.inner.allow_declarative_shadow_roots(intended_parent)
    }
    fn attach_declarative_shadow(
        &self,
        location: &NodeId,
        template: &NodeId,
        attrs: &[Attribute],
    ) -> bool {
        self.inner
            .attach_declarative_shadow(location, template, attrs)
    }
    fn maybe_clone_an_option_into_selectedcontent(&self, option: &NodeId) {
        self.inner
            .maybe_clone_an_option_into_selectedcontent(option)
    }
}

/// Parses `html` in chunks, stopping after the chunk in which the tree
/// nests deeper than [`MAX_NESTING`] or passes [`MAX_ELEMENTS`]. Returns
/// the tree and whether it stopped early.
fn parse_bounded(html: &str) -> (Html, bool) {
    let stats = Rc::new(TreeStats::default());
    let sink = MeasuredSink {
        inner: HtmlTreeSink::new(Html::new_document()),
        stats: stats.clone(),
    };
    let mut parser = html5ever::driver::parse_document(sink, Default::default());
    let mut at = 0;
    while at < html.len() {
        let mut end = (at + CHUNK_BYTES).min(html.len());
        while !html.is_char_boundary(end) {
            end += 1;
        }
        parser.process(StrTendril::from_slice(&html[at..end]));
        at = end;
        if stats.deepest.get() as usize > MAX_NESTING || stats.elements.get() > MAX_ELEMENTS {
            break;
        }
    }
    (parser.finish(), at < html.len())
}

/// What a parse tree costs per element, estimated: the node, its
/// attributes and its text node (~170 bytes a node, measured, with the
/// node vector's doubling).
const TREE_BYTES_PER_ELEMENT: usize = 400;

/// Parse trees alive at once across all threads, in estimated bytes: about
/// one tree of the largest kind parsed ([`MAX_ELEMENTS`] elements of
/// [`MAX_PARSE_BYTES`]). Ordinary pages (~100 KB of tree) never wait; a
/// page of 30,000 elements waits until it is parsed alone, so parsing
/// memory does not grow with the number of cores.
const TREE_BUDGET: usize = 16 << 20;

static TREES: TreeBudget = TreeBudget {
    state: Mutex::new(BudgetState {
        used: 0,
        next: 0,
        serving: 0,
        waiting: 0,
    }),
    freed: Condvar::new(),
};

struct TreeBudget {
    state: Mutex<BudgetState>,
    freed: Condvar,
}

/// Takers are served in arrival order (a ticket each), so small trees
/// cannot starve a large one.
struct BudgetState {
    used: usize,
    next: u64,
    serving: u64,
    /// Takers waiting their turn: only then is anyone woken.
    waiting: usize,
}

/// A share of [`TREE_BUDGET`], given back when dropped.
struct TreeLease {
    budget: &'static TreeBudget,
    bytes: usize,
}

impl TreeBudget {
    /// Blocks until every earlier taker is served and `bytes` fit in the
    /// budget, or nothing else is held.
    fn take(&'static self, bytes: usize) -> TreeLease {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let ticket = st.next;
        st.next += 1;
        st.waiting += 1;
        while st.serving != ticket || (st.used > 0 && st.used + bytes > TREE_BUDGET) {
            st = self.freed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.waiting -= 1;
        st.serving += 1;
        st.used += bytes;
        // The next in line may fit too.
        if st.waiting > 0 {
            self.freed.notify_all();
        }
        TreeLease {
            budget: self,
            bytes,
        }
    }
}

impl Drop for TreeLease {
    fn drop(&mut self) {
        let mut st = self.budget.state.lock().unwrap_or_else(|e| e.into_inner());
        st.used -= self.bytes;
        if st.waiting > 0 {
            self.budget.freed.notify_all();
        }
    }
}

/// Parses an already decoded HTML document. Blocks while other threads'
/// trees fill the parse budget (see `TREE_BUDGET`).
pub fn parse_str(html: &str, url: &Url, limits: ParseLimits) -> ParsedPage {
    let mut limit = html.len();
    if limit > MAX_PARSE_BYTES {
        limit = MAX_PARSE_BYTES;
        while !html.is_char_boundary(limit) {
            limit -= 1;
        }
    }
    // The tree's size, estimated before it is built: an element per `<`.
    let tags = html.as_bytes()[..limit]
        .iter()
        .filter(|&&b| b == b'<')
        .count()
        .min(MAX_ELEMENTS);
    // Dropped after `doc`.
    let _lease = TREES.take(tags * TREE_BYTES_PER_ELEMENT + limit);
    let (doc, stopped) = parse_bounded(&html[..limit]);
    let mut page = ParsedPage {
        cut: stopped || limit < html.len(),
        ..ParsedPage::default()
    };

    // `<base href>` applies to every link in the document, wherever it
    // appears, so find it before resolving anything (only the first counts).
    let mut base = url.clone();
    for node in doc.tree.root().descendants() {
        if let Node::Element(el) = node.value()
            && el.name() == "base"
            && let Some(href) = el.attr("href")
        {
            if let Ok(b) = url.join(href.trim()) {
                page.base = Some(b.to_string());
                base = b;
            }
            break;
        }
    }

    // The text outside boilerplate, and the part of it inside `<main>`
    // (or role=main): the page's text is the latter if there is any.
    let mut text = TextBuf::new(MAX_TEXT_BYTES);
    let mut main_text = TextBuf::new(MAX_TEXT_BYTES);
    // Open elements that hide text (scripts, styles…): no text, no anchor
    // text.
    let mut hidden = 0usize;
    // Open navigation, sidebars, site headers and footers: no text, but
    // their links keep their anchor text.
    let mut boiler = 0usize;
    let mut in_main = 0usize;
    // Open `<article>`/`<main>`/`<section>` elements: a header or footer
    // inside one belongs to the content.
    let mut content = 0usize;
    let mut in_svg = 0usize;
    // The link being read and its anchor text.
    let mut anchor: Option<(Url, bool, TextBuf)> = None;
    let mut seen: HashSet<u64> = HashSet::new();
    let mut links: Vec<Link> = Vec::new();

    for edge in doc.tree.root().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(el) => {
                    let name = el.name();
                    if name == "svg" {
                        in_svg += 1;
                    }
                    match name {
                        "title" if page.title.is_none() && in_svg == 0 => {
                            if let Some(er) = ElementRef::wrap(node) {
                                page.title = non_empty(collapse(&er.text().collect::<String>()));
                            }
                        }
                        "html" if page.language.is_none() => {
                            page.language = el
                                .attr("lang")
                                .map(|l| l.trim().to_string())
                                .and_then(non_empty);
                        }
                        "meta" => {
                            let content = el.attr("content").unwrap_or("");
                            if let Some(n) = el.attr("name") {
                                if n.eq_ignore_ascii_case("description")
                                    && page.description.is_none()
                                {
                                    page.description = non_empty(collapse(content));
                                } else if n.eq_ignore_ascii_case("robots") {
                                    let c = content.trim().to_ascii_lowercase();
                                    page.meta_robots = Some(match page.meta_robots.take() {
                                        Some(prev) => format!("{prev}, {c}"),
                                        None => c,
                                    });
                                }
                            } else if let Some(h) = el.attr("http-equiv")
                                && h.eq_ignore_ascii_case("content-language")
                                && page.language.is_none()
                            {
                                page.language = non_empty(content.trim().to_string());
                            }
                        }
                        "link" if page.canonical.is_none() => {
                            let is_canonical = el.attr("rel").is_some_and(|r| {
                                r.split_ascii_whitespace()
                                    .any(|t| t.eq_ignore_ascii_case("canonical"))
                            });
                            if is_canonical
                                && let Some(c) =
                                    el.attr("href").and_then(|h| canon::resolve(&base, h))
                            {
                                page.canonical = Some(c.to_string());
                            }
                        }
                        "a" | "area" if anchor.is_none() => {
                            if let Some(target) =
                                el.attr("href").and_then(|h| canon::resolve(&base, h))
                            {
                                let nofollow = el.attr("rel").is_some_and(|r| {
                                    r.split_ascii_whitespace()
                                        .any(|t| t.eq_ignore_ascii_case("nofollow"))
                                });
                                if name == "area" {
                                    let alt = el.attr("alt").map(collapse).unwrap_or_default();
                                    push_link(
                                        &mut links,
                                        &mut seen,
                                        &mut page.links_dropped,
                                        limits,
                                        target,
                                        alt,
                                        nofollow,
                                    );
                                } else {
                                    anchor = Some((
                                        target,
                                        nofollow,
                                        TextBuf::new(MAX_ANCHOR_CHARS * 4),
                                    ));
                                }
                            }
                        }
                        _ => {}
                    }
                    if is_main(el) {
                        in_main += 1;
                    }
                    if is_content(name) {
                        content += 1;
                    }
                    if is_hidden(name) {
                        hidden += 1;
                    } else if is_boilerplate(el, content > 0) {
                        boiler += 1;
                    } else if hidden == 0 && boiler == 0 && is_block(name) {
                        text.newline();
                        main_text.newline();
                    }
                }
                Node::Text(t) if hidden == 0 => {
                    if boiler == 0 {
                        text.push(t);
                        if in_main > 0 {
                            main_text.push(t);
                        }
                    }
                    if let Some((_, _, buf)) = anchor.as_mut() {
                        buf.push(t);
                    }
                }
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(el) = node.value() {
                    let name = el.name();
                    if name == "svg" {
                        in_svg = in_svg.saturating_sub(1);
                    }
                    if is_content(name) {
                        content = content.saturating_sub(1);
                    }
                    if is_hidden(name) {
                        hidden = hidden.saturating_sub(1);
                    } else if is_boilerplate(el, content > 0) {
                        boiler = boiler.saturating_sub(1);
                    } else if hidden == 0 && boiler == 0 && is_block(name) {
                        text.newline();
                        main_text.newline();
                    }
                    if is_main(el) {
                        in_main = in_main.saturating_sub(1);
                    }
                    if name == "a"
                        && let Some((target, nofollow, buf)) = anchor.take()
                    {
                        let mut a = buf.finish();
                        if a.chars().count() > MAX_ANCHOR_CHARS {
                            a = a.chars().take(MAX_ANCHOR_CHARS).collect();
                        }
                        push_link(
                            &mut links,
                            &mut seen,
                            &mut page.links_dropped,
                            limits,
                            target,
                            a,
                            nofollow,
                        );
                    }
                }
            }
        }
    }
    page.links = links;
    let text = if main_text.out.is_empty() {
        text
    } else {
        main_text
    };
    page.cut |= text.full;
    page.text = text.finish();
    page
}

fn push_link(
    links: &mut Vec<Link>,
    seen: &mut HashSet<u64>,
    dropped: &mut usize,
    limits: ParseLimits,
    url: Url,
    anchor: String,
    nofollow: bool,
) {
    if !seen.insert(canon::fingerprint(&url)) {
        return;
    }
    if links.len() >= limits.max_links {
        *dropped += 1;
        return;
    }
    links.push(Link {
        url,
        anchor,
        nofollow,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(html: &str) -> ParsedPage {
        parse_str(
            html,
            &Url::parse("http://site.test/dir/page.html").unwrap(),
            ParseLimits::default(),
        )
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
    fn deep_nesting_is_cut_and_ordinary_pages_are_not() {
        let deep = format!(
            "<html><body><p>before</p>{}deep{}</body></html>",
            "<div>".repeat(100_000),
            "</div>".repeat(100_000)
        );
        let started = std::time::Instant::now();
        let page = p(&deep);
        assert!(page.cut);
        assert!(page.text.starts_with("before"));
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        // Unclosed paragraphs, list items and cells, void elements and
        // self-closed SVG elements do not nest.
        let flat = format!(
            "<ul>{}</ul><table>{}</table>{}{}<svg/>",
            "<li>x".repeat(2000),
            "<tr><td>a<td>b".repeat(1500),
            "<p>para<br><img src=a.png>".repeat(2000),
            "<svg><path d=M0/><circle r=1 /></svg><math><mi/></math>".repeat(1500)
        );
        assert!(!p(&flat).cut);
        // In HTML `/>` closes nothing: `<div/>` opens a div, so these nest;
        // so do HTML tags inside SVG, void and optional-end-tag names
        // there, and everything after an end tag that leaves SVG. (Each is
        // longer than one chunk: what fits in one is parsed whole.)
        for deep in [
            "<div/>".repeat(6000),
            format!("<svg>{}", "<div/>".repeat(6000)),
            format!("<svg><foreignObject>{}", "<path/>".repeat(6000)),
            format!("<svg></span>{}", "<td>".repeat(6000)),
            format!("<svg>{}", "<input>".repeat(6000)),
            format!("<div><svg></div>{}", "<x/>".repeat(6000)),
            format!("<svg><title>{}</title>", "<div>".repeat(6000)),
        ] {
            let started = std::time::Instant::now();
            assert!(p(&deep).cut, "{}", &deep[..40]);
            assert!(started.elapsed() < std::time::Duration::from_secs(20));
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
        assert!(page.text.contains("Text"));
        // Too many elements, or too many bytes: parsed in part.
        let many = format!(
            "<body>{}</body>",
            "<a href=/x>x</a>".repeat(MAX_ELEMENTS + 2000)
        );
        let page = p(&many);
        assert!(page.cut && page.links.len() == 1);
        let big = format!(
            "<body><p>{}</p></body>",
            "word ".repeat(MAX_PARSE_BYTES / 4)
        );
        assert!(p(&big).cut);
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
    fn a_tree_over_the_budget_waits_until_it_is_alone() {
        let budget: &'static TreeBudget = Box::leak(Box::new(TreeBudget {
            state: Mutex::new(BudgetState {
                used: 0,
                next: 0,
                serving: 0,
                waiting: 0,
            }),
            freed: Condvar::new(),
        }));
        let small = budget.take(1000);
        let small2 = budget.take(1000);
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let big = budget.take(TREE_BUDGET);
            tx.send(()).unwrap();
            drop(big);
        });
        drop(small);
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err()
        );
        drop(small2);
        rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap();
        waiter.join().unwrap();
        assert_eq!(budget.state.lock().unwrap().used, 0);
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
    fn link_cap_counts_dropped() {
        let mut html = String::from("<html><body>");
        for i in 0..50 {
            html.push_str(&format!("<a href='/p{i}'>x</a>"));
        }
        let page = parse_str(
            &html,
            &Url::parse("http://s.test/").unwrap(),
            ParseLimits { max_links: 10 },
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
        // undeclared, invalid UTF-8 falls back to windows-1252, never panics
        let (t, e) = decode(b"caf\xe9", None);
        assert_eq!((t.as_ref(), e.name()), ("café", "windows-1252"));
        // undeclared valid UTF-8
        let (_, e) = decode("café".as_bytes(), None);
        assert_eq!(e.name(), "UTF-8");
    }

    #[test]
    fn html_detection() {
        assert!(is_html(Some("text/html; charset=utf-8"), b""));
        assert!(is_html(Some("application/xhtml+xml"), b""));
        assert!(!is_html(Some("application/pdf"), b"<html>"));
        assert!(is_html(None, b"  <!DOCTYPE html><html>"));
        assert!(is_html(None, b"<HTML>"));
        assert!(!is_html(None, b"%PDF-1.4"));
        // Binary served as HTML: a PNG, zeros, a NUL in the first 1 KiB.
        assert!(!is_html(
            Some("text/html"),
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"
        ));
        assert!(!is_html(Some("text/html"), &[0u8; 4096]));
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
