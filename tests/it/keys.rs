//! Keys as offices hold them: signing keys on a PKCS#11 token (Debian's SoftHSM2 stands in
//! for the USB token), keys imported from PKCS#12 files made by the real `openssl pkcs12
//! -export` (legacy and modern encryption), and keys encrypted at rest. Every document here
//! is sent with the real binary to a real server, which verifies the signatures, and
//! fetched by the recipient, which verifies them again.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use congvan::api::DocumentView;
use congvan::pki::demo::{Ca, LeafKind, LeafSpec};

use crate::support::{TestServer, require};

const SENDER: &str = "hn/cm/chuc-son";
const RECIPIENT: &str = "hn/cm";
const PIN: &str = "493817";
const PIN_ENV: &str = "CONGVAN_TEST_TOKEN_PIN";
const TOKEN: &str = "chuc-son-token";
const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn congvan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_congvan"))
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A SoftHSM2 token store of its own (SOFTHSM2_CONF names a private token directory).
struct Hsm {
    dir: tempfile::TempDir,
}

impl Hsm {
    fn new() -> Hsm {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        Hsm { dir }
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("SOFTHSM2_CONF", self.conf())
            .output()
            .unwrap();
        ok(&out, program)
    }

    fn init_token(&self, label: &str) {
        self.run(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                PIN,
                "--so-pin",
                "11223344",
            ],
        );
    }

    /// Generates a P-256 key pair on the token with pkcs11-tool.
    fn keygen(&self, label: &str, id: &str) {
        self.pkcs11_tool(&[
            "--login",
            "--pin",
            PIN,
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            label,
            "--id",
            id,
        ]);
    }

    fn pkcs11_tool(&self, args: &[&str]) -> String {
        let out = Command::new("pkcs11-tool")
            .args(["--module", MODULE, "--token-label", TOKEN])
            .args(args)
            .env("SOFTHSM2_CONF", self.conf())
            .output()
            .unwrap();
        ok(&out, "pkcs11-tool")
    }

    /// Marks the token's user PIN locked, as a real token does after too many wrong PINs.
    /// SoftHSM2 never locks a PIN by itself, so the flag is set in its token file: the
    /// flags are the 8-byte value after the `CKA_OS_TOKENFLAGS` attribute header.
    fn lock_user_pin(&self) {
        let tokens = self.dir.path().join("tokens");
        let token_dir = std::fs::read_dir(&tokens)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.join("token.object").is_file())
            .unwrap();
        let path = token_dir.join("token.object");
        let mut bytes = std::fs::read(&path).unwrap();
        let header = [0, 0, 0, 0, 0x80, 0, 0x53, 0x4b, 0, 0, 0, 0, 0, 0, 0, 2];
        let at = bytes
            .windows(header.len())
            .position(|w| w == header)
            .expect("SoftHSM2's token flags attribute")
            + header.len();
        let mut flags = u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
        flags |= 0x0004_0000; // CKF_USER_PIN_LOCKED
        bytes[at..at + 8].copy_from_slice(&flags.to_be_bytes());
        std::fs::write(&path, bytes).unwrap();
    }
}

/// An organisation whose seal and person keys were generated on a token, with
/// certificates issued by the DEMO CA from requests the token signed.
struct TokenOrg {
    hsm: Hsm,
    dir: tempfile::TempDir,
}

impl TokenOrg {
    fn profile(&self) -> PathBuf {
        self.dir.path().join("client.toml")
    }

    fn write_profile(&self, server: &TestServer, token_label: &str) {
        self.write_profile_with(server, token_label, &format!("pin_env = \"{PIN_ENV}\""), "");
    }

    /// The profile with `pin_line` in its `[token]` section and `top` among its top-level
    /// settings.
    fn write_profile_with(
        &self,
        server: &TestServer,
        token_label: &str,
        pin_line: &str,
        top: &str,
    ) {
        let org = server.org_dir(SENDER);
        std::fs::write(
            self.profile(),
            format!(
                r#"server = "{url}"
ca = "{ca}"
tls_cert = "{org}/tls.crt"
tls_key = "{org}/tls.key"
sign_cert = "sign.crt"
person_cert = "person.crt"
openpgp_key = "{org}/openpgp.key"
openpgp_cert = "{org}/openpgp.cert"
state_dir = "state"
{top}

[token]
module = "{MODULE}"
label = "{token_label}"
{pin_line}
sign_key = {{ label = "seal" }}
person_key = {{ id = "02" }}
"#,
                url = server.url(),
                ca = server.pki.root_cert().display(),
                org = org.display(),
            ),
        )
        .unwrap();
    }

