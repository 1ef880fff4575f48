//! The DEMO PKI: a root CA, an intermediate CA, a server certificate and, for every
//! organisation and security officer in the tree, the keys and certificates they need.
//!
//! Everything made here is labelled DEMO in its subject and must never protect real
//! documents: the CA keys sit next to the certificates. Real deployments import the
//! certificates their own CA issued and point the configuration at them.
//!
//! Layout under the output directory (see `certs/README.md`):
//!
//! ```text
//! README.txt
//! ca/root.crt ca/root.key ca/root.crl
//! ca/intermediate.crt ca/intermediate.key ca/intermediate.crl
//! server/server.crt server/server.key server/congvan.toml server/orgs.toml
//! server/keys/<id with / as .>.openpgp.asc  server/keys/<id>.signing.pem
//! server/keys/<id>.endorsement.json
//! orgs/<id with / as .>/tls.crt tls.key sign.crt sign.key person.crt person.key
//!                       openpgp.key openpgp.cert client.toml
//! auditors/<scope with / as .>/tls.crt tls.key client.toml
//! ```
//!
//! An organisation's two document-signing certificates are of different kinds: `sign.crt`
//! is its seal (SAN URI `urn:congvan:org:<id>`), `person.crt` the competent person's
//! (SAN URI `urn:congvan:person:<id>`, the person's full name as common name, the
//! position as title).

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};

use super::pem::{write_public, write_secret};
use super::signing::SigningKey;
use super::{
    EKU_DOCUMENT_SIGNING, PkiError, URI_AUDITOR_PREFIX, URI_ORG_PREFIX, URI_PERSON_PREFIX,
};
use crate::directory::endorsement::{EndorsementError, KeyEndorsement};
use crate::directory::{
    Directory, Org, OrgId, encryption_cert_file, endorsement_file, signing_certs_file,
};
use crate::seal;

/// Organisation name written into every DEMO subject.
pub const DEMO_ORG: &str = "congvan DEMO - NOT FOR PRODUCTION";
/// How long DEMO leaf certificates are valid.
pub const LEAF_VALIDITY_DAYS: i64 = 397;
/// How long DEMO CA certificates are valid.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// How long DEMO key endorsements are valid (within the seal certificate's validity).
pub const ENDORSEMENT_VALIDITY_DAYS: i64 = 365;
/// How long a CRL stays current; `pki revoke` issues a fresh one each time.
pub const CRL_VALIDITY_DAYS: i64 = 365;

/// Paths of everything in a DEMO PKI directory.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The PKI's root directory.
    pub dir: PathBuf,
}

impl Layout {
    /// A layout rooted at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Layout { dir: dir.into() }
    }
    /// The trust anchor.
    pub fn root_cert(&self) -> PathBuf {
        self.dir.join("ca/root.crt")
    }
    /// The root CA's key.
    pub fn root_key(&self) -> PathBuf {
        self.dir.join("ca/root.key")
    }
    /// CRL signed by the root (covers intermediates).
    pub fn root_crl(&self) -> PathBuf {
        self.dir.join("ca/root.crl")
    }
    /// The issuing CA certificate.
    pub fn intermediate_cert(&self) -> PathBuf {
        self.dir.join("ca/intermediate.crt")
    }
    /// The issuing CA's key.
    pub fn intermediate_key(&self) -> PathBuf {
        self.dir.join("ca/intermediate.key")
    }
    /// CRL signed by the intermediate (covers leaf certificates).
    pub fn intermediate_crl(&self) -> PathBuf {
        self.dir.join("ca/intermediate.crl")
    }
    /// The server's directory (certificate, key, config).
    pub fn server_dir(&self) -> PathBuf {
        self.dir.join("server")
    }
    /// The ready server configuration.
    pub fn server_config(&self) -> PathBuf {
        self.dir.join("server/congvan.toml")
    }
    /// An organisation's directory.
    pub fn org_dir(&self, id: &OrgId) -> PathBuf {
        self.dir.join("orgs").join(id.file_name())
    }
    /// A security officer's directory.
    pub fn auditor_dir(&self, scope: &OrgId) -> PathBuf {
        self.dir.join("auditors").join(scope.file_name())
    }
    /// The client profile of an organisation.
    pub fn org_profile(&self, id: &OrgId) -> PathBuf {
        self.org_dir(id).join("client.toml")
    }
    /// The client profile of a security officer.
    pub fn auditor_profile(&self, scope: &OrgId) -> PathBuf {
        self.auditor_dir(scope).join("client.toml")
    }
}

