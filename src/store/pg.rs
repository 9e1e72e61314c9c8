//! Opening a PostgreSQL database: the backend for a crawl that outgrows
//! one SQLite file.
//!
//! In: a `postgres://` URL. Out: a connection pool and, for a writer, the
//! single-writer lock, or a refusal that names the problem: the server
//! cannot be reached or refuses the login (the URL is printed with its
//! password hidden), the database holds tables that are not trawl's, or
//! its schema is newer than this binary.
//!
//! One database holds one crawl, as one SQLite file does. The schema is
//! the SQLite one with PostgreSQL's types (`migrations-postgres/`, the
//! same versions): `BIGINT` for every integer, `BOOLEAN` for flags, `TEXT
//! COLLATE "C"` so text sorts bytewise as in SQLite.
//!
//! Processes that write hold a session-level advisory lock on a
//! connection of their own: the server releases it when that connection
//! ends, however the process ends (kill -9, a lost machine: once the
//! server notices the connection is gone). A process that starts, resumes
//! or recrawls the crawl takes it exclusive, so nothing else runs while it
//! brings the schema up to date and puts a dead run's leases back in the
//! queue; then it shares it, and `trawl join` processes share it too. A
//! reader knows a crawl is running when it cannot take it exclusive.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection, PgConnection};

use super::{DbTarget, StoreError};

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-postgres");

/// The advisory lock key of a trawl database (`"trawl\0\0\1"`): one crawl
/// per database, so one key.
const LOCK_KEY: i64 = 0x7472_6177_6c00_0001;

/// What is in a PostgreSQL database before trawl touches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// No table in its schema: a new crawl can be made.
    Blank,
    /// A trawl database; `current` is false when migrations must run.
    Trawl { current: bool },
}

/// The connection that holds the crawl's advisory lock. Dropping it
/// closes the connection, and the server releases the lock.
#[derive(Debug)]
pub struct PgLock {
    conn: tokio::sync::Mutex<PgConnection>,
}

impl PgLock {
    /// Turns an exclusive hold into a shared one (processes may join).
    pub(super) async fn share(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.lock().await;
        sqlx::query("SELECT pg_advisory_lock_shared($1)")
            .bind(LOCK_KEY)
            .execute(&mut *conn)
            .await?;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// How the advisory lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LockMode {
    /// Alone: to create, resume or recrawl the crawl.
    Exclusive,
    /// Beside other processes of the same crawl (`trawl join`).
    Shared,
}

/// The options in `url`, or why they cannot be read.
pub(super) fn options(target: &DbTarget, url: &str) -> Result<PgConnectOptions, StoreError> {
    // A URL without a database would land in the server's default one
    // (`postgres`, or the user's): refused, as one crawl needs a database
    // of its own.
    let parsed = url::Url::parse(url).ok();
    let named = parsed
        .as_ref()
        .is_some_and(|u| !u.path().trim_start_matches('/').is_empty())
        || url.contains("dbname=");
    if !named {
        return Err(StoreError::Connect {
            db: target.to_string(),
            why: "the URL names no database; give one of the crawl's own, postgres://user@host/dbname (createdb dbname)".into(),
        });
    }
    // rustls (for `sslmode=require` and above) needs its crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let o = PgConnectOptions::from_str(url).map_err(|e| StoreError::Connect {
        db: target.to_string(),
        why: e.to_string(),
    })?;
    let o = o
        .log_statements(tracing::log::LevelFilter::Trace)
        .application_name("trawl");
    let chosen = parsed.is_some_and(|u| {
        u.query_pairs()
            .any(|(k, _)| k == "sslmode" || k == "ssl-mode")
    }) || std::env::var_os("PGSSLMODE").is_some();
    Ok(if !chosen && is_loopback(o.get_host()) {
        // The default (`prefer`) would use TLS whenever the server offers
        // it. On the machine's own loopback TLS protects nothing, and it
        // costs dearly: sqlx 0.9 leaves Nagle's algorithm on, so each
        // statement larger than a TLS record waited for the server's
        // delayed ACK, about 40 ms (a crawl into a local server went at a
        // fifth of its speed).
        o.ssl_mode(PgSslMode::Disable)
    } else {
        o
    })
}

