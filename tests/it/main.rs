//! congvan's integration tests: one binary, real servers on 127.0.0.1, real TLS, real
//! certificates from the same code as `congvan pki demo`, and outside tools where named.
//!
//! Slow tests (crash loops, soak) run only with `CONGVAN_SLOW_TESTS=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly by design"
)]

mod audit;
mod audit_trust;
mod backup;
mod bench;
mod boundaries;
mod bundle;
mod cipher_policy;
mod classified;
mod cli;
mod desk;
mod desk_browser;
mod durability;
mod edxml;
mod endorse;
mod endpoints;
mod fairness;
mod fuzz_corpus;
mod gpg;
mod hostile;
mod keys;
mod matrix;
mod messages;
mod ocsp;
mod recipe;
mod reform;
mod registers;
mod revocation;
mod roles;
mod status_rules;
mod submit;
mod support;
mod tls;
mod tls_audit;
mod tools;
mod transfers;
mod validity;
