//! An OpenAI-compatible chat-completions client (OpenAI, Ollama, vLLM,
//! llama.cpp server).
//!
//! In: a system prompt and a user text. Out: a [`Completion`] (text and the
//! token usage the server reported) or an [`LlmError`] that says whether
//! trying again could help (429, 5xx, timeouts, connection errors, with the
//! server's `Retry-After`) or not (other 4xx, a malformed answer), with the
//! server's own message.
//!
//! The API key is sent as a bearer token and nowhere else: it is not part of
//! any error, log line or stored setting.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use crate::hosts::parse_retry_after;

/// What a completion returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// `choices[0].finish_reason` as the server gave it (`stop`,
    /// `length`…), if it gave one.
    pub finish_reason: Option<String>,
}

impl Completion {
    /// The answer stopped at `max_tokens`, not where the model ended it.
    pub fn cut(&self) -> bool {
        self.finish_reason.as_deref() == Some("length")
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LlmError {
    /// Worth another try, after `retry_after` if the server said.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The endpoint cannot be reached at all (connection refused, a name
    /// that does not resolve): no request will get through until it is
    /// back.
    #[error("{0}")]
    Unreachable(String),
    /// The request was longer than the model's context: `context` is the
    /// limit when the server said it (llama.cpp's `n_ctx`, vLLM's and
    /// OpenAI's "maximum context length is N tokens").
    #[error("{reason}")]
    Overflow {
        reason: String,
        context: Option<usize>,
        /// The request's prompt tokens as the server counted them, when it
        /// said (llama.cpp's `n_prompt_tokens`, vLLM's "N in the messages").
        prompt: Option<usize>,
    },
    /// Trying again would give the same answer.
    #[error("{0}")]
    Permanent(String),
}

/// One endpoint, one model.
#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    /// The server's root: the base URL without a trailing `/v1`.
    root: String,
    endpoint: String,
    model: String,
    key: Option<String>,
    max_output_tokens: Option<u32>,
}

impl std::fmt::Debug for LlmClient {
    // Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// `{base}/v1/chat/completions`; a base that already ends in `/v1` gets no
/// second one.
pub fn endpoint(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}/chat/completions")
    } else {
        format!("{base}/v1/chat/completions")
    }
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<Message>,
    delta: Option<Message>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

impl LlmClient {
    pub fn new(
        base_url: &str,
        model: &str,
        key: Option<String>,
        timeout: Duration,
        max_output_tokens: Option<u32>,
    ) -> Result<Self, LlmError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(crate::fetch::default_user_agent())
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .build()
            .map_err(|e| LlmError::Permanent(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            root: base_url
                .trim_end_matches('/')
                .trim_end_matches("/v1")
                .to_string(),
            endpoint: endpoint(base_url),
            model: model.to_string(),
            key,
            max_output_tokens,
        })
    }

