//! The desk's own defences, replayed over plain HTTP against a real desk on loopback that
//! talks to a real server: no session, a wrong Host (DNS rebinding), a cross-origin POST,
//! a missing CSRF token, a non-loopback address. Each is refused, and a refused change
//! leaves the server's store and log as they were.

use std::net::SocketAddr;

use congvan::api::StatusView;
use congvan::client::Client;
use congvan::desk::{self, DeskState};
use reqwest::StatusCode;
use tokio::sync::oneshot;

use congvan::client::send::SendRequest;
use congvan::directory::OrgId;

use crate::support::TestServer;

/// A desk running in this process for one profile.
pub struct Desk {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The port.
    pub port: u16,
    /// The one-time launch URL.
    pub launch: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The session cookie's name.
    pub cookie_name: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Desk {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a desk for `client` on an ephemeral loopback port.
pub async fn start_desk(client: Client) -> Desk {
    let listener = desk::bind_loopback(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = DeskState::new(client, port).unwrap();
    let launch = state.launch_url().unwrap();
    let csrf = state.csrf_token().to_owned();
    let cookie_name = state.session_cookie();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(desk::serve(listener, state, async {
        let _ = stopped.await;
    }));
    Desk {
        base: format!("http://127.0.0.1:{port}"),
        port,
        launch,
        csrf,
        cookie_name,
        stop: Some(stop),
    }
}

/// A urlencoded form body (the fields here are plain ASCII or spaces).
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
        .collect::<Vec<_>>()
        .join("&")
}

fn http() -> reqwest::Client {
    // Plain HTTP to the desk; reqwest still wants a TLS provider to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Trades the launch token for the session cookie, as the browser does.
async fn session(desk: &Desk) -> String {
    let answer = http().get(&desk.launch).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let set_cookie = answer
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    set_cookie.split(';').next().unwrap().to_owned()
}

fn assert_refused(answer: &reqwest::Response, status: StatusCode, code: &str) {
    assert_eq!(answer.status(), status, "expected {code}");
    assert_eq!(
        answer
            .headers()
            .get("x-desk-error")
            .and_then(|v| v.to_str().ok()),
        Some(code)
    );
}

/// A document from the district to a commune, accepted by the server.
async fn one_document(server: &TestServer) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cong-van.txt");
    std::fs::write(&file, "Về việc kiểm tra công tác văn thư.\n").unwrap();
    let mut request = SendRequest::new(
        "CV",
        &crate::support::next_number(),
        "CV/HU",
        "Về việc kiểm tra",
        vec![file],
    );
    request.to = vec![OrgId::parse("hn/cm/chuc-son").unwrap()];
    let outcome = server
        .client("hn/cm")
        .send_document(&request)
        .await
        .unwrap();
    outcome.id.to_string()
}

/// What the sender sees of the commune's delivery: the proof that a refusal changed
/// nothing.
async fn delivery_of(server: &TestServer, id: &str) -> (Option<String>, usize) {
    let view: StatusView = server
        .client("hn/cm")
        .get_json(&format!("/v1/documents/{id}/status"))
        .await
        .unwrap();
    let commune = &view.recipients[0];
    (commune.status.clone(), commune.receipts.len())
}

#[tokio::test]
async fn desk_refuses_requests_without_its_session() {
    let server = TestServer::start().await;
    let desk = start_desk(server.client("hn/cm/chuc-son")).await;
    // No cookie at all, a made-up cookie, a wrong launch token.
    let bare = http()
        .get(format!("{}/inbox", desk.base))
        .send()
        .await
        .unwrap();
    assert_refused(&bare, StatusCode::UNAUTHORIZED, "desk_session_required");
    let forged = http()
        .get(format!("{}/inbox", desk.base))
        .header("cookie", format!("{}=00", desk.cookie_name))
        .send()
        .await
        .unwrap();
    assert_refused(&forged, StatusCode::UNAUTHORIZED, "desk_session_required");
    let guessed = http()
        .get(format!("{}/?token=00", desk.base))
        .send()
        .await
        .unwrap();
    assert_refused(&guessed, StatusCode::UNAUTHORIZED, "desk_session_required");
    // The launch token works once.
    let cookie = session(&desk).await;
    let again = http().get(&desk.launch).send().await.unwrap();
    assert_refused(&again, StatusCode::UNAUTHORIZED, "desk_session_required");
    let inbox = http()
        .get(format!("{}/inbox", desk.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(inbox.status(), StatusCode::OK);
    // Every answer, refusals too, forbids anything from another origin.
    let csp = inbox.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("http"),
        "no external origin in the CSP: {csp}"
    );
    assert!(bare.headers().contains_key("content-security-policy"));
    let body = inbox.text().await.unwrap();
    assert!(body.contains("Sổ văn bản đến"), "Vietnamese by default");
    assert!(!body.contains("<script>"), "no inline script");
}

#[tokio::test]
async fn desk_refuses_a_foreign_host_header() {
    let server = TestServer::start().await;
    let desk = start_desk(server.client("hn/cm/chuc-son")).await;
    let cookie = session(&desk).await;
    // DNS rebinding: a page on evil.example resolves its name to 127.0.0.1 and calls the
    // desk; the browser sends the attacker's name as Host (and no desk cookie, but the
    // Host check does not rely on that).
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{}", desk.port),
        format!("127.0.0.1:{}", desk.port + 1),
    ] {
        let answer = http()
            .get(format!("{}/inbox", desk.base))
            .header("host", &host)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_refused(
            &answer,
            StatusCode::MISDIRECTED_REQUEST,
            "desk_host_refused",
        );
    }
    let by_name = http()
        .get(format!("http://localhost:{}/inbox", desk.port))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_name.status(),
        StatusCode::OK,
        "its own loopback name is accepted"
    );
}

#[tokio::test]
async fn desk_refuses_a_cross_origin_post_and_changes_nothing() {
    let server = TestServer::start().await;
    let id = one_document(&server).await;
    let desk = start_desk(server.client("hn/cm/chuc-son")).await;
    let cookie = session(&desk).await;
    let before = delivery_of(&server, &id).await;
    let url = format!("{}/doc/{id}/receipt?csrf={}", desk.base, desk.csrf);
    for origin in [
        Some("http://evil.example".to_owned()),
        Some("null".to_owned()),
        Some(format!("http://127.0.0.1:{}", desk.port + 1)),
        None,
    ] {
        let mut request = http()
            .post(&url)
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("status", "03"), ("note", "")]));
        if let Some(origin) = &origin {
            request = request.header("origin", origin);
        }
        let answer = request.send().await.unwrap();
        assert_refused(&answer, StatusCode::FORBIDDEN, "desk_origin_refused");
    }
    assert_eq!(
        delivery_of(&server, &id).await,
        before,
        "a refusal changes nothing"
    );
}

