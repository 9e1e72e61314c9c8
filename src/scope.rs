//! Crawl scope: which discovered URLs may be fetched at all.
//!
//! In: a canonical URL found on a page or in a redirect.
//! Out: `Ok(())`, or the [`SkipReason`] recorded for it.
//!
//! The scope is the hosts of the seeds plus every `--allow-host` pattern;
//! `--include` regexes (if any) must match the whole URL, `--exclude` regexes
//! must not. Seeds themselves are always in scope: the user named them.

use regex::RegexSet;
use url::Url;

use crate::reason::SkipReason;

/// File extensions of links that are not pages: images, audio, video,
/// archives, fonts, office documents, PDFs, executables and stylesheets
/// (after Scrapy's `IGNORED_EXTENSIONS`, its link extractor's default deny
/// list). Lower case, without the dot; sorted for a binary search.
pub const ASSET_EXTENSIONS: &[&str] = &[
    "3gp", "7z", "aac", "ai", "aif", "aiff", "apk", "arj", "asf", "asx", "au", "avi", "avif",
    "bin", "bmp", "bz2", "cdr", "class", "css", "deb", "dmg", "doc", "docx", "drw", "dxf", "eot",
    "eps", "epub", "exe", "flac", "flv", "gif", "gz", "heic", "ico", "iso", "jar", "jpeg", "jpg",
    "m4a", "m4v", "mid", "midi", "mkv", "mng", "mov", "mp3", "mp4", "mpeg", "mpg", "msi", "odg",
    "odp", "ods", "odt", "ogg", "ogv", "opus", "otf", "pct", "pdf", "png", "pps", "ppt", "pptx",
    "ps", "psd", "psp", "pst", "qt", "ra", "rar", "rm", "rpm", "svg", "swf", "tar", "tgz", "tif",
    "tiff", "ttf", "wav", "webm", "webp", "wma", "wmv", "woff", "woff2", "xls", "xlsx", "xz",
    "zip", "zst",
];

/// Whether a URL's path ends in one of [`ASSET_EXTENSIONS`] (any case):
/// `/files/report.PDF`, not `/pdf/` nor `/download?f=a.pdf`.
pub fn is_asset(url: &Url) -> bool {
    let path = url.path();
    let last = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    let Some(dot) = last.rfind('.') else {
        return false;
    };
    let ext = &last[dot + 1..];
    if ext.is_empty() || ext.len() > 5 {
        return false;
    }
    let mut buf = [0u8; 5];
    let lower = &mut buf[..ext.len()];
    lower.copy_from_slice(ext.as_bytes());
    lower.make_ascii_lowercase();
    ASSET_EXTENSIONS
        .binary_search_by(|e| e.as_bytes().cmp(lower))
        .is_ok()
}

/// A host pattern from the command line: `example.com` matches that host
/// only; `*.example.com` matches `example.com` and every subdomain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    Domain(String),
}

impl HostPattern {
    /// Parses a pattern, normalizing the host the way URLs are normalized
    /// (lower case, IDNA), so `*.BÜCHER.example` matches what links say.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let pattern = pattern.trim();
        let (wild, host) = match pattern.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        if host.is_empty() || host.contains(['/', '*', ':', '@', ' ']) {
            return Err(format!(
                "invalid host pattern `{pattern}` (expected `example.com` or `*.example.com`)"
            ));
        }
        let url = Url::parse(&format!("http://{host}/"))
            .map_err(|e| format!("invalid host pattern `{pattern}`: {e}"))?;
        let host = url
            .host_str()
            .ok_or_else(|| format!("invalid host pattern `{pattern}`"))?
            .trim_end_matches('.')
            .to_string();
        Ok(if wild {
            Self::Domain(host)
        } else {
            Self::Exact(host)
        })
    }

    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => h == host,
            Self::Domain(d) => {
                host == d
                    || (host.len() > d.len()
                        && host.ends_with(d.as_str())
                        && host.as_bytes()[host.len() - d.len() - 1] == b'.')
            }
        }
    }
}

/// The validated scope of a crawl. Cheap to share (`Arc`) with workers, which
/// evaluate it in parallel while parsing.
#[derive(Debug)]
pub struct Scope {
    hosts: Vec<HostPattern>,
    include: Option<RegexSet>,
    exclude: Option<RegexSet>,
    max_url_length: usize,
}

/// More repeats of one path segment than this is a trap.
const MAX_SEGMENT_REPEATS: usize = 3;

