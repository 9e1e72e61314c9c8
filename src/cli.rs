//! Command-line interface: clap definitions and their conversion into
//! validated configuration (step one of two; `config` is step two).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{ConfigError, CrawlConfig, LimitsConfig, PolitenessConfig, ScopeConfig};
use crate::export::{ExportOptions, Format, HostFilter, What};
use crate::fetch::FetchConfig;
use crate::store::DbTarget;

#[derive(Debug, Parser)]
#[command(
    name = "trawl",
    version,
    about = "A polite, resumable, concurrent web crawler"
)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors (and a crawl's final line); no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a crawl from seed URLs, in a new SQLite database (or a PostgreSQL one).
    Crawl(CrawlArgs),
    /// Add this process to the crawl running in a PostgreSQL database (any machine that reaches it).
    ///
    /// It works with the crawl's stored settings; only its own --concurrency may differ. Hosts are
    /// leased: only one process fetches from a host at a time, so politeness holds across processes.
    Join(JoinArgs),
    /// Continue the crawl stored in a database (after a stop, a crash or to raise limits).
    Resume(ResumeArgs),
    /// Revisit the stored pages of a crawl (conditional requests), continue the crawl from them and record what changed.
    ///
    /// A killed recrawl is continued by `trawl resume`; `trawl export --what changes` lists what it found.
    Recrawl(RecrawlArgs),
    /// Write stored summaries, pages or links out as JSON Lines, CSV or Markdown.
    Export(ExportArgs),
    /// Show where the crawl in a database stands.
    Status(StatusArgs),
    /// Write the crawl as one self-contained HTML page: overview, charts, hosts, failures,
    /// broken links, redirects, duplicates, summaries.
    ///
    /// The page has its CSS, script and charts inline and loads nothing from the network.
    /// It reads beside a running crawl, as `status` does.
    Report(ReportArgs),
    /// Summarize stored pages that have no summary yet (failed ones are retried).
    ///
    /// Summary options not given here take the values the crawl was started
    /// with, then the defaults shown.
    Summarize(SummarizeArgs),
    /// Apply CSS selectors to the pages a crawl stored, without fetching them again.
    ///
    /// The crawl must have kept its HTML (`crawl --keep-html`, or `--extract`).
    /// Fields of the same names are replaced; the fields join the crawl's
    /// settings, so `resume` and `recrawl` extract them too.
    Extract(ExtractArgs),
    /// Print a shell completion script (e.g. `trawl completions bash > ~/.local/share/bash-completion/completions/trawl`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub db: ExistingDbArg,
    /// Print one JSON object (for scripts) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub db: ExistingDbArg,
    /// Where to write the report (written to a temporary file, then renamed; its
    /// directory must exist), or `-` for standard output.
    #[arg(long, value_name = "FILE", default_value = "report.html")]
    pub out: PathBuf,
}

impl ReportArgs {
    /// Step one for `report`: where the report goes, `None` for standard
    /// output. Refused before anything is opened or written: a directory,
    /// a file in a directory that does not exist, and the database itself.
    pub fn target(&self) -> Result<Option<PathBuf>, ConfigError> {
        if self.out.as_os_str() == "-" {
            return Ok(None);
        }
        crate::util::check_output_path(&self.out, self.db.db.file()).map_err(ConfigError)?;
        Ok(Some(self.out.clone()))
    }
}

#[derive(Debug, Args)]
pub struct SummarizeArgs {
    #[command(flatten)]
    pub db: ExistingDbArg,
    /// Summarize every page again, even those with a summary.
    #[arg(long)]
    pub force: bool,
    /// Summarize only this stored page (its URL as crawled) and print the summary.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// With --url and --summarizer llm: print the summary as it is generated.
    #[arg(long, requires = "url")]
    pub stream: bool,
    #[command(flatten)]
    pub summary: SummaryArgs,
}

