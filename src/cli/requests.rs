//! The request verbs: `request new | list | show | fix`, `approve` and `reject`.

use std::io::Write as _;
use std::process::ExitCode;

use super::args::*;
use super::{CliError, Context};
use crate::domain::inert::{inert, inert_json};
use crate::store::Store;
use crate::store::api::*;

pub(super) fn parse_fields(
    fields: &[String],
) -> Result<serde_json::Map<String, serde_json::Value>, CliError> {
    let mut map = serde_json::Map::new();
    for (i, field) in fields.iter().enumerate() {
        let (key, value) = field.split_once('=').ok_or_else(|| {
            CliError::msg(
                format!("--field #{} `{field}`", i + 1),
                "expected KEY=VALUE, e.g. --field team=sales",
            )
        })?;
        if key.trim().is_empty() {
            return Err(CliError::msg(
                format!("--field #{} `{field}`", i + 1),
                "empty key",
            ));
        }
        map.insert(
            key.trim().to_string(),
            serde_json::Value::String(value.to_string()),
        );
    }
    Ok(map)
}

pub(super) async fn request_new(
    store: &Store,
    actor: &Actor,
    args: NewRequestArgs,
) -> Result<ExitCode, CliError> {
    let payload = parse_fields(&args.fields)?;
    let row = store
        .create_request(
            actor,
            NewRequest {
                workflow: args.workflow.clone(),
                kind: args.kind,
                subject_name: args.name,
                subject_email: args.email,
                username: args.username,
                requester: args.requester.unwrap_or_else(|| actor.user.clone()),
                source: "cli".into(),
                payload: serde_json::Value::Object(payload),
            },
        )
        .await
        .context(|| format!("creating a request for workflow {}", args.workflow))?;
    println!("request {} created ({})", row.id, row.state);
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn request_fix(
    store: &Store,
    actor: &Actor,
    args: FixArgs,
) -> Result<ExitCode, CliError> {
    let id = args.id;
    let fields = parse_fields(&args.fields)?;
    let current = store
        .request(id)
        .await
        .context(|| format!("reading request {id}"))?;
    let fix = crate::store::TriageFix {
        subject_name: args.name,
        subject_email: args.email,
        username: args.username,
        fields,
    };
    let row = store
        .resolve_triage(actor, id, current.version, fix)
        .await
        .context(|| format!("fixing request {id}"))?;
    println!(
        "request {} is {} again; validation runs next",
        row.id, row.state
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn fmt_time(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

pub(super) async fn request_list(store: &Store, args: ListArgs) -> Result<ExitCode, CliError> {
    let filter = RequestFilter {
        state: args.state,
        workflow: args.workflow,
        text: args.text,
    };
    let page = store
        .list_requests(&filter, args.after, args.limit.clamp(1, 1000))
        .await
        .context(|| "listing requests".into())?;
    let mut out = std::io::stdout().lock();
    for r in &page.rows {
        // Stored text is printed inert: control characters shown, never sent to the terminal.
        let line = if args.json {
            inert_json(&serde_json::to_string(r).unwrap_or_default()).into_owned()
        } else {
            format!(
                "{:>7}  {:<22} {:<20} {:<26} {}",
                r.id,
                r.state.to_string(),
                inert(&r.workflow),
                inert(&r.subject_name),
                fmt_time(r.created_at)
            )
        };
        let _ = writeln!(out, "{line}");
    }
    if let Some(next) = page.next {
        let _ = writeln!(out, "-- more: --after {next}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn request_show(store: &Store, id: i64) -> Result<ExitCode, CliError> {
    let d = store
        .request_detail(id)
        .await
        .context(|| format!("reading request {id}"))?;
    let r = &d.request;
    // Every stored text goes through `inert`: a name such as "\x1b[2J" is shown as "␛[2J".
    println!(
        "request {}  {}  ({} {})",
        r.id,
        r.state,
        inert(&r.kind),
        inert(&r.workflow)
    );
    println!(
        "  person     {} <{}>",
        inert(&r.subject_name),
        inert(r.subject_email.as_deref().unwrap_or("-"))
    );
    println!(
        "  username   {}",
        inert(r.username.as_deref().unwrap_or("-"))
    );
    println!(
        "  requester  {} via {}",
        inert(&r.requester),
        inert(&r.source)
    );
    println!(
        "  version    {}   created {}",
        r.version,
        fmt_time(r.created_at)
    );
    if let Some(e) = &r.last_error {
        println!("  error      {}", inert(e));
    }
    if let Some(m) = &d.intake {
        println!(
            "  e-mail     {:?} from {} (mailbox {}, UID {}/{}): {}{}",
            inert(&m.summary.subject),
            inert(m.summary.from.as_deref().unwrap_or("-")),
            inert(&m.mailbox),
            m.uidvalidity,
            m.uid,
            m.verdict,
            m.reason
                .as_deref()
                .map(|r| format!(" — {}", inert(r)))
                .unwrap_or_default()
        );
        let rules: Vec<String> = m
            .evidence
            .rules
            .iter()
            .map(|v| format!("{}={}", inert(&v.rule), inert(&v.outcome)))
            .collect();
        println!(
            "  evidence   {} {}{}",
            inert(&m.evidence.mode),
            rules.join(" "),
            m.evidence
                .model_error
                .as_deref()
                .map(|e| format!(" ({})", inert(e)))
                .unwrap_or_default()
        );
    }
    for a in &d.approvals {
        println!(
            "  stage {} {:<16} {:<10} {:<9} approvers: {}",
            a.stage + 1,
            inert(&a.stage_name),
            inert(&a.policy),
            inert(&a.status),
            inert(&a.approvers.join(", "))
        );
        for dec in &a.decisions {
            println!(
                "      {:?} by {} at {}{}",
                dec.decision,
                inert(&dec.approver),
                fmt_time(dec.decided_at),
                dec.reason
                    .as_deref()
                    .map(|r| format!(": {}", inert(r)))
                    .unwrap_or_default()
            );
        }
    }
    if r.state.name() == "provisioning"
        && let Some(wait) =
            d.timeline.iter().rev().find(|t| {
                t.kind == "step" && t.summary.starts_with(crate::engine::grace::WAITING_STEP)
            })
    {
        let at = wait
            .detail
            .pointer("/output/revoke_at")
            .and_then(|v| v.as_str())
            .unwrap_or("-");
        println!(
            "  waiting    for the grace period: revoke at {} (gatehouse cancel {} cancels it)",
            inert(at),
            r.id
        );
    }
    println!("  timeline:");
    for t in &d.timeline {
        println!(
            "    {}  {:<9} {}",
            fmt_time(t.at),
            inert(&t.kind),
            inert(&t.summary)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn decide(
    store: &Store,
    actor: &Actor,
    request_id: i64,
    decision: Decision,
    reason: Option<String>,
) -> Result<ExitCode, CliError> {
    let what = || format!("deciding request {request_id}");
    let detail = store.request_detail(request_id).await.context(what)?;
    let pending = detail
        .approvals
        .iter()
        .find(|a| a.status == "pending")
        .ok_or_else(|| {
            CliError::msg(
                what(),
                format!("no pending approval (request is {})", detail.request.state),
            )
        })?;
    let row = store
        .decide_approval(actor, pending.id, pending.version, decision, reason)
        .await
        .context(what)?;
    println!(
        "request {request_id} stage {} ({}): {} by {}",
        row.stage + 1,
        inert(&row.stage_name),
        inert(&row.status),
        inert(&actor.user)
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_need_key_and_equals() {
        assert!(parse_fields(&["team=sales".into()]).is_ok());
        assert!(parse_fields(&["team".into()]).is_err());
        assert!(parse_fields(&["=x".into()]).is_err());
    }
}
