//! Crash safety as a user meets it: the real binary killed with SIGKILL and
//! resumed, a second process refused, a stale lock ignored, databases that
//! are not ours (or too new for us) left untouched.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::cli::{assert_usage_error, db_arg, stderr, trawl_async};
use crate::util::{self, Server, TestDb};

const CONCURRENCY: usize = 4;

fn spawn_trawl(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run trawl")
}

fn crawl_args(server: &Server, db: &str) -> Vec<String> {
    [
        "crawl",
        &server.url("/big/1"),
        "--db",
        db,
        "--concurrency",
        &CONCURRENCY.to_string(),
        "--per-host-concurrency",
        &CONCURRENCY.to_string(),
        "--per-host-rate",
        "0",
        "-q",
    ]
    .map(String::from)
    .to_vec()
}

fn resume_args(db: &str) -> Vec<String> {
    ["resume", "--db", db, "-q"].map(String::from).to_vec()
}

/// Waits until `server` has seen `requests` requests, then SIGKILLs `child`.
async fn kill_at(mut child: Child, server: &Server, requests: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.requests().len() < requests {
        assert!(
            Instant::now() < deadline,
            "crawl never reached {requests} requests"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("trawl exited ({status}) before {requests} requests");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Paths of the URLs with a stored page, and the number of page rows.
async fn stored_pages(db: &TestDb) -> (BTreeSet<String>, usize) {
    let urls: Vec<String> = sqlx::query_scalar(
        "SELECT u.url FROM pages p JOIN urls u ON u.id = p.url_id WHERE NOT u.sitemap",
    )
    .fetch_all(&db.sql().await)
    .await
    .unwrap();
    let n = urls.len();
    let paths = urls
        .iter()
        .map(|u| url::Url::parse(u).unwrap().path().to_string())
        .collect();
    (paths, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_several_points_then_resume_matches_an_uninterrupted_crawl() {
    // The reference: one uninterrupted crawl.
    let reference = util::serve_site(util::listener().await, "site", 0);
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let o = trawl_async(crawl_args(&reference, tdb.target())).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (expected, rows) = stored_pages(&tdb).await;
    assert_eq!(expected.len() as u64, util::BIG_PAGES);
    assert_eq!(rows, expected.len());
    let reference_requests = reference.requests().len();
    reference.assert_no_duplicates();

    // The same crawl, killed early, in the middle (three times, while
    // batches are being committed continuously) and resumed each time.
    let server = util::serve_site(util::listener().await, "site", 0);
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let kill_points = [1, 400, 1200, 1900, 2600];
    for (i, at) in kill_points.into_iter().enumerate() {
        let args = if i == 0 {
            crawl_args(&server, &db)
        } else {
            resume_args(&db)
        };
        kill_at(spawn_trawl(&args), &server, at).await;
        // SQLite file behaviour: the lock file.
        assert!(
            tdb.is_postgres() || crate::cli::lock_file(&db).exists(),
            "a killed process leaves its lock file behind"
        );
    }
    // The stale lock does not stand in the way.
    let o = trawl_async(resume_args(&db)).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(tdb.is_postgres() || !crate::cli::lock_file(&db).exists());

    let (stored, rows) = stored_pages(&tdb).await;
    assert_eq!(rows, stored.len(), "no page stored twice");
    let missing: Vec<_> = expected.difference(&stored).take(5).collect();
    let extra: Vec<_> = stored.difference(&expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not the pages of the uninterrupted crawl: missing {missing:?}, extra {extra:?}"
    );
    let total = server.requests().len();
    let kills = kill_points.len();
    eprintln!("requests: {total} with {kills} kills, {reference_requests} without");
    // A kill costs the fetches in flight and those waiting for their
    // batch's commit.
    let per_kill = CONCURRENCY + trawl::crawl::uncommitted_bound(CONCURRENCY);
    assert!(
        total <= reference_requests + per_kill * kills,
        "{total} requests; uninterrupted: {reference_requests}, allowed extra: {}",
        per_kill * kills
    );
    // Every refetch is of a page in flight at a kill, so none is fetched
    // more than once per kill.
    let worst = server.counts().into_values().max().unwrap();
    assert!(worst <= 1 + kills, "a page fetched {worst} times");
}

/// A disk that fills up in the middle of a crawl. A file size limit on the
/// process makes every write past 1 MiB fail, as a full disk does: the
/// crawl stops with exit 1 and says why and what to do; the database still
/// opens, and `resume` (with room again) finishes the crawl, fetching again
/// only what was in flight.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_crawl_with_its_reason_and_resume_finishes_it() {
    // SQLite file behaviour
    use std::os::unix::process::CommandExt;

    const LIMIT: libc::rlim_t = 1 << 20;
    let server = util::serve_site(util::listener().await, "site", 0);
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::sqlite(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let args = crawl_args(&server, &db);
    let o = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trawl"));
        cmd.args(&args).env("RUST_LOG", "warn").stdin(Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // A write past the limit then fails with EFBIG instead of
                // killing the process.
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let limit = libc::rlimit {
                    rlim_cur: LIMIT,
                    rlim_max: LIMIT,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot write to {db}")), "{err}");
    assert!(err.contains(&format!("trawl resume --db {db}")), "{err}");
    let before = server.requests().len();
    assert!((before as u64) < util::BIG_PAGES, "{before} requests");

    let o = trawl_async(["status", "--db", &db].map(String::from).to_vec()).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = trawl_async(resume_args(&db)).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (stored, rows) = stored_pages(&tdb).await;
    assert_eq!(stored.len() as u64, util::BIG_PAGES);
    assert_eq!(rows, stored.len());
    let total = server.requests().len();
    assert!(
        total
            <= util::BIG_PAGES as usize
                + CONCURRENCY
                + trawl::crawl::uncommitted_bound(CONCURRENCY),
        "{total} requests for {} pages",
        util::BIG_PAGES
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_database_is_refused() {
    let server = util::serve_site(util::listener().await, "site", 0);
    let dir = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(dir.path(), "t.db");
    let db = tdb.target().to_string();
    let mut args = crawl_args(&server, &db);
    // Slow enough to still be running while the others try.
    let rate = args.iter().position(|a| a == "--per-host-rate").unwrap();
    args[rate + 1] = "5".into();
    let mut first = spawn_trawl(&args);
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.requests().is_empty() {
        assert!(Instant::now() < deadline, "first crawl never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = format!("pid {}", first.id());
    for cmd in [crawl_args(&server, &db), resume_args(&db)] {
        let o = trawl_async(cmd).await;
        assert_usage_error(&o, "is in use by another trawl process");
        assert!(stderr(&o).contains(&pid), "{}", stderr(&o));
    }
    // Reading beside the running crawl is allowed.
    let o = trawl_async(["status", "--db", &db].map(String::from).to_vec()).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let status = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(status.contains("(running)"), "{status}");

    first.kill().unwrap();
    first.wait().unwrap();
    let o = trawl_async(["status", "--db", &db].map(String::from).to_vec()).await;
    let status = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(status.contains("interrupted"), "{status}");
    let requests_before = server.requests().len();
    assert!((requests_before as u64) < util::BIG_PAGES);
}

/// A finished crawl's database, with its bytes as they are on disk.
/// (SQLite file behaviour, as are the tests that use it.)
async fn finished_db(dir: &Path) -> (String, Vec<u8>) {
    let server = util::serve_site(util::listener().await, "site", 0);
    let db = db_arg(dir);
    let o = trawl_async(
        [
            "crawl",
            &server.url("/gen/1"),
            "--db",
            &db,
            "--per-host-rate",
            "0",
            "--max-pages",
            "5",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bytes = std::fs::read(&db).unwrap();
    (db, bytes)
}

/// Every command refuses `db` with `why` and leaves it byte for byte.
async fn assert_every_command_refuses(db: &str, why: &str) {
    let before = std::fs::read(db).unwrap();
    for args in [
        vec!["crawl", "http://127.0.0.1:9/", "--db", db],
        vec!["resume", "--db", db],
        vec!["status", "--db", db],
        vec!["export", "--db", db],
    ] {
        let o = trawl_async(args.iter().map(|s| s.to_string()).collect()).await;
        assert_usage_error(&o, why);
        assert_eq!(
            std::fs::read(db).unwrap(),
            before,
            "{args:?} changed the file"
        );
        // A read-only look may leave an empty WAL file; never content.
        let wal = std::fs::metadata(format!("{db}-wal")).map_or(0, |m| m.len());
        assert_eq!(wal, 0, "{args:?} wrote to the WAL");
    }
}

#[tokio::test]
async fn a_database_from_a_newer_trawl_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = finished_db(dir.path()).await;
    let mut conn = SqliteConnectOptions::new()
        .filename(&db)
        .connect()
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', 1, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert_every_command_refuses(&db, "was written by a newer trawl (schema version 9999").await;
}

#[tokio::test]
async fn an_sqlite_database_that_is_not_trawls_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(dir.path());
    let mut conn = SqliteConnectOptions::new()
        .filename(&db)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::query("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO notes (body) VALUES ('mine')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert_every_command_refuses(&db, "is an SQLite database but not a trawl database").await;
}
