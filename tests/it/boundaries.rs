//! The layer boundaries docs/ARCHITECTURE.md states as absences, checked by reading `src/`:
//! a crate named outside the modules allowed to know it fails this test.

/// (crate as written in Rust paths, the `src/` path prefixes allowed to name it).
const RULES: &[(&str, &[&str])] = &[
    ("axum", &["server/", "desk/"]),
    ("hyper", &["server/", "desk/"]),
    ("sled", &["store/", "ledger/"]),
    ("sequoia_openpgp", &["seal/"]),
    ("x509_parser", &["pki/"]),
    ("cryptoki", &["pki/token.rs"]),
    ("quick_xml", &["edxml/"]),
    ("printpdf", &["registers/pdf.rs"]),
    // Certificates are made and revoked only by `pki`; the binary maps its revocation
    // reasons to `pki::crl::Reason`.
    ("rcgen", &["pki/"]),
    // Arguments are parsed only by the binary (`bench::Mode` and the like parse with
    // `FromStr`).
    ("clap", &["bin/"]),
];

fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `line` (code, not a comment) names `krate` as a path root.
fn names(line: &str, krate: &str) -> bool {
    let code = line.split("//").next().unwrap_or_default();
    code.match_indices(krate).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = &code[at + krate.len()..];
        let starts_word = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        starts_word
            && (after.starts_with("::")
                || (code.trim_start().starts_with("use ") && after.starts_with([';', ' ', ':'])))
    })
}

#[test]
fn each_crate_is_named_only_where_the_architecture_allows() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    let mut files = Vec::new();
    sources(root, &mut files);
    assert!(
        files.len() > 50,
        "the scan found too few files: {}",
        files.len()
    );
    let mut broken = Vec::new();
    let mut seen = vec![false; RULES.len()];
    for file in &files {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        for (i, (krate, allowed)) in RULES.iter().enumerate() {
            if !text.lines().any(|l| names(l, krate)) {
                continue;
            }
            seen[i] = true;
            if !allowed.iter().any(|a| rel.starts_with(a)) {
                broken.push(format!("{rel} names {krate} (allowed only in {allowed:?})"));
            }
        }
    }
    // Every rule must match somewhere, or the scan is reading nothing.
    for (i, (krate, _)) in RULES.iter().enumerate() {
        assert!(seen[i], "no file names {krate}: the scan is broken");
    }
    assert!(
        broken.is_empty(),
        "layer boundaries broken:\n{}",
        broken.join("\n")
    );
}

/// The exchange layer (`src/exchange/`) holds the rules of the exchange without HTTP:
/// it names no HTTP crate and nothing of `server`, which calls it (docs/ARCHITECTURE.md).
#[test]
fn the_exchange_knows_no_http_and_no_server() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/exchange"));
    let mut files = Vec::new();
    sources(root, &mut files);
    assert!(files.len() >= 4, "the scan found too few exchange files");
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines() {
            for krate in [
                "axum",
                "hyper",
                "http",
                "http_body_util",
                "reqwest",
                "server",
            ] {
                if names(line, krate) {
                    broken.push(format!("{}: {}", file.display(), line.trim()));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "the exchange names HTTP or the server:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_scan_recognises_paths_and_ignores_comments_and_longer_names() {
    assert!(names("use sled::Tree;", "sled"));
    assert!(names("    let db = sled::open(p)?;", "sled"));
    assert!(!names("// sled::open is only called here", "sled"));
    assert!(!names("let not_sled::x = 1;", "sled"));
    assert!(!names("let sledge = 1;", "sled"));
}

/// URL paths of the API are written by the server's router, the typed client
/// (`client::endpoints`) and `api` (the payload path the server's answers name); everyone
/// else calls the typed client (issue 12: no `/v1/` literal elsewhere).
#[test]
fn api_paths_are_written_only_by_the_server_the_client_and_api() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    let mut files = Vec::new();
    sources(root, &mut files);
    let mut seen = false;
    let mut broken = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            if !code.contains("\"/v1/") {
                continue;
            }
            seen = true;
            if !["server/", "client/", "api.rs"]
                .iter()
                .any(|a| rel.starts_with(a))
            {
                broken.push(format!("{rel}: {}", line.trim()));
            }
        }
    }
    assert!(seen, "no /v1/ literal found anywhere: the scan is broken");
    assert!(
        broken.is_empty(),
        "API paths written outside server/, client/ and api.rs:\n{}",
        broken.join("\n")
    );
}
