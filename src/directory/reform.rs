//! Reorganisation as a first-class operation: a reform plan (TOML) that merges, splits,
//! activates, re-parents and retires units at an effective time.
//!
//! A plan is a pure function from one [`Directory`] to the next, together with the list of
//! its effects in words. The same function serves the dry run (`congvan reform apply
//! --dry-run`), the server that puts the plan in force, and the `reorganised` event the
//! server logs, so the dry run shows exactly what the log records.
//!
//! Plans in force are kept verbatim beside the tree (`reforms/`, one file each, applied in
//! name order); the tree file itself is never rewritten, so the 2023 tree and every step
//! since stay readable.
//!
//! **"Part of" a commune** (a unit split across several successors): its archive, its
//! undelivered documents and its log entries go to exactly one successor, the plan's
//! `archive_to`; the other successors named in `parts_to` get nothing automatically (the
//! archive holder forwards what they need). One holder keeps one chain of custody: a
//! document is never offered to two committees at once, and who may read the old archive
//! is one fact.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Auditor, Directory, DirectoryError, OrgId, OrgStatus, check_name};

/// Largest plan file accepted, in bytes.
pub const PLAN_BYTES_MAX: usize = 256 * 1024;
/// Longest plan id, in bytes.
pub const PLAN_ID_BYTES_MAX: usize = 100;

/// Why a plan was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReformError {
    /// The file is not a plan.
    #[error("cannot parse reform plan: {0}")]
    Parse(String),
    /// The plan is inconsistent with itself or with the tree it is applied to.
    #[error("reform plan {plan}: {reason}")]
    Invalid {
        /// The plan id.
        plan: String,
        /// What is wrong.
        reason: String,
    },
    /// The plan's resulting tree is not a valid tree.
    #[error("reform plan {plan} would leave an invalid tree: {source}")]
    Tree {
        /// The plan id.
        plan: String,
        /// The tree's complaint.
        source: DirectoryError,
    },
    /// A plan file could not be read.
    #[error("cannot read reform plan {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    id: String,
    title: String,
    #[serde(default)]
    legal_basis: String,
    effective_at: String,
    #[serde(default)]
    activate: Vec<Activate>,
    #[serde(default)]
    merge: Vec<Merge>,
    #[serde(default)]
    split: Vec<Split>,
    #[serde(default)]
    reparent: Vec<Reparent>,
    #[serde(default)]
    retire: Vec<Retire>,
    #[serde(default)]
    auditor: Vec<AuditorEntry>,
}

/// A planned unit put in force.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activate {
    /// The unit (status `planned` in the tree).
    pub id: OrgId,
}

/// Units merged into one successor.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Merge {
    /// The successor (active, or activated by the same plan).
    pub into: OrgId,
    /// The merged units (active).
    pub from: Vec<OrgId>,
}

/// A unit divided among several successors ("part of" in the resolution).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// The divided unit (active).
    pub from: OrgId,
    /// Every successor that took part of it.
    pub parts_to: Vec<OrgId>,
    /// The one successor that takes its archive and undelivered documents.
    pub archive_to: OrgId,
}

/// A unit moved under another parent.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reparent {
    /// The unit.
    pub id: OrgId,
    /// Its new parent.
    pub parent: OrgId,
}

/// A unit ended without a successor (a district committee of the old tier).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retire {
    /// The unit.
    pub id: OrgId,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditorEntry {
    scope: OrgId,
    name: String,
}

/// A parsed reform plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Its id (`[a-z0-9-]`), unique among plans in force.
    pub id: String,
    /// A title for people.
    pub title: String,
    /// The legal act it carries out.
    pub legal_basis: String,
    /// When it takes effect.
    pub effective_at: OffsetDateTime,
    /// Units activated.
    pub activate: Vec<Activate>,
    /// Mergers.
    pub merge: Vec<Merge>,
    /// Divisions.
    pub split: Vec<Split>,
    /// Moves.
    pub reparent: Vec<Reparent>,
    /// Retirements.
    pub retire: Vec<Retire>,
    auditors: Vec<AuditorEntry>,
    /// SHA-256 of the plan file's bytes, lower-case hex.
    pub sha256: String,
}

