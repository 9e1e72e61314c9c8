//! The summarization stage: stored pages in, summaries out.
//!
//! In: a page's main text (from the crawl as it stores pages, or from the
//! database). Out: a row in `summaries`, keyed by content hash × backend ×
//! model × prompt version, so an unchanged page is never summarized twice.
//!
//! Two backends: [`extractive`] (offline, linear-time centroid scoring,
//! the default; run with the parse during a crawl, see [`Inline`]) and an
//! OpenAI-compatible LLM ([`llm`]). The LLM path counts tokens offline
//! (tiktoken's o200k_base), splits input over `max_input_tokens` into
//! chunks and summarizes the partial summaries again (map-reduce, never a
//! silent cut), and keeps its own limits: a concurrency semaphore, governor
//! limiters for requests and tokens per minute, retries with backoff and
//! jitter that honour `Retry-After`, and a total token budget. The stage
//! that drives a [`Summarizer`] is in [`stage`].

pub mod extractive;
pub mod lexrank;
pub mod llm;
pub mod stage;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::config::ConfigError;
use crate::util::Jitter;
use llm::{Completion, LlmClient, LlmError};

/// The prompt used unless `--llm-prompt` or `--llm-prompt-file` says
/// otherwise.
pub const DEFAULT_PROMPT: &str = "You summarize web pages. Write a summary of the page the user \
gives you in at most three sentences, in the page's language. State what the page is about and \
its key facts. Answer with the summary only.";

/// Added to the prompt when the input is partial summaries of one page.
const REDUCE_NOTE: &str = "This time the user's message is not a page itself: it is several \
partial summaries of consecutive parts of ONE long web page, in order, each headed \"Part N of \
M\". Combine them into one summary of the whole page, as the instructions above say. Do not \
comment on the summaries; answer with the summary of the page only.";

/// Texts up to this many bytes are summarized extractively on the calling
/// task (about 0.1 ms at most); longer ones on the blocking pool.
const INLINE_SUMMARY_BYTES: usize = 32 << 10;

/// Most rounds of map-reduce before giving up on a page.
const MAX_REDUCE_ROUNDS: usize = 4;

/// Environment variables the API key is read from, in order.
pub const KEY_VARS: [&str; 2] = ["TRAWL_LLM_API_KEY", "OPENAI_API_KEY"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Offline: the page's most representative sentences.
    Extractive,
    /// An OpenAI-compatible chat-completions endpoint.
    Llm,
}

/// How pages are summarized. Stored with the crawl (the API key is not:
/// it only ever comes from the environment).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SummarizeConfig {
    /// Summarize pages during the crawl.
    pub enabled: bool,
    pub backend: Backend,
    /// Sentences in an extractive summary.
    pub sentences: usize,
    pub llm: LlmConfig,
}

impl SummarizeConfig {
    /// Checks every setting before anything runs (or is written), so that
    /// [`Summarizer::new`] cannot fail on them later. The LLM's endpoint
    /// and model are required when it is the summarizer of an enabled
    /// stage; `trawl summarize` may still supply them for a crawl made
    /// with summaries off.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_values()?;
        if self.enabled && self.backend == Backend::Llm {
            self.check_llm()?;
        }
        Ok(())
    }

    /// Each value on its own, whichever summarizer is chosen.
    pub fn check_values(&self) -> Result<(), ConfigError> {
        if self.sentences == 0 {
            return Err(ConfigError("--summary-sentences must be at least 1".into()));
        }
        let l = &self.llm;
        if let Some(base) = &l.base_url {
            let parsed = url::Url::parse(base)
                .map_err(|e| ConfigError(format!("--llm-base-url {base:?} is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError(format!(
                    "--llm-base-url {base:?} must be http or https"
                )));
            }
        }
        if l.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err(ConfigError("--llm-model must not be empty".into()));
        }
        if l.concurrency == 0 {
            return Err(ConfigError("--llm-concurrency must be at least 1".into()));
        }
        if l.max_output_tokens == 0 {
            return Err(ConfigError(
                "--llm-max-output-tokens must be at least 1".into(),
            ));
        }
        if l.timeout.is_zero() {
            return Err(ConfigError(
                "--llm-timeout must be greater than zero".into(),
            ));
        }
        Ok(())
    }

    /// What the LLM summarizer needs beyond valid values: an endpoint and
    /// a model (returned), and requests big enough for map-reduce to
    /// shrink a text.
    fn check_llm(&self) -> Result<(&str, &str), ConfigError> {
        let l = &self.llm;
        let (Some(base), Some(model)) = (&l.base_url, &l.model) else {
            return Err(ConfigError(
                "--summarizer llm needs --llm-base-url (or TRAWL_LLM_BASE_URL) and --llm-model"
                    .into(),
            ));
        };
        let prompt = l.prompt.as_deref().unwrap_or(DEFAULT_PROMPT);
        // Map-reduce only shrinks a text if a part is well over the answer
        // it is reduced to.
        let overhead = count_tokens(prompt) + count_tokens(REDUCE_NOTE) + 64;
        let least = overhead + 2 * l.max_output_tokens as usize;
        if l.max_input_tokens < least {
            return Err(ConfigError(format!(
                "--llm-max-input-tokens {} is too small: the prompt takes {overhead} tokens and a part \
                 needs room for twice --llm-max-output-tokens ({}); use at least {least}",
                l.max_input_tokens, l.max_output_tokens
            )));
        }
        Ok((base, model))
    }
}

