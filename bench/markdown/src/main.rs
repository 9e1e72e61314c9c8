//! Converts the same HTML pages to Markdown with trawl's streaming pass
//! (`parse::parse`, which makes links, metadata, text and Markdown in one
//! read) and with three HTML→Markdown crates, and prints the CPU time of
//! each per page (median of several passes, one core) and the size of
//! what it wrote. Each converter's Markdown is written to OUT_DIR to be
//! read side by side.
//!
//!     markdown-compare OUT_DIR LIST
//!
//! LIST has one page a line: `PATH URL` (the URL the page was served at,
//! for resolving its links) and `# corpus NAME` lines that start a corpus.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Instant;

/// What the crates are told to leave out, as trawl does (they have no
/// notion of a main element).
const BOILERPLATE: [&str; 9] = [
    "script", "style", "noscript", "template", "nav", "aside", "header", "footer", "button",
];

fn median_us(passes: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..passes)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[passes / 2]
}

struct Corpus {
    name: String,
    pages: Vec<(String, url::Url, String)>,
}

/// `--one CONVERTER PATH URL N`: converts one page N times with one
/// converter and nothing else, to be counted under
/// `valgrind --tool=cachegrind` (instructions do not depend on the load of
/// the machine the way times do).
fn one(args: &[String]) {
    let html = String::from_utf8_lossy(&std::fs::read(&args[3]).expect("page")).into_owned();
    let url = url::Url::parse(&args[4]).expect("url");
    let n: usize = args[5].parse().expect("N");
    let htmd = htmd::HtmlToMarkdown::builder()
        .skip_tags(BOILERPLATE.to_vec())
        .build();
    let ignore: HashSet<String> = BOILERPLATE.iter().map(|s| s.to_string()).collect();
    for _ in 0..n {
        match args[2].as_str() {
            "trawl" => {
                black_box(trawl::parse::parse(
                    html.as_bytes(),
                    &url,
                    Some("text/html"),
                    trawl::parse::ParseLimits {
                        markdown: true,
                        ..Default::default()
                    },
                ));
            }
            "trawl-text" => {
                // The same pass without the Markdown: what it adds is
                // the difference.
                black_box(trawl::parse::parse(
                    html.as_bytes(),
                    &url,
                    Some("text/html"),
                    Default::default(),
                ));
            }
            "htmd" => {
                black_box(htmd.convert(&html).ok());
            }
            "fast_html2md" => {
                black_box(html2md::rewrite_html_custom_with_url(
                    &html,
                    &Some(ignore.clone()),
                    false,
                    &Some(url.clone()),
                ));
            }
            "mdka" => {
                black_box(mdka::html_to_markdown(&html));
            }
            other => panic!("no converter {other}"),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--one") {
        return one(&args);
    }
    let out_dir = std::path::PathBuf::from(&args[1]);
    let list = std::fs::read_to_string(&args[2]).expect("list");
    let mut corpora: Vec<Corpus> = Vec::new();
    for line in list.lines() {
        if let Some(name) = line.strip_prefix("# corpus ") {
            corpora.push(Corpus {
                name: name.trim().to_string(),
                pages: Vec::new(),
            });
        } else if let Some((path, url)) = line.split_once(' ') {
            let html = String::from_utf8_lossy(&std::fs::read(path).expect(path)).into_owned();
            let url = url::Url::parse(url.trim()).expect("url");
            corpora
                .last_mut()
                .expect("a corpus line first")
                .pages
                .push((path.to_string(), url, html));
        }
    }
    let htmd = htmd::HtmlToMarkdown::builder()
        .skip_tags(BOILERPLATE.to_vec())
        .build();
    let ignore: HashSet<String> = BOILERPLATE.iter().map(|s| s.to_string()).collect();
    println!(
        "{:<12} {:>5} {:>9} | {:>22} | {:>22} | {:>22} | {:>22}",
        "corpus",
        "pages",
        "HTML KB",
        "trawl parse µs (md KB)",
        "htmd µs (md KB)",
        "fast_html2md µs (KB)",
        "mdka µs (md KB)"
    );
    for c in &corpora {
        let passes = if c.pages.len() > 50 { 3 } else { 15 };
        let mut t = [0f64; 4];
        let mut kb = [0usize; 4];
        let mut html_bytes = 0;
        for (i, (path, url, html)) in c.pages.iter().enumerate() {
            html_bytes += html.len();
            let limits = trawl::parse::ParseLimits {
                markdown: true,
                ..Default::default()
            };
            t[0] += median_us(passes, || {
                black_box(trawl::parse::parse(
                    html.as_bytes(),
                    url,
                    Some("text/html"),
                    limits,
                ));
            });
            t[1] += median_us(passes, || {
                black_box(htmd.convert(html).ok());
            });
            t[2] += median_us(passes, || {
                black_box(html2md::rewrite_html_custom_with_url(
                    html,
                    &Some(ignore.clone()),
                    false,
                    &Some(url.clone()),
                ));
            });
            t[3] += median_us(passes, || {
                black_box(mdka::html_to_markdown(html));
            });
            let outs = [
                trawl::parse::parse(html.as_bytes(), url, Some("text/html"), limits).markdown,
                htmd.convert(html).unwrap_or_default(),
                html2md::rewrite_html_custom_with_url(
                    html,
                    &Some(ignore.clone()),
                    false,
                    &Some(url.clone()),
                ),
                mdka::html_to_markdown(html),
            ];
            let stem = std::path::Path::new(path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            for (k, (name, md)) in ["trawl", "htmd", "fast_html2md", "mdka"]
                .iter()
                .zip(&outs)
                .enumerate()
            {
                kb[k] += md.len();
                if i < 40 {
                    let dir = out_dir.join(&c.name).join(name);
                    std::fs::create_dir_all(&dir).expect("out dir");
                    std::fs::write(dir.join(format!("{i:02}-{stem}.md")), md).expect("write");
                }
            }
        }
        let n = c.pages.len().max(1) as f64;
        let cell = |k: usize| format!("{:>10.0} ({:>7.1})", t[k] / n, kb[k] as f64 / 1024.0 / n);
        println!(
            "{:<12} {:>5} {:>9.1} | {:>22} | {:>22} | {:>22} | {:>22}",
            c.name,
            c.pages.len(),
            html_bytes as f64 / 1024.0 / n,
            cell(0),
            cell(1),
            cell(2),
            cell(3)
        );
    }
}
