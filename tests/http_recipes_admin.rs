//! The Google Workspace, Zendesk, OpenProject and Metabase recipes against recorded
//! request/response shapes on loopback (never the live services): each call checked (method,
//! path and query, authentication header, JSON body), a 429 with `Retry-After` waited for, a
//! 500 failing as transient with the service's message, a 4xx permanent, lists paged.

mod http_support;

use std::time::{Duration, Instant};

use gatehouse::connectors::model::Desired;
use http_support::{Exchange, Reply, apply, expect, scripted, set};
use serde_json::{Value, json};

fn desired(key: &str) -> Desired {
    Desired {
        key: key.into(),
        exists: true,
        partial: true,
        ..Desired::default()
    }
}

// ----------------------------------------------------------------------------------------
// Google Workspace

fn google_user(suspended: bool) -> Value {
    json!({
        "kind": "admin#directory#user", "id": "104277151928564471311", "primaryEmail": "gnunez@acme.example",
        "name": { "givenName": "Gina", "familyName": "Nunez", "fullName": "Gina Nunez" },
        "isAdmin": false, "suspended": suspended, "orgUnitPath": "/Engineering"
    })
}

fn google_read(reply: Reply) -> Exchange {
    expect("GET", "/users/gnunez%40acme.example", None, reply)
}

fn google_groups(emails: &[&str]) -> Exchange {
    expect(
        "GET",
        "/groups?userKey=104277151928564471311&maxResults=200",
        None,
        Reply::json(
            200,
            json!({ "kind": "admin#directory#groups", "groups": emails.iter().map(|e| json!({ "kind": "admin#directory#group", "id": "03x", "email": e })).collect::<Vec<_>>() }),
        ),
    )
}

