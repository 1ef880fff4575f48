//! Key endorsements: parsing never panics; the canonical bytes of anything that parses
//! are stable; nothing fuzzed verifies against a trust anchor nobody else holds.
#![no_main]

use std::sync::OnceLock;

use congvan::directory::OrgId;
use congvan::directory::endorsement::SignedEndorsement;
use congvan::pki::signing::SigningTrust;
use libfuzzer_sys::fuzz_target;

/// A trust anchor (and its empty CRL) whose key is dropped at once.
fn trust() -> &'static SigningTrust {
    static TRUST: OnceLock<SigningTrust> = OnceLock::new();
    TRUST.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("congvan-fuzz-endorsement-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = congvan::pki::demo::Ca::new_root("fuzz root").unwrap();
        std::fs::write(dir.join("root.crt"), root.cert_pem()).unwrap();
        std::fs::write(dir.join("root.crl"), root.sign_crl(1, Vec::new()).unwrap()).unwrap();
        SigningTrust::load(&[dir.join("root.crt")], &[dir.join("root.crl")]).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = SignedEndorsement::from_slice(data) {
        let a = parsed.statement.canonical().unwrap();
        let back: congvan::directory::endorsement::KeyEndorsement =
            serde_json::from_slice(&a).unwrap();
        assert_eq!(back.canonical().unwrap(), a);
        let org = OrgId::parse("hn/cm/chuc-son").unwrap();
        let fp = parsed.statement.openpgp_fingerprint.clone();
        assert!(
            parsed
                .verify(trust(), &org, &fp, rustls_pki_types::UnixTime::now())
                .is_err()
        );
    }
});
