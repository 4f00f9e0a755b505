//! Microsoft Graph backend (reqwest): client-credentials token cached until shortly before it
//! expires and fetched again when the API says it expired; users by UPN, mail or
//! mailNickname; manager; transitive group membership; group members (transitive) and owners;
//! automatic replies (out of office); `@odata.nextLink` paging; 429 / 503 honouring
//! `Retry-After`; a timeout per call; any base URL (national clouds, test servers).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::domain::config::GraphSettings;
use crate::domain::secret::SecretValue;

use super::{DirPerson, DirectoryError};

const USER_FIELDS: &str = "id,displayName,mail,userPrincipalName,mailNickname";
/// Longest wait a `Retry-After` may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Most pages followed for one list.
const MAX_PAGES: usize = 1000;

/// A Graph directory.
#[derive(Debug)]
pub struct GraphDirectory {
    name: String,
    settings: GraphSettings,
    secret: SecretValue,
    http: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
    max_retries: u32,
}

/// What one GET answered.
enum Answer {
    Found(Value),
    NotFound,
}

impl GraphDirectory {
    /// A client for `settings`; the client secret is resolved now.
    pub fn new(name: &str, settings: &GraphSettings) -> Result<Self, DirectoryError> {
        let secret = settings
            .client_secret
            .resolve()
            .map_err(|e| DirectoryError::Config {
                directory: name.to_string(),
                field: "graph.client_secret".into(),
                message: e.to_string(),
            })?;
        let timeout = settings
            .timeout
            .map(|d| d.duration())
            .unwrap_or(Duration::from_secs(30));
        let mut builder = reqwest::Client::builder().timeout(timeout);
        if let Some(path) = &settings.ca_file {
            let certs = super::tls::reqwest_certificates(path).map_err(|message| {
                DirectoryError::Config {
                    directory: name.to_string(),
                    field: "graph.ca_file".into(),
                    message,
                }
            })?;
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|e| DirectoryError::Config {
            directory: name.to_string(),
            field: "graph".into(),
            message: format!("cannot build an HTTP client: {e}"),
        })?;
        Ok(Self {
            name: name.to_string(),
            settings: settings.clone(),
            secret,
            http,
            token: Mutex::new(None),
            max_retries: settings.max_retries.unwrap_or(4),
        })
    }

    fn unreachable(&self, url: &str, e: impl ToString) -> DirectoryError {
        DirectoryError::Unreachable {
            directory: self.name.clone(),
            url: url.to_string(),
            why: e.to_string(),
        }
    }

    fn protocol(&self, what: &str, why: impl ToString) -> DirectoryError {
        let mut why = why.to_string();
        if why.len() > 300 {
            let mut cut = 300;
            while !why.is_char_boundary(cut) {
                cut -= 1;
            }
            why.truncate(cut);
            why.push('…');
        }
        DirectoryError::Protocol {
            directory: self.name.clone(),
            what: what.to_string(),
            why,
        }
    }

