//! The report as one HTML document.
//!
//! In: a [`Report`]. Out: the text of a page whose CSS and script are
//! inline and whose charts are SVG drawn here. Its Content-Security-Policy
//! (`default-src 'none'`, the style and the script allowed by their
//! SHA-256) keeps the browser from loading anything at all, whatever a
//! stored string says.
//!
//! Every stored string (URLs, titles, anchors, summaries, reasons) is
//! hostile input: maud escapes everything interpolated, and only
//! `http:`/`https:` URLs become links. The numbers `trawl status --json`
//! gives carry `data-stat="<its key>"` (nested keys joined with `.`:
//! `http_status.404`), so a script can check them against it.

use std::collections::BTreeMap;

use base64::Engine;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};

use super::chart::{Bar, BarChart, Segment};
use super::{Chain, ReasonRow, Report, SIZE_EDGES};
use crate::store::report::{Capped, PageBrief};
use crate::util::{human_bytes, rfc3339};

const CSS: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

/// Longest URL or title shown in full; longer ones are cut (the link and
/// its tooltip keep all of it).
const SHOWN_CHARS: usize = 160;

/// `'sha256-…'` of an inline element's text, for the CSP.
fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// A count with thousands separators: `1,234,567`.
pub fn int(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration for people: `850 ms`, `12.3 s`, `5 min 3 s`, `2 h 5 min`,
/// `3 d 4 h`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `one` or `many`, as `n` asks.
fn noun(n: i64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// A string cut to [`SHOWN_CHARS`] characters, with `…` if it was cut.
fn shown(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A URL: a link when it is `http(s)`, else plain text. The link opens
/// nothing by itself; the report's policy keeps it from loading anything.
fn url(u: &str) -> Markup {
    let lower = u.get(..8).unwrap_or(u).to_ascii_lowercase();
    let web = lower.starts_with("http://") || lower.starts_with("https://");
    html! {
        @if web {
            a.url href=(u) title=(u) rel="noreferrer noopener nofollow" { (shown(u)) }
        } @else {
            span.url title=(u) { (shown(u)) }
        }
    }
}

/// A number `status --json` also gives, under `key`.
fn stat(key: &str, n: i64) -> Markup {
    html! { span data-stat=(key) data-value=(n) { (int(n)) } }
}

/// A table cell holding a number, sorted by its value.
fn num(n: i64) -> Markup {
    html! { td.n data-sort=(n) { (int(n)) } }
}

/// A table cell holding a number `status --json` also gives.
fn num_stat(key: &str, n: i64) -> Markup {
    html! { td.n data-sort=(n) { (stat(key, n)) } }
}

/// "and N more" under a capped list, if anything was left out.
fn more<T>(list: &Capped<T>, what: &str, columns: usize) -> Markup {
    html! {
        @if list.more() > 0 {
            tfoot { tr { td.more colspan=(columns) { "… and " (int(list.more())) " more " (what) } } }
        }
    }
}

/// The whole report as HTML. `db` names the database in the heading.
pub fn render(r: &Report, db: &str) -> String {
    let policy = format!(
        "default-src 'none'; style-src {}; script-src {}; base-uri 'none'; form-action 'none'",
        csp_hash(CSS),
        csp_hash(SCRIPT)
    );
    let state = r
        .status
        .crawl
        .as_ref()
        .map_or("no crawl", |c| c.state.as_str());
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(policy);
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="generator" content={ "trawl " (env!("CARGO_PKG_VERSION")) };
                title { "trawl report: " (db) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { "Crawl report" }
                    p.meta {
                        "Database " code { (db) } " · crawl " strong data-crawl-state=(state) { (state) }
                        " · made " (rfc3339(r.generated_at)) " by trawl " (env!("CARGO_PKG_VERSION"))
                    }
                    nav {
                        a href="#overview" { "Overview" }
                        a href="#status" { "HTTP status" }
                        a href="#depth" { "Depth" }
                        a href="#content" { "Content" }
                        a href="#hosts" { "Hosts" }
                        a href="#failures" { "Failures and skips" }
                        a href="#broken" { "Broken links" }
                        a href="#redirects" { "Redirects" }
                        a href="#duplicates" { "Duplicates" }
                        a href="#summaries" { "Summaries" }
                        a href="#directives" { "noindex / nofollow" }
                        a href="#notes" { "Not recorded" }
                    }
                }
                main {
                    (overview(r))
                    (status_section(r))
                    (depth_section(r))
                    (content_section(r))
                    (hosts_section(r))
                    (failures_section(r))
                    (broken_section(r))
                    (redirects_section(r))
                    (duplicates_section(r))
                    (summaries_section(r))
                    (directives_section(r))
                    (notes_section(r))
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    page.into_string()
}

fn overview(r: &Report) -> Markup {
    let s = &r.status;
    let skipped: i64 = s.skipped.values().sum();
    let c = s.crawl.as_ref();
    html! {
        section #overview {
            h2 { "Overview" }
            div.cards {
                div.card { span.label { "Pages stored" } span.big { (stat("pages_stored", s.pages_stored)) } }
                div.card.bad { span.label { "Failed" } span.big { (stat("failed", s.failed)) } }
                div.card.skip { span.label { "Skipped" } span.big { span data-value=(skipped) data-stat-sum="skipped" { (int(skipped)) } } }
                div.card { span.label { "Queued" } span.big { (stat("queued", s.queued)) } }
                div.card { span.label { "Body bytes stored" } span.big data-value=(r.bytes_stored) { (human_bytes(r.bytes_stored)) } }
                div.card { span.label { "Hosts" } span.big data-value=(r.hosts.total) { (int(r.hosts.total)) } }
                div.card { span.label { "Summaries" } span.big { (stat("summaries_done", s.summaries_done)) } }
            }
            @match c {
                None => p { "This database holds no crawl yet." },
                Some(c) => {
                    table.kv {
                        tr { th { "Crawl" } td { (c.id) " (" (c.state) ")" } }
                        tr { th { "Started" } td { (c.started_at) } }
                        tr { th { "Finished" } td { (c.finished_at.as_deref().unwrap_or("not finished")) } }
                        @if let Some(ms) = r.crawl_duration_ms {
                            tr { th { "Duration" } td { (duration(ms)) } }
                        }
                        tr { th { "Seeds" } td { ul.plain { @for seed in &c.seeds { li { (url(seed)) } } } } }
                        @if let Some(run) = &s.last_run {
                            tr {
                                th { "Last run" }
                                td {
                                    "started " (run.started_at) ": " (stat("last_run.pages", run.pages)) " pages in "
                                    span data-stat="last_run.duration_secs" data-value=(run.duration_secs) { (format!("{:.1}", run.duration_secs)) } " s, "
                                    span data-stat="last_run.pages_per_sec" data-value=(run.pages_per_sec) { (format!("{:.1}", run.pages_per_sec)) } " pages/s"
                                }
                            }
                        }
                        @if !s.sitemaps.is_empty() {
                            tr { th { "Sitemaps" } td { (counts_inline("sitemaps", &s.sitemaps)) } }
                        }
                    }
                    details {
                        summary { "Settings" }
                        (settings_table(&c.settings))
                        pre.json { (serde_json::to_string_pretty(&c.settings).unwrap_or_default()) }
                    }
                }
            }
            h3 { "Runs" }
            @if s.runs.is_empty() {
                p { "No run recorded." }
            } @else {
                table.sortable #runs {
                    thead { tr { th { "Run" } th { "Kind" } th { "Started" } th { "Finished" } th { "Checked" } th { "Unchanged" } th { "Changed" } th { "New" } th { "Removed" } th { "Downloaded" } } }
                    tbody {
                        @for run in &s.runs {
                            @let k = |f: &str| format!("runs.{}.{f}", run.id);
                            tr {
                                td.n { (run.id) }
                                td { (run.kind) }
                                td { (run.started_at) }
                                td { (run.finished_at.as_deref().unwrap_or("not finished")) }
                                (num_stat(&k("checked"), run.checked))
                                (num_stat(&k("unchanged"), run.unchanged))
                                (num_stat(&k("changed"), run.changed))
                                (num_stat(&k("new"), run.new))
                                (num_stat(&k("removed"), run.removed))
                                td.n data-sort=(run.bytes) data-stat=(k("bytes")) data-value=(run.bytes) { (human_bytes(run.bytes)) }
                            }
                        }
                    }
                }
                p.note { "Bytes downloaded are counted when a run ends: a run killed, or still going, shows none." }
            }
            h3 { "Pages per second" }
            @match &r.timeline {
                None => p { "No page fetched yet." },
                Some(t) => {
                    (timeline_chart(t))
                    p.note {
                        "The last run, from its start, in bars of " (duration(t.width_ms)) ". A fetch counts when its result was committed; "
                        "earlier runs' fetches are not drawn (a URL keeps only the time of its latest change). "
                        "The bars add up to the last run's " (int(t.buckets.iter().sum())) " pages."
                    }
                }
            }
        }
    }
}

fn timeline_chart(t: &super::Timeline) -> Markup {
    let bars = t
        .buckets
        .iter()
        .enumerate()
        .map(|(i, n)| Bar::single(format!("+{}", duration(i as i64 * t.width_ms)), *n, "ok"))
        .collect();
    BarChart {
        id: "timeline",
        description: "Pages fetched per second over the last run".into(),
        bars,
        scale: t.width_ms as f64 / 1000.0,
        unit: "pages/s",
        label_every_bar: false,
    }
    .render()
}

/// Settings people ask about first, from the stored settings.
fn settings_table(settings: &serde_json::Value) -> Markup {
    let v = |path: &[&str]| {
        let mut cur = settings;
        for p in path {
            cur = &cur[*p];
        }
        match cur {
            serde_json::Value::Null => "none".to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    };
    let rows = [
        ("Concurrency", v(&["concurrency"])),
        (
            "Per host: requests in flight",
            v(&["politeness", "per_host_concurrency"]),
        ),
        (
            "Per host: requests per second",
            v(&["politeness", "per_host_rate"]),
        ),
        ("robots.txt obeyed", v(&["politeness", "robots"])),
        (
            "Longest Crawl-delay honoured (s)",
            v(&["politeness", "max_crawl_delay_secs"]),
        ),
        ("Retries", v(&["politeness", "retries"])),
        ("Max pages", v(&["limits", "max_pages"])),
        ("Max depth", v(&["limits", "max_depth"])),
        ("Max pages per host", v(&["limits", "max_pages_per_host"])),
        ("Timeout (s)", v(&["fetch", "timeout_secs"])),
        ("User agent", v(&["fetch", "user_agent"])),
        ("Summaries", v(&["summarize", "enabled"])),
        ("Summarizer", v(&["summarize", "backend"])),
    ];
    html! {
        table.kv {
            @for (name, value) in &rows {
                tr { th { (name) } td { code { (shown(value)) } } }
            }
        }
    }
}

/// `k=v` pairs, each number marked with `prefix.k`.
fn counts_inline(prefix: &str, m: &BTreeMap<String, i64>) -> Markup {
    html! {
        @for (i, (k, n)) in m.iter().enumerate() {
            @if i > 0 { ", " }
            code { (k) } " " (stat(&format!("{prefix}.{k}"), *n))
        }
    }
}

/// The class that colours an HTTP status.
fn status_class(code: &str) -> &'static str {
    match code.as_bytes().first() {
        Some(b'2') => "ok",
        Some(b'3') => "redirect",
        Some(b'4') => "bad",
        Some(b'5') => "worse",
        _ => "skip",
    }
}

fn status_section(r: &Report) -> Markup {
    let s = &r.status;
    let bars: Vec<Bar> = s
        .http_status
        .iter()
        .map(|(code, n)| Bar::single(code.clone(), *n, status_class(code)))
        .collect();
    html! {
        section #status {
            h2 { "HTTP status" }
            @if s.http_status.is_empty() {
                p { "No page stored yet." }
            } @else {
                div.split {
                    (BarChart {
                        id: "http_status",
                        description: "Stored pages by HTTP status".into(),
                        bars,
                        scale: 1.0,
                        unit: "pages",
                        label_every_bar: true,
                    }.render())
                    table.sortable {
                        thead { tr { th { "Status" } th { "Pages" } } }
                        tbody {
                            @for (code, n) in &s.http_status {
                                tr { td { span class={ "dot " (status_class(code)) } {} (code) } (num_stat(&format!("http_status.{code}"), *n)) }
                            }
                        }
                    }
                }
            }
            h3 { "URLs by state" }
            table {
                thead { tr { th { "State" } th { "URLs" } } }
                tbody {
                    @for (state, n) in &s.urls_by_state {
                        tr { td { (state) } (num_stat(&format!("urls_by_state.{state}"), *n)) }
                    }
                }
            }
            p {
                "Stored in part (body over " code { "--max-body-size" } ", or text over 1 MiB): " (stat("pages_truncated", s.pages_truncated))
                ". Binary bodies served as HTML, stored unparsed: " (stat("pages_binary", s.pages_binary)) "."
            }
        }
    }
}

fn depth_section(r: &Report) -> Markup {
    let mut by_depth: BTreeMap<i64, BTreeMap<&str, i64>> = BTreeMap::new();
    for row in &r.depths {
        let state = match row.state.as_str() {
            "leased" => "queued",
            s => s,
        };
        *by_depth
            .entry(row.depth)
            .or_default()
            .entry(state)
            .or_insert(0) += row.urls;
    }
    let label = |d: i64| {
        if d >= r.depth_cap {
            format!("{d}+")
        } else {
            d.to_string()
        }
    };
    const STATES: [(&str, &str, &str); 4] = [
        ("done", "stored", "ok"),
        ("failed", "failed", "bad"),
        ("skipped", "skipped", "skip"),
        ("queued", "queued", "wait"),
    ];
    let bars: Vec<Bar> = by_depth
        .iter()
        .map(|(d, states)| Bar {
            label: label(*d),
            segments: STATES
                .iter()
                .filter_map(|(state, name, class)| {
                    states.get(state).map(|n| Segment {
                        name: (*name).into(),
                        value: *n,
                        class,
                    })
                })
                .collect(),
        })
        .collect();
    html! {
        section #depth {
            h2 { "Depth" }
            p.note { "Every page URL found, by its link distance from a seed (seeds are 0; a sitemap's URLs are 1), and what became of it." }
            @if bars.is_empty() {
                p { "No URL yet." }
            } @else {
                (BarChart {
                    id: "depth",
                    description: "URLs by depth and state".into(),
                    bars,
                    scale: 1.0,
                    unit: "URLs",
                    label_every_bar: true,
                }.render())
                p.legend { @for (_, name, class) in STATES { span class={ "dot " (class) } {} (name) " " } }
                table.sortable {
                    thead { tr { th { "Depth" } th { "Stored" } th { "Failed" } th { "Skipped" } th { "Queued" } } }
                    tbody {
                        @for (d, states) in &by_depth {
                            tr {
                                td.n data-sort=(d) { (label(*d)) }
                                @for (state, _, _) in STATES { (num(states.get(state).copied().unwrap_or(0))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn size_label(i: usize) -> String {
    let h = |n: i64| human_bytes(n).replace(".0 ", " ");
    match i {
        0 => format!("< {}", h(SIZE_EDGES[0])),
        i if i == SIZE_EDGES.len() => format!("≥ {}", h(SIZE_EDGES[i - 1])),
        i => format!("{}–{}", h(SIZE_EDGES[i - 1]), h(SIZE_EDGES[i])),
    }
}

fn pages_table(id: &str, pages: &[PageBrief]) -> Markup {
    html! {
        table.sortable id=(id) {
            thead { tr { th { "URL" } th { "Status" } th { "Time" } th { "Size" } th { "Type" } } }
            tbody {
                @for p in pages {
                    tr {
                        td { (url(&p.url)) @if let Some(t) = &p.title { br; span.title { (shown(t)) } } }
                        td.n { (p.status) }
                        td.n data-sort=(p.fetch_ms) { (duration(p.fetch_ms)) }
                        td.n data-sort=(p.size) { (human_bytes(p.size)) }
                        td { (p.content_type.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

fn content_section(r: &Report) -> Markup {
    let bars: Vec<Bar> = r
        .sizes
        .iter()
        .enumerate()
        .map(|(i, n)| Bar::single(size_label(i), *n, "ok"))
        .collect();
    html! {
        section #content {
            h2 { "Content types and sizes" }
            @if r.content_types.rows.is_empty() {
                p { "No page stored yet." }
            } @else {
                table.sortable #content-types {
                    thead { tr { th { "Type" } th { "Pages" } th { "Bytes" } th { "Mean" } th { "Largest" } } }
                    tbody {
                        @for t in &r.content_types.rows {
                            tr {
                                td { code { @if t.mime.is_empty() { "(none)" } @else { (t.mime) } } }
                                (num(t.pages))
                                td.n data-sort=(t.bytes) { (human_bytes(t.bytes)) }
                                td.n { (human_bytes(t.bytes / t.pages.max(1))) }
                                td.n data-sort=(t.largest) { (human_bytes(t.largest)) }
                            }
                        }
                    }
                    (more(&r.content_types, "types", 5))
                }
                h3 { "Body sizes" }
                (BarChart {
                    id: "sizes",
                    description: "Stored pages by body size".into(),
                    bars,
                    scale: 1.0,
                    unit: "pages",
                    label_every_bar: true,
                }.render())
                p.note { "Bytes read after decompression, up to " code { "--max-body-size" } "." }
                h3 { "Slowest pages" }
                (pages_table("slowest", &r.slowest))
                h3 { "Largest pages" }
                (pages_table("largest", &r.largest))
            }
        }
    }
}

/// What a host's stored robots.txt answer means.
fn robots_state(r: &Report, h: &crate::store::report::HostRow) -> Markup {
    if r.robots_ignored {
        return html! { span.muted { "ignored (--ignore-robots)" } };
    }
    match &h.robots {
        None => html! { span.muted { "no answer stored" } },
        Some(a) => html! {
            @match (a.status, &a.error) {
                (_, Some(e)) => span.bad { "unavailable: " (e) },
                (Some(s), None) if (200..300).contains(&s) => span { (s) ": rules obeyed" },
                (Some(s), None) if (400..500).contains(&s) => span { (s) ": everything allowed" },
                (Some(s), None) => span.bad { (s) ": nothing allowed" },
                (None, None) => span.muted { "no answer" },
            }
            @if a.unusable_rules > 0 {
                br; span.bad { (crate::robots::rules_count(a.unusable_rules)) " could not be used" }
            }
            br; span.muted { "read " (rfc3339(a.fetched_at)) }
        },
    }
}

fn hosts_section(r: &Report) -> Markup {
    let cap = r.max_crawl_delay_secs;
    html! {
        section #hosts {
            h2 { "Hosts" }
            @if r.hosts.rows.is_empty() {
                p { "No host yet." }
            } @else {
                table.sortable #hosts-table {
                    thead { tr {
                        th { "Host" } th { "Pages" } th { "Failed" } th { "Skipped" } th { "Queued" }
                        th { "Mean fetch" } th { "robots.txt" } th { "Crawl-delay" } th { "Extra attempts" }
                    } }
                    tbody {
                        @for h in &r.hosts.rows {
                            tr data-origin=(h.origin) {
                                td { (url(&h.origin)) }
                                td.n data-sort=(h.pages) data-host-pages=(h.pages) { (int(h.pages)) }
                                (num(h.failed))
                                (num(h.skipped))
                                (num(h.queued))
                                @match h.mean_fetch_ms {
                                    Some(ms) => td.n data-sort=(ms) { (duration(ms.round() as i64)) },
                                    None => td.n data-sort="0" { "–" },
                                }
                                td { (robots_state(r, h)) }
                                @match h.robots.as_ref().and_then(|a| a.crawl_delay_ms) {
                                    Some(ms) => td.n data-sort=(ms) {
                                        (duration(ms))
                                        @if let Some(c) = cap && ms as f64 > c * 1000.0 {
                                            br; span.muted { "cut to " (duration((c * 1000.0) as i64)) }
                                        }
                                    },
                                    None => td.n data-sort="0" { "–" },
                                }
                                (num(h.extra_attempts))
                            }
                        }
                    }
                    (more(&r.hosts, "hosts", 9))
                }
                p.note {
                    "Pages: stored answers of any status. Mean fetch: from sending the request to the end of the body. "
                    "Extra attempts: requests beyond the first per URL fetched — retries after a timeout, a connection error, "
                    "a 5xx, 408 or 429, each of which backs the host off (in a recrawled database, each revisit counts too). "
                    "Back-off events themselves are not stored: see " a href="#notes" { "Not recorded" } "."
                }
            }
        }
    }
}

fn reasons_table(id: &str, title: &str, key: &str, list: &Capped<ReasonRow>) -> Markup {
    html! {
        h3 { (title) }
        @if list.rows.is_empty() {
            p { "None." }
        } @else {
            table.sortable id=(id) {
                thead { tr { th { "Reason" } th { "URLs" } th { "Examples" } } }
                tbody {
                    @for row in &list.rows {
                        tr {
                            td { code { @if row.reason.is_empty() { "(none)" } @else { (row.reason) } } }
                            (num_stat(&format!("{key}.{}", row.reason), row.urls))
                            td { ul.plain { @for u in &row.examples { li { (url(u)) } } } }
                        }
                    }
                }
                (more(list, "reasons", 3))
            }
        }
    }
}

fn failures_section(r: &Report) -> Markup {
    html! {
        section #failures {
            h2 { "Failures and skips" }
            p.note { "Every URL found is stored, fetched or not; failures and skips are counted by their reason, with a few of their URLs." }
            (reasons_table("failed-reasons", "Failed", "failed_by_reason", &r.failures))
            (reasons_table("skipped-reasons", "Skipped", "skipped", &r.skips))
        }
    }
}

fn broken_section(r: &Report) -> Markup {
    let b = &r.broken;
    html! {
        section #broken {
            h2 { "Broken links" }
            p {
                span data-broken-links=(b.links) { (int(b.links)) } " " (noun(b.links, "link points", "links point")) " to "
                span data-broken-targets=(b.targets.total) { (int(b.targets.total)) } " " (noun(b.targets.total, "URL", "URLs")) " whose fetch failed."
            }
            @if !b.targets.rows.is_empty() {
                table.sortable #broken-links {
                    thead { tr { th { "Target" } th { "Why" } th { "Linked from" } th { "Pages" } } }
                    tbody {
                        @for t in &b.targets.rows {
                            tr {
                                td { (url(&t.url)) }
                                td { code { (t.reason.as_deref().unwrap_or("")) } @if let Some(s) = t.status { " (" (s) ")" } }
                                (num(t.linked_from))
                                td { ul.plain { @for f in &t.from {
                                    li { (url(&f.url)) @if let Some(a) = f.anchor.as_deref().filter(|a| !a.is_empty()) { " " span.anchor { "“" (shown(a)) "”" } } }
                                } @if t.linked_from > t.from.len() as i64 { li.muted { "… and " (int(t.linked_from - t.from.len() as i64)) " more" } } } }
                            }
                        }
                    }
                    (more(&b.targets, "broken targets", 4))
                }
            }
        }
    }
}

fn hop_outcome(h: &crate::store::report::UrlFate) -> Markup {
    html! {
        @match (h.status, h.state.as_str(), h.reason.as_deref()) {
            (Some(s), _, Some(reason)) => span.bad { (s) " " code { (reason) } },
            (Some(s), _, None) => span class=(status_class(&s.to_string())) { (s) },
            (None, state, Some(reason)) => span.bad { (state) " " code { (reason) } },
            (None, state, None) => span.muted { (state) },
        }
    }
}

fn redirects_section(r: &Report) -> Markup {
    let chains: &Capped<Chain> = &r.redirects;
    html! {
        section #redirects {
            h2 { "Redirect chains" }
            p { span data-redirect-chains=(chains.total) { (int(chains.total)) } " " (noun(chains.total, "chain", "chains")) " of 3xx and refresh redirects, by their first URL." }
            @if !chains.rows.is_empty() {
                table #redirect-chains {
                    thead { tr { th { "Hops" } th { "Chain" } } }
                    tbody {
                        @for c in &chains.rows {
                            tr {
                                td.n { (c.hops.len().saturating_sub(1) + usize::from(c.unrecorded.is_some())) }
                                td { ol.chain {
                                    @for h in &c.hops { li { (url(&h.url)) " " (hop_outcome(h)) } }
                                    @if let Some(u) = &c.unrecorded { li { (url(u)) " " span.muted { "not recorded" } } }
                                    @if c.looped { li.bad { "back to an earlier hop (a loop)" } }
                                } }
                            }
                        }
                    }
                    (more(chains, "chains", 2))
                }
            }
        }
    }
}

fn duplicates_section(r: &Report) -> Markup {
    let d = &r.duplicates;
    html! {
        section #duplicates {
            h2 { "Duplicate content" }
            p {
                span data-duplicate-groups=(d.groups.total) { (int(d.groups.total)) } " " (noun(d.groups.total, "body is", "bodies are")) " served at more than one URL ("
                span data-duplicate-pages=(d.pages) { (int(d.pages)) } " pages; 2xx pages that are not redirects, compared by the SHA-256 of the body)."
            }
            @if !d.groups.rows.is_empty() {
                table.sortable #duplicate-groups {
                    thead { tr { th { "Body (SHA-256)" } th { "Size" } th { "URLs" } th { "Some of them" } } }
                    tbody {
                        @for g in &d.groups.rows {
                            tr {
                                td { code title=(g.content_hash) { (g.content_hash.get(..12).unwrap_or(&g.content_hash)) "…" } }
                                td.n data-sort=(g.size) { (human_bytes(g.size)) }
                                (num(g.pages))
                                td { ul.plain { @for (u, title) in &g.urls {
                                    li { (url(u)) @if let Some(t) = title { " " span.title { (shown(t)) } } }
                                } } }
                            }
                        }
                    }
                    (more(&d.groups, "bodies", 4))
                }
            }
        }
    }
}

fn summaries_section(r: &Report) -> Markup {
    let s = &r.status;
    html! {
        section #summaries {
            h2 { "Summaries" }
            p {
                (stat("summaries_done", s.summaries_done)) " page contents summarized, "
                (stat("summaries_failed", s.summaries_failed)) " failed, "
                (stat("summaries_pending", s.summaries_pending)) " waiting. Tokens spent: "
                (stat("summary_prompt_tokens", s.summary_prompt_tokens)) " prompt + "
                (stat("summary_completion_tokens", s.summary_completion_tokens)) " completion."
            }
            @if !s.summaries_by_summarizer.is_empty() {
                table.sortable #summarizers {
                    thead { tr { th { "Summarizer" } th { "Model" } th { "Prompt version" } th { "Done" } th { "Cut at max_tokens" } th { "Failed" } th { "Waiting" } } }
                    tbody {
                        @for (i, k) in s.summaries_by_summarizer.iter().enumerate() {
                            @let key = |f: &str| format!("summaries_by_summarizer.{i}.{f}");
                            tr {
                                td { (k.backend) } td { code { (k.model) } } td { code { (shown(&k.prompt_version)) } }
                                (num_stat(&key("done"), k.counts.done))
                                (num_stat(&key("truncated"), k.counts.truncated))
                                (num_stat(&key("failed"), k.counts.failed))
                                (num_stat(&key("pending"), k.counts.pending))
                            }
                        }
                    }
                }
            }
            @if !s.summaries_failed_by_reason.is_empty() {
                p { "Failed, by reason: " (counts_inline("summaries_failed_by_reason", &s.summaries_failed_by_reason)) }
            }
            @if !r.summaries.is_empty() {
                h3 { "A sample" }
                @for x in &r.summaries {
                    figure.summary {
                        figcaption { (url(&x.url)) @if let Some(t) = &x.title { " " span.title { (shown(t)) } } " " span.muted { "(" (x.backend) ", " (x.model) ")" } }
                        blockquote { (x.summary) }
                    }
                }
            }
        }
    }
}

fn url_list(id: &str, list: &Capped<String>) -> Markup {
    html! {
        @if !list.rows.is_empty() {
            ul.plain id=(id) {
                @for u in &list.rows { li { (url(u)) } }
                @if list.more() > 0 { li.muted { "… and " (int(list.more())) " more" } }
            }
        }
    }
}

fn directives_section(r: &Report) -> Markup {
    html! {
        section #directives {
            h2 { "noindex and nofollow pages" }
            p.note { "From " code { "<meta name=\"robots\">" } " and " code { "X-Robots-Tag" } ", as they apply to trawl's user agent." }
            h3 { span data-noindex=(r.noindex.total) { (int(r.noindex.total)) } " " (noun(r.noindex.total, "page", "pages")) " marked noindex" }
            p.note { "Stored, but left out of exports and summaries by default." }
            (url_list("noindex-pages", &r.noindex))
            h3 { span data-nofollow=(r.nofollow.total) { (int(r.nofollow.total)) } " " (noun(r.nofollow.total, "page", "pages")) " marked nofollow" }
            p.note {
                "Their links are stored; URLs found only there are skipped with reason " code { "nofollow" } " ("
                (int(r.status.skipped.get("nofollow").copied().unwrap_or(0))) " URLs)."
            }
            (url_list("nofollow-pages", &r.nofollow))
        }
    }
}

fn notes_section(r: &Report) -> Markup {
    html! {
        section #notes {
            h2 { "What the database does not record" }
            ul {
                li { "Back-off events: when a host was backed off, for how long, and the " code { "Retry-After" } " values it sent are decided in memory and not stored. The hosts table shows the attempts beyond the first per URL, which is what is kept (" code { "urls.attempts" } ")." }
                li { "Fetch times of earlier runs: a URL keeps the time of its latest fetch, so the pages-per-second chart covers the last run only." }
                li { "Per-request timings other than the whole request (DNS, connect, first byte) and the bodies of error pages." }
                li { "Robots.txt answers are stored per host once read; a host whose robots.txt was never asked (robots ignored, or not reached yet) shows none." }
            }
            p.note { "Lists are cut at " (r.caps.rows) " rows, " (r.caps.examples) " examples each; every cut says how much was left out." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_separators() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(1_000_000), "1,000,000");
        assert_eq!(int(-12345), "-12,345");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_300), "12.3 s");
        assert_eq!(duration(303_000), "5 min 3 s");
        assert_eq!(duration(7_500_000), "2 h 5 min");
        assert_eq!(duration(3 * 86_400_000 + 4 * 3_600_000), "3 d 4 h");
    }

    #[test]
    fn hostile_urls_are_text_and_only_web_urls_are_links() {
        let evil = "http://x/\"><script>alert(1)</script>";
        let html = url(evil).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.starts_with("<a "), "{html}");
        for not_web in [
            "javascript:alert(1)",
            "data:text/html,<b>x</b>",
            "//evil.example/",
        ] {
            let html = url(not_web).into_string();
            assert!(!html.contains("href"), "{not_web}: {html}");
        }
        assert!(url("HTTPS://Example.com/").into_string().contains("href"));
    }

    #[test]
    fn long_strings_are_cut_on_a_character() {
        let long = "é".repeat(SHOWN_CHARS + 5);
        let s = shown(&long);
        assert_eq!(s.chars().count(), SHOWN_CHARS + 1);
        assert!(s.ends_with('…'));
        assert_eq!(shown("short"), "short");
    }

    #[test]
    fn the_policy_hashes_are_of_the_inline_text() {
        // The hash CSP compares is of the element's text exactly as
        // written, so the style and script are written unchanged.
        let h = csp_hash("");
        assert_eq!(h, "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='");
    }
}
