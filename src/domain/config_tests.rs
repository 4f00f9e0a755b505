//! Tests of `domain::config` (kept apart so the module itself stays readable).

use super::*;
use crate::domain::dry_run::{SampleRequest, dry_run};

const DEMO: &[(&str, &str)] = &[
    (
        "engineering-joiner.toml",
        include_str!("../demo/configs/engineering-joiner.toml"),
    ),
    (
        "sales-joiner.toml",
        include_str!("../demo/configs/sales-joiner.toml"),
    ),
    (
        "finance-joiner.toml",
        include_str!("../demo/configs/finance-joiner.toml"),
    ),
    (
        "demo-target.toml",
        include_str!("../demo/configs/demo-target.toml"),
    ),
    (
        "demo-directory.toml",
        include_str!("../demo/configs/demo-directory.toml"),
    ),
    (
        "role-employee.toml",
        include_str!("../demo/configs/role-employee.toml"),
    ),
    (
        "role-developer.toml",
        include_str!("../demo/configs/role-developer.toml"),
    ),
];

const MAILBOX: &str = r#"kind = "mailbox"
name = "hr-inbox"
host = "imap.example.com"
user = "hr@example.com"
password = "env:HR_IMAP_PASSWORD"
workflow = "engineering-joiner"
"#;

fn load_all(extra: &[(&str, &str)]) -> Vec<LoadedDocument> {
    DEMO.iter()
        .chain(extra.iter())
        .map(|(file, text)| {
            load_document(file, text).unwrap_or_else(|errors| panic!("{file}: {errors:#?}"))
        })
        .collect()
}

fn only(file: &str, text: &str) -> Diagnostic {
    let mut errors = check_document(file, text).expect_err("must fail");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.remove(0)
}

fn at(d: &Diagnostic) -> (usize, usize, &str) {
    (d.line, d.column, d.field.as_str())
}

#[test]
fn demo_documents_pass_and_reference_each_other() {
    let documents = load_all(&[]);
    let kinds: Vec<ConfigKind> = documents.iter().map(|d| d.document.kind()).collect();
    assert_eq!(
        kinds,
        vec![
            ConfigKind::Workflow,
            ConfigKind::Workflow,
            ConfigKind::Workflow,
            ConfigKind::Connector,
            ConfigKind::Directory,
            ConfigKind::Role,
            ConfigKind::Role
        ]
    );
    assert_eq!(check_references(&documents), vec![]);
    let stage_counts: Vec<usize> = documents
        .iter()
        .filter_map(|d| match &d.document {
            ConfigDocument::Workflow(w) => Some(w.stages.len()),
            _ => None,
        })
        .collect();
    assert_eq!(stage_counts, vec![2, 1, 1]);
}

#[test]
fn demo_connector_and_directory_contents() {
    let documents = load_all(&[]);
    let ConfigDocument::Connector(connector) = &documents[3].document else {
        panic!("demo-target is a connector");
    };
    let sql = connector.sql.as_ref().expect("sql section");
    assert_eq!(sql.dialect, SqlDialect::Sqlite);
    assert_eq!(sql.table.as_str(), "accounts");
    let columns: Vec<&str> = sql.columns.keys().map(String::as_str).collect();
    assert_eq!(columns, vec!["email", "full_name", "team", "username"]);
    assert_eq!(sql.url, DatabaseUrl::Plain("sqlite://".into()));
    let ConfigDocument::Directory(directory) = &documents[4].document else {
        panic!("demo-directory is a directory");
    };
    assert_eq!(directory.line_manager("carol"), Some("alice"));
    assert_eq!(directory.line_manager("alice"), None);
    assert_eq!(directory.line_manager("nobody"), None);
    let groups = directory.group_members();
    assert_eq!(groups["security"], vec!["carol", "dave", "erin"]);
    assert_eq!(groups["eng-leads"], vec!["alice"]);
}

