//! The committed fuzzing corpora (fuzz/corpus/<target>/) replayed through the same
//! functions as the fuzz targets, on stable Rust, in every CI run. Inputs that once
//! crashed a target are kept there (as `crash-*` files) so they stay fixed.

use std::path::Path;

use congvan::seal::{Cipher, OpenPgp};

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no corpus for {target}");
    out
}

#[test]
fn manifest_corpus() {
    let rules = congvan::document::manifest::ManifestRules::default();
    let mut valid = 0;
    for (name, data) in inputs("manifest") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        if let Ok(parsed) = congvan::document::manifest::parse(text, &rules) {
            valid += 1;
            let again = congvan::document::manifest::parse(
                std::str::from_utf8(&parsed.canonical).unwrap(),
                &rules,
            )
            .unwrap_or_else(|e| panic!("{name}: canonical form does not parse: {e}"));
            assert_eq!(again.canonical, parsed.canonical, "{name}");
        }
    }
    assert!(valid > 0, "the corpus holds no valid manifest");
}

#[test]
fn cms_corpus() {
    for (_, data) in inputs("cms") {
        if let Ok(parsed) = congvan::pki::cms::parse_detached(&data) {
            let _ = parsed.verify(b"{\"manifest\":1}");
        }
    }
}

#[test]
fn openpgp_recipients_corpus() {
    let mut sealed = 0;
    for (name, data) in inputs("openpgp_recipients") {
        if let Ok(envelope) = OpenPgp::default().recipients_of(&mut &data[..]) {
            assert!(!envelope.recipients.is_empty(), "{name}");
            sealed += 1;
        }
    }
    assert!(
        sealed >= 2,
        "the corpus should hold sealed messages of both container versions"
    );
}

#[test]
fn signature_receipt_and_checkpoint_corpora() {
    let trust_dir = tempfile::tempdir().unwrap();
    let root = congvan::pki::demo::Ca::new_root("corpus root").unwrap();
    std::fs::write(trust_dir.path().join("root.crt"), root.cert_pem()).unwrap();
    std::fs::write(
        trust_dir.path().join("root.crl"),
        root.sign_crl(1, Vec::new()).unwrap(),
    )
    .unwrap();
    let trust = congvan::pki::signing::SigningTrust::load(
        &[trust_dir.path().join("root.crt")],
        &[trust_dir.path().join("root.crl")],
    )
    .unwrap();
    for (name, data) in inputs("signature") {
        if let Ok(sig) = serde_json::from_slice::<congvan::document::DocSignature>(&data) {
            assert!(
                sig.verify(&trust, b"x", rustls_pki_types::UnixTime::now())
                    .is_err(),
                "{name}"
            );
        }
    }
    for (_, data) in inputs("receipt") {
        let _ = serde_json::from_slice::<congvan::api::ReceiptRequest>(&data);
    }
    let vkey = congvan::ledger::verifier_key("congvan.invalid/fuzz", &[7; 32]);
    for (name, data) in inputs("checkpoint") {
        if let Ok(text) = std::str::from_utf8(&data) {
            assert!(
                congvan::ledger::checkpoint::verify(text, &vkey).is_err(),
                "{name}"
            );
        }
    }
}

#[test]
fn endorsement_corpus() {
    let trust_dir = tempfile::tempdir().unwrap();
    let root = congvan::pki::demo::Ca::new_root("corpus root").unwrap();
    std::fs::write(trust_dir.path().join("root.crt"), root.cert_pem()).unwrap();
    std::fs::write(
        trust_dir.path().join("root.crl"),
        root.sign_crl(1, Vec::new()).unwrap(),
    )
    .unwrap();
    let trust = congvan::pki::signing::SigningTrust::load(
        &[trust_dir.path().join("root.crt")],
        &[trust_dir.path().join("root.crl")],
    )
    .unwrap();
    let org = congvan::directory::OrgId::parse("hn/cm/chuc-son").unwrap();
    let mut parsed_count = 0;
    for (name, data) in inputs("endorsement") {
        let Ok(parsed) = congvan::directory::endorsement::SignedEndorsement::from_slice(&data)
        else {
            continue;
        };
        parsed_count += 1;
        let a = parsed.statement.canonical().unwrap();
        let back: congvan::directory::endorsement::KeyEndorsement =
            serde_json::from_slice(&a).unwrap();
        assert_eq!(back.canonical().unwrap(), a, "{name}");
        let fp = parsed.statement.openpgp_fingerprint.clone();
        assert!(
            parsed
                .verify(&trust, &org, &fp, rustls_pki_types::UnixTime::now())
                .is_err(),
            "{name} verified against a root nobody signed it with"
        );
    }
    assert!(
        parsed_count >= 2,
        "the corpus should hold valid endorsements"
    );
}

#[test]
fn edxml_corpus() {
    use congvan::edxml::{self, Limits};
    let limits = Limits {
        attachment_bytes_max: 1 << 16,
        ..Limits::default()
    };
    let (mut envelopes, mut packets, mut refused) = (0, 0, 0);
    for (name, data) in inputs("edxml") {
        // The same property as the fuzz target: what reads, written and read back, is
        // the same (the envelope's own signature is kept as found, not written).
        match edxml::read_envelope(&data, &limits) {
            Ok(envelope) => {
                envelopes += 1;
                let written = edxml::write_envelope(&envelope).unwrap();
                let mut back = edxml::read_envelope(&written, &Limits::default())
                    .unwrap_or_else(|e| panic!("{name}: written envelope does not read: {e}"));
                back.signature = envelope.signature.clone();
                assert_eq!(back, envelope, "{name}");
            }
            Err(e) => {
                assert!(e.code().starts_with("edxml_"), "{name}");
                refused += 1;
            }
        }
        if let Ok(packet) = edxml::read_status(&data, &limits) {
            packets += 1;
            let written = edxml::write_status(&packet).unwrap();
            assert_eq!(
                edxml::read_status(&written, &Limits::default()).unwrap(),
                packet,
                "{name}"
            );
        }
    }
    assert!(
        envelopes >= 3 && packets >= 1 && refused >= 4,
        "{envelopes} envelopes, {packets} status packets, {refused} refused"
    );
}
