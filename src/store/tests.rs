//! Unit tests of the store itself, on a temporary directory: records written before they
//! were typed still decode to the same bytes, and documents, acceptances, fetches and
//! receipts are written once, listed, and refused without a trace.

#![allow(clippy::unwrap_used, reason = "tests fail loudly by design")]

use serde::{Deserialize, Serialize};

use super::*;
use crate::api::{DELIVERY_RECEIPT_TYPE, DeliveryReceipt};
use crate::document::manifest::{Classification, Urgency};
use crate::document::receipt::SignedReceipt;
use crate::document::status;
use crate::document::{DocSignature, Role};
use crate::notary::{Signed, StatementSignature};
use crate::seal::policy::SealMark;

/// `DocumentRecord` as it was declared before its fields were typed: the form every
/// record already on disk was written in.
#[derive(Serialize, Deserialize)]
struct OldDocumentRecord {
    id: Uuid,
    sender: String,
    recipients: Vec<String>,
    classification: String,
    urgency: u8,
    manifest: String,
    manifest_sha256: String,
    signatures: serde_json::Value,
    signers: Vec<OldSignerRecord>,
    payload_sha256: String,
    payload_size: u64,
    submitted_at: String,
    state: DocState,
    accepted_at: Option<String>,
    receipt: Option<serde_json::Value>,
    #[serde(default)]
    log_index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_with: Option<SealMark>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ocsp: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outgoing: Option<OutgoingNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    business: Option<BusinessRef>,
}

#[derive(Serialize, Deserialize)]
struct OldSignerRecord {
    role: String,
    subject: String,
    fingerprint_sha256: String,
}

