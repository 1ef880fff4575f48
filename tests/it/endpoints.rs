//! The typed client (`client::endpoints`) against a real server: every route has a method,
//! each method's path and query string are ones the server accepts (it refuses unknown
//! query fields), and each answer decodes into its `api` type. One document travels the
//! whole way: submit, upload, listings, fetch, receipt, status, log and proofs, registers.

use congvan::api::{DELIVERY_RECEIPT_TYPE, DeliveryReceipt, SubmitRequest};
use congvan::client::endpoints::ListQuery;
use congvan::registers::PaperRegistration;

use crate::support::{TestDoc, TestServer, assert_code};

const DISTRICT: &str = "hn/cm";
const COMMUNE: &str = "hn/cm/chuc-son";

#[tokio::test(flavor = "multi_thread")]
async fn the_typed_client_reaches_every_route() {
    let server = TestServer::start().await;
    let district = server.client(DISTRICT);
    let commune = server.client(COMMUNE);

    // Service and identity routes.
    assert!(district.healthz().await.unwrap().contains("ok"));
    assert!(!district.metrics().await.unwrap().is_empty());
    assert_eq!(district.whoami().await.unwrap().id, DISTRICT);
    assert!(!district.get_server_keys().await.unwrap().keys.is_empty());
    district.get_directory().await.unwrap();
    assert!(!district.crls().await.unwrap().crls.is_empty());

    // Submit, then upload: the typed submit answers 201 without a receipt (no inline
    // payload), the upload with one.
    let doc = TestDoc::new(DISTRICT, &[COMMUNE]);
    let id: uuid::Uuid = doc.id().parse().unwrap();
    let request: SubmitRequest =
        serde_json::from_value(doc.body(&doc.signatures(&server))).unwrap();
    let (status, answer) = district.submit(&request).await.unwrap();
    assert_eq!((status, answer.receipt.is_none()), (201, true));
    let (status, uploaded) = district
        .upload(
            &id,
            reqwest::Body::from(doc.payload.clone()),
            doc.payload.len() as u64,
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    assert_eq!(uploaded.receipt.statement["document_id"], id.to_string());

    // Listings, with and without query fields.
    let new = ListQuery {
        state: Some("new".into()),
        limit: Some(10),
        before: None,
    };
    let inbox = commune.inbox(&new).await.unwrap();
    assert!(inbox.items.iter().any(|i| i.id == id));
    let first = commune.inbox(&ListQuery::limit(1)).await.unwrap();
    assert_eq!(first.items.len(), 1);
    let sent = district.sent(&ListQuery::default()).await.unwrap();
    assert!(sent.items.iter().any(|i| i.id == id));
    assert_code(
        district
            .inbox(&ListQuery {
                state: Some("nonsense".into()),
                ..ListQuery::default()
            })
            .await,
        "request_invalid",
    );

    // The document, its payload, a signed arrival receipt, and its status.
    let view = commune.document(&id).await.unwrap();
    let payload = commune.payload(&id).await.unwrap().bytes().await.unwrap();
    assert_eq!(payload.as_ref(), doc.payload.as_slice());
    let receipt = DeliveryReceipt {
        kind: DELIVERY_RECEIPT_TYPE.to_owned(),
        document_id: id,
        recipient: COMMUNE.to_owned(),
        manifest_sha256: view.manifest_sha256.clone(),
        payload_sha256: congvan::document::sha256_hex(&doc.payload),
        status: "01".to_owned(),
        time: congvan::api::now_rfc3339(),
        note: String::new(),
    };
    let signer = commune.org_signer().unwrap();
    let signed = congvan::client::fetch::signed_receipt(&signer.org_key, receipt).unwrap();
    let (status, _) = commune.post_receipt(&id, &signed).await.unwrap();
    assert_eq!(status, 201);
    let status = district.status(&id).await.unwrap();
    assert_eq!(status.recipients[0].status.as_deref(), Some("01"));

    // The log: checkpoint, entries by range and by document, and the three proofs.
    let officer =
        congvan::client::Client::new(&server.auditor_profile(DISTRICT), &server.url()).unwrap();
    let note = officer.log_checkpoint().await.unwrap();
    let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    assert!(size >= 3, "{note}");
    let entries = officer.log_entries(0, size).await.unwrap();
    assert!(!entries.entries.is_empty());
    let about = officer.log_entries_of(&id).await.unwrap();
    assert!(!about.entries.is_empty());
    let index = about.entries[0].index;
    officer.inclusion_proof(index, size).await.unwrap();
    officer.consistency_proof(1, size).await.unwrap();
    officer.range_proof(0, 1, size).await.unwrap();

    // Registers: read (this year and a named year), register a paper document, close a
    // past year.
    let register = commune.incoming_register(None).await.unwrap();
    let paper = PaperRegistration {
        author: "UBND huyện Chương Mỹ".into(),
        code: "45/UBND".into(),
        date: "2026-03-01".into(),
        doc_type: "CV".into(),
        subject: "Về lịch tiếp công dân, quý II".into(),
        assigned_to: String::new(),
        note: String::new(),
        year: None,
    };
    let (status, registered) = commune.register_paper(&paper).await.unwrap();
    assert_eq!(status, 201);
    let again = commune
        .incoming_register(Some(register.year))
        .await
        .unwrap();
    assert!(again.entries.iter().any(|e| e.number == registered.number));
    let (_, closed) = commune.close_register(register.year - 1).await.unwrap();
    assert_eq!(closed.year, register.year - 1);
    assert_code(
        commune.close_register(register.year).await,
        "register_year_open",
    );
}
