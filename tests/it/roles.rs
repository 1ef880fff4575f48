//! Signer roles bound to certificate kinds (issue 11, part 2): the organisation signs with
//! its seal certificate (`urn:congvan:org:`), the competent person with a person
//! certificate (`urn:congvan:person:`) issued to the name the manifest prints. Each attack
//! is replayed against the real server, and the recipient's own check is exercised where
//! a server could be bypassed.

use congvan::document::{DocSignature, Role};
use congvan::pki::demo::{Ca, LeafKind, LeafSpec};
use congvan::pki::signing::{JudgedAt, SigningTrust};
use rustls_pki_types::UnixTime;

use crate::support::{TestDoc, TestServer, assert_code, require, sample_signer};

/// Issues a document-signing certificate from the DEMO intermediate into the test's
/// directory, as `<stem>.crt` / `<stem>.key`.
fn issue(server: &TestServer, spec: &LeafSpec, stem: &str) -> std::path::PathBuf {
    let ca = Ca::load(
        &server.pki.intermediate_cert(),
        &server.pki.intermediate_key(),
        false,
    )
    .unwrap();
    let dir = server.dir.path().to_owned();
    ca.issue(spec).unwrap().write(&dir, stem).unwrap();
    dir
}

/// A second seal certificate of hn/cm (a real CA may well issue one, e.g. for a branch).
fn second_seal(server: &TestServer) -> std::path::PathBuf {
    issue(
        server,
        &LeafSpec::new(LeafKind::DocumentSigning, "Huyện ủy Chương Mỹ (con dấu 2)")
            .uri("urn:congvan:org:hn/cm"),
        "seal2",
    )
}

/// A person certificate of hn/cm issued to `name`.
fn person_named(server: &TestServer, name: &str, stem: &str) -> std::path::PathBuf {
    issue(
        server,
        &LeafSpec::new(LeafKind::DocumentSigning, name).uri("urn:congvan:person:hn/cm"),
        stem,
    )
}

/// Submits as the sender and expects `code`; the document must leave no trace, and the
/// sender's listing must stay empty.
async fn refused(server: &TestServer, doc: &TestDoc, sigs: &[DocSignature], code: &str) {
    let client = server.client(doc.manifest["sender"].as_str().unwrap());
    assert_code(
        client
            .post_json::<_, serde_json::Value>("/v1/documents", &doc.body(sigs))
            .await,
        code,
    );
    assert_code(
        client
            .get_json::<serde_json::Value>(&format!("/v1/documents/{}", doc.id()))
            .await,
        "document_not_found",
    );
    let sent: serde_json::Value = client.get_json("/v1/sent?limit=10").await.unwrap();
    assert_eq!(sent["items"].as_array().unwrap().len(), 0, "{sent}");
}

#[tokio::test]
async fn person_certificate_signing_as_organization_is_refused() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let dir = server.org_dir("hn/cm");
    // Roles swapped: the person's certificate as the seal and the seal as the person.
    let swapped = vec![
        doc.raw_signature(Role::Organization, &dir, "person"),
        doc.raw_signature(Role::Person, &dir, "sign"),
    ];
    refused(&server, &doc, &swapped, "signer_kind_mismatch").await;
    // And the correct pair is accepted, so the refusal was about the roles.
    let (status, _) = doc.submit(&server, &server.client("hn/cm")).await.unwrap();
    assert_eq!(status, 201);
}

#[tokio::test]
async fn two_organisation_seals_are_refused() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let seal2 = second_seal(&server);
    let sigs = vec![
        doc.raw_signature(Role::Organization, &server.org_dir("hn/cm"), "sign"),
        doc.raw_signature(Role::Person, &seal2, "seal2"),
    ];
    refused(&server, &doc, &sigs, "signer_kind_mismatch").await;
}

#[tokio::test]
async fn two_person_certificates_are_refused() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let (name, _) = sample_signer("hn/cm");
    let other = person_named(&server, &name, "person2");
    let sigs = vec![
        doc.raw_signature(Role::Organization, &other, "person2"),
        doc.raw_signature(Role::Person, &server.org_dir("hn/cm"), "person"),
    ];
    refused(&server, &doc, &sigs, "signer_kind_mismatch").await;
}

