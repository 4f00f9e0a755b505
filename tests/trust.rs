//! Trust: every case is an attack that must fail, change nothing, and leave an audit row saying
//! it was refused, on SQLite and PostgreSQL. Identity attacks run the real binary as a real
//! unprivileged OS user (`useradd`, `runuser`); role, scope and separation-of-duties attacks go
//! through the store's command API, which the CLI and the console share.

#[path = "common/store_db.rs"]
#[allow(dead_code)]
mod store_db;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use gatehouse::domain::request::{RequestEvent, RequestState};
use gatehouse::store::Store;
use gatehouse::store::api::{
    Actor, AuditFilter, CommandApi, Decision, JobFilter, LogFilter, NewJob, NewLog, NewRequest,
    OperatorRow, ReadApi, RequestFilter, WorkerRow,
};
use gatehouse::store::error::StoreError;
use serde_json::json;
use store_db::{Kind, TestDb, actor, fresh};
use support::os_login;

/// The unprivileged account the identity attacks run as.
const MALLORY: &str = "gh-mallory";

const WORKFLOW: &str = "[workflow]\nname = \"joiner\"\n";

fn request(name: &str, team: &str, requester: &str) -> NewRequest {
    NewRequest {
        workflow: "joiner".into(),
        kind: "joiner".into(),
        subject_name: name.into(),
        subject_email: Some(format!(
            "{}@example.com",
            name.to_lowercase().replace(' ', ".")
        )),
        username: Some(name.to_lowercase().replace(' ', "")),
        requester: requester.into(),
        source: "cli".into(),
        payload: json!({"team": team}),
    }
}

fn op(name: &str, role: &str, scopes: &[&str]) -> OperatorRow {
    OperatorRow {
        name: name.into(),
        role: role.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        email: None,
    }
}

/// Drive a request to `target` with engine actors; opens one approval stage (approvers
/// `approvers`) when the target is awaiting approval. Answers (request id, approval id).
async fn request_in(
    s: &Store,
    new: NewRequest,
    target: RequestState,
    approvers: &[&str],
) -> (i64, Option<i64>) {
    let sys = actor("system:engine");
    let r = s.create_request(&sys, new).await.expect("create");
    let mut events = vec![RequestEvent::Classified];
    match target {
        RequestState::NeedsTriage => events.push(RequestEvent::NeedsTriage),
        RequestState::AwaitingApproval { .. } => events.extend([
            RequestEvent::ValidationStarted,
            RequestEvent::ValidationPassed { stages: 1 },
        ]),
        RequestState::Failed => events.extend([
            RequestEvent::ValidationStarted,
            RequestEvent::ValidationPassed { stages: 0 },
            RequestEvent::ProvisioningStarted,
            RequestEvent::ProvisioningFailed,
        ]),
        other => panic!("no path to {other}"),
    }
    for e in events {
        s.transition_request(&sys, r.id, e, Some("set-up".into()))
            .await
            .expect("transition");
    }
    let approval = if matches!(target, RequestState::AwaitingApproval { .. }) {
        let approvers: Vec<String> = approvers.iter().map(|a| a.to_string()).collect();
        Some(
            s.open_approval(&sys, r.id, 0, "manager", "any", &approvers, None)
                .await
                .expect("open stage")
                .id,
        )
    } else {
        None
    };
    (r.id, approval)
}

/// Audit rows whose action contains `action`, by `who`.
async fn audited(s: &Store, who: &str, action: &str) -> Vec<String> {
    s.list_audit(
        &AuditFilter {
            actor: Some(who.into()),
            action: Some(action.into()),
            ..AuditFilter::default()
        },
        None,
        1000,
    )
    .await
    .expect("audit")
    .rows
    .into_iter()
    .map(|r| r.action)
    .collect()
}

fn assert_forbidden<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Forbidden { .. }) => {}
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Separation of duties and approver eligibility (store API, both backends).

