//! The integration suite again (the modules of `tests/it`), against
//! PostgreSQL: `TRAWL_TEST_PG` names the server (default
//! `postgres://postgres@127.0.0.1:5432`); each test makes a database of
//! its own and drops it. The scale-out tests, PostgreSQL only, are in
//! `tests/it`.

/// Every `TestDb::new` is a PostgreSQL database.
pub const POSTGRES: bool = true;

#[path = "it/cli.rs"]
mod cli;
#[path = "it/content.rs"]
mod content;
#[path = "it/crawl.rs"]
mod crawl;
#[path = "it/edges.rs"]
mod edges;
#[path = "it/export.rs"]
mod export;
#[path = "it/extract.rs"]
mod extract;
#[path = "it/firstrun.rs"]
mod firstrun;
#[path = "it/hostile.rs"]
mod hostile;
#[path = "it/llm_limits.rs"]
mod llm_limits;
#[path = "it/markdown.rs"]
mod markdown;
#[path = "it/pages.rs"]
mod pages;
#[path = "it/politeness.rs"]
mod politeness;
#[path = "it/props.rs"]
mod props;
#[path = "it/recrawl.rs"]
mod recrawl;
#[path = "it/report.rs"]
mod report;
#[path = "it/resume.rs"]
mod resume;
#[path = "it/sitemaps.rs"]
mod sitemaps;
#[path = "it/summaries.rs"]
mod summaries;
#[path = "it/util.rs"]
mod util;