/// Summary settings. Unset ones come from the crawl's stored settings
/// (for `summarize`) or the defaults shown.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Summaries")]
pub struct SummaryArgs {
    /// Summarizer: extractive (offline, default) or llm (an OpenAI-compatible endpoint).
    #[arg(long, value_enum, value_name = "NAME")]
    pub summarizer: Option<crate::summarize::Backend>,
    /// Sentences in an extractive summary [default: 3].
    #[arg(long, value_name = "N")]
    pub summary_sentences: Option<usize>,
    /// Base URL of the LLM API, e.g. http://localhost:11434 (Ollama).
    #[arg(long, value_name = "URL", env = "TRAWL_LLM_BASE_URL")]
    pub llm_base_url: Option<String>,
    /// Model name sent to the LLM API.
    #[arg(long, value_name = "NAME", env = "TRAWL_LLM_MODEL")]
    pub llm_model: Option<String>,
    /// System prompt (its hash is the summary's prompt version).
    #[arg(long, value_name = "TEXT", conflicts_with = "llm_prompt_file")]
    pub llm_prompt: Option<String>,
    /// Read the system prompt from this file.
    #[arg(long, value_name = "FILE")]
    pub llm_prompt_file: Option<PathBuf>,
    /// Tokens of prompt plus text per request; longer pages are split and reduced [default: 6000].
    #[arg(long, value_name = "N")]
    pub llm_max_input_tokens: Option<usize>,
    /// Longest answer asked for, in tokens [default: 400].
    #[arg(long, value_name = "N")]
    pub llm_max_output_tokens: Option<u32>,
    /// Requests to the LLM in flight at once [default: 4].
    #[arg(long, value_name = "N")]
    pub llm_concurrency: Option<usize>,
    /// Requests per minute to the LLM [default: no limit].
    #[arg(long, value_name = "N")]
    pub llm_rpm: Option<u32>,
    /// Tokens per minute to the LLM (prompt plus the longest answer) [default: no limit].
    #[arg(long, value_name = "N")]
    pub llm_tpm: Option<u32>,
    /// Time allowed for one LLM request, in seconds [default: 120].
    #[arg(long, value_name = "SECS")]
    pub llm_timeout: Option<f64>,
    /// Retries of a transient LLM failure (429, 5xx, timeout, connection error) [default: 4].
    #[arg(long, value_name = "N")]
    pub llm_retries: Option<u32>,
    /// Spend at most this many LLM tokens (prompt plus answer) in a run: each request's
    /// tokens are reserved before it is sent, and one that would pass the budget is not
    /// sent; the rest stay pending. 0: no limit.
    #[arg(long, value_name = "N")]
    pub llm_max_total_tokens: Option<u64>,
}

impl SummaryArgs {
    /// Checks the values given, each on its own, before anything is
    /// opened (what they combine with may be stored in the database).
    pub fn check(&self) -> Result<(), ConfigError> {
        let mut cfg = crate::summarize::SummarizeConfig::default();
        self.apply(&mut cfg)?;
        cfg.check_values()
    }

    /// Applies the flags that were given on top of `cfg`.
    pub fn apply(&self, cfg: &mut crate::summarize::SummarizeConfig) -> Result<(), ConfigError> {
        if let Some(b) = self.summarizer {
            cfg.backend = b;
        }
        if let Some(n) = self.summary_sentences {
            cfg.sentences = n;
        }
        let l = &mut cfg.llm;
        if let Some(v) = &self.llm_base_url {
            l.base_url = Some(v.clone());
        }
        if let Some(v) = &self.llm_model {
            l.model = Some(v.clone());
        }
        if let Some(v) = &self.llm_prompt {
            l.prompt = Some(v.clone());
        }
        if let Some(path) = &self.llm_prompt_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!(
                    "cannot read --llm-prompt-file {}: {e}",
                    path.display()
                ))
            })?;
            l.prompt = Some(text.trim().to_string());
        }
        if let Some(v) = self.llm_max_input_tokens {
            l.max_input_tokens = v;
        }
        if let Some(v) = self.llm_max_output_tokens {
            l.max_output_tokens = v;
        }
        if let Some(v) = self.llm_concurrency {
            l.concurrency = v;
        }
        if self.llm_rpm.is_some() {
            l.rpm = self.llm_rpm;
        }
        if self.llm_tpm.is_some() {
            l.tpm = self.llm_tpm;
        }
        if let Some(v) = self.llm_timeout {
            l.timeout = secs("--llm-timeout", v)?;
        }
        if let Some(v) = self.llm_retries {
            l.retries = v;
        }
        if self.llm_max_total_tokens.is_some() {
            // 0 is no limit, as elsewhere on the command line.
            l.max_total_tokens = self.llm_max_total_tokens.filter(|&n| n > 0);
        }
        Ok(())
    }
}