impl Default for SummarizeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            backend: Backend::Extractive,
            sentences: 3,
            llm: LlmConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmConfig {
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// `None`: [`DEFAULT_PROMPT`].
    pub prompt: Option<String>,
    /// Tokens of prompt plus page text per request; longer pages are split.
    pub max_input_tokens: usize,
    pub max_output_tokens: u32,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    pub timeout: Duration,
    /// Retries of a transient failure (429, 5xx, timeouts, connection errors).
    pub retries: u32,
    /// Longest Retry-After honoured.
    pub max_retry_after: Duration,
    /// Prompt plus completion tokens after which no new page is started.
    pub max_total_tokens: Option<u64>,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            model: None,
            prompt: None,
            max_input_tokens: 6000,
            max_output_tokens: 400,
            concurrency: 4,
            rpm: None,
            tpm: None,
            timeout: Duration::from_secs(120),
            retries: 4,
            max_retry_after: Duration::from_secs(600),
            max_total_tokens: None,
        }
    }
}

/// What a summary is keyed by, besides the content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryKey {
    pub backend: &'static str,
    pub model: String,
    pub prompt_version: String,
}

/// The extractive summarizer as the crawl runs it: inside page analysis,
/// on the text just extracted, its summary committed with the page in the
/// same transaction. No queue, no query, no second write connection; the
/// stage's sweep finds nothing left to do.
#[derive(Debug, Clone)]
pub struct Inline {
    pub key: std::sync::Arc<SummaryKey>,
    sentences: usize,
}

impl Inline {
    /// The summary of a page's text (`kinds`: one byte per line).
    pub fn summarize(&self, text: &str, kinds: Option<&str>) -> String {
        extractive::summarize_page(text, kinds, self.sentences)
    }
}

/// Where streamed tokens go.
pub type TokenSink = Box<dyn FnMut(&str) + Send>;

/// The result of summarizing one text.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub summary: Result<String, String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub chunks: u32,
    /// Requests made (retries included); 1 for extractive.
    pub attempts: u32,
    /// The answer stopped at `max_tokens` (`finish_reason: "length"`) even
    /// after a retry with more room, or a part it was made from did.
    pub truncated: bool,
    /// Not summarized and not failed: the page stays pending (the endpoint
    /// is unreachable, the token budget is spent), for this reason.
    pub pending: Option<String>,
}

impl Default for Outcome {
    fn default() -> Self {
        Self {
            summary: Err(String::new()),
            prompt_tokens: 0,
            completion_tokens: 0,
            chunks: 0,
            attempts: 0,
            truncated: false,
            pending: None,
        }
    }
}

/// A part of a split page, summarized: kept (see [`Parts`]) so that a
/// page whose reduce step fails, or whose run is cut short, does not pay
/// for its parts again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartDone {
    pub text: String,
    /// The part's answer stopped at `max_tokens`.
    pub cut: bool,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Where the summaries of a page's parts are kept between attempts, by the
/// SHA-256 (hex) of the system prompt and the part's text.
pub trait Parts: Send + Sync {
    fn get(&self, key: &str) -> Option<PartDone>;
    fn put(&self, key: String, part: PartDone);
}

/// A configured backend, shared by the stage's tasks.
pub struct Summarizer {
    key: SummaryKey,
    kind: Kind,
}

enum Kind {
    Extractive { sentences: usize },
    Llm(Box<LlmRunner>),
}

