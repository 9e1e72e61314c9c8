//! The validated configuration of a crawl, grouped by stage.
//!
//! In: values from the command line (see `cli`). Out: a [`CrawlConfig`]
//! whose URLs are parsed, limits resolved and regexes compiled-checked, so no
//! setting can fail once work has started. It is stored with the crawl (as
//! JSON) so `trawl resume` continues with the same settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::canon;
use crate::fetch::FetchConfig;
use crate::scope::Scope;

/// Which URLs belong to the crawl.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ScopeConfig {
    pub allow_hosts: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Fetch hosts that resolve to loopback, private or link-local
    /// addresses even if no seed or exact `--allow-host` names them.
    pub allow_private_addresses: bool,
    /// Fetch links to assets (`.pdf`, `.png`…) found on pages; by default
    /// they are recorded as skipped with reason `asset`.
    pub fetch_assets: bool,
}

/// How hard trawl may press on one host. (Fields added after the first
/// release take their defaults when an older stored crawl is resumed.)
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PolitenessConfig {
    /// Requests in flight to one origin at once.
    pub per_host_concurrency: u32,
    /// Requests per second per origin; 0 for no limit.
    pub per_host_rate: f64,
    /// Obey robots.txt (off only with `--ignore-robots`).
    pub robots: bool,
    /// Longest Crawl-delay honoured; a longer one is cut to this.
    pub max_crawl_delay: Duration,
    /// Retries of a transient failure (timeouts, connection errors, 5xx,
    /// 408, 429), with exponential backoff and jitter.
    pub retries: u32,
    /// Longest Retry-After honoured; a longer one is cut to this.
    pub max_retry_after: Duration,
    /// Read each host's sitemaps (robots.txt `Sitemap:` lines and
    /// `/sitemap.xml`) for URLs.
    pub sitemaps: bool,
}

impl Default for PolitenessConfig {
    fn default() -> Self {
        Self {
            per_host_concurrency: 2,
            per_host_rate: 2.0,
            robots: true,
            max_crawl_delay: Duration::from_secs(30),
            retries: 2,
            max_retry_after: Duration::from_secs(600),
            sitemaps: true,
        }
    }
}

impl PolitenessConfig {
    /// Minimum spacing of request starts on one origin.
    pub fn interval(&self) -> Duration {
        if self.per_host_rate > 0.0 {
            Duration::from_secs_f64(1.0 / self.per_host_rate)
        } else {
            Duration::ZERO
        }
    }
}

/// How far the crawl goes. (Fields added after the first release take
/// their defaults when an older stored crawl is resumed.)
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Most URLs fetched (each redirect hop is a fetch). `None`: no limit.
    pub max_pages: Option<u64>,
    /// Deepest link distance from a seed. `None`: no limit.
    pub max_depth: Option<u32>,
    /// Redirect hops followed from one linked URL.
    pub max_redirects: u32,
    /// Links kept per page; the rest are counted and dropped.
    pub max_links_per_page: usize,
    /// Longer URLs are recorded as `trap` and not fetched.
    pub max_url_length: usize,
    /// Most pages fetched from one host (scheme://host:port); the rest of
    /// its URLs are recorded as `trap`. `None`: no limit.
    pub max_pages_per_host: Option<u64>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_pages: None,
            max_depth: None,
            max_redirects: 10,
            max_links_per_page: 10_000,
            max_url_length: 2048,
            max_pages_per_host: None,
        }
    }
}

/// Everything a crawl needs to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrawlConfig {
    /// Canonical seed URLs.
    pub seeds: Vec<String>,
    /// Requests in flight across all hosts.
    pub concurrency: usize,
    pub scope: ScopeConfig,
    pub politeness: PolitenessConfig,
    pub limits: LimitsConfig,
    pub fetch: FetchConfig,
    /// Stored crawls from before summaries take the defaults.
    #[serde(default)]
    pub summarize: crate::summarize::SummarizeConfig,
    /// How often recrawls come back to a page; stored crawls from before
    /// recrawls take the defaults.
    #[serde(default)]
    pub revisit: RevisitConfig,
    /// Fields taken from HTML pages by CSS selectors, and whether each
    /// HTML page's body is kept; stored crawls from before take none.
    #[serde(default)]
    pub extract: ExtractConfig,
    /// Keep each HTML page's main content as Markdown too (`--markdown`).
    /// Off by default: it stores nearly twice the text and cost a fifth
    /// more CPU per page on the benchmark (docs/ARCHITECTURE.md).
    #[serde(default)]
    pub markdown: bool,
    /// In a crawl on PostgreSQL: how long a process's hold on a host lasts
    /// unless renewed (`--lease-ttl`); a process that dies loses its hosts
    /// to the others this long after its last renewal.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl: Duration,
}

/// 30 s: a dead process's hosts are taken over within half a minute.
pub fn default_lease_ttl() -> Duration {
    Duration::from_secs(30)
}

/// Structured extraction (see `fields`): the fields applied to every HTML
/// page, and whether its body is kept for `trawl extract`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ExtractConfig {
    /// Keep each HTML page's body (compressed, in `page_html`). Implied by
    /// any field.
    pub keep_html: bool,
    /// `--extract` fields in the order given (names unique).
    pub fields: Vec<crate::fields::FieldSpec>,
}