#[derive(Serialize, Deserialize)]
struct OldReceiptRecord {
    status: String,
    time: String,
    note: String,
    recorded_at: String,
    receipt: serde_json::Value,
    #[serde(default)]
    log_index: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct OldDeliveryRecord {
    first_fetched_at: Option<String>,
    last_fetched_at: Option<String>,
    fetch_count: u64,
    receipts: Vec<OldReceiptRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    incoming_number: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct OldLinkRecord {
    kind: String,
    document_id: Uuid,
    recipients: Vec<String>,
    accepted_at: String,
}

fn signature() -> DocSignature {
    DocSignature::raw(
        Role::Organization,
        crate::pki::signing::RawAlgorithm::EcdsaP256Sha256,
        b"signature bytes",
        &[b"leaf".to_vec(), b"ca".to_vec()],
    )
}

fn server_receipt(index: u64) -> Signed {
    Signed {
        statement: serde_json::json!({ "type": "t", "log_index": index, "a": [1, 2] }),
        signature: StatementSignature {
            key_id: "k1".into(),
            alg: "ed25519".into(),
            value: "c2ln".into(),
        },
    }
}

fn record(payload: &[u8]) -> DocumentRecord {
    let sha = crate::document::sha256_hex(payload);
    DocumentRecord {
        id: Uuid::now_v7(),
        sender: "hn/cm".parse().unwrap(),
        recipients: vec![
            "hn/cm/chuc-son".parse().unwrap(),
            "hn/cm/ba-vi".parse().unwrap(),
        ],
        classification: Classification::Thuong,
        urgency: Urgency::try_from(2).unwrap(),
        manifest: "{}".into(),
        manifest_sha256: "m".repeat(64),
        signatures: vec![signature()],
        signers: vec![SignerRecord {
            role: Role::Organization,
            subject: "CN=Huyện ủy".into(),
            fingerprint_sha256: "f".repeat(64),
        }],
        payload_sha256: sha,
        payload_size: payload.len() as u64,
        submitted_at: "2026-12-01T00:00:00Z".into(),
        state: DocState::AwaitingPayload,
        accepted_at: None,
        receipt: None,
        log_index: None,
        sealed_with: None,
        ocsp: vec!["b2NzcA==".into()],
        outgoing: Some(OutgoingNumber {
            key: "2026\u{0}12\u{0}QĐ/HU".into(),
            code: "12-QĐ/HU".into(),
            amends: None,
        }),
        business: None,
    }
}

fn delivery_receipt(document: &DocumentRecord, status: &str) -> DeliveryReceipt {
    DeliveryReceipt {
        kind: DELIVERY_RECEIPT_TYPE.to_owned(),
        document_id: document.id,
        recipient: "hn/cm/chuc-son".into(),
        manifest_sha256: document.manifest_sha256.clone(),
        payload_sha256: document.payload_sha256.clone(),
        status: status.into(),
        time: "2026-12-01T01:00:00Z".into(),
        note: "ghi chú".into(),
    }
}

fn receipt_record(document: &DocumentRecord, status: ReceiptStatus) -> ReceiptRecord {
    ReceiptRecord {
        status,
        time: "2026-12-01T01:00:00Z".into(),
        note: "ghi chú".into(),
        recorded_at: "2026-12-01T01:00:01Z".into(),
        receipt: SignedReceipt {
            receipt: delivery_receipt(document, status.code()),
            signature: signature(),
        },
        log_index: None,
    }
}

/// Records written in the old, untyped form decode into the typed records, and the typed
/// records encode back to exactly the same bytes: nothing on disk changes.
#[test]
fn records_written_before_typing_decode_and_encode_to_the_same_bytes() {
    let typed = DocumentRecord {
        state: DocState::Accepted,
        accepted_at: Some("2026-12-01T00:00:01Z".into()),
        receipt: Some(server_receipt(7)),
        log_index: Some(7),
        business: Some(BusinessRef {
            kind: "update".into(),
            target: Uuid::now_v7(),
        }),
        ..record(b"payload")
    };
    let old = OldDocumentRecord {
        id: typed.id,
        sender: "hn/cm".into(),
        recipients: vec!["hn/cm/chuc-son".into(), "hn/cm/ba-vi".into()],
        classification: "thuong".into(),
        urgency: 2,
        manifest: typed.manifest.clone(),
        manifest_sha256: typed.manifest_sha256.clone(),
        // The old server stored what `serde_json::to_value` made of the request's
        // signatures and of its own receipt.
        signatures: serde_json::to_value(vec![signature()]).unwrap(),
        signers: vec![OldSignerRecord {
            role: "organization".into(),
            subject: "CN=Huyện ủy".into(),
            fingerprint_sha256: "f".repeat(64),
        }],
        payload_sha256: typed.payload_sha256.clone(),
        payload_size: typed.payload_size,
        submitted_at: typed.submitted_at.clone(),
        state: DocState::Accepted,
        accepted_at: typed.accepted_at.clone(),
        receipt: Some(serde_json::to_value(server_receipt(7)).unwrap()),
        log_index: Some(7),
        sealed_with: None,
        ocsp: typed.ocsp.clone(),
        outgoing: typed.outgoing.clone(),
        business: typed.business.clone(),
    };
    let old_bytes = serde_json::to_vec(&old).unwrap();
    let decoded = decode(&typed.id, &old_bytes).unwrap();
    assert_eq!(decoded, typed);
    assert_eq!(encode(&decoded).unwrap(), old_bytes);
    assert_eq!(encode(&typed).unwrap(), old_bytes);

    // A document still awaiting its payload (no receipt: `null`).
    let waiting = record(b"x");
    let old_waiting = OldDocumentRecord {
        state: DocState::AwaitingPayload,
        accepted_at: None,
        receipt: None,
        log_index: None,
        business: None,
        id: waiting.id,
        payload_sha256: waiting.payload_sha256.clone(),
        payload_size: 1,
        ..old
    };
    let old_bytes = serde_json::to_vec(&old_waiting).unwrap();
    assert_eq!(encode(&waiting).unwrap(), old_bytes);
    assert_eq!(decode(&waiting.id, &old_bytes).unwrap(), waiting);

    // A delivery with a receipt, as the old server built it: `json!` of the statement
    // and the signature.
    let document = record(b"y");
    let typed_delivery = DeliveryRecord {
        first_fetched_at: Some("a".into()),
        last_fetched_at: Some("b".into()),
        fetch_count: 2,
        receipts: vec![ReceiptRecord {
            log_index: Some(9),
            ..receipt_record(&document, ReceiptStatus::Arrived)
        }],
        incoming_number: Some(4),
    };
    let old_delivery = OldDeliveryRecord {
        first_fetched_at: Some("a".into()),
        last_fetched_at: Some("b".into()),
        fetch_count: 2,
        receipts: vec![OldReceiptRecord {
            status: "01".into(),
            time: "2026-12-01T01:00:00Z".into(),
            note: "ghi chú".into(),
            recorded_at: "2026-12-01T01:00:01Z".into(),
            receipt: serde_json::json!({
                "receipt": serde_json::to_value(delivery_receipt(&document, "01")).unwrap(),
                "signature": signature(),
            }),
            log_index: Some(9),
        }],
        incoming_number: Some(4),
    };
    let old_bytes = serde_json::to_vec(&old_delivery).unwrap();
    let decoded: DeliveryRecord = serde_json::from_slice(&old_bytes).unwrap();
    assert_eq!(decoded, typed_delivery);
    assert_eq!(serde_json::to_vec(&typed_delivery).unwrap(), old_bytes);

    let link = LinkRecord {
        kind: "recall".into(),
        document_id: document.id,
        recipients: document.recipients.clone(),
        accepted_at: "t".into(),
    };
    let old_link = OldLinkRecord {
        kind: "recall".into(),
        document_id: document.id,
        recipients: vec!["hn/cm/chuc-son".into(), "hn/cm/ba-vi".into()],
        accepted_at: "t".into(),
    };
    let old_bytes = serde_json::to_vec(&old_link).unwrap();
    assert_eq!(serde_json::to_vec(&link).unwrap(), old_bytes);
    assert_eq!(
        serde_json::from_slice::<LinkRecord>(&old_bytes).unwrap(),
        link
    );
}

/// A stored record naming an organisation id that is not one, or a status that is not
/// an edXML status, is refused as corrupt rather than read as something else.
#[test]
fn a_record_with_an_impossible_value_is_corrupt() {
    let document = record(b"z");
    let mut value = serde_json::to_value(&document).unwrap();
    value["sender"] = serde_json::json!("Not An Id");
    let bytes = serde_json::to_vec(&value).unwrap();
    assert!(matches!(
        decode(&document.id, &bytes),
        Err(StoreError::Corrupt { .. })
    ));
    let mut value = serde_json::to_value(&document).unwrap();
    value["classification"] = serde_json::json!("mat_lam");
    let bytes = serde_json::to_vec(&value).unwrap();
    assert!(decode(&document.id, &bytes).is_err());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_document_is_inserted_once_accepted_once_and_listed() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let document = record(b"payload");
    assert!(matches!(
        rt.block_on(store.insert_document(&document)).unwrap(),
        Inserted::Created
    ));
    // The same id again: nothing is written, the stored record comes back.
    let other = DocumentRecord {
        manifest_sha256: "o".repeat(64),
        ..document.clone()
    };
    match rt.block_on(store.insert_document(&other)).unwrap() {
        Inserted::Exists(stored) => assert_eq!(*stored, document),
        Inserted::Created => panic!("a second record under one id"),
    }
    assert_eq!(store.document(&document.id).unwrap().unwrap(), document);
    // Not accepted yet: in no inbox, in no sent list.
    assert!(store.inbox("hn/cm/chuc-son", None, 10).unwrap().is_empty());
    assert!(store.sent("hn/cm", None, 10).unwrap().is_empty());

    let (accepted, index) = rt
        .block_on(
            store.accept_payload(&document.id, "2026-12-01T00:00:05Z", |i| {
                Ok(server_receipt(i))
            }),
        )
        .unwrap();
    assert_eq!(accepted.state, DocState::Accepted);
    assert_eq!(accepted.receipt, Some(server_receipt(index)));
    assert_eq!(accepted.log_index, Some(index));
    assert_eq!(store.document(&document.id).unwrap().unwrap(), accepted);
    let size = store.log().size().unwrap();
    assert_eq!(size, index + 1);

    // Accepting twice is refused and writes nothing.
    assert!(matches!(
        rt.block_on(store.accept_payload(&document.id, "t", |i| Ok(server_receipt(i)))),
        Err(StoreError::State(_))
    ));
    assert_eq!(store.log().size().unwrap(), size);
    // So is accepting a document that does not exist.
    assert!(matches!(
        rt.block_on(store.accept_payload(&Uuid::now_v7(), "t", |i| Ok(server_receipt(i)))),
        Err(StoreError::State(_))
    ));

    for recipient in ["hn/cm/chuc-son", "hn/cm/ba-vi"] {
        let inbox = store.inbox(recipient, None, 10).unwrap();
        assert_eq!(inbox.len(), 1, "{recipient}");
        assert_eq!(inbox[0].1, accepted);
    }
    assert_eq!(store.sent("hn/cm", None, 10).unwrap()[0].1, accepted);
    assert!(store.inbox("hn/cm", None, 10).unwrap().is_empty());
}

#[test]
fn an_inline_document_is_accepted_in_one_commit_and_its_small_payload_kept() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let document = record(b"inline");
    let (stored, index) = rt
        .block_on(
            store.insert_accepted(&document, None, Some(b"inline"), "t", |i| {
                Ok(server_receipt(i))
            }),
        )
        .unwrap()
        .unwrap();
    assert_eq!(stored.receipt, Some(server_receipt(index)));
    assert_eq!(
        store.small_payload(&document.payload_sha256).unwrap(),
        Some(b"inline".to_vec())
    );
    // The same id again returns the stored record and writes nothing.
    let size = store.log().size().unwrap();
    let again = rt
        .block_on(store.insert_accepted(&document, None, None, "t", |i| Ok(server_receipt(i))))
        .unwrap();
    assert!(matches!(again, Err(existing) if *existing == stored));
    assert_eq!(store.log().size().unwrap(), size);
    // A payload too large for the database is refused before anything is written.
    let big = vec![0u8; SMALL_PAYLOAD_BYTES_MAX as usize + 1];
    let other = record(&big);
    assert!(matches!(
        rt.block_on(
            store.insert_accepted(&other, None, Some(&big), "t", |i| Ok(server_receipt(i)))
        ),
        Err(StoreError::State(_))
    ));
    assert!(store.document(&other.id).unwrap().is_none());
}

#[test]
fn receipts_are_judged_in_the_transaction_and_a_refusal_writes_nothing() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let document = record(b"r");
    rt.block_on(store.insert_accepted(&document, None, Some(b"r"), "t", |i| Ok(server_receipt(i))))
        .unwrap()
        .unwrap();
    let stored = store.document(&document.id).unwrap().unwrap();
    let recipient = "hn/cm/chuc-son";
    let judge = |new: ReceiptStatus| {
        move |delivery: &DeliveryRecord| {
            let recorded: Vec<ReceiptStatus> = delivery.receipts.iter().map(|r| r.status).collect();
            status::judge(&recorded, delivery.fetch_count > 0, None, new)
        }
    };
    let write = |status: ReceiptStatus| {
        rt.block_on(store.record_receipt(
            &stored,
            recipient,
            receipt_record(&stored, status),
            judge(status),
        ))
    };

