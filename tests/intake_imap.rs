//! IMAP intake against the real Dovecot on loopback (`tests/servers.sh`), on SQLite and
//! PostgreSQL: 200 messages give 200 requests, none twice — also when the connection is cut
//! mid-fetch, when the worker process is killed with SIGKILL mid-batch, and after a
//! UIDVALIDITY reset; two readers never both read a mailbox; TLS and STARTTLS log in with the
//! test CA; `tls = "none"` is refused for a host that is not loopback. Messages are classified
//! by the product's classifier (each mailbox's rules; no model is configured here).

mod intake_support;
#[path = "common/store_db.rs"]
#[allow(dead_code)]
mod store_db;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use gatehouse::domain::config::TlsMode;
use gatehouse::domain::intake::Classified;
use gatehouse::domain::secret::SecretValue;
use gatehouse::intake::configured::MailboxClassifiers;
use gatehouse::intake::imap::{COMMAND_TIMEOUT, ImapConnection, ImapError, ImapSettings};
use gatehouse::intake::reader::{MailClassifier, ReaderOptions, run_readers};
use gatehouse::store::Store;
use gatehouse::store::api::CommandApi;
use intake_support::dovecot::{Dovecot, ProxyMode, append_all, count, dovecot, flags, proxy};
use intake_support::onboarding_mail;
use store_db::{Kind, TestDb, actor, fresh};
use support::{eventually, gatehouse, spawn_worker};
use tokio::sync::watch;

const WORKFLOW: &str = "kind = \"workflow\"\nname = \"mail-joiner\"\n\n[intake]\nsources = [\"email\"]\nkinds = [\"joiner\"]\n";

/// A mailbox document for `folder` of `user` on `port` (plain, loopback).
fn mailbox_doc(name: &str, port: u16, user: &str, folder: &str, extra: &str) -> String {
    format!(
        "kind = \"mailbox\"\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nuser = \"{user}\"\npassword = \"env:GATEHOUSE_TEST_IMAP_PASSWORD\"\nfolder = \"{folder}\"\nworkflow = \"mail-joiner\"\npoll_interval = \"1s\"\n{extra}"
    )
}

async fn save(store: &Store, kind: &str, name: &str, body: &str) {
    store
        .save_config(&actor("admin"), kind, name, body, "test", 0)
        .await
        .unwrap_or_else(|e| panic!("save {name}: {e}"));
}

/// `n` onboarding mails tagged `tag` (distinct Message-IDs per tag).
fn mails(n: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..n).map(|i| onboarding_mail(i, tag)).collect()
}

/// (requests, distinct subject e-mails, intake rows, distinct intake UIDs) of `mailbox`.
async fn tally(db: &TestDb, mailbox: &str) -> (i64, i64, i64, i64) {
    let q = |sql: String| async move { db.raw_i64(&sql).await };
    (
        q("SELECT COUNT(*) FROM requests".into()).await,
        q("SELECT COUNT(DISTINCT subject_email) FROM requests".into()).await,
        q(format!("SELECT COUNT(*) FROM intake_messages WHERE mailbox = '{mailbox}'")).await,
        q(format!(
            "SELECT COUNT(*) FROM (SELECT DISTINCT uidvalidity, uid FROM intake_messages WHERE mailbox = '{mailbox}') d"
        ))
        .await,
    )
}

fn options(owner: &str) -> ReaderOptions {
    let mut o = ReaderOptions::new(owner);
    o.lease = Duration::from_secs(3);
    o.rescan = Duration::from_millis(300);
    o.poll = Duration::from_secs(1);
    o.max_backoff = Duration::from_secs(2);
    o
}

