//! Export: rows out of the database as JSON Lines, CSV or a Markdown
//! digest, and a crawl as an `llms.txt` ([`llms`]).
//!
//! In: an open [`Store`], what to export and filters. Out: rows on any
//! writer. Rows are streamed from the database in a stable order (by key),
//! so memory stays flat however large the crawl, and two runs give
//! identical output.
//!
//! Each kind of row is a list of typed columns; the three formats render
//! the same columns. CSV follows RFC 4180 (CRLF, quotes doubled) and
//! neutralizes cells a spreadsheet would run as a formula (a leading `=`,
//! `+`, `-`, `@`, tab or CR gets a `'` in front).

use std::io::Write;

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};

use crate::store::export::{ExportFilter, LinkRow, PageColumns, PageRow, SummaryRow};
use crate::store::{Store, StoreError};
use crate::util::rfc3339;

mod llms;
pub use llms::demote_headings;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    /// One row per page and summary (a page summarized by two summarizers has two rows).
    Summaries,
    /// One row per fetched URL (and, with --include-skipped, per URL not fetched).
    Pages,
    /// One row per link edge.
    Links,
    /// One row per page a recrawl found new, changed or removed, with a
    /// diff of the main text of changed pages.
    Changes,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// A readable digest: one section per page.
    Markdown,
    /// The site's llms.txt (llmstxt.org): a title, a summary line, then the
    /// pages as links with their summaries, in sections by site and path.
    LlmsTxt,
    /// The llms.txt's title and summary, then every page's Markdown in full.
    LlmsFull,
}

impl Format {
    /// `llms-txt` or `llms-full`: a document of the crawl, not rows.
    pub fn is_llms(self) -> bool {
        matches!(self, Format::LlmsTxt | Format::LlmsFull)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "{pages} of the {of} HTML pages to export have no Markdown: the crawl was made without \
         --markdown (or by a trawl before schema v13); crawl again with --markdown into a new \
         database"
    )]
    NoMarkdown { pages: i64, of: i64 },
}

/// Options of an export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub what: What,
    pub format: Format,
    /// Include each page's extracted text (pages only).
    pub with_text: bool,
    /// Include each page's main content as Markdown (pages only).
    pub with_markdown: bool,
    /// Include pages whose robots directives say `noindex` (left out by
    /// default: their owners asked for them not to be republished).
    pub include_noindex: bool,
    /// Pages only: also URLs that were not stored (skipped, or failed
    /// without an answer), with their reason.
    pub include_skipped: bool,
    /// Summaries only: also the failed ones, with their `state` and
    /// `error`.
    pub include_failed: bool,
    /// Only this host (any port), host and port, or origin.
    pub host: Option<HostFilter>,
    /// Only rows fetched (summaries: summarized) at or after this time, in
    /// epoch milliseconds.
    pub since: Option<i64>,
    /// Only pages with this HTTP status.
    pub status: Option<u16>,
    /// Changes only: those of this run (default: the latest recrawl, or
    /// with `since` every run started since).
    pub run: Option<i64>,
    /// Changes only: also the pages found unchanged.
    pub include_unchanged: bool,
}

impl ExportOptions {
    pub fn new(what: What, format: Format) -> Self {
        Self {
            what,
            format,
            with_text: false,
            with_markdown: false,
            include_noindex: false,
            include_skipped: false,
            include_failed: false,
            host: None,
            since: None,
            status: None,
            run: None,
            include_unchanged: false,
        }
    }
}

/// Which URLs `--host` keeps, by the origin (`scheme://host:port`) they
/// are stored under. Exactly what was given is matched: a host alone
/// matches every scheme and port, a host and port both schemes on that
/// port, an origin only itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostFilter {
    /// `docs.example.com`
    Host(String),
    /// `docs.example.com:8080`
    HostPort(String, u16),
    /// `https://docs.example.com:443`, as `status` prints origins
    /// (`https://docs.example.com` means port 443).
    Origin(String),
}