struct LlmRunner {
    client: LlmClient,
    prompt: String,
    permits: Semaphore,
    rpm: Option<DefaultDirectRateLimiter>,
    tpm: Option<(DefaultDirectRateLimiter, u32)>,
    cfg: LlmConfig,
    /// Tokens the server reported (or, without usage, counted) so far.
    spent: AtomicU64,
    /// Tokens of requests in flight, estimated before sending, so the
    /// budget is never overshot by requests already under way.
    reserved: AtomicU64,
    /// A request was not sent because its reservation would pass the
    /// budget: the budget is spent.
    refused: std::sync::atomic::AtomicBool,
    jitter: std::sync::Mutex<Jitter>,
    /// What the server said about itself, asked once.
    info: tokio::sync::OnceCell<llm::ServerInfo>,
    /// Tokens of context per request as learned (0: not known). Shrinks
    /// when an overflow answer says less.
    context: AtomicUsize,
    /// Server tokens per offline (o200k) token, when the server cannot
    /// count: [`OFFLINE_MARGIN`] at first, raised by what overflow answers
    /// show.
    scale: std::sync::Mutex<f64>,
    /// The server's counts of the system prompts (the map and the reduce
    /// prompt), asked once: they are the same for every page.
    prompt_counts: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    breaker: std::sync::Mutex<Breaker>,
}

/// The endpoint's health: consecutive requests that got no answer, and
/// since when (and why) it is considered unreachable.
#[derive(Debug, Default)]
struct Breaker {
    consecutive: u32,
    open: Option<(std::time::SystemTime, String)>,
}

/// Transport failures in a row that open the breaker (a refused
/// connection opens it at once).
const BREAKER_FAILURES: u32 = 5;
/// Waits between probes of an unreachable endpoint before the stage gives
/// up and leaves the rest pending (15 s in all).
const BREAKER_PROBES: [u64; 4] = [1, 2, 4, 8];
/// Offline token counts are scaled by this when the server cannot count:
/// o200k undercounts small models' tokenizers by up to ~14%.
const OFFLINE_MARGIN: f64 = 1.2;
/// Tokens a chat template adds around the system and user messages.
const TEMPLATE_TOKENS: usize = 32;
/// Overflow answers taken in for one page before it fails.
const MAX_OVERFLOWS: u32 = 3;

/// Why a request did not give a usable answer.
enum CallError {
    /// The context is smaller than thought (now learned): split again.
    Overflow,
    /// Leave the page pending: the endpoint is unreachable or the budget
    /// is spent.
    Pending(String),
    /// Record the page as failed.
    Failed(String),
}

/// Tokens in `text` (o200k_base, offline).
pub fn count_tokens(text: &str) -> usize {
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len()
}

fn per_minute(n: u32) -> Option<DefaultDirectRateLimiter> {
    NonZeroU32::new(n).map(|n| RateLimiter::direct(Quota::per_minute(n)))
}

impl Summarizer {
    /// The API key comes from [`KEY_VARS`].
    pub fn new(cfg: &SummarizeConfig) -> Result<Self, ConfigError> {
        match cfg.backend {
            Backend::Extractive => {
                cfg.check_values()?;
                Ok(Self {
                    key: SummaryKey {
                        backend: "extractive",
                        model: "centroid".into(),
                        prompt_version: format!("sentences={}", cfg.sentences),
                    },
                    kind: Kind::Extractive {
                        sentences: cfg.sentences,
                    },
                })
            }
            Backend::Llm => {
                cfg.check_values()?;
                let (base, model) = cfg.check_llm()?;
                let l = &cfg.llm;
                let prompt = l.prompt.clone().unwrap_or_else(|| DEFAULT_PROMPT.into());
                let key = KEY_VARS
                    .iter()
                    .find_map(|v| std::env::var(v).ok().filter(|k| !k.trim().is_empty()));
                let client = LlmClient::new(base, model, key, l.timeout, Some(l.max_output_tokens))
                    .map_err(|e| ConfigError(e.to_string()))?;
                let digest = crate::worker::sha256_hex(prompt.as_bytes());
                Ok(Self {
                    key: SummaryKey {
                        backend: "llm",
                        model: model.to_string(),
                        prompt_version: format!("prompt-{}", &digest[..12]),
                    },
                    kind: Kind::Llm(Box::new(LlmRunner {
                        client,
                        prompt,
                        permits: Semaphore::new(l.concurrency),
                        // Requests evenly spaced (no burst): a provider's
                        // per-minute limit is often enforced per second.
                        rpm: l.rpm.and_then(NonZeroU32::new).map(|n| {
                            RateLimiter::direct(Quota::per_minute(n).allow_burst(NonZeroU32::MIN))
                        }),
                        tpm: l.tpm.and_then(|n| per_minute(n).map(|r| (r, n))),
                        cfg: l.clone(),
                        spent: AtomicU64::new(0),
                        reserved: AtomicU64::new(0),
                        refused: std::sync::atomic::AtomicBool::new(false),
                        jitter: std::sync::Mutex::new(Jitter::new()),
                        info: tokio::sync::OnceCell::new(),
                        context: AtomicUsize::new(0),
                        scale: std::sync::Mutex::new(OFFLINE_MARGIN),
                        prompt_counts: std::sync::Mutex::default(),
                        breaker: std::sync::Mutex::new(Breaker::default()),
                    })),
                })
            }
        }
    }