    // 01 before any fetch is refused, and nothing is written.
    let size = store.log().size().unwrap();
    assert!(matches!(
        write(ReceiptStatus::Arrived),
        Err(StoreError::Status(status::StatusRefusal::NotFetched(_)))
    ));
    assert_eq!(
        store.delivery(&stored.id, recipient).unwrap(),
        DeliveryRecord::default()
    );
    assert_eq!(store.log().size().unwrap(), size);

    let (delivery, _) = rt
        .block_on(store.record_fetch(&stored, recipient, "t"))
        .unwrap();
    assert_eq!(delivery.fetch_count, 1);
    let ReceiptWrite::Recorded(delivery, index) = write(ReceiptStatus::Arrived).unwrap() else {
        panic!("01 after a fetch is recorded");
    };
    assert_eq!(delivery.receipts.len(), 1);
    assert_eq!(delivery.receipts[0].status, ReceiptStatus::Arrived);
    assert_eq!(delivery.receipts[0].log_index, Some(index));
    assert_eq!(store.delivery(&stored.id, recipient).unwrap(), delivery);

    // The same status again is a replay: the first entry, nothing written.
    let size = store.log().size().unwrap();
    let ReceiptWrite::Replayed(same) = write(ReceiptStatus::Arrived).unwrap() else {
        panic!("01 twice is a replay");
    };
    assert_eq!(*same, delivery.receipts[0]);
    // Out of order: refused, nothing written.
    assert!(matches!(
        write(ReceiptStatus::Completed),
        Err(StoreError::Status(status::StatusRefusal::OutOfOrder { .. }))
    ));
    assert_eq!(store.log().size().unwrap(), size);
    assert_eq!(store.delivery(&stored.id, recipient).unwrap(), delivery);
    // The other recipient's delivery is its own.
    assert_eq!(
        store.delivery(&stored.id, "hn/cm/ba-vi").unwrap(),
        DeliveryRecord::default()
    );
}