impl ExtractConfig {
    /// From `--extract` arguments and `--keep-html`: each argument read
    /// with [`crate::fields::FieldSpec::parse`], names unique.
    pub fn from_args(args: &[String], keep_html: bool) -> Result<Self, ConfigError> {
        let fields = args
            .iter()
            .map(|a| crate::fields::FieldSpec::parse(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ConfigError)?;
        crate::fields::check_unique(&fields).map_err(ConfigError)?;
        Ok(Self {
            keep_html: keep_html || !fields.is_empty(),
            fields,
        })
    }

    /// The compiled fields, or `None` when there are none.
    pub fn compiled(&self) -> Result<Option<crate::fields::Fields>, ConfigError> {
        if self.fields.is_empty() {
            return Ok(None);
        }
        crate::fields::Fields::new(&self.fields)
            .map(Some)
            .map_err(ConfigError)
    }
}

/// Bounds of the adaptive revisit interval (see `recrawl`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct RevisitConfig {
    pub min_revisit: Duration,
    pub max_revisit: Duration,
}

impl Default for RevisitConfig {
    fn default() -> Self {
        Self {
            min_revisit: Duration::from_secs(3600),
            max_revisit: Duration::from_secs(30 * 86_400),
        }
    }
}

/// A configuration that cannot be used, with a message for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl CrawlConfig {
    /// A configuration with default settings for these seeds.
    pub fn new<S: AsRef<str>>(seeds: &[S]) -> Result<Self, ConfigError> {
        let cfg = Self {
            seeds: seeds.iter().map(|s| s.as_ref().to_string()).collect(),
            concurrency: 32,
            scope: ScopeConfig::default(),
            politeness: PolitenessConfig::default(),
            limits: LimitsConfig::default(),
            fetch: FetchConfig::default(),
            summarize: crate::summarize::SummarizeConfig::default(),
            revisit: RevisitConfig::default(),
            extract: ExtractConfig::default(),
            markdown: false,
            lease_ttl: default_lease_ttl(),
        };
        cfg.validated()
    }

    /// Checks every setting and canonicalizes the seeds.
    pub fn validated(mut self) -> Result<Self, ConfigError> {
        if self.seeds.is_empty() {
            return Err(ConfigError("no seed URL given".into()));
        }
        let mut seeds = Vec::new();
        for s in &self.seeds {
            let url =
                canon::parse(s).map_err(|e| ConfigError(format!("bad seed URL `{s}`: {e}")))?;
            if !seeds.contains(&url.to_string()) {
                seeds.push(url.to_string());
            }
        }
        self.seeds = seeds;
        at_least_one("--concurrency", self.concurrency as u64)?;
        if self.lease_ttl < Duration::from_secs(3) {
            // Renewed every 5 s at most once per ttl/3: shorter leases
            // would run out under a busy process.
            return Err(ConfigError(format!(
                "--lease-ttl must be at least 3 seconds, got {:?}",
                self.lease_ttl
            )));
        }
        at_least_one(
            "--per-host-concurrency",
            u64::from(self.politeness.per_host_concurrency),
        )?;
        check_rate(self.politeness.per_host_rate)?;
        if self.fetch.timeout.is_zero() || self.fetch.connect_timeout.is_zero() {
            return Err(ConfigError("timeouts must be greater than zero".into()));
        }
        if self.fetch.max_body_size == 0 {
            return Err(ConfigError(
                "--max-body-size must be at least 1 byte".into(),
            ));
        }
        if self.revisit.min_revisit.is_zero() || self.revisit.min_revisit > self.revisit.max_revisit
        {
            return Err(ConfigError(
                "--min-revisit must be greater than zero and at most --max-revisit".into(),
            ));
        }
        if self.fetch.user_agent.trim().is_empty() {
            return Err(ConfigError("--user-agent must not be empty".into()));
        }
        reqwest::header::HeaderValue::from_str(&self.fetch.user_agent).map_err(|_| {
            ConfigError("--user-agent contains characters not allowed in a header".into())
        })?;
        self.scope()?;
        self.summarize.validate()?;
        self.extract.compiled()?;
        if !self.extract.fields.is_empty() {
            self.extract.keep_html = true;
        }
        Ok(self)
    }

    pub fn seed_urls(&self) -> Vec<Url> {
        self.seeds
            .iter()
            .filter_map(|s| Url::parse(s).ok())
            .collect()
    }

    /// The compiled scope.
    pub fn scope(&self) -> Result<Scope, ConfigError> {
        Scope::new(
            &self.seed_urls(),
            &self.scope.allow_hosts,
            &self.scope.include,
            &self.scope.exclude,
        )
        .map(|s| s.with_max_url_length(self.limits.max_url_length))
        .map_err(ConfigError)
    }
}

/// A count that must be at least 1 (`--concurrency`, …).
pub fn at_least_one(flag: &str, n: u64) -> Result<(), ConfigError> {
    if n == 0 {
        return Err(ConfigError(format!("{flag} must be at least 1")));
    }
    Ok(())
}

/// A per-host rate: requests per second, 0 for no limit.
pub fn check_rate(rate: f64) -> Result<(), ConfigError> {
    if !rate.is_finite() || rate < 0.0 {
        return Err(ConfigError(format!(
            "--per-host-rate must be a number ≥ 0, got {rate}"
        )));
    }
    Ok(())
}