/// What a leaf certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafKind {
    /// TLS client authentication (EKU clientAuth).
    TlsClient,
    /// TLS server authentication (EKU serverAuth).
    TlsServer,
    /// Document signing (EKU id-kp-documentSigning, RFC 9336).
    DocumentSigning,
}

/// The parameters of one leaf certificate.
#[derive(Clone, Debug)]
pub struct LeafSpec {
    /// What the certificate is for.
    pub kind: LeafKind,
    /// Subject common name (for people; never matched on).
    pub common_name: String,
    /// Subject title (a person's position), if any.
    pub title: Option<String>,
    /// Subject organisational unit (the organisation a person signs for), if any.
    pub unit: Option<String>,
    /// SAN URI carrying the congvan identity, if any.
    pub uri: Option<String>,
    /// SAN DNS names.
    pub dns: Vec<String>,
    /// SAN IP addresses.
    pub ips: Vec<IpAddr>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

impl LeafSpec {
    /// A spec valid from an hour ago for [`LEAF_VALIDITY_DAYS`].
    pub fn new(kind: LeafKind, common_name: impl Into<String>) -> Self {
        let now = OffsetDateTime::now_utc();
        LeafSpec {
            kind,
            common_name: common_name.into(),
            title: None,
            unit: None,
            uri: None,
            dns: Vec::new(),
            ips: Vec::new(),
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(LEAF_VALIDITY_DAYS),
        }
    }

    /// Sets the identity URI.
    pub fn uri(mut self, uri: impl Into<String>) -> Self {
        self.uri = Some(uri.into());
        self
    }
}

/// A certificate with its key, PEM encoded.
pub struct Issued {
    /// The leaf followed by the issuing chain (without the root).
    pub chain_pem: String,
    /// The PKCS#8 private key.
    pub key_pem: String,
    /// The leaf in DER.
    pub der: Vec<u8>,
}

impl Issued {
    /// Writes `<stem>.crt` (0644) and `<stem>.key` (0600) into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<(), PkiError> {
        write_public(&dir.join(format!("{stem}.crt")), self.chain_pem.as_bytes())?;
        write_secret(&dir.join(format!("{stem}.key")), self.key_pem.as_bytes())
    }
}

/// A certificate authority that can issue certificates and CRLs.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// This CA's certificate in PEM, appended to the chains it issues (unless it is a root).
    cert_pem: String,
    is_root: bool,
}

