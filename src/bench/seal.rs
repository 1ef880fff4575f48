//! The seal benchmark: sealing and opening one file with the product's OpenPGP layer,
//! timed, for comparison with gpg.

use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use ring::digest;

use super::BenchError;
use crate::config::ClientProfile;
use crate::seal::{Cipher, OpenPgp};

/// Buffer size for reading and writing the files.
const FILE_BUFFER_BYTES: usize = 1 << 20;

/// The outcome of [`seal_file`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct SealReport {
    /// Plaintext bytes.
    pub bytes: u64,
    /// Ciphertext bytes.
    pub sealed_bytes: u64,
    /// Seconds to sign and encrypt into the output file.
    pub seal_s: f64,
    /// Seconds to decrypt and verify back.
    pub open_s: f64,
    /// Plaintext MB/s sealing.
    pub seal_mb_s: f64,
    /// Plaintext MB/s opening.
    pub open_mb_s: f64,
}

/// Seals `input` with the profile's OpenPGP key (as sender and recipient) into `output`,
/// then opens it again, checking the plaintext's SHA-256; times both.
pub fn seal_file(
    profile: &ClientProfile,
    input: &Path,
    output: &Path,
) -> Result<SealReport, BenchError> {
    let io = |p: &Path| {
        let path = p.to_owned();
        move |source: std::io::Error| BenchError::Io { path, source }
    };
    let key_path = profile
        .openpgp_key
        .clone()
        .ok_or_else(|| BenchError::Input("the profile has no openpgp_key".into()))?;
    let cert_path = key_path.with_file_name("openpgp.cert");
    let secret = std::fs::read(&key_path).map_err(io(&key_path))?;
    let cert = std::fs::read(&cert_path).map_err(io(&cert_path))?;
    let cipher = OpenPgp::default();

    let started = Instant::now();
    let mut reader = BufReader::with_capacity(
        FILE_BUFFER_BYTES,
        std::fs::File::open(input).map_err(io(input))?,
    );
    let mut writer = BufWriter::with_capacity(
        FILE_BUFFER_BYTES,
        std::fs::File::create(output).map_err(io(output))?,
    );
    cipher
        .seal(
            &mut reader,
            &mut writer,
            std::slice::from_ref(&cert),
            &secret,
        )
        .map_err(|source| BenchError::Seal {
            step: "sealing",
            source,
        })?;
    writer.flush().map_err(io(output))?;
    drop(writer);
    let seal_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut sealed = BufReader::with_capacity(
        FILE_BUFFER_BYTES,
        std::fs::File::open(output).map_err(io(output))?,
    );
    let mut sink = HashSink(digest::Context::new(&digest::SHA256));
    let bytes = cipher
        .open(&mut sealed, &mut sink, &secret, &cert, u64::MAX)
        .map_err(|source| BenchError::Seal {
            step: "opening",
            source,
        })?;
    let open_s = started.elapsed().as_secs_f64();

    let mut check = digest::Context::new(&digest::SHA256);
    let mut file = std::fs::File::open(input).map_err(io(input))?;
    let mut buf = vec![0u8; FILE_BUFFER_BYTES];
    loop {
        let n = std::io::Read::read(&mut file, &mut buf).map_err(io(input))?;
        if n == 0 {
            break;
        }
        check.update(&buf[..n]);
    }
    if check.finish().as_ref() != sink.0.finish().as_ref() {
        return Err(BenchError::Input(
            "the opened plaintext differs from the input".into(),
        ));
    }
    let sealed_bytes = std::fs::metadata(output).map_err(io(output))?.len();
    Ok(SealReport {
        bytes,
        sealed_bytes,
        seal_s,
        open_s,
        seal_mb_s: bytes as f64 / 1e6 / seal_s,
        open_mb_s: bytes as f64 / 1e6 / open_s,
    })
}

struct HashSink(digest::Context);

impl std::io::Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