impl Plan {
    /// Parses a plan from its file's text.
    pub fn from_toml(text: &str) -> Result<Plan, ReformError> {
        if text.len() > PLAN_BYTES_MAX {
            return Err(ReformError::Parse(format!(
                "the plan is {} bytes; at most {PLAN_BYTES_MAX} are allowed",
                text.len()
            )));
        }
        let file: PlanFile = toml::from_str(text).map_err(|e| ReformError::Parse(e.to_string()))?;
        let invalid = |reason: String| ReformError::Invalid {
            plan: file.id.chars().take(PLAN_ID_BYTES_MAX).collect(),
            reason,
        };
        if file.id.is_empty()
            || file.id.len() > PLAN_ID_BYTES_MAX
            || !file
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "id must be 1 to 100 characters of a-z, 0-9 and '-'".into(),
            ));
        }
        for (field, value) in [("title", &file.title), ("legal_basis", &file.legal_basis)] {
            if !value.is_empty() {
                check_name(field, value).map_err(|e| invalid(e.to_string()))?;
            }
        }
        let effective_at = OffsetDateTime::parse(&file.effective_at, &Rfc3339).map_err(|_| {
            invalid(format!(
                "effective_at {:?} is not RFC 3339",
                file.effective_at
            ))
        })?;
        for a in &file.auditor {
            check_name(a.scope.as_str(), &a.name).map_err(|e| invalid(e.to_string()))?;
        }
        Ok(Plan {
            id: file.id,
            title: file.title,
            legal_basis: file.legal_basis,
            effective_at,
            activate: file.activate,
            merge: file.merge,
            split: file.split,
            reparent: file.reparent,
            retire: file.retire,
            auditors: file.auditor,
            sha256: crate::document::sha256_hex(text.as_bytes()),
        })
    }

    /// Reads a plan file.
    pub fn load(path: &Path) -> Result<Plan, ReformError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReformError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Plan::from_toml(&text)
    }

    /// The effective time, RFC 3339.
    pub fn effective_at_rfc3339(&self) -> String {
        self.effective_at
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.effective_at.unix_timestamp().to_string())
    }

    /// Applies the plan to `before`: the tree after it, and its effects in words, in a
    /// fixed order (activations, mergers, divisions, moves, retirements, security
    /// officers, then what follows for units merged earlier). Refuses a plan that does not
    /// fit the tree; `before` is never changed.
    pub fn apply(&self, before: &Directory) -> Result<(Directory, Vec<String>), ReformError> {
        let invalid = |reason: String| ReformError::Invalid {
            plan: self.id.clone(),
            reason,
        };
        let mut dir = before.clone();
        let mut effects = Vec::new();
        let mut touched = BTreeSet::new();
        let mut touch = |id: &OrgId| -> Result<(), ReformError> {
            if touched.insert(id.clone()) {
                Ok(())
            } else {
                Err(invalid(format!(
                    "{id} appears in more than one operation as the unit operated on"
                )))
            }
        };
        let name = |dir: &Directory, id: &OrgId| -> Result<String, ReformError> {
            dir.orgs
                .get(id)
                .map(|o| o.name.clone())
                .ok_or_else(|| invalid(format!("{id} is not in the organisation tree")))
        };
        let status_of = |dir: &Directory, id: &OrgId| dir.orgs.get(id).map(|o| o.status.clone());

        for a in &self.activate {
            touch(&a.id)?;
            let n = name(&dir, &a.id)?;
            if status_of(&dir, &a.id) != Some(OrgStatus::Planned) {
                return Err(invalid(format!(
                    "{} cannot be activated: only a unit listed as planned can",
                    a.id
                )));
            }
            if let Some(org) = dir.orgs.get_mut(&a.id) {
                org.status = OrgStatus::Active;
            }
            let parent = dir
                .orgs
                .get(&a.id)
                .and_then(|o| o.parent.as_ref())
                .map(|p| format!(" under {p}"))
                .unwrap_or_default();
            effects.push(format!(
                "activate {} ({n}){parent}: it sends and receives from now on",
                a.id
            ));
        }
        let successor_ok = |dir: &Directory, into: &OrgId| -> Result<String, ReformError> {
            let n = name(dir, into)?;
            if status_of(dir, into) != Some(OrgStatus::Active) {
                return Err(invalid(format!(
                    "successor {into} is not active (activate it in the same plan)"
                )));
            }
            Ok(n)
        };
        let mut merged_now = Vec::new();
        for m in &self.merge {
            let into_name = successor_ok(&dir, &m.into)?;
            if m.from.is_empty() {
                return Err(invalid(format!("the merger into {} names no unit", m.into)));
            }
            for from in &m.from {
                touch(from)?;
                let n = name(&dir, from)?;
                if from == &m.into {
                    return Err(invalid(format!("{from} cannot be merged into itself")));
                }
                if status_of(&dir, from) != Some(OrgStatus::Active) {
                    return Err(invalid(format!(
                        "{from} cannot be merged: it is not active"
                    )));
                }
                if let Some(org) = dir.orgs.get_mut(from) {
                    org.status = OrgStatus::Merged {
                        into: m.into.clone(),
                    };
                }
                merged_now.push(from.clone());
                effects.push(format!(
                    "merge {from} ({n}) into {} ({into_name}): {from} can no longer send or receive; \
                     {} reads its archive (inbox, sent, statuses, payloads, log entries) as its own; \
                     documents not yet accepted by {from} are offered to {}",
                    m.into, m.into, m.into
                ));
            }
        }
        for s in &self.split {
            touch(&s.from)?;
            let n = name(&dir, &s.from)?;
            if s.parts_to.len() < 2 {
                return Err(invalid(format!(
                    "the division of {} needs at least two successors in parts_to",
                    s.from
                )));
            }
            if !s.parts_to.contains(&s.archive_to) {
                return Err(invalid(format!(
                    "archive_to {} of the division of {} must be one of parts_to",
                    s.archive_to, s.from
                )));
            }
            for part in &s.parts_to {
                successor_ok(&dir, part)?;
            }
            if status_of(&dir, &s.from) != Some(OrgStatus::Active) {
                return Err(invalid(format!(
                    "{} cannot be divided: it is not active",
                    s.from
                )));
            }
            if let Some(org) = dir.orgs.get_mut(&s.from) {
                org.status = OrgStatus::Merged {
                    into: s.archive_to.clone(),
                };
            }
            merged_now.push(s.from.clone());
            let others: Vec<String> = s
                .parts_to
                .iter()
                .filter(|p| *p != &s.archive_to)
                .map(ToString::to_string)
                .collect();
            effects.push(format!(
                "divide {} ({n}) among {}: {} can no longer send or receive; its archive and \
                 documents not yet accepted go to {} only (one archive holder); {} get \
                 nothing automatically",
                s.from,
                s.parts_to
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                s.from,
                s.archive_to,
                others.join(", ")
            ));
        }
        for r in &self.reparent {
            touch(&r.id)?;
            name(&dir, &r.id)?;
            name(&dir, &r.parent)?;
            let old = dir
                .orgs
                .get(&r.id)
                .and_then(|o| o.parent.clone())
                .map(|p| p.to_string())
                .unwrap_or_else(|| "no parent".into());
            if let Some(org) = dir.orgs.get_mut(&r.id) {
                org.parent = Some(r.parent.clone());
            }
            effects.push(format!(
                "move {} from {old} to {}: routing and security officers' scopes follow",
                r.id, r.parent
            ));
        }
        for r in &self.retire {
            touch(&r.id)?;
            let n = name(&dir, &r.id)?;
            if status_of(&dir, &r.id) != Some(OrgStatus::Active) {
                return Err(invalid(format!(
                    "{} cannot be retired: it is not active",
                    r.id
                )));
            }
            if let Some(org) = dir.orgs.get_mut(&r.id) {
                org.status = OrgStatus::Retired;
            }
            effects.push(format!(
                "retire {} ({n}): it can no longer send or receive; its history stays and verifies",
                r.id
            ));
        }
        for a in &self.auditors {
            name(&dir, &a.scope)?;
            let auditor = Auditor {
                scope: a.scope.clone(),
                name: a.name.clone(),
            };
            if dir.auditors.insert(a.scope.clone(), auditor).is_some() {
                return Err(invalid(format!(
                    "a security officer for {} already exists",
                    a.scope
                )));
            }
            effects.push(format!(
                "security officer for {}: {} (audits the units merged into it too)",
                a.scope, a.name
            ));
        }
        // No active unit may be left under a parent that is no longer active, except
        // where the plan said so by moving it: otherwise routing would run through a unit
        // that cannot answer.
        for org in dir.orgs.values() {
            if !org.status.is_active() {
                continue;
            }
            if let Some(parent) = &org.parent {
                let parent_active = dir.orgs.get(parent).is_some_and(|p| p.status.is_active());
                if !parent_active {
                    return Err(invalid(format!(
                        "{} would be left active under {parent}, which is not: merge, move or retire it in the same plan",
                        org.id
                    )));
                }
            }
        }
        // Units merged before this plan into a unit merged now follow the chain.
        for org in before.orgs.values() {
            if let OrgStatus::Merged { into } = &org.status {
                if merged_now.contains(into) {
                    if let Some(s) = dir.successor(&org.id) {
                        effects.push(format!(
                            "{} (merged into {into} earlier) now reaches {}: its archive follows",
                            org.id, s.id
                        ));
                    }
                }
            }
        }
        dir.check_references().map_err(|source| ReformError::Tree {
            plan: self.id.clone(),
            source,
        })?;
        Ok((dir, effects))
    }
}

