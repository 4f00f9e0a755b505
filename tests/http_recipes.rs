//! The HTTP connector's shipped recipes against recorded request/response shapes served on
//! loopback (never the live services): each recipe's calls are checked (method, path and
//! query, authentication header, JSON body), and each meets a 429 with `Retry-After` (waited
//! for when short, a transient failure when long) and a 500 (transient, the service's message
//! kept). Other 4xx answers are permanent with the service's message.

mod http_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gatehouse::connectors::model::{Account, Desired};
use gatehouse::connectors::{AnyConnector, ConnectorError};
use gatehouse::store::api::ConfigVersion;
use http_support::{Reply, Script, expect, keycloak};
use serde_json::json;

fn doc(name: &str, body: String) -> ConfigVersion {
    ConfigVersion {
        name: name.into(),
        kind: "connector".into(),
        version: 1,
        body,
        author: "test".into(),
        comment: String::new(),
        created_at: 0,
    }
}

fn set(items: &[&str]) -> std::collections::BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn apply(c: &AnyConnector, want: &Desired) -> Result<Option<Account>, ConnectorError> {
    let current = c.read(&want.key).await?;
    let plan = c.plan(current.as_ref(), want)?;
    c.apply(&plan, want).await
}

// ----------------------------------------------------------------------------------------
// Keycloak

async fn keycloak() -> (AnyConnector, Arc<keycloak::Realm>, tempfile::NamedTempFile) {
    let (base, realm) = keycloak::start().await;
    let secret = http_support::secret_file(keycloak::SECRET);
    let body = keycloak::document(&base, &secret.path().display().to_string());
    let c = AnyConnector::from_doc(&doc("keycloak", body)).expect("connector");
    (c, realm, secret)
}

#[tokio::test]
async fn keycloak_joiner_mover_leaver_with_one_cached_token() {
    let (c, realm, _secret) = keycloak().await;
    let joiner = Desired {
        key: "gnunez".into(),
        exists: true,
        attributes: [
            ("firstName".to_string(), "Gina \"G\" Núñez".to_string()),
            ("email".to_string(), "gnunez@example.com".to_string()),
        ]
        .into(),
        disabled: Some(false),
        ..Desired::default()
    };
    // The plan is the exact call; no header, so neither the client secret nor the token.
    let plan = c.plan(None, &joiner).expect("plan");
    let shown = serde_json::to_string(&plan).expect("json");
    assert!(
        shown.contains(r#""method":"POST","path":"/users""#),
        "{shown}"
    );
    assert!(
        !shown.contains(keycloak::SECRET) && !shown.contains("kc-access-token"),
        "{shown}"
    );
    let back = apply(&c, &joiner)
        .await
        .expect("create")
        .expect("read back");
    assert_eq!(back.attributes["firstName"], "Gina \"G\" Núñez");
    assert!(back.id.as_deref().is_some_and(|id| id.starts_with("u-")));
    let grants = Desired {
        key: "gnunez".into(),
        exists: true,
        partial: true,
        grant: set(&["employees", "developers"]),
        ..Desired::default()
    };
    let back = apply(&c, &grants).await.expect("grant").expect("account");
    assert_eq!(back.grants, set(&["employees", "developers"]));
    let leaver = Desired {
        key: "gnunez".into(),
        exists: true,
        partial: true,
        disabled: Some(true),
        revoke: set(&["developers"]),
        ..Desired::default()
    };
    let back = apply(&c, &leaver).await.expect("leaver").expect("account");
    assert_eq!(
        (back.disabled, back.grants),
        (Some(true), set(&["employees"]))
    );
    let listed = c.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].grants, set(&["employees"]));
    assert_eq!(
        realm.token_requests.load(Ordering::SeqCst),
        1,
        "the token is cached"
    );
    assert!(realm.api_requests.load(Ordering::SeqCst) > 8);
    assert!(realm.problems().is_empty(), "{:?}", realm.problems());
}

