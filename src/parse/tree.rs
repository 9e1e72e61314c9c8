//! The tree-based extraction that [`super::extract`] replaced, kept only
//! to check that the streaming pass reads every fixture page the same.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::{Condvar, Mutex};

use ego_tree::NodeId;
use ego_tree::iter::Edge;
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, QualName};
use scraper::{ElementRef, Html, HtmlTreeSink, Node};
use url::Url;

use super::{
    Link, MAX_ANCHOR_CHARS, MAX_TEXT_BYTES, ParseLimits, ParsedPage, TextBuf, collapse, non_empty,
};
use crate::canon;

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

/// Parsing stops after the chunk in which the tree nests deeper than this
/// (see `parse_bounded`): html5ever's tree building is quadratic in
/// nesting depth (a page of 100,000 nested `<div>`s would take minutes of
/// CPU), and no real page comes close.
pub const MAX_NESTING: usize = 1024;
/// Elements parsed at most: a tree costs ~400 bytes an element, so this
/// bounds one tree at ~12 MB. Nearly every page has fewer than 10,000
/// elements; a page of 100,000 links would otherwise hold ~50 MB.
pub const MAX_ELEMENTS: usize = 30_000;
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