    pub fn key(&self) -> &SummaryKey {
        &self.key
    }

    /// The summarizer to run inside page analysis, if it is one that costs
    /// microseconds and never fails (the extractive one).
    /// Whether a crawl's pages arrive summarized (see [`Self::inline`]).
    pub fn is_inline(&self) -> bool {
        matches!(self.kind, Kind::Extractive { .. })
    }

    pub fn inline(&self) -> Option<Inline> {
        match &self.kind {
            Kind::Extractive { sentences } => Some(Inline {
                key: std::sync::Arc::new(self.key.clone()),
                sentences: *sentences,
            }),
            Kind::Llm(_) => None,
        }
    }

    /// Pages summarized at once: the cores for extractive, the request
    /// concurrency for an LLM.
    pub fn parallelism(&self) -> usize {
        match &self.kind {
            Kind::Extractive { .. } => std::thread::available_parallelism().map_or(2, |n| n.get()),
            Kind::Llm(r) => r.cfg.concurrency,
        }
    }

    /// Whether the token budget is spent: no new page should start.
    pub fn budget_spent(&self) -> bool {
        match &self.kind {
            Kind::Extractive { .. } => false,
            // Spent once a request did not fit.
            Kind::Llm(r) => r.cfg.max_total_tokens.is_some() && r.refused.load(Relaxed),
        }
    }

    /// Summarizes `text`; `kinds` is the kind of each of its lines when
    /// known (one byte a line, see [`crate::parse::extract::kind`]).
    /// `on_token` (LLM only) sees the final answer's text as it streams in;
    /// `parts` (LLM only) keeps the summaries of a split page's parts.
    pub async fn summarize(
        &self,
        text: String,
        kinds: Option<String>,
        on_token: Option<TokenSink>,
        parts: Option<&dyn Parts>,
    ) -> Outcome {
        match &self.kind {
            Kind::Extractive { sentences } => {
                let n = *sentences;
                // Tens of microseconds a page: inline, unless the text is
                // long enough to hold a runtime thread for long.
                let small = text.len() <= INLINE_SUMMARY_BYTES;
                let run = move || extractive::summarize_page(&text, kinds.as_deref(), n);
                let res = if small {
                    Ok(run())
                } else {
                    tokio::task::spawn_blocking(run).await
                };
                Outcome {
                    summary: res.map_err(|e| format!("summarizer panicked: {e}")),
                    chunks: 1,
                    attempts: 1,
                    ..Outcome::default()
                }
            }
            Kind::Llm(r) => r.summarize(&text, on_token, parts).await,
        }
    }

    /// Why the endpoint cannot be reached, if it cannot (the breaker is
    /// open): the stage stops starting summaries.
    pub fn unreachable(&self) -> Option<String> {
        match &self.kind {
            Kind::Extractive { .. } => None,
            Kind::Llm(r) => r.unreachable(),
        }
    }

    /// Probes an unreachable endpoint with back-off (about 30 s in all);
    /// true once it answers again.
    pub async fn wait_for_endpoint(&self) -> bool {
        match &self.kind {
            Kind::Extractive { .. } => true,
            Kind::Llm(r) => r.wait_for_endpoint().await,
        }
    }
}

impl LlmRunner {
    /// What the server said about itself, asked on first use; logs once
    /// what limit was learned and from where.
    async fn info(&self) -> &llm::ServerInfo {
        self.info
            .get_or_init(|| async {
                let info = self.client.probe().await;
                if let Some(slots) = info.slots
                    && slots < self.cfg.concurrency
                {
                    // Requests beyond the server's slots would wait there,
                    // their wait counted against --llm-timeout.
                    self.permits.forget_permits(self.cfg.concurrency - slots);
                    tracing::info!(
                        "LLM {}: the server works on {slots} requests at once; sending no more",
                        self.client.endpoint()
                    );
                }
                match info.context {
                    Some((n, from)) => {
                        self.learn(n);
                        tracing::info!(
                            "LLM {}: {n} tokens of context per request (from {from}); {}",
                            self.client.endpoint(),
                            if info.tokenize {
                                "tokens counted by the server's /tokenize"
                            } else {
                                "tokens counted offline with a 20% margin"
                            }
                        );
                    }
                    None => tracing::info!(
                        "LLM {}: the server does not say its context; requests are kept under \
                         --llm-max-input-tokens {} and learn the limit from an overflow answer",
                        self.client.endpoint(),
                        self.cfg.max_input_tokens
                    ),
                }
                info
            })
            .await
    }

