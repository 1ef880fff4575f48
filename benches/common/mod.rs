//! What the delivery-log benchmarks share.

use congvan::ledger::Event;
use uuid::Uuid;

/// The `i`-th event of a benchmark: a `delivered` event with a leaf of about 330 bytes,
/// each with its own document id and digest.
pub fn event(i: u64) -> Event {
    Event::Delivered {
        time: "2026-11-26T08:00:00Z".into(),
        document_id: Uuid::from_u64_pair(0x0192_0000_0000_7000, i),
        actor: "hn/cm/chuc-son".into(),
        sender: "hn/cm".into(),
        recipients: vec!["hn/cm/chuc-son".into(), "hn/cm/xuan-mai".into()],
        payload_sha256: format!("{i:064x}"),
    }
}
