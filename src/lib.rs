//! congvan: secure exchange of official documents between Party committees.
//!
//! # Layout
//!
//! - [`config`]: the server's `congvan.toml` and a client's `client.toml` profile.
//! - [`directory`]: the organisation tree (ids, names, parents, status) and auditors.
//! - [`pki`]: certificates: identities in SAN URIs, PEM files, CRLs, the DEMO PKI.
//! - [`document`]: the manifest (model, NFC, canonical bytes), its signatures, the status
//!   rules and the receipts' one home (`document::receipt`).
//! - [`edxml`]: edXML (QCVN 102:2016) envelopes and status packets, read and written.
//! - [`notary`]: statements the server signs (receipts, directory) with its Ed25519 keys.
//! - [`seal`]: OpenPGP (sequoia) behind a small interface: keys, and later seal/open.
//! - [`registers`]: incoming registers (số đến) and outgoing numbering periods.
//! - [`exchange`]: the rules of submission, payload acceptance and receipts, without HTTP.
//! - [`store`]: durable state in sled.
//! - [`backup`]: `congvan backup`, `backup verify` and `restore` (online, incremental).
//! - [`server`]: TLS 1.3 accept loop with client certificates, routes, errors, limits.
//! - [`client`]: the HTTPS client over mutual TLS used by the CLI.
//! - [`bench`]: `congvan bench`, the load generator.
//! - [`desk`]: `congvan desk`, the clerk's web console on loopback (its own small HTTP server).
//!
//! `src/main.rs` only parses arguments, calls into these modules and reports errors.

pub mod api;
pub mod backup;
pub mod bench;
pub mod client;
pub mod config;
pub mod demo;
pub mod desk;
pub mod directory;
pub mod document;
pub mod edxml;
pub mod exchange;
pub mod ledger;
pub mod notary;
pub mod pki;
pub mod registers;
pub mod seal;
pub mod server;
pub mod store;
