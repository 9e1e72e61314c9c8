//! The offline summarizer: a page's most representative sentences, in
//! linear time.
//!
//! In: a page's main text (one line per block) and, when the page was
//! parsed by this version, the kind of each line (`h` heading, `c` code,
//! `t` table, `l` list item, `p` prose; see
//! [`crate::parse::extract::kind`]). Out: up to `n` of its sentences, in
//! document order, at most [`MAX_SUMMARY_CHARS`] long. Deterministic.
//!
//! The scorer is a centroid summarizer with a position prior (the family
//! of Radev et al.'s MEAD, 2004): a sentence scores by how much of the
//! page's recurring vocabulary it carries (terms found in two or more
//! sentences, and the headings' terms), normalized by its length, and
//! earlier sentences get a small bonus, since writers state what a page
//! is about first. Sentences are then taken best first, skipping one that
//! repeats a chosen one. Terms are hashed in place (no string per word);
//! the cost is one pass over at most [`MAX_CANDIDATES`] sentences, about
//! 20 µs for a 4–5 KB text, against ~300 µs for the LexRank it replaced
//! ([`super::lexrank`], kept as the quality baseline of `bench/rouge`).
//!
//! What is never a candidate: headings (their terms count as topic
//! words), code blocks and tables, lines that look like code or
//! configuration when the kinds are unknown, fragments under
//! [`MIN_WORDS`] words and run-ons over [`MAX_SENTENCE_CHARS`]. List items
//! are candidates only when prose runs short.

use std::sync::OnceLock;

use crate::util::FpMap;

/// Sentences considered at most: the first ones of a long page.
pub const MAX_CANDIDATES: usize = 200;
/// Sentences shorter than this (in words) are not candidates while enough
/// longer ones exist: menu items, captions, bylines.
pub const MIN_WORDS: usize = 5;
/// A longer "sentence" is a run-on list, a table row or a code line.
pub const MAX_SENTENCE_CHARS: usize = 500;
/// A summary stops before it grows past this many bytes (its first
/// sentence is cut at a word if it alone is longer).
pub const MAX_SUMMARY_CHARS: usize = 800;

/// Words that never end a sentence when followed by a period.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf", "al",
    "inc", "ltd", "co", "corp", "dept", "univ", "no", "nos", "vol", "fig", "figs", "p", "pp", "ch",
    "sec", "ed", "eds", "approx", "est", "gen", "gov", "sen", "rep", "rev", "hon", "capt", "col",
    "lt", "sgt", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "u.s", "u.k", "u.n", "e.u", "a.m", "p.m", "ph.d", "b.a", "m.a", "ave", "blvd", "rd",
];

/// Words too common to tell sentences apart (also LexRank's).
pub(super) const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "for", "from", "had", "has",
    "have", "he", "her", "his", "i", "if", "in", "into", "is", "it", "its", "of", "on", "or",
    "our", "she", "so", "than", "that", "the", "their", "them", "then", "there", "these", "they",
    "this", "to", "was", "we", "were", "which", "who", "will", "with", "would", "you", "your",
    "not", "can", "do", "does", "did", "all", "also", "more", "most", "other", "some", "such",
    "what", "when", "where", "how", "about", "after", "before", "over", "under", "between", "out",
    "up", "down", "no", "yes", "may", "might", "must", "should", "could", "one", "two",
];

/// More words this summarizer ignores besides [`STOPWORDS`].
const MORE_STOPWORDS: &[&str] = &[
    "said", "says", "just", "only", "very", "any", "each", "him", "me", "my", "us", "being",
];

/// Splits text into sentences. Line breaks always end a sentence; within a
/// line, `.`, `!`, `?` or `…` followed by a space end one unless the word
/// before is an abbreviation ("Dr.", "e.g.", "U.S."), an initial ("J."),
/// or the next word starts in lower case. "3.5%" and "example.com/a.html"
/// have no space after the period and are never split.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        split_line(line, |s| out.push(s.to_string()));
    }
    out
}

