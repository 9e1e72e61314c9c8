//! Export formats, filters and `status --json`, through the binary, on
//! crawls of loopback sites.

use std::collections::BTreeSet;

use crate::cli::{quick_crawl, stderr, trawl_async};
use crate::util::{self, TestDb};

pub fn s(list: &[&str]) -> Vec<String> {
    list.iter().map(|x| x.to_string()).collect()
}

/// `trawl export --db DB EXTRA…`, which must succeed: its output.
pub async fn export(db: &str, extra: &[&str]) -> String {
    let mut args = s(&["export", "--db", db]);
    args.extend(s(extra));
    let o = trawl_async(args).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

pub fn jsonl(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn csv_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// The two-host fixture crawled with both hosts in scope.
async fn crawled() -> (util::Server, util::Server, tempfile::TempDir, TestDb) {
    let (a, b) = util::two_hosts().await;
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path(), "t.db");
    let o = trawl_async(quick_crawl(
        &a.url("/"),
        db.target(),
        &["--allow-host", "localhost"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    (a, b, dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_parses_back_with_the_same_rows_and_is_stable() {
    let (a, b, _dir, db) = crawled().await;
    let db = db.target();
    for what in ["summaries", "pages", "links"] {
        let j = jsonl(&export(db, &["--what", what]).await);
        assert!(!j.is_empty(), "{what}");
        let csv_text = export(db, &["--what", what, "--format", "csv"]).await;
        let (header, rows) = csv_rows(&csv_text);
        assert_eq!(rows.len(), j.len(), "{what}");
        // Same columns, same values, in the same order.
        let keys: Vec<String> = j[0].as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            header.iter().cloned().collect::<BTreeSet<_>>(),
            keys.into_iter().collect::<BTreeSet<_>>(),
            "{what}"
        );
        for (row, obj) in rows.iter().zip(&j) {
            for (col, cell) in header.iter().zip(row) {
                let v = &obj[col];
                let want = match v {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(x) => x.clone(),
                    other => other.to_string(),
                };
                // Neutralized formula cells carry a leading quote.
                assert!(
                    *cell == want || *cell == format!("'{want}"),
                    "{what}.{col}: {cell:?} vs {want:?}"
                );
            }
        }
        assert!(csv_text.contains("\r\n"));
        // Twice: the same bytes, in every format.
        for format in ["jsonl", "csv", "markdown"] {
            let once = export(db, &["--what", what, "--format", format]).await;
            let twice = export(db, &["--what", what, "--format", format]).await;
            assert_eq!(once, twice, "{what} {format}");
        }
    }

    // Summaries carry the documented fields.
    let rows = jsonl(&export(db, &[]).await);
    let home = rows.iter().find(|r| r["url"] == a.url("/")).unwrap();
    for field in [
        "url",
        "title",
        "summary",
        "summarizer",
        "model",
        "fetched_at",
        "summarized_at",
    ] {
        assert!(!home[field].is_null(), "{field}");
    }
    assert_eq!(home["title"], "Fixture Home");
    assert_eq!(home["summarizer"], "extractive");

    // Markdown: a section per page with its title, URL and summary.
    let md = export(db, &["--format", "markdown"]).await;
    assert_eq!(md.matches("\n## ").count() + 1, rows.len());
    assert!(md.contains(&format!("## Fixture Home\n\n<{}>\n\n", a.url("/"))));
    assert!(md.contains(home["summary"].as_str().unwrap().split(' ').next().unwrap()));

    // Filters.
    let pb = b.addr.port();
    let other = jsonl(&export(db, &["--what", "pages", "--host", "localhost"]).await);
    assert!(!other.is_empty());
    assert!(other.iter().all(|r| {
        r["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://localhost:{pb}/"))
    }));
    let missing = jsonl(&export(db, &["--what", "pages", "--status", "404"]).await);
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["reason"], "http_404");
    assert!(
        export(db, &["--what", "pages", "--since", "2999-01-01"])
            .await
            .is_empty()
    );
    let recent = jsonl(&export(db, &["--what", "pages", "--since", "1h"]).await);
    assert_eq!(
        recent.len(),
        jsonl(&export(db, &["--what", "pages"]).await).len()
    );
    let all = jsonl(&export(db, &["--what", "pages", "--include-skipped"]).await);
    let skipped: Vec<&serde_json::Value> = all.iter().filter(|r| r["state"] == "skipped").collect();
    assert!(!skipped.is_empty());
    assert!(
        skipped
            .iter()
            .all(|r| r["status"].is_null() && !r["reason"].is_null())
    );

    // Bad filters are usage errors.
    for bad in [
        &["--since", "yesterday"][..],
        &["--what", "links", "--include-skipped"],
    ] {
        let mut args = s(&["export", "--db", db]);
        args.extend(s(bad));
        let o = trawl_async(args).await;
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_neutralizes_formulas_and_quotes_what_needs_it() {
    let titles = [
        "=HYPERLINK(\"http://evil.invalid\",\"click\")",
        "+1+1",
        "-2",
        "@SUM(A1:A9)",
        "Commas, \"quotes\" and more",
    ];
    let l = util::listener().await;
    let addr = l.local_addr().unwrap();
    let pages: Vec<String> = titles
        .iter()
        .map(|t| {
            let esc = t.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;");
            format!("<html><head><title>{esc}</title></head><body><p>Some text here for a summary.</p></body></html>")
        })
        .collect();
    let links: String = (0..titles.len())
        .map(|i| format!("<a href=/t/{i}>t</a>"))
        .collect();
    let home = format!("<html><body>{links}</body></html>");
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (pages, home) = (pages.clone(), home.clone());
        async move {
            let path = req.uri().path().to_string();
            let body = match path
                .strip_prefix("/t/")
                .and_then(|i| i.parse::<usize>().ok())
            {
                Some(i) => pages[i].clone(),
                None => home,
            };
            ([(axum::http::header::CONTENT_TYPE, "text/html")], body)
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path(), "t.db");
    let seed = format!("http://127.0.0.1:{}/", addr.port());
    let o = trawl_async(quick_crawl(&seed, db.target(), &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = export(db.target(), &["--what", "pages", "--format", "csv"]).await;
    let (header, rows) = csv_rows(&text);
    let col = header.iter().position(|h| h == "title").unwrap();
    let got: BTreeSet<String> = rows
        .iter()
        .map(|r| r[col].clone())
        .filter(|t| !t.is_empty())
        .collect();
    let want: BTreeSet<String> = [
        "'=HYPERLINK(\"http://evil.invalid\",\"click\")",
        "'+1+1",
        "'-2",
        "'@SUM(A1:A9)",
        "Commas, \"quotes\" and more",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    assert_eq!(got, want);
    // No cell of the raw file starts with a formula character.
    for line in text.lines().skip(1) {
        for cell in line.split(',') {
            let c = cell.trim_start_matches('"');
            assert!(!c.starts_with(['=', '+', '@']), "{line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_export_leaves_no_file_and_status_json_has_the_documented_keys() {
    let (a, _b, dir, tdb) = crawled().await;
    let db = tdb.target();
    // The target directory does not exist: a usage error, found before
    // anything is opened or written.
    let out = dir.path().join("no/such/dir/out.jsonl");
    let o = trawl_async(s(&[
        "export",
        "--db",
        db,
        "--out",
        &out.display().to_string(),
    ]))
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no/such/dir does not exist"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    // A file already there is replaced whole, and no temporary is left.
    let out = dir.path().join("s.jsonl");
    std::fs::write(&out, "old").unwrap();
    let o = trawl_async(s(&[
        "export",
        "--db",
        db,
        "--out",
        &out.display().to_string(),
    ]))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        export(db, &[]).await
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp") || n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The database itself (or its WAL, or a link to it) is never written
    // over: refused before anything is written, the crawl intact.
    if !tdb.is_postgres() {
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(db, &link).unwrap();
        let wal = format!("{db}-wal");
        let made_wal = !std::path::Path::new(&wal).exists();
        if made_wal {
            std::fs::write(&wal, "").unwrap();
        }
        for (out, says) in [
            (db.to_string(), "is the database;"),
            (link.display().to_string(), "is the database;"),
            (wal.clone(), "is the database's -wal file"),
        ] {
            let o = trawl_async(s(&["export", "--db", db, "--out", &out])).await;
            assert_eq!(o.status.code(), Some(2), "{out}: {}", stderr(&o));
            assert!(stderr(&o).contains(says), "{out}: {}", stderr(&o));
        }
        if made_wal {
            std::fs::remove_file(&wal).unwrap();
        }
    }

    let o = trawl_async(s(&["status", "--db", db, "--json"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let pages = jsonl(&export(db, &["--what", "pages"]).await);
    assert_eq!(st["pages_stored"], pages.len() as u64);
    assert_eq!(st["queued"], 0);
    assert_eq!(st["failed"], 2);
    assert_eq!(st["failed_by_reason"]["http_404"], 1);
    assert_eq!(st["failed_by_reason"]["redirect_loop"], 1);
    assert_eq!(st["skipped"]["out_of_scope"], 2, "{}", st["skipped"]);
    assert_eq!(st["summaries_failed"], 0);
    assert_eq!(st["summaries_pending"], 0);
    let summaries = jsonl(&export(db, &[]).await);
    let contents: BTreeSet<&str> = pages
        .iter()
        .filter(|p| p["status"] == 200 && summaries.iter().any(|s| s["url"] == p["url"]))
        .map(|p| p["content_hash"].as_str().unwrap())
        .collect();
    assert_eq!(st["summaries_done"], contents.len() as u64);
    assert_eq!(st["crawl"]["state"], "finished");
    assert_eq!(st["crawl"]["seeds"][0], a.url("/"));
    assert_eq!(st["http_status"]["404"], 1);
    assert!(st["top_hosts"][0]["pages"].as_i64().unwrap() > 1);
    assert!(st["last_run"]["pages"].as_i64().unwrap() >= pages.len() as i64 - 1);
    assert!(st["sitemaps"].is_object());

    // The text form says the same.
    let o = trawl_async(s(&["status", "--db", db])).await;
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("HTTP status:") && text.contains("top hosts:"),
        "{text}"
    );
    assert!(text.contains(&format!("seeds: {}", a.url("/"))), "{text}");
}
