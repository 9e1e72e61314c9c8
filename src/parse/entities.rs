//! Character references (`&amp;`, `&#233;`, `&eacute`), resolved as the
//! WHATWG HTML standard's tokenizer does (§13.2.5.72–80), with its table
//! of 2,231 named references (html5ever's, the one browsers use).

use std::borrow::Cow;

use html5ever::data::NAMED_ENTITIES;

/// The longest named reference, `&CounterClockwiseContourIntegral;`.
const LONGEST_NAME: usize = 32;

/// Windows-1252 characters for numeric references 0x80–0x9F (HTML
/// §13.2.5.80, the numeric character reference end state).
const C1: [u32; 32] = [
    0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
];

/// `s` with its character references resolved. `in_attr`: the rules for
/// attribute values, where a legacy reference without `;` followed by
/// `=` or an alphanumeric stays as written (`?a=1&copy=2`). Borrows when
/// `s` has no `&`.
pub fn decode(s: &str, in_attr: bool) -> Cow<'_, str> {
    let Some(first) = memchr::memchr(b'&', s.as_bytes()) else {
        return Cow::Borrowed(s);
    };
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..first]);
    let mut i = first;
    while i < bytes.len() {
        if bytes[i] != b'&' {
            let next = memchr::memchr(b'&', &bytes[i..]).map_or(bytes.len(), |j| i + j);
            out.push_str(&s[i..next]);
            i = next;
            continue;
        }
        match reference(&s[i + 1..], in_attr) {
            Some((chars, len)) => {
                out.extend(chars.into_iter().flatten());
                i += 1 + len;
            }
            None => {
                out.push('&');
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// The characters of the reference at the start of `rest` (just after
/// `&`) and the bytes it takes, or `None` if it is not one.
fn reference(rest: &str, in_attr: bool) -> Option<([Option<char>; 2], usize)> {
    let b = rest.as_bytes();
    if b.first() == Some(&b'#') {
        let (hex, digits_at) = match b.get(1) {
            Some(b'x' | b'X') => (true, 2),
            _ => (false, 1),
        };
        let mut i = digits_at;
        let mut value: u32 = 0;
        while let Some(&c) = b.get(i) {
            let d = if hex {
                (c as char).to_digit(16)
            } else {
                (c as char).to_digit(10)
            };
            let Some(d) = d else { break };
            value = value
                .saturating_mul(if hex { 16 } else { 10 })
                .saturating_add(d);
            i += 1;
        }
        if i == digits_at {
            return None;
        }
        if b.get(i) == Some(&b';') {
            i += 1;
        }
        let c = match value {
            0 => '\u{fffd}',
            0x80..=0x9f => char::from_u32(C1[(value - 0x80) as usize]).unwrap_or('\u{fffd}'),
            v => char::from_u32(v).unwrap_or('\u{fffd}'),
        };
        return Some(([Some(c), None], i));
    }
    // Named: the longest name in the table that `rest` starts with.
    let mut best = None;
    let mut end = 0;
    while end < b.len() && end < LONGEST_NAME {
        let c = b[end];
        if !(c.is_ascii_alphanumeric() || c == b';') {
            break;
        }
        end += 1;
        match NAMED_ENTITIES.get(&rest[..end]) {
            Some(&(c1, c2)) => {
                if c1 != 0 {
                    best = Some((c1, c2, end));
                }
            }
            None => break,
        }
        if c == b';' {
            break;
        }
    }
    let (c1, c2, len) = best?;
    if in_attr
        && b[len - 1] != b';'
        && b.get(len)
            .is_some_and(|&c| c == b'=' || c.is_ascii_alphanumeric())
    {
        return None;
    }
    Some((
        [char::from_u32(c1), char::from_u32(c2).filter(|_| c2 != 0)],
        len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_as_in_browsers() {
        let cases: &[(&str, bool, &str)] = &[
            ("a &amp; b", false, "a & b"),
            ("&lt;p&gt;", false, "<p>"),
            (
                "caf&eacute; caf&#233; caf&#xE9; caf&#XE9",
                false,
                "café café café café",
            ),
            ("&notit; &notin;", false, "¬it; ∉"),
            ("&copy2024", false, "©2024"),
            ("?a=1&copy=2", true, "?a=1&copy=2"),
            ("?a=1&amp;b=2", true, "?a=1&b=2"),
            (
                "x &unknown; &; & &#; &#x;",
                false,
                "x &unknown; &; & &#; &#x;",
            ),
            (
                "&#0; &#x110000; &#128; &#x9F;",
                false,
                "\u{fffd} \u{fffd} € Ÿ",
            ),
            ("&NotEqualTilde;", false, "\u{2242}\u{338}"),
            ("&#99999999999999999999;", false, "\u{fffd}"),
        ];
        for (input, attr, want) in cases {
            assert_eq!(decode(input, *attr), *want, "{input}");
        }
        assert!(matches!(decode("plain", false), Cow::Borrowed(_)));
    }
}
