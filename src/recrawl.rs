//! Recrawls: what a revisit of a stored page found, and when to come back.
//!
//! In: what was stored about a page before this run ([`Revisit`]) and the
//! answer to the conditional request. Out: the [`Change`] to record, and
//! the page's next revisit interval. Plain functions, tested without a
//! network; the coordinator routes, the store records.

use std::time::Duration;

use crate::config::RevisitConfig;

/// What the database held about a URL a recrawl queued again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revisit {
    /// The stored page answered (status below 400) and was not found
    /// gone since: a change can be told against it.
    pub was_ok: bool,
    pub status: Option<u16>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_hash: Option<String>,
    /// Where the stored answer redirected to (a 3xx's target).
    pub redirect_to: Option<String>,
    /// The revisit interval so far (`None`: never revisited).
    pub revisit_ms: Option<i64>,
    /// When the stored version was last fetched or confirmed (a 304),
    /// epoch ms: a sitemap `<lastmod>` before it says the page has not
    /// changed since.
    pub checked_at: Option<i64>,
}

/// What a run found about a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// Not there before (or broken before): stored now.
    New,
    /// Answered with a different body (or status).
    Changed,
    /// 304 Not Modified, or the same body.
    Unchanged,
    /// Answered 404 or 410 where it was a page before.
    Removed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Changed => "changed",
            Self::Unchanged => "unchanged",
            Self::Removed => "removed",
        }
    }
}

/// How a fetch ended, as far as change detection cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// A response that is stored as a page (2xx, 3xx other than 304).
    Page {
        status: u16,
        content_hash: &'a str,
        /// A redirect's target.
        redirect_to: Option<&'a str>,
    },
    NotModified,
    /// 404 or 410.
    Gone,
    /// Any other failure (after its retries).
    Failed,
}

/// The change a fetch of a URL records. `revisit` is `None` for a URL
/// first found in this run. A URL that failed before and fails again is no
/// change (`None`), nor is a page whose revisit failed for a passing
/// reason (it keeps its stored version and is asked again next time).
pub fn classify(revisit: Option<&Revisit>, answer: Answer<'_>) -> Option<Change> {
    let was_ok = revisit.is_some_and(|r| r.was_ok);
    match answer {
        Answer::Page { .. } if !was_ok => Some(Change::New),
        Answer::Page {
            status,
            content_hash,
            redirect_to,
        } => {
            let r = revisit.expect("was_ok implies a revisit");
            // A redirect that now leads elsewhere is a change, whatever
            // its (often empty) body.
            if r.status == Some(status)
                && r.content_hash.as_deref() == Some(content_hash)
                && r.redirect_to.as_deref() == redirect_to
            {
                Some(Change::Unchanged)
            } else {
                Some(Change::Changed)
            }
        }
        // Only ever asked of a stored page with validators.
        Answer::NotModified if was_ok => Some(Change::Unchanged),
        Answer::NotModified => None,
        Answer::Gone if was_ok => Some(Change::Removed),
        Answer::Gone | Answer::Failed => None,
    }
}

/// Interval before the first revisit has told anything: a day.
const FIRST_INTERVAL: Duration = Duration::from_secs(86_400);

/// The next revisit interval: half the last one after a change, twice it
/// after an unchanged visit, within the configured bounds. A page seen to
/// change often is asked often; a static one rarely.
pub fn next_interval(previous_ms: Option<i64>, change: Option<Change>, cfg: &RevisitConfig) -> i64 {
    let min = cfg.min_revisit.as_millis() as i64;
    let max = cfg.max_revisit.as_millis() as i64;
    let last = previous_ms.unwrap_or(FIRST_INTERVAL.as_millis() as i64);
    let next = match change {
        Some(Change::Changed) => last / 2,
        Some(Change::Unchanged) => last.saturating_mul(2),
        // New pages start at the first interval; failures keep theirs.
        Some(Change::New) => FIRST_INTERVAL.as_millis() as i64,
        Some(Change::Removed) | None => last,
    };
    next.clamp(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(hash: &str) -> Revisit {
        Revisit {
            was_ok: true,
            status: Some(200),
            content_hash: Some(hash.into()),
            ..Revisit::default()
        }
    }

    #[test]
    fn classification() {
        let page = |h| Answer::Page {
            status: 200,
            content_hash: h,
            redirect_to: None,
        };
        let ok = stored("a");
        let broken = Revisit::default();
        let table: [(Option<&Revisit>, Answer<'_>, Option<Change>); 10] = [
            (None, page("a"), Some(Change::New)),
            (None, Answer::Failed, None),
            (Some(&ok), page("a"), Some(Change::Unchanged)),
            (Some(&ok), page("b"), Some(Change::Changed)),
            (Some(&ok), Answer::NotModified, Some(Change::Unchanged)),
            (Some(&ok), Answer::Gone, Some(Change::Removed)),
            (Some(&ok), Answer::Failed, None),
            (Some(&broken), Answer::Gone, None),
            (Some(&broken), Answer::Failed, None),
            (Some(&broken), page("a"), Some(Change::New)),
        ];
        for (i, (r, a, want)) in table.into_iter().enumerate() {
            assert_eq!(classify(r, a), want, "row {i}");
        }
        // A redirect that now answers 200 with the same (empty) body.
        let a = Answer::Page {
            status: 301,
            content_hash: "a",
            redirect_to: Some("http://e.test/x"),
        };
        assert_eq!(classify(Some(&ok), a), Some(Change::Changed));
        // A redirect that leads somewhere else now, with the same status
        // and body; and one that leads where it did.
        let moved = Revisit {
            status: Some(301),
            redirect_to: Some("http://e.test/x".into()),
            ..stored("a")
        };
        let to = |t| Answer::Page {
            status: 301,
            content_hash: "a",
            redirect_to: Some(t),
        };
        assert_eq!(
            classify(Some(&moved), to("http://e.test/y")),
            Some(Change::Changed)
        );
        assert_eq!(
            classify(Some(&moved), to("http://e.test/x")),
            Some(Change::Unchanged)
        );
    }

    #[test]
    fn intervals_halve_and_double_within_bounds() {
        let cfg = RevisitConfig::default();
        let day = 86_400_000;
        assert_eq!(next_interval(None, Some(Change::Unchanged), &cfg), 2 * day);
        assert_eq!(next_interval(None, Some(Change::Changed), &cfg), day / 2);
        assert_eq!(
            next_interval(Some(3_600_000), Some(Change::Changed), &cfg),
            3_600_000
        );
        assert_eq!(
            next_interval(Some(20 * day), Some(Change::Unchanged), &cfg),
            30 * day
        );
        assert_eq!(next_interval(Some(5 * day), None, &cfg), 5 * day);
    }
}
