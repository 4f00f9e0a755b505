//! A small stateful Keycloak admin REST API (realm `acme`) and its token endpoint, answering
//! with the response shapes Keycloak 22+ gives (user representations, `errorMessage` on
//! conflicts, 201 with `Location` on create, 204 on updates). Requests are checked: every API
//! call carries the bearer token the endpoint issued; bodies have the types Keycloak expects.
//! The test can queue failures (429 with `Retry-After`, 500) for the next API calls.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{Reply, Request, form, serve};

/// The client secret the token endpoint accepts.
pub const SECRET: &str = "kc-client-secret";
/// Group ids the realm has (as in the recipe's `[http.entitlements]`).
pub const GROUPS: &[(&str, &str)] = &[
    ("2f7c1a2e-0000-4000-8000-000000000001", "developers"),
    ("2f7c1a2e-0000-4000-8000-000000000002", "employees"),
];
const TOKEN: &str = "kc-access-token-";
const PREFIX: &str = "/admin/realms/acme";

/// State and switches shared with the test.
#[derive(Default)]
pub struct Realm {
    users: Mutex<Vec<Value>>,
    members: Mutex<BTreeMap<String, BTreeSet<String>>>,
    next_id: AtomicU32,
    /// Token requests seen.
    pub token_requests: AtomicU32,
    /// API requests seen.
    pub api_requests: AtomicU32,
    /// Answers given instead of the next API calls.
    pub fail_next: Mutex<VecDeque<Reply>>,
    /// Problems with requests (wrong token, wrong body types).
    pub errors: Mutex<Vec<String>>,
    /// Tokens numbered below this are refused with 401 (revoked).
    valid_from: AtomicU32,
}

impl Realm {
    /// Add a user as if created out of band; returns its id.
    pub fn add_user(&self, username: &str, first: &str) -> String {
        let id = format!("u-{}", self.next_id.fetch_add(1, Ordering::SeqCst));
        self.users.lock().unwrap().push(json!({
            "id": id, "username": username, "enabled": true, "firstName": first,
            "emailVerified": false, "createdTimestamp": 1700000000000u64,
        }));
        id
    }

    /// Revoke every token issued so far: API calls with them get 401.
    pub fn revoke_tokens(&self) {
        self.valid_from.store(
            self.token_requests.load(Ordering::SeqCst) + 1,
            Ordering::SeqCst,
        );
    }