    /// Takes a context limit in; only ever shrinks it.
    fn learn(&self, n: usize) {
        let _ = self
            .context
            .fetch_update(Relaxed, Relaxed, |c| (c == 0 || n < c).then_some(n));
    }

    fn context(&self) -> Option<usize> {
        Some(self.context.load(Relaxed)).filter(|&n| n > 0)
    }

    /// `max_tokens` asked for: `--llm-max-output-tokens`, at most a
    /// quarter of a known context (an answer must leave room for input).
    fn max_tokens(&self) -> u32 {
        match self.context() {
            Some(ctx) => self.cfg.max_output_tokens.min((ctx / 4).max(16) as u32),
            None => self.cfg.max_output_tokens,
        }
    }

    /// Tokens of `text` as the server counts them: its own `/tokenize`
    /// where it has one, else the offline count with a margin.
    async fn count(&self, text: &str) -> usize {
        if self.info().await.tokenize
            && let Some(n) = self.client.server_count(text).await
        {
            return n;
        }
        self.offline(text)
    }

    /// Tokens of a system prompt, as [`LlmRunner::count`] gives them; the
    /// server is asked once per prompt.
    async fn count_prompt(&self, system: &str) -> usize {
        if !self.info().await.tokenize {
            return self.offline(system);
        }
        if let Some(&n) = self
            .prompt_counts
            .lock()
            .expect("prompt counts")
            .get(system)
        {
            return n;
        }
        let n = self.count(system).await;
        self.prompt_counts
            .lock()
            .expect("prompt counts")
            .insert(system.to_string(), n);
        n
    }

    /// The offline count of `text`, scaled to the server's tokenizer as
    /// far as it is known.
    fn offline(&self, text: &str) -> usize {
        (count_tokens(text) as f64 * *self.scale.lock().expect("scale")).ceil() as usize
    }

    /// Tokens of user text one request with `system` may carry: the
    /// context less the answer, the prompt and the template, capped by
    /// `--llm-max-input-tokens` (prompt plus text).
    async fn text_budget(&self, system: &str) -> Result<usize, String> {
        let system_tokens = self.count_prompt(system).await + TEMPLATE_TOKENS;
        let mut room = self.cfg.max_input_tokens;
        if let Some(ctx) = self.context() {
            room = room.min(ctx.saturating_sub(self.max_tokens() as usize));
        }
        match room.checked_sub(system_tokens) {
            Some(b) if b >= 64 => Ok(b),
            _ => Err(format!(
                "the model's context ({} tokens) leaves no room for a page: the prompt takes \
                 {system_tokens} tokens and the answer {}",
                self.context().unwrap_or(self.cfg.max_input_tokens),
                self.max_tokens()
            )),
        }
    }

    fn unreachable(&self) -> Option<String> {
        let b = self.breaker.lock().expect("breaker");
        b.open.as_ref().map(|(since, why)| {
            let since = crate::util::rfc3339(
                since
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
            );
            format!("{why} (since {since})")
        })
    }

    fn open_breaker(&self, why: String) {
        let mut b = self.breaker.lock().expect("breaker");
        if b.open.is_none() {
            tracing::warn!("LLM endpoint unreachable: {why}; no more requests until it answers");
            b.open = Some((std::time::SystemTime::now(), why));
        }
    }

    /// Probes an unreachable endpoint with back-off; true once it answers.
    async fn wait_for_endpoint(&self) -> bool {
        for secs in BREAKER_PROBES {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            if self.client.reachable().await {
                let mut b = self.breaker.lock().expect("breaker");
                b.open = None;
                b.consecutive = 0;
                tracing::info!("LLM endpoint {} answers again", self.client.endpoint());
                return true;
            }
        }
        false
    }

