//! The typed client: one method per route of the API, returning the [`crate::api`]
//! types. This file and `server/routes/` are the only places the `/v1/…` paths are
//! written; everything else (the CLI, the demo, the load generator, the desk) calls these
//! methods, so a route that changes changes in two places.
//!
//! These methods check nothing beyond the HTTP status and the shape of the answer: the
//! verifying calls built on them (pinned server keys, the signed directory, receipts,
//! log proofs) live in the sibling modules.

use uuid::Uuid;

use super::{Client, ClientError};
use crate::api::{
    CrlsResponse, DocumentView, IncomingRegisterView, ListPage, LogEntries, LogProof,
    PaperRegistered, RangeProof, ReceiptRequest, ReceiptResponse, RegisterClosedView,
    ServerKeysResponse, StatusView, SubmitRequest, SubmitResponse, UploadResponse,
};
use crate::notary::Signed;

/// The paging and filter parameters of `GET /v1/inbox` and `GET /v1/sent`. Only the
/// fields that are set go into the query string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Inbox only: `new`, `all` (the server's default) or `history`.
    pub state: Option<String>,
    /// At most this many items (the server accepts 1–500).
    pub limit: Option<usize>,
    /// Items older than this cursor (`next_before` of the previous page).
    pub before: Option<u64>,
}

impl ListQuery {
    /// A query for at most `limit` items.
    pub fn limit(limit: usize) -> ListQuery {
        ListQuery {
            limit: Some(limit),
            ..ListQuery::default()
        }
    }

    /// The same query for the page after the cursor `before`, if there is one.
    pub fn before(self, before: Option<u64>) -> ListQuery {
        ListQuery { before, ..self }
    }

