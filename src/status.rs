//! Where a crawl stands: one read-only pass over the database.
//!
//! In: an open [`Store`] (possibly beside a running crawl). Out: a
//! [`Status`], printed as text for people or as one JSON object for
//! scripts (`trawl status --json`; its keys are documented in the README).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::{Store, StoreError};
use crate::util::rfc3339;

#[derive(Debug, Serialize)]
pub struct Status {
    pub database: String,
    /// `null` when the database holds no crawl yet.
    pub crawl: Option<CrawlInfo>,
    /// Pages stored (2xx or not), sitemaps left out.
    pub pages_stored: i64,
    /// URLs waiting to be fetched (queued or leased).
    pub queued: i64,
    /// URLs whose fetch failed.
    pub failed: i64,
    pub failed_by_reason: BTreeMap<String, i64>,
    /// URLs not fetched, by reason.
    pub skipped: BTreeMap<String, i64>,
    /// Page URLs by state (`queued`, `leased`, `done`, `failed`, `skipped`).
    pub urls_by_state: BTreeMap<String, i64>,
    /// Stored pages by the HTTP status of their latest answer (a page a
    /// recrawl found gone, kept with its last version, counts under the
    /// 404 or 410 that removed it).
    pub http_status: BTreeMap<String, i64>,
    /// Pages stored in part: the body passed `--max-body-size`, or the
    /// text past 1 MiB (`parse::MAX_TEXT_BYTES`).
    pub pages_truncated: i64,
    /// 2xx pages served as HTML whose body is binary: stored unparsed.
    pub pages_binary: i64,
    /// The ten hosts with the most stored pages.
    pub top_hosts: Vec<HostCount>,
    pub last_run: Option<RunInfo>,
    /// What `last_run` was made from, with its times in epoch ms (not
    /// printed: for a caller that draws the run).
    #[serde(skip)]
    pub last_run_stats: Option<crate::store::RunStats>,
    /// Every run of the crawl (first crawl, resumes, recrawls), oldest
    /// first, with what a recrawl found.
    pub runs: Vec<RunLine>,
    /// The processes that worked on the crawl (the last 20), oldest first.
    pub processes: Vec<ProcessLine>,
    /// Hosts that may not be asked before a time still to come (a
    /// back-off or a server's Retry-After), soonest first.
    pub hosts_waiting: Vec<HostWaiting>,
    /// Distinct page contents with a summary by any summarizer.
    pub summaries_done: i64,
    /// Contents whose every summary attempt failed.
    pub summaries_failed: i64,
    /// Summarizable contents with no summary yet.
    pub summaries_pending: i64,
    pub summary_prompt_tokens: i64,
    pub summary_completion_tokens: i64,
    /// Per summarizer (backend, model, prompt version) that has made any:
    /// done (and of those, cut at max_tokens), failed and pending.
    pub summaries_by_summarizer: Vec<SummarizerCounts>,
    /// Failed summaries by the start of their error (`HTTP 400`,
    /// `malformed response`…), most first.
    pub summaries_failed_by_reason: BTreeMap<String, i64>,
    /// Sitemaps by state and reason (`done`, `failed:http_404`).
    pub sitemaps: BTreeMap<String, i64>,
    /// Hosts whose robots.txt had rules for trawl that could not be used
    /// (left out, every other rule obeyed), most first.
    pub robots_unusable_rules: Vec<HostRules>,
}

/// A process that worked on the crawl, as `status` shows it.
#[derive(Debug, Serialize)]
pub struct ProcessLine {
    /// The run it worked on (`runs[].id`).
    pub run_id: i64,
    pub hostname: String,
    pub pid: i64,
    /// `running`; `finished` (it ended, by a stop or the crawl's end); or
    /// `lost`: it recorded no end and no process holds the database, its
    /// last heartbeat is older than 30 s, or it ran on this machine and
    /// its pid is gone (it was killed).
    pub state: String,
    pub started_at: String,
    pub last_heartbeat: String,
    pub finished_at: Option<String>,
    /// Its `--concurrency`.
    pub concurrency: i64,
    /// Pages it fetched (as of its last heartbeat, or its end).
    pub fetched: i64,
    /// `fetched` over the time from its start to its last heartbeat, to
    /// one decimal.
    pub pages_per_sec: f64,
    /// Hosts it had work for, as of its last heartbeat.
    pub hosts: i64,
}