    /// The chat-completions URL (for messages; it holds no secret).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn body(
        &self,
        system: &str,
        user: &str,
        stream: bool,
        max_tokens: Option<u32>,
    ) -> serde_json::Value {
        let mut body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "temperature": 0,
        });
        if let Some(n) = max_tokens.or(self.max_output_tokens) {
            body["max_tokens"] = json!(n);
        }
        if stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    async fn send(&self, body: serde_json::Value) -> Result<reqwest::Response, LlmError> {
        let mut req = self
            .http
            .post(&self.endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| transport_error(e, &self.endpoint))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let text = resp.text().await.unwrap_or_default();
        let reason = format!("HTTP {status}: {}", server_message(&text));
        if let Some((context, prompt)) = overflow(status, &text) {
            return Err(LlmError::Overflow {
                reason,
                context,
                prompt,
            });
        }
        if status == 408 || status == 429 || status >= 500 {
            Err(LlmError::Transient {
                reason,
                retry_after,
            })
        } else {
            Err(LlmError::Permanent(reason))
        }
    }

    /// One chat completion, asking for at most `max_tokens` (else the
    /// client's `--llm-max-output-tokens`).
    pub async fn complete(
        &self,
        system: &str,
        user: &str,
        max_tokens: Option<u32>,
    ) -> Result<Completion, LlmError> {
        let resp = self
            .send(self.body(system, user, false, max_tokens))
            .await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error(e, &self.endpoint))?;
        let parsed: ChatResponse = serde_json::from_slice(&bytes).map_err(|e| {
            LlmError::Permanent(format!(
                "malformed response ({e}): {}",
                snippet(&String::from_utf8_lossy(&bytes))
            ))
        })?;
        let choice = parsed.choices.into_iter().next();
        let finish_reason = choice.as_ref().and_then(|c| c.finish_reason.clone());
        let text = choice
            .and_then(|c| c.message)
            .and_then(|m| m.content)
            .ok_or_else(|| {
                LlmError::Permanent("malformed response: no choices[0].message.content".into())
            })?;
        let usage = parsed.usage.unwrap_or(Usage {
            prompt_tokens: 0,
            completion_tokens: 0,
        });
        Ok(Completion {
            text: text.trim().to_string(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            finish_reason,
        })
    }

    /// One chat completion streamed as server-sent events; `on_token` sees
    /// each piece of text as it arrives.
    pub async fn complete_stream(
        &self,
        system: &str,
        user: &str,
        mut on_token: impl FnMut(&str),
    ) -> Result<Completion, LlmError> {
        let resp = self.send(self.body(system, user, true, None)).await?;
        let mut stream = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Completion::default();
        let mut done = false;
        while !done {
            let Some(chunk) = stream.next().await else {
                break;
            };
            buf.extend_from_slice(&chunk.map_err(|e| transport_error(e, &self.endpoint))?);
            while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line);
                let Some(data) = line.trim().strip_prefix("data:") else {
                    continue; // comments, event names, blank separators
                };
                let data = data.trim();
                if data == "[DONE]" {
                    done = true;
                    break;
                }
                let event: ChatResponse = serde_json::from_str(data).map_err(|e| {
                    LlmError::Permanent(format!("malformed stream event ({e}): {}", snippet(data)))
                })?;
                let choice = event.choices.into_iter().next();
                if let Some(r) = choice.as_ref().and_then(|c| c.finish_reason.clone()) {
                    out.finish_reason = Some(r);
                }
                if let Some(piece) = choice
                    .and_then(|c| c.delta.or(c.message))
                    .and_then(|m| m.content)
                {
                    on_token(&piece);
                    out.text.push_str(&piece);
                }
                if let Some(u) = event.usage {
                    out.prompt_tokens = u.prompt_tokens;
                    out.completion_tokens = u.completion_tokens;
                }
            }
        }
        if !done {
            return Err(LlmError::Transient {
                reason: "the stream ended before [DONE]".into(),
                retry_after: None,
            });
        }
        out.text = out.text.trim().to_string();
        Ok(out)
    }
}

/// What a server says about the model it serves, where it says so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    /// Tokens of context one request may use, and where that was read.
    pub context: Option<(usize, &'static str)>,
    /// The server counts tokens itself at `{root}/tokenize` (llama.cpp,
    /// vLLM).
    pub tokenize: bool,
    /// Requests the server works on at once (llama.cpp's `total_slots`);
    /// more would only queue there, their time counting against the
    /// client's timeout.
    pub slots: Option<usize>,
}

