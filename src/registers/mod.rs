//! Document registers (Decree 30/2020/NĐ-CP art. 22, Appendix IV): the rules, with no I/O.
//!
//! - The **incoming register** (sổ đăng ký văn bản đến) of each organisation gives every
//!   document it accepts (status 03) the next incoming number (số đến) of the year, in one
//!   sequence with paper documents registered by hand. The store assigns the numbers
//!   inside the transaction that records the receipt, so they are unique and gapless.
//! - The **outgoing register** (sổ đăng ký văn bản đi): a number and notation may be used
//!   once per sender within its numbering period ([`Numbering`]).
//!
//! This module decides periods and years and renders registers as CSV ([`pdf`] prints
//! them); it knows nothing of HTTP or storage.

pub mod pdf;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, UtcOffset};
use uuid::Uuid;

/// Vietnam's time zone (UTC+7, no daylight saving): the register's days and years are
/// the office's local ones, so a document accepted at 23:30 UTC on 31 December belongs to
/// the next year's register.
pub const VIETNAM_UTC_OFFSET_HOURS: i8 = 7;

/// Longest text field of a paper registration, in characters.
pub const PAPER_TEXT_CHARS_MAX: usize = 500;

/// Errors of the register rules.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// A date is not `YYYY-MM-DD`.
    #[error("{field} {value:?} is not a date of the form YYYY-MM-DD")]
    BadDate {
        /// Which field.
        field: &'static str,
        /// The value, shortened.
        value: String,
    },
    /// A time is not RFC 3339.
    #[error("time {0:?} is not RFC 3339")]
    BadTime(String),
    /// A paper registration's field is empty, too long or not NFC text.
    #[error("{field}: {reason}")]
    BadField {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// How outgoing numbers restart (DESIGN §12 "Numbering periods differ").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NumberingPeriod {
    /// Party rule (HD 36-HD/VPTW): numbered per document type within a committee's term;
    /// secret documents share the sequence of their type.
    #[default]
    PartyTerm,
    /// State rule (Decree 30/2020 art. 15): numbered per year, secret documents in a
    /// sequence of their own.
    Year,
}

/// The outgoing numbering rule in force (`[documents]` in `congvan.toml`).
#[derive(Clone, Debug)]
pub struct Numbering {
    /// The period.
    pub period: NumberingPeriod,
    /// First days of the committees' terms (the close of each congress), ascending.
    pub term_starts: Vec<Date>,
}

impl Numbering {
    /// Builds the rule from configuration text; dates are `YYYY-MM-DD`.
    pub fn new(period: NumberingPeriod, term_starts: &[String]) -> Result<Self, RegisterError> {
        let mut dates = term_starts
            .iter()
            .map(|s| parse_date("term_starts", s))
            .collect::<Result<Vec<_>, _>>()?;
        dates.sort();
        Ok(Numbering {
            period,
            term_starts: dates,
        })
    }

    /// The numbering period a document falls in, as a key: `term:2025-10-01/CT` (Party
    /// rule: its type within the term that contains its date) or `year:2026` /
    /// `year:2026/secret` (state rule).
    pub fn period_of(
        &self,
        doc_type: &str,
        promulgated: &str,
        classified: bool,
    ) -> Result<String, RegisterError> {
        let date = parse_date("promulgated.date", promulgated)?;
        Ok(match self.period {
            NumberingPeriod::PartyTerm => {
                let term = self
                    .term_starts
                    .iter()
                    .rev()
                    .find(|start| **start <= date)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "before-first-term".into());
                format!("term:{term}/{doc_type}")
            }
            NumberingPeriod::Year if classified => format!("year:{}/secret", date.year()),
            NumberingPeriod::Year => format!("year:{}", date.year()),
        })
    }
}

impl Default for Numbering {
    fn default() -> Self {
        Numbering {
            period: NumberingPeriod::PartyTerm,
            term_starts: Vec::new(),
        }
    }
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(field: &'static str, s: &str) -> Result<Date, RegisterError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &format).map_err(|_| RegisterError::BadDate {
        field,
        value: s.chars().take(40).collect(),
    })
}

/// The office's local date (UTC+7) of an RFC 3339 time.
pub fn local_date(rfc3339: &str) -> Result<Date, RegisterError> {
    let t = OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map_err(|_| RegisterError::BadTime(rfc3339.chars().take(40).collect()))?;
    let offset = UtcOffset::from_hms(VIETNAM_UTC_OFFSET_HOURS, 0, 0).unwrap_or(UtcOffset::UTC);
    Ok(t.to_offset(offset).date())
}