/// Whether `host` is this machine's loopback: `localhost`, 127.0.0.0/8,
/// `::1` (a Unix socket directory has no TLS either).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.starts_with('/')
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A connection, or a refusal that says why (server down, login refused,
/// no such database).
pub(super) async fn connect(
    target: &DbTarget,
    options: &PgConnectOptions,
) -> Result<PgConnection, StoreError> {
    let connect = options.connect();
    match tokio::time::timeout(Duration::from_secs(20), connect).await {
        Ok(Ok(c)) => {
            no_delay(options.get_port());
            Ok(c)
        }
        Ok(Err(e)) => Err(StoreError::Connect {
            db: target.to_string(),
            why: describe(&e),
        }),
        Err(_) => Err(StoreError::Connect {
            db: target.to_string(),
            why: "no answer from the server within 20 s".into(),
        }),
    }
}

/// A pool of `size` connections.
pub(super) async fn pool(
    target: &DbTarget,
    options: &PgConnectOptions,
    size: u32,
) -> Result<PgPool, StoreError> {
    let port = options.get_port();
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |_, _| {
            Box::pin(async move {
                no_delay(port);
                Ok(())
            })
        })
        .connect_with(options.clone())
        .await
        .map_err(|e| StoreError::Connect {
            db: target.to_string(),
            why: describe(&e),
        })
}

