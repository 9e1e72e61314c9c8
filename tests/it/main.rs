//! Integration tests: one binary, real servers on 127.0.0.1:0, no internet.
//! On SQLite (or PostgreSQL with `TRAWL_TEST_DB=postgres`); `tests/pg.rs`
//! runs the same modules on PostgreSQL.

/// `TestDb::new` follows `TRAWL_TEST_DB` (SQLite by default).
pub const POSTGRES: bool = false;

mod cli;
mod content;
mod crawl;
mod edges;
mod export;
mod extract;
mod firstrun;
mod hostile;
mod llm_limits;
mod markdown;
mod pages;
mod politeness;
mod props;
mod recrawl;
mod report;
mod resume;
mod scale;
mod sitemaps;
mod summaries;
mod util;