    async fn summarize(
        &self,
        text: &str,
        mut on_token: Option<TokenSink>,
        parts: Option<&dyn Parts>,
    ) -> Outcome {
        let mut out = Outcome::default();
        if let Some(why) = self.unreachable() {
            out.pending = Some(why);
            return out;
        }
        self.info().await;
        let mut input = text.to_string();
        let mut system = self.prompt.clone();
        let mut rounds = 0;
        let mut overflows = 0;
        loop {
            if overflows > MAX_OVERFLOWS {
                out.summary = Err(format!(
                    "the server refused {overflows} requests as longer than its context"
                ));
                return out;
            }
            let budget = match self.text_budget(&system).await {
                Ok(b) => b,
                Err(e) => {
                    out.summary = Err(e);
                    return out;
                }
            };
            let tokens = self.count(&input).await;
            if tokens <= budget {
                out.chunks = out.chunks.max(1);
                match self
                    .call(&system, &input, on_token.as_mut(), &mut out, None)
                    .await
                {
                    Ok(c) => {
                        out.truncated |= c.cut();
                        out.summary = Ok(c.text);
                        return out;
                    }
                    Err(CallError::Overflow) => {
                        overflows += 1;
                        continue;
                    }
                    Err(CallError::Pending(why)) => {
                        out.pending = Some(why);
                        return out;
                    }
                    Err(CallError::Failed(e)) => {
                        out.summary = Err(e);
                        return out;
                    }
                }
            }
            if rounds == MAX_REDUCE_ROUNDS {
                out.summary = Err(format!(
                    "still {tokens} tokens, over the {budget} a request may carry, after \
                     {MAX_REDUCE_ROUNDS} rounds of map-reduce"
                ));
                return out;
            }
            // Split by the offline count, scaled to the server's.
            let scale = tokens as f64 / count_tokens(&input).max(1) as f64;
            let offline_budget = ((budget as f64 / scale.max(0.1)) * 0.95) as usize;
            let pieces = split_by_tokens(&input, offline_budget.max(16));
            // The parts' answers must fit one reduce request together:
            // each gets its share of the reduce step's budget (less its
            // "Part i of n" heading), and is not asked again for more.
            let reduce_system = format!("{}\n\n{REDUCE_NOTE}", self.prompt);
            let reduce_budget = self.text_budget(&reduce_system).await.unwrap_or(budget);
            let share = (reduce_budget / pieces.len().max(1)).saturating_sub(12);
            let part_tokens = (share as u32).clamp(32, self.max_tokens());
            let calls = pieces.iter().map(|p| {
                let system = system.as_str();
                async move {
                    let key = crate::worker::sha256_hex(format!("{system}\n\0{p}").as_bytes());
                    if let Some(done) = parts.and_then(|c| c.get(&key)) {
                        return (Ok(done), Outcome::default(), true);
                    }
                    let mut o = Outcome::default();
                    let r = self
                        .call(system, p, None, &mut o, Some(part_tokens))
                        .await
                        .map(|c| PartDone {
                            cut: c.cut(),
                            text: c.text,
                            prompt_tokens: c.prompt_tokens,
                            completion_tokens: c.completion_tokens,
                        });
                    if let (Ok(done), Some(cache)) = (&r, parts) {
                        cache.put(key, done.clone());
                    }
                    (r, o, false)
                }
            });
            let mut partials = Vec::with_capacity(pieces.len());
            let mut overflowed = false;
            let mut pending = None;
            let mut failure = None;
            for (r, o, _reused) in futures_util::future::join_all(calls).await {
                out.prompt_tokens += o.prompt_tokens;
                out.completion_tokens += o.completion_tokens;
                out.attempts += o.attempts;
                match r {
                    Ok(done) => partials.push(done),
                    Err(CallError::Overflow) => overflowed = true,
                    Err(CallError::Pending(why)) => pending = pending.or(Some(why)),
                    Err(CallError::Failed(e)) => failure = failure.or(Some(e)),
                }
            }
            if let Some(e) = failure {
                out.summary = Err(e);
                return out;
            }
            if let Some(why) = pending {
                out.pending = Some(why);
                return out;
            }
            if overflowed {
                // The parts that fit are kept; the same text is split
                // again, smaller.
                overflows += 1;
                continue;
            }
            rounds += 1;
            out.chunks += pieces.len() as u32;
            let n = partials.len();
            let mut next = String::new();
            for (i, p) in partials.iter().enumerate() {
                if i > 0 {
                    next.push_str("\n\n");
                }
                next.push_str(&format!("Part {} of {n}:\n{}", i + 1, p.text));
                if p.cut {
                    // A cut answer is never passed on as if complete.
                    next.push_str(" [this partial summary was cut off]");
                    out.truncated = true;
                }
            }
            let next_tokens = self.count(&next).await;
            if next_tokens >= tokens {
                out.summary = Err(format!(
                    "map-reduce does not shrink the text ({tokens} tokens became {next_tokens}); \
                     the model's context is too small for its answers"
                ));
                return out;
            }
            input = next;
            system = format!("{}\n\n{REDUCE_NOTE}", self.prompt);
        }
    }

