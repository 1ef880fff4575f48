//! The list of outside tools (`tests/tools.txt`) is what `tests/run.sh` installs on a fresh
//! machine; a test that starts running a program the list does not name would pass here and
//! fail there. This reads the test sources and holds the two together.

use crate::support::listed_tools;

/// The program names that test sources hand to `Command::new`, `require` or `have` as
/// string literals.
fn programs_run_by_tests() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for call in ["Command::new(\"", "require(\"", "have(\""] {
            for (at, _) in source.match_indices(call) {
                let rest = &source[at + call.len()..];
                let name = &rest[..rest.find('"').unwrap()];
                found.push((name.to_owned(), file.clone()));
            }
        }
    }
    found
}

#[test]
fn every_tool_the_tests_run_is_listed() {
    let listed: Vec<String> = listed_tools().into_iter().map(|(cmd, _)| cmd).collect();
    let used = programs_run_by_tests();
    // The scan must see the tools we know the tests use, or it is scanning nothing.
    for known in ["gpg", "openssl", "curl", "testssl"] {
        assert!(
            used.iter().any(|(name, _)| name == known),
            "the scan no longer finds {known}: {used:?}"
        );
    }
    let unlisted: Vec<_> = used
        .iter()
        .filter(|(name, _)| !listed.contains(name))
        .collect();
    assert!(
        unlisted.is_empty(),
        "tests run programs that tests/tools.txt does not list (add each with its Debian \
         package): {unlisted:?}"
    );
}

#[test]
fn the_readme_shows_the_tool_list_and_the_test_command() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains("tests/run.sh"));
    for (_, package) in listed_tools() {
        assert!(
            readme.contains(&format!("`{package}`")),
            "README.md does not name the Debian package {package}"
        );
    }
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(
        ci.contains("tests/run.sh"),
        ".ci/run must call the README's test command"
    );
}
