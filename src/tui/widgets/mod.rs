//! Reusable pieces of the screen: the marked table, the `:`/`/` prompt, the confirm popup,
//! generated help, the flash line, breadcrumbs and the diff popup.

pub mod breadcrumbs;
pub mod confirm;
pub mod describe;
pub mod diff;
pub mod flash;
pub mod form;
pub mod help;
pub mod prompt;
pub mod table;

use ratatui::layout::Rect;

/// A rectangle of at most `width`×`height` centred in `area` (never larger than `area`).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
