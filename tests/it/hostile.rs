//! Hostile input: each gets its documented error or a closed connection, the server stays
//! up and its memory stays bounded, and nothing is stored.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::support::{TestDoc, TestServer, assert_code, read_all_within, tls_connect};

/// POSTs raw bytes as `org` and returns the raw HTTP response.
async fn post_raw(server: &TestServer, org: &str, path: &str, body: &[u8]) -> String {
    let mut tls = tls_connect(server, org).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (and close) before reading everything it does not want.
    let _ = tls.write_all(body).await;
    let response = read_all_within(&mut tls, Duration::from_secs(10))
        .await
        .unwrap_or_default();
    String::from_utf8_lossy(&response).into_owned()
}

fn code_of(response: &str) -> String {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    value["error"]["code"]
        .as_str()
        .unwrap_or("<none>")
        .to_owned()
}

#[tokio::test]
async fn malformed_json_gets_request_invalid_and_the_server_stays_up() {
    let server = TestServer::start().await;
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_manifest = format!(
        r#"{{"manifest":{}1{},"signatures":[]}}"#,
        "{\"a\":".repeat(5000),
        "}".repeat(5000)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", b"".to_vec(), "request_invalid"),
        (
            "truncated",
            br#"{"manifest":{"version":1"#.to_vec(),
            "request_invalid",
        ),
        ("array", b"[1,2,3]".to_vec(), "request_invalid"),
        (
            "invalid UTF-8",
            b"{\"manifest\":\"\xff\xfe\",\"signatures\":[]}".to_vec(),
            "request_invalid",
        ),
        (
            "100 000 levels of nesting",
            nested.into_bytes(),
            "request_invalid",
        ),
        (
            "5 000 levels inside the manifest",
            deep_manifest.into_bytes(),
            "manifest_invalid",
        ),
        ("NUL bytes", vec![0u8; 4096], "request_invalid"),
        ("huge", vec![b' '; 2 << 20], "body_too_large"),
        (
            "number instead of manifest",
            br#"{"manifest":1e999,"signatures":[]}"#.to_vec(),
            "manifest_invalid",
        ),
    ];
    for (what, body, code) in cases {
        let response = post_raw(&server, "hn/cm", "/v1/documents", &body).await;
        assert_eq!(code_of(&response), code, "{what}: {response:.300}");
    }
    server.client("hn/cm").whoami().await.unwrap();
}

