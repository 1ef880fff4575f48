//! Recipients' signed receipts, the recalls and updates pending for them, the links
//! between documents, and the per-recipient delivery status the sender reads.

use rustls_pki_types::UnixTime;
use uuid::Uuid;

use super::{Answer, Exchange, ExchangeError};
use crate::api::{self, DocLink, ReceiptRequest, ReceiptResponse, RecipientStatus, StatusView};
use crate::directory::OrgId;
use crate::document::receipt::{self, Expected, ReceiptError, SignedReceipt};
use crate::document::status::{self, Request};
use crate::document::{ReceiptStatus, Role};
use crate::pki::Identity;
use crate::pki::signing::JudgedAt;
use crate::store::{DocState, DocumentRecord, ReceiptRecord, ReceiptWrite, StoreError};

impl Exchange {
    /// Where a receipt for document `id` may go: the caller must be a committee that is
    /// (or succeeds) one of its recipients, still active, and the document accepted.
    /// Returns the document and the recipient the receipt answers for. It is checked
    /// before the request body is read.
    pub fn receipt_target(
        &self,
        caller: &Identity,
        id: &Uuid,
    ) -> Result<(DocumentRecord, OrgId), ExchangeError> {
        let Identity::Org(org) = caller else {
            return Err(ExchangeError::RoleForbidden(
                "only recipients sign receipts",
            ));
        };
        let record = self.visible_document(caller, id)?;
        // The recipient this receipt answers for: the caller, or a unit merged into it.
        let Some(addressee) = self.addressee(org, &record).cloned() else {
            return Err(ExchangeError::DocumentNotFound);
        };
        self.ensure_active_recipient(org)?;
        if record.state != DocState::Accepted {
            return Err(ExchangeError::PayloadNotAvailable);
        }
        Ok((record, addressee))
    }

    /// Records a recipient's signed receipt on `record` for `addressee` (from
    /// [`Exchange::receipt_target`]): the statement is checked, its signature verified
    /// as the organisation's, and the status judged by the status rules inside the
    /// transaction that records it. The same status again is an idempotent replay.
    pub async fn post_receipt(
        &self,
        caller: &Identity,
        record: &DocumentRecord,
        addressee: &OrgId,
        body: &[u8],
    ) -> Result<Answer<ReceiptResponse>, ExchangeError> {
        let Identity::Org(org) = caller else {
            return Err(ExchangeError::RoleForbidden(
                "only recipients sign receipts",
            ));
        };
        let request: ReceiptRequest =
            serde_json::from_slice(body).map_err(ExchangeError::RequestMalformed)?;
        let id = record.id;
        let new_status = receipt::check(
            &request,
            &Expected {
                document_id: id,
                recipient: org,
                manifest_sha256: &record.manifest_sha256,
                payload_sha256: &record.payload_sha256,
            },
            time::OffsetDateTime::now_utc(),
        )
        .map_err(ExchangeError::ReceiptInvalid)?;

        let statement = receipt::statement(&request.receipt).map_err(internal)?;
        let canonical = receipt::canonical_bytes(&statement).map_err(internal)?;
        let trust = self.signing()?;
        let signature = request.signature.clone();
        let signer_org = org.clone();
        tokio::task::spawn_blocking(move || {
            receipt::verify(
                &trust,
                &signature,
                &canonical,
                JudgedAt::Now(UnixTime::now()),
                &signer_org,
            )
        })
        .await
        .map_err(|source| ExchangeError::Task {
            what: "receipt verification",
            source,
        })?
        .map_err(|e| match e {
            ReceiptError::Signature(error) => ExchangeError::Signature {
                role: Role::Organization,
                error,
            },
            ReceiptError::Signer { source, .. } => ExchangeError::SignerRole(source),
            other => internal(other),
        })?;

        let signed = SignedReceipt {
            receipt: request.receipt.clone(),
            signature: request.signature.clone(),
        };
        // A recall or update is pending for the addressee (the merged unit, when its
        // successor answers for it).
        let pending = self.pending_request(&id, addressee)?;
        self.ensure_space(0)?;
        let recorded_at = api::now_rfc3339();
        let written = self
            .store
            .record_receipt_as(
                record,
                addressee.as_str(),
                org.as_str(),
                ReceiptRecord {
                    status: new_status,
                    time: request.receipt.time.clone(),
                    note: request.receipt.note.clone(),
                    recorded_at: recorded_at.clone(),
                    receipt: signed,
                    log_index: None,
                },
                |delivery| {
                    let recorded: Vec<ReceiptStatus> =
                        delivery.receipts.iter().map(|r| r.status).collect();
                    status::judge(&recorded, delivery.fetch_count > 0, pending, new_status)
                },
            )
            .await
            .map_err(|e| match e {
                StoreError::Status(refusal) => ExchangeError::Status(refusal),
                other => other.into(),
            })?;
        let (delivery, log_index) = match written {
            ReceiptWrite::Recorded(delivery, index) => (delivery, index),
            ReceiptWrite::Replayed(same) => {
                // The same status again: an idempotent retry, answered with the first entry.
                let incoming_number = self
                    .store
                    .delivery(&id, addressee.as_str())?
                    .incoming_number;
                return Ok(Answer::Replayed(ReceiptResponse {
                    document_id: id,
                    recipient: org.to_string(),
                    status: same.status.code().to_owned(),
                    recorded_at: same.recorded_at.clone(),
                    log_index: same.log_index.unwrap_or_default(),
                    incoming_number,
                }));
            }
        };
        tracing::info!(document = %id, recipient = %org, status = %new_status, "receipt recorded");
        Ok(Answer::Created(ReceiptResponse {
            document_id: id,
            recipient: org.to_string(),
            status: new_status.code().to_owned(),
            recorded_at,
            log_index,
            incoming_number: delivery.incoming_number,
        }))
    }

