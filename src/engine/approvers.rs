//! Approvers from the directory: the engine builds a client for each directory document (kept
//! per document version, so its cache serves a burst of requests), looks up the subject, their
//! line manager and the manager's manager, and the groups a workflow's stages name, and hands
//! the answers to the pure chain rules. Used for the chain preview at validation and again
//! when each stage opens.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::Digest;

use crate::directory::{DirPerson, DirectoryClient, DirectoryError};
use crate::domain::chain::{ChainFacts, groups_named};
use crate::domain::config::ConfigDocument;
use crate::domain::directory_checks::Evidence;
use crate::domain::separation::Person;
use crate::domain::workflow::Stage;
use crate::engine::documents;
use crate::engine::handler::JobError;
use crate::store::Store;
use crate::store::api::{ReadApi, RequestRow};

type Pool = Mutex<BTreeMap<String, Arc<DirectoryClient>>>;

/// Clients by document content hash: a new version gets a new client (and an empty cache).
fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// The directories the store holds, in name order, as clients; `Err(why)` inside when one
/// cannot be used (its document does not parse, a secret cannot be read).
pub async fn directories(
    store: &Store,
) -> Result<Result<Vec<Arc<DirectoryClient>>, String>, JobError> {
    let mut out = Vec::new();
    for head in store.config_heads().await? {
        if head.kind != "directory" {
            continue;
        }
        let key = hex::encode(sha2::Sha256::digest(
            format!("{}\n{}", head.name, head.body).as_bytes(),
        ));
        let cached = pool().lock().ok().and_then(|p| p.get(&key).cloned());
        if let Some(client) = cached {
            out.push(client);
            continue;
        }
        let document = match documents::check(&head.name, &head.body) {
            Ok(ConfigDocument::Directory(d)) => d,
            Ok(_) => continue,
            Err(diagnostics) => {
                return Ok(Err(format!(
                    "directory {} v{} does not parse: {}",
                    head.name,
                    head.version,
                    diagnostics
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                )));
            }
        };
        let client = match DirectoryClient::from_document(&document) {
            Ok(client) => Arc::new(client),
            Err(e) => return Ok(Err(e.to_string())),
        };
        if let Ok(mut p) = pool().lock() {
            p.insert(key, client.clone());
        }
        out.push(client);
    }
    Ok(Ok(out))
}

/// The first directory that knows `who`, with the person.
pub(crate) async fn find_person(
    dirs: &[Arc<DirectoryClient>],
    who: &str,
) -> Result<Option<(Arc<DirectoryClient>, DirPerson)>, DirectoryError> {
    for dir in dirs {
        if let Some(person) = dir.person(who).await? {
            return Ok(Some((dir.clone(), person)));
        }
    }
    Ok(None)
}

/// Everything the chain rules need for `request` and `stages`, plus the people the requester
/// and subject are (for separation of duties). A directory failure is an `Err(message)`.
pub async fn gather(
    store: &Store,
    request: &RequestRow,
    stages: &[Stage],
) -> Result<Result<(ChainFacts, Vec<Person>), String>, JobError> {
    let dirs = match directories(store).await? {
        Ok(dirs) => dirs,
        Err(why) => return Ok(Err(why)),
    };
    Ok(gather_from(&dirs, request, stages)
        .await
        .map_err(|e| e.to_string()))
}

/// [`gather`] with the directories already read (a batch of requests reads them once);
/// `Err(why)` when a directory cannot answer.
pub async fn gather_with(
    dirs: &[Arc<DirectoryClient>],
    request: &RequestRow,
    stages: &[Stage],
) -> Result<(ChainFacts, Vec<Person>), String> {
    gather_from(dirs, request, stages)
        .await
        .map_err(|e| e.to_string())
}