#[tokio::test]
async fn signer_name_mismatch_is_refused() {
    let server = TestServer::start().await;
    let dir = server.org_dir("hn/cm");
    // The manifest prints someone else than the person certificate names.
    let mut doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    doc.manifest["signer"]["full_name"] = "Trần Văn Khác".into();
    refused(
        &server,
        &doc,
        &doc.signatures(&server),
        "signer_name_mismatch",
    )
    .await;
    // A person certificate of the sender, issued to another person, under the printed
    // name of the competent signer.
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let deputy = person_named(&server, "Trần Văn Khác", "deputy");
    let sigs = vec![
        doc.raw_signature(Role::Organization, &dir, "sign"),
        doc.raw_signature(Role::Person, &deputy, "deputy"),
    ];
    refused(&server, &doc, &sigs, "signer_name_mismatch").await;
    // The same name in decomposed Unicode is the same name (the CA's encoding choice).
    let (name, _) = sample_signer("hn/cm");
    let nfd: String = unicode_normalization::UnicodeNormalization::nfd(name.as_str()).collect();
    assert_ne!(nfd, name);
    let nfd_person = person_named(&server, &nfd, "nfd");
    let sigs = vec![
        doc.raw_signature(Role::Organization, &dir, "sign"),
        doc.raw_signature(Role::Person, &nfd_person, "nfd"),
    ];
    let (status, _) = server
        .client("hn/cm")
        .post_json::<_, serde_json::Value>("/v1/documents", &doc.body(&sigs))
        .await
        .unwrap();
    assert_eq!(status, 201);
}

#[tokio::test]
async fn receipt_signed_with_a_person_certificate_is_refused() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let sender = server.client("hn/cm");
    doc.submit(&server, &sender).await.unwrap();
    doc.upload(&sender, doc.payload.clone()).await.unwrap();
    let view: serde_json::Value = sender
        .get_json(&format!("/v1/documents/{}", doc.id()))
        .await
        .unwrap();
    let receipt = congvan::api::DeliveryReceipt {
        kind: congvan::api::DELIVERY_RECEIPT_TYPE.to_owned(),
        document_id: doc.id().parse().unwrap(),
        recipient: "hn/cm/chuc-son".into(),
        manifest_sha256: view["manifest_sha256"].as_str().unwrap().to_owned(),
        payload_sha256: doc.manifest["payload"]["sha256"]
            .as_str()
            .unwrap()
            .to_owned(),
        status: "03".into(),
        time: congvan::api::now_rfc3339(),
        note: String::new(),
    };
    let dir = server.org_dir("hn/cm/chuc-son");
    let person =
        congvan::pki::signing::SigningKey::load(&dir.join("person.crt"), &dir.join("person.key"))
            .unwrap();
    let request = congvan::client::fetch::signed_receipt(&person, receipt).unwrap();
    let recipient = server.client("hn/cm/chuc-son");
    let url = format!("/v1/documents/{}/receipts", doc.id());
    assert_code(
        recipient
            .post_json::<_, serde_json::Value>(&url, &request)
            .await,
        "signer_kind_mismatch",
    );
    let status: serde_json::Value = sender
        .get_json(&format!("/v1/documents/{}/status", doc.id()))
        .await
        .unwrap();
    assert!(status["recipients"][0]["status"].is_null(), "{status}");
}

#[tokio::test]
async fn person_certificate_is_not_a_tls_identity() {
    let server = TestServer::start().await;
    // Even with clientAuth (a CA's mistake), a person URI does not open a session.
    let dir = issue(
        &server,
        &LeafSpec::new(LeafKind::TlsClient, "Nguyễn Thị Hạnh").uri("urn:congvan:person:hn/cm"),
        "person-tls",
    );
    let mut profile = server.org_profile("hn/cm");
    profile.tls_cert = dir.join("person-tls.crt");
    profile.tls_key = dir.join("person-tls.key");
    let client = congvan::client::Client::new(&profile, &server.url()).unwrap();
    assert_code(
        client.get_json::<serde_json::Value>("/v1/whoami").await,
        "identity_invalid",
    );
}

