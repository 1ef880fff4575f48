//! The status rules: which edXML status a recipient may report next on a document.
//!
//! A recipient's receipts on one document follow a small state machine (docs/API.md,
//! "Status rules"). It is written here as a pure function of what is already recorded,
//! so that the server applies it inside the transaction that records a receipt (two
//! receipts racing cannot both pass a check made on a stale record) and tests can walk
//! every pair of statuses without a server.
//!
//! - `01` (arrived) comes first, and only once the recipient has fetched the payload.
//! - `02` (returned) or `03` (accepted) follow `01`; they exclude each other.
//! - `04` (assigned), `05` (processing), `06` (completed) follow `03` and only go
//!   forwards (a step may be skipped, never repeated or undone).
//! - `13` (recall requested) is the sender's act: it is in force once the sender's recall
//!   (or update) of the document has been accepted for this recipient. A recipient never
//!   reports it.
//! - `15` (agreed) or `16` (refused) answer a recall or an update; they exclude each
//!   other. After `15` to a recall the document is cancelled: no further progress.
//! - A status already recorded is an idempotent replay, not a new entry.

use crate::document::receipt::ReceiptStatus;

/// What the recipient's history allows for one new status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Record it.
    Record,
    /// The status is already recorded: answer with the earlier entry, record nothing.
    Replay,
}

/// Why a status may not be reported now. Each kind is one stable API code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusRefusal {
    /// The status does not follow from the statuses recorded so far.
    #[error("status {new} cannot follow {after}: {rule}")]
    OutOfOrder {
        /// The status refused.
        new: String,
        /// What is recorded ("nothing", or the latest status).
        after: String,
        /// The rule, in words.
        rule: &'static str,
    },
    /// A status that says the document arrived, before its payload was ever fetched.
    #[error("status {0} says the document arrived, but this recipient has never fetched it")]
    NotFetched(String),
    /// `15` or `16` with no recall or update to answer.
    #[error("status {0} answers a recall or an update, and none is pending for this recipient")]
    NothingToAnswer(String),
}

impl StatusRefusal {
    /// The stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            StatusRefusal::OutOfOrder { .. } => "status_out_of_order",
            StatusRefusal::NotFetched(_) => "status_not_fetched",
            StatusRefusal::NothingToAnswer(_) => "status_nothing_to_answer",
        }
    }
}

/// What a recall or update asks of one recipient, when one is pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// The sender recalls the document (edXML BussinessDocType 1).
    Recall,
    /// The sender updates the document (BussinessDocType 2).
    Update,
}

/// The main line of statuses, in order.
const MAIN_LINE: [ReceiptStatus; 6] = [
    ReceiptStatus::Arrived,
    ReceiptStatus::Returned,
    ReceiptStatus::Accepted,
    ReceiptStatus::Assigned,
    ReceiptStatus::Processing,
    ReceiptStatus::Completed,
];

fn rank(status: ReceiptStatus) -> Option<usize> {
    MAIN_LINE.iter().position(|s| *s == status)
}

