//! Structured fields by CSS selectors (`--extract`, `trawl extract`).
//!
//! In: field specs `NAME=SELECTOR` or `NAME=SELECTOR@ATTR` (checked once,
//! when the command line is read) and a decoded HTML document. Out: for
//! each field, in the order given, the values of every element the
//! selector matches, in document order: the element's text content
//! (whitespace collapsed) or, with `@ATTR`, that attribute's value
//! (elements without it give none).
//!
//! This is the one place trawl builds a document tree (with the `scraper`
//! crate: html5ever's tree builder and Servo's selector matching): a crawl
//! pays for it only when fields are asked for, and the default pass in
//! `parse` stays tree-less. Its results are capped so a hostile page
//! cannot make them large: at most [`MAX_VALUES`] values per field, each
//! cut at [`MAX_VALUE_BYTES`], and [`MAX_FIELD_BYTES`] per field in all.

pub mod stored;
pub mod tree;

use scraper::{ElementRef, Html, Selector};
use serde::{Deserialize, Serialize};

/// Most values kept per field and page; later matches are dropped.
pub const MAX_VALUES: usize = 1_000;
/// Longest value kept, in bytes of UTF-8; a longer one is cut on a
/// character boundary. A text value is read from at most this much of
/// the element's text before whitespace is collapsed.
pub const MAX_VALUE_BYTES: usize = 64 << 10;
/// Most bytes of values kept per field and page, all values together;
/// values past it are dropped.
pub const MAX_FIELD_BYTES: usize = 1 << 20;
/// Longest field name.
pub const MAX_NAME_CHARS: usize = 64;

/// A field as given on the command line: a name, a CSS selector and
/// optionally the attribute whose value is taken instead of the text.
/// Stored as it is in the crawl's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// The key in exports (`extracted.NAME` in CSV): 1 to 64 ASCII
    /// letters, digits, `_` or `-`, not starting with a digit or `-`.
    pub name: String,
    /// A CSS selector list, as given (checked to parse).
    pub selector: String,
    /// The attribute whose value is taken, lower-cased (HTML attribute
    /// names are); `None`: the element's text content.
    pub attr: Option<String>,
}

impl FieldSpec {
    /// Reads `NAME=SELECTOR` or `NAME=SELECTOR@ATTR`. The name is 1 to 64
    /// ASCII letters, digits, `_` or `-`, not starting with a digit or `-`;
    /// the selector must parse as CSS (a selector list: `a, b` matches
    /// either); `@ATTR` counts only at the very end and when it is an
    /// attribute name (so `a[href^="mailto:x@y"]` is a selector alone).
    /// The error names the argument and what is wrong with it.
    pub fn parse(arg: &str) -> Result<FieldSpec, String> {
        let bad = |why: String| format!("--extract {arg:?}: {why}");
        let Some((name, rest)) = arg.split_once('=') else {
            return Err(bad(
                "expected NAME=SELECTOR, e.g. price=.product .price or author=meta[name=author]@content".into(),
            ));
        };
        let name = name.trim();
        check_name(name).map_err(bad)?;
        let (selector, attr) = match rest.rsplit_once('@') {
            Some((sel, attr)) if is_attr_name(attr) => {
                (sel.trim(), Some(attr.to_ascii_lowercase()))
            }
            _ => (rest.trim(), None),
        };
        if selector.is_empty() {
            return Err(bad(format!("no selector after `{name}=`")));
        }
        Selector::parse(selector).map_err(|e| {
            bad(format!(
                "`{selector}` is not a CSS selector ({}); the text is taken by default, \
                 `@attr` at the end takes an attribute",
                describe(&e)
            ))
        })?;
        Ok(FieldSpec {
            name: name.to_string(),
            selector: selector.to_string(),
            attr,
        })
    }

    /// The spec as the command line takes it.
    pub fn to_arg(&self) -> String {
        match &self.attr {
            Some(a) => format!("{}={}@{a}", self.name, self.selector),
            None => format!("{}={}", self.name, self.selector),
        }
    }
}

/// A selector's parse error in words: the selectors crate's kind
/// (`ClassNeedsIdent` → "class needs ident") rather than scraper's
/// request to report it.
fn describe(e: &scraper::error::SelectorErrorKind) -> String {
    use scraper::error::SelectorErrorKind as K;
    let kind = match e {
        K::UnexpectedSelectorParseError(kind) => kind,
        K::EndOfLine => return "it ends too soon".into(),
        other => return other.to_string().to_lowercase(),
    };
    let debug = format!("{kind:?}");
    let (name, rest) = debug.split_at(debug.find('(').unwrap_or(debug.len()));
    let mut words = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    format!("{words}{rest}")
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the name `{name}` must be 1 to {MAX_NAME_CHARS} letters, digits, `_` or `-`, \
             starting with a letter or `_`"
        ))
    }
}