impl LlmClient {
    async fn get_json(
        &self,
        url: String,
        body: Option<serde_json::Value>,
    ) -> Option<serde_json::Value> {
        let mut req = match &body {
            Some(b) => self
                .http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string()),
            None => self.http.get(&url),
        };
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        let resp = req.timeout(Duration::from_secs(10)).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let bytes = resp.bytes().await.ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Asks the server what it can do: llama.cpp's `/props`
    /// (`default_generation_settings.n_ctx`: the context of one slot),
    /// `/v1/models` (vLLM's `max_model_len`, or an `n_ctx` /
    /// `context_length` of the model), Ollama's `/api/show` (`num_ctx`, else
    /// its default of 2048: Ollama cuts longer prompts silently), and
    /// whether `/tokenize` counts tokens. Answers it cannot read are
    /// skipped; nothing here fails.
    pub async fn probe(&self) -> ServerInfo {
        let mut info = ServerInfo::default();
        let as_ctx = |v: &serde_json::Value| v.as_u64().filter(|&n| n > 0).map(|n| n as usize);
        if let Some(props) = self.get_json(format!("{}/props", self.root), None).await {
            info.slots = as_ctx(&props["total_slots"]);
            if let Some(n) = as_ctx(&props["default_generation_settings"]["n_ctx"])
                .or_else(|| as_ctx(&props["n_ctx"]))
            {
                info.context = Some((n, "/props"));
            }
        }
        if info.context.is_none()
            && let Some(models) = self
                .get_json(format!("{}/v1/models", self.root), None)
                .await
        {
            let list = models["data"].as_array().cloned().unwrap_or_default();
            let entry = list
                .iter()
                .find(|m| m["id"].as_str() == Some(self.model.as_str()))
                .or_else(|| (list.len() == 1).then(|| &list[0]));
            if let Some(m) = entry {
                let n = as_ctx(&m["max_model_len"])
                    .or_else(|| as_ctx(&m["n_ctx"]))
                    .or_else(|| as_ctx(&m["meta"]["n_ctx"]))
                    .or_else(|| as_ctx(&m["context_length"]))
                    .or_else(|| as_ctx(&m["context_window"]));
                info.context = n.map(|n| (n, "/v1/models"));
            }
        }
        if info.context.is_none()
            && let Some(show) = self
                .get_json(
                    format!("{}/api/show", self.root),
                    Some(json!({"model": self.model, "name": self.model})),
                )
                .await
        {
            let num_ctx = show["parameters"].as_str().and_then(|p| {
                p.lines().find_map(|l| {
                    let mut w = l.split_whitespace();
                    (w.next() == Some("num_ctx")).then(|| w.next()?.parse::<usize>().ok())?
                })
            });
            info.context = Some((num_ctx.unwrap_or(2048), "/api/show"));
        }
        info.tokenize = self.server_count("Hello, world.").await.is_some();
        info
    }

    /// Whether the server answers HTTP at all (any status).
    pub async fn reachable(&self) -> bool {
        self.http
            .get(format!("{}/v1/models", self.root))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .is_ok()
    }

    /// The tokens of `text` by the server's own tokenizer (`POST
    /// {root}/tokenize`, llama.cpp's `content` and vLLM's `prompt` forms),
    /// or `None` if it cannot say.
    pub async fn server_count(&self, text: &str) -> Option<usize> {
        let body =
            json!({"content": text, "prompt": text, "model": self.model, "add_special": false});
        let v = self
            .get_json(format!("{}/tokenize", self.root), Some(body))
            .await?;
        v["tokens"]
            .as_array()
            .map(Vec::len)
            .or_else(|| v["count"].as_u64().map(|n| n as usize))
    }
}