impl HostFilter {
    /// Reads `host`, `host:port` or `scheme://host[:port]` (an IPv6
    /// address in brackets). Hosts are compared as URLs store them:
    /// lowercase, internationalized names in punycode.
    pub fn parse(given: &str) -> Result<HostFilter, String> {
        let bad = |why: &str| {
            format!(
                "--host {given:?} {why}; give a host (docs.example.com), a host and port \
                 (docs.example.com:8080) or an origin (https://docs.example.com:443)"
            )
        };
        if given.contains('*') {
            return Err(bad("is a pattern, not a host"));
        }
        if given.contains("://") {
            let url =
                url::Url::parse(given).map_err(|e| bad(&format!("is not an origin ({e})")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad("has a scheme other than http or https"));
            }
            if url.path() != "/"
                || url.query().is_some()
                || url.fragment().is_some()
                || !url.username().is_empty()
                || url.host_str().is_none()
            {
                return Err(bad("is a URL, not an origin"));
            }
            return Ok(HostFilter::Origin(crate::canon::origin_key(&url)));
        }
        let url = url::Url::parse(&format!("http://{given}/"))
            .ok()
            .filter(|u| u.path() == "/" && u.query().is_none() && u.username().is_empty())
            .ok_or_else(|| bad("is not a host"))?;
        let host = url
            .host_str()
            .ok_or_else(|| bad("is not a host"))?
            .to_string();
        // The port as written: the URL parser drops a scheme's default.
        let after_host = match given.rfind(']') {
            Some(i) => &given[i + 1..],
            None => given,
        };
        match after_host.rsplit_once(':') {
            None => Ok(HostFilter::Host(host)),
            Some((_, port)) => port
                .parse()
                .map(|port| HostFilter::HostPort(host, port))
                .map_err(|_| bad("has a port that is not a number")),
        }
    }

    /// Whether an origin as stored (`scheme://host:port`) is one this
    /// filter keeps: the same test as the SQL condition the store's
    /// export queries use.
    pub fn matches(&self, origin: &str) -> bool {
        let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
        let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
        match self {
            HostFilter::Host(h) => host == h,
            HostFilter::HostPort(h, p) => host == h && port == p.to_string(),
            HostFilter::Origin(o) => origin == o,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
    /// A list of URLs: a JSON array; in CSV and Markdown text, separated
    /// by spaces (a canonical URL has none).
    List(Vec<String>),
    /// A value already written as JSON (the `extracted` object of a
    /// page, its keys in the order the fields were given).
    Json(String),
}

impl Cell {
    fn text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Text(s) => Some(s.clone()),
            Cell::Int(n) => Some(n.to_string()),
            Cell::Bool(b) => Some(b.to_string()),
            Cell::List(items) => Some(items.join(" ")),
            Cell::Json(v) => Some(v.clone()),
        }
    }
}

fn text(v: Option<String>) -> Cell {
    v.map_or(Cell::Null, Cell::Text)
}

/// Epoch milliseconds, written as RFC 3339.
fn time(ms: Option<i64>) -> Cell {
    ms.map_or(Cell::Null, |ms| Cell::Text(rfc3339(ms)))
}

fn int(v: Option<i64>) -> Cell {
    v.map_or(Cell::Null, Cell::Int)
}

fn flag(v: Option<bool>) -> Cell {
    v.map_or(Cell::Null, Cell::Bool)
}

/// The columns of an export of `opts.what`, in order (a pages export's
/// fields are inserted after `fetched_at`).
fn columns(opts: &ExportOptions) -> Vec<&'static str> {
    match opts.what {
        What::Summaries => {
            let mut columns = vec![
                "url",
                "title",
                "summary",
                "summarizer",
                "model",
                "prompt_version",
                "prompt_tokens",
                "completion_tokens",
                "fetched_at",
                "summarized_at",
                "truncated",
            ];
            if opts.include_failed {
                columns.push("state");
                columns.push("error");
            }
            columns
        }
        What::Pages => {
            let mut columns = vec![
                "url",
                "final_url",
                "status",
                "depth",
                "state",
                "reason",
                "redirect_to",
                "content_type",
                "size",
                "truncated",
                "title",
                "description",
                "canonical",
                "language",
                "content_hash",
                "links_count",
                "fetch_ms",
                "fetched_at",
            ];
            if opts.with_text {
                columns.push("text");
            }
            if opts.with_markdown {
                columns.push("markdown");
            }
            columns
        }
        What::Changes => unreachable!("exported by export_changes"),
        What::Links => vec!["from", "to", "anchor", "nofollow", "kind"],
    }
}