async fn requester_cannot_approve_their_own_request(db: &TestDb) {
    let s = &db.store;
    let admin = actor("admin");
    s.save_config(&admin, "workflow", "joiner", WORKFLOW, "", 0)
        .await
        .expect("workflow");
    // ann asks for access for a new hire, and (by mistake or design) is an approver of it.
    let (rid, aid) = request_in(
        s,
        request("Dan Lee", "ops", "ann"),
        RequestState::AwaitingApproval { stage: 0 },
        &["ann", "bob"],
    )
    .await;
    let aid = aid.expect("approval");
    assert_forbidden(
        s.decide_approval(&actor("ann"), aid, 1, Decision::Approve, None)
            .await,
        "requester approves",
    );
    // The subject cannot approve either (by username).
    s.set_operator(&admin, &op("danlee", "approver", &[]))
        .await
        .expect("subject is an operator");
    assert_forbidden(
        s.decide_approval(&actor("danlee"), aid, 1, Decision::Approve, None)
            .await,
        "subject approves",
    );
    // Nor by e-mail, when the operator's e-mail is the subject's.
    s.set_operator(
        &admin,
        &OperatorRow {
            email: Some("dan.lee@example.com".into()),
            ..op("dl", "admin", &[])
        },
    )
    .await
    .expect("subject's admin account");
    assert_forbidden(
        s.decide_approval(&actor("dl"), aid, 1, Decision::Approve, None)
            .await,
        "subject approves as an admin override",
    );
    // An operator who entered the request cannot approve it whatever requester it names.
    s.set_operator(&admin, &op("cid", "approver", &[]))
        .await
        .expect("cid");
    let entered = s
        .create_request(&actor("cid"), request("Eve Moss", "ops", "someone-else"))
        .await
        .expect("cid enters a request");
    let sys = actor("system:engine");
    for e in [
        RequestEvent::Classified,
        RequestEvent::ValidationStarted,
        RequestEvent::ValidationPassed { stages: 1 },
    ] {
        s.transition_request(&sys, entered.id, e, None)
            .await
            .expect("transition");
    }
    let a2 = s
        .open_approval(
            &sys,
            entered.id,
            0,
            "manager",
            "any",
            &["cid".to_string()],
            None,
        )
        .await
        .expect("stage");
    assert_forbidden(
        s.decide_approval(&actor("cid"), a2.id, 1, Decision::Approve, None)
            .await,
        "creator approves",
    );
    // Nothing moved; each refusal is audited with its reason.
    let detail = s.request_detail(rid).await.expect("detail");
    assert_eq!(
        detail.request.state,
        RequestState::AwaitingApproval { stage: 0 }
    );
    assert!(detail.approvals[0].decisions.is_empty());
    assert_eq!(detail.approvals[0].version, 1);
    for who in ["ann", "danlee", "dl", "cid"] {
        assert_eq!(
            audited(s, who, "approval.decide.refused").await.len(),
            1,
            "{who}'s refusal is audited"
        );
    }
    let why = s
        .list_audit(
            &AuditFilter {
                actor: Some("ann".into()),
                ..AuditFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("audit")
        .rows[0]
        .after
        .clone()
        .expect("after");
    assert!(why.to_string().contains("separation of duties"), "{why}");
    // bob, who is neither, decides.
    s.decide_approval(&actor("bob"), aid, 1, Decision::Approve, None)
        .await
        .expect("bob approves");
}

async fn the_engine_never_decides_and_operators_never_drive_the_engine(db: &TestDb) {
    let s = &db.store;
    s.save_config(&actor("admin"), "workflow", "joiner", WORKFLOW, "", 0)
        .await
        .expect("workflow");
    let (rid, aid) = request_in(
        s,
        request("Fay Ng", "ops", "hr"),
        RequestState::AwaitingApproval { stage: 0 },
        &["ann"],
    )
    .await;
    assert_forbidden(
        s.decide_approval(
            &Actor::system("engine", "test"),
            aid.expect("approval"),
            1,
            Decision::Approve,
            None,
        )
        .await,
        "engine decides",
    );
    // An admin cannot push a request through the lifecycle or open stages: that is the engine's.
    assert_forbidden(
        s.transition_request(
            &actor("admin"),
            rid,
            RequestEvent::StageApproved { stages: 1 },
            None,
        )
        .await,
        "operator drives the lifecycle",
    );
    assert_forbidden(
        s.open_approval(
            &actor("admin"),
            rid,
            1,
            "x",
            "any",
            &["admin".to_string()],
            None,
        )
        .await,
        "operator opens a stage",
    );
    assert_eq!(
        audited(s, "system:engine", "approval.decide.refused")
            .await
            .len(),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// Scopes (store API, both backends).

async fn scoped_admin_neither_sees_nor_acts_outside_their_team(db: &TestDb) {
    let s = &db.store;
    let admin = actor("admin");
    s.save_config(&admin, "workflow", "joiner", WORKFLOW, "", 0)
        .await
        .expect("workflow");
    s.set_operator(&admin, &op("fin-admin", "admin", &["team:finance"]))
        .await
        .expect("scoped admin");
    let (fin, fin_a) = request_in(
        s,
        request("Gus Fin", "finance", "hr"),
        RequestState::AwaitingApproval { stage: 0 },
        &["ann"],
    )
    .await;
    let (sales, sales_a) = request_in(
        s,
        request("Hal Sales", "sales", "hr"),
        RequestState::AwaitingApproval { stage: 0 },
        &["ann"],
    )
    .await;
    let (sales_failed, _) = request_in(
        s,
        request("Ida Sales", "sales", "hr"),
        RequestState::Failed,
        &[],
    )
    .await;

    // Reads: the scoped handle sees only finance.
    let view = s.viewing_as("fin-admin");
    let listed: Vec<i64> = view
        .list_requests(&RequestFilter::default(), None, 100)
        .await
        .expect("list")
        .rows
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, vec![fin]);
    assert!(matches!(
        view.request_detail(sales).await,
        Err(StoreError::NotFound { .. })
    ));
    let inbox: Vec<i64> = view
        .pending_approvals("fin-admin", None, None, 100)
        .await
        .expect("inbox")
        .rows
        .iter()
        .map(|a| a.request_id)
        .collect();
    assert_eq!(inbox, vec![fin]);
    let overview = view.overview().await.expect("overview");
    assert_eq!(overview.pending_approvals, 1);
    let counted: i64 = overview.requests_by_state.iter().map(|(_, n)| n).sum();
    assert_eq!(counted, 1);
    // Jobs, log lines and audit rows of another team's request stay hidden too.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    let job = |request_id: i64| NewJob {
        queue: "default".into(),
        kind: "probe".into(),
        payload: json!({}),
        priority: 0,
        run_at: now + 3_600_000,
        max_attempts: 1,
        unique_key: None,
        request_id: Some(request_id),
    };
    s.enqueue(&[job(fin), job(sales)]).await.expect("enqueue");
    let line = |request_id: i64, message: &str| NewLog {
        at: now,
        level: "INFO".into(),
        target: "trust".into(),
        message: message.into(),
        request_id: Some(request_id),
        job_id: None,
        worker: None,
    };
    s.append_logs(&[line(fin, "finance line"), line(sales, "sales line")])
        .await
        .expect("logs");
    let jobs: Vec<Option<i64>> = view
        .list_jobs(&JobFilter::default(), None, 100)
        .await
        .expect("jobs")
        .rows
        .iter()
        .map(|j| j.request_id)
        .collect();
    assert!(
        jobs.contains(&Some(fin)),
        "own team's jobs listed: {jobs:?}"
    );
    assert!(!jobs.contains(&Some(sales)), "sales jobs hidden: {jobs:?}");
    for lines in [
        view.tail_log(0, &LogFilter::default(), 100)
            .await
            .expect("tail"),
        view.last_log(&LogFilter::default(), 100)
            .await
            .expect("last"),
    ] {
        let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages, vec!["finance line"]);
    }
    assert!(
        view.list_jobs(
            &JobFilter {
                request_id: Some(sales),
                ..JobFilter::default()
            },
            None,
            100
        )
        .await
        .expect("jobs of sales")
        .rows
        .is_empty()
    );
    let audit = view
        .list_audit(&AuditFilter::default(), None, 1000)
        .await
        .expect("audit")
        .rows;
    assert!(
        audit.iter().all(|r| r.actor == "fin-admin"),
        "a scoped admin sees only their own audit rows"
    );
    assert!(
        !s.list_audit(&AuditFilter::default(), None, 1000)
            .await
            .expect("all audit")
            .rows
            .iter()
            .all(|r| r.actor == "fin-admin"),
        "the unscoped handle sees everyone's rows"
    );
    // Even on an unscoped handle, the inbox is the operator's own.
    assert_eq!(
        s.pending_approvals("fin-admin", None, None, 100)
            .await
            .expect("inbox")
            .rows
            .len(),
        1
    );

    // Commands: refused outside the scope, whatever handle they go through.
    let me = actor("fin-admin");
    assert_forbidden(
        s.decide_approval(&me, sales_a.expect("a"), 1, Decision::Approve, None)
            .await,
        "decide outside scope",
    );
    assert_forbidden(
        s.cancel_request(&me, sales, Some("not mine".into())).await,
        "cancel outside scope",
    );
    assert_forbidden(
        s.retry_request(&me, sales_failed).await,
        "retry outside scope",
    );
    assert_forbidden(
        s.create_request(&me, request("Jo Sales", "sales", "fin-admin"))
            .await,
        "create outside scope",
    );
    // What belongs to everyone needs an unscoped admin.
    assert_forbidden(
        s.save_config(&me, "workflow", "joiner", WORKFLOW, "", 1)
            .await,
        "config",
    );
    assert_forbidden(s.set_queue_paused(&me, "default", true).await, "pause");
    assert_forbidden(
        s.set_operator(&me, &op("fin-admin", "admin", &[])).await,
        "widen own scope",
    );
    // Nothing outside changed.
    let sales_row = s.request(sales).await.expect("sales");
    assert_eq!(sales_row.state, RequestState::AwaitingApproval { stage: 0 });
    assert_eq!(
        s.request(sales_failed).await.expect("failed").state,
        RequestState::Failed
    );
    assert_eq!(audited(s, "fin-admin", ".refused").await.len(), 7);
    // Inside the scope the admin acts (an override, recorded as such).
    let decided = s
        .decide_approval(&me, fin_a.expect("a"), 1, Decision::Approve, None)
        .await
        .expect("decide inside scope");
    assert!(decided.decisions[0].overridden);
}

// ---------------------------------------------------------------------------------------------
// Operators: the first admin, and only admins after that.

async fn operators_are_managed_by_admins_only(db: &TestDb) {
    let s = &db.store;
    // An admin exists (the test set-up): a second bootstrap is refused and audited.
    assert_forbidden(
        s.bootstrap_admin(&actor("ann"), "ann", None).await,
        "second bootstrap",
    );
    assert_eq!(
        audited(s, "ann", "operator.bootstrap.refused").await.len(),
        1
    );
    assert_forbidden(
        s.set_operator(&actor("ann"), &op("ann", "admin", &[]))
            .await,
        "approver promotes themself",
    );
    assert_forbidden(
        s.set_operator(&actor("nobody"), &op("nobody", "viewer", &[]))
            .await,
        "unknown login adds themself",
    );
    assert_forbidden(
        s.remove_operator(&actor("bob"), "admin").await,
        "approver removes the admin",
    );
    // The last unscoped admin cannot be demoted, scoped or removed, even by themself.
    assert_forbidden(
        s.set_operator(&actor("admin"), &op("admin", "viewer", &[]))
            .await,
        "demote the last admin",
    );
    assert_forbidden(
        s.set_operator(&actor("admin"), &op("admin", "admin", &["team:x"]))
            .await,
        "scope the last admin",
    );
    assert_forbidden(
        s.remove_operator(&actor("admin"), "admin").await,
        "remove the last admin",
    );
    assert!(matches!(
        s.set_operator(&actor("admin"), &op("system:engine", "admin", &[]))
            .await,
        Err(StoreError::Invalid { .. })
    ));
    let ops = s.operators().await.expect("operators");
    assert_eq!(
        ops.iter()
            .find(|o| o.name == "admin")
            .map(|o| o.role.as_str()),
        Some("admin")
    );
    assert_eq!(
        ops.iter()
            .find(|o| o.name == "ann")
            .map(|o| o.role.as_str()),
        Some("approver")
    );
    assert!(!ops.iter().any(|o| o.name == "nobody"));
}

// ---------------------------------------------------------------------------------------------
// Input limits: NUL bytes and oversize input refused alike on both backends, before any SQL.

async fn nul_bytes_and_oversize_input_are_refused_alike(db: &TestDb) {
    let s = &db.store;
    let admin = actor("admin");
    s.save_config(&admin, "workflow", "joiner", WORKFLOW, "", 0)
        .await
        .expect("workflow");
    let invalid = |r: Result<_, StoreError>, field: &str| match r {
        Err(StoreError::Invalid { field: f, message }) => {
            assert_eq!(f, field, "{message}");
            message
        }
        other => panic!("{field}: expected Invalid, got {other:?}"),
    };
    let msg = invalid(
        s.create_request(&admin, request("Nul\0Byte", "ops", "hr"))
            .await
            .map(|_| ()),
        "subject_name",
    );
    assert!(msg.contains("NUL"), "{msg}");
    let mut big = request("Big Payload", "ops", "hr");
    big.payload = json!({"team": "ops", "notes": "x".repeat(5000)});
    invalid(
        s.create_request(&admin, big).await.map(|_| ()),
        "payload.notes",
    );
    invalid(
        s.create_request(&admin, request(&"n".repeat(300), "ops", "hr"))
            .await
            .map(|_| ()),
        "subject_name",
    );
    let (_, aid) = request_in(
        s,
        request("Rea Son", "ops", "hr"),
        RequestState::AwaitingApproval { stage: 0 },
        &["ann"],
    )
    .await;
    let aid = aid.expect("approval");
    invalid(
        s.decide_approval(&actor("ann"), aid, 1, Decision::Reject, Some("no\0".into()))
            .await
            .map(|_| ()),
        "reason",
    );
    invalid(
        s.save_config(&admin, "workflow", "joiner", "a = \"\0\"", "", 1)
            .await
            .map(|_| ()),
        "body",
    );
    // Nothing was written by any of them.
    assert_eq!(
        s.list_requests(&RequestFilter::default(), None, 100)
            .await
            .expect("list")
            .rows
            .len(),
        1
    );
    assert_eq!(
        s.config_versions("joiner").await.expect("versions").len(),
        1
    );
    assert!(
        s.request_detail(
            s.list_requests(&RequestFilter::default(), None, 1)
                .await
                .expect("list")
                .rows[0]
                .id
        )
        .await
        .expect("detail")
        .approvals[0]
            .decisions
            .is_empty()
    );
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::fresh(super::Kind::Sqlite).await.expect("sqlite");
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::fresh(super::Kind::Postgres).await {
                        super::$name(&db).await;
                    }
                }
            )*
        }
    };
}

