//! The delivery-status table of one document, as text: the one rendering of
//! [`StatusView`] shared by `congvan status` and `congvan demo`.

use crate::api::StatusView;
use crate::document::receipt::ReceiptStatus;

/// The lines of the table: a heading, then one line per recipient (recipient, when it
/// fetched, its last status, when, and a note: the successor a merged recipient's copy
/// was offered to, the recipient's own note). A pending recall or update shows as `13`
/// with what was requested, until the recipient answers it with `15` or `16`.
pub fn status_lines(view: &StatusView) -> Vec<String> {
    let mut lines = vec![
        format!(
            "{} from {} (accepted {})",
            view.id,
            view.sender,
            view.accepted_at.clone().unwrap_or_default()
        ),
        format!(
            "{:<24} {:<22} {:<6} {:<22} note",
            "recipient", "fetched", "status", "status time"
        ),
    ];
    for r in &view.recipients {
        let note = match &r.offered_to {
            Some(successor) => format!(
                "merged: offered to {successor}. {}",
                r.note.clone().unwrap_or_default()
            ),
            None => r.note.clone().unwrap_or_default(),
        };
        let answered = r
            .status
            .as_deref()
            .and_then(ReceiptStatus::from_code)
            .is_some_and(ReceiptStatus::answers_request);
        let status = match (&r.status, r.request.as_deref()) {
            (Some(s), Some(_)) if answered => s.clone(),
            (_, Some(kind)) => format!("{} ({kind} requested)", ReceiptStatus::RecallRequested),
            (s, None) => s.clone().unwrap_or_else(|| "-".into()),
        };
        lines.push(format!(
            "{:<24} {:<22} {:<6} {:<22} {}",
            r.org,
            r.fetched_at.clone().unwrap_or_else(|| "-".into()),
            status,
            r.status_time.clone().unwrap_or_else(|| "-".into()),
            note.trim_end()
        ));
    }
    lines
}
