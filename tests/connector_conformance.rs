//! One conformance suite for every connector: the same account and grant lifecycle against
//! SQLite, PostgreSQL and MariaDB targets, a real SCIM 2.0 server on loopback and the HTTP
//! connector's Keycloak recipe against a loopback Keycloak admin API (recorded shapes). Plans are
//! exact, applying a plan twice changes nothing, reads come back as written, grants follow a
//! mover's diff, and values are bound (a hostile value round-trips). Servers come from
//! `tests/servers.sh`; a missing one fails under `CI` and is SKIPPED otherwise.

mod http_support;
mod support;

use std::collections::BTreeSet;

use gatehouse::connectors::AnyConnector;
use gatehouse::connectors::model::{Desired, Operation};
use gatehouse::store::api::ConfigVersion;
use sqlx::Connection;

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

/// Attribute names of one target for the full name and the e-mail.
struct Names {
    full_name: &'static str,
    email: &'static str,
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn apply(c: &AnyConnector, want: &Desired) -> gatehouse::connectors::model::Plan {
    let current = c.read(&want.key).await.expect("read");
    let plan = c.plan(current.as_ref(), want).expect("plan");
    c.apply(&plan, want).await.expect("apply");
    let again = c.read(&want.key).await.expect("read again");
    let second = c.plan(again.as_ref(), want).expect("plan again");
    assert!(
        second.is_noop(),
        "applying the same change twice changes nothing: {second:?}"
    );
    plan
}

/// The suite: `roles` are two entitlements the target knows.
async fn conformance(c: &AnyConnector, names: &Names, key: &str, roles: [&str; 2]) {
    let caps = c.capabilities();
    assert!(caps.list && caps.write_accounts && caps.disable && caps.delete && caps.grants);
    assert_eq!(c.read(key).await.expect("read missing"), None);

    let hostile = "O'Brien \"Bobby\"; DROP TABLE accounts; --";
    let mut want = Desired {
        key: key.into(),
        exists: true,
        attributes: [
            (names.full_name.to_string(), hostile.to_string()),
            (names.email.to_string(), format!("{key}@example.com")),
        ]
        .into(),
        disabled: Some(false),
        ..Desired::default()
    };
    let created = apply(c, &want).await;
    assert_eq!(created.change, "create");
    assert_eq!(created.statements.len(), 1);
    let back = c.read(key).await.expect("read").expect("created");
    assert_eq!(back.attributes[names.full_name], hostile);
    assert_eq!(back.disabled, Some(false));

    // Update names only what changed.
    want.attributes
        .insert(names.full_name.into(), "Zoë Ångström".into());
    let updated = apply(c, &want).await;
    assert_eq!(updated.change, "update");
    assert_eq!(updated.statements.len(), 1);
    let op = serde_json::to_string(&updated.statements[0]).expect("json");
    assert!(
        !op.contains("example.com"),
        "unchanged values are not written: {op}"
    );

    // Joiner grants, then a mover's diff: keep one, revoke the other, no account change.
    let grants = Desired {
        key: key.into(),
        exists: true,
        partial: true,
        grant: set(&roles),
        ..Desired::default()
    };
    let granted = apply(c, &grants).await;
    assert_eq!(granted.change, "none");
    assert_eq!(granted.grant, set(&roles));
    assert_eq!(
        c.read(key).await.expect("read").expect("account").grants,
        set(&roles)
    );
    let mover = Desired {
        key: key.into(),
        exists: true,
        partial: true,
        grant: set(&roles[1..]),
        revoke: set(&roles[..1]),
        ..Desired::default()
    };
    let moved = apply(c, &mover).await;
    assert_eq!(
        (moved.grant.len(), moved.revoke, moved.statements.len()),
        (0, set(&roles[..1]), 1)
    );
    assert_eq!(
        c.read(key).await.expect("read").expect("account").grants,
        set(&roles[1..])
    );

    // Leaver: disable, then the account is listed disabled with its remaining grant.
    let disable = Desired {
        key: key.into(),
        exists: true,
        partial: true,
        disabled: Some(true),
        ..Desired::default()
    };
    assert_eq!(apply(c, &disable).await.change, "update");
    let listed = c.list().await.expect("list");
    let mine = listed.iter().find(|a| a.key == key).expect("listed");
    assert_eq!(mine.disabled, Some(true));
    assert_eq!(mine.grants, set(&roles[1..]));

    // A partial change of a missing account changes nothing.
    let nobody = Desired {
        key: format!("{key}x"),
        ..disable.clone()
    };
    assert!(c.plan(None, &nobody).expect("plan").is_noop());

    // Delete; the account and its grants are gone; deleting again plans nothing.
    let gone = Desired {
        key: key.into(),
        exists: false,
        ..Desired::default()
    };
    assert_eq!(apply(c, &gone).await.change, "delete");
    assert_eq!(c.read(key).await.expect("read"), None);
    for op in &created.statements {
        if let Operation::Sql { params, .. } = op {
            assert!(params.iter().any(|p| p == hostile), "values are bound");
        }
    }
}

const SQL_NAMES: Names = Names {
    full_name: "full_name",
    email: "email",
};

fn sql_doc(dialect: &str, url: &str, schema: Option<&str>) -> ConfigVersion {
    let schema = schema
        .map(|s| format!("schema = \"{s}\"\n"))
        .unwrap_or_default();
    doc(
        "hr-db",
        format!(
            r#"kind = "connector"
name = "hr-db"
backend = "sql"

[sql]
dialect = "{dialect}"
url = "{url}"
{schema}table = "accounts"
disabled_column = "disabled"

[sql.columns]
username = "username"
full_name = "full_name"
email = "email"

[sql.grants]
table = "account_roles"
username_column = "username"
role_column = "role"
"#
        ),
    )
}

#[tokio::test]
async fn sqlite_target_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("t.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
    sqlx::raw_sql(
        "CREATE TABLE accounts (username TEXT PRIMARY KEY, full_name TEXT, email TEXT, \
         disabled INTEGER NOT NULL DEFAULT 0); \
         CREATE TABLE account_roles (username TEXT NOT NULL, role TEXT NOT NULL, \
         PRIMARY KEY (username, role));",
    )
    .execute(&mut conn)
    .await
    .expect("tables");
    conn.close().await.expect("close");
    let c = AnyConnector::from_doc(&sql_doc("sqlite", &url, None)).expect("connector");
    conformance(&c, &SQL_NAMES, "zangstrom", ["employee", "developer"]).await;
}

#[tokio::test]
async fn postgres_target_conforms() {
    let Some(pg) = support::PgDb::create("conf").await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&pg.url).await.expect("pg");
    sqlx::raw_sql(
        "CREATE SCHEMA provisioning; \
         CREATE TABLE provisioning.accounts (username TEXT PRIMARY KEY, full_name TEXT, \
         email TEXT, disabled BOOLEAN NOT NULL DEFAULT false); \
         CREATE TABLE provisioning.account_roles (username TEXT NOT NULL, role TEXT NOT NULL, \
         PRIMARY KEY (username, role));",
    )
    .execute(&mut conn)
    .await
    .expect("tables");
    conn.close().await.expect("close");
    let c = AnyConnector::from_doc(&sql_doc("postgres", &pg.url, Some("provisioning")))
        .expect("connector");
    conformance(&c, &SQL_NAMES, "zangstrom", ["employee", "developer"]).await;
}