/// A host waiting out a back-off or a Retry-After.
#[derive(Debug, Serialize)]
pub struct HostWaiting {
    pub origin: String,
    /// No request starts to it before this time.
    pub until: String,
}

#[derive(Debug, Serialize)]
pub struct HostRules {
    pub origin: String,
    /// Rules of trawl's group left out.
    pub rules: i64,
}

/// One summarizer's summaries (see `store::summaries::KeyCounts`).
#[derive(Debug, Serialize)]
pub struct SummarizerCounts {
    pub backend: String,
    pub model: String,
    pub prompt_version: String,
    #[serde(flatten)]
    pub counts: crate::store::summaries::KeyCounts,
}

#[derive(Debug, Serialize)]
pub struct CrawlInfo {
    pub id: i64,
    /// `running`, `stopped`, `finished`, or `interrupted` (the row says
    /// running but no process holds the database: it was killed).
    pub state: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub seeds: Vec<String>,
    /// The crawl's settings as stored (what `resume` continues with), with
    /// durations as seconds under keys ending `_secs`.
    pub settings: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub struct HostCount {
    pub origin: String,
    pub pages: i64,
}

/// The current or last run, as the final line of `crawl` and `resume`
/// reports it (both read [`crate::store::RunStats`]).
#[derive(Debug, Serialize)]
pub struct RunInfo {
    pub started_at: String,
    /// Page URLs fetched in the run, stored or failed (sitemaps left out).
    pub pages: i64,
    /// From the run's start to its last page fetch, in seconds.
    pub duration_secs: f64,
    /// `pages` over `duration_secs`, to one decimal.
    pub pages_per_sec: f64,
}

/// A run as `status` shows it.
#[derive(Debug, Serialize)]
pub struct RunLine {
    pub id: i64,
    /// `crawl`, `resume` or `recrawl`.
    pub kind: String,
    pub started_at: String,
    /// `null` while it runs (or after it was killed).
    pub finished_at: Option<String>,
    /// Stored pages asked for again that answered: unchanged, changed or
    /// removed.
    pub checked: i64,
    pub unchanged: i64,
    pub changed: i64,
    pub new: i64,
    pub removed: i64,
    /// Body bytes downloaded (counted when the run ends).
    pub bytes: i64,
}

/// Whether process `pid` of host `hostname` is one of this machine
/// (`here`) and no longer exists (Linux's `/proc`; elsewhere, never said).
fn gone_here(here: &str, hostname: &str, pid: i64) -> bool {
    std::path::Path::new("/proc/self").exists()
        && here == hostname
        && i64::from(std::process::id()) != pid
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Reads where the crawl in `store` stands. A crawl whose row says it runs
/// while no process holds the database is reported `interrupted`.
pub async fn collect(store: &Store) -> Result<Status, StoreError> {
    let held = store.is_held().await;
    let crawl = store.crawl().await?.map(|r| {
        let mut state = r.state;
        // `running` in the table after the process is gone means it
        // was killed; only the lock tells the two apart.
        if (state == "running" || state == "summarizing") && !held {
            state = "interrupted".into();
        }
        let mut settings: serde_json::Value = serde_json::from_str(&r.config).unwrap_or_default();
        durations_in_secs(&mut settings);
        let seeds = settings["seeds"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        CrawlInfo {
            id: r.id,
            state,
            started_at: rfc3339(r.started_at),
            finished_at: r.finished_at.map(rfc3339),
            seeds,
            settings,
        }
    });
    let urls_by_state: BTreeMap<String, i64> = store.state_counts().await?.into_iter().collect();
    let by_state = |s: &str| urls_by_state.get(s).copied().unwrap_or(0);
    let failed_by_reason = store.reason_counts("failed").await?.into_iter().collect();
    let skipped = store.reason_counts("skipped").await?.into_iter().collect();
    let http_status: BTreeMap<String, i64> =
        store.http_status_counts().await?.into_iter().collect();
    let pages_stored = http_status.values().sum();
    let (pages_truncated, pages_binary) = store.truncated_and_binary_pages().await?;
    let top_hosts = store
        .top_hosts()
        .await?
        .into_iter()
        .map(|(origin, pages)| HostCount { origin, pages })
        .collect();
    let last_run_stats = store.last_run().await?;
    let last_run = last_run_stats.as_ref().map(|run| RunInfo {
        started_at: rfc3339(run.started_at),
        pages: run.fetched,
        duration_secs: run.duration().as_secs_f64(),
        pages_per_sec: run.pages_per_sec(),
    });
    let runs = store
        .runs()
        .await?
        .into_iter()
        .map(|r| RunLine {
            id: r.id,
            kind: r.kind,
            started_at: rfc3339(r.started_at),
            finished_at: r.finished_at.map(rfc3339),
            checked: r.checked,
            unchanged: r.unchanged,
            changed: r.changed,
            new: r.new,
            removed: r.removed,
            bytes: r.bytes,
        })
        .collect();
    let now = crate::util::now_ms();
    let lost_after = crate::store::processes::LOST_AFTER.as_millis() as i64;
    let here = gethostname::gethostname().to_string_lossy().into_owned();
    let processes = store
        .processes(20)
        .await?
        .into_iter()
        .map(|p| {
            let state = if p.finished_at.is_some() {
                "finished"
            } else if !held
                || now - p.heartbeat_at > lost_after
                || gone_here(&here, &p.hostname, p.pid)
            {
                "lost"
            } else {
                "running"
            };
            let secs = (p.heartbeat_at - p.started_at) as f64 / 1000.0;
            let pages_per_sec = if secs > 0.0 {
                (p.fetched as f64 / secs * 10.0).round() / 10.0
            } else {
                0.0
            };
            ProcessLine {
                run_id: p.run_id,
                hostname: p.hostname,
                pid: p.pid,
                state: state.to_string(),
                started_at: rfc3339(p.started_at),
                last_heartbeat: rfc3339(p.heartbeat_at),
                finished_at: p.finished_at.map(rfc3339),
                concurrency: p.concurrency,
                fetched: p.fetched,
                pages_per_sec,
                hosts: p.hosts,
            }
        })
        .collect();
    let mut waiting = store.host_delays(now).await?;
    waiting.sort_by_key(|(origin, until)| (*until, origin.clone()));
    let hosts_waiting = waiting
        .into_iter()
        .map(|(origin, until)| HostWaiting {
            origin,
            until: rfc3339(until),
        })
        .collect();
    let (summaries_done, summaries_failed, summaries_pending) = store.summary_counts().await?;
    let (summary_prompt_tokens, summary_completion_tokens) = store.summary_tokens().await?;
    let mut summaries_by_summarizer = Vec::new();
    for s in store.stored_summarizers().await? {
        let key = crate::summarize::SummaryKey {
            backend: if s.backend == "llm" {
                "llm"
            } else {
                "extractive"
            },
            model: s.model.clone(),
            prompt_version: s.prompt_version.clone(),
        };
        let counts = store.summary_counts_for(&key).await?;
        summaries_by_summarizer.push(SummarizerCounts {
            backend: s.backend,
            model: s.model,
            prompt_version: s.prompt_version,
            counts,
        });
    }
    let mut summaries_failed_by_reason = BTreeMap::new();
    for (error, n) in store.summary_errors().await? {
        *summaries_failed_by_reason
            .entry(failure_kind(&error))
            .or_insert(0) += n;
    }
    let sitemaps = store.sitemap_counts().await?.into_iter().collect();
    let robots_unusable_rules = store
        .unusable_robots_rules()
        .await?
        .into_iter()
        .map(|(origin, rules)| HostRules { origin, rules })
        .collect();
    Ok(Status {
        database: store.target().to_string(),
        crawl,
        pages_stored,
        queued: by_state("queued") + by_state("leased"),
        failed: by_state("failed"),
        failed_by_reason,
        skipped,
        urls_by_state,
        http_status,
        pages_truncated,
        pages_binary,
        top_hosts,
        last_run,
        last_run_stats,
        runs,
        processes,
        hosts_waiting,
        summaries_done,
        summaries_failed,
        summaries_pending,
        summary_prompt_tokens,
        summary_completion_tokens,
        summaries_by_summarizer,
        summaries_failed_by_reason,
        sitemaps,
        robots_unusable_rules,
    })
}

/// The kind of a summary's error: its text up to the first `:` (`HTTP
/// 400`, `malformed response`), at most 60 characters.
fn failure_kind(error: &str) -> String {
    let head = error.split(':').next().unwrap_or("").trim();
    let head = if head.is_empty() { "unknown" } else { head };
    head.chars().take(60).collect()
}

/// Rewrites every duration in stored settings (serde's `{"secs": 30,
/// "nanos": 0}` under `timeout`) as seconds under a name that says so
/// (`"timeout_secs": 30.0`), the one unit of durations in `status --json`.
fn durations_in_secs(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let secs = match &map[&k] {
                    serde_json::Value::Object(d) if d.len() == 2 => {
                        match (d.get("secs"), d.get("nanos")) {
                            (Some(s), Some(n)) => s
                                .as_u64()
                                .zip(n.as_u64())
                                .map(|(s, n)| s as f64 + n as f64 / 1e9),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                match secs {
                    Some(secs) => {
                        map.remove(&k);
                        map.insert(format!("{k}_secs"), serde_json::Value::from(secs));
                    }
                    None => durations_in_secs(&mut map[&k]),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(durations_in_secs),
        _ => {}
    }
}

fn joined(m: &BTreeMap<String, i64>) -> String {
    crate::util::join_counts(m.iter().map(|(k, v)| (k.as_str(), *v)))
}

impl Status {
    /// The text `trawl status` prints.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let Some(c) = &self.crawl else {
            return format!("{}: no crawl\n", self.database);
        };
        let state = if c.state == "interrupted" {
            "interrupted; `trawl resume` continues it"
        } else {
            c.state.as_str()
        };
        s.push_str(&format!(
            "crawl {} ({state}), started {}\n",
            c.id, c.started_at
        ));
        s.push_str(&format!("  seeds: {}\n", c.seeds.join(" ")));
        let settings = &c.settings;
        let limit = |v: &serde_json::Value| {
            if v.is_null() {
                "none".to_string()
            } else {
                v.to_string()
            }
        };
        s.push_str(&format!(
            "  settings: concurrency {}, per host {} at {}/s, max pages {}, max depth {}, robots {}, summarizer {}\n",
            settings["concurrency"],
            settings["politeness"]["per_host_concurrency"],
            settings["politeness"]["per_host_rate"],
            limit(&settings["limits"]["max_pages"]),
            limit(&settings["limits"]["max_depth"]),
            if settings["politeness"]["robots"] == false { "ignored" } else { "obeyed" },
            if settings["summarize"]["enabled"] == false {
                "off".to_string()
            } else {
                settings["summarize"]["backend"]
                    .as_str()
                    .unwrap_or("extractive")
                    .to_string()
            }
        ));
        if settings["extract"]["keep_html"] == true {
            let fields: Vec<String> = settings["extract"]["fields"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|f| {
                            serde_json::from_value::<crate::fields::FieldSpec>(f.clone()).ok()
                        })
                        .map(|f| f.to_arg())
                        .collect()
                })
                .unwrap_or_default();
            s.push_str(&format!(
                "  extraction: HTML kept; fields: {}\n",
                if fields.is_empty() {
                    "none".to_string()
                } else {
                    fields.join(" ")
                }
            ));
        }
        for (state, n) in &self.urls_by_state {
            s.push_str(&format!("  {state:<8} {n}\n"));
        }
        if !self.failed_by_reason.is_empty() {
            s.push_str(&format!(
                "  failed by reason: {}\n",
                joined(&self.failed_by_reason)
            ));
        }
        if !self.skipped.is_empty() {
            s.push_str(&format!("  skipped by reason: {}\n", joined(&self.skipped)));
        }
        for h in self.robots_unusable_rules.iter().take(10) {
            s.push_str(&format!(
                "  {}: robots.txt: {} could not be used\n",
                h.origin,
                crate::robots::rules_count(h.rules)
            ));
        }
        if self.robots_unusable_rules.len() > 10 {
            s.push_str(&format!(
                "  … and {} more hosts with robots.txt rules that could not be used\n",
                self.robots_unusable_rules.len() - 10
            ));
        }
        if !self.http_status.is_empty() {
            s.push_str(&format!("  HTTP status: {}\n", joined(&self.http_status)));
        }
        if self.pages_truncated > 0 {
            s.push_str(&format!(
                "  truncated: {} (body over --max-body-size, or text over 1 MiB)\n",
                self.pages_truncated
            ));
        }
        if self.pages_binary > 0 {
            s.push_str(&format!(
                "  binary served as HTML: {} (stored unparsed)\n",
                self.pages_binary
            ));
        }
        if !self.top_hosts.is_empty() {
            let hosts: Vec<String> = self
                .top_hosts
                .iter()
                .map(|h| format!("{} ({})", h.origin, h.pages))
                .collect();
            s.push_str(&format!("  top hosts: {}\n", hosts.join(", ")));
        }
        if let Some(r) = &self.last_run {
            s.push_str(&format!(
                "  last run: started {}, {} pages in {:.1}s, {:.1} pages/s\n",
                r.started_at, r.pages, r.duration_secs, r.pages_per_sec
            ));
        }
        if !self.runs.is_empty() {
            s.push_str("  runs:\n");
        }
        for r in &self.runs {
            s.push_str(&format!(
                "    {} {}, started {}",
                r.id, r.kind, r.started_at
            ));
            if r.finished_at.is_none() {
                s.push_str(", not finished");
            }
            if r.kind == "recrawl" || r.checked + r.new > 0 {
                s.push_str(&format!(
                    ": {} checked, {} unchanged, {} changed, {} new, {} removed",
                    r.checked, r.unchanged, r.changed, r.new, r.removed
                ));
            }
            s.push_str(&format!(
                ", {} downloaded\n",
                crate::util::human_bytes(r.bytes)
            ));
        }
        for h in &self.hosts_waiting {
            s.push_str(&format!(
                "  host waiting: {} until {} (back-off or Retry-After)\n",
                h.origin, h.until
            ));
        }
        if !self.processes.is_empty() {
            s.push_str("  processes:\n");
        }
        for p in &self.processes {
            s.push_str(&format!(
                "    pid {} on {} (run {}): {}, {} pages fetched ({:.1}/s), started {}",
                p.pid, p.hostname, p.run_id, p.state, p.fetched, p.pages_per_sec, p.started_at
            ));
            match p.state.as_str() {
                "running" => s.push_str(&format!(
                    ", {} hosts, last heartbeat {}\n",
                    p.hosts, p.last_heartbeat
                )),
                "lost" => s.push_str(&format!(", last heard from {}\n", p.last_heartbeat)),
                _ => s.push('\n'),
            }
        }
        s.push_str(&format!(
            "  summaries: {} done, {} failed, {} pending",
            self.summaries_done, self.summaries_failed, self.summaries_pending
        ));
        if self.summary_prompt_tokens + self.summary_completion_tokens > 0 {
            s.push_str(&format!(
                " ({} prompt + {} completion tokens)",
                self.summary_prompt_tokens, self.summary_completion_tokens
            ));
        }
        s.push('\n');
        for k in &self.summaries_by_summarizer {
            let c = &k.counts;
            s.push_str(&format!(
                "    {} {} ({}): {} done{}, {} failed, {} pending\n",
                k.backend,
                k.model,
                k.prompt_version,
                c.done,
                if c.truncated > 0 {
                    format!(" ({} cut at max_tokens)", c.truncated)
                } else {
                    String::new()
                },
                c.failed,
                c.pending
            ));
        }
        if !self.summaries_failed_by_reason.is_empty() {
            s.push_str(&format!(
                "  summaries failed by reason: {}\n",
                joined(&self.summaries_failed_by_reason)
            ));
        }
        if !self.sitemaps.is_empty() {
            s.push_str(&format!("  sitemaps: {}\n", joined(&self.sitemaps)));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_durations_become_seconds() {
        let mut v = serde_json::json!({
            "politeness": {"max_crawl_delay": {"secs": 30, "nanos": 0}, "retries": 2},
            "fetch": {"timeout": {"secs": 12, "nanos": 500_000_000}},
            "other": {"secs": 1, "nanos": 2, "extra": 3},
        });
        durations_in_secs(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "politeness": {"max_crawl_delay_secs": 30.0, "retries": 2},
                "fetch": {"timeout_secs": 12.5},
                "other": {"secs": 1, "nanos": 2, "extra": 3},
            })
        );
    }
}