impl Scope {
    pub fn new(
        seeds: &[Url],
        allow_hosts: &[String],
        include: &[String],
        exclude: &[String],
    ) -> Result<Self, String> {
        let mut hosts: Vec<HostPattern> = Vec::new();
        for seed in seeds {
            if let Some(h) = seed.host_str() {
                let p = HostPattern::Exact(h.to_string());
                if !hosts.contains(&p) {
                    hosts.push(p);
                }
            }
        }
        for pattern in allow_hosts {
            let p = HostPattern::parse(pattern)?;
            if !hosts.contains(&p) {
                hosts.push(p);
            }
        }
        let set = |patterns: &[String], flag: &str| -> Result<Option<RegexSet>, String> {
            if patterns.is_empty() {
                return Ok(None);
            }
            RegexSet::new(patterns)
                .map(Some)
                .map_err(|e| format!("invalid {flag} regex: {e}"))
        };
        Ok(Self {
            hosts,
            include: set(include, "--include")?,
            exclude: set(exclude, "--exclude")?,
            max_url_length: usize::MAX,
        })
    }

    /// Whether a discovered URL may be fetched.
    /// URLs longer than `n` are traps.
    pub fn with_max_url_length(mut self, n: usize) -> Self {
        self.max_url_length = n;
        self
    }

    pub fn check(&self, url: &Url) -> Result<(), SkipReason> {
        let host = url.host_str().unwrap_or("");
        if !self.hosts.iter().any(|p| p.matches(host)) {
            return Err(SkipReason::OutOfScope);
        }
        if url.as_str().len() > self.max_url_length || repeats_a_segment(url) {
            return Err(SkipReason::Trap);
        }
        if let Some(ex) = &self.exclude
            && ex.is_match(url.as_str())
        {
            return Err(SkipReason::Excluded);
        }
        if let Some(inc) = &self.include
            && !inc.is_match(url.as_str())
        {
            return Err(SkipReason::NotIncluded);
        }
        Ok(())
    }

    pub fn host_patterns(&self) -> &[HostPattern] {
        &self.hosts
    }

    /// Hosts named exactly (the seeds' hosts and `--allow-host example.com`),
    /// not through a `*.` pattern.
    pub fn named_hosts(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter_map(|p| match p {
                HostPattern::Exact(h) => Some(h.trim_end_matches('.').to_string()),
                HostPattern::Domain(_) => None,
            })
            .collect()
    }
}

