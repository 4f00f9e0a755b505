//! The SCIM 2.0 connector against a real `scim2-server` on loopback (started by
//! `tests/servers.sh`): filter by userName, PATCH with `If-Match` (a stale ETag is refused and
//! retried, never overwritten), paging, and OAuth 2.0 client credentials from a token endpoint
//! on loopback. A missing server fails under `CI` and is SKIPPED otherwise.

mod support;

use gatehouse::connectors::AnyConnector;
use gatehouse::connectors::model::{Desired, Operation};
use gatehouse::store::api::ConfigVersion;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn connector(body: String) -> AnyConnector {
    AnyConnector::from_doc(&ConfigVersion {
        name: "crm".into(),
        kind: "connector".into(),
        version: 1,
        body,
        author: "test".into(),
        comment: String::new(),
        created_at: 0,
    })
    .expect("connector")
}

fn bearer(url: &str, token_file: &str, page_size: u32) -> AnyConnector {
    connector(format!(
        "kind = \"connector\"\nname = \"crm\"\nbackend = \"scim\"\n\n[scim]\nbase_url = \"{url}\"\ntoken = \"file:{token_file}\"\npage_size = {page_size}\n"
    ))
}

fn user(key: &str, name: &str) -> Desired {
    Desired {
        key: key.into(),
        exists: true,
        attributes: [("displayName".to_string(), name.to_string())].into(),
        disabled: Some(false),
        ..Desired::default()
    }
}

async fn create(c: &AnyConnector, want: &Desired) {
    let current = c.read(&want.key).await.expect("read");
    let plan = c.plan(current.as_ref(), want).expect("plan");
    c.apply(&plan, want).await.expect("apply");
}

#[tokio::test]
async fn a_stale_etag_is_refused_as_transient_and_the_next_plan_wins() {
    let Some((url, token_file)) = support::scim_server().await else {
        return;
    };
    let c = bearer(&url, &token_file, 50);
    let key = format!("etag{:06x}", fastrand::u32(..0xffffff));
    create(&c, &user(&key, "First")).await;
    let stale = c.read(&key).await.expect("read").expect("user");
    assert!(stale.etag.is_some(), "scim2-server offers ETags");

    // Someone changes the user out of band: the version moves.
    let other = user(&key, "Changed elsewhere");
    create(&c, &other).await;

    let want = user(&key, "Ours");
    let plan = c.plan(Some(&stale), &want).expect("plan");
    let Operation::Http {
        method, if_match, ..
    } = &plan.statements[0]
    else {
        panic!("an HTTP call");
    };
    assert_eq!(method, "PATCH");
    assert_eq!(if_match.as_deref(), stale.etag.as_deref());
    let err = c
        .apply(&plan, &want)
        .await
        .expect_err("stale version refused");
    assert!(err.to_string().contains("HTTP 412"), "{err}");
    assert!(err.is_transient(), "a retry plans again");
    assert_eq!(
        c.read(&key).await.expect("read").expect("user").attributes["displayName"],
        "Changed elsewhere"
    );
    create(&c, &want).await;
    assert_eq!(
        c.read(&key).await.expect("read").expect("user").attributes["displayName"],
        "Ours"
    );
}

#[tokio::test]
async fn list_pages_through_every_user_and_filter_finds_exactly_one() {
    let Some((url, token_file)) = support::scim_server().await else {
        return;
    };
    let c = bearer(&url, &token_file, 2);
    let tag = format!("{:06x}", fastrand::u32(..0xffffff));
    for i in 0..5 {
        create(&c, &user(&format!("page{tag}n{i}"), &format!("Page {i}"))).await;
    }
    let listed = c.list().await.expect("list");
    let mine = listed
        .iter()
        .filter(|a| a.key.starts_with(&format!("page{tag}")))
        .count();
    assert_eq!(mine, 5, "every page read");
    // userName prefixes of each other: the filter is exact.
    create(&c, &user(&format!("page{tag}n1x"), "Longer")).await;
    let one = c
        .read(&format!("page{tag}n1"))
        .await
        .expect("read")
        .expect("user");
    assert_eq!(one.attributes["displayName"], "Page 1");
}

/// A token endpoint on loopback: answers client-credentials requests with `token`, and
/// reports each request body.
async fn token_endpoint(token: String) -> (String, tokio::sync::mpsc::Receiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let _ = tx.send(request).await;
            let body = format!(
                "{{\"access_token\":\"{token}\",\"token_type\":\"Bearer\",\"expires_in\":3600}}"
            );
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (format!("http://{addr}/token"), rx)
}

#[tokio::test]
async fn oauth_client_credentials_fetch_the_token_once() {
    let Some((url, token_file)) = support::scim_server().await else {
        return;
    };
    let token = std::fs::read_to_string(&token_file).expect("token");
    let (token_url, mut requests) = token_endpoint(token.trim().to_string()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("client-secret");
    std::fs::write(&secret, "s3cret").expect("secret");
    let c = connector(format!(
        "kind = \"connector\"\nname = \"crm\"\nbackend = \"scim\"\n\n[scim]\nbase_url = \"{url}\"\n\n[scim.oauth]\ntoken_url = \"{token_url}\"\nclient_id = \"gatehouse\"\nclient_secret = \"file:{}\"\n",
        secret.display()
    ));
    let key = format!("oauth{:06x}", fastrand::u32(..0xffffff));
    create(&c, &user(&key, "Via OAuth")).await;
    assert!(c.read(&key).await.expect("read").is_some());
    let first = requests.recv().await.expect("token request");
    assert!(first.starts_with("POST /token"), "{first}");
    assert!(first.contains("grant_type=client_credentials"), "{first}");
    assert!(first.contains("client_id=gatehouse"), "{first}");
    assert!(first.contains("client_secret=s3cret"), "{first}");
    assert!(requests.try_recv().is_err(), "the token is reused");

    // A wrong token is refused by the server: the error names the call, not the token.
    let (bad_url, _rx) = token_endpoint("wrong".into()).await;
    let c = connector(format!(
        "kind = \"connector\"\nname = \"crm\"\nbackend = \"scim\"\n\n[scim]\nbase_url = \"{url}\"\n\n[scim.oauth]\ntoken_url = \"{bad_url}\"\nclient_id = \"gatehouse\"\nclient_secret = \"file:{}\"\n",
        secret.display()
    ));
    let err = c.read(&key).await.expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("HTTP 401") || text.contains("HTTP 403"),
        "{text}"
    );
    assert!(
        !text.contains("wrong") && !text.contains("s3cret"),
        "{text}"
    );
    assert!(!err.is_transient());
}
