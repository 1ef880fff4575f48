//! congvan: secure exchange of official documents between Party committees.
//!
//! # Layout
//!
//! Rules and data, no I/O beyond files they own:
//! - [`config`]: the server's `congvan.toml` and a client's `client.toml` profile; which
//!   configuration a command uses; the files a backup carries.
//! - [`directory`]: the organisation tree (ids, names, parents, status) and auditors;
//!   [`directory::reform`] (reform plans, one pure function from a tree to the next) and
//!   [`directory::endorsement`] (an organisation's endorsement of its encryption key).
//! - [`document`]: [`document::manifest`] (model, NFC, canonical bytes),
//!   [`document::signature`] (signatures and who may sign in which role),
//!   [`document::status`] (which receipt status may come next), [`document::receipt`]
//!   (the delivery receipt's one home: `ReceiptStatus`, checks, canonical bytes, signing,
//!   verification), [`document::draft`] (the manifest builder, with the classified outer
//!   rule), [`document::package`] (the inner package of a classified document).
//! - [`registers`]: incoming registers (số đến) and outgoing numbering periods;
//!   [`registers::pdf`] prints a register.
//! - [`edxml`]: edXML (QCVN 102:2016) envelopes and status packets, read and written.
//! - [`api`]: the wire types server and client share.
//!
//! Trust and cryptography:
//! - [`pki`]: certificates: [`pki::identity`] (SAN URIs), [`pki::pem`], [`pki::signing`]
//!   (document-signing trust, judged now or at a time of signing), [`pki::cms`],
//!   [`pki::ocsp`], [`pki::crl`] (revocation), [`pki::keystore`] (where keys are, how they
//!   are unlocked, and every PIN, passphrase and password prompt), [`pki::token`]
//!   (PKCS#11), [`pki::demo`] (the DEMO PKI).
//! - [`seal`]: the `Cipher` interface and its OpenPGP implementation (sequoia);
//!   [`seal::policy`] (which classification levels the declared cipher may carry).
//! - [`notary`]: statements the server signs (receipts, directory) with its Ed25519 keys.
//!
//! State:
//! - [`exchange`]: the rules of submission, payload acceptance and receipts, without HTTP;
//!   one `ExchangeError` that `server::error` maps to HTTP in one place.
//! - [`store`]: durable state in sled: [`store::blobs`] (payload files), the private
//!   `store::commit` (group commit), `store::records` (the typed records),
//!   [`store::registers`], [`store::backup`] (the backup
//!   stream at a cut), and the private `store::snapshot` (the cut itself).
//! - [`ledger`]: the delivery log (Merkle tree, proofs, scans); [`ledger::checkpoint`]
//!   (signed notes), [`ledger::memory`] (the latest checkpoint kept outside the data
//!   directory).
//! - [`backup`]: `congvan backup`, `backup verify` and `restore` (online, incremental).
//! - [`ops`]: the operator's offline check of a stopped server's stored log
//!   (`audit verify-store`).
//!
//! The two ends:
//! - [`server`]: TLS 1.3 accept loop with client certificates and its start-up
//!   ([`server::serve_until_signalled`]); [`server::tls`], [`server::auth`],
//!   [`server::registry`] (the directory in force), [`server::routes`] (one module per
//!   resource), [`server::error`], [`server::limits`], [`server::ocsp`],
//!   [`server::metrics`], and the private `server::admin` (the operator's socket).
//! - [`client`]: the HTTPS client over mutual TLS: [`client::send`], [`client::fetch`],
//!   [`client::state`] (pinned keys, directory cache), [`client::keys`] (endorsed keys,
//!   `key endorse`, `directory set-key`), [`client::audit`] (proofs, exports, offline
//!   verification, exit codes), [`client::edxml`], [`client::bundle`] (profile bundles),
//!   [`client::endpoints`] (one method per route), [`client::upload`] and
//!   [`client::transfer`] (watched, resumable sends), [`client::table`] (the status table).
//! - [`bench`](mod@bench): `congvan bench`, the load generator; [`bench::report`].
//! - [`demo`]: `congvan demo`, the whole story against an in-process server.
//! - [`desk`]: `congvan desk`, the clerk's web console on loopback (its own small HTTP
//!   server): [`desk::pages`], [`desk::register`], [`desk::i18n`].
//!
//! The binary (`src/bin/congvan/`) is thin: `args` (clap definitions), `render` (tables,
//! text, CSV and JSON printing) and one module per group of commands that turns arguments
//! into calls of this library; `main.rs` reports an error once, with its causes and an
//! exit code. No rule of the exchange lives there.

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
pub mod ops;
pub mod pki;
pub mod registers;
pub mod seal;
pub mod server;
pub mod store;