#[test]
fn demo_dry_run_resolves_through_the_static_directory() {
    let documents = load_all(&[]);
    let ConfigDocument::Workflow(workflow) = &documents[0].document else {
        panic!("workflow first");
    };
    let ConfigDocument::Directory(directory) = &documents[4].document else {
        panic!("directory");
    };
    let request = SampleRequest {
        subject_name: "Zoë Ångström".into(),
        subject_email: Some("zoe.angstrom@example.com".into()),
        requester: "erin".into(),
        fields: [
            ("team", "platform"),
            ("start_date", "2026-12-01"),
            ("manager", "carol"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        line_manager: Some("carol".into()),
        groups: directory.group_members(),
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 22),
        ..SampleRequest::default()
    };
    let run = dry_run(workflow, &request);
    assert_eq!(run.username.as_deref(), Some("zangstroem"));
    assert_eq!(run.chain[0].approvers, vec!["carol", "alice"]);
    assert_eq!(run.chain[1].approvers, vec!["carol", "dave"]);
    assert_eq!(run.chain[1].excluded, vec!["erin"]);
    assert!(run.is_clean(), "{run}");
}

#[test]
fn kind_problems() {
    assert_eq!(at(&only("f", "name = \"x\"\n")), (1, 1, "kind"));
    let d = only("f", "name = \"x\"\nkind = \"printer\"\n");
    assert_eq!(at(&d), (2, 8, "kind"));
    assert!(d.message.contains("unknown kind \"printer\""));
    assert_eq!(at(&only("f", "kind = 1\n")), (1, 8, "kind"));
    let d = only("f", "kind = \"role\"\nname = \n");
    assert_eq!((d.line, d.file.as_str()), (2, "f"));
}

#[test]
fn mailbox_documents() {
    let ConfigDocument::Mailbox(mailbox) = check_document("m", MAILBOX).expect("valid") else {
        panic!("mailbox");
    };
    assert_eq!(mailbox.port, 993);
    assert_eq!(mailbox.tls, TlsMode::Implicit);
    assert_eq!(mailbox.folder, "INBOX");
    assert_eq!(mailbox.password, SecretRef::Env("HR_IMAP_PASSWORD".into()));

    let d = only("m", &MAILBOX.replace("env:HR_IMAP_PASSWORD", "Sommer2026!"));
    assert_eq!(at(&d), (5, 12, "password"));
    assert!(!d.to_string().contains("Sommer2026"), "{d}");
    let d = only("m", &format!("{MAILBOX}tls = \"none\"\n"));
    assert_eq!(at(&d), (7, 7, "tls"));
    assert!(
        check_document(
            "m",
            &format!("{MAILBOX}tls = \"none\"\n").replace("imap.example.com", "127.0.0.1")
        )
        .is_ok()
    );
    let d = only("m", &format!("{MAILBOX}port = 0\n"));
    assert_eq!(at(&d), (7, 8, "port"));
    let d = only("m", &format!("{MAILBOX}port = 70000\n"));
    assert_eq!(at(&d), (7, 8, "port"));
    let d = only("m", &MAILBOX.replace("imap.example.com", "imap example"));
    assert_eq!(at(&d), (3, 8, "host"));
    let d = only("m", &format!("{MAILBOX}poll_interval = \"soon\"\n"));
    assert_eq!(at(&d), (7, 17, "poll_interval"));
    let d = only(
        "m",
        &MAILBOX.replace("workflow = \"engineering-joiner\"", "workflow = \"\""),
    );
    assert_eq!(at(&d), (6, 12, "workflow"));
}

const GRAPH: &str = r#"kind = "directory"
name = "entra"
backend = "graph"

[graph]
tenant_id = "t"
client_id = "c"
client_secret = "file:/run/secrets/graph"
"#;

const LDAP: &str = r#"kind = "directory"
name = "corp-ldap"
backend = "ldap"

[ldap]
url = "ldap://127.0.0.1:3890"
bind_dn = "cn=admin,dc=example,dc=com"
bind_password = "env:LDAP_PASSWORD"
base_dn = "ou=people,dc=example,dc=com"
"#;

#[test]
fn directory_documents() {
    assert!(check_document("g", GRAPH).is_ok());
    let ConfigDocument::Directory(ldap) = check_document("l", LDAP).expect("valid") else {
        panic!("directory");
    };
    let settings = ldap.ldap.expect("ldap settings");
    assert_eq!(settings.login_attribute, "uid");
    assert_eq!(settings.manager_attribute, "manager");

    let d = only("g", &GRAPH.replace("file:/run/secrets/graph", "abc123"));
    assert_eq!(at(&d), (8, 17, "graph.client_secret"));
    let errors = check_document(
        "g",
        &GRAPH.replace("backend = \"graph\"", "backend = \"ldap\""),
    )
    .expect_err("graph section with ldap backend");
    let found: Vec<_> = errors.iter().map(at).collect();
    assert_eq!(found, vec![(5, 2, "graph"), (3, 11, "backend")]);
    let errors = check_document(
        "g",
        &GRAPH.replace("backend = \"graph\"", "backend = \"static\""),
    )
    .expect_err("graph section with static backend");
    assert_eq!(at(&errors[0]), (5, 2, "graph"));
    let d = only("l", &LDAP.replace("ldap://", "http://"));
    assert_eq!(at(&d), (6, 7, "ldap.url"));
    let d = only("g", &format!("{GRAPH}base_url = \"ftp://x\"\n"));
    assert_eq!(at(&d), (9, 12, "graph.base_url"));
    let d = only(
        "g",
        &format!("{GRAPH}\n[[people]]\nlogin = \"a\"\nname = \"A\"\nemail = \"a@x\"\n"),
    );
    assert_eq!(at(&d), (10, 3, "people"));
}

#[test]
fn static_directory_errors() {
    let base = include_str!("../demo/configs/demo-directory.toml");
    let cases: &[(&str, &str, &str)] = &[
        ("login = \"bob\"", "login = \"alice\"", "people[1].login"),
        ("login = \"bob\"", "login = \"b b\"", "people[1].login"),
        (
            "email = \"bob@example.com\"",
            "email = \"bob\"",
            "people[1].email",
        ),
        (
            "manager = \"alice\"\ngroups = [\"security\"]",
            "manager = \"zed\"\ngroups = [\"security\"]",
            "people[2].manager",
        ),
        (
            "manager = \"bob\"",
            "manager = \"erin\"",
            "people[4].manager",
        ),
        (
            "manager = \"bob\"",
            "manager = \"bob\"\ndelegate = \"ghost\"",
            "people[4].delegate",
        ),
        (
            "groups = [\"sales-leads\"]",
            "groups = [\"\"]",
            "people[1].groups[0]",
        ),
        (
            "name = \"security\"",
            "name = \"eng-leads\"",
            "groups[1].name",
        ),
        (
            "owners = [\"carol\"]",
            "owners = [\"mallory\"]",
            "groups[1].owners[0]",
        ),
    ];
    for (from, to, field) in cases {
        assert!(base.contains(from), "{from}");
        let errors = check_document("d", &base.replacen(from, to, 1)).expect_err(to);
        assert!(
            errors.iter().any(|d| d.field == *field),
            "{to}: {errors:#?}"
        );
    }
}

#[test]
fn sql_identifiers() {
    for good in ["a", "_", "accounts", "Full_Name_2", &"x".repeat(63)] {
        assert_eq!(
            SqlIdent::new(good).map(|i| i.to_string()),
            Ok(good.to_string())
        );
    }
    for bad in [
        "",
        "1abc",
        "a-b",
        "a b",
        "a;drop",
        "\"a\"",
        "a`b",
        "ä",
        &"x".repeat(64),
    ] {
        assert_eq!(
            SqlIdent::new(bad),
            Err(SqlIdentError(bad.to_string())),
            "{bad}"
        );
    }
    let ident = SqlIdent::new("full_name").expect("valid");
    assert_eq!(quote_ident(SqlDialect::Postgres, &ident), "\"full_name\"");
    assert_eq!(quote_ident(SqlDialect::Sqlite, &ident), "\"full_name\"");
    assert_eq!(quote_ident(SqlDialect::Mysql, &ident), "`full_name`");
    // Defence in depth: even an identifier built without validation is escaped.
    let forged = SqlIdent("a\"b`c".to_string());
    assert_eq!(quote_ident(SqlDialect::Postgres, &forged), "\"a\"\"b`c\"");
    assert_eq!(quote_ident(SqlDialect::Mysql, &forged), "`a\"b``c`");
}

#[test]
fn database_urls() {
    let ok: &[(&str, DatabaseUrl)] = &[
        (
            "env:TARGET_URL",
            DatabaseUrl::Secret(SecretRef::Env("TARGET_URL".into())),
        ),
        (
            "file:/run/db",
            DatabaseUrl::Secret(SecretRef::File("/run/db".into())),
        ),
        (
            "postgres://app@db.example.com/app",
            DatabaseUrl::Plain("postgres://app@db.example.com/app".into()),
        ),
        (
            "postgres://db/app?sslmode=require",
            DatabaseUrl::Plain("postgres://db/app?sslmode=require".into()),
        ),
        ("sqlite://", DatabaseUrl::Plain("sqlite://".into())),
        (
            "sqlite:///tmp/x.db",
            DatabaseUrl::Plain("sqlite:///tmp/x.db".into()),
        ),
        (
            "mysql://root@127.0.0.1:3306/t",
            DatabaseUrl::Plain("mysql://root@127.0.0.1:3306/t".into()),
        ),
    ];
    for (text, expected) in ok {
        assert_eq!(text.parse::<DatabaseUrl>().as_ref(), Ok(expected), "{text}");
        assert_eq!(expected.to_string(), *text);
    }
    for secret in [
        "postgres://app:s3cret@db/app",
        "mysql://u:p@h/d",
        "postgres://db/app?password=s3cret",
        "postgres://db/app?sslmode=x&PASSWORD=y",
    ] {
        let error = secret.parse::<DatabaseUrl>().expect_err(secret);
        assert!(error.contains("password in plain text"), "{error}");
        assert!(!error.contains("s3cret"));
    }
    assert!("no-scheme".parse::<DatabaseUrl>().is_err());
    assert!("env:1".parse::<DatabaseUrl>().is_err());
    assert!("a b:x".parse::<DatabaseUrl>().is_err());
    assert_eq!(
        DatabaseUrl::Plain("mysql://h/d".into()).scheme(),
        Some("mysql")
    );
    assert_eq!(
        DatabaseUrl::Secret(SecretRef::Env("X".into())).scheme(),
        None
    );
}

#[test]
fn adopt_existing_is_a_boolean_defaulting_to_false() {
    let base = include_str!("../demo/configs/demo-target.toml");
    let sql_of = |text: &str| match check_document("c", text) {
        Ok(ConfigDocument::Connector(c)) => c.sql.expect("sql section"),
        other => panic!("{other:?}"),
    };
    assert!(!sql_of(base).adopt_existing);
    let adopting = base.replace(
        "table = \"accounts\"",
        "table = \"accounts\"\nadopt_existing = true",
    );
    assert!(sql_of(&adopting).adopt_existing);
    let d = only(
        "c",
        &base.replace(
            "table = \"accounts\"",
            "table = \"accounts\"\nadopt_existing = \"yes\"",
        ),
    );
    assert_eq!(at(&d).0, 10);
    assert!(d.field.contains("adopt_existing"), "{d:?}");
}

#[test]
fn connector_errors() {
    let base = include_str!("../demo/configs/demo-target.toml");
    let d = only(
        "c",
        &base.replace("table = \"accounts\"", "table = \"accounts; DROP TABLE x\""),
    );
    assert_eq!(at(&d), (9, 9, "sql.table"));
    assert!(d.message.contains("not a valid SQL identifier"));
    let d = only(
        "c",
        &base.replace("full_name = \"full_name\"", "full_name = \"full name\""),
    );
    assert_eq!(at(&d), (13, 13, "sql.columns.full_name"));
    let d = only(
        "c",
        &base.replace("url = \"sqlite://\"", "url = \"postgres://u:pw@h/d\""),
    );
    assert_eq!(at(&d), (8, 7, "sql.url"));
    let d = only(
        "c",
        &base.replace("url = \"sqlite://\"", "url = \"postgres://h/d\""),
    );
    assert_eq!(at(&d), (8, 7, "sql.url"));
    assert!(d.message.contains("does not match dialect"));
    let d = only("c", &base.replace("username = \"username\"\n", ""));
    assert_eq!(at(&d), (11, 6, "sql.columns"));
    let d = only("c", &base.replace("team = \"team\"", "team = \"email\""));
    assert_eq!(at(&d), (15, 8, "sql.columns.team"));
    let d = only(
        "c",
        &base.replace("team = \"team\"", "shoe_size = \"team\""),
    );
    assert_eq!(at(&d), (15, 13, "sql.columns.shoe_size"));
    let d = only(
        "c",
        &base.replace("dialect = \"sqlite\"", "dialect = \"oracle\""),
    );
    assert_eq!(at(&d), (7, 11, "sql.dialect"));
    let errors = check_document(
        "c",
        &base.replace("backend = \"sql\"", "backend = \"scim\""),
    )
    .expect_err("mismatch");
    assert_eq!(errors.len(), 2);
    assert_eq!(at(&errors[0]), (6, 2, "sql"));
    assert_eq!(at(&errors[1]), (4, 11, "backend"));
    let scim = "kind = \"connector\"\nname = \"app\"\nbackend = \"scim\"\n[scim]\nbase_url = \"https://app/scim/v2\"\ntoken = \"tok\"\n";
    assert_eq!(at(&only("s", scim)), (6, 9, "scim.token"));
    assert!(check_document("s", &scim.replace("\"tok\"", "\"env:SCIM_TOKEN\"")).is_ok());
    let http = "kind = \"connector\"\nname = \"api\"\nbackend = \"http\"\n[http]\nbase_url = \"api.example.com\"\nkey_pointer = \"/name\"\n[http.operations.read_account]\nurl = \"/users/{{ username }}\"\n";
    assert_eq!(at(&only("h", http)), (5, 12, "http.base_url"));
    assert!(
        check_document(
            "h",
            &http.replace("api.example.com", "https://api.example.com")
        )
        .is_ok()
    );
    // Plain http only on loopback; a template's unknown variable is placed inside it.
    assert_eq!(
        at(&only(
            "h",
            &http.replace("api.example.com", "http://api.example.com")
        )),
        (5, 12, "http.base_url")
    );
    assert!(
        check_document(
            "h",
            &http.replace("api.example.com", "http://127.0.0.1:8080")
        )
        .is_ok()
    );
    let d = only(
        "h",
        &http
            .replace("api.example.com", "https://api.example.com")
            .replace("{{ username }}", "{{ user_name }}"),
    );
    assert_eq!(at(&d), (8, 18, "http.operations.read_account.url"));
    let grants = format!(
        "{base}\n[sql.grants]\ntable = \"grants\"\nusername_column = \"username\"\nrole_column = \"role-name\"\n"
    );
    assert_eq!(at(&only("c", &grants)), (20, 15, "sql.grants.role_column"));
}

#[test]
fn role_documents() {
    let d = only(
        "r",
        "kind = \"role\"\nname = \"x\"\nentitlements = [\"demo-target:a\", \"bad\"]\n",
    );
    assert_eq!(at(&d), (3, 34, "entitlements[1]"));
    let d = only(
        "r",
        "kind = \"role\"\nname = \"x\"\nentitlements = \"demo-target:a\"\n",
    );
    assert_eq!(at(&d), (3, 16, "entitlements"));
}

#[test]
fn cross_document_references() {
    let orphan_workflow = include_str!("../demo/configs/sales-joiner.toml")
        .replace("name = \"sales-joiner\"", "name = \"orphan\"")
        .replace("connector = \"demo-target\"", "connector = \"crm\"")
        .replace(
            "kinds = [\"joiner\"]",
            "kinds = [\"joiner\"]\nmailbox = \"missing-box\"",
        );
    let granting = include_str!("../demo/configs/finance-joiner.toml")
        .replace("name = \"finance-joiner\"", "name = \"granting\"")
        + "\n[[steps]]\nname = \"role\"\nconnector = \"demo-target\"\naction = \"grant_role\"\nparams = { role = \"admin\" }\n";
    let text_mailbox = MAILBOX.replace("engineering-joiner", "finance-joiner");
    let ghost_mailbox = MAILBOX
        .replace("hr-inbox", "ghost-inbox")
        .replace("engineering-joiner", "ghost");
    let duplicate_role = include_str!("../demo/configs/role-employee.toml");
    let cycle_a = "kind = \"role\"\nname = \"a\"\ninherits = [\"employee\", \"b\"]\n";
    let cycle_b = "kind = \"role\"\nname = \"b\"\ninherits = [\"a\"]\n";
    let bad_role =
        "kind = \"role\"\nname = \"c\"\nentitlements = [\"crm:user\"]\ninherits = [\"nope\"]\n";
    let relay = "kind = \"notifier\"\nname = \"relay\"\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\nworkflows = [\"orphan\"]\nreply_key = \"env:K\"\nreply_address = \"approvals@example.com\"\nreply_mailbox = \"nowhere\"\n";
    let documents = load_all(&[
        ("orphan.toml", &orphan_workflow),
        ("granting.toml", &granting),
        ("hr.toml", &text_mailbox),
        ("ghost.toml", &ghost_mailbox),
        ("employee-again.toml", duplicate_role),
        ("a.toml", cycle_a),
        ("b.toml", cycle_b),
        ("c.toml", bad_role),
        ("relay.toml", relay),
    ]);
    let found: Vec<String> = check_references(&documents)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        vec![
            "orphan.toml:27:13: steps[0].connector: unknown connector \"crm\"".to_string(),
            "orphan.toml:10:11: intake.mailbox: unknown mailbox \"missing-box\"".to_string(),
            "granting.toml:35:19: steps[1].params.role: unknown role \"admin\"".to_string(),
            "hr.toml:6:12: workflow: workflow \"finance-joiner\" does not accept the email source".to_string(),
            "ghost.toml:6:12: workflow: unknown workflow \"ghost\"".to_string(),
            "employee-again.toml:2:8: name: role \"employee\" is already defined in role-employee.toml".to_string(),
            "c.toml:4:13: inherits[0]: unknown role \"nope\"".to_string(),
            "c.toml:3:17: entitlements[0]: unknown connector \"crm\"".to_string(),
            "relay.toml:8:17: reply_mailbox: unknown mailbox \"nowhere\"".to_string(),
            "a.toml:3:25: inherits[1]: roles inherit in a cycle: a → b → a".to_string(),
            "b.toml:3:13: inherits[0]: roles inherit in a cycle: b → a → b".to_string(),
        ]
    );
}

