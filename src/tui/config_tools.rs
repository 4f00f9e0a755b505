//! Glue between the editor and the domain: configuration validation and workflow dry-run,
//! turned into the editor's `Problem`s and display lines.

use crate::tui::views::editor::Problem;

/// Validates a document as TOML (syntax, with line and column).
pub fn check(file_label: &str, text: &str) -> Result<(), Vec<Problem>> {
    let _ = file_label;
    match toml::from_str::<toml::Table>(text) {
        Ok(_) => Ok(()),
        Err(e) => {
            let (line, column) = e
                .span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((1, 1));
            Err(vec![Problem {
                line,
                column,
                field: "(document)".to_string(),
                message: e.message().to_string(),
            }])
        }
    }
}

/// Dry-run of a workflow on a sample request.
pub fn dry_run(file_label: &str, text: &str) -> Result<Vec<String>, Vec<Problem>> {
    check(file_label, text)?;
    Err(vec![Problem {
        line: 1,
        column: 1,
        field: "(document)".to_string(),
        message: "dry-run is not available in this build".to_string(),
    }])
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}
