//! Markdown of each page's main content, and `export --format llms-txt` /
//! `llms-full`, through the binary, on crawls of loopback sites.
//!
//! The golden pages are shaped like real ones (a Sphinx page, an mdBook
//! chapter, a rustdoc item, a news article, a page with a table and
//! code); their expected Markdown is in `fixtures/markdown-golden/`,
//! compared byte for byte.

use std::collections::{BTreeMap, BTreeSet};

use crate::cli::{assert_usage_error, db_arg, quick_crawl, stderr, trawl_async};
use crate::export::{export, jsonl, s};
use crate::util::{self, TestDb};

/// The golden pages, by path.
const GOLDEN: [&str; 5] = [
    "/guide/sphinx.html",
    "/guide/table-code.html",
    "/book/mdbook.html",
    "/api/rustdoc.html",
    "/news/article.html",
];

/// The Markdown fixture site on 127.0.0.1 and the small `other` site on
/// localhost, crawled together with default settings and `--markdown`.
async fn crawled() -> (util::Server, util::Server, tempfile::TempDir, TestDb) {
    crawled_with(&["--markdown"]).await
}

async fn crawled_with(extra: &[&str]) -> (util::Server, util::Server, tempfile::TempDir, TestDb) {
    let (la, lb) = (util::listener().await, util::listener().await);
    let (pa, pb) = (
        la.local_addr().unwrap().port(),
        lb.local_addr().unwrap().port(),
    );
    let (a, b) = (
        util::serve_site(la, "markdown", pb),
        util::serve_site(lb, "other", pa),
    );
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path(), "t.db");
    let mut args = vec!["--allow-host", "localhost"];
    args.extend(extra);
    let o = trawl_async(quick_crawl(&a.url("/"), db.target(), &args)).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    (a, b, dir, db)
}

