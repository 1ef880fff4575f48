//! The desk in a real browser: Debian's Chromium driven over WebDriver (chromedriver,
//! fantoccini) against three desks (the district office hn/cm, the commune
//! hn/cm/chuc-son, and the security officer for hn/cm) that talk to a real server.
//!
//! The story: the district composes a document with an attachment and sends it to all
//! its communes; the commune's open inbox shows the notice of a new document without a
//! reload; the commune opens it, sees the verified signatures, accepts it (03); the
//! district's outgoing register shows 03. The same for a "Mật" document (with the mark
//! of the uncertified cipher the DEMO server declares), then a return (02) with its
//! reason, then the security officer's report with the overdue document. The browser also
//! meets the desk's defences: no session, and a cross-origin form post.
//!
//! Screenshots of each main screen go to `target/desk-screenshots/`.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client as Browser, ClientBuilder, Locator};

use super::desk::{Desk, start_desk};
use crate::support::{TestServer, require};

/// How long the browser waits for a page element.
const WAIT: Duration = Duration::from_secs(30);

/// A chromedriver process in a process group of its own, which also holds the browser it
/// starts: dropping it (even when the test panics before closing the session) kills the
/// whole group, so no browser outlives the test.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver and a headless Chromium session at 1366×768. The flags keep a
/// closed network quiet (no calls home) and let Chromium run as root in CI.
async fn browser(profile_dir: &std::path::Path) -> (Driver, Browser) {
    let port = free_port();
    let driver = Driver(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1366,768", "--lang=vi",
                format!("--user-data-dir={}", profile_dir.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let url = format!("http://127.0.0.1:{port}");
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("chromedriver did not start a session: {last:?}");
}

fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/desk-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(browser: &Browser, name: &str) {
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

/// The text of the element `css`, once it exists. A page that is still being replaced
/// (a redirect after a form, a reload) can drop the element between finding and reading
/// it: then look again.
async fn text_of(browser: &Browser, css: &str) -> String {
    let mut last = None;
    for _ in 0..50 {
        let element = browser
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match element.text().await {
            Ok(text) => return text,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css}: {last:?}");
}

/// Clicks the element `css` once it exists (looking again if the page replaced it).
async fn click(browser: &Browser, css: &str) {
    let mut last = None;
    for _ in 0..50 {
        let element = browser
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match element.click().await {
            Ok(()) => return,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css}: {last:?}");
}

async fn type_into(browser: &Browser, css: &str, text: &str) {
    let element = browser.find(Locator::Css(css)).await.unwrap();
    element.clear().await.unwrap();
    element.send_keys(text).await.unwrap();
}

/// Waits until the page's URL contains `part`.
async fn wait_for_url(browser: &Browser, part: &str) -> String {
    for _ in 0..300 {
        let url = browser.current_url().await.unwrap().to_string();
        if url.contains(part) {
            return url;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let source = browser.source().await.unwrap_or_default();
    panic!(
        "the page never reached {part}: {}",
        &source[..source.len().min(2000)]
    );
}

/// Opens a desk's launch link in a new tab and returns to it later by handle.
async fn open_desk(browser: &Browser, desk: &Desk, landing: &str) -> fantoccini::wd::WindowHandle {
    let tab = browser.new_window(true).await.unwrap();
    browser.switch_to_window(tab.handle.clone()).await.unwrap();
    browser.goto(&desk.launch).await.unwrap();
    wait_for_url(browser, landing).await;
    tab.handle
}

/// Fills the compose form and sends; returns the new document's id.
async fn compose_and_send(
    browser: &Browser,
    desk: &Desk,
    number: &str,
    subject: &str,
    classification: &str,
    recipients_css: &str,
    file: &std::path::Path,
) -> String {
    browser
        .goto(&format!("{}/compose", desk.base))
        .await
        .unwrap();
    text_of(browser, "#compose").await;
    type_into(browser, "#number", number).await;
    type_into(browser, "#notation", "CV/HU").await;
    type_into(browser, "#place", "Chương Mỹ").await;
    type_into(browser, "#subject", subject).await;
    browser
        .find(Locator::Css("#classification"))
        .await
        .unwrap()
        .select_by_value(classification)
        .await
        .unwrap();
    click(browser, recipients_css).await;
    browser
        .find(Locator::Css("#files"))
        .await
        .unwrap()
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    let preview = browser.find(Locator::Css("#preview")).await.unwrap();
    assert!(
        preview.html(true).await.unwrap().contains(subject),
        "the preview shows the subject"
    );
    if classification == "thuong" {
        shot(browser, "compose").await;
    }
    click(browser, "#send").await;
    let url = wait_for_url(browser, "/sent/").await;
    let id = url.rsplit('/').next().unwrap().to_owned();
    assert_eq!(text_of(browser, "#sent-id").await, id);
    id
}

/// The status cell of `org` for document `id` in the outgoing register.
async fn outgoing_status(browser: &Browser, desk: &Desk, id: &str, org: &str) -> String {
    browser
        .goto(&format!("{}/outgoing", desk.base))
        .await
        .unwrap();
    text_of(
        browser,
        &format!("section[data-id=\"{id}\"] tr[data-org=\"{org}\"] td.status"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn desk_story_in_a_real_browser() {
    if !require("chromedriver") || !require("chromium") {
        return;
    }
    let server = TestServer::start().await;
    let district = start_desk(server.client("hn/cm")).await;
    let commune = start_desk(server.client("hn/cm/chuc-son")).await;
    // The security officer judges "overdue" by the profile's deadlines: none are allowed
    // here, so a document nobody has acknowledged is overdue at once.
    let mut auditor_profile = server.auditor_profile("hn/cm");
    auditor_profile.deadlines = congvan::config::Deadlines {
        thuong_h: 0,
        khan_h: 0,
        thuong_khan_h: 0,
        hoa_toc_h: 0,
    };
    let auditor_client = congvan::client::Client::new(&auditor_profile, &server.url()).unwrap();
    let auditor = start_desk(auditor_client).await;

    let files = tempfile::tempdir().unwrap();
    let attachment = files.path().join("to-trinh-so-12.txt");
    std::fs::write(&attachment, "Tờ trình về việc triển khai chuyển đổi số.\n").unwrap();
    let profile_dir = tempfile::tempdir().unwrap();
    let (_driver, browser) = browser(profile_dir.path()).await;

    // The commune's inbox is open (and empty) before anything is sent.
    let commune_tab = open_desk(&browser, &commune, "/inbox").await;
    assert!(text_of(&browser, "h1").await.contains("Sổ văn bản đến"));
    let district_tab = open_desk(&browser, &district, "/inbox").await;

    // 1. Compose with an attachment, to all communes of the district.
    let subject = "Về việc triển khai chuyển đổi số năm 2027";
    let first = compose_and_send(
        &browser,
        &district,
        "12",
        subject,
        "thuong",
        "#children-hn-cm",
        &attachment,
    )
    .await;
    let recipients = text_of(&browser, "#sent-recipients").await;
    assert!(recipients.contains("hn/cm/chuc-son") && recipients.contains("hn/cm/xuan-mai"));
    shot(&browser, "sent").await;

    // 2. The commune sees the notice without reloading, then the row.
    browser.switch_to_window(commune_tab.clone()).await.unwrap();
    if browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#new-notice:not([hidden])"))
        .await
        .is_err()
    {
        let probe = browser
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 fetch('/inbox/poll?after=0').then(r => r.text()).then(done, e => done(String(e)));",
                vec![],
            )
            .await;
        panic!(
            "no notice; poll answers {probe:?}; page: {}",
            browser.source().await.unwrap()
        );
    }
    assert!(text_of(&browser, "#new-notice-text").await.contains('1'));
    shot(&browser, "inbox-notice").await;
    click(&browser, "#new-notice a").await;
    let row = text_of(&browser, &format!("tr[data-id=\"{first}\"]")).await;
    assert!(row.contains(subject), "{row}");
    assert!(row.contains("Chưa nhận") || row.contains("01"), "{row}");
    shot(&browser, "inbox").await;

    // 3. Open: verified signatures, the signer, the attachment; accept (03).
    click(&browser, &format!("tr[data-id=\"{first}\"] a.open-doc")).await;
    let verdict = text_of(&browser, "#verdict").await;
    assert!(verdict.contains("Đã xác minh"), "{verdict}");
    let signer = text_of(&browser, "#signer").await;
    assert!(signer.contains("Nguyễn Thị Hạnh"), "{signer}");
    click(&browser, "#verify-details summary").await;
    let details = text_of(&browser, "#verify-details").await;
    assert!(
        details.contains("Con dấu của cơ quan") && details.contains("Người có thẩm quyền ký"),
        "{details}"
    );
    let certificates = text_of(&browser, "#certificates").await;
    assert!(
        certificates.contains("từ ") && certificates.contains(" đến "),
        "each certificate's validity: {certificates}"
    );
    assert!(
        text_of(&browser, "ul.files")
            .await
            .contains("to-trinh-so-12.txt")
    );
    shot(&browser, "document").await;
    click(&browser, "#action-03").await;
    wait_for_url(&browser, "done=03").await;
    assert!(text_of(&browser, "#done-notice").await.contains("03"));
    // The commune's incoming register gives it number 1 of the year.
    let incoming = text_of(&browser, "#incoming-number").await;
    assert!(incoming.contains("Số đến: 1"), "{incoming}");

    // 4. The district's outgoing register shows 03 for the commune.
    browser
        .switch_to_window(district_tab.clone())
        .await
        .unwrap();
    let status = outgoing_status(&browser, &district, &first, "hn/cm/chuc-son").await;
    assert!(status.starts_with("03"), "{status}");
    shot(&browser, "outgoing").await;

    // 5. The same for a "Mật" document, sealed to the commune only.
    let secret_subject = "Về công tác bảo vệ bí mật nhà nước";
    let second = compose_and_send(
        &browser,
        &district,
        "13",
        secret_subject,
        "mat",
        "input[name=\"to\"][value=\"hn/cm/chuc-son\"]",
        &attachment,
    )
    .await;
    browser.switch_to_window(commune_tab.clone()).await.unwrap();
    browser
        .goto(&format!("{}/inbox", commune.base))
        .await
        .unwrap();
    let row = text_of(&browser, &format!("tr[data-id=\"{second}\"]")).await;
    assert!(row.contains("MẬT"), "{row}");
    assert!(
        !row.contains(secret_subject),
        "the server never had the subject: {row}"
    );
    click(&browser, &format!("tr[data-id=\"{second}\"] a.open-doc")).await;
    assert!(text_of(&browser, "#verdict").await.contains("Đã xác minh"));
    assert!(text_of(&browser, "#subject").await.contains(secret_subject));
    let mark = text_of(&browser, "#seal-mark").await;
    assert!(mark.contains("CHƯA ĐƯỢC CHỨNG NHẬN"), "{mark}");
    shot(&browser, "document-mat").await;
    click(&browser, "#action-03").await;
    wait_for_url(&browser, "done=03").await;
    // The decrypted subject is shown in the register from now on (kept in memory only).
    browser
        .goto(&format!("{}/inbox", commune.base))
        .await
        .unwrap();
    assert!(
        text_of(&browser, &format!("tr[data-id=\"{second}\"]"))
            .await
            .contains(secret_subject)
    );
    browser
        .switch_to_window(district_tab.clone())
        .await
        .unwrap();
    let status = outgoing_status(&browser, &district, &second, "hn/cm/chuc-son").await;
    assert!(status.starts_with("03"), "{status}");

    // 6. A return (02) with its reason; without one the desk refuses.
    let third = compose_and_send(
        &browser,
        &district,
        "14",
        "Về việc báo cáo số liệu quý IV",
        "thuong",
        "input[name=\"to\"][value=\"hn/cm/chuc-son\"]",
        &attachment,
    )
    .await;
    browser.switch_to_window(commune_tab.clone()).await.unwrap();
    browser
        .goto(&format!("{}/doc/{third}", commune.base))
        .await
        .unwrap();
    click(&browser, "#action-02").await;
    let refusal = text_of(&browser, "p.error").await;
    assert!(refusal.contains("desk_input_invalid"), "{refusal}");
    browser
        .goto(&format!("{}/doc/{third}", commune.base))
        .await
        .unwrap();
    type_into(
        &browser,
        "#note",
        "Gửi nhầm đơn vị, đề nghị gửi Đảng ủy xã Phụng Châu",
    )
    .await;
    click(&browser, "#action-02").await;
    wait_for_url(&browser, "done=02").await;
    browser
        .switch_to_window(district_tab.clone())
        .await
        .unwrap();
    let status = outgoing_status(&browser, &district, &third, "hn/cm/chuc-son").await;
    assert!(status.starts_with("02"), "{status}");
    let row = text_of(
        &browser,
        &format!("section[data-id=\"{third}\"] tr[data-org=\"hn/cm/chuc-son\"]"),
    )
    .await;
    assert!(
        row.contains("Gửi nhầm đơn vị"),
        "the reason is shown: {row}"
    );

    // 7. The security officer's report: the first document, never fetched by the other
    // communes, is overdue.
    let auditor_tab = open_desk(&browser, &auditor, "/audit").await;
    browser.switch_to_window(auditor_tab).await.unwrap();
    wait_for_url(&browser, "/audit").await;
    let checkpoint = text_of(&browser, "#checkpoint").await;
    assert!(
        checkpoint.contains("Kích thước đã xác minh"),
        "{checkpoint}"
    );
    let overdue = text_of(&browser, &format!("tr.overdue[data-id=\"{first}\"]")).await;
    assert!(
        overdue.contains("hn/cm/xuan-mai") || overdue.contains("hn/cm/"),
        "{overdue}"
    );
    assert!(overdue.contains("Quá hạn"), "{overdue}");
    assert!(browser.find(Locator::Css("#audit-csv")).await.is_ok());
    shot(&browser, "audit").await;
    // The CSV download carries the same rows.
    let csv = browser
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch('/audit.csv').then(r => r.text()).then(done, e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    let csv = csv.as_str().unwrap_or_default().to_owned();
    assert!(csv.starts_with("recipient,document_id,"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.contains(&first) && l.contains(",true,")),
        "the overdue row is in the CSV: {csv}"
    );
    // The document's proven timeline: each event's inclusion proof verified by the desk.
    click(&browser, &format!("tr.overdue[data-id=\"{first}\"] a")).await;
    wait_for_url(&browser, &format!("/audit/doc/{first}")).await;
    let proved = text_of(&browser, "#proved").await;
    assert!(
        proved.contains("Gửi đi") && proved.contains("Biên nhận hn/cm/chuc-son 03"),
        "{proved}"
    );
    assert!(
        text_of(&browser, "#checkpoint")
            .await
            .contains("Đã xác minh chứng minh bao hàm")
    );
    shot(&browser, "audit-timeline").await;
    browser
        .goto(&format!("{}/audit", auditor.base))
        .await
        .unwrap();

    // 8. English by the switch.
    click(&browser, "#lang-switch").await;
    wait_for_url(&browser, "/audit").await;
    assert!(text_of(&browser, "h1").await.contains("Delivery report"));

    // 9. The defences, met by the browser: another name for the desk carries no session;
    // a form posted from a page of another origin is refused and changes nothing.
    browser
        .goto(&format!("http://localhost:{}/inbox", commune.port))
        .await
        .unwrap();
    assert!(
        text_of(&browser, "p.error")
            .await
            .contains("desk_session_required")
    );
    browser.goto("about:blank").await.unwrap();
    browser
        .execute(
            "const f = document.createElement('form'); f.method = 'post'; \
             f.action = arguments[0]; const i = document.createElement('input'); \
             i.name = 'status'; i.value = '06'; f.appendChild(i); \
             document.body.appendChild(f); f.submit();",
            vec![serde_json::json!(format!(
                "{}/doc/{first}/receipt?csrf={}",
                commune.base, commune.csrf
            ))],
        )
        .await
        .unwrap();
    let refusal = text_of(&browser, "p.error").await;
    assert!(
        refusal.contains("desk_origin_refused") || refusal.contains("desk_session_required"),
        "{refusal}"
    );
    browser.switch_to_window(district_tab).await.unwrap();
    let status = outgoing_status(&browser, &district, &first, "hn/cm/chuc-son").await;
    assert!(
        status.starts_with("03"),
        "the cross-origin post changed nothing: {status}"
    );

    browser.close().await.unwrap();
}
