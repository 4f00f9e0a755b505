//! `gatehouse import csv FILE --workflow W` and `gatehouse import watch DIR --workflow W`:
//! spreadsheets of people become requests, a file whole or not at all.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};

use super::{CliError, Context};
use crate::domain::config::{ConfigDocument, check_document};
use crate::domain::inert::inert;
use crate::domain::workflow::IntakeSource;
use crate::intake::csv::{CsvOptions, parse_csv};
use crate::store::Store;
use crate::store::api::{Actor, NewRequest};
use crate::store::import::{ImportOutcome, ImportRow};

/// Largest CSV file read (bytes).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// A watched file is taken once it has not changed for this long (it may still be written).
const SETTLE: Duration = Duration::from_secs(2);

/// Import verbs.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import a CSV file of people (`firstname,lastname,email[,username]` plus optional columns
    /// that become fields): every row becomes a request, or none does.
    Csv(CsvArgs),
    /// Watch a directory: each `*.csv` file dropped in is imported, then moved to `imported/`
    /// (or to `failed/` beside a `.error` file saying why).
    Watch(WatchArgs),
}

/// How rows become requests (shared by `csv` and `watch`).
#[derive(Debug, Args, Clone)]
pub struct RowArgs {
    /// Workflow the requests go to.
    #[arg(long)]
    pub workflow: String,
    /// joiner, mover or leaver (every row).
    #[arg(long, default_value = "joiner")]
    pub kind: String,
    /// Map a column to a field name: `--map Department=team` (repeatable).
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    pub map: Vec<String>,
}

/// `import csv`.
#[derive(Debug, Args)]
pub struct CsvArgs {
    /// The CSV file.
    pub file: PathBuf,
    /// How rows become requests.
    #[command(flatten)]
    pub rows: RowArgs,
}

/// `import watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The directory to watch.
    pub dir: PathBuf,
    /// How rows become requests.
    #[command(flatten)]
    pub rows: RowArgs,
    /// How often to look (e.g. `5s`).
    #[arg(long, default_value = "5s", value_parser = parse_every)]
    pub every: Duration,
}

fn parse_every(text: &str) -> Result<Duration, String> {
    let digits = text.trim_end_matches(['s', 'S']);
    match digits.parse::<u64>() {
        Ok(n) if (1..=3600).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "{text:?} is not a number of seconds between 1 and 3600 (e.g. 5s)"
        )),
    }
}

/// Run an import verb.
pub async fn run(
    store: &Store,
    actor: &Actor,
    command: ImportCommand,
) -> Result<ExitCode, CliError> {
    match command {
        ImportCommand::Csv(args) => {
            let label = args.file.display().to_string();
            let outcome = import_file(store, actor, &args.file, &args.rows).await?;
            report(&label, &args.rows.workflow, &outcome);
            Ok(ExitCode::SUCCESS)
        }
        ImportCommand::Watch(args) => watch(store, actor, &args).await,
    }
}

fn options(actor: &Actor, rows: &RowArgs) -> Result<CsvOptions, CliError> {
    let mut map = Vec::new();
    for pair in &rows.map {
        let Some((from, to)) = pair.split_once('=') else {
            return Err(CliError::msg(
                "--map",
                format!("{pair:?} is not COLUMN=FIELD"),
            ));
        };
        map.push((from.to_string(), to.to_string()));
    }
    Ok(CsvOptions {
        kind: rows.kind.clone(),
        requester: actor.user.clone(),
        map,
    })
}

/// Reads, parses and imports one file; the error names the file and every bad row.
async fn import_file(
    store: &Store,
    actor: &Actor,
    file: &Path,
    rows: &RowArgs,
) -> Result<ImportOutcome, CliError> {
    let label = file.display().to_string();
    let size = std::fs::metadata(file)
        .context(|| format!("reading {label}"))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(CliError::msg(
            label,
            format!("{size} bytes is more than the {MAX_FILE_BYTES} a CSV import reads; split it"),
        ));
    }
    accepts_csv(store, &rows.workflow, &rows.kind).await?;
    let bytes = std::fs::read(file).context(|| format!("reading {label}"))?;
    let parsed = parse_csv(&bytes, &options(actor, rows)?).context(|| label.clone())?;
    let rows_in: Vec<ImportRow> = parsed
        .into_iter()
        .map(|row| ImportRow {
            line: row.line,
            key: row.key,
            request: NewRequest {
                workflow: rows.workflow.clone(),
                kind: row.draft.kind,
                subject_name: row.draft.subject_name,
                subject_email: row.draft.subject_email,
                username: row.draft.username,
                requester: row.draft.requester,
                source: format!("csv:{}", file_name(file)),
                payload: serde_json::Value::Object(row.draft.fields),
            },
        })
        .collect();
    store
        .import_requests(actor, &rows.workflow, &label, rows_in)
        .await
        .context(|| format!("importing {label} into workflow {}", rows.workflow))
}

