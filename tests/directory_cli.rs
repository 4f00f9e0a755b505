//! The directory and delegation verbs through the real binary: `directory show` (text and
//! JSON) against a static document and against slapd, `directory test`, clear failures for an
//! unknown person, an unknown directory and an unreachable server; `delegate`, `delegation
//! list|revoke`, and a loop refused with the reason.

mod directory_support;
mod support;

use std::path::Path;
use std::process::Output;

use support::*;

fn run(url: &str, dir: &Path, args: &[&str]) -> Output {
    gatehouse(url, &dir.join("cli.log"))
        .args(args)
        .output()
        .expect("run gatehouse")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A store with an admin and the given directory documents imported.
fn store_with(documents: &[(&str, String)]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    become_admin(&url, &dir.path().join("cli.log"));
    let configs = dir.path().join("configs");
    std::fs::create_dir(&configs).expect("mkdir");
    for (file, body) in documents {
        std::fs::write(configs.join(file), body).expect("write doc");
    }
    let o = run(
        &url,
        dir.path(),
        &["config", "import", configs.to_str().expect("utf8")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    (dir, url)
}

#[test]
fn directory_show_and_test_on_a_static_directory() {
    let (dir, url) = store_with(&[("people.toml", directory_support::STATIC.to_string())]);
    let o = run(
        &url,
        dir.path(),
        &["directory", "show", "frank@example.com"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "frank — Frank Fischer <frank@example.com> (directory static-people)\n\
         manager chain: carol (Carol Castellanos) → alice (Alice Albrecht) → grace (Grace Hopper)\n\
         groups: (none)\n\
         out of office: no\n"
    );
    let o = run(&url, dir.path(), &["directory", "show", "dave", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["person"]["manager"], "alice");
    assert_eq!(v["groups"], serde_json::json!(["all-staff", "security"]));
    assert_eq!(v["out_of_office"], true);
    assert_eq!(v["manager_chain"][1]["login"], "grace");

    let o = run(&url, dir.path(), &["directory", "show", "zed"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("looking up \"zed\": no directory knows them (searched: static-people)"),
        "{}",
        text(&o)
    );
    let o = run(&url, dir.path(), &["directory", "test", "static-people"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("ok: static directory: 6 people"),
        "{}",
        text(&o)
    );
    let o = run(&url, dir.path(), &["directory", "test", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("no directory named \"nope\" (the store holds: static-people)"),
        "{}",
        text(&o)
    );
}

#[test]
fn directory_show_against_slapd_and_an_unreachable_server() {
    let Some(ldap) = directory_support::ldap_url() else {
        return;
    };
    let (_secret_dir, secret) = directory_support::secret_file("gatehouse-test-bind");
    let (dir, url) = store_with(&[
        (
            "slapd.toml",
            directory_support::ldap_document(&ldap, &secret),
        ),
        (
            "down.toml",
            directory_support::ldap_document("ldap://127.0.0.1:1", &secret)
                .replace("name = \"slapd\"", "name = \"down\""),
        ),
    ]);
    let o = run(
        &url,
        dir.path(),
        &["directory", "show", "erin", "--directory", "slapd"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("erin — Erin Ó Briain <erin@example.com> (directory slapd)\n"),
        "{out}"
    );
    assert!(out.contains("manager chain: (no line manager)\n"), "{out}");
    assert!(
        out.contains("groups: all-staff, security, security-oncall\n"),
        "{out}"
    );
    let o = run(&url, dir.path(), &["directory", "test", "slapd"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&url, dir.path(), &["directory", "test", "down"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o)
            .contains("testing directory down: directory down: cannot reach ldap://127.0.0.1:1"),
        "{}",
        text(&o)
    );
    assert!(
        !text(&o).contains("gatehouse-test-bind"),
        "the password is never printed"
    );
}

#[test]
fn ldaps_and_starttls_verify_the_server_certificate() {
    let (Some(plain), Some((ldaps, ca))) =
        (directory_support::ldap_url(), directory_support::ldaps())
    else {
        return;
    };
    let (_secret_dir, secret) = directory_support::secret_file("gatehouse-test-bind");
    let (dir, url) = store_with(&[
        (
            "tls.toml",
            directory_support::ldap_document(&ldaps, &secret)
                .replace("name = \"slapd\"", "name = \"tls\""),
        ),
        (
            "starttls.toml",
            directory_support::ldap_document(&plain, &secret)
                .replace("name = \"slapd\"", "name = \"starttls\"")
                .replace("page_size = 2", "page_size = 2\nstarttls = true"),
        ),
    ]);
    // Trusting the test CA (rustls reads SSL_CERT_FILE): both connect.
    for name in ["tls", "starttls"] {
        let o = gatehouse(&url, &dir.path().join("cli.log"))
            .env("SSL_CERT_FILE", &ca)
            .args(["directory", "test", name])
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        assert!(
            text(&o).contains("6 people under ou=people"),
            "{}",
            text(&o)
        );
        let o = gatehouse(&url, &dir.path().join("cli.log"))
            .env("SSL_CERT_FILE", &ca)
            .args(["directory", "show", "carol", "--directory", name])
            .output()
            .expect("run");
        assert!(
            text(&o).contains("manager chain: alice (Alice Albrecht)"),
            "{}",
            text(&o)
        );
    }
    // Without it the certificate is not trusted and nothing is asked.
    let o = gatehouse(&url, &dir.path().join("cli.log"))
        .env_remove("SSL_CERT_FILE")
        .args(["directory", "test", "tls"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("directory tls: cannot reach ldaps://127.0.0.1:"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_ca_file_on_the_document_is_trusted_without_ssl_cert_file() {
    let (Some(plain), Some((ldaps, ca))) =
        (directory_support::ldap_url(), directory_support::ldaps())
    else {
        return;
    };
    let (_secret_dir, secret) = directory_support::secret_file("gatehouse-test-bind");
    let with_ca = |url: &str, name: &str, extra: &str| {
        directory_support::ldap_document(url, &secret)
            .replace("name = \"slapd\"", &format!("name = \"{name}\""))
            .replace(
                "page_size = 2",
                &format!("page_size = 2\n{extra}ca_file = \"{ca}\""),
            )
    };
    let (dir, url) = store_with(&[
        ("tls.toml", with_ca(&ldaps, "tls", "")),
        (
            "starttls.toml",
            with_ca(&plain, "starttls", "starttls = true\n"),
        ),
        (
            "untrusted.toml",
            directory_support::ldap_document(&ldaps, &secret)
                .replace("name = \"slapd\"", "name = \"untrusted\""),
        ),
    ]);
    // The CA comes from the document alone: SSL_CERT_FILE is not set.
    for name in ["tls", "starttls"] {
        let o = gatehouse(&url, &dir.path().join("cli.log"))
            .env_remove("SSL_CERT_FILE")
            .args(["directory", "show", "carol", "--directory", name])
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        assert!(
            text(&o).contains("manager chain: alice (Alice Albrecht)"),
            "{name}: {}",
            text(&o)
        );
    }
    // The same server without the ca_file is refused.
    let o = gatehouse(&url, &dir.path().join("cli.log"))
        .env_remove("SSL_CERT_FILE")
        .args(["directory", "test", "untrusted"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("directory untrusted: cannot reach ldaps://127.0.0.1:"),
        "{}",
        text(&o)
    );
    // `config check` reads the file: a missing one is named at its line and column.
    let docs = dir.path().join("check");
    std::fs::create_dir(&docs).expect("mkdir");
    let good = docs.join("good.toml");
    std::fs::write(&good, with_ca(&ldaps, "good", "")).expect("write");
    let o = run(
        &url,
        dir.path(),
        &["config", "check", good.to_str().expect("utf8")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let bad = docs.join("bad.toml");
    let missing = dir.path().join("no-such-ca.pem");
    let body = with_ca(&ldaps, "bad", "").replace(&ca, missing.to_str().expect("utf8"));
    let line = body
        .lines()
        .position(|l| l.starts_with("ca_file"))
        .expect("ca_file line")
        + 1;
    std::fs::write(&bad, &body).expect("write");
    let o = run(
        &url,
        dir.path(),
        &["config", "check", bad.to_str().expect("utf8")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let expected = format!(
        "{}:{line}:11: ldap.ca_file: {}",
        bad.display(),
        missing.display()
    );
    assert!(text(&o).contains(&expected), "{expected} in {}", text(&o));
    let garbled = dir.path().join("garbled.pem");
    std::fs::write(&garbled, "no certificate here\n").expect("write");
    std::fs::write(
        &bad,
        body.replace(
            missing.to_str().expect("utf8"),
            garbled.to_str().expect("utf8"),
        ),
    )
    .expect("write");
    let o = run(
        &url,
        dir.path(),
        &["config", "check", bad.to_str().expect("utf8")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no PEM certificate in the file"),
        "{}",
        text(&o)
    );
}

#[test]
fn delegate_list_revoke_and_a_refused_loop() {
    let (dir, url) = store_with(&[]);
    for name in ["ann", "dan"] {
        let o = run(
            &url,
            dir.path(),
            &["operator", "add", name, "--role", "approver"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let o = run(
        &url,
        dir.path(),
        &[
            "delegate",
            "ann",
            "dan",
            "--until",
            "7d",
            "--reason",
            "parental leave",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).starts_with("delegation 1: dan decides for ann until "),
        "{}",
        text(&o)
    );
    let o = run(
        &url,
        dir.path(),
        &["delegate", "dan", "ann", "--until", "2099-01-01"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("refused: dan → ann would close a loop (ann → dan)"),
        "{}",
        text(&o)
    );
    let o = run(
        &url,
        dir.path(),
        &["delegate", "ann", "zed", "--until", "1d"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("zed is not an operator"), "{}", text(&o));
    let o = run(
        &url,
        dir.path(),
        &["delegate", "ann", "dan", "--until", "soon"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("--until: \"soon\" is not a time"),
        "{}",
        text(&o)
    );
    let o = run(&url, dir.path(), &["delegation", "list"]);
    assert!(text(&o).contains("1  ann → dan  until "), "{}", text(&o));
    assert!(
        text(&o).contains("(in force; by ") && text(&o).contains("): parental leave"),
        "{}",
        text(&o)
    );
    let o = run(&url, dir.path(), &["delegation", "revoke", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&url, dir.path(), &["delegation", "list"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "no delegations in force\n"
    );
    let o = run(&url, dir.path(), &["delegation", "list", "--all"]);
    assert!(text(&o).contains("(revoked "), "{}", text(&o));
}
