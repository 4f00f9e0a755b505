//! A paged list with a selection and marks, and its table rendering: only the visible rows are
//! built, so a list of any length costs the same to draw.

use std::collections::BTreeSet;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Widget};

use crate::domain::inert::{inert, inert_string};
use crate::store::api::Millis;
use crate::tui::theme::{Role, Theme};

/// A refresh still unanswered after this long is shown as late.
pub const LATE_MS: Millis = 5_000;

/// Rows that have a stable key (for marks and for keeping the selection across reloads).
pub trait Keyed {
    /// The row's key.
    fn key(&self) -> String;
}

/// Rows loaded so far from a keyset-paginated store list, with a selection and marks.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    /// Loaded rows, in display order.
    pub rows: Vec<T>,
    /// Index of the selected row.
    pub selected: usize,
    /// Cursor for the next page, `None` when everything is loaded.
    pub next: Option<i64>,
    /// A load is in flight.
    pub loading: bool,
    /// At least one load has answered.
    pub loaded: bool,
    /// The last load's error, shown instead of rows.
    pub error: Option<String>,
    /// Keys of marked rows.
    pub marks: BTreeSet<String>,
    /// First row on screen. Kept on the same row across reloads, so rows that arrive above
    /// it push nothing the operator is reading; the view clamps it to keep the selection
    /// visible.
    pub offset: usize,
    /// Rows that arrived above the screen since the operator last looked at the top.
    pub new_above: usize,
    /// When the pending load was asked for.
    pub requested_at: Option<Millis>,
    /// When a load last answered successfully.
    pub refreshed_at: Option<Millis>,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Listing {
            rows: Vec::new(),
            selected: 0,
            next: None,
            loading: false,
            loaded: false,
            error: None,
            marks: BTreeSet::new(),
            offset: 0,
            new_above: 0,
            requested_at: None,
            refreshed_at: None,
        }
    }
}

impl<T: Keyed> Listing<T> {
    /// The selected row.
    pub fn current(&self) -> Option<&T> {
        self.rows.get(self.selected)
    }

