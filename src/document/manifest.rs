//! The manifest: what a document is, who sends it to whom, and what its payload is.
//!
//! Field meanings follow the national edXML header (QCVN 102:2016/BTTTT). Parsing is
//! strict: unknown or duplicate fields are refused, every string must be Unicode NFC
//! (Vietnamese has two encodings of most diacritics; we refuse rather than normalise, so
//! the bytes that were signed are the bytes that are stored), and every size is bounded.
//! The canonical bytes that signatures cover are RFC 8785 (JCS) of the JSON as received.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use unicode_normalization::is_nfc;
use uuid::Uuid;

use crate::directory::OrgId;

/// Largest manifest accepted, in bytes of JSON.
pub const MANIFEST_BYTES_MAX: usize = 64 * 1024;
/// Most recipients of one document.
pub const RECIPIENTS_MAX: usize = 1000;
/// Most attachments of one document.
pub const ATTACHMENTS_MAX: usize = 100;
/// Longest subject (trích yếu), in characters.
pub const SUBJECT_CHARS_MAX: usize = 500;
/// Longest short text field (number, notation, names, place…), in characters.
pub const SHORT_TEXT_CHARS_MAX: usize = 200;
/// Longest attachment name, in bytes.
pub const ATTACHMENT_NAME_BYTES_MAX: usize = 255;
/// The manifest format version this code reads and writes.
pub const MANIFEST_VERSION: u32 = 1;

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestError {
    /// Larger than [`MANIFEST_BYTES_MAX`].
    #[error("the manifest is {0} bytes; at most {MANIFEST_BYTES_MAX} are allowed")]
    TooLarge(usize),
    /// Not JSON, or not the manifest's shape.
    #[error("invalid manifest: {0}")]
    Invalid(String),
    /// A field the format does not define.
    #[error("invalid manifest: {0}")]
    UnknownField(String),
    /// A string that is not in Unicode NFC.
    #[error("the manifest text {0:?} is not in Unicode NFC; normalise it before signing")]
    NotNfc(String),
    /// A document type not in the configured list.
    #[error("document type {given:?} is not one of the configured types: {}", .configured.join(", "))]
    UnknownDocType {
        /// The type the manifest names.
        given: String,
        /// The types the server accepts (`[documents] types`).
        configured: Vec<String>,
    },
}

/// Urgency (edXML Priority).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Urgency {
    /// 0: thường (normal).
    Thuong = 0,
    /// 1: khẩn (urgent).
    Khan = 1,
    /// 2: thượng khẩn (very urgent).
    ThuongKhan = 2,
    /// 3: hỏa tốc (flash).
    HoaToc = 3,
    /// 4: hỏa tốc hẹn giờ (flash, with a deadline).
    HoaTocHenGio = 4,
}

impl TryFrom<u8> for Urgency {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        Ok(match v {
            0 => Urgency::Thuong,
            1 => Urgency::Khan,
            2 => Urgency::ThuongKhan,
            3 => Urgency::HoaToc,
            4 => Urgency::HoaTocHenGio,
            _ => return Err(format!("urgency {v} is not 0..=4")),
        })
    }
}

impl From<Urgency> for u8 {
    fn from(u: Urgency) -> u8 {
        u as u8
    }
}

impl Urgency {
    /// Parses a CLI word (`thuong|khan|thuong_khan|hoa_toc|hoa_toc_hen_gio`), the edXML
    /// number, or the Vietnamese label shown in output ("Khẩn", "Hỏa tốc", any case).
    pub fn parse(s: &str) -> Option<Urgency> {
        use unicode_normalization::UnicodeNormalization;
        Some(match s {
            "thuong" | "0" => Urgency::Thuong,
            "khan" | "1" => Urgency::Khan,
            "thuong_khan" | "2" => Urgency::ThuongKhan,
            "hoa_toc" | "3" => Urgency::HoaToc,
            "hoa_toc_hen_gio" | "4" => Urgency::HoaTocHenGio,
            _ => {
                let wanted = s.nfc().collect::<String>().to_lowercase();
                return [
                    Urgency::Thuong,
                    Urgency::Khan,
                    Urgency::ThuongKhan,
                    Urgency::HoaToc,
                    Urgency::HoaTocHenGio,
                ]
                .into_iter()
                .find(|u| u.label().to_lowercase() == wanted);
            }
        })
    }

