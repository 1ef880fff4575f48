//! Manifest parsing and canonicalisation: never panics; what parses re-canonicalises to
//! the same bytes, and the canonical bytes parse to the same manifest.
#![no_main]

use congvan::document::manifest::{self, ManifestRules};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let rules = ManifestRules::default();
    if let Ok(parsed) = manifest::parse(text, &rules) {
        let again = manifest::parse(std::str::from_utf8(&parsed.canonical).unwrap(), &rules)
            .expect("canonical bytes of a valid manifest must parse");
        assert_eq!(again.manifest, parsed.manifest);
        assert_eq!(again.canonical, parsed.canonical);
    }
    let _ = manifest::parse_layer(text, &rules, manifest::Layer::Inner);
});
