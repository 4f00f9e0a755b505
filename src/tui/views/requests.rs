//! Requests: the filtered, keyset-paged list; Enter opens the request's timeline.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};

use crate::store::api::{RequestFilter, RequestRow};
use crate::tui::app::{AppState, role_for_state};
use crate::tui::views::age;
use crate::tui::widgets::table::{Column, Keyed, Listing, render_listing};

impl Keyed for RequestRow {
    fn key(&self) -> String {
        self.id.to_string()
    }
}

/// Requests view state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestsView {
    /// Loaded rows.
    pub list: Listing<RequestRow>,
    /// The store filter built from the `/` text.
    pub filter: RequestFilter,
    /// The `/` filter text.
    pub filter_text: String,
}

const COLUMNS: &[Column] = &[
    Column::new("id", Constraint::Length(7)),
    Column::new("state", Constraint::Length(20)),
    Column::new("workflow", Constraint::Length(18)),
    Column::from("kind", Constraint::Length(7), 100),
    Column::new("subject", Constraint::Min(14)),
    Column::from("requester", Constraint::Length(22), 120),
    Column::from("source", Constraint::Length(7), 140),
    Column::new("upd", Constraint::Length(4)),
    Column::from("error", Constraint::Min(10), 100),
];

/// Draws the list.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let title = if state.requests.filter_text.is_empty() {
        "requests".to_string()
    } else {
        format!("requests /{}", state.requests.filter_text)
    };
    let now = state.now;
    render_listing(
        buf,
        area,
        &state.theme,
        &title,
        true,
        &state.requests.list,
        state.now,
        COLUMNS,
        |r| {
            (
                vec![
                    r.id.to_string(),
                    r.state.to_string(),
                    r.workflow.clone(),
                    r.kind.clone(),
                    r.subject_name.clone(),
                    r.requester.clone(),
                    r.source.clone(),
                    age(now, r.updated_at),
                    r.last_error.clone().unwrap_or_default(),
                ],
                role_for_state(r.state.name()),
            )
        },
    );
}
