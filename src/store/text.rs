//! How a page's main text is stored (schema v17): a non-empty text as one
//! zstd frame in `text_z` with `text` NULL, an empty one as `''` in
//! `text`, none as NULL in both; rows written before v17 hold it in
//! `text`. Readers select both columns and call [`unpack`]; SQL that only
//! asks whether there is a text uses [`P_HAS_TEXT`] or
//! [`P_NONEMPTY_TEXT`].

use super::StoreError;

/// zstd's level 1: ~3× smaller on extracted prose (2.6× on the Rust book,
/// 3.1× on the benchmark's pages), at a few µs for a page's text.
const LEVEL: i32 = 1;

/// Most bytes a stored text unpacks to: the parser keeps at most 1 MiB
/// (`parse::MAX_TEXT_BYTES`); a frame that claims more is refused.
const MAX_UNPACKED: usize = 4 << 20;

/// Whether the page aliased `p` has a text (possibly empty).
pub const P_HAS_TEXT: &str = "(p.text IS NOT NULL OR p.text_z IS NOT NULL)";

/// Whether the page aliased `p` has a non-empty text.
pub const P_NONEMPTY_TEXT: &str = "(p.text_z IS NOT NULL OR p.text <> '')";

/// The two columns a text is written to: `(text, text_z)`.
pub fn pack(text: Option<&str>) -> (Option<String>, Option<Vec<u8>>) {
    match text {
        None => (None, None),
        Some("") => (Some(String::new()), None),
        Some(t) => (
            None,
            Some(zstd::bulk::compress(t.as_bytes(), LEVEL).expect("compressing into memory")),
        ),
    }
}

/// The text stored in `(text, text_z)`. A frame that cannot be read (a
/// damaged file) is an error naming the cause, never a wrong text.
pub fn unpack(text: Option<String>, text_z: Option<Vec<u8>>) -> Result<Option<String>, StoreError> {
    let Some(z) = text_z else {
        return Ok(text);
    };
    let bytes = zstd::bulk::decompress(&z, MAX_UNPACKED)
        .map_err(|e| StoreError::Corrupt(format!("a stored text cannot be unpacked: {e}")))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| StoreError::Corrupt("a stored text is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_and_empty_and_none_stay_apart() {
        let long = "The crawler reads each page once. ".repeat(200);
        for t in [None, Some(""), Some("é"), Some(long.as_str())] {
            let (text, z) = pack(t);
            assert_eq!(unpack(text, z).unwrap().as_deref(), t);
        }
        let (text, z) = pack(Some(&long));
        assert!(text.is_none());
        assert!(z.unwrap().len() < long.len() / 10);
        assert_eq!(pack(Some("")), (Some(String::new()), None));
        assert_eq!(pack(None), (None, None));
    }

    #[test]
    fn a_damaged_frame_is_an_error() {
        let (_, z) = pack(Some("some text to pack"));
        let mut z = z.unwrap();
        let n = z.len();
        z.truncate(n - 3);
        assert!(unpack(None, Some(z)).is_err());
        assert!(unpack(None, Some(b"not zstd".to_vec())).is_err());
    }
}
