//! The stage that drives a [`Summarizer`] over pages.
//!
//! In: pages offered live by the crawl (a bounded channel the crawl never
//! waits on: when it is full, the page is left for the sweep) and, after
//! that, a sweep of the database for pages without a summary under the
//! summarizer's key. Out: rows in `summaries`, written on the stage's own
//! connection in small transactions.
//!
//! The database is the queue: a page whose summary was not written (a stop,
//! a kill, a spent token budget, a full channel) is found again by the next
//! sweep, in `trawl summarize` or a resumed crawl.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Outcome, PartDone, Parts, Summarizer};
use crate::progress::Counters;
pub use crate::store::summaries::{KeyCounts, SUMMARIZABLE, SweepOptions};
use crate::store::summaries::{StoredPart, SummaryResult, SummaryWriter};
use crate::store::{Store, StoreError};

/// A page to summarize.
#[derive(Debug, Clone)]
pub struct Item {
    /// A URL with this content (for messages).
    pub url: String,
    pub content_hash: String,
    pub text: String,
    /// One byte per line of `text`, when known (see
    /// `parse::extract::kind`).
    pub kinds: Option<String>,
}

/// What the stage did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageReport {
    pub done: u64,
    pub failed: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// `--llm-max-total-tokens` was reached; the rest is pending.
    pub budget_spent: bool,
    /// Stopped on request; the rest is pending.
    pub stopped: bool,
    /// Answers cut at `max_tokens` (stored, marked `truncated`).
    pub truncated: u64,
    /// The endpoint could not be reached and the stage gave up: why, and
    /// since when. The rest is pending.
    pub unreachable: Option<String>,
}

/// Results written per transaction by the extractive summarizer (an LLM
/// summary is written as soon as it is made: it was paid for).
const FLUSH_EVERY: usize = 32;
/// Pages read per sweep query.
const SWEEP_BATCH: i64 = 256;

struct Run {
    summarizer: Arc<Summarizer>,
    store: Store,
    writer: SummaryWriter,
    handled: HashSet<String>,
    tasks: JoinSet<(String, String, Outcome)>,
    /// Parts of split pages as they finish, to be written at once.
    parts_tx: mpsc::UnboundedSender<(String, String, PartDone)>,
    parts_rx: mpsc::UnboundedReceiver<(String, String, PartDone)>,
    buffer: Vec<(String, Outcome)>,
    report: StageReport,
    /// A crawl's progress display, told what the crawl waits for.
    progress: Option<Arc<Counters>>,
    /// Contents the sweep has still to start (known when it begins).
    unstarted: u64,
    /// A summary was left neither done nor failed (an endpoint out, a
    /// spent budget, a task that died): its page waits in the database,
    /// so the sweep must run even after complete live pages.
    left_pending: bool,
}

/// The pages a crawl offers the stage as it stores them.
pub struct Live {
    pub rx: mpsc::Receiver<Item>,
    /// Whether they are all the pages that can need a summary: the run
    /// started on a database with no pages and no other process stores
    /// any (a new crawl, not shared). Then, when the crawl dropped no
    /// offer (`Counters::summary_offers_dropped`, with the crawl's counters
    /// as `progress`) and every summary started ended done or failed
    /// (none left pending by an endpoint gone, no task lost), the sweep
    /// after them would find nothing, and is not made: it reads every
    /// stored page (0.1 s on 20,000 pages, ~5% of such a crawl).
    pub complete: bool,
}

