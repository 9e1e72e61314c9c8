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
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LlmError {
    /// Worth another try, after `retry_after` if the server said.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Trying again would give the same answer.
    #[error("{0}")]
    Permanent(String),
}

/// One endpoint, one model.
#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
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
            endpoint: endpoint(base_url),
            model: model.to_string(),
            key,
            max_output_tokens,
        })
    }

    fn body(&self, system: &str, user: &str, stream: bool) -> serde_json::Value {
        let mut body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "temperature": 0,
        });
        if let Some(n) = self.max_output_tokens {
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
        let resp = req.send().await.map_err(transport_error)?;
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
        if status == 408 || status == 429 || status >= 500 {
            Err(LlmError::Transient {
                reason,
                retry_after,
            })
        } else {
            Err(LlmError::Permanent(reason))
        }
    }

    /// One chat completion.
    pub async fn complete(&self, system: &str, user: &str) -> Result<Completion, LlmError> {
        let resp = self.send(self.body(system, user, false)).await?;
        let bytes = resp.bytes().await.map_err(transport_error)?;
        let parsed: ChatResponse = serde_json::from_slice(&bytes).map_err(|e| {
            LlmError::Permanent(format!(
                "malformed response ({e}): {}",
                snippet(&String::from_utf8_lossy(&bytes))
            ))
        })?;
        let text = parsed
            .choices
            .into_iter()
            .next()
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
        let resp = self.send(self.body(system, user, true)).await?;
        let mut stream = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Completion::default();
        let mut done = false;
        while !done {
            let Some(chunk) = stream.next().await else {
                break;
            };
            buf.extend_from_slice(&chunk.map_err(transport_error)?);
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
                if let Some(piece) = event
                    .choices
                    .into_iter()
                    .next()
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

fn transport_error(e: reqwest::Error) -> LlmError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's message names the URL, never headers.
    LlmError::Transient {
        reason: format!("{kind}: {e}"),
        retry_after: None,
    }
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
    fn server_messages() {
        assert_eq!(
            server_message(r#"{"error":{"message":"model not found","type":"x"}}"#),
            "model not found"
        );
        assert_eq!(server_message(r#"{"error":"bad key"}"#), "bad key");
        assert_eq!(server_message("plain text"), "plain text");
    }
}
