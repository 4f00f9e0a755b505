//! CSV import on SQLite and PostgreSQL: a file becomes requests whole or not at all, a row
//! imported before is left alone, a refused importer changes nothing and leaves an audit row;
//! and the real binary's `import csv` and `import watch` on SQLite.

#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use std::time::Duration;

use gatehouse::intake::csv::{CsvOptions, parse_csv};
use gatehouse::store::api::{AuditFilter, CommandApi, NewRequest, ReadApi, RequestFilter};
use gatehouse::store::error::StoreError;
use gatehouse::store::import::ImportRow;
use store_db::{Kind, actor, fresh};

const WORKFLOW: &str = "[workflow]\nname = \"joiner\"\n";
const CSV_WORKFLOW: &str = "kind = \"workflow\"\nname = \"staff\"\nteam = \"it\"\n\n[intake]\nsources = [\"csv\"]\nkinds = [\"joiner\"]\n";

fn rows(text: &str) -> Vec<ImportRow> {
    let options = CsvOptions {
        kind: "joiner".into(),
        requester: "ann".into(),
        map: Vec::new(),
    };
    parse_csv(text.as_bytes(), &options)
        .expect("a good file")
        .into_iter()
        .map(|r| ImportRow {
            line: r.line,
            key: r.key,
            request: NewRequest {
                workflow: "joiner".into(),
                kind: r.draft.kind,
                subject_name: r.draft.subject_name,
                subject_email: r.draft.subject_email,
                username: r.draft.username,
                requester: r.draft.requester,
                source: "csv:people.csv".into(),
                payload: serde_json::Value::Object(r.draft.fields),
            },
        })
        .collect()
}

fn people(from: usize, to: usize) -> String {
    let mut text = String::from("firstname,lastname,email,team\n");
    for i in from..to {
        text.push_str(&format!("Person,Number{i},p{i}@example.com,eng\n"));
    }
    text
}

async fn count(store: &gatehouse::store::Store) -> usize {
    store
        .list_requests(&RequestFilter::default(), None, 1000)
        .await
        .expect("list")
        .rows
        .len()
}

async fn whole_or_nothing_and_never_twice(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    s.save_config(&actor("admin"), "workflow", "joiner", WORKFLOW, "", 0)
        .await
        .expect("workflow");
    let ann = actor("ann");

    let first = s
        .import_requests(&ann, "joiner", "people.csv", rows(&people(0, 20)))
        .await
        .expect("import");
    assert_eq!((first.created.len(), first.already.len()), (20, 0));
    assert_eq!(first.created[0].0, 2, "line numbers are kept");
    assert_eq!(count(s).await, 20);
    let one = s.request(first.created[3].1).await.expect("request");
    assert_eq!(one.subject_name, "Person Number3");
    assert_eq!(one.payload["team"], "eng");
    assert_eq!(one.requester, "ann");

    // The same file again, plus ten new rows: only the new rows become requests.
    let again = s
        .import_requests(&ann, "joiner", "people.csv", rows(&people(0, 30)))
        .await
        .expect("import again");
    assert_eq!((again.created.len(), again.already.len()), (10, 20));
    assert_eq!(again.already[0].1, first.created[0].1);
    assert_eq!(count(s).await, 30);

    // A row the store refuses (an unknown kind) refuses the whole file and names its line.
    let mut bad = rows(&people(30, 40));
    bad[4].request.kind = "visitor".into();
    let err = s
        .import_requests(&ann, "joiner", "bad.csv", bad)
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, StoreError::Invalid { field, .. } if field == "line 6: kind"),
        "{err:?}"
    );
    assert_eq!(
        count(s).await,
        30,
        "nothing of the refused file was imported"
    );

    // An unknown workflow refuses the file inside the transaction: nothing is half-imported.
    let mut elsewhere = rows(&people(40, 45));
    for r in &mut elsewhere {
        r.request.workflow = "nosuch".into();
    }
    let err = s
        .import_requests(&ann, "nosuch", "other.csv", elsewhere)
        .await
        .expect_err("no such workflow");
    assert!(err.to_string().contains("no workflow named"), "{err}");
    assert_eq!(count(s).await, 30);

    // A viewer may not import: nothing changes and the refusal is audited under their name.
    s.set_operator(
        &actor("admin"),
        &gatehouse::store::api::OperatorRow {
            name: "vic".into(),
            role: "viewer".into(),
            scopes: Vec::new(),
            email: None,
        },
    )
    .await
    .expect("viewer");
    let err = s
        .import_requests(&actor("vic"), "joiner", "people.csv", rows(&people(50, 55)))
        .await
        .expect_err("viewer refused");
    assert!(matches!(err, StoreError::Forbidden { .. }), "{err:?}");
    assert_eq!(count(s).await, 30);
    let rows = s
        .list_audit(
            &AuditFilter {
                action: Some("request.import".into()),
                ..Default::default()
            },
            None,
            100,
        )
        .await
        .expect("audit")
        .rows;
    let of = |action: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r.action == action)
            .map(|r| r.actor.clone())
            .collect()
    };
    assert_eq!(of("request.import.refused"), vec!["vic"], "{rows:?}");
    assert_eq!(
        of("request.import"),
        vec!["ann", "ann"],
        "one row per accepted file"
    );
}

