//! edXML (QCVN 102:2016/BTTTT, amended by Circular 01/2022/TT-BTTTT): reading and writing
//! the envelopes and status packets that e-office systems and the national document axis
//! exchange.
//!
//! This module knows XML and nothing else: no HTTP, no storage, no certificates. It
//! turns bytes into an [`Envelope`] or a [`StatusPacket`] and back; `client::edxml` maps
//! those to congvan's manifests and receipts. XML is read and written with quick-xml,
//! never by string concatenation.
//!
//! The reader is written for hostile input: a document type declaration (and so every
//! entity definition, internal or external) is refused outright, an entity reference
//! other than the five XML predefines and character references is refused, nesting,
//! element count and input size are bounded ([`Limits`]), and base64 is bounded before it
//! is decoded. Field quirks accepted (DESIGN.md §12): CRLF line endings, base64 broken
//! into lines, the spelling `Bussiness` as well as `Business`, a `Signature` element in
//! the edXML namespace rather than XMLDSig's, and attachments in an `AttachmentEncoded`
//! element outside the envelope (VNPT's SDK wraps both in a root `edXML` element).

use std::io::Write;

use base64::Engine;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// The edXML namespace.
pub const NAMESPACE: &str = "http://www.mic.gov.vn/TBT/QCVN_102_2016";
/// The name congvan gives the envelope's own signature when it carries it along as an
/// attachment.
pub const SIGNATURE_ATTACHMENT: &str = "edxml-signature.xml";

/// Bounds on what the reader accepts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest input, in bytes.
    pub input_bytes_max: usize,
    /// Largest decoded attachment, in bytes.
    pub attachment_bytes_max: usize,
    /// Deepest element nesting.
    pub depth_max: usize,
    /// Most elements in one document.
    pub elements_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            input_bytes_max: 128 << 20,
            attachment_bytes_max: 64 << 20,
            depth_max: 32,
            elements_max: 20_000,
        }
    }
}

/// Why an edXML document was refused. Each kind is one stable code (docs/EDXML.md).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdxmlError {
    /// Not well-formed XML, not UTF-8, or not an edXML document at all.
    #[error("not a well-formed edXML document: {0}")]
    Malformed(String),
    /// A document type declaration: refused, with every entity it could define.
    #[error(
        "a document type declaration (<!DOCTYPE …>) is not allowed in edXML: entity definitions are refused"
    )]
    Dtd,
    /// An entity reference other than the XML predefined ones or a character reference.
    #[error(
        "entity reference &{0}; is not allowed: only &amp; &lt; &gt; &quot; &apos; and character references are"
    )]
    Entity(String),
    /// Nesting deeper than the limit.
    #[error("elements are nested deeper than {0} levels")]
    TooDeep(usize),
    /// Larger than a limit: the input, an attachment, or the element count.
    #[error("{0}")]
    TooLarge(String),
    /// Well-formed edXML that lacks a required field or has a bad value.
    #[error("{0}")]
    Invalid(String),
    /// Valid edXML that congvan cannot map: an organisation code not in the directory,
    /// an unknown document type, another sender, a target not found; or a congvan
    /// document edXML cannot carry (a classified one).
    #[error("{0}")]
    Unmapped(String),
}

impl EdxmlError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            EdxmlError::Malformed(_) => "edxml_malformed",
            EdxmlError::Dtd => "edxml_dtd",
            EdxmlError::Entity(_) => "edxml_entity",
            EdxmlError::TooDeep(_) => "edxml_too_deep",
            EdxmlError::TooLarge(_) => "edxml_too_large",
            EdxmlError::Invalid(_) => "edxml_invalid",
            EdxmlError::Unmapped(_) => "edxml_unmapped",
        }
    }
}

/// An organisation as edXML names it (From, To, status From).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Organ {
    /// The government identifier code (mã định danh).
    pub organ_id: String,
    /// The body in charge.
    pub organization_in_charge: String,
    /// The name.
    pub organ_name: String,
}

/// One trace header: who handled the message, when.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceHeader {
    /// Who.
    pub organ_id: String,
    /// When, `YYYY/MM/DD HH:MM:SS`.
    pub timestamp: String,
}