#[test]
fn truncated_or_mangled_documents_never_panic() {
    let extra = [("m", MAILBOX), ("g", GRAPH), ("l", LDAP)];
    for (file, text) in DEMO.iter().chain(extra.iter()) {
        for (end, c) in text.char_indices() {
            if let Err(errors) = check_document(file, &text[..end]) {
                assert!(!errors.is_empty(), "{file}[..{end}]");
                for d in errors {
                    assert!(d.line >= 1 && d.column >= 1, "{d}");
                }
            }
            // Replace one character with a quote: unbalanced strings everywhere.
            let mangled = format!("{}\"{}", &text[..end], &text[end + c.len_utf8()..]);
            let _ = check_document(file, &mangled);
        }
    }
}

#[test]
fn kinds_round_trip() {
    for kind in ConfigKind::ALL {
        assert_eq!(ConfigKind::from_name(kind.name()), Some(kind));
        assert_eq!(kind.to_string(), kind.name());
    }
    assert_eq!(ConfigKind::from_name("theme"), None);
}

#[test]
fn only_literal_loopback_addresses_are_loopback() {
    for host in ["localhost", "127.0.0.1", "127.8.9.10", "::1", "[::1]"] {
        assert!(is_loopback(host), "{host}");
    }
    for host in [
        "127.0.0.1.evil.com",
        "127.example.com",
        "128.0.0.1",
        "localhost.evil.com",
        "",
    ] {
        assert!(!is_loopback(host), "{host}");
    }
}