#[test]
fn links_are_written_with_the_acting_document_and_listed_by_target() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let target = record(b"target");
    rt.block_on(
        store.insert_accepted(&target, None, Some(b"target"), "t1", |i| {
            Ok(server_receipt(i))
        }),
    )
    .unwrap()
    .unwrap();
    assert!(store.links_to(&target.id).unwrap().is_empty());
    let recall = DocumentRecord {
        recipients: vec!["hn/cm/ba-vi".parse().unwrap()],
        outgoing: None,
        business: Some(BusinessRef {
            kind: "recall".into(),
            target: target.id,
        }),
        ..record(b"recall")
    };
    rt.block_on(
        store.insert_accepted(&recall, None, Some(b"recall"), "t2", |i| {
            Ok(server_receipt(i))
        }),
    )
    .unwrap()
    .unwrap();
    let links = store.links_to(&target.id).unwrap();
    assert_eq!(
        links,
        vec![LinkRecord {
            kind: "recall".into(),
            document_id: recall.id,
            recipients: recall.recipients.clone(),
            accepted_at: "t2".into(),
        }]
    );
}

/// A record signed with `chain` (base64 certificates as a signer sends them).
fn record_with_chain(payload: &[u8], chain: &[&[u8]]) -> DocumentRecord {
    let chain: Vec<Vec<u8>> = chain.iter().map(|c| c.to_vec()).collect();
    let mut document = record(payload);
    // Each its own document, without an outgoing number that would collide.
    document.outgoing = None;
    document.signatures = vec![
        DocSignature::raw(
            Role::Person,
            crate::pki::signing::RawAlgorithm::EcdsaP256Sha256,
            b"person signature",
            &chain,
        ),
        signature(),
    ];
    document
}