/// The plans kept in a reforms directory (`*.toml`, in name order), each with its text.
pub fn load_dir(dir: &Path) -> Result<Vec<(Plan, String)>, ReformError> {
    let mut paths: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "toml")
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ReformError::Io {
                path: dir.display().to_string(),
                source,
            });
        }
    };
    paths.sort();
    let mut out = Vec::new();
    let mut ids = BTreeSet::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| ReformError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let plan = Plan::from_toml(&text)?;
        if !ids.insert(plan.id.clone()) {
            return Err(ReformError::Invalid {
                plan: plan.id,
                reason: format!("listed twice (again in {})", path.display()),
            });
        }
        out.push((plan, text));
    }
    Ok(out)
}

/// A plan in force or waiting for its time, with its effects.
#[derive(Clone, Debug)]
pub struct PlanState {
    /// The plan.
    pub plan: Plan,
    /// Its effects on the tree it was applied to.
    pub effects: Vec<String>,
    /// Every merged unit of the tree after it, with the active unit that now carries it
    /// on (the archive holder): what the log needs to attribute a successor's acts.
    pub successors: std::collections::BTreeMap<String, String>,
}

/// Applies, in order, every plan whose time has come at `now`; returns the tree, the
/// plans in force with their effects, and the earliest time of a plan still waiting.
/// A plan waiting for its time holds back every plan after it, so plans always apply in
/// file order.
pub fn apply_all(
    base: &Directory,
    plans: &[(Plan, String)],
    now: OffsetDateTime,
) -> Result<(Directory, Vec<PlanState>, Option<OffsetDateTime>), ReformError> {
    let mut dir = base.clone();
    let mut applied = Vec::new();
    for (plan, _) in plans {
        if plan.effective_at > now {
            return Ok((dir, applied, Some(plan.effective_at)));
        }
        let (next, effects) = plan.apply(&dir)?;
        dir = next;
        let successors = dir
            .orgs()
            .filter_map(|o| {
                dir.successor(&o.id)
                    .map(|s| (o.id.to_string(), s.id.to_string()))
            })
            .collect();
        applied.push(PlanState {
            plan: plan.clone(),
            effects,
            successors,
        });
    }
    Ok((dir, applied, None))
}