/// An exported row's cells, and for a page its URL id (to find its
/// fields).
type RowCells = (Vec<Cell>, Option<i64>);

/// A summary's cells, in the order of [`columns`].
fn summary_cells(r: SummaryRow, include_failed: bool) -> Vec<Cell> {
    let mut cells = vec![
        Cell::Text(r.url),
        text(r.title),
        text(r.summary),
        Cell::Text(r.backend),
        Cell::Text(r.model),
        Cell::Text(r.prompt_version),
        Cell::Int(r.prompt_tokens),
        Cell::Int(r.completion_tokens),
        time(Some(r.fetched_at)),
        time(Some(r.summarized_at)),
        Cell::Bool(r.truncated),
    ];
    if include_failed {
        cells.push(Cell::Text(r.state));
        cells.push(text(r.error));
    }
    cells
}

/// A page's cells, in the order of [`columns`].
fn page_cells(r: PageRow, columns: PageColumns) -> Vec<Cell> {
    let mut cells = vec![
        Cell::Text(r.url),
        text(r.final_url),
        int(r.status),
        Cell::Int(r.depth),
        Cell::Text(r.state),
        text(r.reason),
        text(r.redirect_to),
        text(r.content_type),
        int(r.size),
        flag(r.truncated),
        text(r.title),
        text(r.description),
        text(r.canonical),
        text(r.language),
        text(r.content_hash),
        int(r.links_count),
        int(r.fetch_ms),
        time(r.fetched_at),
    ];
    if columns.text {
        cells.push(text(r.text));
    }
    if columns.markdown {
        cells.push(text(r.markdown));
    }
    cells
}

/// A link's cells, in the order of [`columns`].
fn link_cells(r: LinkRow) -> Vec<Cell> {
    vec![
        Cell::Text(r.from),
        Cell::Text(r.to),
        text(r.anchor),
        Cell::Bool(r.nofollow),
        Cell::Text(r.kind),
    ]
}