#[tokio::test]
async fn google_workspace_rename_group_suspend_429_500() {
    let (c, script, _f, _base) = scripted(
        "google-workspace.toml",
        "https://admin.googleapis.com/admin/directory/v1",
        "file:/run/gatehouse/google-access-token",
        "ya29.test-token",
        ("Authorization", "Bearer ya29.test-token"),
    )
    .await;
    let google_404 = json!({ "error": { "code": 404, "message": "Resource Not Found: userKey", "errors": [{ "message": "Resource Not Found: userKey", "domain": "global", "reason": "notFound" }] } });
    script.push([expect(
        "GET",
        "/users/nobody%40acme.example",
        None,
        Reply::json(404, google_404),
    )]);
    assert_eq!(c.read("nobody@acme.example").await.expect("read"), None);
    let uid = "104277151928564471311";
    let mut renamed = google_user(false);
    renamed["name"]["familyName"] = json!("Núñez");
    script.push([
        google_read(Reply::json(200, google_user(false))),
        google_groups(&[]),
        expect("PUT", &format!("/users/{uid}"), Some(json!({ "name": { "givenName": "Gina", "familyName": "Núñez" }, "orgUnitPath": "/Engineering" })), Reply::json(200, renamed.clone())),
        expect("POST", "/groups/eng%40acme.example/members", Some(json!({ "email": "gnunez@acme.example", "role": "MEMBER" })), Reply::throttled(1, json!({ "error": { "code": 429, "message": "Quota exceeded for quota metric 'Queries'" } }))),
        expect("POST", "/groups/eng%40acme.example/members", Some(json!({ "email": "gnunez@acme.example", "role": "MEMBER" })), Reply::json(200, json!({ "kind": "admin#directory#member", "email": "gnunez@acme.example", "role": "MEMBER" }))),
        google_read(Reply::json(200, renamed.clone())),
        google_groups(&["eng@acme.example"]),
    ]);
    let mut mover = desired("gnunez@acme.example");
    mover.attributes.insert("familyName".into(), "Núñez".into());
    mover.grant = set(&["eng@acme.example"]);
    let started = Instant::now();
    let back = apply(&c, &mover).await.expect("mover").expect("account");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(back.grants, set(&["eng@acme.example"]));
    script.push([
        google_read(Reply::json(200, renamed.clone())),
        google_groups(&["eng@acme.example"]),
        expect("PUT", &format!("/users/{uid}"), Some(json!({ "suspended": true })), Reply::json(503, json!({ "error": { "code": 503, "message": "The service is currently unavailable." } }))),
    ]);
    let mut leaver = desired("gnunez@acme.example");
    leaver.disabled = Some(true);
    let err = apply(&c, &leaver).await.expect_err("503");
    assert!(err.is_transient());
    assert!(
        err.to_string()
            .ends_with("HTTP 503: The service is currently unavailable."),
        "{err}"
    );
    script.push([
        google_read(Reply::json(200, renamed.clone())),
        google_groups(&["eng@acme.example"]),
        expect(
            "PUT",
            &format!("/users/{uid}"),
            Some(json!({ "suspended": true })),
            Reply::json(
                500,
                json!({ "error": { "code": 500, "message": "Backend Error" } }),
            ),
        ),
    ]);
    let err = apply(&c, &leaver).await.expect_err("500");
    assert!(err.is_transient());
    assert!(
        err.to_string().ends_with("HTTP 500: Backend Error"),
        "{err}"
    );
    script.push([
        google_read(Reply::json(200, renamed.clone())),
        google_groups(&["eng@acme.example"]),
        expect("PUT", &format!("/users/{uid}"), Some(json!({ "suspended": true })), Reply::json(403, json!({ "error": { "code": 403, "message": "Not Authorized to access this resource/api" } }))),
    ]);
    let err = apply(&c, &leaver).await.expect_err("403");
    assert!(!err.is_transient());
    assert!(
        err.to_string()
            .ends_with("HTTP 403: Not Authorized to access this resource/api"),
        "{err}"
    );
    script.push([
        expect(
            "GET",
            "/users?customer=my_customer&maxResults=200&pageToken=",
            None,
            Reply::json(
                200,
                json!({ "users": [google_user(false)], "nextPageToken": "Q0FFU0F3" }),
            ),
        ),
        expect(
            "GET",
            "/users?customer=my_customer&maxResults=200&pageToken=Q0FFU0F3",
            None,
            Reply::json(200, json!({ "users": [] })),
        ),
        google_groups(&[]),
    ]);
    let listed = c.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].attributes["orgUnitPath"], "/Engineering");
    script.assert_done();
}

// ----------------------------------------------------------------------------------------
// Zendesk

fn zendesk_user(suspended: bool) -> Value {
    json!({ "id": 35436, "url": "https://acme.zendesk.com/api/v2/users/35436.json", "name": "Gina Nunez", "email": "gnunez@acme.example", "role": "agent", "suspended": suspended, "active": true, "verified": true })
}

fn zendesk_read(users: Vec<Value>) -> Exchange {
    expect(
        "GET",
        "/users/search.json?query=email%3Agnunez%40acme.example",
        None,
        Reply::json(
            200,
            json!({ "users": users, "next_page": null, "previous_page": null, "count": 1 }),
        ),
    )
}