/// The database `crawl` writes.
#[derive(Debug, Args)]
pub struct DbArg {
    /// The crawl database: an SQLite file (created if missing, its directory
    /// must exist) or a PostgreSQL database, postgres://user:password@host/dbname
    /// (one crawl per database). One that holds a crawl already is refused:
    /// `resume` continues it.
    #[arg(long, default_value = "trawl.db", value_name = "PATH|URL", env = "TRAWL_DB",
          value_parser = parse_db, hide_env_values = true)]
    pub db: DbTarget,
}

/// The database the other commands read or continue.
#[derive(Debug, Args)]
pub struct ExistingDbArg {
    /// The crawl database made by `trawl crawl` (it must exist): an SQLite file
    /// or a postgres:// URL.
    #[arg(long, default_value = "trawl.db", value_name = "PATH|URL", env = "TRAWL_DB",
          value_parser = parse_db, hide_env_values = true)]
    pub db: DbTarget,
}

/// `--db`: a `postgres://` URL or a file path (see [`DbTarget::parse`]).
fn parse_db(s: &str) -> Result<DbTarget, String> {
    if s.is_empty() {
        return Err("give a database file or a postgres:// URL".into());
    }
    Ok(DbTarget::parse(s))
}

#[derive(Debug, Args)]
pub struct CrawlArgs {
    /// URLs to start from (http or https).
    #[arg(required = true, value_name = "SEED")]
    pub seeds: Vec<String>,

    #[command(flatten)]
    pub db: DbArg,

    /// Exit with status 1 if any fetch failed (network error, HTTP 4xx/5xx).
    #[arg(long)]
    pub fail_on_error: bool,

    /// Read options from this TOML file (keys are option names: max-pages = 100); flags given here win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub politeness: PolitenessArgs,
    #[command(flatten)]
    pub fetch: FetchArgs,
    /// Do not summarize pages during the crawl (`trawl summarize` can later).
    #[arg(long, help_heading = "Summaries")]
    pub no_summaries: bool,
    /// Also keep each HTML page's main content as Markdown (for `export --with-markdown` and
    /// `--format llms-full`; stored with the crawl, so resume and recrawl keep doing it).
    #[arg(long, help_heading = "Content")]
    pub markdown: bool,
    /// On PostgreSQL: seconds a process's hold on a host lasts unless renewed (a process that
    /// dies loses its hosts to the others this long after) [default: 30]
    #[arg(long, value_name = "SECS", help_heading = "Scale-out")]
    pub lease_ttl: Option<f64>,
    #[command(flatten)]
    pub summary: SummaryArgs,
    #[command(flatten)]
    pub extract: ExtractFieldArgs,
}

