//! Messages that teach: what a new user saw go wrong, replayed against the real binary,
//! and the sentence that now tells them what to do.

use std::process::Command;

use crate::support::{Run as _, TestServer, congvan, congvan_command, run_fails_with, stderr};

/// Runs the binary; returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let (code, stdout, stderr) = run_code(args);
    (code == 0, stdout, stderr)
}

/// Runs the binary; returns (exit code, stdout, stderr).
fn run_code(args: &[&str]) -> (i32, String, String) {
    let out = congvan(args);
    (
        out.status.code().unwrap_or(-1),
        crate::support::stdout(&out),
        stderr(&out),
    )
}

fn profile(server: &TestServer, org: &str) -> String {
    server
        .pki
        .org_profile(&org.parse().unwrap())
        .display()
        .to_string()
}

#[test]
fn a_missing_profile_says_its_cause_once() {
    let (ok, _, stderr) = run(&["whoami", "--profile", "/nonexistent/client.toml"]);
    assert!(!ok);
    // Usage errors exit 2.
    run_fails_with(2, ["whoami", "--no-such-option"]);
    assert!(
        stderr.contains("cannot read /nonexistent/client.toml"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_recipients_after_one_to_are_not_taken_for_a_file_and_commas_work() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("chỉ thị.txt");
    std::fs::write(&file, "Về đẩy mạnh chuyển đổi số").unwrap();
    let p = profile(&server, "hn/cm");
    let url = server.url();
    let base = |to: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["send", "--profile", &p, "--server", &url]
            .iter()
            .map(ToString::to_string)
            .collect();
        args.extend(to.iter().map(ToString::to_string));
        // Each send its own number: the outgoing register refuses one used twice.
        let number = crate::support::next_number();
        args.extend(
            [
                "--type",
                "CT",
                "--number",
                number.as_str(),
                "--notation",
                "CT/HU",
                "--subject",
                "Về đẩy mạnh chuyển đổi số",
                "--urgency",
                "Khẩn",
            ]
            .iter()
            .map(ToString::to_string),
        );
        args
    };
    // `--to a b FILE`: b is not a file, and the message shows the two right spellings.
    let mut args = base(&["--to", "hn/cm/chuc-son", "hn/cm/xuan-mai"]);
    args.push(file.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, stderr) = run(&refs);
    assert!(!ok);
    assert!(stderr.contains("looks like an organisation id"), "{stderr}");
    assert!(
        stderr.contains("--to hn/cm/chuc-son,hn/cm/xuan-mai"),
        "{stderr}"
    );

    // `--to a,b` sends to both; the Vietnamese urgency word is accepted.
    let mut args = base(&["--to", "hn/cm/chuc-son,hn/cm/xuan-mai"]);
    args.push(file.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, stderr) = run(&refs);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("sent to 2 recipient(s)"), "{stderr}");
    for commune in ["hn/cm/chuc-son", "hn/cm/xuan-mai"] {
        let page: congvan::api::ListPage =
            server.client(commune).get_json("/v1/inbox").await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].urgency, 1, "Khẩn is urgency 1");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_failures_say_what_to_do() {
    let server = TestServer::start().await;
    let p = profile(&server, "hn/cm/chuc-son");
    // An http:// URL.
    let http = format!("http://localhost:{}", server.addr.port());
    let (code, _, stderr) = run_code(&["whoami", "--profile", &p, "--server", &http]);
    assert_eq!(code, 6, "{stderr}");
    assert!(stderr.contains("only HTTPS"), "{stderr}");
    // Nothing listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (code, _, stderr) = run_code(&[
        "whoami",
        "--profile",
        &p,
        "--server",
        &format!("https://localhost:{closed}"),
    ]);
    assert_eq!(code, 6, "{stderr}");
    assert!(
        stderr.contains("check that the congvan server is running"),
        "{stderr}"
    );
    // A revoked certificate: the server's TLS alert, in words.
    let tls_cert = server.org_dir("hn/cm/chuc-son").join("tls.crt");
    let pki = server.pki.dir.display().to_string();
    let (ok, _, stderr) = run(&[
        "pki",
        "revoke",
        "--reason",
        "key-compromise",
        "--pki",
        &pki,
        tls_cert.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let mut last = String::new();
    for _ in 0..100 {
        let (code, _, stderr) = run_code(&["whoami", "--profile", &p, "--server", &server.url()]);
        if code == 6 && stderr.contains("has been revoked") {
            assert!(stderr.contains("Ask the CA"), "{stderr}");
            return;
        }
        last = stderr;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no plain-words refusal for a revoked certificate: {last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn writing_to_a_closed_pipe_ends_quietly() {
    let server = TestServer::start().await;
    let p = profile(&server, "hn/cm");
    let url = server.url();
    for args in [vec!["whoami"], vec!["directory"], vec!["inbox", "--all"]] {
        let out = tokio::task::block_in_place(|| {
            let mut child = congvan_command()
                .args(&args)
                .args(["--profile", &p, "--server", &url])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            // The reader goes away before anything is written (`| head -0`).
            drop(child.stdout.take());
            child.wait_with_output().unwrap()
        });
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_document_type_lists_the_configured_ones() {
    let server = TestServer::start().await;
    let mut doc = crate::support::TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    doc.manifest["doc_type"] = serde_json::json!("XYZ");
    let err = doc
        .submit(&server, &server.client("hn/cm"))
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("doc_type_unknown"));
    let text = err.to_string();
    for configured in ["CT", "QĐ", "CV"] {
        assert!(text.contains(configured), "{configured} not listed: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_export_to_a_bare_file_name_writes_it_in_the_current_directory() {
    let server = TestServer::start().await;
    let profile = server.pki.auditor_profile(&"hn/cm".parse().unwrap());
    let cwd = tempfile::tempdir().unwrap();
    congvan_command()
        .current_dir(cwd.path())
        .args([
            "audit",
            "export",
            "--out",
            "export.json",
            "--server",
            &server.url(),
        ])
        .arg("--profile")
        .arg(&profile)
        .run_ok();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.path().join("export.json")).unwrap()).unwrap();
    assert!(written.is_object());
}

/// Debian 12's curl (7.88, HTTP/2) showed "stream error" and no status when the server
/// refused an upload before reading its body; the server now reads and discards a bounded
/// remainder first, so curl gets the status and the error body.
#[tokio::test(flavor = "multi_thread")]
async fn curl_gets_the_status_of_an_upload_refused_before_its_body_was_read() {
    if !crate::support::require("curl") {
        return;
    }
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let body = work.path().join("payload.bin");
    std::fs::write(&body, vec![7u8; 8 << 20]).unwrap();
    let dir = server.org_dir("hn/cm");
    let url = format!(
        "{}/v1/documents/{}/payload",
        server.url(),
        uuid::Uuid::now_v7()
    );
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http2",
            "--max-time",
            "20",
            "-w",
            "\n%{http_code}",
            "-X",
            "PUT",
        ])
        .arg("--cacert")
        .arg(server.pki.root_cert())
        .arg("--cert")
        .arg(dir.join("tls.crt"))
        .arg("--key")
        .arg(dir.join("tls.key"))
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(&url)
        .run_ok();
    let stdout = crate::support::stdout(&out);
    let stderr = stderr(&out);
    assert!(stdout.ends_with("404"), "{stdout} {stderr}");
    assert!(stdout.contains("document_not_found"), "{stdout}");
}
