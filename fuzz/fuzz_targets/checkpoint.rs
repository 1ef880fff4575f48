//! Checkpoint notes and log proofs from a hostile server: never panic, never verify
//! without the right key.
#![no_main]

use libfuzzer_sys::fuzz_target;

const VKEY_PUBLIC: [u8; 32] = [7; 32];

fuzz_target!(|data: &[u8]| {
    let vkey = congvan::ledger::verifier_key("congvan.invalid/fuzz", &VKEY_PUBLIC);
    if let Ok(text) = std::str::from_utf8(data) {
        // Nobody holds the key for this public point: nothing may verify.
        assert!(congvan::ledger::checkpoint::verify(text, &vkey).is_err());
    }
    // Proofs: the first 16 bytes are index and size, the rest 32-byte hashes.
    if data.len() >= 48 {
        let index = u64::from_le_bytes(data[0..8].try_into().unwrap());
        let size = u64::from_le_bytes(data[8..16].try_into().unwrap());
        let root = tlog_tiles::tlog::Hash(data[16..48].try_into().unwrap());
        let proof: Vec<tlog_tiles::tlog::Hash> = data[48..]
            .chunks_exact(32)
            .map(|c| tlog_tiles::tlog::Hash(c.try_into().unwrap()))
            .collect();
        let _ = congvan::ledger::check_inclusion(&proof, size, root, index, b"leaf");
        let _ = congvan::ledger::check_consistency(&proof, index, root, size, root);
        // Range proofs: the first hashes stand for the range's leaves, the rest for the
        // proof, with hostile sizes and starts.
        let split = proof.len().min(3);
        let _ = congvan::ledger::check_range(&proof[split..], size, root, index, &proof[..split]);
    }
});
