//! Registers (Decree 30/2020 art. 22): the incoming register's numbers under concurrent
//! acceptance, paper documents in the same sequence, CSV and closing; the outgoing
//! register's refusal of a number used twice in its period.

use std::process::Command;

use congvan::api::{IncomingRegisterView, ListPage, PaperRegistered};
use congvan::registers::{Medium, PaperRegistration};

use crate::support::{
    Run as _, TestDoc, TestServer, assert_code, congvan_command, next_number, st, stderr, stdout,
};

const DISTRICT: &str = "hn/cm";
const COMMUNE: &str = "hn/cm/chuc-son";

/// Sends a document from the district to the commune (manifest, then payload).
async fn send(server: &TestServer, doc: &TestDoc) {
    let district = server.client(DISTRICT);
    let (status, _) = doc.submit(server, &district).await.unwrap();
    assert_eq!(status, 201);
    let (status, _) = doc.upload(&district, doc.payload.clone()).await.unwrap();
    assert!(status == 200 || status == 201, "{status}");
}

async fn register(server: &TestServer, org: &str) -> IncomingRegisterView {
    server
        .client(org)
        .get_json("/v1/registers/incoming")
        .await
        .unwrap()
}

fn paper() -> PaperRegistration {
    PaperRegistration {
        author: "UBND huyện Chương Mỹ".into(),
        code: "45/UBND".into(),
        date: "2026-03-01".into(),
        doc_type: "CV".into(),
        subject: "Về lịch tiếp công dân, quý II".into(),
        assigned_to: "Văn phòng".into(),
        note: String::new(),
        year: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_acceptances_get_consecutive_incoming_numbers() {
    let server = TestServer::start().await;
    const DOCS: usize = 8;
    let docs: Vec<TestDoc> = (0..DOCS)
        .map(|_| TestDoc::new(DISTRICT, &[COMMUNE]))
        .collect();
    for doc in &docs {
        send(&server, doc).await;
    }
    let commune = server.client(COMMUNE);
    let work = tempfile::tempdir().unwrap();
    for doc in &docs {
        let id = doc.id().parse().unwrap();
        // The status rules want the document fetched and its arrival (01) confirmed first.
        commune
            .fetch_document(&id, &work.path().join(doc.id()))
            .await
            .unwrap();
        let arrived = commune.acknowledge(&id, st("01"), "").await.unwrap();
        assert_eq!(arrived.incoming_number, None, "01 gives no number");
    }
    // Every clerk accepts at the same moment, each on a connection of its own.
    let accepts = docs.iter().map(|doc| {
        let client = server.client(COMMUNE);
        let id: uuid::Uuid = doc.id().parse().unwrap();
        async move { client.acknowledge(&id, st("03"), "").await.unwrap() }
    });
    let answers = futures_util::future::join_all(accepts).await;
    let mut numbers: Vec<u64> = answers
        .iter()
        .map(|a| a.incoming_number.expect("03 gives a number"))
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1..=DOCS as u64).collect::<Vec<_>>());

    // The register lists each document once, numbered as answered, gapless.
    let view = register(&server, COMMUNE).await;
    assert_eq!(view.entries.len(), DOCS);
    for (i, entry) in view.entries.iter().enumerate() {
        assert_eq!(entry.number, i as u64 + 1);
        assert_eq!(entry.medium, Medium::Electronic);
        assert_eq!(entry.author, DISTRICT);
        let answer = answers
            .iter()
            .find(|a| Some(a.document_id) == entry.document_id)
            .expect("every line is an accepted document");
        assert_eq!(answer.incoming_number, Some(entry.number));
    }

    // A paper document takes the next number of the same sequence.
    let (status, paper_answer): (u16, PaperRegistered) = commune
        .post_json("/v1/registers/incoming", &paper())
        .await
        .unwrap();
    assert_eq!(status, 201);
    assert_eq!(paper_answer.number, DOCS as u64 + 1);
    let view = register(&server, COMMUNE).await;
    let last = view.entries.last().unwrap();
    assert_eq!(
        (last.number, last.medium, last.code.as_str()),
        (DOCS as u64 + 1, Medium::Paper, "45/UBND")
    );
    // Another organisation's register is its own, and empty.
    assert!(register(&server, "hn/cm/xuan-mai").await.entries.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_paper_registrations_and_early_closing_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let commune = server.client(COMMUNE);
    for bad in [
        PaperRegistration {
            subject: String::new(),
            ..paper()
        },
        PaperRegistration {
            date: "01/03/2026".into(),
            ..paper()
        },
        PaperRegistration {
            author: "Ha\u{0300} Nội".into(),
            ..paper()
        },
    ] {
        assert_code(
            commune
                .post_json::<_, PaperRegistered>("/v1/registers/incoming", &bad)
                .await,
            "request_invalid",
        );
    }
    let this_year = register(&server, COMMUNE).await.year;
    assert_code(
        commune
            .post_json::<_, serde_json::Value>(
                &format!("/v1/registers/incoming/close?year={this_year}"),
                &serde_json::json!({}),
            )
            .await,
        "register_year_open",
    );
    assert!(register(&server, COMMUNE).await.entries.is_empty());
    assert!(register(&server, COMMUNE).await.closed_at.is_none());
    // A security officer has no register.
    let officer =
        congvan::client::Client::new(&server.auditor_profile(DISTRICT), &server.url()).unwrap();
    assert_code(
        officer
            .get_json::<IncomingRegisterView>("/v1/registers/incoming")
            .await,
        "role_forbidden",
    );
    // A past year closes once; closing again reports the first closing.
    let past = this_year - 1;
    let (_, first): (u16, serde_json::Value) = commune
        .post_json(
            &format!("/v1/registers/incoming/close?year={past}"),
            &serde_json::json!({}),
        )
        .await
        .unwrap();
    let (_, again): (u16, serde_json::Value) = commune
        .post_json(
            &format!("/v1/registers/incoming/close?year={past}"),
            &serde_json::json!({}),
        )
        .await
        .unwrap();
    assert_eq!(first["closed_at"], again["closed_at"]);
    let closed: IncomingRegisterView = commune
        .get_json(&format!("/v1/registers/incoming?year={past}"))
        .await
        .unwrap();
    assert!(closed.closed_at.is_some());
    // Nothing more can be entered in a closed register; the current one still takes
    // entries, and a year further back or ahead is refused.
    let late = PaperRegistration {
        year: Some(past),
        ..paper()
    };
    assert_code(
        commune
            .post_json::<_, PaperRegistered>("/v1/registers/incoming", &late)
            .await,
        "register_closed",
    );
    for year in [past - 1, this_year + 1] {
        let wrong = PaperRegistration {
            year: Some(year),
            ..paper()
        };
        assert_code(
            commune
                .post_json::<_, PaperRegistered>("/v1/registers/incoming", &wrong)
                .await,
            "request_invalid",
        );
    }
    let closed_after: IncomingRegisterView = commune
        .get_json(&format!("/v1/registers/incoming?year={past}"))
        .await
        .unwrap();
    assert!(closed_after.entries.is_empty());
    assert!(register(&server, COMMUNE).await.entries.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_number_used_twice_in_its_period_is_refused_naming_the_earlier_document() {
    let server = TestServer::start().await;
    let district = server.client(DISTRICT);
    let number = next_number();
    let mut first = TestDoc::new(DISTRICT, &[COMMUNE]);
    first.manifest["code"]["number"] = number.clone().into();
    send(&server, &first).await;

    // "CT 12" again, as a new document: refused at submission, the earlier one named.
    let mut again = TestDoc::new(DISTRICT, &["hn/cm/xuan-mai"]);
    again.manifest["code"]["number"] = number.clone().into();
    let sent_before: ListPage = district.get_json("/v1/sent").await.unwrap();
    let err = again.submit(&server, &district).await.unwrap_err();
    assert_eq!(err.api_code(), Some("number_in_use"), "{err}");
    assert!(err.to_string().contains(&first.id()), "{err}");
    assert!(
        err.to_string().contains(&format!("{number}-CT/HU")),
        "{err}"
    );
    assert_code(
        district
            .get_json::<serde_json::Value>(&format!("/v1/documents/{}", again.id()))
            .await,
        "document_not_found",
    );
    let sent_after: ListPage = district.get_json("/v1/sent").await.unwrap();
    assert_eq!(sent_before.items.len(), sent_after.items.len());

    // Two documents with one new number that both passed the early check (neither was
    // accepted yet): the transaction that accepts the second refuses it.
    let racing = next_number();
    let mut a = TestDoc::new(DISTRICT, &[COMMUNE]);
    let mut b = TestDoc::new(DISTRICT, &[COMMUNE]);
    a.manifest["code"]["number"] = racing.clone().into();
    b.manifest["code"]["number"] = racing.clone().into();
    assert_eq!(a.submit(&server, &district).await.unwrap().0, 201);
    assert_eq!(b.submit(&server, &district).await.unwrap().0, 201);
    a.upload(&district, a.payload.clone()).await.unwrap();
    let err = b.upload(&district, b.payload.clone()).await.unwrap_err();
    assert_eq!(err.api_code(), Some("number_in_use"), "{err}");
    assert!(err.to_string().contains(&a.id()), "{err}");
    let inbox: ListPage = server.client(COMMUNE).get_json("/v1/inbox").await.unwrap();
    assert!(inbox.items.iter().all(|i| i.id.to_string() != b.id()));

    // The same number with another notation, or another type, is another number.
    let mut other = TestDoc::new(DISTRICT, &[COMMUNE]);
    other.manifest["code"] = serde_json::json!({"number": number, "notation": "TB/HU"});
    other.manifest["doc_type"] = "TB".into();
    send(&server, &other).await;

    // A replacement of the first document may carry its number.
    let mut replacement = TestDoc::new(DISTRICT, &[COMMUNE]);
    replacement.manifest["code"]["number"] = number.clone().into();
    replacement.manifest["business"] = serde_json::json!({"kind": "replace", "target": first.id()});
    send(&server, &replacement).await;
    // But not a replacement of some other document.
    let mut wrong = TestDoc::new(DISTRICT, &[COMMUNE]);
    wrong.manifest["code"]["number"] = number.into();
    wrong.manifest["business"] = serde_json::json!({"kind": "replace", "target": other.id()});
    assert_code(wrong.submit(&server, &district).await, "number_in_use");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_writes_the_register_as_csv_and_pdf_in_the_legal_columns() {
    let server = TestServer::start().await;
    let doc = TestDoc::new(DISTRICT, &[COMMUNE]);
    send(&server, &doc).await;
    let id = doc.id().parse().unwrap();
    let commune = server.client(COMMUNE);
    let work = tempfile::tempdir().unwrap();
    commune
        .fetch_document(&id, &work.path().join("fetched"))
        .await
        .unwrap();
    commune.acknowledge(&id, st("01"), "").await.unwrap();
    let accepted = commune.acknowledge(&id, st("03"), "").await.unwrap();
    assert_eq!(accepted.incoming_number, Some(1));

    let profile = server.pki.org_profile(&COMMUNE.parse().unwrap());
    let run = |args: &[&str]| {
        let out = congvan_command()
            .arg("register")
            .args(args)
            .arg("--profile")
            .arg(&profile)
            .args(["--server", &server.url()])
            .run_ok();
        stdout(&out)
    };
    let out = run(&[
        "paper",
        "--author",
        "UBND huyện Chương Mỹ",
        "--code",
        "45/UBND",
        "--date",
        "2026-03-01",
        "--type",
        "CV",
        "--subject",
        "Về lịch tiếp công dân",
    ]);
    assert!(out.contains("số đến 2"), "{out}");
    let csv = work.path().join("so-den.csv");
    run(&["list", "--csv", csv.to_str().unwrap()]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0],
        "Ngày đến,Số đến,Tác giả,\"Số, ký hiệu văn bản\",Ngày tháng văn bản,\
         Tên loại và trích yếu nội dung văn bản,Đơn vị hoặc người nhận,Ngày chuyển,Ký nhận,Ghi chú"
    );
    let number = doc.manifest["code"]["number"].as_str().unwrap();
    assert!(
        lines[1].contains(&format!(",1,hn/cm,{number}-CT/HU,26/11/2026,")),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(",2,UBND huyện Chương Mỹ,45/UBND,01/03/2026,"),
        "{}",
        lines[2]
    );
    assert!(lines[2].ends_with("bản giấy"), "{}", lines[2]);

    // The same register as a PDF to print: read back with poppler's pdftotext.
    if !crate::support::require("pdftotext") {
        return;
    }
    let pdf = work.path().join("so-den.pdf");
    run(&["list", "--pdf", pdf.to_str().unwrap()]);
    let out = Command::new("pdftotext")
        .args(["-layout", pdf.to_str().unwrap(), "-"])
        .run_ok();
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN",
        "ĐẢNG ỦY THỊ TRẤN CHÚC SƠN",
        "Từ số 1 đến số 2",
        "Ngày đến",
        "Số đến",
        "Tác giả",
        "Ký nhận",
        "Ghi chú",
        "UBND huyện Chương Mỹ",
        "45/UBND",
        "01/03/2026",
        "26/11/2026",
        "bản giấy",
        &format!("{number}-CT/HU"),
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    // A font that is not there is named, with the package that provides it.
    let profile_arg = profile.to_str().unwrap().to_owned();
    let out = congvan_command()
        .args(["register", "list", "--pdf", pdf.to_str().unwrap()])
        .args(["--font", "/nonexistent/font.ttf", "--profile", &profile_arg])
        .args(["--server", &server.url()])
        .run_fails();
    assert!(
        stderr(&out).contains("fonts-dejavu-core"),
        "{}",
        stderr(&out)
    );
}
