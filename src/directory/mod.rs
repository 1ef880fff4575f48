//! The organisation tree: committees, their parents and status, and security officers.
//!
//! The tree is loaded from `orgs.toml` (see `config/orgs.toml`) and validated as a whole:
//! a [`Directory`] that exists is consistent (every parent and merge target exists, the
//! parent links form a tree, every name is Unicode NFC). Nothing here knows about HTTP,
//! certificates or storage.

pub mod endorsement;
pub mod reform;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use unicode_normalization::is_nfc;

/// Longest organisation id accepted, in bytes.
pub const ORG_ID_BYTES_MAX: usize = 200;
/// Deepest tree accepted (city → district → commune → cell is 4).
pub const TREE_DEPTH_MAX: usize = 16;
/// Longest organisation or auditor name, in characters.
pub const NAME_CHARS_MAX: usize = 200;

/// Errors found while loading or validating the organisation tree.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The id is not a valid organisation path.
    #[error("invalid organisation id {id:?}: {reason}")]
    InvalidId {
        /// The offending id.
        id: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A name is not in Unicode NFC or is empty or too long.
    #[error("invalid name for {id}: {reason}")]
    InvalidName {
        /// The entry the name belongs to.
        id: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// The same id appears twice.
    #[error("organisation {0} is listed twice")]
    Duplicate(String),
    /// A reference (parent, merge target, auditor scope) names no organisation.
    #[error("{from} refers to unknown organisation {to} ({field})")]
    UnknownReference {
        /// The entry holding the reference.
        from: String,
        /// The missing organisation.
        to: String,
        /// Which field holds the reference.
        field: &'static str,
    },
    /// The parent links do not form a tree.
    #[error("the parent links through {0} form a cycle or are deeper than {TREE_DEPTH_MAX}")]
    NotATree(String),
    /// A merged organisation does not name an active successor, or a non-merged one does.
    #[error("status of {id}: {reason}")]
    InvalidStatus {
        /// The entry.
        id: String,
        /// Why the status is inconsistent.
        reason: &'static str,
    },
    /// The file could not be read.
    #[error("cannot read organisation tree {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for an organisation tree.
    #[error("cannot parse organisation tree: {0}")]
    Parse(String),
}

/// An organisation id: a path such as `hn/cm/chuc-son`.
///
/// Segments are 1–63 characters of lower-case ASCII letters, digits and `-`, not starting
/// or ending with `-`. The restriction keeps ids safe as file names (with `/` → `.`), in
/// URIs and in log lines, and makes two spellings of one id impossible.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct OrgId(String);

impl OrgId {
    /// Parses and validates an organisation id.
    pub fn parse(s: &str) -> Result<Self, DirectoryError> {
        let invalid = |reason| DirectoryError::InvalidId {
            id: s.chars().take(ORG_ID_BYTES_MAX).collect(),
            reason,
        };
        if s.is_empty() {
            return Err(invalid("empty"));
        }
        if s.len() > ORG_ID_BYTES_MAX {
            return Err(invalid("too long"));
        }
        let mut depth = 0;
        for segment in s.split('/') {
            depth += 1;
            if segment.is_empty() || segment.len() > 63 {
                return Err(invalid("each segment must be 1 to 63 characters"));
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(invalid("segments may hold only a-z, 0-9 and '-'"));
            }
            if segment.starts_with('-') || segment.ends_with('-') {
                return Err(invalid("a segment may not start or end with '-'"));
            }
        }
        if depth > TREE_DEPTH_MAX {
            return Err(invalid("too many segments"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's path prefix (`hn/cm` for `hn/cm/chuc-son`), if any.
    pub fn path_parent(&self) -> Option<OrgId> {
        self.0.rsplit_once('/').map(|(p, _)| OrgId(p.to_owned()))
    }

    /// The id as a single file-name component: `/` replaced by `.`.
    pub fn file_name(&self) -> String {
        self.0.replace('/', ".")
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OrgId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        OrgId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for OrgId {
    type Err = DirectoryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrgId::parse(s)
    }
}

/// Whether an organisation can still take part in exchanges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OrgStatus {
    /// Sends and receives documents.
    Active,
    /// Merged into another organisation; kept for history.
    Merged {
        /// The successor.
        into: OrgId,
    },
    /// Dissolved; kept for history.
    Retired,
    /// Established by law but not yet in force: listed (with its certificates) ahead of
    /// the reform plan that activates it, and until then neither sends nor receives.
    Planned,
}

impl OrgStatus {
    /// True for [`OrgStatus::Active`].
    pub fn is_active(&self) -> bool {
        matches!(self, OrgStatus::Active)
    }
}

/// One committee in the tree.
#[derive(Clone, Debug, Serialize)]
pub struct Org {
    /// Its id.
    pub id: OrgId,
    /// Its Vietnamese name (NFC).
    pub name: String,
    /// Its parent, `None` for a root.
    pub parent: Option<OrgId>,
    /// Active, merged or retired.
    pub status: OrgStatus,
    /// The government identifier code (mã định danh, Decision 20/2020/QĐ-TTg), e.g.
    /// `000.00.00.H26`: the edXML `OrganId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The competent signer's full name, used by the demo PKI for `person.crt`.
    #[serde(skip)]
    pub signer_name: Option<String>,
    /// The competent signer's position.
    #[serde(skip)]
    pub signer_position: Option<String>,
    /// Signature roles this organisation's documents must carry (`person`,
    /// `organization`); both unless the tree says otherwise.
    #[serde(skip)]
    pub required_signatures: Vec<String>,
    /// The registered encryption certificate (opaque to this module; an OpenPGP
    /// certificate with the shipped cipher).
    #[serde(skip)]
    pub encryption_cert: Option<Vec<u8>>,
    /// The organisation's endorsement of its encryption certificate (JSON bytes of an
    /// [`endorsement::SignedEndorsement`]), served with the certificate so that clients
    /// can check that the key is the organisation's own.
    #[serde(skip)]
    pub encryption_endorsement: Option<Vec<u8>>,
    /// The organisation's document-signing certificates (PEM), for clients to see.
    #[serde(skip)]
    pub signing_certs_pem: Option<String>,
}

/// Whether `code` has the shape of a government identifier code (mã định danh): groups
/// of ASCII letters and digits separated by dots. The standard form has four groups
/// (`NNN.NN.NN.ANN`); shorter ones are seen in the field, so two to five are accepted.
pub fn is_org_code(code: &str) -> bool {
    let groups: Vec<&str> = code.split('.').collect();
    code.len() <= 32
        && (2..=5).contains(&groups.len())
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// File name, in the keys directory, of an organisation's encryption certificate.
pub fn encryption_cert_file(id: &OrgId) -> String {
    format!("{}.openpgp.asc", id.file_name())
}

/// File name, in the keys directory, of the endorsement of an organisation's encryption
/// certificate.
pub fn endorsement_file(id: &OrgId) -> String {
    format!("{}.endorsement.json", id.file_name())
}

/// File name, in the keys directory, of an organisation's signing certificates.
pub fn signing_certs_file(id: &OrgId) -> String {
    format!("{}.signing.pem", id.file_name())
}

/// Signature roles a document may carry.
pub const SIGNATURE_ROLES: [&str; 2] = ["person", "organization"];

/// A lateral routing rule: any organisation in the `from` subtree may send to any in the
/// `to` subtree.
#[derive(Clone, Debug, Serialize)]
pub struct RouteRule {
    /// Senders' subtree.
    pub from: OrgId,
    /// Recipients' subtree.
    pub to: OrgId,
}

/// A security officer: may audit delivery within the subtree rooted at `scope`.
#[derive(Clone, Debug, Serialize)]
pub struct Auditor {
    /// The root of the audited subtree.
    pub scope: OrgId,
    /// A description of the role (NFC).
    pub name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgsFile {
    #[serde(default)]
    org: Vec<OrgEntry>,
    #[serde(default)]
    auditor: Vec<AuditorEntry>,
    #[serde(default)]
    route: Vec<RouteEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    from: OrgId,
    to: OrgId,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum StatusEntry {
    Active,
    Merged,
    Retired,
    Planned,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgEntry {
    id: OrgId,
    name: String,
    parent: Option<OrgId>,
    status: StatusEntry,
    merged_into: Option<OrgId>,
    code: Option<String>,
    signer_name: Option<String>,
    signer_position: Option<String>,
    required_signatures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditorEntry {
    scope: OrgId,
    name: String,
}

/// The validated organisation tree.
#[derive(Clone, Debug)]
pub struct Directory {
    orgs: BTreeMap<OrgId, Org>,
    auditors: BTreeMap<OrgId, Auditor>,
    routes: Vec<RouteRule>,
}

impl Directory {
    /// Reads and validates an organisation tree file.
    pub fn load(path: &Path) -> Result<Self, DirectoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| DirectoryError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Parses and validates an organisation tree from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, DirectoryError> {
        let file: OrgsFile =
            toml::from_str(text).map_err(|e| DirectoryError::Parse(e.to_string()))?;
        let mut orgs = BTreeMap::new();
        for entry in file.org {
            check_name(entry.id.as_str(), &entry.name)?;
            for extra in [&entry.signer_name, &entry.signer_position]
                .into_iter()
                .flatten()
            {
                check_name(entry.id.as_str(), extra)?;
            }
            let status = match (entry.status, entry.merged_into) {
                (StatusEntry::Active, None) => OrgStatus::Active,
                (StatusEntry::Retired, None) => OrgStatus::Retired,
                (StatusEntry::Planned, None) => OrgStatus::Planned,
                (StatusEntry::Merged, Some(into)) => OrgStatus::Merged { into },
                (StatusEntry::Merged, None) => {
                    return Err(DirectoryError::InvalidStatus {
                        id: entry.id.to_string(),
                        reason: "status \"merged\" needs merged_into",
                    });
                }
                (_, Some(_)) => {
                    return Err(DirectoryError::InvalidStatus {
                        id: entry.id.to_string(),
                        reason: "merged_into is only allowed with status \"merged\"",
                    });
                }
            };
            let parent = entry.parent.or_else(|| entry.id.path_parent());
            let required_signatures = match entry.required_signatures {
                None => SIGNATURE_ROLES.iter().map(|r| (*r).to_owned()).collect(),
                Some(roles) => {
                    if roles.is_empty()
                        || roles.iter().any(|r| !SIGNATURE_ROLES.contains(&r.as_str()))
                    {
                        return Err(DirectoryError::InvalidStatus {
                            id: entry.id.to_string(),
                            reason: "required_signatures must list \"person\" and/or \"organization\"",
                        });
                    }
                    roles
                }
            };
            if let Some(code) = &entry.code {
                if !is_org_code(code) {
                    return Err(DirectoryError::InvalidStatus {
                        id: entry.id.to_string(),
                        reason: "code must be a government identifier: 2 to 5 groups of ASCII letters and digits separated by dots, at most 32 characters (e.g. 000.00.00.H26)",
                    });
                }
            }
            let org = Org {
                code: entry.code,
                encryption_cert: None,
                encryption_endorsement: None,
                signing_certs_pem: None,
                required_signatures,
                id: entry.id.clone(),
                name: entry.name,
                parent,
                status,
                signer_name: entry.signer_name,
                signer_position: entry.signer_position,
            };
            if orgs.insert(entry.id.clone(), org).is_some() {
                return Err(DirectoryError::Duplicate(entry.id.to_string()));
            }
        }
        let mut auditors = BTreeMap::new();
        for entry in file.auditor {
            check_name(entry.scope.as_str(), &entry.name)?;
            if !orgs.contains_key(&entry.scope) {
                return Err(DirectoryError::UnknownReference {
                    from: format!("auditor {}", entry.scope),
                    to: entry.scope.to_string(),
                    field: "scope",
                });
            }
            let auditor = Auditor {
                scope: entry.scope.clone(),
                name: entry.name,
            };
            if auditors.insert(entry.scope.clone(), auditor).is_some() {
                return Err(DirectoryError::Duplicate(format!(
                    "auditor {}",
                    entry.scope
                )));
            }
        }
        let mut routes = Vec::new();
        for entry in file.route {
            for (field, id) in [("route.from", &entry.from), ("route.to", &entry.to)] {
                if !orgs.contains_key(id) {
                    return Err(DirectoryError::UnknownReference {
                        from: "route".into(),
                        to: id.to_string(),
                        field,
                    });
                }
            }
            routes.push(RouteRule {
                from: entry.from,
                to: entry.to,
            });
        }
        let dir = Directory {
            orgs,
            auditors,
            routes,
        };
        dir.check_references()?;
        Ok(dir)
    }

    fn check_references(&self) -> Result<(), DirectoryError> {
        for org in self.orgs.values() {
            if let Some(parent) = &org.parent {
                if !self.orgs.contains_key(parent) {
                    return Err(DirectoryError::UnknownReference {
                        from: org.id.to_string(),
                        to: parent.to_string(),
                        field: "parent",
                    });
                }
            }
            if let OrgStatus::Merged { into } = &org.status {
                if !self.orgs.contains_key(into) {
                    return Err(DirectoryError::UnknownReference {
                        from: org.id.to_string(),
                        to: into.to_string(),
                        field: "merged_into",
                    });
                }
                // A unit merged into one that was itself merged later (Thủy Hương into
                // Chúc Sơn in 2023, Chúc Sơn into Phường Chương Mỹ in 2025) keeps its
                // history; the chain must end at an active organisation.
                if self.successor(&org.id).is_none() {
                    return Err(DirectoryError::InvalidStatus {
                        id: org.id.to_string(),
                        reason: "merged_into must name an active organisation (or one merged into an active one)",
                    });
                }
            }
            // Walking up at most TREE_DEPTH_MAX steps must reach a root.
            let mut cursor = org.parent.as_ref();
            let mut steps = 0;
            while let Some(p) = cursor {
                steps += 1;
                if steps > TREE_DEPTH_MAX || p == &org.id {
                    return Err(DirectoryError::NotATree(org.id.to_string()));
                }
                cursor = self.orgs.get(p).and_then(|o| o.parent.as_ref());
            }
        }
        Ok(())
    }

    /// Reads each organisation's certificates from `keys_dir` (see
    /// [`encryption_cert_file`] and [`signing_certs_file`]); missing files mean none.
    pub fn attach_keys(&mut self, keys_dir: &Path) -> Result<(), DirectoryError> {
        for org in self.orgs.values_mut() {
            let read = |name: String| -> Result<Option<Vec<u8>>, DirectoryError> {
                let path = keys_dir.join(name);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(DirectoryError::Io {
                        path: path.display().to_string(),
                        source,
                    }),
                }
            };
            org.encryption_cert = read(encryption_cert_file(&org.id))?;
            org.encryption_endorsement = read(endorsement_file(&org.id))?;
            org.signing_certs_pem = read(signing_certs_file(&org.id))?
                .map(|b| String::from_utf8_lossy(&b).into_owned());
        }
        Ok(())
    }

    /// Drops the encryption certificates for which `usable` says false.
    pub fn retain_usable_encryption_certs(
        &mut self,
        mut usable: impl FnMut(&OrgId, &[u8]) -> bool,
    ) {
        for org in self.orgs.values_mut() {
            if let Some(cert) = &org.encryption_cert {
                if !usable(&org.id, cert) {
                    org.encryption_cert = None;
                }
            }
        }
    }

    /// Drops the endorsements for which `usable` says false (ones that do not parse).
    pub fn retain_usable_endorsements(&mut self, mut usable: impl FnMut(&OrgId, &[u8]) -> bool) {
        for org in self.orgs.values_mut() {
            if let Some(bytes) = &org.encryption_endorsement {
                if !usable(&org.id, bytes) {
                    org.encryption_endorsement = None;
                }
            }
        }
    }

    /// The organisation with this id.
    pub fn org(&self, id: &OrgId) -> Option<&Org> {
        self.orgs.get(id)
    }

    /// All organisations, ordered by id.
    pub fn orgs(&self) -> impl Iterator<Item = &Org> {
        self.orgs.values()
    }

    /// The security officer role scoped to this subtree.
    pub fn auditor(&self, scope: &OrgId) -> Option<&Auditor> {
        self.auditors.get(scope)
    }

    /// All security officer roles.
    pub fn auditors(&self) -> impl Iterator<Item = &Auditor> {
        self.auditors.values()
    }

    /// The active organisation that carries on a merged one: its `merged_into`, followed
    /// through later mergers. `None` for a unit that is not merged, or whose chain does
    /// not end at an active organisation within [`TREE_DEPTH_MAX`] steps.
    pub fn successor(&self, id: &OrgId) -> Option<&Org> {
        let mut cursor = self.orgs.get(id)?;
        for _ in 0..=TREE_DEPTH_MAX {
            match &cursor.status {
                OrgStatus::Merged { into } => cursor = self.orgs.get(into)?,
                OrgStatus::Active if &cursor.id != id => return Some(cursor),
                _ => return None,
            }
        }
        None
    }

    /// Every merged organisation whose successor is `id` (directly or through later
    /// mergers), ordered by id: the units whose archives `id` reads as its own.
    pub fn predecessors(&self, id: &OrgId) -> Vec<OrgId> {
        self.orgs
            .values()
            .filter(|o| self.successor(&o.id).is_some_and(|s| &s.id == id))
            .map(|o| o.id.clone())
            .collect()
    }

    /// True when `id` is `org` itself or one of its predecessors.
    pub fn speaks_for(&self, org: &OrgId, id: &OrgId) -> bool {
        org == id || self.successor(id).is_some_and(|s| &s.id == org)
    }

    /// Whether a security officer scoped to `scope` audits `id`: `id` lies in the subtree,
    /// or its successor does (scopes follow the tree after a reorganisation, so the
    /// officer of a new commune audits the history of the units merged into it).
    pub fn audits(&self, scope: &OrgId, id: &OrgId) -> bool {
        self.in_subtree(scope, id)
            || self
                .successor(id)
                .is_some_and(|s| self.in_subtree(scope, &s.id))
    }

    /// True when `ancestor` is a strict ancestor of `id` along the parent links.
    pub fn is_ancestor(&self, ancestor: &OrgId, id: &OrgId) -> bool {
        let mut cursor = self.orgs.get(id).and_then(|o| o.parent.as_ref());
        while let Some(p) = cursor {
            if p == ancestor {
                return true;
            }
            cursor = self.orgs.get(p).and_then(|o| o.parent.as_ref());
        }
        false
    }

    /// True when `id` is `scope` or lies below it.
    pub fn in_subtree(&self, scope: &OrgId, id: &OrgId) -> bool {
        scope == id || self.is_ancestor(scope, id)
    }

    /// The routing policy: an organisation may send to its ancestors and descendants, and
    /// laterally where a rule allows it.
    pub fn may_send(&self, from: &OrgId, to: &OrgId) -> bool {
        from != to
            && (self.is_ancestor(from, to)
                || self.is_ancestor(to, from)
                || self
                    .routes
                    .iter()
                    .any(|r| self.in_subtree(&r.from, from) && self.in_subtree(&r.to, to)))
    }

    /// The direct children of `id`, ordered by id.
    pub fn children<'a>(&'a self, id: &'a OrgId) -> impl Iterator<Item = &'a Org> + 'a {
        self.orgs
            .values()
            .filter(move |o| o.parent.as_ref() == Some(id))
    }
}

fn check_name(id: &str, name: &str) -> Result<(), DirectoryError> {
    let invalid = |reason| DirectoryError::InvalidName {
        id: id.to_owned(),
        reason,
    };
    if name.trim().is_empty() {
        return Err(invalid("empty"));
    }
    if name.chars().count() > NAME_CHARS_MAX {
        return Err(invalid("too long"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("control characters are not allowed"));
    }
    if !is_nfc(name) {
        return Err(invalid("not in Unicode NFC"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../config/orgs.toml");

    fn id(s: &str) -> OrgId {
        OrgId::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn sample_tree_loads() {
        let dir = Directory::from_toml(SAMPLE).unwrap_or_else(|e| panic!("{e}"));
        let cm = id("hn/cm");
        let communes: Vec<_> = dir.children(&cm).map(|o| o.id.as_str()).collect();
        assert!(communes.len() >= 6, "{communes:?}");
        assert!(dir.is_ancestor(&id("hn"), &id("hn/cm/chuc-son")));
        assert!(!dir.is_ancestor(&id("hn/cm/chuc-son"), &id("hn")));
        assert!(dir.in_subtree(&cm, &cm));
        assert_eq!(
            dir.org(&id("hn/cm/chuc-son")).map(|o| o.name.as_str()),
            Some("Đảng ủy thị trấn Chúc Sơn")
        );
        assert!(dir.auditor(&cm).is_some());
    }

    #[test]
    fn successors_follow_merger_chains() {
        let dir = Directory::from_toml(SAMPLE).unwrap_or_else(|e| panic!("{e}"));
        let huong = id("hn/cm/thuy-huong");
        let son = id("hn/cm/chuc-son");
        assert_eq!(dir.successor(&huong).map(|o| &o.id), Some(&son));
        assert!(dir.successor(&son).is_none());
        assert_eq!(dir.predecessors(&son), vec![huong.clone()]);
        assert!(dir.speaks_for(&son, &huong) && dir.speaks_for(&son, &son));
        assert!(!dir.speaks_for(&huong, &son));
        assert!(dir.audits(&id("hn/cm"), &huong));
        assert!(!dir.audits(&id("hn/tt"), &huong));
        // Planned units exist but are not active.
        let planned = dir
            .orgs()
            .find(|o| o.status == OrgStatus::Planned)
            .expect("the sample lists the 2025 units as planned");
        assert!(!planned.status.is_active());
    }

    #[test]
    fn routing_policy_follows_the_tree_and_rules() {
        let text =
            format!("{SAMPLE}\n[[route]]\nfrom = \"hn/cm/chuc-son\"\nto = \"hn/cm/xuan-mai\"\n");
        let dir = Directory::from_toml(&text).unwrap();
        let may = |a: &str, b: &str| dir.may_send(&id(a), &id(b));
        assert!(may("hn/cm", "hn/cm/dong-son"));
        assert!(may("hn/cm/dong-son", "hn/cm"));
        assert!(may("hn", "hn/cm/dong-son"));
        assert!(may("hn/cm/dong-son", "hn"));
        assert!(!may("hn/cm/dong-son", "hn/cm/truong-yen"));
        assert!(may("hn/cm/chuc-son", "hn/cm/xuan-mai"));
        assert!(!may("hn/cm/xuan-mai", "hn/cm/chuc-son"));
        assert!(!may("hn/cm", "hn/cm"));
    }

    #[test]
    fn the_sample_tree_carries_identifier_codes() {
        let dir = Directory::from_toml(SAMPLE).unwrap_or_else(|e| panic!("{e}"));
        for org in dir.orgs() {
            let code = org.code.as_deref().unwrap_or_default();
            assert!(is_org_code(code), "{}: {code:?}", org.id);
        }
    }

    #[test]
    fn org_id_syntax() {
        for ok in ["hn", "hn/cm", "hn/cm/chuc-son", "a1/b-2"] {
            assert!(OrgId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/hn",
            "hn/",
            "hn//cm",
            "Hn",
            "hn cm",
            "-hn",
            "hn-",
            "hn/../x",
            "hà-nội",
        ] {
            assert!(OrgId::parse(bad).is_err(), "{bad}");
        }
    }

    fn check_err(toml: &str, expected: &str) {
        match Directory::from_toml(toml) {
            Ok(_) => panic!("accepted: {toml}"),
            Err(e) => assert!(e.to_string().contains(expected), "{e} !~ {expected}"),
        }
    }

    #[test]
    fn rejects_inconsistent_trees() {
        check_err(
            "[[org]]\nid='hn/cm'\nname='x'\nstatus='active'",
            "unknown organisation hn (parent)",
        );
        check_err(
            "[[org]]\nid='hn'\nname='x'\nstatus='active'\n[[org]]\nid='hn'\nname='y'\nstatus='active'",
            "listed twice",
        );
        check_err(
            "[[org]]\nid='hn'\nname='x'\nstatus='merged'",
            "needs merged_into",
        );
        check_err(
            "[[org]]\nid='a'\nname='x'\nstatus='active'\nparent='b'\n[[org]]\nid='b'\nname='y'\nstatus='active'\nparent='a'",
            "cycle",
        );
        // "Hà" written with a combining grave accent (NFD).
        check_err(
            "[[org]]\nid='hn'\nname='Ha\u{0300} Nội'\nstatus='active'",
            "not in Unicode NFC",
        );
        check_err(
            "[[org]]\nid='hn'\nname='x'\nstatus='active'\ncolour='red'",
            "unknown field",
        );
        check_err(
            "[[org]]\nid='hn'\nname='x'\nstatus='active'\n[[auditor]]\nscope='hp'\nname='y'",
            "unknown organisation hp",
        );
        check_err(
            "[[org]]\nid='hn'\nname='x'\nstatus='retired'\n[[org]]\nid='hn/a'\nname='y'\nstatus='merged'\nmerged_into='hn'",
            "must name an active",
        );
        check_err(
            "[[org]]\nid='hn'\nname='x'\nstatus='active'\n[[org]]\nid='hn/a'\nname='y'\nstatus='merged'\nmerged_into='hn/b'\n[[org]]\nid='hn/b'\nname='z'\nstatus='merged'\nmerged_into='hn/a'",
            "must name an active",
        );
        check_err(
            "[[org]]\nid='hn'\nname='x'\nstatus='planned'\nmerged_into='hn'",
            "only allowed with status",
        );
    }
}