    /// One request, with retries of transient failures. A cut answer is
    /// asked again once with twice the `max_tokens` when the context has
    /// room for it. Tokens are reserved against `--llm-max-total-tokens`
    /// before sending.
    /// `part_tokens`: a part of a split page, answered in at most this
    /// many tokens and never asked again for more.
    async fn call(
        &self,
        system: &str,
        user: &str,
        mut on_token: Option<&mut TokenSink>,
        out: &mut Outcome,
        part_tokens: Option<u32>,
    ) -> Result<Completion, CallError> {
        let mut attempt = 0u32;
        let mut max_tokens = part_tokens.unwrap_or_else(|| self.max_tokens());
        let mut longer = part_tokens.is_some();
        loop {
            if let Some(why) = self.unreachable() {
                return Err(CallError::Pending(why));
            }
            let estimate = (self.offline(system) + self.offline(user)) as u64
                + TEMPLATE_TOKENS as u64
                + u64::from(max_tokens);
            if !self.reserve(estimate) {
                self.refused.store(true, Relaxed);
                return Err(CallError::Pending(
                    "the token budget (--llm-max-total-tokens) is spent".into(),
                ));
            }
            attempt += 1;
            out.attempts += 1;
            let mut emitted = false;
            let res = {
                let permit = self.permits.acquire().await;
                if permit.is_err() {
                    self.reserved.fetch_sub(estimate, Relaxed);
                    return Err(CallError::Failed("the LLM stage is closed".into()));
                }
                if let Some(l) = &self.rpm {
                    l.until_ready().await;
                }
                if let Some((l, cap)) = &self.tpm
                    && let Some(n) = NonZeroU32::new((estimate as u32).min(*cap))
                {
                    let _ = l.until_n_ready(n).await;
                }
                match on_token.as_mut() {
                    Some(f) => {
                        self.client
                            .complete_stream(system, user, |t| {
                                emitted = true;
                                f(t)
                            })
                            .await
                    }
                    None => self.client.complete(system, user, Some(max_tokens)).await,
                }
            };
            self.reserved.fetch_sub(estimate, Relaxed);
            match res {
                Ok(mut c) => {
                    self.answered();
                    self.account(&mut c, system, user, out);
                    if c.text.is_empty() {
                        return Err(CallError::Failed("the LLM answered with no text".into()));
                    }
                    let room = self.context().is_none_or(|ctx| {
                        c.prompt_tokens as usize + 2 * max_tokens as usize <= ctx
                    });
                    if c.cut() && !longer && !emitted && room {
                        tracing::debug!(
                            "an answer stopped at max_tokens {max_tokens}; asking again with {}",
                            2 * max_tokens
                        );
                        longer = true;
                        max_tokens *= 2;
                        continue;
                    }
                    return Ok(c);
                }
                Err(LlmError::Overflow {
                    reason,
                    context,
                    prompt,
                }) => {
                    if !self.info().await.tokenize {
                        // The offline count fell short of the server's: count
                        // higher from now on, by what the server said, else
                        // by a quarter.
                        let ours = (count_tokens(system) + count_tokens(user)).max(1) as f64;
                        let mut scale = self.scale.lock().expect("scale");
                        *scale = match prompt {
                            Some(p) => scale.max(p as f64 / ours * 1.05),
                            None => *scale * 1.25,
                        };
                    }
                    let asked = self.count_prompt(system).await + self.count(user).await;
                    let ctx = context
                        .unwrap_or_else(|| (asked + max_tokens as usize) * 3 / 4)
                        .max(64);
                    if self.context().is_none_or(|c| ctx < c) {
                        tracing::warn!(
                            "LLM {}: requests are limited to {ctx} tokens of context (learned \
                             from the server's answer: {reason}); splitting pages to fit",
                            self.client.endpoint()
                        );
                    }
                    self.learn(ctx);
                    return Err(CallError::Overflow);
                }
                Err(LlmError::Unreachable(why)) => {
                    self.open_breaker(why.clone());
                    return Err(CallError::Pending(why));
                }
                // Text already printed cannot be taken back: no retry.
                Err(LlmError::Transient {
                    reason,
                    retry_after,
                }) if attempt <= self.cfg.retries && !emitted => {
                    if self.transport_failed(&reason) {
                        return Err(CallError::Pending(reason));
                    }
                    let backoff = Duration::from_secs(1 << (attempt - 1).min(6));
                    let wait = match retry_after {
                        Some(asked) => asked.min(self.cfg.max_retry_after),
                        None => self.jitter.lock().expect("jitter").apply(backoff),
                    };
                    tracing::debug!("LLM request failed ({reason}); retrying in {wait:.1?}");
                    tokio::time::sleep(wait).await;
                }
                Err(LlmError::Transient { reason, .. }) => {
                    if self.transport_failed(&reason) {
                        return Err(CallError::Pending(reason));
                    }
                    return Err(CallError::Failed(reason));
                }
                Err(e) => return Err(CallError::Failed(e.to_string())),
            }
        }
    }

