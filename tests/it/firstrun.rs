//! The binary as a new user first meets it: what a mistyped command leaves
//! on disk, databases that cannot be written, what the final line counts,
//! pipes and terminals, and whether the help says what the commands do.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::cli::{assert_usage_error, db_arg, quick_crawl, stderr};
use crate::util::{Server, TestDb, listener};

/// `trawl args…` with `env` set, the LLM settings of the caller's
/// environment removed, and stdout and stderr captured.
fn trawl_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trawl"));
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .env_remove("TRAWL_LLM_BASE_URL")
        .env_remove("TRAWL_LLM_MODEL")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run trawl")
}

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        trawl_env(&refs, &[])
    })
    .await
    .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// The names in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Serves `pages` (path → HTML); anything else is a 404.
async fn serve(pages: &[(&str, String)]) -> Server {
    let l = listener().await;
    let addr = l.local_addr().unwrap();
    let pages: Arc<HashMap<String, String>> = Arc::new(
        pages
            .iter()
            .map(|(p, b)| (p.to_string(), b.clone()))
            .collect(),
    );
    let log: Arc<Mutex<Vec<(std::time::Instant, String)>>> = Arc::default();
    let log2 = log.clone();
    let app = Router::new().fallback(move |req: axum::extract::Request| {
        let pages = pages.clone();
        let log = log2.clone();
        async move {
            let path = req.uri().path().to_string();
            log.lock()
                .unwrap()
                .push((std::time::Instant::now(), path.clone()));
            match pages.get(&path) {
                Some(b) => ([(header::CONTENT_TYPE, "text/html")], b.clone()).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await });
    Server { addr, log }
}

fn page(title: &str, body: &str) -> String {
    format!("<html><head><title>{title}</title></head><body><main>{body}</main></body></html>")
}

/// `/` links to `/a`, `/b` and two missing pages; `/a` links one step
/// further, to `/deep/1` and `/deep/2`.
async fn small_site() -> Server {
    serve(&[
        (
            "/",
            page(
                "Home",
                "<p>Home.</p><a href=\"/a\">a</a> <a href=\"/b\">b</a> \
                 <a href=\"/gone1\">x</a> <a href=\"/gone2\">y</a>",
            ),
        ),
        (
            "/a",
            page(
                "A",
                "<p>A.</p><a href=\"/deep/1\">1</a> <a href=\"/deep/2\">2</a>",
            ),
        ),
        ("/b", page("B", "<p>B.</p>")),
        ("/deep/1", page("Deep 1", "<p>One.</p>")),
        ("/deep/2", page("Deep 2", "<p>Two.</p>")),
    ])
    .await
}

fn jsonl(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The line `crawl` and `resume` end with.
fn final_line(o: &Output) -> String {
    stderr(o)
        .lines()
        .find(|l| l.starts_with("finished: ") || l.starts_with("stopped: "))
        .unwrap_or_else(|| panic!("no final line in {}", stderr(o)))
        .to_string()
}

#[tokio::test]
async fn usage_errors_leave_nothing_on_disk_and_the_corrected_command_runs() {
    let s = small_site().await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target();
    let config = dir.path().join("llm.toml");
    std::fs::write(&config, "summarizer = \"llm\"\nllm-model = \"m\"\n").unwrap();
    let config = config.display().to_string();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--summarizer", "llm"],
            "--summarizer llm needs --llm-base-url (or TRAWL_LLM_BASE_URL) and --llm-model",
        ),
        (
            &["--summary-sentences", "0"],
            "--summary-sentences must be at least 1",
        ),
        (
            &[
                "--summarizer",
                "llm",
                "--llm-model",
                "m",
                "--llm-base-url",
                "ftp://x",
            ],
            "--llm-base-url \"ftp://x\" must be http or https",
        ),
        // The same mistake made in a config file.
        (
            &["--config", &config],
            "--summarizer llm needs --llm-base-url (or TRAWL_LLM_BASE_URL) and --llm-model",
        ),
        (
            &["--max-body-size", "0"],
            "--max-body-size must be at least 1 byte",
        ),
    ];
    for (extra, why) in cases {
        let o = run(quick_crawl(&s.url("/"), db, extra)).await;
        assert_usage_error(&o, why);
        assert_eq!(
            files_in(dir.path()),
            ["llm.toml"],
            "`{extra:?}` left files behind: {}",
            stderr(&o)
        );
    }
    // The corrected command is not refused.
    let o = run(quick_crawl(&s.url("/"), db, &["--no-sitemaps"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        final_line(&o).starts_with("finished: 7 fetched"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn resume_of_a_missing_database_creates_nothing() {
    // SQLite file behaviour
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(dir.path());
    let cases: &[(&[&str], String)] = &[
        (
            &["resume", "--db", &db],
            format!("trawl: {db} does not exist"),
        ),
        (
            &["resume", "--db", &db, "--concurrency", "0"],
            "trawl: --concurrency must be at least 1".into(),
        ),
        (
            &["resume", "--db", &db, "--per-host-rate=-1"],
            "trawl: --per-host-rate must be a number ≥ 0, got -1".into(),
        ),
        (
            &["summarize", "--db", &db],
            format!("trawl: {db} does not exist"),
        ),
    ];
    for (args, why) in cases {
        let o = trawl_env(args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim_end(), why, "{args:?}");
        assert!(files_in(dir.path()).is_empty(), "{args:?} left files");
    }
}

#[tokio::test]
async fn empty_and_foreign_files_are_refused_untouched() {
    // SQLite file behaviour
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("text.db");
    std::fs::write(&text, "not a database, only text long enough for a header").unwrap();
    // An SQLite file of someone else's, and one with no table at all.
    let foreign = dir.path().join("foreign.db");
    let blank = dir.path().join("blank.db");
    for (path, sql) in [
        (&foreign, "CREATE TABLE notes (x TEXT)"),
        (&blank, "PRAGMA user_version = 7"),
    ] {
        use sqlx::{ConnectOptions, Connection};
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
        c.close().await.unwrap();
    }
    let before: Vec<(String, Vec<u8>)> = files_in(dir.path())
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(dir.path().join(&n)).unwrap()))
        .collect();
    let cases = [
        (&empty, "is empty, not a trawl database"),
        (&text, "is not an SQLite database"),
        (&foreign, "is an SQLite database but not a trawl database"),
        (&blank, "is an SQLite database but not a trawl database"),
    ];
    for (path, why) in cases {
        let path = path.display().to_string();
        for cmd in ["status", "export", "resume", "summarize"] {
            let o = run(strings(&[cmd, "--db", &path])).await;
            assert_eq!(o.status.code(), Some(2), "{cmd} {path}: {}", stderr(&o));
            assert_eq!(
                stderr(&o).trim_end(),
                format!("trawl: {path} {why}"),
                "{cmd}"
            );
            let after: Vec<(String, Vec<u8>)> = files_in(dir.path())
                .into_iter()
                .map(|n| (n.clone(), std::fs::read(dir.path().join(&n)).unwrap()))
                .collect();
            assert!(after == before, "`{cmd} --db {path}` changed the directory");
        }
    }
}

#[tokio::test]
async fn final_line_counts_this_run_only() {
    let s = small_site().await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target();
    let o = run(quick_crawl(
        &s.url("/"),
        db,
        &["--no-sitemaps", "--max-depth", "1"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let line = final_line(&o);
    assert!(line.starts_with("finished: 5 fetched in "), "{line}");
    assert!(
        line.contains(", 2 failed [http_404=2], 2 skipped [max_depth=2]; 5 pages in "),
        "{line}"
    );
    // The second run fetches the two deeper pages and nothing fails.
    let o = run(strings(&["resume", "--db", db, "--max-depth", "2", "-q"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let line = final_line(&o);
    assert!(line.starts_with("finished: 2 fetched in "), "{line}");
    assert!(
        line.contains(", 0 failed, 0 skipped; 7 pages in "),
        "the first run's failures are not this run's: {line}"
    );
}

#[tokio::test]
async fn writing_into_a_closed_pipe_ends_quietly() {
    let s = small_site().await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target();
    let o = run(quick_crawl(&s.url("/"), db, &["--no-sitemaps"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = s.url("/");
    let cases: &[&[&str]] = &[
        &["export", "--db", db, "--what", "pages"],
        &["export", "--db", db, "--format", "csv"],
        &["status", "--db", db],
        &["completions", "bash"],
        &["summarize", "--db", db, "--url", &page],
    ];
    for args in cases {
        // The reader is gone before trawl writes a byte: `trawl … | head -0`.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args(*args)
            .stdin(Stdio::null())
            .stdout(writer)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{args:?}");
    }
}

#[tokio::test]
async fn logs_into_a_pipe_have_no_colour() {
    let s = small_site().await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target();
    let o = run(quick_crawl(
        &s.url("/"),
        db,
        &["--no-sitemaps", "--ignore-robots"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("WARN"), "{err}");
    assert!(!err.contains('\x1b'), "escape codes in a pipe: {err:?}");
}

#[cfg(unix)]
/// The directory of the test's database, made read-only for as long as
/// it lives: permission bits for an ordinary user; for root, whom they do
/// not stop, the immutable attribute. Both what trawl meets on a read-only
/// file system: every attempt to create or write a file fails.
struct ReadOnly {
    paths: Vec<PathBuf>,
    immutable: bool,
}

#[cfg(unix)]
impl ReadOnly {
    fn new(paths: &[&Path]) -> ReadOnly {
        use std::os::unix::fs::PermissionsExt;
        let set_mode = |p: &Path, writable: bool| {
            let mode = std::fs::metadata(p).unwrap().permissions().mode();
            let mode = if writable {
                mode | 0o200
            } else {
                mode & !0o222
            };
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        for p in paths {
            set_mode(p, false);
        }
        let mut guard = ReadOnly {
            paths: paths.iter().map(|p| p.to_path_buf()).collect(),
            immutable: false,
        };
        if paths.iter().any(|p| writable(p)) {
            for p in paths {
                set_mode(p, true);
            }
            guard.immutable = true;
            for p in paths {
                let ok = Command::new("chattr")
                    .arg("+i")
                    .arg(p)
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(
                    ok && !writable(p),
                    "cannot make {} read-only here (permission bits do not stop root, and chattr +i failed)",
                    p.display()
                );
            }
        }
        guard
    }
}

#[cfg(unix)]
/// Whether this process may write `p` (a file) or create files in it (a
/// directory).
fn writable(p: &Path) -> bool {
    if p.is_dir() {
        let probe = p.join(".probe");
        let ok = std::fs::File::create(&probe).is_ok();
        let _ = std::fs::remove_file(&probe);
        ok
    } else {
        std::fs::OpenOptions::new().write(true).open(p).is_ok()
    }
}

#[cfg(unix)]
impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        for p in self.paths.iter().rev() {
            if self.immutable {
                let _ = Command::new("chattr").arg("-i").arg(p).status();
            } else if let Ok(m) = std::fs::metadata(p) {
                let mode = m.permissions().mode() | 0o200;
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
            }
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn status_and_export_read_a_database_that_cannot_be_written() {
    let s = small_site().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db_path = data.join("t.db");
    let db = db_path.display().to_string();
    let o = run(quick_crawl(&s.url("/"), &db, &["--no-sitemaps"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let files = files_in(&data);
    assert_eq!(files, ["t.db"]);
    for paths in [
        vec![db_path.as_path()],
        vec![data.as_path(), db_path.as_path()],
    ] {
        let _ro = ReadOnly::new(&paths);
        let o = run(strings(&["status", "--db", &db])).await;
        assert_eq!(o.status.code(), Some(0), "{paths:?}: {}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(text.starts_with("crawl 1 (finished)"), "{text}");
        let o = run(strings(&["export", "--db", &db, "--what", "pages"])).await;
        assert_eq!(o.status.code(), Some(0), "{paths:?}: {}", stderr(&o));
        assert_eq!(jsonl(&o).len(), 7);
        assert_eq!(files_in(&data), files, "{paths:?}: files created");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn resume_of_a_read_only_database_is_a_usage_error() {
    let s = small_site().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db_path = data.join("t.db");
    let db = db_path.display().to_string();
    let o = run(quick_crawl(
        &s.url("/"),
        &db,
        &["--no-sitemaps", "--max-pages", "2"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for paths in [
        vec![db_path.as_path()],
        vec![data.as_path(), db_path.as_path()],
    ] {
        let _ro = ReadOnly::new(&paths);
        for args in [
            &["resume", "--db", &db, "--max-pages", "10"][..],
            &["summarize", "--db", &db],
        ] {
            let cmd = args[0];
            let o = run(strings(args)).await;
            assert_eq!(o.status.code(), Some(2), "{cmd} {paths:?}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(
                err.starts_with(&format!("trawl: cannot write to {db}: "))
                    && err
                        .trim_end()
                        .ends_with("; `trawl status` and `trawl export` can still read it"),
                "{cmd} {paths:?}: {err}"
            );
            assert_eq!(files_in(&data), ["t.db"], "{paths:?}: files created");
        }
    }
}

#[tokio::test]
async fn a_directory_as_db_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d.db");
    std::fs::create_dir(&d).unwrap();
    let db = d.display().to_string();
    let cases: &[&[&str]] = &[
        &["crawl", "http://127.0.0.1:9/", "--db", &db],
        &["resume", "--db", &db],
        &["status", "--db", &db],
        &["export", "--db", &db],
        &["summarize", "--db", &db],
    ];
    for args in cases {
        let o = trawl_env(args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).trim_end(),
            format!("trawl: {db} is a directory; --db takes the path of a database file"),
        );
        assert_eq!(files_in(dir.path()), ["d.db"], "{args:?}");
        assert!(files_in(&d).is_empty(), "{args:?}");
    }
}

#[tokio::test]
async fn export_host_takes_a_host_a_host_and_port_or_an_origin() {
    let a = serve(&[
        ("/", page("A", "<p>A.</p><a href=\"/x\">x</a>")),
        ("/x", page("X", "<p>X.</p>")),
    ])
    .await;
    let b = serve(&[("/", page("B", "<p>B.</p>"))]).await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target();
    let mut args = quick_crawl(&a.url("/"), db, &["--no-sitemaps"]);
    args.push(b.url("/"));
    let o = run(args).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (pa, pb) = (a.addr.port(), b.addr.port());
    let urls = |host: &str| -> Vec<String> {
        let o = trawl_env(
            &["export", "--db", db, "--what", "pages", "--host", host],
            &[],
        );
        assert_eq!(o.status.code(), Some(0), "--host {host}: {}", stderr(&o));
        let mut urls: Vec<String> = jsonl(&o)
            .iter()
            .map(|r| r["url"].as_str().unwrap().to_string())
            .collect();
        urls.sort();
        urls
    };
    let of_a = vec![a.url("/"), a.url("/x")];
    assert_eq!(urls("127.0.0.1").len(), 3);
    assert_eq!(urls(&format!("127.0.0.1:{pa}")), of_a);
    assert_eq!(urls(&format!("127.0.0.1:{pb}")), vec![b.url("/")]);
    assert_eq!(urls(&format!("http://127.0.0.1:{pa}")), of_a);
    assert_eq!(urls(&format!("HTTP://127.0.0.1:{pa}/")), of_a);
    assert!(urls(&format!("https://127.0.0.1:{pa}")).is_empty());
    assert!(urls("localhost").is_empty());
    for bad in [
        format!("http://127.0.0.1:{pa}/x"),
        "127.0.0.1:http".to_string(),
        "ftp://127.0.0.1:21".to_string(),
        "*.example.com".to_string(),
    ] {
        let o = trawl_env(&["export", "--db", db, "--host", &bad], &[]);
        assert_usage_error(&o, &format!("--host {bad:?}"));
    }
}

#[test]
fn help_says_what_each_command_does() {
    let help = |args: &[&str]| {
        let o = trawl_env(args, &[]);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    let top = help(&["--help"]);
    assert!(
        top.contains("Write stored summaries, pages or links out as JSON Lines, CSV or Markdown"),
        "{top}"
    );
    let crawl = help(&["crawl", "--help"]);
    assert!(crawl.contains("created if missing"), "{crawl}");
    for cmd in ["resume", "export", "status", "summarize"] {
        let text = help(&[cmd, "--help"]);
        assert!(!text.contains("created if missing"), "{cmd}: {text}");
        assert!(text.contains("must exist"), "{cmd}: {text}");
    }
    assert!(crawl.contains("KB = 1000 bytes, KiB = 1024"), "{crawl}");
}

/// Every object key in `v`, at any depth, with its path.
fn keys(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                out.push(format!("{path}.{k}"));
                keys(v, &format!("{path}.{k}"), out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| keys(v, path, out)),
        _ => {}
    }
}

#[tokio::test]
async fn status_json_gives_durations_in_seconds() {
    let s = small_site().await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target();
    let o = run(quick_crawl(
        &s.url("/"),
        db,
        &["--no-sitemaps", "--timeout", "12.5"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(strings(&["status", "--db", db, "--json"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut all = Vec::new();
    keys(&st, "", &mut all);
    let nested: Vec<&String> = all
        .iter()
        .filter(|k| k.ends_with(".secs") || k.ends_with(".nanos"))
        .collect();
    assert!(nested.is_empty(), "{nested:?}");
    let settings = &st["crawl"]["settings"];
    assert_eq!(settings["fetch"]["timeout_secs"], 12.5);
    assert_eq!(settings["politeness"]["max_crawl_delay_secs"], 30.0);
    assert_eq!(settings["summarize"]["llm"]["timeout_secs"], 120.0);
    assert!(
        st["last_run"]["duration_secs"].is_f64(),
        "{}",
        st["last_run"]
    );
}

#[tokio::test]
async fn byte_sizes_take_units() {
    let body = format!(
        "<html><body><main><p>{}</p></main></body></html>",
        "x".repeat(5000)
    );
    let s = serve(&[("/", body)]).await;
    let dir = tempfile::tempdir().unwrap();
    for (size, kept) in [
        ("1KB", 1000),
        ("1kib", 1024),
        ("2000", 2000),
        ("0.5 KiB", 512),
    ] {
        let tdb = TestDb::new(dir.path(), &format!("{size}.db"));
        let db = tdb.target();
        let o = run(quick_crawl(
            &s.url("/"),
            db,
            &["--no-sitemaps", "--max-body-size", size],
        ))
        .await;
        assert_eq!(o.status.code(), Some(0), "{size}: {}", stderr(&o));
        let o = run(strings(&["export", "--db", db, "--what", "pages"])).await;
        let rows = jsonl(&o);
        assert_eq!(rows[0]["size"], kept, "{size}");
        assert_eq!(rows[0]["truncated"], true, "{size}");
    }
    let tdb = TestDb::new(dir.path(), "m.db");
    let o = run(quick_crawl(
        &s.url("/"),
        tdb.target(),
        &["--no-sitemaps", "--max-body-size", "10MB"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // SQLite file behaviour: nothing is created.
    let bad = dir.path().join("bad.db");
    let o = run(quick_crawl(
        &s.url("/"),
        &bad.display().to_string(),
        &["--max-body-size", "10XB"],
    ))
    .await;
    assert_usage_error(&o, "B, KB, KiB, MB, MiB, GB or GiB");
    assert!(!bad.exists());
}

#[tokio::test]
async fn final_line_and_status_give_the_same_rate() {
    let s = small_site().await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target();
    let o = run(quick_crawl(&s.url("/"), db, &["--no-sitemaps"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // finished: 5 fetched in 0.1s (41.7 pages/s, 0.0 MB), …
    let line = final_line(&o);
    let rest = line.strip_prefix("finished: ").unwrap();
    let (pages, rest) = rest.split_once(" fetched in ").unwrap();
    let (secs, rest) = rest.split_once("s (").unwrap();
    let (rate, _) = rest.split_once(" pages/s").unwrap();

    let o = run(strings(&["status", "--db", db, "--json"])).await;
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let last = &st["last_run"];
    assert_eq!(last["pages"].to_string(), pages, "{line} / {last}");
    assert_eq!(
        format!("{:.1}", last["duration_secs"].as_f64().unwrap()),
        secs,
        "{line} / {last}"
    );
    assert_eq!(
        format!("{:.1}", last["pages_per_sec"].as_f64().unwrap()),
        rate,
        "{line} / {last}"
    );
    let o = run(strings(&["status", "--db", db])).await;
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!("{pages} pages in {secs}s, {rate} pages/s")),
        "{line} / {text}"
    );
}

/// Terminals: the progress line, colours.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod terminal {
    use std::ffi::CStr;
    use std::fs::File;
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    use super::*;

    /// Runs trawl with stderr on a new pseudo-terminal (200 columns) and
    /// returns what it wrote there.
    pub fn on_a_terminal(args: &[String], env: &[(&str, &str)]) -> (Option<i32>, Vec<u8>) {
        // SAFETY: plain libc calls on a descriptor we own; the name is
        // read from a buffer ptsname_r filled and NUL-terminated.
        let (master, name) = unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(fd >= 0, "posix_openpt");
            assert_eq!(libc::grantpt(fd), 0);
            assert_eq!(libc::unlockpt(fd), 0);
            let mut buf = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()), 0);
            let size = libc::winsize {
                ws_row: 50,
                ws_col: 200,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            assert_eq!(libc::ioctl(fd, libc::TIOCSWINSZ, &size), 0);
            let name = CStr::from_ptr(buf.as_ptr()).to_str().unwrap().to_owned();
            (File::from_raw_fd(fd), name)
        };
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&name)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trawl"));
        cmd.args(args)
            .env("RUST_LOG", "warn")
            .env_remove("NO_COLOR")
            .env_remove("TRAWL_LLM_BASE_URL")
            .env_remove("TRAWL_LLM_MODEL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(slave);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        drop(cmd); // our copy of the terminal's other end
        let reader = std::thread::spawn(move || {
            let mut master = master;
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            // EIO once the child's end is closed.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            out
        });
        let status = child.wait().unwrap();
        (status.code(), reader.join().unwrap())
    }

    /// The screen a terminal shows after `bytes`: lines of text, with
    /// carriage returns, line clearing and cursor moves applied (what
    /// indicatif and tracing write; other escapes are dropped).
    pub fn screen(bytes: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(bytes);
        let mut lines: Vec<Vec<char>> = vec![Vec::new()];
        let (mut row, mut col) = (0usize, 0usize);
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => col = 0,
                '\n' => {
                    row += 1;
                    if row == lines.len() {
                        lines.push(Vec::new());
                    }
                }
                '\x1b' => {
                    if chars.peek() != Some(&'[') {
                        chars.next();
                        continue;
                    }
                    chars.next();
                    let mut params = String::new();
                    while let Some(&p) = chars.peek() {
                        if p.is_ascii_digit() || p == ';' || p == '?' {
                            params.push(p);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    let n: usize = params.parse().unwrap_or(0);
                    match chars.next() {
                        Some('K') if n == 2 => lines[row].clear(),
                        Some('K') => lines[row].truncate(col),
                        Some('J') => {
                            lines[row].truncate(col);
                            lines.truncate(row + 1);
                        }
                        Some('A') => row = row.saturating_sub(n.max(1)),
                        Some('B') => {
                            row += n.max(1);
                            while lines.len() <= row {
                                lines.push(Vec::new());
                            }
                        }
                        Some('G') => col = n.saturating_sub(1),
                        _ => {} // colours, cursor visibility
                    }
                }
                c => {
                    let line = &mut lines[row];
                    while line.len() < col {
                        line.push(' ');
                    }
                    if col < line.len() {
                        line[col] = c;
                    } else {
                        line.push(c);
                    }
                    col += 1;
                }
            }
        }
        lines.into_iter().map(|l| l.into_iter().collect()).collect()
    }

    #[test]
    fn the_screen_model_applies_clears_and_moves() {
        let s = screen(b"abc\r\x1b[2Kxy\nlog\n\x1b[1A\x1b[2Knew\r\x1b[Kz");
        assert_eq!(s, ["xy", "z", ""]);
    }

    /// Summaries by a slow LLM, one of which fails with a warning while the
    /// progress line is up.
    async fn slow_llm() -> String {
        let l = listener().await;
        let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
        let app = Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(|body: String| async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if body.contains("REFUSE") {
                    let err = serde_json::json!({"error": {"message": "refused", "type": "x"}});
                    return (StatusCode::BAD_REQUEST, err.to_string()).into_response();
                }
                let ok = serde_json::json!({
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "A summary."}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 3},
                });
                ([(header::CONTENT_TYPE, "application/json")], ok.to_string()).into_response()
            }),
        );
        tokio::spawn(async move { axum::serve(l, app).await });
        base
    }

    #[tokio::test]
    async fn the_progress_line_keeps_out_of_log_lines_and_shows_the_summary_wait() {
        let texts = [
            "The first page says something worth a summary.",
            "REFUSE this second page, the model will not summarize it.",
            "The third page has another sentence for the model.",
            "REFUSE the fourth page as well, with a warning logged.",
        ];
        let mut pages = vec![(
            "/",
            page(
                "Home",
                "<p>Home of four pages.</p><a href=\"/p/0\">0</a> <a href=\"/p/1\">1</a> \
                 <a href=\"/p/2\">2</a> <a href=\"/p/3\">3</a>",
            ),
        )];
        let paths = ["/p/0", "/p/1", "/p/2", "/p/3"];
        for (p, t) in paths.iter().zip(texts) {
            pages.push((p, page(p, &format!("<p>{t}</p>"))));
        }
        let s = serve(&pages).await;
        let base = slow_llm().await;
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(dir.path(), "t.db");
        let args = strings(&[
            "crawl",
            &s.url("/"),
            "--db",
            db.target(),
            "--per-host-rate",
            "0",
            "--no-sitemaps",
            "--summarizer",
            "llm",
            "--llm-base-url",
            &base,
            "--llm-model",
            "m",
            "--llm-concurrency",
            "1",
        ]);
        let (code, out) = tokio::task::spawn_blocking(move || on_a_terminal(&args, &[]))
            .await
            .unwrap();
        let raw = String::from_utf8_lossy(&out).into_owned();
        assert_eq!(code, Some(0), "{raw}");
        assert!(
            raw.contains("waiting for summaries: "),
            "the progress line says nothing about the summaries it waits for: {raw:?}"
        );
        let shown = screen(&out);
        let warnings: Vec<&String> = shown.iter().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warnings.len(), 2, "{shown:#?}");
        for w in warnings {
            assert!(
                w.starts_with(|c: char| c.is_ascii_digit()) && w.contains("refused"),
                "a log line drawn into the progress line: {w:?}"
            );
        }
        let frozen: Vec<&String> = shown
            .iter()
            .filter(|l| l.contains("in flight") || l.contains("waiting for summaries"))
            .collect();
        assert!(frozen.is_empty(), "progress lines left behind: {shown:#?}");
        assert!(
            shown.iter().any(|l| l.starts_with("finished: 5 fetched")),
            "{shown:#?}"
        );
    }

    #[tokio::test]
    async fn logs_on_a_terminal_are_coloured_unless_no_color_is_set() {
        let s = small_site().await;
        let dir = tempfile::tempdir().unwrap();
        for (i, env) in [vec![], vec![("NO_COLOR", "1")]].into_iter().enumerate() {
            let db = TestDb::new(dir.path(), &format!("{i}.db"));
            let args = quick_crawl(
                &s.url("/"),
                db.target(),
                &["--no-sitemaps", "--ignore-robots"],
            );
            let env2 = env.clone();
            let (code, out) = tokio::task::spawn_blocking(move || on_a_terminal(&args, &env2))
                .await
                .unwrap();
            let raw = String::from_utf8_lossy(&out).into_owned();
            assert_eq!(code, Some(0), "{raw}");
            assert!(raw.contains("WARN"), "{raw:?}");
            assert_eq!(raw.contains("\x1b["), env.is_empty(), "{env:?}: {raw:?}");
        }
    }
}
