//! The certs/README.md recipe for a real CA (issue 14, part 4), run exactly as written:
//! the shell blocks between its `recipe` markers make the CAs, CRLs, the server's and one
//! organisation's certificates and both configuration files; the `recipe:ocsp` block runs
//! the issuing CA's OCSP responder. A server started on the result accepts a document
//! signed with the recipe's seal and person certificates over a TLS connection made with
//! the recipe's client profile, and (with `[ocsp] prefer`) stores both signers' OCSP
//! responses.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use congvan::client::Client;
use congvan::config::{ClientProfile, ServerConfig};
use congvan::document::Role;

use crate::ocsp::Responder;
use crate::support::{Run as _, SAMPLE_ORGS, TestDoc, require};

const README: &str = include_str!("../../certs/README.md");

/// The ```sh blocks between `<!-- NAME -->` and `<!-- /NAME -->`, joined.
fn blocks(name: &str) -> String {
    let section = README
        .split(&format!("<!-- {name} -->\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("certs/README.md has no <!-- {name} --> marker"))
        .split(&format!("<!-- /{name} -->"))
        .next()
        .unwrap();
    let mut script = String::new();
    for (i, part) in section.split("```sh\n").enumerate().skip(1) {
        let body = part.split("\n```").next().unwrap();
        script.push_str(&format!("# --- block {i}\n{body}\n"));
    }
    assert!(!script.is_empty(), "no sh block inside <!-- {name} -->");
    script
}

fn env_for(command: &mut Command, dir: &Path, ocsp_port: u16) {
    command
        .current_dir(dir)
        .env("SERVER_NAME", "localhost")
        .env("SERVER_IP", "127.0.0.1")
        .env("ORG", "hn/cm")
        .env("OCSP_URL", format!("http://127.0.0.1:{ocsp_port}"))
        .env("OCSP_PORT", ocsp_port.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certs_readme_recipe_makes_a_pki_the_server_accepts() {
    if !require("openssl") || !require("sh") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::create_dir_all(dir.join("server")).unwrap();
    std::fs::write(dir.join("server/orgs.toml"), SAMPLE_ORGS).unwrap();
    let ocsp_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    let mut sh = Command::new("sh");
    sh.args(["-e", "-c", &blocks("recipe")]);
    env_for(&mut sh, dir, ocsp_port);
    // The recipe failed if this does: its output is shown.
    sh.run_ok();

    let mut responder = Command::new("sh");
    responder.args(["-e", "-c", &blocks("recipe:ocsp")]);
    env_for(&mut responder, dir, ocsp_port);
    let _responder = tokio::task::block_in_place(|| Responder::start(responder));

    let mut config = ServerConfig::load(&dir.join("server/congvan.toml")).unwrap();
    // Exercise the responder too: the recipe's CRLs already cover every leaf.
    config.ocsp.prefer = true;
    let server = congvan::server::Server::build(&config).unwrap();
    let listener = congvan::server::bind(([127, 0, 0, 1], 0).into()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async {
        let _ = stopped.await;
    }));

    let org = dir.join("orgs/hn.cm");
    let profile = ClientProfile::load(&org.join("client.toml")).unwrap();
    let client = Client::new(&profile, &format!("https://localhost:{port}"))
        .unwrap()
        .with_cipher(Arc::new(crate::support::StandInCertified::default()));
    let whoami: serde_json::Value = client.get_json("/v1/whoami").await.unwrap();
    assert_eq!(whoami["id"], "hn/cm", "{whoami}");

    // The recipe's person is hn/cm's competent person of the sample tree.
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let signatures = vec![
        doc.raw_signature(Role::Organization, &org, "sign"),
        doc.raw_signature(Role::Person, &org, "person"),
    ];
    let (status, answer) = client
        .post_json::<_, serde_json::Value>("/v1/documents", &doc.body(&signatures))
        .await
        .unwrap();
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = doc.upload(&client, doc.payload.clone()).await.unwrap();
    assert!(status == 200 || status == 201, "{answer}");
    let view: serde_json::Value = client
        .get_json(&format!("/v1/documents/{}", doc.id()))
        .await
        .unwrap();
    assert_eq!(view["state"], "accepted", "{view}");
    assert_eq!(
        view["ocsp"].as_array().map(Vec::len),
        Some(2),
        "both signers were checked with the recipe's OCSP responder: {view}"
    );

    let _ = stop.send(());
    let _ = task.await;
}