/// The `certs` tree's keys, sorted.
fn stored_chains(store: &Store) -> Vec<Vec<u8>> {
    store
        .certs
        .iter()
        .map(|item| item.unwrap().0.to_vec())
        .collect()
}

#[test]
fn a_chain_is_stored_once_by_digest_and_a_different_chain_apart() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let alice: &[&[u8]] = &[b"alice leaf certificate", b"province ca"];
    let first = record_with_chain(b"one", alice);
    let second = record_with_chain(b"two", alice);
    // One document by the manifest and payload requests, one by a single request.
    rt.block_on(store.insert_document(&first)).unwrap();
    let first = rt
        .block_on(store.accept_payload(&first.id, "t1", |i| Ok(server_receipt(i))))
        .unwrap()
        .0;
    let second = rt
        .block_on(
            store.insert_accepted(&second, None, Some(b"two"), "t2", |i| Ok(server_receipt(i))),
        )
        .unwrap()
        .unwrap()
        .0;
    // Two chains (the person's, the organisation's) and one signer list, each once, for
    // two documents.
    let chains = stored_chains(&store);
    assert_eq!(chains.len(), 3, "{chains:?}");
    for document in [&first, &second] {
        let bytes = store.docs.get(document.id.as_bytes()).unwrap().unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for signature in &document.signatures {
            for certificate in &signature.chain {
                assert!(!text.contains(certificate.as_str()), "{text}");
            }
        }
        assert!(
            !text.contains(document.signers[0].subject.as_str()),
            "{text}"
        );
        assert_eq!(chain_refs(&bytes).unwrap().len(), 3);
        // Read back, the record is the one accepted, chains included, byte for byte.
        let read = store.document(&document.id).unwrap().unwrap();
        assert_eq!(&read, document);
        assert_eq!(encode(&read).unwrap(), encode(document).unwrap());
    }
    // Another signer's chain is stored apart; the shared one is not written again.
    let bob = record_with_chain(b"three", &[b"bob leaf certificate", b"province ca"]);
    rt.block_on(store.insert_document(&bob)).unwrap();
    let after = stored_chains(&store);
    assert_eq!(after.len(), 4, "{after:?}");
    assert!(chains.iter().all(|c| after.contains(c)));
    assert_eq!(store.document(&bob.id).unwrap().unwrap(), bob);
    assert_eq!(
        store.inbox("hn/cm/ba-vi", None, 10).unwrap()[0].1,
        second,
        "listings read the chains too"
    );
}