/// Runs the stage: first over `live` until it closes, then a sweep of the
/// database (unless `live` was complete, see [`Live`]), until `stop`. With
/// `progress` (a crawl's counters), the stage says there, once `live` has
/// closed, that the crawl waits for it and how far it is.
pub async fn run(
    summarizer: Arc<Summarizer>,
    store: Store,
    writer: SummaryWriter,
    live: Option<Live>,
    sweep: SweepOptions,
    stop: CancellationToken,
    progress: Option<Arc<Counters>>,
) -> Result<StageReport, StoreError> {
    let mut run = Run::new(summarizer, store, writer, progress);
    let limit = run.summarizer.parallelism();
    let mut sweep_needed = true;
    if let Some(Live { mut rx, complete }) = live {
        // Only to notice that the crawl has closed the channel while every
        // slot is busy (the progress display says it is waiting then).
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick(), if run.progress.is_some() => {}
                Some(res) = run.tasks.join_next(), if !run.tasks.is_empty() => run.collect(res).await?,
                Some(part) = run.parts_rx.recv() => run.write_part(part).await?,
                item = rx.recv(), if run.tasks.len() < limit => match item {
                    None => {
                        // Every page offered was taken: with none dropped
                        // and nothing stored before, none is left to find.
                        let dropped = run
                            .progress
                            .as_ref()
                            .map(|c| c.summary_offers_dropped.load(Relaxed));
                        sweep_needed = !(complete && dropped == Some(0));
                        break;
                    }
                    Some(item) => {
                        if run.summarizer.unreachable().is_some() && !run.recover(&stop).await? {
                            break;
                        }
                        if !run.summarizer.budget_spent() && run.wanted(&item.content_hash, sweep).await? {
                            run.spawn(item.url, item.content_hash, item.text, item.kinds);
                        }
                    }
                },
            }
            // Closed: every fetch is committed, and the crawl waits for
            // what is in flight, what is still in the channel and the sweep.
            if rx.is_closed() {
                run.unstarted = rx.len() as u64;
                run.waiting();
            }
        }
        if !sweep_needed {
            // The summaries still in flight decide: one left pending (an
            // endpoint out, say) waits in the database for the sweep.
            run.finish_in_flight(&stop).await?;
            sweep_needed = run.left_pending;
        }
        // How much the sweep has to do, for the progress display. Not with
        // summaries made with the parse: the crawl's pages came summarized,
        // and counting would be one more scan of every page (0.15 s on
        // 20,000) to show a zero; the sweep itself still checks them all.
        if sweep_needed
            && run.progress.is_some()
            && !stop.is_cancelled()
            && !run.summarizer.is_inline()
        {
            // Results not yet written would be counted as still to do.
            run.flush().await?;
            let to_do = run
                .store
                .pending_summary_count(run.summarizer.key(), sweep)
                .await?;
            run.unstarted = to_do.saturating_sub(run.tasks.len() as u64);
            run.waiting();
        }
    }
    let mut after = i64::MIN;
    'sweep: loop {
        'pass: while sweep_needed
            && !stop.is_cancelled()
            && !run.summarizer.budget_spent()
            && run.report.unreachable.is_none()
        {
            let rows = run
                .store
                .pending_summaries(run.summarizer.key(), sweep, after, SWEEP_BATCH)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.after;
            for crate::store::summaries::PendingPage {
                url,
                content_hash,
                text,
                kinds,
                ..
            } in rows
            {
                if !run.handled.insert(content_hash.clone()) {
                    continue;
                }
                while run.tasks.len() >= limit {
                    tokio::select! {
                        _ = stop.cancelled() => break 'pass,
                        Some(part) = run.parts_rx.recv() => run.write_part(part).await?,
                        Some(res) = run.tasks.join_next() => run.collect(res).await?,
                    }
                }
                if run.summarizer.unreachable().is_some() && !run.recover(&stop).await? {
                    break 'pass;
                }
                if run.summarizer.budget_spent() {
                    break 'pass;
                }
                run.unstarted = run.unstarted.saturating_sub(1);
                run.spawn(url, content_hash, text, kinds);
            }
        }
        run.finish_in_flight(&stop).await?;
        // Pages left pending because the endpoint went away: once it is
        // back, sweep again.
        if sweep_needed
            && !stop.is_cancelled()
            && run.report.unreachable.is_none()
            && run.summarizer.unreachable().is_some()
            && run.recover(&stop).await?
        {
            after = i64::MIN;
            continue 'sweep;
        }
        break;
    }
    while let Ok(part) = run.parts_rx.try_recv() {
        run.write_part(part).await?;
    }
    run.flush().await?;
    // Summaries are the last writes of a run: leave no WAL behind.
    run.writer.checkpoint().await;
    run.report.budget_spent = run.summarizer.budget_spent();
    run.report.stopped = stop.is_cancelled();
    Ok(run.report)
}