both!(
    requester_cannot_approve_their_own_request,
    the_engine_never_decides_and_operators_never_drive_the_engine,
    scoped_admin_neither_sees_nor_acts_outside_their_team,
    operators_are_managed_by_admins_only,
    nul_bytes_and_oversize_input_are_refused_alike,
);

// ---------------------------------------------------------------------------------------------
// Identity: a real unprivileged OS user, the real binary.

/// Create the unprivileged account once; `None` (test skipped) when not root outside CI.
fn mallory() -> Option<&'static str> {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    if uid != 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "identity attacks need root to create an OS user (useradd) and run as it (runuser)"
        );
        eprintln!("SKIPPED: identity attacks need root (useradd, runuser)");
        return None;
    }
    let exists = Command::new("id")
        .arg(MALLORY)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        // Two tests may race to create it; the loser's failure is harmless if the user exists.
        let _ = Command::new("useradd").args(["-M", MALLORY]).status();
        assert!(
            Command::new("id")
                .arg(MALLORY)
                .output()
                .is_ok_and(|o| o.status.success()),
            "useradd {MALLORY} failed"
        );
    }
    Some(MALLORY)
}

/// A store shared by the test (as the admin) and the attacker: files readable and writable by
/// the unprivileged user, and a copy of the binary it can execute.
struct Arena {
    db: TestDb,
    dir: tempfile::TempDir,
    bin: PathBuf,
    admin: String,
}