fn golden(path: &str, server: &util::Server) -> String {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/markdown-golden")
        .join(path.trim_start_matches('/').replace(".html", ".md"));
    std::fs::read_to_string(&file)
        .unwrap()
        .replace("{{SELF}}", &server.addr.port().to_string())
        .trim_end_matches('\n')
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_markdown_crawl_stores_the_markdown_of_real_shaped_pages() {
    let (a, _b, _dir, tdb) = crawled().await;
    let db = tdb.target().to_string();
    let rows = jsonl(&export(&db, &["--what", "pages", "--with-markdown"]).await);
    let by_url: BTreeMap<&str, &serde_json::Value> = rows
        .iter()
        .map(|r| (r["url"].as_str().unwrap(), r))
        .collect();
    for path in GOLDEN {
        let row = by_url[a.url(path).as_str()];
        assert_eq!(
            row["markdown"].as_str().unwrap(),
            golden(path, &a),
            "{path}"
        );
    }
    // Every HTML page has Markdown; an error page or a redirect has none.
    for r in &rows {
        let html = r["status"] == 200
            && r["content_type"]
                .as_str()
                .is_some_and(|c| c.starts_with("text/html"));
        assert_eq!(r["markdown"].is_string(), html, "{}", r["url"]);
    }
    // Without the flag there is no such field.
    let plain = jsonl(&export(&db, &["--what", "pages"]).await);
    assert!(plain.iter().all(|r| r.get("markdown").is_none()));

    // CSV: a column of its own, the same text.
    let csv_text = export(
        &db,
        &["--what", "pages", "--with-markdown", "--format", "csv"],
    )
    .await;
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let col = header.iter().position(|h| h == "markdown").unwrap();
    let url_col = header.iter().position(|h| h == "url").unwrap();
    let rust = a.url("/api/rustdoc.html");
    let rec = reader
        .records()
        .map(Result::unwrap)
        .find(|r| r[url_col] == rust)
        .unwrap();
    assert_eq!(&rec[col], golden("/api/rustdoc.html", &a));

    // The Markdown digest: each page's Markdown below its own heading.
    let digest = export(
        &db,
        &["--what", "pages", "--with-markdown", "--format", "markdown"],
    )
    .await;
    assert!(digest.contains("## Smoking the hive - The Beekeeping Book\n"));
    assert!(digest.contains("### Smoking the hive\n"));
    assert!(digest.contains("#### How much smoke\n"));
    assert!(digest.contains("```rust\n#[derive(Debug)]\n"));
}

/// Checks `doc` against the llms.txt format (llmstxt.org): an H1 title, a
/// blockquote, then `##`/`###` sections of `- [Title](url): notes` lines.
/// Returns the linked URLs in order.
fn validate_llms_txt(doc: &str) -> Vec<String> {
    let lines: Vec<&str> = doc.lines().collect();
    assert!(lines[0].starts_with("# ") && lines[0].len() > 2, "{doc}");
    assert_eq!(lines[1], "");
    assert!(lines[2].starts_with("> ") && lines[2].len() > 2, "{doc}");
    assert!(doc.ends_with('\n') && !doc.ends_with("\n\n"));
    let link = regex::Regex::new(r"^- \[((?:[^\]\\]|\\.)+)\]\(([^()\s]+)\)(: \S.*)?$").unwrap();
    let mut urls = Vec::new();
    let mut in_section = false;
    for line in &lines[3..] {
        if line.is_empty() {
            continue;
        }
        if line.starts_with("## ") || line.starts_with("### ") {
            in_section = true;
            continue;
        }
        if let Some(c) = link.captures(line) {
            assert!(in_section, "a link before any section: {line}");
            urls.push(c[2].to_string());
        } else {
            // Prose under a site's heading: not a list, not a heading.
            assert!(
                !line.starts_with('#') && !line.starts_with("- "),
                "not an llms.txt line: {line:?}"
            );
        }
    }
    urls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llms_txt_lists_every_indexable_html_page_once_by_site_and_path() {
    let (a, b, dir, tdb) = crawled().await;
    let db = tdb.target().to_string();
    // What should be listed: stored pages with a 2xx HTML answer; the
    // pages export leaves `noindex` pages out already.
    let pages = jsonl(&export(&db, &["--what", "pages"]).await);
    let indexable: BTreeSet<String> = pages
        .iter()
        .filter(|r| {
            r["status"] == 200
                && r["content_type"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("text/html"))
        })
        .map(|r| r["url"].as_str().unwrap().to_string())
        .collect();
    let other_x = format!("http://localhost:{}/x.html", b.addr.port());
    assert!(indexable.contains(&other_x), "{indexable:?}");
    let private = a.url("/private.html");
    assert!(!indexable.contains(&private));
    let all = jsonl(&export(&db, &["--what", "pages", "--include-noindex"]).await);
    assert!(
        all.iter().any(|r| r["url"] == private),
        "the noindex page is stored"
    );

    let doc = export(&db, &["--format", "llms-txt"]).await;
    let urls = validate_llms_txt(&doc);
    let listed: BTreeSet<String> = urls.iter().cloned().collect();
    assert_eq!(listed.len(), urls.len(), "each page once: {doc}");
    assert_eq!(listed, indexable, "{doc}");
    assert!(urls.iter().all(|u| u.starts_with("http://")), "{doc}");
    assert!(!doc.contains("private.html"), "{doc}");
    // Two sites: one document, a section per site and per path in it.
    let (ha, hb) = (
        format!("127.0.0.1:{}", a.addr.port()),
        format!("localhost:{}", b.addr.port()),
    );
    assert!(doc.starts_with(&format!("# {ha}, {hb}\n\n> ")), "{doc}");
    let at = |needle: &str| {
        doc.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {doc}"))
    };
    assert!(at(&format!("\n## {ha}\n")) < at("\n### /guide/\n"));
    assert!(at("\n### /guide/\n") < at(&format!("\n## {hb}\n")));
    assert!(doc.contains(&format!(
        "\n### /guide/\n\n- [Configuring a hive — Fieldnotes 2.1 documentation]({})",
        a.url("/guide/sphinx.html")
    )));
    // A link's notes are the page's summary (the default extractive one).
    let summaries = jsonl(&export(&db, &[]).await);
    let news = summaries
        .iter()
        .find(|r| r["url"] == a.url("/news/article.html"))
        .unwrap();
    let first_words: String = news["summary"]
        .as_str()
        .unwrap()
        .split(' ')
        .take(4)
        .collect::<Vec<_>>()
        .join(" ");
    let news_line = doc
        .lines()
        .find(|l| l.contains("/news/article.html)"))
        .unwrap();
    assert!(news_line.contains(&first_words), "{news_line}");

    // The same bytes every time.
    assert_eq!(doc, export(&db, &["--format", "llms-txt"]).await);
    let out = dir.path().join("llms.txt");
    export(
        &db,
        &["--format", "llms-txt", "--out", out.to_str().unwrap()],
    )
    .await;
    assert_eq!(std::fs::read_to_string(&out).unwrap(), doc);

    // --host: one site's llms.txt, titled and summarized by its home page.
    let one = export(&db, &["--format", "llms-txt", "--host", "127.0.0.1"]).await;
    let one_urls = validate_llms_txt(&one);
    assert!(one.starts_with("# Fieldnotes\n\n> "), "{one}");
    assert!(one_urls.iter().all(|u| u.starts_with(&a.url("/"))));
    assert_eq!(
        one_urls.len(),
        indexable
            .iter()
            .filter(|u| u.starts_with(&a.url("/")))
            .count()
    );
    assert!(
        one.contains("\n## /\n\n") && one.contains("\n## /book/\n\n"),
        "{one}"
    );
    let other = export(&db, &["--format", "llms-txt", "--host", "localhost"]).await;
    validate_llms_txt(&other);
    assert!(other.starts_with("# Other Host\n\n> "), "{other}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llms_full_has_every_listed_page_in_full() {
    let (a, b, _dir, tdb) = crawled().await;
    let db = tdb.target().to_string();
    let full = export(&db, &["--format", "llms-full", "--host", "127.0.0.1"]).await;
    assert!(full.starts_with("# Fieldnotes\n\n> "), "{full}");
    assert_eq!(
        full,
        export(&db, &["--format", "llms-full", "--host", "127.0.0.1"]).await
    );
    for path in GOLDEN {
        let url = a.url(path);
        assert!(full.contains(&format!("\nSource: <{url}>\n")), "{path}");
        // The page's Markdown, its headings two levels down.
        let body = trawl::export::demote_headings(&golden(path, &a), 2);
        assert!(full.contains(&body), "{path}");
    }
    assert!(full.contains("\n## Smoking the hive - The Beekeeping Book\n\nSource: <"));
    assert!(full.contains("\n### Smoking the hive\n"));
    let private = a.url("/private.html");
    assert!(!full.contains(&format!("Source: <{private}>")));
    // Two sites: a section per site, each page a level below.
    let both = export(&db, &["--format", "llms-full"]).await;
    assert!(both.contains(&format!("\n## localhost:{}\n", b.addr.port())));
    assert!(both.contains("\n### Other X\n\nSource: <"));
    assert!(both.contains("\n#### Smoking the hive\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_without_markdown_says_so_when_markdown_is_exported() {
    let (_a, _b, dir, tdb) = crawled_with(&[]).await;
    let db = tdb.target().to_string();
    let out = dir.path().join("full.md");
    for args in [
        vec!["--format", "llms-full", "--out", out.to_str().unwrap()],
        vec![
            "--what",
            "pages",
            "--with-markdown",
            "--out",
            out.to_str().unwrap(),
        ],
    ] {
        let mut all = s(&["export", "--db", &db]);
        all.extend(s(&args));
        let o = trawl_async(all).await;
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("have no Markdown: the crawl was made without --markdown"),
            "{}",
            stderr(&o)
        );
        assert!(!out.exists());
    }
    // llms.txt needs no Markdown; neither do the other exports.
    validate_llms_txt(&export(&db, &["--format", "llms-txt"]).await);
    let pages = jsonl(&export(&db, &["--what", "pages", "--with-text"]).await);
    assert!(pages.iter().any(|r| r["text"].is_string()));
}

#[tokio::test]
async fn llms_and_markdown_options_are_checked_before_reading() {
    // SQLite file behaviour: nothing is created.
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(dir.path());
    for (args, why) in [
        (
            vec!["--format", "llms-txt", "--what", "pages"],
            "--what does not go with --format llms-txt",
        ),
        (
            vec!["--format", "llms-full", "--include-noindex"],
            "--include-noindex does not go with --format llms-full",
        ),
        (
            vec!["--what", "links", "--with-markdown"],
            "--with-markdown goes with --what pages",
        ),
    ] {
        let mut all = s(&["export", "--db", &db]);
        all.extend(s(&args));
        let o = trawl_async(all).await;
        assert_usage_error(&o, why);
    }
    assert!(!std::path::Path::new(&db).exists());
}
