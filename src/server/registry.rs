//! The organisation directory in force, reloaded when `orgs.toml`, the reform plans or the
//! keys directory change (checked with the trust material, and on SIGHUP), and when a
//! waiting reform plan's effective time comes.
//!
//! Unlike the trust material, a directory that fails to load is not fatal: the previous
//! one stays in force and the error is logged. An encryption certificate that the cipher
//! cannot use is dropped from the directory (with an error in the log), so that nobody can
//! seal documents to a broken key.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use ring::digest;

use crate::config::{ConfigError, ServerConfig};
use crate::directory::Directory;
use crate::directory::endorsement::SignedEndorsement;
use crate::directory::reform::PlanState;
use crate::seal::Cipher;

/// Where the directory comes from.
#[derive(Clone, Debug)]
struct Sources {
    config: ServerConfig,
}

/// The directory in force.
pub struct Registry {
    sources: Sources,
    cipher: Arc<dyn Cipher>,
    current: RwLock<(Arc<Directory>, [u8; 32])>,
    stamp: Mutex<[u8; 32]>,
    /// The reform plans in force and when the next one is due.
    plans: RwLock<(Arc<Vec<PlanState>>, Option<time::OffsetDateTime>)>,
}

impl Registry {
    /// Loads the directory; fails if it cannot be loaded at all.
    pub fn load(
        config: &ServerConfig,
        cipher: Arc<dyn Cipher>,
    ) -> Result<(Arc<Registry>, String), ConfigError> {
        let sources = Sources {
            config: config.clone(),
        };
        let stamp = stamp(&sources);
        let (directory, text, digest, plans, due) = load(&sources, cipher.as_ref())?;
        Ok((
            Arc::new(Registry {
                sources,
                cipher,
                current: RwLock::new((Arc::new(directory), digest)),
                stamp: Mutex::new(stamp),
                plans: RwLock::new((Arc::new(plans), due)),
            }),
            text,
        ))
    }

    /// The directory in force.
    pub fn current(&self) -> Arc<Directory> {
        match self.current.read() {
            Ok(guard) => guard.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        }
    }

    /// The reform plans in force, in order, with their effects.
    pub fn plans(&self) -> Arc<Vec<PlanState>> {
        match self.plans.read() {
            Ok(guard) => guard.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        }
    }

    /// SHA-256 over the tree text and every registered certificate and endorsement in
    /// force.
    pub fn digest(&self) -> [u8; 32] {
        match self.current.read() {
            Ok(guard) => guard.1,
            Err(poisoned) => poisoned.into_inner().1,
        }
    }

    /// Reloads now; on failure the previous directory stays in force.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let stamp = stamp(&self.sources);
        match load(&self.sources, self.cipher.as_ref()) {
            Ok((directory, _, digest, plans, due)) => {
                if let Ok(mut guard) = self.current.write() {
                    *guard = (Arc::new(directory), digest);
                }
                if let Ok(mut guard) = self.plans.write() {
                    *guard = (Arc::new(plans), due);
                }
                if let Ok(mut guard) = self.stamp.lock() {
                    *guard = stamp;
                }
                tracing::info!("organisation directory reloaded");
                Ok(())
            }
            Err(e) => {
                if let Ok(mut guard) = self.stamp.lock() {
                    *guard = stamp;
                }
                tracing::error!(error = %e, "organisation directory not reloaded; the previous one stays in force");
                Err(e)
            }
        }
    }

    /// Reloads if the tree file, the reform plans or the keys directory changed, or a
    /// waiting plan's time has come.
    pub fn reload_if_changed(&self) {
        let now = stamp(&self.sources);
        let changed = self.stamp.lock().map(|g| *g != now).unwrap_or(true);
        let due = match self.plans.read() {
            Ok(guard) => guard.1,
            Err(poisoned) => poisoned.into_inner().1,
        }
        .is_some_and(|at| at <= time::OffsetDateTime::now_utc());
        if changed || due {
            let _ = self.reload();
        }
    }
}

type Loaded = (
    Directory,
    String,
    [u8; 32],
    Vec<PlanState>,
    Option<time::OffsetDateTime>,
);

fn load(sources: &Sources, cipher: &dyn Cipher) -> Result<Loaded, ConfigError> {
    let in_force = sources
        .config
        .load_directory_in_force(time::OffsetDateTime::now_utc())?;
    let (mut directory, text) = (in_force.directory, in_force.text);
    directory.retain_usable_encryption_certs(|id, cert| match cipher.check_cert(cert) {
        Ok(_) => {
            // Parse once now, so that the first classified document to many recipients
            // does not pay for parsing all their certificates.
            let _ = cipher.recipient_ids(cert);
            true
        }
        Err(e) => {
            tracing::error!(org = %id, error = %e, "encryption certificate unusable; ignoring it");
            false
        }
    });
    // The server does not judge endorsements (clients do, with their own anchor); it only
    // refuses to serve bytes that are not an endorsement at all.
    directory.retain_usable_endorsements(|id, bytes| match SignedEndorsement::from_slice(bytes) {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(org = %id, error = %e, "key endorsement unreadable; ignoring it");
            false
        }
    });
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(text.as_bytes());
    for org in directory.orgs() {
        for part in [
            org.id.as_str().as_bytes(),
            org.encryption_cert.as_deref().unwrap_or_default(),
            org.encryption_endorsement.as_deref().unwrap_or_default(),
            org.signing_certs_pem
                .as_deref()
                .unwrap_or_default()
                .as_bytes(),
        ] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(ctx.finish().as_ref());
    Ok((directory, text, digest, in_force.plans, in_force.next_due))
}

fn stamp(sources: &Sources) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut hash_file = |path: &PathBuf| {
        ctx.update(path.as_os_str().as_encoded_bytes());
        ctx.update(&[0]);
        if let Ok(bytes) = std::fs::read(path) {
            ctx.update(digest::digest(&digest::SHA256, &bytes).as_ref());
        }
    };
    hash_file(&sources.config.orgs);
    let mut plans: Vec<PathBuf> = std::fs::read_dir(&sources.config.reforms_dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    plans.sort();
    for path in &plans {
        hash_file(path);
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(&sources.config.keys_dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort();
    for path in &names {
        hash_file(path);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}