impl Arena {
    async fn new(kind: Kind) -> Option<Arena> {
        let db = store_db::empty(kind).await?;
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("gatehouse");
        std::fs::copy(support::bin(), &bin).expect("copy binary");
        let admin = os_login();
        let out = self::run_as(
            None,
            &db.url,
            dir.path(),
            &bin,
            &[],
            &["operator", "add", &admin, "--role", "admin"],
        );
        assert!(out.status.success(), "bootstrap: {}", text(&out));
        Some(Arena {
            db,
            dir,
            bin,
            admin,
        })
    }

    fn open_up(&self) {
        use std::os::unix::fs::PermissionsExt;
        let set = |p: &Path, mode| {
            if p.exists() {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
            }
        };
        set(self.dir.path(), 0o777);
        set(&self.bin, 0o755);
        if self.db.kind == Kind::Sqlite {
            let file = PathBuf::from(self.db.url.trim_start_matches("sqlite:"));
            if let Some(parent) = file.parent() {
                set(parent, 0o777);
            }
            for suffix in ["", "-wal", "-shm"] {
                set(&PathBuf::from(format!("{}{suffix}", file.display())), 0o666);
            }
        }
    }

    /// Run the binary as `user` (or as this process), with extra environment.
    fn run(&self, user: Option<&str>, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
        self.open_up();
        run_as(user, &self.db.url, self.dir.path(), &self.bin, env, args)
    }
}

