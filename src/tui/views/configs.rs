//! Configs: every document's head, and the versions of the selected one (history); `e` edits,
//! `b` rolls back to the selected version (saved as a new version after validation and diff).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};

use crate::store::api::ConfigVersion;
use crate::tui::app::AppState;
use crate::tui::theme::Role;
use crate::tui::views::{age, stamp};
use crate::tui::widgets::table::{Column, Keyed, Listing, render_listing};

impl Keyed for ConfigVersion {
    fn key(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// Configs view state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigsView {
    /// Shown heads (after the text filter).
    pub heads: Listing<ConfigVersion>,
    /// Every head from the last load.
    pub all_heads: Vec<ConfigVersion>,
    /// Versions of `versions_of`, newest first.
    pub versions: Listing<ConfigVersion>,
    /// Which document the versions belong to.
    pub versions_of: Option<String>,
    /// The versions pane has the focus.
    pub focus_versions: bool,
    /// The `/` filter text (matches name or kind).
    pub filter_text: String,
}

impl ConfigsView {
    /// Rebuilds the shown heads from `all_heads` and the filter.
    pub fn apply_filter(&mut self) {
        let needle = self.filter_text.to_lowercase();
        let rows = self
            .all_heads
            .iter()
            .filter(|c| {
                needle.is_empty()
                    || c.name.to_lowercase().contains(&needle)
                    || c.kind.contains(&needle)
            })
            .cloned()
            .collect();
        // Heads are keyed by name@version; keep the selection on the name across a new version.
        let selected = self.heads.current().map(|c| c.name.clone());
        self.heads.replace(rows, None);
        if let Some(name) = selected
            && let Some(i) = self.heads.rows.iter().position(|c| c.name == name)
        {
            self.heads.selected = i;
        }
    }
}

const HEAD_COLUMNS: &[Column] = &[
    Column::new("name", Constraint::Min(14)),
    Column::new("kind", Constraint::Length(10)),
    Column::new("ver", Constraint::Length(4)),
    Column::from("author", Constraint::Length(12), 90),
    Column::new("saved", Constraint::Length(5)),
    Column::from("comment", Constraint::Min(10), 140),
];

const VERSION_COLUMNS: &[Column] = &[
    Column::new("ver", Constraint::Length(4)),
    Column::new("author", Constraint::Length(12)),
    Column::new("saved at", Constraint::Length(11)),
    Column::new("comment", Constraint::Min(10)),
];

/// Draws heads and versions side by side (wide) or the focused pane only (narrow).
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let c = &state.configs;
    let now = state.now;
    let (heads_area, versions_area) = if area.width >= 120 {
        let [h, v] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
            .areas(area);
        (Some(h), Some(v))
    } else if c.focus_versions {
        (None, Some(area))
    } else {
        (Some(area), None)
    };
    if let Some(a) = heads_area {
        let title = if c.filter_text.is_empty() {
            "configs".to_string()
        } else {
            format!("configs /{}", c.filter_text)
        };
        render_listing(
            buf,
            a,
            &state.theme,
            &title,
            !c.focus_versions,
            &c.heads,
            state.now,
            HEAD_COLUMNS,
            |v| {
                (
                    vec![
                        v.name.clone(),
                        v.kind.clone(),
                        v.version.to_string(),
                        v.author.clone(),
                        age(now, v.created_at),
                        v.comment.clone(),
                    ],
                    Role::Base,
                )
            },
        );
    }
    if let Some(a) = versions_area {
        let title = format!("history: {}", c.versions_of.as_deref().unwrap_or("-"));
        render_listing(
            buf,
            a,
            &state.theme,
            &title,
            c.focus_versions,
            &c.versions,
            state.now,
            VERSION_COLUMNS,
            |v| {
                (
                    vec![
                        v.version.to_string(),
                        v.author.clone(),
                        stamp(v.created_at, state.tz),
                        v.comment.clone(),
                    ],
                    Role::Base,
                )
            },
        );
    }
}
