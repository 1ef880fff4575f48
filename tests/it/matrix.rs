//! The authorization matrix: every endpoint × every kind of caller, against one document
//! D sent by the district (`hn/cm`) to one commune (`hn/cm/chuc-son`). The rendered table
//! must appear verbatim in docs/SECURITY.md, so the documentation cannot drift.

use congvan::client::{Client, ClientError};
use congvan::document::Role;

use crate::support::{TestDoc, TestServer};

/// (column title, kind, identity): org ids, or `auditor:<scope>`.
const CALLERS: [(&str, &str); 7] = [
    ("sender", "hn/cm"),
    ("recipient", "hn/cm/chuc-son"),
    ("unrelated committee", "hn/cm/dong-son"),
    ("auditor in scope", "auditor:hn/cm"),
    ("auditor out of scope", "auditor:hn/tt"),
    ("revoked certificate", "hn/cm/xuan-mai"),
    ("retired committee", "hn/cm/ngoc-son"),
];

fn cell<T>(result: Result<T, ClientError>) -> String {
    match result {
        Ok(_) => "allow".into(),
        Err(ClientError::Api { code, .. }) => code,
        Err(ClientError::Transport { .. }) => "TLS refused".into(),
        Err(e) => format!("error: {e}"),
    }
}

fn parent(org: &str) -> &str {
    org.rsplit_once('/').map(|(p, _)| p).unwrap_or("hn")
}

