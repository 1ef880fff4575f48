//! Transfers a person can watch and stop: a progress hook for `send` and `fetch`, a
//! progress bar on the terminal, and what an interrupted `send` reports.
//!
//! The library never decides by itself to draw on a terminal or to catch a signal: the
//! caller hands a [`Watch`] in. [`Watch::quiet`] (the default of `send_document` and
//! `fetch_document`) shows nothing and cannot be interrupted; [`Watch::terminal`] draws
//! a bar on standard error only when both standard output and standard error are
//! terminals, and turns SIGINT into a report instead of the process dying mid-upload.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use std::path::PathBuf;

use uuid::Uuid;

use super::fetch::parse_manifest_any_type;
use super::send::{SendOutcome, Sent};
use super::state::{PendingFile, pending_path};
use super::{Client, ClientError};
use crate::api::{DocumentView, SubmitRequest};
use crate::document::manifest::Layer;

/// Payloads smaller than this get no progress bar: they take a moment at most.
pub const PROGRESS_BYTES_MIN: u64 = 4 << 20;

/// What a transfer reports as it goes.
pub trait Progress: Send + Sync {
    /// A transfer of `total` bytes begins; `label` says what it is ("sending", "fetching").
    fn begin(&self, label: &str, total: u64);
    /// `bytes` more bytes went through.
    fn advance(&self, bytes: u64);
    /// The transfer ended (finished or not).
    fn end(&self);
}

/// Shows nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _label: &str, _total: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn end(&self) {}
}

/// A progress bar on standard error (indicatif), for transfers of at least
/// [`PROGRESS_BYTES_MIN`].
#[derive(Default)]
pub struct TerminalProgress {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl TerminalProgress {
    fn with_bar(&self, f: impl FnOnce(&mut Option<indicatif::ProgressBar>)) {
        // A poisoned lock only means another thread panicked while drawing: the bar is
        // cosmetic, so it is used as it is.
        let mut guard = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard);
    }
}

impl Progress for TerminalProgress {
    fn begin(&self, label: &str, total: u64) {
        if total < PROGRESS_BYTES_MIN {
            return;
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ~{eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_owned());
        self.with_bar(|slot| *slot = Some(bar));
    }

    fn advance(&self, bytes: u64) {
        self.with_bar(|slot| {
            if let Some(bar) = slot {
                bar.inc(bytes);
            }
        });
    }

    fn end(&self) {
        self.with_bar(|slot| {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        });
    }
}

/// True when both standard output and standard error are terminals: only then is a
/// progress bar drawn (a pipe or a file never receives one).
pub fn on_terminal() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// How a transfer is watched: its progress hook and whether an interruption (SIGINT) is
/// caught and reported.
#[derive(Clone)]
pub struct Watch {
    /// The progress hook.
    pub progress: Arc<dyn Progress>,
    interrupt: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Default for Watch {
    fn default() -> Self {
        Watch::quiet()
    }
}

impl Watch {
    /// No progress, no interruption handling.
    pub fn quiet() -> Watch {
        Watch {
            progress: Arc::new(NoProgress),
            interrupt: None,
        }
    }

    /// A watch with this progress hook and no interruption handling.
    pub fn with_progress(progress: Arc<dyn Progress>) -> Watch {
        Watch {
            progress,
            interrupt: None,
        }
    }

