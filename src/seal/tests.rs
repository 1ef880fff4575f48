//! Unit tests of the OpenPGP cipher: round trips, the choice of container, refusals.

use super::*;

#[test]
fn seal_inspect_open_round_trip() {
    let cipher = OpenPgp::default();
    let sender = generate_key("sender").unwrap();
    let a = generate_key("a").unwrap();
    let b = generate_key("b").unwrap();
    let plaintext = "Quyết định mật: nội dung thử nghiệm".repeat(1000);
    let mut ciphertext = Vec::new();
    cipher
        .seal(
            &mut plaintext.as_bytes(),
            &mut ciphertext,
            &[a.cert_armored.clone(), b.cert_armored.clone()],
            &sender.secret_armored,
        )
        .unwrap();
    assert!(
        !ciphertext
            .windows(20)
            .any(|w| plaintext.as_bytes().starts_with(w))
    );

    let envelope = cipher.recipients_of(&mut ciphertext.as_slice()).unwrap();
    assert_eq!(envelope.recipients.len(), 2);
    // Sequoia-made certificates advertise SEIPDv2.
    assert_eq!(envelope.container_version, 2);
    let ids_a = cipher.recipient_ids(&a.cert_armored).unwrap();
    assert!(envelope.recipients.iter().any(|r| ids_a.contains(r)));

    for key in [&a, &b] {
        let mut out = Vec::new();
        let n = cipher
            .open(
                &mut ciphertext.as_slice(),
                &mut out,
                &key.secret_armored,
                &sender.cert_armored,
                1 << 20,
            )
            .unwrap();
        assert_eq!(n as usize, plaintext.len());
        assert_eq!(out, plaintext.as_bytes());
    }
    // Not a recipient; wrong sender; too small a limit.
    let c = generate_key("c").unwrap();
    let mut sink = Vec::new();
    assert!(
        cipher
            .open(
                &mut ciphertext.as_slice(),
                &mut sink,
                &c.secret_armored,
                &sender.cert_armored,
                1 << 20
            )
            .is_err()
    );
    assert!(
        cipher
            .open(
                &mut ciphertext.as_slice(),
                &mut Vec::new(),
                &a.secret_armored,
                &c.cert_armored,
                1 << 20
            )
            .is_err()
    );
    assert!(matches!(
        cipher.open(
            &mut ciphertext.as_slice(),
            &mut Vec::new(),
            &a.secret_armored,
            &sender.cert_armored,
            100
        ),
        Err(SealError::TooLarge(_))
    ));
}

/// The SEIPDv2 container of `ciphertext`: (symmetric algorithm, AEAD algorithm), or
/// `None` for SEIPDv1.
fn container_of(ciphertext: &[u8]) -> Option<(SymmetricAlgorithm, AEADAlgorithm)> {
    let mut ppr = openpgp::parse::PacketParser::from_bytes(ciphertext).unwrap();
    while let PacketParserResult::Some(pp) = ppr {
        if let Packet::SEIP(seip) = &pp.packet {
            return match seip {
                openpgp::packet::SEIP::V2(v2) => Some((v2.symmetric_algo(), v2.aead())),
                _ => None,
            };
        }
        ppr = pp.next().unwrap().1;
    }
    panic!("no SEIP packet");
}

/// A key made the way congvan made them before it advertised AEAD ciphersuites.
fn key_without_aead_suites(user_id: &str) -> GeneratedKey {
    let (cert, _) = CertBuilder::general_purpose(Some(user_id))
        .generate()
        .unwrap();
    GeneratedKey {
        secret_armored: cert.as_tsk().armored().to_vec().unwrap(),
        cert_armored: cert.armored().to_vec().unwrap(),
        fingerprint: cert.fingerprint().to_hex(),
    }
}

#[test]
fn gcm_only_when_every_recipient_advertises_it() {
    use openpgp::cert::Preferences;
    let cipher = OpenPgp::default();
    let sender = generate_key("sender").unwrap();
    let new_a = generate_key("a").unwrap();
    let new_b = generate_key("b").unwrap();
    let old = key_without_aead_suites("old");
    let cert = Cert::from_bytes(&new_a.cert_armored).unwrap();
    let policy = StandardPolicy::new();
    let valid = cert.with_policy(&policy, None).unwrap();
    assert_eq!(
        valid.preferred_aead_ciphersuites(),
        Some(&ADVERTISED_SUITES[..])
    );
    assert!(valid.features().unwrap().supports_seipdv2());

    // Large enough for many chunks and several pipe buffers, not a multiple of either.
    let plaintext: Vec<u8> = (0..3 * PIPE_BUFFER_BYTES + 4099)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    for (recipients, expected) in [
        (vec![&new_a, &new_b], Some(FAST_SUITE)),
        (
            vec![&new_a, &old],
            Some((SymmetricAlgorithm::AES256, AEADAlgorithm::OCB)),
        ),
        (
            vec![&old],
            Some((SymmetricAlgorithm::AES256, AEADAlgorithm::OCB)),
        ),
    ] {
        let certs: Vec<_> = recipients.iter().map(|k| k.cert_armored.clone()).collect();
        let mut ciphertext = Vec::new();
        cipher
            .seal(
                &mut plaintext.as_slice(),
                &mut ciphertext,
                &certs,
                &sender.secret_armored,
            )
            .unwrap();
        assert_eq!(container_of(&ciphertext), expected);
        for key in recipients {
            let mut out = Vec::new();
            cipher
                .open(
                    &mut ciphertext.as_slice(),
                    &mut out,
                    &key.secret_armored,
                    &sender.cert_armored,
                    u64::MAX,
                )
                .unwrap();
            assert!(out == plaintext);
        }
    }
}

