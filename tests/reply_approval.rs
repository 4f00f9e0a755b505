//! Approval by reply against the real aiosmtpd sink and the real Dovecot (`tests/servers.sh`):
//! the approval mail arrives with its rendered template, the approver's token in a
//! plus-addressed Reply-To and `[TOKEN]` in the subject; a reply carrying APPROVE, appended to
//! the reply mailbox in Dovecot, decides the approval as the approver (source
//! `mail:<message-id>`, the Authentication-Results header kept as evidence); replies with a
//! missing, wrong, expired, reused or someone else's token, without a keyword, or refused by the
//! store (a rejection without a reason) are refused, answered (the answer arrives at the sink)
//! and audited; a stranger is not answered; every reply is recorded once.
//! Without the servers: a note and return, or a failure under CI.

mod approvals_support;
mod intake_support;
#[allow(dead_code)]
mod notify_support;
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use approvals_support::{DIRECTORY, detail, idle, pending, three_workers, tick};
use gatehouse::domain::reply_token::{ReplyClaims, ReplyKey};
use gatehouse::engine::intake::{MailboxReading, spawn_mailbox_readers};
use gatehouse::intake::configured::MailboxClassifiers;
use gatehouse::store::Store;
use gatehouse::store::api::{CommandApi, Decision, NewRequest};
use intake_support::dovecot::{Dovecot, append_all, dovecot};
use notify_support::{loopback_notifier, nonce, received, save_documents, smtp_server, wait_until};
use serde_json::json;
use store_db::{Kind, TestDb, actor, fresh};
use tokio::sync::watch;

const KEY: &str = "reply-key-for-tests-0123456789abcdef";

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
remind_after = "1h"

[notifications.approval_request]
subject = "Approval needed: {{ subject_name }} joins {{ team }}"
body = "{{ requester }} asks for an account for {{ subject_name }}.\nStage: {{ stage }}. Approvers: {{ approver }}.\n{{ reply_instructions }}"
"#;

const MAIL_WORKFLOW: &str = "kind = \"workflow\"\nname = \"mail-joiner\"\n\n[intake]\nsources = [\"email\"]\nkinds = [\"joiner\"]\n";

fn notifier(port: u16, key_file: &Path) -> String {
    loopback_notifier(
        port,
        &format!(
            "workflows = [\"chain\"]\nreply_key = \"file:{}\"\nreply_address = \"approvals@example.com\"\nreply_lifetime = \"1h\"\nreply_mailbox = \"replies\"\n",
            key_file.display()
        ),
    )
}

fn mailbox(imap: &Dovecot, folder: &str) -> String {
    format!(
        "kind = \"mailbox\"\nname = \"replies\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nuser = \"alice\"\npassword = \"env:GATEHOUSE_TEST_IMAP_PASSWORD\"\nfolder = \"{folder}\"\nworkflow = \"mail-joiner\"\npoll_interval = \"1s\"\n",
        imap.port
    )
}