/// The business operation (edXML `Bussiness`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Business {
    /// `BussinessDocType`: 0 new, 1 recall, 2 update, 3 replace.
    pub doc_type: u8,
    /// `BussinessDocReason`.
    pub reason: String,
    /// For 1–3, the `DocumentId` of the document acted on.
    pub document_id: Option<String>,
}

/// One attached file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attachment {
    /// `cid:…`.
    pub content_id: String,
    /// File name.
    pub name: String,
    /// Media type.
    pub content_type: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// An edXML document envelope (edXMLEnvelope) with its files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The sender.
    pub from: Organ,
    /// The recipients.
    pub to: Vec<Organ>,
    /// `OrganId,YYYY/MM/DD,number/notation`.
    pub document_id: String,
    /// `CodeNumber`.
    pub code_number: String,
    /// `CodeNotation`.
    pub code_notation: String,
    /// Place of promulgation.
    pub place: String,
    /// `YYYY/MM/DD`.
    pub promulgation_date: String,
    /// `DocumentType/Type`.
    pub type_code: String,
    /// `DocumentType/TypeName`, e.g. "Công văn".
    pub type_name: String,
    /// Subject (at most 500 characters by the standard).
    pub subject: String,
    /// Content summary.
    pub content: String,
    /// Signer's competence (TM., KT., …).
    pub competence: String,
    /// Signer's position.
    pub position: String,
    /// Signer's full name.
    pub full_name: String,
    /// `YYYY/MM/DD`, when a response is due.
    pub due_date: Option<String>,
    /// The places the document is sent to, as printed.
    pub to_places: Vec<String>,
    /// `OtherInfo/Priority`, 0–4.
    pub priority: u8,
    /// `SteeringType`.
    pub steering_type: u8,
    /// `TraceHeaderList/TraceHeader`.
    pub trace: Vec<TraceHeader>,
    /// `TraceHeaderList/Bussiness`.
    pub business: Business,
    /// The files.
    pub attachments: Vec<Attachment>,
    /// The envelope's `Signature` element, byte for byte as found (not verified here).
    pub signature: Option<Vec<u8>>,
}

/// The document a status packet answers (`ResponseFor`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseFor {
    /// The sender's code.
    pub organ_id: String,
    /// `number/notation`.
    pub code: String,
    /// `YYYY/MM/DD`.
    pub promulgation_date: String,
    /// `OrganId,YYYY/MM/DD,number/notation`.
    pub document_id: String,
}

/// An edXML status packet: one recipient's status of one document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusPacket {
    /// The document answered.
    pub response_for: ResponseFor,
    /// The recipient reporting.
    pub from: Organ,
    /// `01`…`06`, `13`, `15`, `16`.
    pub status_code: String,
    /// The note.
    pub description: String,
    /// `YYYY/MM/DD HH:MM:SS`.
    pub timestamp: String,
}

/// `OrganId,YYYY/MM/DD,number/notation`.
pub fn document_id(organ_id: &str, date: &str, number: &str, notation: &str) -> String {
    format!("{organ_id},{date},{number}/{notation}")
}

/// `YYYY-MM-DD` → `YYYY/MM/DD`.
pub fn edxml_date(iso: &str) -> String {
    iso.replace('-', "/")
}

/// `YYYY/MM/DD` (or `YYYY-MM-DD`) → `YYYY-MM-DD`, checked.
pub fn iso_date(edxml: &str) -> Result<String, EdxmlError> {
    let iso = edxml.trim().replace('/', "-");
    let ok = iso.len() == 10
        && iso.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if ok {
        Ok(iso)
    } else {
        Err(EdxmlError::Invalid(format!(
            "date {edxml:?} is not YYYY/MM/DD"
        )))
    }
}

/// An RFC 3339 time → `YYYY/MM/DD HH:MM:SS` (its own offset kept, as written).
pub fn edxml_timestamp(rfc3339: &str) -> String {
    let t = rfc3339.replace('T', " ");
    let date = t.get(..10).unwrap_or_default().replace('-', "/");
    let time = t.get(11..19).unwrap_or_default();
    format!("{date} {time}")
}

// ---------------------------------------------------------------------------------------
// Reading