    /// Problems seen so far.
    pub fn problems(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    fn answer(&self, r: &Request) -> Reply {
        if r.path() == "/realms/acme/protocol/openid-connect/token" {
            self.token_requests.fetch_add(1, Ordering::SeqCst);
            let f = form(&r.raw);
            if f.get("grant_type").map(String::as_str) != Some("client_credentials")
                || f.get("client_id").map(String::as_str) != Some("gatehouse")
                || f.get("client_secret").map(String::as_str) != Some(SECRET)
            {
                return Reply::json(
                    401,
                    json!({ "error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials" }),
                );
            }
            let n = self.token_requests.load(Ordering::SeqCst);
            return Reply::json(
                200,
                json!({ "access_token": format!("{TOKEN}{n}"), "expires_in": 300, "token_type": "Bearer", "scope": "profile email" }),
            );
        }
        self.api_requests.fetch_add(1, Ordering::SeqCst);
        let number = r
            .headers
            .get("authorization")
            .and_then(|h| h.strip_prefix(&format!("Bearer {TOKEN}")))
            .and_then(|n| n.parse::<u32>().ok());
        let Some(number) = number else {
            self.errors
                .lock()
                .unwrap()
                .push(format!("{} {}: no bearer token", r.method, r.target));
            return Reply::json(401, json!({ "error": "HTTP 401 Unauthorized" }));
        };
        if number < self.valid_from.load(Ordering::SeqCst) {
            return Reply::json(401, json!({ "error": "HTTP 401 Unauthorized" }));
        }
        if let Some(reply) = self.fail_next.lock().unwrap().pop_front() {
            return reply;
        }
        let Some(path) = r.path().strip_prefix(PREFIX) else {
            return Reply::json(
                404,
                json!({ "error": "RESTEASY003210: Could not find resource" }),
            );
        };
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let q = r.query();
        let mut users = self.users.lock().unwrap();
        let mut members = self.members.lock().unwrap();
        let find = |users: &Vec<Value>, id: &str| users.iter().position(|u| u["id"] == id);
        match (r.method.as_str(), parts.as_slice()) {
            ("GET", ["users"]) => {
                if let Some(name) = q.get("username") {
                    let found: Vec<Value> = users
                        .iter()
                        .filter(|u| u["username"] == name.to_lowercase().as_str())
                        .cloned()
                        .collect();
                    return Reply::json(200, Value::Array(found));
                }
                let first: usize = q.get("first").and_then(|v| v.parse().ok()).unwrap_or(0);
                let max: usize = q.get("max").and_then(|v| v.parse().ok()).unwrap_or(100);
                Reply::json(
                    200,
                    Value::Array(users.iter().skip(first).take(max).cloned().collect()),
                )
            }
            ("POST", ["users"]) => {
                let b = &r.body;
                let typed = b["username"].is_string()
                    && b["enabled"].is_boolean()
                    && ["firstName", "lastName", "email"]
                        .iter()
                        .all(|k| b[k].is_null() || b[k].is_string());
                if !typed {
                    self.errors
                        .lock()
                        .unwrap()
                        .push(format!("POST /users: body shape {b}"));
                    return Reply::json(
                        400,
                        json!({ "errorMessage": "Invalid user representation" }),
                    );
                }
                let username = b["username"].as_str().unwrap_or_default().to_lowercase();
                if users.iter().any(|u| u["username"] == username.as_str()) {
                    return Reply::json(
                        409,
                        json!({ "errorMessage": "User exists with same username" }),
                    );
                }
                let id = format!("u-{}", self.next_id.fetch_add(1, Ordering::SeqCst));
                let mut user = json!({ "id": id, "username": username, "enabled": b["enabled"], "emailVerified": false });
                for k in ["firstName", "lastName", "email"] {
                    if b[k].is_string() {
                        user[k] = b[k].clone();
                    }
                }
                users.push(user);
                Reply {
                    status: 201,
                    headers: vec![("Location".into(), format!("{PREFIX}/users/{id}"))],
                    body: None,
                }
            }
            ("PUT", ["users", id]) => {
                let Some(i) = find(&users, id) else {
                    return Reply::json(404, json!({ "error": "User not found" }));
                };
                let Some(fields) = r.body.as_object() else {
                    return Reply::json(
                        400,
                        json!({ "errorMessage": "a JSON object is expected" }),
                    );
                };
                for (k, v) in fields {
                    if k == "id" || k == "username" {
                        continue;
                    }
                    users[i][k] = v.clone();
                }
                Reply::empty(204)
            }
            ("DELETE", ["users", id]) => {
                let Some(i) = find(&users, id) else {
                    return Reply::json(404, json!({ "error": "User not found" }));
                };
                users.remove(i);
                members.remove(*id);
                Reply::empty(204)
            }
            ("GET", ["users", id, "groups"]) => {
                if find(&users, id).is_none() {
                    return Reply::json(404, json!({ "error": "User not found" }));
                }
                let held = members.get(*id).cloned().unwrap_or_default();
                Reply::json(
                    200,
                    Value::Array(
                        GROUPS
                            .iter()
                            .filter(|(gid, _)| held.contains(*gid))
                            .map(|(gid, name)| json!({ "id": gid, "name": name, "path": format!("/{name}"), "subGroups": [] }))
                            .collect(),
                    ),
                )
            }
            (method @ ("PUT" | "DELETE"), ["users", id, "groups", gid]) => {
                if find(&users, id).is_none() {
                    return Reply::json(404, json!({ "error": "User not found" }));
                }
                if !GROUPS.iter().any(|(g, _)| g == gid) {
                    return Reply::json(404, json!({ "error": "Could not find group by id" }));
                }
                let held = members.entry(id.to_string()).or_default();
                if method == "PUT" {
                    held.insert(gid.to_string());
                } else {
                    held.remove(*gid);
                }
                Reply::empty(204)
            }
            _ => Reply::json(
                405,
                json!({ "error": "RESTEASY003650: No resource method found" }),
            ),
        }
    }
}

/// A running realm: `(base of the server, state)`.
pub async fn start() -> (String, Arc<Realm>) {
    let realm = Arc::new(Realm::default());
    let r = realm.clone();
    let base = serve(Arc::new(move |req: &Request| r.answer(req))).await;
    (base, realm)
}

/// The Keycloak recipe pointed at `base`, its client secret in `secret_path`.
pub fn document(base: &str, secret_path: &str) -> String {
    super::recipe(
        "keycloak.toml",
        &[
            ("https://keycloak.example.com", base),
            ("env:KEYCLOAK_CLIENT_SECRET", &format!("file:{secret_path}")),
        ],
    )
}
