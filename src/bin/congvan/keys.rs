//! Certificates and keys: `pki demo`, `pki revoke`, `pki bundle`, `profile install`, and
//! `key endorse`, `key import-p12`, `key csr`. Passwords and passphrases are asked by
//! `pki::keystore`, never taken from an argument.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use congvan::config::ClientProfile;
use congvan::directory::Directory;
use congvan::pki;
use congvan::pki::keystore::{SecretSource, new_passphrase, read_password};

use crate::args::{CsrRole, KeyCommand, PkiCommand, ProfileCommand};

/// `congvan pki …`.
pub fn pki(command: PkiCommand) -> Result<()> {
    match command {
        PkiCommand::Demo {
            out,
            orgs,
            force,
            listen,
            protect,
            passphrase_file,
            passphrase_env,
        } => {
            // Ask before making anything, so that a refused passphrase leaves nothing.
            let passphrase = match protect {
                true => Some(new_passphrase(passphrase_file, passphrase_env)?),
                false => None,
            };
            pki_demo(
                &out,
                orgs.as_deref(),
                force,
                listen,
                passphrase.as_ref().map(|p| p.as_str()),
            )
        }
        PkiCommand::Revoke {
            pki,
            cert,
            reason,
            invalid_since,
        } => {
            let layout = pki::demo::Layout::new(pki);
            let invalid_since = invalid_since
                .map(|t| {
                    time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                        .map_err(|e| anyhow::anyhow!("--invalid-since {t:?} is not RFC 3339: {e}"))
                })
                .transpose()?;
            let revoked =
                pki::crl::revoke_with(&layout, &cert, reason.map(Into::into), invalid_since)?;
            if revoked.newly_revoked {
                println!(
                    "revoked serial {} in {} (CRL number {})",
                    revoked.serial,
                    revoked.crl_path.display(),
                    revoked.crl_number
                );
            } else {
                println!(
                    "serial {} was already revoked; re-issued {} (CRL number {})",
                    revoked.serial,
                    revoked.crl_path.display(),
                    revoked.crl_number
                );
            }
            Ok(())
        }
        PkiCommand::Bundle {
            org,
            pki,
            profile,
            out,
            password_file,
        } => pki_bundle(&org, &pki, profile, &out, password_file.as_deref()),
    }
}

/// `congvan profile …`.
pub fn profile(command: ProfileCommand) -> Result<()> {
    let ProfileCommand::Install {
        file,
        dir,
        password_file,
    } = command;
    profile_install(&file, dir, password_file.as_deref())
}

/// `congvan key …`.
pub fn key(command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Endorse {
            profile,
            cert,
            days,
            out,
        } => {
            let profile = ClientProfile::load(&profile)?;
            let (endorsement, json) =
                congvan::client::keys::endorse_key_file(&profile, cert.as_deref(), days)?;
            match out {
                Some(path) => {
                    pki::pem::write_public(&path, &json)?;
                    eprintln!(
                        "endorsed {} as the encryption key of {} until {}; written to {}",
                        endorsement.statement.openpgp_fingerprint,
                        endorsement.statement.org,
                        endorsement.statement.not_after,
                        path.display()
                    );
                }
                None => {
                    use std::io::Write as _;
                    std::io::stdout().write_all(&json)?;
                }
            }
            Ok(())
        }
        KeyCommand::ImportP12 {
            file,
            cert,
            key,
            password_file,
            password_env,
            passphrase_file,
            passphrase_env,
            force,
        } => {
            let password = SecretSource::from_settings(password_file, password_env)
                .read(&format!("password of {}", file.display()))?;
            let passphrase = new_passphrase(passphrase_file, passphrase_env)?;
            let imported =
                pki::keystore::import_p12(&file, &password, &cert, &key, &passphrase, force)?;
            println!(
                "imported {} ({} certificate(s)) to {} and its key, encrypted, to {}",
                imported.subject,
                imported.chain_len,
                cert.display(),
                key.display()
            );
            Ok(())
        }
        KeyCommand::Csr {
            profile,
            role,
            common_name,
            out,
        } => {
            let profile = ClientProfile::load(&profile)?;
            let key = match role {
                CsrRole::Sign => profile.sign_key_token.clone(),
                CsrRole::Person => profile.person_key_token.clone(),
                CsrRole::Tls => profile.tls_key_token.clone(),
            }
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the profile names no token key for that role ([token] sign_key or person_key)"
                )
            })?;
            let pem = profile.keys.token_csr(&key, &common_name)?;
            match out {
                Some(path) => pki::pem::write_public(&path, pem.as_bytes())?,
                None => print!("{pem}"),
            }
            Ok(())
        }
    }
}

