//! Last-seen times of an SQL target's accounts (`[sql.accounts] last_seen`), read with the
//! column's name validated and quoted per dialect, for dormant-account revocation.

use super::{SqlTargetError, SqlTargetSpec, cast_text, driver, table_name};
use crate::domain::config::SqlIdent;

/// One account and when it was last seen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SeenAccount {
    /// The account's key (username).
    pub username: String,
    /// Last seen, Unix milliseconds (`None`: never, or a value that is not a time).
    pub last_seen: Option<i64>,
    /// The column's value as the target gave it.
    pub raw: Option<String>,
}

/// Every account of the target with its last-seen value (the statement has no values to
/// bind: the table and both columns are validated identifiers, quoted per dialect).
pub async fn last_seen(
    spec: &SqlTargetSpec,
    column: &SqlIdent,
) -> Result<Vec<SeenAccount>, SqlTargetError> {
    let d = spec.dialect;
    let sql = format!(
        "SELECT {}, {} FROM {}",
        cast_text(d, &spec.key_column),
        cast_text(d, column),
        table_name(spec)
    );
    driver::guarded(spec, spec.limits.statement_timeout(), |pool| async move {
        let rows = driver::fetch_text(&pool, &sql, &[], 2).await?;
        Ok(rows
            .into_iter()
            .filter_map(|mut row| {
                let raw = row.pop().flatten();
                let username = row.pop().flatten()?;
                Some(SeenAccount {
                    username,
                    last_seen: raw.as_deref().and_then(parse_seen),
                    raw,
                })
            })
            .collect())
    })
    .await
}

/// A last-seen value as Unix milliseconds: Unix seconds (or milliseconds above 10^11), an
/// RFC 3339 or `YYYY-MM-DD HH:MM:SS[.f][+zone]` time (UTC without a zone), or a date.
pub fn parse_seen(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i64>() {
        return Some(if n.abs() >= 100_000_000_000 {
            n
        } else {
            n * 1000
        });
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%#z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(text, format) {
            return Some(t.timestamp_millis());
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::parse_seen;

    #[test]
    fn last_seen_values_of_every_dialect_parse() {
        let noon = 1_764_676_800_000; // 2025-12-02 12:00:00 UTC
        for text in [
            "1764676800",
            "1764676800000",
            "2025-12-02 12:00:00",
            "2025-12-02 12:00:00+00",
            "2025-12-02 13:00:00+01:00",
            "2025-12-02T12:00:00Z",
            "2025-12-02 12:00:00.000000",
        ] {
            assert_eq!(parse_seen(text), Some(noon), "{text}");
        }
        assert_eq!(parse_seen("2025-12-02"), Some(noon - 12 * 3_600_000));
        assert_eq!(parse_seen("yesterday"), None);
    }
}
