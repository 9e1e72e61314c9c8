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
//! The single-writer lock is a session-level advisory lock
//! (`pg_try_advisory_lock`) held by a connection of its own: the server
//! releases it when that connection ends, however the process ends (kill
//! -9, a lost machine: once the server notices the connection is gone).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
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

/// The connection that holds the single-writer lock. Dropping it closes
/// the connection, and the server releases the lock.
#[derive(Debug)]
pub struct PgLock {
    _conn: std::sync::Mutex<PgConnection>,
}

/// The options in `url`, or why they cannot be read.
pub(super) fn options(target: &DbTarget, url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url)
        .map(|o| {
            o.log_statements(tracing::log::LevelFilter::Trace)
                .application_name("trawl")
        })
        .map_err(|e| StoreError::Connect {
            db: target.to_string(),
            why: e.to_string(),
        })
}

/// A connection, or a refusal that says why (server down, login refused,
/// no such database).
pub(super) async fn connect(
    target: &DbTarget,
    options: &PgConnectOptions,
) -> Result<PgConnection, StoreError> {
    let connect = options.connect();
    match tokio::time::timeout(Duration::from_secs(20), connect).await {
        Ok(Ok(c)) => Ok(c),
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
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options.clone())
        .await
        .map_err(|e| StoreError::Connect {
            db: target.to_string(),
            why: describe(&e),
        })
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

/// Takes the single-writer lock on a connection of its own, without
/// waiting.
pub(super) async fn lock(
    target: &DbTarget,
    options: &PgConnectOptions,
) -> Result<PgLock, StoreError> {
    let mut conn = connect(target, options).await?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut conn)
        .await?;
    if !got {
        conn.close().await.ok();
        return Err(StoreError::PgHeld {
            db: target.to_string(),
        });
    }
    Ok(PgLock {
        _conn: std::sync::Mutex::new(conn),
    })
}

/// Whether a process holds the single-writer lock right now (a shared
/// lock is refused while it does).
pub(super) async fn is_held(pool: &PgPool) -> Result<bool, StoreError> {
    let mut conn = pool.acquire().await?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock_shared($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    if got {
        sqlx::query("SELECT pg_advisory_unlock_shared($1)")
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
