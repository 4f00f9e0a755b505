//! Dormant accounts: the accounts of an SQL target not seen for N days, by the connector's
//! `[sql.accounts] last_seen` column. Only a report: revoking one goes through a leaver
//! request and its approval like any other change.

use serde::Serialize;

use super::any::AnyConnector;
use super::sql::dormant::last_seen;
use super::{ConnectorError, parse_connector, sql_settings};
use crate::store::api::{ConfigVersion, Millis};

const DAY_MS: i64 = 86_400_000;

/// An account not seen for the asked number of days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DormantAccount {
    /// The account's username.
    pub username: String,
    /// Last seen, Unix milliseconds.
    pub last_seen: Millis,
    /// Whole days since then.
    pub idle_days: i64,
}

/// What `gatehouse dormant` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DormantReport {
    /// Connector name.
    pub connector: String,
    /// The threshold in days.
    pub days: u32,
    /// Accounts last seen before this moment are dormant (Unix milliseconds).
    pub cutoff: Millis,
    /// The dormant accounts, longest idle first.
    pub dormant: Vec<DormantAccount>,
    /// Accounts with no last-seen value (never seen): not reported as dormant.
    pub never_seen: Vec<String>,
    /// Accounts whose last-seen value is not a time, with the value.
    pub unreadable: Vec<(String, String)>,
}

/// The accounts of connector `doc` not seen for `days` days before `now`.
pub async fn dormant(
    doc: &ConfigVersion,
    days: u32,
    now: Millis,
) -> Result<DormantReport, ConnectorError> {
    let connector = parse_connector(doc)?;
    let config = |message: &str| ConnectorError::Config {
        name: doc.name.clone(),
        message: message.to_string(),
    };
    let settings = sql_settings(&doc.name, &connector)
        .map_err(|_| config("dormant accounts need an SQL connector"))?;
    let column = settings
        .accounts
        .as_ref()
        .map(|a| a.last_seen.clone())
        .ok_or_else(|| config("no last-seen column: set [sql.accounts] last_seen"))?;
    let AnyConnector::Sql(sql) = AnyConnector::from_doc(doc)? else {
        return Err(config("dormant accounts need an SQL connector"));
    };
    let seen = last_seen(sql.spec(), &column)
        .await
        .map_err(|source| ConnectorError::Sql {
            name: doc.name.clone(),
            source,
        })?;
    let cutoff = now.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
    let mut report = DormantReport {
        connector: doc.name.clone(),
        days,
        cutoff,
        dormant: Vec::new(),
        never_seen: Vec::new(),
        unreadable: Vec::new(),
    };
    for account in seen {
        match (account.last_seen, account.raw) {
            (Some(at), _) if at < cutoff => report.dormant.push(DormantAccount {
                username: account.username,
                last_seen: at,
                idle_days: (now - at) / DAY_MS,
            }),
            (Some(_), _) => {}
            (None, None) => report.never_seen.push(account.username),
            (None, Some(raw)) => report.unreadable.push((account.username, raw)),
        }
    }
    report.dormant.sort_by(|a, b| {
        a.last_seen
            .cmp(&b.last_seen)
            .then(a.username.cmp(&b.username))
    });
    report.never_seen.sort();
    Ok(report)
}