#[tokio::test]
async fn desk_refuses_a_post_without_the_csrf_token_and_changes_nothing() {
    let server = TestServer::start().await;
    let id = one_document(&server).await;
    let desk = start_desk(server.client("hn/cm/chuc-son")).await;
    let cookie = session(&desk).await;
    let before = delivery_of(&server, &id).await;
    let origin = desk.base.clone();
    for url in [
        format!("{}/doc/{id}/receipt", desk.base),
        format!("{}/doc/{id}/receipt?csrf=", desk.base),
        format!("{}/doc/{id}/receipt?csrf={}", desk.base, "0".repeat(64)),
    ] {
        let answer = http()
            .post(&url)
            .header("cookie", &cookie)
            .header("origin", &origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("status", "03"), ("note", "")]))
            .send()
            .await
            .unwrap();
        assert_refused(&answer, StatusCode::FORBIDDEN, "desk_csrf_invalid");
    }
    // The language switch is a form too.
    let answer = http()
        .post(format!("{}/lang", desk.base))
        .header("cookie", &cookie)
        .header("origin", &origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("lang", "en")]))
        .send()
        .await
        .unwrap();
    assert_refused(&answer, StatusCode::FORBIDDEN, "desk_csrf_invalid");
    // A return without a reason is refused by the desk before it signs anything.
    let answer = http()
        .post(format!("{}/doc/{id}/receipt?csrf={}", desk.base, desk.csrf))
        .header("cookie", &cookie)
        .header("origin", &origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("status", "02"), ("note", "  ")]))
        .send()
        .await
        .unwrap();
    assert_refused(&answer, StatusCode::BAD_REQUEST, "desk_input_invalid");
    assert_eq!(
        delivery_of(&server, &id).await,
        before,
        "a refusal changes nothing"
    );
    // The same request with the token and its own origin goes through: the refusals
    // above were the desk's checks, not a broken route. (The clerk opens the document
    // first: the verified fetch reports 01, which the status rules require before 03.)
    let opened = http()
        .get(format!("{}/doc/{id}", desk.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    let answer = http()
        .post(format!("{}/doc/{id}/receipt", desk.base))
        .header("cookie", &cookie)
        .header("origin", &origin)
        .header("x-csrf-token", &desk.csrf)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("status", "03"), ("note", "")]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(delivery_of(&server, &id).await.0.as_deref(), Some("03"));
}