/// A record the previous build wrote (chains inline, no digests) still decodes as it is,
/// and is accepted; from then on it is stored in the new shape.
#[test]
fn a_record_in_the_old_shape_with_inline_chains_decodes_and_is_accepted() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let document = record_with_chain(b"old", &[b"old leaf", b"old ca"]);
    // Exactly the bytes the previous build wrote.
    let old_bytes = serde_json::to_vec(&document).unwrap();
    assert!(String::from_utf8_lossy(&old_bytes).contains("\"chain\":["));
    store
        .docs
        .insert(document.id.as_bytes(), old_bytes)
        .unwrap();
    assert_eq!(store.document(&document.id).unwrap().unwrap(), document);
    assert!(stored_chains(&store).is_empty());
    match rt.block_on(store.insert_document(&document)).unwrap() {
        Inserted::Exists(stored) => assert_eq!(*stored, document),
        Inserted::Created => panic!("an old record was overwritten"),
    }
    let (accepted, _) = rt
        .block_on(store.accept_payload(&document.id, "t", |i| Ok(server_receipt(i))))
        .unwrap();
    assert_eq!(accepted.signatures, document.signatures);
    assert_eq!(accepted.signers, document.signers);
    assert_eq!(stored_chains(&store).len(), 3);
    assert_eq!(store.document(&document.id).unwrap().unwrap(), accepted);
}

/// A record whose chain is missing from the `certs` tree is reported corrupt, never
/// read as a record without chains.
#[test]
fn a_record_whose_chain_is_missing_is_corrupt() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let document = record(b"x");
    rt.block_on(store.insert_document(&document)).unwrap();
    store.certs.clear().unwrap();
    assert!(matches!(
        store.document(&document.id),
        Err(StoreError::Corrupt { .. })
    ));
}

/// A submission receipt whose statement states only the record's own fields (as the
/// exchange makes it) is stored as its signature alone and read back byte for byte; one
/// that states anything else is stored whole.
#[test]
fn a_receipt_statement_made_of_the_record_is_stored_as_its_signature_alone() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let document = record(b"receipt");
    let made = |record: &DocumentRecord, at: &str, index: u64| Signed {
        statement: serde_json::to_value(crate::api::SubmissionReceipt {
            kind: crate::api::SUBMISSION_RECEIPT_TYPE.to_owned(),
            document_id: record.id,
            sender: record.sender.to_string(),
            recipients: strings(&record.recipients),
            manifest_sha256: record.manifest_sha256.clone(),
            payload_sha256: record.payload_sha256.clone(),
            payload_size: record.payload_size,
            accepted_at: at.to_owned(),
            log_index: index,
        })
        .unwrap(),
        signature: server_receipt(0).signature,
    };
    let (accepted, index) = rt
        .block_on(
            store.insert_accepted(&document, None, Some(b"receipt"), "t9", |i| {
                Ok(made(&document, "t9", i))
            }),
        )
        .unwrap()
        .unwrap();
    assert_eq!(accepted.receipt, Some(made(&document, "t9", index)));
    let bytes = store.docs.get(document.id.as_bytes()).unwrap().unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("\"receipt\":null"), "{text}");
    assert!(text.contains("\"receipt_signature\":"), "{text}");
    assert!(
        !text.contains(crate::api::SUBMISSION_RECEIPT_TYPE),
        "{text}"
    );
    let read = store.document(&document.id).unwrap().unwrap();
    assert_eq!(read, accepted);
    assert_eq!(encode(&read).unwrap(), encode(&accepted).unwrap());

    // A statement with one field that is not the record's (another accepted time) is kept.
    let other = record(b"other");
    let (accepted, _) = rt
        .block_on(store.insert_accepted(
            &DocumentRecord {
                outgoing: None,
                ..other.clone()
            },
            None,
            Some(b"other"),
            "t9",
            |i| Ok(made(&other, "another time", i)),
        ))
        .unwrap()
        .unwrap();
    let bytes = store.docs.get(other.id.as_bytes()).unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("receipt_signature"));
    assert_eq!(store.document(&other.id).unwrap().unwrap(), accepted);
}

