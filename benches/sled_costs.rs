//! Where the delivery log's append time goes in sled: the cost of a transaction itself,
//! of each write in it, and of the same work grouped (many appends in one transaction)
//! or done without a transaction. The numbers decide which lever of the store's write
//! path can reach the targets in docs/PERFORMANCE.md, and show where sled itself is the
//! wall.
//!
//! `cargo bench --bench sled_costs` (`CONGVAN_BENCH_EVENTS=N`, default 200,000 per case).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::time::Instant;

mod common;

use common::event;
use congvan::ledger::{self, Event, LogTrees, TxLog};
use sled::Transactional;

fn fresh() -> (tempfile::TempDir, sled::Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path().join("db"))
        .segment_size(8 << 20)
        .open()
        .unwrap();
    (dir, db)
}

fn report(case: &str, n: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{case:<58} {:>9.0} /s  {:>7.2} µs each",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}

fn main() {
    let n: u64 = std::env::var("CONGVAN_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let leaf = vec![7u8; 330];
    let hash = [9u8; 32];

    {
        let (_d, db) = fresh();
        let t = db.open_tree("log").unwrap();
        t.insert(b"size", &0u64.to_be_bytes()[..]).unwrap();
        let started = Instant::now();
        for _ in 0..n {
            t.transaction(|tx| {
                tx.get(b"size")?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .unwrap();
        }
        report("transaction, one read, no write", n, started);
    }
    {
        let (_d, db) = fresh();
        let t = db.open_tree("log").unwrap();
        let started = Instant::now();
        for i in 0..n {
            t.transaction(|tx| {
                tx.insert(b"size", &i.to_be_bytes()[..])?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .unwrap();
        }
        report("transaction, one write", n, started);
    }
    {
        let (_d, db) = fresh();
        let t = db.open_tree("log").unwrap();
        let started = Instant::now();
        for i in 0..n {
            t.transaction(|tx| {
                tx.get(b"size")?;
                tx.insert(
                    [b"h".as_slice(), &(2 * i).to_be_bytes()].concat(),
                    &hash[..],
                )?;
                tx.insert(
                    [b"h".as_slice(), &(2 * i + 1).to_be_bytes()].concat(),
                    &hash[..],
                )?;
                tx.insert([b"l".as_slice(), &i.to_be_bytes()].concat(), &leaf[..])?;
                tx.insert([b"d".as_slice(), &i.to_be_bytes()].concat(), &[][..])?;
                tx.insert(b"size", &i.to_be_bytes()[..])?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .unwrap();
        }
        report(
            "transaction, the log's five writes in one tree (before)",
            n,
            started,
        );
    }
    {
        let (_d, db) = fresh();
        let hashes = db.open_tree("hashes").unwrap();
        let leaves = db.open_tree("leaves").unwrap();
        let index = db.open_tree("index").unwrap();
        let meta = db.open_tree("meta").unwrap();
        let started = Instant::now();
        for i in 0..n {
            (&hashes, &leaves, &index, &meta)
                .transaction(|(h, l, d, m)| {
                    m.get(b"size")?;
                    h.insert(&(2 * i).to_be_bytes(), &hash[..])?;
                    h.insert(&(2 * i + 1).to_be_bytes(), &hash[..])?;
                    l.insert(&i.to_be_bytes(), &leaf[..])?;
                    d.insert(&i.to_be_bytes(), &[][..])?;
                    m.insert(b"size", &i.to_be_bytes()[..])?;
                    Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
                })
                .unwrap();
        }
        report(
            "transaction, the same five writes in four trees",
            n,
            started,
        );
    }
    {
        let (_d, db) = fresh();
        let t = db.open_tree("log").unwrap();
        let started = Instant::now();
        for i in 0..n {
            let mut batch = sled::Batch::default();
            batch.insert(
                [b"h".as_slice(), &(2 * i).to_be_bytes()].concat(),
                &hash[..],
            );
            batch.insert(
                [b"h".as_slice(), &(2 * i + 1).to_be_bytes()].concat(),
                &hash[..],
            );
            batch.insert([b"l".as_slice(), &i.to_be_bytes()].concat(), &leaf[..]);
            batch.insert([b"d".as_slice(), &i.to_be_bytes()].concat(), &[][..]);
            batch.insert(b"size".as_slice(), &i.to_be_bytes()[..]);
            t.apply_batch(batch).unwrap();
        }
        report("apply_batch, the log's five writes", n, started);
    }
    {
        let (_d, db) = fresh();
        let t = db.open_tree("log").unwrap();
        let started = Instant::now();
        for i in 0..n {
            t.insert([b"l".as_slice(), &i.to_be_bytes()].concat(), &leaf[..])
                .unwrap();
        }
        report("plain insert, one leaf", n, started);
    }
    {
        let (_d, db) = fresh();
        let (trees, _) = LogTrees::open(&db, || Ok(())).unwrap();
        let started = Instant::now();
        for i in 0..n {
            let e = event(i);
            trees
                .as_tuple()
                .transaction(|t| ledger::append::<ledger::LedgerError>(&TxLog::of(t), &e))
                .unwrap();
        }
        report(
            "ledger::append, one transaction each (four trees)",
            n,
            started,
        );
    }
    for group in [8u64, 64, 1000] {
        let (_d, db) = fresh();
        let (trees, _) = LogTrees::open(&db, || Ok(())).unwrap();
        let started = Instant::now();
        let mut i = 0;
        while i < n {
            let events: Vec<Event> = (i..(i + group).min(n)).map(event).collect();
            trees
                .as_tuple()
                .transaction(|t| {
                    ledger::append_batch::<ledger::LedgerError>(&TxLog::of(t), &events)
                })
                .unwrap();
            i += group;
        }
        report(
            &format!("ledger::append_batch, {group} per transaction"),
            n,
            started,
        );
    }
    {
        let started = Instant::now();
        for i in 0..n {
            std::hint::black_box(event(i).leaf().unwrap());
        }
        report("encoding the leaf alone (no store)", n, started);
    }
}