/// Whether one path segment occurs more than [`MAX_SEGMENT_REPEATS`]
/// times: the shape of relative-link loops (`/a/b/a/b/a/b/a/b/`) and
/// calendar-style infinite spaces.
fn repeats_a_segment(url: &Url) -> bool {
    let Some(segments) = url.path_segments() else {
        return false;
    };
    let mut segs: Vec<&str> = segments.filter(|s| !s.is_empty()).collect();
    if segs.len() <= MAX_SEGMENT_REPEATS {
        return false;
    }
    // Sorted, a segment seen more than N times spans a window of N + 1.
    segs.sort_unstable();
    segs.windows(MAX_SEGMENT_REPEATS + 1)
        .any(|w| w[0] == w[MAX_SEGMENT_REPEATS])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_by_the_extension_of_the_last_segment() {
        let mut sorted = ASSET_EXTENSIONS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, ASSET_EXTENSIONS, "kept sorted for binary_search");
        let asset = |u: &str| is_asset(&Url::parse(u).unwrap());
        for u in [
            "http://e.com/a/report.pdf",
            "http://e.com/logo.PNG",
            "http://e.com/x/archive.tar.gz",
            "http://e.com/font.woff2?v=3",
        ] {
            assert!(asset(u), "{u}");
        }
        for u in [
            "http://e.com/pdf/",
            "http://e.com/page.html",
            "http://e.com/v1.2/guide",
            "http://e.com/download?file=a.pdf",
            "http://e.com/feed.xml",
            "http://e.com/a.pdf/",
            "http://e.com/",
        ] {
            assert!(!asset(u), "{u}");
        }
    }

    #[test]
    fn traps_are_long_urls_and_repeating_paths() {
        let seed = Url::parse("http://e.com/").unwrap();
        let scope = Scope::new(&[seed], &[], &[], &[])
            .unwrap()
            .with_max_url_length(60);
        let check = |u: &str| scope.check(&Url::parse(u).unwrap());
        assert_eq!(check("http://e.com/a/b/a/b/a/b/c"), Ok(()));
        assert_eq!(check("http://e.com/a/b/a/b/a/b/a/b"), Err(SkipReason::Trap));
        assert_eq!(
            check("http://e.com/cal/2026/cal/2026/cal/2026/cal/"),
            Err(SkipReason::Trap)
        );
        assert_eq!(
            check(&format!("http://e.com/{}", "x".repeat(60))),
            Err(SkipReason::Trap)
        );
        // Out of scope is said first.
        assert_eq!(
            check("http://other.com/a/a/a/a/a"),
            Err(SkipReason::OutOfScope)
        );
    }

    fn scope(seeds: &[&str], allow: &[&str], inc: &[&str], exc: &[&str]) -> Scope {
        let seeds: Vec<Url> = seeds.iter().map(|s| Url::parse(s).unwrap()).collect();
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Scope::new(&seeds, &v(allow), &v(inc), &v(exc)).unwrap()
    }

    #[test]
    fn scope_table() {
        use SkipReason::*;
        // (seeds, allow-host, include, exclude, url, expected)
        type Case<'a> = (
            &'a [&'a str],
            &'a [&'a str],
            &'a [&'a str],
            &'a [&'a str],
            &'a str,
            Result<(), SkipReason>,
        );
        let cases: &[Case] = &[
            (
                &["http://a.test/"],
                &[],
                &[],
                &[],
                "http://a.test/x",
                Ok(()),
            ),
            (
                &["http://a.test/"],
                &[],
                &[],
                &[],
                "https://a.test/x",
                Ok(()),
            ),
            (
                &["http://a.test/"],
                &[],
                &[],
                &[],
                "http://a.test:8080/x",
                Ok(()),
            ),
            (
                &["http://a.test/"],
                &[],
                &[],
                &[],
                "http://b.test/x",
                Err(OutOfScope),
            ),
            (
                &["http://a.test/"],
                &[],
                &[],
                &[],
                "http://sub.a.test/",
                Err(OutOfScope),
            ),
            (
                &["http://a.test/"],
                &[],
                &[],
                &[],
                "http://xa.test/",
                Err(OutOfScope),
            ),
            (
                &["http://a.test/", "http://b.test/"],
                &[],
                &[],
                &[],
                "http://b.test/",
                Ok(()),
            ),
            (
                &["http://a.test/"],
                &["b.test"],
                &[],
                &[],
                "http://b.test/",
                Ok(()),
            ),
            (
                &["http://a.test/"],
                &["b.test"],
                &[],
                &[],
                "http://c.b.test/",
                Err(OutOfScope),
            ),
            (
                &["http://a.test/"],
                &["*.b.test"],
                &[],
                &[],
                "http://c.b.test/",
                Ok(()),
            ),
            (
                &["http://a.test/"],
                &["*.b.test"],
                &[],
                &[],
                "http://b.test/",
                Ok(()),
            ),
            (
                &["http://a.test/"],
                &["*.b.test"],
                &[],
                &[],
                "http://d.c.b.test/",
                Ok(()),
            ),
            (
                &["http://a.test/"],
                &["*.b.test"],
                &[],
                &[],
                "http://xb.test/",
                Err(OutOfScope),
            ),
            (
                &["http://a.test/"],
                &["*.B.TEST"],
                &[],
                &[],
                "http://c.b.test/",
                Ok(()),
            ),
            (
                &["http://a.test/"],
                &[],
                &[],
                &[r"\.pdf$"],
                "http://a.test/x.pdf",
                Err(Excluded),
            ),
            (
                &["http://a.test/"],
                &[],
                &[],
                &[r"\.pdf$"],
                "http://a.test/x.html",
                Ok(()),
            ),
            (
                &["http://a.test/"],
                &[],
                &["/docs/"],
                &[],
                "http://a.test/docs/a",
                Ok(()),
            ),
            (
                &["http://a.test/"],
                &[],
                &["/docs/"],
                &[],
                "http://a.test/blog/a",
                Err(NotIncluded),
            ),
            (
                &["http://a.test/"],
                &[],
                &["/docs/", "/api/"],
                &[],
                "http://a.test/api/",
                Ok(()),
            ),
            // exclude wins over include
            (
                &["http://a.test/"],
                &[],
                &["/docs/"],
                &["private"],
                "http://a.test/docs/private",
                Err(Excluded),
            ),
            // scope is checked before the regexes
            (
                &["http://a.test/"],
                &[],
                &["/docs/"],
                &[],
                "http://b.test/docs/",
                Err(OutOfScope),
            ),
        ];
        for (i, (seeds, allow, inc, exc, url, want)) in cases.iter().enumerate() {
            let s = scope(seeds, allow, inc, exc);
            let got = s.check(&Url::parse(url).unwrap());
            assert_eq!(&got, want, "case {i}: {url}");
        }
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(HostPattern::parse("").is_err());
        assert!(HostPattern::parse("*.").is_err());
        assert!(HostPattern::parse("a/b").is_err());
        assert!(HostPattern::parse("a.*.test").is_err());
        let seeds = [Url::parse("http://a.test/").unwrap()];
        assert!(Scope::new(&seeds, &[], &["(".into()], &[]).is_err());
    }
}
