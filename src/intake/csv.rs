//! CSV intake: a spreadsheet of people becomes request drafts, checked row by row.
//!
//! The minimal file has the columns `firstname,lastname,email` and optionally `username`; any
//! further column becomes a request field under its (normalised) header name, or under the name
//! a `--map column=field` option gives it. Parsing is pure: every incomplete or invalid row is
//! reported with its line number, and a file with any problem yields no drafts at all, so a
//! file is imported whole or not at all.

use std::collections::BTreeMap;

use crate::domain::intake::RequestDraft;
use crate::domain::limits;
use crate::domain::username::check_username;
use crate::intake::extract::is_email;

/// Most rows one file may hold.
pub const MAX_ROWS: usize = 100_000;
/// Most problems reported for one file (the rest are counted).
const MAX_REPORTED: usize = 50;

/// How rows become drafts.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// `joiner`, `mover` or `leaver` for every row.
    pub kind: String,
    /// Who asks (the importing operator).
    pub requester: String,
    /// Extra columns renamed: header (as written, case-insensitive) → field name.
    pub map: Vec<(String, String)>,
}

/// One good row.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow {
    /// Line of the row in the file (the header is line 1).
    pub line: u64,
    /// What makes the row the same row when imported again: the lower-cased e-mail.
    pub key: String,
    /// The drafted request.
    pub draft: RequestDraft,
}

/// One problem with one row (or the header, line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// Line in the file.
    pub line: u64,
    /// Column concerned, when one is.
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}, column {column}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// Why a file yields nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// The file has no header or no rows.
    #[error("the file is empty: expected a header line `firstname,lastname,email` and rows")]
    Empty,
    /// More rows than [`MAX_ROWS`].
    #[error("the file has more than {MAX_ROWS} rows; split it")]
    TooManyRows,
    /// Problems with the header or rows; nothing is imported.
    #[error("{} problem(s); nothing was imported:\n{}{}", .total, join(.problems), more(.problems.len(), *.total))]
    Rows {
        /// The first problems, in file order.
        problems: Vec<RowProblem>,
        /// How many problems there are in all.
        total: usize,
    },
}