#[tokio::test]
async fn zendesk_create_update_suspend_delete_429_500() {
    let (c, script, _f, base) = scripted(
        "zendesk.toml",
        "https://acme.zendesk.com/api/v2",
        "env:ZENDESK_API_TOKEN",
        "zd-token",
        // base64("admin@acme.example/token:zd-token")
        (
            "Authorization",
            "Basic YWRtaW5AYWNtZS5leGFtcGxlL3Rva2VuOnpkLXRva2Vu",
        ),
    )
    .await;
    script.push([
        zendesk_read(vec![]),
        expect("POST", "/users.json", Some(json!({ "user": { "name": "Gina Nunez", "email": "gnunez@acme.example", "role": "agent", "verified": true } })), Reply::json(201, json!({ "user": zendesk_user(false) }))),
        zendesk_read(vec![zendesk_user(false)]),
    ]);
    let mut joiner = desired("gnunez@acme.example");
    joiner.partial = false;
    joiner.attributes.insert("name".into(), "Gina Nunez".into());
    joiner.disabled = Some(false);
    let back = apply(&c, &joiner).await.expect("create").expect("account");
    assert_eq!(back.id.as_deref(), Some("35436"));
    let mut renamed = zendesk_user(false);
    renamed["name"] = json!("Gina \"G\" Nunez");
    script.push([
        zendesk_read(vec![zendesk_user(false)]),
        expect(
            "PUT",
            "/users/35436.json",
            Some(json!({ "user": { "name": "Gina \"G\" Nunez" } })),
            Reply::throttled(
                1,
                json!({ "error": "APIRateLimitExceeded", "description": "Rate limit exceeded" }),
            ),
        ),
        expect(
            "PUT",
            "/users/35436.json",
            Some(json!({ "user": { "name": "Gina \"G\" Nunez" } })),
            Reply::json(200, json!({ "user": renamed.clone() })),
        ),
        zendesk_read(vec![renamed.clone()]),
    ]);
    let mut update = desired("gnunez@acme.example");
    update
        .attributes
        .insert("name".into(), "Gina \"G\" Nunez".into());
    apply(&c, &update).await.expect("update after 429");
    script.push([
        zendesk_read(vec![renamed.clone()]),
        expect(
            "PUT",
            "/users/35436.json",
            Some(json!({ "user": { "suspended": true } })),
            Reply::json(
                500,
                json!({ "error": "InternalError", "description": "Something went wrong" }),
            ),
        ),
    ]);
    let mut leaver = desired("gnunez@acme.example");
    leaver.disabled = Some(true);
    let err = apply(&c, &leaver).await.expect_err("500");
    assert!(err.is_transient());
    assert!(
        err.to_string().ends_with("HTTP 500: Something went wrong"),
        "{err}"
    );
    script.push([
        zendesk_read(vec![renamed.clone()]),
        expect("DELETE", "/users/35436.json", None, Reply::json(422, json!({ "error": "RecordInvalid", "description": "Record validation errors", "details": { "base": [{ "description": "Agent is the owner of active tickets" }] } }))),
    ]);
    let gone = Desired {
        key: "gnunez@acme.example".into(),
        exists: false,
        ..Desired::default()
    };
    let err = apply(&c, &gone).await.expect_err("422");
    assert!(!err.is_transient());
    assert!(
        err.to_string()
            .ends_with("HTTP 422: Record validation errors"),
        "{err}"
    );
    let next = format!("{base}/users.json?page%5Bsize%5D=100&page%5Bafter%5D=eyJvIjoibmljZV9pZCJ9");
    script.push([
        expect("GET", "/users.json?page%5Bsize%5D=100", None, Reply::json(200, json!({ "users": [zendesk_user(false)], "meta": { "has_more": true }, "links": { "next": next } }))),
        expect("GET", "/users.json?page%5Bsize%5D=100&page%5Bafter%5D=eyJvIjoibmljZV9pZCJ9", None, Reply::json(200, json!({ "users": [renamed], "meta": { "has_more": false }, "links": { "next": null } }))),
    ]);
    let listed = c.list().await.expect("list");
    assert_eq!(listed.len(), 2);
    script.assert_done();
}

// ----------------------------------------------------------------------------------------
// OpenProject

fn op_user(status: &str) -> Value {
    json!({ "_type": "User", "id": 42, "login": "gnunez", "firstName": "Gina", "lastName": "Nunez", "email": "gnunez@acme.example", "status": status, "admin": false, "_links": { "self": { "href": "/api/v3/users/42" } } })
}

fn op_collection(users: Vec<Value>) -> Value {
    json!({ "_type": "Collection", "total": users.len(), "count": users.len(), "pageSize": 100, "offset": 1, "_embedded": { "elements": users } })
}