#[tokio::test]
async fn desk_listens_on_loopback_only() {
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let error = desk::bind_loopback(addr).await.unwrap_err();
        assert_eq!(error.code(), "desk_not_loopback", "{addr}");
    }
}

#[test]
fn desk_command_refuses_a_non_loopback_address() {
    let server_dir = tempfile::tempdir().unwrap();
    let (_dir, pki) = crate::support::fresh_pki();
    let profile = pki.org_profile(&congvan::directory::OrgId::parse("hn/cm").unwrap());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_congvan"))
        .current_dir(server_dir.path())
        .args(["desk", "--profile"])
        .arg(&profile)
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback only"), "{stderr}");
}

#[tokio::test]
async fn desk_screens_are_for_their_profile_and_unknown_pages_are_not_found() {
    let server = TestServer::start().await;
    let committee = start_desk(server.client("hn/cm")).await;
    let cookie = session(&committee).await;
    let get = |desk: &Desk, cookie: &str, path: &str| {
        let request = http()
            .get(format!("{}{path}", desk.base))
            .header("cookie", cookie.to_owned());
        async move { request.send().await.unwrap() }
    };
    let answer = get(&committee, &cookie, "/audit").await;
    assert_refused(&answer, StatusCode::FORBIDDEN, "desk_wrong_profile");
    let answer = get(&committee, &cookie, "/doc/not-a-document").await;
    assert_refused(&answer, StatusCode::NOT_FOUND, "desk_not_found");
    let answer = get(
        &committee,
        &cookie,
        &format!("/doc/{}", uuid::Uuid::now_v7()),
    )
    .await;
    assert_refused(&answer, StatusCode::NOT_FOUND, "desk_not_found");
    let auditor = Client::new(&server.auditor_profile("hn/cm"), &server.url()).unwrap();
    let auditor = start_desk(auditor).await;
    let cookie = session(&auditor).await;
    let answer = get(&auditor, &cookie, "/compose").await;
    assert_refused(&answer, StatusCode::FORBIDDEN, "desk_wrong_profile");
    let answer = get(&auditor, &cookie, "/audit").await;
    assert_eq!(answer.status(), StatusCode::OK);
}

