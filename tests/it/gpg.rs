//! Interoperability with GnuPG (the real `gpg` binary, 2.2 on Debian 12): committees may
//! bring keys made by gpg; what congvan seals for them opens with `gpg --decrypt`, and
//! what `gpg --encrypt --sign` makes for the right recipients is accepted and opened by
//! `congvan fetch`. gpg 2.2 neither reads nor writes SEIPDv2, so sealing follows each
//! recipient certificate's features, also for mixed recipient sets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use congvan::client::send::SendRequest;
use congvan::document::manifest::{Classification, Urgency};
use congvan::seal::{Cipher, OpenPgp};
use serde_json::json;

use crate::support::{TestDoc, TestServer, assert_code, require};

/// A throw-away GnuPG home.
pub struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    pub fn new() -> Gpg {
        let home = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        Gpg { home }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args([
                "--batch",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Generates an unprotected ed25519/cv25519 key; returns its e-mail (the handle).
    pub fn generate(&self, org: &str) -> String {
        let email = format!("{}@congvan.invalid", org.replace('/', "."));
        self.ok(&[
            "--quick-gen-key",
            &format!("Ủy ban thử nghiệm <{email}>"),
            "future-default",
            "default",
            "never",
        ]);
        email
    }

    pub fn export(&self, email: &str, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{email}.asc"));
        let out = self.ok(&["--armor", "--export", email]);
        std::fs::write(&path, out.stdout).unwrap();
        path
    }

    fn export_secret(&self, email: &str, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{email}.secret.asc"));
        let out = self.ok(&["--armor", "--export-secret-keys", email]);
        std::fs::write(&path, out.stdout).unwrap();
        path
    }
}

/// Endorses `cert` as the encryption key of `org` with the real `congvan key endorse`
/// (signed by the organisation's seal certificate from its DEMO profile); returns the
/// endorsement file.
pub fn endorse(server: &TestServer, org: &str, cert: &Path) -> PathBuf {
    let profile = server.pki.org_profile(&org.parse().unwrap());
    let out_path = cert.with_extension("endorsement.json");
    let out = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args(["key", "endorse", "--profile"])
        .arg(&profile)
        .arg("--cert")
        .arg(cert)
        .arg("--out")
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out_path
}

/// Runs the real `congvan directory set-key` for `org` with `cert` and, if given, an
/// endorsement file.
pub fn set_key(server: &TestServer, org: &str, cert: &Path, endorsement: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_congvan"));
    command
        .args(["directory", "set-key", "--config"])
        .arg(server.pki.server_config())
        .arg(org)
        .arg(cert);
    if let Some(e) = endorsement {
        command.arg("--endorsement").arg(e);
    }
    command.output().unwrap()
}

/// Registers `cert` as the encryption key of `org`: endorsed by the organisation with the
/// real `congvan key endorse`, registered with the real `congvan directory set-key`; then
/// waits until the running server serves it.
pub async fn register(server: &TestServer, org: &str, cert: &Path) {
    let out = tokio::task::block_in_place(|| {
        let endorsement = endorse(server, org, cert);
        set_key(server, org, cert, Some(&endorsement))
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("registered"));
    let expected = std::fs::read_to_string(
        server
            .pki
            .server_dir()
            .join("keys")
            .join(format!("{}.openpgp.asc", org.replace('/', "."))),
    )
    .unwrap();
    let client = server.client("hn");
    for _ in 0..100 {
        let directory = client.directory().await.unwrap();
        if directory
            .orgs
            .iter()
            .any(|o| o.id == org && o.encryption_cert.as_deref() == Some(expected.as_str()))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not pick up the new key of {org}");
}

fn request(to: &[&str], files: Vec<PathBuf>) -> SendRequest {
    SendRequest {
        to: to.iter().map(|t| t.parse().unwrap()).collect(),
        urgency: Urgency::HoaToc,
        classification: Classification::Mat,
        place: "Chương Mỹ".into(),
        ..SendRequest::new(
            "QĐ",
            &crate::support::next_number(),
            "QĐ/HU",
            "Quyết định mật gửi khóa GnuPG",
            files,
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_congvan_seals_for_a_gpg_key_opens_with_gpg_even_in_a_mixed_set() {
    if !require("gpg") {
        return;
    }
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let gpg = Gpg::new();
    let xuan_mai = gpg.generate("hn/cm/xuan-mai");
    register(
        &server,
        "hn/cm/xuan-mai",
        &gpg.export(&xuan_mai, work.path()),
    )
    .await;

    let file = work.path().join("mật.txt");
    let content = "NỘI DUNG MẬT cho khóa GnuPG và khóa Sequoia.";
    std::fs::write(&file, content).unwrap();
    // xuan-mai's key is gpg's (SEIPDv1 only), phung-chau's is sequoia's (SEIPDv2).
    let sent = server
        .client("hn/cm")
        .send_document(&request(
            &["hn/cm/xuan-mai", "hn/cm/phung-chau"],
            vec![file.clone()],
        ))
        .await
        .unwrap();

    let payload = server
        .client("hn/cm/xuan-mai")
        .get_stream(&format!("/v1/documents/{}/payload", sent.id))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let envelope = OpenPgp::default().recipients_of(&mut &payload[..]).unwrap();
    assert_eq!(
        envelope.container_version, 1,
        "a gpg 2.2 recipient needs SEIPDv1"
    );
    let ct = work.path().join("payload.gpg");
    std::fs::write(&ct, &payload).unwrap();
    // gpg checks the sender's signature with the district's congvan-made certificate.
    gpg.ok(&[
        "--import",
        server
            .org_dir("hn/cm")
            .join("openpgp.cert")
            .to_str()
            .unwrap(),
    ]);
    let out = tokio::task::block_in_place(|| gpg.ok(&["--decrypt", ct.to_str().unwrap()]));
    assert!(
        out.stdout
            .starts_with(congvan::document::package::INNER_MAGIC)
    );
    assert!(out.stdout.ends_with(content.as_bytes()));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Good signature"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The other recipient of the mixed set opens it with congvan.
    let fetched = server
        .client("hn/cm/phung-chau")
        .fetch_document(&sent.id, &work.path().join("phung-chau"))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&fetched.files[0]).unwrap(), content);
}

/// Builds a classified document from hn/cm to `to` whose payload gpg encrypts and signs
/// for `gpg_recipient` with `gpg_sender`; returns it with the file it carries.
fn gpg_sealed_doc(
    gpg: &Gpg,
    work: &Path,
    to: &str,
    gpg_sender: &str,
    gpg_recipient: &str,
) -> (TestDoc, Vec<u8>) {
    let content = "Nội dung do GnuPG mã hóa và ký.".as_bytes().to_vec();
    let mut doc = TestDoc::new("hn/cm", &[to]);
    doc.manifest["classification"] = json!("mat");
    let mut inner = doc.manifest.clone();
    let sha = congvan::document::sha256_hex(&content);
    inner["attachments"] = json!([{"name": "gpg.txt", "media_type": "text/plain", "size": content.len(), "sha256": sha}]);
    inner["payload"] = json!({"sha256": sha, "size": content.len(), "encrypted": false});
    let inner_canonical = congvan::document::manifest::canonical_bytes(&inner).unwrap();
    let mut package = Vec::new();
    congvan::document::package::write_header(&mut package, &inner_canonical).unwrap();
    package.extend_from_slice(&content);
    let plain = work.join(format!("inner-{}.bin", doc.id()));
    std::fs::write(&plain, &package).unwrap();
    let ct = work.join(format!("inner-{}.gpg", doc.id()));
    gpg.ok(&[
        "--trust-model",
        "always",
        "--encrypt",
        "--sign",
        "-r",
        gpg_recipient,
        "-u",
        gpg_sender,
        "-o",
        ct.to_str().unwrap(),
        plain.to_str().unwrap(),
    ]);
    let ciphertext = std::fs::read(&ct).unwrap();
    doc.manifest["subject"] = json!("");
    doc.manifest["attachments"] = json!([]);
    doc.manifest["payload"] = json!({
        "sha256": congvan::document::sha256_hex(&ciphertext),
        "size": ciphertext.len(),
        "encrypted": true,
    });
    doc.payload = ciphertext;
    (doc, content)
}

#[tokio::test(flavor = "multi_thread")]
async fn what_gpg_encrypts_and_signs_is_accepted_and_opened_by_congvan_fetch() {
    if !require("gpg") {
        return;
    }
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let gpg = Gpg::new();
    let district = gpg.generate("hn/cm");
    let chuc_son = gpg.generate("hn/cm/chuc-son");
    let xuan_mai = gpg.generate("hn/cm/xuan-mai");
    register(&server, "hn/cm", &gpg.export(&district, work.path())).await;
    register(
        &server,
        "hn/cm/chuc-son",
        &gpg.export(&chuc_son, work.path()),
    )
    .await;
    register(
        &server,
        "hn/cm/xuan-mai",
        &gpg.export(&xuan_mai, work.path()),
    )
    .await;
    let client = server.client("hn/cm");

    // Encrypted by gpg to the wrong committee: refused.
    let (wrong, _) = tokio::task::block_in_place(|| {
        gpg_sealed_doc(&gpg, work.path(), "hn/cm/chuc-son", &district, &xuan_mai)
    });
    wrong.submit(&server, &client).await.unwrap();
    assert_code(
        wrong.upload(&client, wrong.payload.clone()).await,
        "recipient_set_mismatch",
    );

    // Encrypted to the right one: accepted, and `congvan fetch` opens it with the
    // recipient's exported gpg secret key.
    let (doc, content) = tokio::task::block_in_place(|| {
        gpg_sealed_doc(&gpg, work.path(), "hn/cm/chuc-son", &district, &chuc_son)
    });
    doc.submit(&server, &client).await.unwrap();
    let (status, _) = doc.upload(&client, doc.payload.clone()).await.unwrap();
    assert_eq!(status, 201);

    let secret = gpg.export_secret(&chuc_son, work.path());
    let profile_path = server.pki.org_profile(&"hn/cm/chuc-son".parse().unwrap());
    let profile_text = std::fs::read_to_string(&profile_path).unwrap().replace(
        "openpgp_key = \"openpgp.key\"",
        &format!("openpgp_key = \"{}\"", secret.display()),
    );
    let gpg_profile = profile_path.parent().unwrap().join("client-gpg.toml");
    std::fs::write(&gpg_profile, profile_text).unwrap();
    let out_dir = work.path().join("out");
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["fetch", &doc.id(), "--profile"])
            .arg(&gpg_profile)
            .args(["--server", &server.url(), "--out"])
            .arg(&out_dir)
            .output()
            .unwrap()
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(out_dir.join("gpg.txt")).unwrap(), content);
}

/// The SEIPDv2 ciphersuite of a sealed payload (symmetric and AEAD algorithm), or `None`
/// for SEIPDv1; parsed independently of congvan's own inspection.
fn container_suite(
    payload: &[u8],
) -> Option<(
    sequoia_openpgp::types::SymmetricAlgorithm,
    sequoia_openpgp::types::AEADAlgorithm,
)> {
    use sequoia_openpgp::Packet;
    use sequoia_openpgp::packet::SEIP;
    use sequoia_openpgp::parse::{PacketParser, PacketParserResult, Parse};
    let mut ppr = PacketParser::from_bytes(payload).unwrap();
    while let PacketParserResult::Some(pp) = ppr {
        if let Packet::SEIP(seip) = &pp.packet {
            return match seip {
                SEIP::V2(v2) => Some((v2.symmetric_algo(), v2.aead())),
                _ => None,
            };
        }
        ppr = pp.next().unwrap().1;
    }
    panic!("no encrypted container in the payload");
}

/// Sends `content` from hn/cm to `to` with the real client, returns the document id and
/// the sealed payload as the server stores it.
async fn send_and_get_payload(
    server: &TestServer,
    work: &Path,
    to: &[&str],
    content: &[u8],
) -> (String, Vec<u8>) {
    let file = work.join(format!("mật-{}.bin", to.len()));
    std::fs::write(&file, content).unwrap();
    let sent = server
        .client("hn/cm")
        .send_document(&request(to, vec![file]))
        .await
        .unwrap();
    let payload = server
        .client(to[0])
        .get_stream(&format!("/v1/documents/{}/payload", sent.id))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    (sent.id.to_string(), payload)
}

/// Runs the real `congvan fetch` with `profile` and returns the attachment it wrote (the
/// file sent by [`send_and_get_payload`]).
fn cli_fetch(server: &TestServer, id: &str, profile: &Path, out_dir: &Path) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args(["fetch", id, "--profile"])
        .arg(profile)
        .args(["--server", &server.url(), "--out"])
        .arg(out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "bin"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::read(&files[0]).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn congvan_keys_get_aes_gcm_and_a_key_issued_before_gets_ocb_both_open() {
    use sequoia_openpgp::cert::prelude::*;
    use sequoia_openpgp::serialize::SerializeInto;
    use sequoia_openpgp::types::{AEADAlgorithm, SymmetricAlgorithm};

    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    // Several 256 KiB pipe buffers and many 4 KiB AEAD chunks, not a multiple of either.
    let content: Vec<u8> = (0..1_300_007u32).map(|i| (i % 253) as u8).collect();

    // Keys made by this congvan advertise AES-256/GCM: the fast path, and it opens.
    let (id, payload) = send_and_get_payload(
        &server,
        work.path(),
        &["hn/cm/chuc-son", "hn/cm/phung-chau"],
        &content,
    )
    .await;
    assert_eq!(
        container_suite(&payload),
        Some((SymmetricAlgorithm::AES256, AEADAlgorithm::GCM))
    );
    let profile = server.pki.org_profile(&"hn/cm/chuc-son".parse().unwrap());
    let opened =
        tokio::task::block_in_place(|| cli_fetch(&server, &id, &profile, &work.path().join("gcm")));
    assert!(opened == content, "the GCM message opened to other bytes");

    // A key made the way congvan made them before (SEIPDv2 without AEAD ciphersuites)
    // keeps working: a set that includes it gets OCB, which every SEIPDv2 reader has.
    let (old, _) = CertBuilder::general_purpose(Some("Xuân Mai (issued before)"))
        .generate()
        .unwrap();
    let old_cert = work.path().join("old.cert.asc");
    std::fs::write(&old_cert, old.armored().to_vec().unwrap()).unwrap();
    let old_secret = work.path().join("old.secret.asc");
    std::fs::write(&old_secret, old.as_tsk().armored().to_vec().unwrap()).unwrap();
    register(&server, "hn/cm/xuan-mai", &old_cert).await;
    let (id, payload) = send_and_get_payload(
        &server,
        work.path(),
        &["hn/cm/xuan-mai", "hn/cm/chuc-son"],
        &content,
    )
    .await;
    assert_eq!(
        container_suite(&payload),
        Some((SymmetricAlgorithm::AES256, AEADAlgorithm::OCB))
    );
    let profile_path = server.pki.org_profile(&"hn/cm/xuan-mai".parse().unwrap());
    let profile_text = std::fs::read_to_string(&profile_path).unwrap().replace(
        "openpgp_key = \"openpgp.key\"",
        &format!("openpgp_key = \"{}\"", old_secret.display()),
    );
    assert!(profile_text.contains(&old_secret.display().to_string()));
    let old_profile = profile_path.parent().unwrap().join("client-old.toml");
    std::fs::write(&old_profile, profile_text).unwrap();
    let opened = tokio::task::block_in_place(|| {
        cli_fetch(&server, &id, &old_profile, &work.path().join("ocb"))
    });
    assert!(opened == content, "the OCB message opened to other bytes");
    let opened = tokio::task::block_in_place(|| {
        cli_fetch(&server, &id, &profile, &work.path().join("ocb-new"))
    });
    assert!(opened == content);
}