fn op_read(users: Vec<Value>) -> Exchange {
    // filters=[{"login":{"operator":"=","values":["gnunez"]}}], percent-encoded.
    expect(
        "GET",
        "/users?filters=%5B%7B%22login%22%3A%7B%22operator%22%3A%22%3D%22%2C%22values%22%3A%5B%22gnunez%22%5D%7D%7D%5D",
        None,
        Reply::json(200, op_collection(users)),
    )
}

#[tokio::test]
async fn openproject_invite_lock_unlock_delete_429_500() {
    let (c, script, _f, _base) = scripted(
        "openproject.toml",
        "https://openproject.example.com/api/v3",
        "env:OPENPROJECT_API_KEY",
        "op-key",
        // base64("apikey:op-key")
        ("Authorization", "Basic YXBpa2V5Om9wLWtleQ=="),
    )
    .await;
    script.push([
        op_read(vec![]),
        expect("POST", "/users", Some(json!({ "login": "gnunez", "firstName": "Gina", "lastName": "Nunez", "email": "gnunez@acme.example", "status": "invited" })), Reply::json(201, op_user("invited"))),
        op_read(vec![op_user("invited")]),
    ]);
    let mut joiner = desired("gnunez");
    joiner.partial = false;
    for (k, v) in [
        ("firstName", "Gina"),
        ("lastName", "Nunez"),
        ("email", "gnunez@acme.example"),
    ] {
        joiner.attributes.insert(k.into(), v.into());
    }
    joiner.disabled = Some(false);
    let back = apply(&c, &joiner).await.expect("invite").expect("account");
    assert_eq!(
        (back.id.as_deref(), back.disabled),
        (Some("42"), Some(false))
    );
    script.push([
        op_read(vec![op_user("active")]),
        expect("POST", "/users/42/lock", None, Reply::throttled(1, json!({ "_type": "Error", "errorIdentifier": "urn:openproject-org:api:v3:errors:TooManyRequests", "message": "Too many requests" }))),
        expect("POST", "/users/42/lock", None, Reply::json(200, op_user("locked"))),
        op_read(vec![op_user("locked")]),
    ]);
    let mut leaver = desired("gnunez");
    leaver.disabled = Some(true);
    let back = apply(&c, &leaver).await.expect("lock").expect("account");
    assert_eq!(back.disabled, Some(true));
    script.push([
        op_read(vec![op_user("locked")]),
        expect("DELETE", "/users/42/lock", None, Reply::json(500, json!({ "_type": "Error", "errorIdentifier": "urn:openproject-org:api:v3:errors:InternalServerError", "message": "An internal error has occurred." }))),
    ]);
    let mut back_again = desired("gnunez");
    back_again.disabled = Some(false);
    let err = apply(&c, &back_again).await.expect_err("500");
    assert!(err.is_transient());
    assert!(
        err.to_string()
            .ends_with("HTTP 500: An internal error has occurred."),
        "{err}"
    );
    script.push([
        op_read(vec![op_user("locked")]),
        expect("DELETE", "/users/42", None, Reply::empty(202)),
        op_read(vec![]),
    ]);
    let gone = Desired {
        key: "gnunez".into(),
        exists: false,
        ..Desired::default()
    };
    assert_eq!(apply(&c, &gone).await.expect("delete"), None);
    let page = |n: usize| {
        (0..n)
            .map(|i| json!({ "id": i, "login": format!("u{i}"), "status": "active" }))
            .collect::<Vec<_>>()
    };
    script.push([
        expect(
            "GET",
            "/users?pageSize=100&offset=1",
            None,
            Reply::json(200, op_collection(page(100))),
        ),
        expect(
            "GET",
            "/users?pageSize=100&offset=2",
            None,
            Reply::json(200, op_collection(page(3))),
        ),
    ]);
    assert_eq!(c.list().await.expect("list").len(), 103);
    script.assert_done();
}

// ----------------------------------------------------------------------------------------
// Metabase

