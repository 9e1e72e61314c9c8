//! robots.txt (RFC 9309): fetching it, what its status means, and checking
//! URLs against it.
//!
//! In: an origin and the crawler's user agent. Out: [`Robots`], the rules
//! for that origin: allow all (4xx), the parsed groups (2xx), or
//! unavailable (5xx, timeout, connection error: disallow all, try later).
//!
//! Parsing is texting_robots: it parses once (a check is a few µs), keeps a
//! `Sitemap:` line from ending a group, strips a UTF-8 BOM and exposes
//! Crawl-delay and sitemaps. Where it refuses a whole file for one rule
//! it cannot compile, the rule is left out and the rest obeyed
//! (`compile`). Matching uses the product token of the user
//! agent (`trawl` for `trawl/0.1 (+https://…)`), case-insensitively, and
//! reads a group's name, as Google does, up to its first character
//! outside `[A-Za-z_-]` ([`agent_name`]: `trawl/1.0` names trawl).

use std::time::Duration;

use texting_robots::Robot;
use url::Url;

use crate::fetch::{FetchError, Fetcher};

/// At least this much of a robots.txt is parsed (RFC 9309 asks for 500 KiB
/// at least); the rest is ignored.
pub const MAX_ROBOTS_SIZE: u64 = 512 * 1024;
/// Redirects followed to reach a robots.txt (RFC 9309: at least five).
pub const MAX_ROBOTS_REDIRECTS: u32 = 5;
/// How long fetched rules stay valid (RFC 9309: no more than 24 hours).
pub const ROBOTS_TTL: Duration = Duration::from_secs(24 * 3600);

/// What fetching robots.txt produced, as stored in the `hosts` table.
#[derive(Debug, Clone, Default)]
pub struct RobotsFetch {
    /// Final HTTP status after redirects; `None` when there was none.
    pub status: Option<u16>,
    /// The body (2xx only), at most [`MAX_ROBOTS_SIZE`] bytes.
    pub body: Vec<u8>,
    /// Why there is no usable answer (network error, too many redirects).
    pub error: Option<String>,
    /// The origin's own host resolves to an internal address it may not
    /// use: it is never to be asked. (Not stored; such an answer is never
    /// reused.)
    pub blocked: bool,
    /// The origin's own host could not be reached at all: the reason
    /// (`connection_refused`, `dns`, `tls`, `connect`; see
    /// [`FetchError::reason`]). (Not stored.)
    pub unreachable: Option<&'static str>,
    /// Epoch milliseconds.
    pub fetched_at: i64,
    /// The `Retry-After` of a 429 or 503 answer, as sent (RFC 9110
    /// §10.2.3). (Not stored.)
    pub retry_after: Option<String>,
}

/// The rules for one origin.
#[derive(Debug)]
pub enum Robots {
    /// No robots.txt (4xx) or one without rules: everything is allowed.
    AllowAll,
    /// Parsed rules for our user agent, and how many rules of our group
    /// could not be used (see `compile`).
    Rules { robot: Box<Robot>, unusable: u32 },
    /// 5xx, a network error or a redirect loop: nothing may be fetched
    /// until a later attempt succeeds. Carries the reason.
    Unavailable(String),
}

impl Robots {
    /// Interprets a fetch as RFC 9309 says, for the crawler named `agent`
    /// (a product token).
    pub fn from_fetch(agent: &str, f: &RobotsFetch) -> Robots {
        match f.status {
            Some(s) if (200..300).contains(&s) => {
                let body = normalize_paths(&cut_at_line(&f.body));
                let body = agent_names(&body);
                // An agent with no name left ("2bot") can only be `*`.
                let ours = match agent_name(agent.as_bytes()) {
                    b"" => "*",
                    name => std::str::from_utf8(name).unwrap_or("*"),
                };
                match compile(ours, &body) {
                    Ok((robot, unusable)) => Robots::Rules {
                        robot: Box::new(robot),
                        unusable,
                    },
                    // Never read as "allow all": nothing may be fetched
                    // while the file cannot be read.
                    Err(e) => Robots::Unavailable(format!("robots.txt could not be parsed: {e}")),
                }
            }
            Some(s) if (400..500).contains(&s) => Robots::AllowAll,
            Some(s) => Robots::Unavailable(
                f.error
                    .clone()
                    .unwrap_or_else(|| format!("robots.txt answered HTTP {s}")),
            ),
            None => Robots::Unavailable(
                f.error
                    .clone()
                    .unwrap_or_else(|| "robots.txt unreachable".into()),
            ),
        }
    }