/// How an incoming document arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Medium {
    /// Through congvan; numbered when the recipient accepted it (03).
    Electronic,
    /// On paper, registered by hand with its metadata only.
    Paper,
}

/// One line of an incoming register, in the columns of Decree 30/2020 Appendix IV.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingEntry {
    /// Số đến: the number in the year's sequence, from 1.
    pub number: u64,
    /// The register's year (local time).
    pub year: i32,
    /// Ngày đến: when it was registered (RFC 3339, server time).
    pub received_at: String,
    /// Electronic or paper.
    pub medium: Medium,
    /// The congvan document, for an electronic one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<Uuid>,
    /// Tác giả: the issuing body (organisation id for an electronic document, the name
    /// written on a paper one).
    pub author: String,
    /// Số, ký hiệu văn bản: number and notation as printed.
    pub code: String,
    /// Ngày tháng văn bản (`YYYY-MM-DD`).
    pub date: String,
    /// Tên loại: the document type.
    pub doc_type: String,
    /// Trích yếu: the subject (empty for a classified document, whose subject the server
    /// never sees).
    pub subject: String,
    /// Đơn vị hoặc người nhận: the unit or person it was passed to.
    #[serde(default)]
    pub assigned_to: String,
    /// Ghi chú.
    #[serde(default)]
    pub note: String,
}

/// A paper document to register (metadata only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperRegistration {
    /// Tác giả: the issuing body.
    pub author: String,
    /// Số, ký hiệu văn bản.
    pub code: String,
    /// Ngày tháng văn bản (`YYYY-MM-DD`).
    pub date: String,
    /// Tên loại.
    pub doc_type: String,
    /// Trích yếu.
    pub subject: String,
    /// Đơn vị hoặc người nhận.
    #[serde(default)]
    pub assigned_to: String,
    /// Ghi chú.
    #[serde(default)]
    pub note: String,
    /// The register year: the current one when absent; the previous one is allowed until
    /// it is closed, so that a late paper document can still be entered in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
}

impl PaperRegistration {
    /// Checks every field: required ones present, all NFC text without control
    /// characters, at most [`PAPER_TEXT_CHARS_MAX`] characters; the date a real date.
    pub fn validate(&self) -> Result<(), RegisterError> {
        for (field, value, required) in [
            ("author", &self.author, true),
            ("code", &self.code, true),
            ("doc_type", &self.doc_type, true),
            ("subject", &self.subject, true),
            ("assigned_to", &self.assigned_to, false),
            ("note", &self.note, false),
        ] {
            let bad = |reason| Err(RegisterError::BadField { field, reason });
            if required && value.trim().is_empty() {
                return bad("must not be empty");
            }
            if value.chars().count() > PAPER_TEXT_CHARS_MAX {
                return bad("is longer than 500 characters");
            }
            if value.chars().any(char::is_control) {
                return bad("holds control characters");
            }
            if !unicode_normalization::is_nfc(value) {
                return bad("is not in Unicode NFC");
            }
        }
        parse_date("date", &self.date)?;
        Ok(())
    }
}

/// The columns of the incoming register (Decree 30/2020 Appendix IV), in order.
pub const INCOMING_COLUMNS: [&str; 10] = [
    "Ngày đến",
    "Số đến",
    "Tác giả",
    "Số, ký hiệu văn bản",
    "Ngày tháng văn bản",
    "Tên loại và trích yếu nội dung văn bản",
    "Đơn vị hoặc người nhận",
    "Ngày chuyển",
    "Ký nhận",
    "Ghi chú",
];

/// One row of the printed register: the ten legal columns as text. "Ngày chuyển" and "Ký
/// nhận" are left blank for the clerk's pen, as on the printed form.
pub fn incoming_row(entry: &IncomingEntry) -> [String; 10] {
    let day = local_date(&entry.received_at)
        .map(|d| format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year()))
        .unwrap_or_else(|_| entry.received_at.clone());
    let doc_date = parse_date("date", &entry.date)
        .map(|d| format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year()))
        .unwrap_or_else(|_| entry.date.clone());
    let mut note = entry.note.clone();
    if entry.medium == Medium::Paper {
        note = if note.is_empty() {
            "bản giấy".into()
        } else {
            format!("bản giấy; {note}")
        };
    }
    [
        day,
        entry.number.to_string(),
        entry.author.clone(),
        entry.code.clone(),
        doc_date,
        if entry.subject.is_empty() {
            entry.doc_type.clone()
        } else {
            format!("{}: {}", entry.doc_type, entry.subject)
        },
        entry.assigned_to.clone(),
        String::new(),
        String::new(),
        note,
    ]
}