/// An HTML attribute name as `@ATTR` takes it.
fn is_attr_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.'))
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

/// Replaces the specs of `add` in `specs` by name, keeping their place,
/// and appends the new names: the crawl's fields once `trawl extract`
/// has run.
pub fn merge(specs: &mut Vec<FieldSpec>, add: &[FieldSpec]) {
    for spec in add {
        match specs.iter_mut().find(|s| s.name == spec.name) {
            Some(s) => *s = spec.clone(),
            None => specs.push(spec.clone()),
        }
    }
}

/// Checks a list of specs as a whole: two fields of one name are refused.
pub fn check_unique(specs: &[FieldSpec]) -> Result<(), String> {
    for (i, s) in specs.iter().enumerate() {
        if specs[..i].iter().any(|t| t.name == s.name) {
            return Err(format!(
                "--extract: the name `{}` is given twice; each field needs its own name",
                s.name
            ));
        }
    }
    Ok(())
}

/// Compiled fields, made once per crawl or `trawl extract`.
#[derive(Debug)]
pub struct Fields {
    fields: Vec<(FieldSpec, Selector)>,
}

/// The values of one field on one page, in document order (empty: the
/// selector matched nothing, or no match had the attribute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldValues {
    pub name: String,
    pub values: Vec<String>,
}

impl FieldValues {
    /// Bytes of its values, for the writer's backlog accounting.
    pub fn bytes(&self) -> usize {
        self.values.iter().map(String::len).sum()
    }
}

impl Fields {
    /// Compiles the specs (each was checked when it was read; a stored
    /// setting that no longer parses is refused here).
    pub fn new(specs: &[FieldSpec]) -> Result<Fields, String> {
        check_unique(specs)?;
        let fields = specs
            .iter()
            .map(|s| {
                Selector::parse(&s.selector)
                    .map(|sel| (s.clone(), sel))
                    .map_err(|e| format!("field `{}`: `{}`: {e}", s.name, s.selector))
            })
            .collect::<Result<_, _>>()?;
        Ok(Fields { fields })
    }

    /// The field names, in the order given.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(s, _)| s.name.as_str())
    }

    /// Applies every field to an HTML document: one [`FieldValues`] per
    /// field, in the order given. Builds the document's tree once, up to
    /// where it nests deeper than [`tree::MAX_TREE_DEPTH`].
    pub fn extract(&self, html: &str) -> Vec<FieldValues> {
        let (doc, _cut) = tree::parse(html);
        self.fields
            .iter()
            .map(|(spec, sel)| FieldValues {
                name: spec.name.clone(),
                values: values(&doc, sel, spec.attr.as_deref()),
            })
            .collect()
    }
}

/// The capped values of the elements of `doc` that `sel` matches, in tree
/// order.
fn values(doc: &Html, sel: &Selector, attr: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut total = 0;
    for node in doc.tree.root().descendants() {
        let Some(el) = ElementRef::wrap(node) else {
            continue;
        };
        if !sel.matches(&el) {
            continue;
        }
        let value = match attr {
            Some(a) => match el.attr(a) {
                Some(v) => cut(v).to_string(),
                None => continue,
            },
            None => text_of(el),
        };
        total += value.len();
        if total > MAX_FIELD_BYTES {
            break;
        }
        out.push(value);
        if out.len() == MAX_VALUES {
            break;
        }
    }
    out
}

