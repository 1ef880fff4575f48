//! Detached CMS SignedData parsing and verification: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = congvan::pki::cms::parse_detached(data) {
        let _ = parsed.verify(b"{\"manifest\":1}");
    }
});