impl Run {
    /// Waits for the summaries in flight and collects them, until `stop`,
    /// which drops them (their pages stay pending).
    async fn finish_in_flight(&mut self, stop: &CancellationToken) -> Result<(), StoreError> {
        while !self.tasks.is_empty() {
            tokio::select! {
                _ = stop.cancelled() => {
                    self.tasks.abort_all();
                    break;
                }
                Some(part) = self.parts_rx.recv() => self.write_part(part).await?,
                Some(res) = self.tasks.join_next() => self.collect(res).await?,
            }
        }
        Ok(())
    }

    fn new(
        summarizer: Arc<Summarizer>,
        store: Store,
        writer: SummaryWriter,
        progress: Option<Arc<Counters>>,
    ) -> Self {
        let (parts_tx, parts_rx) = mpsc::unbounded_channel();
        Run {
            summarizer,
            store,
            parts_tx,
            parts_rx,
            writer,
            handled: HashSet::new(),
            tasks: JoinSet::new(),
            buffer: Vec::new(),
            report: StageReport::default(),
            progress,
            unstarted: 0,
            left_pending: false,
        }
    }

    /// Whether `hash` still needs a summary (and is not already under way).
    async fn wanted(&mut self, hash: &str, sweep: SweepOptions) -> Result<bool, StoreError> {
        if self.handled.contains(hash) {
            return Ok(false);
        }
        if !sweep.force {
            let state = self
                .store
                .summary_state(hash, self.summarizer.key())
                .await?;
            match state.as_deref() {
                Some("done") => return Ok(false),
                Some(_) if !sweep.retry_failed => return Ok(false),
                _ => {}
            }
        }
        self.handled.insert(hash.to_string());
        Ok(true)
    }

    fn spawn(&mut self, url: String, content_hash: String, text: String, kinds: Option<String>) {
        let s = self.summarizer.clone();
        let store = self.store.clone();
        let tx = self.parts_tx.clone();
        self.tasks.spawn(async move {
            let parts = if s.key().backend == "llm" {
                StoredParts::load(&store, &s, &content_hash, tx).await
            } else {
                None
            };
            let outcome = s
                .summarize(text, kinds, None, parts.as_ref().map(|p| p as &dyn Parts))
                .await;
            (url, content_hash, outcome)
        });
        self.show();
    }

    /// The endpoint cannot be reached: lets the requests in flight end,
    /// then probes it with back-off. True if it answers again; else the
    /// stage stops, leaving the rest pending, and says so once.
    async fn recover(&mut self, stop: &CancellationToken) -> Result<bool, StoreError> {
        while !self.tasks.is_empty() {
            tokio::select! {
                _ = stop.cancelled() => return Ok(false),
                Some(part) = self.parts_rx.recv() => self.write_part(part).await?,
                Some(res) = self.tasks.join_next() => self.collect(res).await?,
            }
        }
        self.flush().await?;
        let Some(why) = self.summarizer.unreachable() else {
            return Ok(true);
        };
        let back = tokio::select! {
            _ = stop.cancelled() => false,
            back = self.summarizer.wait_for_endpoint() => back,
        };
        if !back && !stop.is_cancelled() {
            tracing::error!(
                "LLM endpoint unreachable: {why}; the pages not summarized stay pending: run                  `trawl summarize` when it is back"
            );
            self.report.unreachable = Some(why);
        }
        Ok(back)
    }

    async fn write_part(
        &mut self,
        (hash, key, part): (String, String, PartDone),
    ) -> Result<(), StoreError> {
        let part = StoredPart {
            part_key: key,
            summary: part.text,
            cut: part.cut,
            prompt_tokens: part.prompt_tokens,
            completion_tokens: part.completion_tokens,
        };
        self.writer
            .write_part(&hash, self.summarizer.key(), &part)
            .await
    }

