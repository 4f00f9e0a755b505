//! Helpers for the directory tests: the three backends built on the same people (a static
//! document, slapd from `tests/servers.sh`, a Graph server of recorded shapes on loopback).
#![allow(dead_code)]

pub mod graph_server;

use gatehouse::domain::config::{ConfigDocument, Directory, check_document};

/// True when running under CI, where a missing server is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Parse a directory document (panics with the diagnostics: test input).
pub fn directory(text: &str) -> Directory {
    match check_document("test.toml", text) {
        Ok(ConfigDocument::Directory(d)) => d,
        other => panic!("not a directory document: {other:?}"),
    }
}

/// The static form of the fixture people: groups listed flat (static groups do not nest).
pub const STATIC: &str = r#"kind = "directory"
name = "static-people"
backend = "static"

[[people]]
login = "grace"
name = "Grace Hopper"
email = "grace@example.com"
groups = ["all-staff"]

[[people]]
login = "alice"
name = "Alice Albrecht"
email = "alice@example.com"
manager = "grace"
groups = ["all-staff"]

[[people]]
login = "carol"
name = "Carol Castellanos"
email = "carol@example.com"
manager = "alice"
groups = ["security", "all-staff"]

[[people]]
login = "dave"
name = "Dave Døssing"
email = "dave@example.com"
manager = "alice"
groups = ["security", "all-staff"]
out_of_office = true

[[people]]
login = "erin"
name = "Erin Ó Briain"
email = "erin@example.com"
groups = ["security-oncall", "security", "all-staff"]

[[people]]
login = "frank"
name = "Frank Fischer"
email = "frank@example.com"
manager = "carol"

[[groups]]
name = "security"
owners = ["alice"]

[[groups]]
name = "security-oncall"
owners = ["carol"]

[[groups]]
name = "empty-group"
"#;

/// The slapd URL from `tests/servers.sh`, or `None` (skip) outside CI.
pub fn ldap_url() -> Option<String> {
    match std::env::var("GATEHOUSE_TEST_LDAP_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if in_ci() {
                panic!(
                    "GATEHOUSE_TEST_LDAP_URL is not set under CI: run `bash tests/servers.sh start`"
                );
            }
            eprintln!("SKIPPED: GATEHOUSE_TEST_LDAP_URL is not set (bash tests/servers.sh start)");
            None
        }
    }
}

/// The LDAPS URL of slapd and its test CA file, or `None` (skip) outside CI.
pub fn ldaps() -> Option<(String, String)> {
    match (
        std::env::var("GATEHOUSE_TEST_LDAPS_URL"),
        std::env::var("GATEHOUSE_TEST_LDAP_CA"),
    ) {
        (Ok(url), Ok(ca)) if !url.is_empty() && !ca.is_empty() => Some((url, ca)),
        _ => {
            if in_ci() {
                panic!("GATEHOUSE_TEST_LDAPS_URL / GATEHOUSE_TEST_LDAP_CA are not set under CI");
            }
            eprintln!("SKIPPED: GATEHOUSE_TEST_LDAPS_URL is not set (bash tests/servers.sh start)");
            None
        }
    }
}

/// An LDAP directory document for the slapd fixture; `secret` is the bind password's reference.
pub fn ldap_document(url: &str, secret: &str) -> String {
    format!(
        r#"kind = "directory"
name = "slapd"
backend = "ldap"
cache_for = "1m"

[ldap]
url = "{url}"
bind_dn = "cn=gatehouse,ou=services,dc=example,dc=com"
bind_password = "{secret}"
base_dn = "ou=people,dc=example,dc=com"
group_base_dn = "ou=groups,dc=example,dc=com"
page_size = 2
"#
    )
}

/// A Graph directory document for the loopback server; `secret` is the client secret's reference.
pub fn graph_document(base: &str, secret: &str) -> String {
    format!(
        r#"kind = "directory"
name = "graph"
backend = "graph"

[graph]
tenant_id = "00000000-0000-0000-0000-000000000001"
client_id = "00000000-0000-0000-0000-000000000002"
client_secret = "{secret}"
base_url = "{base}/v1.0"
login_url = "{base}"
timeout = "5s"
"#
    )
}

/// A `file:` reference to a temporary file holding `value` (kept alive by the returned guard).
pub fn secret_file(value: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("secret");
    std::fs::write(&path, value).expect("write secret");
    let reference = format!("file:{}", path.display());
    (dir, reference)
}

/// A throwaway test CA and a leaf certificate for 127.0.0.1 signed by it (rustls refuses a
/// self-signed CA as a server certificate), made with `openssl` in `dir`: answers the CA
/// file, the leaf's chain and its key; `None` (skip) when openssl is missing, outside CI.
pub fn test_ca(dir: &std::path::Path, name: &str) -> Option<(String, String, String)> {
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
    };
    match run(&["version"]) {
        Ok(o) if o.status.success() => {}
        _ => {
            if in_ci() {
                panic!("openssl is needed to make a test CA under CI");
            }
            eprintln!("SKIPPED: openssl is not installed");
            return None;
        }
    }
    let (ca, ca_key) = (format!("{name}-ca.pem"), format!("{name}-ca.key"));
    let (leaf, key, csr, ext) = (
        format!("{name}-leaf.pem"),
        format!("{name}-leaf.key"),
        format!("{name}-leaf.csr"),
        format!("{name}-leaf.ext"),
    );
    std::fs::write(
        dir.join(&ext),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("write ext");
    let subject = format!("/CN={name} test CA");
    for args in [
        vec![
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "2",
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        vec![
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=localhost",
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &leaf,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    ] {
        let o = run(&args).expect("run openssl");
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let path = |f: &str| dir.join(f).display().to_string();
    Some((path(&ca), path(&leaf), path(&key)))
}
