//! Notifications through a real SMTP server on loopback (aiosmtpd from tests/servers.sh, which
//! writes every accepted message into `GATEHOUSE_TEST_SMTP_DIR` and refuses `refuse*`
//! recipients with 550): the approval request arrives at the approver's directory address with
//! the workflow's template rendered; a rejection carries the reason; a refused recipient fails
//! the job with the server's reason; the welcome mail is queued for 08:00 UTC on the start
//! date and, for a start date already passed, sent at once. Every send is in the timeline.
//! Without the server: a note and return, or a failure under CI.

mod approvals_support;
#[allow(dead_code)]
mod notify_support;
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use approvals_support::{DIRECTORY, detail, pending, three_workers};
use gatehouse::engine::notify::welcome_at;
use gatehouse::store::Store;
use gatehouse::store::api::{Actor, CommandApi, Decision, JobState, NewRequest, ReadApi};
use notify_support::{
    Received, jobs_of, loopback_notifier, mail_steps, nonce, received, save_documents, smtp_server,
    wait_until,
};
use serde_json::json;
use store_db::{Kind, actor, fresh};

const WORKFLOW: &str = r#"kind = "workflow"
name = "chain"
team = "sales"

[intake]
sources = ["cli"]
kinds = ["joiner"]

[[stages]]
name = "manager"
policy = "any"
approvers = ["line_manager"]

[notifications.approval_request]
subject = "Approval needed: {{ subject_name }} joins {{ team }}"
body = "{{ requester }} asks for an account for {{ subject_name }} ({{ subject_email }}).\nStage: {{ stage }}. Approvers: {{ approver }}.\n{{ chain }}"
html = "<p>{{ requester }} asks for an account for <b>{{ subject_name }}</b>.</p>"

[notifications.rejected]
subject = "Request for {{ subject_name }} rejected"
body = "{{ approver }} rejected the request at stage {{ stage }}: {{ reason }}"
"#;

const DIRECT: &str = r#"kind = "workflow"
name = "direct"
team = "sales"

[intake]
sources = ["cli"]
kinds = ["joiner"]

[notifications.welcome]
subject = "Welcome to {{ team }}, {{ first_name }}"
body = "Your login is {{ username }}. See you on {{ start_date }}."
"#;

async fn configure(store: &Store, port: u16) {
    save_documents(
        store,
        &[
            ("directory", "people", DIRECTORY.to_string()),
            ("workflow", "chain", WORKFLOW.to_string()),
            ("workflow", "direct", DIRECT.to_string()),
            ("notifier", "loopback", loopback_notifier(port, "")),
        ],
    )
    .await;
}