/// Calls `each` with every sentence of one line (see [`sentences`]).
fn split_line<'a>(line: &'a str, mut each: impl FnMut(&'a str)) {
    let line = line.trim();
    let mut start = 0usize;
    let mut from = 0usize;
    while let Some(pos) = next_mark(line, from) {
        let c = line[pos..].chars().next().unwrap_or('.');
        let after_mark = pos + c.len_utf8();
        // Swallow closing quotes and brackets and repeated marks.
        let rest = &line[after_mark..];
        let close = rest
            .char_indices()
            .find(|&(_, d)| {
                !matches!(
                    d,
                    '.' | '!' | '?' | '"' | '\'' | ')' | ']' | '”' | '’' | '»'
                )
            })
            .map_or(rest.len(), |(i, _)| i);
        let after = &rest[close..];
        // Past the whole run of marks: `....` is scanned once.
        from = after_mark + close;
        if !after.starts_with(char::is_whitespace) {
            continue;
        }
        let next_text = after.trim_start();
        match next_text.chars().next() {
            Some(next) if !next.is_lowercase() => {}
            _ => continue,
        }
        if c == '.' && close == 0 && is_abbreviation(&line[start..pos]) {
            continue;
        }
        push(&line[start..after_mark + close], &mut each);
        start = line.len() - next_text.len();
        from = start;
    }
    push(&line[start..], &mut each);
}

/// The next `.`, `!`, `?` or `…` at or after byte `from`.
fn next_mark(line: &str, from: usize) -> Option<usize> {
    let bytes = &line.as_bytes()[from..];
    let ascii = memchr::memchr3(b'.', b'!', b'?', bytes);
    // `…` (E2 80 A6) before it?
    let ellipsis = memchr::memchr_iter(0xE2, &bytes[..ascii.unwrap_or(bytes.len())])
        .find(|&i| bytes[i..].starts_with("…".as_bytes()));
    ellipsis.or(ascii).map(|i| from + i)
}

fn push<'a>(s: &'a str, each: &mut impl FnMut(&'a str)) {
    let s = s.trim();
    if !s.is_empty() {
        each(s);
    }
}

/// Whether the word ending `before` (the text up to a period) is an
/// abbreviation or an initial.
fn is_abbreviation(before: &str) -> bool {
    let word = before
        .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"')
        .next()
        .unwrap_or("");
    let mut cs = word.chars();
    if matches!((cs.next(), cs.next()), (Some(c), None) if c.is_alphabetic()) {
        return true;
    }
    word.len() <= 5 && ABBREVIATIONS.iter().any(|a| a.eq_ignore_ascii_case(word))
}

/// Calls `each` with the hashes of the words of `s`, lower-cased,
/// without stop words and one-letter words; returns the number of words.
/// Words are runs of alphanumeric characters.
fn terms(s: &str, mut each: impl FnMut(u64)) -> usize {
    let stop = stop_hashes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut len = 0usize;
    let mut words = 0usize;
    let mut flush = |h: &mut u64, len: &mut usize| {
        words += 1;
        if *len >= 2 && !stop.contains(*h) {
            each(*h);
        }
        *h = 0xcbf2_9ce4_8422_2325;
        *len = 0;
    };
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            i += 1;
            if b.is_ascii_alphanumeric() {
                // ASCII letters lower-cased; digits have the bit already.
                h = (h ^ u64::from(b | 0x20)).wrapping_mul(0x0100_0000_01b3);
                len += 1;
            } else if len > 0 {
                flush(&mut h, &mut len);
            }
            continue;
        }
        // Outside ASCII: one character at a time.
        let c = s[i..].chars().next().unwrap_or(' ');
        i += c.len_utf8();
        if c.is_alphanumeric() {
            for l in c.to_lowercase() {
                h = (h ^ u64::from(l as u32)).wrapping_mul(0x0100_0000_01b3);
            }
            len += 1;
        } else if len > 0 {
            flush(&mut h, &mut len);
        }
    }
    if len > 0 {
        flush(&mut h, &mut len);
    }
    words
}

/// The stop words' hashes in an open-addressing table of
/// [`STOP_SLOTS`] slots (~110 words: one probe for nearly every word). A
/// binary search over the sorted hashes was 40% of the scorer's time.
struct StopSet {
    /// A hash, or 0 for an empty slot (a word whose hash is 0 would count
    /// as a stop word: one in 2^64).
    slots: Vec<u64>,
}

const STOP_BITS: u32 = 10;
const STOP_SLOTS: usize = 1 << STOP_BITS;