#[tokio::test]
async fn desk_gives_malformed_requests_its_own_codes() {
    let server = TestServer::start().await;
    let desk = start_desk(server.client("hn/cm")).await;
    let cookie = session(&desk).await;
    for (path, status, code) in [
        (
            "/inbox?page=99999999999999999999999",
            StatusCode::BAD_REQUEST,
            "desk_input_invalid",
        ),
        (
            "/inbox/poll?after=-1",
            StatusCode::BAD_REQUEST,
            "desk_input_invalid",
        ),
        ("/no-such-page", StatusCode::NOT_FOUND, "desk_not_found"),
    ] {
        let answer = http()
            .get(format!("{}{path}", desk.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_refused(&answer, status, code);
    }
    // A receipt form without its status field.
    let answer = http()
        .post(format!(
            "{}/doc/{}/receipt",
            desk.base,
            uuid::Uuid::now_v7()
        ))
        .header("cookie", &cookie)
        .header("origin", &desk.base)
        .header("x-csrf-token", &desk.csrf)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("note=x")
        .send()
        .await
        .unwrap();
    assert_refused(&answer, StatusCode::BAD_REQUEST, "desk_input_invalid");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The security officer's desk shows a loud banner, not the report, when the server's log
/// is smaller than what this machine verified before (the server's data was restored from
/// an old copy).
#[tokio::test]
async fn desk_shows_a_loud_banner_when_the_log_was_rolled_back() {
    let server = TestServer::start().await;
    one_document(&server).await;
    let (dir, pki) = server.stop().await;
    let backup = tempfile::tempdir().unwrap();
    copy_dir(&dir.path().join("data"), backup.path());
    let server = TestServer::start_in(dir, pki).await;
    one_document(&server).await;

    let audit_page = |server: &TestServer| {
        let client = Client::new(&server.auditor_profile("hn/cm"), &server.url()).unwrap();
        async move {
            let desk = start_desk(client).await;
            let cookie = session(&desk).await;
            let answer = http()
                .get(format!("{}/audit", desk.base))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::OK);
            answer.text().await.unwrap()
        }
    };
    let page = audit_page(&server).await;
    assert!(!page.contains("log-alarm"), "the first check is consistent");
    assert!(page.contains("Lần kiểm tra đầu tiên"), "{page}");

    let (dir, pki) = server.stop().await;
    std::fs::remove_dir_all(dir.path().join("data")).unwrap();
    copy_dir(backup.path(), &dir.path().join("data"));
    // The operator acknowledges the rollback (the server refuses to start otherwise); the
    // desk, which remembers the longer log, must still shout.
    let server = TestServer::start_in_with(dir, pki, |c| c.acknowledge_rollback = true).await;
    let page = audit_page(&server).await;
    assert!(page.contains("id=\"log-alarm\""), "{page}");
    assert!(page.contains("SỔ NHẬT KÝ BỊ QUAY LUI"), "{page}");
    assert!(
        page.contains("rolled back"),
        "the client's sentence says what happened"
    );
}

fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
    }
    found
}

/// Opening a "Mật" document on the desk decrypts it for display and download and leaves
/// nothing of its plaintext behind in the profile's directory (the desk keeps what it
/// opens in memory; the scratch directory the verified fetch needs is gone afterwards).
/// This guards against leftovers; that the scratch directory is memory-backed where the
/// system offers one is a property of `scratch_dir`, not checked here.
#[tokio::test]
async fn desk_leaves_no_decrypted_plaintext_behind() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "Nội dung mật: kế hoạch bảo vệ bí mật nhà nước quý I";
    let file = dir.path().join("ke-hoach.txt");
    std::fs::write(&file, secret).unwrap();
    let mut request = SendRequest::new(
        "KH",
        &crate::support::next_number(),
        "KH/HU",
        "Về kế hoạch bảo vệ bí mật",
        vec![file],
    );
    request.to = vec![OrgId::parse("hn/cm/chuc-son").unwrap()];
    request.classification = congvan::document::manifest::Classification::Mat;
    let id = server
        .client("hn/cm")
        .send_document(&request)
        .await
        .unwrap()
        .id;

    let desk = start_desk(server.client("hn/cm/chuc-son")).await;
    let cookie = session(&desk).await;
    let page = http()
        .get(format!("{}/doc/{id}", desk.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Về kế hoạch bảo vệ bí mật"),
        "decrypted for display: {page}"
    );
    let download = http()
        .get(format!("{}/doc/{id}/file/0", desk.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(download.text().await.unwrap(), secret);
    let state_dir = server.org_profile("hn/cm/chuc-son").state_dir;
    for needle in [secret.as_bytes(), "Về kế hoạch bảo vệ bí mật".as_bytes()] {
        let found = files_containing(&state_dir, needle);
        assert!(found.is_empty(), "plaintext left on disk: {found:?}");
    }
}
