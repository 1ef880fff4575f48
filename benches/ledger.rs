//! Delivery-log benchmark: append rate, proof generation time, server start-up time with a
//! large log, and durable (group-committed) event throughput.
//!
//! `cargo bench --bench ledger` (1,000,000 events); `CONGVAN_BENCH_EVENTS=N` to change the
//! size. Results go to docs/PERFORMANCE.md by hand, with the machine they came from.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::time::{Duration, Instant};

mod common;

use common::event;
use congvan::config::ServerConfig;
use congvan::directory::Directory;
use congvan::ledger::{self, LogTrees, NoteSigner, TxLog};
use congvan::notary::{KeyPurpose, ServerKeys};
use congvan::pki::demo::{self, DemoOptions};
use congvan::store::Store;
use sled::Transactional;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let events: u64 = std::env::var("CONGVAN_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let work = tempfile::tempdir().unwrap();
    let orgs = include_str!("../config/orgs.toml");
    let directory = Directory::from_toml(orgs).unwrap();
    let pki = demo::generate(
        &work.path().join("pki"),
        &directory,
        orgs,
        &DemoOptions::default(),
    )
    .unwrap();
    let mut config = ServerConfig::load(&pki.server_config()).unwrap();
    let data = work.path().join("data");
    config.data_dir = data.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. Appends: one sled transaction per event (the server's unit of work), no fsync.
    {
        let store = Store::open(&data).unwrap();
        drop(store);
        let db = sled::Config::new()
            .path(data.join("db"))
            .segment_size(8 << 20)
            .open()
            .unwrap();
        let (trees, _) = LogTrees::open(&db, || Ok(())).unwrap();
        let started = Instant::now();
        let mut last_report = Instant::now();
        for i in 0..events {
            let e = event(i);
            trees
                .as_tuple()
                .transaction(|t| ledger::append::<ledger::LedgerError>(&TxLog::of(t), &e))
                .unwrap();
            if last_report.elapsed() > Duration::from_secs(10) {
                eprintln!("  … {i} events");
                last_report = Instant::now();
            }
        }
        db.flush().unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "append: {events} events in {secs:.1} s = {:.0} events/s (one per transaction)",
            events as f64 / secs
        );
    }
    // 1b. The same appends in groups, in a store of their own: one transaction per group,
    //     for the group sizes the server uses (1: every request; a few: the reform plans
    //     that come into force together; up to 1,000: a restore's page of leaves) and 64
    //     (a commit group of 64 concurrent requests, should the store ever batch them).
    for group in [8u64, 64, 1000] {
        let scratch = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(scratch.path().join("db"))
            .segment_size(8 << 20)
            .open()
            .unwrap();
        let (trees, _) = LogTrees::open(&db, || Ok(())).unwrap();
        let n = events.min(200_000);
        let started = Instant::now();
        let mut i = 0;
        while i < n {
            let batch: Vec<_> = (i..(i + group).min(n)).map(event).collect();
            trees
                .as_tuple()
                .transaction(|t| ledger::append_batch::<ledger::LedgerError>(&TxLog::of(t), &batch))
                .unwrap();
            i += group;
        }
        db.flush().unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "append_batch: {n} events in groups of {group} in {secs:.1} s = {:.0} events/s",
            n as f64 / secs
        );
    }
    // 1c. Contention: 64 threads appending one event per transaction, no fsync, each
    //     transaction run freely (sled retries conflicts on the size key) or under one
    //     mutex, as the store can take around its log-writing transactions.
    for serialised in [false, true] {
        let scratch = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(scratch.path().join("db"))
            .segment_size(8 << 20)
            .open()
            .unwrap();
        let (trees, _) = LogTrees::open(&db, || Ok(())).unwrap();
        let lock = std::sync::Mutex::new(());
        let per_thread = events.min(200_000) / 64;
        let started = Instant::now();
        std::thread::scope(|s| {
            for w in 0..64u64 {
                let (trees, lock) = (&trees, &lock);
                s.spawn(move || {
                    for i in 0..per_thread {
                        let e = event(w * 1_000_000 + i);
                        let _guard = serialised.then(|| lock.lock().unwrap());
                        trees
                            .as_tuple()
                            .transaction(|t| {
                                ledger::append::<ledger::LedgerError>(&TxLog::of(t), &e)
                            })
                            .unwrap();
                    }
                });
            }
        });
        let secs = started.elapsed().as_secs_f64();
        let total = per_thread * 64;
        println!(
            "64 threads, one append per transaction, {}: {total} events in {secs:.1} s = {:.0} events/s",
            if serialised {
                "under one mutex"
            } else {
                "free (sled retries)"
            },
            total as f64 / secs
        );
    }
    let size_on_disk: u64 = walk(&data.join("db"));
    println!(
        "store size with {events} events: {:.0} MiB",
        size_on_disk as f64 / (1 << 20) as f64
    );

    // 2. Proofs at full size.
    let store = Store::open(&data).unwrap();
    let log = store.log();
    let size = log.size().unwrap();
    assert_eq!(size, events);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let root = log.root(size).unwrap();
    let mut inclusion = Vec::new();
    for _ in 0..10_000 {
        let index = next() % size;
        let started = Instant::now();
        let proof = log.inclusion_proof(index, size).unwrap();
        inclusion.push(started.elapsed());
        assert!(ledger::check_inclusion(
            &proof,
            size,
            root,
            index,
            &event(index).leaf().unwrap()
        ));
    }
    inclusion.sort();
    println!(
        "inclusion proof at size {size}: median {:?}, p99 {:?} (10,000 random indexes, each verified)",
        percentile(&inclusion, 0.5),
        percentile(&inclusion, 0.99)
    );
    let mut consistency = Vec::new();
    for _ in 0..2_000 {
        let from = 1 + next() % (size - 1);
        let started = Instant::now();
        log.consistency_proof(from, size).unwrap();
        consistency.push(started.elapsed());
    }
    consistency.sort();
    println!(
        "consistency proof to size {size}: median {:?}, p99 {:?} (2,000 random sizes)",
        percentile(&consistency, 0.5),
        percentile(&consistency, 0.99)
    );

    // 3. Start-up with that log: sign a checkpoint as the server would, then build the
    //    server (PKI, directory, store, and the O(log n) log check).
    let keys = ServerKeys::load_or_create(&data.join("keys")).unwrap();
    let public = keys.public_key(KeyPurpose::Log).unwrap();
    let signer = NoteSigner::new(&config.log.origin, &public, |m: &[u8]| {
        keys.sign_bytes(KeyPurpose::Log, m)
            .map_err(|e| e.to_string())
    });
    let note = ledger::checkpoint::sign(&config.log.origin, size, root, &signer).unwrap();
    rt.block_on(store.save_checkpoint(size, &note)).unwrap();
    drop(log);
    drop(store);
    let started = Instant::now();
    let server = congvan::server::Server::build(&config).unwrap();
    let startup = started.elapsed();
    println!("server start-up with {size} log entries (build, incl. log check): {startup:?}");
    drop(server);

    // 4. Durable events: each waits for its fsync; concurrent writers share them.
    let store = Store::open(&data).unwrap();
    for writers in [1usize, 16, 64] {
        let per_writer = 2000 / writers.max(1) as u64 + 1;
        let started = Instant::now();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for w in 0..writers {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..per_writer {
                        store
                            .log_event(&event(10_000_000 + w as u64 * 100_000 + i))
                            .await
                            .unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let total = per_writer * writers as u64;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "durable appends, {writers:>2} concurrent writers: {total} events in {secs:.2} s = {:.0} events/s",
            total as f64 / secs
        );
    }

    // 5. Migration of the first layout (one `log` tree) on open: the log of section 1
    //    rewritten under the old keys in a scratch database, then opened, copy and
    //    fsyncs included.
    drop(store);
    {
        let db = sled::Config::new()
            .path(data.join("db"))
            .segment_size(8 << 20)
            .open()
            .unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let old_db = sled::Config::new()
            .path(scratch.path().join("db"))
            .segment_size(8 << 20)
            .open()
            .unwrap();
        let old = old_db.open_tree("log").unwrap();
        let mut keys = 0u64;
        for (name, prefix) in [
            ("log_leaves", Some(b'L')),
            ("log_hashes", Some(b'H')),
            ("log_docs", Some(b'D')),
            ("log_meta", None),
        ] {
            let mut batch = sled::Batch::default();
            for item in db.open_tree(name).unwrap().iter() {
                let (k, v) = item.unwrap();
                if k.as_ref() == b"layout" {
                    continue;
                }
                batch.insert(
                    prefix
                        .into_iter()
                        .chain(k.iter().copied())
                        .collect::<Vec<u8>>(),
                    v,
                );
                keys += 1;
            }
            old.apply_batch(batch).unwrap();
        }
        old_db.flush().unwrap();
        drop(old);
        let db_file = scratch.path().join("db").join("db");
        let started = Instant::now();
        let (_, migration) = LogTrees::open(&old_db, || {
            old_db.flush().map_err(ledger::LedgerError::from)?;
            std::fs::File::open(&db_file)
                .and_then(|f| f.sync_data())
                .map_err(|e| ledger::LedgerError::Storage(e.to_string()))
        })
        .unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "migration of {events} events ({keys} keys, {migration:?}) on open: {secs:.2} s = {:.0} events/s",
            events as f64 / secs
        );
    }
}

fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let meta = e.metadata().unwrap();
                    if meta.is_dir() {
                        walk(&e.path())
                    } else {
                        meta.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