impl StopSet {
    fn new(hashes: impl Iterator<Item = u64>) -> Self {
        let mut slots = vec![0u64; STOP_SLOTS];
        for h in hashes {
            let mut i = Self::slot(h);
            while slots[i] != 0 && slots[i] != h {
                i = (i + 1) & (STOP_SLOTS - 1);
            }
            slots[i] = h;
        }
        StopSet { slots }
    }

    /// The slot `h` starts probing from: its top bits after a
    /// multiplicative mix (FNV-1a's low bits alone cluster).
    fn slot(h: u64) -> usize {
        (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - STOP_BITS)) as usize
    }

    fn contains(&self, h: u64) -> bool {
        let mut i = Self::slot(h);
        loop {
            match self.slots[i] {
                s if s == h => return true,
                0 => return false,
                _ => i = (i + 1) & (STOP_SLOTS - 1),
            }
        }
    }
}

/// FNV-1a of a word's bytes, as [`terms`] hashes it (lower-case ASCII).
fn word_hash(w: &str) -> u64 {
    w.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn stop_hashes() -> &'static StopSet {
    static STOP: OnceLock<StopSet> = OnceLock::new();
    STOP.get_or_init(|| StopSet::new(STOPWORDS.iter().chain(MORE_STOPWORDS).map(|w| word_hash(w))))
}

/// Whether a line of unknown kind reads as code or configuration rather
/// than prose: it ends like a statement or opens a block, or more than a
/// sixth of its characters are symbols.
pub fn looks_like_code(line: &str) -> bool {
    let t = line.trim_end();
    if t.ends_with(['{', '}', ';']) || t.starts_with(['{', '}', '#', '$', '<', '[']) {
        return true;
    }
    let (mut symbols, mut total) = (0usize, 0usize);
    for c in t.chars() {
        total += 1;
        if matches!(
            c,
            '{' | '}'
                | '('
                | ')'
                | '['
                | ']'
                | '='
                | ';'
                | '<'
                | '>'
                | '_'
                | '|'
                | '&'
                | '*'
                | '/'
                | '\\'
                | '$'
                | '#'
                | '@'
                | ':'
        ) {
            symbols += 1;
        }
    }
    total > 0 && symbols * 6 > total
}

struct Candidate<'a> {
    text: &'a str,
    /// Index among all candidate sentences (document order).
    position: usize,
    /// Its distinct terms, sorted: a range of the shared term pool.
    terms: std::ops::Range<usize>,
    prose: bool,
}

/// [`summarize_page`] for text of unknown structure.
pub fn summarize(text: &str, n: usize) -> String {
    summarize_page(text, None, n)
}

