//! The vocabulary of "why": every URL that is discovered but not fetched, or
//! fetched without success, carries one of these reasons in the store.

use std::fmt;

/// Why a discovered URL was not fetched (URL state `skipped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The host is not a seed host and matches no `--allow-host` pattern.
    OutOfScope,
    /// The URL matches an `--exclude` regex.
    Excluded,
    /// `--include` regexes were given and none matches the URL.
    NotIncluded,
    /// The URL is deeper than `--max-depth`.
    MaxDepth,
    /// `--max-pages` was reached before the URL's turn came.
    MaxPages,
    /// robots.txt disallows it for our user agent.
    Robots,
    /// robots.txt of its host stayed unreachable (5xx, timeouts) through
    /// every retry; `trawl resume` tries again.
    RobotsUnavailable,
    /// Found only on pages whose robots directives say `nofollow`.
    Nofollow,
    /// A crawler trap: longer than `--max-url-length`, a path segment
    /// repeated more than 3 times (`/a/b/a/b/a/b/a/`), or beyond
    /// `--max-pages-per-host`.
    Trap,
    /// The host resolves to a loopback, private or link-local address and
    /// was not named by the user (a seed's host or an exact `--allow-host`).
    BlockedAddress,
    /// A link whose path ends in a file extension that is not a page
    /// (`.pdf`, `.png`, `.zip`…, see `scope::ASSET_EXTENSIONS`); fetched
    /// only with `--fetch-assets`, or when a sitemap or redirect leads to it.
    Asset,
}

impl SkipReason {
    pub const ALL: [SkipReason; 11] = [
        Self::OutOfScope,
        Self::Excluded,
        Self::NotIncluded,
        Self::MaxDepth,
        Self::MaxPages,
        Self::Robots,
        Self::RobotsUnavailable,
        Self::Nofollow,
        Self::Trap,
        Self::BlockedAddress,
        Self::Asset,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutOfScope => "out_of_scope",
            Self::Excluded => "excluded",
            Self::NotIncluded => "not_included",
            Self::MaxDepth => "max_depth",
            Self::MaxPages => "max_pages",
            Self::Robots => "robots",
            Self::RobotsUnavailable => "robots_unavailable",
            Self::Nofollow => "nofollow",
            Self::Trap => "trap",
            Self::BlockedAddress => "blocked_address",
            Self::Asset => "asset",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