fn run_as(
    user: Option<&str>,
    url: &str,
    dir: &Path,
    bin: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut cmd = match user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--"]).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(args)
        .env("GATEHOUSE_DATABASE_URL", url)
        .env(
            "GATEHOUSE_LOG_FILE",
            dir.join(format!("{}.log", user.unwrap_or("admin"))),
        )
        .env("HOME", dir)
        .current_dir(dir)
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run gatehouse")
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Everything an attacker would want to touch: a pending approval, a failed request, a
/// request in triage, a two-version config, a running worker.
struct Targets {
    pending: i64,
    approval: i64,
    failed: i64,
    triage: i64,
    worker: String,
    import_dir: PathBuf,
}

async fn targets(arena: &Arena) -> Targets {
    let s = &arena.db.store;
    let admin = Actor::operator(arena.admin.clone(), "test");
    s.save_config(&admin, "workflow", "joiner", WORKFLOW, "v1", 0)
        .await
        .expect("v1");
    s.save_config(
        &admin,
        "workflow",
        "joiner",
        &format!("{WORKFLOW}# v2\n"),
        "v2",
        1,
    )
    .await
    .expect("v2");
    let (pending, approval) = request_in(
        s,
        request("Kim Pend", "ops", "hr"),
        RequestState::AwaitingApproval { stage: 0 },
        &[&arena.admin],
    )
    .await;
    let (failed, _) = request_in(
        s,
        request("Lu Fail", "ops", "hr"),
        RequestState::Failed,
        &[],
    )
    .await;
    let (triage, _) = request_in(
        s,
        request("Mo Triage", "ops", "hr"),
        RequestState::NeedsTriage,
        &[],
    )
    .await;
    let worker = WorkerRow {
        id: "host:1:abc".into(),
        host: "host".into(),
        pid: 1,
        started_at: s.now(),
        heartbeat_at: s.now(),
        current_job: None,
        processed: 0,
        failed: 0,
        concurrency: 4,
        status: "running".into(),
    };
    s.register_worker(&worker).await.expect("worker");
    let import_dir = arena.dir.path().join("import");
    std::fs::create_dir_all(&import_dir).expect("import dir");
    // A valid document the attacker would like saved.
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/demo/configs/sales-joiner.toml"
        ),
        import_dir.join("sales-joiner.toml"),
    )
    .expect("import file");
    Targets {
        pending,
        approval: approval.expect("approval"),
        failed,
        triage,
        worker: worker.id,
        import_dir,
    }
}