    /// Whether `url` may be fetched.
    pub fn allowed(&self, url: &Url) -> bool {
        match self {
            Robots::AllowAll => true,
            Robots::Rules { robot, .. } => robot.allowed(url.as_str()),
            Robots::Unavailable(_) => false,
        }
    }

    /// The Crawl-delay of our group, if any.
    pub fn crawl_delay(&self) -> Option<Duration> {
        match self {
            Robots::Rules { robot, .. } => robot
                .delay
                .filter(|d| d.is_finite() && *d > 0.0)
                .map(|d| Duration::from_secs_f64(d as f64)),
            _ => None,
        }
    }

    /// `Sitemap:` URLs (for every agent, as the protocol says).
    pub fn sitemaps(&self) -> &[String] {
        match self {
            Robots::Rules { robot, .. } => &robot.sitemaps,
            _ => &[],
        }
    }

    /// Rules of our group that could not be used and were left out.
    pub fn unusable_rules(&self) -> u32 {
        match self {
            Robots::Rules { unusable, .. } => *unusable,
            _ => 0,
        }
    }
}

/// Parses a robots.txt for `agent` using every rule that can be used, as
/// RFC 9309 §2.2 asks ("crawlers MUST use the parseable rules"): a rule
/// texting_robots cannot compile (a pattern whose regex passes its size
/// limit, like `/*a=*b=…*z=$` with 40 wildcards) makes it refuse the whole
/// file, so when it does, each line is compiled alone, those that fail
/// are put out of use, and the file is compiled again. Also returns how
/// many of the rules put out of use belong to the group `agent` obeys.
///
/// A rule put out of use becomes `Allow:` (empty), which matches every
/// path with length 0: it never wins over another rule, and everything
/// is allowed anyway when nothing else matches. Deleting the line instead
/// could merge the user-agent lines around it into one group. To tell
/// which of them were ours, each is replaced once by a `Disallow:` of a
/// path no site uses and the library is asked whether that path is
/// allowed.
///
/// An error only when the file cannot be read with every such rule out
/// of use (the library's parser does not fail otherwise).
fn compile(agent: &str, body: &[u8]) -> Result<(Robot, u32), String> {
    let first = match Robot::new(agent, body) {
        Ok(robot) => return Ok((robot, 0)),
        Err(e) => format!("{e:#}"),
    };
    let lines = lines(body);
    // texting_robots 0.2 builds a regex, the only thing that can fail,
    // for patterns with `$` alone: other lines need no probe. (Were that
    // to change, a failing line not probed would fail the compile below:
    // the file would be unavailable, never allow-all.)
    let unusable: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, (line, _))| {
            line.contains(&b'$') && {
                let probe = [b"user-agent: x\n".as_slice(), line, b"\n"].concat();
                Robot::new("x", &probe).is_err()
            }
        })
        .map(|(i, _)| i)
        .collect();
    let rebuilt = |replace: &dyn Fn(usize) -> Vec<u8>| -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len());
        for (i, (line, end)) in lines.iter().enumerate() {
            match unusable.binary_search(&i) {
                Ok(_) => out.extend_from_slice(&replace(i)),
                Err(_) => out.extend_from_slice(line),
            }
            out.extend_from_slice(end);
        }
        out
    };
    let robot = Robot::new(agent, &rebuilt(&|_| b"Allow:".to_vec())).map_err(|_| first)?;
    let marker = |i: usize| format!("/trawl-unusable-rule-{i}-of-robots-txt");
    let marked = Robot::new(
        agent,
        &rebuilt(&|i| format!("Disallow: {}", marker(i)).into_bytes()),
    );
    let ours = match marked {
        Ok(m) => unusable.iter().filter(|&&i| !m.allowed(&marker(i))).count(),
        Err(_) => unusable.len(),
    };
    for &i in &unusable {
        tracing::debug!(
            "robots.txt rule left out, it cannot be compiled: {}",
            String::from_utf8_lossy(lines[i].0).trim()
        );
    }
    Ok((robot, ours as u32))
}

/// "1 rule", "3 rules".
pub fn rules_count(n: i64) -> String {
    if n == 1 {
        "1 rule".into()
    } else {
        format!("{n} rules")
    }
}

