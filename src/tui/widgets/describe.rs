//! The describe view's text (k9s' describe is the model): a timeline entry, job, audit row or
//! log line as readable `key: value` lines — nested values indented, lists as `- item`, times
//! local and readable, changes as `old → new`. Pure functions of the row; the popup scrolls.

use serde_json::Value;

use crate::store::api::{AuditRow, JobRow, LogRow, Millis, TimelineEntry};

/// The console's time zone (its offset when it started; render never reads the zone).
pub type Tz = chrono::FixedOffset;

/// The local offset now, for the console's state at start-up.
pub fn local_tz() -> Tz {
    chrono::Local::now().fixed_offset().timezone()
}

/// A time as local `YYYY-MM-DD HH:MM:SS ±ZZ:ZZ`.
pub fn local_time(at: Millis, tz: Tz) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .map(|t| {
            t.with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string()
        })
        .unwrap_or_else(|| at.to_string())
}

/// True for a key whose number is a time in epoch milliseconds (`at`, `*_at`, `*_ms` times).
fn is_time_key(key: &str) -> bool {
    key == "at" || key.ends_with("_at") || key == "deadline" || key == "due"
}

fn scalar(key: &str, v: &Value, tz: Tz) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.replace('\n', " ⏎ "),
        Value::Number(n) if is_time_key(key) => match n.as_i64() {
            Some(ms) if ms > 1_000_000_000_000 => local_time(ms, tz),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// A JSON value as indented `key: value` lines.
pub fn value_lines(value: &Value, indent: usize, tz: Tz) -> Vec<String> {
    let pad = " ".repeat(indent);
    let mut out = Vec::new();
    match value {
        Value::Object(map) if map.is_empty() => out.push(format!("{pad}(empty)")),
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        out.push(format!("{pad}{k}:"));
                        out.extend(value_lines(v, indent + 2, tz));
                    }
                    Value::Array(a) if !a.is_empty() && !a.iter().all(is_short_scalar) => {
                        out.push(format!("{pad}{k}:"));
                        out.extend(value_lines(v, indent + 2, tz));
                    }
                    Value::Array(a) => out.push(format!(
                        "{pad}{k}: {}",
                        a.iter()
                            .map(|x| scalar(k, x, tz))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                    other => out.push(format!("{pad}{k}: {}", scalar(k, other, tz))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                let nested = value_lines(item, indent + 2, tz);
                match (item, nested.split_first()) {
                    (Value::Object(_) | Value::Array(_), Some((first, rest))) => {
                        out.push(format!("{pad}- {}", first.trim_start()));
                        out.extend(rest.iter().cloned());
                    }
                    _ => out.push(format!("{pad}- {}", scalar("", item, tz))),
                }
            }
        }
        other => out.push(format!("{pad}{}", scalar("", other, tz))),
    }
    out
}

fn is_short_scalar(v: &Value) -> bool {
    match v {
        Value::String(s) => s.chars().count() <= 24,
        Value::Object(_) | Value::Array(_) => false,
        _ => true,
    }
}

/// `key: old → new` for every top-level key that differs between `before` and `after`, then
/// the keys that did not change.
pub fn change_lines(before: Option<&Value>, after: Option<&Value>, tz: Tz) -> Vec<String> {
    let empty = serde_json::Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut changed = Vec::new();
    let mut same = Vec::new();
    for k in keys {
        let old = b.get(k.as_str());
        let new = a.get(k.as_str());
        let show = |v: Option<&Value>| match v {
            None => "(none)".to_string(),
            Some(v @ (Value::Object(_) | Value::Array(_))) => v.to_string(),
            Some(v) => scalar(k, v, tz),
        };
        if old == new {
            same.push(format!("  {k}: {}", show(new)));
        } else {
            changed.push(format!("  {k}: {} → {}", show(old), show(new)));
        }
    }
    let mut out = vec!["changes:".to_string()];
    if changed.is_empty() {
        out.push("  (none)".to_string());
    }
    out.extend(changed);
    if !same.is_empty() {
        out.push("unchanged:".to_string());
        out.extend(same);
    }
    // A non-object before/after (rare) is shown whole.
    for (label, v) in [("before", before), ("after", after)] {
        if let Some(v) = v.filter(|v| !v.is_object()) {
            out.push(format!("{label}:"));
            out.extend(value_lines(v, 2, tz));
        }
    }
    out
}

/// What a provisioning step did, in words, from the output it recorded:
/// `created account gnunez on demo-target (1 statement)`; `None` for other entries.
pub fn step_summary(e: &TimelineEntry) -> Option<String> {
    if e.kind != "step" {
        return None;
    }
    let out = e.detail.get("output")?.as_object()?;
    let account = out.get("account")?.as_str()?;
    let connector = out.get("connector").and_then(Value::as_str).unwrap_or("?");
    let outcome = out
        .get("outcome")
        .and_then(Value::as_str)
        .unwrap_or("applied");
    let statements = out
        .get("statements")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let plural = if statements == 1 { "" } else { "s" };
    Some(if outcome == "unchanged" {
        format!("account {account} on {connector} already as planned (nothing written)")
    } else {
        format!("{outcome} account {account} on {connector} ({statements} statement{plural})")
    })
}

/// A timeline entry.
pub fn timeline_entry(e: &TimelineEntry, tz: Tz) -> Vec<String> {
    let mut out = vec![
        format!("at:       {}", local_time(e.at, tz)),
        format!("kind:     {}", e.kind),
        format!("summary:  {}", e.summary),
    ];
    if let Some(what) = step_summary(e) {
        out.push(format!("did:      {what}"));
    }
    if !e.detail.is_null() {
        out.push(String::new());
        out.extend(value_lines(&e.detail, 0, tz));
    }
    out
}

/// An audit row, with its changes as `old → new`.
pub fn audit_row(r: &AuditRow, tz: Tz) -> Vec<String> {
    let mut out = vec![
        format!("#{}      {}", r.id, r.action),
        format!("at:       {}", local_time(r.at, tz)),
        format!("actor:    {} ({})", r.actor, r.source),
        format!("entity:   {} {}", r.entity, r.entity_id),
        String::new(),
    ];
    out.extend(change_lines(r.before.as_ref(), r.after.as_ref(), tz));
    out.push(String::new());
    out.push(format!("hash:     {}", r.hash));
    out.push(format!("previous: {}", r.prev_hash));
    out
}

/// A job.
pub fn job(j: &JobRow, tz: Tz) -> Vec<String> {
    let mut out = vec![
        format!("job:      #{} {}", j.id, j.kind),
        format!("queue:    {}", j.queue),
        format!("state:    {}", j.state.name()),
        format!("attempts: {} of {}", j.attempts, j.max_attempts),
        format!("run at:   {}", local_time(j.run_at, tz)),
        format!("created:  {}", local_time(j.created_at, tz)),
    ];
    if let Some(id) = j.request_id {
        out.push(format!("request:  {id} (:rq {id} opens it)"));
    }
    if let Some(owner) = &j.lease_owner {
        let until = j
            .lease_expires_at
            .map(|t| local_time(t, tz))
            .unwrap_or_default();
        out.push(format!("leased:   {owner} until {until}"));
    }
    if let Some(key) = &j.unique_key {
        out.push(format!("unique:   {key}"));
    }
    if let Some(e) = &j.last_error {
        out.push(format!("error:    {e}"));
    }
    out.push(String::new());
    out.push("payload:".to_string());
    out.extend(value_lines(&j.payload, 2, tz));
    out
}

/// A log line: its fields, then `key=value` pairs of the message one per line (times in
/// epoch milliseconds shown local).
pub fn log_line(l: &LogRow, tz: Tz) -> Vec<String> {
    let mut out = vec![
        format!("at:       {}", local_time(l.at, tz)),
        format!("level:    {}", l.level),
        format!("target:   {}", l.target),
    ];
    if let Some(id) = l.request_id {
        out.push(format!("request:  {id}"));
    }
    if let Some(id) = l.job_id {
        out.push(format!("job:      {id}"));
    }
    if let Some(w) = &l.worker {
        out.push(format!("worker:   {w}"));
    }
    out.push(String::new());
    out.push(l.message.clone());
    let pairs: Vec<(&str, &str)> = l
        .message
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .collect();
    if !pairs.is_empty() {
        out.push(String::new());
        for (k, v) in pairs {
            let shown = match v.parse::<i64>() {
                Ok(ms) if is_time_key(k) && ms > 1_000_000_000_000 => local_time(ms, tz),
                _ => v.to_string(),
            };
            out.push(format!("{k}: {shown}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_reads_as_key_value_text() {
        let v = json!({
            "step": "create-account",
            "output": {"statements": [{"sql": "INSERT INTO users", "params": ["gnunez", 1]}]},
            "access": ["vpn", "github"],
            "error": null
        });
        let lines = value_lines(&v, 0, Tz::east_opt(0).expect("utc"));
        assert!(
            lines.contains(&"access: vpn, github".to_string()),
            "{lines:?}"
        );
        assert!(lines.contains(&"error: -".to_string()), "{lines:?}");
        assert!(lines.contains(&"output:".to_string()));
        assert!(lines.contains(&"  statements:".to_string()), "{lines:?}");
        assert!(
            lines.contains(&"    - params: gnunez, 1".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"      sql: INSERT INTO users".to_string()),
            "{lines:?}"
        );
    }

    #[test]
    fn changes_read_old_to_new() {
        let lines = change_lines(
            Some(&json!({"status": "pending", "version": 1})),
            Some(&json!({"status": "approved", "version": 2, "overridden": true})),
            Tz::east_opt(0).expect("utc"),
        );
        assert_eq!(lines[0], "changes:");
        assert!(
            lines.contains(&"  status: pending → approved".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"  overridden: (none) → true".to_string()),
            "{lines:?}"
        );
    }

    #[test]
    fn steps_say_what_happened() {
        let mut e = TimelineEntry {
            at: 0,
            kind: "step".into(),
            summary: "create-account done".into(),
            detail: json!({"output": {"outcome": "created", "account": "gnunez",
                "connector": "demo-target", "statements": [{"sql": "INSERT"}]}}),
        };
        assert_eq!(
            step_summary(&e).as_deref(),
            Some("created account gnunez on demo-target (1 statement)")
        );
        e.detail = json!({"output": null});
        assert_eq!(step_summary(&e), None);
    }

    #[test]
    fn epoch_milliseconds_become_times() {
        let lines = value_lines(
            &json!({"retry_at": 1_796_079_907_799_i64, "count": 3}),
            0,
            Tz::east_opt(0).expect("utc"),
        );
        assert!(lines[1].starts_with("retry_at: 2026-"), "{lines:?}");
        assert_eq!(lines[0], "count: 3");
    }
}
