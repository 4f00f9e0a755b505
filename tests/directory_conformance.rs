//! One conformance suite for every directory backend: the same people, managers and nested
//! groups asked of the static document, a real OpenLDAP `slapd` on loopback (started by
//! `tests/servers.sh`) and a Graph server of recorded response shapes on loopback. Plus what
//! only one backend does: Graph paging, 429 with Retry-After, an expired token, a user without a
//! manager (404), out of office; LDAP bind failures and unreachable servers; Graph over HTTPS
//! trusting only the document's `ca_file`.

mod directory_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use directory_support::graph_server::{GraphServer, SECRET};
use directory_support::*;
use gatehouse::directory::{DirectoryClient, DirectoryError, manager_chain};

fn logins(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The suite every backend passes.
async fn conformance(client: &DirectoryClient) {
    let name = client.name().to_string();
    let carol = client
        .person("carol")
        .await
        .unwrap()
        .expect("carol is known");
    assert_eq!(carol.login, "carol", "{name}");
    assert_eq!(carol.name, "Carol Castellanos", "{name}");
    assert_eq!(carol.email.as_deref(), Some("carol@example.com"), "{name}");
    assert_eq!(carol.manager.as_deref(), Some("alice"), "{name}");
    let by_mail = client.person("Carol@Example.com").await.unwrap();
    assert_eq!(
        by_mail.map(|p| p.login).as_deref(),
        Some("carol"),
        "{name}: by mail"
    );
    assert_eq!(client.person("nobody").await.unwrap(), None, "{name}");
    assert_eq!(
        client.person("x)(uid=*").await.unwrap(),
        None,
        "{name}: filter text is escaped"
    );

    let manager = client
        .manager_of("frank")
        .await
        .unwrap()
        .expect("frank has a manager");
    assert_eq!(manager.login, "carol", "{name}");
    assert_eq!(
        client.manager_of("erin").await.unwrap(),
        None,
        "{name}: erin has no manager"
    );
    assert_eq!(client.manager_of("nobody").await.unwrap(), None, "{name}");
    let chain: Vec<String> = manager_chain(client, "frank", 5)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.login)
        .collect();
    assert_eq!(
        chain,
        logins(&["carol", "alice", "grace"]),
        "{name}: manager chain"
    );
    assert_eq!(
        manager_chain(client, "frank", 2).await.unwrap().len(),
        2,
        "{name}"
    );

    assert_eq!(
        client.groups_of("erin").await.unwrap(),
        logins(&["all-staff", "security", "security-oncall"]),
        "{name}: erin is in security and all-staff through nested groups"
    );
    assert_eq!(
        client.groups_of("frank").await.unwrap(),
        Vec::<String>::new(),
        "{name}"
    );
    assert_eq!(
        client.group_members("security").await.unwrap(),
        Some(logins(&["carol", "dave", "erin"])),
        "{name}: members include the nested group's"
    );
    assert_eq!(
        client.group_members("all-staff").await.unwrap(),
        Some(logins(&["alice", "carol", "dave", "erin", "grace"])),
        "{name}: two levels of nesting"
    );
    assert_eq!(
        client.group_members("empty-group").await.unwrap(),
        Some(vec![]),
        "{name}: an empty group is known and empty"
    );
    assert_eq!(
        client.group_members("no-such-group").await.unwrap(),
        None,
        "{name}"
    );
    assert_eq!(
        client.group_owners("security").await.unwrap(),
        Some(logins(&["alice"])),
        "{name}"
    );
    assert_eq!(
        client.group_owners("no-such-group").await.unwrap(),
        None,
        "{name}"
    );

    // Cached: asking again does not go to the backend.
    let before = client.backend_calls();
    client.person("carol").await.unwrap();
    client.group_members("security").await.unwrap();
    client.groups_of("erin").await.unwrap();
    assert_eq!(client.backend_calls(), before, "{name}: answers are cached");
    client
        .test()
        .await
        .unwrap_or_else(|e| panic!("{name}: test: {e}"));
}

#[tokio::test]
async fn static_directory_conforms() {
    let client = DirectoryClient::from_document(&directory(STATIC)).unwrap();
    conformance(&client).await;
    assert!(client.out_of_office("dave").await.unwrap());
    assert!(!client.out_of_office("carol").await.unwrap());
}

#[tokio::test]
async fn ldap_directory_conforms_against_slapd() {
    let Some(url) = ldap_url() else { return };
    let (_guard, secret) = secret_file("gatehouse-test-bind");
    let client = DirectoryClient::from_document(&directory(&ldap_document(&url, &secret))).unwrap();
    conformance(&client).await;
    let said = client.test().await.unwrap();
    assert!(
        said.contains("6 people under ou=people,dc=example,dc=com"),
        "{said}"
    );
}

