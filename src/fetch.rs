//! Fetching: one HTTP GET, one hop.
//!
//! In: a canonical URL. Out: a [`Response`] (status, headers that matter, a
//! body read as a stream under a hard cap on decompressed bytes) or a
//! [`FetchError`] with a stable reason string.
//!
//! Redirects are *not* followed here: a 3xx comes back with its `Location`
//! so the crawler can put the next hop through scope, dedup and politeness
//! like any other URL.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{self, HeaderMap};
use url::Url;

/// HTTP client settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FetchConfig {
    pub user_agent: String,
    /// Time to establish a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Longest wait for any read (headers or the next body chunk).
    pub read_timeout: Duration,
    /// Whole request, first byte to last.
    pub timeout: Duration,
    /// Cap on the decompressed body; the rest is not read.
    pub max_body_size: u64,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            user_agent: default_user_agent(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(20),
            timeout: Duration::from_secs(30),
            max_body_size: 10 * 1024 * 1024,
        }
    }
}

pub fn default_user_agent() -> String {
    format!("trawl/{}", env!("CARGO_PKG_VERSION"))
}

/// A response to one request.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The `Location` header of a 3xx, as sent (resolve against the URL).
    pub location: Option<String>,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// `Retry-After` (of a 429 or 503), as sent.
    pub retry_after: Option<String>,
    /// Every `X-Robots-Tag` header, joined with ", ".
    pub x_robots_tag: Option<String>,
    pub body: Vec<u8>,
    /// The body was longer than `max_body_size` and was cut.
    pub truncated: bool,
    pub elapsed: Duration,
}

/// Why a request produced no response.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("reading the body failed: {0}")]
    Body(String),
    #[error("request failed: {0}")]
    Request(String),
}

impl FetchError {
    /// The reason recorded in the store.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect(_) => "connect",
            Self::Body(_) => "body",
            Self::Request(_) => "request",
        }
    }

    /// Whether trying again later could succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Request(_))
    }

    fn from_reqwest(e: reqwest::Error, in_body: bool) -> Self {
        let detail = error_chain(&e);
        if e.is_timeout() {
            Self::Timeout
        } else if e.is_connect() {
            Self::Connect(detail)
        } else if in_body || e.is_body() || e.is_decode() {
            Self::Body(detail)
        } else {
            Self::Request(detail)
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = inner.source();
    }
    s
}

/// The shared HTTP client.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    max_body: u64,
}

impl Fetcher {
    pub fn new(cfg: &FetchConfig) -> Result<Self, FetchError> {
        // Several crypto backends could be linked in; say which one to use.
        // An error only means one was installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            header::HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
        );
        let client = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .timeout(cfg.timeout)
            .gzip(true)
            .brotli(true)
            .deflate(true)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(16)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| FetchError::Request(error_chain(&e)))?;
        Ok(Self {
            client,
            max_body: cfg.max_body_size,
        })
    }

    /// GETs `url` (one hop, no redirects followed).
    pub async fn get(&self, url: &Url) -> Result<Response, FetchError> {
        self.get_limited(url, self.max_body).await
    }

    /// GETs `url`, reading at most `max_body` bytes of its body.
    pub async fn get_limited(&self, url: &Url, max_body: u64) -> Result<Response, FetchError> {
        let started = Instant::now();
        let resp = self
            .client
            .get(url.as_str())
            .send()
            .await
            .map_err(|e| FetchError::from_reqwest(e, false))?;
        let status = resp.status().as_u16();
        let h = resp.headers();
        let text = |name: header::HeaderName| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_string())
        };
        let location = if (300..400).contains(&status) {
            text(header::LOCATION)
        } else {
            None
        };
        let content_type = text(header::CONTENT_TYPE);
        let etag = text(header::ETAG);
        let last_modified = text(header::LAST_MODIFIED);
        let retry_after = text(header::RETRY_AFTER);
        let tags: Vec<&str> = h
            .get_all("x-robots-tag")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let x_robots_tag = (!tags.is_empty()).then(|| tags.join(", "));

        let mut body = Vec::new();
        let mut truncated = false;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| FetchError::from_reqwest(e, true))?;
            let room = max_body.saturating_sub(body.len() as u64) as usize;
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            location,
            content_type,
            etag,
            last_modified,
            retry_after,
            x_robots_tag,
            body,
            truncated,
            elapsed: started.elapsed(),
        })
    }
}
