//! Running a command: the glue between the parsed command line and the
//! library, including signals, the progress display and exit codes.
//!
//! Exit codes: 0 done; 1 a runtime failure, a crawl that got no page
//! (none stored, or every fetch failed), or failed fetches with
//! `--fail-on-error`; 2 a usage or setup error; 130 / 143 stopped by
//! SIGINT / SIGTERM (resume continues).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, ExportArgs, ExtractArgs, ReportArgs, SummarizeArgs};
use crate::crawl::{self, Controls, CrawlError, CrawlOutcome, CrawlReport};
use crate::export::{self, ExportOptions};
use crate::progress::{self, Counters, ProgressMode, Stderr};
use crate::store::{Access, DbTarget, PageText, RunStats, Store, StoreError};
use crate::summarize::stage::{self, StageReport, SweepOptions};
use crate::summarize::{SummarizeConfig, Summarizer};

/// `eprintln!` that does not panic when standard error is closed (`trawl
/// crawl … 2>&1 | head -1`): the line is lost, and the exit code stays
/// the command's, not a panic's 101.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_SIGINT: u8 = 130;
pub const EXIT_SIGTERM: u8 = 143;

/// Runs the command and returns the process exit code. `stderr` is where
/// the log subscriber writes too: a crawl's progress bar is drawn there,
/// below the log lines.
pub async fn run(cli: Cli, stderr: Stderr) -> ExitCode {
    let code = match cli.command {
        Command::Crawl(args) => {
            let cfg = match args.to_config() {
                Ok(c) => c,
                Err(e) => return fail(EXIT_USAGE, &e.to_string()),
            };
            let Some(store) = open(&args.db.db, Access::Write).await else {
                return ExitCode::from(EXIT_USAGE);
            };
            let fail_on_error = args.fail_on_error;
            run_crawl(
                &store,
                &stderr,
                cli.quiet,
                fail_on_error,
                |controls, counters| {
                    let store = store.clone();
                    async move { crawl::start(&store, cfg, controls, counters).await }
                },
            )
            .await
        }
        Command::Join(args) => {
            if let Some(n) = args.concurrency
                && let Err(e) = crate::config::at_least_one("--concurrency", n as u64)
            {
                return fail(EXIT_USAGE, &e.to_string());
            }
            let Some(store) = open(&args.db.db, Access::Join).await else {
                return ExitCode::from(EXIT_USAGE);
            };
            let concurrency = args.concurrency;
            run_crawl(
                &store,
                &stderr,
                cli.quiet,
                args.fail_on_error,
                |controls, counters| {
                    let store = store.clone();
                    async move { crawl::join(&store, concurrency, controls, counters).await }
                },
            )
            .await
        }
        Command::Resume(args) => {
            if let Err(e) = args.check() {
                return fail(EXIT_USAGE, &e.to_string());
            }
            let Some(store) = open(&args.db.db, Access::WriteExisting).await else {
                return ExitCode::from(EXIT_USAGE);
            };
            let fail_on_error = args.fail_on_error;
            run_crawl(&store, &stderr, cli.quiet, fail_on_error, |controls, counters| {
                let store = store.clone();
                async move { crawl::resume(&store, |cfg| args.apply(cfg), controls, counters).await }
            })
            .await
        }
        Command::Recrawl(args) => {
            if let Err(e) = args.resume.check() {
                return fail(EXIT_USAGE, &e.to_string());
            }
            let Some(store) = open(&args.resume.db.db, Access::WriteExisting).await else {
                return ExitCode::from(EXIT_USAGE);
            };
            let fail_on_error = args.resume.fail_on_error;
            let opts = crawl::RecrawlOptions {
                due_only: args.due,
                now: crate::util::clock_ms(),
            };
            run_crawl(
                &store,
                &stderr,
                cli.quiet,
                fail_on_error,
                |controls, counters| {
                    let store = store.clone();
                    async move {
                        crawl::recrawl(&store, |cfg| args.apply(cfg), opts, controls, counters)
                            .await
                    }
                },
            )
            .await
        }
        Command::Export(args) => run_export(&args).await,
        Command::Extract(args) => run_extract(&args).await,
        Command::Report(args) => run_report(&args).await,
        Command::Summarize(args) => run_summarize(&args, stderr).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "trawl", &mut script);
            print_stdout(&script)
        }
        Command::Status(args) => {
            let Some(store) = open(&args.db.db, Access::Read).await else {
                return ExitCode::from(EXIT_USAGE);
            };
            status(&store, args.json).await
        }
    };
    ExitCode::from(code)
}

