//! `audit report`: the deliveries that are overdue, read from the log's events.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use crate::config::Deadlines;
use crate::ledger::Event;

/// One line of `audit report`.
#[derive(Clone, Debug, Serialize)]
pub struct ReportRow {
    /// The recipient that has not fetched or acknowledged.
    pub recipient: String,
    /// The document.
    pub document_id: Uuid,
    /// Its sender.
    pub sender: String,
    /// Urgency 0–4.
    pub urgency: u8,
    /// When it was submitted.
    pub submitted_at: String,
    /// When the recipient first fetched it.
    pub fetched_at: Option<String>,
    /// The recipient's latest receipt status (01 counts as not yet acknowledged).
    pub status: Option<String>,
    /// When it was due.
    pub due_at: String,
    /// Past due now.
    pub overdue: bool,
    /// Classification (`thuong`, `mat`, …).
    pub classification: String,
    /// For a classified document, the cipher that sealed it (an uncertified one is marked
    /// in every output).
    pub sealed_with: Option<crate::seal::policy::SealMark>,
    /// The recipient returned the document (02): the reason it gave. Returned documents
    /// always stay in the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returned: Option<String>,
    /// Recalls, updates and replacements linking the document to others, from the log.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<crate::api::DocLink>,
}

/// Builds the report from log entries: for each document submitted since `since`, each
/// recipient that has not fetched it, has not acknowledged it beyond "01 arrived", or
/// returned it (02, with its reason).
pub fn report(
    entries: &[Event],
    deadlines: &Deadlines,
    since: Option<time::OffsetDateTime>,
    now: time::OffsetDateTime,
) -> Vec<ReportRow> {
    struct Doc {
        sender: String,
        recipients: Vec<String>,
        urgency: u8,
        classification: String,
        sealed_with: Option<crate::seal::policy::SealMark>,
        submitted: time::OffsetDateTime,
        submitted_at: String,
        deadline: Option<String>,
        fetched: BTreeMap<String, String>,
        status: BTreeMap<String, String>,
        returned: BTreeMap<String, String>,
    }
    let mut links: BTreeMap<Uuid, Vec<crate::api::DocLink>> = BTreeMap::new();
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    };
    let mut docs: BTreeMap<Uuid, Doc> = BTreeMap::new();
    // After a reform, a successor fetches and acknowledges what was sent to the units
    // merged into it; the log's `reorganised` events say who carries on whom, so its acts
    // count for the addressee.
    let mut successors: BTreeMap<String, String> = BTreeMap::new();
    let addressee = |doc: &Doc, actor: &str, successors: &BTreeMap<String, String>| {
        if doc.recipients.iter().any(|r| r == actor) {
            return actor.to_owned();
        }
        doc.recipients
            .iter()
            .find(|r| successors.get(*r).is_some_and(|s| s == actor))
            .cloned()
            .unwrap_or_else(|| actor.to_owned())
    };
    for event in entries {
        match event {
            Event::Reorganised {
                successors: after, ..
            } => {
                successors.extend(after.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            Event::Submitted {
                time,
                document_id,
                sender,
                recipients,
                urgency,
                deadline,
                classification,
                sealed_with,
                business,
                ..
            } => {
                if let Some(b) = business {
                    let (forward, backward) = match b.kind.as_str() {
                        "recall" => ("recalls", "recalled_by"),
                        "update" => ("updates", "updated_by"),
                        _ => ("replaces", "replaced_by"),
                    };
                    links
                        .entry(*document_id)
                        .or_default()
                        .push(crate::api::DocLink {
                            relation: forward.to_owned(),
                            id: b.target,
                        });
                    links
                        .entry(b.target)
                        .or_default()
                        .push(crate::api::DocLink {
                            relation: backward.to_owned(),
                            id: *document_id,
                        });
                }
                if let Some(t) = parse(time) {
                    docs.insert(
                        *document_id,
                        Doc {
                            sender: sender.clone(),
                            recipients: recipients.clone(),
                            urgency: *urgency,
                            classification: classification.clone(),
                            sealed_with: sealed_with.clone(),
                            submitted: t,
                            submitted_at: time.clone(),
                            deadline: deadline.clone(),
                            fetched: BTreeMap::new(),
                            status: BTreeMap::new(),
                            returned: BTreeMap::new(),
                        },
                    );
                }
            }
            Event::Delivered {
                time,
                document_id,
                actor,
                ..
            } => {
                if let Some(doc) = docs.get_mut(document_id) {
                    let who = addressee(doc, actor, &successors);
                    doc.fetched.entry(who).or_insert_with(|| time.clone());
                }
            }
            Event::Receipt {
                document_id,
                actor,
                status,
                receipt,
                ..
            } => {
                if let Some(doc) = docs.get_mut(document_id) {
                    let who = addressee(doc, actor, &successors);
                    if status == "02" {
                        let reason = receipt["receipt"]["note"].as_str().unwrap_or_default();
                        doc.returned.insert(who.clone(), reason.to_owned());
                    }
                    doc.status.insert(who, status.clone());
                }
            }
            _ => {}
        }
    }
    let mut rows = Vec::new();
    for (id, doc) in docs {
        if since.is_some_and(|s| doc.submitted < s) {
            continue;
        }
        let due = match (&doc.deadline, doc.urgency) {
            (Some(d), 4) => parse(d).unwrap_or(doc.submitted),
            _ => {
                let hours = i64::try_from(deadlines.hours(doc.urgency)).unwrap_or(i64::MAX / 3600);
                doc.submitted
                    .checked_add(time::Duration::hours(hours.min(i64::MAX / 3600)))
                    .unwrap_or(doc.submitted)
            }
        };
        let due_at = due
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        for recipient in &doc.recipients {
            let fetched_at = doc.fetched.get(recipient).cloned();
            let status = doc.status.get(recipient).cloned();
            let acknowledged = status.as_deref().is_some_and(|s| s != "01");
            let returned = doc.returned.get(recipient).cloned();
            if fetched_at.is_some() && acknowledged && returned.is_none() {
                continue;
            }
            rows.push(ReportRow {
                recipient: recipient.clone(),
                document_id: id,
                sender: doc.sender.clone(),
                urgency: doc.urgency,
                submitted_at: doc.submitted_at.clone(),
                fetched_at,
                status,
                due_at: due_at.clone(),
                overdue: now > due,
                classification: doc.classification.clone(),
                sealed_with: doc.sealed_with.clone(),
                returned,
                links: links.get(&id).cloned().unwrap_or_default(),
            });
        }
    }
    rows.sort_by(|a, b| {
        a.recipient
            .cmp(&b.recipient)
            .then(a.submitted_at.cmp(&b.submitted_at))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> time::OffsetDateTime {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn report_finds_unfetched_and_unacknowledged_and_applies_deadlines() {
        let id = Uuid::now_v7();
        let submitted = |urgency: u8| Event::Submitted {
            time: "2026-11-26T08:00:00Z".into(),
            document_id: id,
            actor: "hn/cm".into(),
            sender: "hn/cm".into(),
            recipients: vec!["a".into(), "b".into(), "c".into()],
            classification: "thuong".into(),
            sealed_with: None,
            business: None,
            urgency,
            deadline: None,
            manifest_sha256: String::new(),
            payload_sha256: String::new(),
            payload_size: 0,
        };
        let delivered = |who: &str| Event::Delivered {
            time: "2026-11-26T09:00:00Z".into(),
            document_id: id,
            actor: who.into(),
            sender: "hn/cm".into(),
            recipients: vec![],
            payload_sha256: String::new(),
        };
        let receipt = |who: &str, status: &str| Event::Receipt {
            time: "2026-11-26T09:30:00Z".into(),
            document_id: id,
            actor: who.into(),
            sender: "hn/cm".into(),
            recipients: vec![],
            status: status.into(),
            receipt: serde_json::Value::Null,
        };
        // a: fetched and accepted; b: fetched, only "arrived"; c: nothing.
        let events = vec![
            submitted(3),
            delivered("a"),
            receipt("a", "03"),
            delivered("b"),
            receipt("b", "01"),
        ];
        let rows = report(
            &events,
            &Deadlines::default(),
            None,
            t("2026-11-26T10:30:00Z"),
        );
        assert_eq!(
            rows.iter()
                .map(|r| r.recipient.as_str())
                .collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert!(
            rows.iter().all(|r| r.overdue),
            "hỏa tốc is due within 2 hours"
        );
        let rows = report(
            &events,
            &Deadlines::default(),
            None,
            t("2026-11-26T09:59:00Z"),
        );
        assert!(rows.iter().all(|r| !r.overdue));
        let mut events = events;
        events[0] = submitted(0);
        let rows = report(
            &events,
            &Deadlines::default(),
            None,
            t("2026-11-27T09:00:00Z"),
        );
        assert!(rows.iter().all(|r| !r.overdue), "thường has 72 hours");
        let rows = report(
            &events,
            &Deadlines::default(),
            Some(t("2026-11-27T00:00:00Z")),
            t("2026-11-27T09:00:00Z"),
        );
        assert!(rows.is_empty());
    }
}
