//! URL canonicalization and fingerprints.
//!
//! In: a link as written on a page (`href`) and the URL it is resolved against.
//! Out: the canonical [`Url`] the frontier deduplicates on, and its 64-bit
//! [`fingerprint`], which is also the URL's primary key in the store.
//!
//! Canonicalization is conservative: it only applies rewrites that cannot
//! change which resource a server returns (RFC 3986 §6.2.2 syntax-based
//! normalization plus the WHATWG parser's own), never "semantic" guesses such
//! as sorting query parameters or stripping `www.`.

use url::Url;

/// Resolves `href` against `base` and canonicalizes the result.
///
/// Returns `None` for links that are not crawlable: other schemes
/// (`mailto:`, `javascript:`, `data:`, `tel:`, …), empty or unparsable
/// references, and URLs without a host.
pub fn resolve(base: &Url, href: &str) -> Option<Url> {
    let href = href.trim_matches(|c: char| c.is_ascii_whitespace() || c.is_control());
    if href.is_empty() {
        return None;
    }
    // Cheap early exit for the non-http schemes that dominate real pages, so
    // they never pay for a full parse.
    if let Some(colon) = href.find(':') {
        let scheme = &href[..colon];
        if !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
            && !scheme.eq_ignore_ascii_case("http")
            && !scheme.eq_ignore_ascii_case("https")
        {
            return None;
        }
    }
    let url = base.join(href).ok()?;
    canonicalize(url)
}

/// Parses an absolute URL (a seed, a redirect target) and canonicalizes it.
pub fn parse(input: &str) -> Result<Url, CanonError> {
    let url = Url::parse(input.trim()).map_err(|e| CanonError::Invalid(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(CanonError::UnsupportedScheme(other.to_string())),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(CanonError::Invalid("missing host".into()));
    }
    canonicalize(url).ok_or_else(|| CanonError::Invalid("not a crawlable URL".into()))
}

/// Why an absolute URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonError {
    #[error("invalid URL: {0}")]
    Invalid(String),
    #[error("unsupported scheme `{0}` (only http and https are crawled)")]
    UnsupportedScheme(String),
}

/// Canonicalizes an already parsed URL. `None` when the URL is not http(s)
/// or has no host.
pub fn canonicalize(mut url: Url) -> Option<Url> {
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    // The WHATWG parser has already lower-cased scheme and host, removed
    // default ports, resolved dot-segments and percent-encoded what must be.
    url.set_fragment(None);

    if let Some(host) = url.host_str()
        && host.len() > 1
        && host.ends_with('.')
    {
        // "example.com." and "example.com" are the same host for DNS and
        // every server that matters; keep one form.
        let trimmed = host.trim_end_matches('.').to_string();
        if trimmed.is_empty() || url.set_host(Some(&trimmed)).is_err() {
            return None;
        }
    }
    url.host_str().filter(|h| !h.is_empty())?;

    let path = url.path();
    if path.contains('%') {
        let normalized = normalize_percent(path);
        if normalized != path {
            url.set_path(&normalized);
        }
    }
    match url.query() {
        Some("") => url.set_query(None),
        Some(q) if q.contains('%') => {
            let normalized = normalize_percent(q);
            if normalized != q {
                url.set_query(Some(&normalized));
            }
        }
        _ => {}
    }
    Some(url)
}

/// Decodes percent-escapes of unreserved characters (RFC 3986 §2.3) and
/// upper-cases the hex digits of every other escape (§6.2.2.1).
pub(crate) fn normalize_percent(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            let decoded = h << 4 | l;
            if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
                out.push(decoded as char);
            } else {
                out.push('%');
                out.push(bytes[i + 1].to_ascii_uppercase() as char);
                out.push(bytes[i + 2].to_ascii_uppercase() as char);
            }
            i += 3;
            continue;
        }
        // Copy the run up to the next '%' in one go (keeps UTF-8 intact).
        let next = s[i + 1..].find('%').map_or(s.len(), |p| p + i + 1);
        out.push_str(&s[i..next]);
        i = next;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The 64-bit fingerprint of a canonical URL: its identity in the frontier's