/// A detached CMS SignedData without any SignerInfo.
fn cms_without_signer() -> Vec<u8> {
    use der::Encode;
    use der::asn1::{ObjectIdentifier, SetOfVec};
    let signed = cms::signed_data::SignedData {
        version: cms::content_info::CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: cms::signed_data::EncapsulatedContentInfo {
            econtent_type: ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1"),
            econtent: None,
        },
        certificates: None,
        crls: None,
        signer_infos: cms::signed_data::SignerInfos(SetOfVec::new()),
    };
    let info = cms::content_info::ContentInfo {
        content_type: ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2"),
        content: der::Any::encode_from(&signed).unwrap(),
    };
    info.to_der().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_signature_encodings_are_refused_precisely() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let good = doc.signatures(&server);
    let client = server.client("hn/cm");
    let try_with = |mutate: &dyn Fn(&mut Vec<congvan::document::DocSignature>)| {
        let mut sigs = good.clone();
        mutate(&mut sigs);
        doc.body(&sigs)
    };
    let b64 =
        |bytes: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
    let valid_cms = {
        // A real CMS over the manifest, by openssl, for truncation.
        let dir = server.org_dir("hn/cm");
        let work = tempfile::tempdir().unwrap();
        std::fs::write(work.path().join("m"), doc.canonical()).unwrap();
        let out = std::process::Command::new("openssl")
            .args([
                "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER", "-in",
            ])
            .arg(work.path().join("m"))
            .arg("-signer")
            .arg(dir.join("sign.crt"))
            .arg("-inkey")
            .arg(dir.join("sign.key"))
            .arg("-nocerts")
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "bad base64",
            try_with(&|s| s[0].value = "%%%".into()),
            "signature_malformed",
        ),
        (
            "garbage DER chain",
            try_with(&|s| s[0].chain = vec![b64(b"\x30\x82\xff\xff garbage")]),
            "signature_malformed",
        ),
        (
            "truncated certificate",
            try_with(&|s| {
                let der = base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    &s[0].chain[0],
                )
                .unwrap();
                s[0].chain[0] = b64(&der[..der.len() / 2]);
            }),
            "signature_malformed",
        ),
        (
            "empty chain",
            try_with(&|s| s[0].chain.clear()),
            "signature_malformed",
        ),
        (
            "garbage CMS",
            try_with(&|s| {
                s[0] = congvan::document::DocSignature::cms(
                    congvan::document::Role::Organization,
                    b"\x30\x03\x02\x01\x01",
                )
            }),
            "signature_malformed",
        ),
        (
            "CMS without signer",
            try_with(&|s| {
                s[0] = congvan::document::DocSignature::cms(
                    congvan::document::Role::Organization,
                    &cms_without_signer(),
                )
            }),
            "signature_malformed",
        ),
        (
            "CMS without the signer's certificate",
            try_with(&|s| {
                s[0] = congvan::document::DocSignature::cms(
                    congvan::document::Role::Organization,
                    &valid_cms,
                )
            }),
            "signature_malformed",
        ),
        (
            "truncated CMS",
            try_with(&|s| {
                s[0] = congvan::document::DocSignature::cms(
                    congvan::document::Role::Organization,
                    &valid_cms[..valid_cms.len() / 2],
                )
            }),
            "signature_malformed",
        ),
        (
            "huge signature value",
            try_with(&|s| s[0].value = "A".repeat(200_000)),
            "signature_malformed",
        ),
        (
            "five signatures",
            try_with(&|s| {
                let extra = s[0].clone();
                s.extend([extra.clone(), extra.clone(), extra]);
            }),
            "signature_role_duplicate",
        ),
    ];
    for (what, body, code) in cases {
        let result = client
            .post_json::<_, serde_json::Value>("/v1/documents", &body)
            .await;
        match result {
            Ok(v) => panic!("{what}: accepted {v:?}"),
            Err(e) => assert_eq!(e.api_code(), Some(code), "{what}: {e}"),
        }
    }
    assert_code(
        client
            .get_json::<serde_json::Value>(&format!("/v1/documents/{}", doc.id()))
            .await,
        "document_not_found",
    );
}

#[tokio::test]
async fn slow_loris_and_header_floods_are_cut_off() {
    let server = TestServer::start_with(|c| {
        c.limits.header_read_timeout_ms = 1_000;
        c.limits.header_bytes_max = 16 * 1024;
    })
    .await;
    // A request line trickling in one byte at a time.
    let mut slow = tls_connect(&server, "hn").await;
    let started = std::time::Instant::now();
    let mut closed = false;
    for byte in b"GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
        .iter()
        .cycle()
        .take(400)
    {
        if slow.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    let rest = read_all_within(&mut slow, Duration::from_secs(5)).await;
    assert!(
        closed || rest.is_ok(),
        "a slow-loris connection was still open after 8 s: {rest:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));

    // Headers larger than allowed, and too many of them.
    for head in [
        format!(
            "GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
            "a".repeat(40_000)
        ),
        format!(
            "GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
            (0..500)
                .map(|i| format!("X-H{i}: v\r\n"))
                .collect::<String>()
        ),
    ] {
        let mut tls = tls_connect(&server, "hn").await;
        let _ = tls.write_all(head.as_bytes()).await;
        let response = read_all_within(&mut tls, Duration::from_secs(5))
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&response);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 431"),
            "{text:.200}"
        );
    }
    server.client("hn").whoami().await.unwrap();
}

