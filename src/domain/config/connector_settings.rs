//! Connector settings that are not plain table mappings: SQL connection limits and circuit
//! breaker, and SCIM authentication (a bearer token or OAuth 2.0 client credentials).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::diagnostic::FieldError;
use crate::domain::secret::SecretRef;
use crate::domain::workflow::DurationSpec;

/// Time limits and the circuit breaker of one SQL target (`[sql.limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlLimits {
    /// How long to wait for a connection (default 5s).
    #[serde(default)]
    pub connect_timeout: Option<DurationSpec>,
    /// How long one statement (or a read) may run or wait on a lock (default 10s).
    #[serde(default)]
    pub statement_timeout: Option<DurationSpec>,
    /// Consecutive failures that open the circuit (default 3).
    #[serde(default)]
    pub breaker_failures: Option<u32>,
    /// How long an open circuit refuses calls before trying again (default 30s).
    #[serde(default)]
    pub breaker_cooldown: Option<DurationSpec>,
    /// Connections per target pool (default 4).
    #[serde(default)]
    pub max_connections: Option<u32>,
}

impl SqlLimits {
    /// Connection wait.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
            .map_or(Duration::from_secs(5), |d| d.duration())
    }

    /// Statement and lock wait.
    pub fn statement_timeout(&self) -> Duration {
        self.statement_timeout
            .map_or(Duration::from_secs(10), |d| d.duration())
    }

    /// Failures before the circuit opens.
    pub fn breaker_failures(&self) -> u32 {
        self.breaker_failures.unwrap_or(3).max(1)
    }

    /// How long the circuit stays open.
    pub fn breaker_cooldown(&self) -> Duration {
        self.breaker_cooldown
            .map_or(Duration::from_secs(30), |d| d.duration())
    }

    /// Pool size.
    pub fn max_connections(&self) -> u32 {
        self.max_connections.unwrap_or(4).clamp(1, 64)
    }

    /// Problems, by field path below `sql.limits`.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (field, value) in [
            ("sql.limits.connect_timeout", self.connect_timeout),
            ("sql.limits.statement_timeout", self.statement_timeout),
            ("sql.limits.breaker_cooldown", self.breaker_cooldown),
        ] {
            if value.is_some_and(|d| d.duration() > Duration::from_secs(3600)) {
                errors.push(FieldError::new(field, "at most 1h"));
            }
        }
        if self.breaker_failures == Some(0) {
            errors.push(FieldError::new(
                "sql.limits.breaker_failures",
                "must be at least 1",
            ));
        }
        if self.max_connections.is_some_and(|n| n == 0 || n > 64) {
            errors.push(FieldError::new(
                "sql.limits.max_connections",
                "must be between 1 and 64",
            ));
        }
        errors
    }
}

/// A SCIM 2.0 service (`[scim]`): where, and how to authenticate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimSettings {
    /// Base URL, e.g. `https://app.example.com/scim/v2`.
    pub base_url: String,
    /// Bearer token reference (or use `[scim.oauth]`).
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// OAuth 2.0 client credentials, instead of a fixed token.
    #[serde(default)]
    pub oauth: Option<OAuthClient>,
    /// Results per page when listing (default 100).
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Request timeout (default 10s).
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// What `create_account` does with an existing user (as for SQL targets).
    #[serde(default)]
    pub adopt_existing: bool,
}

/// OAuth 2.0 client credentials grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClient {
    /// Token endpoint.
    pub token_url: String,
    /// Client id (not secret).
    pub client_id: String,
    /// Client secret reference.
    pub client_secret: SecretRef,
    /// Requested scope, if the service needs one.
    #[serde(default)]
    pub scope: Option<String>,
}

impl ScimSettings {
    /// Problems, by field path.
    pub fn validate(&self, is_http_url: &dyn Fn(&str) -> bool) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match (&self.token, &self.oauth) {
            (None, None) => errors.push(FieldError::new(
                "scim",
                "needs `token` (a secret reference) or `[scim.oauth]` client credentials",
            )),
            (Some(_), Some(_)) => errors.push(FieldError::new(
                "scim.oauth",
                "give either `token` or `[scim.oauth]`, not both",
            )),
            _ => {}
        }
        if let Some(oauth) = &self.oauth
            && !is_http_url(&oauth.token_url)
        {
            errors.push(FieldError::new(
                "scim.oauth.token_url",
                format!("\"{}\" is not an http(s) URL", oauth.token_url),
            ));
        }
        if self.page_size.is_some_and(|n| n == 0 || n > 1000) {
            errors.push(FieldError::new(
                "scim.page_size",
                "must be between 1 and 1000",
            ));
        }
        errors
    }

    /// Request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
            .map_or(Duration::from_secs(10), |d| d.duration())
    }
}

/// `[sql.accounts]`: what the accounts table says about activity, and the scheduled
/// dormant-account run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlAccounts {
    /// Column with the account's last login: a timestamp, a date, or Unix seconds (or
    /// milliseconds); `gatehouse dormant` lists accounts not seen for N days.
    pub last_seen: super::SqlIdent,
    /// With `revoke_workflow`: the engine's hourly run creates a leaver request (for approval)
    /// for each account not seen for this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_after_days: Option<u32>,
    /// The leaver workflow those requests go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_workflow: Option<String>,
}

impl SqlAccounts {
    /// Problems of `[sql.accounts]`, by field path.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match (&self.revoke_after_days, &self.revoke_workflow) {
            (Some(0), _) => errors.push(FieldError::new(
                "sql.accounts.revoke_after_days",
                "must be at least 1",
            )),
            (Some(_), None) => errors.push(FieldError::new(
                "sql.accounts.revoke_after_days",
                "needs sql.accounts.revoke_workflow (the leaver workflow of the requests)",
            )),
            (None, Some(_)) => errors.push(FieldError::new(
                "sql.accounts.revoke_workflow",
                "needs sql.accounts.revoke_after_days",
            )),
            _ => {}
        }
        if let Some(workflow) = &self.revoke_workflow
            && !crate::domain::workflow::is_document_name(workflow)
        {
            errors.push(FieldError::new(
                "sql.accounts.revoke_workflow",
                format!("\"{workflow}\" is not a valid workflow name"),
            ));
        }
        errors
    }
}
