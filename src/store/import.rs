//! Bulk import of requests (a CSV file): every row in one transaction, each row's key taken
//! once per workflow, so a file is imported whole or not at all and importing it again
//! creates nothing new.

use std::collections::HashMap;

use serde_json::json;

use crate::domain::limits;
use crate::store::Store;
use crate::store::api::{Actor, NewRequest, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::command::{check_new_request, finish, invalid, limited};
use crate::store::db::{args, write_tx};
use crate::store::error::StoreError;
use crate::store::intake_batch::{Draft, ProcessJobs, insert_requests};
use crate::store::rows::now_ms;

const KNOWN_SQLITE: &str = "SELECT row_key, request_id FROM import_rows WHERE workflow = $1 AND row_key IN (SELECT value FROM json_each($2))";
const KNOWN_PG: &str = "SELECT row_key, request_id FROM import_rows WHERE workflow = $1 AND row_key = ANY(ARRAY(SELECT json_array_elements_text($2::json)))";
const LINK_SQLITE: &str = "INSERT INTO import_rows (workflow, row_key, request_id, file, line, created_at) \
     SELECT $1, json_extract(value, '$.row_key'), json_extract(value, '$.request_id'), $2, json_extract(value, '$.line'), $3 FROM json_each($4)";
const LINK_PG: &str = "INSERT INTO import_rows (workflow, row_key, request_id, file, line, created_at) \
     SELECT $1, row_key, request_id, $2, line, $3 FROM json_to_recordset($4::json) AS t(row_key text, request_id bigint, line bigint)";

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
            // Rows imported before (by this or an earlier file) in one statement.
            let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
            let known: Vec<(String, i64)> = tx
                .all(
                    tx.pick(KNOWN_SQLITE, KNOWN_PG),
                    args![workflow, json!(keys).to_string()],
                )
                .await?;
            let mut known: HashMap<String, i64> = known.into_iter().collect();
            // The first row with a key creates its request; a later row with the same key (in
            // this file) is that request again.
            let mut fresh: Vec<&ImportRow> = Vec::new();
            let mut repeats: Vec<&ImportRow> = Vec::new();
            let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
            for row in &rows {
                if known.contains_key(&row.key) || !seen.insert(row.key.as_str()) {
                    repeats.push(row);
                } else {
                    fresh.push(row);
                }
            }
            let drafts: Vec<Draft<'_>> = fresh
                .iter()
                .map(|row| Draft {
                    request: &row.request,
                    triage: None,
                })
                .collect();
            let created = insert_requests(&mut tx, actor, &drafts, ProcessJobs::Batched).await?;
            let mut links = Vec::with_capacity(created.len());
            for (row, request) in fresh.iter().zip(&created) {
                known.insert(row.key.clone(), request.id);
                outcome.created.push((row.line, request.id));
                links.push(json!({
                    "row_key": row.key,
                    "request_id": request.id,
                    "line": i64::try_from(row.line).unwrap_or(i64::MAX),
                }));
            }
            for row in repeats {
                if let Some(id) = known.get(&row.key) {
                    outcome.already.push((row.line, *id));
                }
            }
            outcome.already.sort_unstable();
            if !links.is_empty() {
                tx.exec(
                    tx.pick(LINK_SQLITE, LINK_PG),
                    args![
                        workflow,
                        file,
                        now,
                        serde_json::Value::Array(links).to_string()
                    ],
                )
                .await?;
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
            );
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
