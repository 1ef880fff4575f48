//! Profile bundles: how a district hands a commune its client profile, certificates and
//! keys in one password-protected file (`congvan pki bundle`), and how the commune
//! unpacks it (`congvan profile install`).
//!
//! The file is an [age](https://age-encryption.org/v1) file encrypted to a passphrase
//! (age's scrypt recipient: scrypt with a fixed work factor, [`SCRYPT_LOG_N`], then
//! ChaCha20-Poly1305 over the whole content, so a wrong
//! password and any change to the file are both refused before anything is written).
//! age was chosen over PKCS#12 because it is one small, specified, audited format with
//! authenticated encryption of everything (PKCS#12 as CA tools write it still uses
//! 3DES/RC2 and an integrity MAC from a separate password derivation), and because
//! a commune without congvan can still open it with the `age` tool (Debian package
//! `age`, also built for Windows): `age -d bundle.age` prints the JSON below.
//!
//! Inside is JSON: `{"type": "congvan.profile-bundle/v1", "org": ID, "files": [{"name",
//! "private", "data" (base64)}]}`. Names are plain file names (no directories), so
//! unpacking cannot write outside the target directory. `client.toml` is rewritten so
//! that every path names its file in the same directory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::config::ClientProfile;
use crate::pki::CertInfo;

/// The content's type marker.
pub const BUNDLE_TYPE: &str = "congvan.profile-bundle/v1";
/// Largest bundle read or written, in bytes (a profile is a few KiB).
pub const BUNDLE_BYTES_MAX: u64 = 4 << 20;
/// Most files in a bundle.
pub const BUNDLE_FILES_MAX: usize = 32;
/// The scrypt work factor of a bundle (N = 2^17: 128 MiB and about half a second on a
/// current PC). Fixed, not calibrated like age's default: a bundle made on a fast
/// district server must open on an old commune PC, which age's own bound (calibrated on
/// the opening machine) would refuse.
pub const SCRYPT_LOG_N: u8 = 17;
/// The largest work factor `profile install` accepts (N = 2^20, about 8× the above):
/// a hostile file cannot make it work longer than that.
pub const SCRYPT_LOG_N_MAX: u8 = 20;
/// Shortest password accepted when packing.
pub const PASSWORD_CHARS_MIN: usize = 12;
/// The profile's fields that name files, and whether the file is secret.
const PATH_FIELDS: [(&str, bool); 9] = [
    ("ca", false),
    ("tls_cert", false),
    ("tls_key", true),
    ("sign_cert", false),
    ("sign_key", true),
    ("person_cert", false),
    ("person_key", true),
    ("openpgp_cert", false),
    ("openpgp_key", true),
];

