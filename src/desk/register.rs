//! The registers as the desk keeps them: the incoming register cached in memory from the
//! server's inbox listing, its filters, order and pages, and how times and deadlines are
//! shown. Pure functions over values, tested without a network.

use std::collections::HashMap;

use serde::Deserialize;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::api::ListItem;
use crate::config::Deadlines;

/// Rows on one page of a register.
pub const PAGE_ROWS: usize = 50;
/// Most documents the desk keeps in its incoming register (older ones stay on the server).
pub const REGISTER_ITEMS_MAX: usize = 200_000;

/// Vietnam's offset from UTC (Asia/Ho_Chi_Minh has no daylight saving time).
const VIETNAM: UtcOffset = match UtcOffset::from_hms(7, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// One row of the incoming register: the server's inbox item, plus the fields the law
/// issue adds when the server returns them.
#[derive(Clone, Debug, Deserialize)]
pub struct RegisterItem {
    /// The inbox item.
    #[serde(flatten)]
    pub item: ListItem,
}

impl RegisterItem {
    /// The incoming number (số đến) the recipient's register gave the document on
    /// acceptance (03), as shown.
    pub fn incoming_number(&self) -> Option<String> {
        self.item.incoming_number.map(|n| n.to_string())
    }
}

/// The filters of the incoming register, as the query string carries them.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Filter {
    /// `open` (no receipt beyond 01), `none`, or a status code.
    #[serde(default)]
    pub status: String,
    /// An urgency 0–4.
    #[serde(default)]
    pub urgency: String,
    /// A classification wire name.
    #[serde(default)]
    pub classification: String,
    /// A sender id or id prefix.
    #[serde(default)]
    pub sender: String,
    /// Received on or after this day (`YYYY-MM-DD`).
    #[serde(default)]
    pub from: String,
    /// Received on or before this day (`YYYY-MM-DD`).
    #[serde(default)]
    pub to: String,
    /// Text in the subject, number, notation or sender.
    #[serde(default)]
    pub q: String,
    /// `1`: overdue rows only.
    #[serde(default)]
    pub overdue: String,
    /// The page, from 1.
    #[serde(default)]
    pub page: Option<usize>,
}

/// Whether a recipient has done more than note the arrival (01).
pub fn handled(status: Option<&str>) -> bool {
    !matches!(status, None | Some("01"))
}

/// When a document is due to be handled: its own deadline for hỏa tốc hẹn giờ, else the
/// time it was accepted plus the allowance for its urgency.
pub fn due_at(item: &ListItem, deadlines: &Deadlines) -> Option<OffsetDateTime> {
    let accepted = parse_time(item.accepted_at.as_deref()?)?;
    let hours = deadlines.hours(item.urgency.min(3));
    Some(accepted + time::Duration::hours(i64::try_from(hours).unwrap_or(i64::MAX / 7200)))
}

/// Whether a row is overdue at `now`: due and not yet handled.
pub fn overdue(row: &RegisterItem, deadlines: &Deadlines, now: OffsetDateTime) -> bool {
    !handled(row.item.receipt_status.as_deref())
        && due_at(&row.item, deadlines).is_some_and(|due| now > due)
}

/// Parses an RFC 3339 time.
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// A time as people in Vietnam read it: `dd/mm/yyyy HH:MM` in Asia/Ho_Chi_Minh.
pub fn show_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(VIETNAM);
    format!(
        "{:02}/{:02}/{:04} {:02}:{:02}",
        t.day(),
        u8::from(t.month()),
        t.year(),
        t.hour(),
        t.minute()
    )
}

/// An RFC 3339 time shown with [`show_time`]; other text unchanged.
pub fn show_rfc3339(text: &str) -> String {
    parse_time(text)
        .map(show_time)
        .unwrap_or_else(|| text.to_owned())
}

/// A date `YYYY-MM-DD` shown as `dd/mm/yyyy`; other text unchanged.
pub fn show_date(text: &str) -> String {
    let parts: Vec<&str> = text.split('-').collect();
    match parts.as_slice() {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => format!("{d}/{m}/{y}"),
        _ => text.to_owned(),
    }
}

fn day_of(text: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format).ok()
}

/// The incoming register held in memory.
#[derive(Default)]
pub struct Register {
    /// Rows by listing position (`seq`), any order; [`Register::select`] sorts.
    rows: Vec<RegisterItem>,
    /// Row index by document id.
    by_id: HashMap<Uuid, usize>,
    /// Subjects of classified documents decrypted on this desk (never written to disk).
    subjects: HashMap<Uuid, String>,
    /// The highest listing position seen (positions start at 0), `None` while empty.
    pub latest_seq: Option<u64>,
}

