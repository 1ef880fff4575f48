//! edXML against real servers and the real binary: an export imported back (into
//! another server, as from an e-office system) is an equal document; an envelope written
//! the way e-office systems write them is sent with its signature carried along; status
//! packets carry the receipts; hostile XML is refused with its code and sends nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use congvan::client::send::SendRequest;
use congvan::document::manifest::{Classification, Manifest, Urgency};
use congvan::edxml;
use uuid::Uuid;

use crate::support::{SAMPLE_ORGS, TestServer, assert_code, st};

/// Illustrative government identifier codes for the sample tree (the shape of real ones:
/// four groups, province Hà Nội is H26).
const CODES: [(&str, &str); 4] = [
    ("hn", "000.00.00.H26"),
    ("hn/cm", "000.00.31.H26"),
    ("hn/cm/chuc-son", "000.01.31.H26"),
    ("hn/cm/xuan-mai", "000.02.31.H26"),
];

/// A server whose tree gives the sample organisations their codes (added only where the
/// sample has none), and the directory holding that tree.
async fn server_with_codes() -> (TestServer, tempfile::TempDir) {
    let mut tree: toml::Value = toml::from_str(SAMPLE_ORGS).unwrap();
    for org in tree["org"].as_array_mut().unwrap() {
        let id = org["id"].as_str().unwrap().to_owned();
        if let Some((_, code)) = CODES.iter().find(|(i, _)| *i == id) {
            let table = org.as_table_mut().unwrap();
            table
                .entry("code")
                .or_insert(toml::Value::String((*code).into()));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orgs-with-codes.toml");
    std::fs::write(&path, toml::to_string(&tree).unwrap()).unwrap();
    (TestServer::start_with(|c| c.orgs = path).await, dir)
}

fn congvan(server: &TestServer, org: &str, args: &[&str]) -> Output {
    let profile = server.pki.org_profile(&org.parse().unwrap());
    Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args(args)
        .arg("--profile")
        .arg(&profile)
        .args(["--server", &server.url()])
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The manifest the server holds for `id`, as its sender sees it.
async fn manifest(server: &TestServer, id: &Uuid) -> Manifest {
    let view: congvan::api::DocumentView = server
        .client("hn/cm")
        .get_json(&format!("/v1/documents/{id}"))
        .await
        .unwrap();
    serde_json::from_str(view.manifest.get()).unwrap()
}

async fn sent_count(server: &TestServer) -> usize {
    let page: congvan::api::ListPage = server
        .client("hn/cm")
        .get_json("/v1/sent?limit=500")
        .await
        .unwrap();
    page.items.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edxml_export_imported_back_is_an_equal_document() {
    let (first, _tree) = server_with_codes().await;
    let work = tempfile::tempdir().unwrap();
    let a = work.path().join("Chỉ thị 12.pdf");
    std::fs::write(&a, b"%PDF-1.4 chi thi").unwrap();
    let b = work.path().join("phụ lục & danh sách.txt");
    std::fs::write(&b, "Danh sách <đơn vị> \"thực hiện\"\r\n".repeat(200)).unwrap();
    let request = SendRequest {
        to: ["hn/cm/chuc-son", "hn/cm/xuan-mai"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect(),
        urgency: Urgency::Khan,
        steering: 2,
        due: Some("2026-12-31".into()),
        place: "Chương Mỹ".into(),
        ..SendRequest::new(
            "CT",
            "12",
            "CT/HU",
            "Về đẩy mạnh chuyển đổi số & cải cách hành chính",
            vec![a, b],
        )
    };
    let sent = first.client("hn/cm").send_document(&request).await.unwrap();
    let cs = first.client("hn/cm/chuc-son");
    cs.fetch_document(&sent.id, &work.path().join("cs"))
        .await
        .unwrap();
    cs.acknowledge(&sent.id, st("03"), "Đã vào sổ")
        .await
        .unwrap();

    let file = work.path().join("ct12.edxml");
    let id = sent.id.to_string();
    let printed = ok(&tokio::task::block_in_place(|| {
        congvan(
            &first,
            "hn/cm",
            &["edxml", "export", &id, "--out", file.to_str().unwrap()],
        )
    }));
    assert!(printed.contains("ct12.edxml"), "{printed}");
    let bytes = std::fs::read(&file).unwrap();
    let envelope = edxml::read_envelope(&bytes, &edxml::Limits::default()).unwrap();
    assert_eq!(envelope.from.organ_id, "000.00.31.H26");
    assert_eq!(
        envelope.document_id,
        format!(
            "000.00.31.H26,{},12/CT/HU",
            edxml::edxml_date(&manifest(&first, &sent.id).await.promulgated.date)
        )
    );
    assert_eq!(envelope.type_name, "Chỉ thị");
    assert_eq!(envelope.business.doc_type, 0);
    assert_eq!(envelope.priority, u8::from(Urgency::Khan));
    // The receipts travel as status packets: Chúc Sơn's 01 and 03.
    let packets: Vec<edxml::StatusPacket> = {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(format!("{}.status", file.display()))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| {
                edxml::read_status(&std::fs::read(p).unwrap(), &edxml::Limits::default()).unwrap()
            })
            .collect()
    };
    let codes: Vec<(&str, &str)> = packets
        .iter()
        .map(|p| (p.from.organ_id.as_str(), p.status_code.as_str()))
        .collect();
    assert_eq!(codes, [("000.01.31.H26", "01"), ("000.01.31.H26", "03")]);
    assert_eq!(packets[1].description, "Đã vào sổ");
    assert_eq!(packets[1].response_for.document_id, envelope.document_id);

    // Into another server, as an e-office system's export would come in.
    let (second, _tree2) = server_with_codes().await;
    let out = ok(&tokio::task::block_in_place(|| {
        congvan(
            &second,
            "hn/cm",
            &["send", "--edxml", file.to_str().unwrap()],
        )
    }));
    let imported: Uuid = out.trim().parse().unwrap();
    let original = manifest(&first, &sent.id).await;
    let copy = manifest(&second, &imported).await;
    let same = |m: &Manifest| {
        let mut m = m.clone();
        m.id = Uuid::nil();
        m.created_at = String::new();
        m
    };
    assert_eq!(same(&copy), same(&original));
    // Signed with congvan's two signatures: the recipient's client verifies it.
    let fetched = second
        .client("hn/cm/xuan-mai")
        .fetch_document(&imported, &work.path().join("xm"))
        .await
        .unwrap();
    assert_eq!(fetched.signers.len(), 2);
    assert_eq!(
        std::fs::read(&fetched.files[1]).unwrap(),
        "Danh sách <đơn vị> \"thực hiện\"\r\n"
            .repeat(200)
            .as_bytes()
    );
}

/// An envelope the way e-office systems write it: CRLF line endings, a root `edXML`
/// holding the envelope and, beside it, the files; `Bussiness`; a `Signature` in the
/// edXML namespace; base64 in lines.
fn e_office_envelope(from: &str, to: &[&str], subject: &str, extra: &str) -> String {
    let file = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "Nội dung công văn số 15".repeat(40),
    );
    let lines: Vec<&str> = file
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let to: String = to
        .iter()
        .map(|t| format!("<edXML:To><edXML:OrganId>{t}</edXML:OrganId><edXML:OrganName>Đơn vị</edXML:OrganName></edXML:To>"))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">
<edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
<edXML:edXMLHeader>
<edXML:MessageHeader>
<edXML:From><edXML:OrganId>{from}</edXML:OrganId><edXML:OrganName>Huyện ủy Chương Mỹ</edXML:OrganName></edXML:From>
{to}
<edXML:DocumentId>{from},2026/11/30,15/CV-HU</edXML:DocumentId>
<edXML:Code><edXML:CodeNumber>15</edXML:CodeNumber><edXML:CodeNotation>CV/HU</edXML:CodeNotation></edXML:Code>
<edXML:PromulgationInfo><edXML:Place>Chương Mỹ</edXML:Place><edXML:PromulgationDate>2026/11/30</edXML:PromulgationDate></edXML:PromulgationInfo>
<edXML:DocumentType><edXML:Type>1</edXML:Type><edXML:TypeName>Công văn</edXML:TypeName></edXML:DocumentType>
<edXML:Subject>{subject}</edXML:Subject>
<edXML:SignerInfo><edXML:Competence>TM.</edXML:Competence><edXML:Position>Phó Bí thư Thường trực Huyện ủy</edXML:Position><edXML:FullName>Nguyễn Thị Hạnh</edXML:FullName></edXML:SignerInfo>
<edXML:OtherInfo><edXML:Priority>1</edXML:Priority></edXML:OtherInfo>
<edXML:SteeringType>1</edXML:SteeringType>
{extra}
</edXML:MessageHeader>
<edXML:TraceHeaderList>
<edXML:Bussiness><edXML:BussinessDocType>0</edXML:BussinessDocType><edXML:BussinessDocReason>Văn bản điện tử mới</edXML:BussinessDocReason></edXML:Bussiness>
</edXML:TraceHeaderList>
<Signature><SignedInfo><Reference URI=""><DigestValue>AAAA</DigestValue></Reference></SignedInfo><SignatureValue>QkJCQg==</SignatureValue></Signature>
</edXML:edXMLHeader>
<edXML:edXMLBody><edXML:edXMLManifest version="1.0"><edXML:Reference><edXML:ContentId>cid:7</edXML:ContentId><edXML:ContentType>application/pdf</edXML:ContentType><edXML:AttachmentName>cong-van-15.pdf</edXML:AttachmentName></edXML:Reference></edXML:edXMLManifest></edXML:edXMLBody>
</edXML:edXMLEnvelope>
<AttachmentEncoded><Attachment><ContentId>cid:7</ContentId><AttachmentName>cong-van-15.pdf</AttachmentName><ContentType>application/pdf</ContentType>
<edXML:ContentTransferEncoded xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
{}
</edXML:ContentTransferEncoded></Attachment></AttachmentEncoded>
</edXML>
"#,
        lines.join("\n")
    )
    .replace('\n', "\r\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_e_office_envelope_is_sent_signed_with_its_signature_carried_along() {
    let (server, _tree) = server_with_codes().await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cv15.edxml");
    std::fs::write(
        &file,
        e_office_envelope(
            "000.00.31.H26",
            &["000.01.31.H26", "000.02.31.H26"],
            "V/v triển khai &amp; báo cáo kết quả",
            "",
        ),
    )
    .unwrap();
    let out = ok(&tokio::task::block_in_place(|| {
        congvan(
            &server,
            "hn/cm",
            &["send", "--edxml", file.to_str().unwrap()],
        )
    }));
    let id: Uuid = out.trim().parse().unwrap();
    let m = manifest(&server, &id).await;
    assert_eq!(m.subject, "V/v triển khai & báo cáo kết quả");
    assert_eq!(
        (m.code.number.as_str(), m.code.notation.as_str()),
        ("15", "CV/HU")
    );
    assert_eq!(m.doc_type, "CV");
    assert_eq!(m.promulgated.date, "2026-11-30");
    assert_eq!(m.urgency, Urgency::Khan);
    assert_eq!(
        m.recipients.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        ["hn/cm/chuc-son", "hn/cm/xuan-mai"]
    );
    let fetched = server
        .client("hn/cm/chuc-son")
        .fetch_document(&id, &work.path().join("cs"))
        .await
        .unwrap();
    let names: Vec<String> = fetched
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["cong-van-15.pdf", edxml::SIGNATURE_ATTACHMENT]);
    assert_eq!(
        std::fs::read(&fetched.files[0]).unwrap(),
        "Nội dung công văn số 15".repeat(40).as_bytes()
    );
    let signature = std::fs::read_to_string(&fetched.files[1]).unwrap();
    assert!(
        signature.starts_with("<Signature>") && signature.ends_with("</Signature>"),
        "{signature}"
    );
}

/// Runs `send --edxml` on `text` as hn/cm and expects refusal `code`, with nothing sent.
async fn refused(server: &TestServer, dir: &Path, name: &str, text: &[u8], code: &str) {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    let before = sent_count(server).await;
    let out = tokio::task::block_in_place(|| {
        congvan(
            server,
            "hn/cm",
            &["send", "--edxml", file.to_str().unwrap()],
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{name} was accepted");
    assert!(stderr.contains(&format!("[{code}]")), "{name}: {stderr}");
    assert_eq!(sent_count(server).await, before, "{name} sent something");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_and_unmappable_edxml_is_refused_and_sends_nothing() {
    let (server, _tree) = server_with_codes().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let good = e_office_envelope("000.00.31.H26", &["000.01.31.H26"], "Công văn", "");

    // Entity expansion (billion laughs), external entities (XXE): both need a DTD.
    let laughs = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE edXML [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>\n{}",
        good.replace("<edXML:Subject>Công văn", "<edXML:Subject>&c;")
            .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
    );
    refused(&server, dir, "laughs.edxml", laughs.as_bytes(), "edxml_dtd").await;
    let xxe = format!(
        "<!DOCTYPE edXML [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
        good.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
    );
    refused(&server, dir, "xxe.edxml", xxe.as_bytes(), "edxml_dtd").await;
    // An undeclared entity is not expanded to nothing: it is refused.
    let entity = good.replace("<edXML:Subject>Công văn", "<edXML:Subject>&xxe;");
    refused(
        &server,
        dir,
        "entity.edxml",
        entity.as_bytes(),
        "edxml_entity",
    )
    .await;
    // Deep nesting.
    let deep = good.replace(
        "<edXML:SteeringType>",
        &format!(
            "{}{}<edXML:SteeringType>",
            "<x>".repeat(5000),
            "</x>".repeat(5000)
        ),
    );
    refused(
        &server,
        dir,
        "deep.edxml",
        deep.as_bytes(),
        "edxml_too_deep",
    )
    .await;
    // A huge file (its base64 would be over the limit) is refused before it is read.
    let huge = dir.join("huge.edxml");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(129 << 20).unwrap();
    drop(f);
    let before = sent_count(&server).await;
    let out = tokio::task::block_in_place(|| {
        congvan(
            &server,
            "hn/cm",
            &["send", "--edxml", huge.to_str().unwrap()],
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("[{}]", "edxml_too_large")),
        "{stderr}"
    );
    assert_eq!(sent_count(&server).await, before);
    // Not XML, not edXML, missing fields.
    refused(
        &server,
        dir,
        "cut.edxml",
        &good.as_bytes()[..good.len() / 2],
        "edxml_malformed",
    )
    .await;
    refused(
        &server,
        dir,
        "empty-subject.edxml",
        good.replace(">Công văn</edXML:Subject>", "></edXML:Subject>")
            .as_bytes(),
        "edxml_invalid",
    )
    .await;
    refused(
        &server,
        dir,
        "bad-base64.edxml",
        good.replace(
            "\r\n</edXML:ContentTransferEncoded>",
            "@@@</edXML:ContentTransferEncoded>",
        )
        .as_bytes(),
        "edxml_invalid",
    )
    .await;
    // Valid edXML that congvan cannot map: another sender, an unknown recipient code, an
    // unknown document type.
    let other = e_office_envelope("000.01.31.H26", &["000.00.31.H26"], "Báo cáo", "");
    refused(
        &server,
        dir,
        "other-sender.edxml",
        other.as_bytes(),
        "edxml_unmapped",
    )
    .await;
    let stranger = e_office_envelope("000.00.31.H26", &["000.99.99.H99"], "Công văn", "");
    refused(
        &server,
        dir,
        "stranger.edxml",
        stranger.as_bytes(),
        "edxml_unmapped",
    )
    .await;
    let kind = good.replace("<edXML:TypeName>Công văn", "<edXML:TypeName>Điện mật");
    refused(
        &server,
        dir,
        "type.edxml",
        kind.as_bytes(),
        "edxml_unmapped",
    )
    .await;

    // A classified document is not exported: edXML would carry its files in the clear.
    let secret = dir.join("mat.txt");
    std::fs::write(&secret, "mật").unwrap();
    let sent = server
        .client("hn/cm")
        .send_document(&SendRequest {
            to: vec!["hn/cm/chuc-son".parse().unwrap()],
            classification: Classification::Mat,
            ..SendRequest::new("CV", "16", "CV/HU", "Mật", vec![secret])
        })
        .await
        .unwrap();
    assert_code(
        server
            .client("hn/cm")
            .edxml_export(&sent.id, &dir.join("mat.edxml"))
            .await,
        "edxml_unmapped",
    );
    assert!(!dir.join("mat.edxml").exists());
}