/// Writes the export to `out`; returns the number of rows written.
pub async fn export(
    store: &Store,
    opts: &ExportOptions,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    if opts.format.is_llms() {
        return llms::export(
            store,
            opts.host.as_ref(),
            opts.format == Format::LlmsFull,
            out,
        )
        .await;
    }
    if opts.what == What::Changes {
        return export_changes(store, opts, out).await;
    }
    if opts.with_markdown {
        llms::check_markdown(store, opts.host.as_ref()).await?;
    }
    let mut names = columns(opts);
    // Pages carry their fields after `fetched_at`: one `extracted` object
    // in JSON, a column per field in CSV.
    let field_names = match opts.what {
        What::Pages => export_field_names(store).await?,
        _ => Vec::new(),
    };
    let fields_at = names.iter().position(|n| *n == "fetched_at").map(|i| i + 1);
    let fields_at = fields_at.filter(|_| !field_names.is_empty());
    if let Some(at) = fields_at {
        names.insert(at, "extracted");
    }
    if opts.format == Format::Csv {
        let mut header: Vec<Cell> = names.iter().map(|n| Cell::Text(n.to_string())).collect();
        if let Some(at) = fields_at {
            header.splice(
                at..=at,
                field_names
                    .iter()
                    .map(|f| Cell::Text(format!("extracted.{f}"))),
            );
        }
        write_csv(out, &header)?;
    }
    let mut stored = Box::pin(store.stored_fields());
    let mut next_field: Option<crate::store::fields::StoredField> = None;
    let filter = ExportFilter {
        host: opts.host.as_ref(),
        since: opts.since,
        status: opts.status,
        include_noindex: opts.include_noindex,
    };
    let page_columns = PageColumns {
        text: opts.with_text,
        markdown: opts.with_markdown,
        include_skipped: opts.include_skipped,
    };
    let mut rows: BoxStream<'_, Result<RowCells, StoreError>> = match opts.what {
        What::Summaries => store
            .export_summaries(&filter, opts.include_failed)
            .map_ok(|r| (summary_cells(r, opts.include_failed), None))
            .boxed(),
        What::Pages => store
            .export_pages(&filter, page_columns)
            .map_ok(|r| {
                let id = r.url_id;
                (page_cells(r, page_columns), Some(id))
            })
            .boxed(),
        What::Links => store
            .export_links(&filter)
            .map_ok(|r| (link_cells(r), None))
            .boxed(),
        What::Changes => unreachable!("exported by export_changes"),
    };
    let mut n = 0u64;
    while let Some((mut cells, id)) = rows.try_next().await? {
        if let (Some(at), Some(id)) = (fields_at, id) {
            // Both streams are in URL id order: take this page's fields
            // and pass over those of pages the filters left out.
            let mut found: Vec<crate::store::fields::StoredField> = Vec::new();
            loop {
                if next_field.is_none() {
                    next_field = stored.try_next().await?;
                }
                match next_field.take() {
                    Some(f) if f.url_id < id => {}
                    Some(f) if f.url_id == id => found.push(f),
                    other => {
                        next_field = other;
                        break;
                    }
                }
            }
            let value = |name: &str| found.iter().find(|f| f.name == name).map(|f| &f.json);
            if opts.format == Format::Csv {
                let cols = field_names
                    .iter()
                    .map(|n| value(n).map_or(Cell::Null, |j| Cell::Text(j.clone())));
                cells.splice(at..at, cols);
            } else {
                let mut object = String::from("{");
                for (i, n) in field_names.iter().enumerate() {
                    if i > 0 {
                        object.push(',');
                    }
                    object.push_str(&serde_json::Value::from(n.as_str()).to_string());
                    object.push(':');
                    object.push_str(value(n).map_or("null", String::as_str));
                }
                object.push('}');
                cells.insert(at, Cell::Json(object));
            }
        }
        match opts.format {
            Format::Jsonl => write_json(out, &names, &cells)?,
            Format::Csv => write_csv(out, &cells)?,
            Format::Markdown => write_markdown(out, opts.what, &names, &cells)?,
            Format::LlmsTxt | Format::LlmsFull => unreachable!("written by llms::export"),
        }
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

/// The fields a pages export has columns for: the crawl's, in the order
/// they were given, then any other name stored (sorted).
async fn export_field_names(store: &Store) -> Result<Vec<String>, ExportError> {
    let mut names: Vec<String> = match store.crawl().await? {
        Some(row) => serde_json::from_str::<crate::config::CrawlConfig>(&row.config)
            .map(|c| c.extract.fields.into_iter().map(|f| f.name).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    for n in store.field_names().await? {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    Ok(names)
}

fn write_json(out: &mut dyn Write, names: &[&str], cells: &[Cell]) -> std::io::Result<()> {
    let mut line = String::from("{");
    for (i, (name, cell)) in names.iter().zip(cells).enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&serde_json::to_string(name).map_err(std::io::Error::from)?);
        line.push(':');
        let v = match cell {
            Cell::Null => serde_json::Value::Null,
            Cell::Text(s) => serde_json::Value::from(s.as_str()),
            Cell::Int(n) => serde_json::Value::from(*n),
            Cell::Bool(b) => serde_json::Value::from(*b),
            Cell::List(items) => serde_json::Value::from(items.as_slice()),
            Cell::Json(json) => {
                line.push_str(json);
                continue;
            }
        };
        line.push_str(&v.to_string());
    }
    line.push_str("}\n");
    out.write_all(line.as_bytes())
}

/// One CSV cell: quoted when needed, formula-looking text neutralized.
pub fn csv_cell(cell: &str) -> String {
    let neutral = match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    };
    if neutral.contains([',', '"', '\n', '\r'])
        || neutral.starts_with(' ')
        || neutral.ends_with(' ')
    {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

fn write_csv(out: &mut dyn Write, cells: &[Cell]) -> std::io::Result<()> {
    let line: Vec<String> = cells
        .iter()
        .map(|c| match c {
            // Numbers and booleans are ours; only text can be hostile.
            Cell::Text(s) => csv_cell(s),
            Cell::List(_) | Cell::Json(_) => csv_cell(&c.text().unwrap_or_default()),
            other => other.text().unwrap_or_default(),
        })
        .collect();
    out.write_all(line.join(",").as_bytes())?;
    out.write_all(b"\r\n")
}

/// Text safe to put in Markdown prose: markup characters escaped, one line.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    // A leading `-`, `+` or `1.` would start a list (or a rule).
    let list_like = out.starts_with(['-', '+'])
        || out.split_once('.').is_some_and(|(n, rest)| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (rest.is_empty() || rest.starts_with(' '))
        });
    if list_like {
        out.insert(0, '\\');
    }
    out
}

/// The text of the cell under column `name` of a row, if any.
fn cell_text(names: &[&str], cells: &[Cell], name: &str) -> Option<String> {
    names
        .iter()
        .position(|n| *n == name)
        .and_then(|i| cells[i].text())
}

fn write_markdown(
    out: &mut dyn Write,
    what: What,
    names: &[&str],
    cells: &[Cell],
) -> std::io::Result<()> {
    let get = |name: &str| cell_text(names, cells, name);
    let url = get("url").unwrap_or_default();
    let mut s = String::new();
    match what {
        What::Summaries | What::Pages => {
            let title = get("title").filter(|t| !t.trim().is_empty());
            s.push_str(&format!(
                "## {}\n\n<{url}>\n\n",
                md(title.as_deref().unwrap_or(&url))
            ));
            if what == What::Summaries {
                s.push_str(&md(&get("summary").unwrap_or_default()));
                s.push_str(&format!(
                    "\n\n*{} {}, {}*\n\n",
                    md(&get("summarizer").unwrap_or_default()),
                    md(&get("model").unwrap_or_default()),
                    get("summarized_at").unwrap_or_default()
                ));
            } else {
                let status = get("status").unwrap_or_else(|| "not fetched".into());
                let mut facts = vec![
                    format!("status {status}"),
                    format!("state {}", get("state").unwrap_or_default()),
                ];
                if let Some(r) = get("reason") {
                    facts.push(format!("reason {}", md(&r)));
                }
                if let Some(t) = get("fetched_at") {
                    facts.push(format!("fetched {t}"));
                }
                s.push_str(&facts.join(" · "));
                s.push_str("\n\n");
                if let Some(d) = get("description") {
                    s.push_str(&format!("{}\n\n", md(&d)));
                }
                if let Some(m) = get("markdown").filter(|m| !m.trim().is_empty()) {
                    // The page's own headings go below its section's.
                    s.push_str(&demote_headings(m.trim(), 2));
                    s.push_str("\n\n");
                }
            }
        }
        What::Changes => unreachable!("written by write_change_markdown"),
        What::Links => {
            let anchor = get("anchor").filter(|a| !a.trim().is_empty());
            let to = get("to").unwrap_or_default();
            s.push_str(&format!(
                "- [{}](<{to}>) from <{}>{}\n",
                md(anchor.as_deref().unwrap_or(&to)),
                get("from").unwrap_or_default(),
                if get("nofollow").as_deref() == Some("true") {
                    " (nofollow)"
                } else {
                    ""
                }
            ));
        }
    }
    out.write_all(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralized() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell(" padded"), "\" padded\"");
    }

    #[test]
    fn markdown_lists_and_fences_are_escaped() {
        assert_eq!(md("~~~ code"), "\\~\\~\\~ code");
        assert_eq!(md("- item"), "\\- item");
        assert_eq!(md("1. first"), "\\1. first");
        assert_eq!(md("3.5% growth"), "3.5% growth");
    }

    #[test]
    fn host_filters_read_hosts_ports_and_origins() {
        use HostFilter::*;
        let cases: &[(&str, Option<HostFilter>)] = &[
            ("Docs.Example.com", Some(Host("docs.example.com".into()))),
            (
                "docs.example.com:8080",
                Some(HostPort("docs.example.com".into(), 8080)),
            ),
            (
                "docs.example.com:80",
                Some(HostPort("docs.example.com".into(), 80)),
            ),
            ("[::1]:8080", Some(HostPort("[::1]".into(), 8080))),
            ("[::1]", Some(Host("[::1]".into()))),
            ("bücher.example", Some(Host("xn--bcher-kva.example".into()))),
            (
                "http://a.example:8080",
                Some(Origin("http://a.example:8080".into())),
            ),
            (
                "https://a.example",
                Some(Origin("https://a.example:443".into())),
            ),
            (
                "HTTP://A.example:80/",
                Some(Origin("http://a.example:80".into())),
            ),
            ("https://a.example/docs", None),
            ("https://a.example/?q", None),
            ("ftp://a.example", None),
            ("a.example:http", None),
            ("a.example:99999", None),
            ("a.example/docs", None),
            ("*.example.com", None),
            ("", None),
        ];
        for (given, want) in cases {
            assert_eq!(HostFilter::parse(given).ok(), *want, "{given}");
        }
    }

    #[test]
    fn markdown_text_is_escaped() {
        assert_eq!(
            md("# not a *heading*\n[x](y)"),
            "\\# not a \\*heading\\* \\[x\\](y)"
        );
    }
}

