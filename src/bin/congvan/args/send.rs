//! `congvan send`'s arguments, their checks, and the library's `SendRequest` they become.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SendArgs {
    /// A recipient organisation id (repeat, or separate with commas: --to a,b).
    #[arg(long = "to", value_name = "ORG", value_delimiter = ',')]
    pub to: Vec<congvan::directory::OrgId>,
    /// Send to every active child of this organisation (expanded before signing).
    #[arg(long = "to-children", value_name = "ORG", value_delimiter = ',')]
    pub to_children: Vec<congvan::directory::OrgId>,
    /// Document type: NQ, QĐ, CT, KL, HD, TB, BC, CV, …
    #[arg(long = "type", value_name = "TYPE", required_unless_present_any = ["edxml", "resume"])]
    pub doc_type: Option<String>,
    /// Number (số), e.g. 12.
    #[arg(long, required_unless_present_any = ["edxml", "resume"])]
    pub number: Option<String>,
    /// Notation (ký hiệu), e.g. CV/HU.
    #[arg(long, required_unless_present_any = ["edxml", "resume"])]
    pub notation: Option<String>,
    /// Subject (trích yếu).
    #[arg(long, required_unless_present_any = ["edxml", "resume"])]
    pub subject: Option<String>,
    /// thuong|khan|thuong_khan|hoa_toc|hoa_toc_hen_gio, or the edXML number 0-4.
    #[arg(long, default_value = "thuong", value_parser = parse_urgency)]
    pub urgency: congvan::document::manifest::Urgency,
    /// Deadline for hoa_toc_hen_gio (RFC 3339, e.g. 2026-12-01T08:00:00+07:00).
    #[arg(long)]
    pub deadline: Option<String>,
    /// thuong (unclassified) | mat | toi_mat | tuyet_mat.
    #[arg(long, default_value = "thuong", value_parser = parse_classification)]
    pub classification: congvan::document::manifest::Classification,
    /// Steering type: 1 not a directive, 2 directive, 3 report on a directive.
    #[arg(long, default_value_t = 1)]
    pub steering: u8,
    /// Date a response is due (YYYY-MM-DD).
    #[arg(long)]
    pub due: Option<String>,
    /// The document this one answers.
    #[arg(long)]
    pub response_for: Option<uuid::Uuid>,
    /// Recall, update or replace this earlier document instead of sending a new one.
    #[arg(long, value_name = "ID", conflicts_with_all = ["update", "replace"])]
    pub recall: Option<uuid::Uuid>,
    /// Update this earlier document.
    #[arg(long, value_name = "ID", conflicts_with = "replace")]
    pub update: Option<uuid::Uuid>,
    /// Replace this earlier document.
    #[arg(long, value_name = "ID")]
    pub replace: Option<uuid::Uuid>,
    /// Place of promulgation.
    #[arg(long, default_value = "")]
    pub place: String,
    /// Date of promulgation (YYYY-MM-DD), default today.
    #[arg(long)]
    pub date: Option<String>,
    /// Signer's competence: TM., KT., TL., TUQ., Q. or empty.
    #[arg(long, default_value = "TM.")]
    pub competence: String,
    /// Signer's position (default: from person.crt).
    #[arg(long)]
    pub position: Option<String>,
    /// Signer's full name (default: from person.crt).
    #[arg(long)]
    pub signer_name: Option<String>,
    /// Reuse this document id, to retry an interrupted send.
    #[arg(long)]
    pub id: Option<uuid::Uuid>,
    /// Send the document in this edXML envelope (exported by an e-office system)
    /// instead: its fields, recipients and files come from the envelope.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["to", "to_children", "doc_type", "number", "notation", "subject", "files", "recall", "update", "replace", "classification"])]
    pub edxml: Option<PathBuf>,
    /// Finish the interrupted upload of this document with the signed manifest kept
    /// when it was first sent (no new signature); the files must be unchanged.
    #[arg(long, value_name = "ID", conflicts_with_all = ["to", "to_children", "doc_type", "number", "notation", "subject", "files", "recall", "update", "replace", "classification", "edxml", "id"])]
    pub resume: Option<uuid::Uuid>,
    /// The files to send.
    #[arg(required_unless_present_any = ["edxml", "resume"])]
    pub files: Vec<PathBuf>,
}

pub fn parse_urgency(s: &str) -> Result<congvan::document::manifest::Urgency, String> {
    congvan::document::manifest::Urgency::parse(s).ok_or_else(|| {
        format!("{s:?}: use thuong, khan, thuong_khan, hoa_toc, hoa_toc_hen_gio or 0-4")
    })
}

pub fn parse_classification(
    s: &str,
) -> Result<congvan::document::manifest::Classification, String> {
    use congvan::document::manifest::Classification as C;
    use unicode_normalization::UnicodeNormalization;
    // The Vietnamese labels shown in output ("Mật", "Tối mật") are accepted as well as the
    // wire names.
    let wanted: String = s.nfc().collect::<String>().to_lowercase();
    [C::Thuong, C::Mat, C::ToiMat, C::TuyetMat]
        .into_iter()
        .find(|c| c.name() == wanted || c.label().to_lowercase() == wanted)
        .ok_or_else(|| {
            format!(
                "{s:?}: use thuong, mat, toi_mat or tuyet_mat (or Thường, Mật, Tối mật, Tuyệt mật)"
            )
        })
}

impl SendArgs {
    /// Refuses a file argument that does not exist but reads as an organisation id: the
    /// user wrote `--to a b` meaning two recipients.
    pub fn check_files(&self) -> anyhow::Result<()> {
        for file in &self.files {
            if file.exists() {
                continue;
            }
            let text = file.to_string_lossy();
            if congvan::directory::OrgId::parse(&text).is_ok() {
                anyhow::bail!(
                    "{text:?} is not a file; it looks like an organisation id. Name each \
                     recipient with its own --to (--to {first} --to {text}) or separate them \
                     with commas (--to {first},{text})",
                    first = self
                        .to
                        .last()
                        .map_or_else(|| "ORG".to_owned(), ToString::to_string),
                );
            }
            anyhow::bail!("{}: no such file", file.display());
        }
        Ok(())
    }

    pub fn into_request(self) -> congvan::client::send::SendRequest {
        use congvan::document::manifest::BusinessKind;
        let (business, business_target) = match (self.recall, self.update, self.replace) {
            (Some(id), _, _) => (BusinessKind::Recall, Some(id)),
            (_, Some(id), _) => (BusinessKind::Update, Some(id)),
            (_, _, Some(id)) => (BusinessKind::Replace, Some(id)),
            _ => (BusinessKind::New, None),
        };
        congvan::client::send::SendRequest {
            to: self.to,
            to_children: self.to_children,
            doc_type: self.doc_type.unwrap_or_default(),
            number: self.number.unwrap_or_default(),
            notation: self.notation.unwrap_or_default(),
            subject: self.subject.unwrap_or_default(),
            urgency: self.urgency,
            deadline: self.deadline,
            classification: self.classification,
            steering: self.steering,
            due: self.due,
            response_for: self.response_for,
            business,
            business_target,
            place: self.place,
            date: self.date,
            competence: self.competence,
            position: self.position,
            full_name: self.signer_name,
            id: self.id,
            files: self.files,
        }
    }
}
