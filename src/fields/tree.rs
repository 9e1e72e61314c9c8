//! The document tree fields are read from, built with a bound on nesting.
//!
//! In: a decoded HTML document. Out: scraper's [`Html`] tree and whether
//! the document was cut.
//!
//! html5ever's tree builder scans its stack of open elements for many
//! tags (is a `<p>` open in button scope? which element closes here?), so
//! each tag costs up to the nesting depth: a page of 100,000 nested
//! `<div>`s took a minute. Selector matching walks ancestors the same way.
//! The document is therefore fed to the parser in chunks through a sink
//! that measures each element's depth as it is appended, and feeding stops
//! after the chunk in which the tree nests deeper than [`MAX_TREE_DEPTH`]
//! (Blink's parser caps its tree at the same depth): every tag then costs
//! at most that much, and the page's content up to there is read as usual.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use ego_tree::NodeId;
use html5ever::interface::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::{Attribute, QualName};
use scraper::{Html, HtmlTreeSink};

/// Deepest nesting read: a document is cut after the chunk where its tree
/// passes this.
pub const MAX_TREE_DEPTH: u32 = 512;

/// HTML fed to the parser at a time: the depth is checked between chunks,
/// so a chunk's worth of tags (~3,000 at most) is the overshoot.
const CHUNK_BYTES: usize = 16 << 10;

/// Parses `html`, stopping after the chunk in which the tree nests deeper
/// than [`MAX_TREE_DEPTH`]. Returns the tree and whether it was cut.
pub fn parse(html: &str) -> (Html, bool) {
    let deepest = Rc::new(Cell::new(0));
    let sink = MeasuredSink {
        inner: HtmlTreeSink::new(Html::new_document()),
        depth: RefCell::default(),
        deepest: deepest.clone(),
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
        if deepest.get() > MAX_TREE_DEPTH {
            break;
        }
    }
    (parser.finish(), at < html.len())
}

/// scraper's tree sink, measuring the depth of each element as it is
/// appended (its parent's plus one).
struct MeasuredSink {
    inner: HtmlTreeSink,
    depth: RefCell<HashMap<NodeId, u32>>,
    deepest: Rc<Cell<u32>>,
}

impl MeasuredSink {
    fn place(&self, parent_depth: u32, child: &NodeOrText<NodeId>) {
        if let NodeOrText::AppendNode(id) = child {
            let d = parent_depth + 1;
            self.depth.borrow_mut().insert(*id, d);
            if d > self.deepest.get() {
                self.deepest.set(d);
            }
        }
    }

    fn depth_of(&self, id: &NodeId) -> u32 {
        self.depth.borrow().get(id).copied().unwrap_or(0)
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
        self.inner.create_element(name, attrs, flags)
    }
    fn create_comment(&self, text: StrTendril) -> NodeId {
        self.inner.create_comment(text)
    }
    fn create_pi(&self, target: StrTendril, data: StrTendril) -> NodeId {
        self.inner.create_pi(target, data)
    }
    fn append(&self, parent: &NodeId, child: NodeOrText<NodeId>) {
        self.place(self.depth_of(parent), &child);
        self.inner.append(parent, child)
    }
    fn append_based_on_parent_node(
        &self,
        element: &NodeId,
        prev_element: &NodeId,
        child: NodeOrText<NodeId>,
    ) {
        // The deeper of the two places it may go.
        let d = self.depth_of(element).max(self.depth_of(prev_element));
        self.place(d, &child);
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
        // Where the sibling is: one below the sibling's parent.
        self.place(self.depth_of(sibling).saturating_sub(1), &new_node);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ordinary_page_is_read_whole() {
        let body: String = (0..5_000).map(|i| format!("<p>{i}</p>")).collect();
        let html = format!("<html><body><div><main>{body}</main></div></body></html>");
        let (doc, cut) = parse(&html);
        assert!(!cut);
        let p = scraper::Selector::parse("main p").unwrap();
        assert_eq!(doc.select(&p).count(), 5_000);
    }

    #[test]
    fn deep_nesting_is_cut_and_the_content_before_it_kept() {
        let html = format!(
            "<html><body><h1>Kept</h1>{}deep{}</body></html>",
            "<div>".repeat(100_000),
            "</div>".repeat(100_000)
        );
        let (doc, cut) = parse(&html);
        assert!(cut);
        let h1 = scraper::Selector::parse("h1").unwrap();
        assert_eq!(doc.select(&h1).count(), 1);
        let div = scraper::Selector::parse("div").unwrap();
        let n = doc.select(&div).count();
        assert!(n as u32 > MAX_TREE_DEPTH && n < 5_000, "{n}");
    }
}
