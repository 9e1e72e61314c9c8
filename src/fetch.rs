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
use sha2::{Digest, Sha256};
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
    /// Keep a cookie jar (off with `--no-cookies`). Crawls stored before
    /// it existed take it on.
    #[serde(default = "yes")]
    pub cookies: bool,
}

fn yes() -> bool {
    true
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            user_agent: default_user_agent(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(20),
            timeout: Duration::from_secs(30),
            max_body_size: 10 * 1024 * 1024,
            cookies: true,
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
    /// The `Location` header of a 3xx, read as bytes: UTF-8, else Latin-1
    /// (see [`header_text`]); resolve it against the URL.
    pub location: Option<String>,
    /// The `Refresh` header (`0; url=/next/`), read like `location`.
    pub refresh: Option<String>,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// `Retry-After` (of a 429 or 503), as sent.
    pub retry_after: Option<String>,
    /// Every `X-Robots-Tag` header, joined with ", ".
    pub x_robots_tag: Option<String>,
    /// The response carried a `Set-Cookie` header.
    pub sets_cookie: bool,
    /// The body, or its first bytes when the caller asked to keep fewer
    /// (see [`Fetcher::get_page`]).
    pub body: Vec<u8>,
    /// Body bytes read (after decompression), kept or not.
    pub size: u64,
    /// SHA-256 (hex) of every body byte read.
    pub content_hash: String,
    /// The body was longer than `max_body_size` and was cut.
    pub truncated: bool,
    pub elapsed: Duration,
}

/// The text a refused resolution carries through reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error(
    "{host} is {ip}, an internal address (name the host with --allow-host or use --allow-private-addresses)"
)]
pub struct AddressBlocked {
    host: String,
    ip: std::net::IpAddr,
}

/// Whether an address is one a crawler must not be steered to: loopback,
/// private (RFC 1918, unique local), link-local (incl. 169.254.169.254),
/// carrier-grade NAT, unspecified, broadcast, multicast.
pub fn is_internal(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Resolves host names and refuses internal addresses for every host not
/// named by the user: checked when connecting, after DNS, so a public name
/// that resolves (or rebinds) to 10.0.0.1 is caught, for every redirect
/// hop too.
struct GuardedResolver {
    /// Hosts the user named (seeds, exact `--allow-host`): not checked.
    trusted: std::collections::HashSet<String>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let trusted = self.trusted.contains(&host);
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<std::net::SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| trusted || !is_internal(a.ip()))
                .collect();
            if allowed.is_empty() && !addrs.is_empty() {
                let ip = addrs[0].ip();
                let err: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(AddressBlocked { host, ip });
                return Err(err);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Which hosts may resolve to internal addresses.
#[derive(Debug, Clone, Default)]
pub enum AddressPolicy {
    /// No check (private addresses allowed).
    #[default]
    Any,
    /// Only these hosts may.
    TrustedHosts(Vec<String>),
}

/// Why a request produced no response.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out")]
    Timeout,
    /// No connection: `kind` is the reason stored (see
    /// [`FetchError::reason`]), `detail` the error chain.
    #[error("{}: {detail}", connect_summary(kind))]
    Connect { kind: &'static str, detail: String },
    #[error("reading the body failed: {0}")]
    Body(String),
    #[error("request failed: {0}")]
    Request(String),
    /// The host resolves to an internal address it may not use.
    #[error("address blocked: {0}")]
    Blocked(String),
}

impl FetchError {
    /// The reason recorded in the store: `timeout`, `connection_refused`,
    /// `dns` (the name does not resolve), `tls` (no TLS handshake, e.g.
    /// `https://` to a plain-HTTP port), `connect_timeout` (no connection,
    /// TCP or TLS, within `--connect-timeout`), `connect` (another failure
    /// to connect), `body`, `request`, `blocked_address`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect { kind, .. } => kind,
            Self::Body(_) => "body",
            Self::Request(_) => "request",
            Self::Blocked(_) => "blocked_address",
        }
    }

    /// Whether trying again later could succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Request(_) | Self::Blocked(_))
    }

    pub(crate) fn from_reqwest(e: reqwest::Error, in_body: bool) -> Self {
        // The guard's refusal comes back wrapped by the connector.
        let mut src: Option<&dyn std::error::Error> = Some(&e);
        while let Some(s) = src {
            if let Some(b) = s.downcast_ref::<AddressBlocked>() {
                return Self::Blocked(b.to_string());
            }
            src = s.source();
        }
        let detail = error_chain(&e);
        if e.is_timeout() && e.is_connect() {
            // No connection (TCP or TLS) within --connect-timeout: as
            // unreachable as a refusal, not a slow answer.
            Self::Connect {
                kind: "connect_timeout",
                detail,
            }
        } else if e.is_timeout() {
            Self::Timeout
        } else if e.is_connect() {
            Self::Connect {
                kind: connect_kind(&e, &detail),
                detail,
            }
        } else if in_body || e.is_body() || e.is_decode() {
            Self::Body(detail)
        } else {
            Self::Request(detail)
        }
    }
}

