//! Politeness against servers on loopback that log every request with its
//! time: robots.txt (RFC 9309), Crawl-delay, rates, Retry-After, retries,
//! timeouts, and page-level robots directives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::crawl::{Crawled, config, run};
use crate::util::{Server, html, listener};

/// How `/robots.txt` answers, request by request (the last one repeats).
#[derive(Clone)]
enum RobotsAnswer {
    Body(String),
    Status(u16),
    /// 503 with this Retry-After.
    Unavailable(&'static str),
    Redirect(&'static str),
    /// Drop the connection without an answer.
    Drop,
}

struct Site {
    robots: Vec<RobotsAnswer>,
    /// Path → HTML body. Every page not listed is a small page with no links.
    pages: HashMap<&'static str, String>,
    /// Headers added to one path's answer.
    headers: HashMap<&'static str, (&'static str, &'static str)>,
    log: Arc<Mutex<Vec<(Instant, String)>>>,
    hits: Mutex<HashMap<String, u32>>,
}

async fn handle(State(site): State<Arc<Site>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    site.log
        .lock()
        .unwrap()
        .push((Instant::now(), path.clone()));
    let n = {
        let mut hits = site.hits.lock().unwrap();
        let n = hits.entry(path.clone()).or_insert(0);
        *n += 1;
        *n
    };
    if path == "/robots.txt" {
        let answer = site
            .robots
            .get(n as usize - 1)
            .or(site.robots.last())
            .cloned()
            .unwrap_or(RobotsAnswer::Status(404));
        return match answer {
            RobotsAnswer::Body(b) => ([(header::CONTENT_TYPE, "text/plain")], b).into_response(),
            RobotsAnswer::Status(s) => StatusCode::from_u16(s).unwrap().into_response(),
            RobotsAnswer::Unavailable(after) => {
                let mut r = StatusCode::SERVICE_UNAVAILABLE.into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static(after));
                r
            }
            RobotsAnswer::Redirect(to) => {
                let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
                r.headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_static(to));
                r
            }
            RobotsAnswer::Drop => panic!("dropping the connection (fixture)"),
        };
    }
    match path.as_str() {
        // 500 twice, then a page.
        "/flaky" if n <= 2 => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        // 429 with Retry-After: 2 the first time.
        "/limited" if n == 1 => {
            let mut r = StatusCode::TOO_MANY_REQUESTS.into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            return r;
        }
        "/gone" => return StatusCode::NOT_FOUND.into_response(),
        // Accepts the request and never answers.
        "/hang" => std::future::pending::<()>().await,
        _ => {}
    }
    let body = site
        .pages
        .get(path.as_str())
        .cloned()
        .unwrap_or_else(|| format!("<title>{path}</title><p>Page {path}.</p>"));
    let mut r = html(body);
    if let Some((name, value)) = site.headers.get(path.as_str()) {
        r.headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    r
}

async fn serve(
    robots: Vec<RobotsAnswer>,
    pages: &[(&'static str, &str)],
    headers: &[(&'static str, (&'static str, &'static str))],
) -> Server {
    let l = listener().await;
    let addr = l.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let site = Arc::new(Site {
        robots,
        pages: pages.iter().map(|(p, b)| (*p, b.to_string())).collect(),
        headers: headers.iter().cloned().collect(),
        log: log.clone(),
        hits: Mutex::new(HashMap::new()),
    });
    let app = Router::new().fallback(handle).with_state(site);
    tokio::spawn(async move { axum::serve(l, app).await });
    Server { addr, log }
}

/// A home page linking to `paths`.
fn links(paths: &[&str]) -> String {
    let mut b = String::from("<title>Home</title>");
    for p in paths {
        b.push_str(&format!("<a href=\"{p}\">{p}</a>\n"));
    }
    b
}

async fn crawl(
    servers: &[&Server],
    adjust: impl FnOnce(&mut trawl::config::CrawlConfig),
) -> Crawled {
    let seeds: Vec<String> = servers.iter().map(|s| s.url("/")).collect();
    let mut cfg = config(&seeds);
    adjust(&mut cfg);
    run(cfg).await
}

/// Times of the requests for pages (robots.txt left out).
fn page_times(s: &Server) -> Vec<Instant> {
    s.timed_requests()
        .into_iter()
        .filter(|(_, p)| p != "/robots.txt")
        .map(|(t, _)| t)
        .collect()
}

const HOME_LINKS: &[&str] = &["/a", "/private/x", "/private/open", "/b"];

#[tokio::test]
async fn robots_rules_are_obeyed_with_our_group_and_longest_match() {
    let robots = "User-agent: *\nDisallow: /\n\nUser-agent: trawl\nDisallow: /private\nAllow: /private/open\n";
    let home = links(HOME_LINKS);
    let s = serve(
        vec![RobotsAnswer::Body(robots.into())],
        &[("/", &home)],
        &[],
    )
    .await;
    let c = crawl(&[&s], |_| {}).await;
    let all = s.all_requests();
    assert_eq!(all[0], "/robots.txt", "robots.txt comes first: {all:?}");
    assert_eq!(all.iter().filter(|p| *p == "/robots.txt").count(), 1);
    let mut pages = s.requests();
    pages.sort();
    assert_eq!(pages, ["/", "/a", "/b", "/private/open"]);
    let skipped = c.urls_in("skipped").await;
    assert_eq!(
        skipped.get(&s.url("/private/x")).map(String::as_str),
        Some("robots")
    );
    let stored: (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT robots_status, crawl_delay_ms FROM hosts WHERE origin = $1")
            .bind(format!("http://127.0.0.1:{}", s.addr.port()))
            .fetch_one(&c.db.sql().await)
            .await
            .unwrap();
    assert_eq!(stored, (Some(200), None));
}

#[tokio::test]
async fn another_agent_name_gets_the_star_group() {
    let robots = "User-agent: *\nDisallow: /a\n\nUser-agent: trawl\nDisallow: /b\n";
    let home = links(HOME_LINKS);
    let s = serve(
        vec![RobotsAnswer::Body(robots.into())],
        &[("/", &home)],
        &[],
    )
    .await;
    let c = crawl(&[&s], |cfg| {
        cfg.fetch.user_agent = "OtherBot/2.0 (+https://x.test)".into()
    })
    .await;
    let pages = s.requests();
    assert!(
        !pages.contains(&"/a".to_string()) && pages.contains(&"/b".to_string()),
        "{pages:?}"
    );
    assert_eq!(
        c.urls_in("skipped")
            .await
            .get(&s.url("/a"))
            .map(String::as_str),
        Some("robots")
    );
}

#[tokio::test]
async fn a_redirected_robots_txt_with_a_bom_is_followed_and_a_huge_one_is_cut() {
    // 301 to the real file, which starts with a BOM.
    let real = "\u{feff}User-agent: *\nDisallow: /private\n";
    let s = serve(
        vec![RobotsAnswer::Redirect("/real-robots.txt")],
        &[("/", &links(HOME_LINKS)), ("/real-robots.txt", real)],
        &[],
    )
    .await;
    crawl(&[&s], |_| {}).await;
    let pages = s.requests();
    assert!(
        pages.iter().all(|p| !p.starts_with("/private")),
        "{pages:?}"
    );
    assert!(pages.contains(&"/a".to_string()));

    // 2 MB: the rule at the start applies, the one past 512 KiB does not.
    let mut big = String::from("User-agent: *\nDisallow: /private\n");
    while big.len() < 2 * 1024 * 1024 {
        big.push_str("# padding padding padding padding padding padding padding\n");
    }
    big.push_str("Disallow: /a\n");
    let s = serve(
        vec![RobotsAnswer::Body(big)],
        &[("/", &links(HOME_LINKS))],
        &[],
    )
    .await;
    crawl(&[&s], |_| {}).await;
    let pages = s.requests();
    assert!(
        pages.iter().all(|p| !p.starts_with("/private")),
        "{pages:?}"
    );
    assert!(pages.contains(&"/a".to_string()), "{pages:?}");
}

#[tokio::test]
async fn robots_txt_404_allows_everything() {
    let s = serve(
        vec![RobotsAnswer::Status(404)],
        &[("/", &links(HOME_LINKS))],
        &[],
    )
    .await;
    let c = crawl(&[&s], |_| {}).await;
    assert_eq!(s.requests().len(), 5);
    assert_eq!(c.report.pages_stored, 5);
}

#[tokio::test]
async fn an_unavailable_robots_txt_holds_the_host_until_it_recovers() {
    // 503, then a dropped connection, then rules: nothing else is asked
    // for until the rules are known.
    let s = serve(
        vec![
            RobotsAnswer::Status(503),
            RobotsAnswer::Drop,
            RobotsAnswer::Body("User-agent: *\nDisallow: /private\n".into()),
        ],
        &[("/", &links(HOME_LINKS))],
        &[],
    )
    .await;
    let c = crawl(&[&s], |_| {}).await;
    let all = s.all_requests();
    assert_eq!(&all[..3], ["/robots.txt"; 3], "{all:?}");
    assert!(all[3..].iter().all(|p| p != "/robots.txt"));
    let mut pages = s.requests();
    pages.sort();
    assert_eq!(pages, ["/", "/a", "/b"]);
    assert_eq!(c.report.pages_stored, 3);
}

#[tokio::test]
async fn crawl_delay_spaces_one_host_only() {
    let pages: Vec<String> = (0..4).map(|i| format!("/p{i}")).collect();
    let refs: Vec<&str> = pages.iter().map(String::as_str).collect();
    let home = links(&refs);
    let slow = serve(
        vec![RobotsAnswer::Body("User-agent: *\nCrawl-delay: 1\n".into())],
        &[("/", &home)],
        &[],
    )
    .await;
    let fast = serve(vec![RobotsAnswer::Status(404)], &[("/", &home)], &[]).await;
    let c = crawl(&[&slow, &fast], |cfg| {
        cfg.politeness.per_host_concurrency = 4
    })
    .await;
    assert_eq!(c.report.pages_stored, 10);
    let t = page_times(&slow);
    for w in t.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(950),
            "{:?}",
            w[1] - w[0]
        );
    }
    // The other host did not wait for it.
    let f = page_times(&fast);
    assert!(
        f.last().unwrap() < &t[2],
        "fast host finished after the slow one's third request"
    );
    let delay: Option<i64> =
        sqlx::query_scalar("SELECT crawl_delay_ms FROM hosts WHERE origin = $1")
            .bind(format!("http://127.0.0.1:{}", slow.addr.port()))
            .fetch_one(&c.db.sql().await)
            .await
            .unwrap();
    assert_eq!(delay, Some(1000));
}

#[tokio::test]
async fn per_host_rate_holds_in_every_one_second_window_on_parallel_hosts() {
    let pages: Vec<String> = (0..14).map(|i| format!("/p{i}")).collect();
    let refs: Vec<&str> = pages.iter().map(String::as_str).collect();
    let home = links(&refs);
    let a = serve(vec![RobotsAnswer::Status(404)], &[("/", &home)], &[]).await;
    let b = serve(vec![RobotsAnswer::Status(404)], &[("/", &home)], &[]).await;
    let c = crawl(&[&a, &b], |cfg| {
        cfg.politeness.per_host_rate = 5.0;
        cfg.politeness.per_host_concurrency = 4;
    })
    .await;
    assert_eq!(c.report.pages_stored, 30);
    for s in [&a, &b] {
        // robots.txt counts as a request too.
        let t: Vec<Instant> = s.timed_requests().into_iter().map(|(t, _)| t).collect();
        for (i, start) in t.iter().enumerate() {
            let in_window = t[i..]
                .iter()
                .take_while(|x| **x - *start < Duration::from_secs(1))
                .count();
            assert!(in_window <= 6, "{in_window} requests within one second");
        }
    }
    // In parallel: each host's crawl overlaps the other's.
    let (ta, tb) = (page_times(&a), page_times(&b));
    assert!(ta[0] < *tb.last().unwrap() && tb[0] < *ta.last().unwrap());
}

#[tokio::test]
async fn retry_after_slows_the_host_and_transient_failures_are_retried() {
    let home = links(&["/limited", "/flaky", "/after"]);
    let s = serve(vec![RobotsAnswer::Status(404)], &[("/", &home)], &[]).await;
    let other_home = links(&["/o1", "/o2"]);
    let other = serve(vec![RobotsAnswer::Status(404)], &[("/", &other_home)], &[]).await;
    let c = crawl(&[&s, &other], |cfg| cfg.politeness.per_host_concurrency = 1).await;

    let timed = s.timed_requests();
    let first_429 = timed.iter().position(|(_, p)| p == "/limited").unwrap();
    let (t429, _) = timed[first_429];
    let (tnext, _) = &timed[first_429 + 1];
    assert!(
        *tnext - t429 >= Duration::from_millis(1950),
        "{:?}",
        *tnext - t429
    );
    // The other host went on meanwhile.
    assert!(
        page_times(&other)
            .iter()
            .all(|t| *t < t429 + Duration::from_secs(2))
    );

    let counts = s.counts();
    assert_eq!(counts["/limited"], 2);
    assert_eq!(counts["/flaky"], 3);
    let pages = c.pages().await;
    assert_eq!(
        pages[&s.url("/flaky")].0,
        200,
        "stored once, as the success"
    );
    let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM urls WHERE url = $1")
        .bind(s.url("/flaky"))
        .fetch_one(&c.db.sql().await)
        .await
        .unwrap();
    assert_eq!(attempts, 3);
}

#[tokio::test]
async fn permanent_failures_are_not_retried_and_retries_run_out() {
    let home = links(&["/gone", "/flaky"]);
    let s = serve(vec![RobotsAnswer::Status(404)], &[("/", &home)], &[]).await;
    let c = crawl(&[&s], |cfg| cfg.politeness.retries = 1).await;
    let counts = s.counts();
    assert_eq!(counts["/flaky"], 2, "one try and one retry, both 500");
    assert_eq!(counts["/gone"], 1, "a 404 is not retried");
    let failed = c.urls_in("failed").await;
    assert_eq!(
        failed.get(&s.url("/gone")).map(String::as_str),
        Some("http_404")
    );
    assert_eq!(
        failed.get(&s.url("/flaky")).map(String::as_str),
        Some("http_500")
    );
}

#[tokio::test]
async fn a_server_that_never_answers_costs_one_timeout() {
    let home = links(&["/hang", "/a"]);
    let s = serve(vec![RobotsAnswer::Status(404)], &[("/", &home)], &[]).await;
    let started = Instant::now();
    let c = crawl(&[&s], |cfg| {
        cfg.fetch.timeout = Duration::from_secs(2);
        cfg.fetch.read_timeout = Duration::from_secs(2);
        cfg.politeness.retries = 0;
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let failed = c.urls_in("failed").await;
    assert_eq!(
        failed.get(&s.url("/hang")).map(String::as_str),
        Some("timeout")
    );
    assert_eq!(c.report.pages_stored, 2);
}

#[tokio::test]
async fn meta_robots_and_x_robots_tag_are_honoured() {
    let s = serve(
        vec![RobotsAnswer::Status(404)],
        &[
            ("/", &links(&["/closed", "/tagged", "/open"])),
            (
                "/closed",
                "<meta name=\"robots\" content=\"noindex, nofollow\"><title>c</title><a href=\"/behind\">b</a>",
            ),
            ("/tagged", &links(&["/via-tagged"])),
        ],
        &[("/tagged", ("x-robots-tag", "otherbot: nofollow, trawl: noindex"))],
    )
    .await;
    let c = crawl(&[&s], |_| {}).await;
    let pages = s.requests();
    assert!(!pages.contains(&"/behind".to_string()), "{pages:?}");
    assert!(
        pages.contains(&"/via-tagged".to_string()),
        "only noindex for us: {pages:?}"
    );
    let skipped = c.urls_in("skipped").await;
    assert_eq!(
        skipped.get(&s.url("/behind")).map(String::as_str),
        Some("nofollow")
    );
    assert_eq!(
        c.page_field(&s.url("/closed"), "noindex").await.as_deref(),
        Some("1")
    );
    assert_eq!(
        c.page_field(&s.url("/tagged"), "noindex").await.as_deref(),
        Some("1")
    );
    assert_eq!(
        c.page_field(&s.url("/open"), "noindex").await.as_deref(),
        Some("0")
    );

    // Exports leave noindex pages out unless asked.
    for (include_noindex, expect) in [(false, 3), (true, 5)] {
        let opts = trawl::export::ExportOptions {
            include_noindex,
            ..trawl::export::ExportOptions::new(
                trawl::export::What::Pages,
                trawl::export::Format::Jsonl,
            )
        };
        let mut out = Vec::new();
        trawl::export::export(&c.store, &opts, &mut out)
            .await
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), expect, "{text}");
        assert_eq!(text.contains("/closed"), include_noindex);
    }
}

#[tokio::test]
async fn ignore_robots_fetches_disallowed_pages_and_never_robots_txt() {
    let s = serve(
        vec![RobotsAnswer::Body("User-agent: *\nDisallow: /\n".into())],
        &[("/", &links(HOME_LINKS))],
        &[],
    )
    .await;
    let c = crawl(&[&s], |cfg| cfg.politeness.robots = false).await;
    assert!(!s.all_requests().contains(&"/robots.txt".to_string()));
    assert_eq!(c.report.pages_stored, 5);
}

#[tokio::test]
async fn a_resumed_crawl_reads_robots_txt_from_the_database() {
    let s = serve(
        vec![RobotsAnswer::Body(
            "User-agent: *\nDisallow: /private\n".into(),
        )],
        &[("/", &links(HOME_LINKS))],
        &[],
    )
    .await;
    let c = crawl(&[&s], |cfg| cfg.limits.max_pages = Some(2)).await;
    assert_eq!(s.requests().len(), 2);
    let report = crate::crawl::resume(&c.store, |cfg| cfg.limits.max_pages = None).await;
    assert_eq!(report.pages_stored, 3, "/, /a, /b");
    let robots = s
        .all_requests()
        .iter()
        .filter(|p| *p == "/robots.txt")
        .count();
    assert_eq!(robots, 1, "the stored answer is fresh: not fetched again");
    assert!(s.requests().iter().all(|p| !p.starts_with("/private")));
}

#[tokio::test]
async fn a_resumed_crawl_waits_a_crawl_delay_after_the_last_runs_request() {
    let s = serve(
        vec![RobotsAnswer::Body("User-agent: *\nCrawl-delay: 1\n".into())],
        &[("/", &links(&["/a", "/b"]))],
        &[],
    )
    .await;
    let c = crawl(&[&s], |cfg| cfg.limits.max_pages = Some(1)).await;
    assert_eq!(s.requests(), ["/"]);
    // Resumed at once: robots.txt comes from the database, and no request
    // is made for it, but the Crawl-delay holds from the last run's
    // request (a lower bound only: a loaded machine can only be slower).
    let report = crate::crawl::resume(&c.store, |cfg| cfg.limits.max_pages = None).await;
    assert_eq!(report.pages_stored, 3);
    let times = page_times(&s);
    assert_eq!(times.len(), 3);
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(950),
            "{:?}",
            pair[1] - pair[0]
        );
    }
}

#[tokio::test]
async fn a_recrawl_waits_out_a_retry_after_the_last_run_was_given() {
    let s = serve(
        vec![RobotsAnswer::Status(404)],
        &[("/", &links(&["/limited"]))],
        &[],
    )
    .await;
    // No retries: the 429 is recorded and the run ends at once, well
    // before its Retry-After of 2 s is over.
    let c = crawl(&[&s], |cfg| cfg.politeness.retries = 0).await;
    assert_eq!(c.report.failed, 1);
    let timed = s.timed_requests();
    let (t429, _) = timed.iter().find(|(_, p)| p == "/limited").unwrap().clone();
    let until: i64 = sqlx::query_scalar("SELECT next_fetch_at FROM hosts WHERE origin = $1")
        .bind(s.url(""))
        .fetch_one(&c.db.sql().await)
        .await
        .unwrap();
    assert!(until > 0, "the wait is stored with the host");
    // status names a host whose wait is still running.
    sqlx::query("UPDATE hosts SET next_fetch_at = $1 WHERE origin = $2")
        .bind(trawl::util::now_ms() + 3_600_000)
        .bind(s.url(""))
        .execute(&c.db.sql().await)
        .await
        .unwrap();
    let st = trawl::status::collect(&c.store).await.unwrap();
    assert_eq!(st.hosts_waiting.len(), 1);
    assert_eq!(st.hosts_waiting[0].origin, s.url(""));
    assert!(st.to_text().contains("host waiting: "), "{}", st.to_text());
    sqlx::query("UPDATE hosts SET next_fetch_at = $1 WHERE origin = $2")
        .bind(until)
        .bind(s.url(""))
        .execute(&c.db.sql().await)
        .await
        .unwrap();

    let report = trawl::crawl::recrawl(
        &c.store,
        |_| {},
        trawl::crawl::RecrawlOptions {
            due_only: false,
            now: trawl::util::now_ms(),
        },
        trawl::crawl::Controls::default(),
        Arc::new(trawl::progress::Counters::default()),
    )
    .await
    .unwrap();
    assert_eq!(report.fetched, 2, "/ and /limited asked again");
    let after: Vec<Instant> = page_times(&s).into_iter().filter(|t| *t > t429).collect();
    assert_eq!(after.len(), 2);
    assert!(
        after[0] - t429 >= Duration::from_millis(1950),
        "{:?}",
        after[0] - t429
    );
}

#[tokio::test]
async fn a_resumed_crawls_robots_txt_request_keeps_the_host_clock() {
    let s = serve(
        vec![RobotsAnswer::Body("User-agent: *\nCrawl-delay: 1\n".into())],
        &[("/", &links(&["/a"]))],
        &[],
    )
    .await;
    let c = crawl(&[&s], |cfg| cfg.limits.max_pages = Some(1)).await;
    // The stored robots.txt is older than 24 hours: the resume asks again.
    sqlx::query("UPDATE hosts SET robots_fetched_at = 0")
        .execute(&c.db.sql().await)
        .await
        .unwrap();
    crate::crawl::resume(&c.store, |cfg| cfg.limits.max_pages = None).await;
    let timed = s.timed_requests();
    let paths: Vec<&str> = timed.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(paths, ["/robots.txt", "/", "/robots.txt", "/a"]);
    // Each request at least a Crawl-delay after the one before, across
    // the restart too (its robots.txt request is a request).
    for pair in timed.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= Duration::from_millis(950),
            "{} after {}: {:?}",
            pair[1].1,
            pair[0].1,
            pair[1].0 - pair[0].0
        );
    }
}

#[tokio::test]
async fn a_robots_txt_503_with_retry_after_is_asked_again_no_sooner() {
    // trawl's own schedule would ask again after 2 s (± a quarter).
    let s = serve(
        vec![RobotsAnswer::Unavailable("3"), RobotsAnswer::Status(404)],
        &[("/", &links(&[]))],
        &[],
    )
    .await;
    let c = crawl(&[&s], |_| {}).await;
    assert_eq!(c.report.pages_stored, 1);
    let robots: Vec<Instant> = s
        .timed_requests()
        .into_iter()
        .filter(|(_, p)| p == "/robots.txt")
        .map(|(t, _)| t)
        .collect();
    assert_eq!(robots.len(), 2);
    assert!(
        robots[1] - robots[0] >= Duration::from_millis(2950),
        "{:?}",
        robots[1] - robots[0]
    );
}