    /// Keys made on the token by pkcs11-tool; requests made by `congvan key csr`; the
    /// DEMO intermediate CA issues the certificates.
    fn setup(server: &TestServer) -> TokenOrg {
        let hsm = Hsm::new();
        hsm.init_token(TOKEN);
        hsm.keygen("seal", "01");
        hsm.keygen("person", "02");
        let org = TokenOrg {
            hsm,
            dir: tempfile::tempdir().unwrap(),
        };
        org.write_profile(server, TOKEN);
        let ca = Ca::load(
            &server.pki.intermediate_cert(),
            &server.pki.intermediate_key(),
            false,
        )
        .unwrap();
        let uri = format!("urn:congvan:org:{SENDER}");
        for (role, name) in [
            ("sign", "Đảng ủy thị trấn Chúc Sơn"),
            ("person", "Nguyễn Văn Token"),
        ] {
            let csr = org.dir.path().join(format!("{role}.csr"));
            ok(
                &org.congvan(PIN)
                    .args(["key", "csr", "--profile"])
                    .arg(org.profile())
                    .args(["--role", role, "--common-name", name, "--out"])
                    .arg(&csr)
                    .output()
                    .unwrap(),
                "key csr",
            );
            // The seal names the organisation; the person's certificate is of its own kind.
            let mut spec = LeafSpec::new(LeafKind::DocumentSigning, name).uri(&uri);
            if role == "person" {
                spec = spec.uri(format!("urn:congvan:person:{SENDER}"));
                spec.title = Some("Phó Bí thư".into());
            }
            let chain = ca
                .issue_for_csr(&spec, &std::fs::read_to_string(&csr).unwrap())
                .unwrap();
            std::fs::write(org.dir.path().join(format!("{role}.crt")), chain).unwrap();
        }
        org
    }

    /// The real binary with this token store and `pin` in the profile's PIN variable.
    fn congvan(&self, pin: &str) -> Command {
        let mut cmd = congvan();
        cmd.env("SOFTHSM2_CONF", self.hsm.conf()).env(PIN_ENV, pin);
        cmd
    }

    fn send(&self, server: &TestServer, pin: &str) -> Output {
        send_with(
            self.congvan(pin),
            &self.profile(),
            server,
            &self.dir.path().join("doc.txt"),
        )
    }
}

fn send_with(cmd: Command, profile: &Path, server: &TestServer, file: &Path) -> Output {
    // Each send its own number: the outgoing register refuses one used twice.
    let number = crate::support::next_number().parse().unwrap();
    send_numbered(cmd, profile, server, file, number)
}

fn send_numbered(
    mut cmd: Command,
    profile: &Path,
    server: &TestServer,
    file: &Path,
    number: u32,
) -> Output {
    std::fs::write(file, "Văn bản ký bằng khóa của tổ chức.\n").unwrap();
    cmd.args(["send", "--profile"])
        .arg(profile)
        .args(["--server", &server.url(), "--to", RECIPIENT])
        .args([
            "--type",
            "CV",
            "--number",
            &number.to_string(),
            "--notation",
            "CV/ĐU",
        ])
        .args(["--subject", "Công văn thử khóa"])
        .arg(file)
        .output()
        .unwrap()
}

/// The recipient fetches the document with the real binary, which verifies both
/// signatures against its own trust anchor and CRLs.
fn recipient_fetches(server: &TestServer, id: &str) {
    let out = tempfile::tempdir().unwrap();
    let profile = server.pki.org_profile(&RECIPIENT.parse().unwrap());
    ok(
        &congvan()
            .args(["fetch", "--profile"])
            .arg(&profile)
            .args(["--server", &server.url(), id, "--out"])
            .arg(out.path().join("files"))
            .output()
            .unwrap(),
        "fetch",
    );
    assert!(out.path().join("files").read_dir().unwrap().count() >= 1);
}

/// How many documents the sender has sent, as the server says.
async fn sent_count(server: &TestServer) -> usize {
    let page: congvan::api::ListPage = server
        .client(SENDER)
        .get_json("/v1/sent?limit=500")
        .await
        .unwrap();
    page.items.len()
}

