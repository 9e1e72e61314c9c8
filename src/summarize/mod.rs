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
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
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
const REDUCE_NOTE: &str = "The text below consists of summaries of consecutive parts of one long \
page, in order. Summarize them as one page.";

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
}

impl Default for Outcome {
    fn default() -> Self {
        Self {
            summary: Err(String::new()),
            prompt_tokens: 0,
            completion_tokens: 0,
            chunks: 0,
            attempts: 0,
        }
    }
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
    spent: AtomicU64,
    jitter: std::sync::Mutex<Jitter>,
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
                        jitter: std::sync::Mutex::new(Jitter::new()),
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
            Kind::Llm(r) => r
                .cfg
                .max_total_tokens
                .is_some_and(|max| r.spent.load(Relaxed) >= max),
        }
    }

    /// Summarizes `text`; `kinds` is the kind of each of its lines when
    /// known (one byte a line, see [`crate::parse::extract::kind`]).
    /// `on_token` (LLM only) sees the final answer's text as it streams in.
    pub async fn summarize(
        &self,
        text: String,
        kinds: Option<String>,
        on_token: Option<TokenSink>,
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
            Kind::Llm(r) => r.summarize(&text, on_token).await,
        }
    }
}

impl LlmRunner {
    async fn summarize(&self, text: &str, mut on_token: Option<TokenSink>) -> Outcome {
        let mut out = Outcome::default();
        let reduce_prompt = format!("{}\n\n{REDUCE_NOTE}", self.prompt);
        let budget = self.cfg.max_input_tokens - count_tokens(&reduce_prompt) - 64;
        let mut input = text.to_string();
        let mut system = self.prompt.as_str();
        let mut rounds = 0;
        loop {
            let tokens = count_tokens(&input);
            if tokens <= budget {
                out.chunks = out.chunks.max(1);
                out.summary = self
                    .call(system, &input, on_token.as_mut(), &mut out)
                    .await
                    .map(|c| c.text);
                return out;
            }
            if rounds == MAX_REDUCE_ROUNDS {
                out.summary = Err(format!(
                    "still {tokens} tokens, over --llm-max-input-tokens, after {MAX_REDUCE_ROUNDS} rounds of map-reduce"
                ));
                return out;
            }
            rounds += 1;
            // Map: each chunk on its own, concurrently (the semaphore and
            // the rate limits still apply to every request).
            let parts = split_by_tokens(&input, budget);
            out.chunks += parts.len() as u32;
            let calls = parts.iter().map(|p| async {
                let mut o = Outcome::default();
                let r = self.call(system, p, None, &mut o).await;
                (r, o)
            });
            let mut partials = Vec::with_capacity(parts.len());
            let mut failure = None;
            for (r, o) in futures_util::future::join_all(calls).await {
                out.prompt_tokens += o.prompt_tokens;
                out.completion_tokens += o.completion_tokens;
                out.attempts += o.attempts;
                match r {
                    Ok(c) => partials.push(c.text),
                    Err(e) => failure = failure.or(Some(e)),
                }
            }
            if let Some(e) = failure {
                out.summary = Err(e);
                return out;
            }
            let next = partials.join("\n\n");
            if count_tokens(&next) >= tokens {
                out.summary = Err(format!(
                    "map-reduce does not shrink the text ({tokens} tokens became {}); raise --llm-max-input-tokens or lower --llm-max-output-tokens",
                    count_tokens(&next)
                ));
                return out;
            }
            input = next;
            system = &reduce_prompt;
        }
    }

    /// One request, retried while the failure is transient and retries are
    /// left. Usage is added to `out` and to the run's total.
    async fn call(
        &self,
        system: &str,
        user: &str,
        mut on_token: Option<&mut TokenSink>,
        out: &mut Outcome,
    ) -> Result<Completion, String> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            out.attempts += 1;
            let mut emitted = false;
            let res = {
                let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
                if let Some(l) = &self.rpm {
                    l.until_ready().await;
                }
                if let Some((l, cap)) = &self.tpm {
                    let want = (count_tokens(system) + count_tokens(user)) as u32
                        + self.cfg.max_output_tokens;
                    if let Some(n) = NonZeroU32::new(want.min(*cap)) {
                        let _ = l.until_n_ready(n).await;
                    }
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
                    None => self.client.complete(system, user).await,
                }
            };
            match res {
                Ok(c) if c.text.is_empty() => {
                    return Err("the LLM answered with no text".into());
                }
                Ok(mut c) => {
                    // A server that reports no usage: count it ourselves,
                    // so the totals and --llm-max-total-tokens still hold.
                    if c.prompt_tokens == 0 && c.completion_tokens == 0 {
                        c.prompt_tokens = (count_tokens(system) + count_tokens(user)) as u64;
                        c.completion_tokens = count_tokens(&c.text) as u64;
                    }
                    out.prompt_tokens += c.prompt_tokens;
                    out.completion_tokens += c.completion_tokens;
                    self.spent
                        .fetch_add(c.prompt_tokens + c.completion_tokens, Relaxed);
                    return Ok(c);
                }
                // Text already printed cannot be taken back: no retry.
                Err(LlmError::Transient {
                    reason,
                    retry_after,
                }) if attempt <= self.cfg.retries && !emitted => {
                    let backoff = Duration::from_secs(1 << (attempt - 1).min(6));
                    let wait = match retry_after {
                        Some(asked) => asked.min(self.cfg.max_retry_after),
                        None => self.jitter.lock().expect("jitter").apply(backoff),
                    };
                    tracing::debug!("LLM request failed ({reason}); retrying in {wait:.1?}");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
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