/// An element of the parsed tree: local name, text, children, and where it was found.
#[derive(Debug, Default)]
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
    start: usize,
    end: usize,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first descendant (depth first, self excluded) with this local name.
    fn find(&self, name: &str) -> Option<&Node> {
        for c in &self.children {
            if c.name == name {
                return Some(c);
            }
            if let Some(found) = c.find(name) {
                return Some(found);
            }
        }
        None
    }

    fn find_all<'a>(&'a self, name: &str, out: &mut Vec<&'a Node>) {
        for c in &self.children {
            if c.name == name {
                out.push(c);
            }
            c.find_all(name, out);
        }
    }

    /// The trimmed text of the first child with this name, or "".
    fn text_of(&self, name: &str) -> String {
        self.child(name)
            .map(|c| c.text.trim().to_owned())
            .unwrap_or_default()
    }

    /// The child's text, or an error naming the field.
    fn required(&self, name: &str, field: &str) -> Result<String, EdxmlError> {
        let text = self.text_of(name);
        if text.is_empty() {
            Err(EdxmlError::Invalid(format!("{field} is missing or empty")))
        } else {
            Ok(text)
        }
    }
}

/// Parses `input` into a tree, enforcing `limits`. The root must be in the edXML
/// namespace.
fn parse_tree(input: &[u8], limits: &Limits) -> Result<Node, EdxmlError> {
    if input.len() > limits.input_bytes_max {
        return Err(EdxmlError::TooLarge(format!(
            "the document is {} bytes; at most {} are accepted",
            input.len(),
            limits.input_bytes_max
        )));
    }
    let text =
        std::str::from_utf8(input).map_err(|e| EdxmlError::Malformed(format!("not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let offset = input.len() - text.len();
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut elements = 0usize;
    // The largest base64 text an attachment within the limit can have, with room for
    // line breaks every 64 characters.
    let text_bytes_max = limits.attachment_bytes_max / 3 * 4 * 66 / 64 + 1024;
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| EdxmlError::Malformed(e.to_string()))?;
        let in_edxml_ns =
            matches!(ns, ResolveResult::Bound(n) if n.as_ref() == NAMESPACE.as_bytes());
        let after = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        match event {
            Event::DocType(_) => return Err(EdxmlError::Dtd),
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err(EdxmlError::Malformed(
                        "content after the root element".into(),
                    ));
                }
                if stack.is_empty() && !in_edxml_ns {
                    return Err(EdxmlError::Malformed(format!(
                        "the root element is not in the edXML namespace {NAMESPACE}"
                    )));
                }
                elements += 1;
                if elements > limits.elements_max {
                    return Err(EdxmlError::TooLarge(format!(
                        "more than {} elements",
                        limits.elements_max
                    )));
                }
                if stack.len() >= limits.depth_max {
                    return Err(EdxmlError::TooDeep(limits.depth_max));
                }
                let node = Node {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    start: before + offset,
                    end: after + offset,
                    ..Node::default()
                };
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root, node);
                } else {
                    stack.push(node);
                }
            }
            Event::End(_) => {
                let mut node = stack
                    .pop()
                    .ok_or_else(|| EdxmlError::Malformed("unmatched end tag".into()))?;
                node.end = after + offset;
                close(&mut stack, &mut root, node);
            }
            Event::Text(t) => {
                let decoded = t
                    .decode()
                    .map_err(|e| EdxmlError::Malformed(e.to_string()))?;
                append_text(&mut stack, &decoded, text_bytes_max)?;
            }
            Event::CData(t) => {
                let decoded = t
                    .decode()
                    .map_err(|e| EdxmlError::Malformed(e.to_string()))?;
                append_text(&mut stack, &decoded, text_bytes_max)?;
            }
            Event::GeneralRef(r) => {
                let resolved = match r
                    .resolve_char_ref()
                    .map_err(|e| EdxmlError::Malformed(e.to_string()))?
                {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r
                            .decode()
                            .map_err(|e| EdxmlError::Malformed(e.to_string()))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| EdxmlError::Entity(name.chars().take(64).collect()))?
                            .to_owned()
                    }
                };
                append_text(&mut stack, &resolved, text_bytes_max)?;
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(EdxmlError::Malformed(
            "the document ends inside an element".into(),
        ));
    }
    root.ok_or_else(|| EdxmlError::Malformed("no root element".into()))
}

