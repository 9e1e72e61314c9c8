//! Storage: the SQLite database that is the crawl's source of truth.
//!
//! In: a path. Out: a [`Store`] with a read pool, plus one dedicated
//! connection for the [`writer`] task, the only code that writes during a
//! crawl.
//!
//! Opening is careful: a file that is not SQLite, an SQLite file that trawl
//! did not make, or a database from a newer trawl is refused before anything
//! in it is changed.

pub mod lock;
pub mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};

use crate::util::now_ms;
use lock::{DbLock, LockError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Failures of the storage layer. None is retryable within a crawl: when
/// the database cannot be written, the crawl stops (what was committed stays).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create database {path}: directory {dir} does not exist")]
    MissingDir { path: PathBuf, dir: PathBuf },
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("{path} is not an SQLite database")]
    NotADatabase { path: PathBuf },
    #[error(
        "{path} is an SQLite database but not a trawl database (it has other tables); refusing to touch it"
    )]
    NotTrawl { path: PathBuf },
    #[error(
        "{path} was written by a newer trawl (schema version {found}, this trawl knows up to {known}); upgrade trawl"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("cannot migrate database {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("the database writer has stopped")]
    WriterGone,
}

impl StoreError {
    /// What kept the database from being written, when the disk rather
    /// than the data is at fault: `SQLITE_FULL` (no space left), or an
    /// I/O error (`SQLITE_IOERR` and its extended codes; a file size limit
    /// gives one).
    pub fn disk_failure(&self) -> Option<&'static str> {
        let StoreError::Sql(sqlx::Error::Database(e)) = self else {
            return None;
        };
        let code: i32 = e.code()?.parse().ok()?;
        match code & 0xff {
            13 => Some("the disk is full"),
            10 => Some("a disk I/O error (a full disk, a file size limit or a failing device)"),
            _ => None,
        }
    }
}

/// Lifecycle state of a crawl, as stored in `crawls.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrawlState {
    Running,
    Stopped,
    Finished,
}

impl CrawlState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Finished => "finished",
        }
    }
}

/// A row of `crawls`.
#[derive(Debug, Clone)]
pub struct CrawlRow {
    pub id: i64,
    pub state: String,
    pub config: String,
    pub started_at: i64,
}

/// An open trawl database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    options: SqliteConnectOptions,
    path: PathBuf,
    /// Held for as long as any clone of a writing store lives.
    _lock: Option<Arc<DbLock>>,
}

/// What the opener means to do with the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Crawl into it: takes the single-writer lock for the store's life.
    Write,
    /// Only read (status, export): works beside a running crawl, and takes
    /// the lock only for as long as bringing the schema up to date needs.
    Read,
}