async fn gather_from(
    dirs: &[Arc<DirectoryClient>],
    request: &RequestRow,
    stages: &[Stage],
) -> Result<(ChainFacts, Vec<Person>), DirectoryError> {
    let mut facts = ChainFacts::default();
    let mut people = Vec::new();
    let mut subject = None;
    let names: Vec<&str> = [
        request.username.as_deref(),
        request.subject_email.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    for name in names.iter().copied() {
        if let Some(found) = find_person(dirs, name).await? {
            subject = Some(found);
            break;
        }
    }
    if subject.is_none() {
        facts.unknown_subject = Some(names.join(" / "));
    }
    if let Some((dir, person)) = &subject {
        facts.subject = Some(person.login.clone());
        if let Some(manager) = dir.manager_of(&person.login).await? {
            facts.managers_manager = dir.manager_of(&manager.login).await?.map(|m| m.login);
            facts.line_manager = Some(manager.login);
        }
    }
    for (_, person) in subject.iter() {
        people.extend(identity(person));
    }
    if let Some((_, requester)) = find_person(dirs, &request.requester).await? {
        people.extend(identity(&requester));
    }
    let groups: BTreeSet<String> = groups_named(stages);
    for group in groups {
        for dir in dirs {
            if let Some(members) = dir.group_members(&group).await? {
                let owners = dir.group_owners(&group).await?.unwrap_or_default();
                facts.members.insert(group.clone(), members);
                facts.owners.insert(group.clone(), owners);
                break;
            }
        }
    }
    Ok((facts, people))
}

fn identity(person: &DirPerson) -> Option<Person> {
    person.email.as_ref().map(|email| Person {
        login: person.login.clone(),
        email: email.clone(),
    })
}

/// Out-of-office routing for a stage about to open: an approver the directory says is out of
/// office keeps the stage when they delegated (their delegate sees it in their inbox and
/// decides for them); otherwise their line manager is added to the stage, unless the manager
/// is one of `parties` (requester or subject, lower-case names). Answers what was done, one
/// note per approver away; `Err(why)` inside when the directory cannot answer.
pub async fn route_out_of_office(
    store: &Store,
    approvers: &mut Vec<String>,
    parties: &BTreeSet<String>,
) -> Result<Result<Vec<String>, String>, JobError> {
    let dirs = match directories(store).await? {
        Ok(dirs) => dirs,
        Err(why) => return Ok(Err(why)),
    };
    let delegations = store.delegations(Some(store.now())).await?;
    Ok(route_with(&dirs, &delegations, approvers, parties).await)
}

/// [`route_out_of_office`] with the directories and the active delegations already read (a
/// batch of requests reads them once).
pub async fn route_with(
    dirs: &[Arc<DirectoryClient>],
    delegations: &[crate::store::delegation::DelegationRow],
    approvers: &mut Vec<String>,
    parties: &BTreeSet<String>,
) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    for who in approvers.clone() {
        let found = match find_person(dirs, &who).await {
            Ok(found) => found,
            Err(e) => return Err(e.to_string()),
        };
        let Some((dir, person)) = found else { continue };
        let away = match dir.out_of_office(&person.login).await {
            Ok(away) => away,
            Err(e) => return Err(e.to_string()),
        };
        if !away {
            continue;
        }
        if let Some(d) = delegations.iter().find(|d| d.from == who) {
            notes.push(format!(
                "{who} is out of office; {} decides for them (delegation)",
                d.to
            ));
            continue;
        }
        let manager = match dir.manager_of(&person.login).await {
            Ok(manager) => manager.map(|m| m.login),
            Err(e) => return Err(e.to_string()),
        };
        match manager {
            Some(m) if parties.contains(&m.to_lowercase()) => notes.push(format!(
                "{who} is out of office; their manager {m} is a party to the request and cannot take it"
            )),
            Some(m) if approvers.contains(&m) => notes.push(format!(
                "{who} is out of office; their manager {m} is already an approver"
            )),
            Some(m) => {
                notes.push(format!("{who} is out of office; routed to their manager {m}"));
                approvers.push(m);
            }
            None => notes.push(format!(
                "{who} is out of office, with no delegation and no manager to route to"
            )),
        }
    }
    Ok(notes)
}

/// The evidence for the workflow's directory checks: who the subject and the requester are to
/// the directory, the subject's line manager and (when `groups`) their groups.
pub async fn evidence(
    store: &Store,
    request: &RequestRow,
    groups: bool,
) -> Result<Result<Evidence, String>, JobError> {
    let dirs = match directories(store).await? {
        Ok(dirs) => dirs,
        Err(why) => return Ok(Err(why)),
    };
    let found: Result<Evidence, DirectoryError> = async {
        let mut evidence = Evidence::default();
        let mut subject = None;
        for name in [
            request.username.as_deref(),
            request.subject_email.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(found) = find_person(&dirs, name).await? {
                subject = Some(found);
                break;
            }
        }
        if let Some((dir, person)) = &subject {
            evidence.subject = Some(person.login.clone());
            evidence.line_manager = person.manager.clone();
            if groups {
                evidence.subject_groups = Some(dir.groups_of(&person.login).await?);
            }
        }
        evidence.requester = find_person(&dirs, &request.requester)
            .await?
            .map(|(_, p)| p.login);
        Ok(evidence)
    }
    .await;
    Ok(found.map_err(|e| e.to_string()))
}