    /// For the command line: a progress bar when standard output and standard error are
    /// terminals, and SIGINT caught from now on (call inside the runtime). The handler
    /// stays for the life of the process: a second Ctrl-C is reported like the first.
    pub fn terminal() -> Result<Watch, ClientError> {
        let progress: Arc<dyn Progress> = if on_terminal() {
            Arc::new(TerminalProgress::default())
        } else {
            Arc::new(NoProgress)
        };
        let mut signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| ClientError::Input(format!("cannot handle SIGINT: {e}")))?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if signal.recv().await.is_some() {
                let _ = tx.send(true);
                // Keep the sender (and the handler) alive until the process ends.
                tx.closed().await;
            }
        });
        Ok(Watch {
            progress,
            interrupt: Some(rx),
        })
    }

    /// For the command line, where Ctrl-C should simply stop (`fetch` keeps nothing
    /// half-written): a progress bar when standard output and standard error are
    /// terminals, no interruption handling.
    pub fn terminal_progress() -> Watch {
        if on_terminal() {
            Watch::with_progress(Arc::new(TerminalProgress::default()))
        } else {
            Watch::quiet()
        }
    }

    /// A watch interrupted when `interrupt` turns true (for tests and embedding).
    pub fn interruptible(
        progress: Arc<dyn Progress>,
        interrupt: tokio::sync::watch::Receiver<bool>,
    ) -> Watch {
        Watch {
            progress,
            interrupt: Some(interrupt),
        }
    }

    /// Completes when an interruption arrives; never, when none is watched for.
    pub async fn interrupted(&self) {
        match self.interrupt.clone() {
            Some(mut rx) => {
                if rx.wait_for(|v| *v).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }

    /// Whether an interruption already arrived.
    pub fn is_interrupted(&self) -> bool {
        self.interrupt.as_ref().is_some_and(|rx| *rx.borrow())
    }
}

/// How far an interrupted `send` got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Before anything was submitted (hashing or sealing the files).
    Preparing,
    /// While the signed manifest was being submitted: the server may or may not have it.
    Submitting,
    /// The server accepted the signed manifest; the payload was being uploaded.
    Uploading,
}

/// What an interrupted `send` did and what is left, for the person who pressed Ctrl-C.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}", self.sentence())]
pub struct Interrupted {
    /// The document id.
    pub id: Uuid,
    /// How far it got.
    pub stage: Stage,
    /// Payload bytes handed to the connection before the interruption.
    pub sent: u64,
    /// The payload's size.
    pub total: u64,
    /// The command that finishes the upload.
    pub resume_command: String,
}

impl Interrupted {
    fn sentence(&self) -> String {
        let id = self.id;
        let total = self.total;
        match self.stage {
            Stage::Preparing => "interrupted while preparing the document (hashing, sealing \
                 or signing its files): nothing was submitted and nothing was kept; run the \
                 same `congvan send` again to send it"
                .to_owned(),
            Stage::Submitting => format!(
                "interrupted while submitting the signed manifest of document {id}: the \
                 server may or may not have it, and none of the {total}-byte payload was \
                 sent; to finish, run: {}",
                self.resume_command
            ),
            Stage::Uploading => format!(
                "interrupted: the server accepted the signed manifest of document {id}, and \
                 {} of {total} payload bytes were sent; the payload is still missing, so \
                 the recipients cannot fetch it yet; to finish, run: {}",
                self.sent, self.resume_command
            ),
        }
    }
}

