//! Markdown of a page's main content, written by the streaming pass.
//!
//! In: the calls [`super::extract`] makes as it reads a page (an element
//! of a kind this writer knows opened or closed, text, a line break, a
//! rule, an image), only for what is the page's visible, non-boilerplate
//! content. Out: CommonMark with GitHub's tables and strikethrough
//! (<https://spec.commonmark.org>, <https://github.github.com/gfm/>):
//! ATX headings, paragraphs, lists (nested, numbered from `<ol start>`),
//! block quotes, fenced code blocks with their language, inline code,
//! emphasis, links and images as links with absolute URLs, tables.
//!
//! Nothing is parsed twice and no tree is built: the text goes into one
//! string as it comes. Only a code span, a code block and a table are
//! rewritten when they close (the fence must be longer than any run of
//! backticks inside; a table's columns are known at its end), from the
//! part of the string they wrote. Memory is the string (at most `cap`
//! bytes of main content) and a few small stacks.

use super::tokenize::is_ws;

/// What an open element is to the Markdown (stored with it on the
/// extractor's stack; [`NONE`] for everything else).
pub type Kind = u8;
pub const NONE: Kind = 0;
/// A paragraph-like block: a blank line before and after.
pub const BLOCK: Kind = 1;
/// `<h1>`…`<h6>`: `HEADING + level - 1`.
pub const HEADING: Kind = 2;
pub const UL: Kind = 8;
pub const OL: Kind = 9;
pub const LI: Kind = 10;
pub const QUOTE: Kind = 11;
pub const PRE: Kind = 12;
/// `<code>`, `<kbd>`, `<samp>`, `<tt>`.
pub const CODE: Kind = 13;
pub const EM: Kind = 14;
pub const STRONG: Kind = 15;
pub const DEL: Kind = 16;
/// `<a href>` with an http(s) target.
pub const LINK: Kind = 17;
pub const TABLE: Kind = 18;
pub const TR: Kind = 19;
pub const CELL: Kind = 20;
/// A block whose class names the language of the code blocks inside
/// (Sphinx's `<div class="highlight-python3">`).
pub const LANG_BLOCK: Kind = 21;
/// An element left out of the Markdown with its text: a heading's
/// permalink (Sphinx's `¶`, rustdoc's `§`), a `<button>`.
pub const SKIP: Kind = 22;

/// The kind of an element by its lower-case name.
pub fn kind_of(lname: &str) -> Kind {
    match lname {
        "p" | "div" | "section" | "article" | "main" | "header" | "footer" | "figure"
        | "figcaption" | "address" | "details" | "summary" | "dl" | "dt" | "dd" | "fieldset"
        | "hgroup" | "center" | "form" | "caption" | "search" | "dialog" | "legend" => BLOCK,
        "h1" => HEADING,
        "h2" => HEADING + 1,
        "h3" => HEADING + 2,
        "h4" => HEADING + 3,
        "h5" => HEADING + 4,
        "h6" => HEADING + 5,
        "ul" | "menu" | "dir" => UL,
        "ol" => OL,
        "li" => LI,
        "blockquote" => QUOTE,
        "pre" | "listing" | "xmp" | "plaintext" => PRE,
        "code" | "kbd" | "samp" | "tt" => CODE,
        "em" | "i" | "cite" | "dfn" | "var" => EM,
        "strong" | "b" => STRONG,
        "del" | "s" | "strike" => DEL,
        "a" => LINK,
        "table" => TABLE,
        "tr" => TR,
        "td" | "th" => CELL,
        // A control's label is not content ("Copy item path").
        "button" => SKIP,
        _ => NONE,
    }
}

/// A container whose lines carry a prefix: a block quote (`> `) or a list
/// item (its content indented by the width of its marker).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Quote,
    Item(u8),
}

impl Container {
    fn push_prefix(self, out: &mut String) {
        match self {
            Container::Quote => out.push_str("> "),
            Container::Item(w) => {
                for _ in 0..w {
                    out.push(' ');
                }
            }
        }
    }
}