impl Ca {
    /// Makes a new self-signed root CA.
    pub fn new_root(common_name: &str) -> Result<Ca, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let params = ca_params(common_name, BasicConstraints::Unconstrained)?;
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            is_root: true,
        })
    }

    /// Makes an intermediate CA (path length 0) signed by this CA.
    pub fn new_intermediate(&self, common_name: &str) -> Result<Ca, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = ca_params(common_name, BasicConstraints::Constrained(0))?;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            is_root: false,
        })
    }

    /// Loads a CA from its certificate and key files.
    pub fn load(cert_path: &Path, key_path: &Path, is_root: bool) -> Result<Ca, PkiError> {
        let read = |p: &Path| {
            fs::read_to_string(p).map_err(|source| PkiError::Io {
                path: p.display().to_string(),
                source,
            })
        };
        let cert_pem = read(cert_path)?;
        let key = KeyPair::from_pem(&read(key_path)?)?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
        Ok(Ca {
            issuer,
            cert_pem,
            is_root,
        })
    }

    /// This CA's certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// This CA's private key in PEM (PKCS#8).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issues a leaf certificate with a fresh P-256 key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<Issued, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let params = leaf_params(spec)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let mut chain_pem = cert.pem();
        if !self.is_root {
            chain_pem.push_str(&self.cert_pem);
        }
        Ok(Issued {
            chain_pem,
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        })
    }

    /// Issues a leaf certificate for the key of a PKCS#10 request (PEM), after checking
    /// the request's own signature; the certificate's contents come from `spec`, not from
    /// the request. Returns the chain in PEM (leaf first).
    pub fn issue_for_csr(&self, spec: &LeafSpec, csr_pem: &str) -> Result<String, PkiError> {
        let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)?;
        let params = leaf_params(spec)?;
        let cert = params.signed_by(&csr.public_key, &self.issuer)?;
        let mut chain_pem = cert.pem();
        if !self.is_root {
            chain_pem.push_str(&self.cert_pem);
        }
        Ok(chain_pem)
    }

    /// Signs a CRL listing `revoked` (serial, revocation time) with number `crl_number`.
    pub fn sign_crl(
        &self,
        crl_number: u64,
        revoked: Vec<rcgen::RevokedCertParams>,
    ) -> Result<String, PkiError> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(CRL_VALIDITY_DAYS),
            crl_number: SerialNumber::from_slice(&crl_number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }
}

fn ca_params(
    common_name: &str,
    constraint: BasicConstraints,
) -> Result<CertificateParams, PkiError> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.serial_number = Some(random_serial()?);
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
    params.distinguished_name = demo_dn(common_name);
    params.is_ca = IsCa::Ca(constraint);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.key_identifier_method = KeyIdMethod::Sha256;
    Ok(params)
}

fn demo_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "VN");
    dn.push(DnType::OrganizationName, DEMO_ORG);
    dn.push(DnType::CommonName, common_name);
    dn
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Generate("system random number generator failed".into()))?;
    // A positive INTEGER: clear the top bit, and keep the first byte non-zero so the DER
    // encoding is exactly 16 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Options of `congvan pki demo`.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Replace an existing PKI.
    pub force: bool,
    /// The address the server will listen on, written into the configs.
    pub listen: SocketAddr,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            force: false,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8443),
        }
    }
}