/// Turns Nagle's algorithm off (`TCP_NODELAY`) on this process's TCP
/// connections to `port`, the database server's, as libpq does on every
/// connection. sqlx 0.9.0 leaves it on (transact-rs/sqlx#4335, fixed after
/// that release) and offers no option or access to its sockets, so the
/// descriptors are found in `/dev/fd`. With Nagle's algorithm on, a
/// message written in two parts (a `COPY`'s data, then its end; the last
/// segment of a multi-row statement larger than a TCP segment) waits for
/// the server's delayed acknowledgement, 40 ms on Linux: a crawl into a
/// server on the same machine went 25–30% slower. A descriptor that is not
/// such a socket, or that another thread closes meanwhile, is left as it
/// is (the calls fail); one of ours reused for another TCP connection to
/// that port gets the option too, which is what it should have.
fn no_delay(port: u16) {
    #[cfg(unix)]
    {
        let Ok(dir) = std::fs::read_dir("/dev/fd") else {
            return;
        };
        for entry in dir.flatten() {
            let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if peer_port(fd) == Some(port) {
                let one: libc::c_int = 1;
                // SAFETY: setsockopt reads `one` (its size given) and
                // changes nothing else; a stale descriptor makes it fail.
                unsafe {
                    libc::setsockopt(
                        fd,
                        libc::IPPROTO_TCP,
                        libc::TCP_NODELAY,
                        (&one as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    );
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = port;
}

/// The remote port of `fd` if it is a connected TCP socket (IPv4 or IPv6).
#[cfg(unix)]
fn peer_port(fd: libc::c_int) -> Option<u16> {
    // SAFETY: getpeername writes at most `len` bytes into `addr`, a
    // sockaddr_storage, large enough for any address.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let got = unsafe {
        libc::getpeername(
            fd,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if got != 0 {
        return None;
    }
    if int_option(fd, libc::SOL_SOCKET, libc::SO_TYPE) != Some(libc::SOCK_STREAM) {
        return None;
    }
    match i32::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a: &libc::sockaddr_in =
                unsafe { &*(&addr as *const libc::sockaddr_storage).cast() };
            Some(u16::from_be(a.sin_port))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 =
                unsafe { &*(&addr as *const libc::sockaddr_storage).cast() };
            Some(u16::from_be(a.sin6_port))
        }
        _ => None,
    }
}

/// An integer socket option of `fd` (`getsockopt`), `None` when the call
/// fails (not a socket, closed meanwhile).
#[cfg(unix)]
fn int_option(fd: libc::c_int, level: libc::c_int, name: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`, an int.
    let got = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (got == 0).then_some(value)
}

/// The server's message for a database error; the I/O error for a
/// connection that could not be made.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// What the database holds: no tables, or trawl's at some version.
pub(super) async fn inspect(
    target: &DbTarget,
    conn: &mut PgConnection,
) -> Result<Found, StoreError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::TEXT FROM pg_tables WHERE schemaname = current_schema()",
    )
    .fetch_all(&mut *conn)
    .await?;
    if tables.is_empty() {
        return Ok(Found::Blank);
    }
    if !tables.iter().any(|t| t == "_sqlx_migrations") || !tables.iter().any(|t| t == "crawls") {
        return Err(StoreError::PgNotTrawl {
            db: target.to_string(),
        });
    }
    let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&mut *conn)
        .await?;
    let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    match found {
        Some(found) if found > known => Err(StoreError::NewerSchema {
            path: target.to_string().into(),
            found,
            known,
        }),
        found => Ok(Found::Trawl {
            current: found == Some(known),
        }),
    }
}

/// Takes the crawl's advisory lock on a connection of its own. Exclusive
/// does not wait; shared waits up to 10 s for a process that holds it
/// exclusive while it starts (resuming a crawl takes a moment).
pub(super) async fn lock(
    target: &DbTarget,
    options: &PgConnectOptions,
    mode: LockMode,
) -> Result<PgLock, StoreError> {
    let mut conn = connect(target, options).await?;
    let sql = match mode {
        LockMode::Exclusive => "SELECT pg_try_advisory_lock($1)",
        LockMode::Shared => "SELECT pg_try_advisory_lock_shared($1)",
    };
    let mut tries = 0;
    loop {
        let got: bool = sqlx::query_scalar(sql)
            .bind(LOCK_KEY)
            .fetch_one(&mut conn)
            .await?;
        if got {
            return Ok(PgLock {
                conn: tokio::sync::Mutex::new(conn),
            });
        }
        tries += 1;
        if mode == LockMode::Exclusive || tries >= 40 {
            conn.close().await.ok();
            return Err(match mode {
                LockMode::Exclusive => StoreError::PgHeld {
                    db: target.to_string(),
                    who: String::new(),
                },
                LockMode::Shared => StoreError::PgStarting {
                    db: target.to_string(),
                },
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The processes working on the crawl, for a refusal: ` (pid 12 on
/// host-a, pid 34 on host-b)`, or nothing when they cannot be told.
pub(super) async fn holders(conn: &mut PgConnection) -> String {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT pid, hostname FROM processes WHERE finished_at IS NULL AND heartbeat_at > $1 \
         ORDER BY id DESC LIMIT 5",
    )
    .bind(crate::util::now_ms() - super::processes::LOST_AFTER.as_millis() as i64)
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    if rows.is_empty() {
        return String::new();
    }
    let list: Vec<String> = rows
        .iter()
        .map(|(pid, host)| format!("pid {pid} on {host}"))
        .collect();
    format!(" ({})", list.join(", "))
}

/// Whether any process holds the crawl's advisory lock right now (an
/// exclusive one is refused while it does).
pub(super) async fn is_held(pool: &PgPool) -> Result<bool, StoreError> {
    let mut conn = pool.acquire().await?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    if got {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .execute(&mut *conn)
            .await?;
    }
    Ok(!got)
}

/// Brings the schema up to date (the caller holds the lock).
pub(super) async fn migrate(target: &DbTarget, pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|source| StoreError::Migrate {
            path: target.to_string().into(),
            source,
        })
}

/// The PostgreSQL server the unit tests use: `TRAWL_TEST_PG` (a URL
/// without a database name), by default `postgres://postgres@127.0.0.1:5432`,
/// as `.ci/run` and the integration tests have it.
#[cfg(test)]
pub(crate) fn test_server() -> String {
    std::env::var("TRAWL_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> PgSslMode {
        let target = DbTarget::Postgres(url.to_string());
        options(&target, url).expect("options").get_ssl_mode()
    }

    #[test]
    fn loopback_servers_are_reached_without_tls_unless_asked() {
        // (PGSSLMODE, when set, is the user's choice and is kept.)
        if std::env::var_os("PGSSLMODE").is_some() {
            return;
        }
        for url in [
            "postgres://u@127.0.0.1/db",
            "postgres://u@127.0.0.2:5433/db",
            "postgres://u@localhost/db",
            "postgres://u@[::1]/db",
        ] {
            assert!(matches!(mode(url), PgSslMode::Disable), "{url}");
        }
        assert!(matches!(
            mode("postgres://u@db.example.com/db"),
            PgSslMode::Prefer
        ));
        assert!(matches!(
            mode("postgres://u@127.0.0.1/db?sslmode=require"),
            PgSslMode::Require
        ));
        assert!(matches!(
            mode("postgres://u@localhost/db?sslmode=prefer"),
            PgSslMode::Prefer
        ));
    }

    /// Whether Nagle's algorithm is off on every TCP connection of this
    /// process to `port` (and how many there are).
    #[cfg(unix)]
    fn nodelay_on_all(port: u16) -> (bool, usize) {
        let mut all = true;
        let mut n = 0;
        for entry in std::fs::read_dir("/dev/fd").unwrap().flatten() {
            let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if peer_port(fd) != Some(port) {
                continue;
            }
            all &= int_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY).is_some_and(|on| on != 0);
            n += 1;
        }
        (all, n)
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn connections_to_the_server_send_at_once_without_nagle() {
        let url = format!("{}/postgres", super::test_server());
        let target = DbTarget::Postgres(url.clone());
        let options = options(&target, &url).unwrap();
        let port = options.get_port();
        let mut conn = connect(&target, &options).await.unwrap();
        let pool = pool(&target, &options, 2).await.unwrap();
        let mut pooled = pool.acquire().await.unwrap();
        let (on, n) = nodelay_on_all(port);
        assert!(n >= 2, "{n} connections to port {port} found");
        assert!(on, "a connection to the server kept Nagle's algorithm on");
        // Both still work.
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let two: i32 = sqlx::query_scalar("SELECT 2")
            .fetch_one(&mut *pooled)
            .await
            .unwrap();
        assert_eq!((one, two), (1, 2));
    }
}
