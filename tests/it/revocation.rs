//! Revocation on open connections: a certificate that is revoked, expires or stops
//! chaining after a connection was opened is refused on that connection's next request,
//! and the connection is closed; connections also end at a maximum age.

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine as _;
use congvan::pki::demo::{Ca, LeafKind, LeafSpec};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    TestDoc, TestServer, assert_code, raw_get, read_all_within, tls_client_config, tls_connect,
};

/// One HTTP/1.1 response as read off a keep-alive connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines, lower-cased.
    pub head: String,
    pub body: String,
}

impl RawResponse {
    /// The API error code in the body.
    pub fn code(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// True when the server said it closes the connection after this response.
    pub fn closes(&self) -> bool {
        self.head.contains("\r\nconnection: close")
    }
}

/// Sends one request on an open HTTP/1.1 connection and reads exactly one response
/// (`Content-Length` framed, as every congvan JSON answer is), leaving the connection open.
pub async fn exchange(
    stream: &mut (impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin),
    request: &[u8],
) -> Result<RawResponse, String> {
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .map_err(|_| "no response within 10 s".to_owned())?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {head:.100}"))?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .map_err(|_| "body incomplete after 10 s".to_owned())?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed in the body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    Ok(RawResponse { status, head, body })
}

/// A keep-alive `GET /v1/whoami`.
pub const WHOAMI: &[u8] = b"GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Asserts that the server closes the connection (after any response already read).
async fn assert_closed(stream: &mut (impl tokio::io::AsyncRead + Unpin)) {
    let rest = read_all_within(stream, Duration::from_secs(2)).await;
    assert!(
        matches!(&rest, Ok(bytes) if bytes.is_empty())
            || rest.is_err() && !rest.as_ref().unwrap_err().contains("still open"),
        "the connection was not closed: {rest:?}"
    );
}

#[tokio::test]
async fn revoked_certificate_is_refused_on_an_open_connection_within_the_reload_interval() {
    let server = TestServer::start().await;
    let sender = "hn/cm/xuan-mai";
    let mut revoked_conn = tls_connect(&server, sender).await;
    let first = exchange(&mut revoked_conn, WHOAMI).await.unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    let mut other_conn = tls_connect(&server, "hn/cm/chuc-son").await;
    assert_eq!(exchange(&mut other_conn, WHOAMI).await.unwrap().status, 200);

    // A complete one-request submission, ready to go out on the connection opened before
    // the revocation: it would be accepted if the connection were still trusted.
    let doc = TestDoc::new(sender, &["hn/cm/chuc-son"]);
    let mut body = doc.body(&doc.signatures(&server));
    body["payload"] = base64::engine::general_purpose::STANDARD
        .encode(&doc.payload)
        .into();
    let body = serde_json::to_vec(&body).unwrap();
    let mut request = format!(
        "POST /v1/documents HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);

    // Revoke through the real command and let the server's file watcher notice.
    let generation = server.tls.generation();
    let revoked_at = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args(["pki", "revoke", "--reason", "key-compromise", "--pki"])
        .arg(&server.pki.dir)
        .arg(server.org_dir(sender).join("tls.crt"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let command_done = revoked_at.elapsed();
    while server.tls.generation() == generation {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "the CRL change was not picked up within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reloaded = revoked_at.elapsed();

    let refused = exchange(&mut revoked_conn, &request).await.unwrap();
    let answered = revoked_at.elapsed();
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.code(), "certificate_revoked");
    assert!(refused.closes(), "{refused:?}");
    assert_closed(&mut revoked_conn).await;
    eprintln!(
        "revocation: command {command_done:?}, reload seen after {reloaded:?}, \
         refused on the open connection after {answered:?} (reload interval 100 ms)"
    );
    // The file watcher hashes the files every 100 ms here; the refusal needs no more.
    assert!(answered < Duration::from_secs(2), "{answered:?}");
    assert_eq!(server.metrics.certificate_closed.load(Ordering::Relaxed), 1);

    // New handshakes are refused too, and nothing of the submission was stored.
    let dir = server.org_dir(sender);
    let config = tls_client_config(
        &server.pki.root_cert(),
        Some((&dir.join("tls.crt"), &dir.join("tls.key"))),
    );
    let again = raw_get(server.addr, config, "/v1/whoami").await;
    assert!(
        matches!(&again, Err(e) if e.contains("CertificateRevoked")),
        "{again:?}"
    );
    let recipient = server.client("hn/cm/chuc-son");
    assert_code(
        recipient
            .get_json::<serde_json::Value>(&format!("/v1/documents/{}", doc.id()))
            .await,
        "document_not_found",
    );
    let inbox: serde_json::Value = recipient.get_json("/v1/inbox").await.unwrap();
    assert_eq!(inbox["items"].as_array().unwrap().len(), 0, "{inbox}");

    // Another committee's open connection re-verifies and goes on.
    let other = exchange(&mut other_conn, WHOAMI).await.unwrap();
    assert_eq!(other.status, 200, "{other:?}");
    assert!(!other.closes());
}

#[tokio::test]
async fn revoked_certificate_is_refused_on_an_open_http2_connection() {
    // The congvan client negotiates HTTP/2 and keeps its connection in a pool.
    let server = TestServer::start().await;
    let client = server.client("hn/cm/truong-yen");
    client.whoami().await.unwrap();
    let accepted = server.metrics.connections_accepted.load(Ordering::Relaxed);
    let tls_cert = server.org_dir("hn/cm/truong-yen").join("tls.crt");
    congvan::pki::crl::revoke(&server.pki, &tls_cert, None).unwrap();
    server.tls.reload().unwrap();
    assert_code(client.whoami().await, "certificate_revoked");
    // That was the pooled connection, not a new one.
    assert_eq!(
        server.metrics.connections_accepted.load(Ordering::Relaxed),
        accepted
    );
    // The connection is gone (GOAWAY); a new one fails at the handshake.
    let again = client.whoami().await;
    assert!(again.is_err(), "{again:?}");
    assert_eq!(again.unwrap_err().api_code(), None);
    assert_eq!(server.metrics.certificate_closed.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn expired_certificate_is_refused_on_an_open_connection() {
    let server = TestServer::start().await;
    let ca = Ca::load(
        &server.pki.intermediate_cert(),
        &server.pki.intermediate_key(),
        false,
    )
    .unwrap();
    let mut spec = LeafSpec::new(LeafKind::TlsClient, "short-lived").uri("urn:congvan:org:hn/cm");
    let now = OffsetDateTime::now_utc();
    spec.not_before = now - time::Duration::minutes(1);
    spec.not_after = now + time::Duration::seconds(3);
    ca.issue(&spec)
        .unwrap()
        .write(server.dir.path(), "short")
        .unwrap();
    let config = tls_client_config(
        &server.pki.root_cert(),
        Some((
            &server.dir.path().join("short.crt"),
            &server.dir.path().join("short.key"),
        )),
    );
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut conn = tokio_rustls::TlsConnector::from(config)
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    assert_eq!(exchange(&mut conn, WHOAMI).await.unwrap().status, 200);

    // No reload happens: the connection knows when its certificate ends.
    let generation = server.tls.generation();
    let left = (spec.not_after - OffsetDateTime::now_utc()).unsigned_abs();
    tokio::time::sleep(left + Duration::from_millis(1_500)).await;
    assert_eq!(server.tls.generation(), generation);
    let refused = exchange(&mut conn, WHOAMI).await.unwrap();
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.code(), "certificate_expired");
    assert!(refused.closes());
    assert_closed(&mut conn).await;
}

#[tokio::test]
async fn untrusted_chain_or_unusable_trust_closes_open_connections() {
    let server = TestServer::start().await;
    let root = server.pki.root_cert();
    let good_root = std::fs::read(&root).unwrap();

    // The operator replaces the client CA: open connections from the old CA end.
    let mut conn = tls_connect(&server, "hn").await;
    assert_eq!(exchange(&mut conn, WHOAMI).await.unwrap().status, 200);
    let other_root = Ca::new_root("Other Root CA").unwrap();
    std::fs::write(&root, other_root.cert_pem()).unwrap();
    server.tls.reload().unwrap();
    let refused = exchange(&mut conn, WHOAMI).await.unwrap();
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.code(), "certificate_untrusted");
    assert!(refused.closes());
    assert_closed(&mut conn).await;
    std::fs::write(&root, &good_root).unwrap();
    server.tls.reload().unwrap();

    // A CRL that cannot be read: the server fails closed on open connections too.
    let mut conn = tls_connect(&server, "hn").await;
    assert_eq!(exchange(&mut conn, WHOAMI).await.unwrap().status, 200);
    let crl = server.pki.intermediate_crl();
    let good_crl = std::fs::read(&crl).unwrap();
    std::fs::write(
        &crl,
        b"-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n",
    )
    .unwrap();
    assert!(server.tls.reload().is_err());
    let refused = exchange(&mut conn, WHOAMI).await.unwrap();
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.code(), "unavailable");
    assert!(refused.closes());
    assert_closed(&mut conn).await;
    std::fs::write(&crl, good_crl).unwrap();
    server.tls.reload().unwrap();
    server.client("hn").whoami().await.unwrap();
    assert_eq!(server.metrics.certificate_closed.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_busy_keep_alive_connection_still_ends_at_its_maximum_age() {
    let server = TestServer::start_with(|c| c.limits.connection_age_max_ms = 1_000).await;
    let mut conn = tls_connect(&server, "hn/cm").await;
    let opened = Instant::now();
    let mut answered = 0;
    let closed_after = loop {
        match exchange(&mut conn, WHOAMI).await {
            Ok(r) if r.status == 200 && !r.closes() => answered += 1,
            Ok(r) if r.status == 200 => {
                answered += 1;
                break opened.elapsed();
            }
            Ok(r) => panic!("unexpected answer: {r:?}"),
            Err(_) => break opened.elapsed(),
        }
        assert!(
            opened.elapsed() < Duration::from_secs(5),
            "still open after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("connection closed after {closed_after:?} and {answered} answers (max age 1 s)");
    assert!(
        closed_after >= Duration::from_millis(900),
        "{closed_after:?}"
    );
    assert!(
        closed_after < Duration::from_millis(2_500),
        "{closed_after:?}"
    );
    assert!(answered >= 5);
    assert_eq!(server.metrics.age_closed.load(Ordering::Relaxed), 1);
    // The client simply reconnects.
    server.client("hn/cm").whoami().await.unwrap();
}