/// `s` cut at [`MAX_VALUE_BYTES`] on a character boundary.
fn cut(s: &str) -> &str {
    if s.len() <= MAX_VALUE_BYTES {
        return s;
    }
    let mut end = MAX_VALUE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The element's text content with runs of whitespace made one space and
/// the ends trimmed, read from at most [`MAX_VALUE_BYTES`] of its text
/// (so an element that holds the whole page costs no more than that).
fn text_of(el: ElementRef<'_>) -> String {
    let mut raw = String::new();
    for t in el.text() {
        let room = MAX_VALUE_BYTES - raw.len();
        if t.len() >= room {
            raw.push_str(cut_at(t, room));
            break;
        }
        raw.push_str(t);
    }
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cut_at(s: &str, mut end: usize) -> &str {
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(arg: &str) -> FieldSpec {
        FieldSpec::parse(arg).unwrap()
    }

    #[test]
    fn specs_read_name_selector_and_attribute() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("price=.product .price", "price", ".product .price", None),
            (
                "author=meta[name=author]@content",
                "author",
                "meta[name=author]",
                Some("content"),
            ),
            ("link = a.next @HREF", "link", "a.next", Some("href")),
            (
                "mail=a[href^=\"mailto:x@y\"]",
                "mail",
                "a[href^=\"mailto:x@y\"]",
                None,
            ),
            ("h=h1, h2", "h", "h1, h2", None),
            ("eq=a[data-x=\"1=2\"]", "eq", "a[data-x=\"1=2\"]", None),
            ("_x-1=p", "_x-1", "p", None),
        ];
        for (arg, name, sel, attr) in cases {
            let s = spec(arg);
            assert_eq!(
                (s.name.as_str(), s.selector.as_str(), s.attr.as_deref()),
                (*name, *sel, *attr),
                "{arg}"
            );
            assert_eq!(FieldSpec::parse(&s.to_arg()).unwrap(), s, "{arg}");
        }
    }

    #[test]
    fn bad_specs_say_what_is_wrong_and_name_the_argument() {
        let cases: &[(&str, &str)] = &[
            (".price", "expected NAME=SELECTOR"),
            ("=.price", "the name ``"),
            ("1st=.price", "the name `1st`"),
            ("pri ce=.price", "the name `pri ce`"),
            ("price=", "no selector"),
            ("price=@content", "no selector"),
            ("price=..price", "is not a CSS selector"),
            ("price=div[", "is not a CSS selector (it ends too soon)"),
            ("price=p::text", "is not a CSS selector"),
            ("price=..x", "(class needs ident)"),
        ];
        for (arg, why) in cases {
            let e = FieldSpec::parse(arg).unwrap_err();
            assert!(e.contains(why), "{arg}: {e}");
            assert!(e.contains(&format!("{arg:?}")), "{arg}: {e}");
        }
        let twice = [spec("a=p"), spec("a=h1")];
        assert!(
            check_unique(&twice)
                .unwrap_err()
                .contains("`a` is given twice")
        );
    }

    #[test]
    fn text_attributes_lists_and_misses() {
        let fields = Fields::new(&[
            spec("price=.product .price"),
            spec("author=meta[name=author]@content"),
            spec("sku=[data-sku]@data-sku"),
            spec("missing=.nothing"),
            spec("noattr=h1@title"),
        ])
        .unwrap();
        let html = r#"<html><head><meta name="author" content="Ada Lovelace"></head><body>
            <div class="product" data-sku="A1"><span class="price">
              9.99 </span></div>
            <div class="product" data-sku="B2"><span class="price">12.<b>50</b></span></div>
            <span class="price">0.01</span><h1>Shop</h1></body></html>"#;
        let got = fields.extract(html);
        let by = |n: &str| got.iter().find(|f| f.name == n).unwrap().values.clone();
        assert_eq!(by("price"), ["9.99", "12.50"]);
        assert_eq!(by("author"), ["Ada Lovelace"]);
        assert_eq!(by("sku"), ["A1", "B2"]);
        assert!(by("missing").is_empty());
        assert!(by("noattr").is_empty());
        let names: Vec<&str> = got.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["price", "author", "sku", "missing", "noattr"]);
    }

    #[test]
    fn values_are_capped() {
        let fields = Fields::new(&[spec("li=li"), spec("big=div")]).unwrap();
        let many: String = (0..MAX_VALUES + 50)
            .map(|i| format!("<li>{i}</li>"))
            .collect();
        let big = "é".repeat(MAX_VALUE_BYTES);
        let got = fields.extract(&format!("<ul>{many}</ul><div>{big}</div>"));
        assert_eq!(got[0].values.len(), MAX_VALUES);
        assert_eq!(got[0].values[0], "0");
        assert!(got[1].values[0].len() <= MAX_VALUE_BYTES);
        assert!(got[1].values[0].len() > MAX_VALUE_BYTES - 4);
        // Nested matches: every one holds the whole text, the field's
        // total stops them.
        let nested = format!("{}{}", "<div>".repeat(200), "x".repeat(MAX_VALUE_BYTES));
        let got = fields.extract(&nested);
        assert!(got[1].bytes() <= MAX_FIELD_BYTES);
        assert_eq!(got[1].values.len(), MAX_FIELD_BYTES / MAX_VALUE_BYTES);
    }

    #[test]
    fn merge_replaces_by_name_and_appends() {
        let mut specs = vec![spec("a=p"), spec("b=h1")];
        merge(&mut specs, &[spec("b=h2"), spec("c=li")]);
        let args: Vec<String> = specs.iter().map(FieldSpec::to_arg).collect();
        assert_eq!(args, ["a=p", "b=h2", "c=li"]);
    }
}