struct List {
    ordered: bool,
    next: u32,
}

/// An open inline span whose opening marker is written before its first
/// word (an empty one writes nothing) and closed, then opened again,
/// around a block break.
struct Span {
    kind: Kind,
    written: bool,
    /// A link's target.
    url: String,
}

struct CodeBlock {
    /// Where its content starts in the output.
    start: usize,
    /// Where the output ended before the block (an empty block is undone).
    before: usize,
    lang: Option<String>,
}

/// A table being written. Cells are written in place as inline text;
/// at the end the table is rewritten from their ranges, unless it holds
/// block content (a layout table), which is left as the text it wrote.
struct Table {
    start: usize,
    rows: Vec<Vec<(usize, usize)>>,
    cell: Option<usize>,
    layout: bool,
    /// Tables open inside this one (read as its text).
    nested: u32,
}

pub struct Markdown {
    out: String,
    cap: usize,
    pub full: bool,
    pending_space: bool,
    /// Line ends owed before the next content: 1 a new line, 2 a blank line.
    pending_break: u8,
    /// A `<br>`: a hard line break, unless a block break comes first.
    pending_hard: bool,
    /// The output ends a line whose prefix is not written yet.
    at_line_start: bool,
    containers: Vec<Container>,
    /// How many containers the last line written was in.
    line_containers: usize,
    /// A list item's marker owed at the start of its first line, and the
    /// container it stands for.
    marker: Option<(usize, String)>,
    /// A heading's `#`s owed before its first word.
    heading_mark: Option<Kind>,
    headings: u32,
    lists: Vec<List>,
    spans: Vec<Span>,
    /// An open code span: depth, and where its content starts once it has
    /// some.
    code_span: Option<(u32, Option<usize>)>,
    code_block: Option<(u32, CodeBlock)>,
    lang_hint: Option<String>,
    table: Option<Table>,
    /// Where the first `<main>` (or `role=main`) starts in the output,
    /// while it is the page's content or may turn out to be.
    main_start: Option<usize>,
    in_main: bool,
    /// Open [`SKIP`] elements.
    skip: u32,
    /// A list item just closed: the next one follows on the next line.
    item_closed: bool,
    /// A `<main>` has text: from then on only text inside one is written.
    pub main_has_text: bool,
}

/// Bytes that may need a backslash anywhere in text (see
/// [`escape_word`]; those that matter only at the start of a line are
/// looked at there).
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let s = b"\\`*_[]<|";
    let mut i = 0;
    while i < s.len() {
        t[s[i] as usize] = true;
        i += 1;
    }
    t
};

impl Markdown {
    pub fn new(cap: usize) -> Self {
        Self {
            out: String::new(),
            cap,
            full: false,
            pending_space: false,
            pending_break: 0,
            pending_hard: false,
            at_line_start: true,
            containers: Vec::new(),
            line_containers: 0,
            marker: None,
            heading_mark: None,
            headings: 0,
            lists: Vec::new(),
            spans: Vec::new(),
            code_span: None,
            code_block: None,
            lang_hint: None,
            table: None,
            main_start: None,
            skip: 0,
            item_closed: false,
            in_main: false,
            main_has_text: false,
        }
    }

    /// In a heading, a data table's cell or a code span, a block break is
    /// a space: their Markdown is one line.
    fn inline_only(&self) -> bool {
        self.headings > 0
            || self.code_span.is_some()
            || self
                .table
                .as_ref()
                .is_some_and(|t| !t.layout && t.cell.is_some())
    }

    fn brk(&mut self, n: u8) {
        if self.code_block.is_some() || self.marker.is_some() {
            // (A block at the start of a list item begins on the item's
            // first line.)
            return;
        }
        if self.inline_only() {
            self.pending_space = true;
        } else {
            self.pending_break = self.pending_break.max(n);
        }
    }