/// Writes `bytes` to standard output. A reader that has gone away
/// (`trawl export | head`) has all it wanted: that is not a failure, and
/// nothing is said.
fn print_stdout(bytes: &[u8]) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("trawl: cannot write to standard output: {e}");
            EXIT_FAILURE
        }
    }
}

fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("trawl: {msg}");
    ExitCode::from(code)
}

async fn open(db: &DbTarget, access: Access) -> Option<Store> {
    match Store::open_with(db, access).await {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("trawl: {e}");
            None
        }
    }
}

/// Which signal asked us to stop (0: none).
static SIGNAL: AtomicU8 = AtomicU8::new(0);

/// First SIGINT/SIGTERM: graceful stop. Second: abort in-flight work.
/// What is said about it goes to `stderr`, above any progress bar.
fn install_signal_handlers(controls: Controls, stderr: Stderr) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut count = 0;
        loop {
            #[cfg(unix)]
            let which = tokio::select! {
                r = tokio::signal::ctrl_c() => { if r.is_err() { return; } EXIT_SIGINT }
                Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => EXIT_SIGTERM,
            };
            #[cfg(not(unix))]
            let which = {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                EXIT_SIGINT
            };
            count += 1;
            let _ = SIGNAL.compare_exchange(0, which, Ordering::SeqCst, Ordering::SeqCst);
            if count == 1 {
                stderr.line(
                    "\ntrawl: stopping (finishing fetches in flight; press Ctrl-C again to stop now)",
                );
                controls.stop.cancel();
            } else {
                stderr.line("\ntrawl: stopping now");
                controls.abort.cancel();
            }
        }
    });
}

