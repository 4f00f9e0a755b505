//! Diagnostics for TOML documents: `file:line:col: field: message`, located from TOML spans.
//!
//! Parsing and type errors carry a byte span from the TOML parser; semantic problems found after
//! parsing carry a field path (`stages[1].policy`). Both are turned into a [`Diagnostic`] with a
//! 1-based line and column and the field path by walking the spanned TOML tree.

use serde::de::DeserializeOwned;
use std::fmt;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem in one document, located precisely enough for an editor to jump to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    /// The file name or label the document came from.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// The field path, e.g. `stages[1].policy`; `(document)` for the document as a whole.
    pub field: String,
    /// What is wrong, in words an operator understands.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.field, self.message
        )
    }
}

/// A semantic problem found after parsing, named by its field path but not yet located.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldError {
    /// Field path such as `stages[1].policy` or `intake.mailbox`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// Where inside the field's string value, as a 1-based (line, column) of the value's text
    /// (a template's syntax error, say); `None` points at the value itself.
    pub within: Option<(usize, usize)>,
}

impl FieldError {
    /// A problem with the field at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            within: None,
        }
    }

    /// A problem at 1-based `line` and `column` of the text of the string field `field`.
    pub fn within(
        field: impl Into<String>,
        message: impl Into<String>,
        line: usize,
        column: usize,
    ) -> Self {
        Self {
            within: Some((line, column)),
            ..Self::new(field, message)
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The field label used for problems that concern the whole document.
pub const DOCUMENT_FIELD: &str = "(document)";

/// 1-based (line, column) of a byte offset; the column counts characters, not bytes.
/// Offsets past the end or inside a character are clamped to the nearest valid position.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn format_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(index) => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
        }
    }
    if out.is_empty() {
        DOCUMENT_FIELD.to_string()
    } else {
        out
    }
}