    /// Content here makes a data table a layout table.
    fn block_in_cell(&mut self) {
        if let Some(t) = &mut self.table
            && t.cell.is_some()
        {
            t.layout = true;
        }
    }

    fn used(&self) -> usize {
        self.out.len() - self.main_start.unwrap_or(0).min(self.out.len())
    }

    /// Writes the prefix of a new line: each container's, with a list
    /// item's marker in place of its indent on the item's first line.
    fn line_prefix(&mut self) {
        self.line_containers = self.containers.len();
        let marker = self.marker.take();
        for (i, c) in self.containers.iter().enumerate() {
            match &marker {
                Some((at, m)) if *at == i => self.out.push_str(m),
                _ => c.push_prefix(&mut self.out),
            }
        }
    }

    /// The prefix of a blank line inside the containers the last line
    /// was in: only quotes carry one.
    fn blank_line(&mut self) {
        let mut prefix = String::new();
        for c in &self.containers[..self.line_containers.min(self.containers.len())] {
            if *c == Container::Quote {
                prefix.push_str("> ");
            } else {
                c.push_prefix(&mut prefix);
            }
        }
        self.out.push_str(prefix.trim_end());
    }

    /// Writes what is owed before content: line breaks, the line's
    /// prefix, a heading's marks, a space, and (`spans`) the opening
    /// markers of open spans. Returns whether what follows begins a line
    /// (where a `#` or `1.` would be read as markup).
    fn start_content(&mut self, spans: bool) -> bool {
        let mut fresh = false;
        self.item_closed = false;
        let at_start = self.out.len() == self.main_start.unwrap_or(0);
        if self.pending_break > 0 || (self.pending_hard && !self.inline_only()) {
            if !at_start && !self.at_line_start {
                self.close_spans();
                while self.out.ends_with(' ') {
                    self.out.pop();
                }
                if self.pending_break == 0 {
                    self.out.push('\\');
                }
                self.out.push('\n');
                if self.pending_break > 1 {
                    self.blank_line();
                    self.out.push('\n');
                }
                self.at_line_start = true;
            }
            self.pending_break = 0;
            self.pending_hard = false;
            self.pending_space = false;
        } else if self.pending_hard {
            self.pending_hard = false;
            self.pending_space = true;
        }
        if self.at_line_start {
            self.line_prefix();
            self.at_line_start = false;
            self.pending_space = false;
            fresh = true;
        }
        if let Some(level) = self.heading_mark.take() {
            for _ in 0..=(level - HEADING) {
                self.out.push('#');
            }
            self.out.push(' ');
            self.pending_space = false;
            fresh = false;
        }
        if self.pending_space {
            if !self.out.ends_with([' ', '\n']) && !self.out.is_empty() {
                self.out.push(' ');
            }
            self.pending_space = false;
        }
        if spans {
            for s in &mut self.spans {
                if !s.written {
                    s.written = true;
                    fresh = false;
                    self.out.push_str(match s.kind {
                        EM => "*",
                        STRONG => "**",
                        DEL => "~~",
                        _ => "[",
                    });
                }
            }
        }
        fresh
    }

    /// Writes the closing markers of the open spans (before a block
    /// break); they open again before the next word.
    fn close_spans(&mut self) {
        for i in (0..self.spans.len()).rev() {
            if self.spans[i].written {
                self.spans[i].written = false;
                self.close_marker(i);
            }
        }
    }

    fn close_marker(&mut self, i: usize) {
        match self.spans[i].kind {
            EM => self.out.push('*'),
            STRONG => self.out.push_str("**"),
            DEL => self.out.push_str("~~"),
            _ => {
                self.out.push_str("](");
                self.out.push_str(&self.spans[i].url);
                self.out.push(')');
            }
        }
    }