async fn run_crawl<F, Fut>(
    store: &Store,
    stderr: &Stderr,
    quiet: bool,
    fail_on_error: bool,
    start: F,
) -> u8
where
    F: FnOnce(Controls, Arc<Counters>) -> Fut,
    Fut: std::future::Future<Output = Result<CrawlReport, CrawlError>> + Send + 'static,
{
    let controls = Controls::default();
    install_signal_handlers(controls.clone(), stderr.clone());
    let counters = Arc::new(Counters::default());
    let done = CancellationToken::new();
    let mode = if quiet {
        ProgressMode::Off
    } else {
        ProgressMode::Auto
    };
    let reporter = tokio::spawn(progress::report(
        counters.clone(),
        mode,
        stderr.clone(),
        done.clone(),
    ));
    // The crawl runs as a task of the runtime, not on the thread that
    // blocks on `main`'s future: there its coordinator woke from a park
    // (a futex wake-up and two context switches) for every page a worker
    // finished, on a third thread beside the runtime's two; as a task it
    // runs between the workers' polls (half the context switches, ~6%
    // less CPU a page on the 20,000-page benchmark).
    let result = match tokio::spawn(start(controls, counters)).await {
        Ok(result) => result,
        Err(e) => match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            // Cancelled: nothing aborts the task, but a runtime shutting
            // down under it would.
            Err(e) => {
                done.cancel();
                eprintln!(
                    "trawl: the crawl stopped before its end ({e}); `trawl resume --db {}` continues it",
                    store.target()
                );
                return EXIT_FAILURE;
            }
        },
    };
    done.cancel();
    let _ = reporter.await;
    let db = store.target().to_string();
    let run = match &result {
        Ok(_) => match store.last_run().await {
            Ok(run) => run,
            Err(e) => {
                eprintln!("trawl: cannot read this run's counts back: {e}");
                None
            }
        },
        Err(_) => None,
    };
    // A process of a shared crawl that stopped while others work on it
    // leaves the crawl `running`.
    let others_go_on = store.is_postgres()
        && matches!(&result, Ok(r) if r.outcome == CrawlOutcome::Interrupted)
        && store
            .crawl()
            .await
            .ok()
            .flatten()
            .is_some_and(|c| c.state == "running");
    store.clone().close().await;
    match result {
        Ok(report) => {
            eprintln!("{}", final_line(&report, run.as_ref(), &db));
            match report.outcome {
                CrawlOutcome::Interrupted if others_go_on => {
                    eprintln!(
                        "trawl: this process stopped; other processes on the crawl go on \
                         (`trawl status --db {db}`). `trawl join --db {db}` adds one again; \
                         `trawl resume --db {db}` continues the crawl once none is left"
                    );
                    match SIGNAL.load(Ordering::SeqCst) {
                        0 => EXIT_SIGINT,
                        s => s,
                    }
                }
                CrawlOutcome::Interrupted => {
                    eprintln!("trawl: interrupted; continue with `trawl resume --db {db}`");
                    match SIGNAL.load(Ordering::SeqCst) {
                        0 => EXIT_SIGINT,
                        s => s,
                    }
                }
                CrawlOutcome::Finished if report.pages_stored == 0 => {
                    // A crawl that got nothing (the site cannot be reached,
                    // every URL failed or was skipped) is no success.
                    eprintln!("trawl: no page was stored");
                    EXIT_FAILURE
                }
                // Every fetch of the run (by all its processes) answered
                // with an error or failed: a seed that is a 404, a site
                // that answers 500 or 429 to everything.
                CrawlOutcome::Finished
                    if run
                        .as_ref()
                        .is_some_and(|r| r.fetched > 0 && r.failed() == r.fetched) =>
                {
                    eprintln!("trawl: every page fetched failed");
                    EXIT_FAILURE
                }
                CrawlOutcome::Finished if fail_on_error && report.failed > 0 => EXIT_FAILURE,
                CrawlOutcome::Finished => EXIT_OK,
            }
        }
        Err(e) => {
            let (disk, lost) = match &e {
                CrawlError::Store(se) => (se.disk_failure(), se.connection_lost()),
                _ => (None, false),
            };
            match disk {
                _ if lost => eprintln!(
                    "trawl: lost the connection to {db}: {e}. What was committed before it is kept \
                     (at most the pages in flight are fetched again); once the database is back, \
                     `trawl resume --db {db}` continues the crawl"
                ),
                Some(why) => eprintln!(
                    "trawl: cannot write to {db}: {why}. What was committed before it is kept \
                     (at most the pages in flight are fetched again); make room, then \
                     `trawl resume --db {db}` continues the crawl"
                ),
                None => eprintln!("trawl: {e}"),
            }
            match e {
                // Nothing left to do is not a failure.
                CrawlError::JoinedFinished { .. } => EXIT_OK,
                CrawlError::Config(_)
                | CrawlError::NothingToJoin { .. }
                | CrawlError::CrawlExists { .. }
                | CrawlError::NothingToResume { .. }
                | CrawlError::AlreadyFinished { .. }
                | CrawlError::BadStoredConfig(_) => EXIT_USAGE,
                CrawlError::Store(_) | CrawlError::Client(_) => EXIT_FAILURE,
            }
        }
    }
}

/// `summaries: 12 done, 1 failed (…tokens)` for the final line.
fn summary_line(r: &StageReport) -> String {
    let mut s = format!("summaries: {} done, {} failed", r.done, r.failed);
    if r.prompt_tokens + r.completion_tokens > 0 {
        s.push_str(&format!(
            " ({} prompt + {} completion tokens)",
            r.prompt_tokens, r.completion_tokens
        ));
    }
    if r.truncated > 0 {
        s.push_str(&format!(
            ", {} cut at max_tokens (stored, marked truncated)",
            r.truncated
        ));
    }
    if let Some(why) = &r.unreachable {
        s.push_str(&format!(
            "; the LLM endpoint is unreachable: {why}; the rest wait for `trawl summarize`"
        ));
    } else if r.budget_spent {
        s.push_str(", token budget spent (the rest wait for `trawl summarize`)");
    } else if r.stopped {
        s.push_str(", stopped (the rest wait for `trawl summarize`)");
    }
    s
}