/// Checks every signature of a stored document with `openssl dgst -verify` and the
/// public key of the certificate it carries: the token's signatures are plain ECDSA that
/// any tool verifies.
async fn openssl_verifies(server: &TestServer, id: &str) {
    let view: DocumentView = server
        .client(RECIPIENT)
        .get_json(&format!("/v1/documents/{id}"))
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let message = tmp.path().join("manifest.json");
    std::fs::write(&message, view.manifest.get()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(view.signatures.len(), 2);
    for (i, sig) in view.signatures.iter().enumerate() {
        let cert = tmp.path().join(format!("{i}.der"));
        std::fs::write(&cert, b64.decode(&sig.chain[0]).unwrap()).unwrap();
        let signature = tmp.path().join(format!("{i}.sig"));
        std::fs::write(&signature, b64.decode(&sig.value).unwrap()).unwrap();
        let public = tmp.path().join(format!("{i}.pub"));
        ok(
            &Command::new("openssl")
                .args(["x509", "-inform", "DER", "-pubkey", "-noout", "-in"])
                .arg(&cert)
                .args(["-out"])
                .arg(&public)
                .output()
                .unwrap(),
            "openssl x509",
        );
        let verify = |file: &Path| {
            Command::new("openssl")
                .args(["dgst", "-sha256", "-verify"])
                .arg(&public)
                .arg("-signature")
                .arg(&signature)
                .arg(file)
                .output()
                .unwrap()
        };
        assert!(ok(&verify(&message), "openssl dgst -verify").contains("Verified OK"));
        // And it is the manifest that was signed: one changed byte fails.
        let forged = tmp.path().join("forged.json");
        std::fs::write(&forged, view.manifest.get().replacen("7", "8", 1)).unwrap();
        assert!(!verify(&forged).status.success());
    }
}

fn tools_for_tokens() -> bool {
    require("softhsm2-util") && require("pkcs11-tool") && require("openssl")
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_signed_on_a_token_are_verified_by_server_openssl_and_recipient() {
    if !tools_for_tokens() {
        return;
    }
    let server = TestServer::start().await;
    let org = tokio::task::block_in_place(|| TokenOrg::setup(&server));
    let out = tokio::task::block_in_place(|| org.send(&server, PIN));
    let id = ok(&out, "send").trim().to_owned();
    // The PIN is never printed, even in passing.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(PIN), "{stderr}");
    let view: DocumentView = server
        .client(RECIPIENT)
        .get_json(&format!("/v1/documents/{id}"))
        .await
        .unwrap();
    // Both signatures were made with the token's keys: their certificates are the ones
    // the CA issued from the token's requests.
    let b64 = base64::engine::general_purpose::STANDARD;
    for (sig, file) in view.signatures.iter().zip(["sign.crt", "person.crt"]) {
        let issued = congvan::pki::pem::read_certs(&org.dir.path().join(file)).unwrap();
        assert_eq!(b64.decode(&sig.chain[0]).unwrap(), issued[0].to_vec());
    }
    openssl_verifies(&server, &id).await;
    tokio::task::block_in_place(|| recipient_fetches(&server, &id));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_command_asks_for_the_pin_once_for_both_keys() {
    if !tools_for_tokens() || !require("mkfifo") {
        return;
    }
    let server = TestServer::start().await;
    let org = tokio::task::block_in_place(|| TokenOrg::setup(&server));
    // The PIN file is a pipe that gives the PIN to one reader only: a command that read it
    // a second time (for the person's key after the seal's) would wait forever.
    let fifo = org.dir.path().join("pin.fifo");
    ok(
        &Command::new("mkfifo")
            .args(["-m", "600"])
            .arg(&fifo)
            .output()
            .unwrap(),
        "mkfifo",
    );
    org.write_profile_with(&server, TOKEN, "pin_file = \"pin.fifo\"", "");
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            pipe.write_all(format!("{PIN}\n").as_bytes()).unwrap();
        })
    };
    let file = org.dir.path().join("doc.txt");
    std::fs::write(&file, "Một lần nhập PIN.\n").unwrap();
    let mut child = congvan()
        .env("SOFTHSM2_CONF", org.hsm.conf())
        .args(["send", "--profile"])
        .arg(org.profile())
        .args(["--server", &server.url(), "--to", RECIPIENT])
        .args(["--type", "CV", "--number", "41", "--notation", "CV/ĐU"])
        .args(["--subject", "Một lần nhập PIN"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("send is still waiting: it asked for the PIN a second time");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // A command that never read the PIN leaves the writer waiting for a reader: be that
    // reader, so that the test fails on the assertion below instead of hanging.
    if !writer.is_finished() {
        let _ = std::fs::read(&fifo);
    }
    writer.join().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let view: DocumentView = server
        .client(RECIPIENT)
        .get_json(&format!(
            "/v1/documents/{}",
            String::from_utf8_lossy(&out.stdout).trim()
        ))
        .await
        .unwrap();
    assert_eq!(view.signatures.len(), 2, "both keys on the token signed");
}

#[tokio::test(flavor = "multi_thread")]
async fn cms_signatures_made_on_a_token_are_verified_by_openssl_cms_server_and_recipient() {
    if !tools_for_tokens() {
        return;
    }
    let server = TestServer::start().await;
    let org = tokio::task::block_in_place(|| TokenOrg::setup(&server));
    org.write_profile_with(
        &server,
        TOKEN,
        &format!("pin_env = \"{PIN_ENV}\""),
        "signature_format = \"cms\"",
    );
    let out = tokio::task::block_in_place(|| org.send(&server, PIN));
    let id = ok(&out, "send with CMS signatures").trim().to_owned();
    let view: DocumentView = server
        .client(RECIPIENT)
        .get_json(&format!("/v1/documents/{id}"))
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("manifest.json");
    std::fs::write(&manifest, view.manifest.get()).unwrap();
    let forged = tmp.path().join("forged.json");
    std::fs::write(&forged, view.manifest.get().replacen("7", "8", 1)).unwrap();
    assert_eq!(view.signatures.len(), 2);
    for (i, sig) in view.signatures.iter().enumerate() {
        assert_eq!(sig.format, congvan::document::SignatureFormat::Cms);
        let der = tmp.path().join(format!("{i}.p7s"));
        std::fs::write(
            &der,
            base64::engine::general_purpose::STANDARD
                .decode(&sig.value)
                .unwrap(),
        )
        .unwrap();
        // openssl knows no documentSigning purpose: `-purpose any` skips the EKU check
        // (the server and the recipient make it), everything else is checked.
        let verify = |content: &Path| {
            Command::new("openssl")
                .args([
                    "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any",
                ])
                .arg("-in")
                .arg(&der)
                .arg("-content")
                .arg(content)
                .arg("-CAfile")
                .arg(server.pki.root_cert())
                .args(["-out", "/dev/null"])
                .output()
                .unwrap()
        };
        let good = verify(&manifest);
        ok(&good, "openssl cms -verify");
        assert!(String::from_utf8_lossy(&good.stderr).contains("Verification successful"));
        assert!(
            !verify(&forged).status.success(),
            "openssl accepted a changed manifest"
        );
    }
    tokio::task::block_in_place(|| recipient_fetches(&server, &id));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tls_client_key_on_the_token_authenticates_the_connection() {
    if !tools_for_tokens() {
        return;
    }
    let server = TestServer::start().await;
    let org = tokio::task::block_in_place(|| TokenOrg::setup(&server));
    org.hsm.keygen("tls", "03");
    // The TLS certificate becomes one issued for the token's key; no TLS key file at all.
    let mut text = std::fs::read_to_string(org.profile()).unwrap();
    let start = text.find("tls_cert = ").unwrap();
    let end = text.find("sign_cert = ").unwrap();
    text.replace_range(start..end, "tls_cert = \"tls.crt\"\n");
    text.push_str("tls_key = { label = \"tls\" }\n");
    std::fs::write(org.profile(), text).unwrap();
    let csr = org.dir.path().join("tls.csr");
    ok(
        &org.congvan(PIN)
            .args(["key", "csr", "--profile"])
            .arg(org.profile())
            .args(["--role", "tls", "--common-name", "Chúc Sơn (TLS)", "--out"])
            .arg(&csr)
            .output()
            .unwrap(),
        "key csr --role tls",
    );
    let ca = Ca::load(
        &server.pki.intermediate_cert(),
        &server.pki.intermediate_key(),
        false,
    )
    .unwrap();
    let spec = LeafSpec::new(LeafKind::TlsClient, "Chúc Sơn (TLS)")
        .uri(format!("urn:congvan:org:{SENDER}"));
    let chain = ca
        .issue_for_csr(&spec, &std::fs::read_to_string(&csr).unwrap())
        .unwrap();
    std::fs::write(org.dir.path().join("tls.crt"), chain).unwrap();

    let whoami = org
        .congvan(PIN)
        .args(["whoami", "--profile"])
        .arg(org.profile())
        .args(["--server", &server.url()])
        .output()
        .unwrap();
    assert!(ok(&whoami, "whoami").contains(SENDER));
    // The handshake and both document signatures, one PIN entry.
    let out = tokio::task::block_in_place(|| org.send(&server, PIN));
    let id = ok(&out, "send with every key on the token")
        .trim()
        .to_owned();
    tokio::task::block_in_place(|| recipient_fetches(&server, &id));
    // A wrong PIN stops the command before the handshake.
    let refused_pin = org
        .congvan("000000")
        .args(["whoami", "--profile"])
        .arg(org.profile())
        .args(["--server", &server.url()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&refused_pin.stderr).contains("refused the PIN"));
}

/// Runs a refused `send` and checks the message and that the server has nothing new.
async fn refused(server: &TestServer, out: Output, expected: &str) {
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
    assert!(!stderr.contains(PIN), "the PIN leaked: {stderr}");
    assert_eq!(sent_count(server).await, 0, "a refusal sent something");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_pin_is_refused_with_a_clear_message_and_never_shown() {
    if !tools_for_tokens() {
        return;
    }
    let server = TestServer::start().await;
    let org = tokio::task::block_in_place(|| TokenOrg::setup(&server));
    let out = tokio::task::block_in_place(|| org.send(&server, "000000"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("000000"),
        "the wrong PIN was echoed: {stderr}"
    );
    refused(
        &server,
        out,
        &format!("the token \"{TOKEN}\" refused the PIN"),
    )
    .await;
    // The right PIN still works: a wrong one changed nothing.
    let out = tokio::task::block_in_place(|| org.send(&server, PIN));
    ok(&out, "send with the right PIN");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_token_is_named_with_the_tokens_that_are_present() {
    if !tools_for_tokens() {
        return;
    }
    let server = TestServer::start().await;
    let org = tokio::task::block_in_place(|| TokenOrg::setup(&server));
    org.write_profile(&server, "not-plugged-in");
    let out = tokio::task::block_in_place(|| org.send(&server, PIN));
    refused(
        &server,
        out,
        &format!("no token labelled \"not-plugged-in\" is present (tokens found: \"{TOKEN}\""),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_token_is_reported_without_trying_the_pin() {
    if !tools_for_tokens() {
        return;
    }
    let server = TestServer::start().await;
    let org = tokio::task::block_in_place(|| TokenOrg::setup(&server));
    org.hsm.lock_user_pin();
    let out = tokio::task::block_in_place(|| org.send(&server, PIN));
    refused(
        &server,
        out,
        &format!("the PIN of token \"{TOKEN}\" is locked after too many wrong PINs"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_removed_from_the_token_is_named() {
    if !tools_for_tokens() {
        return;
    }
    let server = TestServer::start().await;
    let org = tokio::task::block_in_place(|| TokenOrg::setup(&server));
    org.hsm.pkcs11_tool(&[
        "--login",
        "--pin",
        PIN,
        "--delete-object",
        "--type",
        "privkey",
        "--label",
        "seal",
    ]);
    let out = tokio::task::block_in_place(|| org.send(&server, PIN));
    refused(
        &server,
        out,
        &format!("the token \"{TOKEN}\" holds no private key with label \"seal\""),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_key_that_is_not_the_certificates_is_refused_before_signing() {
    if !tools_for_tokens() {
        return;
    }
    let server = TestServer::start().await;
    let org = tokio::task::block_in_place(|| TokenOrg::setup(&server));
    // The person's certificate in place of the seal's: the seal key does not match it.
    std::fs::copy(
        org.dir.path().join("person.crt"),
        org.dir.path().join("sign.crt"),
    )
    .unwrap();
    let out = tokio::task::block_in_place(|| org.send(&server, PIN));
    refused(
        &server,
        out,
        &format!(
            "the key with label \"seal\" on token \"{TOKEN}\" does not belong to the certificate"
        ),
    )
    .await;
}

// PKCS#12 files and keys encrypted at rest.

const P12_PASSWORD: &str = "mật-khẩu-p12";
const PASSPHRASE: &str = "cụm từ bảo vệ khóa";
const P12_ENV: &str = "CONGVAN_TEST_P12_PASSWORD";
const PASSPHRASE_ENV: &str = "CONGVAN_TEST_KEY_PASSPHRASE";

/// `openssl pkcs12 -export` of a DEMO certificate chain and key, with `options` choosing
/// the encryption.
fn openssl_p12(cert: &Path, key: &Path, options: &[&str], out: &Path) {
    ok(
        &Command::new("openssl")
            .args(["pkcs12", "-export"])
            .args(options)
            .arg("-in")
            .arg(cert)
            .arg("-inkey")
            .arg(key)
            .args(["-passout", &format!("pass:{P12_PASSWORD}"), "-out"])
            .arg(out)
            .output()
            .unwrap(),
        "openssl pkcs12 -export",
    );
}

fn import_p12(p12: &Path, cert: &Path, key: &Path, password: &str) -> Output {
    congvan()
        .args(["key", "import-p12"])
        .arg(p12)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args([
            "--password-env",
            P12_ENV,
            "--passphrase-env",
            PASSPHRASE_ENV,
        ])
        .env(P12_ENV, password)
        .env(PASSPHRASE_ENV, PASSPHRASE)
        .output()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The key file is an encrypted PKCS#8 that openssl opens with the passphrase (and only
/// with it), readable by its owner only.
fn assert_encrypted_key(key: &Path) {
    let text = std::fs::read_to_string(key).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{text}"
    );
    assert_eq!(mode(key), 0o600);
    let pkey = |pass: &str| {
        Command::new("openssl")
            .args(["pkey", "-noout", "-passin", &format!("pass:{pass}"), "-in"])
            .arg(key)
            .output()
            .unwrap()
    };
    ok(&pkey(PASSPHRASE), "openssl pkey with the passphrase");
    assert!(!pkey("not the passphrase").status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_imported_from_openssl_pkcs12_files_legacy_and_modern_sign_documents() {
    if !require("openssl") {
        return;
    }
    let server = TestServer::start().await;
    let org = server.org_dir(SENDER);
    // Modern OpenSSL's default (PBES2, PBKDF2, AES-256-CBC, SHA-256 MAC); `-legacy` (RC2-40
    // certificate bag, 3DES key bag, SHA-1 MAC) as most CA tools still write; 3DES for both.
    let kinds: [(&str, &[&str]); 3] = [
        ("modern", &[]),
        ("legacy", &["-legacy"]),
        (
            "3des",
            &["-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES"],
        ),
    ];
    for (number, (kind, options)) in (20..).zip(kinds) {
        let dir = tempfile::tempdir().unwrap();
        for role in ["sign", "person"] {
            let p12 = dir.path().join(format!("{role}.p12"));
            let cert = org.join(format!("{role}.crt"));
            openssl_p12(&cert, &org.join(format!("{role}.key")), options, &p12);
            let imported = import_p12(
                &p12,
                &dir.path().join(format!("{role}.crt")),
                &dir.path().join(format!("{role}.key")),
                P12_PASSWORD,
            );
            assert!(
                ok(&imported, "key import-p12").contains("2 certificate(s)"),
                "{kind}"
            );
            assert_encrypted_key(&dir.path().join(format!("{role}.key")));
            assert_eq!(
                congvan::pki::pem::read_certs(&dir.path().join(format!("{role}.crt"))).unwrap(),
                congvan::pki::pem::read_certs(&cert).unwrap(),
                "{kind}: the chain as issued, leaf first"
            );
        }
        let profile = dir.path().join("client.toml");
        std::fs::write(
            &profile,
            format!(
                r#"server = "{url}"
ca = "{ca}"
tls_cert = "{org}/tls.crt"
tls_key = "{org}/tls.key"
sign_cert = "sign.crt"
sign_key = "sign.key"
person_cert = "person.crt"
person_key = "person.key"
key_passphrase_env = "{PASSPHRASE_ENV}"
state_dir = "state"
"#,
                url = server.url(),
                ca = server.pki.root_cert().display(),
                org = org.display(),
            ),
        )
        .unwrap();
        let mut cmd = congvan();
        cmd.env(PASSPHRASE_ENV, PASSPHRASE);
        let out = tokio::task::block_in_place(|| {
            send_numbered(cmd, &profile, &server, &dir.path().join("doc.txt"), number)
        });
        let id = ok(&out, &format!("send with keys from the {kind} .p12"))
            .trim()
            .to_owned();
        tokio::task::block_in_place(|| recipient_fetches(&server, &id));

        // A wrong passphrase for the key at rest is refused before anything is sent.
        let before = sent_count(&server).await;
        let mut cmd = congvan();
        cmd.env(PASSPHRASE_ENV, "not the passphrase");
        let out = tokio::task::block_in_place(|| {
            send_numbered(cmd, &profile, &server, &dir.path().join("doc.txt"), 99)
        });
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("the passphrase does not unlock"),
            "{stderr}"
        );
        assert!(stderr.contains("sign.key"), "{stderr}");
        assert!(!stderr.contains("not the passphrase"), "{stderr}");
        assert_eq!(sent_count(&server).await, before);
    }
}

#[test]
fn bad_pkcs12_files_are_refused_and_nothing_is_written() {
    if !require("openssl") {
        return;
    }
    let (_tmp, pki) = crate::support::fresh_pki();
    let org = pki.org_dir(&SENDER.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    openssl_p12(
        &org.join("sign.crt"),
        &org.join("sign.key"),
        &[],
        &p("modern.p12"),
    );
    openssl_p12(
        &org.join("sign.crt"),
        &org.join("sign.key"),
        &["-legacy"],
        &p("legacy.p12"),
    );
    // Certificates only, no key.
    openssl_p12(
        &org.join("sign.crt"),
        &org.join("sign.key"),
        &["-nokeys"],
        &p("nokey.p12"),
    );
    // The person's key beside the seal's certificates: no certificate belongs to the key.
    ok(
        &Command::new("openssl")
            .args(["pkcs12", "-export", "-nocerts", "-inkey"])
            .arg(org.join("person.key"))
            .arg("-certfile")
            .arg(org.join("sign.crt"))
            .args(["-passout", &format!("pass:{P12_PASSWORD}"), "-out"])
            .arg(p("mismatch.p12"))
            .output()
            .unwrap(),
        "openssl pkcs12 -export (mismatched)",
    );
    std::fs::write(p("garbage.p12"), b"\x30\x82\xff\xffnot a pfx at all").unwrap();
    let cases = [
        ("modern.p12", "wrong password", "the password does not open"),
        ("legacy.p12", "wrong password", "the password does not open"),
        (
            "nokey.p12",
            P12_PASSWORD,
            "holds no private key, only certificates",
        ),
        (
            "mismatch.p12",
            P12_PASSWORD,
            "does not belong to any certificate in it",
        ),
        (
            "garbage.p12",
            P12_PASSWORD,
            "is not a PKCS#12 file congvan can read",
        ),
    ];
    for (file, password, expected) in cases {
        let out_dir = dir.path().join(format!("out-{file}"));
        let out = import_p12(
            &p(file),
            &out_dir.join("k.crt"),
            &out_dir.join("k.key"),
            password,
        );
        assert!(!out.status.success(), "{file}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected),
            "{file}: expected {expected:?} in {stderr}"
        );
        assert!(
            !stderr.contains(P12_PASSWORD),
            "{file}: the password leaked: {stderr}"
        );
        assert!(
            !out_dir.exists(),
            "{file}: a refused import wrote {}",
            out_dir.display()
        );
    }
    // An import never replaces a key without --force.
    let cert = p("existing.crt");
    let key = p("existing.key");
    std::fs::write(&cert, "old certificate").unwrap();
    std::fs::write(&key, "old key").unwrap();
    let out = import_p12(&p("modern.p12"), &cert, &key, P12_PASSWORD);
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --force to replace it"));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "old key");
    assert_eq!(std::fs::read_to_string(&cert).unwrap(), "old certificate");
}

#[tokio::test(flavor = "multi_thread")]
async fn pki_demo_protect_encrypts_client_keys_and_they_still_sign_and_connect() {
    if !require("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = congvan()
        .args([
            "pki",
            "demo",
            "--protect",
            "--passphrase-env",
            PASSPHRASE_ENV,
            "--out",
        ])
        .arg(dir.path().join("pki"))
        .env(PASSPHRASE_ENV, PASSPHRASE)
        .output()
        .unwrap();
    assert!(ok(&out, "pki demo --protect").contains("client keys encrypted"));
    let layout = congvan::pki::demo::Layout::new(dir.path().join("pki"));
    let org = layout.org_dir(&SENDER.parse().unwrap());
    for key in ["tls.key", "sign.key", "person.key"] {
        assert_encrypted_key(&org.join(key));
    }
    assert_encrypted_key(
        &layout
            .auditor_dir(&"hn/cm".parse().unwrap())
            .join("tls.key"),
    );
    // The server's own key stays a plain 0600 file: a server starts unattended.
    let server_key = layout.server_dir().join("server.key");
    assert!(
        std::fs::read_to_string(&server_key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert_eq!(mode(&server_key), 0o600);

    let server = TestServer::start_in(dir, layout).await;
    // The profiles name where the passphrase comes from; the clerk's would ask instead.
    for org in [SENDER, RECIPIENT] {
        let profile = server.pki.org_profile(&org.parse().unwrap());
        let mut text = std::fs::read_to_string(&profile).unwrap();
        text.push_str(&format!("key_passphrase_env = \"{PASSPHRASE_ENV}\"\n"));
        std::fs::write(&profile, text).unwrap();
    }
    let profile = server.pki.org_profile(&SENDER.parse().unwrap());
    let file = server.org_dir(SENDER).join("doc.txt");
    let sent = |passphrase: Option<&str>| {
        let mut cmd = congvan();
        match passphrase {
            Some(p) => cmd.env(PASSPHRASE_ENV, p),
            None => cmd.env_remove(PASSPHRASE_ENV),
        };
        tokio::task::block_in_place(|| send_numbered(cmd, &profile, &server, &file, 31))
    };
    let out = sent(None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the environment variable {PASSPHRASE_ENV} is not set"
        )),
        "{stderr}"
    );
    let out = sent(Some("not the passphrase"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the passphrase does not unlock"));
    let id = ok(&sent(Some(PASSPHRASE)), "send with protected keys")
        .trim()
        .to_owned();
    let out = tempfile::tempdir().unwrap();
    let fetched = congvan()
        .args(["fetch", "--profile"])
        .arg(server.pki.org_profile(&RECIPIENT.parse().unwrap()))
        .args(["--server", &server.url(), &id, "--out"])
        .arg(out.path().join("files"))
        .env(PASSPHRASE_ENV, PASSPHRASE)
        .output()
        .unwrap();
    ok(&fetched, "fetch with protected keys");
    // Only the one document went out: the refused attempts sent nothing.
    let listed = congvan()
        .args(["sent", "--profile"])
        .arg(&profile)
        .args(["--server", &server.url()])
        .env(PASSPHRASE_ENV, PASSPHRASE)
        .output()
        .unwrap();
    assert_eq!(ok(&listed, "sent").lines().count(), 1);
}

/// The desk holds one client for the whole session: its keys are unlocked once, however
/// many documents it signs and receipts it sends. The passphrase file here is a pipe that
/// gives the passphrase to one reader only, so a second unlock would wait for ever (the
/// test then fails on its time-out instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_client_unlocks_its_keys_once_for_a_whole_session() {
    if !require("mkfifo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = congvan()
        .args([
            "pki",
            "demo",
            "--protect",
            "--passphrase-env",
            PASSPHRASE_ENV,
            "--out",
        ])
        .arg(dir.path().join("pki"))
        .env(PASSPHRASE_ENV, PASSPHRASE)
        .output()
        .unwrap();
    ok(&out, "pki demo --protect");
    let layout = congvan::pki::demo::Layout::new(dir.path().join("pki"));
    let server = TestServer::start_in(dir, layout).await;
    let profile_path = server.pki.org_profile(&"hn/cm".parse().unwrap());
    let fifo = profile_path.parent().unwrap().join("passphrase.fifo");
    ok(
        &Command::new("mkfifo")
            .args(["-m", "600"])
            .arg(&fifo)
            .output()
            .unwrap(),
        "mkfifo",
    );
    let mut text = std::fs::read_to_string(&profile_path).unwrap();
    text.push_str("key_passphrase_file = \"passphrase.fifo\"\n");
    std::fs::write(&profile_path, text).unwrap();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            pipe.write_all(format!("{PASSPHRASE}\n").as_bytes())
                .unwrap();
        })
    };
    let url = server.url();
    let session = tokio::spawn(async move {
        let profile = congvan::config::ClientProfile::load(&profile_path).unwrap();
        let client = congvan::client::Client::new(&profile, &url).unwrap();
        let work = tempfile::tempdir().unwrap();
        let mut ids = Vec::new();
        for i in 0..3 {
            let file = work.path().join(format!("cong-van-{i}.txt"));
            std::fs::write(&file, format!("Văn bản thứ {i} của phiên làm việc.\n")).unwrap();
            let mut request = congvan::client::send::SendRequest::new(
                "CV",
                &crate::support::next_number(),
                "CV/HU",
                "Một phiên, một lần mở khóa",
                vec![file],
            );
            request.to = vec!["hn/cm/chuc-son".parse().unwrap()];
            ids.push(client.send_document(&request).await.unwrap().id);
        }
        ids
    });
    let mut ids = tokio::time::timeout(std::time::Duration::from_secs(60), session)
        .await
        .expect("the session asked for the passphrase a second time")
        .unwrap();
    if !writer.is_finished() {
        let _ = std::fs::read(&fifo);
    }
    writer.join().unwrap();
    // Three documents, each accepted with a receipt the client verified.
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
}
