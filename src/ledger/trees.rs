//! Where the log lives in sled: one tree per kind of key, and the migration from the
//! single `log` tree that stores before issue 16 used.
//!
//! Keys of four kinds interleaved in one tree land on different pages at every append;
//! in a tree of its own each kind only grows at its right edge, which made the log's five
//! writes per append cost 46.8 µs instead of 82.7 µs (docs/PERFORMANCE.md, "Where an
//! append's time goes in sled"). The trees:
//! - `log_leaves`: index (u64 BE) → the leaf;
//! - `log_hashes`: stored-hash index (u64 BE) → a 32-byte node hash;
//! - `log_docs`: document id (16 bytes) + index (u64 BE) → nothing;
//! - `log_meta`: `S` → the size (u64 BE); `G` → the digest of the last directory logged;
//!   `R\0` + plan id → the index of its `reorganised` event; `layout` → the layout's
//!   version (present once the store is in this layout).

use sled::transaction::TransactionalTree;

use super::LedgerError;

/// The single tree of the first layout (before issue 16).
pub const OLD_TREE: &str = "log";
/// The tree names of this layout, in the order [`LogTrees::as_tuple`] gives them.
pub const TREE_NAMES: [&str; 4] = ["log_leaves", "log_hashes", "log_docs", "log_meta"];
/// The key in `log_meta` that says the store is in this layout (its value: [`LAYOUT`]).
pub(super) const LAYOUT_KEY: &[u8] = b"layout";
/// The layout version this build writes.
const LAYOUT: &[u8] = &[2];
/// Keys copied per batch during a migration, so memory stays bounded on a large log.
const MIGRATION_BATCH: usize = 10_000;

/// The log's sled trees. Every transaction that appends takes all four (see
/// [`LogTrees::as_tuple`]) and hands [`TxLog`] to the ledger's append functions.
#[derive(Clone, Debug)]
pub struct LogTrees {
    /// Index → leaf.
    pub leaves: sled::Tree,
    /// Stored-hash index → hash.
    pub hashes: sled::Tree,
    /// Document id + index → nothing.
    pub docs: sled::Tree,
    /// Size, directory digest, reform markers, layout version.
    pub meta: sled::Tree,
}

/// The log's trees inside one sled transaction.
#[derive(Clone, Copy)]
pub struct TxLog<'a> {
    /// Index → leaf.
    pub leaves: &'a TransactionalTree,
    /// Stored-hash index → hash.
    pub hashes: &'a TransactionalTree,
    /// Document id + index → nothing.
    pub docs: &'a TransactionalTree,
    /// Size, directory digest, reform markers.
    pub meta: &'a TransactionalTree,
}

impl<'a> TxLog<'a> {
    /// The log's view of a transaction over [`LogTrees::as_tuple`].
    pub fn new(
        (leaves, hashes, docs, meta): (
            &'a TransactionalTree,
            &'a TransactionalTree,
            &'a TransactionalTree,
            &'a TransactionalTree,
        ),
    ) -> TxLog<'a> {
        TxLog {
            leaves,
            hashes,
            docs,
            meta,
        }
    }
}

/// The view sled gives a transaction over [`LogTrees::as_tuple`] alone.
pub type LogView = (
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
);

impl<'a> TxLog<'a> {
    /// The log's view of a transaction over [`LogTrees::as_tuple`] alone.
    pub fn of(view: &'a LogView) -> TxLog<'a> {
        TxLog::new((&view.0, &view.1, &view.2, &view.3))
    }
}

/// What [`LogTrees::open`] did to the store's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Migration {
    /// The store was already in this layout (or new).
    None,
    /// The keys of the old `log` tree were copied into the new trees (this many).
    Copied(u64),
    /// A migration had copied and marked the layout but not yet dropped the old tree; it
    /// was dropped now.
    Finished,
}