#[tokio::test]
async fn keycloak_429_500_and_409() {
    let (c, realm, _secret) = keycloak().await;
    realm.add_user("taken", "Someone");
    // A short Retry-After is waited for, then the call succeeds.
    realm
        .fail_next
        .lock()
        .unwrap()
        .push_back(Reply::throttled(1, json!({ "error": "too many requests" })));
    let started = Instant::now();
    let found = c
        .read("taken")
        .await
        .expect("read after 429")
        .expect("found");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(found.attributes["firstName"], "Someone");
    // A long one ends the attempt as transient (the job queue retries it).
    realm.fail_next.lock().unwrap().push_back(Reply::throttled(
        3600,
        json!({ "error": "too many requests" }),
    ));
    let err = c.read("taken").await.expect_err("429");
    assert!(err.is_transient(), "{err}");
    assert!(
        err.to_string().contains("HTTP 429 (retry after 3600 s)"),
        "{err}"
    );
    // A 500 is transient and keeps the service's message.
    realm
        .fail_next
        .lock()
        .unwrap()
        .push_back(Reply::json(500, json!({ "errorMessage": "unknown_error" })));
    let err = c.read("taken").await.expect_err("500");
    assert!(err.is_transient(), "{err}");
    assert_eq!(
        err.to_string(),
        "connector keycloak: GET /users?username=taken&exact=true&briefRepresentation=false: HTTP 500: unknown_error"
    );
    // Creating over an existing user (planned without it): a permanent 409 with Keycloak's words.
    let want = Desired {
        key: "taken".into(),
        exists: true,
        disabled: Some(false),
        ..Desired::default()
    };
    let plan = c.plan(None, &want).expect("plan");
    let err = c.apply(&plan, &want).await.expect_err("409");
    assert!(!err.is_transient(), "{err}");
    assert_eq!(
        err.to_string(),
        "connector keycloak: POST /users: HTTP 409: User exists with same username"
    );
    assert!(realm.problems().is_empty(), "{:?}", realm.problems());
}

#[tokio::test]
async fn keycloak_revoked_token_is_replaced_once() {
    let (c, realm, _secret) = keycloak().await;
    realm.add_user("taken", "Someone");
    assert!(c.read("taken").await.expect("read").is_some());
    realm.revoke_tokens();
    assert!(
        c.read("taken")
            .await
            .expect("read with a new token")
            .is_some()
    );
    assert_eq!(realm.token_requests.load(Ordering::SeqCst), 2);
    assert!(realm.problems().is_empty(), "{:?}", realm.problems());
}

#[tokio::test]
async fn keycloak_wrong_client_secret_is_a_permanent_error() {
    let (base, _realm) = keycloak::start().await;
    let secret = http_support::secret_file("wrong");
    let body = keycloak::document(&base, &secret.path().display().to_string());
    let c = AnyConnector::from_doc(&doc("keycloak", body)).expect("connector");
    let err = c.read("anyone").await.expect_err("401");
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "connector keycloak: POST (token endpoint): HTTP 401: Invalid client or Invalid client credentials"
    );
    assert!(
        !format!("{err:?}").contains("wrong"),
        "no secret in errors: {err:?}"
    );
}

// ----------------------------------------------------------------------------------------
// Microsoft Graph

const GRAPH_TOKEN: &str = "graph-token-1";
const GROUP: &str = "6e1f0d1c-0000-4000-8000-00000000e001";
const TEAM: &str = "6e1f0d1c-0000-4000-8000-00000000e002";
const SELECT: &str =
    "$select=id,userPrincipalName,displayName,department,jobTitle,mail,accountEnabled";

fn graph_user(display: &str, enabled: bool) -> serde_json::Value {
    json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id,userPrincipalName,displayName,department,jobTitle,mail,accountEnabled)/$entity",
        "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
        "userPrincipalName": "gnunez@contoso.com",
        "displayName": display,
        "department": "Engineering",
        "jobTitle": null,
        "mail": "gnunez@contoso.com",
        "accountEnabled": enabled
    })
}