/// Longest diff exported for one page; a longer one is cut at a line and
/// marked `diff_truncated`.
pub const MAX_DIFF_BYTES: usize = 64 << 10;

/// The columns of `--what changes`.
const CHANGE_COLUMNS: [&str; 15] = [
    "run",
    "url",
    "change",
    "previous_title",
    "title",
    "previous_content_hash",
    "content_hash",
    "previous_fetched_at",
    "fetched_at",
    "summary",
    "diff",
    "diff_truncated",
    "diff_bytes",
    "links_added",
    "links_gone",
];

/// A unified diff of two versions of a page's main text, by line, cut at
/// [`MAX_DIFF_BYTES`] (on a line boundary): the diff, whether it was cut,
/// and its whole length.
pub fn text_diff(previous: &str, current: &str) -> (String, bool, usize) {
    let diff = similar::TextDiff::from_lines(previous, current)
        .unified_diff()
        .context_radius(2)
        .header("previous", "current")
        .to_string();
    let whole = diff.len();
    if whole <= MAX_DIFF_BYTES {
        return (diff, false, whole);
    }
    let mut cut = MAX_DIFF_BYTES;
    while !diff.is_char_boundary(cut) {
        cut -= 1;
    }
    let end = diff[..cut].rfind('\n').map_or(cut, |i| i + 1);
    (diff[..end].to_string(), true, whole)
}