fn join(problems: &[RowProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn more(shown: usize, total: usize) -> String {
    if total > shown {
        format!("\n  … and {} more", total - shown)
    } else {
        String::new()
    }
}

/// Known columns and the header spellings that name them.
const FIRST: [&str; 4] = ["firstname", "first_name", "first name", "given name"];
const LAST: [&str; 5] = [
    "lastname",
    "last_name",
    "last name",
    "surname",
    "family name",
];
const EMAIL: [&str; 4] = ["email", "e-mail", "mail", "email address"];
const USERNAME: [&str; 3] = ["username", "user name", "login"];

#[derive(Debug, Clone, PartialEq)]
enum Column {
    First,
    Last,
    Email,
    Username,
    Field(String),
}

/// Normalises a header into a field name: lower case, spaces and dashes to `_`.
fn field_name(header: &str) -> String {
    header
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

fn columns(headers: &[String], options: &CsvOptions) -> Result<Vec<Column>, Vec<RowProblem>> {
    let mut problems = Vec::new();
    let header_problem = |column: &str, message: String| RowProblem {
        line: 1,
        column: Some(column.to_string()),
        message,
    };
    let mut out = Vec::with_capacity(headers.len());
    for header in headers {
        let lower = header.trim().to_lowercase();
        let mapped = options
            .map
            .iter()
            .find(|(from, _)| from.trim().to_lowercase() == lower)
            .map(|(_, to)| to.clone());
        let column = if let Some(to) = mapped {
            Column::Field(to)
        } else if FIRST.contains(&lower.as_str()) {
            Column::First
        } else if LAST.contains(&lower.as_str()) {
            Column::Last
        } else if EMAIL.contains(&lower.as_str()) {
            Column::Email
        } else if USERNAME.contains(&lower.as_str()) {
            Column::Username
        } else {
            Column::Field(field_name(header))
        };
        if let Column::Field(name) = &column {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if !valid {
                problems.push(header_problem(
                    header,
                    "a column name must be 1-64 letters, digits, `_` or `.` (rename it or map it with --map)".into(),
                ));
            }
        }
        if out.contains(&column) {
            problems.push(header_problem(header, "this column appears twice".into()));
        }
        out.push(column);
    }
    for (needed, names) in [
        (Column::First, "firstname"),
        (Column::Last, "lastname"),
        (Column::Email, "email"),
    ] {
        if !out.contains(&needed) {
            problems.push(RowProblem {
                line: 1,
                column: None,
                message: format!("the header has no `{names}` column"),
            });
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Parses a CSV file into drafts, or reports every problem and yields nothing.
pub fn parse_csv(bytes: &[u8], options: &CsvOptions) -> Result<Vec<CsvRow>, CsvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Lines are counted from the last record on (records come in order), not from the start
    // of the file for each record.
    let mut counted = (0usize, 1u64);
    let mut line_of = |position: Option<&csv::Position>| -> u64 {
        position.map_or(0, |p| {
            let mut end = usize::try_from(p.byte())
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            // A record's position may be where the blank lines before it start.
            while end < bytes.len() && matches!(bytes[end], b'\n' | b'\r') {
                end += 1;
            }
            if end < counted.0 {
                counted = (0, 1);
            }
            counted.1 += bytes[counted.0..end]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            counted.0 = end;
            counted.1
        })
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers: Vec<String> = match reader.byte_headers() {
        Ok(h) => h
            .iter()
            .map(|cell| String::from_utf8_lossy(cell).into_owned())
            .collect(),
        Err(e) => {
            return Err(CsvError::Rows {
                problems: vec![RowProblem {
                    line: 1,
                    column: None,
                    message: format!("the header cannot be read: {e}"),
                }],
                total: 1,
            });
        }
    };
    if headers.iter().all(|h| h.trim().is_empty()) {
        return Err(CsvError::Empty);
    }
    let columns = columns(&headers, options).map_err(|problems| CsvError::Rows {
        total: problems.len(),
        problems,
    })?;
    let mut found = Found::default();
    let mut rows = Vec::new();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for record in reader.byte_records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = line_of(e.position());
                found.push(RowProblem {
                    line,
                    column: None,
                    message: format!("the row cannot be read: {e}"),
                });
                continue;
            }
        };
        let line = line_of(record.position());
        if record.iter().all(|cell| cell.is_empty()) {
            continue;
        }
        if rows.len() + found.total >= MAX_ROWS {
            return Err(CsvError::TooManyRows);
        }
        if record.len() > columns.len() {
            found.push(RowProblem {
                line,
                column: None,
                message: format!(
                    "{} cells but the header names {} columns",
                    record.len(),
                    columns.len()
                ),
            });
            continue;
        }
        match row(line, &headers, &columns, &record, options) {
            Ok(good) => {
                if let Some(first) = seen.insert(good.key.clone(), line) {
                    found.push(RowProblem {
                        line,
                        column: Some("email".into()),
                        message: format!("repeats the e-mail of line {first}"),
                    });
                } else {
                    rows.push(good);
                }
            }
            Err(bad) => {
                for p in bad {
                    found.push(p);
                }
            }
        }
    }
    if found.total > 0 {
        return Err(CsvError::Rows {
            problems: found.shown,
            total: found.total,
        });
    }
    if rows.is_empty() {
        return Err(CsvError::Empty);
    }
    Ok(rows)
}

/// Problems found so far: the first [`MAX_REPORTED`] kept, all counted.
#[derive(Default)]
struct Found {
    shown: Vec<RowProblem>,
    total: usize,
}

impl Found {
    fn push(&mut self, problem: RowProblem) {
        self.total += 1;
        if self.shown.len() < MAX_REPORTED {
            self.shown.push(problem);
        }
    }
}

fn row(
    line: u64,
    headers: &[String],
    columns: &[Column],
    record: &csv::ByteRecord,
    options: &CsvOptions,
) -> Result<CsvRow, Vec<RowProblem>> {
    let mut problems = Vec::new();
    let mut problem = |column: &str, message: String| {
        problems.push(RowProblem {
            line,
            column: Some(column.to_string()),
            message,
        })
    };
    let (mut first, mut last, mut email, mut username) = (None, None, None, None);
    // Columns whose cell was refused: not reported again as empty.
    let mut refused: Vec<&Column> = Vec::new();
    let mut fields = serde_json::Map::new();
    for (index, column) in columns.iter().enumerate() {
        let header = headers.get(index).map_or("", String::as_str);
        let cell = record.get(index).unwrap_or(b"");
        let Ok(text) = std::str::from_utf8(cell) else {
            problem(header, "is not UTF-8 (save the file as UTF-8)".into());
            refused.push(column);
            continue;
        };
        if text.contains('\0') {
            problem(header, "holds a NUL byte".into());
            refused.push(column);
            continue;
        }
        if text.chars().any(char::is_control) {
            problem(header, "holds control characters".into());
            refused.push(column);
            continue;
        }
        if text.is_empty() {
            continue;
        }
        match column {
            Column::First => first = Some(text.to_string()),
            Column::Last => last = Some(text.to_string()),
            Column::Email => email = Some(text.to_lowercase()),
            Column::Username => username = Some(text.to_string()),
            Column::Field(name) => {
                fields.insert(name.clone(), serde_json::Value::String(text.to_string()));
            }
        }
    }
    if first.is_none() && !refused.contains(&&Column::First) {
        problem("firstname", "is empty".into());
    }
    if last.is_none() && !refused.contains(&&Column::Last) {
        problem("lastname", "is empty".into());
    }
    match &email {
        None if refused.contains(&&Column::Email) => {}
        None => problem("email", "is empty".into()),
        Some(e) if !is_email(e) => problem("email", format!("{e:?} is not an e-mail address")),
        Some(e) => {
            if let Err(err) = limits::check_email(e) {
                problem("email", err.to_string());
            }
        }
    }
    if let Some(u) = &username
        && let Err(e) = check_username(u)
    {
        problem("username", e.to_string());
    }
    let name = format!(
        "{} {}",
        first.as_deref().unwrap_or(""),
        last.as_deref().unwrap_or("")
    );
    if let Err(e) = limits::check_subject_name(name.trim()) {
        problem("firstname", e.to_string());
    }
    if let Err(e) = limits::check_fields(&fields) {
        problem(e.field(), e.to_string());
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let email = email.unwrap_or_default();
    Ok(CsvRow {
        line,
        key: email.clone(),
        draft: RequestDraft {
            kind: options.kind.clone(),
            subject_name: name.trim().to_string(),
            subject_email: Some(email),
            username,
            requester: options.requester.clone(),
            fields,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> CsvOptions {
        CsvOptions {
            kind: "joiner".into(),
            requester: "hr".into(),
            map: Vec::new(),
        }
    }

    fn problems(text: &str) -> Vec<String> {
        match parse_csv(text.as_bytes(), &options()) {
            Err(CsvError::Rows { problems, .. }) => {
                problems.iter().map(|p| p.to_string()).collect()
            }
            other => panic!("expected row problems, got {other:?}"),
        }
    }

    #[test]
    fn minimal_rows_become_drafts_with_their_lines() {
        let rows = parse_csv(
            b"firstname,lastname,email\nAda,Lovelace,Ada@Example.com\n\nAlan,Turing,alan@example.com\n",
            &options(),
        )
        .expect("parses");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].key, "ada@example.com");
        assert_eq!(rows[0].draft.subject_name, "Ada Lovelace");
        assert_eq!(
            rows[0].draft.subject_email.as_deref(),
            Some("ada@example.com")
        );
        assert_eq!(rows[0].draft.username, None);
        assert_eq!(rows[0].draft.kind, "joiner");
        assert_eq!(rows[0].draft.requester, "hr");
        assert_eq!(rows[1].line, 4, "blank lines count");
    }

    #[test]
    fn optional_columns_become_fields_and_can_be_mapped() {
        let mut opts = options();
        opts.map = vec![("Department".into(), "team".into())];
        let rows = parse_csv(
            "\u{feff}First Name,Surname,E-mail,Username,Department,Start Date\n\"Lovelace, Ada\",L,a@x.org,alove,eng,2027-01-04\n"
                .as_bytes(),
            &opts,
        )
        .expect("parses");
        let draft = &rows[0].draft;
        assert_eq!(draft.subject_name, "Lovelace, Ada L");
        assert_eq!(draft.username.as_deref(), Some("alove"));
        assert_eq!(draft.fields["team"], "eng");
        assert_eq!(draft.fields["start_date"], "2027-01-04");
    }

    #[test]
    fn every_bad_row_is_reported_by_line_and_nothing_is_returned() {
        let found = problems(
            "firstname,lastname,email,username\nAda,Lovelace,ada@example.com,\n,Turing,alan@example.com,\nGrace,Hopper,not-an-email,\nKen,Thompson,ken@example.com,Bad Name!\nAda,Again,ADA@example.com,\n",
        );
        assert_eq!(
            found,
            vec![
                "line 3, column firstname: is empty",
                "line 4, column email: \"not-an-email\" is not an e-mail address",
                found[2].as_str(),
                "line 6, column email: repeats the e-mail of line 2",
            ]
        );
        assert!(
            found[2].starts_with("line 5, column username:"),
            "{found:?}"
        );
    }

    #[test]
    fn header_problems_name_the_missing_column() {
        assert_eq!(
            problems("first,last,email\na,b,c@d.e\n"),
            vec![
                "line 1: the header has no `firstname` column",
                "line 1: the header has no `lastname` column",
            ]
        );
        assert_eq!(
            problems("firstname,lastname,email,email\na,b,c@d.e,f@g.h\n"),
            vec!["line 1, column email: this column appears twice"]
        );
        assert_eq!(
            problems("firstname,lastname,email,Cost (€)\na,b,c@d.e,1\n"),
            vec![
                "line 1, column Cost (€): a column name must be 1-64 letters, digits, `_` or `.` (rename it or map it with --map)"
            ]
        );
    }

    #[test]
    fn hostile_cells_are_refused_not_imported() {
        let found = problems(
            "firstname,lastname,email\nA\u{0}da,L,a@x.org\nB,L\u{1b}[2J,b@x.org\nC,L,c@x.org,extra\n",
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0], "line 2, column firstname: holds a NUL byte");
        assert_eq!(
            found[1],
            "line 3, column lastname: holds control characters"
        );
        assert_eq!(found[2], "line 4: 4 cells but the header names 3 columns");
        let latin1 = parse_csv(b"firstname,lastname,email\nJos\xe9,L,j@x.org\n", &options());
        assert!(
            matches!(&latin1, Err(CsvError::Rows { problems, .. }) if problems[0].message.contains("UTF-8")),
            "{latin1:?}"
        );
    }

    #[test]
    fn empty_files_and_headers_only_say_so() {
        assert_eq!(parse_csv(b"", &options()), Err(CsvError::Empty));
        assert_eq!(
            parse_csv(b"firstname,lastname,email\n", &options()),
            Err(CsvError::Empty)
        );
    }

    #[test]
    fn many_problems_are_counted_beyond_the_reported_ones() {
        let mut text = String::from("firstname,lastname,email\n");
        for _ in 0..80 {
            text.push_str(",,\n");
            text.push_str("a,b,bad\n");
        }
        let Err(CsvError::Rows { problems, total }) = parse_csv(text.as_bytes(), &options()) else {
            panic!("expected problems");
        };
        assert_eq!(problems.len(), MAX_REPORTED);
        assert_eq!(total, 80);
        let message = CsvError::Rows { problems, total }.to_string();
        assert!(message.contains("… and 30 more"), "{message}");
    }
}