/// One page of a filtered, ordered register.
pub struct Selection<'a> {
    /// The rows of the page.
    pub rows: Vec<&'a RegisterItem>,
    /// How many rows passed the filters.
    pub matched: usize,
    /// How many rows the register holds.
    pub total: usize,
    /// The page shown, from 1.
    pub page: usize,
    /// The number of pages.
    pub pages: usize,
}

impl Register {
    /// Adds rows from the server (newer rows replace older copies of the same document).
    /// Returns how many documents were new.
    pub fn merge(&mut self, items: Vec<RegisterItem>) -> usize {
        let mut added = 0;
        for row in items {
            self.latest_seq = Some(
                self.latest_seq
                    .map_or(row.item.seq, |s| s.max(row.item.seq)),
            );
            match self.by_id.get(&row.item.id) {
                Some(&i) => {
                    if let Some(slot) = self.rows.get_mut(i) {
                        *slot = row;
                    }
                }
                None if self.rows.len() < REGISTER_ITEMS_MAX => {
                    self.by_id.insert(row.item.id, self.rows.len());
                    self.rows.push(row);
                    added += 1;
                }
                None => {}
            }
        }
        added
    }

    /// How many documents arrived after listing position `after` (all of them when the
    /// page that asks had none).
    pub fn count_after(&self, after: Option<u64>) -> usize {
        match after {
            Some(after) => self.rows.iter().filter(|r| r.item.seq > after).count(),
            None => self.rows.len(),
        }
    }

    /// Records this office's latest status for a document (after it signed a receipt).
    pub fn set_status(&mut self, id: &Uuid, status: &str, incoming_number: Option<u64>) {
        if let Some(row) = self.by_id.get(id).and_then(|&i| self.rows.get_mut(i)) {
            row.item.receipt_status = Some(status.to_owned());
            if incoming_number.is_some() {
                row.item.incoming_number = incoming_number;
            }
        }
    }

    /// Remembers a decrypted subject for display.
    pub fn remember_subject(&mut self, id: Uuid, subject: String) {
        self.subjects.insert(id, subject);
    }

    /// The subject to show: the listing's, or one decrypted here.
    pub fn subject<'a>(&'a self, row: &'a RegisterItem) -> Option<&'a str> {
        if !row.item.subject.is_empty() {
            return Some(&row.item.subject);
        }
        self.subjects.get(&row.item.id).map(String::as_str)
    }

    /// A row by document id.
    pub fn get(&self, id: &Uuid) -> Option<&RegisterItem> {
        self.by_id.get(id).and_then(|&i| self.rows.get(i))
    }

