//! Live progress: counters the crawl updates, and a reporter that shows them.
//!
//! In: [`Counters`] shared with the coordinator and the summary stage. Out:
//! an indicatif bar when stderr is a terminal, a log line every few seconds
//! when it is not. Log lines reach stderr through [`Stderr`], which prints
//! them above the bar rather than into it.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

/// Whether to colour what is written to stderr: only on a terminal (a
/// pipe or a file gets plain text), and not when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
pub fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Standard error as the progress bar and log lines share it. While a bar
/// is shown, text written here is printed with the bar cleared first and
/// drawn again after it, so the bar stays the last line and no frozen copy
/// of it is left above the text. Give it to the log subscriber as its
/// writer (it is a `MakeWriter`) and to the progress reporter.
#[derive(Debug, Clone, Default)]
pub struct Stderr {
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl Stderr {
    /// Writes `bytes` to stderr, above the progress bar if one is shown.
    /// Errors are dropped: there is nowhere left to report them.
    pub fn write(&self, bytes: &[u8]) {
        let bar = self
            .bar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let write = || {
            let _ = std::io::stderr().lock().write_all(bytes);
        };
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// Writes one line (a newline is added).
    pub fn line(&self, text: &str) {
        self.write(format!("{text}\n").as_bytes());
    }

    fn show(&self, bar: Option<ProgressBar>) {
        *self.bar.lock().unwrap_or_else(PoisonError::into_inner) = bar;
    }
}

/// One write of a log event (see [`Stderr`]).
pub struct StderrWriter<'a>(&'a Stderr);

impl Write for StderrWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = StderrWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        StderrWriter(self)
    }
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
    /// Hosts with URLs queued or in flight in this process.
    pub hosts: AtomicU64,
    /// Body bytes received.
    pub bytes: AtomicU64,
    /// Recrawl revisits not asked: a sitemap's `<lastmod>` showed them
    /// unchanged since their last check.
    pub unchanged_by_sitemap: AtomicU64,
    /// Nanoseconds spent analysing bodies (decode, parse, hash, scope).
    pub parse_nanos: AtomicU64,
    /// Pages summarized with their parse (see `summarize::Inline`).
    pub summarized_inline: AtomicU64,
    /// Pages the crawl could not offer to the summary stage (its channel
    /// was full): left for the stage's sweep of the database.
    pub summary_offers_dropped: AtomicU64,
    /// Set by the summary stage once every fetch is committed and the crawl
    /// waits only for summaries.
    pub waiting_for_summaries: AtomicBool,
    /// Summaries the stage has made in this run.
    pub summaries_done: AtomicU64,
    /// Summaries the stage has failed to make in this run.
    pub summaries_failed: AtomicU64,
    /// Contents the stage still has to summarize: in flight, or found by
    /// its sweep and not started yet.
    pub summaries_pending: AtomicU64,
    /// LLM tokens (prompt and completion) the stage has spent in this run.
    pub summary_tokens: AtomicU64,
}

impl Counters {
    pub fn get(&self, c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }

    /// The progress line's text.
    fn line(&self, elapsed: Duration) -> String {
        let fetched = self.get(&self.fetched);
        let done = self.get(&self.summaries_done);
        let tokens = self.get(&self.summary_tokens);
        let summaries = format!(
            "summaries: {done} done ({:.1}/min), {} failed, {} pending{}",
            done as f64 * 60.0 / elapsed.as_secs_f64().max(0.001),
            self.get(&self.summaries_failed),
            self.get(&self.summaries_pending),
            if tokens > 0 {
                format!(", {tokens} tokens")
            } else {
                String::new()
            }
        );
        if self.waiting_for_summaries.load(Relaxed) {
            return format!("{fetched} fetched; waiting for {summaries}");
        }
        let mut line = format!(
            "{fetched} fetched ({:.0}/s), {} queued, {} in flight, {} failed, {} skipped",
            fetched as f64 / elapsed.as_secs_f64().max(0.001),
            self.get(&self.queued),
            self.get(&self.in_flight),
            self.get(&self.failed),
            self.get(&self.skipped),
        );
        // The LLM stage works beside the crawl: say how far it is.
        if done + self.get(&self.summaries_failed) + self.get(&self.summaries_pending) > 0 {
            line.push_str("; ");
            line.push_str(&summaries);
        }
        line
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

/// Runs until `done` is cancelled, showing `counters` (a bar is drawn on
/// `stderr`, and log lines written through it go above the bar).
pub async fn report(
    counters: Arc<Counters>,
    mode: ProgressMode,
    stderr: Stderr,
    done: CancellationToken,
) {
    if mode == ProgressMode::Off {
        done.cancelled().await;
        return;
    }
    let start = Instant::now();
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .expect("static template"),
        );
        stderr.show(Some(bar.clone()));
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = done.cancelled() => break,
                _ = tick.tick() => {
                    bar.set_message(counters.line(start.elapsed()));
                    bar.tick();
                }
            }
        }
        stderr.show(None);
        bar.finish_and_clear();
    } else {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = done.cancelled() => break,
                _ = tick.tick() => tracing::info!("{}", counters.line(start.elapsed())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_when_the_crawl_waits_for_summaries() {
        let c = Counters::default();
        c.fetched.store(12, Relaxed);
        c.queued.store(3, Relaxed);
        assert_eq!(
            c.line(Duration::from_secs(4)),
            "12 fetched (3/s), 3 queued, 0 in flight, 0 failed, 0 skipped"
        );
        // Summaries under way beside the crawl.
        c.summaries_done.store(2, Relaxed);
        c.summaries_pending.store(9, Relaxed);
        c.summary_tokens.store(880, Relaxed);
        assert_eq!(
            c.line(Duration::from_secs(60)),
            "12 fetched (0/s), 3 queued, 0 in flight, 0 failed, 0 skipped; \
             summaries: 2 done (2.0/min), 0 failed, 9 pending, 880 tokens"
        );
        c.waiting_for_summaries.store(true, Relaxed);
        c.summaries_done.store(5, Relaxed);
        c.summaries_failed.store(1, Relaxed);
        c.summaries_pending.store(7, Relaxed);
        assert_eq!(
            c.line(Duration::from_secs(60)),
            "12 fetched; waiting for summaries: 5 done (5.0/min), 1 failed, 7 pending, 880 tokens"
        );
    }
}