async fn run_summarize(args: &SummarizeArgs, stderr: Stderr) -> u8 {
    if let Err(e) = args.summary.check() {
        eprintln!("trawl: {e}");
        return EXIT_USAGE;
    }
    let url_id = match &args.url {
        None => None,
        Some(url) => match crate::canon::parse(url) {
            Ok(u) => Some(crate::canon::fingerprint(&u) as i64),
            Err(e) => {
                eprintln!("trawl: bad URL `{url}`: {e}");
                return EXIT_USAGE;
            }
        },
    };
    let Some(store) = open(&args.db.db, Access::WriteExisting).await else {
        return EXIT_USAGE;
    };
    // The crawl's own settings first, then the flags given here.
    let mut cfg = match store.crawl().await {
        Ok(Some(row)) => serde_json::from_str::<crate::config::CrawlConfig>(&row.config)
            .map(|c| c.summarize)
            .unwrap_or_default(),
        _ => SummarizeConfig::default(),
    };
    if let Err(e) = args.summary.apply(&mut cfg) {
        eprintln!("trawl: {e}");
        return EXIT_USAGE;
    }
    let summarizer = match Summarizer::new(&cfg) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("trawl: {e}");
            return EXIT_USAGE;
        }
    };
    if let (Some(url), Some(id)) = (&args.url, url_id) {
        return summarize_one(&store, summarizer, url, id, args.stream).await;
    }
    let controls = Controls::default();
    install_signal_handlers(controls.clone(), stderr);
    let stop = CancellationToken::new();
    controls.cancel_when_stopped(stop.clone());
    let writer = match store.summary_writer().await {
        Ok(w) => w,
        Err(e) => {
            eprintln!("trawl: {e}");
            return EXIT_FAILURE;
        }
    };
    let sweep = SweepOptions {
        retry_failed: true,
        force: args.force,
    };
    let result = stage::run(
        summarizer.clone(),
        store.clone(),
        writer,
        None,
        sweep,
        stop,
        None,
    )
    .await;
    let code = match result {
        Ok(r) => {
            let pending = store
                .summary_counts_for(summarizer.key())
                .await
                .map_or(0, |c| c.pending);
            let backend = summarizer.key().backend;
            let article = if backend.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            eprintln!(
                "{}; {pending} pages without {article} {backend} summary",
                summary_line(&r),
            );
            match SIGNAL.load(Ordering::SeqCst) {
                // The endpoint was unusable: nothing was summarized that
                // could have been.
                0 if r.unreachable.is_some() => EXIT_FAILURE,
                0 => EXIT_OK,
                sig => sig,
            }
        }
        Err(e) => {
            eprintln!("trawl: {e}");
            EXIT_FAILURE
        }
    };
    store.close().await;
    code
}

