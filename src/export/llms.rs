//! `export --format llms-txt` and `llms-full`: a crawl as the `llms.txt`
//! of its site (<https://llmstxt.org>), and the same with each page's
//! Markdown in full.
//!
//! In: the store's listed pages ([`Store::listed_pages`]: stored, 2xx,
//! HTML, not `noindex`), by origin, section and URL, and each site's home
//! page. Out: one Markdown document:
//!
//! ```text
//! # <the home page's title, else the host>
//!
//! > <the home page's summary, else its description>
//!
//! ## /docs/
//!
//! - [<title>](<absolute URL>): <summary, else description>
//! ```
//!
//! A crawl of several sites is one document with a `##` section per site
//! and a `###` section per path within it. `llms-full` has the same head,
//! then each page under a heading of its own, its Markdown's headings
//! moved down below it. Pages come in the store's order, so the output is
//! the same bytes every time.

use std::io::Write;

use futures_util::TryStreamExt;

use super::{ExportError, HostFilter, md};
use crate::store::{Home, ListedOrigin, ListedPage, Store};

/// Writes the `llms.txt` (`full`: `llms-full.txt`) of the listed pages of
/// the origins `host` keeps (all when `None`); returns the pages written.
///
/// Errors: [`ExportError::NoMarkdown`] for `full` when a page to write has
/// no Markdown (a crawl without `--markdown`, or by a trawl before schema
/// v13), before anything is written; store and I/O errors.
pub async fn export(
    store: &Store,
    host: Option<&HostFilter>,
    full: bool,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let origins: Vec<_> = listed_origins(store, host).await?;
    if full {
        check(&origins)?;
    }
    let several = origins.len() > 1;
    let mut homes = Vec::with_capacity(origins.len());
    for o in &origins {
        homes.push(home(store, &o.origin).await?);
    }
    let total: i64 = origins.iter().map(|o| o.pages).sum();
    let mut head = String::new();
    match homes.as_slice() {
        [] => head.push_str("# No pages\n\n> The crawl stored no page to list.\n"),
        [(name, home)] if !several => {
            let title = home.title.as_deref().unwrap_or(name);
            head.push_str(&format!("# {}\n\n", one_line(title)));
            let about = home
                .summary
                .as_deref()
                .or(home.description.as_deref())
                .map(one_line)
                .unwrap_or_else(|| format!("{total} pages of {name}."));
            head.push_str(&format!("> {about}\n"));
        }
        _ => {
            let names: Vec<&str> = homes.iter().map(|(n, _)| n.as_str()).collect();
            head.push_str(&format!("# {}\n\n", md(&names.join(", "))));
            head.push_str(&format!("> {total} pages of {} sites.\n", names.len()));
        }
    }
    out.write_all(head.as_bytes())?;

    let mut pages = store.listed_pages(full);
    let mut origin: Option<String> = None;
    let mut section: Option<String> = None;
    let mut n = 0u64;
    let mut homes = homes.into_iter();
    while let Some(p) = pages.try_next().await? {
        if host.is_some_and(|h| !h.matches(&p.origin)) {
            continue;
        }
        let mut s = String::new();
        let level = if several { 3 } else { 2 };
        if origin.as_deref() != Some(&p.origin) {
            if several && let Some((name, home)) = homes.next() {
                s.push_str(&format!("\n## {}\n", md(&name)));
                let about = home.summary.as_deref().or(home.description.as_deref());
                match (home.title.as_deref(), about) {
                    (Some(t), Some(a)) => s.push_str(&format!("\n{}: {}\n", md(t), md(a))),
                    (Some(t), None) => s.push_str(&format!("\n{}\n", md(t))),
                    (None, Some(a)) => s.push_str(&format!("\n{}\n", md(a))),
                    (None, None) => {}
                }
            }
            origin = Some(p.origin.clone());
            section = None;
        }
        if full {
            s.push_str(&page_in_full(&p, level));
        } else {
            if section.as_deref() != Some(&p.section) {
                s.push_str(&format!("\n{} {}\n\n", "#".repeat(level), md(&p.section)));
                section = Some(p.section.clone());
            }
            s.push_str(&link_line(&p));
        }
        out.write_all(s.as_bytes())?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

/// The origins with listed pages that `host` keeps.
async fn listed_origins(
    store: &Store,
    host: Option<&HostFilter>,
) -> Result<Vec<ListedOrigin>, ExportError> {
    Ok(store
        .listed_origins()
        .await?
        .into_iter()
        .filter(|o| host.is_none_or(|h| h.matches(&o.origin)))
        .collect())
}

/// [`ExportError::NoMarkdown`] when a listed page has no Markdown.
fn check(origins: &[ListedOrigin]) -> Result<(), ExportError> {
    let bare: i64 = origins.iter().map(|o| o.without_markdown).sum();
    if bare > 0 {
        return Err(ExportError::NoMarkdown {
            pages: bare,
            of: origins.iter().map(|o| o.pages).sum(),
        });
    }
    Ok(())
}

/// Refuses to export Markdown the crawl did not keep: an HTML page that
/// is listed (stored, 2xx, not `noindex`) of the origins `host` keeps and
/// has no Markdown is [`ExportError::NoMarkdown`].
pub async fn check_markdown(store: &Store, host: Option<&HostFilter>) -> Result<(), ExportError> {
    check(&listed_origins(store, host).await?)
}

/// A site's name (its host, with the port when it is not the scheme's
/// default) and what its home page (`/`) says.
async fn home(store: &Store, origin: &str) -> Result<(String, Home), ExportError> {
    let Ok(mut url) = url::Url::parse(origin) else {
        return Ok((origin.to_string(), Home::default()));
    };
    url.set_path("/");
    let name = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => origin.to_string(),
    };
    let id = crate::canon::fingerprint(&url) as i64;
    Ok((name, store.home(id).await?.unwrap_or_default()))
}

/// `- [Title](url): notes`, the link line of llms.txt.
fn link_line(p: &ListedPage) -> String {
    let mut s = format!("- [{}]({})", link_text(p), link_url(&p.url));
    if let Some(notes) = p.summary.as_deref().or(p.description.as_deref()) {
        let notes = md(notes.trim());
        if !notes.is_empty() {
            s.push_str(": ");
            s.push_str(&notes);
        }
    }
    s.push('\n');
    s
}

/// A page's heading, its URL and its Markdown with headings moved below
/// the page's own (`level`).
fn page_in_full(p: &ListedPage, level: usize) -> String {
    let mut s = format!(
        "\n{} {}\n\nSource: <{}>\n",
        "#".repeat(level),
        md(&title(p)),
        p.url
    );
    let body = p.markdown.as_deref().unwrap_or("").trim();
    if !body.is_empty() {
        s.push('\n');
        s.push_str(&demote_headings(body, level));
        s.push('\n');
    }
    s
}

/// The page's title, else its URL's path.
fn title(p: &ListedPage) -> String {
    p.title
        .as_deref()
        .map(one_line)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            url::Url::parse(&p.url)
                .map(|u| u.path().to_string())
                .unwrap_or_else(|_| p.url.clone())
        })
}