    /// Moves the selection by `delta`, clamped to the loaded rows.
    pub fn move_by(&mut self, delta: isize) {
        if self.rows.is_empty() {
            self.selected = 0;
            return;
        }
        let last = self.rows.len() - 1;
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    /// Selects the first row and shows the top of the list (new rows included).
    pub fn top(&mut self) {
        self.selected = 0;
        self.offset = 0;
        self.new_above = 0;
    }

    /// Keeps the screen's first row so that the selection is visible in `height` rows; rows
    /// scrolled back into view are no longer counted as new.
    pub fn keep_visible(&mut self, height: usize) {
        let height = height.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        self.new_above = self.new_above.min(self.offset);
    }

    /// A load was asked for at `now`.
    pub fn begin_load(&mut self, now: Millis) {
        if !self.loading {
            self.requested_at = Some(now);
        }
        self.loading = true;
    }

    /// Freshness worth showing: a refresh that is late, or a failed one over older rows.
    pub fn freshness(&self, now: Millis) -> Option<String> {
        freshness(
            self.loading,
            self.requested_at,
            self.refreshed_at,
            self.error.is_some() && !self.rows.is_empty(),
            now,
        )
    }

    /// Selects the last loaded row.
    pub fn bottom(&mut self) {
        self.selected = self.rows.len().saturating_sub(1);
    }

    /// Marks or unmarks the selected row; answers whether it is now marked.
    pub fn toggle_mark(&mut self) -> Option<bool> {
        let key = self.current()?.key();
        if self.marks.remove(&key) {
            Some(false)
        } else {
            self.marks.insert(key);
            Some(true)
        }
    }

    /// Marks every loaded row.
    pub fn mark_all(&mut self) {
        self.marks = self.rows.iter().map(Keyed::key).collect();
    }

    /// True when the row is marked.
    pub fn is_marked(&self, row: &T) -> bool {
        !self.marks.is_empty() && self.marks.contains(&row.key())
    }

    /// The marked rows that are loaded, or the selected row when nothing is marked.
    pub fn targets(&self) -> Vec<&T> {
        if self.marks.is_empty() {
            self.current().into_iter().collect()
        } else {
            self.rows
                .iter()
                .filter(|r| self.marks.contains(&r.key()))
                .collect()
        }
    }

    /// Replaces the rows with a fresh first page, keeping the selection on the same key, the
    /// screen on the same first row (rows that arrived above it are counted in `new_above`),
    /// and dropping marks whose rows are gone.
    pub fn replace(&mut self, rows: Vec<T>, next: Option<i64>) {
        let selected_key = self.current().map(Keyed::key);
        let first_key = self.rows.get(self.offset).map(Keyed::key);
        let old: BTreeSet<String> = self.rows.iter().map(Keyed::key).collect();
        let had_rows = !self.rows.is_empty();
        self.rows = rows;
        self.next = next;
        self.finish_load();
        if let Some(key) = selected_key
            && let Some(i) = self.rows.iter().position(|r| r.key() == key)
        {
            self.selected = i;
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        if let Some(key) = first_key
            && let Some(i) = self.rows.iter().position(|r| r.key() == key)
        {
            if had_rows {
                let arrived = self.rows[..i]
                    .iter()
                    .filter(|r| !old.contains(&r.key()))
                    .count();
                self.new_above = (self.new_above + arrived).min(i);
            }
            self.offset = i;
        }
        self.offset = self.offset.min(self.selected);
        self.new_above = self.new_above.min(self.offset);
        let keys: BTreeSet<String> = self.rows.iter().map(Keyed::key).collect();
        self.marks.retain(|k| keys.contains(k));
    }

    fn finish_load(&mut self) {
        self.loading = false;
        self.loaded = true;
        self.error = None;
        self.refreshed_at = self.requested_at;
    }

    /// Appends the next page, skipping rows already present.
    pub fn append(&mut self, rows: Vec<T>, next: Option<i64>) {
        let have: BTreeSet<String> = self.rows.iter().map(Keyed::key).collect();
        self.rows
            .extend(rows.into_iter().filter(|r| !have.contains(&r.key())));
        self.next = next;
        self.finish_load();
    }

    /// Records a failed load; the rows already shown stay.
    pub fn failed(&mut self, error: String) {
        self.loading = false;
        self.loaded = true;
        self.error = Some(error);
    }

    /// True when the selection is within `margin` rows of the end and another page exists.
    pub fn wants_more(&self, margin: usize) -> bool {
        self.next.is_some() && !self.loading && self.selected + margin >= self.rows.len()
    }
}

/// First visible row index so that `selected` is on screen in `height` rows.
pub fn scroll_offset(selected: usize, height: usize) -> usize {
    if height == 0 {
        return 0;
    }
    selected.saturating_sub(height - 1)
}

/// What to say about data that is on screen: `refresh failing — rows from 2m ago` when the
/// last refresh failed over older data, `refresh late 7s` when one has been asked for and not
/// answered for [`LATE_MS`]; nothing when fresh.
pub fn freshness(
    loading: bool,
    requested_at: Option<Millis>,
    refreshed_at: Option<Millis>,
    failing: bool,
    now: Millis,
) -> Option<String> {
    if failing {
        return Some(match refreshed_at {
            Some(at) => format!(
                "refresh failing — data from {} ago",
                crate::tui::views::age_secs(now, at)
            ),
            None => "refresh failing".to_string(),
        });
    }
    match requested_at {
        Some(at) if loading && now - at >= LATE_MS => Some(format!(
            "refresh late {}",
            crate::tui::views::age_secs(now, at)
        )),
        _ => None,
    }
}

/// Which columns are shown and how wide: columns whose `min_width` exceeds the area are left
/// out, then, while the fixed and minimum widths do not fit, the column with the highest
/// `min_width` (the lowest priority); spare width goes to the `Min` columns (subject, error,
/// actor), shared evenly. Answers the shown column indexes and their widths.
pub fn layout_columns(
    columns: &[Column],
    area_width: u16,
    inner_width: u16,
) -> (Vec<usize>, Vec<u16>) {
    let base = |c: &Column| match c.width {
        Constraint::Length(n) | Constraint::Min(n) => n,
        _ => 8,
    };
    let mut shown: Vec<usize> = (0..columns.len())
        .filter(|i| area_width >= columns[*i].min_width)
        .collect();
    // The mark column and one space before every shown column.
    let room = |shown: &[usize]| usize::from(inner_width).saturating_sub(1 + shown.len());
    loop {
        let need: usize = shown.iter().map(|i| usize::from(base(&columns[*i]))).sum();
        if need <= room(&shown) {
            break;
        }
        let drop = shown
            .iter()
            .enumerate()
            .filter(|(_, i)| columns[**i].min_width > 0)
            .max_by_key(|(_, i)| columns[**i].min_width)
            .map(|(pos, _)| pos);
        match drop {
            Some(pos) => {
                shown.remove(pos);
            }
            None => break,
        }
    }
    let mut sizes: Vec<u16> = shown.iter().map(|i| base(&columns[*i])).collect();
    let need: usize = sizes.iter().map(|w| usize::from(*w)).sum();
    let mut spare = room(&shown).saturating_sub(need);
    let flexible: Vec<usize> = shown
        .iter()
        .enumerate()
        .filter(|(_, i)| matches!(columns[**i].width, Constraint::Min(_)))
        .map(|(pos, _)| pos)
        .collect();
    if !flexible.is_empty() {
        let share = spare / flexible.len();
        for (n, pos) in flexible.iter().enumerate() {
            let extra = if n + 1 == flexible.len() {
                spare
            } else {
                share
            };
            sizes[*pos] = sizes[*pos].saturating_add(u16::try_from(extra).unwrap_or(u16::MAX));
            spare -= extra;
        }
    } else if need > room(&shown) {
        // Nothing left to drop: the last column gives way.
        if let Some(last) = sizes.last_mut() {
            let over = need - room(&shown);
            *last = last.saturating_sub(u16::try_from(over).unwrap_or(u16::MAX));
        }
    }
    (shown, sizes)
}

/// Cuts stored text to `width` columns for a cell: shown inert, and when cut it ends with `…`,
/// at a word boundary when one is near the end (never half a word where a space allows).
pub fn fit_words(text: &str, width: usize) -> String {
    let text = inert_string(text);
    if text.chars().count() <= width {
        return text;
    }
    if width <= 1 {
        return "…".chars().take(width).collect();
    }
    let cut: String = text.chars().take(width - 1).collect();
    let keep = match cut.rfind(' ') {
        Some(i) if cut[..i].chars().count() * 3 >= width - 1 => cut[..i].trim_end(),
        _ => cut.as_str(),
    };
    format!("{keep}…")
}

/// First visible row: the stored `offset`, moved only as far as needed to show `selected`.
pub fn visible_offset(offset: usize, selected: usize, height: usize) -> usize {
    if height == 0 {
        return 0;
    }
    offset.clamp(selected.saturating_sub(height - 1), selected)
}

/// A table column; it is left out when the area is narrower than `min_width`.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header text.
    pub title: &'static str,
    /// Width constraint.
    pub width: Constraint,
    /// Hide the column below this area width.
    pub min_width: u16,
}

impl Column {
    /// A column always shown.
    pub const fn new(title: &'static str, width: Constraint) -> Column {
        Column {
            title,
            width,
            min_width: 0,
        }
    }

