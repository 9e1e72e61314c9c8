//! Test fixtures: HTTP servers on 127.0.0.1:0 that serve the sites under
//! `fixtures/` plus a few dynamic routes, and log every request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

/// The database a test crawls into: an SQLite file in the test's
/// directory, or, when `TRAWL_TEST_DB=postgres`, a fresh PostgreSQL
/// database on the server at `TRAWL_TEST_PG` (default
/// `postgres://postgres@127.0.0.1:5432`), dropped when this is dropped.
pub struct TestDb {
    target: String,
    /// The server's base URL and the database's name, for PostgreSQL.
    pg: Option<(String, String)>,
    pool: tokio::sync::OnceCell<sqlx::AnyPool>,
}

/// Whether the tests run against PostgreSQL: `TRAWL_TEST_DB=postgres`
/// (unset, empty or `sqlite`: SQLite files).
fn postgres() -> bool {
    if crate::POSTGRES {
        return true;
    }
    match std::env::var("TRAWL_TEST_DB").unwrap_or_default().as_str() {
        "" | "sqlite" => false,
        "postgres" | "postgresql" => true,
        other => panic!("TRAWL_TEST_DB={other:?}: expected `sqlite` or `postgres`"),
    }
}

/// The PostgreSQL server the tests use: its URL without a database name
/// (and any `?options` apart).
fn pg_base() -> (String, String) {
    let url = std::env::var("TRAWL_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into());
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (url, String::new()),
    };
    // A database name in the URL is left out: each test gets its own.
    let rest = base.split_once("://").map_or(base.as_str(), |(_, r)| r);
    let base = match rest.find('/') {
        Some(slash) => base[..base.len() - rest.len() + slash].to_string(),
        None => base.clone(),
    };
    (base, query)
}

/// Runs `fut` on a thread of its own with its own runtime: usable from sync
/// code, from async code and from `Drop` inside a `#[tokio::test]`.
fn on_own_runtime<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> std::thread::Result<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(fut)
    })
    .join()
}

/// One statement on the server's `postgres` maintenance database.
async fn maintenance(base: String, query: String, sql: String) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&format!("{base}/postgres{query}")).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

impl TestDb {
    /// A new, empty database: `dir/file` on SQLite (not created yet), a
    /// new database on PostgreSQL. Each call gives a different database.
    pub fn new(dir: &std::path::Path, file: &str) -> TestDb {
        if !postgres() {
            return TestDb::sqlite(dir, file);
        }
        TestDb::postgres()
    }

    /// A new, empty PostgreSQL database whatever `TRAWL_TEST_DB` says, for
    /// the tests of what only PostgreSQL does (several processes on one
    /// crawl).
    pub fn postgres() -> TestDb {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let random = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos(),
            );
            h.finish() & 0xffff_ffff
        };
        let name = format!("trawl_t_{}_{n}_{random:08x}", std::process::id());
        let (base, query) = pg_base();
        let create = format!("CREATE DATABASE \"{name}\"");
        let (b, q) = (base.clone(), query.clone());
        on_own_runtime(maintenance(b, q, create))
            .expect("the thread creating a test database")
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {base}: {e}"));
        TestDb {
            target: format!("{base}/{name}{query}"),
            pg: Some((base, name)),
            pool: Default::default(),
        }
    }

    /// The SQLite file `dir/file` whatever `TRAWL_TEST_DB` says, for the
    /// tests of SQLite files.
    pub fn sqlite(dir: &std::path::Path, file: &str) -> TestDb {
        TestDb {
            target: dir.join(file).display().to_string(),
            pg: None,
            pool: Default::default(),
        }
    }

    /// What a test passes to `Store::open` and to the binary's `--db`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// A small pool for the test's own queries, on either backend (an
    /// SQLite file is opened read-write, and must exist by now). Write SQL
    /// that both run: `$1` placeholders, booleans as `WHERE col` / `NOT
    /// col`, `CAST(SUM(x) AS BIGINT)`; decode `i64`, `f64`, `String` or
    /// `Option`s of them (a boolean column is read as `CASE WHEN col THEN
    /// 1 ELSE 0 END`).
    pub async fn sql(&self) -> sqlx::AnyPool {
        static DRIVERS: std::sync::Once = std::sync::Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        self.pool
            .get_or_init(|| async {
                let url = match &self.pg {
                    Some(_) => self.target.clone(),
                    None => format!("sqlite://{}?mode=rw", self.target),
                };
                sqlx::any::AnyPoolOptions::new()
                    .max_connections(2)
                    .connect(&url)
                    .await
                    .unwrap_or_else(|e| panic!("opening {url} for the test's queries: {e}"))
            })
            .await
            .clone()
    }

    /// Everything the database holds, as bytes: the SQLite file, or a
    /// PostgreSQL database's data as `pg_dump` writes it out (for checks
    /// that a string is stored nowhere).
    pub fn contents(&self) -> Vec<u8> {
        if !self.is_postgres() {
            return std::fs::read(&self.target).unwrap();
        }
        let o = std::process::Command::new("pg_dump")
            .args(["--data-only", "--dbname", &self.target])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run pg_dump");
        assert!(
            o.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, name)) = self.pg.take() else {
            return;
        };
        let (_, query) = pg_base();
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        match on_own_runtime(maintenance(base, query, sql)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("dropping test database {name}: {e}"),
            Err(_) => eprintln!("dropping test database {name}: the thread panicked"),
        }
    }
}

