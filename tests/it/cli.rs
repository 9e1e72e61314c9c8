//! The `trawl` binary as a user runs it: exit codes, messages, export.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::util::{self, TestDb};

pub fn trawl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run trawl")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit status 2 and a message that says `why`.
pub fn assert_usage_error(o: &Output, why: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    assert!(stderr(o).contains(why), "{}", stderr(o));
}

pub async fn trawl_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        trawl(&refs)
    })
    .await
    .unwrap()
}

/// `trawl crawl SEED --db DB --per-host-rate 0 -q` and `extra`: a quick,
/// quiet crawl.
pub fn quick_crawl(seed: &str, db: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["crawl", seed, "--db", db, "--per-host-rate", "0", "-q"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// The SQLite file `t.db` in `dir`, for the tests of SQLite files (the
/// others crawl into a [`TestDb`]).
pub fn db_arg(dir: &Path) -> String {
    dir.join("t.db").display().to_string()
}

#[test]
fn bad_seed_is_a_usage_error() {
    // SQLite file behaviour: nothing is created.
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(dir.path());
    let o = trawl(&["crawl", "not a url", "--db", &db]);
    assert_usage_error(&o, "bad seed URL");
    assert_eq!(
        stderr(&o).lines().count(),
        1,
        "one-line reason: {}",
        stderr(&o)
    );
    assert!(
        !dir.path().join("t.db").exists(),
        "nothing created for a bad command"
    );
}

#[test]
fn unsupported_scheme_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path(), "t.db");
    let o = trawl(&["crawl", "ftp://example.com/", "--db", db.target()]);
    assert_usage_error(&o, "unsupported scheme `ftp`");
}

#[test]
fn missing_database_directory_is_a_usage_error() {
    let o = trawl(&[
        "crawl",
        "http://127.0.0.1:9/",
        "--db",
        "/nonexistent-dir/sub/t.db",
    ]);
    assert_usage_error(&o, "directory /nonexistent-dir/sub does not exist");
}