    /// An element of `kind` opens; `class` is its class attribute (read
    /// for a code block's language), `link` a link's absolute target,
    /// `start` an `<ol start>`. Returns whether it must be closed.
    pub fn open(
        &mut self,
        kind: Kind,
        class: Option<&str>,
        link: Option<String>,
        start: Option<&str>,
    ) -> bool {
        if self.full {
            return false;
        }
        if kind == SKIP {
            self.skip += 1;
            return true;
        }
        if let Some((depth, block)) = &mut self.code_block {
            // Inside a code block only its text counts; a `<code>` may
            // name the language.
            if kind == CODE && block.lang.is_none() {
                block.lang = class.and_then(language);
            }
            if kind == PRE {
                *depth += 1;
                return true;
            }
            return false;
        }
        match kind {
            BLOCK => self.brk(2),
            LANG_BLOCK => {
                self.brk(2);
                self.lang_hint = class.and_then(language);
            }
            k if (HEADING..HEADING + 6).contains(&k) => {
                self.block_in_cell();
                self.brk(2);
                if self.headings == 0 {
                    self.heading_mark = Some(k);
                }
                self.headings += 1;
            }
            UL | OL => {
                self.block_in_cell();
                let in_item = matches!(self.containers.last(), Some(Container::Item(_)));
                self.brk(if in_item { 1 } else { 2 });
                self.lists.push(List {
                    ordered: kind == OL,
                    next: start
                        .and_then(|s| s.trim().parse::<u32>().ok())
                        .unwrap_or(1),
                });
            }
            LI => {
                self.block_in_cell();
                let marker = match self.lists.last_mut() {
                    Some(l) if l.ordered => {
                        let n = l.next;
                        l.next = l.next.saturating_add(1);
                        format!("{n}. ")
                    }
                    _ => "- ".to_string(),
                };
                if self.item_closed {
                    // Items of one paragraph each stay a tight list.
                    self.pending_break = 1;
                }
                self.brk(1);
                self.containers.push(Container::Item(marker.len() as u8));
                self.marker = Some((self.containers.len() - 1, marker));
            }
            QUOTE => {
                self.block_in_cell();
                self.brk(2);
                self.containers.push(Container::Quote);
            }
            PRE => {
                self.block_in_cell();
                self.brk(2);
                let before = self.out.len();
                self.start_content(false);
                let lang = class.and_then(language).or_else(|| self.lang_hint.clone());
                self.code_block = Some((
                    1,
                    CodeBlock {
                        start: self.out.len(),
                        before,
                        lang,
                    },
                ));
            }
            CODE => match &mut self.code_span {
                Some((depth, _)) => *depth += 1,
                None => self.code_span = Some((1, None)),
            },
            EM | STRONG | DEL => {
                if self.code_span.is_some() {
                    return false;
                }
                self.spans.push(Span {
                    kind,
                    written: false,
                    url: String::new(),
                });
            }
            LINK => {
                let Some(url) = link else { return false };
                // Links do not nest, and code spans hold no links.
                if self.code_span.is_some() || self.spans.iter().any(|s| s.kind == LINK) {
                    return false;
                }
                self.spans.push(Span {
                    kind,
                    written: false,
                    url,
                });
            }
            TABLE => match &mut self.table {
                Some(t) => {
                    t.nested += 1;
                    t.layout = true;
                }
                None => {
                    self.brk(2);
                    self.start_content(false);
                    self.table = Some(Table {
                        start: self.out.len(),
                        rows: Vec::new(),
                        cell: None,
                        layout: false,
                        nested: 0,
                    });
                }
            },
            TR => match &mut self.table {
                Some(t) if t.nested == 0 && !t.layout => {
                    self.end_cell();
                    if let Some(t) = &mut self.table {
                        t.rows.push(Vec::new());
                    }
                }
                _ => self.brk(2),
            },
            CELL => match &mut self.table {
                Some(t) if t.nested == 0 && !t.layout => {
                    self.end_cell();
                    if let Some(t) = &mut self.table {
                        if t.rows.is_empty() {
                            t.rows.push(Vec::new());
                        }
                        t.cell = Some(self.out.len());
                    }
                    // A space, trimmed from the cell, keeps cells apart
                    // if the table turns out to be for layout.
                    self.pending_space = true;
                }
                _ => self.pending_space = true,
            },
            _ => return false,
        }
        true
    }