/// Structured extraction during a crawl.
#[derive(Debug, Args)]
#[command(next_help_heading = "Extraction")]
pub struct ExtractFieldArgs {
    /// Take a field from every HTML page: NAME=SELECTOR (the text of every
    /// element the CSS selector matches) or NAME=SELECTOR@ATTR (that
    /// attribute), e.g. 'price=.product .price' or
    /// 'author=meta[name=author]@content'. Repeatable; implies --keep-html.
    #[arg(long = "extract", value_name = "NAME=SELECTOR")]
    pub fields: Vec<String>,
    /// Keep each HTML page's body (compressed) so `trawl extract` can
    /// apply selectors later without fetching again.
    #[arg(long)]
    pub keep_html: bool,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Scope")]
pub struct ScopeArgs {
    /// Also crawl this host (`example.com`) or domain (`*.example.com`: it and
    /// every subdomain). Repeatable. By default only the seeds' hosts are crawled.
    #[arg(long = "allow-host", value_name = "PATTERN")]
    pub allow_hosts: Vec<String>,
    /// Only crawl URLs matching this regex (on the whole URL). Repeatable: any may match.
    #[arg(long, value_name = "REGEX")]
    pub include: Vec<String>,
    /// Never crawl URLs matching this regex (on the whole URL). Repeatable.
    #[arg(long, value_name = "REGEX")]
    pub exclude: Vec<String>,
    /// Also fetch hosts that resolve to loopback, private or link-local addresses
    /// when they were reached through a `*.` pattern (named hosts always may).
    #[arg(long)]
    pub allow_private_addresses: bool,
    /// Also fetch links to images, audio, video, archives, fonts, office documents,
    /// PDFs and executables (by file extension); by default they are recorded as
    /// skipped (`asset`) and not downloaded. Sitemaps and redirects are followed either way.
    #[arg(long)]
    pub fetch_assets: bool,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Stop after fetching this many URLs (redirect hops count).
    #[arg(long, value_name = "N")]
    pub max_pages: Option<u64>,
    /// Follow links at most this many steps from a seed (seeds are depth 0).
    #[arg(long, value_name = "N")]
    pub max_depth: Option<u32>,
    /// Redirect hops followed from one URL.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_redirects: u32,
    /// Links kept per page; more are dropped (and counted).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_links_per_page: usize,
    /// URLs longer than this are recorded as `trap` and not fetched.
    #[arg(long, value_name = "N", default_value_t = 2048)]
    pub max_url_length: usize,
    /// Most pages fetched from one host; its other URLs are recorded as `trap`.
    #[arg(long, value_name = "N")]
    pub max_pages_per_host: Option<u64>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Politeness")]
pub struct PolitenessArgs {
    /// Requests in flight to one host (scheme://host:port) at once.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub per_host_concurrency: u32,
    /// Requests per second to one host; 0 for no limit.
    #[arg(long, value_name = "R", default_value_t = 2.0)]
    pub per_host_rate: f64,
    /// The User-Agent header sent with every request; its product token
    /// (`trawl` in `trawl/0.1`) is the name matched in robots.txt.
    #[arg(long, value_name = "S", default_value_t = crate::fetch::default_user_agent())]
    pub user_agent: String,
    /// Do not fetch or obey robots.txt. Only for sites you run yourself.
    #[arg(long)]
    pub ignore_robots: bool,
    /// Longest robots.txt Crawl-delay honoured, in seconds; longer ones are cut to it.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub max_crawl_delay: f64,
    /// Retries of a transient failure (timeout, connection error, 5xx, 408, 429).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
    /// Longest Retry-After honoured, in seconds; longer ones are cut to it.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub max_retry_after: f64,
    /// Do not read sitemaps (robots.txt `Sitemap:` lines and /sitemap.xml).
    #[arg(long)]
    pub no_sitemaps: bool,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Fetching")]
pub struct FetchArgs {
    /// Requests in flight across all hosts.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub concurrency: usize,
    /// Total time allowed for one request, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
    /// Time allowed to connect, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Largest body read, after decompression; longer bodies are cut and
    /// marked truncated. A number of bytes, or with a unit: KB = 1000 bytes,
    /// KiB = 1024 (also B, MB, MiB, GB, GiB; any case).
    #[arg(long, value_name = "SIZE", default_value = "10MiB", value_parser = crate::util::parse_byte_size)]
    pub max_body_size: u64,
    /// Send no cookies. By default each host's cookies are kept (RFC 6265 rules, one jar
    /// per host, stored with the crawl so `resume` keeps sessions) and sent back to it.
    #[arg(long)]
    pub no_cookies: bool,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub db: ExistingDbArg,
    /// Exit with status 1 if any fetch in this run failed.
    #[arg(long)]
    pub fail_on_error: bool,
    /// New page budget (counts pages fetched in earlier runs).
    #[arg(long, value_name = "N")]
    pub max_pages: Option<u64>,
    /// New depth limit.
    #[arg(long, value_name = "N")]
    pub max_depth: Option<u32>,
    /// New global concurrency.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// New per-host concurrency.
    #[arg(long, value_name = "N")]
    pub per_host_concurrency: Option<u32>,
    /// New per-host rate (requests per second; 0 for no limit).
    #[arg(long, value_name = "R")]
    pub per_host_rate: Option<f64>,
    /// New per-host page budget (0 for none). Raising it queues again the
    /// URLs recorded `trap` for the old budget.
    #[arg(long, value_name = "N")]
    pub max_pages_per_host: Option<u64>,
    /// On PostgreSQL: new host lease time, in seconds.
    #[arg(long, value_name = "SECS")]
    pub lease_ttl: Option<f64>,
}

/// `trawl join`: one more process for a crawl on PostgreSQL.
#[derive(Debug, Args)]
pub struct JoinArgs {
    #[command(flatten)]
    pub db: ExistingDbArg,
    /// This process's requests in flight (the crawl's stored --concurrency by default). It
    /// leases at most this many hosts at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Exit with status 1 if any fetch of this process failed.
    #[arg(long)]
    pub fail_on_error: bool,
}

#[derive(Debug, Args)]
pub struct RecrawlArgs {
    /// The database and the limits to change, as `resume` takes them.
    #[command(flatten)]
    pub resume: ResumeArgs,
    /// Revisit only the pages whose next revisit is due (a page never
    /// revisited is due).
    #[arg(long)]
    pub due: bool,
    /// Shortest interval between revisits of a page (`30m`, `1h`, `2d`;
    /// default 1h, stored with the crawl).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub min_revisit: Option<std::time::Duration>,
    /// Longest interval between revisits of a page (default 30d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_revisit: Option<std::time::Duration>,
}

impl RecrawlArgs {
    /// Applies the overrides to a stored configuration.
    pub fn apply(&self, cfg: &mut CrawlConfig) {
        self.resume.apply(cfg);
        if let Some(d) = self.min_revisit {
            cfg.revisit.min_revisit = d;
        }
        if let Some(d) = self.max_revisit {
            cfg.revisit.max_revisit = d;
        }
    }
}

/// A duration as a number and a unit: `90s`, `30m`, `1h`, `2d` (a bare
/// number is seconds).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 30m, 1h or 2d"))?;
    let secs = match unit {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(format!("`{s}`: the unit is s, m, h or d")),
    };
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("`{s}` must be greater than zero"));
    }
    Ok(std::time::Duration::from_secs_f64(n * secs))
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    pub db: ExistingDbArg,
    /// A field: NAME=SELECTOR (text) or NAME=SELECTOR@ATTR (an attribute).
    /// Repeatable.
    #[arg(long = "extract", value_name = "NAME=SELECTOR", required = true)]
    pub fields: Vec<String>,
}

