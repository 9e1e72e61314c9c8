//! Looking at a database path before anything is created or changed.
//!
//! In: a path. Out: what is there (nothing, an empty file, an SQLite file
//! without tables, a trawl database and its schema version), how this
//! process may open it, or a refusal that names the problem: a directory,
//! a file that is not SQLite or not trawl's, a schema newer than this
//! binary, a file that cannot be written when writing was asked for.
//!
//! Reading never writes where it may not. A file this process can write
//! is read through an ordinary connection that makes no changes (so the
//! `-wal` and `-shm` files SQLite needs come and go as they do for any
//! reader). One it cannot write is opened read-only; if there is no `-wal`
//! beside it either, no process is writing it, and it is opened as
//! immutable, which needs no `-shm` (on a read-only file system none can
//! be created).

use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use super::{MIGRATOR, StoreError, classify_open_error};

/// What is at a database path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    Missing,
    /// A file of zero bytes (as `touch` or `mktemp` leave it).
    Empty,
    /// An SQLite database without any table.
    Blank,
    /// A trawl database whose schema this binary knows; `current` is
    /// false when migrations are still to run.
    Trawl {
        current: bool,
    },
}

impl Found {
    /// For commands that need a trawl database: refuses anything else, and
    /// says whether its schema is up to date.
    pub(super) fn trawl(self, path: &Path) -> Result<bool, StoreError> {
        let path = path.to_path_buf();
        match self {
            Found::Trawl { current } => Ok(current),
            Found::Missing => Err(StoreError::Missing { path }),
            Found::Empty => Err(StoreError::Empty { path }),
            Found::Blank => Err(StoreError::NotTrawl { path }),
        }
    }
}

/// The directory a database file lives in.
pub(super) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether a file is at `path`; refuses a directory, and (for a missing
/// file) a missing parent directory.
pub(super) fn check_path(path: &Path) -> Result<bool, StoreError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(StoreError::IsADirectory {
            path: path.to_path_buf(),
        }),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::Open {
            path: path.to_path_buf(),
            source: sqlx::Error::Io(e),
        }),
    }
}

/// Whether an I/O error means "not allowed to write here": permissions,
/// the immutable attribute, a read-only file system.
pub(super) fn is_denied(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
    )
}

/// Why this process cannot write the existing file at `path`, if it
/// cannot. (Opening for writing, without truncating, changes nothing.)
pub(super) fn write_denied(path: &Path) -> Option<std::io::Error> {
    match std::fs::OpenOptions::new().write(true).open(path) {
        Err(e) if is_denied(&e) => Some(e),
        _ => None,
    }
}

/// The `-wal` file SQLite keeps beside `path` while the database is open
/// for writing (or after a writer was killed).
pub(crate) fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Options for reading the database at `path` without writing anything
/// this process may not write; `immutable` when SQLite could not set up a
/// WAL index beside it (see the module's notes).
fn reader_options(path: &Path, immutable: bool) -> SqliteConnectOptions {
    let base = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(super::BUSY_TIMEOUT)
        .log_statements(tracing::log::LevelFilter::Trace);
    let denied = write_denied(path).is_some();
    if immutable || (denied && !wal_path(path).exists()) {
        base.read_only(true).immutable(true)
    } else if denied {
        base.read_only(true)
    } else {
        base.pragma("query_only", "ON")
    }
}

/// The first bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Looks at the file at `path` without changing it. Returns what it is
/// and the options to read it with (see the module's notes).
pub(super) async fn inspect(path: &Path) -> Result<(Found, SqliteConnectOptions), StoreError> {
    let not_a_database = || StoreError::NotADatabase {
        path: path.to_path_buf(),
    };
    let io = |e| StoreError::Open {
        path: path.to_path_buf(),
        source: sqlx::Error::Io(e),
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Ok((Found::Missing, reader_options(path, false)));
        }
        Err(e) => return Err(io(e)),
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]).map_err(io)? {
            0 => break,
            n => read += n,
        }
    }
    if read == 0 {
        return Ok((Found::Empty, reader_options(path, false)));
    }
    if read < header.len() || &header != SQLITE_HEADER {
        return Err(not_a_database());
    }
    drop(file);
    let options = reader_options(path, false);
    let (tables, options) = match tables(&options).await {
        Ok(t) => (t, options),
        // No -shm could be made (a read-only directory); with no -wal
        // either, nothing is writing the file.
        Err(e) if is_cant_open(&e) && !wal_path(path).exists() => {
            let options = reader_options(path, true);
            let t = tables(&options)
                .await
                .map_err(|e| classify_open_error(path, e))?;
            (t, options)
        }
        Err(e) => return Err(classify_open_error(path, e)),
    };
    let (tables, version) = tables;
    if tables.is_empty() {
        return Ok((Found::Blank, options));
    }
    if !tables.iter().any(|t| t == "_sqlx_migrations") || !tables.iter().any(|t| t == "crawls") {
        return Err(StoreError::NotTrawl {
            path: path.to_path_buf(),
        });
    }
    let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    match version {
        Some(found) if found > known => Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known,
        }),
        found => Ok((
            Found::Trawl {
                current: found == Some(known),
            },
            options,
        )),
    }
}

/// The tables of the database, and its trawl schema version if it has one.
async fn tables(options: &SqliteConnectOptions) -> Result<(Vec<String>, Option<i64>), sqlx::Error> {
    let mut conn: SqliteConnection = options.connect().await?;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut conn)
            .await?;
    let version = if tables.iter().any(|t| t == "_sqlx_migrations") {
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&mut conn)
            .await?
    } else {
        None
    };
    conn.close().await.ok();
    Ok((tables, version))
}

/// SQLite's `SQLITE_CANTOPEN` (and its extended codes), or the read-only
/// codes it gives when a reader cannot set up the WAL index.
fn is_cant_open(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(d) = e else {
        return false;
    };
    let Some(code) = d.code().and_then(|c| i32::from_str(&c).ok()) else {
        return false;
    };
    // SQLITE_CANTOPEN (14), SQLITE_READONLY (8: _CANTINIT, _RECOVERY, …).
    matches!(code & 0xff, 14 | 8)
}
