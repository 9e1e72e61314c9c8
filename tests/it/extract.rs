//! Structured extraction: `--extract` during a crawl, `--keep-html`,
//! `trawl extract` on a stored crawl, the fields in JSON Lines and CSV
//! exports, and `resume` / `recrawl` extracting with the stored fields.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::cli::{assert_usage_error, db_arg, quick_crawl, stderr, trawl_async};
use crate::util::{self, TestDb};

/// The fields of the product-like fixture: text, attributes, lists, and
/// one that matches nothing anywhere.
const FIELDS: [&str; 5] = [
    "price=.product .price",
    "author=meta[name=author]@content",
    "sku=.product@data-sku",
    "name=.product .name",
    "missing=.no-such-class",
];

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

/// `--extract F` for each field.
fn extract_flags(fields: &[&str]) -> Vec<String> {
    fields
        .iter()
        .flat_map(|f| ["--extract".to_string(), f.to_string()])
        .collect()
}

async fn crawl(seed: &str, db: &str, extra: &[String]) {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let o = trawl_async(quick_crawl(seed, db, &extra)).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

async fn run_ok(list: Vec<String>) -> String {
    let o = trawl_async(list).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    String::from_utf8(o.stdout).unwrap() + &err
}

async fn export(db: &str, extra: &[&str]) -> String {
    let mut a = args(&["export", "--db", db, "--what", "pages"]);
    a.extend(args(extra));
    let o = trawl_async(a).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// Each exported page's `extracted` object, by path.
async fn extracted(server: &util::Server, db: &str) -> BTreeMap<String, Value> {
    export(db, &[])
        .await
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|row| {
            let path = row["url"].as_str().unwrap().replace(&server.url(""), "");
            (path, row["extracted"].clone())
        })
        .collect()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&db.sql().await)
        .await
        .unwrap()
}