    /// Tells the crawl's progress display that the crawl waits for the
    /// stage, and how far it is.
    fn waiting(&self) {
        if let Some(c) = &self.progress {
            self.show();
            c.waiting_for_summaries.store(true, Relaxed);
        }
    }

    /// Updates the crawl's progress display, if there is one.
    fn show(&self) {
        if let Some(c) = &self.progress {
            c.summaries_done.store(self.report.done, Relaxed);
            c.summaries_failed.store(self.report.failed, Relaxed);
            c.summaries_pending
                .store(self.tasks.len() as u64 + self.unstarted, Relaxed);
        }
    }

    async fn collect(
        &mut self,
        res: Result<(String, String, Outcome), tokio::task::JoinError>,
    ) -> Result<(), StoreError> {
        let Ok((url, hash, outcome)) = res else {
            // Aborted or died; the page stays pending.
            self.left_pending = true;
            return Ok(());
        };
        self.report.prompt_tokens += outcome.prompt_tokens;
        self.report.completion_tokens += outcome.completion_tokens;
        if let Some(c) = &self.progress {
            c.summary_tokens.store(
                self.report.prompt_tokens + self.report.completion_tokens,
                Relaxed,
            );
        }
        if let Some(why) = &outcome.pending {
            // Neither done nor failed: the page waits for a later run.
            tracing::debug!("summary of {url} left pending: {why}");
            self.handled.remove(&hash);
            self.left_pending = true;
            return Ok(());
        }
        match &outcome.summary {
            Ok(_) => {
                self.report.done += 1;
                if outcome.truncated {
                    self.report.truncated += 1;
                    tracing::info!(
                        "the summary of {url} was cut at max_tokens; stored, marked truncated"
                    );
                }
            }
            Err(e) => {
                tracing::warn!("summary of {url} failed: {e}");
                self.report.failed += 1;
            }
        }
        self.show();
        self.buffer.push((hash, outcome));
        let every = if self.summarizer.key().backend == "llm" {
            1
        } else {
            FLUSH_EVERY
        };
        if self.buffer.len() >= every || self.tasks.is_empty() {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.buffer);
        write(&mut self.writer, &self.summarizer, &rows).await
    }
}

/// Writes summaries in one transaction; a later result replaces an earlier
/// one for the same key. Results left pending are not written.
pub async fn write(
    writer: &mut SummaryWriter,
    summarizer: &Summarizer,
    rows: &[(String, Outcome)],
) -> Result<(), StoreError> {
    let results: Vec<SummaryResult<'_>> = rows
        .iter()
        .filter(|(_, o)| o.pending.is_none())
        .map(|(hash, o)| SummaryResult {
            content_hash: hash,
            summary: o.summary.as_deref().map_err(String::as_str),
            prompt_tokens: o.prompt_tokens,
            completion_tokens: o.completion_tokens,
            chunks: o.chunks,
            attempts: o.attempts,
            truncated: o.truncated,
        })
        .collect();
    writer.write(summarizer.key(), &results).await
}

/// The stored parts of one page, and where new ones go.
struct StoredParts {
    hash: String,
    known: std::sync::Mutex<HashMap<String, PartDone>>,
    tx: mpsc::UnboundedSender<(String, String, PartDone)>,
}

impl StoredParts {
    async fn load(
        store: &Store,
        summarizer: &Summarizer,
        hash: &str,
        tx: mpsc::UnboundedSender<(String, String, PartDone)>,
    ) -> Option<StoredParts> {
        let parts = store
            .summary_parts(hash, summarizer.key())
            .await
            .map_err(|e| tracing::debug!("reading stored parts: {e}"))
            .ok()?;
        let known = parts
            .into_iter()
            .map(|p| {
                (
                    p.part_key,
                    PartDone {
                        text: p.summary,
                        cut: p.cut,
                        prompt_tokens: p.prompt_tokens,
                        completion_tokens: p.completion_tokens,
                    },
                )
            })
            .collect();
        Some(StoredParts {
            hash: hash.to_string(),
            known: std::sync::Mutex::new(known),
            tx,
        })
    }
}