/// A request that got no answer. Connection refused and names that do not
/// resolve are [`LlmError::Unreachable`]; timeouts and other failures are
/// worth another try.
fn transport_error(e: reqwest::Error, endpoint: &str) -> LlmError {
    if e.is_connect() {
        let fetch = crate::fetch::FetchError::from_reqwest(e, false);
        if matches!(fetch.reason(), "connection_refused" | "dns") {
            return LlmError::Unreachable(format!("{endpoint}: {fetch}"));
        }
        return LlmError::Transient {
            reason: format!("{endpoint}: {fetch}"),
            retry_after: None,
        };
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    LlmError::Transient {
        reason: format!("{endpoint}: {kind}"),
        retry_after: None,
    }
}

/// Whether a 400-class answer says the request was longer than the model's
/// context, and (when it says so) the context and the request's prompt
/// tokens as the server counted them. The servers' wordings:
/// llama.cpp (`"type": "exceed_context_size_error"`, `"n_ctx": 1024`,
/// "request (6513 tokens) exceeds the available context size (1024
/// tokens)"), vLLM and OpenAI ("This model's maximum context length is
/// 2048 tokens", `"code": "context_length_exceeded"`).
pub fn overflow(status: u16, body: &str) -> Option<(Option<usize>, Option<usize>)> {
    if !(400..500).contains(&status) || status == 429 {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let is = lower.contains("exceed_context_size")
        || lower.contains("context_length_exceeded")
        || lower.contains("maximum context length")
        || lower.contains("exceeds the available context size")
        || lower.contains("context size");
    if !is {
        return None;
    }
    // llama.cpp's own fields.
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j["error"][name].as_u64().or_else(|| j[name].as_u64()))
            .map(|n| n as usize)
    };
    let number_after = |marker: &str| {
        let at = lower.find(marker)? + marker.len();
        let digits: String = lower[at..]
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse::<usize>().ok()
    };
    let context = field("n_ctx")
        .or_else(|| number_after("maximum context length is"))
        .or_else(|| number_after("available context size"));
    let prompt = field("n_prompt_tokens")
        .or_else(|| number_after("request ("))
        .or_else(|| {
            // vLLM: "(6200 in the messages, 400 in the completion)".
            let at = lower.find(" in the messages")?;
            let digits: String = lower[..at]
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            digits.parse().ok()
        });
    Some((context, prompt))
}

/// The `error.message` of an OpenAI-style error body, else the body's start.
fn server_message(body: &str) -> String {
    #[derive(Deserialize)]
    struct Inner {
        message: Option<String>,
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        error: Option<serde_json::Value>,
    }
    if let Ok(ErrorBody { error: Some(e) }) = serde_json::from_str::<ErrorBody>(body) {
        if let Some(s) = e.as_str() {
            return snippet(s);
        }
        if let Ok(Inner { message: Some(m) }) = serde_json::from_value::<Inner>(e) {
            return snippet(&m);
        }
    }
    snippet(body)
}

fn snippet(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint("http://localhost:11434"),
            "http://localhost:11434/v1/chat/completions"
        );
        assert_eq!(
            endpoint("http://localhost:11434/v1/"),
            "http://localhost:11434/v1/chat/completions"
        );
        assert_eq!(
            endpoint("https://api.openai.com"),
            "https://api.openai.com/v1/chat/completions"
        );
    }

    #[test]
    fn context_overflows_in_each_servers_wording() {
        let llama = r#"{"error":{"code":400,"message":"request (6513 tokens) exceeds the available context size (1024 tokens), try increasing it","type":"exceed_context_size_error","n_prompt_tokens":6513,"n_ctx":1024}}"#;
        assert_eq!(overflow(400, llama), Some((Some(1024), Some(6513))));
        let vllm = r#"{"object":"error","message":"This model's maximum context length is 2048 tokens. However, you requested 6600 tokens (6200 in the messages, 400 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}"#;
        assert_eq!(overflow(400, vllm), Some((Some(2048), Some(6200))));
        let openai = r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        assert_eq!(overflow(400, openai), Some((Some(8192), None)));
        assert_eq!(
            overflow(400, r#"{"error":{"code":"context_length_exceeded"}}"#),
            Some((None, None))
        );
        assert_eq!(overflow(400, r#"{"error":"model not found"}"#), None);
        assert_eq!(overflow(500, llama), None);
    }

    #[test]
    fn server_messages() {
        assert_eq!(
            server_message(r#"{"error":{"message":"model not found","type":"x"}}"#),
            "model not found"
        );
        assert_eq!(server_message(r#"{"error":"bad key"}"#), "bad key");
        assert_eq!(server_message("plain text"), "plain text");
    }
}