    /// The recall or update of document `id` that is pending for `recipient`, if any:
    /// the latest accepted recall or update whose recipients include it. A recall
    /// outweighs an update, since agreeing to it cancels the document.
    pub fn pending_request(
        &self,
        id: &Uuid,
        recipient: &OrgId,
    ) -> Result<Option<Request>, ExchangeError> {
        let mut pending = None;
        for link in self.store.links_to(id)? {
            if !link.recipients.contains(recipient) {
                continue;
            }
            match link.kind.as_str() {
                "recall" => pending = Some(Request::Recall),
                "update" if pending.is_none() => pending = Some(Request::Update),
                _ => {}
            }
        }
        Ok(pending)
    }

    /// The links of `record` to other documents. For a recipient (`viewer`), only links
    /// to documents it received itself: a recipient must not learn of documents sent to
    /// others.
    pub fn links_of(
        &self,
        record: &DocumentRecord,
        viewer: Option<&OrgId>,
    ) -> Result<Vec<DocLink>, ExchangeError> {
        let mut out = Vec::new();
        if let Some(business) = &record.business {
            let visible = match viewer {
                None => true,
                Some(org) => self
                    .store
                    .document(&business.target)?
                    .is_some_and(|d| d.recipients.contains(org)),
            };
            if visible {
                out.push(DocLink {
                    relation: format!("{}s", business.kind),
                    id: business.target,
                });
            }
        }
        for link in self.store.links_to(&record.id)? {
            if viewer.is_some_and(|org| !link.recipients.contains(org)) {
                continue;
            }
            out.push(DocLink {
                relation: match link.kind.as_str() {
                    "recall" => "recalled_by",
                    "update" => "updated_by",
                    _ => "replaced_by",
                }
                .to_owned(),
                id: link.document_id,
            });
        }
        Ok(out)
    }

    /// `GET /v1/documents/{id}/status`: each recipient's fetches and latest receipt, for
    /// the sender and for security officers in scope.
    pub fn status(&self, caller: &Identity, id: &Uuid) -> Result<StatusView, ExchangeError> {
        let record = self.visible_document(caller, id)?;
        let directory = &self.directory;
        if let Identity::Org(org) = caller {
            if !directory.speaks_for(org, &record.sender) {
                return Err(ExchangeError::RoleForbidden(
                    "delivery status is for the sender and security officers",
                ));
            }
        }
        let mut recipients = Vec::new();
        for org in &record.recipients {
            let delivery = self.store.delivery(id, org.as_str())?;
            let latest = delivery.receipts.last();
            // A document still waiting at a merged unit is offered to its successor: the
            // sender sees where it went.
            let offered_to = directory.successor(org).map(|s| s.id.to_string());
            let receipts = delivery
                .receipts
                .iter()
                .map(|r| serde_json::to_value(&r.receipt))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ExchangeError::Internal(format!("stored receipt of {id}: {e}")))?;
            recipients.push(RecipientStatus {
                offered_to,
                org: org.to_string(),
                fetched_at: delivery.first_fetched_at.clone(),
                fetch_count: delivery.fetch_count,
                status: latest.map(|r| r.status.code().to_owned()),
                status_time: latest.map(|r| r.time.clone()),
                note: latest.map(|r| r.note.clone()).filter(|n| !n.is_empty()),
                receipts,
                request: self.pending_request(id, org)?.map(|r| match r {
                    Request::Recall => "recall".to_owned(),
                    Request::Update => "update".to_owned(),
                }),
            });
        }
        Ok(StatusView {
            id: *id,
            sender: record.sender.to_string(),
            urgency: record.urgency.into(),
            accepted_at: record.accepted_at.clone(),
            recipients,
            links: self.links_of(&record, None)?,
        })
    }
}

/// A failure that is the server's, not the request's.
fn internal(e: ReceiptError) -> ExchangeError {
    ExchangeError::Internal(e.to_string())
}