#[tokio::test]
async fn every_endpoint_against_every_kind_of_caller() {
    let server = TestServer::start().await;
    let sender = server.client("hn/cm");
    let d = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    d.submit(&server, &sender).await.unwrap();
    let (_, uploaded) = d.upload(&sender, d.payload.clone()).await.unwrap();
    let submitted_index = uploaded["receipt"]["statement"]["log_index"]
        .as_u64()
        .unwrap();
    let id = d.id();
    let view: congvan::api::DocumentView = sender
        .get_json(&format!("/v1/documents/{id}"))
        .await
        .unwrap();
    congvan::pki::crl::revoke(
        &server.pki,
        &server.org_dir("hn/cm/xuan-mai").join("tls.crt"),
        None,
    )
    .unwrap();
    server.tls.reload().unwrap();
    let size = Client::new(&server.auditor_profile("hn/cm"), &server.url())
        .unwrap()
        .fetch_checkpoint()
        .await
        .unwrap()
        .size;

    let client_for = |who: &str| match who.strip_prefix("auditor:") {
        Some(scope) => Client::new(&server.auditor_profile(scope), &server.url()).unwrap(),
        None => server.client(who),
    };
    let endpoints = [
        "GET /healthz",
        "GET /metrics",
        "GET /v1/whoami",
        "GET /v1/server-keys",
        "GET /v1/directory",
        "GET /v1/crls",
        "POST /v1/documents (its own new document)",
        "PUT /v1/documents/D/payload",
        "GET /v1/documents/D",
        "GET /v1/documents/D/payload",
        "POST /v1/documents/D/receipts",
        "GET /v1/documents/D/status",
        "GET /v1/inbox",
        "GET /v1/sent",
        "GET /v1/log/checkpoint",
        "GET /v1/log/entries?document=D",
        "GET /v1/log/proofs/inclusion (D's submission)",
        "GET /v1/log/proofs/consistency",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for endpoint in endpoints {
        let mut row = vec![format!("`{endpoint}`")];
        for (_, who) in CALLERS {
            let c = client_for(who);
            let org = who
                .strip_prefix("auditor:")
                .map(|_| None)
                .unwrap_or(Some(who));
            let result = match endpoint {
                "GET /healthz" => cell(c.get_json::<serde_json::Value>("/healthz").await),
                "GET /metrics" => cell(c.get_text("/metrics").await),
                "GET /v1/whoami" => cell(c.whoami().await),
                "GET /v1/server-keys" => {
                    cell(c.get_json::<serde_json::Value>("/v1/server-keys").await)
                }
                "GET /v1/directory" => cell(c.get_json::<serde_json::Value>("/v1/directory").await),
                "GET /v1/crls" => cell(c.get_json::<serde_json::Value>("/v1/crls").await),
                "POST /v1/documents (its own new document)" => match org {
                    Some(org) => {
                        let own = TestDoc::new(org, &[parent(org)]);
                        let dir = server.org_dir(org);
                        let sigs = vec![
                            own.raw_signature(Role::Organization, &dir, "sign"),
                            own.raw_signature(Role::Person, &dir, "person"),
                        ];
                        cell(
                            c.post_json::<_, serde_json::Value>("/v1/documents", &own.body(&sigs))
                                .await,
                        )
                    }
                    None => cell(
                        c.post_json::<_, serde_json::Value>(
                            "/v1/documents",
                            &d.body(&d.signatures(&server)),
                        )
                        .await,
                    ),
                },
                "PUT /v1/documents/D/payload" => cell(d.upload(&c, d.payload.clone()).await),
                "GET /v1/documents/D" => cell(
                    c.get_json::<serde_json::Value>(&format!("/v1/documents/{id}"))
                        .await,
                ),
                "GET /v1/documents/D/payload" => {
                    cell(c.get_stream(&format!("/v1/documents/{id}/payload")).await)
                }
                "POST /v1/documents/D/receipts" => {
                    let body = match org {
                        Some(org) => {
                            let receipt = congvan::api::DeliveryReceipt {
                                kind: congvan::api::DELIVERY_RECEIPT_TYPE.into(),
                                document_id: id.parse().unwrap(),
                                recipient: org.into(),
                                manifest_sha256: view.manifest_sha256.clone(),
                                payload_sha256: d.manifest["payload"]["sha256"]
                                    .as_str()
                                    .unwrap()
                                    .into(),
                                status: "01".into(),
                                time: congvan::api::now_rfc3339(),
                                note: String::new(),
                            };
                            let dir = server.org_dir(org);
                            let key = congvan::pki::signing::SigningKey::load(
                                &dir.join("sign.crt"),
                                &dir.join("sign.key"),
                            )
                            .unwrap();
                            let bytes = congvan::document::manifest::canonical_bytes(
                                &serde_json::to_value(&receipt).unwrap(),
                            )
                            .unwrap();
                            let signature = congvan::document::DocSignature::raw(
                                Role::Organization,
                                key.algorithm(),
                                &key.sign(&bytes).unwrap(),
                                &key.chain,
                            );
                            serde_json::to_value(congvan::api::ReceiptRequest {
                                receipt,
                                signature,
                            })
                            .unwrap()
                        }
                        None => serde_json::json!({}),
                    };
                    cell(
                        c.post_json::<_, serde_json::Value>(
                            &format!("/v1/documents/{id}/receipts"),
                            &body,
                        )
                        .await,
                    )
                }
                "GET /v1/documents/D/status" => cell(
                    c.get_json::<serde_json::Value>(&format!("/v1/documents/{id}/status"))
                        .await,
                ),
                "GET /v1/inbox" => cell(c.get_json::<serde_json::Value>("/v1/inbox").await),
                "GET /v1/sent" => cell(c.get_json::<serde_json::Value>("/v1/sent").await),
                "GET /v1/log/checkpoint" => cell(c.get_text("/v1/log/checkpoint").await),
                "GET /v1/log/entries?document=D" => {
                    match c
                        .get_json::<congvan::api::LogEntries>(&format!(
                            "/v1/log/entries?document={id}"
                        ))
                        .await
                    {
                        Ok(page) if page.entries.is_empty() => "allow (sees none)".into(),
                        Ok(page) => format!("allow ({} events)", page.entries.len()),
                        Err(e) => cell::<()>(Err(e)),
                    }
                }
                "GET /v1/log/proofs/inclusion (D's submission)" => cell(
                    c.get_json::<serde_json::Value>(&format!(
                        "/v1/log/proofs/inclusion?index={submitted_index}&size={size}"
                    ))
                    .await,
                ),
                "GET /v1/log/proofs/consistency" => cell(
                    c.get_json::<serde_json::Value>(&format!(
                        "/v1/log/proofs/consistency?from=1&to={size}"
                    ))
                    .await,
                ),
                other => panic!("no test for {other}"),
            };
            row.push(result);
        }
        rows.push(row);
    }

    let mut table = String::from("| endpoint |");
    for (title, _) in CALLERS {
        table.push_str(&format!(" {title} |"));
    }
    table.push_str("\n| --- |");
    table.push_str(&" --- |".repeat(CALLERS.len()));
    table.push('\n');
    for row in &rows {
        table.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    println!("{table}");

    let expected = [
        [
            "allow",
            "allow",
            "allow",
            "allow",
            "allow",
            "TLS refused",
            "allow",
        ],
        [
            "allow",
            "allow",
            "allow",
            "allow",
            "allow",
            "TLS refused",
            "allow",
        ],
        [
            "allow",
            "allow",
            "allow",
            "allow",
            "allow",
            "TLS refused",
            "allow",
        ],
        [
            "allow",
            "allow",
            "allow",
            "allow",
            "allow",
            "TLS refused",
            "allow",
        ],
        [
            "allow",
            "allow",
            "allow",
            "allow",
            "allow",
            "TLS refused",
            "allow",
        ],
        [
            "allow",
            "allow",
            "allow",
            "allow",
            "allow",
            "TLS refused",
            "allow",
        ],
        [
            "allow",
            "allow",
            "allow",
            "role_forbidden",
            "role_forbidden",
            "TLS refused",
            "sender_inactive",
        ],
        [
            "allow",
            "document_not_found",
            "document_not_found",
            "role_forbidden",
            "role_forbidden",
            "TLS refused",
            "document_not_found",
        ],
        [
            "allow",
            "allow",
            "document_not_found",
            "allow",
            "document_not_found",
            "TLS refused",
            "document_not_found",
        ],
        [
            "allow",
            "allow",
            "document_not_found",
            "role_forbidden",
            "document_not_found",
            "TLS refused",
            "document_not_found",
        ],
        [
            "document_not_found",
            "allow",
            "document_not_found",
            "role_forbidden",
            "role_forbidden",
            "TLS refused",
            "document_not_found",
        ],
        [
            "allow",
            "role_forbidden",
            "document_not_found",
            "allow",
            "document_not_found",
            "TLS refused",
            "document_not_found",
        ],
        [
            "allow",
            "allow",
            "allow",
            "role_forbidden",
            "role_forbidden",
            "TLS refused",
            "allow",
        ],
        [
            "allow",
            "allow",
            "allow",
            "role_forbidden",
            "role_forbidden",
            "TLS refused",
            "allow",
        ],
        [
            "allow",
            "allow",
            "allow",
            "allow",
            "allow",
            "TLS refused",
            "allow",
        ],
        [
            "allow (1 events)",
            "allow (1 events)",
            "allow (sees none)",
            "allow (1 events)",
            "allow (sees none)",
            "TLS refused",
            "allow (sees none)",
        ],
        [
            "allow",
            "allow",
            "log_entry_hidden",
            "allow",
            "log_entry_hidden",
            "TLS refused",
            "log_entry_hidden",
        ],
        [
            "allow",
            "allow",
            "allow",
            "allow",
            "allow",
            "TLS refused",
            "allow",
        ],
    ];
    for (row, want) in rows.iter().zip(expected.iter()) {
        // Log entries grow as the matrix runs (refusals and fetches are logged); compare
        // the kind of answer, not the count, for that row.
        let got: Vec<String> = row[1..]
            .iter()
            .map(|c| {
                if c.starts_with("allow (") && !c.contains("none") {
                    "allow (1 events)".into()
                } else {
                    c.clone()
                }
            })
            .collect();
        assert_eq!(got, want.to_vec(), "row {}", row[0]);
    }
    let security =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/SECURITY.md")).unwrap();
    let normalised = table
        .lines()
        .map(|l| {
            l.split(" | ")
                .map(|c| {
                    if c.starts_with("allow (") && !c.contains("none") {
                        "allow (own events)"
                    } else {
                        c
                    }
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        security.contains(&normalised),
        "docs/SECURITY.md lacks the current matrix:\n{normalised}"
    );
}