    /// The Vietnamese label.
    pub fn label(self) -> &'static str {
        match self {
            Urgency::Thuong => "Thường",
            Urgency::Khan => "Khẩn",
            Urgency::ThuongKhan => "Thượng khẩn",
            Urgency::HoaToc => "Hỏa tốc",
            Urgency::HoaTocHenGio => "Hỏa tốc hẹn giờ",
        }
    }
}

/// Classification (độ mật).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// Unclassified.
    Thuong,
    /// Mật (confidential).
    Mat,
    /// Tối mật (secret).
    ToiMat,
    /// Tuyệt mật (top secret).
    TuyetMat,
}

impl Classification {
    /// True for every level but [`Classification::Thuong`].
    pub fn is_classified(self) -> bool {
        self != Classification::Thuong
    }

    /// The Vietnamese label.
    pub fn label(self) -> &'static str {
        match self {
            Classification::Thuong => "Thường",
            Classification::Mat => "Mật",
            Classification::ToiMat => "Tối mật",
            Classification::TuyetMat => "Tuyệt mật",
        }
    }

    /// The level with this wire name.
    pub fn from_name(name: &str) -> Option<Classification> {
        [
            Classification::Thuong,
            Classification::Mat,
            Classification::ToiMat,
            Classification::TuyetMat,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Classification::Thuong => "thuong",
            Classification::Mat => "mat",
            Classification::ToiMat => "toi_mat",
            Classification::TuyetMat => "tuyet_mat",
        }
    }
}

/// Number and notation (số và ký hiệu), e.g. "986" and "QĐ/HU".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocCode {
    /// The number.
    pub number: String,
    /// The notation.
    pub notation: String,
}

/// Date and place of promulgation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promulgated {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Place name (may be empty).
    pub place: String,
}

/// The competent signer as printed on the document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// Competence: "TM.", "KT.", "TL.", "TUQ.", "Q." or empty.
    pub competence: String,
    /// Position, e.g. "Phó Bí thư".
    pub position: String,
    /// Full name.
    pub full_name: String,
}

/// What this document does to earlier ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusinessKind {
    /// A new document.
    New,
    /// Recalls `target`.
    Recall,
    /// Updates `target`.
    Update,
    /// Replaces `target`.
    Replace,
}

/// The business operation (edXML BussinessDocType).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Business {
    /// The operation.
    pub kind: BusinessKind,
    /// The document operated on (not for `new`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Uuid>,
}

/// One attached file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// File name (no path).
    pub name: String,
    /// Media type, e.g. `application/pdf`.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

/// The payload uploaded after the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadInfo {
    /// SHA-256 of the payload bytes, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// True when the payload is an OpenPGP message (classified documents).
    pub encrypted: bool,
}

/// A document's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version, [`MANIFEST_VERSION`].
    pub version: u32,
    /// UUIDv7 made by the sender; the idempotency key.
    pub id: Uuid,
    /// The sending organisation.
    pub sender: OrgId,
    /// Every recipient, expanded before signing.
    pub recipients: Vec<OrgId>,
    /// Number and notation.
    pub code: DocCode,
    /// Document type (NQ, QĐ, CT, KL, HD, TB, BC, CV…).
    pub doc_type: String,
    /// Subject (trích yếu); empty in the outer manifest of a classified document.
    pub subject: String,
    /// Date and place of promulgation.
    pub promulgated: Promulgated,
    /// The competent signer.
    pub signer: Signer,
    /// Urgency.
    pub urgency: Urgency,
    /// Deadline (RFC 3339), required for urgency 4 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// Classification.
    pub classification: Classification,
    /// Steering type: 1 not a directive, 2 directive, 3 report on a directive.
    pub steering: u8,
    /// Date by which a response is due (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    /// The document this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_for: Option<Uuid>,
    /// The business operation.
    pub business: Business,
    /// Attached files; empty in the outer manifest of a classified document.
    pub attachments: Vec<Attachment>,
    /// The payload.
    pub payload: PayloadInfo,
    /// When the sender made the manifest (RFC 3339, UTC).
    pub created_at: String,
}