async fn export_changes(
    store: &Store,
    opts: &ExportOptions,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let runs = match (opts.run, opts.since) {
        (Some(run), _) => vec![run],
        (None, Some(since)) => store.runs_since(since).await?,
        (None, None) => store.latest_recrawl().await?.into_iter().collect(),
    };
    let names: Vec<&str> = CHANGE_COLUMNS.to_vec();
    match opts.format {
        Format::Csv => {
            let header: Vec<Cell> = names.iter().map(|n| Cell::Text(n.to_string())).collect();
            write_csv(out, &header)?;
        }
        Format::Markdown => {
            out.write_all(b"# What changed\n\n")?;
        }
        Format::Jsonl | Format::LlmsTxt | Format::LlmsFull => {}
    }
    let mut n = 0;
    for run in runs {
        let rows = store.changes(run, opts.include_unchanged).await?;
        if opts.format == Format::Markdown {
            let count = |c: &str| rows.iter().filter(|r| r.change == c).count();
            out.write_all(
                format!(
                    "Run {run}: {} changed, {} new, {} removed{}.\n\n",
                    count("changed"),
                    count("new"),
                    count("removed"),
                    if opts.include_unchanged {
                        format!(", {} unchanged", count("unchanged"))
                    } else {
                        String::new()
                    }
                )
                .as_bytes(),
            )?;
        }
        for r in rows {
            let (diff, cut, whole) = if r.change == "changed" {
                let (d, cut, whole) = text_diff(
                    r.previous_text.as_deref().unwrap_or(""),
                    r.text.as_deref().unwrap_or(""),
                );
                (Some(d), cut, whole)
            } else {
                (None, false, 0)
            };
            let cells = vec![
                Cell::Int(r.run_id),
                Cell::Text(r.url),
                Cell::Text(r.change),
                text(r.previous_title),
                text(r.title),
                text(r.previous_hash),
                text(r.content_hash),
                time(r.previous_fetched_at),
                time(r.fetched_at),
                text(r.summary),
                text(diff),
                Cell::Bool(cut),
                Cell::Int(whole as i64),
                Cell::List(r.links_added),
                Cell::List(r.links_gone),
            ];
            match opts.format {
                Format::Jsonl => write_json(out, &names, &cells)?,
                Format::Csv => write_csv(out, &cells)?,
                Format::Markdown => write_change_markdown(out, &names, &cells)?,
                Format::LlmsTxt | Format::LlmsFull => unreachable!("written by llms::export"),
            }
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

/// A section of the "what changed" digest: the page, what happened to
/// it, its summary, and for a changed page the diff of its text.
fn write_change_markdown(
    out: &mut dyn Write,
    names: &[&str],
    cells: &[Cell],
) -> std::io::Result<()> {
    let get = |name: &str| cell_text(names, cells, name);
    let url = get("url").unwrap_or_default();
    let change = get("change").unwrap_or_default();
    let title = get("title").filter(|t| !t.trim().is_empty());
    let mut s = format!(
        "## {}: {}\n\n<{url}>\n\n",
        change,
        md(title.as_deref().unwrap_or(&url))
    );
    let mut facts = Vec::new();
    if let Some(prev) = get("previous_title").filter(|p| Some(p) != title.as_ref()) {
        facts.push(format!("was titled {}", md(&prev)));
    }
    if let Some(t) = get("previous_fetched_at") {
        facts.push(format!("previous version fetched {t}"));
    }
    if let Some(t) = get("fetched_at") {
        facts.push(format!("fetched {t}"));
    }
    if !facts.is_empty() {
        s.push_str(&facts.join(" · "));
        s.push_str("\n\n");
    }
    if change != "removed"
        && let Some(summary) = get("summary")
    {
        s.push_str(&format!("{}\n\n", md(&summary)));
    }
    if let Some(diff) = get("diff") {
        // A fence longer than any run of backticks in the diff.
        let mut longest = 0;
        let mut run = 0;
        for c in diff.chars() {
            run = if c == '`' { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        let fence = "`".repeat(longest.max(2) + 1);
        s.push_str(&format!("{fence}diff\n{diff}"));
        if !diff.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&format!("{fence}\n\n"));
        if get("diff_truncated").as_deref() == Some("true") {
            s.push_str(&format!(
                "*The diff is cut at {} KiB of {} bytes.*\n\n",
                MAX_DIFF_BYTES >> 10,
                get("diff_bytes").unwrap_or_default()
            ));
        }
    }
    for (name, label) in [("links_added", "Links added"), ("links_gone", "Links gone")] {
        let Some(urls) = get(name).filter(|l| !l.is_empty()) else {
            continue;
        };
        s.push_str(&format!("{label}:\n\n"));
        for url in urls.split(' ') {
            s.push_str(&format!("- <{url}>\n"));
        }
        s.push('\n');
    }
    out.write_all(s.as_bytes())
}

#[cfg(test)]
mod diff_tests {
    use super::*;

    #[test]
    fn a_long_diff_is_cut_at_a_line_and_marked() {
        // Every line differs: 2,000 lines give a diff of ~200 KiB.
        let previous: String = (0..2_000)
            .map(|i| format!("line {i} of the page as it was, long enough to fill the diff\n"))
            .collect();
        let current: String = (0..2_000)
            .map(|i| format!("line {i} of the page as it is now, long enough to fill the diff\n"))
            .collect();
        let (diff, cut, whole) = text_diff(&previous, &current);
        assert!(cut);
        assert!(whole > MAX_DIFF_BYTES);
        assert!(diff.len() <= MAX_DIFF_BYTES && diff.ends_with('\n'));
        let (small, cut, _) = text_diff("a\nb\n", "a\nc\n");
        assert!(!cut);
        assert_eq!(
            small,
            "--- previous\n+++ current\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
        );
    }
}