/// The lines of a robots.txt as texting_robots reads them (ended by LF,
/// CR or NUL), each with the run of line-end bytes that follows it.
fn lines(body: &[u8]) -> Vec<(&[u8], &[u8])> {
    let is_end = |b: &u8| matches!(b, b'\n' | b'\r' | 0);
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let len = rest.iter().position(is_end).unwrap_or(rest.len());
        let ends = rest[len..].iter().take_while(|b| is_end(b)).count();
        out.push((&rest[..len], &rest[len..len + ends]));
        rest = &rest[len + ends..];
    }
    out
}

/// Page-level robots directives (meta robots and X-Robots-Tag) that
/// apply to us.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Directives {
    pub noindex: bool,
    pub nofollow: bool,
}

impl Directives {
    /// Reads `<meta name="robots" content>` and every `X-Robots-Tag`
    /// (comma-separated; `agent: directives` applies only to that agent,
    /// until the next agent prefix).
    pub fn of(meta: Option<&str>, header: Option<&str>, agent: &str) -> Directives {
        let mut d = Directives::default();
        for (source, text) in [(false, meta), (true, header)] {
            let Some(text) = text else { continue };
            let mut ours = true;
            for part in text.split(',') {
                let mut part = part.trim();
                if source
                    && let Some((name, rest)) = part.split_once(':')
                    && !name.contains(char::is_whitespace)
                    && ![
                        "unavailable_after",
                        "max-snippet",
                        "max-image-preview",
                        "max-video-preview",
                    ]
                    .iter()
                    .any(|k| name.eq_ignore_ascii_case(k))
                {
                    ours = name.trim().eq_ignore_ascii_case(agent);
                    part = rest.trim();
                }
                if !ours {
                    continue;
                }
                for word in part.split_whitespace() {
                    match word.to_ascii_lowercase().as_str() {
                        "noindex" => d.noindex = true,
                        "nofollow" => d.nofollow = true,
                        "none" => {
                            d.noindex = true;
                            d.nofollow = true;
                        }
                        _ => {}
                    }
                }
            }
        }
        d
    }
}