/// A manifest that parsed and validated, with its canonical bytes.
#[derive(Clone, Debug)]
pub struct ParsedManifest {
    /// The typed manifest.
    pub manifest: Manifest,
    /// RFC 8785 canonical bytes: what signatures cover and what is stored.
    pub canonical: Vec<u8>,
}

/// Checks on a manifest that depend on configuration.
#[derive(Clone, Debug)]
pub struct ManifestRules {
    /// Allowed document types.
    pub doc_types: Vec<String>,
    /// Largest payload, in bytes.
    pub payload_bytes_max: u64,
}

/// The default document types (Hướng dẫn 36-HD/VPTW, and edXML).
pub fn default_doc_types() -> Vec<String> {
    [
        "NQ", "QĐ", "CT", "KL", "QC", "QyĐ", "TT", "HD", "BC", "KH", "CTr", "TB", "TTr", "CV", "BB",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

impl Default for ManifestRules {
    fn default() -> Self {
        ManifestRules {
            doc_types: default_doc_types(),
            payload_bytes_max: 1 << 30,
        }
    }
}

/// Which manifest of a document is being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// The manifest the server sees. For a classified document it carries routing fields
    /// only: empty subject, no attachments, an encrypted payload.
    Outer,
    /// The full manifest inside a classified document's encryption: subject,
    /// attachments, and `payload` describing the attachments concatenated.
    Inner,
}

/// Parses a manifest from its JSON text: size, NFC, strict shape, canonical bytes, rules.
pub fn parse(json: &str, rules: &ManifestRules) -> Result<ParsedManifest, ManifestError> {
    parse_layer(json, rules, Layer::Outer)
}

/// Like [`parse`], for either layer.
pub fn parse_layer(
    json: &str,
    rules: &ManifestRules,
    layer: Layer,
) -> Result<ParsedManifest, ManifestError> {
    if json.len() > MANIFEST_BYTES_MAX {
        return Err(ManifestError::TooLarge(json.len()));
    }
    let value: Value =
        serde_json::from_str(json).map_err(|e| ManifestError::Invalid(e.to_string()))?;
    check_nfc(&value)?;
    // Deserialising the text (not the Value) makes serde see duplicate keys.
    let manifest: Manifest = serde_json::from_str(json).map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with("unknown field") {
            ManifestError::UnknownField(msg)
        } else {
            ManifestError::Invalid(msg)
        }
    })?;
    let canonical = canonical_bytes(&value)?;
    manifest.validate_layer(rules, layer)?;
    Ok(ParsedManifest {
        manifest,
        canonical,
    })
}

/// RFC 8785 canonical bytes of a JSON value.
pub fn canonical_bytes(value: &Value) -> Result<Vec<u8>, ManifestError> {
    serde_jcs::to_vec(value).map_err(|e| ManifestError::Invalid(e.to_string()))
}

impl Manifest {
    /// The canonical bytes of this manifest (for a sender building one).
    pub fn canonical(&self) -> Result<Vec<u8>, ManifestError> {
        let value =
            serde_json::to_value(self).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        canonical_bytes(&value)
    }

    /// Checks every rule that does not need the directory or the signatures (outer layer).
    pub fn validate(&self, rules: &ManifestRules) -> Result<(), ManifestError> {
        self.validate_layer(rules, Layer::Outer)
    }

