//! The welcome mail goes out on the start date, at 08:00 in the request's or the workflow's time
//! zone, from the queue, with a controllable clock: the test moves this process's store clock
//! (`store::shift_clock`) to a minute before that moment (nothing is sent) and then past it (the
//! mail arrives at the real SMTP server on loopback). Its own test binary, because the clock
//! shift is process-wide. Without the SMTP server: a note and return, or a failure under CI.

mod approvals_support;
#[allow(dead_code)]
mod notify_support;
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use std::time::Duration;

use approvals_support::{DIRECTORY, detail, three_workers};
use gatehouse::engine::notify::welcome_at;
use gatehouse::store::api::{CommandApi, JobState, NewRequest};
use gatehouse::store::{Store, shift_clock};
use notify_support::{
    Received, jobs_of, loopback_notifier, mail_steps, nonce, received, save_documents, smtp_server,
    wait_until,
};
use serde_json::json;
use store_db::{Kind, actor, fresh};

/// Auckland is 13 hours ahead of UTC in December: its 08:00 is 19:00Z the day before.
const WORKFLOW: &str = r#"kind = "workflow"
name = "auckland"
team = "sales"
time_zone = "Pacific/Auckland"

[intake]
sources = ["cli"]
kinds = ["joiner"]

[notifications.welcome]
subject = "Kia ora {{ first_name }} {{ username }}"
body = "Your login is {{ username }}. See you on {{ start_date }}."
html = "<p>Your login is <b>{{ username }}</b>.</p>"
"#;

async fn configure(store: &Store, port: u16) {
    save_documents(
        store,
        &[
            ("directory", "people", DIRECTORY.to_string()),
            ("workflow", "auckland", WORKFLOW.to_string()),
            ("notifier", "loopback", loopback_notifier(port, "")),
        ],
    )
    .await;
}

fn joiner(username: &str, start_date: &str, time_zone: Option<&str>) -> NewRequest {
    let mut payload = json!({"team": "sales", "start_date": start_date});
    if let Some(zone) = time_zone {
        payload["time_zone"] = json!(zone);
    }
    NewRequest {
        workflow: "auckland".into(),
        kind: "joiner".into(),
        subject_name: format!("Gina {username}"),
        subject_email: Some(format!("{username}@example.com")),
        username: Some(username.into()),
        requester: "hr@example.com".into(),
        source: "cli".into(),
        payload,
    }
}

/// Mail to the new person `username` (the requester gets the completion notice at once).
fn welcomes(dir: &std::path::PathBuf, username: &str) -> Vec<Received> {
    received(dir, username)
        .into_iter()
        .filter(|m| m.to == vec![format!("{username}@example.com")])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_welcome_mail_goes_out_on_the_start_date_in_the_right_zone() {
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
    let start = (chrono::Utc::now() + chrono::Duration::days(10))
        .format("%Y-%m-%d")
        .to_string();
    let date = chrono::NaiveDate::parse_from_str(&start, "%Y-%m-%d").expect("date");

    // The workflow's zone, and a request that names its own.
    let kiwi = format!("kiwi{tag}");
    let berliner = format!("berliner{tag}");
    let mut welcome_jobs = Vec::new();
    for (username, zone) in [(&kiwi, None), (&berliner, Some("Europe/Berlin"))] {
        let r = s
            .create_request(&actor("admin"), joiner(username, &start, zone))
            .await
            .expect("create");
        let job = wait_until("the queued welcome job", async || {
            let jobs = jobs_of(s, r.id).await;
            let completed = jobs
                .iter()
                .any(|j| j.kind == "notify.completed" && j.state == JobState::Completed);
            let welcome = jobs.into_iter().find(|j| j.kind == "notify.welcome");
            welcome.filter(|_| completed)
        })
        .await;
        welcome_jobs.push((r.id, username.clone(), job));
    }
    let auckland_eight = date
        .pred_opt()
        .expect("a day before")
        .and_hms_opt(19, 0, 0)
        .expect("19:00")
        .and_utc()
        .timestamp_millis();
    let berlin_eight = date
        .and_hms_opt(7, 0, 0)
        .expect("07:00")
        .and_utc()
        .timestamp_millis();
    assert_eq!(welcome_jobs[0].2.run_at, auckland_eight);
    assert_eq!(welcome_jobs[0].2.payload["time_zone"], "Pacific/Auckland");
    assert_eq!(welcome_jobs[1].2.run_at, berlin_eight);
    assert_eq!(welcome_jobs[1].2.payload["time_zone"], "Europe/Berlin");
    assert_eq!(
        welcome_jobs[0].2.run_at,
        welcome_at(Some(&start), chrono_tz::Pacific::Auckland, s.now())
    );

    // A minute before 08:00 in Auckland: nothing has gone out.
    shift_clock(auckland_eight - 60_000 - s.now());
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(welcomes(&dir, &kiwi).is_empty(), "sent early");
    let waiting = jobs_of(s, welcome_jobs[0].0).await;
    assert!(
        waiting
            .iter()
            .any(|j| j.kind == "notify.welcome" && j.state == JobState::Available),
        "{waiting:?}"
    );

    // 08:00 in Auckland: the kiwi's welcome arrives, rendered, with its HTML part; the
    // Berliner's (07:00Z, twelve hours later) still waits.
    shift_clock(61_000);
    let mail = wait_until("the welcome mail", async || {
        welcomes(&dir, &kiwi).into_iter().next()
    })
    .await;
    assert_eq!(mail.to, vec![format!("{kiwi}@example.com")]);
    assert_eq!(mail.subject, format!("Kia ora Gina {kiwi}"));
    assert_eq!(
        mail.body.trim_end(),
        format!("Your login is {kiwi}. See you on {start}.")
    );
    assert_eq!(
        mail.html.as_deref().map(str::trim_end),
        Some(format!("<p>Your login is <b>{kiwi}</b>.</p>").as_str())
    );
    let d = wait_until("the send in the timeline", async || {
        let d = detail(s, welcome_jobs[0].0).await;
        (!mail_steps(&d, "notify.welcome").is_empty()).then_some(d)
    })
    .await;
    assert_eq!(
        mail_steps(&d, "notify.welcome")[0]["output"]["delivered"],
        json!([format!("{kiwi}@example.com")])
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        welcomes(&dir, &berliner).is_empty(),
        "Berlin's 08:00 is later"
    );

    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}