    /// Closes the cell being written, keeping its range.
    fn end_cell(&mut self) {
        self.close_spans();
        let end = self.out.len();
        if let Some(t) = &mut self.table
            && let Some(start) = t.cell.take()
        {
            if let Some(row) = t.rows.last_mut() {
                row.push((start, end));
            }
            self.pending_space = false;
        }
    }

    /// An element of `kind` that [`Self::open`] accepted closes.
    pub fn close(&mut self, kind: Kind) {
        if kind == SKIP {
            self.skip = self.skip.saturating_sub(1);
            return;
        }
        if let Some((depth, _)) = &mut self.code_block {
            if kind == PRE {
                *depth -= 1;
                if *depth == 0 {
                    self.end_code_block();
                }
            }
            return;
        }
        match kind {
            BLOCK => self.brk(2),
            LANG_BLOCK => {
                self.brk(2);
                self.lang_hint = None;
            }
            k if (HEADING..HEADING + 6).contains(&k) => {
                self.headings = self.headings.saturating_sub(1);
                if self.headings == 0 {
                    // An empty heading writes nothing.
                    self.heading_mark = None;
                    self.close_spans();
                    self.brk(2);
                }
            }
            UL | OL => {
                self.lists.pop();
                let in_item = matches!(self.containers.last(), Some(Container::Item(_)));
                self.brk(if in_item { 1 } else { 2 });
            }
            LI | QUOTE => {
                let want = |c: &Container| match c {
                    Container::Item(_) => kind == LI,
                    Container::Quote => kind == QUOTE,
                };
                if let Some(i) = self.containers.iter().rposition(want) {
                    self.close_spans();
                    self.containers.truncate(i);
                    self.line_containers = self.line_containers.min(i);
                    if self.marker.as_ref().is_some_and(|(at, _)| *at >= i) {
                        self.marker = None;
                    }
                }
                self.brk(if kind == LI { 1 } else { 2 });
                self.item_closed = kind == LI;
            }
            CODE => {
                if let Some((depth, start)) = &mut self.code_span {
                    *depth -= 1;
                    if *depth == 0 {
                        let start = *start;
                        self.code_span = None;
                        if let Some(start) = start {
                            self.end_code_span(start);
                        }
                    }
                }
            }
            EM | STRONG | DEL | LINK => {
                if let Some(i) = self.spans.iter().rposition(|s| s.kind == kind) {
                    for j in (i..self.spans.len()).rev() {
                        if self.spans[j].written {
                            self.close_marker(j);
                        }
                    }
                    self.spans.truncate(i);
                }
            }
            TABLE => {
                if let Some(t) = &mut self.table {
                    if t.nested > 0 {
                        t.nested -= 1;
                        self.pending_space = true;
                    } else {
                        self.end_cell();
                        self.end_table();
                    }
                }
            }
            TR => {
                if self
                    .table
                    .as_ref()
                    .is_some_and(|t| t.layout || t.nested > 0)
                {
                    self.brk(2);
                } else {
                    self.end_cell();
                }
            }
            CELL => {
                if self
                    .table
                    .as_ref()
                    .is_some_and(|t| t.layout || t.nested > 0)
                {
                    self.pending_space = true;
                } else {
                    self.end_cell();
                }
            }
            _ => {}
        }
    }

    fn end_code_span(&mut self, start: usize) {
        let content = self.out.split_off(start);
        let content = content.trim_end();
        if content.is_empty() {
            return;
        }
        let fence = "`".repeat(longest_run(content, b'`') + 1);
        let pad = if content.starts_with('`') || content.ends_with('`') {
            " "
        } else {
            ""
        };
        self.out.push_str(&fence);
        self.out.push_str(pad);
        self.out.push_str(content);
        self.out.push_str(pad);
        self.out.push_str(&fence);
    }

