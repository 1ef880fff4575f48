//! A consistent view of a running store for backups, without stopping writers.
//!
//! sled 0.34 has no snapshots, and copying the database under a lock would stop
//! submissions for as long as the copy takes. Instead a backup marks a *cut*: it takes the
//! write side of [`Gate`] for an instant (no store transaction is running then), reads the
//! log's size, and from then on every writer records the value each key of `docs` and
//! `deliveries` had *before* its first change after the cut (a pre-image). The backup
//! reads the live trees and, for every key with a pre-image, uses the pre-image instead,
//! which gives exactly the state at the cut.
//!
//! Why that is exact: a writer reads the current value inside its transaction, records it
//! (the first record of a key wins) and only then writes. Any change committed after the
//! cut was recorded before it was committed, so a reader that sees a changed value always
//! finds its pre-image, and a value recorded later than the first change is never used.
//! The log needs no pre-images: entries below the cut's size never change, and the other
//! trees are filtered by the log (see `store::backup`).
//!
//! Writers pay one uncontended read lock per write and, only while a backup runs, one map
//! insert per changed key. The pre-images are bounded by [`PRE_IMAGE_BYTES_MAX`]; a
//! backup that would need more fails instead of growing the server's memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use sled::IVec;

/// Bytes of pre-images kept for one running backup at most. A backup during which
/// writers change more than this fails (and can be run again) rather than holding an
/// unbounded amount of the server's memory.
pub const PRE_IMAGE_BYTES_MAX: u64 = 256 << 20;

/// The trees whose changes are recorded while a backup runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kept {
    /// Document records.
    Docs,
    /// Delivery records.
    Deliveries,
    /// Incoming registers and outgoing numbers (carried whole by every backup).
    Registers,
}

/// A key's value at the cut (`None`: the key did not exist), by tree and key.
type PreImageMap = HashMap<(Kept, Vec<u8>), Option<IVec>>;

/// The values keys had at a backup's cut, for the keys changed since.
#[derive(Default)]
pub(crate) struct PreImages {
    map: Mutex<PreImageMap>,
    bytes: AtomicU64,
    overflowed: AtomicBool,
}

impl PreImages {
    /// Records `old` as the value of `key` at the cut, unless one is recorded already.
    fn keep(&self, tree: Kept, key: &[u8], old: Option<&IVec>) {
        if self.overflowed.load(Ordering::Relaxed) {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(&(tree, key.to_vec())) {
            return;
        }
        let size = key.len() as u64 + old.map_or(0, |v| v.len() as u64) + 64;
        if self.bytes.fetch_add(size, Ordering::Relaxed) + size > PRE_IMAGE_BYTES_MAX {
            self.overflowed.store(true, Ordering::Relaxed);
            return;
        }
        map.insert((tree, key.to_vec()), old.cloned());
    }

    /// The value of `key` at the cut, given the value read from the live tree *before*
    /// this call (the order matters: see the module documentation).
    pub(crate) fn at_cut(&self, tree: Kept, key: &[u8], live: Option<IVec>) -> Option<IVec> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&(tree, key.to_vec())) {
            Some(old) => old.clone(),
            None => live,
        }
    }

    /// True when the writers changed more than [`PRE_IMAGE_BYTES_MAX`] and the view is no
    /// longer exact.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }
}

/// Where writers and a backup meet. Writers hold the read side while they write; a backup
/// holds the write side only while it marks its cut.
#[derive(Default)]
pub(crate) struct Gate {
    active: RwLock<Option<Arc<PreImages>>>,
}

/// A writer's pass through the gate; recording is a no-op when no backup runs.
pub(crate) struct Entered<'a> {
    guard: RwLockReadGuard<'a, Option<Arc<PreImages>>>,
}

impl Entered<'_> {
    /// Records the value `key` had before this writer changes it.
    pub(crate) fn keep(&self, tree: Kept, key: &[u8], old: Option<&IVec>) {
        if let Some(pre) = self.guard.as_ref() {
            pre.keep(tree, key, old);
        }
    }
}

impl Gate {
    /// Enters for one write: hold the result until the write is applied.
    pub(crate) fn enter(&self) -> Entered<'_> {
        Entered {
            guard: self.active.read().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Marks a cut: waits for the writes in progress, runs `at_cut` while no write can
    /// start, and starts recording pre-images. `None` when a backup is already running.
    pub(crate) fn begin<T>(&self, at_cut: impl FnOnce() -> T) -> Option<(Arc<PreImages>, T)> {
        let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
        if active.is_some() {
            return None;
        }
        let pre = Arc::new(PreImages::default());
        *active = Some(pre.clone());
        let value = at_cut();
        Some((pre, value))
    }

    /// Stops recording (the backup finished, failed or its reader went away).
    pub(crate) fn end(&self) {
        let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
        *active = None;
    }
}