/// A link's text: the title on one line, brackets and backslashes
/// escaped.
fn link_text(p: &ListedPage) -> String {
    let mut s = String::new();
    for c in title(p).chars() {
        if matches!(c, '[' | ']' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// A URL as a link destination: parentheses, which would end it for
/// simple readers of llms.txt, percent-encoded (the URL is the same
/// resource; stored URLs have no spaces or angle brackets).
fn link_url(url: &str) -> String {
    url.replace('(', "%28").replace(')', "%29")
}

/// Whitespace collapsed to single spaces.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Moves every ATX heading of `markdown` that starts a line `by` levels
/// down (at most to `######`), outside fenced code blocks: a page's
/// Markdown set below a heading of level `by`.
pub fn demote_headings(markdown: &str, by: usize) -> String {
    let mut out = String::with_capacity(markdown.len() + 64);
    let mut fence: Option<(u8, usize)> = None;
    for line in markdown.split('\n') {
        let t = line.trim_start_matches(' ');
        let run = |c: u8| t.bytes().take_while(|&b| b == c).count();
        match fence {
            Some((c, len)) => {
                if run(c) >= len && t.bytes().skip(len).all(|b| b == c || b == b' ') {
                    fence = None;
                }
                out.push_str(line);
            }
            None => {
                let (ticks, tildes) = (run(b'`'), run(b'~'));
                let hashes = run(b'#');
                if ticks >= 3 {
                    fence = Some((b'`', ticks));
                    out.push_str(line);
                } else if tildes >= 3 {
                    fence = Some((b'~', tildes));
                    out.push_str(line);
                } else if line.starts_with('#')
                    && (1..=6).contains(&hashes)
                    && matches!(line.as_bytes().get(hashes), None | Some(b' '))
                {
                    out.push_str(&"#".repeat((hashes + by).min(6)));
                    out.push_str(&line[hashes..]);
                } else {
                    out.push_str(line);
                }
            }
        }
        out.push('\n');
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_move_down_outside_code() {
        let md =
            "# Title\n\ntext\n\n```rust\n# not a heading\n```\n\n## Sub\n###### Deep\n#hashtag";
        assert_eq!(
            demote_headings(md, 2),
            "### Title\n\ntext\n\n```rust\n# not a heading\n```\n\n#### Sub\n###### Deep\n#hashtag"
        );
    }

    #[test]
    fn link_lines_escape_titles_and_parentheses() {
        let p = ListedPage {
            origin: "http://a.test:80".into(),
            url: "http://a.test/wiki/Rust_(language)".into(),
            section: "/wiki/".into(),
            title: Some("Rust [the\nlanguage]".into()),
            description: Some("A *systems* language.".into()),
            summary: None,
            markdown: None,
        };
        assert_eq!(
            link_line(&p),
            "- [Rust \\[the language\\]](http://a.test/wiki/Rust_%28language%29): A \\*systems\\* language.\n"
        );
    }
}