/// Parses `stages[1].policy` into segments; unparsable index text is kept as a key so that
/// locating falls back to the nearest existing parent.
fn parse_path(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    if path == DOCUMENT_FIELD {
        return segments;
    }
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            let key = &rest[..open];
            if !key.is_empty() {
                segments.push(Segment::Key(key.to_string()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                match stripped[..close].parse::<usize>() {
                    Ok(index) => segments.push(Segment::Index(index)),
                    Err(_) => segments.push(Segment::Key(stripped[..close].to_string())),
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            segments.push(Segment::Key(rest.to_string()));
        }
    }
    segments
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

/// The deepest field whose key or value span contains `offset`.
fn path_at(value: &DeValue<'_>, offset: usize, path: &mut Vec<Segment>) -> bool {
    match value {
        DeValue::Table(table) => {
            for (key, child) in table.iter() {
                path.push(Segment::Key(key.get_ref().to_string()));
                if path_at(child.get_ref(), offset, path) {
                    return true;
                }
                if contains(&key.span(), offset) || contains(&child.span(), offset) {
                    return true;
                }
                path.pop();
            }
            false
        }
        DeValue::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                path.push(Segment::Index(index));
                if path_at(child.get_ref(), offset, path) || contains(&child.span(), offset) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

/// The path of the last key that starts on the same line as `offset`, at or before it: names the
/// field of a syntax error whose span lies just past the value (e.g. an unterminated string).
fn path_on_line(
    value: &DeValue<'_>,
    text: &str,
    offset: usize,
    path: &mut Vec<Segment>,
    best: &mut Option<(usize, Vec<Segment>)>,
) {
    // Byte search: `offset` need not be a character boundary here.
    let bytes = text.as_bytes();
    let line_start = bytes[..offset.min(bytes.len())]
        .iter()
        .rposition(|byte| *byte == b'\n')
        .map_or(0, |i| i + 1);
    match value {
        DeValue::Table(table) => {
            for (key, child) in table.iter() {
                path.push(Segment::Key(key.get_ref().to_string()));
                let start = key.span().start;
                let on_line = start >= line_start && start <= offset;
                if on_line && best.as_ref().is_none_or(|(found, _)| start >= *found) {
                    *best = Some((start, path.clone()));
                }
                path_on_line(child.get_ref(), text, offset, path, best);
                path.pop();
            }
        }
        DeValue::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                path.push(Segment::Index(index));
                path_on_line(child.get_ref(), text, offset, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The span of the deepest existing prefix of `segments`: the value span for scalars, the key
/// span for tables (whose value span is only the header) and for keys of inline values.
fn span_of(root: &Spanned<DeTable<'_>>, segments: &[Segment]) -> Option<Range<usize>> {
    let mut best: Option<Range<usize>> = None;
    let mut current: Option<&Spanned<DeValue<'_>>> = None;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    for segment in segments {
        match segment {
            Segment::Key(key) => {
                let Some(parent) = table else { break };
                let Some((found_key, value)) = parent.get_key_value(key.as_str()) else {
                    break;
                };
                best = Some(match value.get_ref() {
                    DeValue::Table(_) | DeValue::Array(_) => found_key.span(),
                    _ => value.span(),
                });
                current = Some(value);
            }
            Segment::Index(index) => {
                let Some(DeValue::Array(items)) = current.map(|value| value.get_ref()) else {
                    break;
                };
                let Some(item) = items.get(*index) else { break };
                best = Some(item.span());
                current = Some(item);
            }
        }
        table = match current.map(|value| value.get_ref()) {
            Some(DeValue::Table(inner)) => Some(inner),
            _ => None,
        };
    }
    best
}

/// Extracts `name` from serde's "missing field `name`" message.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// Turns a TOML parse or deserialisation error into a located diagnostic.
fn from_toml_error(
    file: &str,
    text: &str,
    tree: Option<&Spanned<DeTable<'_>>>,
    error: &toml::de::Error,
) -> Diagnostic {
    let span = error.span().unwrap_or(0..0);
    let (line, column) = line_col(text, span.start);
    let message = error.message().trim().to_string();
    let mut segments = Vec::new();
    if let Some(tree) = tree {
        // The root table's span is empty, so a root-level error stays at the document.
        if !(span.start == 0 && span.end == 0) {
            let root = DeValue::Table(tree.get_ref().clone());
            if !path_at(&root, span.start, &mut segments) {
                segments.clear();
                let mut best = None;
                path_on_line(&root, text, span.start, &mut Vec::new(), &mut best);
                if let Some((_, found)) = best {
                    segments = found;
                }
            }
        }
    }
    if let Some(name) = missing_field(&message) {
        segments.push(Segment::Key(name.to_string()));
    }
    Diagnostic {
        file: file.to_string(),
        line,
        column,
        field: format_path(&segments),
        message,
    }
}

/// The document position of 1-based (`line`, `column`) of the text of the TOML string that
/// starts at byte `start`: a multi-line string (`"""` / `'''`) drops a newline right after
/// its opening quotes, as TOML does. Escapes inside a line are not undone, so a column after
/// an escape may be off by the escape's length; the line is exact.
fn inside_string(text: &str, start: usize, (line, column): (usize, usize)) -> (usize, usize) {
    let (value_line, value_column) = line_col(text, start);
    let rest = text.get(start..).unwrap_or("");
    let quotes = if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
        3
    } else if rest.starts_with('"') || rest.starts_with('\'') {
        1
    } else {
        0
    };
    let after_quotes = &rest[quotes..];
    let leading_newline =
        quotes == 3 && (after_quotes.starts_with('\n') || after_quotes.starts_with("\r\n"));
    let line = line.max(1);
    let column = column.max(1);
    if leading_newline {
        (value_line + line, column)
    } else if line == 1 {
        (value_line, value_column + quotes + column - 1)
    } else {
        (value_line + line - 1, column)
    }
}

/// Locates semantic field errors in `text` (which must be the text they were found in).
/// A field that does not exist in the text (a missing optional key) is reported at its nearest
/// existing parent, or at 1:1.
pub fn locate(file: &str, text: &str, errors: &[FieldError]) -> Vec<Diagnostic> {
    let tree = DeTable::parse(text).ok();
    errors
        .iter()
        .map(|error| {
            let span = tree
                .as_ref()
                .and_then(|tree| span_of(tree, &parse_path(&error.field)))
                .unwrap_or(0..0);
            let (line, column) = match error.within {
                Some(inner) => inside_string(text, span.start, inner),
                None => line_col(text, span.start),
            };
            Diagnostic {
                file: file.to_string(),
                line,
                column,
                field: error.field.clone(),
                message: error.message.clone(),
            }
        })
        .collect()
}

/// Parses a TOML document, checks its top-level `kind` against `expected_kind` when present,
/// removes `kind`, and deserialises the rest into `T` (whose struct denies unknown fields).
/// `require_kind` makes a missing `kind` an error.
pub(crate) fn deserialize_document<T: DeserializeOwned>(
    file: &str,
    text: &str,
    expected_kind: &str,
    require_kind: bool,
) -> Result<T, Vec<Diagnostic>> {
    let mut tree = parse_tree(file, text)?;
    let kind = take_kind(file, text, &mut tree)?;
    match kind {
        Some(kind) if kind != expected_kind => {
            return Err(locate(
                file,
                text,
                &[FieldError::new(
                    "kind",
                    format!("expected kind \"{expected_kind}\", found \"{kind}\""),
                )],
            ));
        }
        None if require_kind => {
            return Err(vec![missing_kind(file)]);
        }
        _ => {}
    }
    deserialize_tree(file, text, tree)
}

/// Parses the text into a spanned tree, or the syntax error as a diagnostic.
pub(crate) fn parse_tree<'i>(
    file: &str,
    text: &'i str,
) -> Result<Spanned<DeTable<'i>>, Vec<Diagnostic>> {
    DeTable::parse(text).map_err(|error| {
        // A partial tree lets a syntax error name the field it sits in.
        let (partial, _) = DeTable::parse_recoverable(text);
        vec![from_toml_error(file, text, Some(&partial), &error)]
    })
}

/// Removes and returns the top-level `kind` string; a non-string `kind` is a diagnostic.
pub(crate) fn take_kind(
    file: &str,
    text: &str,
    tree: &mut Spanned<DeTable<'_>>,
) -> Result<Option<String>, Vec<Diagnostic>> {
    let Some(value) = tree.get_mut().remove("kind") else {
        return Ok(None);
    };
    match value.get_ref() {
        DeValue::String(kind) => Ok(Some(kind.to_string())),
        other => {
            let (line, column) = line_col(text, value.span().start);
            Err(vec![Diagnostic {
                file: file.to_string(),
                line,
                column,
                field: "kind".to_string(),
                message: format!("invalid type: {}, expected a string", other.type_str()),
            }])
        }
    }
}

/// The diagnostic for a document without `kind`.
pub(crate) fn missing_kind(file: &str) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line: 1,
        column: 1,
        field: "kind".to_string(),
        message:
            "missing field `kind` (one of workflow, mailbox, directory, connector, role, notifier)"
                .to_string(),
    }
}

/// Deserialises an already parsed tree, locating any type or unknown-key error.
pub(crate) fn deserialize_tree<T: DeserializeOwned>(
    file: &str,
    text: &str,
    tree: Spanned<DeTable<'_>>,
) -> Result<T, Vec<Diagnostic>> {
    let located = tree.clone();
    T::deserialize(toml::de::Deserializer::from(tree))
        .map_err(|error| vec![from_toml_error(file, text, Some(&located), &error)])
}

/// Deserialises a `T` from a TOML string through its `FromStr`. Going through a visitor (rather
/// than deserialising a `String` first) makes the parser attach the value's own span to the
/// error, which matters for elements of arrays.
pub(crate) fn deserialize_from_str<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    struct FromStrVisitor<T> {
        expecting: &'static str,
        marker: std::marker::PhantomData<T>,
    }
    impl<T> serde::de::Visitor<'_> for FromStrVisitor<T>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        type Value = T;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str(self.expecting)
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
            text.parse().map_err(E::custom)
        }
    }
    deserializer.deserialize_str(FromStrVisitor {
        expecting,
        marker: std::marker::PhantomData,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // fields exist to be deserialised
    struct Stage {
        name: String,
        count: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        stages: Vec<Stage>,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        list: Vec<String>,
    }

    fn one(result: Result<Doc, Vec<Diagnostic>>) -> Diagnostic {
        let mut errors = result.expect_err("should fail");
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.remove(0)
    }

    #[test]
    fn line_col_counts_characters_and_lines() {
        let text = "a\nüb\nc";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 2), (2, 1));
        assert_eq!(line_col(text, 4), (2, 2)); // after the two-byte ü
        assert_eq!(line_col(text, 3), (2, 1)); // inside ü: clamped back
        assert_eq!(line_col(text, 6), (3, 1));
        assert_eq!(line_col(text, 100), (3, 2));
    }

    #[test]
    fn display_is_file_line_col_field_message() {
        let diagnostic = Diagnostic {
            file: "w.toml".into(),
            line: 3,
            column: 7,
            field: "stages[1].policy".into(),
            message: "bad".into(),
        };
        assert_eq!(diagnostic.to_string(), "w.toml:3:7: stages[1].policy: bad");
    }

    #[test]
    fn path_round_trip() {
        for path in ["a", "a.b", "stages[1].policy", "a[0][2].b", "(document)"] {
            assert_eq!(format_path(&parse_path(path)), path);
        }
        assert_eq!(
            parse_path("x[y].z"),
            vec![
                Segment::Key("x".into()),
                Segment::Key("y".into()),
                Segment::Key("z".into())
            ]
        );
    }

    #[test]
    fn type_error_in_array_of_tables_is_located() {
        let text = "kind = \"t\"\nname = \"x\"\n\n[[stages]]\nname = \"a\"\ncount = 1\n\n[[stages]]\nname = \"b\"\ncount = \"two\"\n";
        let d = one(deserialize_document::<Doc>("f.toml", text, "t", true));
        assert_eq!((d.line, d.column), (10, 9));
        assert_eq!(d.field, "stages[1].count");
        assert!(d.message.contains("invalid type"), "{}", d.message);
        assert_eq!(d.file, "f.toml");
    }

    #[test]
    fn unknown_key_is_located_at_the_key() {
        let text = "name = \"x\"\n[inner]\nlist = []\nextra = 1\n";
        let d = one(deserialize_document::<Doc>("f", text, "t", false));
        assert_eq!((d.line, d.column), (4, 1));
        assert_eq!(d.field, "inner.extra");
        assert!(d.message.contains("unknown field `extra`"));
    }

    #[test]
    fn missing_field_names_the_field() {
        let text = "name = \"x\"\n[[stages]]\nname = \"a\"\n";
        let d = one(deserialize_document::<Doc>("f", text, "t", false));
        assert_eq!(d.field, "stages[0].count");
        assert_eq!((d.line, d.column), (2, 1));
        let d = one(deserialize_document::<Doc>(
            "f",
            "kind = \"t\"\n",
            "t",
            true,
        ));
        assert_eq!(d.field, "name");
        assert_eq!((d.line, d.column), (1, 1));
    }

    #[test]
    fn syntax_error_is_located() {
        let text = "name = \"x\"\nstages = [ { name = \"a\", count = } ]\n";
        let d = one(deserialize_document::<Doc>("f", text, "t", false));
        assert_eq!((d.line, d.column), (2, 34));
        assert_eq!(d.field, "stages[0].count");
        let d = one(deserialize_document::<Doc>(
            "f",
            "name = \"x\"\nbad = \"open\n",
            "t",
            false,
        ));
        assert_eq!((d.line, d.column, d.field.as_str()), (2, 12, "bad"));
        let d = one(deserialize_document::<Doc>(
            "f",
            "name = \"x\"\n= 3\n",
            "t",
            false,
        ));
        assert_eq!(d.line, 2);
    }

    #[test]
    fn kind_is_checked() {
        let d = one(deserialize_document::<Doc>(
            "f",
            "kind = \"other\"\nname = \"x\"\n",
            "t",
            true,
        ));
        assert_eq!((d.line, d.column, d.field.as_str()), (1, 8, "kind"));
        let d = one(deserialize_document::<Doc>(
            "f",
            "name = \"x\"\n",
            "t",
            true,
        ));
        assert_eq!((d.line, d.column, d.field.as_str()), (1, 1, "kind"));
        let d = one(deserialize_document::<Doc>(
            "f",
            "name = \"x\"\nkind = 3\n",
            "t",
            true,
        ));
        assert_eq!((d.line, d.column, d.field.as_str()), (2, 8, "kind"));
        assert!(deserialize_document::<Doc>("f", "name = \"x\"\n", "t", false).is_ok());
    }

    #[test]
    fn locate_finds_values_tables_and_falls_back_to_parents() {
        let text = "name = \"x\"\n\n[[stages]]\nname = \"a\"\ncount = 1\n\n[inner]\nlist = [\"p\", \"q\"]\n";
        let errors = [
            FieldError::new("name", "m"),
            FieldError::new("stages[0].count", "m"),
            FieldError::new("stages[0].missing", "m"),
            FieldError::new("stages[5].name", "m"),
            FieldError::new("inner", "m"),
            FieldError::new("inner.list[1]", "m"),
            FieldError::new("nothing", "m"),
        ];
        let found: Vec<(usize, usize)> = locate("f", text, &errors)
            .iter()
            .map(|d| (d.line, d.column))
            .collect();
        assert_eq!(
            found,
            vec![(1, 8), (5, 9), (3, 1), (3, 3), (7, 2), (8, 14), (1, 1)]
        );
    }

    #[test]
    fn positions_inside_strings_are_document_positions() {
        let text = "[t]\none = \"ab {{ x\"\nmulti = \"\"\"\nline one\n  {{ y\n\"\"\"\ninline = '''a\nb {{'''\n";
        let errors = [
            FieldError::within("t.one", "m", 1, 4),
            FieldError::within("t.multi", "m", 2, 3),
            FieldError::within("t.inline", "m", 1, 1),
            FieldError::within("t.inline", "m", 2, 3),
        ];
        let found: Vec<(usize, usize)> = locate("f", text, &errors)
            .iter()
            .map(|d| (d.line, d.column))
            .collect();
        // one: the value starts at 2:7; column 4 of its text is 2:11 (after the quote).
        // multi: a newline follows the opening quotes, so its line 2 is document line 5.
        // inline: ''' at 7:10 with text on the same line: 7:13; its line 2 is 8:3.
        assert_eq!(found, vec![(2, 11), (5, 3), (7, 13), (8, 3)]);
    }
}
