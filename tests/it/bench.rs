//! `congvan bench` against a real server: every mode does the work it reports, and
//! failures are counted by code, not hidden. One-request submissions (inline payloads)
//! are checked here too, since the load generator and `congvan send` rely on them.

use std::time::Duration;

use base64::Engine as _;
use congvan::bench::{self, BenchError, LoadOptions, Mode};
use congvan::client::ClientError;
use congvan::document::manifest::Classification;
use serde_json::json;

use crate::support::{TestDoc, TestServer, assert_code};

fn options(mode: Mode, concurrency: usize, count: u64) -> LoadOptions {
    LoadOptions {
        mode,
        concurrency,
        duration: Duration::from_secs(1),
        warmup: Duration::ZERO,
        size: 2000,
        recipients: 1,
        to: vec![congvan::directory::OrgId::parse("hn/cm/chuc-son").unwrap()],
        classification: Classification::Thuong,
        recipient_profile: None,
        url: None,
        method: reqwest::Method::POST,
        inline: true,
        count: Some(count),
        rate: None,
        progress: false,
    }
}

async fn busy_server() -> TestServer {
    TestServer::start_with(|config| {
        config.limits.requests_per_minute = 1_000_000;
        config.limits.request_burst = 100_000;
        config.limits.uploads_concurrent = 64;
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mode_does_the_work_it_reports() {
    let server = busy_server().await;
    let url = server.url();
    let sender = server.org_profile("hn/cm");
    let recipient = server.org_profile("hn/cm/chuc-son");

    // submit: 3 workers × 4 documents, inline and uploaded, unclassified and classified.
    let mut submit = options(Mode::Submit, 3, 4);
    let report = bench::run(&sender, Some(&url), &submit).await.unwrap();
    let k = &report.kinds[0];
    assert_eq!(
        (k.kind.as_str(), k.ok, k.errors),
        ("submit", 12, 0),
        "{report}"
    );
    assert!(k.latency_ms.p50 > 0.0 && k.latency_ms.max >= k.latency_ms.p99);
    submit.inline = false;
    submit.size = 70_000;
    let report = bench::run(&sender, Some(&url), &submit).await.unwrap();
    assert_eq!(report.kinds[0].ok, 12, "{report}");
    submit.classification = Classification::Mat;
    let report = bench::run(&sender, Some(&url), &submit).await.unwrap();
    assert_eq!(report.kinds[0].ok, 12, "{report}");

    // The documents really are there: 36 in the recipient's inbox.
    let page: serde_json::Value = server
        .client("hn/cm/chuc-son")
        .get_json("/v1/inbox?limit=500")
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 36);

    // fetch and ack read and sign for them; inbox pages them.
    for (mode, name) in [
        (Mode::Fetch, "fetch"),
        (Mode::Ack, "ack"),
        (Mode::Inbox, "inbox"),
    ] {
        let report = bench::run(&recipient, Some(&url), &options(mode, 2, 5))
            .await
            .unwrap();
        let k = &report.kinds[0];
        assert_eq!((k.kind.as_str(), k.ok, k.errors), (name, 10, 0), "{report}");
    }
    let status: serde_json::Value = server
        .client("hn/cm/chuc-son")
        .get_json("/v1/inbox?limit=500&state=new")
        .await
        .unwrap();
    assert!(
        status["items"].as_array().unwrap().len() <= 36 - 5,
        "acknowledged documents leave the new list"
    );

    // mixed: submit, fetch, ack per cycle.
    let mut mixed = options(Mode::Mixed, 2, 3);
    mixed.recipient_profile = Some(recipient.clone());
    let report = bench::run(&sender, Some(&url), &mixed).await.unwrap();
    let kinds: Vec<(&str, u64, u64)> = report
        .kinds
        .iter()
        .map(|k| (k.kind.as_str(), k.ok, k.errors))
        .collect();
    assert_eq!(
        kinds,
        [("ack", 6, 0), ("fetch", 6, 0), ("submit", 6, 0)],
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_counted_by_code_and_raw_mode_reaches_any_url() {
    let server = busy_server().await;
    let url = server.url();
    let sender = server.org_profile("hn/cm");
    // raw: POST to an endpoint that does not take POST: every request fails with 405.
    let mut raw = options(Mode::Raw, 2, 3);
    raw.url = Some(format!("{url}/healthz"));
    let report = bench::run(&sender, Some(&url), &raw).await.unwrap();
    let k = &report.kinds[0];
    assert_eq!((k.ok, k.errors), (0, 6), "{report}");
    assert_eq!(k.error_codes.get("http_405"), Some(&6));

    // A security officer's profile has no organisation signing key: the run is refused
    // while preparing, before any document is built.
    let auditor = server.auditor_profile("hn/cm");
    let submit = options(Mode::Submit, 1, 1);
    let refused = bench::run(&auditor, Some(&url), &submit).await;
    assert!(
        matches!(
            &refused,
            Err(BenchError::Client(ClientError::Input(m))) if m.contains("no sign_cert/sign_key")
        ),
        "{refused:?}"
    );
    // With an organisation's signing keys but the officer's own TLS certificate, the
    // documents reach the server, which refuses each one: the refusals are counted under
    // the API's code, not hidden.
    let mut borrowed = auditor.clone();
    borrowed.sign_cert = sender.sign_cert.clone();
    borrowed.sign_key = sender.sign_key.clone();
    borrowed.person_cert = sender.person_cert.clone();
    borrowed.person_key = sender.person_key.clone();
    let report = bench::run(&borrowed, Some(&url), &options(Mode::Submit, 1, 2))
        .await
        .unwrap();
    let k = &report.kinds[0];
    assert_eq!((k.ok, k.errors), (0, 2), "{report}");
    assert_eq!(
        k.error_codes.iter().collect::<Vec<_>>(),
        [(&"role_forbidden".to_owned(), &2)],
        "{report}"
    );

    // An open-loop run paces itself: 20 operations at 40/s take about half a second.
    let mut paced = options(Mode::Submit, 2, 10);
    paced.rate = Some(40.0);
    let started = std::time::Instant::now();
    let report = bench::run(&sender, Some(&url), &paced).await.unwrap();
    assert_eq!(report.kinds[0].ok, 20, "{report}");
    assert!(started.elapsed() >= Duration::from_millis(450));
}

#[tokio::test]
async fn signature_ceiling_verifies_real_signatures() {
    let server = TestServer::start().await;
    let ceiling =
        bench::signature_ceiling(&server.org_profile("hn/cm"), Duration::from_millis(200)).unwrap();
    assert_eq!(ceiling.algorithm, "ecdsa-p256-sha256");
    assert!(ceiling.docs_per_s > 0.0 && ceiling.threads >= 1);
}

/// A submit body with the payload inline.
fn inline_body(server: &TestServer, doc: &TestDoc, payload: &[u8]) -> serde_json::Value {
    let mut body = doc.body(&doc.signatures(server));
    body["payload"] = json!(base64::engine::general_purpose::STANDARD.encode(payload));
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_payloads_are_accepted_in_one_request_and_checked_like_uploads() {
    let server = TestServer::start().await;
    let sender = server.client("hn/cm");
    let recipient = server.client("hn/cm/chuc-son");

    // A small payload (kept in the database) and a larger one (a blob file).
    for size in [3_000usize, 200_000] {
        let mut doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
        let payload: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        doc.set_payload(payload.clone());
        let (status, answer): (u16, serde_json::Value) = sender
            .post_json("/v1/documents", &inline_body(&server, &doc, &payload))
            .await
            .unwrap();
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["state"], "accepted");
        assert_eq!(
            answer["receipt"]["statement"]["payload_size"],
            json!(size),
            "{answer}"
        );
        let fetched = recipient
            .get_stream(&format!("/v1/documents/{}/payload", doc.id()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(fetched.as_ref(), payload.as_slice());
        // An identical retry answers with the original receipt.
        let (status, again): (u16, serde_json::Value) = sender
            .post_json("/v1/documents", &inline_body(&server, &doc, &payload))
            .await
            .unwrap();
        assert_eq!((status, &again["receipt"]), (200, &answer["receipt"]));
    }

    // Refusals leave nothing behind.
    let payload = vec![7u8; 1000];
    let mut doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    doc.set_payload(payload.clone());
    let cases: [(&str, serde_json::Value, &str); 3] = [
        (
            "short",
            inline_body(&server, &doc, &payload[..999]),
            "payload_size_mismatch",
        ),
        (
            "altered",
            inline_body(&server, &doc, &[8u8; 1000]),
            "payload_digest_mismatch",
        ),
        (
            "not base64",
            {
                let mut b = doc.body(&doc.signatures(&server));
                b["payload"] = json!("@@not base64@@");
                b
            },
            "request_invalid",
        ),
    ];
    for (what, body, code) in cases {
        let result = sender
            .post_json::<_, serde_json::Value>("/v1/documents", &body)
            .await;
        assert!(
            result.as_ref().err().and_then(|e| e.api_code()) == Some(code),
            "{what}: {result:?}"
        );
        assert_code(
            sender
                .get_json::<serde_json::Value>(&format!("/v1/documents/{}", doc.id()))
                .await,
            "document_not_found",
        );
    }

    // Over 1 MiB, a payload must be uploaded with PUT.
    let big = vec![1u8; (1 << 20) + 1];
    let mut doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    doc.set_payload(big.clone());
    assert_code(
        sender
            .post_json::<_, serde_json::Value>("/v1/documents", &inline_body(&server, &doc, &big))
            .await,
        "request_invalid",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_prints_a_json_report_and_seals_a_file() {
    let server = TestServer::start().await;
    let profile = server
        .pki
        .org_profile(&congvan::directory::OrgId::parse("hn/cm").unwrap());
    let bin = env!("CARGO_BIN_EXE_congvan");
    let mut command = std::process::Command::new(bin);
    command
        .args(["bench", "submit", "--profile"])
        .arg(&profile)
        .args(["--server", &server.url(), "-c", "2", "--count", "2"])
        .args(["--size", "1KiB", "--to", "hn/cm/chuc-son", "--json"]);
    let run = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["mode"], "submit");
    assert_eq!(report["kinds"][0]["ok"], 4);
    assert_eq!(report["kinds"][0]["errors"], 0);
    assert_eq!(report["size"], 1024);

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("plain.bin");
    std::fs::write(&input, vec![42u8; 300_000]).unwrap();
    let run = std::process::Command::new(bin)
        .args(["bench", "seal", "--profile"])
        .arg(&profile)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("sealed.pgp"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let seal: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(seal["bytes"], 300_000);
    assert!(seal["sealed_bytes"].as_u64().unwrap() > 0);
}