impl ExtractArgs {
    /// The fields, checked before the database is opened.
    pub fn to_specs(&self) -> Result<Vec<crate::fields::FieldSpec>, ConfigError> {
        Ok(crate::config::ExtractConfig::from_args(&self.fields, true)?.fields)
    }
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub db: ExistingDbArg,
    /// What to export [default: summaries] (not with --format llms-txt or llms-full, which
    /// export the crawl's pages as a document).
    #[arg(long, value_enum)]
    pub what: Option<What>,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// Write here instead of standard output (written to a temporary file, then renamed).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Include each page's extracted text (with --what pages).
    #[arg(long)]
    pub with_text: bool,
    /// Include each page's main content as Markdown (with --what pages).
    #[arg(long)]
    pub with_markdown: bool,
    /// Summaries and pages: include pages marked `noindex` by meta robots or
    /// X-Robots-Tag (left out by default; links are exported whatever their
    /// page says).
    #[arg(long)]
    pub include_noindex: bool,
    /// With --what pages: also the URLs not stored (skipped or failed), with their reason.
    #[arg(long)]
    pub include_skipped: bool,
    /// With --what summaries: also the summaries that failed, with `state` and `error`.
    #[arg(long)]
    pub include_failed: bool,
    /// Only this host: docs.example.com (any port), docs.example.com:8080
    /// (that port), or an origin as `status` prints it,
    /// https://docs.example.com:443 (that scheme and port).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Only rows fetched since TIME (summaries: summarized; links: from pages
    /// fetched): 2026-11-22, 2026-11-22T06:00:00Z, or an age like 12h, 7d.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only pages with this HTTP status (summaries: of such pages; links:
    /// from such pages).
    #[arg(long, value_name = "CODE")]
    pub status: Option<u16>,
    /// With --what changes: the changes of this run (`trawl status` lists
    /// runs; default: the latest recrawl, or with --since every run started
    /// since).
    #[arg(long, value_name = "N")]
    pub run: Option<i64>,
    /// With --what changes: also the pages found unchanged.
    #[arg(long)]
    pub include_unchanged: bool,
}