fn graph_groups(ids: &[&str]) -> serde_json::Value {
    json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups(id)",
        "value": ids.iter().map(|id| json!({ "@odata.type": "#microsoft.graph.group", "id": id })).collect::<Vec<_>>()
    })
}

async fn graph(script: &Arc<Script>) -> (AnyConnector, String, tempfile::NamedTempFile) {
    let base = http_support::serve_script(script).await;
    let secret = http_support::secret_file("graph-secret");
    let token_base = format!("{base}/tenant");
    let body = http_support::recipe(
        "microsoft-graph.toml",
        &[
            (
                "https://graph.microsoft.com/v1.0\"",
                &format!("{base}/v1.0\""),
            ),
            ("https://login.microsoftonline.com", &token_base),
            (
                "env:GRAPH_CLIENT_SECRET",
                &format!("file:{}", secret.path().display()),
            ),
        ],
    );
    let c = AnyConnector::from_doc(&doc("microsoft-graph", body)).expect("connector");
    (c, base, secret)
}

fn graph_token() -> http_support::Exchange {
    expect(
        "POST",
        "/tenant/00000000-0000-0000-0000-000000000000/oauth2/v2.0/token",
        Some(json!(
            "grant_type=client_credentials&client_id=11111111-1111-1111-1111-111111111111&client_secret=graph-secret&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
        )),
        Reply::json(
            200,
            json!({ "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": GRAPH_TOKEN }),
        ),
    )
}

fn read_user(reply: Reply) -> http_support::Exchange {
    expect(
        "GET",
        &format!("/v1.0/users/gnunez%40contoso.com?{SELECT}"),
        None,
        reply,
    )
}

fn member_of(ids: &[&str]) -> http_support::Exchange {
    expect(
        "GET",
        "/v1.0/users/87d349ed-44d7-43e1-9a83-5f2406dee5bd/memberOf/microsoft.graph.group?$select=id&$top=999",
        None,
        Reply::json(200, graph_groups(ids)),
    )
}

