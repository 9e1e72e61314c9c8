//! `trawl report`: the HTML report of a crawl of a loopback site with
//! failures, redirects, a broken link and a duplicate body, opened in
//! headless Chromium. Its numbers must be `status --json`'s, its charts
//! drawn, its console silent, and it must make no request at all.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scraper::{Html, Selector};

use crate::cli::{assert_usage_error, db_arg, quick_crawl, stderr, trawl, trawl_async};
use crate::util::{self, TestDb, html};

/// A title and an anchor that would run a script if they reached the
/// page unescaped.
const HOSTILE_TITLE: &str = "<script>alert(1)</script> & \"quoted\" <img src=x onerror=alert(2)>";

/// The fixture: a home page linking to pages that answer, a 404 linked
/// from two pages (the broken link), a 500, a redirect chain of two hops,
/// one body at two URLs, a noindex and a nofollow page, an asset and a
/// link out of scope; robots.txt disallows `/private/` with a Crawl-delay.
fn route(path: &str, port: u16) -> Response {
    let page = |title: &str, body: &str| {
        html(format!(
            "<!doctype html><html><head><title>{title}</title></head><body><main>{body}</main></body></html>"
        ))
    };
    let redirect = |code: StatusCode, to: &str| {
        let mut r = code.into_response();
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_str(to).unwrap());
        r
    };
    match path {
        "/robots.txt" => "User-agent: *\nDisallow: /private/\nCrawl-delay: 0.01\n".into_response(),
        "/" => page(
            "Report home",
            &format!(
                "<p>The home page of a small site that has a little of everything a report shows.</p>\
                 <a href=\"/a\">A</a> <a href=\"/b\">B</a> <a href=\"/missing\">gone &lt;script&gt;alert(3)&lt;/script&gt;</a> \
                 <a href=\"/error\">error</a> <a href=\"/old\">old</a> <a href=\"/dup1\">d1</a> <a href=\"/dup2\">d2</a> \
                 <a href=\"/noindex\">ni</a> <a href=\"/nofollow\">nf</a> <a href=\"/private/x\">private</a> \
                 <a href=\"/file.pdf\">pdf</a> <a href=\"http://localhost:{port}/elsewhere\">elsewhere</a> \
                 <a href=\"/hostile\">hostile</a>"
            ),
        ),
        "/a" => page(
            "Page A",
            "<p>Page A talks about crawling. Crawling is reading a site page by page. \
             Page A links back home and to a page that is gone.</p><a href=\"/\">home</a> <a href=\"/missing\">missing</a>",
        ),
        "/b" => page(
            "Page B",
            "<p>Page B is another ordinary page with some text for its summary.</p>",
        ),
        "/hostile" => page(
            &HOSTILE_TITLE.replace('<', "&lt;"),
            "<p>A page whose title would run a script in a careless report.</p>",
        ),
        "/dup1" | "/dup2" => page(
            "Twin",
            "<p>The same body is served at two URLs, so it is duplicate content.</p>",
        ),
        "/noindex" => html(
            "<!doctype html><html><head><title>Hidden</title><meta name=\"robots\" content=\"noindex\"></head>\
             <body><p>Not for indexes.</p></body></html>",
        ),
        "/nofollow" => html(
            "<!doctype html><html><head><title>Closed</title><meta name=\"robots\" content=\"nofollow\"></head>\
             <body><p>Links here are not followed.</p><a href=\"/only-from-nofollow\">x</a></body></html>",
        ),
        "/old" => redirect(StatusCode::MOVED_PERMANENTLY, "/older"),
        "/older" => redirect(StatusCode::FOUND, "/b"),
        "/error" => (StatusCode::INTERNAL_SERVER_ERROR, "broken").into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            page("Not found", "<p>No such page.</p>"),
        )
            .into_response(),
    }
}

async fn serve() -> u16 {
    let l = util::listener().await;
    let port = l.local_addr().unwrap().port();
    let app = Router::new()
        .fallback(move |req: axum::extract::Request| async move { route(req.uri().path(), port) });
    tokio::spawn(async move { axum::serve(l, app).await });
    port
}