fn mb_user(active: bool) -> Value {
    json!({ "id": 7, "email": "gnunez@acme.example", "first_name": "Gina", "last_name": "Nunez", "common_name": "Gina Nunez", "is_active": active, "is_superuser": false, "user_group_memberships": [{ "id": 1 }] })
}

fn mb_read(users: Vec<Value>) -> Exchange {
    expect(
        "GET",
        "/user?query=gnunez%40acme.example&include_deactivated=true",
        None,
        Reply::json(
            200,
            json!({ "data": users, "total": users.len(), "limit": null, "offset": null }),
        ),
    )
}

#[tokio::test]
async fn metabase_create_deactivate_reactivate_429_500() {
    let (c, script, _f, _base) = scripted(
        "metabase.toml",
        "https://metabase.example.com/api",
        "env:METABASE_API_KEY",
        "mb_key",
        ("X-API-KEY", "mb_key"),
    )
    .await;
    // A search matches substrings: another account first in the answer is not this one.
    let mut other = mb_user(true);
    other["email"] = json!("gnunez@acme.example.org");
    script.push([
        mb_read(vec![other.clone()]),
        expect(
            "POST",
            "/user",
            Some(
                json!({ "email": "gnunez@acme.example", "first_name": "Gina", "last_name": null }),
            ),
            Reply::throttled(1, json!({ "message": "Too many requests" })),
        ),
        expect(
            "POST",
            "/user",
            Some(
                json!({ "email": "gnunez@acme.example", "first_name": "Gina", "last_name": null }),
            ),
            Reply::json(200, mb_user(true)),
        ),
        mb_read(vec![mb_user(true)]),
    ]);
    let mut joiner = desired("gnunez@acme.example");
    joiner.partial = false;
    joiner.attributes.insert("first_name".into(), "Gina".into());
    joiner.disabled = Some(false);
    apply(&c, &joiner).await.expect("create after 429");
    script.push([mb_read(vec![other, mb_user(true)])]);
    let found = c
        .read("gnunez@acme.example")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(found.key, "gnunez@acme.example");
    script.push([
        mb_read(vec![mb_user(true)]),
        expect(
            "DELETE",
            "/user/7",
            None,
            Reply::json(500, json!({ "message": "Internal server error" })),
        ),
    ]);
    let mut leaver = desired("gnunez@acme.example");
    leaver.disabled = Some(true);
    let err = apply(&c, &leaver).await.expect_err("500");
    assert!(err.is_transient());
    assert!(
        err.to_string().ends_with("HTTP 500: Internal server error"),
        "{err}"
    );
    script.push([
        mb_read(vec![mb_user(true)]),
        expect(
            "DELETE",
            "/user/7",
            None,
            Reply::json(200, json!({ "success": true })),
        ),
        mb_read(vec![mb_user(false)]),
    ]);
    let back = apply(&c, &leaver)
        .await
        .expect("deactivate")
        .expect("account");
    assert_eq!(back.disabled, Some(true));
    script.push([
        mb_read(vec![mb_user(false)]),
        expect(
            "PUT",
            "/user/7/reactivate",
            None,
            Reply::json(
                400,
                json!({ "message": "Not able to reactivate an active user" }),
            ),
        ),
    ]);
    let mut rejoin = desired("gnunez@acme.example");
    rejoin.disabled = Some(false);
    let err = apply(&c, &rejoin).await.expect_err("400");
    assert!(!err.is_transient());
    assert!(
        err.to_string()
            .ends_with("HTTP 400: Not able to reactivate an active user"),
        "{err}"
    );
    // Metabase never deletes users: the recipe says so and a delete plan is refused.
    let gone = Desired {
        key: "gnunez@acme.example".into(),
        exists: false,
        ..Desired::default()
    };
    let err = c.plan(Some(&back), &gone).expect_err("no delete");
    assert!(
        err.to_string()
            .contains("no http.operations.delete_account"),
        "{err}"
    );
    script.assert_done();
}
