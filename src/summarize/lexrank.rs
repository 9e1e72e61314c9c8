//! LexRank (Erkan & Radev, 2004), the continuous variant: the offline
//! summarizer trawl used before [`super::extractive`]'s scorer, kept as
//! the quality baseline that `bench/rouge` measures the default against.
//!
//! Sentences are TF-IDF vectors, edges are cosine similarities, and a
//! sentence's score is its stationary probability under a damped random
//! walk over that graph. Quadratic in the number of sentences (at most
//! 400 are ranked): about 0.3 ms for a 4 KB text, 20 ms for 400 sentences.

use std::collections::HashMap;

use super::extractive::{STOPWORDS, sentences};

/// Most sentences ranked; the graph is quadratic in this. Later sentences
/// of a very long page are not candidates.
const MAX_SENTENCES: usize = 400;
/// Sentences shorter than this (in words) are not candidates while enough
/// longer ones exist: menu items, captions, bylines.
const MIN_WORDS: usize = 5;
const DAMPING: f64 = 0.85;
const ITERATIONS: usize = 100;
const EPSILON: f64 = 1e-9;

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
