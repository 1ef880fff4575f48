//! The server's check of classified payloads (packet headers only): never panics, never
//! decompresses, and whatever passes names at least one recipient.
#![no_main]

use congvan::seal::{Cipher, OpenPgp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = OpenPgp::default().recipients_of(&mut &data[..]) {
        assert!(!envelope.recipients.is_empty());
        assert!(envelope.container_version == 1 || envelope.container_version == 2);
    }
});
