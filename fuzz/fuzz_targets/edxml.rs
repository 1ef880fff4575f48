//! edXML envelopes and status packets: reading hostile bytes never panics, stays within
//! its limits, and an envelope that reads is written and read back to the same envelope.
#![no_main]

use congvan::edxml::{self, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        attachment_bytes_max: 1 << 16,
        ..Limits::default()
    };
    if let Ok(envelope) = edxml::read_envelope(data, &limits) {
        let written = edxml::write_envelope(&envelope).unwrap();
        let mut back = edxml::read_envelope(&written, &Limits::default()).unwrap();
        // The signature is kept as the bytes found; the writer does not emit it.
        back.signature = envelope.signature.clone();
        assert_eq!(back, envelope);
    }
    if let Ok(packet) = edxml::read_status(data, &limits) {
        let written = edxml::write_status(&packet).unwrap();
        assert_eq!(edxml::read_status(&written, &Limits::default()).unwrap(), packet);
    }
});
