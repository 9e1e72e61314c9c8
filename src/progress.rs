//! Live progress: counters the crawl updates, and a reporter that shows them.
//!
//! In: [`Counters`] shared with the coordinator. Out: an indicatif bar when
//! stderr is a terminal, a log line every few seconds when it is not.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

/// Whether to colour what is written to stderr: only on a terminal (a
/// pipe or a file gets plain text), and not when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
pub fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Running totals of the current run.
#[derive(Debug, Default)]
pub struct Counters {
    /// Fetches completed (any outcome).
    pub fetched: AtomicU64,
    /// Fetches that ended with a failure (network error, HTTP 4xx/5xx, …).
    pub failed: AtomicU64,
    /// URLs recorded as skipped.
    pub skipped: AtomicU64,
    /// URLs waiting: in memory plus in the database.
    pub queued: AtomicU64,
    pub in_flight: AtomicU64,
    /// Body bytes received.
    pub bytes: AtomicU64,
    /// Nanoseconds spent analysing bodies (decode, parse, hash, scope).
    pub parse_nanos: AtomicU64,
    /// Pages summarized with their parse (see `summarize::Inline`).
    pub summarized_inline: AtomicU64,
}

impl Counters {
    pub fn get(&self, c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, log lines otherwise.
    Auto,
    /// Nothing (quiet mode).
    Off,
}

/// Runs until `done` is cancelled, showing `counters`.
pub async fn report(counters: Arc<Counters>, mode: ProgressMode, done: CancellationToken) {
    if mode == ProgressMode::Off {
        done.cancelled().await;
        return;
    }
    let start = Instant::now();
    let line = |c: &Counters| {
        let secs = start.elapsed().as_secs_f64().max(0.001);
        let fetched = c.get(&c.fetched);
        format!(
            "{fetched} fetched ({:.0}/s), {} queued, {} in flight, {} failed, {} skipped",
            fetched as f64 / secs,
            c.get(&c.queued),
            c.get(&c.in_flight),
            c.get(&c.failed),
            c.get(&c.skipped),
        )
    };
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .expect("static template"),
        );
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = done.cancelled() => break,
                _ = tick.tick() => {
                    bar.set_message(line(&counters));
                    bar.tick();
                }
            }
        }
        bar.finish_and_clear();
    } else {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = done.cancelled() => break,
                _ = tick.tick() => tracing::info!("{}", line(&counters)),
            }
        }
    }
}