    /// How many documents the register holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the register is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows that pass `filter`, in register order (not yet handled first, then the
    /// most urgent, then the newest), cut to one page.
    pub fn select(
        &self,
        filter: &Filter,
        deadlines: &Deadlines,
        now: OffsetDateTime,
    ) -> Selection<'_> {
        let q = filter.q.to_lowercase();
        let from = day_of(&filter.from);
        let to = day_of(&filter.to);
        let urgency: Option<u8> = filter.urgency.parse().ok();
        let mut rows: Vec<&RegisterItem> = self
            .rows
            .iter()
            .filter(|row| {
                let item = &row.item;
                let status = item.receipt_status.as_deref();
                let status_ok = match filter.status.as_str() {
                    "" => true,
                    "open" => !handled(status),
                    "none" => status.is_none(),
                    code => status == Some(code),
                };
                let received = item
                    .accepted_at
                    .as_deref()
                    .and_then(parse_time)
                    .map(|t| t.to_offset(VIETNAM).date());
                status_ok
                    && urgency.is_none_or(|u| item.urgency == u)
                    && (filter.classification.is_empty()
                        || item.classification == filter.classification)
                    && (filter.sender.is_empty() || item.sender.starts_with(&filter.sender))
                    && from.is_none_or(|f| received.is_some_and(|r| r >= f))
                    && to.is_none_or(|t| received.is_some_and(|r| r <= t))
                    && (filter.overdue != "1" || overdue(row, deadlines, now))
                    && (q.is_empty()
                        || [
                            self.subject(row).unwrap_or_default(),
                            &item.number,
                            &item.notation,
                            &item.sender,
                        ]
                        .iter()
                        .any(|field| field.to_lowercase().contains(&q)))
            })
            .collect();
        let matched = rows.len();
        let pages = matched.div_ceil(PAGE_ROWS).max(1);
        let page = filter.page.unwrap_or(1).clamp(1, pages);
        // Only the rows of one page need to be in order: select them without sorting all.
        let key = |row: &&RegisterItem| {
            (
                handled(row.item.receipt_status.as_deref()),
                std::cmp::Reverse(row.item.urgency),
                std::cmp::Reverse(row.item.seq),
            )
        };
        let end = (page * PAGE_ROWS).min(matched);
        if end < matched && end > 0 {
            rows.select_nth_unstable_by_key(end - 1, key);
            rows.truncate(end);
        }
        rows.sort_unstable_by_key(key);
        let start = (page - 1) * PAGE_ROWS;
        let rows = rows.into_iter().skip(start).take(PAGE_ROWS).collect();
        Selection {
            rows,
            matched,
            total: self.rows.len(),
            page,
            pages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn item(
        seq: u64,
        urgency: u8,
        status: Option<&str>,
        accepted: &str,
    ) -> RegisterItem {
        RegisterItem {
            item: ListItem {
                seq,
                id: Uuid::now_v7(),
                sender: "hn/cm".into(),
                recipients: vec!["hn/cm/chuc-son".into()],
                doc_type: "CV".into(),
                number: seq.to_string(),
                notation: "CV/HU".into(),
                subject: format!("Về việc số {seq}"),
                urgency,
                classification: "thuong".into(),
                state: "accepted".into(),
                accepted_at: Some(accepted.into()),
                fetched_at: None,
                receipt_status: status.map(str::to_owned),
                sealed_with: None,
                addressed_to: None,
                links: Vec::new(),
                recalled: false,
                incoming_number: None,
            },
        }
    }

    #[test]
    fn open_and_urgent_documents_come_first_then_the_newest() {
        let mut register = Register::default();
        register.merge(vec![
            item(1, 0, None, "2026-11-01T01:00:00Z"),
            item(2, 3, Some("03"), "2026-11-01T02:00:00Z"),
            item(3, 3, None, "2026-11-01T03:00:00Z"),
            item(4, 0, None, "2026-11-01T04:00:00Z"),
        ]);
        let now = parse_time("2026-11-01T05:00:00Z").unwrap();
        let page = register.select(&Filter::default(), &Deadlines::default(), now);
        let order: Vec<u64> = page.rows.iter().map(|r| r.item.seq).collect();
        assert_eq!(order, [3, 4, 1, 2]);
    }

    #[test]
    fn filters_and_overdue() {
        let mut register = Register::default();
        register.merge(vec![
            item(1, 3, None, "2026-11-01T01:00:00Z"),
            item(2, 0, None, "2026-11-01T01:00:00Z"),
            item(3, 3, Some("03"), "2026-11-01T01:00:00Z"),
        ]);
        let now = parse_time("2026-11-01T05:00:00Z").unwrap();
        let overdue_only = Filter {
            overdue: "1".into(),
            ..Filter::default()
        };
        let page = register.select(&overdue_only, &Deadlines::default(), now);
        let seqs: Vec<u64> = page.rows.iter().map(|r| r.item.seq).collect();
        assert_eq!(
            seqs,
            [1],
            "hỏa tốc is due in two hours; an accepted one is not overdue"
        );
        let text = Filter {
            q: "SỐ 2".into(),
            ..Filter::default()
        };
        assert_eq!(
            register.select(&text, &Deadlines::default(), now).matched,
            1
        );
        let later = Filter {
            from: "2026-11-02".into(),
            ..Filter::default()
        };
        assert_eq!(
            register.select(&later, &Deadlines::default(), now).matched,
            0
        );
    }

    #[test]
    fn pages_hold_the_same_rows_as_a_full_sort() {
        let mut register = Register::default();
        register.merge(
            (0..1000)
                .map(|i| item(i, (i % 5) as u8, None, "2026-11-01T01:00:00Z"))
                .collect(),
        );
        let now = parse_time("2026-11-01T01:30:00Z").unwrap();
        let mut all: Vec<u64> = Vec::new();
        for page in 1..=20 {
            let filter = Filter {
                page: Some(page),
                ..Filter::default()
            };
            all.extend(
                register
                    .select(&filter, &Deadlines::default(), now)
                    .rows
                    .iter()
                    .map(|r| r.item.seq),
            );
        }
        let mut expected: Vec<&RegisterItem> = register.rows.iter().collect();
        expected.sort_by_key(|r| {
            (
                std::cmp::Reverse(r.item.urgency),
                std::cmp::Reverse(r.item.seq),
            )
        });
        let expected: Vec<u64> = expected.iter().map(|r| r.item.seq).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn times_are_shown_in_vietnam() {
        assert_eq!(show_rfc3339("2026-11-30T18:05:00Z"), "01/12/2026 01:05");
        assert_eq!(show_date("2026-12-01"), "01/12/2026");
    }
}