    /// The query string, `?state=…&limit=…&before=…` in that order, or "" when empty.
    fn to_query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(state) = &self.state {
            parts.push(format!("state={state}"));
        }
        if let Some(limit) = self.limit {
            parts.push(format!("limit={limit}"));
        }
        if let Some(before) = self.before {
            parts.push(format!("before={before}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

impl Client {
    /// `GET /healthz`: the server's health line (JSON text, unauthenticated route).
    pub async fn healthz(&self) -> Result<String, ClientError> {
        self.get_text("/healthz").await
    }

    /// `GET /metrics`: the server's metrics in the Prometheus text format.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        self.get_text("/metrics").await
    }

    /// `GET /v1/whoami`: who the server takes this client's certificate for. The answer's
    /// type lives in `server/` today, so it is returned as JSON.
    pub async fn whoami(&self) -> Result<crate::api::WhoAmI, ClientError> {
        self.get_json("/v1/whoami").await
    }

    /// `GET /v1/server-keys`, as sent (not yet compared with the pinned keys: see
    /// [`Client::server_keys`]).
    pub async fn get_server_keys(&self) -> Result<ServerKeysResponse, ClientError> {
        self.get_json("/v1/server-keys").await
    }

    /// `GET /v1/directory`, as sent (not yet verified: see [`Client::directory`]).
    pub async fn get_directory(&self) -> Result<Signed, ClientError> {
        self.get_json("/v1/directory").await
    }

    /// `POST /v1/documents`: submits a signed manifest (and an inline payload, if the
    /// request carries one). Returns the HTTP status (201 new, 200 replay) and the answer.
    pub async fn submit(
        &self,
        request: &SubmitRequest,
    ) -> Result<(u16, SubmitResponse), ClientError> {
        self.post_json("/v1/documents", request).await
    }

    /// `PUT /v1/documents/{id}/payload`: uploads `length` bytes of payload as a stream.
    pub async fn upload(
        &self,
        id: &Uuid,
        body: reqwest::Body,
        length: u64,
    ) -> Result<(u16, UploadResponse), ClientError> {
        self.put_stream(&format!("/v1/documents/{id}/payload"), body, length)
            .await
    }

    /// `GET /v1/documents/{id}`: the manifest, its signatures and the receipt.
    pub async fn document(&self, id: &Uuid) -> Result<DocumentView, ClientError> {
        self.get_json(&format!("/v1/documents/{id}")).await
    }

    /// `GET /v1/documents/{id}/payload`: the payload as a response to read in chunks.
    pub async fn payload(&self, id: &Uuid) -> Result<reqwest::Response, ClientError> {
        self.get_stream(&format!("/v1/documents/{id}/payload"))
            .await
    }

    /// `POST /v1/documents/{id}/receipts`: posts a signed delivery receipt.
    pub async fn post_receipt(
        &self,
        id: &Uuid,
        request: &ReceiptRequest,
    ) -> Result<(u16, ReceiptResponse), ClientError> {
        self.post_json(&format!("/v1/documents/{id}/receipts"), request)
            .await
    }

    /// `GET /v1/documents/{id}/status`: every recipient's state.
    pub async fn status(&self, id: &Uuid) -> Result<StatusView, ClientError> {
        self.get_json(&format!("/v1/documents/{id}/status")).await
    }

    /// `GET /v1/crls`: the CRLs the server checks signatures against.
    pub async fn crls(&self) -> Result<CrlsResponse, ClientError> {
        self.get_json("/v1/crls").await
    }

    /// `GET /v1/log/checkpoint`: the signed note, unverified (see
    /// [`Client::fetch_checkpoint`]).
    pub async fn log_checkpoint(&self) -> Result<String, ClientError> {
        self.get_text("/v1/log/checkpoint").await
    }

    /// `GET /v1/log/entries?start=&end=`: one page of the entries `[start, end)`.
    pub async fn log_entries(&self, start: u64, end: u64) -> Result<LogEntries, ClientError> {
        self.get_json(&format!("/v1/log/entries?start={start}&end={end}"))
            .await
    }

    /// `GET /v1/log/entries?document=`: the entries about one document.
    pub async fn log_entries_of(&self, document: &Uuid) -> Result<LogEntries, ClientError> {
        self.get_json(&format!("/v1/log/entries?document={document}"))
            .await
    }

    /// `GET /v1/log/proofs/inclusion?index=&size=`.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<LogProof, ClientError> {
        self.get_json(&format!(
            "/v1/log/proofs/inclusion?index={index}&size={size}"
        ))
        .await
    }

    /// `GET /v1/log/proofs/consistency?from=&to=`.
    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<LogProof, ClientError> {
        self.get_json(&format!("/v1/log/proofs/consistency?from={from}&to={to}"))
            .await
    }

    /// `GET /v1/log/proofs/range?start=&end=&size=`.
    pub async fn range_proof(
        &self,
        start: u64,
        end: u64,
        size: u64,
    ) -> Result<RangeProof, ClientError> {
        self.get_json(&format!(
            "/v1/log/proofs/range?start={start}&end={end}&size={size}"
        ))
        .await
    }

    /// `GET /v1/inbox`: one page of the documents addressed to this organisation.
    pub async fn inbox(&self, query: &ListQuery) -> Result<ListPage, ClientError> {
        self.get_json(&format!("/v1/inbox{}", query.to_query()))
            .await
    }

    /// `GET /v1/sent`: one page of the documents this organisation sent.
    pub async fn sent(&self, query: &ListQuery) -> Result<ListPage, ClientError> {
        self.get_json(&format!("/v1/sent{}", query.to_query()))
            .await
    }

    /// `GET /v1/registers/incoming?year=`: the incoming register of a year (the current
    /// one when `year` is `None`).
    pub async fn incoming_register(
        &self,
        year: Option<i32>,
    ) -> Result<IncomingRegisterView, ClientError> {
        match year {
            Some(y) => {
                self.get_json(&format!("/v1/registers/incoming?year={y}"))
                    .await
            }
            None => self.get_json("/v1/registers/incoming").await,
        }
    }

    /// `POST /v1/registers/incoming`: registers a document that arrived on paper.
    pub async fn register_paper(
        &self,
        paper: &crate::registers::PaperRegistration,
    ) -> Result<(u16, PaperRegistered), ClientError> {
        self.post_json("/v1/registers/incoming", paper).await
    }

    /// `POST /v1/registers/incoming/close?year=`: closes the incoming register of a year.
    pub async fn close_register(
        &self,
        year: i32,
    ) -> Result<(u16, RegisterClosedView), ClientError> {
        self.post_json(
            &format!("/v1/registers/incoming/close?year={year}"),
            &serde_json::json!({}),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_queries_write_only_the_fields_that_are_set() {
        assert_eq!(ListQuery::default().to_query(), "");
        assert_eq!(ListQuery::limit(50).to_query(), "?limit=50");
        assert_eq!(
            ListQuery::limit(500).before(Some(7)).to_query(),
            "?limit=500&before=7"
        );
        let new = ListQuery {
            state: Some("new".into()),
            limit: Some(20),
            before: None,
        };
        assert_eq!(new.to_query(), "?state=new&limit=20");
    }
}
