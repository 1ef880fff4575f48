//! Group commit: make sled's state durable against power loss, sharing each fsync among
//! every request waiting for one.
//!
//! sled's `flush()` writes its buffers with `sync_file_range`, which survives a process
//! crash but not a power cut. After a flush the committer also `fdatasync`s sled's data
//! file and fsyncs any new sled blob files. Requests enqueue a waiter *after* making their
//! writes; the committer takes every waiter queued so far, flushes once, syncs once and
//! answers them all, so concurrent submitters share one fsync.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

/// A request to commit: the database handle travels with it, so the committer thread
/// never keeps the database open (and locked) on its own.
type Waiter = (sled::Db, oneshot::Sender<Result<(), String>>);

/// A handle to the committer thread.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Waiter>,
    db: sled::Db,
}

impl Committer {
    /// Starts the committer for `db`, whose files live in `db_dir`.
    pub fn start(db: sled::Db, db_dir: PathBuf) -> std::io::Result<Committer> {
        let (tx, rx) = mpsc::channel::<Waiter>();
        std::thread::Builder::new()
            .name("congvan-commit".into())
            .spawn(move || run(&db_dir, rx))?;
        Ok(Committer { tx, db })
    }

    /// Waits until every write made before this call is durable.
    pub async fn commit(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((self.db.clone(), tx))
            .map_err(|_| "the commit thread has stopped".to_owned())?;
        rx.await
            .map_err(|_| "the commit thread has stopped".to_owned())?
    }
}

fn run(db_dir: &Path, rx: mpsc::Receiver<Waiter>) {
    let mut synced_blobs = HashSet::new();
    while let Ok((db, first)) = rx.recv() {
        let mut batch = vec![first];
        while let Ok((_, more)) = rx.try_recv() {
            batch.push(more);
        }
        let result = sync(&db, db_dir, &mut synced_blobs).map_err(|e| e.to_string());
        drop(db);
        if let Err(e) = &result {
            tracing::error!(error = %e, "durable commit failed");
        }
        for waiter in batch {
            let _ = waiter.send(result.clone());
        }
    }
}

/// Makes every write so far durable, outside the commit thread (before it serves anyone:
/// the migration of the log's layout when the store opens).
pub fn sync_now(db: &sled::Db, db_dir: &Path) -> std::io::Result<()> {
    sync(db, db_dir, &mut HashSet::new())
}

fn sync(db: &sled::Db, db_dir: &Path, synced_blobs: &mut HashSet<PathBuf>) -> std::io::Result<()> {
    db.flush().map_err(std::io::Error::other)?;
    std::fs::File::open(db_dir.join("db"))?.sync_data()?;
    // Values too large for a log segment live in separate blob files, which sled does
    // not fsync; sync the new ones (and the directory that names them).
    let blobs = db_dir.join("blobs");
    if let Ok(entries) = std::fs::read_dir(&blobs) {
        let mut new = false;
        for entry in entries.flatten() {
            let path = entry.path();
            if !synced_blobs.contains(&path) {
                if let Ok(f) = std::fs::File::open(&path) {
                    f.sync_data()?;
                }
                synced_blobs.insert(path);
                new = true;
            }
        }
        if new {
            std::fs::File::open(&blobs)?.sync_all()?;
        }
    }
    Ok(())
}