#[tokio::test]
async fn mariadb_target_conforms() {
    let Some(db) = support::MysqlDb::create("conf").await else {
        return;
    };
    let mut conn = sqlx::MySqlConnection::connect(&db.url)
        .await
        .expect("mariadb");
    sqlx::raw_sql(
        "CREATE TABLE accounts (username VARCHAR(64) PRIMARY KEY, full_name TEXT, \
         email TEXT, disabled BOOLEAN NOT NULL DEFAULT false) CHARACTER SET utf8mb4; \
         CREATE TABLE account_roles (username VARCHAR(64) NOT NULL, role VARCHAR(64) NOT NULL, \
         PRIMARY KEY (username, role)) CHARACTER SET utf8mb4;",
    )
    .execute(&mut conn)
    .await
    .expect("tables");
    conn.close().await.expect("close");
    let c = AnyConnector::from_doc(&sql_doc("mysql", &db.url, None)).expect("connector");
    conformance(&c, &SQL_NAMES, "zangstrom", ["employee", "developer"]).await;
}

/// Create groups on the SCIM server (setup, not the connector under test).
pub async fn scim_groups(url: &str, token_file: &str, names: &[&str]) {
    let token = std::fs::read_to_string(token_file).expect("token");
    for name in names {
        let response = reqwest::Client::new()
            .post(format!("{url}/Groups"))
            .bearer_auth(token.trim())
            .header("Content-Type", "application/scim+json")
            .body(
                serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": name
                })
                .to_string(),
            )
            .send()
            .await
            .expect("create group");
        assert!(response.status().is_success(), "group {name}");
    }
}

#[tokio::test]
async fn scim_target_conforms() {
    let Some((url, token_file)) = support::scim_server().await else {
        return;
    };
    let tag = format!("{:06x}", fastrand::u32(..0xffffff));
    let roles = [format!("employee-{tag}"), format!("developer-{tag}")];
    scim_groups(&url, &token_file, &[&roles[0], &roles[1]]).await;
    let body = format!(
        r#"kind = "connector"
name = "crm"
backend = "scim"

[scim]
base_url = "{url}"
token = "file:{token_file}"
page_size = 2
"#
    );
    let c = AnyConnector::from_doc(&doc("crm", body)).expect("connector");
    let names = Names {
        full_name: "displayName",
        email: "email",
    };
    let key = format!("zangstrom{tag}");
    conformance(&c, &names, &key, [&roles[0], &roles[1]]).await;
}

#[tokio::test]
async fn http_keycloak_recipe_conforms() {
    let (base, realm) = http_support::keycloak::start().await;
    let secret = http_support::secret_file(http_support::keycloak::SECRET);
    let body = http_support::keycloak::document(&base, &secret.path().display().to_string());
    let c = AnyConnector::from_doc(&doc("keycloak", body)).expect("connector");
    let names = Names {
        full_name: "firstName",
        email: "email",
    };
    conformance(&c, &names, "zangstrom", ["employees", "developers"]).await;
    assert!(realm.problems().is_empty(), "{:?}", realm.problems());
}