/// Which failure to connect an error is: a TLS error anywhere in its
/// chain is `tls`; an I/O error "connection refused", `connection_refused`;
/// a failed name lookup, `dns`; anything else, `connect`.
fn connect_kind(e: &reqwest::Error, detail: &str) -> &'static str {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return "tls";
        }
        // An I/O error's `source` skips the error it wraps: unwrap by hand.
        let mut io = s.downcast_ref::<std::io::Error>();
        while let Some(e) = io {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                return "connection_refused";
            }
            let inner = e.get_ref();
            if inner.is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some()) {
                return "tls";
            }
            io = inner.and_then(|i| i.downcast_ref::<std::io::Error>());
        }
        src = s.source();
    }
    // hyper-util names its resolver's failures only in text.
    if detail.contains("dns error") {
        "dns"
    } else {
        "connect"
    }
}

/// The start of a connection failure's message.
fn connect_summary(kind: &str) -> &'static str {
    match kind {
        "connection_refused" => "connection refused",
        "dns" => "host name not found",
        "tls" => "TLS handshake failed",
        "connect_timeout" => "no connection within --connect-timeout",
        _ => "connection failed",
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
    /// With a guard: the hosts that may be internal. IP-literal URLs never
    /// reach the resolver, so they are checked here.
    trusted: Option<std::sync::Arc<std::collections::HashSet<String>>>,
}

impl Fetcher {
    pub fn new(cfg: &FetchConfig) -> Result<Self, FetchError> {
        Self::with_policy(cfg, AddressPolicy::Any)
    }

    /// A client that refuses internal addresses except for trusted hosts.
    pub fn with_policy(cfg: &FetchConfig, policy: AddressPolicy) -> Result<Self, FetchError> {
        Self::build(cfg, policy, None)
    }

    /// A client with an address policy and, if given, a cookie jar that
    /// every request reads and every response's `Set-Cookie` fills.
    pub fn build(
        cfg: &FetchConfig,
        policy: AddressPolicy,
        jar: Option<std::sync::Arc<crate::cookies::Jar>>,
    ) -> Result<Self, FetchError> {
        // Several crypto backends could be linked in; say which one to use.
        // An error only means one was installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            header::HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
        );
        // No proxy from the environment: a proxy would resolve names
        // itself, out of the address guard's sight.
        let mut builder = reqwest::Client::builder().no_proxy();
        let mut trusted = None;
        if let AddressPolicy::TrustedHosts(hosts) = policy {
            let set: std::collections::HashSet<String> = hosts
                .into_iter()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect();
            builder = builder.dns_resolver(std::sync::Arc::new(GuardedResolver {
                trusted: set.clone(),
            }));
            trusted = Some(std::sync::Arc::new(set));
        }
        if let Some(jar) = jar {
            builder = builder.cookie_provider(jar);
        }
        let client = builder
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
            trusted,
        })
    }

    /// GETs `url` (one hop, no redirects followed).
    pub async fn get(&self, url: &Url) -> Result<Response, FetchError> {
        self.get_limited(url, self.max_body).await
    }

    /// GETs `url`, reading up to `--max-body-size` of its body but keeping
    /// only the first `keep(status, content_type)` bytes in memory: the rest is
    /// hashed and counted, not held. A page whose parse stops at 4 MiB
    /// need not hold 10 MiB while it waits.
    ///
    /// With `validators` (a stored page's ETag and Last-Modified), the
    /// request is conditional: an unchanged page answers 304, no body.
    pub async fn get_page(
        &self,
        url: &Url,
        validators: Option<(&str, &str)>,
        keep: impl Fn(u16, Option<&str>) -> usize,
    ) -> Result<Response, FetchError> {
        self.fetch(url, self.max_body, validators, keep).await
    }

    /// GETs `url`, reading at most `max_body` bytes of its body.
    pub async fn get_limited(&self, url: &Url, max_body: u64) -> Result<Response, FetchError> {
        self.fetch(url, max_body, None, |_, _| usize::MAX).await
    }

    async fn fetch(
        &self,
        url: &Url,
        max_body: u64,
        validators: Option<(&str, &str)>,
        keep: impl Fn(u16, Option<&str>) -> usize,
    ) -> Result<Response, FetchError> {
        if let Some(trusted) = &self.trusted {
            let ip = match url.host() {
                Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
                Some(url::Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
                _ => None,
            };
            if let Some(ip) = ip
                && is_internal(ip)
                && !url.host_str().is_some_and(|h| trusted.contains(h))
            {
                let host = url.host_str().unwrap_or_default().to_string();
                return Err(FetchError::Blocked(AddressBlocked { host, ip }.to_string()));
            }
        }
        let started = Instant::now();
        let mut req = self.client.get(url.as_str());
        if let Some((etag, last_modified)) = validators {
            // An empty value is a validator the page did not have.
            if !etag.is_empty() {
                req = req.header(header::IF_NONE_MATCH, etag);
            }
            if !last_modified.is_empty() {
                req = req.header(header::IF_MODIFIED_SINCE, last_modified);
            }
        }
        let resp = req
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
            h.get(header::LOCATION).map(|v| header_text(v.as_bytes()))
        } else {
            None
        };
        let refresh = h.get("refresh").map(|v| header_text(v.as_bytes()));
        // Every Content-Type counts, as in browsers: the last valid one.
        let content_type = crate::parse::mime::extract(
            h.get_all(header::CONTENT_TYPE).iter().map(|v| v.as_bytes()),
        );
        let etag = text(header::ETAG);
        let last_modified = text(header::LAST_MODIFIED);
        let retry_after = text(header::RETRY_AFTER);
        let tags: Vec<&str> = h
            .get_all("x-robots-tag")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let x_robots_tag = (!tags.is_empty()).then(|| tags.join(", "));
        let sets_cookie = h.contains_key(header::SET_COOKIE);

        let keep = (keep(status, content_type.as_deref()) as u64).min(max_body);
        let mut body = Vec::new();
        let mut size = 0u64;
        let mut hash = Sha256::new();
        let mut truncated = false;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| FetchError::from_reqwest(e, true))?;
            let room = max_body - size;
            let chunk = if chunk.len() as u64 > room {
                truncated = true;
                &chunk[..room as usize]
            } else {
                &chunk[..]
            };
            hash.update(chunk);
            let kept = (keep.saturating_sub(size) as usize).min(chunk.len());
            append(&mut body, &chunk[..kept], keep);
            size += chunk.len() as u64;
            if truncated {
                break;
            }
        }
        Ok(Response {
            status,
            location,
            refresh,
            content_type,
            etag,
            last_modified,
            retry_after,
            x_robots_tag,
            sets_cookie,
            body,
            size,
            content_hash: hex(&hash.finalize()),
            truncated,
            elapsed: started.elapsed(),
        })
    }
}