async fn shop() -> util::Server {
    util::serve_site(util::listener().await, "shop", 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_with_fields_exports_them_as_json_lines_and_csv() {
    let server = shop().await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target();
    crawl(&server.url("/"), db, &extract_flags(&FIELDS)).await;

    let got = extracted(&server, db).await;
    let all_null =
        json!({"price": null, "author": null, "sku": null, "name": null, "missing": null});
    let want: BTreeMap<String, Value> = [
        (
            "/",
            json!({"price": null, "author": ["Ada Lovelace"], "sku": null, "name": null, "missing": null}),
        ),
        (
            "/p/kettle.html",
            json!({
                "price": ["9.99", "12.50"],
                "author": ["Grace Hopper"],
                "sku": ["K-1", "K-2"],
                "name": ["Kettle, steel", "Kettle, copper"],
                "missing": null,
            }),
        ),
        (
            "/p/teapot.html",
            json!({"price": ["24.00"], "author": null, "sku": ["T-1"], "name": ["Teapot, “Brown Betty”"], "missing": null}),
        ),
        (
            "/p/cups.html",
            json!({"price": null, "author": ["Ada Lovelace"], "sku": null, "name": null, "missing": null}),
        ),
        // Not HTML: no field applies.
        ("/notes.txt", all_null),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want);
    // The object's keys come in the order the fields were given.
    let lines = export(db, &[]).await;
    let kettle = lines.lines().find(|l| l.contains("kettle.html")).unwrap();
    assert!(
        kettle.contains(
            r#""extracted":{"price":["9.99","12.50"],"author":["Grace Hopper"],"sku":["K-1","K-2"],"name":["Kettle, steel","Kettle, copper"],"missing":null}"#
        ),
        "{kettle}"
    );

    // Each HTML page's body is kept (compressed); the fields that matched
    // are rows.
    assert_eq!(count(&tdb, "SELECT COUNT(*) FROM page_html").await, 4);
    assert_eq!(count(&tdb, "SELECT COUNT(*) FROM extracted").await, 9);

    // CSV: a column per field after fetched_at, in the order given, each
    // cell the JSON array of the values (empty for null); it parses back
    // to what JSON Lines says.
    let text = export(db, &["--format", "csv"]).await;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let at = header.iter().position(|h| h == "fetched_at").unwrap() + 1;
    assert_eq!(
        header[at..at + 5],
        [
            "extracted.price",
            "extracted.author",
            "extracted.sku",
            "extracted.name",
            "extracted.missing"
        ]
    );
    let url_col = header.iter().position(|h| h == "url").unwrap();
    let mut rows = 0;
    for rec in reader.records() {
        let rec = rec.unwrap();
        let path = rec[url_col].replace(&server.url(""), "");
        for (i, name) in ["price", "author", "sku", "name", "missing"]
            .iter()
            .enumerate()
        {
            let cell = &rec[at + i];
            let value: Value = if cell.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(cell).unwrap()
            };
            assert_eq!(value, want[&path][name], "{path} {name}");
        }
        rows += 1;
    }
    assert_eq!(rows, want.len());

    // --with-text still comes last.
    let row: Value =
        serde_json::from_str(export(db, &["--with-text"]).await.lines().next().unwrap()).unwrap();
    let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
    assert!(keys.contains(&&"extracted".to_string()) && keys.contains(&&"text".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_crawl_keeps_no_html_and_trawl_extract_says_how_to_keep_it() {
    let server = shop().await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target();
    crawl(&server.url("/"), db, &[]).await;
    assert_eq!(count(&tdb, "SELECT COUNT(*) FROM page_html").await, 0);
    let rows = export(db, &[]).await;
    assert!(
        !rows.is_empty() && !rows.contains("\"extracted\""),
        "{rows}"
    );

    let o = trawl_async(args(&["extract", "--db", db, "--extract", "price=.price"])).await;
    assert_usage_error(&o, "kept no HTML");
    assert!(stderr(&o).contains("--keep-html"), "{}", stderr(&o));
    assert_eq!(count(&tdb, "SELECT COUNT(*) FROM extracted").await, 0);
}

#[tokio::test]
async fn bad_fields_are_usage_errors_before_anything_is_created() {
    // SQLite file behaviour: nothing is created.
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(dir.path());
    let cases: &[(&[&str], &str)] = &[
        (&["price=..price"], "is not a CSS selector"),
        (&["price=div["], "is not a CSS selector"),
        (&[".price"], "expected NAME=SELECTOR"),
        (&["1st=.price"], "the name `1st`"),
        (&["price="], "no selector"),
        (&["a=p", "a=h1"], "`a` is given twice"),
    ];
    for (fields, why) in cases {
        // The port is never asked: the command stops before it starts.
        let mut a = quick_crawl("http://127.0.0.1:9/", &db, &[]);
        a.extend(extract_flags(fields));
        let o = trawl_async(a).await;
        assert_usage_error(&o, why);
        if fields.len() == 1 {
            assert!(
                stderr(&o).contains(&format!("{:?}", fields[0])),
                "{}",
                stderr(&o)
            );
        }
        assert!(!std::path::Path::new(&db).exists(), "{fields:?}");

        // `trawl extract` checks its fields before it looks at the
        // database (which does not exist here).
        let mut a = args(&["extract", "--db", &db]);
        a.extend(extract_flags(fields));
        let o = trawl_async(a).await;
        assert_usage_error(&o, why);
        assert!(!std::path::Path::new(&db).exists(), "{fields:?}");
    }
    // In a config file, the same check.
    let config = dir.path().join("t.toml");
    std::fs::write(&config, "extract = [\"price=..x\"]\n").unwrap();
    let mut a = quick_crawl("http://127.0.0.1:9/", &db, &[]);
    a.extend(args(&["--config", config.to_str().unwrap()]));
    assert_usage_error(&trawl_async(a).await, "is not a CSS selector");
    assert!(!std::path::Path::new(&db).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trawl_extract_on_kept_html_gives_what_the_crawl_extracted() {
    let server = shop().await;
    let dir = tempfile::tempdir().unwrap();
    let during_db = TestDb::new(dir.path(), "during.db");
    let later_db = TestDb::new(dir.path(), "later.db");
    let (during, later) = (during_db.target(), later_db.target());
    crawl(&server.url("/"), during, &extract_flags(&FIELDS)).await;
    crawl(&server.url("/"), later, &args(&["--keep-html"])).await;
    assert_eq!(count(&later_db, "SELECT COUNT(*) FROM extracted").await, 0);

    let mut a = args(&["extract", "--db", later]);
    a.extend(extract_flags(&FIELDS));
    let said = run_ok(a.clone()).await;
    assert!(
        said.contains("extracted price, author, sku, name, missing from 4 pages (4 with a match)"),
        "{said}"
    );
    let want = extracted(&server, during).await;
    assert_eq!(extracted(&server, later).await, want);
    let csv_later = export(later, &["--format", "csv"]).await;
    let fields_of = |csv_text: &str| -> Vec<Vec<String>> {
        let mut r = csv::Reader::from_reader(csv_text.as_bytes());
        let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        let cols: Vec<usize> = (0..h.len())
            .filter(|&i| h[i] == "url" || h[i].starts_with("extracted."))
            .collect();
        r.records()
            .map(|rec| {
                let rec = rec.unwrap();
                cols.iter().map(|&i| rec[i].to_string()).collect()
            })
            .collect()
    };
    assert_eq!(
        fields_of(&csv_later),
        fields_of(&export(during, &["--format", "csv"]).await)
    );

    // Again: the same rows, the same export.
    run_ok(a).await;
    assert_eq!(export(later, &["--format", "csv"]).await, csv_later);

    // New selectors for a name replace its values and keep its place; the
    // other fields stay, and the crawl's settings carry the new one.
    run_ok(args(&["extract", "--db", later, "--extract", "price=h1"])).await;
    let now = extracted(&server, later).await;
    assert_eq!(now["/p/kettle.html"]["price"], json!(["Kettle"]));
    assert_eq!(now["/p/cups.html"]["price"], json!(["Cups"]));
    assert_eq!(now["/p/kettle.html"]["sku"], want["/p/kettle.html"]["sku"]);
    let status: Value =
        serde_json::from_str(&run_ok(args(&["status", "--db", later, "--json"])).await).unwrap();
    let fields = &status["crawl"]["settings"]["extract"]["fields"];
    assert_eq!(
        fields[0],
        json!({"name": "price", "selector": "h1", "attr": null})
    );
    assert_eq!(fields.as_array().unwrap().len(), 5);
    let text = run_ok(args(&["status", "--db", later])).await;
    assert!(
        text.contains("  extraction: HTML kept; fields: price=h1 author=meta[name=author]@content sku=.product@data-sku"),
        "{text}"
    );

    // A page whose body was not kept is counted, and left as it was.
    sqlx::query(
        "DELETE FROM page_html WHERE url_id = (SELECT id FROM urls WHERE url LIKE '%/cups.html')",
    )
    .execute(&later_db.sql().await)
    .await
    .unwrap();
    let said = run_ok(args(&[
        "extract",
        "--db",
        later,
        "--extract",
        "price=.price",
    ]))
    .await;
    assert!(said.contains("from 3 pages"), "{said}");
    assert!(
        said.contains("1 HTML pages have no kept body and were left as they were"),
        "{said}"
    );
    let now = extracted(&server, later).await;
    assert_eq!(now["/p/cups.html"]["price"], json!(["Cups"]));
    assert_eq!(
        now["/p/kettle.html"]["price"],
        json!(["9.99", "12.50", "0.01"])
    );

    // Beside a process that holds the database for writing (a crawl), it
    // refuses and says why.
    let writer = trawl::store::Store::open(later).await.unwrap();
    let o = trawl_async(args(&["extract", "--db", later, "--extract", "x=p"])).await;
    assert_usage_error(&o, "is in use by another trawl process");
    writer.close().await;
}

/// A site whose pages the test edits between runs: `/` links to `/a`,
/// `/b` and `/c`, each with a price.
struct Priced {
    server: String,
    pages: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Priced {
    async fn start() -> Priced {
        let l = util::listener().await;
        let server = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
        let pages: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
        let p = pages.clone();
        let app = Router::new().fallback(move |req: axum::extract::Request| {
            let pages = p.clone();
            async move {
                match pages.lock().unwrap().get(req.uri().path()) {
                    Some(body) => util::html(body.clone()),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }
        });
        tokio::spawn(async move { axum::serve(l, app).await });
        let site = Priced { server, pages };
        site.set(
            "/",
            "<a href=\"/a\">a</a> <a href=\"/b\">b</a> <a href=\"/c\">c</a>",
        );
        for (path, price) in [("/a", "1.00"), ("/b", "2.00"), ("/c", "3.00")] {
            site.set(path, &format!("<span class=\"price\">{price}</span>"));
        }
        site
    }

    fn set(&self, path: &str, body: &str) {
        let html = format!("<html><head><title>{path}</title></head><body>{body}</body></html>");
        self.pages.lock().unwrap().insert(path.into(), html);
    }

    async fn prices(&self, db: &str) -> BTreeMap<String, Value> {
        export(db, &[])
            .await
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|row| {
                let path = row["url"].as_str().unwrap().replace(&self.server, "");
                (path, row["extracted"]["price"].clone())
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_and_recrawl_extract_with_the_stored_fields() {
    let site = Priced::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target();
    let mut extra = extract_flags(&["price=.price"]);
    extra.extend(args(&["--max-pages", "2", "--no-sitemaps"]));
    crawl(&format!("{}/", site.server), db, &extra).await;
    assert_eq!(site.prices(db).await.len(), 2);

    // Resumed with no --extract: the stored fields go on being extracted.
    run_ok(args(&["resume", "--db", db, "--max-pages", "10", "-q"])).await;
    let want: BTreeMap<String, Value> = [
        ("/", Value::Null),
        ("/a", json!(["1.00"])),
        ("/b", json!(["2.00"])),
        ("/c", json!(["3.00"])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(site.prices(db).await, want);

    // A recrawl: a changed price is replaced, a price that went away goes
    // (not kept from the old version), an unchanged page keeps its own.
    site.set("/a", "<span class=\"price\">1.50</span>");
    site.set("/b", "<p>No longer sold.</p>");
    run_ok(args(&["recrawl", "--db", db, "-q"])).await;
    let mut want = want;
    want.insert("/a".into(), json!(["1.50"]));
    want.insert("/b".into(), Value::Null);
    assert_eq!(site.prices(db).await, want);
    assert_eq!(count(&tdb, "SELECT COUNT(*) FROM page_html").await, 4);
    assert_eq!(count(&tdb, "SELECT COUNT(*) FROM extracted").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_in_a_legacy_encoding_gives_the_same_fields_later() {
    // windows-1251 declared by a <meta> only, and one that declares
    // nothing: the kept bytes are decoded again as the crawl decoded them.
    let l = util::listener().await;
    let server = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    let (cyrillic, _, _) = encoding_rs::WINDOWS_1251.encode("Чайник за 9,99");
    let declared = [
        b"<html><head><meta charset=\"windows-1251\"><title>t</title></head><body><h1>".to_vec(),
        cyrillic.to_vec(),
        b"</h1><a href=\"/plain\">plain</a></body></html>".to_vec(),
    ]
    .concat();
    let plain = [
        b"<html><body><h1>".to_vec(),
        cyrillic.repeat(20),
        b"</h1></body></html>".to_vec(),
    ]
    .concat();
    let app = Router::new()
        .route(
            "/",
            axum::routing::get(move || async move {
                ([("content-type", "text/html")], declared.clone()).into_response()
            }),
        )
        .route(
            "/plain",
            axum::routing::get(move || async move {
                ([("content-type", "text/html")], plain.clone()).into_response()
            }),
        );
    tokio::spawn(async move { axum::serve(l, app).await });
    let dir = tempfile::tempdir().unwrap();
    let during_db = TestDb::new(dir.path(), "during.db");
    let later_db = TestDb::new(dir.path(), "later.db");
    let during = during_db.target().to_string();
    let later = later_db.target().to_string();
    let seed = format!("{server}/");
    crawl(&seed, &during, &extract_flags(&["h=h1"])).await;
    crawl(&seed, &later, &args(&["--keep-html"])).await;
    run_ok(args(&["extract", "--db", &later, "--extract", "h=h1"])).await;
    let h = |db: String| async move {
        export(&db, &[])
            .await
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|r| {
                (
                    r["url"].as_str().unwrap().to_string(),
                    r["extracted"]["h"].clone(),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let got = h(during).await;
    assert_eq!(got[&seed], json!(["Чайник за 9,99"]));
    assert_eq!(
        got[&format!("{server}/plain")],
        json!(["Чайник за 9,99".repeat(20)])
    );
    assert_eq!(h(later).await, got);
}