/// Judges status `new` for a recipient whose recorded statuses are `recorded` (oldest
/// first), who has fetched the payload if `fetched`, and to whom `request` is pending.
pub fn judge(
    recorded: &[ReceiptStatus],
    fetched: bool,
    request: Option<Request>,
    new: ReceiptStatus,
) -> Result<Verdict, StatusRefusal> {
    if recorded.contains(&new) {
        return Ok(Verdict::Replay);
    }
    let latest_main = recorded.iter().rev().find_map(|s| rank(*s));
    let after = recorded.last().map_or("nothing", |s| s.code()).to_owned();
    let out_of_order = |rule: &'static str| StatusRefusal::OutOfOrder {
        new: new.code().to_owned(),
        after: after.clone(),
        rule,
    };
    let answered = recorded.iter().any(|s| s.answers_request());
    let recalled = request == Some(Request::Recall) && recorded.contains(&ReceiptStatus::Agreed);
    match new {
        ReceiptStatus::RecallRequested => Err(out_of_order(
            "13 (recall requested) is the sender's: it is in force once the sender's recall is accepted",
        )),
        ReceiptStatus::Agreed | ReceiptStatus::Refused => {
            if request.is_none() {
                return Err(StatusRefusal::NothingToAnswer(new.code().to_owned()));
            }
            if answered {
                return Err(out_of_order(
                    "a recall or update is answered once, 15 (agreed) or 16 (refused)",
                ));
            }
            Ok(Verdict::Record)
        }
        _ => {
            let Some(new_rank) = rank(new) else {
                return Err(out_of_order("not an edXML receipt status"));
            };
            if recalled {
                return Err(out_of_order(
                    "the recipient agreed to the recall (15): the document is cancelled",
                ));
            }
            match (new_rank, latest_main) {
                (0, None) if !fetched => Err(StatusRefusal::NotFetched(new.code().to_owned())),
                (0, None) => Ok(Verdict::Record),
                (_, None) => Err(out_of_order("01 (arrived) comes before anything else")),
                (0, Some(_)) => Err(out_of_order("01 (arrived) comes before anything else")),
                (1 | 2, Some(0)) => Ok(Verdict::Record),
                (1 | 2, Some(_)) => Err(out_of_order(
                    "02 (returned) or 03 (accepted) is decided once, right after 01",
                )),
                (_, Some(1)) => Err(out_of_order(
                    "the document was returned (02): nothing follows but an answer to a recall",
                )),
                (_, Some(0)) => Err(out_of_order("03 (accepted) comes before 04, 05 and 06")),
                (n, Some(latest)) if n > latest => Ok(Verdict::Record),
                (_, Some(_)) => Err(out_of_order("04 → 05 → 06 only go forwards")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&str; 9] = ["01", "02", "03", "04", "05", "06", "13", "15", "16"];

    /// [`super::judge`] on statuses written as their codes, as the rules are stated.
    fn judge(
        recorded: &[&str],
        fetched: bool,
        request: Option<Request>,
        new: &str,
    ) -> Result<Verdict, StatusRefusal> {
        let status = |c: &str| ReceiptStatus::from_code(c).expect("a test status");
        let recorded: Vec<ReceiptStatus> = recorded.iter().map(|c| status(c)).collect();
        super::judge(&recorded, fetched, request, status(new))
    }

    fn code(r: Result<Verdict, StatusRefusal>) -> &'static str {
        match r {
            Ok(Verdict::Record) => "record",
            Ok(Verdict::Replay) => "replay",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn the_main_line_goes_forwards_only() {
        assert_eq!(code(judge(&[], true, None, "01")), "record");
        assert_eq!(code(judge(&[], false, None, "01")), "status_not_fetched");
        for s in ["02", "03", "04", "05", "06"] {
            assert_eq!(
                code(judge(&[], true, None, s)),
                "status_out_of_order",
                "{s}"
            );
        }
        assert_eq!(code(judge(&["01"], true, None, "02")), "record");
        assert_eq!(code(judge(&["01"], true, None, "03")), "record");
        assert_eq!(
            code(judge(&["01"], true, None, "04")),
            "status_out_of_order"
        );
        assert_eq!(
            code(judge(&["01", "03"], true, None, "02")),
            "status_out_of_order"
        );
        assert_eq!(
            code(judge(&["01", "02"], true, None, "03")),
            "status_out_of_order"
        );
        assert_eq!(
            code(judge(&["01", "02"], true, None, "04")),
            "status_out_of_order"
        );
        assert_eq!(code(judge(&["01", "03"], true, None, "05")), "record");
        assert_eq!(
            code(judge(&["01", "03", "05"], true, None, "04")),
            "status_out_of_order"
        );
        assert_eq!(
            code(judge(&["01", "03", "05", "06"], true, None, "05")),
            "replay"
        );
        assert_eq!(code(judge(&["01", "03", "05"], true, None, "01")), "replay");
        assert_eq!(
            code(judge(&["01", "03", "06"], true, None, "04")),
            "status_out_of_order"
        );
    }

    #[test]
    fn recall_answers_need_a_request_and_come_once() {
        for history in [&[][..], &["01"], &["01", "03", "05"]] {
            assert_eq!(
                code(judge(history, true, None, "15")),
                "status_nothing_to_answer"
            );
            assert_eq!(
                code(judge(history, true, Some(Request::Recall), "15")),
                "record"
            );
            assert_eq!(
                code(judge(history, false, Some(Request::Update), "16")),
                "record"
            );
        }
        assert_eq!(
            code(judge(&["01", "16"], true, Some(Request::Recall), "15")),
            "status_out_of_order"
        );
        assert_eq!(
            code(judge(
                &["01", "03", "15"],
                true,
                Some(Request::Recall),
                "04"
            )),
            "status_out_of_order"
        );
        // A refused recall leaves the document in force: work goes on.
        assert_eq!(
            code(judge(
                &["01", "03", "16"],
                true,
                Some(Request::Recall),
                "04"
            )),
            "record"
        );
        // An agreed update does not cancel the document.
        assert_eq!(
            code(judge(
                &["01", "03", "15"],
                true,
                Some(Request::Update),
                "06"
            )),
            "record"
        );
    }

    #[test]
    fn a_recipient_never_reports_13_and_unknown_codes_are_refused() {
        for history in [&[][..], &["01"], &["01", "03"]] {
            assert_eq!(
                code(judge(history, true, Some(Request::Recall), "13")),
                "status_out_of_order"
            );
        }
        // An unknown code is not a status at all: it cannot even be put to the rules.
        assert_eq!(ReceiptStatus::from_code("07"), None);
    }

    /// Every status after every reachable history either records, replays or refuses
    /// with a code, and a recorded status is never recorded twice.
    #[test]
    fn every_reachable_history_is_judged_consistently() {
        let mut frontier: Vec<Vec<&str>> = vec![vec![]];
        let mut seen = 0;
        while let Some(history) = frontier.pop() {
            for request in [None, Some(Request::Recall), Some(Request::Update)] {
                for new in ALL {
                    match judge(&history, true, request, new) {
                        Ok(Verdict::Replay) => assert!(history.contains(&new)),
                        Ok(Verdict::Record) => {
                            assert!(!history.contains(&new));
                            let mut next = history.clone();
                            next.push(new);
                            if request.is_none() && next.len() < 8 {
                                frontier.push(next);
                            }
                        }
                        Err(e) => assert!(e.code().starts_with("status_")),
                    }
                    seen += 1;
                }
            }
        }
        assert!(seen > 100);
    }
}