fn close(stack: &mut [Node], root: &mut Option<Node>, node: Node) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some(node),
    }
}

fn append_text(stack: &mut [Node], text: &str, limit: usize) -> Result<(), EdxmlError> {
    match stack.last_mut() {
        Some(node) => {
            if node.text.len() + text.len() > limit {
                return Err(EdxmlError::TooLarge(format!(
                    "the text of <{}> is over {limit} bytes (an attachment may be at most {} bytes once decoded)",
                    node.name,
                    limit / 4 * 3
                )));
            }
            node.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(EdxmlError::Malformed(
            "text outside the root element".into(),
        )),
    }
}

fn organ(node: &Node, field: &str) -> Result<Organ, EdxmlError> {
    Ok(Organ {
        organ_id: node.required("OrganId", &format!("{field}/OrganId"))?,
        organization_in_charge: node.text_of("OrganizationInCharge"),
        organ_name: node.text_of("OrganName"),
    })
}

fn small_number(text: &str, field: &str, max: u8) -> Result<u8, EdxmlError> {
    if text.is_empty() {
        return Ok(0);
    }
    text.parse::<u8>()
        .ok()
        .filter(|n| *n <= max)
        .ok_or_else(|| EdxmlError::Invalid(format!("{field} {text:?} is not a number 0–{max}")))
}

/// Reads an edXML document envelope and its files.
pub fn read_envelope(input: &[u8], limits: &Limits) -> Result<Envelope, EdxmlError> {
    let root = parse_tree(input, limits)?;
    let envelope = if root.name == "edXMLEnvelope" {
        &root
    } else {
        root.find("edXMLEnvelope").ok_or_else(|| {
            EdxmlError::Invalid(format!(
                "<{}> holds no edXMLEnvelope (a status packet is read with `edxml status`)",
                root.name
            ))
        })?
    };
    let header = envelope
        .child("edXMLHeader")
        .ok_or_else(|| EdxmlError::Invalid("edXMLHeader is missing".into()))?;
    let message = header
        .child("MessageHeader")
        .ok_or_else(|| EdxmlError::Invalid("MessageHeader is missing".into()))?;
    let from = organ(
        message
            .child("From")
            .ok_or_else(|| EdxmlError::Invalid("MessageHeader/From is missing".into()))?,
        "From",
    )?;
    let to = message
        .children_named("To")
        .map(|t| organ(t, "To"))
        .collect::<Result<Vec<_>, _>>()?;
    if to.is_empty() {
        return Err(EdxmlError::Invalid("MessageHeader has no To".into()));
    }
    let code = message
        .child("Code")
        .ok_or_else(|| EdxmlError::Invalid("MessageHeader/Code is missing".into()))?;
    let promulgation = message
        .child("PromulgationInfo")
        .ok_or_else(|| EdxmlError::Invalid("PromulgationInfo is missing".into()))?;
    let promulgation_date = edxml_date(&iso_date(
        &promulgation.required("PromulgationDate", "PromulgationDate")?,
    )?);
    let doc_type = message.child("DocumentType");
    let subject = message.required("Subject", "Subject")?;
    if subject.chars().count() > 500 {
        return Err(EdxmlError::Invalid(
            "Subject is longer than 500 characters".into(),
        ));
    }
    let signer = message.child("SignerInfo");
    let due_date = match message.text_of("DueDate") {
        d if d.is_empty() => None,
        d => Some(edxml_date(&iso_date(&d)?)),
    };
    let other = message.child("OtherInfo");
    let priority = small_number(
        &other.map(|o| o.text_of("Priority")).unwrap_or_default(),
        "Priority",
        4,
    )?;
    let steering_type = small_number(&message.text_of("SteeringType"), "SteeringType", 9)?;
    let to_places = message
        .child("ToPlaces")
        .map(|p| {
            p.children_named("Place")
                .map(|c| c.text.trim().to_owned())
                .collect()
        })
        .unwrap_or_default();

    let trace_list = header.child("TraceHeaderList");
    let trace = trace_list
        .map(|l| {
            l.children_named("TraceHeader")
                .map(|t| TraceHeader {
                    organ_id: t.text_of("OrganId"),
                    timestamp: t.text_of("Timestamp"),
                })
                .collect()
        })
        .unwrap_or_default();
    let business =
        match trace_list.and_then(|l| l.child("Bussiness").or_else(|| l.child("Business"))) {
            None => Business::default(),
            Some(b) => {
                let kind = match b.text_of("BussinessDocType") {
                    k if k.is_empty() => b.text_of("BusinessDocType"),
                    k => k,
                };
                let doc_type = small_number(&kind, "BussinessDocType", 3)?;
                let reason = match b.text_of("BussinessDocReason") {
                    r if r.is_empty() => b.text_of("BusinessDocReason"),
                    r => r,
                };
                let target = b.text_of("DocumentId");
                Business {
                    doc_type,
                    reason,
                    document_id: (doc_type != 0 && !target.is_empty()).then_some(target),
                }
            }
        };
    let signature = header
        .child("Signature")
        .map(|s| input.get(s.start..s.end).unwrap_or_default().to_vec());

    // Files: the manifest's references, with their bytes from AttachmentEncoded
    // wherever it is (inside the body, or beside the envelope).
    let mut encoded = Vec::new();
    root.find_all("Attachment", &mut encoded);
    let mut references = Vec::new();
    if let Some(manifest) = envelope.find("edXMLManifest") {
        references.extend(manifest.children_named("Reference"));
    }
    let mut attachments = Vec::new();
    let mut ids: Vec<String> = references.iter().map(|r| r.text_of("ContentId")).collect();
    for e in &encoded {
        let id = e.text_of("ContentId");
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    for id in ids {
        if id.is_empty() {
            return Err(EdxmlError::Invalid("an attachment has no ContentId".into()));
        }
        let reference = references.iter().find(|r| r.text_of("ContentId") == id);
        let data_node = encoded
            .iter()
            .find(|e| e.text_of("ContentId") == id)
            .ok_or_else(|| EdxmlError::Invalid(format!("{id} has no attachment data")))?;
        let pick = |field: &str| {
            let from_data = data_node.text_of(field);
            if from_data.is_empty() {
                reference.map(|r| r.text_of(field)).unwrap_or_default()
            } else {
                from_data
            }
        };
        let base64: String = data_node
            .child("ContentTransferEncoded")
            .map(|c| {
                c.text
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect()
            })
            .unwrap_or_default();
        if base64.len() / 4 * 3 > limits.attachment_bytes_max {
            return Err(EdxmlError::TooLarge(format!(
                "attachment {id} is over {} bytes",
                limits.attachment_bytes_max
            )));
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(base64.as_bytes())
            .map_err(|e| EdxmlError::Invalid(format!("attachment {id}: bad base64: {e}")))?;
        let name = pick("AttachmentName");
        if name.is_empty() {
            return Err(EdxmlError::Invalid(format!("attachment {id} has no name")));
        }
        attachments.push(Attachment {
            content_id: id,
            name,
            content_type: pick("ContentType"),
            data,
        });
    }

    Ok(Envelope {
        from,
        to,
        document_id: message.text_of("DocumentId"),
        code_number: code.required("CodeNumber", "Code/CodeNumber")?,
        code_notation: code.text_of("CodeNotation"),
        place: promulgation.text_of("Place"),
        promulgation_date,
        type_code: doc_type.map(|d| d.text_of("Type")).unwrap_or_default(),
        type_name: doc_type.map(|d| d.text_of("TypeName")).unwrap_or_default(),
        subject,
        content: message.text_of("Content"),
        competence: signer.map(|s| s.text_of("Competence")).unwrap_or_default(),
        position: signer.map(|s| s.text_of("Position")).unwrap_or_default(),
        full_name: signer.map(|s| s.text_of("FullName")).unwrap_or_default(),
        due_date,
        to_places,
        priority,
        steering_type,
        trace,
        business,
        attachments,
        signature,
    })
}

/// Reads an edXML status packet.
pub fn read_status(input: &[u8], limits: &Limits) -> Result<StatusPacket, EdxmlError> {
    let root = parse_tree(input, limits)?;
    let header = if root.name == "Header" {
        &root
    } else {
        root.find("Header")
            .ok_or_else(|| EdxmlError::Invalid("the status packet has no Header".into()))?
    };
    let response = header
        .child("ResponseFor")
        .ok_or_else(|| EdxmlError::Invalid("ResponseFor is missing".into()))?;
    let from = organ(
        header
            .child("From")
            .ok_or_else(|| EdxmlError::Invalid("From is missing".into()))?,
        "From",
    )?;
    let status_code = header.required("StatusCode", "StatusCode")?;
    if crate::document::ReceiptStatus::from_code(&status_code).is_none() {
        return Err(EdxmlError::Invalid(format!(
            "StatusCode {status_code:?} is not an edXML status"
        )));
    }
    Ok(StatusPacket {
        response_for: ResponseFor {
            organ_id: response.required("OrganId", "ResponseFor/OrganId")?,
            code: response.text_of("Code"),
            promulgation_date: response.text_of("PromulgationDate"),
            document_id: response.text_of("DocumentId"),
        },
        from,
        status_code,
        description: header.text_of("Description"),
        timestamp: header.text_of("Timestamp"),
    })
}

// ---------------------------------------------------------------------------------------
// Writing

struct Out {
    writer: Writer<Vec<u8>>,
}

impl Out {
    fn new() -> Result<Out, EdxmlError> {
        let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
        writer
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
            .map_err(io)?;
        Ok(Out { writer })
    }

    fn open(&mut self, name: &str) -> Result<(), EdxmlError> {
        self.writer
            .write_event(Event::Start(BytesStart::new(name)))
            .map_err(io)
    }

    fn open_root(&mut self, name: &str) -> Result<(), EdxmlError> {
        self.writer
            .write_event(Event::Start(
                BytesStart::new(name).with_attributes([("xmlns", NAMESPACE)]),
            ))
            .map_err(io)
    }

    fn close(&mut self, name: &str) -> Result<(), EdxmlError> {
        self.writer
            .write_event(Event::End(BytesEnd::new(name)))
            .map_err(io)
    }

    /// `<name>text</name>`; the text is escaped by quick-xml.
    fn leaf(&mut self, name: &str, text: &str) -> Result<(), EdxmlError> {
        self.open(name)?;
        self.writer
            .write_event(Event::Text(BytesText::new(text)))
            .map_err(io)?;
        self.close(name)
    }

    fn organ(&mut self, name: &str, organ: &Organ) -> Result<(), EdxmlError> {
        self.open(name)?;
        self.leaf("OrganId", &organ.organ_id)?;
        self.leaf("OrganizationInCharge", &organ.organization_in_charge)?;
        self.leaf("OrganName", &organ.organ_name)?;
        self.close(name)
    }

    fn finish(self) -> Result<Vec<u8>, EdxmlError> {
        let mut bytes = self.writer.into_inner();
        bytes.write_all(b"\n").map_err(io)?;
        Ok(bytes)
    }
}

fn io(e: impl std::fmt::Display) -> EdxmlError {
    EdxmlError::Malformed(format!("writing XML: {e}"))
}

/// Writes an envelope in the shape VNPT's edXML SDK writes (a root `edXML` holding the
/// `edXMLEnvelope` and, beside it, the files base64 in `AttachmentEncoded`), every
/// element in the edXML namespace.
pub fn write_envelope(envelope: &Envelope) -> Result<Vec<u8>, EdxmlError> {
    let mut out = Out::new()?;
    out.open_root("edXML")?;
    out.open("edXMLEnvelope")?;
    out.open("edXMLHeader")?;
    out.open("MessageHeader")?;
    out.organ("From", &envelope.from)?;
    for to in &envelope.to {
        out.organ("To", to)?;
    }
    out.leaf("DocumentId", &envelope.document_id)?;
    out.open("Code")?;
    out.leaf("CodeNumber", &envelope.code_number)?;
    out.leaf("CodeNotation", &envelope.code_notation)?;
    out.close("Code")?;
    out.open("PromulgationInfo")?;
    out.leaf("Place", &envelope.place)?;
    out.leaf("PromulgationDate", &envelope.promulgation_date)?;
    out.close("PromulgationInfo")?;
    out.open("DocumentType")?;
    out.leaf("Type", &envelope.type_code)?;
    out.leaf("TypeName", &envelope.type_name)?;
    out.close("DocumentType")?;
    out.leaf("Subject", &envelope.subject)?;
    out.leaf("Content", &envelope.content)?;
    out.open("SignerInfo")?;
    out.leaf("Competence", &envelope.competence)?;
    out.leaf("Position", &envelope.position)?;
    out.leaf("FullName", &envelope.full_name)?;
    out.close("SignerInfo")?;
    if let Some(due) = &envelope.due_date {
        out.leaf("DueDate", due)?;
    }
    out.open("ToPlaces")?;
    for place in &envelope.to_places {
        out.leaf("Place", place)?;
    }
    out.close("ToPlaces")?;
    out.open("OtherInfo")?;
    out.leaf("Priority", &envelope.priority.to_string())?;
    out.close("OtherInfo")?;
    out.leaf("SteeringType", &envelope.steering_type.to_string())?;
    out.close("MessageHeader")?;
    out.open("TraceHeaderList")?;
    for trace in &envelope.trace {
        out.open("TraceHeader")?;
        out.leaf("OrganId", &trace.organ_id)?;
        out.leaf("Timestamp", &trace.timestamp)?;
        out.close("TraceHeader")?;
    }
    out.open("Bussiness")?;
    if let Some(target) = &envelope.business.document_id {
        out.leaf("DocumentId", target)?;
    }
    out.leaf("BussinessDocType", &envelope.business.doc_type.to_string())?;
    out.leaf("BussinessDocReason", &envelope.business.reason)?;
    out.close("Bussiness")?;
    out.close("TraceHeaderList")?;
    out.close("edXMLHeader")?;
    out.open("edXMLBody")?;
    out.writer
        .write_event(Event::Start(
            BytesStart::new("edXMLManifest").with_attributes([("version", "1.0")]),
        ))
        .map_err(io)?;
    for a in &envelope.attachments {
        out.open("Reference")?;
        out.leaf("ContentId", &a.content_id)?;
        out.leaf("ContentType", &a.content_type)?;
        out.leaf("Description", &a.name)?;
        out.leaf("AttachmentName", &a.name)?;
        out.close("Reference")?;
    }
    out.close("edXMLManifest")?;
    out.close("edXMLBody")?;
    out.close("edXMLEnvelope")?;
    out.open("AttachmentEncoded")?;
    for a in &envelope.attachments {
        out.open("Attachment")?;
        out.leaf("ContentId", &a.content_id)?;
        out.leaf("AttachmentName", &a.name)?;
        out.leaf("ContentType", &a.content_type)?;
        out.leaf(
            "ContentTransferEncoded",
            &base64::engine::general_purpose::STANDARD.encode(&a.data),
        )?;
        out.close("Attachment")?;
    }
    out.close("AttachmentEncoded")?;
    out.close("edXML")?;
    out.finish()
}

/// Writes a status packet (`Status` › `Header`).
pub fn write_status(packet: &StatusPacket) -> Result<Vec<u8>, EdxmlError> {
    let mut out = Out::new()?;
    out.open_root("Status")?;
    out.open("Header")?;
    out.open("ResponseFor")?;
    out.leaf("OrganId", &packet.response_for.organ_id)?;
    out.leaf("Code", &packet.response_for.code)?;
    out.leaf("PromulgationDate", &packet.response_for.promulgation_date)?;
    out.leaf("DocumentId", &packet.response_for.document_id)?;
    out.close("ResponseFor")?;
    out.organ("From", &packet.from)?;
    out.leaf("StatusCode", &packet.status_code)?;
    out.leaf("Description", &packet.description)?;
    out.leaf("Timestamp", &packet.timestamp)?;
    out.close("Header")?;
    out.close("Status")?;
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            from: Organ {
                organ_id: "000.00.31.H26".into(),
                organization_in_charge: "Thành ủy Hà Nội".into(),
                organ_name: "Huyện ủy Chương Mỹ".into(),
            },
            to: vec![Organ {
                organ_id: "000.01.31.H26".into(),
                organization_in_charge: String::new(),
                organ_name: "Đảng ủy thị trấn Chúc Sơn".into(),
            }],
            document_id: document_id("000.00.31.H26", "2026/11/30", "12", "CT/HU"),
            code_number: "12".into(),
            code_notation: "CT/HU".into(),
            place: "Chương Mỹ".into(),
            promulgation_date: "2026/11/30".into(),
            type_code: "1".into(),
            type_name: "Chỉ thị".into(),
            subject: "Về <chuyển đổi số> & \"cải cách\"".into(),
            content: "Về chuyển đổi số".into(),
            competence: "TM.".into(),
            position: "Phó Bí thư".into(),
            full_name: "Nguyễn Thị Hạnh".into(),
            due_date: Some("2026/12/15".into()),
            to_places: vec!["Đảng ủy thị trấn Chúc Sơn".into()],
            priority: 2,
            steering_type: 2,
            trace: vec![TraceHeader {
                organ_id: "000.00.31.H26".into(),
                timestamp: "2026/11/30 08:00:00".into(),
            }],
            business: Business {
                doc_type: 3,
                reason: "Thay thế".into(),
                document_id: Some("000.00.31.H26,2026/11/01,9/CT/HU".into()),
            },
            attachments: vec![Attachment {
                content_id: "cid:1".into(),
                name: "chỉ thị 12.pdf".into(),
                content_type: "application/pdf".into(),
                data: (0..5000u32).map(|i| (i % 251) as u8).collect(),
            }],
            signature: None,
        }
    }

    #[test]
    fn an_envelope_round_trips() {
        let envelope = sample();
        let bytes = write_envelope(&envelope).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("&lt;chuyển đổi số&gt; &amp;"), "{text}");
        assert_eq!(read_envelope(&bytes, &Limits::default()).unwrap(), envelope);
        // CRLF line endings, as Windows systems write them, read the same.
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(
            read_envelope(crlf.as_bytes(), &Limits::default()).unwrap(),
            envelope
        );
    }

    #[test]
    fn a_status_packet_round_trips() {
        let packet = StatusPacket {
            response_for: ResponseFor {
                organ_id: "000.00.31.H26".into(),
                code: "12/CT/HU".into(),
                promulgation_date: "2026/11/30".into(),
                document_id: "000.00.31.H26,2026/11/30,12/CT/HU".into(),
            },
            from: Organ {
                organ_id: "000.01.31.H26".into(),
                organization_in_charge: String::new(),
                organ_name: "Đảng ủy thị trấn Chúc Sơn".into(),
            },
            status_code: "03".into(),
            description: "Đã vào sổ".into(),
            timestamp: "2026/11/30 09:00:00".into(),
        };
        let bytes = write_status(&packet).unwrap();
        assert_eq!(read_status(&bytes, &Limits::default()).unwrap(), packet);
    }

    #[test]
    fn hostile_documents_are_refused_with_their_codes() {
        let limits = Limits {
            attachment_bytes_max: 1000,
            ..Limits::default()
        };
        let check = |doc: &str, code: &str| {
            let err = read_envelope(doc.as_bytes(), &limits).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
        };
        check(
            r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&lol2;</edXML>"#,
            "edxml_dtd",
        );
        check(
            r#"<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&xxe;</edXML>"#,
            "edxml_entity",
        );
        let deep = format!(
            "<edXML xmlns=\"{NAMESPACE}\">{}{}</edXML>",
            "<a>".repeat(100),
            "</a>".repeat(100)
        );
        check(&deep, "edxml_too_deep");
        let mut big = String::from_utf8(write_envelope(&sample()).unwrap()).unwrap();
        big = big.replace(
            "</ContentTransferEncoded>",
            &format!("{}</ContentTransferEncoded>", "QUFB".repeat(2000)),
        );
        check(&big, "edxml_too_large");
        check("<edXML>", "edxml_malformed");
        check("<other xmlns=\"urn:x\"/>", "edxml_malformed");
        check(
            &format!("<edXML xmlns=\"{NAMESPACE}\"><edXMLEnvelope/></edXML>"),
            "edxml_invalid",
        );
        check("\u{0}\u{ff}", "edxml_malformed");
    }
}