/// `summarize --url`: one stored page, printed (as it streams, with
/// `--stream`) and stored.
async fn summarize_one(
    store: &Store,
    summarizer: Arc<Summarizer>,
    url: &str,
    id: i64,
    stream: bool,
) -> u8 {
    let (hash, text, kinds) = match store.page_text(id).await {
        Ok(Some(PageText {
            content_hash: Some(h),
            text: Some(t),
            text_kinds,
        })) if !t.is_empty() => (h, t, text_kinds),
        Ok(_) => {
            eprintln!("trawl: {url} is not a stored page with text");
            return EXIT_USAGE;
        }
        // As the driver words it (not `database error: …`).
        Err(StoreError::Sql(e)) => {
            eprintln!("trawl: {e}");
            return EXIT_FAILURE;
        }
        Err(e) => {
            eprintln!("trawl: {e}");
            return EXIT_FAILURE;
        }
    };
    let sink: Option<crate::summarize::TokenSink> = stream.then(|| {
        Box::new(|t: &str| {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(t.as_bytes());
            let _ = out.flush();
        }) as crate::summarize::TokenSink
    });
    let streamed = sink.is_some() && summarizer.key().backend == "llm";
    let outcome = summarizer.summarize(text, kinds, sink, None).await;
    let printed = match &outcome.summary {
        Ok(_) if streamed => print_stdout(b"\n"),
        Ok(s) => print_stdout(format!("{s}\n").as_bytes()),
        Err(e) => {
            eprintln!("trawl: summary failed: {e}");
            EXIT_FAILURE
        }
    };
    let failed = outcome.summary.is_err();
    let stored = match store.summary_writer().await {
        Ok(mut w) => stage::write(&mut w, &summarizer, &[(hash, outcome)]).await,
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        eprintln!("trawl: {e}");
        return EXIT_FAILURE;
    }
    if failed { EXIT_FAILURE } else { printed }
}

/// The one-line summary printed at the end of a run. Its counts are this
/// run's, from `run` (the numbers `status` shows as the last run), except
/// the pages the database holds and the URLs still queued; without `run`
/// (it could not be read back) they come from the run's own counters.
pub fn final_line(r: &CrawlReport, run: Option<&RunStats>, db: &str) -> String {
    let verb = match r.outcome {
        CrawlOutcome::Finished => "finished",
        CrawlOutcome::Interrupted => "stopped",
    };
    let (fetched, secs, rate, failed) = match run {
        Some(run) => (
            run.fetched,
            run.duration().as_secs_f64(),
            run.pages_per_sec(),
            run.failed(),
        ),
        None => (
            r.fetched as i64,
            r.elapsed.as_secs_f64(),
            r.pages_per_sec(),
            r.failed as i64,
        ),
    };
    let mut s = format!(
        "{verb}: {fetched} fetched in {secs:.1}s ({rate:.1} pages/s, {:.1} MB), {failed} failed",
        r.bytes as f64 / 1e6,
    );
    let breakdown = |rows: &[(String, i64)]| {
        if rows.is_empty() {
            String::new()
        } else {
            format!(" [{}]", crawl::summarize_reasons(rows))
        }
    };
    if let Some(run) = run {
        s.push_str(&breakdown(&run.failed_by_reason));
        s.push_str(&format!(", {} skipped", run.skipped()));
        s.push_str(&breakdown(&run.skipped_by_reason));
    }
    if r.queued > 0 {
        s.push_str(&format!(", {} still queued", r.queued));
    }
    if r.unchanged_by_sitemap > 0 {
        s.push_str(&format!(
            ", {} not asked (unchanged by sitemap lastmod)",
            r.unchanged_by_sitemap
        ));
    }
    s.push_str(&format!("; {} pages in {db}", r.pages_stored));
    if let Some(sr) = &r.summaries {
        s.push_str(&format!("; {}", summary_line(sr)));
    }
    if let Some(run) = run.filter(|run| !run.sitemaps.is_empty()) {
        s.push_str(&format!(
            "; sitemaps: {}",
            crawl::summarize_reasons(&run.sitemaps)
        ));
    }
    s
}

async fn run_export(args: &ExportArgs) -> u8 {
    let opts = match args.to_options(crate::util::now_ms()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("trawl: {e}");
            return EXIT_USAGE;
        }
    };
    let Some(store) = open(&args.db.db, Access::Read).await else {
        return EXIT_USAGE;
    };
    let result = match &args.out {
        None => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            export::export(&store, &opts, &mut lock).await.map(|_| ())
        }
        Some(path) => export_to_file(&store, &opts, path).await,
    };
    store.close().await;
    match result {
        Ok(()) => EXIT_OK,
        // The reader of standard output has gone away (`| head`).
        Err(export::ExportError::Io(e))
            if args.out.is_none() && e.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            EXIT_OK
        }
        Err(e) => {
            eprintln!("trawl: export failed: {e}");
            EXIT_FAILURE
        }
    }
}