impl LogTrees {
    /// Opens the log's trees in `db`, migrating a store of the first layout (one `log`
    /// tree) first. `sync` must make everything written so far durable against power loss
    /// (sled's own flush does not); it is called between the steps, so a crash at any
    /// point leaves either the old layout intact (the copy is re-run from the start) or
    /// the layout marked (only the old tree is left to drop). Copying overwrites with the
    /// same values, so re-running it is harmless.
    pub fn open(
        db: &sled::Db,
        sync: impl Fn() -> Result<(), LedgerError>,
    ) -> Result<(LogTrees, Migration), LedgerError> {
        let [leaves, hashes, docs, meta] = TREE_NAMES.map(|name| db.open_tree(name));
        let trees = LogTrees {
            leaves: leaves?,
            hashes: hashes?,
            docs: docs?,
            meta: meta?,
        };
        let has_old = db
            .tree_names()
            .iter()
            .any(|name| name.as_ref() == OLD_TREE.as_bytes());
        let mut migration = Migration::None;
        if trees.meta.get(LAYOUT_KEY)?.is_none() {
            if has_old {
                let copied = trees.copy_from(&db.open_tree(OLD_TREE)?)?;
                // The copy must be durable before the marker that says it is complete.
                sync()?;
                migration = Migration::Copied(copied);
            }
            trees.meta.insert(LAYOUT_KEY, LAYOUT)?;
            sync()?;
        } else if has_old {
            migration = Migration::Finished;
        }
        if has_old {
            db.drop_tree(OLD_TREE)?;
            sync()?;
        }
        Ok((trees, migration))
    }

    /// Copies every key of the old single tree into the tree of its kind, in bounded
    /// batches; returns how many keys were copied.
    fn copy_from(&self, old: &sled::Tree) -> Result<u64, LedgerError> {
        let mut batches: [sled::Batch; 4] = Default::default();
        let mut pending = 0usize;
        let mut copied = 0u64;
        for item in old.iter() {
            let (key, value) = item?;
            let (which, new_key) = match key.first() {
                Some(b'L') if key.len() == 9 => (0, &key[1..]),
                Some(b'H') if key.len() == 9 => (1, &key[1..]),
                Some(b'D') if key.len() == 25 => (2, &key[1..]),
                // Everything else is small metadata, kept under its own key.
                _ => (3, &key[..]),
            };
            if let Some(batch) = batches.get_mut(which) {
                batch.insert(new_key, value);
            }
            pending += 1;
            copied += 1;
            if pending >= MIGRATION_BATCH {
                self.apply(&mut batches)?;
                pending = 0;
            }
        }
        self.apply(&mut batches)?;
        Ok(copied)
    }

    fn apply(&self, batches: &mut [sled::Batch; 4]) -> Result<(), LedgerError> {
        for (tree, batch) in self.all().into_iter().zip(batches.iter_mut()) {
            tree.apply_batch(std::mem::take(batch))?;
        }
        Ok(())
    }

    fn all(&self) -> [&sled::Tree; 4] {
        [&self.leaves, &self.hashes, &self.docs, &self.meta]
    }