impl Store {
    /// Opens (creating if missing) the database at `path` for writing,
    /// holding its lock, and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, Access::Write).await
    }

    /// Opens the database at `path` as `access` says.
    pub async fn open_with(path: &Path, access: Access) -> Result<Store, StoreError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(StoreError::MissingDir {
                path: path.to_path_buf(),
                dir,
            });
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        // The lock comes first: nothing, not even the inspection, should
        // race a process that is migrating the file.
        let lock = match DbLock::acquire(path) {
            Ok(lock) => Some(lock),
            // A running crawl has brought the schema up to date already.
            Err(LockError::Held { .. }) if access == Access::Read => None,
            Err(e) => return Err(e.into()),
        };
        if path.exists() {
            inspect_existing(path).await?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(open_err)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-8000")
            .log_statements(tracing::log::LevelFilter::Trace);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(|e| classify_open_error(path, e))?;
        if lock.is_some() {
            MIGRATOR
                .run(&pool)
                .await
                .map_err(|source| StoreError::Migrate {
                    path: path.to_path_buf(),
                    source,
                })?;
        }
        let lock = match access {
            Access::Write => lock.map(Arc::new),
            Access::Read => None,
        };
        Ok(Store {
            pool,
            options,
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A connection of its own, outside the read pool (the writer's, the
    /// checkpointer's).
    pub async fn connection(&self) -> Result<SqliteConnection, StoreError> {
        Ok(self.options.connect().await?)
    }

    /// The crawl stored in this database, if any.
    pub async fn crawl(&self) -> Result<Option<CrawlRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, state, config, started_at FROM crawls ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| CrawlRow {
            id: r.get("id"),
            state: r.get("state"),
            config: r.get("config"),
            started_at: r.get("started_at"),
        }))
    }

    /// Records a new crawl with its configuration (JSON).
    pub async fn create_crawl(&self, config_json: &str) -> Result<i64, StoreError> {
        let now = now_ms();
        let id = sqlx::query(
            "INSERT INTO crawls (state, config, trawl_version, started_at, updated_at, run_started_at) VALUES ('running', ?, ?, ?, ?, ?)",
        )
        .bind(config_json)
        .bind(env!("CARGO_PKG_VERSION"))
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    /// Number of page URLs (sitemaps left out) in each state.
    pub async fn state_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM urls WHERE sitemap = 0 GROUP BY state ORDER BY state",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get("state"), r.get("n"))).collect())
    }

    /// Number of sitemaps per state and reason (`done`, `failed:http_404`).
    pub async fn sitemap_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT state || COALESCE(':' || reason, '') AS k, COUNT(*) AS n FROM urls \
             WHERE sitemap = 1 GROUP BY k ORDER BY k",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get("k"), r.get("n"))).collect())
    }

    /// Number of page URLs (sitemaps left out) per skip or failure reason.
    pub async fn reason_counts(&self, state: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT COALESCE(reason, '') AS reason, COUNT(*) AS n FROM urls WHERE state = ? AND sitemap = 0 \
             GROUP BY reason ORDER BY n DESC, reason",
        )
        .bind(state)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get("reason"), r.get("n"))).collect())
    }

    /// The stored cookie jars, as `(host, JSON)` rows (see
    /// [`crate::cookies::Jar::load`]).
    pub async fn cookie_jars(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT host, jar FROM cookies")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Queues these URLs again, clearing their reason, in one
    /// transaction (before a crawl's writer starts).
    pub async fn requeue(&self, ids: &[i64]) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for chunk in ids.chunks(writer::URL_ROWS_PER_STMT) {
            let mut qb = sqlx::QueryBuilder::new(
                "UPDATE urls SET state = 'queued', reason = NULL, updated_at = ",
            );
            qb.push_bind(now).push(" WHERE id IN ");
            writer::push_id_list(&mut qb, chunk);
            writer::execute_once(&mut tx, qb).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// Looks at an existing file without changing it: is it SQLite, is it ours,
/// is its schema one we know?
async fn inspect_existing(path: &Path) -> Result<(), StoreError> {
    let meta = std::fs::metadata(path).map_err(|e| StoreError::Open {
        path: path.to_path_buf(),
        source: sqlx::Error::Io(e),
    })?;
    if meta.len() == 0 {
        return Ok(());
    }
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut conn = options
        .connect()
        .await
        .map_err(|e| classify_open_error(path, e))?;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut conn)
            .await
            .map_err(|e| classify_open_error(path, e))?;
    if tables.is_empty() {
        return Ok(());
    }
    if !tables.iter().any(|t| t == "_sqlx_migrations") || !tables.iter().any(|t| t == "crawls") {
        return Err(StoreError::NotTrawl {
            path: path.to_path_buf(),
        });
    }
    let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await?;
    let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(found) = found
        && found > known
    {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    conn.close().await.ok();
    Ok(())
}

fn classify_open_error(path: &Path, e: sqlx::Error) -> StoreError {
    let msg = e.to_string();
    if msg.contains("file is not a database") || msg.contains("file is encrypted") {
        StoreError::NotADatabase {
            path: path.to_path_buf(),
        }
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            source: e,
        }
    }
}