#[tokio::test]
async fn a_stalled_upload_times_out_and_leaves_nothing_behind() {
    let server = TestServer::start_with(|c| c.limits.body_idle_timeout_ms = 1_000).await;
    let client = server.client("hn/cm");
    let mut doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    doc.set_payload(vec![7u8; 50_000]);
    doc.submit(&server, &client).await.unwrap();
    let mut tls = tls_connect(&server, "hn/cm").await;
    let head = format!(
        "PUT /v1/documents/{}/payload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 50000\r\n\r\n",
        doc.id()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&[7u8; 10_000]).await.unwrap();
    // ... and then nothing, without closing.
    let response = read_all_within(&mut tls, Duration::from_secs(10))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text:.200}");
    assert_eq!(code_of(&text), "body_timeout");
    assert_eq!(
        std::fs::read_dir(server.dir.path().join("data/tmp"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        doc.upload(&client, doc.payload.clone()).await.unwrap().0,
        201
    );
}

#[tokio::test]
async fn request_rate_and_concurrent_uploads_are_limited_per_identity() {
    let server = TestServer::start_with(|c| {
        c.limits.requests_per_minute = 60;
        c.limits.request_burst = 5;
        c.limits.uploads_concurrent = 1;
        c.limits.body_idle_timeout_ms = 5_000;
    })
    .await;
    let client = server.client("hn/cm/dong-son");
    for _ in 0..5 {
        client.whoami().await.unwrap();
    }
    let response = client.get_stream("/v1/whoami").await;
    assert_code(response, "rate_limited");
    // The raw answer carries Retry-After.
    let mut tls = tls_connect(&server, "hn/cm/dong-son").await;
    tls.write_all(b"GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let raw = String::from_utf8_lossy(
        &read_all_within(&mut tls, Duration::from_secs(5))
            .await
            .unwrap(),
    )
    .into_owned();
    assert!(
        raw.starts_with("HTTP/1.1 429") && raw.to_ascii_lowercase().contains("retry-after: 1"),
        "{raw:.300}"
    );
    // Another committee is not affected.
    server.client("hn/cm/truong-yen").whoami().await.unwrap();

    // One upload at a time per identity.
    let sender = server.client("hn/cm/xuan-mai");
    let mut doc = TestDoc::new("hn/cm/xuan-mai", &["hn/cm"]);
    doc.set_payload(vec![1u8; 20_000]);
    doc.submit(&server, &sender).await.unwrap();
    let mut first = tls_connect(&server, "hn/cm/xuan-mai").await;
    first
        .write_all(format!("PUT /v1/documents/{}/payload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 20000\r\n\r\n", doc.id()).as_bytes())
        .await
        .unwrap();
    first.write_all(&[1u8; 100]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_code(
        doc.upload(&sender, doc.payload.clone()).await,
        "too_many_uploads",
    );
    first.write_all(&[1u8; 19_900]).await.unwrap();
    let done = String::from_utf8_lossy(&read_all_within_response(&mut first).await).into_owned();
    assert!(done.starts_with("HTTP/1.1 201"), "{done:.200}");
}

/// Reads one HTTP response head (enough to see its status).
async fn read_all_within_response(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf.truncate(n);
    buf
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_idle_connections_do_not_take_the_server_down() {
    // The real binary, so its memory can be read on its own.
    let (dir, pki) = crate::support::fresh_pki();
    let config = pki.server_config();
    let text = std::fs::read_to_string(&config).unwrap()
        + "\n[limits]\nconnections_max = 256\nhandshake_timeout_ms = 1000\nidle_timeout_ms = 1000\n";
    std::fs::write(&config, text).unwrap();
    let data = dir.path().join("data");
    let (mut child, addr, _) = tokio::task::block_in_place(|| {
        crate::cli::spawn_server(
            dir.path(),
            &[
                "--config",
                config.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--data",
                data.to_str().unwrap(),
            ],
        )
    });
    let rss = |pid: u32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    let before = rss(child.id());
    let mut idle = Vec::new();
    for _ in 0..1000 {
        match tokio::net::TcpStream::connect(&addr).await {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect: {e}"),
        }
    }
    // Silent TCP connections never finish a handshake: they are cut after 1 s, and the
    // connection cap keeps the rest queued in the kernel, so a real client gets through.
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let profile =
        congvan::config::ClientProfile::load(&pki.org_profile(&"hn".parse().unwrap())).unwrap();
    let client =
        congvan::client::Client::new(&profile, &format!("https://localhost:{port}")).unwrap();
    let me = tokio::time::timeout(Duration::from_secs(30), client.whoami())
        .await
        .expect("no answer within 30 s")
        .unwrap();
    assert_eq!(me.id, "hn");
    let during = rss(child.id());
    drop(idle);
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("server RSS: {before} KiB before, {during} KiB with 1000 idle connections");
    assert!(
        during < before + 100 * 1024,
        "RSS grew from {before} to {during} KiB"
    );
}