    /// Checks every rule that does not need the directory or the signatures.
    pub fn validate_layer(&self, rules: &ManifestRules, layer: Layer) -> Result<(), ManifestError> {
        let invalid = |m: String| Err(ManifestError::Invalid(m));
        if self.version != MANIFEST_VERSION {
            return invalid(format!(
                "version {} is not {MANIFEST_VERSION}",
                self.version
            ));
        }
        if self.id.get_version_num() != 7 {
            return invalid("id must be a UUIDv7".into());
        }
        if self.recipients.is_empty() || self.recipients.len() > RECIPIENTS_MAX {
            return invalid(format!("there must be 1 to {RECIPIENTS_MAX} recipients"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.recipients {
            if !seen.insert(r) {
                return invalid(format!("recipient {r} is listed twice"));
            }
            if *r == self.sender {
                return invalid("the sender cannot be a recipient".into());
            }
        }
        short_text("code.number", &self.code.number, false)?;
        short_text("code.notation", &self.code.notation, false)?;
        if !rules.doc_types.contains(&self.doc_type) {
            return Err(ManifestError::UnknownDocType {
                given: self.doc_type.clone(),
                configured: rules.doc_types.clone(),
            });
        }
        let classified = self.classification.is_classified();
        if layer == Layer::Inner && !classified {
            return invalid("only classified documents have an inner manifest".into());
        }
        // Whether this manifest describes the content itself (subject, files).
        let carries_content = !classified || layer == Layer::Inner;
        if !carries_content {
            if !self.subject.is_empty() {
                return invalid(
                    "a classified document's outer manifest must have an empty subject".into(),
                );
            }
            if !self.attachments.is_empty() {
                return invalid(
                    "a classified document's outer manifest must list no attachments".into(),
                );
            }
        } else if self.subject.trim().is_empty() {
            return invalid("subject is empty".into());
        }
        if self.subject.chars().count() > SUBJECT_CHARS_MAX {
            return invalid(format!(
                "subject is longer than {SUBJECT_CHARS_MAX} characters"
            ));
        }
        no_controls("subject", &self.subject)?;
        date("promulgated.date", &self.promulgated.date)?;
        short_text("promulgated.place", &self.promulgated.place, true)?;
        short_text("signer.competence", &self.signer.competence, true)?;
        short_text("signer.position", &self.signer.position, true)?;
        short_text("signer.full_name", &self.signer.full_name, true)?;
        match (self.urgency, &self.deadline) {
            (Urgency::HoaTocHenGio, Some(d)) => rfc3339("deadline", d)?,
            (Urgency::HoaTocHenGio, None) => {
                return invalid("urgency 4 (hỏa tốc hẹn giờ) needs a deadline".into());
            }
            (_, Some(_)) => return invalid("a deadline is only allowed with urgency 4".into()),
            (_, None) => {}
        }
        if !(1..=3).contains(&self.steering) {
            return invalid(format!("steering {} is not 1..=3", self.steering));
        }
        if let Some(due) = &self.due {
            date("due", due)?;
        }
        match (self.business.kind, self.business.target) {
            (BusinessKind::New, None) => {}
            (BusinessKind::New, Some(_)) => {
                return invalid("business kind new takes no target".into());
            }
            (_, None) => return invalid("business kinds other than new need a target".into()),
            (_, Some(t)) if t == self.id => {
                return invalid("a document cannot target itself".into());
            }
            (_, Some(_)) => {}
        }
        if carries_content && self.attachments.is_empty() {
            return invalid("a document needs at least one attachment".into());
        }
        if self.attachments.len() > ATTACHMENTS_MAX {
            return invalid(format!("more than {ATTACHMENTS_MAX} attachments"));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut total: u64 = 0;
        for a in &self.attachments {
            attachment_name(&a.name)?;
            if !names.insert(a.name.as_str()) {
                return invalid(format!("attachment {:?} is listed twice", a.name));
            }
            media_type(&a.media_type)?;
            sha256_hex("attachments.sha256", &a.sha256)?;
            total = total
                .checked_add(a.size)
                .ok_or_else(|| ManifestError::Invalid("attachment sizes overflow".into()))?;
        }
        sha256_hex("payload.sha256", &self.payload.sha256)?;
        if self.payload.size > rules.payload_bytes_max {
            return invalid(format!(
                "payload.size {} exceeds the server's limit of {} bytes",
                self.payload.size, rules.payload_bytes_max
            ));
        }
        if self.payload.encrypted == carries_content {
            return invalid(match layer {
                Layer::Outer if classified => {
                    "a classified document's payload must be encrypted".into()
                }
                Layer::Outer => "an unclassified document's payload is not encrypted".into(),
                Layer::Inner => "an inner manifest describes the plaintext files".into(),
            });
        }
        if carries_content && total != self.payload.size {
            return invalid(format!(
                "payload.size {} is not the sum of the attachment sizes ({total})",
                self.payload.size
            ));
        }
        rfc3339("created_at", &self.created_at)?;
        Ok(())
    }
}

fn check_nfc(value: &Value) -> Result<(), ManifestError> {
    match value {
        Value::String(s) => {
            if is_nfc(s) {
                Ok(())
            } else {
                Err(ManifestError::NotNfc(s.chars().take(80).collect()))
            }
        }
        Value::Array(items) => items.iter().try_for_each(check_nfc),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            if !is_nfc(k) {
                return Err(ManifestError::NotNfc(k.chars().take(80).collect()));
            }
            check_nfc(v)
        }),
        _ => Ok(()),
    }
}

fn no_controls(field: &str, s: &str) -> Result<(), ManifestError> {
    if s.chars().any(char::is_control) {
        return Err(ManifestError::Invalid(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

fn short_text(field: &str, s: &str, may_be_empty: bool) -> Result<(), ManifestError> {
    if !may_be_empty && s.trim().is_empty() {
        return Err(ManifestError::Invalid(format!("{field} is empty")));
    }
    if s.chars().count() > SHORT_TEXT_CHARS_MAX {
        return Err(ManifestError::Invalid(format!(
            "{field} is longer than {SHORT_TEXT_CHARS_MAX} characters"
        )));
    }
    no_controls(field, s)
}

fn date(field: &str, s: &str) -> Result<(), ManifestError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format)
        .map(|_| ())
        .map_err(|_| ManifestError::Invalid(format!("{field} {s:?} is not a YYYY-MM-DD date")))
}

fn rfc3339(field: &str, s: &str) -> Result<(), ManifestError> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|_| ())
        .map_err(|_| ManifestError::Invalid(format!("{field} {s:?} is not an RFC 3339 time")))
}

fn sha256_hex(field: &str, s: &str) -> Result<(), ManifestError> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(ManifestError::Invalid(format!(
            "{field} must be 64 lower-case hex digits"
        )))
    }
}