/// seen-set and its primary key in the store. xxh3 is fixed by its
/// specification, so fingerprints stay valid across trawl versions. With
/// 64 bits, a crawl of 10 million URLs has a collision chance of about 3 in a
/// million (the same trade Heritrix makes).
pub fn fingerprint(url: &Url) -> u64 {
    xxhash_rust::xxh3::xxh3_64(url.as_str().as_bytes())
}

/// The politeness key of a URL: scheme, host and port, as RFC 9309 scopes a
/// robots.txt. Rate limits and per-host concurrency apply per origin.
pub fn origin_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port_or_known_default() {
        Some(port) => format!("{}://{}:{}", url.scheme(), host, port),
        None => format!("{}://{}", url.scheme(), host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (base, href, expected canonical URL or None when not crawlable)
    const CASES: &[(&str, &str, Option<&str>)] = &[
        // scheme and host case
        (
            "http://a.test/",
            "HTTP://Example.COM/Path",
            Some("http://example.com/Path"),
        ),
        (
            "http://a.test/",
            "https://EXAMPLE.com",
            Some("https://example.com/"),
        ),
        // default ports
        (
            "http://a.test/",
            "http://example.com:80/x",
            Some("http://example.com/x"),
        ),
        (
            "http://a.test/",
            "https://example.com:443/x",
            Some("https://example.com/x"),
        ),
        (
            "http://a.test/",
            "http://example.com:8080/x",
            Some("http://example.com:8080/x"),
        ),
        (
            "http://a.test/",
            "https://example.com:80/x",
            Some("https://example.com:80/x"),
        ),
        // fragments
        (
            "http://a.test/",
            "http://example.com/p#top",
            Some("http://example.com/p"),
        ),
        ("http://a.test/p", "#section", Some("http://a.test/p")),
        ("http://a.test/p?q=1", "#", Some("http://a.test/p?q=1")),
        // empty query
        (
            "http://a.test/",
            "http://example.com/p?",
            Some("http://example.com/p"),
        ),
        (
            "http://a.test/",
            "http://example.com/p?#f",
            Some("http://example.com/p"),
        ),
        // dot segments
        (
            "http://a.test/",
            "http://example.com/a/./b/../c",
            Some("http://example.com/a/c"),
        ),
        ("http://a.test/a/b/c", "../d", Some("http://a.test/a/d")),
        ("http://a.test/a/b/c", "./d", Some("http://a.test/a/b/d")),
        (
            "http://a.test/a/b/c",
            "../../../../d",
            Some("http://a.test/d"),
        ),
        ("http://a.test/a/b/", "..", Some("http://a.test/a/")),
        (
            "http://a.test/",
            "http://example.com/a/%2e%2E/b",
            Some("http://example.com/b"),
        ),
        // relative references
        (
            "http://a.test/dir/page",
            "other",
            Some("http://a.test/dir/other"),
        ),
        (
            "http://a.test/dir/page",
            "/root",
            Some("http://a.test/root"),
        ),
        (
            "http://a.test/dir/page",
            "?q=2",
            Some("http://a.test/dir/page?q=2"),
        ),
        (
            "https://a.test/dir/",
            "//b.test/x",
            Some("https://b.test/x"),
        ),
        ("http://a.test/dir/", "", None),
        ("http://a.test/dir/", "   ", None),
        // percent-encoding of unreserved characters decoded
        (
            "http://a.test/",
            "http://example.com/%7Euser",
            Some("http://example.com/~user"),
        ),
        (
            "http://a.test/",
            "http://example.com/%41%42%63",
            Some("http://example.com/ABc"),
        ),
        (
            "http://a.test/",
            "http://example.com/a%2Db%5Fc%2ed",
            Some("http://example.com/a-b_c.d"),
        ),
        (
            "http://a.test/",
            "http://example.com/?q=%7e%41",
            Some("http://example.com/?q=~A"),
        ),
        // other escapes keep their meaning, hex upper-cased
        (
            "http://a.test/",
            "http://example.com/a%2fb",
            Some("http://example.com/a%2Fb"),
        ),
        (
            "http://a.test/",
            "http://example.com/?q=a%26b",
            Some("http://example.com/?q=a%26b"),
        ),
        (
            "http://a.test/",
            "http://example.com/?q=%3d",
            Some("http://example.com/?q=%3D"),
        ),
        (
            "http://a.test/",
            "http://example.com/a%zz",
            Some("http://example.com/a%zz"),
        ),
        (
            "http://a.test/",
            "http://example.com/a%",
            Some("http://example.com/a%"),
        ),
        // characters that must be escaped are escaped
        (
            "http://a.test/",
            "http://example.com/a b",
            Some("http://example.com/a%20b"),
        ),
        (
            "http://a.test/",
            "http://example.com/ü",
            Some("http://example.com/%C3%BC"),
        ),
        // IDNA host
        (
            "http://a.test/",
            "http://BÜCHER.example/",
            Some("http://xn--bcher-kva.example/"),
        ),
        // trailing dot on host
        (
            "http://a.test/",
            "http://example.com./x",
            Some("http://example.com/x"),
        ),
        // whitespace and control characters around the href
        ("http://a.test/", "  /x \n", Some("http://a.test/x")),
        ("http://a.test/", "/a\tb", Some("http://a.test/ab")),
        // query order and case are kept: they can change the resource
        (
            "http://a.test/",
            "/p?b=2&a=1",
            Some("http://a.test/p?b=2&a=1"),
        ),
        ("http://a.test/", "/P?A=1", Some("http://a.test/P?A=1")),
        // empty path becomes "/"
        (
            "http://a.test/",
            "http://example.com",
            Some("http://example.com/"),
        ),
        // IPv4 forms normalized by the parser
        ("http://a.test/", "http://127.1/", Some("http://127.0.0.1/")),
        (
            "http://a.test/",
            "http://[::1]:8080/",
            Some("http://[::1]:8080/"),
        ),
        // not crawlable
        ("http://a.test/", "mailto:me@example.com", None),
        ("http://a.test/", "javascript:void(0)", None),
        ("http://a.test/", "JavaScript:alert(1)", None),
        ("http://a.test/", "data:text/html,hi", None),
        ("http://a.test/", "tel:+123", None),
        ("http://a.test/", "ftp://example.com/file", None),
        ("http://a.test/", "file:///etc/passwd", None),
        ("http://a.test/", "http://", None),
        ("http://a.test/", "http://exa mple.com/", None),
    ];

    #[test]
    fn canonicalization_table() {
        let mut failures = Vec::new();
        for &(base, href, want) in CASES {
            let base = Url::parse(base).unwrap();
            let got = resolve(&base, href).map(|u| u.to_string());
            if got.as_deref() != want {
                failures.push(format!("{base} + {href:?}: got {got:?}, want {want:?}"));
            }
        }
        assert!(CASES.len() >= 40);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn canonicalization_is_idempotent_on_table() {
        for &(_, _, want) in CASES {
            if let Some(want) = want {
                let again = parse(want).unwrap();
                assert_eq!(again.as_str(), want, "second pass changed {want}");
            }
        }
    }

    #[test]
    fn variants_share_a_fingerprint() {
        let a = parse("HTTP://Example.com:80/a/./b?#frag").unwrap();
        let b = parse("http://example.com/a/b").unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(
            fingerprint(&a),
            fingerprint(&parse("http://example.com/a/B").unwrap())
        );
    }

    #[test]
    fn parse_rejects_bad_seeds() {
        assert!(matches!(parse("not a url"), Err(CanonError::Invalid(_))));
        assert_eq!(
            parse("ftp://x.test/"),
            Err(CanonError::UnsupportedScheme("ftp".into()))
        );
        assert!(parse("http://").is_err());
    }

    #[test]
    fn origin_keys() {
        assert_eq!(
            origin_key(&parse("http://A.test/x").unwrap()),
            "http://a.test:80"
        );
        assert_eq!(
            origin_key(&parse("https://a.test:8443/").unwrap()),
            "https://a.test:8443"
        );
    }
}