/// A reply as an approver's mail program would send it.
fn reply(from: &str, to: &str, subject: &str, id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Tue, 1 Dec 2026 08:00:00 +0000\r\nAuthentication-Results: mx.example.com; dkim=pass header.d=example.com; dmarc=pass\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn replies_recorded(db: &TestDb) -> i64 {
    db.raw_i64("SELECT COUNT(*) FROM intake_messages WHERE mailbox = 'replies'")
        .await
}

async fn refusals_audited(db: &TestDb, like: &str) -> i64 {
    db.raw_i64(&format!(
        "SELECT COUNT(*) FROM audit WHERE action = 'approval.reply.refused' AND after LIKE '%{like}%'"
    ))
    .await
}

struct Setup {
    db: TestDb,
    dir: PathBuf,
    imap: Dovecot,
    folder: String,
    _key_dir: tempfile::TempDir,
}

async fn setup(kind: Kind) -> Option<Setup> {
    let (port, dir) = smtp_server()?;
    let imap = dovecot().await?;
    let db = fresh(kind).await?;
    let key_dir = tempfile::tempdir().expect("temp dir");
    let key_file = key_dir.path().join("reply.key");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("key file");
    let folder = imap.fresh_folder("alice", "reply").await;
    save_documents(
        &db.store,
        &[
            ("directory", "people", DIRECTORY.to_string()),
            ("workflow", "chain", WORKFLOW.to_string()),
            ("workflow", "mail-joiner", MAIL_WORKFLOW.to_string()),
            ("mailbox", "replies", mailbox(&imap, &folder)),
            ("notifier", "loopback", notifier(port, &key_file)),
        ],
    )
    .await;
    Some(Setup {
        db,
        dir,
        imap,
        folder,
        _key_dir: key_dir,
    })
}

fn joiner(tag: &str) -> NewRequest {
    NewRequest {
        workflow: "chain".into(),
        kind: "joiner".into(),
        subject_name: format!("Gina Tester{tag}"),
        subject_email: Some(format!("gina-{tag}@example.com")),
        username: Some("gina".into()),
        requester: format!("hr-{tag}@example.com"),
        source: "cli".into(),
        payload: json!({"team": "sales"}),
    }
}

/// The worker's mailbox readers (with the engine's reply desk), until `stop`.
fn readers(store: &Store, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let reading = MailboxReading {
        classifier: Arc::new(MailboxClassifiers::default()),
        lease: Duration::from_secs(3),
        classify_concurrency: 4,
    };
    spawn_mailbox_readers(store.clone(), reading, "w-replies", stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approval_by_reply_sqlite() {
    approval_by_reply(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approval_by_reply_postgres() {
    approval_by_reply(Kind::Postgres).await;
}

async fn approval_by_reply(kind: Kind) {
    let Some(Setup {
        db,
        dir,
        imap,
        folder,
        _key_dir,
    }) = setup(kind).await
    else {
        return;
    };
    let s = &db.store;
    let (stop, workers) = three_workers(s);
    let (stop_readers, rx) = watch::channel(false);
    let reading = readers(s, rx);
    let tag = nonce();

    // The approval mail: ann's token in the Reply-To and the subject, the template rendered.
    let r = s
        .create_request(&actor("admin"), joiner(&tag))
        .await
        .expect("create");
    let mail = wait_until("the approval request mail", async || {
        received(&dir, &tag)
            .into_iter()
            .find(|m| m.subject.starts_with("Approval needed"))
    })
    .await;
    let a = pending(&detail(s, r.id).await);
    assert_eq!(mail.to, vec!["ann@example.com"]);
    let prefix = format!(
        "Approval needed: Gina Tester{tag} joins sales [gh1-{}-",
        a.id
    );
    assert!(mail.subject.starts_with(&prefix), "{}", mail.subject);
    let token = mail
        .subject
        .rsplit_once('[')
        .map(|(_, t)| t.trim_end_matches(']').to_string())
        .expect("a token in the subject");
    assert_eq!(
        mail.reply_to.as_deref(),
        Some(format!("approvals+{token}@example.com").as_str())
    );
    assert!(
        mail.body.starts_with(&format!(
            "hr-{tag}@example.com asks for an account for Gina Tester{tag}.\nStage: manager. Approvers: ann.\nTo decide by mail, reply to this message (it goes to approvals+{token}@example.com)"
        )),
        "{}",
        mail.body
    );
    let reply_to = format!("approvals+{token}@example.com");
    let subject = |what: &str| format!("Re: {} {what}-{tag}", mail.subject);

    // Refused: no token, an altered one, an expired one, bob using ann's, no keyword.
    let altered = format!(
        "{}{}",
        &token[..token.len() - 1],
        if token.ends_with('0') { '1' } else { '0' }
    );
    let key = ReplyKey::new(KEY.as_bytes()).expect("key");
    let expired = key.sign(&ReplyClaims {
        approval_id: a.id,
        approver: "ann".into(),
        expires_at: s.now() - 1_000,
    });
    let refused = [
        (
            "missing",
            "ann@example.com",
            "approvals@example.com".to_string(),
            format!("Re: no token missing-{tag}"),
            "APPROVE",
            "no approval token",
        ),
        (
            "wrong",
            "ann@example.com",
            format!("approvals+{altered}@example.com"),
            format!("Re: wrong-{tag} [{altered}]"),
            "APPROVE",
            "not valid",
        ),
        (
            "expired",
            "ann@example.com",
            format!("approvals+{expired}@example.com"),
            format!("Re: expired-{tag} [{expired}]"),
            "APPROVE",
            "expired",
        ),
        (
            "others",
            "bob@example.com",
            reply_to.clone(),
            subject("others"),
            "APPROVE",
            "issued to ann, not to the sender bob@example.com",
        ),
        (
            "nokeyword",
            "ann@example.com",
            reply_to.clone(),
            subject("nokeyword"),
            "Looks fine to me",
            "no APPROVE or REJECT",
        ),
        // The store's own rules apply: a rejection needs a reason.
        (
            "noreason",
            "ann@example.com",
            reply_to.clone(),
            subject("noreason"),
            "REJECT",
            "invalid reason: a rejection needs a reason",
        ),
    ];
    let mut admin = imap.admin("alice").await;
    let messages: Vec<Vec<u8>> = refused
        .iter()
        .map(|(what, from, to, subject, body, _)| {
            reply(
                from,
                to,
                subject,
                &format!("{what}-{tag}@example.com"),
                body,
            )
        })
        .collect();
    append_all(&mut admin, &folder, &messages).await;
    wait_until("the refused replies recorded", async || {
        (replies_recorded(&db).await == refused.len() as i64).then_some(())
    })
    .await;
    for (what, from, _, _, _, why) in &refused {
        // Answered: the answer to the sender arrives at the sink, saying why.
        let answer = wait_until(&format!("the answer to the {what} reply"), async || {
            received(&dir, &format!("{what}-{tag}"))
                .into_iter()
                .find(|m| m.to == vec![from.to_string()])
        })
        .await;
        assert!(answer.subject.starts_with("Re: "), "{}", answer.subject);
        assert!(
            answer
                .raw
                .contains(&format!("In-Reply-To: <{what}-{tag}@example.com>")),
            "{}",
            answer.raw
        );
        assert!(
            answer.body.contains("did not accept your reply") && answer.body.contains(why),
            "{what}: {}",
            answer.body
        );
        // Audited, naming why.
        assert_eq!(refusals_audited(&db, why).await, 1, "{what}: audit row");
    }
    // A stranger using ann's token is refused and audited, but not answered: Gatehouse only
    // mails people it knows (no mail to forged senders).
    append_all(
        &mut admin,
        &folder,
        &[reply(
            "mallory@evil.example",
            &reply_to,
            &subject("stranger"),
            &format!("stranger-{tag}@example.com"),
            "APPROVE",
        )],
    )
    .await;
    wait_until("the stranger's reply recorded", async || {
        (replies_recorded(&db).await == refused.len() as i64 + 1).then_some(())
    })
    .await;
    idle(s).await;
    assert_eq!(
        refusals_audited(&db, "issued to ann, not to the sender mallory@evil.example").await,
        1
    );
    assert!(received(&dir, &format!("stranger-{tag}")).is_empty());
    assert_eq!(
        db.raw_i64(
            "SELECT COUNT(*) FROM intake_messages WHERE mailbox = 'replies' AND verdict = 'approval_reply_refused'"
        )
        .await,
        7
    );
    let still = pending(&detail(s, r.id).await);
    assert_eq!(
        (still.id, still.decisions.len()),
        (a.id, 0),
        "nothing decided"
    );

    // The reminder carries a token of its own, and the instructions below the built-in text.
    tick(s, s.now() + 2 * 3_600_000, &format!("remind-{tag}")).await;
    let reminder = wait_until("the reminder mail", async || {
        received(&dir, &tag)
            .into_iter()
            .find(|m| m.subject.starts_with("Reminder: approval needed"))
    })
    .await;
    assert_eq!(reminder.to, vec!["ann@example.com"]);
    assert!(
        reminder.subject.contains(&format!(" [gh1-{}-", a.id)),
        "{}",
        reminder.subject
    );
    let reminder_token = reminder
        .subject
        .rsplit_once('[')
        .map(|(_, t)| t.trim_end_matches(']').to_string())
        .expect("a token in the reminder's subject");
    assert_eq!(
        reminder.reply_to,
        Some(format!("approvals+{reminder_token}@example.com"))
    );
    assert!(
        reminder
            .body
            .contains("To decide by mail, reply to this message"),
        "{}",
        reminder.body
    );

    // Accepted: ann replies APPROVE above the quoted mail (which says REJECT).
    let approve_id = format!("approve-{tag}@example.com");
    append_all(
        &mut admin,
        &folder,
        &[reply(
            "Ann Albers <ann@example.com>",
            &reply_to,
            &subject("approve"),
            &approve_id,
            "APPROVE: known contractor\r\n\r\nOn Tue, 1 Dec 2026, Gatehouse wrote:\r\n> REJECT",
        )],
    )
    .await;
    let decided = wait_until("the approval decided by reply", async || {
        let d = detail(s, r.id).await;
        d.approvals
            .iter()
            .find(|x| x.id == a.id && x.status == "approved")
            .cloned()
    })
    .await;
    let decision = &decided.decisions[0];
    assert_eq!(decision.approver, "ann");
    assert_eq!(decision.decision, Decision::Approve);
    assert_eq!(decision.reason.as_deref(), Some("known contractor"));
    assert_eq!(
        decision.source.as_deref(),
        Some(format!("mail:{approve_id}").as_str())
    );
    let d = detail(s, r.id).await;
    assert!(
        d.timeline.iter().any(|t| t.kind == "approval"
            && t.summary.contains(&format!("by reply (mail:{approve_id})"))),
        "the timeline shows the mail"
    );
    assert_eq!(
        db.raw_i64(
            "SELECT COUNT(*) FROM audit WHERE action = 'approval.decide' AND actor = 'ann' AND source LIKE 'mail:approve-%' AND after LIKE '%dkim=pass%'"
        )
        .await,
        1,
        "the decision's audit row keeps Authentication-Results"
    );
    assert_eq!(
        db.raw_i64("SELECT COUNT(*) FROM reply_tokens").await,
        1,
        "the token is used"
    );

    // Reused: the same token again is refused, answered and audited.
    append_all(
        &mut admin,
        &folder,
        &[reply(
            "ann@example.com",
            &reply_to,
            &subject("reused"),
            &format!("reused-{tag}@example.com"),
            "APPROVE",
        )],
    )
    .await;
    let answer = wait_until("the answer to the reused reply", async || {
        received(&dir, &format!("reused-{tag}"))
            .into_iter()
            .find(|m| m.to == vec!["ann@example.com".to_string()])
    })
    .await;
    assert!(answer.body.contains("already used"), "{}", answer.body);
    assert_eq!(refusals_audited(&db, "already used").await, 1);
    // Every reply recorded exactly once.
    assert_eq!(replies_recorded(&db).await, 9);
    // The reading position moves over replies (a folder of replies only records no batch).
    let state = wait_until("the position past every reply", async || {
        s.mailbox_state("replies")
            .await
            .ok()
            .flatten()
            .filter(|state| state.last_uid == 9)
    })
    .await;
    assert_eq!(state.processed, 9);

    stop_readers.send(true).expect("stop readers");
    let _ = tokio::time::timeout(Duration::from_secs(10), reading).await;
    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

/// `gatehouse config check` reads the reply key: one shorter than 32 bytes is an error at the
/// `reply_key` line, naming the file; a long enough one passes.
#[test]
fn config_check_reads_the_reply_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = support::sqlite_url(dir.path());
    let key = dir.path().join("reply.key");
    let doc = dir.path().join("relay.toml");
    let check = |key_text: &str| {
        std::fs::write(&key, key_text).expect("key");
        std::fs::write(
            &doc,
            format!(
                "kind = \"notifier\"\nname = \"relay\"\nhost = \"smtp.example.com\"\nfrom = \"gatehouse@example.com\"\nreply_key = \"file:{}\"\nreply_address = \"approvals@example.com\"\nreply_mailbox = \"approvals\"\n",
                key.display()
            ),
        )
        .expect("doc");
        let out = support::gatehouse(&url, &dir.path().join("cli.log"))
            .args(["config", "check", doc.to_str().expect("utf-8")])
            .output()
            .expect("run gatehouse");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let (code, text) = check("short key\n");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("{}:5:13: reply_key: ", doc.display()))
            && text.contains("at least 32 bytes"),
        "{text}"
    );
    assert!(!text.contains("short key"), "the key leaked: {text}");
    let (code, text) = check(KEY);
    assert_eq!(code, Some(0), "{text}");
}