    /// Reserves `n` tokens against the budget; false if they would pass it.
    fn reserve(&self, n: u64) -> bool {
        let Some(max) = self.cfg.max_total_tokens else {
            self.reserved.fetch_add(n, Relaxed);
            return true;
        };
        loop {
            let held = self.reserved.load(Relaxed);
            if self.spent.load(Relaxed) + held + n > max {
                return false;
            }
            if self
                .reserved
                .compare_exchange(held, held + n, Relaxed, Relaxed)
                .is_ok()
            {
                return true;
            }
        }
    }

    /// Counts a completion's tokens (counting them offline when the server
    /// reports no usage) into the totals and the outcome.
    fn account(&self, c: &mut Completion, system: &str, user: &str, out: &mut Outcome) {
        if c.prompt_tokens == 0 && c.completion_tokens == 0 {
            c.prompt_tokens = (count_tokens(system) + count_tokens(user)) as u64;
            c.completion_tokens = count_tokens(&c.text) as u64;
        }
        out.prompt_tokens += c.prompt_tokens;
        out.completion_tokens += c.completion_tokens;
        self.spent
            .fetch_add(c.prompt_tokens + c.completion_tokens, Relaxed);
    }

    fn answered(&self) {
        self.breaker.lock().expect("breaker").consecutive = 0;
    }

    /// A request that got no answer (HTTP errors are answers); true once
    /// [`BREAKER_FAILURES`] came in a row and the breaker opened.
    fn transport_failed(&self, reason: &str) -> bool {
        if reason.starts_with("HTTP ") {
            return false;
        }
        let n = {
            let mut b = self.breaker.lock().expect("breaker");
            b.consecutive += 1;
            b.consecutive
        };
        if n >= BREAKER_FAILURES {
            self.open_breaker(format!(
                "{}: {n} requests in a row got no answer (last: {reason})",
                self.client.endpoint()
            ));
            return true;
        }
        false
    }
}

/// Splits `text` into pieces of at most `budget` tokens, at line and then
/// sentence boundaries; a sentence longer than the budget is cut by tokens.
pub fn split_by_tokens(text: &str, budget: usize) -> Vec<String> {
    let bpe = tiktoken_rs::o200k_base_singleton();
    let mut pieces: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_tokens = 0usize;
    fn flush(pieces: &mut Vec<String>, current: &mut String, current_tokens: &mut usize) {
        if !current.trim().is_empty() {
            pieces.push(std::mem::take(current));
        }
        current.clear();
        *current_tokens = 0;
    }
    for sentence in extractive::sentences(text) {
        let n = bpe.encode_ordinary(&sentence).len() + 1;
        if n > budget {
            flush(&mut pieces, &mut current, &mut current_tokens);
            let tokens = bpe.encode_ordinary(&sentence);
            for chunk in tokens.chunks(budget.max(1)) {
                if let Ok(bytes) = bpe.decode_bytes(chunk) {
                    pieces.push(String::from_utf8_lossy(&bytes).into_owned());
                }
            }
            continue;
        }
        if current_tokens + n > budget {
            flush(&mut pieces, &mut current, &mut current_tokens);
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&sentence);
        current_tokens += n;
    }
    flush(&mut pieces, &mut current, &mut current_tokens);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_respects_the_budget_and_keeps_everything() {
        let text: String = (0..300)
            .map(|i| format!("Sentence number {i} talks about topic {}.\n", i % 7))
            .collect();
        let pieces = split_by_tokens(&text, 100);
        assert!(pieces.len() > 5);
        for p in &pieces {
            assert!(count_tokens(p) <= 100, "{}", count_tokens(p));
        }
        let joined = pieces.join("\n");
        assert_eq!(joined.lines().count(), 300);
        // A single sentence longer than the budget is cut by tokens.
        let long = "word ".repeat(500);
        let pieces = split_by_tokens(&long, 100);
        assert!(pieces.len() >= 5);
        assert!(pieces.iter().all(|p| count_tokens(p) <= 100));
    }

    #[test]
    fn llm_needs_an_endpoint_and_a_model() {
        let mut cfg = SummarizeConfig {
            backend: Backend::Llm,
            ..SummarizeConfig::default()
        };
        assert!(Summarizer::new(&cfg).is_err());
        cfg.llm.base_url = Some("ftp://x".into());
        cfg.llm.model = Some("m".into());
        assert!(Summarizer::new(&cfg).is_err());
        cfg.llm.base_url = Some("http://127.0.0.1:9".into());
        let s = Summarizer::new(&cfg).unwrap();
        assert_eq!(s.key().backend, "llm");
        assert!(s.key().prompt_version.starts_with("prompt-"));
        cfg.llm.prompt = Some("other".into());
        assert_ne!(Summarizer::new(&cfg).unwrap().key(), s.key());
    }
}