/// The command line that finishes an interrupted upload with this profile.
pub fn resume_command(client: &Client, id: &Uuid) -> String {
    let profile = client.profile();
    let mut command = format!(
        "congvan send --resume {id} --profile {}",
        shell_word(&profile.path.display().to_string())
    );
    if client.base_url() != profile.server.trim_end_matches('/') {
        command.push_str(&format!(" --server {}", shell_word(client.base_url())));
    }
    command
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:,+=@".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Counts the bytes of a transfer for a report and a progress hook.
#[derive(Clone)]
pub struct Counter {
    bytes: Arc<AtomicU64>,
    progress: Arc<dyn Progress>,
    stopped: Arc<AtomicBool>,
}

impl Counter {
    /// A counter at zero that tells `progress`.
    pub fn new(progress: Arc<dyn Progress>) -> Counter {
        Counter {
            bytes: Arc::new(AtomicU64::new(0)),
            progress,
            stopped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Adds `n` bytes.
    pub fn add(&self, n: u64) {
        if !self.stopped.load(Ordering::Relaxed) {
            self.bytes.fetch_add(n, Ordering::Relaxed);
            self.progress.advance(n);
        }
    }

    /// The bytes counted so far; later additions are ignored (what was counted when the
    /// transfer was stopped is what the report says).
    pub fn stop(&self) -> u64 {
        self.stopped.store(true, Ordering::Relaxed);
        self.bytes.load(Ordering::Relaxed)
    }
}

/// A document this client submitted whose payload the server does not have yet, as
/// `congvan sent` lists it.
#[derive(Clone, Debug)]
pub struct PendingSent {
    /// The document id.
    pub id: Uuid,
    /// The server's state for it: `awaiting_payload`, or `not_submitted` when the server
    /// never received the signed manifest.
    pub state: String,
    /// Document type, number and notation, as `TYPE NUMBER-NOTATION`.
    pub code: String,
    /// The recipients.
    pub recipients: Vec<String>,
    /// Payload bytes still to send.
    pub size: u64,
    /// The command that finishes the upload.
    pub resume_command: String,
}

impl Client {
    /// Finishes the interrupted upload of document `id` with the signed submission this
    /// client kept: no new signature, so no new `created_at` and no 409. A document the
    /// server already holds whole is reported as sent (its receipt verified, `replayed`
    /// set); files that changed since signing, or a classified document whose sealed
    /// payload is gone, are refused with what to do instead.
    pub async fn resume_send(&self, id: &Uuid, watch: &Watch) -> Result<Sent, ClientError> {
        match self
            .get_json::<DocumentView>(&format!("/v1/documents/{id}"))
            .await
        {
            Ok(view) if view.state != AWAITING_PAYLOAD => {
                let outcome = self.already_complete(id, view).await?;
                self.remove_pending(id)?;
                return Ok(Sent::Done(outcome));
            }
            Ok(_) => {}
            // Not there: the signed manifest never arrived; the kept submission sends it.
            Err(ClientError::Api { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
        let pending = self.load_pending(id)?.ok_or_else(|| {
            ClientError::Input(format!(
                "this client kept no upload of document {id} to resume (nothing in {}); it \
                 cannot be finished without signing again: send the document again as a new \
                 one (without --resume)",
                pending_path(&self.profile().state_dir, id).display()
            ))
        })?;
        let parsed = parse_manifest_any_type(pending.submit.manifest.get(), Layer::Outer)?;
        if parsed.manifest.id != *id {
            return Err(ClientError::Input(format!(
                "{} names document {}, not {id}: the file is damaged",
                pending_path(&self.profile().state_dir, id).display(),
                parsed.manifest.id
            )));
        }
        let check = SignedFiles {
            files: pending.files.clone(),
            sealed: pending.sealed.clone(),
            payload_sha256: parsed.manifest.payload.sha256.clone(),
            payload_size: parsed.manifest.payload.size,
        };
        tokio::task::spawn_blocking(move || check.unchanged())
            .await
            .map_err(|e| ClientError::Input(e.to_string()))??;
        let submit = SubmitRequest {
            manifest: pending.submit.manifest.clone(),
            signatures: pending.submit.signatures.clone(),
            payload: None,
        };
        let result = self
            .submit_and_upload_watched(
                &parsed.manifest,
                &parsed.canonical,
                submit,
                &pending.upload_files(),
                pending.recipients.clone(),
                watch,
            )
            .await;
        self.settle_pending(id, result)
    }

    /// The outcome of a document the server already holds whole: its receipt verified
    /// against the manifest the server returns.
    async fn already_complete(
        &self,
        id: &Uuid,
        view: DocumentView,
    ) -> Result<SendOutcome, ClientError> {
        let parsed = parse_manifest_any_type(view.manifest.get(), Layer::Outer)?;
        let receipt = view.receipt.as_ref().ok_or_else(|| {
            ClientError::Protocol(format!(
                "the server says document {id} is {} but shows no receipt",
                view.state
            ))
        })?;
        let keys = self.server_keys().await?;
        let receipt =
            super::send::check_receipt(receipt, &keys, &parsed.manifest, &view.manifest_sha256)?;
        Ok(SendOutcome {
            id: *id,
            receipt,
            replayed: true,
            recipients: parsed.manifest.recipients,
            notices: Vec::new(),
        })
    }

    /// The uploads this client began and the server has not completed, with the
    /// server's state for each. Records of uploads the server did complete (the client
    /// stopped before it could forget them) are forgotten here.
    pub async fn pending_sent(&self) -> Result<Vec<PendingSent>, ClientError> {
        let mut out = Vec::new();
        for id in self.pending_ids()? {
            let state = match self
                .get_json::<DocumentView>(&format!("/v1/documents/{id}"))
                .await
            {
                Ok(view) if view.state == AWAITING_PAYLOAD => view.state,
                Ok(_) => {
                    self.remove_pending(&id)?;
                    continue;
                }
                Err(ClientError::Api { status: 404, .. }) => "not_submitted".to_owned(),
                Err(e) => return Err(e),
            };
            let Some(pending) = self.load_pending(&id)? else {
                continue;
            };
            let parsed = parse_manifest_any_type(pending.submit.manifest.get(), Layer::Outer)?;
            let m = &parsed.manifest;
            out.push(PendingSent {
                id,
                state,
                code: format!("{} {}-{}", m.doc_type, m.code.number, m.code.notation),
                recipients: m.recipients.iter().map(ToString::to_string).collect(),
                size: m.payload.size,
                resume_command: resume_command(self, &id),
            });
        }
        Ok(out)
    }
}

/// The server's state of a document whose payload has not arrived.
const AWAITING_PAYLOAD: &str = "awaiting_payload";

/// What a resumed upload checks on disk before sending anything.
struct SignedFiles {
    files: Vec<PendingFile>,
    sealed: Option<PathBuf>,
    payload_sha256: String,
    payload_size: u64,
}

impl SignedFiles {
    /// Refuses files that differ from what was signed (their SHA-256 or size), and a
    /// sealed payload that is gone or differs from the signed digest.
    fn unchanged(&self) -> Result<(), ClientError> {
        for file in &self.files {
            let (size, sha256) = hash_file(&file.path).map_err(|e| {
                ClientError::Input(format!(
                    "{}: {e}; resuming needs the files exactly as they were signed",
                    file.path.display()
                ))
            })?;
            if size != file.size || sha256 != file.sha256 {
                return Err(ClientError::Input(format!(
                    "{} changed since the document was signed (its SHA-256 differs: {} then, \
                     {sha256} now): resuming would send other bytes than the signed manifest \
                     names; restore the file, or send the document again as a new one",
                    file.path.display(),
                    file.sha256
                )));
            }
        }
        if let Some(sealed) = &self.sealed {
            let refused = |why: String| {
                ClientError::Input(format!(
                    "the sealed payload kept for this classified document {why}; sealing again \
                     cannot give the same digest (every sealing is randomised), so the signed \
                     manifest cannot be finished: send the document again as a new one"
                ))
            };
            let (size, sha256) = hash_file(sealed)
                .map_err(|e| refused(format!("cannot be read ({}: {e})", sealed.display())))?;
            if size != self.payload_size || sha256 != self.payload_sha256 {
                return Err(refused(format!(
                    "({}) does not hash to the signed digest",
                    sealed.display()
                )));
            }
        }
        Ok(())
    }
}

/// The size and SHA-256 (lower-case hex) of a file, read in pieces.
fn hash_file(path: &std::path::Path) -> std::io::Result<(u64, String)> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, crate::pki::identity::hex(hasher.finish().as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/a/b/client.toml"), "/a/b/client.toml");
        assert_eq!(shell_word("/a b/c'd"), r"'/a b/c'\''d'");
    }

    #[test]
    fn the_interrupted_sentence_says_what_was_done_and_how_to_finish() {
        let report = Interrupted {
            id: Uuid::nil(),
            stage: Stage::Uploading,
            sent: 10,
            total: 100,
            resume_command: "congvan send --resume X --profile p".into(),
        };
        let text = report.to_string();
        assert!(text.contains("accepted the signed manifest"), "{text}");
        assert!(text.contains("10 of 100 payload bytes"), "{text}");
        assert!(
            text.ends_with("congvan send --resume X --profile p"),
            "{text}"
        );
    }
}