/// The incoming register as CSV (RFC 4180, UTF-8, CRLF), header row first.
pub fn incoming_csv(entries: &[IncomingEntry]) -> String {
    let mut out = String::new();
    push_csv_row(&mut out, INCOMING_COLUMNS.iter().map(|c| (*c).to_owned()));
    for entry in entries {
        push_csv_row(&mut out, incoming_row(entry).into_iter());
    }
    out
}

fn push_csv_row(out: &mut String, cells: impl Iterator<Item = String>) {
    let mut first = true;
    for cell in cells {
        if !first {
            out.push(',');
        }
        first = false;
        // A cell a spreadsheet would read as a formula is prefixed with a quote mark, so
        // an author's name cannot run code on the clerk's machine.
        let cell = if cell.starts_with(['=', '+', '-', '@']) {
            format!("'{cell}")
        } else {
            cell
        };
        if cell.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&cell);
        }
    }
    out.push_str("\r\n");
}

/// Whether a register year may be closed at `now` (RFC 3339): only once it has ended in
/// local time.
pub fn year_has_ended(year: i32, now: &str) -> Result<bool, RegisterError> {
    Ok(local_date(now)?.year() > year)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn party_rule_numbers_per_type_within_a_term() {
        let n = Numbering::new(
            NumberingPeriod::PartyTerm,
            &["2025-10-17".into(), "2020-10-15".into()],
        )
        .unwrap();
        assert_eq!(
            n.period_of("CT", "2026-03-01", false).unwrap(),
            "term:2025-10-17/CT"
        );
        assert_eq!(
            n.period_of("CT", "2027-03-01", true).unwrap(),
            "term:2025-10-17/CT"
        );
        assert_eq!(
            n.period_of("NQ", "2025-10-16", false).unwrap(),
            "term:2020-10-15/NQ"
        );
        assert_eq!(
            n.period_of("NQ", "2019-01-01", false).unwrap(),
            "term:before-first-term/NQ"
        );
        assert!(n.period_of("NQ", "2026-13-01", false).is_err());
    }

    #[test]
    fn state_rule_numbers_per_year_with_secret_documents_apart() {
        let n = Numbering::new(NumberingPeriod::Year, &[]).unwrap();
        assert_eq!(n.period_of("CV", "2026-03-01", false).unwrap(), "year:2026");
        assert_eq!(
            n.period_of("CV", "2026-03-01", true).unwrap(),
            "year:2026/secret"
        );
    }

    #[test]
    fn register_days_are_vietnamese_days() {
        assert_eq!(
            local_date("2026-12-31T17:30:00Z").unwrap().to_string(),
            "2027-01-01"
        );
        assert!(year_has_ended(2026, "2026-12-31T17:30:00Z").unwrap());
        assert!(!year_has_ended(2026, "2026-12-31T16:59:59Z").unwrap());
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let entry = IncomingEntry {
            number: 7,
            year: 2026,
            received_at: "2026-03-02T01:00:00Z".into(),
            medium: Medium::Paper,
            document_id: None,
            author: "=HYPERLINK(\"x\")".into(),
            code: "12-CT/HU".into(),
            date: "2026-03-01".into(),
            doc_type: "CT".into(),
            subject: "Về việc A, B".into(),
            assigned_to: String::new(),
            note: String::new(),
        };
        let csv = incoming_csv(&[entry]);
        let mut lines = csv.split("\r\n");
        assert!(lines.next().unwrap().starts_with("Ngày đến,Số đến,Tác giả"));
        assert_eq!(
            lines.next().unwrap(),
            "02/03/2026,7,\"'=HYPERLINK(\"\"x\"\")\",12-CT/HU,01/03/2026,\"CT: Về việc A, B\",,,,bản giấy"
        );
    }

    #[test]
    fn paper_registrations_are_checked() {
        let ok = PaperRegistration {
            author: "UBND xã Phú Nghĩa".into(),
            code: "45/UBND".into(),
            date: "2026-03-01".into(),
            doc_type: "CV".into(),
            subject: "Về lịch tiếp dân".into(),
            assigned_to: String::new(),
            note: String::new(),
            year: None,
        };
        assert!(ok.validate().is_ok());
        for bad in [
            PaperRegistration {
                author: " ".into(),
                ..ok.clone()
            },
            PaperRegistration {
                date: "1/3/2026".into(),
                ..ok.clone()
            },
            PaperRegistration {
                subject: "Ha\u{0300}".into(),
                ..ok.clone()
            },
            PaperRegistration {
                note: "a\u{7}".into(),
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