/// Readers running in this process until dropped.
struct Readers {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Readers {
    fn start(store: &Store, classifier: Arc<dyn MailClassifier>, owner: &str) -> Readers {
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(run_readers(store.clone(), classifier, options(owner), rx));
        Readers { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

async fn wait_for_requests(db: &TestDb, n: i64, limit: Duration) -> bool {
    eventually(limit, || async {
        db.raw_i64("SELECT COUNT(*) FROM requests").await >= n
    })
    .await
}

async fn setup(kind: Kind) -> Option<(Dovecot, TestDb)> {
    let imap = dovecot().await?;
    let db = fresh(kind).await?;
    save(&db.store, "workflow", "mail-joiner", WORKFLOW).await;
    Some((imap, db))
}

async fn two_hundred_messages_give_two_hundred_requests(kind: Kind) {
    let Some((imap, db)) = setup(kind).await else {
        return;
    };
    let folder = imap.fresh_folder("alice", "two").await;
    let mut admin = imap.admin("alice").await;
    append_all(&mut admin, &folder, &mails(200, "two")).await;
    save(
        &db.store,
        "mailbox",
        "hr",
        &mailbox_doc(
            "hr",
            imap.port,
            "alice",
            &folder,
            "batch_size = 50\nprocessed = \"flag\"\nflag = \"Gatehouse\"\n",
        ),
    )
    .await;
    let readers = Readers::start(&db.store, Arc::new(MailboxClassifiers::default()), "w1");
    assert!(
        wait_for_requests(&db, 200, Duration::from_secs(60)).await,
        "200 requests in time"
    );
    // New mail while the reader waits (IDLE) is read too.
    append_all(&mut admin, &folder, &mails(5, "late")).await;
    assert!(
        wait_for_requests(&db, 205, Duration::from_secs(20)).await,
        "late mail is read"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tally(&db, "hr").await, (205, 205, 205, 205));
    // Processed mail is flagged after the commit.
    let f = flags(&mut admin, &folder).await;
    assert_eq!(f.len(), 205);
    assert!(f.iter().all(|f| f.contains("Gatehouse")), "{:?}", &f[..3]);
    assert!(
        f.iter().all(|f| !f.contains("Seen")),
        "BODY.PEEK leaves \\Seen alone"
    );
    readers.stop().await;
    let state = db
        .store
        .mailbox_state("hr")
        .await
        .expect("state")
        .expect("row");
    assert_eq!((state.processed, state.lease_owner), (205, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_messages_give_two_hundred_requests_sqlite() {
    two_hundred_messages_give_two_hundred_requests(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_messages_give_two_hundred_requests_postgres() {
    two_hundred_messages_give_two_hundred_requests(Kind::Postgres).await;
}

async fn connection_cut_mid_fetch(kind: Kind) {
    let Some((imap, db)) = setup(kind).await else {
        return;
    };
    let folder = imap.fresh_folder("alice", "cut").await;
    let mut admin = imap.admin("alice").await;
    append_all(&mut admin, &folder, &mails(200, "cut")).await;
    // The first three connections die after 10 KB from the server: inside the first fetch of
    // 50 messages (~17 KB), so no batch of theirs is ever recorded.
    let proxy = proxy(
        imap.port,
        ProxyMode {
            cut_connections: 3,
            cut_after: 10_000,
            delay_per_chunk: Duration::ZERO,
        },
    )
    .await;
    save(
        &db.store,
        "mailbox",
        "cut",
        &mailbox_doc("cut", proxy.port, "alice", &folder, "batch_size = 50\n"),
    )
    .await;
    let readers = Readers::start(&db.store, Arc::new(MailboxClassifiers::default()), "w1");
    assert!(
        wait_for_requests(&db, 200, Duration::from_secs(90)).await,
        "200 requests despite the cuts"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tally(&db, "cut").await, (200, 200, 200, 200));
    assert!(
        proxy.connections.load(Ordering::SeqCst) >= 4,
        "the reader reconnected"
    );
    let state = db
        .store
        .mailbox_state("cut")
        .await
        .expect("state")
        .expect("row");
    assert!(
        state
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("127.0.0.1")),
        "the cut is recorded, naming the server: {:?}",
        state.last_error
    );
    readers.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_mid_fetch_still_gives_exactly_200_sqlite() {
    connection_cut_mid_fetch(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_mid_fetch_still_gives_exactly_200_postgres() {
    connection_cut_mid_fetch(Kind::Postgres).await;
}

async fn sigkilled_worker(kind: Kind) {
    let Some((imap, db)) = setup(kind).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = imap.fresh_folder("alice", "kill").await;
    let mut admin = imap.admin("alice").await;
    append_all(&mut admin, &folder, &mails(200, "kill")).await;
    // Slowed down so the worker is caught with part of the folder read.
    let proxy = proxy(
        imap.port,
        ProxyMode {
            cut_connections: 0,
            cut_after: 0,
            delay_per_chunk: Duration::from_millis(15),
        },
    )
    .await;
    save(
        &db.store,
        "mailbox",
        "kill",
        &mailbox_doc("kill", proxy.port, "alice", &folder, "batch_size = 10\n"),
    )
    .await;
    let args = [
        "--concurrency",
        "2",
        "--mailbox-lease-secs",
        "3",
        "--no-scheduler",
    ];
    let mut victim = spawn_worker(&db.url, &dir.path().join("victim.log"), &args);
    let started = eventually(Duration::from_secs(60), || async {
        db.raw_i64("SELECT COUNT(*) FROM intake_messages").await >= 20
    })
    .await;
    if !started {
        let log = std::fs::read_to_string(dir.path().join("victim.log")).unwrap_or_default();
        panic!("the first worker recorded no messages; its log:\n{log}");
    }
    victim.signal(libc::SIGKILL);
    victim
        .wait_for(Duration::from_secs(5))
        .expect("SIGKILL ends it");
    let at_kill = db.raw_i64("SELECT COUNT(*) FROM intake_messages").await;
    assert!(at_kill < 200, "killed mid-way ({at_kill} recorded)");
    let _rescuer = spawn_worker(&db.url, &dir.path().join("rescuer.log"), &args);
    assert!(
        eventually(Duration::from_secs(120), || async {
            db.raw_i64("SELECT COUNT(*) FROM intake_messages").await >= 200
        })
        .await,
        "the second worker read the rest after the lease expired"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(tally(&db, "kill").await, (200, 200, 200, 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_worker_mid_batch_still_gives_exactly_200_sqlite() {
    sigkilled_worker(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_worker_mid_batch_still_gives_exactly_200_postgres() {
    sigkilled_worker(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uidvalidity_reset_gives_no_duplicate() {
    let Some((imap, db)) = setup(Kind::Sqlite).await else {
        return;
    };
    let folder = imap.fresh_folder("bob", "uv").await;
    let mut admin = imap.admin("bob").await;
    append_all(&mut admin, &folder, &mails(20, "uv")).await;
    save(
        &db.store,
        "mailbox",
        "uv",
        &mailbox_doc("uv", imap.port, "bob", &folder, ""),
    )
    .await;
    let readers = Readers::start(&db.store, Arc::new(MailboxClassifiers::default()), "w1");
    assert!(wait_for_requests(&db, 20, Duration::from_secs(30)).await);
    readers.stop().await;
    let before = db
        .store
        .mailbox_state("uv")
        .await
        .expect("state")
        .expect("row");
    // Delete and recreate the folder: a new UIDVALIDITY, the same 20 messages, 5 new ones.
    admin.delete(&folder).await.expect("delete");
    admin.create(&folder).await.expect("create");
    append_all(&mut admin, &folder, &mails(20, "uv")).await;
    append_all(&mut admin, &folder, &mails(5, "uvnew")).await;
    let readers = Readers::start(&db.store, Arc::new(MailboxClassifiers::default()), "w2");
    assert!(wait_for_requests(&db, 25, Duration::from_secs(30)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    readers.stop().await;
    let after = db
        .store
        .mailbox_state("uv")
        .await
        .expect("state")
        .expect("row");
    assert_ne!(
        before.uidvalidity, after.uidvalidity,
        "Dovecot gave the folder a new UIDVALIDITY"
    );
    let (requests, distinct, rows, _) = tally(&db, "uv").await;
    assert_eq!((requests, distinct, rows), (25, 25, 45));
    let dups = db
        .raw_i64("SELECT COUNT(*) FROM intake_messages WHERE verdict = 'duplicate'")
        .await;
    assert_eq!(dups, 20, "the re-read copies are recorded as duplicates");
}

/// Counts what it classifies (delegating to the stand-in classifier), taking `delay` for
/// each message as a model would.
#[derive(Default)]
struct Counting(AtomicUsize, Duration, MailboxClassifiers);

impl MailClassifier for Counting {
    fn classify<'a>(
        &'a self,
        mailbox: &'a gatehouse::domain::config::Mailbox,
        raw: &'a [u8],
    ) -> BoxFuture<'a, Classified> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(self.1).await;
            self.2.classify(mailbox, raw).await
        })
    }
}

/// A classifier slower than the lease (a batch takes ~4 s, the lease is 3 s): the reader keeps
/// renewing its lease while it classifies, so the other reader never takes the mailbox over
/// mid-batch and nothing is classified twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_classifier_keeps_the_lease() {
    let Some((imap, db)) = setup(Kind::Sqlite).await else {
        return;
    };
    let folder = imap.fresh_folder("bob", "slow").await;
    let mut admin = imap.admin("bob").await;
    append_all(&mut admin, &folder, &mails(40, "slow")).await;
    save(
        &db.store,
        "mailbox",
        "slow",
        &mailbox_doc("slow", imap.port, "bob", &folder, "batch_size = 20\n"),
    )
    .await;
    let slow = Duration::from_millis(1600);
    let (a, b) = (
        Arc::new(Counting(
            AtomicUsize::new(0),
            slow,
            MailboxClassifiers::default(),
        )),
        Arc::new(Counting(
            AtomicUsize::new(0),
            slow,
            MailboxClassifiers::default(),
        )),
    );
    let ra = Readers::start(&db.store, a.clone(), "host-a");
    let rb = Readers::start(&db.store, b.clone(), "host-b");
    assert!(wait_for_requests(&db, 40, Duration::from_secs(60)).await);
    ra.stop().await;
    rb.stop().await;
    let (na, nb) = (a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst));
    assert_eq!(na + nb, 40, "nothing classified twice ({na} + {nb})");
    assert_eq!(tally(&db, "slow").await, (40, 40, 40, 40));
}

async fn two_readers_on_one_mailbox(kind: Kind) {
    let Some((imap, db)) = setup(kind).await else {
        return;
    };
    let folder = imap.fresh_folder("bob", "pair").await;
    let mut admin = imap.admin("bob").await;
    append_all(&mut admin, &folder, &mails(200, "pair")).await;
    save(
        &db.store,
        "mailbox",
        "pair",
        &mailbox_doc("pair", imap.port, "bob", &folder, "batch_size = 20\n"),
    )
    .await;
    let other = db.reopen(false).await;
    let (a, b) = (Arc::new(Counting::default()), Arc::new(Counting::default()));
    let ra = Readers::start(&db.store, a.clone(), "host-a");
    let rb = Readers::start(&other, b.clone(), "host-b");
    assert!(wait_for_requests(&db, 200, Duration::from_secs(60)).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    ra.stop().await;
    rb.stop().await;
    let (na, nb) = (a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst));
    assert_eq!(
        na + nb,
        200,
        "no message was read by both readers ({na} + {nb})"
    );
    assert!(
        na == 0 || nb == 0,
        "one reader held the mailbox ({na} / {nb})"
    );
    assert_eq!(tally(&db, "pair").await, (200, 200, 200, 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_readers_never_both_read_a_mailbox_sqlite() {
    two_readers_on_one_mailbox(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_readers_never_both_read_a_mailbox_postgres() {
    two_readers_on_one_mailbox(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_mail_is_moved_after_the_commit() {
    let Some((imap, db)) = setup(Kind::Sqlite).await else {
        return;
    };
    let folder = imap.fresh_folder("bob", "mv").await;
    let done = imap.fresh_folder("bob", "mvdone").await;
    let mut admin = imap.admin("bob").await;
    append_all(&mut admin, &folder, &mails(12, "mv")).await;
    save(
        &db.store,
        "mailbox",
        "mv",
        &mailbox_doc(
            "mv",
            imap.port,
            "bob",
            &folder,
            &format!("batch_size = 5\nprocessed = \"move\"\nmove_to = \"{done}\"\n"),
        ),
    )
    .await;
    let readers = Readers::start(&db.store, Arc::new(MailboxClassifiers::default()), "w1");
    assert!(wait_for_requests(&db, 12, Duration::from_secs(30)).await);
    let moved = eventually(Duration::from_secs(10), || async {
        let mut s = imap.admin("bob").await;
        count(&mut s, &done).await == 12 && count(&mut s, &folder).await == 0
    })
    .await;
    readers.stop().await;
    assert!(moved, "all 12 moved to {done}");
    assert_eq!(tally(&db, "mv").await, (12, 12, 12, 12));
}

fn settings(imap: &Dovecot, port: u16, tls: TlsMode, ca: Option<&str>) -> ImapSettings {
    ImapSettings {
        host: imap.host.clone(),
        port,
        tls,
        user: "alice".into(),
        password: SecretValue::new(imap.password.clone()),
        folder: "INBOX".into(),
        ca_file: ca.map(Into::into),
        timeout: COMMAND_TIMEOUT,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_starttls_log_in_with_the_test_ca() {
    let Some(imap) = dovecot().await else {
        return;
    };
    for (port, mode) in [
        (imap.tls_port, TlsMode::Implicit),
        (imap.port, TlsMode::Starttls),
    ] {
        let mut conn = ImapConnection::connect(&settings(&imap, port, mode, Some(&imap.ca)))
            .await
            .unwrap_or_else(|e| panic!("{mode:?} with the test CA: {e}"));
        let status = conn.select("INBOX").await.expect("select INBOX");
        assert!(status.uidvalidity > 0);
        conn.logout().await;
        // Without the test CA (system roots only) the certificate is refused, naming the server.
        let err = ImapConnection::connect(&settings(&imap, port, mode, None))
            .await
            .expect_err("the test certificate is not trusted by the system roots");
        let text = err.to_string();
        assert!(matches!(err, ImapError::Tls { .. }), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    }
    let mut wrong = settings(&imap, imap.port, TlsMode::Starttls, Some(&imap.ca));
    wrong.password = SecretValue::new("not-the-password");
    let err = ImapConnection::connect(&wrong)
        .await
        .expect_err("bad password");
    assert!(matches!(err, ImapError::Login { .. }), "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_none_is_refused_for_a_host_that_is_not_loopback() {
    let mut s = ImapSettings {
        host: "imap.example.com".into(),
        port: 143,
        tls: TlsMode::None,
        user: "u".into(),
        password: SecretValue::new("p"),
        folder: "INBOX".into(),
        ca_file: None,
        timeout: Duration::from_secs(2),
    };
    let err = ImapConnection::connect(&s).await.expect_err("refused");
    assert!(matches!(err, ImapError::PlainRefused { .. }), "{err}");
    assert!(err.to_string().contains("imap.example.com:143"), "{err}");
    s.host = "10.0.0.1".into();
    assert!(matches!(
        ImapConnection::connect(&s).await,
        Err(ImapError::PlainRefused { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_cli_lists_and_tests() {
    let Some((imap, db)) = setup(Kind::Sqlite).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("cli.log");
    let folder = imap.fresh_folder("alice", "cli").await;
    let mut admin = imap.admin("alice").await;
    append_all(&mut admin, &folder, &mails(3, "cli")).await;
    save(
        &db.store,
        "mailbox",
        "cli-box",
        &mailbox_doc("cli-box", imap.port, "alice", &folder, ""),
    )
    .await;
    save(
        &db.store,
        "mailbox",
        "dead-box",
        &mailbox_doc("dead-box", 1, "alice", &folder, ""),
    )
    .await;
    let out = gatehouse(&db.url, &log)
        .args(["mailbox", "test", "cli-box"])
        .output()
        .expect("mailbox test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("3 messages, 3 unseen, UIDVALIDITY"),
        "{stdout}"
    );
    assert!(stdout.contains("UIDNEXT 4"), "{stdout}");
    let out = gatehouse(&db.url, &log)
        .args(["mailbox", "test", "dead-box"])
        .output()
        .expect("mailbox test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("127.0.0.1:1") && stderr.contains("cannot connect"),
        "{stderr}"
    );
    let out = gatehouse(&db.url, &log)
        .args(["mailbox", "list"])
        .output()
        .expect("mailbox list");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("cli-box") && stdout.contains("dead-box") && stdout.contains("never"),
        "{stdout}"
    );
    // Once read, `request show` prints the message and the evidence behind the verdict.
    let readers = Readers::start(&db.store, Arc::new(MailboxClassifiers::default()), "w1");
    assert!(wait_for_requests(&db, 3, Duration::from_secs(30)).await);
    readers.stop().await;
    let id = db.raw_i64("SELECT MIN(id) FROM requests").await;
    let out = gatehouse(&db.url, &log)
        .args(["request", "show", &id.to_string()])
        .output()
        .expect("request show");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("e-mail     \"Onboard: Person0 Testcli <person0.cli@example.com>\"")
            && stdout.contains("from priya.natarajan@example.com (mailbox cli-box, UID")
            && stdout.contains("evidence   rules parse=pass prompt_injection=pass")
            && stdout.contains("(no model configured: the rules decided alone)"),
        "{stdout}"
    );
    let out = gatehouse(&db.url, &log)
        .args(["mailbox", "list"])
        .output()
        .expect("mailbox list");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("cli-box"))
        .unwrap_or_default();
    assert!(line.contains("idle") && line.ends_with("3  "), "{stdout}");
}