/// The Chromium binary, or a failure that says how to get it.
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Some(dir) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .find(|d| d.join(name).is_file())
        {
            return dir.join(name);
        }
    }
    panic!(
        "the report tests open the report in headless Chromium, which is not installed: \
         install Debian's package (`apt-get install -y chromium`), or run `.ci/run`, which does"
    );
}

/// What Chromium made of a page.
struct Opened {
    /// The DOM after the page's scripts ran.
    dom: String,
    /// Lines the page wrote to the console (errors, CSP violations, logs).
    console: Vec<String>,
    /// Requests that reached the proxy: anything the page tried to load.
    requests: Vec<String>,
}

/// A proxy that answers every request with 502 and records the first
/// bytes of each (the request line names what was asked for).
struct Proxy {
    port: u16,
    thread: std::thread::JoinHandle<Vec<String>>,
}

/// What the test sends its own proxy to stop it.
const STOP: &[u8] = b"STOP";

impl Proxy {
    fn start() -> Proxy {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut head = [0u8; 200];
                let n = conn.read(&mut head).unwrap_or(0);
                if &head[..n] == STOP {
                    break;
                }
                seen.push(String::from_utf8_lossy(&head[..n]).into_owned());
                let _ = conn.write_all(
                    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
            seen
        });
        Proxy { port, thread }
    }

    /// Every request that reached the proxy.
    fn stop(self) -> Vec<String> {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        conn.write_all(STOP).unwrap();
        drop(conn);
        self.thread.join().unwrap()
    }
}

/// Opens `file` in headless Chromium with every request sent to a proxy
/// this test owns, and returns the DOM it dumps, the console lines it
/// logged and what reached the proxy. Chromium's own background traffic
/// (component updates, the network time, account checks) is switched
/// off, and its service URLs point at a port it refuses to use, so
/// anything at the proxy came from the page.
fn open_in_chromium(file: &Path) -> Opened {
    let proxy = Proxy::start();
    let profile = tempfile::tempdir().unwrap();
    let unused = "http://127.0.0.1:1/";
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
        &format!("--user-data-dir={}", profile.path().display()),
        &format!("--proxy-server=http://127.0.0.1:{}", proxy.port),
        // Loopback too goes through the proxy (Chromium sends it direct
        // by default).
        "--proxy-bypass-list=<-loopback>",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-features=NetworkTimeServiceQuerying",
        &format!("--component-updater=url-source={unused}"),
        &format!("--gaia-url={unused}"),
        &format!("--lso-url={unused}"),
        &format!("--google-apis-url={unused}"),
        "--dump-dom",
    ]);
    // Chromium's sandbox refuses to start as root.
    if is_root() {
        cmd.arg("--no-sandbox");
    }
    let out = cmd
        .arg(format!("file://{}", file.display()))
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    let requests = proxy.stop();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed: {err}");
    Opened {
        dom: String::from_utf8(out.stdout).unwrap(),
        console: err
            .lines()
            .filter(|l| l.contains(":CONSOLE") || l.contains("CONSOLE("))
            .map(str::to_string)
            .collect(),
        requests,
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The numbers `status --json` gives, flattened to the keys the report
/// marks them with (`http_status.404`, `runs.1.bytes`).
fn status_numbers(s: &serde_json::Value) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for key in [
        "pages_stored",
        "queued",
        "failed",
        "pages_truncated",
        "pages_binary",
        "summaries_done",
        "summaries_failed",
        "summaries_pending",
        "summary_prompt_tokens",
        "summary_completion_tokens",
    ] {
        m.insert(key.to_string(), s[key].as_f64().unwrap());
    }
    for map in [
        "urls_by_state",
        "failed_by_reason",
        "skipped",
        "http_status",
        "sitemaps",
        "summaries_failed_by_reason",
    ] {
        for (k, v) in s[map].as_object().unwrap() {
            m.insert(format!("{map}.{k}"), v.as_f64().unwrap());
        }
    }
    for k in ["pages", "duration_secs", "pages_per_sec"] {
        m.insert(format!("last_run.{k}"), s["last_run"][k].as_f64().unwrap());
    }
    for run in s["runs"].as_array().unwrap() {
        for k in ["checked", "unchanged", "changed", "new", "removed", "bytes"] {
            m.insert(format!("runs.{}.{k}", run["id"]), run[k].as_f64().unwrap());
        }
    }
    for (i, k) in s["summaries_by_summarizer"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        for f in ["done", "truncated", "failed", "pending"] {
            m.insert(
                format!("summaries_by_summarizer.{i}.{f}"),
                k[f].as_f64().unwrap(),
            );
        }
    }
    m
}