    fn end_code_block(&mut self) {
        let Some((_, block)) = self.code_block.take() else {
            return;
        };
        let content = self.out.split_off(block.start);
        // A newline right after `<pre>` is not content (HTML §13.2.6.4.7).
        let content = content.strip_prefix('\n').unwrap_or(&content);
        let content = content.trim_end();
        if content.trim().is_empty() {
            self.out.truncate(block.before);
            self.at_line_start = self.out.is_empty() || self.out.ends_with('\n');
            self.brk(2);
            return;
        }
        let fence = "`".repeat(longest_run(content, b'`').max(2) + 1);
        let mut prefix = String::new();
        for c in &self.containers {
            c.push_prefix(&mut prefix);
        }
        self.out.push_str(&fence);
        if let Some(lang) = &block.lang {
            self.out.push_str(lang);
        }
        for line in content.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            self.out.push('\n');
            if line.is_empty() {
                self.out.push_str(prefix.trim_end());
            } else {
                self.out.push_str(&prefix);
                self.out.push_str(line);
            }
        }
        self.out.push('\n');
        self.out.push_str(&prefix);
        self.out.push_str(&fence);
        self.pending_break = 2;
        self.pending_space = false;
    }

    fn end_table(&mut self) {
        let Some(t) = self.table.take() else { return };
        if t.layout {
            self.brk(2);
            return;
        }
        let cols = t.rows.iter().map(Vec::len).max().unwrap_or(0);
        let rows: Vec<&Vec<(usize, usize)>> = t.rows.iter().filter(|r| !r.is_empty()).collect();
        let mut table = String::new();
        if cols > 0 {
            let mut prefix = String::new();
            for c in &self.containers {
                c.push_prefix(&mut prefix);
            }
            for (n, row) in rows.iter().enumerate() {
                if n > 0 {
                    table.push('\n');
                    table.push_str(&prefix);
                }
                table.push('|');
                for i in 0..cols {
                    let cell = row.get(i).map_or("", |&(s, e)| self.out[s..e].trim());
                    table.push(' ');
                    table.push_str(cell);
                    table.push_str(" |");
                }
                if n == 0 {
                    table.push('\n');
                    table.push_str(&prefix);
                    table.push('|');
                    for _ in 0..cols {
                        table.push_str(" --- |");
                    }
                }
            }
        }
        self.out.truncate(t.start);
        if table.is_empty() {
            self.at_line_start = self.out.is_empty() || self.out.ends_with('\n');
        } else {
            self.out.push_str(&table);
        }
        self.pending_space = false;
        self.brk(2);
    }

    /// Text of the page (character references resolved).
    pub fn text(&mut self, s: &str) {
        if self.full || self.skip > 0 {
            return;
        }
        if self.in_main && !s.bytes().all(is_ws) {
            self.main_has_text = true;
        }
        if self.code_block.is_some() {
            self.out.push_str(s);
            if self.used() >= self.cap {
                self.full = true;
            }
            return;
        }
        // As in the text (`TextBuf`), this is a hot loop: it goes by runs
        // of words already one space apart, and copies a run whole unless
        // a byte in it may need a backslash.
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if is_ws(bytes[i]) {
                self.pending_space = true;
                i += 1;
                continue;
            }
            let start = i;
            let mut special = false;
            loop {
                while i < bytes.len() && !is_ws(bytes[i]) {
                    special |= SPECIAL[bytes[i] as usize];
                    i += 1;
                }
                if i + 1 < bytes.len() && bytes[i] == b' ' && !is_ws(bytes[i + 1]) {
                    i += 1;
                } else {
                    break;
                }
            }
            self.push_run(&s[start..i], special);
            if self.full {
                return;
            }
        }
    }

    /// Writes words one space apart; `special`: a byte of them is one
    /// that may need a backslash.
    fn push_run(&mut self, run: &str, special: bool) {
        let line_start = self.start_content(true);
        if let Some((_, start @ None)) = &mut self.code_span {
            *start = Some(self.out.len());
        }
        let in_cell = self.table.as_ref().is_some_and(|t| t.cell.is_some());
        if self.code_span.is_some() {
            if in_cell && run.contains('|') {
                self.out.push_str(&run.replace('|', "\\|"));
            } else {
                self.out.push_str(run);
            }
        } else if !special {
            // Only the first word of a line can be read as a marker.
            let rest = if line_start {
                let end = memchr::memchr(b' ', run.as_bytes()).unwrap_or(run.len());
                escape_word(&mut self.out, &run[..end], true, in_cell);
                &run[end..]
            } else {
                run
            };
            self.out.push_str(rest);
        } else {
            for (n, word) in run.split(' ').enumerate() {
                if n > 0 {
                    self.out.push(' ');
                }
                escape_word(&mut self.out, word, line_start && n == 0, in_cell);
            }
        }
        if self.used() >= self.cap {
            self.full = true;
        }
    }

    /// A `</p>` with no `<p>` open: a paragraph ends.
    pub fn paragraph_break(&mut self) {
        self.brk(2);
    }

    /// `<br>`.
    pub fn line_break(&mut self) {
        if self.code_block.is_some() {
            self.out.push('\n');
        } else if self.inline_only() {
            self.pending_space = true;
        } else if !self.at_line_start && self.pending_break == 0 {
            self.pending_hard = true;
        }
    }

    /// `<hr>`: a thematic break.
    pub fn rule(&mut self) {
        if self.code_block.is_some() || self.inline_only() || self.full {
            return;
        }
        self.block_in_cell();
        self.brk(2);
        self.start_content(false);
        self.out.push_str("---");
        self.brk(2);
    }

    /// `<img>` with its alt text and absolute source: a link to the image,
    /// or the alt text alone inside a link. An image without alt text is
    /// decoration (HTML's rule for `alt=""`) and writes nothing.
    pub fn image(&mut self, alt: &str, src: Option<&str>) {
        if self.skip > 0 || self.full || self.code_block.is_some() || alt.trim().is_empty() {
            return;
        }
        let in_link = self.spans.iter().any(|s| s.kind == LINK);
        if in_link || self.code_span.is_some() {
            self.text(alt);
            return;
        }
        let Some(src) = src else {
            self.text(alt);
            return;
        };
        self.spans.push(Span {
            kind: LINK,
            written: false,
            url: src.to_string(),
        });
        self.text(alt);
        let i = self.spans.len() - 1;
        if self.spans[i].written {
            self.close_marker(i);
        }
        self.spans.pop();
    }

    /// Entering (`on`) or leaving the outermost `<main>` or `role=main`.
    pub fn main(&mut self, on: bool) {
        self.in_main = on;
        if on {
            if !self.main_has_text && self.main_start.is_none() {
                self.main_start = Some(self.out.len());
                if let Some(t) = &mut self.table {
                    t.layout = true;
                }
            }
        } else if !self.main_has_text {
            // An empty main: the page's content is all of it after all.
            self.main_start = None;
        }
    }

    /// The Markdown: that of the main content when a `<main>` had text,
    /// else of the whole page; no blank lines at either end.
    pub fn finish(mut self) -> String {
        let from = if self.main_has_text {
            self.main_start.unwrap_or(0)
        } else {
            0
        };
        let mut md = self.out.split_off(from.min(self.out.len()));
        if self.full {
            // Cut at the cap, at the end of a line.
            let mut end = self.cap.min(md.len());
            while !md.is_char_boundary(end) {
                end -= 1;
            }
            let end = md[..end].rfind('\n').unwrap_or(end);
            md.truncate(end);
        }
        let trimmed = md.trim_end();
        let start = trimmed.len() - trimmed.trim_start_matches('\n').len();
        if start == 0 && trimmed.len() == md.len() {
            return md;
        }
        trimmed[start..].to_string()
    }
}

