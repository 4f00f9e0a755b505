//! Bulk import of requests (a CSV file): every row in one transaction, each row's key taken
//! once per workflow, so a file is imported whole or not at all and importing it again
//! creates nothing new.

use serde_json::json;

use crate::domain::limits;
use crate::store::Store;
use crate::store::api::{Actor, NewRequest, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::command::{check_new_request, finish, insert_request, invalid, limited};
use crate::store::db::{args, write_tx};
use crate::store::error::StoreError;
use crate::store::rows::now_ms;

/// One row to import.
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// Line in the file (for messages).
    pub line: u64,
    /// The row's identity across imports (the lower-cased e-mail).
    pub key: String,
    /// The request it becomes.
    pub request: NewRequest,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// (line, request id) of each request created.
    pub created: Vec<(u64, i64)>,
    /// (line, request id) of each row imported before, left alone.
    pub already: Vec<(u64, i64)>,
}

impl Store {
    /// Imports `rows` into `workflow` in one transaction: a row whose key was imported into
    /// this workflow before is left alone; every other row becomes a request (checked,
    /// authorised and audited like [`crate::store::api::CommandApi::create_request`]). Any
    /// refused row refuses the whole file, naming its line. One `request.import` audit row
    /// names the file and the counts.
    pub async fn import_requests(
        &self,
        actor: &Actor,
        workflow: &str,
        file: &str,
        rows: Vec<ImportRow>,
    ) -> StoreResult<ImportOutcome> {
        self.check_writable()?;
        limited(limits::check_text("file", file, 1024))?;
        for row in &rows {
            if row.request.workflow != workflow {
                return Err(invalid(
                    &format!("line {}: workflow", row.line),
                    format!("is {:?}, not {workflow:?}", row.request.workflow),
                ));
            }
            limited(limits::check_text("key", &row.key, 320))?;
            check_new_request(&row.request).map_err(|e| at_line(row.line, e))?;
        }
        let result = write_tx!(self, |tx| {
            let mut outcome = ImportOutcome::default();
            let now = now_ms();
            for row in &rows {
                let known: Option<(i64,)> = tx
                    .opt(
                        "SELECT request_id FROM import_rows WHERE workflow = $1 AND row_key = $2",
                        args![workflow, &row.key],
                    )
                    .await?;
                if let Some((id,)) = known {
                    outcome.already.push((row.line, id));
                    continue;
                }
                let created = insert_request(&mut tx, actor, &row.request, None)
                    .await
                    .map_err(|e| at_line(row.line, e))?;
                tx.exec(
                    "INSERT INTO import_rows (workflow, row_key, request_id, file, line, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    args![
                        workflow,
                        &row.key,
                        created.id,
                        file,
                        i64::try_from(row.line).unwrap_or(i64::MAX),
                        now
                    ],
                )
                .await?;
                outcome.created.push((row.line, created.id));
            }
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "request.import",
                    entity: "workflow",
                    entity_id: workflow.to_string(),
                    before: None,
                    after: Some(json!({
                        "file": file,
                        "rows": rows.len(),
                        "created": outcome.created.len(),
                        "already_imported": outcome.already.len(),
                    })),
                },
            )
            .await?;
            finish(&mut tx, !outcome.created.is_empty()).await?;
            Ok(outcome)
        });
        let outcome = self
            .audit_refusal(
                actor,
                "request.import",
                "workflow",
                workflow.to_string(),
                result,
            )
            .await?;
        if !outcome.created.is_empty() {
            self.signal_local(true);
        }
        Ok(outcome)
    }
}

/// Names the row's line in an invalid-input error; other errors pass unchanged.
fn at_line(line: u64, error: StoreError) -> StoreError {
    match error {
        StoreError::Invalid { field, message } => StoreError::Invalid {
            field: format!("line {line}: {field}"),
            message,
        },
        other => other,
    }
}