/// The recipient's own check, with no server in between: the same attacks must fail in
/// `verify_outer_signatures`, which `congvan fetch` runs.
#[tokio::test]
async fn recipient_check_refuses_wrong_kinds_and_names_without_the_server() {
    let server = TestServer::start().await;
    let trust = SigningTrust::load(
        &[server.pki.root_cert()],
        &[server.pki.root_crl(), server.pki.intermediate_crl()],
    )
    .unwrap();
    let dir = server.org_dir("hn/cm");
    let seal2 = second_seal(&server);
    let (name, _) = sample_signer("hn/cm");
    let person2 = person_named(&server, &name, "person2");
    let deputy = person_named(&server, "Trần Văn Khác", "deputy");
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let check = |doc: &TestDoc, sigs: &[DocSignature]| {
        let canonical = doc.canonical();
        let text = String::from_utf8(canonical.clone()).unwrap();
        let manifest = congvan::document::manifest::parse(
            &text,
            &congvan::document::ManifestRules {
                doc_types: vec!["CT".into()],
                payload_bytes_max: u64::MAX,
            },
        )
        .unwrap()
        .manifest;
        let now = UnixTime::now();
        congvan::client::fetch::verify_outer_signatures(
            &trust,
            &canonical,
            &manifest,
            sigs,
            &["person".into(), "organization".into()],
            JudgedAt::Signed {
                signed: now,
                crls_current_at: now,
            },
        )
        .map(|v| v.signers.len())
        .map_err(|e| e.to_string())
    };
    assert_eq!(check(&doc, &doc.signatures(&server)), Ok(2));
    let cases: Vec<(&str, Vec<DocSignature>, &str)> = vec![
        (
            "swapped roles",
            vec![
                doc.raw_signature(Role::Organization, &dir, "person"),
                doc.raw_signature(Role::Person, &dir, "sign"),
            ],
            "must be made with the organisation's seal certificate",
        ),
        (
            "two seals",
            vec![
                doc.raw_signature(Role::Organization, &dir, "sign"),
                doc.raw_signature(Role::Person, &seal2, "seal2"),
            ],
            "must be made with a person certificate",
        ),
        (
            "two person certificates",
            vec![
                doc.raw_signature(Role::Organization, &person2, "person2"),
                doc.raw_signature(Role::Person, &dir, "person"),
            ],
            "must be made with the organisation's seal certificate",
        ),
        (
            "another person's certificate",
            vec![
                doc.raw_signature(Role::Organization, &dir, "sign"),
                doc.raw_signature(Role::Person, &deputy, "deputy"),
            ],
            "the manifest names the signer",
        ),
    ];
    for (what, sigs, expected) in cases {
        let err = check(&doc, &sigs).expect_err(what);
        assert!(err.contains(expected), "{what}: {err}");
    }
    let mut renamed = doc.clone();
    renamed.manifest["signer"]["full_name"] = "Trần Văn Khác".into();
    let err = check(&renamed, &renamed.signatures(&server)).unwrap_err();
    assert!(err.contains("the manifest names the signer"), "{err}");
}

/// The openssl recipe in certs/README.md makes a person certificate the server accepts:
/// the kind is a property a real CA can issue. The recipe is run as written there.
#[tokio::test(flavor = "multi_thread")]
async fn person_certificate_from_the_readme_openssl_recipe_is_accepted() {
    if !require("openssl") || !require("sh") {
        return;
    }
    let server = TestServer::start().await;
    let readme = include_str!("../../certs/README.md");
    let section = readme.split("## Certificate kinds").nth(1).unwrap();
    let script = section
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("\n```")
        .next()
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    for (from, to) in [
        (server.pki.intermediate_cert(), "intermediate.crt"),
        (server.pki.intermediate_key(), "intermediate.key"),
    ] {
        std::fs::copy(from, work.path().join(to)).unwrap();
    }
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new("sh")
            .args(["-e", "-c", script])
            .current_dir(work.path())
            .output()
            .unwrap()
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The recipe names hn/cm's competent person of the sample tree.
    assert_eq!(sample_signer("hn/cm").0, "Nguyễn Thị Hạnh");
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let sigs = vec![
        doc.raw_signature(Role::Organization, &server.org_dir("hn/cm"), "sign"),
        doc.raw_signature(Role::Person, work.path(), "person"),
    ];
    let (status, _) = server
        .client("hn/cm")
        .post_json::<_, serde_json::Value>("/v1/documents", &doc.body(&sigs))
        .await
        .unwrap();
    assert_eq!(status, 201);
}
