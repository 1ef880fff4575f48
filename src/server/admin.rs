//! The operator's local socket: `congvan backup` asks the running server for a
//! consistent copy of its state here.
//!
//! A Unix socket in the data directory ([`SOCKET_NAME`], mode 0600), not an HTTP route:
//! only a process running as the service user (who can read the data directory anyway)
//! can connect, so no certificate or role is needed and nothing is exposed on the
//! network. The protocol is one JSON request line ([`Since`]) answered by JSON lines
//! ([`Item`]), the last one `end` or `error`. One backup runs at a time.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};

use crate::server::AppState;
use crate::store::StoreError;
use crate::store::backup::{Item, Since, Want};

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "admin.sock";
/// Longest request line.
const REQUEST_BYTES_MAX: u64 = 4096;
/// Time allowed to send the request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines buffered between the store's reader thread and the socket.
const LINES_BUFFERED: usize = 64;

/// Serves the socket until `stop` changes. A socket that cannot be made only disables
/// online backups (logged); the server still serves documents.
pub async fn serve(state: AppState, mut stop: watch::Receiver<bool>) {
    let path = state.store.dir().join(SOCKET_NAME);
    let listener = match bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(socket = %path.display(), error = %e, "no backup socket: online backups are unavailable");
            return;
        }
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(handle(state.clone(), stream));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "backup socket accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// Binds the socket, replacing one left by a killed server (sled's lock on the data
/// directory guarantees no other server uses it), owner-only.
fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt as _;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn handle(state: AppState, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read);
    let request = match tokio::time::timeout(
        REQUEST_TIMEOUT,
        (&mut reader).take(REQUEST_BYTES_MAX).read_line(&mut line),
    )
    .await
    {
        Ok(Ok(_)) => serde_json::from_str::<Since>(&line).map_err(|e| format!("bad request: {e}")),
        Ok(Err(e)) => Err(format!("bad request: {e}")),
        Err(_) => Err("no request within 10 s".to_owned()),
    };
    let since = match request {
        Ok(since) => since,
        Err(message) => {
            let _ = send(&mut write, &Item::Error { message }).await;
            return;
        }
    };
    // A fresh checkpoint first, so the backup carries one that covers nearly all of it.
    if let Err(e) = crate::server::routes::log::issue_checkpoint(&state).await {
        tracing::warn!(error = %e, "no checkpoint before the backup");
    }
    let (tx, mut rx) = mpsc::channel::<Item>(LINES_BUFFERED);
    // The reader's answers to `blob` lines travel back to the store's thread here.
    let (answer_tx, answer_rx) = std::sync::mpsc::channel::<bool>();
    let store = state.store.clone();
    let origin = state.log_origin.to_string();
    let started = std::time::Instant::now();
    let task = tokio::task::spawn_blocking(move || {
        let mut emit = |item: Item| {
            tx.blocking_send(item)
                .map_err(|_| StoreError::State("the backup client went away".into()))
        };
        let mut want = || {
            answer_rx
                .recv()
                .map_err(|_| StoreError::State("the backup client went away".into()))
        };
        let result = store.backup(&since, &origin, &mut emit, &mut want);
        if let Err(e) = &result {
            let _ = tx.blocking_send(Item::Error {
                message: e.to_string(),
            });
        }
        result
    });
    while let Some(item) = rx.recv().await {
        if send(&mut write, &item).await.is_err() {
            // Dropping the receiver makes the reader's next send fail, which ends the
            // backup and its snapshot.
            break;
        }
        if matches!(item, Item::Blob { .. }) {
            line.clear();
            let answer = tokio::time::timeout(
                REQUEST_TIMEOUT,
                (&mut reader).take(REQUEST_BYTES_MAX).read_line(&mut line),
            )
            .await;
            let want = match answer {
                Ok(Ok(n)) if n > 0 => serde_json::from_str::<Want>(&line).ok(),
                _ => None,
            };
            // No answer, or not one we understand: end the backup.
            let Some(want) = want else { break };
            if answer_tx.send(want.want).is_err() {
                break;
            }
        }
    }
    drop(rx);
    drop(answer_tx);
    match task.await {
        Ok(Ok(())) => {
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "backup taken"
            )
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "backup failed"),
        Err(e) => tracing::error!(error = %e, "backup task failed"),
    }
}

async fn send(write: &mut tokio::net::unix::OwnedWriteHalf, item: &Item) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(item).map_err(std::io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await
}