/// Run every command an attacker wants as `user` with `env`; each must fail naming the
/// refusal; then nothing changed and each attempt left a `.refused` audit row by `user`.
async fn every_command_is_refused(
    arena: &Arena,
    t: &Targets,
    user: &str,
    env: &[(&str, &str)],
    why: &str,
) {
    let (pending, failed, triage) = (
        t.pending.to_string(),
        t.failed.to_string(),
        t.triage.to_string(),
    );
    let import = t.import_dir.display().to_string();
    let attacks: Vec<(Vec<&str>, &str)> = vec![
        (vec!["approve", &pending], "approval.decide.refused"),
        (
            vec!["reject", &pending, "--reason", "x"],
            "approval.decide.refused",
        ),
        (vec!["retry", &failed], "request.retry.refused"),
        (
            vec!["cancel", &pending, "--reason", "x"],
            "request.cancel.refused",
        ),
        (
            vec![
                "request",
                "fix",
                &triage,
                "--field",
                "start_date=2030-01-01",
            ],
            "request.triage_resolved.refused",
        ),
        (vec!["config", "import", &import], "config.save.refused"),
        (
            vec!["config", "rollback", "joiner", "1"],
            "config.save.refused",
        ),
        (vec!["pause", "default"], "queue.pause.refused"),
        (vec!["drain", &t.worker], "worker.drain.refused"),
        (
            vec!["operator", "add", user, "--role", "admin"],
            "operator.set.refused",
        ),
    ];
    let s = &arena.db.store;
    for (args, refused) in &attacks {
        let before = audited(s, user, refused).await.len();
        let out = arena.run(Some(user), env, args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?} must fail: {said}");
        assert!(
            said.contains("may not"),
            "{args:?} names the refusal: {said}"
        );
        assert!(said.contains(why), "{args:?} says why ({why}): {said}");
        assert!(!said.contains("panicked"), "{said}");
        assert_eq!(
            audited(s, user, refused).await.len(),
            before + 1,
            "{args:?} leaves a {refused} row by {user}"
        );
    }
    // Nothing changed.
    let detail = s.request_detail(t.pending).await.expect("pending");
    assert_eq!(
        detail.request.state,
        RequestState::AwaitingApproval { stage: 0 }
    );
    assert!(detail.approvals[0].decisions.is_empty());
    assert_eq!(detail.approvals[0].id, t.approval);
    assert_eq!(
        s.request(t.failed).await.expect("failed").state,
        RequestState::Failed
    );
    assert_eq!(
        s.request(t.triage).await.expect("triage").state,
        RequestState::NeedsTriage
    );
    assert_eq!(s.config_versions("joiner").await.expect("configs").len(), 2);
    assert!(
        s.config_versions("sales-joiner")
            .await
            .expect("configs")
            .is_empty()
    );
    assert!(
        !s.queue_stats()
            .await
            .expect("queues")
            .iter()
            .any(|q| q.paused)
    );
    assert_eq!(s.workers().await.expect("workers")[0].status, "running");
    let ops = s.operators().await.expect("operators");
    assert!(
        ops.iter().all(|o| o.name != user || o.role != "admin"),
        "{ops:?}"
    );
    // The attacker never appears as anyone else, and nothing of theirs went through.
    for row in s
        .list_audit(&AuditFilter::default(), None, 1000)
        .await
        .expect("audit")
        .rows
    {
        if row.actor == user {
            assert!(
                row.action.ends_with(".refused"),
                "{} by {user} went through",
                row.action
            );
        }
    }
    assert!(
        audited(s, &arena.admin, ".refused").await.is_empty(),
        "no refusal is recorded under the admin's name"
    );
}