/// Makes a complete DEMO PKI for `directory` under `out`.
///
/// `orgs_toml` is the text the directory was parsed from; it is copied to
/// `server/orgs.toml` so the generated server config is self-contained.
pub fn generate(
    out: &Path,
    directory: &Directory,
    orgs_toml: &str,
    opts: &DemoOptions,
) -> Result<Layout, PkiError> {
    let layout = Layout::new(out);
    let ours = ["README.txt", "ca", "server", "orgs", "auditors"];
    let existing: Vec<_> = ours.iter().filter(|n| out.join(n).exists()).collect();
    if !existing.is_empty() {
        if !opts.force {
            return Err(PkiError::Exists(out.display().to_string()));
        }
        for name in existing {
            let path = out.join(name);
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(|source| PkiError::Io {
                path: path.display().to_string(),
                source,
            })?;
        }
    }

    write_public(&out.join("README.txt"), DEMO_README.as_bytes())?;
    let root = Ca::new_root("congvan DEMO Root CA")?;
    let intermediate = root.new_intermediate("congvan DEMO Issuing CA")?;
    write_public(&layout.root_cert(), root.cert_pem().as_bytes())?;
    write_secret(&layout.root_key(), root.key_pem().as_bytes())?;
    write_public(
        &layout.intermediate_cert(),
        intermediate.cert_pem().as_bytes(),
    )?;
    write_secret(
        &layout.intermediate_key(),
        intermediate.key_pem().as_bytes(),
    )?;
    write_public(&layout.root_crl(), root.sign_crl(1, Vec::new())?.as_bytes())?;
    write_public(
        &layout.intermediate_crl(),
        intermediate.sign_crl(1, Vec::new())?.as_bytes(),
    )?;

    let server_dir = layout.server_dir();
    let mut server = LeafSpec::new(LeafKind::TlsServer, "congvan DEMO server");
    server.dns = vec!["localhost".into()];
    server.ips = vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    if !opts.listen.ip().is_unspecified() && !server.ips.contains(&opts.listen.ip()) {
        server.ips.push(opts.listen.ip());
    }
    intermediate.issue(&server)?.write(&server_dir, "server")?;
    write_public(&server_dir.join("orgs.toml"), orgs_toml.as_bytes())?;
    write_public(
        &layout.server_config(),
        crate::config::demo::server_toml(opts.listen).as_bytes(),
    )?;

    let server_url = server_url(opts.listen);
    for org in directory.orgs() {
        let dir = layout.org_dir(&org.id);
        let uri = format!("{URI_ORG_PREFIX}{}", org.id);
        let tls = LeafSpec::new(LeafKind::TlsClient, format!("{} (TLS)", org.name)).uri(&uri);
        intermediate.issue(&tls)?.write(&dir, "tls")?;
        let sign = LeafSpec::new(LeafKind::DocumentSigning, org.name.clone()).uri(&uri);
        intermediate.issue(&sign)?.write(&dir, "sign")?;
        // The competent person's certificate: its own kind of URI, and the person's full
        // name as the common name, which is what a manifest's `signer.full_name` must say.
        let mut person = LeafSpec::new(LeafKind::DocumentSigning, person_name(org))
            .uri(format!("{URI_PERSON_PREFIX}{}", org.id));
        person.title = Some(person_position(org));
        person.unit = Some(org.name.clone());
        intermediate.issue(&person)?.write(&dir, "person")?;
        let key = seal::generate_key(&format!("{} ({uri})", org.name))
            .map_err(|e| PkiError::OpenPgp(e.to_string()))?;
        write_secret(&dir.join("openpgp.key"), &key.secret_armored)?;
        write_public(&dir.join("openpgp.cert"), &key.cert_armored)?;
        // Register the organisation's public material with the server.
        let keys = server_dir.join("keys");
        write_public(&keys.join(encryption_cert_file(&org.id)), &key.cert_armored)?;
        let mut signing =
            std::fs::read_to_string(dir.join("sign.crt")).map_err(|source| PkiError::Io {
                path: dir.join("sign.crt").display().to_string(),
                source,
            })?;
        signing.push_str(
            &std::fs::read_to_string(dir.join("person.crt")).map_err(|source| PkiError::Io {
                path: dir.join("person.crt").display().to_string(),
                source,
            })?,
        );
        write_public(&keys.join(signing_certs_file(&org.id)), signing.as_bytes())?;
        write_public(
            &keys.join(endorsement_file(&org.id)),
            &endorse_demo_key(&dir, &org.id, &key.fingerprint)?,
        )?;
        write_public(
            &dir.join("client.toml"),
            crate::config::demo::org_profile_toml(&org.id, &org.name, &server_url).as_bytes(),
        )?;
    }
    for auditor in directory.auditors() {
        let dir = layout.auditor_dir(&auditor.scope);
        let uri = format!("{URI_AUDITOR_PREFIX}{}", auditor.scope);
        let tls = LeafSpec::new(LeafKind::TlsClient, format!("{} (TLS)", auditor.name)).uri(&uri);
        intermediate.issue(&tls)?.write(&dir, "tls")?;
        write_public(
            &dir.join("client.toml"),
            crate::config::demo::auditor_profile_toml(&auditor.scope, &auditor.name, &server_url)
                .as_bytes(),
        )?;
    }
    Ok(layout)
}

