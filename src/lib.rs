//! trawl: a polite, resumable, concurrent web crawler.
//!
//! # Layout
//!
//! The pipeline, in the order a URL travels through it:
//!
//! - [`config`]: the validated settings of a crawl, grouped by stage.
//! - [`canon`]: URL canonicalization and the 64-bit fingerprint that is a
//!   URL's identity.
//! - [`scope`]: which discovered URLs belong to the crawl.
//! - [`crawl`]: a run of a crawl (start, resume, recrawl, or a process
//!   joining a crawl on PostgreSQL), split by concern:
//!   - `crawl::coordinator`: the one task that decides what is fetched
//!     next: its select loop, dispatch, refills, completion, stop.
//!   - [`crawl::frontier`]: the seen-set, where URLs to fetch wait (the
//!     bounded in-memory window or the database) and the page budgets, as
//!     decisions with no I/O.
//!   - `crawl::outcome`: what a worker's result means (retry, page, redirect
//!     hop, sitemap, a revisit's change), as one record for the writer.
//!   - `crawl::lifecycle`: each host's robots.txt and sitemaps: read,
//!     applied, read again after 24 hours.
//!   - `crawl::shared`: a process's side of a crawl several processes
//!     share on PostgreSQL: the hosts it leases, its claims, the crawl's
//!     end.
//! - [`scheduler`]: per-host queues and the heap of hosts by next allowed time.
//! - [`worker`]: one fetch, from request to parsed, owned result.
//! - [`fetch`]: the HTTP client (one hop, capped body, timeouts).
//! - [`cookies`]: the crawl's cookie jar, one per host, kept in the store.
//! - [`parse`]: charset decoding and one streaming pass over the HTML
//!   (a tokenizer and a stack of open-element flags, no tree) for links,
//!   metadata, the main text with its line kinds, and the same content as
//!   Markdown when the crawl keeps it (`parse::markdown`, written as the
//!   pass goes).
//! - [`fields`]: structured extraction: `--extract NAME=SELECTOR[@attr]`
//!   fields applied to HTML pages with CSS selectors (a document tree built
//!   only when fields are asked for), during a crawl or, by `trawl
//!   extract`, to the bodies a crawl kept (`fields::stored`).
//! - [`recrawl`]: what a revisit of a stored page found (new, changed,
//!   unchanged, removed) and when to come back.
//! - [`store`]: the database (an SQLite file, or a PostgreSQL database
//!   that several processes share; every query written once and compiled
//!   for each backend) and its writer task, and the only module that runs
//!   SQL; `store::pg` opens PostgreSQL and holds the crawl's advisory
//!   lock; `store::writer` commits batches (a batch's pages, links,
//!   summaries and URLs each backend its own way: on SQLite through the
//!   connection's own handle, `writer/sqlite_rows.rs`; on PostgreSQL as
//!   one statement of arrays per table and a `COPY`, `writer/pg_rows.rs`)
//!   and, in a
//!   shared crawl, claims
//!   hosts and checks each commit against the host leases; kept HTML bodies (compressed) and
//!   extracted fields in `store::fields`, and the read side of the exports
//!   (the pages an `llms.txt` lists).
//!   - [`store::records`]: what the crawl hands to storage (one
//!     `FetchRecord` per fetch, URLs, hosts) and the `WriteOp`s the writer
//!     takes: the seam between the crawl and a storage backend.
//!   - `store::processes`: the processes that worked on a crawl (host
//!     name, pid, heartbeat, what each did), for `status`.
//!   - `store::frontier`: the frontier a new run reads back (URLs queued
//!     again, the seen-set, budgets spent), robots.txt kept per host.
//!   - `store::status`: the counts `status` reads.
//!   - `store::export`: the summaries, pages and links an export writes,
//!     typed and streamed.
//!   - [`store::summaries`]: the summary stage's storage (pages that need
//!     a summary under a key, parts of split pages, results on the stage's
//!     own connection), summary counts, and a page's text for `summarize
//!     --url`.
//! - [`summarize`]: the summary stage: the extractive summarizer (run
//!   with the parse during a crawl) and the OpenAI-compatible LLM backend.
//! - [`export`]: rows out of the database as JSON Lines, CSV or Markdown
//!   (pages with their extracted fields), and the crawl as an `llms.txt`
//!   or `llms-full.txt` (`export::llms`).
//! - [`report`]: the crawl as one self-contained HTML page (`trawl
//!   report`): aggregates read through `store::report` and
//!   [`status`], rendered with inline CSS, script and SVG charts.
//! - [`progress`]: live counters and their display.
//! - [`cli`] and [`app`]: the command line and running its commands.
//!
//! See `docs/ARCHITECTURE.md` for the data model and the crash model.

pub mod app;
pub mod canon;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod cookies;
pub mod crawl;
pub mod export;
pub mod fetch;
pub mod fields;
pub mod hosts;
pub mod memory;
pub mod parse;
pub mod progress;
pub mod reason;
pub mod recrawl;
pub mod report;
pub mod robots;
pub mod scheduler;
pub mod scope;
pub mod sitemap;
pub mod status;
pub mod store;
pub mod summarize;
pub mod util;
pub mod worker;