/// The product token of a User-Agent: `trawl` for `trawl/0.1 (+https://…)`.
pub fn product_token(user_agent: &str) -> String {
    user_agent
        .split(|c: char| c == '/' || c.is_whitespace())
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// A body cut at [`MAX_ROBOTS_SIZE`] ends at its last full line, so the
/// cut never turns `Disallow: /private` into `Disallow: /`.
fn cut_at_line(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if (body.len() as u64) < MAX_ROBOTS_SIZE {
        return body.into();
    }
    match body.iter().rposition(|&b| b == b'\n') {
        Some(i) => body[..=i].to_vec().into(),
        None => Vec::new().into(),
    }
}

/// Writes the paths of Allow and Disallow lines the way canonical URLs
/// are written (escapes of unreserved characters decoded, others
/// upper-cased), so `/%7Ejoe` in a rule matches the URL `/~joe` as RFC 9309
/// §2.2.2 asks.
fn normalize_paths(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        let trimmed = line.trim_ascii_start();
        let is_rule = [&b"allow"[..], b"disallow"].iter().any(|k| {
            trimmed.len() > k.len()
                && trimmed[..k.len()].eq_ignore_ascii_case(k)
                && trimmed[k.len()..].trim_ascii_start().starts_with(b":")
        });
        match (is_rule && line.contains(&b'%'), std::str::from_utf8(line)) {
            (true, Ok(text)) => {
                out.extend_from_slice(crate::canon::normalize_percent(text).as_bytes())
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}

/// The name a `User-agent:` value is matched by: up to its first
/// character outside `[A-Za-z_-]` (`trawl` for `trawl/1.0` or
/// `trawl 1.0 beta`), as Google's robots.txt parser and crawler-commons
/// read it (RFC 9309 §2.2.1: the product token, matched
/// case-insensitively). `*` alone, or followed by whitespace, is the
/// any-agent group; `*bot` names no crawler.
pub fn agent_name(value: &[u8]) -> &[u8] {
    if value.first() == Some(&b'*') && value.get(1).is_none_or(|b| b.is_ascii_whitespace()) {
        return b"*";
    }
    let len = value
        .iter()
        .position(|b| !(b.is_ascii_alphabetic() || matches!(b, b'-' | b'_')))
        .unwrap_or(value.len());
    &value[..len]
}

/// Rewrites every `User-agent:` line to the name it is matched by
/// ([`agent_name`]): texting_robots compares the whole value, so a group
/// named `trawl/1.0` would never apply to `trawl`. Lines are recognised
/// as texting_robots recognises them (`user-agent`, `user agent` or
/// `useragent` in any case after spaces or tabs, then `:` or a space; the
/// value ends at `#` or the line's end). A file with no such line is
/// returned as it is.
fn agent_names(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let value_of = |line: &[u8]| -> Option<usize> {
        let start = line.iter().position(|b| !matches!(b, b' ' | b'\t'))?;
        let rest = &line[start..];
        let key = [&b"user-agent"[..], b"user agent", b"useragent"]
            .into_iter()
            .find(|k| rest.len() >= k.len() && rest[..k.len()].eq_ignore_ascii_case(k))?;
        let after = &rest[key.len()..];
        let spaces = after
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        let at = if after.get(spaces) == Some(&b':') {
            spaces + 1
        } else if spaces > 0 {
            spaces
        } else {
            return None;
        };
        Some(start + key.len() + at)
    };
    // The BOM texting_robots skips must not hide a first user-agent line.
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let lines = lines(body);
    if !lines.iter().any(|(line, _)| value_of(line).is_some()) {
        return body.into();
    }
    let mut out = Vec::with_capacity(body.len());
    for (line, end) in lines {
        match value_of(line) {
            Some(at) => {
                let value = &line[at..];
                let value = &value[..memchr::memchr(b'#', value).unwrap_or(value.len())];
                out.extend_from_slice(b"User-agent: ");
                out.extend_from_slice(agent_name(value.trim_ascii()));
            }
            None => out.extend_from_slice(line),
        }
        out.extend_from_slice(end);
    }
    out.into()
}

/// The robots.txt URL of an origin key (`scheme://host:port`).
pub fn robots_url(origin: &str) -> Option<Url> {
    Url::parse(&format!("{origin}/robots.txt")).ok()
}

/// Fetches robots.txt for `origin`, following up to five redirects.
pub async fn fetch(fetcher: &Fetcher, origin: &str) -> RobotsFetch {
    let mut out = RobotsFetch {
        fetched_at: crate::util::now_ms(),
        ..Default::default()
    };
    let Some(mut url) = robots_url(origin) else {
        out.error = Some(format!("no robots.txt URL for {origin}"));
        return out;
    };
    for hop in 0..=MAX_ROBOTS_REDIRECTS {
        let resp = match fetcher.get_limited(&url, MAX_ROBOTS_SIZE).await {
            Ok(r) => r,
            Err(e) => {
                // A refused redirect hop to another host is only an
                // unavailable robots.txt.
                out.blocked = hop == 0 && matches!(e, FetchError::Blocked(_));
                out.unreachable =
                    (hop == 0 && matches!(e, FetchError::Connect { .. })).then(|| e.reason());
                out.error = Some(format!("robots.txt: {}", describe(&e)));
                return out;
            }
        };
        if (300..400).contains(&resp.status) {
            let next = resp.location.as_deref().and_then(|l| url.join(l).ok());
            match next {
                Some(n) if matches!(n.scheme(), "http" | "https") => {
                    url = n;
                    continue;
                }
                // A 3xx without a usable Location: as for an unreachable file.
                _ => {
                    out.status = None;
                    out.error = Some(format!(
                        "robots.txt redirect ({}) without a usable Location",
                        resp.status
                    ));
                    return out;
                }
            }
        }
        out.status = Some(resp.status);
        if (200..300).contains(&resp.status) {
            out.body = resp.body;
        } else if matches!(resp.status, 429 | 503) {
            out.retry_after = resp.retry_after;
        }
        return out;
    }
    out.error = Some(format!(
        "robots.txt: more than {MAX_ROBOTS_REDIRECTS} redirects"
    ));
    out
}

fn describe(e: &FetchError) -> String {
    match e {
        FetchError::Timeout => "timed out".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(txt: &str, agent: &str) -> Robots {
        Robots::from_fetch(
            agent,
            &RobotsFetch {
                status: Some(200),
                body: txt.as_bytes().to_vec(),
                ..Default::default()
            },
        )
    }

    fn allowed(txt: &str, agent: &str, path: &str) -> bool {
        let url = Url::parse("http://example.com")
            .unwrap()
            .join(path)
            .unwrap();
        rules(txt, agent).allowed(&url)
    }

    /// RFC 9309's examples and Google's robots_test.cc scenarios, as
    /// (robots.txt, agent, path, allowed).
    #[test]
    fn rfc9309_and_google_cases() {
        let cases: &[(&str, &str, &str, bool)] = &[
            // Empty file or no matching group: everything allowed.
            ("", "trawl", "/", true),
            ("user-agent: other\ndisallow: /\n", "trawl", "/x", true),
            // Disallow everything for us.
            ("user-agent: trawl\ndisallow: /\n", "trawl", "/x", false),
            ("user-agent: *\ndisallow: /\n", "trawl", "/", false),
            // Our own group wins over `*`.
            (
                "user-agent: *\ndisallow: /\n\nuser-agent: trawl\nallow: /\n",
                "trawl",
                "/x",
                true,
            ),
            // Agent names match case-insensitively.
            ("User-Agent: TRAWL\nDisallow: /a\n", "trawl", "/a", false),
            // Several agents share a group.
            (
                "user-agent: a\nuser-agent: trawl\ndisallow: /s\n",
                "trawl",
                "/s/1",
                false,
            ),
            // Longest match wins (RFC 9309 §2.2.2).
            (
                "user-agent: *\nallow: /folder/page\ndisallow: /folder\n",
                "trawl",
                "/folder/page",
                true,
            ),
            (
                "user-agent: *\nallow: /folder\ndisallow: /folder/page\n",
                "trawl",
                "/folder/page",
                false,
            ),
            (
                "user-agent: *\nallow: /folder\ndisallow: /folder/page\n",
                "trawl",
                "/folder/other",
                true,
            ),
            // Allow wins a tie of equal length.
            (
                "user-agent: *\ndisallow: /page\nallow: /page\n",
                "trawl",
                "/page",
                true,
            ),
            // Wildcards and end anchors.
            (
                "user-agent: *\ndisallow: /*.pdf$\n",
                "trawl",
                "/a/b.pdf",
                false,
            ),
            (
                "user-agent: *\ndisallow: /*.pdf$\n",
                "trawl",
                "/a/b.pdf?x=1",
                true,
            ),
            (
                "user-agent: *\ndisallow: /fish*\n",
                "trawl",
                "/fishheads",
                false,
            ),
            ("user-agent: *\ndisallow: /fish\n", "trawl", "/Fish", true),
            (
                "user-agent: *\ndisallow: /*/private/\n",
                "trawl",
                "/x/private/y",
                false,
            ),
            // An empty Disallow allows all.
            ("user-agent: *\ndisallow:\n", "trawl", "/anything", true),
            // Query strings are part of the path matched.
            (
                "user-agent: *\ndisallow: /search?q=\n",
                "trawl",
                "/search?q=a",
                false,
            ),
            (
                "user-agent: *\ndisallow: /search?q=\n",
                "trawl",
                "/search",
                true,
            ),
            // A Sitemap line does not end a group (RFC 9309 §2.2.4).
            (
                "user-agent: trawl\nsitemap: http://example.com/s.xml\ndisallow: /x\n",
                "trawl",
                "/x",
                false,
            ),
            // Unknown lines and comments are ignored.
            (
                "# comment\nuser-agent: * # trailing\nfoo: bar\ndisallow: /c # why\n",
                "trawl",
                "/c",
                false,
            ),
            // Percent-encoding: the rule and the path meet in encoded form.
            (
                "user-agent: *\ndisallow: /%7Ejoe\n",
                "trawl",
                "/~joe",
                false,
            ),
            // CRLF and CR line ends.
            (
                "user-agent: *\r\ndisallow: /crlf\r\n",
                "trawl",
                "/crlf",
                false,
            ),
            // /robots.txt itself is always allowed.
            ("user-agent: *\ndisallow: /\n", "trawl", "/robots.txt", true),
        ];
        for (txt, agent, path, expect) in cases {
            assert_eq!(
                allowed(txt, agent, path),
                *expect,
                "{agent} {path} with robots.txt:\n{txt}"
            );
        }
    }

    /// A pattern texting_robots cannot compile: 40 wildcards and an end
    /// anchor make a regex past its size limit.
    fn uncompilable() -> String {
        let parts: String = (0..40)
            .map(|i| format!("*{}=", (b'a' + (i % 26) as u8) as char))
            .collect();
        format!("/{parts}$")
    }

    #[test]
    fn a_rule_that_cannot_be_compiled_is_left_out_alone() {
        let bad = uncompilable();
        assert!(Robot::new("trawl", format!("disallow: {bad}\n").as_bytes()).is_err());
        let check = |txt: &str, path: &str| {
            let r = rules(txt, "trawl");
            (
                r.allowed(&Url::parse("http://e.com").unwrap().join(path).unwrap()),
                r.unusable_rules(),
            )
        };
        // The other rules of the file still hold (it was allow-all).
        let txt = format!("User-agent: *\nDisallow: {bad}\nDisallow: /secret/\n");
        assert_eq!(check(&txt, "/secret/x"), (false, 1));
        assert_eq!(check(&txt, "/public"), (true, 1));
        // With CR line ends, in any case, several of them.
        let txt = format!("USER-AGENT: *\rdisallow: {bad}\rDisallow: /secret/\rallow: {bad}x\r");
        assert_eq!(check(&txt, "/secret/x"), (false, 2));
        // Groups keep their bounds: a rule left out of our group does not
        // merge it with the next one.
        let txt =
            format!("User-agent: trawl\nDisallow: {bad}\nUser-agent: other\nDisallow: /theirs/\n");
        assert_eq!(check(&txt, "/theirs/x"), (true, 1));
        // Only rules of the group we obey are counted; another group's
        // are left out too.
        let txt = format!(
            "User-agent: other\nDisallow: {bad}\n\nUser-agent: *\nDisallow: {bad}\nDisallow: /secret/\n"
        );
        assert_eq!(check(&txt, "/secret/x"), (false, 1));
        let txt =
            format!("User-agent: other\nDisallow: {bad}\n\nUser-agent: *\nDisallow: /secret/\n");
        assert_eq!(check(&txt, "/secret/x"), (false, 0));
        // A file with no user-agent line is everyone's.
        assert_eq!(
            check(&format!("Disallow: {bad}\nDisallow: /s/\n"), "/s/1"),
            (false, 1)
        );
    }

    #[test]
    fn a_group_named_with_a_version_is_ours() {
        let cases: &[(&str, &str, &str, bool)] = &[
            (
                "User-agent: trawl/1.0\nDisallow: /private/\n",
                "trawl",
                "/private/x",
                false,
            ),
            (
                "User-agent: Trawl/2.3 (+https://t.example)\nDisallow: /p\n",
                "trawl",
                "/p",
                false,
            ),
            (
                "User-agent: trawl 1.0\nDisallow: /p\n",
                "trawl",
                "/p",
                false,
            ),
            ("useragent:trawl/1\nDisallow: /p\n", "trawl", "/p", false),
            ("  User agent trawl/1\nDisallow: /p\n", "trawl", "/p", false),
            (
                "User-agent: trawl/1 # ours\nDisallow: /p\n",
                "trawl",
                "/p",
                false,
            ),
            // Our group, versioned, still wins over `*`.
            (
                "User-agent: *\nDisallow: /\n\nUser-agent: trawl/9\nAllow: /\n",
                "trawl",
                "/x",
                true,
            ),
            // Another name that starts like ours is not ours.
            ("User-agent: trawl-bot\nDisallow: /p\n", "trawl", "/p", true),
            (
                "User-agent: trawlbot/1.0\nDisallow: /p\n",
                "trawl",
                "/p",
                true,
            ),
            ("User-agent: trawl_x\nDisallow: /p\n", "trawl", "/p", true),
            // `*` followed by a comment or spaces is every agent; `*bot` none.
            ("User-agent: * # all\nDisallow: /p\n", "trawl", "/p", false),
            ("User-agent: *bot\nDisallow: /p\n", "trawl", "/p", true),
            // Our token is read the same way: digits end it on both sides.
            (
                "User-agent: Bot2000/3\nDisallow: /p\n",
                "bot2000",
                "/p",
                false,
            ),
            ("User-agent: 2bot\nDisallow: /p\n", "2bot", "/p", true),
            ("User-agent: *\nDisallow: /p\n", "2bot", "/p", false),
        ];
        for (txt, agent, path, expect) in cases {
            assert_eq!(
                allowed(txt, agent, path),
                *expect,
                "{agent} {path} with robots.txt:\n{txt}"
            );
        }
        assert_eq!(agent_name(b"Googlebot-News/2.1"), b"Googlebot-News");
        assert_eq!(agent_name(b"* x"), b"*");
        assert_eq!(agent_name(b"*/1"), b"");
        let plain = b"Disallow: /x\n";
        assert!(matches!(agent_names(plain), std::borrow::Cow::Borrowed(_)));
        assert_eq!(
            &*agent_names(b"User-Agent: trawl/1.0\r\nuser-agent:* \r\nDisallow: /x\r\n"),
            b"User-agent: trawl\r\nUser-agent: *\r\nDisallow: /x\r\n"
        );
    }

    #[test]
    fn a_utf8_bom_is_skipped() {
        let txt = "\u{feff}user-agent: *\ndisallow: /bom\n";
        assert!(!allowed(txt, "trawl", "/bom"));
        let txt = "\u{feff}user-agent: trawl/1\ndisallow: /bom\n";
        assert!(!allowed(txt, "trawl", "/bom"));
    }

    #[test]
    fn statuses_mean_what_rfc9309_says() {
        let at = |status: Option<u16>| {
            Robots::from_fetch(
                "trawl",
                &RobotsFetch {
                    status,
                    body: b"user-agent: *\ndisallow: /\n".to_vec(),
                    ..Default::default()
                },
            )
        };
        let u = Url::parse("http://e.com/x").unwrap();
        assert!(!at(Some(200)).allowed(&u));
        assert!(at(Some(404)).allowed(&u), "4xx: allow all");
        assert!(at(Some(403)).allowed(&u), "4xx: allow all");
        assert!(!at(Some(503)).allowed(&u), "5xx: disallow all");
        assert!(matches!(at(Some(500)), Robots::Unavailable(_)));
        assert!(matches!(at(None), Robots::Unavailable(_)), "unreachable");
    }

    #[test]
    fn crawl_delay_and_sitemaps() {
        let r = rules(
            "sitemap: http://e.com/a.xml\nuser-agent: trawl\ncrawl-delay: 1.5\ndisallow: /x\n\
             user-agent: *\ncrawl-delay: 9\nsitemap: http://e.com/b.xml\n",
            "trawl",
        );
        assert_eq!(r.crawl_delay(), Some(Duration::from_millis(1500)));
        assert_eq!(r.sitemaps(), ["http://e.com/a.xml", "http://e.com/b.xml"]);
    }

    #[test]
    fn page_directives_from_meta_and_header() {
        let of = |m: Option<&str>, h: Option<&str>| Directives::of(m, h, "trawl");
        let both = Directives {
            noindex: true,
            nofollow: true,
        };
        assert_eq!(of(None, None), Directives::default());
        assert!(of(Some("NOINDEX, follow"), None).noindex);
        assert_eq!(of(Some("none"), None), both);
        assert_eq!(of(None, Some("noindex, nofollow")), both);
        assert_eq!(of(None, Some("otherbot: noindex")), Directives::default());
        assert!(of(None, Some("otherbot: noindex, trawl: nofollow")).nofollow);
        assert!(!of(None, Some("otherbot: noindex, trawl: nofollow")).noindex);
        assert_eq!(
            of(None, Some("unavailable_after: 25 Jun 2010 15:00:00 PST")),
            Directives::default()
        );
    }

    #[test]
    fn product_token_of_user_agents() {
        assert_eq!(product_token("trawl/0.1.0"), "trawl");
        assert_eq!(product_token("MyBot/2.0 (+https://x.org)"), "mybot");
        assert_eq!(product_token("plain"), "plain");
    }

    #[test]
    fn a_cut_body_ends_at_a_full_line() {
        let mut body = b"user-agent: *\ndisallow: /private\n".to_vec();
        let tail = b"\ndisallow: /";
        body.resize(MAX_ROBOTS_SIZE as usize - tail.len(), b'#');
        body.extend_from_slice(tail);
        assert_eq!(body.len() as u64, MAX_ROBOTS_SIZE);
        let cut = cut_at_line(&body);
        assert_eq!(cut.len(), body.len() - tail.len() + 1);
        assert!(allowed(
            std::str::from_utf8(&cut).unwrap(),
            "trawl",
            "/public"
        ));
    }
}