fn secs(flag: &str, v: f64) -> Result<Duration, ConfigError> {
    if v.is_finite() && v > 0.0 && v < 1e9 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(ConfigError(format!(
            "{flag} must be a positive number of seconds, got {v}"
        )))
    }
}

impl CrawlArgs {
    /// Step one of configuration: flags into a [`CrawlConfig`], validated.
    pub fn to_config(&self) -> Result<CrawlConfig, ConfigError> {
        CrawlConfig {
            seeds: self.seeds.clone(),
            concurrency: self.fetch.concurrency,
            scope: ScopeConfig {
                allow_hosts: self.scope.allow_hosts.clone(),
                include: self.scope.include.clone(),
                exclude: self.scope.exclude.clone(),
                allow_private_addresses: self.scope.allow_private_addresses,
                fetch_assets: self.scope.fetch_assets,
            },
            politeness: PolitenessConfig {
                per_host_concurrency: self.politeness.per_host_concurrency,
                per_host_rate: self.politeness.per_host_rate,
                robots: !self.politeness.ignore_robots,
                max_crawl_delay: secs("--max-crawl-delay", self.politeness.max_crawl_delay)?,
                retries: self.politeness.retries,
                max_retry_after: secs("--max-retry-after", self.politeness.max_retry_after)?,
                sitemaps: !self.politeness.no_sitemaps,
            },
            limits: LimitsConfig {
                max_pages: self.limits.max_pages,
                max_depth: self.limits.max_depth,
                max_redirects: self.limits.max_redirects,
                max_links_per_page: self.limits.max_links_per_page,
                max_url_length: self.limits.max_url_length,
                max_pages_per_host: self.limits.max_pages_per_host,
            },
            fetch: FetchConfig {
                user_agent: self.politeness.user_agent.clone(),
                connect_timeout: secs("--connect-timeout", self.fetch.connect_timeout)?,
                read_timeout: secs("--timeout", self.fetch.timeout)?,
                timeout: secs("--timeout", self.fetch.timeout)?,
                max_body_size: self.fetch.max_body_size,
                cookies: !self.fetch.no_cookies,
            },
            summarize: {
                let mut s = crate::summarize::SummarizeConfig {
                    enabled: !self.no_summaries,
                    ..Default::default()
                };
                self.summary.apply(&mut s)?;
                s
            },
            revisit: crate::config::RevisitConfig::default(),
            extract: crate::config::ExtractConfig::from_args(
                &self.extract.fields,
                self.extract.keep_html,
            )?,
            markdown: self.markdown,
            lease_ttl: match self.lease_ttl {
                Some(v) => secs("--lease-ttl", v)?,
                None => crate::config::default_lease_ttl(),
            },
        }
        .validated()
    }
}

impl ResumeArgs {
    /// Checks the overrides before the database is opened; the stored
    /// configuration they change is validated again once they are applied.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(n) = self.concurrency {
            crate::config::at_least_one("--concurrency", n as u64)?;
        }
        if let Some(n) = self.per_host_concurrency {
            crate::config::at_least_one("--per-host-concurrency", u64::from(n))?;
        }
        if let Some(r) = self.per_host_rate {
            crate::config::check_rate(r)?;
        }
        if let Some(v) = self.lease_ttl {
            secs("--lease-ttl", v)?;
        }
        Ok(())
    }

    /// Applies the overrides to a stored configuration.
    pub fn apply(&self, cfg: &mut CrawlConfig) {
        if let Some(n) = self.max_pages {
            cfg.limits.max_pages = Some(n);
        }
        if let Some(n) = self.max_depth {
            cfg.limits.max_depth = Some(n);
        }
        if let Some(n) = self.concurrency {
            cfg.concurrency = n;
        }
        if let Some(v) = self.lease_ttl.and_then(|v| secs("--lease-ttl", v).ok()) {
            cfg.lease_ttl = v;
        }
        if let Some(n) = self.per_host_concurrency {
            cfg.politeness.per_host_concurrency = n;
        }
        if let Some(r) = self.per_host_rate {
            cfg.politeness.per_host_rate = r;
        }
        if let Some(n) = self.max_pages_per_host {
            cfg.limits.max_pages_per_host = (n > 0).then_some(n);
        }
    }
}

