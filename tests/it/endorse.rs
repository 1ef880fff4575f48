//! Encryption keys endorsed by their owner (issue 11): the operator's key swap, replayed
//! against the real server and the real binary. `directory set-key` refuses a certificate
//! without its organisation's valid endorsement; a server that serves a swapped key
//! anyway (the keys directory edited by hand) meets a sender that refuses to seal to it,
//! naming the organisation; a key that changes is announced; an older endorsement of a
//! replaced key, an expired one and one signed by a person certificate are refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use congvan::directory::OrgId;
use congvan::directory::endorsement::{KeyEndorsement, SignedEndorsement};
use congvan::pki::demo::{Ca, LeafKind, LeafSpec};
use congvan::pki::signing::SigningKey;
use congvan::seal::{Cipher, OpenPgp};

use crate::gpg::{Gpg, endorse, register, set_key};
use crate::support::{TestServer, require};

const CHUC_SON: &str = "hn/cm/chuc-son";

/// The keys directory file of `org` with suffix `suffix` (`openpgp.asc`, ...).
fn key_file(server: &TestServer, org: &str, suffix: &str) -> PathBuf {
    server
        .pki
        .server_dir()
        .join("keys")
        .join(format!("{}.{suffix}", org.replace('/', ".")))
}

/// The registered certificate and endorsement of `org`, as bytes.
fn registered(server: &TestServer, org: &str) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(key_file(server, org, "openpgp.asc")).unwrap(),
        std::fs::read(key_file(server, org, "endorsement.json")).unwrap(),
    )
}

/// A fresh OpenPGP key made by someone who is not `org` (the operator, an attacker):
/// returns the public certificate file and its fingerprint.
fn attacker_key(dir: &Path) -> (PathBuf, String) {
    let key = congvan::seal::generate_key("attacker <urn:congvan:org:hn/cm/chuc-son>").unwrap();
    let path = dir.join("ATTACKER.cert");
    std::fs::write(&path, &key.cert_armored).unwrap();
    (path, key.fingerprint)
}

/// Signs an endorsement of `fingerprint` for `org` with the key pair `<stem>.crt/.key`.
fn endorsement_by(
    dir: &Path,
    stem: &str,
    org: &str,
    fingerprint: &str,
    issued: time::OffsetDateTime,
    days: i64,
) -> SignedEndorsement {
    let key = SigningKey::load(
        &dir.join(format!("{stem}.crt")),
        &dir.join(format!("{stem}.key")),
    )
    .unwrap();
    KeyEndorsement::new(OrgId::parse(org).unwrap(), fingerprint, issued, days)
        .unwrap()
        .sign(&key)
        .unwrap()
}

fn write_endorsement(path: &Path, endorsement: &SignedEndorsement) -> PathBuf {
    std::fs::write(path, endorsement.to_json().unwrap()).unwrap();
    path.to_owned()
}

/// Asserts that `set-key` refused with `code`, and that the registered files of
/// chuc-son are exactly `before`.
#[track_caller]
fn assert_set_key_refused(
    out: &Output,
    code: &str,
    server: &TestServer,
    before: &(Vec<u8>, Vec<u8>),
) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "set-key accepted; expected {code}");
    assert!(stderr.contains(code), "expected {code}: {stderr}");
    assert!(
        stderr.contains(CHUC_SON),
        "the refusal names the organisation: {stderr}"
    );
    assert_eq!(
        &registered(server, CHUC_SON),
        before,
        "a refusal changed the keys directory"
    );
}

/// The `congvan send` command line for a "Mật" document from hn/cm to `to`.
fn send_mat(server: &TestServer, to: &str, file: &Path) -> Output {
    let profile = server.pki.org_profile(&"hn/cm".parse().unwrap());
    Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args(["send", "--profile"])
        .arg(&profile)
        .args(["--server", &server.url(), "--to", to])
        .args(["--type", "QĐ", "--number", &crate::support::next_number()])
        .args(["--notation", "QĐ/HU"])
        .args(["--classification", "mat", "--subject", "Quyết định mật"])
        .arg(file)
        .output()
        .unwrap()
}

/// Waits until the server's directory serves `cert` (armoured text) for `org`.
async fn wait_served(server: &TestServer, org: &str, cert: &[u8]) {
    let endorsement = std::fs::read(key_file(server, org, "endorsement.json")).ok();
    wait_served_with(server, org, cert, endorsement.as_deref()).await;
}

