//! Receipt requests: parsing and canonical bytes never panic; canonical bytes are stable.
#![no_main]

use congvan::api::ReceiptRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<ReceiptRequest>(data) {
        let value = serde_json::to_value(&request.receipt).unwrap();
        let a = congvan::document::manifest::canonical_bytes(&value).unwrap();
        let back: serde_json::Value = serde_json::from_slice(&a).unwrap();
        let b = congvan::document::manifest::canonical_bytes(&back).unwrap();
        assert_eq!(a, b);
    }
});