/// The `n` most representative sentences of `text`, in document order,
/// joined by spaces, at most [`MAX_SUMMARY_CHARS`] bytes. `kinds`: one
/// byte per line of `text` (see the module doc); `None` when unknown.
/// Empty if the text has no sentences.
pub fn summarize_page(text: &str, kinds: Option<&str>, n: usize) -> String {
    if n == 0 {
        return String::new();
    }
    let kinds = kinds.map(str::as_bytes);
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut fallback: Vec<Candidate> = Vec::new();
    // How many sentences each term occurs in; heading terms count extra.
    let mut df = FpMap::<u32>::default();
    let mut heading_terms: Vec<u64> = Vec::new();
    let mut position = 0usize;
    let mut pool: Vec<u64> = Vec::with_capacity(text.len() / 8);
    for (i, line) in text.lines().enumerate() {
        if candidates.len() >= MAX_CANDIDATES {
            break;
        }
        let kind = kinds.and_then(|k| k.get(i).copied());
        match kind {
            Some(b'h') => {
                terms(line, |t| heading_terms.push(t));
                continue;
            }
            // Code is a candidate only when it reads as prose (text kept in
            // `<pre>`); neither it nor a table cell (layout tables) is one
            // while real prose is there.
            Some(b'c') | None if looks_like_code(line) => continue,
            _ => {}
        }
        let prose = !matches!(kind, Some(b'l' | b't' | b'c'));
        split_line(line, |s| {
            let at = pool.len();
            let words = terms(s, |t| pool.push(t));
            let found = pool.len() - at;
            pool[at..].sort_unstable();
            let mut kept = at;
            for r in at..pool.len() {
                if r == at || pool[r] != pool[kept - 1] {
                    pool[kept] = pool[r];
                    kept += 1;
                }
            }
            pool.truncate(kept);
            for &t in &pool[at..] {
                *df.entry(t).or_insert(0) += 1;
            }
            let c = Candidate {
                text: s,
                position,
                terms: at..kept,
                prose,
            };
            position += 1;
            let long_enough = words >= MIN_WORDS && found >= 2;
            if long_enough && s.len() <= MAX_SENTENCE_CHARS && prose {
                candidates.push(c);
            } else {
                fallback.push(c);
            }
        });
    }
    if candidates.len() < n {
        // Short pages: list items and short lines are all there is; a
        // run-on only when there is nothing else.
        let (fits, runons): (Vec<_>, Vec<_>) = fallback
            .into_iter()
            .partition(|c| c.text.len() <= MAX_SENTENCE_CHARS);
        candidates.extend(fits);
        if candidates.is_empty() {
            candidates = runons;
        }
        candidates.sort_by_key(|c| c.position);
    }
    if candidates.is_empty() {
        return String::new();
    }
    for t in &heading_terms {
        if let Some(c) = df.get_mut(t) {
            *c += 2;
        }
    }
    let total = position.max(1) as f64;
    let scores: Vec<f64> = candidates
        .iter()
        .map(|c| {
            // Recurring vocabulary carried, per word (square root: long
            // sentences carry more, but not in proportion).
            let terms = &pool[c.terms.clone()];
            let weight: f64 = terms
                .iter()
                .map(|t| ln(df.get(t).copied().unwrap_or(1)))
                .sum();
            let centroid = weight / (terms.len().max(1) as f64).sqrt();
            // Earlier is likelier to state the topic.
            let place = 1.0 - c.position as f64 / total;
            let prose = if c.prose { 1.0 } else { 0.8 };
            (centroid * (1.0 + 0.5 * place) + 1.5 * place * place) * prose
        })
        .collect();
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut chosen: Vec<usize> = Vec::with_capacity(n);
    let mut length = 0usize;
    // Best first, skipping repeats of a chosen sentence; then, if that
    // left too few, the best of the rest.
    for avoid_repeats in [true, false] {
        for &i in &order {
            if chosen.len() >= n {
                break;
            }
            let c = &candidates[i];
            if chosen.contains(&i)
                || (avoid_repeats
                    && chosen.iter().any(|&j| {
                        overlap(&pool[candidates[j].terms.clone()], &pool[c.terms.clone()]) > 0.6
                    }))
            {
                continue;
            }
            if !chosen.is_empty() && length + 1 + c.text.len() > MAX_SUMMARY_CHARS {
                continue;
            }
            length += c.text.len() + usize::from(!chosen.is_empty());
            chosen.push(i);
        }
    }
    chosen.sort_unstable();
    let mut out = String::with_capacity(length);
    for &i in &chosen {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(candidates[i].text);
    }
    if out.len() > MAX_SUMMARY_CHARS {
        // Room for the `…` (3 bytes).
        let mut end = MAX_SUMMARY_CHARS - 3;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        let cut = out[..end].rfind(' ').unwrap_or(end);
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// `ln(d)` of a term's sentence count, 0 for a term in one sentence; from
/// a table for the small counts nearly every term has.
fn ln(d: u32) -> f64 {
    static TABLE: OnceLock<[f64; 64]> = OnceLock::new();
    let table =
        TABLE.get_or_init(|| std::array::from_fn(|i| if i >= 2 { (i as f64).ln() } else { 0.0 }));
    match table.get(d as usize) {
        Some(v) => *v,
        None => f64::from(d).ln(),
    }
}

/// Shared terms over the smaller set's size (both sorted, deduplicated).
fn overlap(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut shared) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    shared as f64 / a.len().min(b.len()).max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table holds every stop word and nothing else: what a sorted
    /// list of their hashes says, for the stop words and for every other
    /// word of this file.
    #[test]
    fn the_stop_table_answers_as_the_list_does() {
        let stop = stop_hashes();
        let mut sorted: Vec<u64> = STOPWORDS
            .iter()
            .chain(MORE_STOPWORDS)
            .map(|w| word_hash(w))
            .collect();
        sorted.sort_unstable();
        for w in STOPWORDS.iter().chain(MORE_STOPWORDS) {
            assert!(stop.contains(word_hash(w)), "{w}");
        }
        let text = include_str!("extractive.rs").to_ascii_lowercase();
        let mut others = 0;
        for w in text.split(|c: char| !c.is_ascii_alphanumeric()) {
            let h = word_hash(w);
            assert_eq!(stop.contains(h), sorted.binary_search(&h).is_ok(), "{w}");
            others += usize::from(!stop.contains(h));
        }
        assert!(others > 1000, "{others}");
        // Terms as the scorer sees them: stop words left out.
        let mut kept = Vec::new();
        terms("The crawler and THE frontier of a queue", |t| kept.push(t));
        let want: Vec<u64> = ["crawler", "frontier", "queue"].map(word_hash).to_vec();
        assert_eq!(kept, want);
    }

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

    #[test]
    fn documentation_reads_as_prose_not_code_or_headings() {
        // A page of the Rust book as the parser gives it: headings, prose,
        // code listings, a table and a list, each line with its kind.
        let text = "What Is Ownership?\n\
Ownership is a set of rules that govern how a Rust program manages memory.\n\
fn main() { let s = String::from(\"hello\"); takes_ownership(s); let x = 5; makes_copy(x); }\n\
Some languages have garbage collection that regularly looks for no-longer-used memory as the program runs.\n\
Ownership Rules\n\
First, let's take a look at the ownership rules of the Rust programming language.\n\
Each value in Rust has an owner and there can only be one owner at a time.\n\
Type | Size | Copy\n\
When the owner goes out of scope, the value will be dropped and its memory freed.";
        let kinds = "hpcphpptp";
        let s = summarize_page(text, Some(kinds), 3);
        assert!(!s.contains("fn main") && !s.contains("Type |"), "{s}");
        assert!(!s.contains("What Is") && !s.contains("Rules First"), "{s}");
        assert!(s.contains("Ownership is a set of rules"), "{s}");
        // Without kinds, code is still recognised by its shape.
        let s = summarize(text, 3);
        assert!(!s.contains("fn main"), "{s}");
        assert!(looks_like_code(
            "jobs: {build: {runs-on: ubuntu, steps: [checkout]}}"
        ));
        assert!(looks_like_code("let x = foo(a, b);"));
        assert!(!looks_like_code("Each value in Rust has an owner."));
    }

    #[test]
    fn pages_laid_out_in_tables_or_pre_still_get_a_summary() {
        let text = "First real sentence of the article is here.\nSecond real sentence of the article follows now.";
        assert!(!summarize_page(text, Some("tt"), 3).is_empty());
        assert!(!summarize_page(text, Some("cc"), 3).is_empty());
        // Prose wins over table cells when there is enough of it.
        let text = "Menu item one and two and three\nThe article says one important thing.\nIt says a second important thing.\nAnd it says a third important thing.";
        assert!(!summarize_page(text, Some("tppp"), 3).contains("Menu"));
    }

    #[test]
    fn a_summary_is_capped_and_costs_time_linear_in_the_text() {
        // A run-on of 5,000 characters is not a sentence to pick.
        let runon = "word and more words, ".repeat(250);
        let text = format!(
            "{runon}\nA short real sentence about words is here.\nAnother sentence with more words follows it."
        );
        let s = summarize(&text, 3);
        assert!(s.len() <= MAX_SUMMARY_CHARS, "{}", s.len());
        assert!(!s.contains("word and more words, word"), "{s}");
        // Many sentences: only the first MAX_CANDIDATES are read.
        let long: String = (0..100_000)
            .map(|i| format!("Sentence {i} is about topic {} here.\n", i % 13))
            .collect();
        let s = summarize(&long, 3);
        assert_eq!(sentences(&s).len(), 3);
        // One sentence longer than the cap alone is cut at a word.
        let huge = format!("{}.", "longword ".repeat(200).trim());
        assert!(summarize(&huge, 3).len() <= MAX_SUMMARY_CHARS);
        // A run of marks costs its length once, not its square.
        let marks = format!(
            "a{}b. And a real sentence follows it here.",
            ".".repeat(200_000)
        );
        assert!(summarize(&marks, 3).contains("real sentence"));
    }
}
