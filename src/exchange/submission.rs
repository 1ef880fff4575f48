//! Submission: a manifest and its signatures become a document awaiting its payload (or,
//! with an inline payload, an accepted document in one step).
//!
//! The checks run in the order the API has always answered in: the sender is the TLS
//! identity and active, the seal policy permits the level, each recipient exists, is
//! active, may be sent to and (for a classified document) has an encryption key; then
//! the outgoing number, then the signatures (with OCSP where it applies), then the id.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls_pki_types::UnixTime;

use super::{Answer, Exchange, ExchangeError, inactive};
use crate::api::{self, SubmitRequest, SubmitResponse};
use crate::directory::OrgId;
use crate::document::manifest::BusinessKind;
use crate::document::{
    self, DocSignature, Manifest, ManifestError, ParsedManifest, Role, sha256_hex,
};
use crate::pki::Identity;
use crate::pki::signing::JudgedAt;
use crate::store::{BusinessRef, DocState, DocumentRecord, Inserted, OutgoingNumber, SignerRecord};

/// A submission decoded from its request body: the request and its parsed manifest.
pub struct Submission {
    /// The request as received (manifest text, signatures, inline payload).
    pub request: SubmitRequest,
    /// The manifest, parsed and validated, with its canonical bytes.
    pub parsed: ParsedManifest,
}

impl Exchange {
    /// Decodes a `POST /v1/documents` body: the request's JSON, then its manifest.
    pub fn decode_submission(
        &self,
        body: &[u8],
        rules: &document::ManifestRules,
    ) -> Result<Submission, ExchangeError> {
        let request: SubmitRequest =
            serde_json::from_slice(body).map_err(ExchangeError::RequestMalformed)?;
        let parsed = document::manifest::parse(request.manifest.get(), rules)?;
        Ok(Submission { request, parsed })
    }

    /// Submits a decoded document as `caller`: a replay of the same manifest answers as
    /// the first time did.
    pub async fn submit(
        &self,
        caller: &Identity,
        submission: &Submission,
    ) -> Result<Answer<SubmitResponse>, ExchangeError> {
        let sender = super::sender_of(caller)?;
        let Submission { request, parsed } = submission;
        let manifest = &parsed.manifest;
        if &manifest.sender != sender {
            return Err(ExchangeError::SenderMismatch {
                tls: sender.to_string(),
                manifest: manifest.sender.to_string(),
            });
        }
        let directory = &self.directory;
        let sender_entry = directory
            .org(sender)
            .ok_or_else(|| ExchangeError::UnknownIdentity(caller.uri()))?;
        if !sender_entry.status.is_active() {
            return Err(ExchangeError::SenderInactive(inactive(
                directory, sender, "send as",
            )));
        }
        self.seal.permits(manifest.classification)?;
        for recipient in &manifest.recipients {
            let Some(org) = directory.org(recipient) else {
                return Err(ExchangeError::RecipientUnknown(recipient.to_string()));
            };
            if !org.status.is_active() {
                return Err(ExchangeError::RecipientInactive(inactive(
                    directory, recipient, "send to",
                )));
            }
            if !directory.may_send(sender, recipient) {
                return Err(ExchangeError::RoutingDenied {
                    from: sender.to_string(),
                    to: recipient.to_string(),
                });
            }
            if manifest.classification.is_classified() && org.encryption_cert.is_none() {
                return Err(ExchangeError::RecipientNoEncryptionKey(
                    recipient.to_string(),
                ));
            }
        }

        let manifest_sha256 = sha256_hex(&parsed.canonical);
        let outgoing = self.outgoing_number(manifest)?;
        // An id already in use by this sender: the same manifest is a replay, anything
        // else a conflict. Another sender's id is not even looked at before the signatures
        // verify, so that 409 against 422 tells nobody whether someone else's document
        // exists.
        let existing = self.store.document(&manifest.id)?;
        if let Some(existing) = existing.as_ref().filter(|e| &e.sender == sender) {
            return replay_or_conflict(existing.clone(), &manifest_sha256);
        }

        // The outgoing register, checked early so that a clerk learns at once; the
        // transaction that accepts the document checks again, against racing submissions.
        if let Some(earlier) = self.store.outgoing_holder(sender.as_str(), &outgoing.key)? {
            if outgoing.amends != Some(earlier) {
                return Err(ExchangeError::NumberInUse {
                    code: outgoing.code.clone(),
                    earlier: earlier.to_string(),
                });
            }
        }
        let (signers, ocsp) = self
            .verify_signatures(
                parsed,
                &request.signatures,
                &sender_entry.required_signatures,
            )
            .await?;
        if let Some(existing) = existing {
            return replay_or_conflict(existing, &manifest_sha256);
        }

        let manifest_text =
            String::from_utf8(parsed.canonical.clone()).map_err(ExchangeError::CanonicalNotText)?;
        let record = DocumentRecord {
            id: manifest.id,
            sender: sender.clone(),
            recipients: manifest.recipients.clone(),
            classification: manifest.classification,
            urgency: manifest.urgency,
            manifest: manifest_text,
            manifest_sha256: manifest_sha256.clone(),
            signatures: request.signatures.clone(),
            signers,
            payload_sha256: manifest.payload.sha256.clone(),
            payload_size: manifest.payload.size,
            submitted_at: api::now_rfc3339(),
            state: DocState::AwaitingPayload,
            accepted_at: None,
            receipt: None,
            log_index: None,
            sealed_with: self.seal.mark(manifest.classification),
            outgoing: Some(outgoing),
            business: self.business_ref(manifest)?,
            ocsp,
        };
        if let Some(encoded) = &request.payload {
            return self
                .accept_inline(record, manifest.deadline.as_deref(), encoded)
                .await;
        }
        self.ensure_space(0)?;
        match self.store.insert_document(&record).await? {
            Inserted::Created => {
                tracing::info!(
                    document = %record.id,
                    sender = %record.sender,
                    recipients = record.recipients.len(),
                    "document submitted, awaiting payload"
                );
                Ok(Answer::Created(submit_response(&record)))
            }
            Inserted::Exists(existing) => replay_or_conflict(*existing, &manifest_sha256),
        }
    }

