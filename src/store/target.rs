//! Where a crawl's database lives: an SQLite file (the default) or a
//! PostgreSQL database.

use std::fmt;
use std::path::{Path, PathBuf};

/// The `--db` of every subcommand (and `TRAWL_DB`): a path is an SQLite
/// file; a `postgres://` or `postgresql://` URL (libpq's URI form,
/// `postgres://user:password@host:port/dbname?options`) is a PostgreSQL
/// database, one crawl per database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// An SQLite database file.
    File(PathBuf),
    /// A PostgreSQL connection URL, as given.
    Postgres(String),
}

impl DbTarget {
    /// A PostgreSQL URL when `s` starts with `postgres://` or
    /// `postgresql://` (any case), else a file path.
    pub fn parse(s: &str) -> DbTarget {
        let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            DbTarget::Postgres(s.to_string())
        } else {
            DbTarget::File(PathBuf::from(s))
        }
    }

    /// The file of an SQLite target.
    pub fn file(&self) -> Option<&Path> {
        match self {
            DbTarget::File(p) => Some(p),
            DbTarget::Postgres(_) => None,
        }
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self, DbTarget::Postgres(_))
    }
}

/// A path as it is; a URL with its password replaced by `***`, so the
/// target can be printed in messages and `status`.
impl fmt::Display for DbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbTarget::File(p) => write!(f, "{}", p.display()),
            DbTarget::Postgres(u) => f.write_str(&redact(u)),
        }
    }
}

/// `u` with the password of its userinfo (if any) replaced by `***`.
pub fn redact(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => u.to_string(),
        // Not a URL the parser takes: keep what cannot hold a password.
        Err(_) => match (u.find("://"), u.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}***{}", &u[..s + 3], &u[at..]),
            _ => u.to_string(),
        },
    }
}

impl From<&Path> for DbTarget {
    fn from(p: &Path) -> Self {
        DbTarget::File(p.to_path_buf())
    }
}

impl From<&PathBuf> for DbTarget {
    fn from(p: &PathBuf) -> Self {
        DbTarget::File(p.clone())
    }
}

impl From<PathBuf> for DbTarget {
    fn from(p: PathBuf) -> Self {
        DbTarget::File(p)
    }
}

impl From<&str> for DbTarget {
    fn from(s: &str) -> Self {
        DbTarget::parse(s)
    }
}

impl From<&String> for DbTarget {
    fn from(s: &String) -> Self {
        DbTarget::parse(s)
    }
}

impl From<String> for DbTarget {
    fn from(s: String) -> Self {
        DbTarget::parse(&s)
    }
}

impl From<&DbTarget> for DbTarget {
    fn from(t: &DbTarget) -> Self {
        t.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_the_rest_are_files() {
        assert!(DbTarget::parse("postgres://u@h/db").is_postgres());
        assert!(DbTarget::parse("PostgreSQL://u@h/db").is_postgres());
        assert_eq!(
            DbTarget::parse("trawl.db"),
            DbTarget::File("trawl.db".into())
        );
        assert_eq!(
            DbTarget::parse("./postgres://x"),
            DbTarget::File("./postgres://x".into())
        );
    }

    #[test]
    fn passwords_are_not_printed() {
        let t = DbTarget::parse("postgres://crawler:s3cret@db.example:5433/trawl");
        assert_eq!(
            t.to_string(),
            "postgres://crawler:***@db.example:5433/trawl"
        );
        let t = DbTarget::parse("postgres://crawler@db.example/trawl");
        assert_eq!(t.to_string(), "postgres://crawler@db.example/trawl");
    }
}