/// `trawl extract`: the fields applied to the kept pages, and one line
/// that says what was done.
async fn run_extract(args: &ExtractArgs) -> u8 {
    let specs = match args.to_specs() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("trawl: {e}");
            return EXIT_USAGE;
        }
    };
    let Some(store) = open(&args.db.db, Access::WriteExisting).await else {
        return EXIT_USAGE;
    };
    let result = crate::fields::stored::apply(&store, &specs).await;
    store.close().await;
    match result {
        Ok(r) => {
            let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            let mut line = format!(
                "extracted {} from {} pages ({} with a match)",
                names.join(", "),
                r.pages,
                r.matched
            );
            if r.without_body > 0 {
                line.push_str(&format!(
                    "; {} HTML pages have no kept body and were left as they were",
                    r.without_body
                ));
            }
            if r.unreadable > 0 {
                line.push_str(&format!(
                    "; {} kept bodies could not be read and were left as they were",
                    r.unreadable
                ));
            }
            eprintln!("{line}");
            if r.unreadable > 0 {
                EXIT_FAILURE
            } else {
                EXIT_OK
            }
        }
        Err(e) => {
            eprintln!("trawl: {e}");
            if e.is_usage() {
                EXIT_USAGE
            } else {
                EXIT_FAILURE
            }
        }
    }
}

/// Writes to a temporary file beside `path` and renames it into place, so
/// an interrupted export never leaves half a file.
async fn export_to_file(
    store: &Store,
    opts: &ExportOptions,
    path: &Path,
) -> Result<(), export::ExportError> {
    let tmp = crate::util::temp_beside(path);
    let file = std::fs::File::create(&tmp)?;
    let mut w = std::io::BufWriter::new(file);
    let res = export::export(store, opts, &mut w).await;
    let res = res.and_then(|_| {
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    });
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// `trawl report`: the report of the crawl in `--db`, to `--out` (written
/// whole to a temporary file beside it, then renamed) or standard output.
async fn run_report(args: &ReportArgs) -> u8 {
    let target = match args.target() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("trawl: {e}");
            return EXIT_USAGE;
        }
    };
    let Some(store) = open(&args.db.db, Access::Read).await else {
        return EXIT_USAGE;
    };
    let report = crate::report::collect(
        &store,
        crate::report::Caps::default(),
        crate::util::now_ms(),
    )
    .await;
    store.close().await;
    let html = match report {
        Ok(r) => crate::report::html::render(&r, &args.db.db.to_string()),
        Err(e) => {
            eprintln!("trawl: cannot read the crawl: {e}");
            return EXIT_FAILURE;
        }
    };
    match target {
        None => print_stdout(html.as_bytes()),
        Some(path) => match write_file_atomically(&path, html.as_bytes()) {
            Ok(()) => {
                eprintln!("trawl: report written to {}", path.display());
                EXIT_OK
            }
            Err(e) => {
                eprintln!("trawl: cannot write {}: {e}", path.display());
                EXIT_FAILURE
            }
        },
    }
}

/// Writes `bytes` to a temporary file beside `path` and renames it into
/// place, so a failed write never leaves half a file (or spoils an
/// earlier one).
fn write_file_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = crate::util::temp_beside(path);
    let res = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

async fn status(store: &Store, json: bool) -> u8 {
    match crate::status::collect(store).await {
        Ok(st) => {
            let text = if json {
                match serde_json::to_string_pretty(&st) {
                    Ok(j) => j + "\n",
                    Err(e) => {
                        eprintln!("trawl: {e}");
                        return EXIT_FAILURE;
                    }
                }
            } else {
                st.to_text()
            };
            print_stdout(text.as_bytes())
        }
        Err(e) => {
            eprintln!("trawl: {e}");
            EXIT_FAILURE
        }
    }
}