/// Rewrites a stopped store's log into the single `log` tree of the builds before issue
/// 16 (`L` + index → leaf, `H` + stored index → hash, `D` + document + index, and the
/// metadata keys as they are), removing the new trees and their layout mark: the store
/// the previous build would have left.
fn downgrade_log_layout(data: &Path) {
    let db = open_db(&data.join("db")).unwrap();
    let old = db.open_tree("log").unwrap();
    for (name, prefix) in [
        ("log_leaves", Some(b'L')),
        ("log_hashes", Some(b'H')),
        ("log_docs", Some(b'D')),
        ("log_meta", None),
    ] {
        let tree = db.open_tree(name).unwrap();
        for item in tree.iter() {
            let (k, v) = item.unwrap();
            if k.as_ref() == b"layout" {
                continue;
            }
            let key: Vec<u8> = prefix.into_iter().chain(k.iter().copied()).collect();
            old.insert(key, v).unwrap();
        }
        drop(tree);
        assert!(db.drop_tree(name).unwrap());
    }
    db.flush().unwrap();
}

#[test]
fn a_store_of_the_first_log_layout_opens_migrated_and_its_backup_restores() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (document, root, size, events) = {
        let store = Store::open(dir.path()).unwrap();
        let document = record(b"payload");
        // The payload is kept in the database, so the backup carries it without a file.
        let (document, _) = rt
            .block_on(store.insert_accepted(
                &document,
                None,
                Some(b"payload"),
                "2026-12-01T00:00:05Z",
                |i| Ok(server_receipt(i)),
            ))
            .unwrap()
            .unwrap();
        rt.block_on(store.record_fetch(&document, "hn/cm/chuc-son", "2026-12-01T00:00:06Z"))
            .unwrap();
        rt.block_on(store.log_directory(&[5u8; 32], "2026-12-01T00:00:07Z"))
            .unwrap();
        let log = store.log();
        let size = log.size().unwrap();
        (
            document.clone(),
            log.root(size).unwrap(),
            size,
            log.document_events(&document.id).unwrap(),
        )
    };
    assert_eq!(size, 3);
    assert_eq!(events, [0, 1]);
    downgrade_log_layout(dir.path());

    // The previous build's store opens: same entries, same root, same per-document index,
    // the directory digest remembered (the same digest is not logged twice).
    let store = Store::open(dir.path()).unwrap();
    let log = store.log();
    assert_eq!(log.size().unwrap(), size);
    assert_eq!(log.root(size).unwrap(), root);
    assert_eq!(log.document_events(&document.id).unwrap(), events);
    let audit = log.audit(Some(size)).unwrap();
    assert_eq!(audit.first_bad_index, None);
    assert_eq!(audit.root_at_checkpoint, Some(root));
    assert_eq!(
        rt.block_on(store.log_directory(&[5u8; 32], "t")).unwrap(),
        None
    );
    // Appends continue after the migrated entries, consistent with the old root.
    let index = rt
        .block_on(store.record_fetch(&document, "hn/cm/ba-vi", "2026-12-01T00:00:08Z"))
        .unwrap()
        .1;
    assert_eq!(index, size);
    let proof = log.consistency_proof(size, size + 1).unwrap();
    assert!(ledger::check_consistency(
        &proof,
        size,
        root,
        size + 1,
        log.root(size + 1).unwrap()
    ));

    // A backup of the migrated store restores into a new one with the same log.
    let mut items = Vec::new();
    store
        .backup(
            &backup::Since::default(),
            "origin",
            &mut |item| {
                items.push(item);
                Ok(())
            },
            &mut || Ok(false),
        )
        .unwrap();
    let target = tempfile::tempdir().unwrap();
    let restored = Store::open(target.path()).unwrap();
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    };
    let mut leaves = Vec::new();
    for item in &items {
        match item {
            backup::Item::Leaf { leaf, .. } => leaves.push(b64(leaf)),
            backup::Item::Put { tree, key, value } => {
                restored.restore_put(tree, &b64(key), &b64(value)).unwrap()
            }
            _ => {}
        }
    }
    assert_eq!(leaves.len() as u64, size + 1);
    restored.restore_leaves(0, &leaves).unwrap();
    rt.block_on(restored.restore_finish()).unwrap();
    let log = restored.log();
    assert_eq!(log.root(size).unwrap(), root);
    assert_eq!(
        log.root(size + 1).unwrap(),
        store.log().root(size + 1).unwrap()
    );
    assert_eq!(log.document_events(&document.id).unwrap(), [0, 1, 3]);
    assert_eq!(
        restored.document(&document.id).unwrap(),
        store.document(&document.id).unwrap()
    );
    assert_eq!(
        rt.block_on(restored.log_directory(&[5u8; 32], "t"))
            .unwrap(),
        None
    );
}