    /// Checks a recall, update or replacement against its target and returns what to
    /// record. The target must be an accepted document of the same sender that is not
    /// itself a recall; a recall or update may only go to the target's recipients (it
    /// asks them to answer 15 or 16 on the target). A target of another sender gets the
    /// same answer as one that does not exist, so that nothing is confirmed to outsiders.
    fn business_ref(&self, manifest: &Manifest) -> Result<Option<BusinessRef>, ExchangeError> {
        let (kind, target) = match (manifest.business.kind, manifest.business.target) {
            (BusinessKind::New, _) | (_, None) => return Ok(None),
            (BusinessKind::Recall, Some(t)) => ("recall", t),
            (BusinessKind::Update, Some(t)) => ("update", t),
            (BusinessKind::Replace, Some(t)) => ("replace", t),
        };
        let invalid = |why: String| Err(ExchangeError::BusinessTargetInvalid(why));
        let Some(earlier) = self
            .store
            .document(&target)?
            .filter(|d| d.sender == manifest.sender)
        else {
            return invalid(format!(
                "{kind}: {target} is not a document sent by {}",
                manifest.sender
            ));
        };
        if earlier.state != DocState::Accepted {
            return invalid(format!("{kind}: {target} was never delivered (no payload)"));
        }
        if earlier
            .business
            .as_ref()
            .is_some_and(|b| b.kind == "recall")
        {
            return invalid(format!("{kind}: {target} is itself a recall"));
        }
        if kind != "replace" {
            if let Some(outsider) = manifest
                .recipients
                .iter()
                .find(|r| !earlier.recipients.contains(r))
            {
                return invalid(format!(
                    "{kind}: {outsider} is not a recipient of {target}, so it has nothing to {kind}"
                ));
            }
        }
        Ok(Some(BusinessRef {
            kind: kind.to_owned(),
            target,
        }))
    }

    /// The document's place in its sender's outgoing register: numbering period (from
    /// the configured rule), number and notation. An update or replacement may reuse the
    /// number of the document it amends.
    fn outgoing_number(&self, manifest: &Manifest) -> Result<OutgoingNumber, ExchangeError> {
        let period = self
            .numbering
            .period_of(
                &manifest.doc_type,
                &manifest.promulgated.date,
                manifest.classification.is_classified(),
            )
            .map_err(|e| ExchangeError::Manifest(ManifestError::Invalid(e.to_string())))?;
        let amends = match manifest.business.kind {
            BusinessKind::Update | BusinessKind::Replace => manifest.business.target,
            BusinessKind::New | BusinessKind::Recall => None,
        };
        Ok(OutgoingNumber {
            key: format!(
                "{period}\0{}\0{}",
                manifest.code.number, manifest.code.notation
            ),
            code: format!("{}-{}", manifest.code.number, manifest.code.notation),
            amends,
        })
    }