async fn spoofed_environment_gains_nothing(kind: Kind) {
    let Some(user) = mallory() else { return };
    let Some(arena) = Arena::new(kind).await else {
        return;
    };
    let t = targets(&arena).await;
    let admin = arena.admin.clone();
    let env = [
        ("USER", admin.as_str()),
        ("LOGNAME", admin.as_str()),
        ("SUDO_USER", admin.as_str()),
        ("SUDO_UID", "0"),
        ("SSH_CONNECTION", "10.9.9.9 4242 10.0.0.1 22"),
    ];
    every_command_is_refused(&arena, &t, user, &env, "not an operator").await;
}

async fn a_viewer_changes_nothing(kind: Kind) {
    let Some(user) = mallory() else { return };
    let Some(arena) = Arena::new(kind).await else {
        return;
    };
    let t = targets(&arena).await;
    let out = arena.run(None, &[], &["operator", "add", user, "--role", "viewer"]);
    assert!(out.status.success(), "{}", text(&out));
    every_command_is_refused(&arena, &t, user, &[], "role viewer").await;
    // A viewer still reads.
    let out = arena.run(Some(user), &[], &["request", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Kim Pend"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_spoofed_environment_gains_nothing() {
    spoofed_environment_gains_nothing(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_spoofed_environment_gains_nothing() {
    spoofed_environment_gains_nothing(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_viewer_changes_nothing() {
    a_viewer_changes_nothing(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_viewer_changes_nothing() {
    a_viewer_changes_nothing(Kind::Postgres).await;
}

/// The first admin is created only by root or the OS owner of the store, while none exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_store_owner_creates_the_first_admin() {
    let Some(user) = mallory() else { return };
    let db = store_db::empty(Kind::Sqlite).await.expect("sqlite");
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("gatehouse");
    std::fs::copy(support::bin(), &bin).expect("copy binary");
    let arena = Arena {
        db,
        dir,
        bin,
        admin: os_login(),
    };
    let out = arena.run(
        Some(user),
        &[],
        &["operator", "add", user, "--role", "admin"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("only root or the owner"),
        "{}",
        text(&out)
    );
    assert!(arena.db.store.operators().await.expect("ops").is_empty());
    let out = arena.run(
        None,
        &[],
        &["operator", "add", &arena.admin, "--role", "admin"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        audited(&arena.db.store, &arena.admin, "operator.bootstrap")
            .await
            .len(),
        1
    );
}