    /// How long a 429 / 503 asks us to wait (seconds form; default 1s, at most a minute).
    fn retry_after(response: &reqwest::Response) -> Duration {
        response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(1))
            .min(MAX_RETRY_AFTER)
    }

    /// A token, fetched when there is none or it is about to expire (or `refresh`).
    async fn token(&self, refresh: bool) -> Result<String, DirectoryError> {
        let mut held = self.token.lock().await;
        if !refresh
            && let Some((token, until)) = held.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.settings.login_base(),
            self.settings.tenant_id
        );
        let scope = self.settings.scope();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.settings.client_id.as_str()),
            ("client_secret", self.secret.expose()),
            ("scope", scope.as_str()),
        ];
        let response = self
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| self.unreachable(&url, e))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(DirectoryError::Auth {
                directory: self.name.clone(),
                url,
                why: format!(
                    "{status}: {}",
                    body.get("error_description")
                        .or_else(|| body.get("error"))
                        .and_then(Value::as_str)
                        .unwrap_or("no error description")
                ),
            });
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| self.protocol("token", "the answer has no access_token"))?
            .to_string();
        let lifetime = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(300);
        // Renew a minute early (or halfway, for very short tokens).
        let early = Duration::from_secs(lifetime.min(120) / 2);
        let until = Instant::now() + Duration::from_secs(lifetime) - early;
        *held = Some((token.clone(), until));
        Ok(token)
    }

    /// GET `url` (absolute) with the token; retries after 429 / 503 and once with a fresh
    /// token after a 401.
    async fn get(&self, url: &str, query: &[(&str, &str)]) -> Result<Answer, DirectoryError> {
        let mut refreshed = false;
        let mut retries = 0;
        loop {
            let token = self.token(false).await?;
            let response = self
                .http
                .get(url)
                .query(query)
                .bearer_auth(&token)
                .header("ConsistencyLevel", "eventual")
                .send()
                .await
                .map_err(|e| self.unreachable(url, e))?;
            let status = response.status();
            if matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) && retries < self.max_retries
            {
                retries += 1;
                let wait = Self::retry_after(&response);
                tracing::info!(directory = %self.name, %status, wait_ms = wait.as_millis() as u64, "graph asked us to wait");
                tokio::time::sleep(wait).await;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                *self.token.lock().await = None;
                continue;
            }
            if status == StatusCode::NOT_FOUND {
                return Ok(Answer::NotFound);
            }
            let body: Value = response
                .json()
                .await
                .map_err(|e| self.protocol(&format!("GET {url}"), e))?;
            if !status.is_success() {
                let message = body
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("no error message");
                return Err(self.protocol(&format!("GET {url}"), format!("{status}: {message}")));
            }
            return Ok(Answer::Found(body));
        }
    }

    /// Every item of a list, following `@odata.nextLink`.
    async fn list(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<Vec<Value>>, DirectoryError> {
        let mut url = format!("{}{path}", self.settings.api_base());
        let mut query: Vec<(&str, &str)> = query.to_vec();
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let body = match self.get(&url, &query).await? {
                Answer::Found(body) => body,
                Answer::NotFound => return Ok(None),
            };
            if let Some(values) = body.get("value").and_then(Value::as_array) {
                items.extend(values.iter().cloned());
            }
            match body.get("@odata.nextLink").and_then(Value::as_str) {
                Some(next) => {
                    url = next.to_string();
                    query.clear();
                }
                None => return Ok(Some(items)),
            }
        }
        Err(self.protocol(path, format!("more than {MAX_PAGES} pages")))
    }

    fn login_of(user: &Value) -> Option<String> {
        user.get("mailNickname")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                user.get("userPrincipalName")
                    .and_then(Value::as_str)
                    .and_then(|upn| upn.split('@').next())
                    .map(str::to_string)
            })
    }

    fn person_of(user: &Value, manager: Option<String>) -> Option<DirPerson> {
        let login = Self::login_of(user)?;
        Some(DirPerson {
            name: user
                .get("displayName")
                .and_then(Value::as_str)
                .unwrap_or(&login)
                .to_string(),
            email: user.get("mail").and_then(Value::as_str).map(str::to_string),
            login,
            manager,
        })
    }

    /// The user object of `who` (UPN, mail or mailNickname).
    async fn user(&self, who: &str) -> Result<Option<Value>, DirectoryError> {
        let who = who.trim();
        let quoted = who.replace('\'', "''");
        let filter = if who.contains('@') {
            format!("userPrincipalName eq '{quoted}' or mail eq '{quoted}'")
        } else {
            format!("mailNickname eq '{quoted}'")
        };
        let found = self
            .list("/users", &[("$filter", &filter), ("$select", USER_FIELDS)])
            .await?
            .unwrap_or_default();
        if found.len() > 1 {
            return Err(self.protocol(
                &format!("look up {who}"),
                format!("{} users match", found.len()),
            ));
        }
        Ok(found.into_iter().next())
    }

    fn id_of(&self, user: &Value) -> Result<String, DirectoryError> {
        user.get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| self.protocol("user", "a user without an id"))
    }

    /// A person with their manager's login (a 404 on `/manager` means none).
    pub async fn person(&self, who: &str) -> Result<Option<DirPerson>, DirectoryError> {
        let Some(user) = self.user(who).await? else {
            return Ok(None);
        };
        let id = self.id_of(&user)?;
        let url = format!("{}/users/{id}/manager", self.settings.api_base());
        let manager = match self.get(&url, &[("$select", USER_FIELDS)]).await? {
            Answer::Found(manager) => Self::login_of(&manager),
            Answer::NotFound => None,
        };
        Ok(Self::person_of(&user, manager))
    }

    /// Transitive group membership by display name.
    pub async fn groups_of(&self, who: &str) -> Result<Vec<String>, DirectoryError> {
        let Some(user) = self.user(who).await? else {
            return Ok(Vec::new());
        };
        let id = self.id_of(&user)?;
        let groups = self
            .list(
                &format!("/users/{id}/transitiveMemberOf/microsoft.graph.group"),
                &[("$select", "id,displayName")],
            )
            .await?
            .unwrap_or_default();
        Ok(groups
            .iter()
            .filter_map(|g| g.get("displayName").and_then(Value::as_str))
            .map(str::to_string)
            .collect())
    }

    /// Transitive members or owners of the group with display name `group`.
    pub async fn group_list(
        &self,
        group: &str,
        owners: bool,
    ) -> Result<Option<Vec<String>>, DirectoryError> {
        let filter = format!("displayName eq '{}'", group.replace('\'', "''"));
        let found = self
            .list(
                "/groups",
                &[("$filter", &filter), ("$select", "id,displayName")],
            )
            .await?
            .unwrap_or_default();
        let Some(id) = found
            .first()
            .and_then(|g| g.get("id"))
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        let path = if owners {
            format!("/groups/{id}/owners/microsoft.graph.user")
        } else {
            format!("/groups/{id}/transitiveMembers/microsoft.graph.user")
        };
        let people = self
            .list(&path, &[("$select", USER_FIELDS)])
            .await?
            .unwrap_or_default();
        Ok(Some(people.iter().filter_map(Self::login_of).collect()))
    }

    /// Automatic replies on now (`alwaysEnabled`, or `scheduled` with now inside the window).
    pub async fn out_of_office(&self, who: &str) -> Result<bool, DirectoryError> {
        let Some(user) = self.user(who).await? else {
            return Ok(false);
        };
        let id = self.id_of(&user)?;
        let url = format!(
            "{}/users/{id}/mailboxSettings/automaticRepliesSetting",
            self.settings.api_base()
        );
        let Answer::Found(setting) = self.get(&url, &[]).await? else {
            return Ok(false);
        };
        let at = |field: &str| {
            setting
                .pointer(&format!("/{field}/dateTime"))
                .and_then(Value::as_str)
                .and_then(|t| {
                    chrono::NaiveDateTime::parse_from_str(
                        t.trim_end_matches('Z'),
                        "%Y-%m-%dT%H:%M:%S%.f",
                    )
                    .ok()
                })
        };
        Ok(match setting.get("status").and_then(Value::as_str) {
            Some("alwaysEnabled") => true,
            Some("scheduled") => {
                let now = chrono::Utc::now().naive_utc();
                match (at("scheduledStartDateTime"), at("scheduledEndDateTime")) {
                    (Some(start), Some(end)) => start <= now && now < end,
                    _ => false,
                }
            }
            _ => false,
        })
    }

    /// Get a token and read one user.
    pub async fn test(&self) -> Result<String, DirectoryError> {
        self.token(true).await?;
        let users = self
            .get(
                &format!("{}/users", self.settings.api_base()),
                &[("$top", "1"), ("$select", "id")],
            )
            .await?;
        match users {
            Answer::Found(_) => Ok(format!(
                "graph {}: token for client {} in tenant {}; users readable",
                self.settings.api_base(),
                self.settings.client_id,
                self.settings.tenant_id
            )),
            Answer::NotFound => Err(self.protocol("GET /users", "404 Not Found")),
        }
    }
}