#[test]
fn reading_commands_refuse_a_missing_database_without_creating_it() {
    // SQLite file behaviour
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(dir.path());
    for cmd in ["status", "export"] {
        let o = trawl(&[cmd, "--db", &db]);
        assert_usage_error(&o, "does not exist");
        assert!(
            !dir.path().join("t.db").exists(),
            "`{cmd}` created the database"
        );
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    std::fs::write(
        &path,
        b"hello, this is not sqlite at all, just text long enough to look like a header",
    )
    .unwrap();
    let before = std::fs::read(&path).unwrap();
    let o = trawl(&[
        "crawl",
        "http://127.0.0.1:9/",
        "--db",
        &path.display().to_string(),
    ]);
    assert_usage_error(&o, "is not an SQLite database");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn crawl_then_export_pages_as_jsonl() {
    let (a, _b) = util::two_hosts().await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let o = trawl_async(quick_crawl(&a.url("/"), &db, &["--fetch-assets"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary = stderr(&o);
    assert!(summary.contains("finished: 14 fetched"), "{summary}");
    assert!(summary.contains("2 failed [http_404=1,"), "{summary}");
    // robots.txt names no sitemap, so /sitemap.xml was tried; its 404 is
    // reported on its own, not as a failed page.
    assert!(
        summary.contains("; sitemaps: failed:http_404=1"),
        "{summary}"
    );
    assert!(a.all_requests().contains(&"/sitemap.xml".to_string()));

    let o = trawl_async(vec![
        "export".into(),
        "--db".into(),
        db.clone(),
        "--what".into(),
        "pages".into(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stdout = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 14);
    let home = rows
        .iter()
        .find(|r| r["url"] == a.url("/"))
        .expect("home page exported");
    assert_eq!(home["status"], 200);
    assert_eq!(home["depth"], 0);
    assert_eq!(home["title"], "Fixture Home");
    let fetched_at = home["fetched_at"].as_str().unwrap();
    assert!(
        fetched_at.len() == 24 && fetched_at.ends_with('Z'),
        "{fetched_at}"
    );

    // Stable output, and --out writes the same bytes.
    let again = trawl_async(vec![
        "export".into(),
        "--db".into(),
        db.clone(),
        "--what".into(),
        "pages".into(),
    ])
    .await;
    assert_eq!(String::from_utf8(again.stdout).unwrap(), stdout);
    let out = dir.path().join("pages.jsonl");
    let o = trawl_async(vec![
        "export".into(),
        "--db".into(),
        db.clone(),
        "--what".into(),
        "pages".into(),
        "--out".into(),
        out.display().to_string(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), stdout);

    // A second crawl into the same database points to resume.
    let o = trawl_async(vec!["crawl".into(), a.url("/"), "--db".into(), db.clone()]).await;
    assert_usage_error(&o, "trawl resume");

    let o = trawl_async(vec!["status".into(), "--db".into(), db]).await;
    let status = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        status.contains("finished") && status.contains("http_404=1"),
        "{status}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn sigint_stops_gracefully_and_resume_completes() {
    signal_stops_gracefully_and_resume_completes("-INT", 130).await;
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_gracefully_and_resume_completes() {
    signal_stops_gracefully_and_resume_completes("-TERM", 143).await;
}

#[cfg(unix)]
async fn signal_stops_gracefully_and_resume_completes(signal: &str, code: i32) {
    let (a, _b) = util::two_hosts().await;
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args([
            "crawl",
            &a.url("/gen/1"),
            "--db",
            &db,
            "--per-host-rate",
            "10",
            "--per-host-concurrency",
            "1",
            "-q",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the crawl is under way (however slowly the machine starts
    // the process), then a little more.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while a.requests().len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
    assert!(stderr(&o).contains("trawl resume --db"), "{}", stderr(&o));
    let before = a.requests().len();
    assert!(before > 0 && (before as u64) < util::GEN_PAGES);

    let o = trawl_async(vec![
        "resume".into(),
        "--db".into(),
        db,
        "--per-host-rate".into(),
        "0".into(),
        "-q".into(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    a.assert_no_duplicates();
    assert_eq!(a.requests().len() as u64, util::GEN_PAGES);
}

/// The single-writer lock file beside `db`.
pub fn lock_file(db: &str) -> std::path::PathBuf {
    trawl::store::lock::lock_path(Path::new(db))
}

#[tokio::test]
async fn no_sitemaps_reads_none() {
    let a = util::serve_site(util::listener().await, "site", 0);
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path(), "t.db");
    let o = trawl_async(quick_crawl(&a.url("/"), db.target(), &["--no-sitemaps"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("sitemaps:"), "{}", stderr(&o));
    let all = a.all_requests();
    assert!(all.len() > 10, "{all:?}");
    assert!(!all.iter().any(|p| p.contains("sitemap")), "{all:?}");
}

#[tokio::test]
async fn a_config_file_sets_options_and_flags_override_it() {
    let a = util::serve_site(util::listener().await, "site", 0);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trawl.toml");
    std::fs::write(
        &config,
        format!(
            "seeds = [\"{}\"]\nmax-pages = 3\n\n[politeness]\nper-host-rate = 0\nno-sitemaps = true\n\n[summaries]\nno-summaries = true\n",
            a.url("/")
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let o = trawl_async(vec![
        "crawl".into(),
        "--config".into(),
        config.clone(),
        "--db".into(),
        db.clone(),
        "--max-pages".into(),
        "5".into(),
        "-q".into(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The flag's budget, the file's seed, rate and switches.
    assert!(stderr(&o).contains("finished: 5 fetched"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("summaries:"), "{}", stderr(&o));
    assert!(!a.all_requests().iter().any(|p| p.contains("sitemap")));

    // A bad file is a usage error that names the problem.
    std::fs::write(&config, "max-pages = \"many\"\nllm_api_key = \"sk-x\"\n").unwrap();
    let o = trawl_async(vec![
        "crawl".into(),
        "--config".into(),
        config,
        "--db".into(),
        db,
    ])
    .await;
    assert_usage_error(&o, "secrets are read only from the environment");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let o = trawl(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let script = String::from_utf8(o.stdout).unwrap();
        assert!(script.contains("max-pages"), "{shell}");
    }
}

#[tokio::test]
async fn fail_on_error_turns_failed_pages_into_exit_1() {
    let a = util::serve_site(util::listener().await, "site", 0);
    let dir = tempfile::tempdir().unwrap();
    let run =
        |db: &TestDb, extra: &[&str]| trawl_async(quick_crawl(&a.url("/"), db.target(), extra));
    // The fixture has a broken link: by default that is information...
    let o = run(&TestDb::new(dir.path(), "a.db"), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("http_404=1"), "{}", stderr(&o));
    // ...and with --fail-on-error a failure.
    let o = run(&TestDb::new(dir.path(), "b.db"), &["--fail-on-error"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

/// A crawl says at its start what pace politeness sets and how to lift
/// it: a first crawl of one's own site at 2 requests a second is slow for
/// a reason the user can see.
#[tokio::test]
async fn a_crawl_says_its_politeness_at_the_start() {
    let a = util::serve_site(util::listener().await, "site", 0);
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let (url, db) = (a.url("/"), tdb.target().to_string());
    let o = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args(["crawl", &url, "--db", &db, "--per-host-rate", "50"])
            .args(["--max-pages", "2", "--no-sitemaps"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("run trawl")
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "politeness: at most 50 requests a second and 2 at once per host (--per-host-rate"
        ),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("--per-host-rate 0 lifts the rate"),
        "{}",
        stderr(&o)
    );
}

/// A crawl whose every fetch failed got nothing: a seed answered 404
/// exits 1 and says so, though the 404 is stored.
#[tokio::test]
async fn a_crawl_whose_every_fetch_failed_exits_1() {
    let a = util::serve_site(util::listener().await, "site", 0);
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let o = trawl_async(quick_crawl(&a.url("/no-such-page.html"), tdb.target(), &[])).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("http_404=1"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("every page fetched failed"),
        "{}",
        stderr(&o)
    );
}

/// A reader of standard error that goes away (`trawl crawl … 2>&1 |
/// head -1`) does not turn a finished crawl into a panic's exit code.
#[tokio::test]
async fn a_closed_stderr_leaves_the_exit_code_the_crawls() {
    let a = util::serve_site(util::listener().await, "site", 0);
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let args = quick_crawl(&a.url("/"), tdb.target(), &[]);
    let status = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run trawl");
        // The reader is gone before the first line is written.
        drop(child.stderr.take());
        child.wait().expect("wait for trawl")
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!a.requests().is_empty());
}

#[tokio::test]
async fn resume_with_a_higher_per_host_budget_fetches_the_trapped_pages() {
    let a = util::serve_site(util::listener().await, "site", 0);
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let extra = ["--no-sitemaps", "--max-pages-per-host", "50"];
    let o = trawl_async(quick_crawl(&a.url("/gen/1"), &db, &extra)).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(a.requests().len(), 50);
    // 0: no budget.
    let resume = ["resume", "--db", &db, "--max-pages-per-host", "0", "-q"];
    let o = trawl_async(resume.map(String::from).to_vec()).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    a.assert_no_duplicates();
    assert_eq!(a.requests().len() as u64, util::GEN_PAGES);
}