/// Waits until the server's directory serves `cert` and `endorsement` for `org`.
async fn wait_served_with(server: &TestServer, org: &str, cert: &[u8], endorsement: Option<&[u8]>) {
    let client = server.client("hn");
    let expected = String::from_utf8(cert.to_vec()).unwrap();
    let expected_endorsement = endorsement.map(|e| SignedEndorsement::from_slice(e).unwrap());
    for _ in 0..100 {
        let directory = client.directory().await.unwrap();
        if directory.orgs.iter().any(|o| {
            o.id == org
                && o.encryption_cert.as_deref() == Some(expected.as_str())
                && o.encryption_endorsement == expected_endorsement
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not pick up the edited key of {org}");
}

/// How many `directory_changed` events the server's log holds, as a security officer
/// sees it.
async fn directory_changes(server: &TestServer) -> usize {
    let officer =
        congvan::client::Client::new(&server.auditor_profile("hn/cm"), &server.url()).unwrap();
    let size = officer.fetch_checkpoint().await.unwrap().size;
    officer
        .visible_entries(size)
        .await
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(
                congvan::ledger::Event::from_leaf(e.leaf.get().as_bytes()),
                Ok(congvan::ledger::Event::DirectoryChanged { .. })
            )
        })
        .count()
}

/// Waits until the log holds `n` `directory_changed` events.
async fn wait_directory_changes(server: &TestServer, n: usize) {
    for _ in 0..100 {
        if directory_changes(server).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the log does not hold {n} directory changes");
}

/// How many documents hn/cm has sent, as the server says.
async fn sent_count(server: &TestServer) -> usize {
    let page: congvan::api::ListPage = server.client("hn/cm").get_json("/v1/sent").await.unwrap();
    page.items.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_key_swap_with_set_key_is_refused_without_the_owners_endorsement() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let before = registered(&server, CHUC_SON);
    let (attacker_cert, attacker_fp) = attacker_key(work.path());
    // The directory in force at start-up is logged once.
    wait_directory_changes(&server, 1).await;

    // No endorsement at all.
    let out = set_key(&server, CHUC_SON, &attacker_cert, None);
    assert_set_key_refused(&out, "endorsement_missing", &server, &before);

    // Chúc Sơn's genuine endorsement, which names its own key, not the attacker's.
    let genuine = key_file(&server, CHUC_SON, "endorsement.json");
    let out = set_key(&server, CHUC_SON, &attacker_cert, Some(&genuine));
    assert_set_key_refused(&out, "endorsement_fingerprint_mismatch", &server, &before);

    // Another committee (here Xuân Mai, colluding) endorses the attacker's key with its
    // own seal: for itself, or claiming to speak for Chúc Sơn.
    let xuan_mai = server.org_dir("hn/cm/xuan-mai");
    let now = time::OffsetDateTime::now_utc();
    for org in ["hn/cm/xuan-mai", CHUC_SON] {
        let e = endorsement_by(&xuan_mai, "sign", org, &attacker_fp, now, 30);
        let path = write_endorsement(&work.path().join("other.json"), &e);
        let out = set_key(&server, CHUC_SON, &attacker_cert, Some(&path));
        assert_set_key_refused(&out, "endorsement_wrong_org", &server, &before);
    }

    // The genuine endorsement with the attacker's fingerprint written into it.
    let mut forged = SignedEndorsement::from_slice(&before.1).unwrap();
    forged.statement.openpgp_fingerprint = attacker_fp.clone();
    let path = write_endorsement(&work.path().join("forged.json"), &forged);
    let out = set_key(&server, CHUC_SON, &attacker_cert, Some(&path));
    assert_set_key_refused(&out, "endorsement_signature_invalid", &server, &before);

    // A seal certificate for Chúc Sơn from a CA the attacker made.
    let rogue_ca = Ca::new_root("attacker root").unwrap();
    let rogue = rogue_ca
        .issue(
            &LeafSpec::new(LeafKind::DocumentSigning, "Chúc Sơn (rogue)")
                .uri(format!("urn:congvan:org:{CHUC_SON}")),
        )
        .unwrap();
    rogue.write(work.path(), "rogue").unwrap();
    let e = endorsement_by(work.path(), "rogue", CHUC_SON, &attacker_fp, now, 30);
    let path = write_endorsement(&work.path().join("rogue.json"), &e);
    let out = set_key(&server, CHUC_SON, &attacker_cert, Some(&path));
    assert_set_key_refused(&out, "endorsement_untrusted", &server, &before);

    // Bytes that are no endorsement.
    let path = work.path().join("garbage.json");
    std::fs::write(&path, b"{\"statement\": 1}").unwrap();
    let out = set_key(&server, CHUC_SON, &attacker_cert, Some(&path));
    assert_set_key_refused(&out, "endorsement_malformed", &server, &before);

    // The directory still serves Chúc Sơn's own key, and the log records no change.
    wait_served(&server, CHUC_SON, &before.0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(directory_changes(&server).await, 1);

    // A change the owner endorsed is logged: a new key, and then only a renewed
    // endorsement of the same key.
    let key = congvan::seal::generate_key("Chúc Sơn, rotated").unwrap();
    let cert = work.path().join("rotated.cert");
    std::fs::write(&cert, &key.cert_armored).unwrap();
    register(&server, CHUC_SON, &cert).await;
    wait_directory_changes(&server, 2).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    register(&server, CHUC_SON, &cert).await;
    wait_directory_changes(&server, 3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_swapped_key_served_anyway_is_refused_by_the_sender_naming_the_organisation() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("mật.txt");
    std::fs::write(&file, "NỘI DUNG MẬT").unwrap();
    let (attacker_cert, _) = attacker_key(work.path());
    let attacker_bytes = std::fs::read(&attacker_cert).unwrap();
    let stale_other =
        std::fs::read(key_file(&server, "hn/cm/xuan-mai", "endorsement.json")).unwrap();
    let (_, own_endorsement) = registered(&server, CHUC_SON);

    // The operator edits the keys directory by hand: the attacker's certificate with an
    // endorsement copied from another organisation, with Chúc Sơn's own endorsement
    // (which names another key), and with none.
    let cases: [(Option<&[u8]>, &str); 3] = [
        (Some(&stale_other), "endorsement_wrong_org"),
        (Some(&own_endorsement), "endorsement_fingerprint_mismatch"),
        (None, "endorsement_missing"),
    ];
    for (endorsement, code) in cases {
        let endorsement_path = key_file(&server, CHUC_SON, "endorsement.json");
        match endorsement {
            Some(bytes) => std::fs::write(&endorsement_path, bytes).unwrap(),
            None => std::fs::remove_file(&endorsement_path).unwrap(),
        }
        std::fs::write(key_file(&server, CHUC_SON, "openpgp.asc"), &attacker_bytes).unwrap();
        wait_served_with(&server, CHUC_SON, &attacker_bytes, endorsement).await;

        let out = tokio::task::block_in_place(|| send_mat(&server, CHUC_SON, &file));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{code}: the sender sealed to a swapped key"
        );
        assert!(stderr.contains(code), "expected {code}: {stderr}");
        assert!(
            stderr.contains(CHUC_SON),
            "the refusal names the organisation: {stderr}"
        );
        // Nothing was sealed to the attacker, so nothing reached the server.
        assert_eq!(sent_count(&server).await, 0, "{code}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gpg_key_endorsed_with_key_endorse_is_registered_and_usable() {
    if !require("gpg") {
        return;
    }
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let gpg = Gpg::new();
    let email = gpg.generate(CHUC_SON);
    let cert = gpg.export(&email, work.path());
    let before = registered(&server, CHUC_SON);
    // Without its endorsement the gpg key is refused like any other.
    let out = set_key(&server, CHUC_SON, &cert, None);
    assert_set_key_refused(&out, "endorsement_missing", &server, &before);
    // Endorsed by Chúc Sơn's seal with `congvan key endorse`: registered, and a "Mật"
    // document to Chúc Sơn is sealed to it.
    register(&server, CHUC_SON, &cert).await;
    let endorsement = std::fs::read(endorse(&server, CHUC_SON, &cert)).unwrap();
    let parsed = SignedEndorsement::from_slice(&endorsement).unwrap();
    let fingerprint = OpenPgp::default()
        .check_cert(&std::fs::read(&cert).unwrap())
        .unwrap();
    assert_eq!(parsed.statement.openpgp_fingerprint, fingerprint);
    let file = work.path().join("mật.txt");
    std::fs::write(&file, "NỘI DUNG MẬT cho khóa GnuPG").unwrap();
    let out = tokio::task::block_in_place(|| send_mat(&server, CHUC_SON, &file));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sent_count(&server).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_key_is_announced_and_a_replaced_key_served_again_is_refused() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("mật.txt");
    std::fs::write(&file, "NỘI DUNG MẬT").unwrap();
    let (old_cert, old_endorsement) = registered(&server, CHUC_SON);
    let old_fp = OpenPgp::default().check_cert(&old_cert).unwrap();

    // The first send remembers Chúc Sơn's key quietly.
    let out = tokio::task::block_in_place(|| send_mat(&server, CHUC_SON, &file));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("CHANGED"), "{stderr}");

    // Chúc Sơn rotates its key (a second later, so the new endorsement is newer) and the
    // operator registers the new one with its endorsement.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new_key = congvan::seal::generate_key("Chúc Sơn, new key").unwrap();
    let new_cert = work.path().join("new.cert");
    std::fs::write(&new_cert, &new_key.cert_armored).unwrap();
    register(&server, CHUC_SON, &new_cert).await;
    let new_endorsement = SignedEndorsement::from_slice(&registered(&server, CHUC_SON).1).unwrap();

    let out = tokio::task::block_in_place(|| send_mat(&server, CHUC_SON, &file));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("CHANGED"), "{stderr}");
    assert!(stderr.contains(&old_fp), "old fingerprint shown: {stderr}");
    assert!(
        stderr.contains(&new_key.fingerprint),
        "new fingerprint shown: {stderr}"
    );
    assert!(
        stderr.contains(&new_endorsement.statement.issued_at),
        "endorsement date shown: {stderr}"
    );
    // Said once: the next send is quiet again.
    let out = tokio::task::block_in_place(|| send_mat(&server, CHUC_SON, &file));
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("CHANGED"));

    // The operator puts the replaced key back with its old (still valid) endorsement.
    std::fs::write(
        key_file(&server, CHUC_SON, "endorsement.json"),
        &old_endorsement,
    )
    .unwrap();
    std::fs::write(key_file(&server, CHUC_SON, "openpgp.asc"), &old_cert).unwrap();
    wait_served(&server, CHUC_SON, &old_cert).await;
    let out = tokio::task::block_in_place(|| send_mat(&server, CHUC_SON, &file));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "sealed to a replaced key");
    assert!(stderr.contains("endorsement_superseded"), "{stderr}");
    assert!(stderr.contains(CHUC_SON), "{stderr}");
    assert_eq!(sent_count(&server).await, 3);

    // Chúc Sơn itself is told that the directory lists a key that is not its own.
    let sent: congvan::api::ListPage = server.client("hn/cm").get_json("/v1/sent").await.unwrap();
    // The oldest one, sealed to the key this profile still holds.
    let id = sent.items.last().unwrap().id.to_string();
    let profile = server.pki.org_profile(&CHUC_SON.parse().unwrap());
    std::fs::write(
        key_file(&server, CHUC_SON, "openpgp.asc"),
        std::fs::read(&new_cert).unwrap(),
    )
    .unwrap();
    std::fs::write(
        key_file(&server, CHUC_SON, "endorsement.json"),
        new_endorsement.to_json().unwrap(),
    )
    .unwrap();
    wait_served(&server, CHUC_SON, &new_key.cert_armored).await;
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["fetch", &id, "--profile"])
            .arg(&profile)
            .args(["--server", &server.url(), "--out"])
            .arg(work.path().join("out"))
            .output()
            .unwrap()
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("WARNING"), "{stderr}");
    assert!(stderr.contains(&new_key.fingerprint), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_endorsement_is_refused_by_set_key_and_by_the_sender() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let before = registered(&server, CHUC_SON);
    let fp = OpenPgp::default().check_cert(&before.0).unwrap();
    let cert = work.path().join("own.cert");
    std::fs::write(&cert, &before.0).unwrap();
    // Chúc Sơn's own seal endorsed its own key, but for 30 days that ended a day ago.
    let issued = time::OffsetDateTime::now_utc() - time::Duration::days(31);
    let expired = endorsement_by(&server.org_dir(CHUC_SON), "sign", CHUC_SON, &fp, issued, 30);
    let path = write_endorsement(&work.path().join("expired.json"), &expired);
    let out = set_key(&server, CHUC_SON, &cert, Some(&path));
    assert_set_key_refused(&out, "endorsement_expired", &server, &before);

    // Put there by hand, the sender refuses it too.
    std::fs::write(
        key_file(&server, CHUC_SON, "endorsement.json"),
        expired.to_json().unwrap(),
    )
    .unwrap();
    let client = server.client("hn/cm");
    let mut served = false;
    for _ in 0..100 {
        let directory = client.directory().await.unwrap();
        let entry = directory.orgs.iter().find(|o| o.id == CHUC_SON).unwrap();
        if entry.encryption_endorsement.as_ref() == Some(&expired) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "the server did not pick up the edited endorsement");
    let file = work.path().join("mật.txt");
    std::fs::write(&file, "NỘI DUNG MẬT").unwrap();
    let out = tokio::task::block_in_place(|| send_mat(&server, CHUC_SON, &file));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("endorsement_expired") && stderr.contains(CHUC_SON),
        "{stderr}"
    );
    assert_eq!(sent_count(&server).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endorsement_signed_by_a_person_certificate_is_refused() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let before = registered(&server, CHUC_SON);
    let fp = OpenPgp::default().check_cert(&before.0).unwrap();
    let cert = work.path().join("own.cert");
    std::fs::write(&cert, &before.0).unwrap();
    // A document-signing certificate from the real CA for a person of Chúc Sơn: it may
    // sign documents as the competent person, never speak for the organisation's key.
    let ca = Ca::load(
        &server.pki.intermediate_cert(),
        &server.pki.intermediate_key(),
        false,
    )
    .unwrap();
    let person = ca
        .issue(
            &LeafSpec::new(LeafKind::DocumentSigning, "Nguyễn Văn A")
                .uri(format!("urn:congvan:person:{CHUC_SON}")),
        )
        .unwrap();
    person.write(work.path(), "person").unwrap();
    let now = time::OffsetDateTime::now_utc();
    let e = endorsement_by(work.path(), "person", CHUC_SON, &fp, now, 30);
    let path = write_endorsement(&work.path().join("person.json"), &e);
    let out = set_key(&server, CHUC_SON, &cert, Some(&path));
    assert_set_key_refused(&out, "endorsement_not_seal", &server, &before);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endorsement_signed_with_openssl_cms_by_the_seal_is_accepted() {
    if !require("openssl") {
        return;
    }
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    // A new key for Chúc Sơn, endorsed outside congvan: the statement's RFC 8785 bytes
    // signed by its seal certificate with the real `openssl cms`.
    let key = congvan::seal::generate_key("Chúc Sơn, key endorsed with CMS").unwrap();
    let cert = work.path().join("new.cert");
    std::fs::write(&cert, &key.cert_armored).unwrap();
    let statement = KeyEndorsement::new(
        OrgId::parse(CHUC_SON).unwrap(),
        &key.fingerprint,
        time::OffsetDateTime::now_utc(),
        30,
    )
    .unwrap();
    let input = work.path().join("statement.json");
    std::fs::write(&input, statement.canonical().unwrap()).unwrap();
    let seal = server.org_dir(CHUC_SON);
    let der = work.path().join("sig.der");
    let out = Command::new("openssl")
        .args([
            "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER", "-in",
        ])
        .arg(&input)
        .arg("-signer")
        .arg(seal.join("sign.crt"))
        .arg("-inkey")
        .arg(seal.join("sign.key"))
        .arg("-certfile")
        .arg(server.pki.intermediate_cert())
        .arg("-out")
        .arg(&der)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let endorsement = SignedEndorsement {
        statement,
        signature: congvan::document::DocSignature::cms(
            congvan::document::Role::Organization,
            &std::fs::read(&der).unwrap(),
        ),
    };
    let path = write_endorsement(&work.path().join("cms.json"), &endorsement);
    let out = set_key(&server, CHUC_SON, &cert, Some(&path));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_served(&server, CHUC_SON, &key.cert_armored).await;
    let file = work.path().join("mật.txt");
    std::fs::write(&file, "NỘI DUNG MẬT").unwrap();
    let out = tokio::task::block_in_place(|| send_mat(&server, CHUC_SON, &file));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sent_count(&server).await, 1);
}