    /// Verifies every signature (off the async threads) and applies the sender's role
    /// policy. Returns the signers and the OCSP responses (base64 DER) that judged them,
    /// to be stored with the document as evidence.
    async fn verify_signatures(
        &self,
        parsed: &ParsedManifest,
        signatures: &[DocSignature],
        required: &[String],
    ) -> Result<(Vec<SignerRecord>, Vec<String>), ExchangeError> {
        if signatures.len() > document::signature::SIGNATURES_MAX {
            return Err(ExchangeError::SignatureRoleDuplicate(format!(
                "at most {} signatures are accepted",
                document::signature::SIGNATURES_MAX
            )));
        }
        let mut roles = BTreeSet::new();
        for sig in signatures {
            if !roles.insert(sig.role) {
                return Err(ExchangeError::SignatureRoleDuplicate(format!(
                    "two signatures claim the role {}",
                    sig.role.name()
                )));
            }
        }
        for role in [Role::Person, Role::Organization] {
            if required.iter().any(|r| r == role.name()) && !roles.contains(&role) {
                return Err(ExchangeError::SignatureRoleMissing(role.name()));
            }
        }
        let trust = self.signing()?;
        // OCSP first, on the async side: a signer whose certificate names a responder and
        // that no CRL covers (or every such signer, with `[ocsp] prefer`) is asked about
        // before its signature is judged. A chain that does not even verify is left to the
        // judgement below, which names its fault.
        let mut evidence: Vec<Vec<Vec<u8>>> = Vec::with_capacity(signatures.len());
        for sig in signatures {
            let mut responses = Vec::new();
            if let (true, Ok((leaf, others))) = (self.ocsp.enabled(), sig.signer_chain()) {
                let now = UnixTime::now();
                if let Ok(Some(target)) =
                    trust.ocsp_target(&leaf, &others, now, self.ocsp.preferred())
                {
                    let seconds = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
                    let der = self
                        .ocsp
                        .response(&target, seconds)
                        .await
                        .map_err(|error| ExchangeError::Signature {
                            role: sig.role,
                            error,
                        })?;
                    responses.push(der);
                }
            }
            evidence.push(responses);
        }
        let message = parsed.canonical.clone();
        let signatures = signatures.to_vec();
        let sender: OrgId = parsed.manifest.sender.clone();
        let signer_name = parsed.manifest.signer.full_name.clone();
        tokio::task::spawn_blocking(move || {
            let now = UnixTime::now();
            let mut records = Vec::new();
            let mut fingerprints = BTreeSet::new();
            for (sig, ocsp) in signatures.iter().zip(&evidence) {
                let signer = sig
                    .verify_at_with_ocsp(&trust, &message, JudgedAt::Now(now), ocsp)
                    .map_err(|error| ExchangeError::Signature {
                        role: sig.role,
                        error,
                    })?;
                if !fingerprints.insert(signer.cert.fingerprint_sha256.clone()) {
                    return Err(ExchangeError::SignatureRoleDuplicate(
                        "one certificate cannot sign for two roles".into(),
                    ));
                }
                document::check_signer(sig.role, &signer.cert, &sender, &signer_name)
                    .map_err(ExchangeError::SignerRole)?;
                records.push(SignerRecord {
                    role: sig.role,
                    subject: signer.cert.subject,
                    fingerprint_sha256: signer.cert.fingerprint_sha256,
                });
            }
            let stored = evidence
                .iter()
                .flatten()
                .map(|der| B64.encode(der))
                .collect();
            Ok((records, stored))
        })
        .await
        .map_err(|source| ExchangeError::Task {
            what: "signature verification",
            source,
        })?
    }
}

/// The same manifest again is a replay, answered as the first time; another manifest
/// under a taken id is a conflict.
pub(super) fn replay_or_conflict(
    existing: DocumentRecord,
    manifest_sha256: &str,
) -> Result<Answer<SubmitResponse>, ExchangeError> {
    if existing.manifest_sha256 == manifest_sha256 {
        Ok(Answer::Replayed(submit_response(&existing)))
    } else {
        Err(ExchangeError::IdConflict(existing.id))
    }
}

/// What `POST /v1/documents` answers about a stored document.
pub(super) fn submit_response(record: &DocumentRecord) -> SubmitResponse {
    SubmitResponse {
        id: record.id,
        state: super::state_name(record.state).to_owned(),
        manifest_sha256: record.manifest_sha256.clone(),
        payload_url: crate::api::payload_path(&record.id),
        receipt: record.receipt.clone(),
    }
}