/// The workflow must exist and take CSV imports of this kind (its `[intake]` says so).
async fn accepts_csv(store: &Store, workflow: &str, kind: &str) -> Result<(), CliError> {
    let what = || format!("workflow {}", inert(workflow));
    let head = store
        .config_head(workflow)
        .await
        .context(what)?
        .ok_or_else(|| CliError::msg(what(), "no workflow of that name is saved"))?;
    let Ok(ConfigDocument::Workflow(wf)) = check_document(workflow, &head.body) else {
        return Err(CliError::msg(
            what(),
            "the saved document is not a valid workflow",
        ));
    };
    if !wf.intake.sources.contains(&IntakeSource::Csv) {
        return Err(CliError::msg(
            what(),
            "does not take CSV imports: add \"csv\" to its intake.sources",
        ));
    }
    if !wf.intake.kinds.iter().any(|k| k.name() == kind) {
        let kinds: Vec<&str> = wf.intake.kinds.iter().map(|k| k.name()).collect();
        return Err(CliError::msg(
            what(),
            format!(
                "takes {} requests (intake.kinds), not {}",
                kinds.join(", "),
                inert(kind)
            ),
        ));
    }
    Ok(())
}

fn file_name(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn report(label: &str, workflow: &str, outcome: &ImportOutcome) {
    println!(
        "{}: {} request(s) created in workflow {}, {} row(s) imported before and left alone",
        inert(label),
        outcome.created.len(),
        inert(workflow),
        outcome.already.len()
    );
    if let (Some(first), Some(last)) = (outcome.created.first(), outcome.created.last()) {
        println!("  requests {} to {}", first.1, last.1);
    }
}

async fn watch(store: &Store, actor: &Actor, args: &WatchArgs) -> Result<ExitCode, CliError> {
    let dir = &args.dir;
    let label = dir.display().to_string();
    if !dir.is_dir() {
        return Err(CliError::msg(label, "is not a directory"));
    }
    for sub in ["imported", "failed"] {
        std::fs::create_dir_all(dir.join(sub))
            .context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    println!(
        "watching {} for *.csv every {} s (ctrl-c stops)",
        inert(&label),
        args.every.as_secs()
    );
    let mut stop = Box::pin(tokio::signal::ctrl_c());
    loop {
        for file in ready_files(dir)? {
            let name = file_name(&file);
            match import_file(store, actor, &file, &args.rows).await {
                Ok(outcome) => {
                    report(&file.display().to_string(), &args.rows.workflow, &outcome);
                    tracing::info!(file = %file.display(), created = outcome.created.len(), "csv imported");
                    move_to(&file, &dir.join("imported").join(&name))?;
                }
                Err(e) => {
                    for line in e.to_string().lines() {
                        eprintln!("{}", inert(line));
                    }
                    tracing::warn!(file = %file.display(), error = %e, "csv refused");
                    let failed = dir.join("failed").join(&name);
                    move_to(&file, &failed)?;
                    let note = dir.join("failed").join(format!("{name}.error"));
                    std::fs::write(&note, format!("{e}\n"))
                        .context(|| format!("writing {}", note.display()))?;
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(args.every) => {}
        }
    }
}

/// `*.csv` files directly in `dir` that have not changed for [`SETTLE`], oldest name first.
fn ready_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let now = SystemTime::now();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).context(|| format!("listing {}", dir.display()))? {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let hidden = file_name(&path).starts_with('.');
        let Ok(meta) = entry.metadata() else { continue };
        let settled = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= SETTLE);
        if is_csv && !hidden && meta.is_file() && settled {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Moves a file, never over an existing one (a numbered name is chosen instead).
fn move_to(from: &Path, to: &Path) -> Result<(), CliError> {
    let mut target = to.to_path_buf();
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = to.with_file_name(format!("{}.{n}", file_name(to)));
    }
    std::fs::rename(from, &target)
        .context(|| format!("moving {} to {}", from.display(), target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_bounded_seconds() {
        assert_eq!(parse_every("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_every("60"), Ok(Duration::from_secs(60)));
        for bad in ["0s", "0", "-1", "5m", "x", "3601s"] {
            assert!(parse_every(bad).is_err(), "{bad}");
        }
    }
}