/// Why a bundle could not be made or installed. Nothing is written in either case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The password does not open the bundle (or the file was changed).
    #[error("wrong password: the bundle cannot be opened with it (or the file was altered)")]
    WrongPassword,
    /// The file is not a congvan bundle.
    #[error("not a congvan profile bundle: {0}")]
    NotABundle(String),
    /// The target directory already exists.
    #[error(
        "{0} already exists: congvan does not overwrite a profile; choose another --dir or move it away"
    )]
    Exists(String),
    /// The profile to pack is unusable.
    #[error("the profile cannot be bundled: {0}")]
    Profile(String),
    /// The password is too weak or could not be read.
    #[error("{0}")]
    Password(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Contents {
    #[serde(rename = "type")]
    kind: String,
    org: String,
    files: Vec<BundleFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleFile {
    name: String,
    private: bool,
    data: String,
}

/// Packs the profile `profile_path` (a `client.toml`) for organisation `org` into a
/// bundle encrypted with `password`. Refuses a profile whose TLS certificate speaks for
/// another organisation, a weak password, and file names that would collide.
pub fn pack(profile_path: &Path, org: &str, password: &str) -> Result<Vec<u8>, BundleError> {
    if password.chars().count() < PASSWORD_CHARS_MIN {
        return Err(BundleError::Password(format!(
            "the bundle password must have at least {PASSWORD_CHARS_MIN} characters"
        )));
    }
    let profile =
        ClientProfile::load(profile_path).map_err(|e| BundleError::Profile(e.to_string()))?;
    let tls = crate::pki::pem::read_certs(&profile.tls_cert)
        .map_err(|e| BundleError::Profile(e.to_string()))?;
    let identity = tls
        .first()
        .ok_or_else(|| BundleError::Profile("the TLS certificate file is empty".into()))
        .and_then(|c| CertInfo::from_der(c).map_err(|e| BundleError::Profile(e.to_string())))?;
    let speaks_for = identity.identity.uri();
    if speaks_for != format!("{}{org}", crate::pki::URI_ORG_PREFIX) {
        return Err(BundleError::Profile(format!(
            "its TLS certificate speaks for {speaks_for}, not for {org}"
        )));
    }
    let text = read(profile_path)?;
    let text = String::from_utf8(text)
        .map_err(|_| BundleError::Profile("client.toml is not UTF-8".into()))?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| BundleError::Profile(e.to_string()))?;
    let base = profile_path.parent().unwrap_or(Path::new("."));
    let mut files: Vec<BundleFile> = Vec::new();
    for (field, private) in PATH_FIELDS {
        let Some(value) = table.get(field).and_then(|v| v.as_str()).map(PathBuf::from) else {
            continue;
        };
        let path = if value.is_absolute() {
            value
        } else {
            base.join(value)
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| name_ok(n) && *n != "client.toml")
            .ok_or_else(|| {
                BundleError::Profile(format!(
                    "{field} = {}: name the file plainly (letters, digits, '.', '-', '_')",
                    path.display()
                ))
            })?
            .to_owned();
        if files.iter().any(|f| f.name == name) {
            return Err(BundleError::Profile(format!(
                "two fields name a file called {name}; rename one"
            )));
        }
        files.push(BundleFile {
            name: name.clone(),
            private,
            data: B64.encode(read(&path)?),
        });
        table.insert(field.to_owned(), toml::Value::String(name));
    }
    // State (pinned keys, remembered endorsements) belongs to the machine that made it.
    table.insert("state_dir".into(), toml::Value::String("state".into()));
    let client_toml = toml::to_string(&table).map_err(|e| BundleError::Profile(e.to_string()))?;
    files.insert(
        0,
        BundleFile {
            name: "client.toml".into(),
            private: false,
            data: B64.encode(client_toml.as_bytes()),
        },
    );
    let contents = serde_json::to_vec(&Contents {
        kind: BUNDLE_TYPE.into(),
        org: org.to_owned(),
        files,
    })
    .map_err(|e| BundleError::Profile(e.to_string()))?;

    let mut recipient =
        age::scrypt::Recipient::new(age::secrecy::SecretString::from(password.to_owned()));
    recipient.set_work_factor(SCRYPT_LOG_N);
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as _))
        .map_err(|e| BundleError::Profile(e.to_string()))?;
    let mut out = Vec::new();
    let io = |e: std::io::Error| BundleError::Io {
        path: "bundle".into(),
        source: e,
    };
    let mut writer = encryptor.wrap_output(&mut out).map_err(io)?;
    writer.write_all(&contents).map_err(io)?;
    writer.finish().map_err(io)?;
    Ok(out)
}

/// What [`install`] wrote.
#[derive(Debug)]
pub struct Installed {
    /// The organisation the profile speaks for.
    pub org: String,
    /// The profile file.
    pub profile: PathBuf,
    /// The files written.
    pub files: Vec<String>,
}

