//! The real `congvan` binary: `pki demo`, `pki revoke`, `serve` on the embedded default.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Run as _, congvan_command as congvan, stderr, stdout};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn pki_demo_writes_the_layout_with_private_keys_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pki");
    let run = congvan().args(["pki", "demo", "--out"]).arg(&out).run_ok();
    assert!(stdout(&run).contains("DEMO"));

    let org = out.join("orgs/hn.cm.chuc-son");
    for f in ["tls.key", "sign.key", "person.key", "openpgp.key"] {
        assert_eq!(mode(&org.join(f)), 0o600, "{f}");
    }
    for f in [
        "tls.crt",
        "sign.crt",
        "person.crt",
        "openpgp.cert",
        "client.toml",
    ] {
        assert_eq!(mode(&org.join(f)), 0o644, "{f}");
    }
    for f in [
        "ca/root.key",
        "ca/intermediate.key",
        "server/server.key",
        "auditors/hn.cm/tls.key",
    ] {
        assert_eq!(mode(&out.join(f)), 0o600, "{f}");
    }
    for f in [
        "ca/root.crl",
        "ca/intermediate.crl",
        "server/congvan.toml",
        "README.txt",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // Every organisation of the sample tree, and only those, has a folder.
    let mut dirs: Vec<_> = std::fs::read_dir(out.join("orgs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    assert!(dirs.contains(&"hn.cm.truong-yen".to_owned()), "{dirs:?}");
    // 12 units of the 2023 tree and 6 planned ones of the 2025 reform.
    assert_eq!(dirs.len(), 18, "{dirs:?}");
    // The profiles it writes are valid and point at files that exist.
    let profile = congvan::config::ClientProfile::load(&org.join("client.toml")).unwrap();
    for path in [&profile.ca, &profile.tls_cert, &profile.tls_key] {
        assert!(path.is_file(), "{}", path.display());
    }
    assert!(profile.person_cert.unwrap().is_file());
    let config = congvan::config::ServerConfig::load(&out.join("server/congvan.toml")).unwrap();
    assert!(config.tls.cert.is_file());
    assert_eq!(config.tls.crls.len(), 2);
}

#[test]
fn pki_demo_refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pki");
    congvan().args(["pki", "demo", "--out"]).arg(&out).run_ok();
    let root_before = std::fs::read(out.join("ca/root.crt")).unwrap();

    let again = congvan()
        .args(["pki", "demo", "--out"])
        .arg(&out)
        .run_fails();
    let stderr = stderr(&again);
    assert!(
        stderr.contains("already exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(out.join("ca/root.crt")).unwrap(), root_before);

    congvan()
        .args(["pki", "demo", "--force", "--out"])
        .arg(&out)
        .run_ok();
    assert_ne!(std::fs::read(out.join("ca/root.crt")).unwrap(), root_before);
}

#[test]
fn pki_revoke_refuses_a_certificate_from_another_pki() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        congvan()
            .args(["pki", "demo", "--out"])
            .arg(tmp.path().join(name))
            .run_ok();
    }
    let run = congvan()
        .args(["pki", "revoke", "--pki"])
        .arg(tmp.path().join("a"))
        .arg(tmp.path().join("b/orgs/hn/tls.crt"))
        .run_fails();
    assert!(stderr(&run).contains("was not issued by a CA of this PKI"));
}

/// Starts `congvan serve` in `cwd` and waits for its "listening" line.
pub fn spawn_server(cwd: &Path, args: &[&str]) -> (std::process::Child, String, Vec<String>) {
    let mut child = congvan()
        .arg("serve")
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(line.clone());
            if let Some(rest) = line.split("addr=").nth(1) {
                let addr = rest.split_whitespace().next().unwrap().to_owned();
                // Keep draining so the child never blocks on a full pipe.
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return (child, addr, lines);
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start: {lines:#?}");
}

fn sigterm(child: &mut std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "server ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_on_the_embedded_default_makes_a_demo_pki_and_stops_on_sigterm() {
    // An empty directory: no config/, so the compiled-in default applies.
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, addr, lines) = spawn_server(tmp.path(), &["--listen", "127.0.0.1:0"]);
    assert!(
        lines.iter().any(|l| l.contains("DEMO PKI")),
        "no loud DEMO warning: {lines:#?}"
    );
    let pki = tmp.path().join("certs/demo");
    assert!(pki.join("ca/root.crt").is_file());
    assert!(tmp.path().join("data/db").exists());

    let port = addr.rsplit(':').next().unwrap();
    let out = congvan()
        .args(["whoami", "--profile"])
        .arg(pki.join("orgs/hn.cm/client.toml"))
        .args(["--server", &format!("https://localhost:{port}")])
        .run_ok();
    let me: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(me["id"], "hn/cm");

    let status = sigterm(&mut child);
    assert!(status.success(), "exit status {status:?}");

    // A second start reuses the PKI instead of making a new one.
    let root = std::fs::read(pki.join("ca/root.crt")).unwrap();
    let (mut child, _, lines) = spawn_server(tmp.path(), &["--listen", "127.0.0.1:0"]);
    assert!(
        !lines.iter().any(|l| l.contains("generating a DEMO PKI")),
        "{lines:#?}"
    );
    assert_eq!(std::fs::read(pki.join("ca/root.crt")).unwrap(), root);
    assert!(sigterm(&mut child).success());
}

#[test]
fn whoami_with_an_unreachable_server_explains_the_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pki");
    congvan().args(["pki", "demo", "--out"]).arg(&out).run_ok();
    let run = congvan()
        .args(["whoami", "--profile"])
        .arg(out.join("orgs/hn/client.toml"))
        .args(["--server", "https://localhost:1"])
        .run_fails();
    let stderr = stderr(&run);
    assert!(
        stderr.starts_with("error: cannot reach https://localhost:1"),
        "{stderr}"
    );
}

/// `serve --data` naming another directory than the configuration's `data_dir` is refused
/// before anything is created: a server on the wrong directory would start an empty store.
#[test]
fn serve_refuses_data_dir_and_a_different_data_flag() {
    let (dir, pki) = crate::support::fresh_pki();
    // Next to the DEMO configuration, whose relative paths it keeps.
    let config = pki.server_dir().join("explicit.toml");
    let text = std::fs::read_to_string(pki.server_config()).unwrap();
    let configured = dir.path().join("configured-data");
    let text = text.replacen(
        "orgs = ",
        &format!("data_dir = {:?}\norgs = ", configured.to_str().unwrap()),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let other = dir.path().join("other-data");
    let out = congvan()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&other)
        .run_fails();
    let stderr = stderr(&out);
    assert!(
        stderr.contains("data_dir") && stderr.contains("--data"),
        "the message names both: {stderr}"
    );
    assert!(
        !other.exists(),
        "nothing was created in the --data directory"
    );
    assert!(
        !configured.exists(),
        "nothing was created in data_dir either"
    );
}
