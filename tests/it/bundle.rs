//! Profile bundles (issue 14, part 5): `congvan pki bundle` packs an organisation's
//! profile, certificates and keys into one password-protected file, and `congvan profile
//! install` unpacks it on the commune's machine. The real binary is run; the installed
//! profile then talks to a real server. Every refusal leaves nothing behind.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use congvan::client::Client;
use congvan::config::ClientProfile;

use crate::support::{Run as _, TestServer, assert_ok, congvan_command, fresh_pki, stderr};

const PASSWORD: &str = "hoa sen nở giữa đầm";

fn bundle(pki: &Path, org: &str, out: &Path, password_file: &Path) -> Output {
    congvan_command()
        .args(["pki", "bundle", org, "--pki"])
        .arg(pki)
        .arg("--out")
        .arg(out)
        .arg("--password-file")
        .arg(password_file)
        .run()
}

fn install(file: &Path, dir: &Path, password_file: &Path) -> Output {
    congvan_command()
        .args(["profile", "install"])
        .arg(file)
        .arg("--dir")
        .arg(dir)
        .arg("--password-file")
        .arg(password_file)
        .run()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundled_profile_installs_on_the_communes_machine_and_works() {
    let (dir, pki) = fresh_pki();
    let work = tempfile::tempdir().unwrap();
    let password = work.path().join("password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let file = work.path().join("hn.cm.chuc-son.congvan");

    assert_ok(&bundle(&pki.dir, "hn/cm/chuc-son", &file, &password));
    assert_eq!(mode(&file), 0o600, "the bundle holds keys: owner only");
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        bytes.starts_with(b"age-encryption.org/v1\n-> scrypt "),
        "an age file"
    );
    let key = std::fs::read(
        pki.org_dir(&"hn/cm/chuc-son".parse().unwrap())
            .join("tls.key"),
    )
    .unwrap();
    assert!(
        !bytes.windows(32).any(|w| key.windows(32).any(|k| k == w)),
        "no key material in the clear"
    );

    // A bare file name in the current directory works too.
    congvan_command()
        .current_dir(work.path())
        .args(["pki", "bundle", "hn/cm/chuc-son", "--pki"])
        .arg(&pki.dir)
        .args(["--out", "bare.congvan", "--password-file"])
        .arg(&password)
        .run_ok();
    assert!(work.path().join("bare.congvan").is_file());

    // Refused without overwriting: the bundle again to the same file.
    let again = bundle(&pki.dir, "hn/cm/chuc-son", &file, &password);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    // A wrong password: a clear message, nothing written.
    let wrong = work.path().join("wrong");
    std::fs::write(&wrong, "not the password at all\n").unwrap();
    let target = work.path().join("commune/profile");
    let out = install(&file, &target, &wrong);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
    assert!(!target.exists(), "nothing written on a wrong password");

    // A damaged file: refused, nothing written.
    let damaged = work.path().join("damaged.congvan");
    let mut altered = bytes.clone();
    let last = altered.len() - 20;
    altered[last] ^= 0x01;
    std::fs::write(&damaged, &altered).unwrap();
    let out = install(&damaged, &target, &password);
    assert!(!out.status.success(), "a damaged bundle is refused");
    assert!(!target.exists(), "nothing written from a damaged bundle");

    // The right password: keys 0600, the directory 0700, and the profile works.
    assert_ok(&install(&file, &target, &password));
    assert_eq!(mode(&target), 0o700);
    for key in ["tls.key", "sign.key", "person.key", "openpgp.key"] {
        assert_eq!(mode(&target.join(key)), 0o600, "{key}");
    }
    assert_eq!(mode(&target.join("tls.crt")), 0o644);
    let leftovers: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".congvan-profile-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no staging directory left: {leftovers:?}"
    );

    // Installing again refuses and leaves the installed profile as it was.
    let before = std::fs::read(target.join("client.toml")).unwrap();
    let out = install(&file, &target, &password);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read(target.join("client.toml")).unwrap(), before);

    let server = TestServer::start_in(dir, pki).await;
    let profile = ClientProfile::load(&target.join("client.toml")).unwrap();
    let client = Client::new(&profile, &server.url()).unwrap();
    let me: serde_json::Value = client.get_json("/v1/whoami").await.unwrap();
    assert_eq!(me["id"], "hn/cm/chuc-son", "{me}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_refuses_another_organisations_profile_and_a_short_password() {
    let (_dir, pki) = fresh_pki();
    let work = tempfile::tempdir().unwrap();
    let password = work.path().join("password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let out_file = work.path().join("x.congvan");
    let profile = pki.org_profile(&"hn/cm/chuc-son".parse().unwrap());
    let out = congvan_command()
        .args(["pki", "bundle", "hn/cm", "--profile"])
        .arg(&profile)
        .arg("--out")
        .arg(&out_file)
        .arg("--password-file")
        .arg(&password)
        .run();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not for hn/cm"), "{}", stderr(&out));
    assert!(!out_file.exists());

    std::fs::write(&password, "short\n").unwrap();
    let out = bundle(&pki.dir, "hn/cm/chuc-son", &out_file, &password);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("at least 12 characters"),
        "{}",
        stderr(&out)
    );
    assert!(!out_file.exists());
}