#[tokio::test]
async fn ldap_failures_name_the_directory_and_the_cause() {
    let Some(url) = ldap_url() else { return };
    let (_guard, wrong) = secret_file("not-the-password");
    let client = DirectoryClient::from_document(&directory(&ldap_document(&url, &wrong))).unwrap();
    let err = client.person("carol").await.unwrap_err();
    assert!(matches!(err, DirectoryError::Auth { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("directory slapd: ldap://127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains("bind as cn=gatehouse,ou=services,dc=example,dc=com answered 49"),
        "{text}"
    );
    assert!(
        !text.contains("not-the-password"),
        "the password is never shown: {text}"
    );

    // Nothing listens on port 1.
    let (_g, secret) = secret_file("gatehouse-test-bind");
    let down =
        DirectoryClient::from_document(&directory(&ldap_document("ldap://127.0.0.1:1", &secret)))
            .unwrap();
    let err = down.test().await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("directory slapd: cannot reach ldap://127.0.0.1:1: "),
        "{err}"
    );

    // A missing secret is reported when the client is built, naming the field.
    let missing = directory(&ldap_document(&url, "file:/nonexistent/gatehouse-secret"));
    let err = DirectoryClient::from_document(&missing).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("directory slapd: ldap.bind_password: "),
        "{err}"
    );
}

#[tokio::test]
async fn graph_directory_conforms_against_recorded_shapes() {
    let server = GraphServer::start().await;
    let (_guard, secret) = secret_file(SECRET);
    let client =
        DirectoryClient::from_document(&directory(&graph_document(&server.base, &secret))).unwrap();
    conformance(&client).await;
    // all-staff has five members: three pages of two were followed.
    assert!(
        client.out_of_office("dave").await.unwrap(),
        "automatic replies always on"
    );
    assert!(!client.out_of_office("carol").await.unwrap());
    // One token for the whole suite (plus the one `test` asks for explicitly).
    assert_eq!(server.control.token_requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn graph_over_https_trusts_the_documents_ca_file() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (Some((ca, leaf, key)), Some((other_ca, _, _))) = (
        test_ca(certs.path(), "graph"),
        test_ca(certs.path(), "other"),
    ) else {
        return;
    };
    let server = GraphServer::start_tls(leaf.as_ref(), key.as_ref()).await;
    assert!(server.base.starts_with("https://127.0.0.1:"));
    let (_guard, secret) = secret_file(SECRET);
    let with_ca = |ca: &str| {
        graph_document(&server.base, &secret).replace(
            "timeout = \"5s\"",
            &format!("timeout = \"5s\"\nca_file = \"{ca}\""),
        )
    };
    // The document's CA: the whole suite answers over HTTPS.
    let client = DirectoryClient::from_document(&directory(&with_ca(&ca))).unwrap();
    conformance(&client).await;
    // Another CA, or none (the system's CAs do not know the test CA): refused, nothing asked.
    for text in [with_ca(&other_ca), graph_document(&server.base, &secret)] {
        let client = DirectoryClient::from_document(&directory(&text)).unwrap();
        let err = client.person("grace").await.unwrap_err();
        assert!(matches!(err, DirectoryError::Unreachable { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn graph_waits_for_retry_after_and_refreshes_an_expired_token() {
    let server = GraphServer::start().await;
    let (_guard, secret) = secret_file(SECRET);
    let doc = directory(&graph_document(&server.base, &secret));
    let client = DirectoryClient::from_document(&doc).unwrap();
    assert!(client.person("grace").await.unwrap().is_some());
    assert_eq!(server.control.token_requests.load(Ordering::SeqCst), 1);

    // 429 with Retry-After: 1, twice: the lookup waits and succeeds.
    server.control.throttle_next.store(2, Ordering::SeqCst);
    let started = Instant::now();
    let members = client.group_members("all-staff").await.unwrap().unwrap();
    assert_eq!(members.len(), 5);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(server.control.throttled.load(Ordering::SeqCst), 2);

    // The token expires: a 401 InvalidAuthenticationToken, a new token, the same answer.
    server.control.expire_tokens();
    let erin = client.person("erin").await.unwrap().unwrap();
    assert_eq!(erin.manager, None, "erin's /manager answered 404");
    assert_eq!(server.control.expired_answers.load(Ordering::SeqCst), 1);
    assert_eq!(server.control.token_requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn graph_gives_up_after_bounded_retries_and_names_bad_credentials() {
    let server = GraphServer::start().await;
    let (_guard, secret) = secret_file(SECRET);
    let text = graph_document(&server.base, &secret)
        .replace("timeout = \"5s\"", "timeout = \"5s\"\nmax_retries = 1");
    let client = DirectoryClient::from_document(&directory(&text)).unwrap();
    server.control.throttle_next.store(5, Ordering::SeqCst);
    let err = client.person("grace").await.unwrap_err().to_string();
    assert!(
        err.starts_with("directory graph: GET http://127.0.0.1:"),
        "{err}"
    );
    assert!(
        err.contains("429 Too Many Requests: Too many requests."),
        "{err}"
    );

    let (_g, wrong) = secret_file("wrong-secret");
    let client =
        DirectoryClient::from_document(&directory(&graph_document(&server.base, &wrong))).unwrap();
    let err = client.test().await.unwrap_err();
    assert!(matches!(err, DirectoryError::Auth { .. }), "{err:?}");
    let err = err.to_string();
    assert!(
        err.contains("401 Unauthorized: AADSTS7000215: Invalid client secret"),
        "{err}"
    );
    assert!(!err.contains("wrong-secret"), "{err}");

    let down =
        DirectoryClient::from_document(&directory(&graph_document("http://127.0.0.1:1", &secret)))
            .unwrap();
    let err = down.person("grace").await.unwrap_err().to_string();
    assert!(
        err.starts_with("directory graph: cannot reach http://127.0.0.1:1/"),
        "{err}"
    );
}
