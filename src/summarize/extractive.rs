//! The offline summarizer: sentence splitting and LexRank.
//!
//! In: a page's main text (one line per block). Out: its most central
//! sentences, in document order. Deterministic: the same text always gives
//! the same summary (term ids by first occurrence, sparse vectors sorted by
//! id, ties broken by position).
//!
//! LexRank (Erkan & Radev, 2004), the continuous variant: sentences are
//! TF-IDF vectors, edges are cosine similarities, and a sentence's score is
//! its stationary probability under a damped random walk over that graph.

use std::collections::HashMap;

/// Most sentences ranked; the graph is quadratic in this. Later sentences
/// of a very long page are not candidates.
const MAX_SENTENCES: usize = 400;
/// Sentences shorter than this (in words) are not candidates while enough
/// longer ones exist: menu items, captions, bylines.
const MIN_WORDS: usize = 5;
const DAMPING: f64 = 0.85;
const ITERATIONS: usize = 100;
const EPSILON: f64 = 1e-9;

/// Words that never end a sentence when followed by a period.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf", "al",
    "inc", "ltd", "co", "corp", "dept", "univ", "no", "nos", "vol", "fig", "figs", "p", "pp", "ch",
    "sec", "ed", "eds", "approx", "est", "gen", "gov", "sen", "rep", "rev", "hon", "capt", "col",
    "lt", "sgt", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "u.s", "u.k", "u.n", "e.u", "a.m", "p.m", "ph.d", "b.a", "m.a", "ave", "blvd", "rd",
];

const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "for", "from", "had", "has",
    "have", "he", "her", "his", "i", "if", "in", "into", "is", "it", "its", "of", "on", "or",
    "our", "she", "so", "than", "that", "the", "their", "them", "then", "there", "these", "they",
    "this", "to", "was", "we", "were", "which", "who", "will", "with", "would", "you", "your",
    "not", "can", "do", "does", "did", "all", "also", "more", "most", "other", "some", "such",
    "what", "when", "where", "how", "about", "after", "before", "over", "under", "between", "out",
    "up", "down", "no", "yes", "may", "might", "must", "should", "could", "one", "two",
];

/// Splits text into sentences. Line breaks always end a sentence; within a
/// line, `.`, `!`, `?` or `…` followed by a space end one unless the word
/// before is an abbreviation ("Dr.", "e.g.", "U.S."), an initial ("J."),
/// or the next word starts in lower case. "3.5%" and "example.com/a.html"
/// have no space after the period and are never split.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let chars: Vec<(usize, char)> = line.char_indices().collect();
        // Byte offset where the current sentence starts, and the index of
        // the first char after the last split.
        let mut start = 0usize;
        let mut resume = 0usize;
        for (i, &(pos, c)) in chars.iter().enumerate() {
            if i < resume || !matches!(c, '.' | '!' | '?' | '…') {
                continue;
            }
            // Swallow closing quotes and brackets and repeated marks.
            let mut j = i + 1;
            while j < chars.len()
                && matches!(
                    chars[j].1,
                    '.' | '!' | '?' | '"' | '\'' | ')' | ']' | '”' | '’' | '»'
                )
            {
                j += 1;
            }
            if j >= chars.len() || !chars[j].1.is_whitespace() {
                continue;
            }
            let mut k = j;
            while k < chars.len() && chars[k].1.is_whitespace() {
                k += 1;
            }
            let Some(&(_, next)) = chars.get(k) else {
                continue;
            };
            if next.is_lowercase() {
                continue;
            }
            if c == '.' && j == i + 1 && is_abbreviation(&line[start..pos]) {
                continue;
            }
            let end = chars[j - 1].0 + chars[j - 1].1.len_utf8();
            push_sentence(&mut out, &line[start..end]);
            start = chars[k].0;
            resume = k;
        }
        push_sentence(&mut out, &line[start..]);
    }
    out
}

fn push_sentence(out: &mut Vec<String>, s: &str) {
    let s = s.trim();
    if !s.is_empty() {
        out.push(s.to_string());
    }
}

/// Whether the word ending `before` (the text up to a period) is an
/// abbreviation or an initial.
fn is_abbreviation(before: &str) -> bool {
    let word = before
        .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"')
        .next()
        .unwrap_or("");
    let lower = word.to_lowercase();
    let single_letter = {
        let mut cs = word.chars();
        matches!((cs.next(), cs.next()), (Some(c), None) if c.is_alphabetic())
    };
    single_letter || ABBREVIATIONS.contains(&lower.as_str())
}

fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The `n` most central sentences of `text`, in document order, joined by
/// spaces. Empty if the text has no sentences.
pub fn summarize(text: &str, n: usize) -> String {
    let all = sentences(text);
    let mut candidates: Vec<(usize, &String)> = all
        .iter()
        .enumerate()
        .filter(|(_, s)| words(s).count() >= MIN_WORDS)
        .take(MAX_SENTENCES)
        .collect();
    if candidates.len() < n {
        candidates = all.iter().enumerate().take(MAX_SENTENCES).collect();
    }
    if candidates.len() <= n {
        return candidates
            .iter()
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>()
            .join(" ");
    }
    let scores = lexrank(
        &candidates
            .iter()
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>(),
    );
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut chosen: Vec<usize> = order.into_iter().take(n).collect();
    chosen.sort_unstable();
    chosen
        .iter()
        .map(|&i| candidates[i].1.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// LexRank scores of `sentences`.
fn lexrank(sentences: &[&str]) -> Vec<f64> {
    let n = sentences.len();
    // Term ids by first occurrence; term frequencies per sentence.
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut tfs: Vec<Vec<(usize, f64)>> = Vec::with_capacity(n);
    for s in sentences {
        let mut counts: HashMap<usize, f64> = HashMap::new();
        for w in words(s) {
            if w.len() < 2 || STOPWORDS.contains(&w.as_str()) {
                continue;
            }
            let next = ids.len();
            let id = *ids.entry(w).or_insert(next);
            *counts.entry(id).or_insert(0.0) += 1.0;
        }
        let mut tf: Vec<(usize, f64)> = counts.into_iter().collect();
        tf.sort_unstable_by_key(|(t, _)| *t);
        tfs.push(tf);
    }
    let mut df = vec![0usize; ids.len()];
    for tf in &tfs {
        for (t, _) in tf {
            df[*t] += 1;
        }
    }
    let vectors: Vec<Vec<(usize, f64)>> = tfs
        .into_iter()
        .map(|tf| {
            let mut v: Vec<(usize, f64)> = tf
                .into_iter()
                .map(|(t, c)| (t, c * (1.0 + (n as f64 / df[t] as f64).ln())))
                .collect();
            let norm = v.iter().map(|(_, x)| x * x).sum::<f64>().sqrt();
            if norm > 0.0 {
                for (_, x) in &mut v {
                    *x /= norm;
                }
            }
            v
        })
        .collect();
    // Row-stochastic similarity matrix (self-similarity included, so no
    // row is empty).
    let mut sim = vec![0.0f64; n * n];
    for i in 0..n {
        for j in i..n {
            let s = if i == j {
                1.0
            } else {
                dot(&vectors[i], &vectors[j])
            };
            sim[i * n + j] = s;
            sim[j * n + i] = s;
        }
    }
    for i in 0..n {
        let row = &mut sim[i * n..(i + 1) * n];
        let sum: f64 = row.iter().sum();
        for x in row {
            *x /= sum;
        }
    }
    let mut p = vec![1.0 / n as f64; n];
    let mut next = vec![0.0f64; n];
    for _ in 0..ITERATIONS {
        for (j, nj) in next.iter_mut().enumerate() {
            let mut acc = 0.0;
            for (i, pi) in p.iter().enumerate() {
                acc += pi * sim[i * n + j];
            }
            *nj = (1.0 - DAMPING) / n as f64 + DAMPING * acc;
        }
        let delta: f64 = p.iter().zip(&next).map(|(a, b)| (a - b).abs()).sum();
        std::mem::swap(&mut p, &mut next);
        if delta < EPSILON {
            break;
        }
    }
    p
}

fn dot(a: &[(usize, f64)], b: &[(usize, f64)]) -> f64 {
    let (mut i, mut j, mut acc) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                acc += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_survives_abbreviations_numbers_and_urls() {
        let cases: &[(&str, &[&str])] = &[
            (
                "Dr. Smith arrived. He left.",
                &["Dr. Smith arrived.", "He left."],
            ),
            (
                "Prices rose 3.5% in the U.S. last year. Analysts were surprised.",
                &[
                    "Prices rose 3.5% in the U.S. last year.",
                    "Analysts were surprised.",
                ],
            ),
            (
                "Fruit, e.g. apples, is good. See https://example.com/a.html for more. Done!",
                &[
                    "Fruit, e.g. apples, is good.",
                    "See https://example.com/a.html for more.",
                    "Done!",
                ],
            ),
            (
                "J. R. R. Tolkien wrote it. Really? Yes!",
                &["J. R. R. Tolkien wrote it.", "Really?", "Yes!"],
            ),
            (
                "He said \"Stop.\" Then he left... And never came back.",
                &[
                    "He said \"Stop.\"",
                    "Then he left...",
                    "And never came back.",
                ],
            ),
            (
                "A heading\nA paragraph without a period",
                &["A heading", "A paragraph without a period"],
            ),
            (
                "Version 2.0 is out. It costs $4.99 now.",
                &["Version 2.0 is out.", "It costs $4.99 now."],
            ),
            (
                "Mt. Everest is high. Trains leave at 5 p.m. daily.",
                &["Mt. Everest is high.", "Trains leave at 5 p.m. daily."],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(sentences(text), *want, "{text}");
        }
    }

    const TEXT: &str = "\
Rust is a systems programming language focused on safety and speed.\n\
The Rust compiler checks memory safety at compile time without a garbage collector.\n\
Many companies now use Rust for systems programming because of its memory safety.\n\
The weather in the mountains was cold and windy last weekend.\n\
Cargo, the Rust package manager, builds code and downloads libraries.\n\
Memory safety bugs are a large share of security vulnerabilities in systems code.\n\
My cat prefers sleeping on the warm windowsill in the afternoon.";

    #[test]
    fn picks_central_sentences_in_document_order() {
        let s = summarize(TEXT, 3);
        assert!(!s.contains("weather") && !s.contains("cat"), "{s}");
        assert!(
            s.contains("memory safety") || s.contains("Memory safety"),
            "{s}"
        );
        // Document order.
        let sents = sentences(&s);
        assert_eq!(sents.len(), 3);
        let pos = |x: &str| TEXT.find(x).unwrap();
        assert!(pos(&sents[0]) < pos(&sents[1]) && pos(&sents[1]) < pos(&sents[2]));
    }

    #[test]
    fn deterministic_and_sized() {
        let a = summarize(TEXT, 2);
        for _ in 0..5 {
            assert_eq!(summarize(TEXT, 2), a);
        }
        assert_eq!(sentences(&a).len(), 2);
        assert_eq!(sentences(&summarize(TEXT, 1)).len(), 1);
        // Fewer sentences than asked for: all of them.
        assert_eq!(
            summarize("Only one sentence here.", 3),
            "Only one sentence here."
        );
        assert_eq!(summarize("", 3), "");
        assert_eq!(summarize(" \n ", 3), "");
    }
}