    /// The four trees as a tuple, for sled's `Transactional` (a store transaction puts
    /// them beside its own trees and passes the four views to [`TxLog::new`]).
    pub fn as_tuple(&self) -> (&sled::Tree, &sled::Tree, &sled::Tree, &sled::Tree) {
        (&self.leaves, &self.hashes, &self.docs, &self.meta)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use sled::Transactional;
    use tlog_tiles::tlog::{self, Hash, HashReader};
    use uuid::Uuid;

    use super::*;
    use crate::ledger::{self, Event, Log};

    /// Writes the first layout exactly as the build before issue 16 did: one `log` tree,
    /// `L` + index → leaf, `H` + stored index → hash, `D` + document + index → nothing,
    /// `S` → size, `G` → directory digest, `R\0` + plan → index. Independent of the code
    /// under test, so a migration that misreads the old keys fails here.
    fn write_old_layout(db: &sled::Db, events: &[Event]) -> Vec<Vec<u8>> {
        struct Old<'a>(&'a sled::Tree);
        impl HashReader for Old<'_> {
            fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
                Ok(indexes
                    .iter()
                    .map(|i| {
                        let mut k = vec![b'H'];
                        k.extend_from_slice(&i.to_be_bytes());
                        let v = self.0.get(k).unwrap().unwrap();
                        Hash(<[u8; 32]>::try_from(v.as_ref()).unwrap())
                    })
                    .collect())
            }
        }
        let old = db.open_tree(OLD_TREE).unwrap();
        let mut leaves = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let index = index as u64;
            let leaf = event.leaf().unwrap();
            let hashes = tlog::stored_hashes(index, &leaf, &Old(&old)).unwrap();
            let first = tlog::stored_hash_index(0, index);
            for (i, h) in hashes.iter().enumerate() {
                let mut k = vec![b'H'];
                k.extend_from_slice(&(first + i as u64).to_be_bytes());
                old.insert(k, &h.0[..]).unwrap();
            }
            let mut k = vec![b'L'];
            k.extend_from_slice(&index.to_be_bytes());
            old.insert(k, leaf.as_slice()).unwrap();
            if let Some(id) = event.document_id() {
                let mut k = vec![b'D'];
                k.extend_from_slice(id.as_bytes());
                k.extend_from_slice(&index.to_be_bytes());
                old.insert(k, &[][..]).unwrap();
            }
            old.insert(b"S", &(index + 1).to_be_bytes()[..]).unwrap();
            leaves.push(leaf);
        }
        old.insert(b"G", &[7u8; 32][..]).unwrap();
        let mut reform = b"R\0".to_vec();
        reform.extend_from_slice(b"plan-1");
        old.insert(reform, &3u64.to_be_bytes()[..]).unwrap();
        db.flush().unwrap();
        leaves
    }

    fn events(doc: Uuid, n: u64) -> Vec<Event> {
        (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    Event::DirectoryChanged {
                        time: format!("t{i}"),
                        directory_sha256: format!("{i:064}"),
                    }
                } else {
                    Event::Refused {
                        time: format!("t{i}"),
                        document_id: Some(doc),
                        actor: "hn/cm".into(),
                        sender: None,
                        recipients: Vec::new(),
                        code: format!("c{i}"),
                    }
                }
            })
            .collect()
    }

    fn has_old(db: &sled::Db) -> bool {
        db.tree_names().iter().any(|n| n.as_ref() == b"log")
    }

    /// Checks the migrated log: same root as the old leaves, the per-document index and
    /// metadata carried, and appends continuing at the old size.
    fn check_migrated(trees: &LogTrees, doc: Uuid, mut leaves: Vec<Vec<u8>>) {
        let log = Log::new(trees.clone());
        let n = leaves.len() as u64;
        assert_eq!(log.size().unwrap(), n);
        assert_eq!(log.root(n).unwrap(), ledger::root_of_leaves(&leaves));
        let audit = log.audit(None).unwrap();
        assert_eq!(audit.first_bad_index, None);
        assert_eq!(audit.recomputed_root, audit.stored_root);
        let expected: Vec<u64> = (0..n).filter(|i| i % 3 != 0).collect();
        assert_eq!(log.document_events(&doc).unwrap(), expected);
        let (digest, reform) = trees
            .as_tuple()
            .transaction(|t| {
                let tx = TxLog::of(t);
                Ok::<_, sled::transaction::ConflictableTransactionError<LedgerError>>((
                    ledger::last_directory_digest(&tx)?,
                    ledger::reform_logged(&tx, "plan-1")?,
                ))
            })
            .unwrap();
        assert_eq!(digest, Some(vec![7u8; 32]));
        assert!(reform);
        let next = events(doc, n + 1).pop().unwrap();
        let index = trees
            .as_tuple()
            .transaction(|t| ledger::append::<LedgerError>(&TxLog::of(t), &next))
            .unwrap();
        assert_eq!(index, n);
        leaves.push(next.leaf().unwrap());
        assert_eq!(log.root(n + 1).unwrap(), ledger::root_of_leaves(&leaves));
        assert!(ledger::check_consistency(
            &log.consistency_proof(n, n + 1).unwrap(),
            n,
            ledger::root_of_leaves(&leaves[..n as usize]),
            n + 1,
            log.root(n + 1).unwrap()
        ));
    }

    #[test]
    fn a_store_of_the_first_layout_is_migrated_and_keeps_its_root() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let doc = Uuid::now_v7();
        let leaves = write_old_layout(&db, &events(doc, 70));
        let (trees, migration) = LogTrees::open(&db, || Ok(())).unwrap();
        // 70 leaves, 70 + 66 hashes (2n - popcount(n)), 46 document keys, S, G, one reform.
        assert_eq!(migration, Migration::Copied(70 + 137 + 46 + 3));
        assert!(!has_old(&db), "the old tree is dropped");
        check_migrated(&trees, doc, leaves);
        // Opening again does nothing.
        drop(trees);
        let (trees, migration) = LogTrees::open(&db, || Ok(())).unwrap();
        assert_eq!(migration, Migration::None);
        assert_eq!(Log::new(trees).size().unwrap(), 71);
    }

    #[test]
    fn a_migration_interrupted_at_any_step_is_completed_by_the_next_open() {
        let doc = Uuid::now_v7();
        // The process dies at the first, second or third durable step: after the copy,
        // after the layout mark, after dropping the old tree.
        for dies_at in 1..=3u32 {
            let dir = tempfile::tempdir().unwrap();
            let db = sled::open(dir.path().join("db")).unwrap();
            let leaves = write_old_layout(&db, &events(doc, 33));
            let calls = Cell::new(0u32);
            let crash = || {
                calls.set(calls.get() + 1);
                if calls.get() == dies_at {
                    Err(LedgerError::Storage("killed".into()))
                } else {
                    Ok(())
                }
            };
            assert!(LogTrees::open(&db, crash).is_err(), "step {dies_at}");
            let (trees, migration) = LogTrees::open(&db, || Ok(())).unwrap();
            match dies_at {
                1 => assert!(matches!(migration, Migration::Copied(_))),
                2 => assert!(matches!(migration, Migration::Finished)),
                _ => assert_eq!(migration, Migration::None),
            }
            assert!(!has_old(&db));
            check_migrated(&trees, doc, leaves);
        }
    }

    #[test]
    fn a_copy_cut_short_is_redone_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let doc = Uuid::now_v7();
        let leaves = write_old_layout(&db, &events(doc, 40));
        // A crash in the middle of the copy: some leaves and the size are already in the
        // new trees (with a wrong size, as a half-applied batch could leave it), no marker.
        let new_leaves = db.open_tree("log_leaves").unwrap();
        new_leaves
            .insert(0u64.to_be_bytes(), b"partial".as_slice())
            .unwrap();
        let meta = db.open_tree("log_meta").unwrap();
        meta.insert(b"S", &5u64.to_be_bytes()[..]).unwrap();
        let (trees, migration) = LogTrees::open(&db, || Ok(())).unwrap();
        assert!(matches!(migration, Migration::Copied(_)));
        check_migrated(&trees, doc, leaves);
    }

    #[test]
    fn a_batch_appends_what_single_appends_would() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let (one, _) = LogTrees::open(&db, || Ok(())).unwrap();
        let other = sled::open(dir.path().join("db2")).unwrap();
        let (batched, _) = LogTrees::open(&other, || Ok(())).unwrap();
        let doc = Uuid::now_v7();
        let all = events(doc, 45);
        for e in &all {
            one.as_tuple()
                .transaction(|t| ledger::append::<LedgerError>(&TxLog::of(t), e))
                .unwrap();
        }
        let mut at = 0u64;
        for group in all.chunks(8) {
            let first = batched
                .as_tuple()
                .transaction(|t| ledger::append_batch::<LedgerError>(&TxLog::of(t), group))
                .unwrap();
            assert_eq!(first, at);
            at += group.len() as u64;
        }
        let empty = batched
            .as_tuple()
            .transaction(|t| ledger::append_batch::<LedgerError>(&TxLog::of(t), &[]))
            .unwrap();
        assert_eq!(empty, 45);
        for (a, b) in one.all().into_iter().zip(batched.all()) {
            let a: Vec<_> = a.iter().map(Result::unwrap).collect();
            let b: Vec<_> = b.iter().map(Result::unwrap).collect();
            assert_eq!(a, b);
        }
        let leaves: Vec<Vec<u8>> = all.iter().map(|e| e.leaf().unwrap()).collect();
        assert_eq!(
            Log::new(batched).root(45).unwrap(),
            ledger::root_of_leaves(&leaves)
        );
    }
}