/// A running fixture server.
pub struct Server {
    pub addr: SocketAddr,
    /// Every request as "path?query" with its arrival time, in order.
    pub log: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    /// Requests for pages, in arrival order (robots.txt and /sitemap.xml
    /// left out).
    pub fn requests(&self) -> Vec<String> {
        self.all_requests()
            .into_iter()
            .filter(|p| p != "/robots.txt" && p != "/sitemap.xml")
            .collect()
    }

    /// Every request, robots.txt and sitemaps included.
    pub fn all_requests(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Every request with its arrival time.
    pub fn timed_requests(&self) -> Vec<(Instant, String)> {
        self.log.lock().unwrap().clone()
    }

    /// Requests per path.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for r in self.requests() {
            *m.entry(r).or_insert(0) += 1;
        }
        m
    }

    /// Panics if any path was requested more than once.
    pub fn assert_no_duplicates(&self) {
        let dups: Vec<_> = self.counts().into_iter().filter(|(_, n)| *n > 1).collect();
        assert!(dups.is_empty(), "requested more than once: {dups:?}");
    }
}

struct Ctx {
    root: PathBuf,
    self_port: u16,
    other_port: u16,
    log: Arc<Mutex<Vec<(Instant, String)>>>,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Binds a listener on loopback with an OS-chosen port.
pub async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

/// Serves `fixtures/<site>` on `listener`; `{{SELF}}` and `{{OTHER}}` in
/// HTML files become this server's and `other_port`.
pub fn serve_site(listener: TcpListener, site: &str, other_port: u16) -> Server {
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let ctx = Arc::new(Ctx {
        root: fixtures().join(site),
        self_port: addr.port(),
        other_port,
        log: log.clone(),
    });
    let app = Router::new().fallback(handle).with_state(ctx);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server { addr, log }
}

/// The fixture site on 127.0.0.1 and its peer on `localhost`, each linking
/// to the other.
pub async fn two_hosts() -> (Server, Server) {
    let (a, b) = (listener().await, listener().await);
    let (pa, pb) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    (serve_site(a, "site", pb), serve_site(b, "other", pa))
}

fn redirect(status: StatusCode, to: String) -> Response {
    let mut r = status.into_response();
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_str(&to).unwrap());
    r
}

async fn handle(State(ctx): State<Arc<Ctx>>, req: Request) -> Response {
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    ctx.log.lock().unwrap().push((Instant::now(), pq.clone()));
    let path = req.uri().path().to_string();
    let port = ctx.self_port;
    match path.as_str() {
        "/redirect/start" => {
            return redirect(StatusCode::MOVED_PERMANENTLY, "/redirect/middle".into());
        }
        "/redirect/middle" => {
            return redirect(
                StatusCode::FOUND,
                format!("http://127.0.0.1:{port}/moved.html"),
            );
        }
        "/redirect/away" => {
            return redirect(
                StatusCode::MOVED_PERMANENTLY,
                "http://example.invalid/away".into(),
            );
        }
        "/loop/a" => return redirect(StatusCode::FOUND, "/loop/b".into()),
        "/loop/b" => return redirect(StatusCode::FOUND, "/loop/a".into()),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            return html("<title>slow</title>");
        }
        _ => {}
    }
    if let Some(n) = path
        .strip_prefix("/hop/")
        .and_then(|n| n.parse::<u32>().ok())
    {
        return redirect(StatusCode::FOUND, format!("/hop/{}", n + 1));
    }
    for (prefix, pages) in [("/gen/", GEN_PAGES), ("/big/", BIG_PAGES)] {
        if let Some(n) = path.strip_prefix(prefix).and_then(|n| n.parse().ok()) {
            return generated(prefix, n, pages);
        }
    }
    let mut file = ctx.root.join(path.trim_start_matches('/'));
    if path.ends_with('/') {
        file = file.join("index.html");
    }
    // No escaping the fixture directory.
    if path.contains("..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    match std::fs::read(&file) {
        Ok(bytes) if file.extension().is_some_and(|e| e == "html") => {
            let text = String::from_utf8_lossy(&bytes)
                .replace("{{SELF}}", &ctx.self_port.to_string())
                .replace("{{OTHER}}", &ctx.other_port.to_string());
            html(text)
        }
        Ok(bytes) => {
            let ct = if file.extension().is_some_and(|e| e == "pdf") {
                "application/pdf"
            } else {
                "application/octet-stream"
            };
            ([(header::CONTENT_TYPE, ct)], Body::from(bytes)).into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, html("<title>Not found</title>")).into_response(),
    }
}

/// Pages of the generated site under `/gen/`.
pub const GEN_PAGES: u64 = 400;
/// Pages of the larger generated site under `/big/`.
pub const BIG_PAGES: u64 = 3000;

/// A generated site: `{prefix}N` links to `2N`, `2N+1` and `N+1`, up to `pages`.
fn generated(prefix: &str, n: u64, pages: u64) -> Response {
    if n == 0 || n > pages {
        return (StatusCode::NOT_FOUND, "no").into_response();
    }
    let mut body = format!("<title>Gen {n}</title><p>Generated page {n}.</p>");
    for child in [2 * n, 2 * n + 1, n + 1] {
        if child <= pages {
            body.push_str(&format!("<a href=\"{prefix}{child}\">{child}</a>"));
        }
    }
    html(body)
}

/// A `text/html; charset=utf-8` response.
pub fn html(body: impl Into<Body>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into(),
    )
        .into_response()
}