/// `congvan pki demo`: the tree from `--orgs`, else config/orgs.toml, else the embedded
/// sample.
fn pki_demo(
    out: &Path,
    orgs: Option<&Path>,
    force: bool,
    listen: SocketAddr,
    passphrase: Option<&str>,
) -> Result<()> {
    let default_orgs = Path::new("config/orgs.toml");
    let text = match orgs {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None if default_orgs.exists() => std::fs::read_to_string(default_orgs)
            .with_context(|| format!("cannot read {}", default_orgs.display()))?,
        None => congvan::config::EMBEDDED_ORGS.to_owned(),
    };
    let directory = Directory::from_toml(&text)?;
    if out.as_os_str().is_empty() {
        bail!("--out must name a directory");
    }
    let opts = pki::demo::DemoOptions { force, listen };
    let layout = pki::demo::generate(out, &directory, &text, &opts)?;
    if let Some(passphrase) = passphrase {
        let count = pki::demo::protect_client_keys(&layout, &directory, passphrase)?;
        println!(
            "{count} client keys encrypted with the passphrase (server and CA keys stay plain 0600 files)"
        );
    }
    println!(
        "DEMO PKI written to {} (NOT for real documents)",
        layout.dir.display()
    );
    println!("  trust anchor:   {}", layout.root_cert().display());
    println!("  server config:  {}", layout.server_config().display());
    println!(
        "  client profiles: {}/orgs/*/client.toml, {}/auditors/*/client.toml",
        layout.dir.display(),
        layout.dir.display()
    );
    Ok(())
}

/// `congvan pki bundle`.
fn pki_bundle(
    org: &str,
    pki: &Path,
    profile: Option<PathBuf>,
    out: &Path,
    password_file: Option<&Path>,
) -> Result<()> {
    let id = congvan::directory::OrgId::parse(org)
        .map_err(|e| anyhow::anyhow!("{org:?} is not an organisation id: {e}"))?;
    let profile = profile.unwrap_or_else(|| pki::demo::Layout::new(pki).org_profile(&id));
    if out.exists() {
        bail!("{} already exists: choose another --out", out.display());
    }
    let password = read_password(password_file, "password for the bundle", true)?;
    let bytes = congvan::client::bundle::pack(&profile, id.as_str(), &password)?;
    pki::pem::write_secret(out, &bytes)?;
    println!(
        "wrote {} for {id} ({} bytes). Give the commune the file and, separately, the password; \
         on its machine: congvan profile install {}",
        out.display(),
        bytes.len(),
        out.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    );
    Ok(())
}

/// `congvan profile install`.
fn profile_install(file: &Path, dir: Option<PathBuf>, password_file: Option<&Path>) -> Result<()> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if meta.len() > congvan::client::bundle::BUNDLE_BYTES_MAX {
        bail!("{} is too large to be a profile bundle", file.display());
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let password = read_password(password_file, "password of the bundle", false)?;
    // The default directory is named after the organisation, which is only known once
    // the bundle is open; open it into a name that cannot exist yet, then say where.
    let target = match dir {
        Some(dir) => dir,
        None => PathBuf::from(format!(
            "congvan-{}",
            bundle_org_hint(file).unwrap_or_else(|| "profile".into())
        )),
    };
    let installed = congvan::client::bundle::install(&bytes, &password, &target)?;
    println!(
        "installed the profile of {} in {} ({} files; keys readable by you only). Try: congvan whoami --profile {}",
        installed.org,
        target.display(),
        installed.files.len(),
        installed.profile.display()
    );
    Ok(())
}

/// The organisation part of a bundle's file name as `pki bundle` suggests it
/// (`<org, / as .>.congvan`), for the default install directory.
fn bundle_org_hint(file: &Path) -> Option<String> {
    let stem = file.file_stem()?.to_str()?;
    let ok = !stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    ok.then(|| stem.to_owned())
}