impl Parts for StoredParts {
    fn get(&self, key: &str) -> Option<PartDone> {
        self.known.lock().expect("parts").get(key).cloned()
    }

    fn put(&self, key: String, part: PartDone) {
        let _ = self.tx.send((self.hash.clone(), key.clone(), part.clone()));
        self.known.lock().expect("parts").insert(key, part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summarize::SummarizeConfig;

    /// A database holding one summarizable page nobody offers the stage
    /// live: the sweep is what finds it.
    async fn store_with_a_page(dir: &std::path::Path) -> Store {
        let store = Store::open(dir.join("t.db").as_path()).await.unwrap();
        let crate::store::Conn::Sqlite(mut conn) = store.connection().await.unwrap() else {
            unreachable!("a file")
        };
        for sql in [
            "INSERT INTO urls (id, url, origin, depth, state, discovered_at, updated_at) \
             VALUES (1, 'http://a.test/', 'http://a.test:80', 0, 'done', 0, 0)",
            "INSERT INTO pages (url_id, status, final_url, size, fetched_at, fetch_ms, \
             content_hash, text) VALUES (1, 200, 'http://a.test/', 9, 0, 0, 'h1', \
             'Crawlers fetch pages politely. Crawlers store pages they fetch. \
             Crawlers summarize the pages they store.')",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        store
    }

    /// Runs the stage over an empty live channel that is `complete`, the
    /// crawl having dropped `dropped` offers; the summaries then stored.
    async fn after_live(complete: bool, dropped: u64) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_a_page(dir.path()).await;
        let summarizer = Arc::new(Summarizer::new(&SummarizeConfig::default()).unwrap());
        let counters = Arc::new(Counters::default());
        counters.summary_offers_dropped.store(dropped, Relaxed);
        let (tx, rx) = mpsc::channel(1);
        drop(tx);
        let report = run(
            summarizer,
            store.clone(),
            store.summary_writer().await.unwrap(),
            Some(Live { rx, complete }),
            SweepOptions::default(),
            CancellationToken::new(),
            Some(counters),
        )
        .await
        .unwrap();
        let (done, _, _) = store.summary_counts().await.unwrap();
        assert_eq!(report.done as i64, done);
        done
    }

    /// A summary left neither done nor failed (an endpoint out), or a
    /// task that died, marks the run: its page waits for the sweep. A
    /// done summary does not.
    #[tokio::test]
    async fn a_summary_left_pending_or_lost_calls_for_the_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_a_page(dir.path()).await;
        let summarizer = Arc::new(Summarizer::new(&SummarizeConfig::default()).unwrap());
        let writer = store.summary_writer().await.unwrap();
        let mut run = Run::new(summarizer, store, writer, None);
        let done = Outcome {
            summary: Ok("Crawlers fetch pages politely.".into()),
            attempts: 1,
            chunks: 1,
            ..Outcome::default()
        };
        run.collect(Ok(("http://a.test/".into(), "h1".into(), done)))
            .await
            .unwrap();
        assert!(!run.left_pending);
        let pending = Outcome {
            pending: Some("the endpoint is unreachable".into()),
            ..Outcome::default()
        };
        run.collect(Ok(("http://a.test/".into(), "h2".into(), pending)))
            .await
            .unwrap();
        assert!(run.left_pending);

        run.left_pending = false;
        let died = tokio::spawn(async { panic!("a summary task died") }).await;
        let died: Result<(String, String, Outcome), _> = died.map(|()| unreachable!());
        run.collect(died).await.unwrap();
        assert!(run.left_pending);
    }

    /// A crawl's live pages stand for all there is only when they are
    /// complete and none was dropped; otherwise the sweep looks.
    #[tokio::test]
    async fn the_sweep_is_left_out_only_after_complete_live_pages_with_none_dropped() {
        assert_eq!(after_live(false, 0).await, 1);
        assert_eq!(after_live(true, 3).await, 1);
        assert_eq!(after_live(true, 0).await, 0);
    }
}
