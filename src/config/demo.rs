//! The configuration files the DEMO PKI writes (`congvan pki demo`): the server's
//! `congvan.toml` and each profile's `client.toml`. Their format belongs to `config`;
//! `pki::demo` makes the certificates and keys and writes these texts beside them.

use std::net::SocketAddr;

use crate::directory::OrgId;

/// The DEMO server configuration (`server/congvan.toml`) for a listening address.
pub fn server_toml(listen: SocketAddr) -> String {
    format!(
        r#"# DEMO server configuration written by `congvan pki demo`. Paths are relative to
# this file. Start the server with: congvan serve --config <this file>

listen = "{listen}"
# Data lives in "data" next to this file unless `serve --data DIR` says otherwise. Set
# data_dir here instead if you prefer; then --data may only repeat it.
orgs = "orgs.toml"
keys_dir = "keys"

[tls]
cert = "server.crt"
key = "server.key"
client_ca = ["../ca/root.crt"]
crls = ["../ca/root.crl", "../ca/intermediate.crl"]

[seal]
# The bundled OpenPGP cipher is not certified by the Government Cipher Committee: it never
# carries "Tối mật" or "Tuyệt mật". This DEMO allows it for "Mật" (see docs/SECURITY.md).
cipher = "openpgp"
certified = false
allow_uncertified_mat = true
"#
    )
}

/// The DEMO client profile of an organisation (`orgs/<id>/client.toml`).
pub fn org_profile_toml(id: &OrgId, name: &str, server_url: &str) -> String {
    format!(
        r#"# DEMO client profile for {name} ({id}), written by `congvan pki demo`.
# Paths are relative to this file. Use it as: congvan <command> --profile <this file>

server = "{server_url}"
ca = "../../ca/root.crt"
tls_cert = "tls.crt"
tls_key = "tls.key"
sign_cert = "sign.crt"
sign_key = "sign.key"
person_cert = "person.crt"
person_key = "person.key"
openpgp_key = "openpgp.key"
openpgp_cert = "openpgp.cert"
state_dir = "state"
"#
    )
}

/// The DEMO client profile of a security officer (`auditors/<scope>/client.toml`).
pub fn auditor_profile_toml(scope: &OrgId, name: &str, server_url: &str) -> String {
    format!(
        r#"# DEMO client profile for the security officer "{name}" (scope {scope}),
# written by `congvan pki demo`. Paths are relative to this file.

server = "{server_url}"
ca = "../../ca/root.crt"
tls_cert = "tls.crt"
tls_key = "tls.key"
state_dir = "state"
"#
    )
}
