//! The `registers` tree: incoming registers (số đến) and the outgoing numbers in use.
//!
//! Keys (organisation ids contain no 0x00):
//! - `n\0<org>\0<year i32 BE>` → the last incoming number given (u64 BE);
//! - `i\0<org>\0<year i32 BE><number u64 BE>` → [`IncomingEntry`] (JSON);
//! - `d\0<org>\0<document id>` → the year and number given to that document;
//! - `c\0<org>\0<year i32 BE>` → when the year's register was closed (RFC 3339);
//! - `o\0<sender>\0<period>\0<number>\0<notation>` → the document id that used them.
//!
//! Numbers are taken inside sled transactions that read and write the counter, so two
//! clerks accepting at once get consecutive numbers and a failed transaction takes none.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use uuid::Uuid;

use super::snapshot::{Entered, Kept};
use super::{StoreError, db_err};
use crate::registers::IncomingEntry;

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn key(tag: u8, org: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(org.len() + rest.len() + 3);
    k.push(tag);
    k.push(0);
    k.extend_from_slice(org.as_bytes());
    k.push(0);
    k.extend_from_slice(rest);
    k
}

fn corrupt(what: &str) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(StoreError::Corrupt {
        key: what.to_owned(),
        reason: "register record".into(),
    })
}

/// The key under which an outgoing number and notation are remembered.
pub(crate) fn outgoing_key(sender: &str, outgoing: &str) -> Vec<u8> {
    key(b'o', sender, outgoing.as_bytes())
}

/// Inside a transaction: the document already holding this outgoing number, if any.
pub(crate) fn outgoing_holder(tx: &TransactionalTree, key: &[u8]) -> TxResult<Option<Uuid>> {
    match tx.get(key)? {
        None => Ok(None),
        Some(bytes) => Uuid::from_slice(&bytes)
            .map(Some)
            .map_err(|_| corrupt("outgoing number")),
    }
}

/// Inside a transaction: gives `entry` (whose `number` is ignored) the next incoming
/// number of its organisation and year, unless the document already has one; returns the
/// number.
pub(crate) fn assign_incoming(
    tx: &TransactionalTree,
    gate: &Entered<'_>,
    org: &str,
    mut entry: IncomingEntry,
) -> TxResult<u64> {
    if let Some(id) = entry.document_id {
        if let Some(bytes) = tx.get(key(b'd', org, id.as_bytes()))? {
            let number = bytes
                .get(4..12)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| corrupt("incoming document"))?;
            return Ok(number);
        }
    }
    let year = entry.year.to_be_bytes();
    if tx.get(key(b'c', org, &year))?.is_some() {
        return Err(ConflictableTransactionError::Abort(
            StoreError::RegisterClosed {
                org: org.to_owned(),
                year: entry.year,
            },
        ));
    }
    let counter = key(b'n', org, &year);
    let old = tx.get(&counter)?;
    // A running backup keeps what every key it will read held at its cut.
    gate.keep(Kept::Registers, &counter, old.as_ref());
    let last = match old {
        None => 0,
        Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| corrupt("incoming counter"))?,
    };
    let number = last + 1;
    entry.number = number;
    tx.insert(counter, &number.to_be_bytes())?;
    let mut line = year.to_vec();
    line.extend_from_slice(&number.to_be_bytes());
    let bytes = serde_json::to_vec(&entry).map_err(|_| corrupt("incoming entry"))?;
    let line_key = key(b'i', org, &line);
    gate.keep(Kept::Registers, &line_key, None);
    tx.insert(line_key, bytes)?;
    if let Some(id) = entry.document_id {
        let doc_key = key(b'd', org, id.as_bytes());
        gate.keep(Kept::Registers, &doc_key, None);
        tx.insert(doc_key, line)?;
    }
    Ok(number)
}

impl super::Store {
    /// The document that used this outgoing number and notation in its period, if any.
    pub fn outgoing_holder(
        &self,
        sender: &str,
        outgoing: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        match self
            .registers
            .get(outgoing_key(sender, outgoing))
            .map_err(db_err(&self.dir))?
        {
            None => Ok(None),
            Some(bytes) => Uuid::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    key: "outgoing number".into(),
                    reason: e.to_string(),
                }),
        }
    }

    /// Registers a paper document (metadata only) in `org`'s incoming register, in the
    /// same sequence as electronic ones; durable on return. Returns the number.
    pub async fn register_paper(&self, org: &str, entry: IncomingEntry) -> Result<u64, StoreError> {
        let result = {
            // Held until the write is applied (see `snapshot`), not across the commit.
            let gate = self.gate.enter();
            self.registers
                .transaction(|tx| assign_incoming(tx, &gate, org, entry.clone()))
        };
        let number = super::finish(result, &self.dir)?;
        self.commit().await?;
        Ok(number)
    }

    /// `org`'s incoming register for `year`, in number order.
    pub fn incoming_register(
        &self,
        org: &str,
        year: i32,
    ) -> Result<Vec<IncomingEntry>, StoreError> {
        let prefix = key(b'i', org, &year.to_be_bytes());
        let mut out = Vec::new();
        for item in self.registers.scan_prefix(prefix) {
            let (_, value) = item.map_err(db_err(&self.dir))?;
            out.push(
                serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                    key: format!("incoming register of {org}"),
                    reason: e.to_string(),
                })?,
            );
        }
        Ok(out)
    }

    /// When `org`'s register for `year` was closed, if it was.
    pub fn register_closed_at(&self, org: &str, year: i32) -> Result<Option<String>, StoreError> {
        Ok(self
            .registers
            .get(key(b'c', org, &year.to_be_bytes()))
            .map_err(db_err(&self.dir))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Closes `org`'s register for `year` at `at`; durable on return. Closing twice keeps
    /// the first time and reports it.
    pub async fn close_register(
        &self,
        org: &str,
        year: i32,
        at: &str,
    ) -> Result<String, StoreError> {
        let k = key(b'c', org, &year.to_be_bytes());
        let result = {
            let gate = self.gate.enter();
            self.registers.transaction(|tx| {
                if let Some(v) = tx.get(&k)? {
                    return Ok(String::from_utf8_lossy(&v).into_owned());
                }
                gate.keep(Kept::Registers, &k, None);
                tx.insert(k.as_slice(), at.as_bytes())?;
                Ok(at.to_owned())
            })
        };
        let closed = super::finish(result, &self.dir)?;
        self.commit().await?;
        Ok(closed)
    }
}