/// The certificate parameters of a leaf (everything but its key).
fn leaf_params(spec: &LeafSpec) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.serial_number = Some(random_serial()?);
    params.not_before = spec.not_before;
    params.not_after = spec.not_after;
    params.distinguished_name = demo_dn(&spec.common_name);
    if let Some(title) = &spec.title {
        params
            .distinguished_name
            .push(DnType::CustomDnType(vec![2, 5, 4, 12]), title.as_str());
    }
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method = KeyIdMethod::Sha256;
    let (key_usages, ekus) = match spec.kind {
        LeafKind::TlsClient => (
            vec![KeyUsagePurpose::DigitalSignature],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        ),
        LeafKind::TlsServer => (
            vec![KeyUsagePurpose::DigitalSignature],
            vec![ExtendedKeyUsagePurpose::ServerAuth],
        ),
        LeafKind::DocumentSigning => (
            vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ],
            vec![ExtendedKeyUsagePurpose::Other(
                EKU_DOCUMENT_SIGNING.to_vec(),
            )],
        ),
    };
    params.key_usages = key_usages;
    params.extended_key_usages = ekus;
    if let Some(uri) = &spec.uri {
        params
            .subject_alt_names
            .push(SanType::URI(uri.as_str().try_into()?));
    }
    for dns in &spec.dns {
        params
            .subject_alt_names
            .push(SanType::DnsName(dns.as_str().try_into()?));
    }
    for ip in &spec.ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    Ok(params)
}

/// Encrypts the client keys of a DEMO PKI (every organisation's TLS, seal and person keys,
/// every security officer's TLS key) with `passphrase`. The server's and the CAs' keys stay
/// plain 0600 files: a server must start unattended. Returns how many keys were encrypted.
pub fn protect_client_keys(
    layout: &Layout,
    directory: &Directory,
    passphrase: &str,
) -> Result<usize, PkiError> {
    let mut count = 0;
    let mut protect = |path: PathBuf| -> Result<(), PkiError> {
        if path.exists() {
            super::keystore::protect_key_file(&path, passphrase)?;
            count += 1;
        }
        Ok(())
    };
    for org in directory.orgs() {
        let dir = layout.org_dir(&org.id);
        for stem in ["tls", "sign", "person"] {
            protect(dir.join(format!("{stem}.key")))?;
        }
    }
    for auditor in directory.auditors() {
        protect(layout.auditor_dir(&auditor.scope).join("tls.key"))?;
    }
    Ok(count)
}

/// The organisation's endorsement of its DEMO OpenPGP key, signed with its seal
/// certificate (`sign.crt` in `dir`), as `congvan key endorse` makes it.
fn endorse_demo_key(dir: &Path, org: &OrgId, fingerprint: &str) -> Result<Vec<u8>, PkiError> {
    let seal = SigningKey::load(&dir.join("sign.crt"), &dir.join("sign.key"))?;
    let failed = |e: EndorsementError| PkiError::Generate(format!("key endorsement: {e}"));
    KeyEndorsement::new(
        org.clone(),
        fingerprint,
        OffsetDateTime::now_utc(),
        ENDORSEMENT_VALIDITY_DAYS,
    )
    .and_then(|s| s.sign(&seal))
    .and_then(|s| s.to_json())
    .map_err(failed)
}

/// The competent person's full name the DEMO PKI writes into an organisation's
/// `person.crt` (its subject common name).
pub fn person_name(org: &Org) -> String {
    org.signer_name
        .clone()
        .unwrap_or_else(|| format!("Người ký DEMO, {}", org.name))
}

/// The competent person's position the DEMO PKI writes into `person.crt` (its subject
/// title attribute).
pub fn person_position(org: &Org) -> String {
    org.signer_position
        .clone()
        .unwrap_or_else(|| "Người có thẩm quyền".to_owned())
}

/// The HTTPS URL clients use for a listening address.
pub fn server_url(listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() || ip.is_loopback() => "localhost".to_string(),
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    format!("https://{host}:{}", listen.port())
}

const DEMO_README: &str = "\
THIS IS A DEMO PKI. DO NOT USE IT FOR REAL DOCUMENTS.

It was generated by `congvan pki demo`. The CA private keys are stored next to the
certificates, every subject says \"congvan DEMO - NOT FOR PRODUCTION\", and anyone with a
copy of this directory can impersonate every organisation in it.

A real deployment uses certificates issued by its own CA; see certs/README.md in the
congvan source tree.
";
