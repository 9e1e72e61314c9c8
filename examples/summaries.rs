//! Both offline summarizers over a set of documents, for the ROUGE
//! benchmark in `bench/rouge` (its `run.sh` drives this).
//!
//! `cargo run --release --example summaries -- <input.jsonl> <output.jsonl>`
//!
//! Reads `{"id", "text", ...}` objects, one a line (`text`: one line per
//! block), summarizes each document in 3 sentences with
//! `summarize::extractive` (the default) and `summarize::lexrank` (the
//! baseline), and writes `{"id", "summarizer", "summary"}` lines. Then
//! times each summarizer alone: after the pass above as a warm-up, whole
//! passes over the documents until at least 2 s of CPU (Linux `/proc`), and prints the CPU
//! time per document to stderr (`NAME  N us/doc ...`).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "common/mod.rs"]
mod common;

const SENTENCES: usize = 3;
const MIN_CPU_SECS: f64 = 2.0;
/// Where `/proc` is missing the CPU clock reads 0: stop anyway.
const MAX_WALL: Duration = Duration::from_secs(120);

type Summarize = fn(&str, usize) -> String;

const SUMMARIZERS: [(&str, Summarize); 2] = [
    ("extractive", trawl::summarize::extractive::summarize),
    ("lexrank", trawl::summarize::lexrank::summarize),
];

#[derive(serde::Deserialize)]
struct Doc {
    id: String,
    text: String,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: summaries <input.jsonl> <output.jsonl>");
        std::process::exit(2);
    };
    let docs: Vec<Doc> = BufReader::new(std::fs::File::open(input).expect("open input"))
        .lines()
        .map(|l| l.expect("read input"))
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(&l).expect("input line"))
        .collect();
    assert!(!docs.is_empty(), "no documents in {input}");

    let mut out = BufWriter::new(std::fs::File::create(output).expect("create output"));
    for (name, summarize) in SUMMARIZERS {
        for doc in &docs {
            let line = serde_json::json!({
                "id": doc.id,
                "summarizer": name,
                "summary": summarize(&doc.text, SENTENCES),
            });
            writeln!(out, "{line}").expect("write output");
        }
    }
    out.flush().expect("write output");

    for (name, summarize) in SUMMARIZERS {
        let (mut cpu, mut passes, wall) = (0.0, 0, Instant::now());
        while cpu < MIN_CPU_SECS && wall.elapsed() < MAX_WALL {
            let start = common::cpu_seconds();
            for doc in &docs {
                std::hint::black_box(summarize(std::hint::black_box(&doc.text), SENTENCES));
            }
            cpu += common::cpu_seconds() - start;
            passes += 1;
        }
        let runs = (passes * docs.len()) as f64;
        eprintln!(
            "{name:<10} {:10.1} us/doc  ({} docs x {passes} passes, {cpu:.2} s CPU)",
            cpu * 1e6 / runs,
            docs.len(),
        );
    }
}
