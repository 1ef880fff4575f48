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

use uuid::Uuid;

use super::{Client, ClientError};

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
    /// terminals, and SIGINT and SIGTERM caught from now on (call inside the runtime). The handler
    /// stays for the life of the process: a second Ctrl-C is reported like the first.
    pub fn terminal() -> Result<Watch, ClientError> {
        let progress: Arc<dyn Progress> = if on_terminal() {
            Arc::new(TerminalProgress::default())
        } else {
            Arc::new(NoProgress)
        };
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())
            .map_err(|e| ClientError::Input(format!("cannot handle SIGINT: {e}")))?;
        let mut terminate = signal(SignalKind::terminate())
            .map_err(|e| ClientError::Input(format!("cannot handle SIGTERM: {e}")))?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let arrived = tokio::select! {
                s = interrupt.recv() => s.is_some(),
                s = terminate.recv() => s.is_some(),
            };
            if arrived {
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