#[test]
fn a_damaged_gcm_chunk_or_a_cut_message_does_not_open() {
    let cipher = OpenPgp::default();
    let sender = generate_key("sender").unwrap();
    let a = generate_key("a").unwrap();
    let plaintext = vec![0x5au8; 100_000];
    let mut ciphertext = Vec::new();
    cipher
        .seal(
            &mut plaintext.as_slice(),
            &mut ciphertext,
            std::slice::from_ref(&a.cert_armored),
            &sender.secret_armored,
        )
        .unwrap();
    assert_eq!(container_of(&ciphertext), Some(FAST_SUITE));
    let open = |ct: &[u8]| {
        cipher.open(
            &mut &ct[..],
            &mut Vec::new(),
            &a.secret_armored,
            &sender.cert_armored,
            u64::MAX,
        )
    };
    let mut flipped = ciphertext.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    assert!(open(&flipped).is_err());
    assert!(open(&ciphertext[..ciphertext.len() - 20]).is_err());
    assert!(open(&ciphertext).is_ok());
}

#[test]
fn a_failing_plaintext_or_output_fails_the_seal() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("disk read error"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(1);
            self.0 -= n;
            Ok(n)
        }
    }
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("no space left on device"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let cipher = OpenPgp::default();
    let sender = generate_key("sender").unwrap();
    let a = generate_key("a").unwrap();
    let certs = [a.cert_armored.clone()];
    let mut out = Vec::new();
    let err = cipher
        .seal(
            &mut Failing(PIPE_BUFFER_BYTES * 2 + 5),
            &mut out,
            &certs,
            &sender.secret_armored,
        )
        .unwrap_err();
    assert!(err.to_string().contains("disk read error"), "{err}");
    // What was written is not a message that opens.
    assert!(
        cipher
            .open(
                &mut out.as_slice(),
                &mut Vec::new(),
                &a.secret_armored,
                &sender.cert_armored,
                u64::MAX
            )
            .is_err()
    );
    let err = cipher
        .seal(
            &mut vec![0u8; PIPE_BUFFER_BYTES * 3].as_slice(),
            &mut Full,
            &certs,
            &sender.secret_armored,
        )
        .unwrap_err();
    assert!(err.to_string().contains("no space left"), "{err}");
    // Opening into a failing output fails too, and returns (the decrypting thread
    // does not wait for a reader that has gone).
    let mut sealed = Vec::new();
    cipher
        .seal(
            &mut vec![7u8; PIPE_BUFFER_BYTES * 9].as_slice(),
            &mut sealed,
            &certs,
            &sender.secret_armored,
        )
        .unwrap();
    let err = cipher
        .open(
            &mut sealed.as_slice(),
            &mut Full,
            &a.secret_armored,
            &sender.cert_armored,
            u64::MAX,
        )
        .unwrap_err();
    assert!(err.to_string().contains("no space left"), "{err}");
}

#[test]
fn recipients_of_refuses_what_is_not_sealed() {
    let cipher = OpenPgp::default();
    for garbage in [
        &b""[..],
        b"hello",
        b"\xff\xff\xff\xff",
        b"-----BEGIN PGP MESSAGE-----\n",
    ] {
        assert!(
            matches!(
                cipher.recipients_of(&mut &garbage[..]),
                Err(SealError::NotSealed(_))
            ),
            "{garbage:?}"
        );
    }
    // A signed but unencrypted message exposes literal data.
    let sender = generate_key("sender").unwrap();
    let cert = Cert::from_bytes(&sender.secret_armored).unwrap();
    let pair = cert
        .keys()
        .unencrypted_secret()
        .with_policy(&StandardPolicy::new(), None)
        .for_signing()
        .next()
        .unwrap()
        .key()
        .clone()
        .into_keypair()
        .unwrap();
    let mut signed = Vec::new();
    {
        let m = Message::new(&mut signed);
        let m = Signer::new(m, pair).unwrap().build().unwrap();
        let mut m = LiteralWriter::new(m).build().unwrap();
        m.write_all(b"secret").unwrap();
        m.finalize().unwrap();
    }
    assert!(matches!(
        cipher.recipients_of(&mut signed.as_slice()),
        Err(SealError::NotSealed(_))
    ));
}