/// The language a `class` attribute names for a code block:
/// `language-rust`, `lang-rust` (CommonMark's and highlight.js's),
/// `highlight-python3` (Sphinx; `default`, `none` and `text` name none),
/// or rustdoc's `rust`.
fn language(class: &str) -> Option<String> {
    for c in class.split_ascii_whitespace() {
        let lang = c
            .strip_prefix("language-")
            .or_else(|| c.strip_prefix("lang-"))
            .or_else(|| c.strip_prefix("highlight-"))
            .or((c == "rust").then_some("rust"));
        if let Some(l) = lang
            && !l.is_empty()
            && !matches!(l, "default" | "none" | "text" | "plaintext" | "nohighlight")
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'.'))
        {
            return Some(l.to_ascii_lowercase());
        }
    }
    None
}

fn longest_run(s: &str, byte: u8) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for b in s.bytes() {
        run = if b == byte { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// Writes a word of text with the backslashes that keep it text:
/// `\`, `` ` ``, `*`, `[`, `]` always; `_` at either end of a word (inside
/// one it never makes emphasis); `<` before what could start a tag or an
/// autolink; `|` in a table cell; and at the start of a line the markers
/// of a heading, a quote, a list item, a thematic break or a setext
/// underline.
fn escape_word(out: &mut String, word: &str, line_start: bool, in_cell: bool) {
    let bytes = word.as_bytes();
    if !line_start && !bytes.iter().any(|&b| SPECIAL[b as usize]) {
        out.push_str(word);
        return;
    }
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = match b {
            b'\\' | b'`' | b'*' | b'[' | b']' => true,
            b'_' => i == 0 || i + 1 == bytes.len(),
            b'<' => bytes
                .get(i + 1)
                .is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, b'/' | b'!' | b'?')),
            b'|' => in_cell,
            b'>' => line_start && i == 0,
            // `#`, `-`… begin a heading, a list item, a rule, a setext
            // underline or a fence only as a word of their own.
            b'#' | b'-' | b'+' | b'=' | b'~' => {
                line_start && i == 0 && bytes.iter().all(|&c| c == b)
            }
            b'.' | b')' => {
                line_start
                    && i > 0
                    && i <= 9
                    && i + 1 == bytes.len()
                    && bytes[..i].iter().all(u8::is_ascii_digit)
            }
            _ => false,
        };
        if escape {
            out.push_str(&word[from..i]);
            out.push('\\');
            from = i;
        }
    }
    out.push_str(&word[from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_escaped_only_where_markdown_would_read_them() {
        let esc = |w: &str, line_start: bool, cell: bool| {
            let mut s = String::new();
            escape_word(&mut s, w, line_start, cell);
            s
        };
        assert_eq!(esc("snake_case", false, false), "snake_case");
        assert_eq!(esc("_init_", false, false), "\\_init\\_");
        assert_eq!(esc("*x*", false, false), "\\*x\\*");
        assert_eq!(esc("[1]", false, false), "\\[1\\]");
        assert_eq!(esc("a<b", false, false), "a\\<b");
        assert_eq!(esc("a<3", false, false), "a<3");
        assert_eq!(esc("#1", true, false), "#1");
        assert_eq!(esc("##", true, false), "\\##");
        assert_eq!(esc("1.0.0", true, false), "1.0.0");
        assert_eq!(esc("#1", false, false), "#1");
        assert_eq!(esc("1.", true, false), "1\\.");
        assert_eq!(esc("3.5%", true, false), "3.5%");
        assert_eq!(esc("a|b", false, true), "a\\|b");
        assert_eq!(esc("a|b", false, false), "a|b");
        assert_eq!(esc("-", true, false), "\\-");
    }

    #[test]
    fn languages_come_from_the_usual_classes() {
        assert_eq!(language("language-rust hljs").as_deref(), Some("rust"));
        assert_eq!(
            language("highlight-python3 notranslate").as_deref(),
            Some("python3")
        );
        assert_eq!(
            language("rust rust-example-rendered").as_deref(),
            Some("rust")
        );
        assert_eq!(language("highlight-default notranslate"), None);
        assert_eq!(language("playground"), None);
    }
}
