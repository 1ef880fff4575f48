//! Signature entries (raw and CMS, base64 and DER inside JSON) verified against a real
//! trust anchor: never panics, never verifies garbage.
#![no_main]

use std::sync::OnceLock;

use congvan::document::DocSignature;
use congvan::pki::signing::SigningTrust;
use libfuzzer_sys::fuzz_target;

fn trust() -> &'static SigningTrust {
    static TRUST: OnceLock<SigningTrust> = OnceLock::new();
    TRUST.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("congvan-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = congvan::pki::demo::Ca::new_root("fuzz root").unwrap();
        std::fs::write(dir.join("root.crt"), root.cert_pem()).unwrap();
        std::fs::write(dir.join("root.crl"), root.sign_crl(1, Vec::new()).unwrap()).unwrap();
        SigningTrust::load(&[dir.join("root.crt")], &[dir.join("root.crl")]).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(sig) = serde_json::from_slice::<DocSignature>(data) {
        let result = sig.verify(
            trust(),
            b"{\"manifest\":1}",
            rustls_pki_types::UnixTime::now(),
        );
        assert!(result.is_err(), "a fuzzed signature verified");
    }
});
