//! Property tests: URL canonicalization is idempotent and total, and the
//! HTML entry point survives arbitrary bytes.

use proptest::prelude::*;
use trawl::canon;
use trawl::parse::{self, ParseLimits};
use url::Url;

/// Strings shaped like hrefs: schemes, hosts, dots, percent escapes,
/// queries, fragments, odd characters.
fn href() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("http://".to_string()),
        Just("HTTPS://".to_string()),
        Just("//".to_string()),
        Just("../".to_string()),
        Just("./".to_string()),
        Just("/".to_string()),
        Just("?".to_string()),
        Just("#".to_string()),
        Just("&".to_string()),
        Just("=".to_string()),
        Just(":".to_string()),
        Just("@".to_string()),
        Just("%".to_string()),
        Just("%2F".to_string()),
        Just("%7e".to_string()),
        Just("%zz".to_string()),
        Just("Example.COM".to_string()),
        Just("xn--bcher-kva.example".to_string()),
        Just("bücher".to_string()),
        Just("[::1]".to_string()),
        Just("127.0.0.1".to_string()),
        Just(":8080".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("utm_source".to_string()),
        "[a-zA-Z0-9._~-]{0,6}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn canonicalizing_twice_changes_nothing(s in href()) {
        let base = Url::parse("http://example.com/dir/page.html?x=1").unwrap();
        if let Some(u) = canon::resolve(&base, &s) {
            let again = canon::resolve(&base, u.as_str());
            prop_assert_eq!(again.as_ref().map(Url::as_str), Some(u.as_str()), "from {:?}", s);
            prop_assert_eq!(canon::fingerprint(&again.unwrap()), canon::fingerprint(&u));
        }
        if let Ok(u) = canon::parse(&s) {
            let again = canon::parse(u.as_str());
            prop_assert_eq!(again.as_ref().map(Url::as_str).ok(), Some(u.as_str()), "from {:?}", s);
        }
    }

    #[test]
    fn canonicalization_never_panics_on_any_string(s in any::<String>()) {
        let base = Url::parse("https://example.com/a/b").unwrap();
        let _ = canon::resolve(&base, &s);
        let _ = canon::parse(&s);
    }

    #[test]
    fn the_parser_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let url = Url::parse("http://example.com/").unwrap();
        let page = parse::parse(&bytes, &url, Some("text/html"), ParseLimits { max_links: 100, markdown: true });
        prop_assert!(page.links.len() <= 100);
        let _ = parse::parse(&bytes, &url, None, ParseLimits { max_links: 100, markdown: true });
    }

    #[test]
    fn the_parser_survives_tag_soup(parts in prop::collection::vec(prop_oneof![
        Just("<a href='".to_string()), Just("'>".to_string()), Just("</a>".to_string()),
        Just("<div>".to_string()), Just("</div>".to_string()), Just("<p>".to_string()),
        Just("<main>".to_string()), Just("</main>".to_string()), Just("<nav>".to_string()),
        Just("<script>".to_string()), Just("</script>".to_string()), Just("<!--".to_string()),
        Just("-->".to_string()), Just("<meta charset='shift_jis'>".to_string()),
        Just("<base href='/x/'>".to_string()), Just("<title>".to_string()),
        Just("<svg><title>".to_string()), Just("&amp;".to_string()), Just("&#x0;".to_string()),
        "[ -~]{0,8}",
    ], 0..64)) {
        let html = parts.concat();
        let url = Url::parse("http://example.com/").unwrap();
        let _ = parse::parse(html.as_bytes(), &url, Some("text/html"), ParseLimits { max_links: 10, markdown: true });
    }
}