impl ExportArgs {
    /// Step one for `export`: the flags as validated [`ExportOptions`]
    /// (`now_ms` anchors an age given to `--since`).
    pub fn to_options(&self, now_ms: i64) -> Result<ExportOptions, ConfigError> {
        let since = match &self.since {
            None => None,
            Some(s) => Some(crate::util::parse_time(s, now_ms).ok_or_else(|| {
                ConfigError(format!(
                    "--since {s:?} is not a time (2026-11-22, 2026-11-22T06:00:00Z, 12h, 7d)"
                ))
            })?),
        };
        if self.format.is_llms() {
            let format = if self.format == Format::LlmsTxt {
                "llms-txt"
            } else {
                "llms-full"
            };
            for (given, flag) in [
                (self.what.is_some(), "--what"),
                (self.with_text, "--with-text"),
                (self.with_markdown, "--with-markdown"),
                (self.include_noindex, "--include-noindex"),
                (self.include_skipped, "--include-skipped"),
                (self.include_failed, "--include-failed"),
                (self.since.is_some(), "--since"),
                (self.status.is_some(), "--status"),
                (self.run.is_some(), "--run"),
                (self.include_unchanged, "--include-unchanged"),
            ] {
                if given {
                    return Err(ConfigError(format!(
                        "{flag} does not go with --format {format} (it lists every stored HTML \
                         page not marked noindex; --host narrows it to one site)"
                    )));
                }
            }
        }
        let what = self.what.unwrap_or(What::Summaries);
        if what != What::Pages {
            for (given, flag) in [
                (self.include_skipped, "--include-skipped"),
                (self.with_text, "--with-text"),
                (self.with_markdown, "--with-markdown"),
            ] {
                if given {
                    return Err(ConfigError(format!("{flag} goes with --what pages")));
                }
            }
        }
        if what == What::Changes {
            for (given, flag) in [
                (self.host.is_some(), "--host"),
                (self.status.is_some(), "--status"),
                (self.include_noindex, "--include-noindex"),
            ] {
                if given {
                    return Err(ConfigError(format!(
                        "{flag} does not go with --what changes"
                    )));
                }
            }
            if self.run.is_some() && self.since.is_some() {
                return Err(ConfigError(
                    "--run and --since each pick runs; give one".into(),
                ));
            }
        } else {
            for (given, flag) in [
                (self.run.is_some(), "--run"),
                (self.include_unchanged, "--include-unchanged"),
            ] {
                if given {
                    return Err(ConfigError(format!("{flag} goes with --what changes")));
                }
            }
        }
        if self.include_failed && what != What::Summaries {
            return Err(ConfigError(
                "--include-failed goes with --what summaries".into(),
            ));
        }
        if let Some(code) = self.status
            && !(100..=599).contains(&code)
        {
            return Err(ConfigError(format!(
                "--status {code} is not an HTTP status (100 to 599)"
            )));
        }
        if let Some(out) = &self.out {
            crate::util::check_output_path(out, self.db.db.file()).map_err(ConfigError)?;
        }
        Ok(ExportOptions {
            with_text: self.with_text,
            with_markdown: self.with_markdown,
            include_noindex: self.include_noindex,
            include_skipped: self.include_skipped,
            include_failed: self.include_failed,
            host: self
                .host
                .as_deref()
                .map(HostFilter::parse)
                .transpose()
                .map_err(ConfigError)?,
            since,
            status: self.status,
            run: self.run,
            include_unchanged: self.include_unchanged,
            ..ExportOptions::new(what, self.format)
        })
    }
}