fn attachment_name(name: &str) -> Result<(), ManifestError> {
    let bad = |why: &str| {
        Err(ManifestError::Invalid(format!(
            "attachment name {name:?}: {why}"
        )))
    };
    if name.is_empty() || name.len() > ATTACHMENT_NAME_BYTES_MAX {
        return bad("must be 1 to 255 bytes");
    }
    if name == "." || name == ".." || name.starts_with('.') {
        return bad("may not start with '.'");
    }
    if name.contains(['/', '\\', '\0']) || name.chars().any(char::is_control) {
        return bad("may not contain '/', '\\' or control characters");
    }
    Ok(())
}

fn media_type(s: &str) -> Result<(), ManifestError> {
    let token = |t: &str| {
        !t.is_empty()
            && t.len() <= 127
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match s.split_once('/') {
        Some((a, b)) if token(a) && token(b) => Ok(()),
        _ => Err(ManifestError::Invalid(format!(
            "media type {s:?} is not type/subtype"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str, expected: &str) {
        let v: Value = serde_json::from_str(json).unwrap();
        let got = String::from_utf8(canonical_bytes(&v).unwrap()).unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn canonical_bytes_follow_rfc8785_examples() {
        // RFC 8785 §3.2.2 (sorting and whitespace) and §3.2.3 (sorting by UTF-16 code units).
        check(
            r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
                "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
                "literals": [null, true, false]}"#,
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}",
        );
        check(
            r#"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
                "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
                "\u00f6": "Latin Small Letter O With Diaeresis"}"#,
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}",
        );
        // Integers as manifests use them.
        check(r#"{"b": 1073741824, "a": 0}"#, r#"{"a":0,"b":1073741824}"#);
    }

    #[test]
    fn non_nfc_strings_and_keys_are_found_anywhere() {
        let nfd = "Chu\u{0301}c So\u{031b}n";
        let v: Value = serde_json::json!({"a": [{"b": nfd}]});
        assert!(matches!(check_nfc(&v), Err(ManifestError::NotNfc(_))));
        let v: Value = serde_json::json!({ nfd: 1 });
        assert!(matches!(check_nfc(&v), Err(ManifestError::NotNfc(_))));
        let v: Value = serde_json::json!({"a": "Chúc Sơn"});
        assert!(check_nfc(&v).is_ok());
    }

    #[test]
    fn attachment_names_cannot_escape_a_directory() {
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a\nb"] {
            assert!(attachment_name(bad).is_err(), "{bad:?}");
        }
        assert!(attachment_name("Chỉ thị 12-CT-HU.pdf").is_ok());
    }
}