    /// A column shown only from `min_width` columns up.
    pub const fn from(title: &'static str, width: Constraint, min_width: u16) -> Column {
        Column {
            title,
            width,
            min_width,
        }
    }
}

/// A bordered pane with a title (shown inert: titles often carry stored names); returns the
/// inner area.
pub fn pane(buf: &mut Buffer, area: Rect, theme: &Theme, title: &str, focused: bool) -> Rect {
    let border = if focused {
        Role::BorderFocus
    } else {
        Role::Border
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style(border))
        .title(Span::styled(
            format!(" {} ", inert(title)),
            theme.style(Role::Title),
        ));
    let inner = block.inner(area);
    block.render(area, buf);
    inner
}

/// Draws a listing as a table inside a titled pane. `cells` gives a row's texts (one per
/// column, all columns) and its role; only rows on screen are built. Cell texts and errors are
/// shown inert (control characters visible, never sent to the terminal).
#[allow(clippy::too_many_arguments)] // one drawing call; grouping these would only rename them
pub fn render_listing<T: Keyed>(
    buf: &mut Buffer,
    area: Rect,
    theme: &Theme,
    title: &str,
    focused: bool,
    list: &Listing<T>,
    now: Millis,
    columns: &[Column],
    cells: impl Fn(&T) -> (Vec<String>, Role),
) {
    let more = if list.next.is_some() { "+" } else { "" };
    let marked = if list.marks.is_empty() {
        String::new()
    } else {
        format!(", {} marked", list.marks.len())
    };
    let mut full_title = format!("{title} [{}{more}{marked}]", list.rows.len());
    // Rows above the screen only: the inner height is the pane's minus borders and header.
    let body_rows = usize::from(area.height.saturating_sub(3));
    let unseen = list
        .new_above
        .min(visible_offset(list.offset, list.selected, body_rows));
    if unseen > 0 {
        full_title.push_str(&format!(" ▲ {unseen} new (n shows)"));
    }
    if let Some(fresh) = list.freshness(now) {
        full_title.push_str(&format!(" · {fresh}"));
    }
    let inner = pane(buf, area, theme, &full_title, focused);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    if list.rows.is_empty() {
        let (text, role) = match (&list.error, list.loaded) {
            (Some(e), _) => (format!("error: {}", inert(e)), Role::FlashErr),
            (None, false) => ("loading…".to_string(), Role::Dim),
            (None, true) => ("nothing here".to_string(), Role::Dim),
        };
        Paragraph::new(Line::styled(text, theme.style(role))).render(inner, buf);
        return;
    }
    let (shown, sizes) = layout_columns(columns, area.width, inner.width);
    let mut widths = vec![Constraint::Length(1)];
    widths.extend(sizes.iter().map(|w| Constraint::Length(*w)));
    let header = Row::new(
        std::iter::once(Cell::from(" "))
            .chain(shown.iter().map(|i| Cell::from(columns[*i].title)))
            .collect::<Vec<_>>(),
    )
    .style(theme.style(Role::Header));
    let body_height = usize::from(inner.height.saturating_sub(1));
    let offset = visible_offset(list.offset, list.selected, body_height);
    let base = theme.style(Role::Base);
    let rows: Vec<Row> = list
        .rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(body_height)
        .map(|(i, row)| {
            let (texts, role) = cells(row);
            let marked = list.is_marked(row);
            let mut style: Style = base.patch(theme.style(role));
            if marked {
                style = style.patch(theme.style(Role::Marked));
            }
            if i == list.selected {
                style = style.patch(theme.style(Role::Selected));
            }
            let mark = if marked { "●" } else { " " };
            let mut row_cells = vec![Cell::from(mark)];
            row_cells.extend(shown.iter().zip(&sizes).map(|(c, w)| {
                let text = texts.get(*c).map(String::as_str).unwrap_or_default();
                Cell::from(fit_words(text, usize::from(*w)))
            }));
            Row::new(row_cells).style(style)
        })
        .collect();
    Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .render(inner, buf);
    if let Some(error) = &list.error {
        let y = inner.y + inner.height - 1;
        let line = Line::styled(
            format!("error: {}", inert(error)),
            theme.style(Role::FlashErr),
        );
        buf.set_line(inner.x, y, &line, inner.width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Keyed for i64 {
        fn key(&self) -> String {
            self.to_string()
        }
    }

    #[test]
    fn selection_survives_reload_and_marks_prune() {
        let mut list: Listing<i64> = Listing::default();
        list.replace(vec![5, 4, 3, 2, 1], Some(1));
        list.move_by(2);
        assert_eq!(list.current(), Some(&3));
        list.toggle_mark();
        list.move_by(-1);
        list.toggle_mark();
        assert_eq!(list.targets(), vec![&4, &3]);
        list.replace(vec![6, 5, 4, 2, 1], None);
        assert_eq!(list.current(), Some(&4));
        assert_eq!(list.marks.len(), 1);
        list.move_by(100);
        assert_eq!(list.current(), Some(&1));
        list.move_by(-100);
        assert_eq!(list.current(), Some(&6));
    }

    #[test]
    fn append_skips_duplicates_and_wants_more() {
        let mut list: Listing<i64> = Listing::default();
        list.replace(vec![5, 4, 3], Some(3));
        assert!(list.wants_more(3));
        assert!(!list.wants_more(0));
        list.append(vec![3, 2, 1], None);
        assert_eq!(list.rows, vec![5, 4, 3, 2, 1]);
        assert!(!list.wants_more(10));
    }

    #[test]
    fn cells_are_cut_with_an_ellipsis_at_a_word() {
        assert_eq!(fit_words("short", 10), "short");
        assert_eq!(fit_words("system:engine-worker", 12), "system:engi…");
        assert_eq!(
            fit_words("scim: 409 user exists already", 20),
            "scim: 409 user…"
        );
        assert_eq!(fit_words("Maximiliana Alexandrina", 15), "Maximiliana…");
        assert_eq!(fit_words("a\x1b[2J", 10), "a␛[2J");
        assert_eq!(fit_words("abc", 0), "");
    }

    #[test]
    fn columns_drop_by_priority_and_spare_goes_to_min_columns() {
        let cols = [
            Column::new("id", Constraint::Length(4)),
            Column::new("subject", Constraint::Min(10)),
            Column::from("source", Constraint::Length(10), 100),
            Column::from("error", Constraint::Min(10), 90),
        ];
        // 80 wide: source and error are left out by their thresholds; subject takes the rest.
        let (shown, sizes) = layout_columns(&cols, 80, 78);
        assert_eq!(shown, vec![0, 1]);
        assert_eq!(sizes, vec![4, 78 - 1 - 2 - 4]);
        // 160 wide: all shown, spare shared by subject and error.
        let (shown, sizes) = layout_columns(&cols, 160, 158);
        assert_eq!(shown, vec![0, 1, 2, 3]);
        let total: u16 = sizes.iter().sum();
        assert_eq!(total, 158 - 1 - 4);
        assert!(sizes[1].abs_diff(sizes[3]) <= 1);
        // Too narrow for the minimums: the lowest priority (highest threshold) goes first.
        let (shown, _) = layout_columns(&cols, 120, 30);
        assert_eq!(shown, vec![0, 1, 3]);
        let (shown, _) = layout_columns(&cols, 120, 20);
        assert_eq!(shown, vec![0, 1]);
    }

    #[test]
    fn offsets_keep_selection_visible() {
        assert_eq!(scroll_offset(0, 10), 0);
        assert_eq!(scroll_offset(9, 10), 0);
        assert_eq!(scroll_offset(10, 10), 1);
        assert_eq!(scroll_offset(5, 0), 0);
    }
}
