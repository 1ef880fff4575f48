//! The signature ceiling: how many documents per second the machine could accept if it
//! did nothing but verify their two signatures, the bound `submit` figures are read
//! against.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::BenchError;
use crate::client::ClientError;
use crate::client::send::OrgSigner;
use crate::config::ClientProfile;
use crate::pki::signing::verify_with_certificate;

/// Verifications each thread does between two looks at the clock.
const VERIFICATIONS_PER_CLOCK_CHECK: u32 = 16;

/// The signature ceiling: documents per second the machine's cores could verify if they
/// did nothing but check the two signatures of each document, with ring, one thread per
/// core, for `duration`.
pub fn signature_ceiling(
    profile: &ClientProfile,
    duration: Duration,
) -> Result<CeilingReport, BenchError> {
    let signer = OrgSigner::load(profile)?;
    let org = &signer.org_key;
    let person = signer.person_key.as_ref().unwrap_or(org);
    // A manifest-sized message, signed by both keys.
    let message = vec![b'm'; 1200];
    let pairs = [org, person]
        .iter()
        .map(|k| -> Result<_, BenchError> {
            let signature = k.sign(&message).map_err(ClientError::from)?;
            let leaf = k.chain.first().cloned().unwrap_or_default();
            Ok((k.algorithm(), leaf, signature))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let pairs = Arc::new(pairs);
    let message = Arc::new(message);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let pairs = pairs.clone();
            let message = message.clone();
            std::thread::spawn(move || {
                let mut docs = 0u64;
                let mut failures = 0u64;
                while start.elapsed() < duration {
                    for _ in 0..VERIFICATIONS_PER_CLOCK_CHECK {
                        for (alg, leaf, signature) in pairs.iter() {
                            if !verify_with_certificate(leaf, *alg, &message, signature) {
                                failures += 1;
                            }
                        }
                        docs += 1;
                    }
                }
                (docs, failures)
            })
        })
        .collect();
    let mut docs = 0u64;
    let mut failures = 0u64;
    for h in handles {
        let (d, f) = h
            .join()
            .map_err(|_| BenchError::Worker("a verification thread panicked".into()))?;
        docs += d;
        failures += f;
    }
    if failures > 0 {
        return Err(BenchError::Worker(format!(
            "{failures} signatures failed to verify in the ceiling measurement"
        )));
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(CeilingReport {
        threads,
        algorithm: org.algorithm().name().to_owned(),
        docs_per_s: docs as f64 / seconds,
        seconds,
    })
}

/// The outcome of [`signature_ceiling`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct CeilingReport {
    /// Verification threads (one per core).
    pub threads: usize,
    /// The signature algorithm of the profile's keys.
    pub algorithm: String,
    /// Documents (two signatures each) verified per second on all threads.
    pub docs_per_s: f64,
    /// How long it ran.
    pub seconds: f64,
}
