//! Business-hours calendars: a workflow's optional `[calendar]` (time zone, working days,
//! working hours, holidays) and the one function the stage timers need — the instant a
//! business duration after a start has passed, counting only working time in that zone.
//!
//! Local times are the zone's wall clock, so a working day on which daylight saving time
//! changes is an hour shorter or longer in real time. A working-hours boundary that falls in a
//! skipped local hour is taken as the first instant after the gap; one that occurs twice (the
//! hour repeated in autumn) as the first occurrence.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::diagnostic::FieldError;
use super::timezone::parse_zone;

/// Day names as the document writes them, Monday first.
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Most holidays one calendar lists.
pub const MAX_HOLIDAYS: usize = 1000;

/// `[calendar]` as written in a workflow document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// An IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// Working days: `mon` … `sun` (default Monday to Friday).
    #[serde(default = "default_days")]
    pub days: Vec<String>,
    /// Working hours, `HH:MM-HH:MM` in the zone (the end may be `24:00`).
    pub hours: String,
    /// Days off, `YYYY-MM-DD`.
    #[serde(default)]
    pub holidays: Vec<String>,
}

fn default_days() -> Vec<String> {
    DAY_NAMES[..5].iter().map(|d| d.to_string()).collect()
}

/// A checked calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    zone: Tz,
    /// Working weekdays, indexed from Monday.
    days: [bool; 7],
    /// Start of the working day, minutes after local midnight.
    start: u32,
    /// End of the working day, minutes after local midnight (at most 1440).
    end: u32,
    holidays: BTreeSet<NaiveDate>,
}

/// Minutes after midnight of `HH:MM`, `24:00` allowed.
fn minutes(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

impl CalendarSpec {
    /// Problems, each naming its field under `calendar.`.
    pub fn validate(&self) -> Vec<FieldError> {
        match self.compile() {
            Ok(_) => Vec::new(),
            Err(errors) => errors,
        }
    }

    /// The checked calendar, or every problem found.
    pub fn compile(&self) -> Result<Calendar, Vec<FieldError>> {
        let mut errors = Vec::new();
        let zone = match parse_zone(&self.time_zone) {
            Ok(zone) => Some(zone),
            Err(why) => {
                errors.push(FieldError::new("calendar.time_zone", why));
                None
            }
        };
        let mut days = [false; 7];
        for (index, day) in self.days.iter().enumerate() {
            let field = format!("calendar.days[{index}]");
            match DAY_NAMES
                .iter()
                .position(|d| d.eq_ignore_ascii_case(day.trim()))
            {
                Some(at) if days[at] => {
                    errors.push(FieldError::new(field, format!("\"{day}\" listed twice")))
                }
                Some(at) => days[at] = true,
                None => errors.push(FieldError::new(
                    field,
                    format!("\"{day}\" is not a day: use mon, tue, wed, thu, fri, sat or sun"),
                )),
            }
        }
        if self.days.is_empty() {
            errors.push(FieldError::new(
                "calendar.days",
                "name at least one working day",
            ));
        }
        let hours = self.hours.split_once('-').and_then(|(from, to)| {
            let (from, to) = (minutes(from)?, minutes(to)?);
            (from < 1440).then_some((from, to))
        });
        let (start, end) = match hours {
            Some((from, to)) if from < to => (from, to),
            Some(_) => {
                errors.push(FieldError::new(
                    "calendar.hours",
                    format!("\"{}\": the end must be after the start", self.hours),
                ));
                (0, 0)
            }
            None => {
                errors.push(FieldError::new(
                    "calendar.hours",
                    format!("\"{}\" is not HH:MM-HH:MM (e.g. 09:00-17:00)", self.hours),
                ));
                (0, 0)
            }
        };
        let mut holidays = BTreeSet::new();
        if self.holidays.len() > MAX_HOLIDAYS {
            errors.push(FieldError::new(
                "calendar.holidays",
                format!("at most {MAX_HOLIDAYS} holidays"),
            ));
        }
        for (index, day) in self.holidays.iter().enumerate() {
            match NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d") {
                Ok(date) => {
                    holidays.insert(date);
                }
                Err(_) => errors.push(FieldError::new(
                    format!("calendar.holidays[{index}]"),
                    format!("\"{day}\" is not a date like 2026-12-25"),
                )),
            }
        }
        match zone {
            Some(zone) if errors.is_empty() => Ok(Calendar {
                zone,
                days,
                start,
                end,
                holidays,
            }),
            _ => Err(errors),
        }
    }
}

impl Calendar {
    /// Whether `date` (in the calendar's zone) is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        self.days[date.weekday().num_days_from_monday() as usize] && !self.holidays.contains(&date)
    }

    /// The instant of local `minutes` after midnight on `date` (`1440`: the next midnight).
    fn at(&self, date: NaiveDate, minutes: u32) -> Option<DateTime<Utc>> {
        let (date, minutes) = if minutes >= 1440 {
            (date.checked_add_days(Days::new(1))?, minutes - 1440)
        } else {
            (date, minutes)
        };
        let time = NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0)?;
        Some(local_instant(self.zone, date.and_time(time))?.with_timezone(&Utc))
    }

    /// The instant at which `business` working time after `start` has passed. A start outside
    /// working hours counts from the next opening; a zero duration is `start` itself. `None`
    /// only past the end of the calendar (year 262143).
    pub fn add(&self, start: DateTime<Utc>, business: Duration) -> Option<DateTime<Utc>> {
        let mut left = chrono::Duration::from_std(business).ok()?;
        if left.is_zero() {
            return Some(start);
        }
        let mut now = start;
        let mut date = start.with_timezone(&self.zone).date_naive();
        loop {
            if self.is_working_day(date) {
                let (open, close) = (self.at(date, self.start)?, self.at(date, self.end)?);
                let from = now.max(open);
                if from < close {
                    let available = close - from;
                    if left <= available {
                        return Some(from + left);
                    }
                    left -= available;
                    now = close;
                }
            }
            date = date.checked_add_days(Days::new(1))?;
        }
    }

    /// [`Calendar::add`] on milliseconds since the epoch (saturating at the far future).
    pub fn add_ms(&self, start_ms: i64, business_ms: i64) -> i64 {
        let Some(start) = DateTime::<Utc>::from_timestamp_millis(start_ms) else {
            return start_ms.saturating_add(business_ms);
        };
        let business = Duration::from_millis(u64::try_from(business_ms.max(0)).unwrap_or(0));
        self.add(start, business)
            .map_or(i64::MAX, |at| at.timestamp_millis())
    }
}

/// The instant of a local wall-clock time: the first of two in a repeated hour, the first
/// instant after the gap for a skipped one.
fn local_instant(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Tz>> {
    let mut probe = local;
    // Gaps are at most a few hours; step forward a minute at a time to the first valid time.
    for _ in 0..=24 * 60 {
        match zone.from_local_datetime(&probe) {
            LocalResult::Single(at) => return Some(at),
            LocalResult::Ambiguous(first, _) => return Some(first),
            LocalResult::None => probe = probe.checked_add_signed(chrono::Duration::minutes(1))?,
        }
    }
    None
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;