/// A header value that carries a URL, as text. Servers send raw UTF-8
/// (`Location: /café`) where RFC 9110 §5.5 asks for ASCII; browsers read
/// such bytes as UTF-8 when they are valid UTF-8 and as Latin-1 otherwise,
/// and the URL parser then percent-encodes them (`/caf%C3%A9`). Leading
/// and trailing whitespace is dropped.
pub fn header_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.trim().to_string(),
        // Latin-1: every byte is the code point of the same number.
        Err(_) => bytes
            .iter()
            .map(|&b| b as char)
            .collect::<String>()
            .trim()
            .to_string(),
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Appends a chunk to a body of at most `max` bytes, doubling its capacity
/// but never past `max`: `Vec`'s own doubling would hold 16 MiB for a body
/// cut at 10 MiB.
fn append(body: &mut Vec<u8>, chunk: &[u8], max: u64) {
    let need = body.len() + chunk.len();
    if need > body.capacity() {
        let max = usize::try_from(max).unwrap_or(usize::MAX).max(need);
        let want = (body.capacity() * 2).clamp(need, max);
        body.reserve_exact(want - body.len());
    }
    body.extend_from_slice(chunk);
}

#[cfg(test)]
mod address_tests {
    use super::is_internal;

    #[test]
    fn bodies_grow_to_their_cap_and_no_further() {
        let mut body = Vec::new();
        let chunk = [7u8; 16 * 1024];
        for _ in 0..640 {
            super::append(&mut body, &chunk, 10 << 20);
        }
        assert_eq!(body.len(), 10 << 20);
        assert_eq!(body.capacity(), 10 << 20);
        // Small bodies still grow by doubling.
        let mut small = Vec::new();
        super::append(&mut small, b"abc", 10 << 20);
        super::append(&mut small, b"defg", 10 << 20);
        assert_eq!(small, b"abcdefg");
        assert!(small.capacity() >= 7 && small.capacity() <= 16);
    }

    #[test]
    fn header_urls_are_read_as_utf8_else_latin1() {
        assert_eq!(super::header_text(b" /caf\xc3\xa9 "), "/café");
        assert_eq!(super::header_text(b"/caf\xe9"), "/café");
        assert_eq!(super::header_text(b"/plain"), "/plain");
    }

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::3",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }
}