fn joiner(
    workflow: &str,
    username: &str,
    tag: &str,
    requester: &str,
    start_date: &str,
) -> NewRequest {
    NewRequest {
        workflow: workflow.into(),
        kind: "joiner".into(),
        subject_name: format!("Gina Tester{tag}"),
        subject_email: Some(format!("gina-{tag}@example.com")),
        username: Some(username.into()),
        requester: requester.into(),
        source: "cli".into(),
        payload: json!({"team": "sales", "start_date": start_date}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approval_request_and_rejection_mail_through_a_real_smtp_server_sqlite() {
    approval_request_and_rejection(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approval_request_and_rejection_mail_through_a_real_smtp_server_postgres() {
    approval_request_and_rejection(Kind::Postgres).await;
}

async fn approval_request_and_rejection(kind: Kind) {
    let Some((port, dir)) = smtp_server() else {
        return;
    };
    let Some(db) = fresh(kind).await else {
        return;
    };
    let s = &db.store;
    configure(s, port).await;
    let (stop, workers) = three_workers(s);
    let tag = nonce();

    // The stage opens with ann (gina's line manager in the directory): ann gets the request.
    let requester = format!("hr-{tag}@example.com");
    let r = s
        .create_request(
            &actor("admin"),
            joiner("chain", "gina", &tag, &requester, "2030-01-07"),
        )
        .await
        .expect("create");
    let mail = wait_until("the approval request mail", async || {
        received(&dir, &tag)
            .into_iter()
            .find(|m| m.subject.starts_with("Approval needed"))
    })
    .await;
    assert_eq!(mail.to, vec!["ann@example.com"]);
    assert_eq!(
        mail.subject,
        format!("Approval needed: Gina Tester{tag} joins sales")
    );
    assert_eq!(
        mail.body.trim_end(),
        format!(
            "{requester} asks for an account for Gina Tester{tag} (gina-{tag}@example.com).\nStage: manager. Approvers: ann.\n1. manager (any): ann — waiting"
        )
    );
    assert_eq!(
        mail.html.as_deref().map(str::trim_end),
        Some(
            format!("<p>{requester} asks for an account for <b>Gina Tester{tag}</b>.</p>").as_str()
        )
    );
    let d = wait_until("the send in the timeline", async || {
        let d = detail(s, r.id).await;
        mail_steps(&d, "notify.approval_request")
            .iter()
            .any(|st| st["output"]["delivered"] == json!(["ann@example.com"]))
            .then_some(d)
    })
    .await;
    // The attempt that delivered is the last one (a transient failure before it is retried).
    let steps = mail_steps(&d, "notify.approval_request");
    let step = steps.last().expect("a send step");
    assert_eq!(step["output"]["delivered"], json!(["ann@example.com"]));
    assert_eq!(step["output"]["notifier"], "loopback");
    assert_eq!(step["error"], serde_json::Value::Null);

    // ann rejects with a reason: the requester gets it.
    let a = pending(&d);
    s.decide_approval(
        &actor("ann"),
        a.id,
        a.version,
        Decision::Reject,
        Some(format!("no budget for {tag}")),
    )
    .await
    .expect("reject");
    let mail = wait_until("the rejection mail", async || {
        received(&dir, &tag)
            .into_iter()
            .find(|m| m.subject.contains("rejected"))
    })
    .await;
    assert_eq!(mail.to, vec![requester.clone()]);
    assert_eq!(
        mail.body.trim_end(),
        format!("ann rejected the request at stage manager: no budget for {tag}")
    );
    let rejected = wait_until("the rejection job", async || {
        jobs_of(s, r.id)
            .await
            .into_iter()
            .find(|j| j.kind == "notify.rejected" && j.state == JobState::Completed)
    })
    .await;
    assert_eq!(rejected.last_error, None);

    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_request_tells_its_requester_and_waiting_approvers() {
    let Some((port, dir)) = smtp_server() else {
        return;
    };
    let Some(db) = fresh(Kind::Sqlite).await else {
        return;
    };
    let s = &db.store;
    configure(s, port).await;
    let (stop, workers) = three_workers(s);
    let tag = nonce();
    let requester = format!("hr-{tag}@example.com");
    let r = s
        .create_request(
            &actor("admin"),
            joiner("chain", "gina", &tag, &requester, "2030-01-07"),
        )
        .await
        .expect("create");
    wait_until("the stage", async || {
        let d = detail(s, r.id).await;
        d.approvals
            .iter()
            .any(|a| a.status == "pending")
            .then_some(())
    })
    .await;
    s.cancel_request(&actor("admin"), r.id, Some(format!("duplicate {tag}")))
        .await
        .expect("cancel");
    // The built-in template: who cancelled, why; to the requester and to ann, who was to decide.
    let mails = wait_until("both cancellation mails", async || {
        let found: Vec<Received> = received(&dir, &tag)
            .into_iter()
            .filter(|m| m.subject.ends_with("cancelled"))
            .collect();
        (found.len() == 2).then_some(found)
    })
    .await;
    let mut to: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, vec!["ann@example.com".to_string(), requester.clone()]);
    assert_eq!(
        mails[0].subject,
        format!("Request for Gina Tester{tag} cancelled")
    );
    assert_eq!(
        mails[0].body.trim_end(),
        format!(
            "The joiner request {} for Gina Tester{tag} was cancelled by admin.\nReason: duplicate {tag}\nNothing more is needed from you.",
            r.id
        )
    );
    let d = wait_until("the send in the timeline", async || {
        let d = detail(s, r.id).await;
        (!mail_steps(&d, "notify.cancelled").is_empty()).then_some(d)
    })
    .await;
    assert_eq!(
        mail_steps(&d, "notify.cancelled")[0]["error"],
        serde_json::Value::Null
    );

    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refusing_server_fails_the_job_with_its_reason() {
    let Some((port, _dir)) = smtp_server() else {
        return;
    };
    let Some(db) = fresh(Kind::Sqlite).await else {
        return;
    };
    let s = &db.store;
    configure(s, port).await;
    let (stop, workers) = three_workers(s);
    let tag = nonce();
    // The sink refuses every `refuse*` recipient with 550.
    let requester = format!("refuse-{tag}@example.com");
    let r = s
        .create_request(
            &actor("admin"),
            joiner("chain", "gina", &tag, &requester, "2030-01-07"),
        )
        .await
        .expect("create");
    let d = wait_until("the stage", async || {
        let d = detail(s, r.id).await;
        d.approvals
            .iter()
            .any(|a| a.status == "pending")
            .then_some(d)
    })
    .await;
    let a = pending(&d);
    s.decide_approval(
        &actor("ann"),
        a.id,
        a.version,
        Decision::Reject,
        Some("no".into()),
    )
    .await
    .expect("reject");
    let dead = wait_until("the rejection job to die", async || {
        jobs_of(s, r.id)
            .await
            .into_iter()
            .find(|j| j.kind == "notify.rejected" && j.state == JobState::Dead)
    })
    .await;
    let why = dead.last_error.expect("a reason");
    assert!(why.contains(&requester), "{why}");
    assert!(why.contains("550"), "{why}");
    assert!(why.contains("mailbox unavailable"), "{why}");
    assert_eq!(dead.attempts, 1, "a 5xx is not retried");
    let d = detail(s, r.id).await;
    let step = mail_steps(&d, "notify.rejected")
        .pop()
        .expect("the failed send in the timeline");
    assert_eq!(step["output"]["delivered"], json!([]));
    assert_eq!(step["output"]["failed"][0]["recipient"], json!(requester));
    assert_eq!(step["output"]["failed"][0]["permanent"], json!(true));
    assert!(step["error"].as_str().is_some_and(|e| e.contains("550")));

    // An admin retries the failed notification (the console's R on the request does this):
    // the refused recipient is tried again rather than skipped as already refused, and the
    // retry shows in the request's timeline.
    s.retry_job(&actor("admin"), dead.id).await.expect("retry");
    let again = wait_until("the retried job to die again", async || {
        jobs_of(s, r.id)
            .await
            .into_iter()
            .find(|j| j.id == dead.id && j.state == JobState::Dead && j.attempts == 2)
    })
    .await;
    assert!(again.last_error.is_some_and(|e| e.contains("550")));
    let d = detail(s, r.id).await;
    let steps = mail_steps(&d, "notify.rejected");
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[1]["output"]["already_refused"], json!([]));
    assert_eq!(
        steps[1]["output"]["failed"][0]["recipient"],
        json!(requester)
    );
    assert!(
        d.timeline
            .iter()
            .any(|e| e.kind == "audit" && e.summary == "job.retry by admin"),
        "the operator's retry is in the timeline"
    );

    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_welcome_mail_waits_for_the_start_date() {
    let Some((port, dir)) = smtp_server() else {
        return;
    };
    let Some(db) = fresh(Kind::Sqlite).await else {
        return;
    };
    let s = &db.store;
    configure(s, port).await;
    let (stop, workers) = three_workers(s);

    // A start date ahead: the welcome job waits in the queue for 08:00 UTC that day.
    let ahead = format!("ahead{}", nonce());
    let future = (chrono::Utc::now() + chrono::Duration::days(10))
        .format("%Y-%m-%d")
        .to_string();
    let r = s
        .create_request(
            &actor("admin"),
            joiner("direct", "gahead", &ahead, "hr@example.com", &future),
        )
        .await
        .expect("create");
    let welcome = wait_until("the queued welcome job", async || {
        jobs_of(s, r.id)
            .await
            .into_iter()
            .find(|j| j.kind == "notify.welcome")
    })
    .await;
    let date = chrono::NaiveDate::parse_from_str(&future, "%Y-%m-%d").expect("date");
    let eight = date
        .and_hms_opt(8, 0, 0)
        .expect("08:00")
        .and_utc()
        .timestamp_millis();
    assert_eq!(welcome.run_at, eight);
    assert_eq!(
        welcome.run_at,
        welcome_at(Some(&future), chrono_tz::UTC, s.now())
    );
    assert_eq!(welcome.state, JobState::Available);
    assert_eq!(welcome.queue, "notify");
    // The requester hears at once that provisioning completed (the built-in template) ...
    let done = wait_until("the completion notice", async || {
        received(&dir, &ahead)
            .into_iter()
            .find(|m| m.subject.ends_with("completed"))
    })
    .await;
    assert_eq!(done.to, vec!["hr@example.com"]);
    assert_eq!(
        done.subject,
        format!("Request for Gina Tester{ahead} completed")
    );
    // ... and the new person hears nothing before the start date.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let early: Vec<Received> = received(&dir, "Welcome")
        .into_iter()
        .filter(|m| m.to == vec![format!("gina-{ahead}@example.com")])
        .collect();
    assert!(early.is_empty(), "sent before the start date: {early:?}");

    // A start date already here: sent at once, to the new person, with the template filled.
    let today = format!("today{}", nonce());
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let r = s
        .create_request(
            &actor("admin"),
            joiner("direct", "gtoday", &today, "hr@example.com", &yesterday),
        )
        .await
        .expect("create");
    // The template's subject names the team and first name only: find it by recipient.
    let address = format!("gina-{today}@example.com");
    let mail = wait_until("the welcome mail", async || {
        received(&dir, "Welcome to sales, Gina")
            .into_iter()
            .find(|m| m.to == vec![address.clone()])
    })
    .await;
    assert_eq!(mail.subject, "Welcome to sales, Gina");
    assert_eq!(
        mail.body.trim_end(),
        format!("Your login is gtoday. See you on {yesterday}.")
    );
    let d = wait_until("the welcome send in the timeline", async || {
        let d = detail(s, r.id).await;
        (!mail_steps(&d, "notify.welcome").is_empty()).then_some(d)
    })
    .await;
    assert_eq!(
        mail_steps(&d, "notify.welcome")[0]["output"]["delivered"],
        json!([address])
    );

    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_server_is_retried_through_the_queue() {
    let Some((port, _dir)) = smtp_server() else {
        return;
    };
    let Some(db) = fresh(Kind::Sqlite).await else {
        return;
    };
    let s = &db.store;
    configure(s, port).await;
    let (stop, workers) = three_workers(s);
    let tag = nonce();
    // The sink answers every `busy*` recipient with 451.
    let requester = format!("busy-{tag}@example.com");
    let r = s
        .create_request(
            &actor("admin"),
            joiner("chain", "gina", &tag, &requester, "2030-01-07"),
        )
        .await
        .expect("create");
    let d = wait_until("the stage", async || {
        let d = detail(s, r.id).await;
        d.approvals
            .iter()
            .any(|a| a.status == "pending")
            .then_some(d)
    })
    .await;
    let a = pending(&d);
    s.decide_approval(
        &actor("ann"),
        a.id,
        a.version,
        Decision::Reject,
        Some("no".into()),
    )
    .await
    .expect("reject");
    let retrying = wait_until("the rejection job to wait for a retry", async || {
        jobs_of(s, r.id)
            .await
            .into_iter()
            .find(|j| j.kind == "notify.rejected" && j.state == JobState::Retrying)
    })
    .await;
    let why = retrying.last_error.clone().expect("a reason");
    assert!(why.contains("451"), "{why}");
    assert!(retrying.attempts < retrying.max_attempts, "{retrying:?}");
    assert!(retrying.run_at > s.now() - 1_000, "backoff: {retrying:?}");
    let d = detail(s, r.id).await;
    let step = mail_steps(&d, "notify.rejected")
        .pop()
        .expect("the attempt in the timeline");
    assert_eq!(step["output"]["failed"][0]["permanent"], json!(false));
    assert_eq!(step["output"]["retrying"], json!(true));

    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

/// The TLS ports, CA and password file of the sink, or `None` (skip) outside CI.
fn smtp_tls() -> Option<(u16, u16, String, String)> {
    let var = |name: &str| std::env::var(name).ok();
    let port = |name: &str| var(name).and_then(|p| p.parse::<u16>().ok());
    match (
        port("GATEHOUSE_TEST_SMTP_STARTTLS_PORT"),
        port("GATEHOUSE_TEST_SMTPS_PORT"),
        var("GATEHOUSE_TEST_SMTP_CA"),
        var("GATEHOUSE_TEST_SMTP_PASSWORD_FILE"),
    ) {
        (Some(starttls), Some(tls), Some(ca), Some(password))
            if std::net::TcpStream::connect(("127.0.0.1", tls)).is_ok() =>
        {
            Some((starttls, tls, ca, password))
        }
        _ => {
            assert!(
                !support::in_ci(),
                "CI: the SMTP test server's TLS ports are not running (tests/servers.sh)"
            );
            eprintln!("note: SMTP TLS test ports not running; start them with tests/servers.sh");
            None
        }
    }
}

/// Raw text of the received messages whose subject contains `tag`.
fn raw_received(dir: &PathBuf, tag: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(raw) = std::fs::read(entry.path()) else {
            continue;
        };
        let Some(message) = mail_parser::MessageParser::default().parse(&raw[..]) else {
            continue;
        };
        if message.subject().is_some_and(|s| s.contains(tag)) {
            out.push(String::from_utf8_lossy(&raw).into_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn starttls_and_implicit_tls_log_in_with_the_password_reference() {
    let Some((_, dir)) = smtp_server() else {
        return;
    };
    let Some((starttls, tls, ca, password_file)) = smtp_tls() else {
        return;
    };
    let wrong_dir = tempfile::tempdir().expect("tempdir");
    let wrong_file = wrong_dir.path().join("wrong-password");
    std::fs::write(&wrong_file, "not-the-password\n").expect("write");
    for (mode, port, password, wrong) in [
        ("starttls", starttls, format!("file:{password_file}"), false),
        ("tls", tls, format!("file:{password_file}"), false),
        ("tls", tls, format!("file:{}", wrong_file.display()), true),
    ] {
        let Some(db) = fresh(Kind::Sqlite).await else {
            return;
        };
        let s = &db.store;
        configure(s, 1).await; // a plain notifier first, replaced below
        let admin = Actor::operator("admin", "test");
        let head = s
            .config_versions("loopback")
            .await
            .expect("versions")
            .into_iter()
            .map(|v| v.version)
            .max()
            .unwrap_or(0);
        let document = format!(
            r#"kind = "notifier"
name = "loopback"
host = "localhost"
port = {port}
tls = "{mode}"
ca_file = "{ca}"
user = "gatehouse"
password = "{password}"
from = "gatehouse@example.com"
timeout = "10s"
"#
        );
        s.save_config(&admin, "notifier", "loopback", &document, "tls", head)
            .await
            .expect("save the TLS notifier");
        let (stop, workers) = three_workers(s);
        let tag = nonce();
        let r = s
            .create_request(
                &actor("admin"),
                joiner("chain", "gina", &tag, "hr@example.com", "2030-01-07"),
            )
            .await
            .expect("create");
        if wrong {
            let dead = wait_until("the job to fail on the login", async || {
                jobs_of(s, r.id).await.into_iter().find(|j| {
                    j.kind == "notify.approval_request"
                        && matches!(j.state, JobState::Dead | JobState::Retrying)
                })
            })
            .await;
            assert_eq!(dead.state, JobState::Dead, "{dead:?}");
            let why = dead.last_error.clone().unwrap_or_default();
            assert!(why.contains("535"), "{why}");
            assert!(
                !why.contains("not-the-password"),
                "the secret leaked: {why}"
            );
        } else {
            let job = wait_until("the approval request job to finish", async || {
                jobs_of(s, r.id).await.into_iter().find(|j| {
                    j.kind == "notify.approval_request"
                        && matches!(
                            j.state,
                            JobState::Completed | JobState::Dead | JobState::Retrying
                        )
                })
            })
            .await;
            assert_eq!(job.state, JobState::Completed, "{mode}: {job:?}");
            let raw =
                wait_until("the mail over TLS", async || raw_received(&dir, &tag).pop()).await;
            assert!(
                raw.contains("X-Authenticated-As: gatehouse\r\n"),
                "{mode}: {raw}"
            );
            assert!(
                raw.contains("X-Envelope-To: ann@example.com\r\n"),
                "{mode}: {raw}"
            );
        }
        stop.send(true).expect("stop");
        for w in workers {
            w.await.expect("worker");
        }
    }
}