#[tokio::test]
async fn graph_update_group_and_teams_membership_and_leaver() {
    let script = Arc::new(Script::default());
    let (c, _base, _secret) = graph(&script).await;
    let uid = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";
    let not_found = json!({ "error": { "code": "Request_ResourceNotFound", "message": "Resource 'nobody@contoso.com' does not exist or one of its queried reference-property objects are not present.", "innerError": { "request-id": "x" } } });
    script.push([
        graph_token(),
        expect(
            "GET",
            &format!("/v1.0/users/nobody%40contoso.com?{SELECT}"),
            None,
            Reply::json(404, not_found),
        ),
    ]);
    assert_eq!(c.read("nobody@contoso.com").await.expect("read"), None);
    // Mover: a new display name, the engineering group and the engineering team.
    script.push([
        read_user(Reply::json(200, graph_user("Gina Nunez", true))),
        member_of(&[]),
        expect(
            "PATCH",
            &format!("/v1.0/users/{uid}"),
            Some(json!({ "displayName": "Gina Núñez-O'Brien" })),
            Reply::empty(204),
        ),
        expect(
            "POST",
            &format!("/v1.0/groups/{GROUP}/members/$ref"),
            Some(json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{uid}") })),
            Reply::empty(204),
        ),
        // Throttled once: Retry-After 1 is waited for.
        expect(
            "POST",
            &format!("/v1.0/groups/{TEAM}/members/$ref"),
            Some(json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{uid}") })),
            Reply::throttled(1, json!({ "error": { "code": "TooManyRequests", "message": "Too many requests" } })),
        ),
        expect(
            "POST",
            &format!("/v1.0/groups/{TEAM}/members/$ref"),
            Some(json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{uid}") })),
            Reply::empty(204),
        ),
        read_user(Reply::json(200, graph_user("Gina Núñez-O'Brien", true))),
        member_of(&[GROUP, TEAM]),
    ]);
    let mover = Desired {
        key: "gnunez@contoso.com".into(),
        exists: true,
        partial: true,
        attributes: [("displayName".to_string(), "Gina Núñez-O'Brien".to_string())].into(),
        grant: set(&["engineering", "engineering-team"]),
        ..Desired::default()
    };
    let back = apply(&c, &mover).await.expect("mover").expect("account");
    assert_eq!(back.grants, set(&["engineering", "engineering-team"]));
    *script.auth.lock().unwrap() = Some(("Authorization".into(), format!("Bearer {GRAPH_TOKEN}")));
    // Leaver: disable and leave the team; a 500 on the first try is transient, the job retries.
    let leaver = Desired {
        key: "gnunez@contoso.com".into(),
        exists: true,
        partial: true,
        disabled: Some(true),
        revoke: set(&["engineering-team"]),
        ..Desired::default()
    };
    script.push([
        read_user(Reply::json(200, graph_user("Gina Núñez-O'Brien", true))),
        member_of(&[GROUP, TEAM]),
        expect(
            "PATCH",
            &format!("/v1.0/users/{uid}"),
            Some(json!({ "accountEnabled": false })),
            Reply::json(500, json!({ "error": { "code": "generalException", "message": "General exception while processing." } })),
        ),
    ]);
    let err = apply(&c, &leaver).await.expect_err("500");
    assert!(err.is_transient(), "{err}");
    assert!(
        err.to_string()
            .ends_with("HTTP 500: General exception while processing."),
        "{err}"
    );
    script.push([
        read_user(Reply::json(200, graph_user("Gina Núñez-O'Brien", true))),
        member_of(&[GROUP, TEAM]),
        expect(
            "PATCH",
            &format!("/v1.0/users/{uid}"),
            Some(json!({ "accountEnabled": false })),
            Reply::empty(204),
        ),
        expect(
            "DELETE",
            &format!("/v1.0/groups/{TEAM}/members/{uid}/$ref"),
            None,
            Reply::empty(204),
        ),
        read_user(Reply::json(200, graph_user("Gina Núñez-O'Brien", false))),
        member_of(&[GROUP]),
    ]);
    let back = apply(&c, &leaver).await.expect("leaver").expect("account");
    assert_eq!(
        (back.disabled, back.grants),
        (Some(true), set(&["engineering"]))
    );
    script.assert_done();
}

#[tokio::test]
async fn graph_lists_by_next_link_and_refuses_a_foreign_link() {
    let script = Arc::new(Script::default());
    let (c, base, _secret) = graph(&script).await;
    let page = |users: &[(&str, &str)], next: Option<String>| {
        let mut v = json!({ "value": users.iter().map(|(id, upn)| json!({ "id": id, "userPrincipalName": upn, "displayName": upn, "accountEnabled": true })).collect::<Vec<_>>() });
        if let Some(n) = next {
            v["@odata.nextLink"] = json!(n);
        }
        v
    };
    let skip = format!("{base}/v1.0/users?{SELECT}&$top=100&$skiptoken=RFNwdAIAAQAAAA");
    script.push([
        graph_token(),
        expect(
            "GET",
            &format!("/v1.0/users?{SELECT}&$top=100"),
            None,
            Reply::json(200, page(&[("1", "a@contoso.com")], Some(skip.clone()))),
        ),
        expect(
            "GET",
            &format!("/v1.0/users?{SELECT}&$top=100&$skiptoken=RFNwdAIAAQAAAA"),
            None,
            Reply::json(200, page(&[("2", "b@contoso.com")], None)),
        ),
        expect(
            "GET",
            "/v1.0/users/1/memberOf/microsoft.graph.group?$select=id&$top=999",
            None,
            Reply::json(200, graph_groups(&[GROUP])),
        ),
        expect(
            "GET",
            "/v1.0/users/2/memberOf/microsoft.graph.group?$select=id&$top=999",
            None,
            Reply::json(200, graph_groups(&["not-mapped"])),
        ),
    ]);
    let listed = c.list().await.expect("list");
    let keys: Vec<(&str, Vec<&String>)> = listed
        .iter()
        .map(|a| (a.key.as_str(), a.grants.iter().collect()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("a@contoso.com", vec![&"engineering".to_string()]),
            ("b@contoso.com", vec![&"not-mapped".to_string()])
        ]
    );
    script.assert_done();
    // A next link to another host would carry the token there: refused, permanent.
    script.push([expect(
        "GET",
        &format!("/v1.0/users?{SELECT}&$top=100"),
        None,
        Reply::json(
            200,
            page(
                &[("1", "a@contoso.com")],
                Some("https://evil.example/v1.0/users?$skiptoken=x".into()),
            ),
        ),
    )]);
    let err = c.list().await.expect_err("foreign link");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("outside the base URL"), "{err}");
    script.assert_done();
}

// ----------------------------------------------------------------------------------------
// Slack

fn slack_user(real_name: &str, deleted: bool) -> serde_json::Value {
    json!({
        "ok": true,
        "user": {
            "id": "W012A3CDE", "team_id": "T00000000", "name": "gnunez", "deleted": deleted,
            "real_name": real_name, "is_admin": false, "is_bot": false,
            "profile": { "real_name": real_name, "title": "Engineer", "email": "gnunez@example.com", "display_name": "gina" }
        }
    })
}

fn slack_read(reply: Reply) -> http_support::Exchange {
    expect(
        "GET",
        "/users.lookupByEmail?email=gnunez%40example.com",
        None,
        reply,
    )
}

fn slack_channels(ids: &[&str]) -> http_support::Exchange {
    expect(
        "GET",
        "/users.conversations?user=W012A3CDE&types=public_channel,private_channel&limit=999",
        None,
        Reply::json(
            200,
            json!({ "ok": true, "channels": ids.iter().map(|id| json!({ "id": id, "name": id, "is_channel": true })).collect::<Vec<_>>(), "response_metadata": { "next_cursor": "" } }),
        ),
    )
}

async fn slack(script: &Arc<Script>) -> (AnyConnector, tempfile::NamedTempFile) {
    let base = http_support::serve_script(script).await;
    let token = http_support::secret_file("xoxp-test-token");
    let body = http_support::recipe(
        "slack.toml",
        &[
            ("https://slack.com/api", &base),
            (
                "env:SLACK_TOKEN",
                &format!("file:{}", token.path().display()),
            ),
        ],
    );
    *script.auth.lock().unwrap() = Some(("Authorization".into(), "Bearer xoxp-test-token".into()));
    (
        AnyConnector::from_doc(&doc("slack", body)).expect("connector"),
        token,
    )
}

#[tokio::test]
async fn slack_invite_profile_channels_and_leaver() {
    let script = Arc::new(Script::default());
    let (c, _token) = slack(&script).await;
    let missing = Reply::json(200, json!({ "ok": false, "error": "users_not_found" }));
    script.push([
        slack_read(missing),
        expect(
            "POST",
            "/admin.users.invite",
            Some(json!({ "team_id": "T00000000", "channel_ids": "C00000000", "email": "gnunez@example.com", "real_name": "Gina \"G\" Nunez" })),
            Reply::json(200, json!({ "ok": true })),
        ),
        slack_read(Reply::json(200, slack_user("Gina \"G\" Nunez", false))),
        slack_channels(&["C00000000"]),
    ]);
    let joiner = Desired {
        key: "gnunez@example.com".into(),
        exists: true,
        attributes: [("real_name".to_string(), "Gina \"G\" Nunez".to_string())].into(),
        disabled: Some(false),
        ..Desired::default()
    };
    let back = apply(&c, &joiner).await.expect("invite").expect("account");
    assert_eq!(back.grants, set(&["general"]));
    script.assert_done();
    // Grant a channel: the first try is throttled briefly, the second answers 500 (transient).
    script.push([
        slack_read(Reply::json(200, slack_user("Gina \"G\" Nunez", false))),
        slack_channels(&["C00000000"]),
        expect(
            "POST",
            "/conversations.invite",
            Some(json!({ "channel": "C00000001", "users": "W012A3CDE" })),
            Reply::throttled(1, json!({ "ok": false, "error": "ratelimited" })),
        ),
        expect(
            "POST",
            "/conversations.invite",
            Some(json!({ "channel": "C00000001", "users": "W012A3CDE" })),
            Reply::json(500, json!({ "ok": false, "error": "internal_error" })),
        ),
    ]);
    let grant = Desired {
        key: "gnunez@example.com".into(),
        exists: true,
        partial: true,
        grant: set(&["engineering"]),
        ..Desired::default()
    };
    let err = apply(&c, &grant).await.expect_err("500");
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        "connector slack: POST /conversations.invite: HTTP 500: internal_error"
    );
    // Slack's own refusals come as 200 with ok = false: permanent, with Slack's error code.
    script.push([
        slack_read(Reply::json(200, slack_user("Gina \"G\" Nunez", false))),
        slack_channels(&["C00000000"]),
        expect(
            "POST",
            "/conversations.invite",
            Some(json!({ "channel": "C00000001", "users": "W012A3CDE" })),
            Reply::json(200, json!({ "ok": false, "error": "is_archived" })),
        ),
    ]);
    let err = apply(&c, &grant).await.expect_err("archived");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("is_archived"), "{err}");
    // Leaver: removed from the workspace and kicked from the channel.
    script.push([
        slack_read(Reply::json(200, slack_user("Gina \"G\" Nunez", false))),
        slack_channels(&["C00000000", "C00000001"]),
        expect(
            "POST",
            "/admin.users.remove",
            Some(json!({ "team_id": "T00000000", "user_id": "W012A3CDE" })),
            Reply::json(200, json!({ "ok": true })),
        ),
        expect(
            "POST",
            "/conversations.kick",
            Some(json!({ "channel": "C00000001", "user": "W012A3CDE" })),
            Reply::json(200, json!({ "ok": true })),
        ),
        slack_read(Reply::json(200, slack_user("Gina \"G\" Nunez", true))),
        slack_channels(&["C00000000"]),
    ]);
    let leaver = Desired {
        key: "gnunez@example.com".into(),
        exists: true,
        partial: true,
        disabled: Some(true),
        revoke: set(&["engineering"]),
        ..Desired::default()
    };
    let back = apply(&c, &leaver).await.expect("leaver").expect("account");
    assert_eq!(
        (back.disabled, back.grants),
        (Some(true), set(&["general"]))
    );
    script.assert_done();
}

