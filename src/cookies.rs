//! The crawl's cookie jar.
//!
//! In: `Set-Cookie` headers of every response (robots.txt, pages,
//! redirects). Out: the `Cookie` header of every request. Sites that put a
//! session behind a redirect (`302 Location: /shop/` with `Set-Cookie`,
//! then `200` once the cookie comes back) need it.
//!
//! The rules are RFC 6265's (domain, path, expiry, `Secure`), from the
//! `cookie_store` crate. Each host has a jar of its own: a cookie set by one
//! host is never sent to another, even one its `Domain` attribute would
//! name (no public-suffix list is needed to keep `Domain=co.uk` in check).
//! Jars that changed are handed to the store with the fetch that changed
//! them (`cookies` table), so `trawl resume` keeps sessions; session
//! cookies are kept too, expired ones are not. Cookie values are never
//! logged, shown by `status` or exported.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use cookie_store::{CookieStore, RawCookie};
use reqwest::header::HeaderValue;
use url::Url;

/// Cookie jars by host name.
#[derive(Debug, Default)]
pub struct Jar {
    inner: Mutex<Inner>,
    /// Some jar changed since [`Jar::take_changed`] last ran.
    dirty: AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    jars: HashMap<String, CookieStore>,
    changed: HashSet<String>,
}

impl Jar {
    /// A jar holding the stored jars: `(host, JSON)` rows as
    /// [`Jar::take_changed`] returns them. Rows that cannot be read are
    /// left out (with a warning naming the host, never a value).
    pub fn load(rows: Vec<(String, String)>) -> Jar {
        let mut jars = HashMap::new();
        for (host, json) in rows {
            match cookie_store::serde::json::load(json.as_bytes()) {
                Ok(store) => {
                    jars.insert(host, store);
                }
                Err(_) => tracing::warn!("the stored cookies of {host} cannot be read; left out"),
            }
        }
        Jar {
            inner: Mutex::new(Inner {
                jars,
                changed: HashSet::new(),
            }),
            dirty: AtomicBool::new(false),
        }
    }

    /// The jars that changed since the last call, as `(host, JSON)`
    /// (the `cookie_store` JSON format, session cookies included); empty
    /// when none did, at the cost of one atomic load.
    pub fn take_changed(&self) -> Vec<(String, String)> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        let mut inner = self.inner.lock().expect("cookie jar lock");
        let hosts: Vec<String> = inner.changed.drain().collect();
        hosts
            .into_iter()
            .filter_map(|host| {
                let store = inner.jars.get(&host)?;
                let mut out = Vec::new();
                cookie_store::serde::json::save_incl_expired_and_nonpersistent(store, &mut out)
                    .ok()?;
                Some((host, String::from_utf8(out).ok()?))
            })
            .collect()
    }

    /// Cookies held, over all hosts (expired ones not counted).
    pub fn len(&self) -> usize {
        let inner = self.inner.lock().expect("cookie jar lock");
        inner
            .jars
            .values()
            .map(|s| s.iter_unexpired().count())
            .sum()
    }

    /// Whether no cookie is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl reqwest::cookie::CookieStore for Jar {
    fn set_cookies(&self, headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        let Some(host) = url.host_str() else {
            return;
        };
        let cookies: Vec<RawCookie<'static>> = headers
            .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
            .filter_map(|s| RawCookie::parse(s.to_owned()).ok())
            .collect();
        if cookies.is_empty() {
            return;
        }
        let mut inner = self.inner.lock().expect("cookie jar lock");
        let store = inner.jars.entry(host.to_string()).or_default();
        store.store_response_cookies(cookies.into_iter(), url);
        inner.changed.insert(host.to_string());
        self.dirty.store(true, Ordering::Release);
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        let host = url.host_str()?;
        let inner = self.inner.lock().expect("cookie jar lock");
        let store = inner.jars.get(host)?;
        let header = store
            .get_request_values(url)
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        if header.is_empty() {
            return None;
        }
        HeaderValue::from_str(&header).ok()
    }
}

#[cfg(test)]
mod tests {
    use reqwest::cookie::CookieStore as _;

    use super::*;

    fn set(jar: &Jar, url: &str, headers: &[&str]) {
        let values: Vec<HeaderValue> = headers
            .iter()
            .map(|h| HeaderValue::from_str(h).unwrap())
            .collect();
        jar.set_cookies(&mut values.iter(), &Url::parse(url).unwrap());
    }

    /// The `Cookie` header for `url`, its pairs sorted.
    fn get(jar: &Jar, url: &str) -> Option<String> {
        jar.cookies(&Url::parse(url).unwrap()).map(|v| {
            let mut pairs: Vec<&str> = v.to_str().unwrap().split("; ").collect();
            pairs.sort_unstable();
            pairs.join("; ")
        })
    }

    #[test]
    fn path_domain_and_host_rules() {
        let jar = Jar::default();
        set(
            &jar,
            "http://shop.example/login",
            &[
                "session=abc",
                "cart=1; Path=/cart",
                "wide=1; Domain=example",
                "gone=1; Max-Age=0",
            ],
        );
        // `Domain=example` domain-matches the host that set it.
        assert_eq!(
            get(&jar, "http://shop.example/"),
            Some("session=abc; wide=1".into())
        );
        assert_eq!(
            get(&jar, "http://shop.example/cart/x"),
            Some("cart=1; session=abc; wide=1".into())
        );
        // Another host never sees them, whatever `Domain` said.
        assert_eq!(get(&jar, "http://other.example/"), None);
        assert_eq!(get(&jar, "http://example/"), None);
    }

    #[test]
    fn changed_jars_round_trip_with_session_cookies() {
        let jar = Jar::default();
        assert!(jar.take_changed().is_empty());
        set(&jar, "http://a.test/", &["s=1", "p=2; Max-Age=3600"]);
        let rows = jar.take_changed();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, "a.test");
        assert!(jar.take_changed().is_empty(), "taken once");
        let back = Jar::load(rows);
        assert_eq!(get(&back, "http://a.test/"), Some("p=2; s=1".into()));
        assert_eq!(back.len(), 2);
    }
}