#[tokio::test]
async fn csv_import_is_whole_or_nothing_and_never_twice_on_sqlite() {
    whole_or_nothing_and_never_twice(Kind::Sqlite).await;
}

#[tokio::test]
async fn csv_import_is_whole_or_nothing_and_never_twice_on_postgres() {
    whole_or_nothing_and_never_twice(Kind::Postgres).await;
}

#[test]
fn the_binary_imports_a_file_and_a_watched_directory() {
    use support::*;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    let log = dir.path().join("cli.log");
    become_admin(&url, &log);
    let configs = dir.path().join("configs");
    std::fs::create_dir_all(&configs).expect("configs");
    std::fs::write(configs.join("staff.toml"), CSV_WORKFLOW).expect("workflow file");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/good_configs/onboarding.toml"
        ),
        configs.join("onboarding.toml"),
    )
    .expect("copy");
    for other in [
        "hr-inbox",
        "hr-db",
        "employee",
        "entra",
        "corp-ldap",
        "crm-scim",
    ] {
        std::fs::copy(
            format!(
                "{}/tests/good_configs/{other}.toml",
                env!("CARGO_MANIFEST_DIR")
            ),
            configs.join(format!("{other}.toml")),
        )
        .expect("copy");
    }
    let o = gatehouse(&url, &log)
        .args(["config", "import", configs.to_str().expect("utf-8")])
        .output()
        .expect("config import");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let file = dir.path().join("people.csv");
    std::fs::write(&file, people(0, 5)).expect("csv");
    let run = |args: &[&str]| {
        let o = gatehouse(&url, &log).args(args).output().expect("run");
        (
            o.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    let path = file.to_str().expect("utf-8");
    // A workflow whose intake does not list csv, or not this kind, takes nothing.
    let (code, out) = run(&["import", "csv", path, "--workflow", "onboarding"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("workflow onboarding: does not take CSV imports"),
        "{out}"
    );
    let (code, out) = run(&[
        "import",
        "csv",
        path,
        "--workflow",
        "staff",
        "--kind",
        "leaver",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("takes joiner requests (intake.kinds), not leaver"),
        "{out}"
    );
    let (code, out) = run(&["import", "csv", path, "--workflow", "staff"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("5 request(s) created"), "{out}");
    let (code, out) = run(&["import", "csv", path, "--workflow", "staff"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("0 request(s) created") && out.contains("5 row(s) imported before"),
        "{out}"
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "firstname,lastname,email\nAda,Lovelace,ada@example.com\nAlan,,alan@example.com\n",
    )
    .expect("csv");
    let (code, out) = run(&[
        "import",
        "csv",
        bad.to_str().expect("utf-8"),
        "--workflow",
        "staff",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("bad.csv") && out.contains("line 3, column lastname: is empty"),
        "{out}"
    );
    let (code, out) = run(&["import", "csv", "/nonexistent/x.csv", "--workflow", "staff"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("/nonexistent/x.csv"), "{out}");

    // A watched directory: a good file is imported and moved, a bad one moved with its reason.
    let watched = dir.path().join("drop");
    std::fs::create_dir_all(&watched).expect("drop dir");
    std::fs::write(watched.join("more.csv"), people(10, 13)).expect("csv");
    std::fs::copy(&bad, watched.join("broken.csv")).expect("csv");
    let mut watcher = Proc(
        gatehouse(&url, &log)
            .args([
                "import",
                "watch",
                watched.to_str().expect("utf-8"),
                "--workflow",
                "staff",
                "--every",
                "1s",
            ])
            .spawn()
            .expect("watch"),
    );
    let moved = |p: &std::path::Path| p.exists();
    let start = std::time::Instant::now();
    while !(moved(&watched.join("imported/more.csv"))
        && moved(&watched.join("failed/broken.csv.error")))
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the watcher did not take the files"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    watcher.signal(libc::SIGINT);
    assert!(watcher.wait_for(Duration::from_secs(10)).is_some());
    let why = std::fs::read_to_string(watched.join("failed/broken.csv.error")).expect("reason");
    assert!(why.contains("line 3, column lastname: is empty"), "{why}");
    let (_, out) = run(&["request", "list"]);
    assert!(out.contains("Person Number12"), "{out}");
    assert!(!out.contains("Ada Lovelace"), "{out}");
}