#[tokio::test]
async fn slack_lists_by_cursor() {
    let script = Arc::new(Script::default());
    let (c, _token) = slack(&script).await;
    let member = |id: &str, email: &str| json!({ "id": id, "deleted": false, "profile": { "email": email, "real_name": id } });
    script.push([
        expect("GET", "/users.list?limit=200&cursor=", None, Reply::json(200, json!({ "ok": true, "members": [member("U1", "a@example.com")], "response_metadata": { "next_cursor": "dXNlcjpVMEc5V0ZYTlo=" } }))),
        expect("GET", "/users.list?limit=200&cursor=dXNlcjpVMEc5V0ZYTlo%3D", None, Reply::json(200, json!({ "ok": true, "members": [member("U2", "b@example.com")], "response_metadata": { "next_cursor": "" } }))),
        expect("GET", "/users.conversations?user=U1&types=public_channel,private_channel&limit=999", None, Reply::json(200, json!({ "ok": true, "channels": [] }))),
        expect("GET", "/users.conversations?user=U2&types=public_channel,private_channel&limit=999", None, Reply::json(200, json!({ "ok": true, "channels": [{ "id": "C00000001" }] }))),
    ]);
    let listed = c.list().await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|a| (a.key.as_str(), a.grants.clone()))
            .collect::<Vec<_>>(),
        vec![
            ("a@example.com", set(&[])),
            ("b@example.com", set(&["engineering"]))
        ]
    );
    script.assert_done();
}