/// `trawl report --db DB --out OUT`.
async fn report(db: &str, out: &str) -> std::process::Output {
    trawl_async(vec![
        "report".into(),
        "--db".into(),
        db.into(),
        "--out".into(),
        out.into(),
    ])
    .await
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(e: scraper::ElementRef) -> String {
    e.text().collect::<String>()
}

/// The `data-value`s of a chart's bars, and its `data-total`.
fn chart(dom: &Html, id: &str) -> (Vec<i64>, i64) {
    let svg = dom
        .select(&sel(&format!("svg[data-chart=\"{id}\"]")))
        .next()
        .unwrap_or_else(|| panic!("no {id} chart"));
    let values = svg
        .select(&sel("rect[data-value]"))
        .map(|r| r.attr("data-value").unwrap().parse().unwrap())
        .collect();
    (values, svg.attr("data-total").unwrap().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_opens_in_a_browser_shows_statuss_numbers_and_loads_nothing() {
    let chromium_path = chromium();
    let port = serve().await;
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let o = trawl_async(quick_crawl(&format!("{base}/"), &db, &["--retries", "0"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let o = trawl_async(vec![
        "status".into(),
        "--db".into(),
        db.clone(),
        "--json".into(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The fixture did what it is for.
    assert_eq!(status["failed_by_reason"]["http_404"], 1, "{status}");
    assert_eq!(status["failed_by_reason"]["http_500"], 1, "{status}");
    assert_eq!(status["http_status"]["301"], 1, "{status}");
    assert!(status["skipped"]["robots"].as_i64() >= Some(1), "{status}");

    let out = dir.path().join("report.html");
    let o = report(&db, &out.display().to_string()).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let written = std::fs::read_to_string(&out).unwrap();
    // `-` writes the same page to standard output.
    let o = report(&db, "-").await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let printed = String::from_utf8(o.stdout).unwrap();
    let made = regex::Regex::new(r"made \S+ by").unwrap();
    let without_time = |s: &str| made.replace(s, "made … by").into_owned();
    assert!(made.is_match(&written));
    assert_eq!(without_time(&printed), without_time(&written));
    // The database is never written over.
    if !tdb.is_postgres() {
        // SQLite file behaviour
        let o = report(&db, &db).await;
        assert_usage_error(&o, "is the database");
    }

    assert!(chromium_path.exists());
    let opened = tokio::task::spawn_blocking(move || open_in_chromium(&out))
        .await
        .unwrap();
    assert!(opened.console.is_empty(), "console: {:#?}", opened.console);
    assert!(
        opened.requests.is_empty(),
        "requests: {:#?}",
        opened.requests
    );
    let dom = Html::parse_document(&opened.dom);

    // The page's script ran (the policy let it).
    let root = dom.select(&sel("html")).next().unwrap();
    assert_eq!(root.attr("data-ready"), Some("sortable"), "{}", opened.dom);

    // Every number status gives is shown, as status gives it, and every
    // number marked is one of them.
    let want = status_numbers(&status);
    let mut shown: BTreeMap<String, Vec<(f64, String)>> = BTreeMap::new();
    for e in dom.select(&sel("[data-stat]")) {
        let v: f64 = e.attr("data-value").unwrap().parse().unwrap();
        shown
            .entry(e.attr("data-stat").unwrap().to_string())
            .or_default()
            .push((v, text(e)));
    }
    for (key, value) in &want {
        let got = shown
            .get(key)
            .unwrap_or_else(|| panic!("{key} ({value}) is not in the report"));
        // Bytes are shown in KiB, the duration to a tenth of a second.
        let exact_text = !key.ends_with(".bytes") && key != "last_run.duration_secs";
        for (v, t) in got {
            // serde_json reads a float to within a unit in the last place.
            assert!(
                (v - value).abs() <= value.abs() * 1e-12,
                "{key}: {v} in the report, {value} in status"
            );
            if exact_text {
                let plain: String = t.chars().filter(|c| *c != ',').collect();
                assert_eq!(plain.parse::<f64>().ok(), Some(*v), "{key}: shown as {t:?}");
            }
        }
    }
    for key in shown.keys() {
        assert!(
            want.contains_key(key),
            "{key} is marked but status has no such number"
        );
    }

    // The hosts with most pages, as status lists them.
    for h in status["top_hosts"].as_array().unwrap() {
        let origin = h["origin"].as_str().unwrap();
        let cell = dom
            .select(&sel(&format!(
                "#hosts-table tr[data-origin=\"{origin}\"] td[data-host-pages]"
            )))
            .next()
            .unwrap_or_else(|| panic!("no row for {origin}"));
        assert_eq!(
            cell.attr("data-host-pages").map(str::to_string),
            Some(h["pages"].to_string())
        );
        assert_eq!(text(cell), h["pages"].to_string());
    }

    // The charts are drawn from the same numbers.
    let (bars, total) = chart(&dom, "timeline");
    assert_eq!(total, status["last_run"]["pages"].as_i64().unwrap());
    assert_eq!(bars.iter().sum::<i64>(), total);
    assert!(!bars.is_empty());
    let (bars, total) = chart(&dom, "http_status");
    assert_eq!(total, status["pages_stored"].as_i64().unwrap());
    assert_eq!(bars.len(), status["http_status"].as_object().unwrap().len());
    let urls: i64 = status["urls_by_state"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    let (bars, total) = chart(&dom, "depth");
    assert_eq!((bars.iter().sum::<i64>(), total), (urls, urls));
    let (bars, total) = chart(&dom, "sizes");
    assert_eq!(
        (bars.iter().sum::<i64>(), total),
        (
            status["pages_stored"].as_i64().unwrap(),
            status["pages_stored"].as_i64().unwrap()
        )
    );

    // The broken link, with the pages that link to it.
    let broken = dom
        .select(&sel("#broken-links tbody tr"))
        .map(text)
        .collect::<Vec<_>>();
    let missing = broken
        .iter()
        .find(|r| r.contains(&format!("{base}/missing")))
        .unwrap_or_else(|| panic!("{broken:#?}"));
    assert!(
        missing.contains("http_404") && missing.contains(&format!("{base}/a")),
        "{missing}"
    );
    assert!(
        missing.contains("gone <script>alert(3)</script>"),
        "the anchor, as text: {missing}"
    );
    // The redirect chain, hop by hop, to where it ended.
    let chains: Vec<Vec<String>> = dom
        .select(&sel("ol.chain"))
        .map(|ol| ol.select(&sel("li a")).map(text).collect())
        .collect();
    assert!(
        chains.contains(&vec![
            format!("{base}/old"),
            format!("{base}/older"),
            format!("{base}/b")
        ]),
        "{chains:?}"
    );
    // One body at two URLs.
    let dups = dom
        .select(&sel("#duplicate-groups tbody tr"))
        .map(text)
        .collect::<Vec<_>>();
    assert_eq!(dups.len(), 1, "{dups:?}");
    assert!(dups[0].contains(&format!("{base}/dup1")) && dups[0].contains(&format!("{base}/dup2")));
    // Failures and skips, with examples.
    let failed = dom
        .select(&sel("#failed-reasons tbody tr"))
        .map(text)
        .collect::<Vec<_>>();
    assert!(
        failed
            .iter()
            .any(|r| r.contains("http_500") && r.contains(&format!("{base}/error"))),
        "{failed:?}"
    );
    let skipped = dom
        .select(&sel("#skipped-reasons tbody tr"))
        .map(text)
        .collect::<Vec<_>>();
    assert!(
        skipped
            .iter()
            .any(|r| r.contains("robots") && r.contains(&format!("{base}/private/x"))),
        "{skipped:?}"
    );
    // noindex and nofollow pages.
    let list = |id: &str| {
        dom.select(&sel(&format!("#{id} li")))
            .map(text)
            .collect::<Vec<_>>()
    };
    assert_eq!(list("noindex-pages"), vec![format!("{base}/noindex")]);
    assert_eq!(list("nofollow-pages"), vec![format!("{base}/nofollow")]);
    // The host with its robots.txt and Crawl-delay.
    let host = dom
        .select(&sel(&format!("#hosts-table tr[data-origin=\"{base}\"]")))
        .next()
        .map(text)
        .unwrap_or_else(|| panic!("no row for {base}"));
    assert!(
        host.contains("200: rules obeyed") && host.contains("10 ms"),
        "{host}"
    );
    // A summary is shown.
    assert!(dom.select(&sel("figure.summary blockquote")).count() >= 1);

    // Hostile strings are text: the title is shown as written, and the
    // only script is the report's own.
    assert!(
        opened.dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the hostile title is missing"
    );
    assert_eq!(dom.select(&sel("script")).count(), 1);
    for e in dom.select(&sel("*")) {
        for (name, value) in e.value().attrs() {
            assert!(
                !name.starts_with("on"),
                "<{} {name}={value:?}>",
                e.value().name()
            );
            // Nothing that loads a resource.
            assert!(
                ![
                    "src",
                    "srcset",
                    "poster",
                    "data",
                    "xlink:href",
                    "background"
                ]
                .contains(&name),
                "<{} {name}={value:?}>",
                e.value().name()
            );
        }
    }
    assert_eq!(
        dom.select(&sel(
            "link, img, iframe, object, embed, video, audio, source, image, use"
        ))
        .count(),
        0
    );
    for style in dom.select(&sel("style")) {
        let css = text(style);
        assert!(!css.contains("url(") && !css.contains("@import"), "{css}");
    }
    let policy = dom
        .select(&sel("meta[http-equiv=\"Content-Security-Policy\"]"))
        .next()
        .and_then(|m| m.attr("content").map(str::to_string))
        .unwrap();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_made_beside_a_running_crawl() {
    // The crawl waits on /hold until the test lets it go, so the report
    // is made while the crawl holds the database.
    let release = Arc::new(tokio::sync::Notify::new());
    let asked = Arc::new(tokio::sync::Notify::new());
    let l = util::listener().await;
    let port = l.local_addr().unwrap().port();
    let (release2, asked2) = (release.clone(), asked.clone());
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let (release, asked) = (release2.clone(), asked2.clone());
        async move {
            match req.uri().path() {
                "/" => html("<title>Home</title><p>Home.</p><a href=\"/hold\">hold</a>"),
                "/hold" => {
                    asked.notify_one();
                    release.notified().await;
                    html("<title>Held</title><p>Held.</p>")
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await });
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let mut crawl = tokio::task::spawn_blocking({
        let args = quick_crawl(
            &format!("http://127.0.0.1:{port}/"),
            &db,
            &["--no-sitemaps"],
        );
        move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            trawl(&refs)
        }
    });
    tokio::select! {
        _ = asked.notified() => {}
        o = &mut crawl => panic!("the crawl ended before it asked for /hold: {}", stderr(&o.unwrap())),
    }
    let out = dir.path().join("running.html");
    let o = report(&db, &out.display().to_string()).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.contains("data-crawl-state=\"running\""), "{page}");
    release.notify_one();
    let o = crawl.await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_missing_database_or_output_directory_is_a_usage_error_and_nothing_is_written() {
    // SQLite file behaviour
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(dir.path());
    // From inside the directory, so the default `report.html` would land there.
    let o = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["report", "--db", &db])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_usage_error(&o, "does not exist");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "something was created"
    );

    let o = trawl(&["report", "--db", &db, "--out", "/nonexistent-dir/r.html"]);
    assert_usage_error(&o, "directory /nonexistent-dir does not exist");
    let o = trawl(&[
        "report",
        "--db",
        &db,
        "--out",
        &dir.path().display().to_string(),
    ]);
    assert_usage_error(&o, "is a directory");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "something was created"
    );
}