/// What `congvan reform apply` did or would do.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The plan.
    pub plan: Plan,
    /// Its effects, as the server will log them.
    pub effects: Vec<String>,
    /// Where it was written (not for a dry run).
    pub written: Option<std::path::PathBuf>,
}

/// Checks `plan_text` against the tree as it will be once every plan already in
/// `reforms_dir` is in force, and unless `dry_run`, writes it there (atomically, as the
/// next file in order) for the server to put in force at its time. Refuses a plan whose
/// id is already there, or that does not fit the tree; a refusal writes nothing.
pub fn apply_to_dir(
    base: &Directory,
    reforms_dir: &Path,
    plan_text: &str,
    dry_run: bool,
) -> Result<Outcome, ReformError> {
    let plan = Plan::from_toml(plan_text)?;
    let existing = load_dir(reforms_dir)?;
    if existing.iter().any(|(p, _)| p.id == plan.id) {
        return Err(ReformError::Invalid {
            plan: plan.id,
            reason: format!("is already in {}", reforms_dir.display()),
        });
    }
    // Every plan already there comes first, whether its time has come or not.
    let future = OffsetDateTime::now_utc() + time::Duration::days(365 * 1000);
    let (current, _, _) = apply_all(base, &existing, future)?;
    if let Some((last, _)) = existing.last() {
        if plan.effective_at < last.effective_at {
            return Err(ReformError::Invalid {
                plan: plan.id,
                reason: format!(
                    "takes effect before plan {}, which is already there; plans apply in order",
                    last.id
                ),
            });
        }
    }
    let (_, effects) = plan.apply(&current)?;
    if dry_run {
        return Ok(Outcome {
            plan,
            effects,
            written: None,
        });
    }
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReformError::Io { path, source }
    };
    std::fs::create_dir_all(reforms_dir).map_err(io(reforms_dir))?;
    let name = format!("{:04}-{}.toml", existing.len() + 1, plan.id);
    let target = reforms_dir.join(&name);
    // The server watches this directory: it must only ever see a whole plan, so the file
    // is written beside it, made durable, and renamed into place.
    let tmp = reforms_dir.join(format!(".{name}.tmp"));
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(plan_text.as_bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    if let Ok(dir) = std::fs::File::open(reforms_dir) {
        let _ = dir.sync_all();
    }
    Ok(Outcome {
        plan,
        effects,
        written: Some(target),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../config/orgs.toml");
    const PLAN: &str = include_str!("../../config/reform-2025-chuong-my.toml");

    fn id(s: &str) -> OrgId {
        OrgId::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_sample_plan_turns_the_2023_tree_into_the_2025_one() {
        let before = Directory::from_toml(SAMPLE).unwrap();
        let plan = Plan::from_toml(PLAN).unwrap();
        let (after, effects) = plan.apply(&before).unwrap();
        let succ = |s: &str| after.successor(&id(s)).map(|o| o.id.to_string());
        assert_eq!(succ("hn/cm/chuc-son").as_deref(), Some("hn/chuong-my"));
        // Merged in 2023 into Chúc Sơn, now reaching the ward through it.
        assert_eq!(succ("hn/cm/thuy-huong").as_deref(), Some("hn/chuong-my"));
        assert_eq!(succ("hn/cm/xuan-mai").as_deref(), Some("hn/xuan-mai"));
        assert_eq!(succ("hn/cm/truong-yen").as_deref(), Some("hn/phu-nghia"));
        // Tân Tiến, divided between Xuân Mai and Trần Phú: one archive holder.
        assert_eq!(succ("hn/cm/tan-tien").as_deref(), Some("hn/xuan-mai"));
        assert_eq!(
            after.org(&id("hn/cm")).map(|o| o.status.clone()),
            Some(OrgStatus::Retired)
        );
        for new in [
            "hn/chuong-my",
            "hn/xuan-mai",
            "hn/phu-nghia",
            "hn/tran-phu",
            "hn/hoa-phu",
            "hn/quang-bi",
        ] {
            assert!(after.org(&id(new)).unwrap().status.is_active(), "{new}");
            assert!(after.may_send(&id(new), &id("hn")), "{new}");
        }
        assert!(after.audits(&id("hn/chuong-my"), &id("hn/cm/thuy-huong")));
        assert!(!after.audits(&id("hn/chuong-my"), &id("hn/cm/xuan-mai")));
        assert!(
            effects
                .iter()
                .any(|e| e.starts_with("divide hn/cm/tan-tien"))
        );
        assert!(
            effects
                .iter()
                .any(|e| e.starts_with("hn/cm/thuy-huong (merged into"))
        );
        // The same plan, applied again, refuses: nothing in it is active any more.
        assert!(plan.apply(&after).is_err());
        // The 2023 tree is untouched.
        assert!(
            before
                .org(&id("hn/cm/chuc-son"))
                .unwrap()
                .status
                .is_active()
        );
    }

    fn refused(extra: &str, expected: &str) {
        let before = Directory::from_toml(SAMPLE).unwrap();
        let text = format!(
            "id = \"t\"\ntitle = \"thử\"\neffective_at = \"2025-07-01T00:00:00+07:00\"\n{extra}"
        );
        let err = match Plan::from_toml(&text) {
            Err(e) => e,
            Ok(plan) => match plan.apply(&before) {
                Ok(_) => panic!("accepted: {extra}"),
                Err(e) => e,
            },
        };
        assert!(err.to_string().contains(expected), "{err} !~ {expected}");
    }

    #[test]
    fn inconsistent_plans_are_refused() {
        refused(
            "[[merge]]\ninto = \"hn/chuong-my\"\nfrom = [\"hn/cm/chuc-son\"]",
            "successor hn/chuong-my is not active",
        );
        refused(
            "[[activate]]\nid = \"hn/cm\"",
            "only a unit listed as planned",
        );
        refused(
            "[[activate]]\nid = \"hn/chuong-my\"\n[[merge]]\ninto = \"hn/chuong-my\"\nfrom = [\"hn/cm/thuy-huong\"]",
            "it is not active",
        );
        refused(
            "[[activate]]\nid = \"hn/chuong-my\"\n[[merge]]\ninto = \"hn/chuong-my\"\nfrom = [\"hn/cm/nowhere\"]",
            "not in the organisation tree",
        );
        refused(
            "[[activate]]\nid = \"hn/chuong-my\"\n[[merge]]\ninto = \"hn/chuong-my\"\nfrom = [\"hn/cm/chuc-son\"]\n[[retire]]\nid = \"hn/cm/chuc-son\"",
            "more than one operation",
        );
        refused(
            "[[activate]]\nid = \"hn/xuan-mai\"\n[[activate]]\nid = \"hn/tran-phu\"\n[[split]]\nfrom = \"hn/cm/tan-tien\"\nparts_to = [\"hn/xuan-mai\", \"hn/tran-phu\"]\narchive_to = \"hn/chuong-my\"",
            "must be one of parts_to",
        );
        refused(
            "[[retire]]\nid = \"hn/cm\"",
            "would be left active under hn/cm",
        );
        refused("colour = \"red\"", "unknown field");
        let err = Plan::from_toml(
            "id = \"Bad Id\"\ntitle = \"x\"\neffective_at = \"2025-07-01T00:00:00Z\"",
        )
        .unwrap_err();
        assert!(err.to_string().contains("id must be"), "{err}");
    }

    #[test]
    fn plans_wait_for_their_time_and_apply_in_order() {
        let before = Directory::from_toml(SAMPLE).unwrap();
        let plan = Plan::from_toml(PLAN).unwrap();
        let plans = vec![(plan.clone(), PLAN.to_owned())];
        let early = plan.effective_at - time::Duration::seconds(1);
        let (dir, applied, waiting) = apply_all(&before, &plans, early).unwrap();
        assert!(applied.is_empty());
        assert_eq!(waiting, Some(plan.effective_at));
        assert!(dir.org(&id("hn/cm/chuc-son")).unwrap().status.is_active());
        let (dir, applied, waiting) = apply_all(&before, &plans, plan.effective_at).unwrap();
        assert_eq!(applied.len(), 1);
        assert!(waiting.is_none());
        assert!(!dir.org(&id("hn/cm/chuc-son")).unwrap().status.is_active());
    }
}