/// Opens `bundle` with `password` and writes its files into `dir`, which must not exist:
/// keys 0600, the rest 0644, the directory 0700. Everything is written into a temporary
/// directory beside `dir`, checked (the profile must load), then renamed into place, so
/// a wrong password, a damaged file or a full disk leaves nothing behind.
pub fn install(bundle: &[u8], password: &str, dir: &Path) -> Result<Installed, BundleError> {
    if dir.exists() {
        return Err(BundleError::Exists(dir.display().to_string()));
    }
    if bundle.len() as u64 > BUNDLE_BYTES_MAX {
        return Err(BundleError::NotABundle(format!(
            "larger than {BUNDLE_BYTES_MAX} bytes"
        )));
    }
    let decryptor = age::Decryptor::new(bundle).map_err(|e| match e {
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => {
            BundleError::NotABundle("not an age file".into())
        }
        other => BundleError::NotABundle(other.to_string()),
    })?;
    if !decryptor.is_scrypt() {
        return Err(BundleError::NotABundle(
            "the age file is not encrypted to a password".into(),
        ));
    }
    let identity =
        age::scrypt::Identity::new(age::secrecy::SecretString::from(password.to_owned()));
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::DecryptionFailed
            | age::DecryptError::KeyDecryptionFailed
            | age::DecryptError::NoMatchingKeys
            | age::DecryptError::InvalidMac => BundleError::WrongPassword,
            other => BundleError::NotABundle(other.to_string()),
        })?;
    let mut plain = Vec::new();
    (&mut reader)
        .take(BUNDLE_BYTES_MAX)
        .read_to_end(&mut plain)
        // The payload is authenticated chunk by chunk: a changed file fails here.
        .map_err(|_| BundleError::WrongPassword)?;
    let contents: Contents =
        serde_json::from_slice(&plain).map_err(|e| BundleError::NotABundle(e.to_string()))?;
    if contents.kind != BUNDLE_TYPE {
        return Err(BundleError::NotABundle(format!(
            "type {:?}, expected {BUNDLE_TYPE}",
            contents.kind.chars().take(64).collect::<String>()
        )));
    }
    if contents.files.len() > BUNDLE_FILES_MAX {
        return Err(BundleError::NotABundle(format!(
            "more than {BUNDLE_FILES_MAX} files"
        )));
    }
    let mut names: Vec<&str> = Vec::new();
    for file in &contents.files {
        if !name_ok(&file.name) || names.contains(&file.name.as_str()) {
            return Err(BundleError::NotABundle(format!(
                "file name {:?} is not a plain, unique file name",
                file.name.chars().take(64).collect::<String>()
            )));
        }
        names.push(&file.name);
    }
    if !names.contains(&"client.toml") {
        return Err(BundleError::NotABundle("no client.toml inside".into()));
    }

    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| io_error(&parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".congvan-profile-")
        .tempdir_in(&parent)
        .map_err(|e| io_error(&parent, e))?;
    for file in &contents.files {
        let data = B64
            .decode(&file.data)
            .map_err(|e| BundleError::NotABundle(format!("{}: {e}", file.name)))?;
        let private = file.private || file.name.ends_with(".key");
        write_new(&staging.path().join(&file.name), &data, private)?;
    }
    let profile = staging.path().join("client.toml");
    ClientProfile::load(&profile).map_err(|e| BundleError::NotABundle(e.to_string()))?;
    set_mode(staging.path(), 0o700)?;
    let staged = staging.keep();
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(BundleError::Exists(dir.display().to_string()));
    }
    std::fs::rename(&staged, dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        io_error(dir, e)
    })?;
    Ok(Installed {
        org: contents.org,
        profile: dir.join("client.toml"),
        files: contents.files.into_iter().map(|f| f.name).collect(),
    })
}

/// A plain file name: ASCII letters, digits, `.`, `-`, `_`, not starting with a dot, at
/// most 64 characters.
fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

fn read(path: &Path) -> Result<Vec<u8>, BundleError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if meta.len() > BUNDLE_BYTES_MAX {
        return Err(BundleError::Profile(format!(
            "{} is larger than {BUNDLE_BYTES_MAX} bytes",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| io_error(path, e))
}

fn write_new(path: &Path, data: &[u8], private: bool) -> Result<(), BundleError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|e| io_error(path, e))?;
    file.write_all(data).map_err(|e| io_error(path, e))?;
    file.sync_all().map_err(|e| io_error(path, e))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), BundleError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, source: std::io::Error) -> BundleError {
    BundleError::Io {
        path: path.display().to_string(),
        source,
    }
}
