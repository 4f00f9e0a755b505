//! Stage timers: what is due on an open approval stage at a given time — a reminder (once per
//! threshold, at most [`MAX_REMINDERS`]), an escalation (once), or expiry (the stage is
//! rejected with a reason). Pure: the engine passes the stage's times and what was already
//! done, and the store records what it does so a second worker finds it done.

use serde::{Deserialize, Serialize};

use super::calendar::Calendar;
use super::workflow::Stage;

/// Most reminders one stage sends (at remind_after, 2×, 3×…).
pub const MAX_REMINDERS: u32 = 3;

/// A stage's timer settings in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTimers {
    /// Remind undecided approvers every this long (bounded by [`MAX_REMINDERS`]).
    pub remind_after: Option<i64>,
    /// Escalate after this long.
    pub escalate_after: Option<i64>,
    /// Reject as expired after this long.
    pub expire_after: Option<i64>,
}

impl StageTimers {
    /// The timers of a workflow stage (escalation only when it has a target).
    pub fn of(stage: &Stage) -> Self {
        let ms = |d: Option<super::workflow::DurationSpec>| {
            d.map(|d| i64::try_from(d.duration().as_millis()).unwrap_or(i64::MAX))
        };
        Self {
            remind_after: ms(stage.remind_after),
            escalate_after: ms(stage.escalate_after).filter(|_| stage.escalate_to.is_some()),
            expire_after: ms(stage.expire_after),
        }
    }
}

/// What has already happened on the stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerState {
    /// Reminders sent so far.
    pub reminders: u32,
    /// Escalated already.
    pub escalated: bool,
}

/// One thing that is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum TimerAction {
    /// Send reminder number `n` (1-based).
    Remind {
        /// Which reminder.
        n: u32,
    },
    /// Hand the stage to the escalation target.
    Escalate,
    /// Reject the stage: nobody decided in time.
    Expire {
        /// The rejection reason.
        reason: String,
    },
}

fn add(at: i64, after: i64, times: u32) -> i64 {
    at.saturating_add(after.saturating_mul(i64::from(times)))
}

/// When `times` × `after` has passed since `at`: wall-clock time, or only working time when
/// the workflow has a business-hours calendar.
fn deadline(calendar: Option<&Calendar>, at: i64, after: i64, times: u32) -> i64 {
    match calendar {
        Some(calendar) => calendar.add_ms(at, after.saturating_mul(i64::from(times))),
        None => add(at, after, times),
    }
}

/// What is due at `now` for a stage opened at `opened_at`, in order. Expiry wins over
/// everything; a reminder is due once per threshold passed, and when several thresholds passed
/// while no worker ran, only the latest is sent (never a burst); escalation comes after the
/// reminder it follows.
pub fn due(timers: &StageTimers, opened_at: i64, now: i64, state: TimerState) -> Vec<TimerAction> {
    due_in(None, timers, opened_at, now, state)
}

/// [`due`] with the workflow's business-hours calendar: durations count working time only.
pub fn due_in(
    calendar: Option<&Calendar>,
    timers: &StageTimers,
    opened_at: i64,
    now: i64,
    state: TimerState,
) -> Vec<TimerAction> {
    if let Some(expire) = timers.expire_after
        && now >= deadline(calendar, opened_at, expire, 1)
    {
        let within = match calendar {
            Some(_) => format!("{} of business hours", human(expire)),
            None => human(expire),
        };
        return vec![TimerAction::Expire {
            reason: format!("expired: nobody decided within {within}"),
        }];
    }
    let mut actions = Vec::new();
    if let Some(every) = timers.remind_after.filter(|every| *every > 0) {
        let passed = (1..=MAX_REMINDERS)
            .take_while(|n| now >= deadline(calendar, opened_at, every, *n))
            .last()
            .unwrap_or(0);
        if passed > state.reminders {
            actions.push(TimerAction::Remind { n: passed });
        }
    }
    if let Some(escalate) = timers.escalate_after
        && !state.escalated
        && now >= deadline(calendar, opened_at, escalate, 1)
    {
        actions.push(TimerAction::Escalate);
    }
    actions
}

/// The next time something becomes due (for the scheduler and "time to escalation"), or
/// `None` when nothing is left.
pub fn next_due(timers: &StageTimers, opened_at: i64, state: TimerState) -> Option<i64> {
    next_due_in(None, timers, opened_at, state)
}

/// [`next_due`] with the workflow's business-hours calendar.
pub fn next_due_in(
    calendar: Option<&Calendar>,
    timers: &StageTimers,
    opened_at: i64,
    state: TimerState,
) -> Option<i64> {
    let mut next: Vec<i64> = Vec::new();
    if let Some(expire) = timers.expire_after {
        next.push(deadline(calendar, opened_at, expire, 1));
    }
    if let Some(escalate) = timers.escalate_after
        && !state.escalated
    {
        next.push(deadline(calendar, opened_at, escalate, 1));
    }
    if let Some(every) = timers.remind_after.filter(|every| *every > 0)
        && state.reminders < MAX_REMINDERS
    {
        next.push(deadline(calendar, opened_at, every, state.reminders + 1));
    }
    next.into_iter().min()
}

/// `90s`, `15m`, `4h`, `2d` — the largest whole unit.
pub fn human(ms: i64) -> String {
    let s = ms / 1000;
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s >= size && s % size == 0 {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn timers() -> StageTimers {
        StageTimers {
            remind_after: Some(H),
            escalate_after: Some(4 * H),
            expire_after: Some(24 * H),
        }
    }

    #[test]
    fn reminders_once_per_threshold_and_bounded() {
        let t = timers();
        let none = TimerState::default();
        assert!(due(&t, 0, H - 1, none).is_empty());
        assert_eq!(due(&t, 0, H, none), vec![TimerAction::Remind { n: 1 }]);
        let one = TimerState {
            reminders: 1,
            escalated: false,
        };
        assert!(due(&t, 0, H + 5, one).is_empty());
        // Three thresholds passed while nobody ran: one reminder, the latest.
        assert_eq!(due(&t, 0, 3 * H, one), vec![TimerAction::Remind { n: 3 }]);
        let three = TimerState {
            reminders: 3,
            escalated: false,
        };
        assert_eq!(due(&t, 0, 4 * H, three), vec![TimerAction::Escalate]);
        let done = TimerState {
            reminders: 3,
            escalated: true,
        };
        assert!(due(&t, 0, 10 * H, done).is_empty());
        assert_eq!(next_due(&t, 0, done), Some(24 * H));
    }

    #[test]
    fn expiry_wins_and_says_why() {
        let actions = due(&timers(), 0, 24 * H, TimerState::default());
        assert_eq!(
            actions,
            vec![TimerAction::Expire {
                reason: "expired: nobody decided within 1d".into()
            }]
        );
        assert_eq!(next_due(&timers(), 0, TimerState::default()), Some(H));
        assert_eq!(
            next_due(&StageTimers::default(), 0, TimerState::default()),
            None
        );
        assert_eq!(human(90_000), "90s");
    }

    #[test]
    fn a_calendar_counts_working_time_only() {
        let calendar = crate::domain::calendar::CalendarSpec {
            time_zone: "UTC".into(),
            days: vec![
                "mon".into(),
                "tue".into(),
                "wed".into(),
                "thu".into(),
                "fri".into(),
            ],
            hours: "09:00-17:00".into(),
            holidays: vec![],
        }
        .compile()
        .expect("calendar");
        let cal = Some(&calendar);
        // Friday 6 March 2026 16:00 UTC.
        let opened = 1_772_812_800_000;
        let t = timers();
        let none = TimerState::default();
        // One working hour later is Friday 17:00: the first reminder.
        assert!(due_in(cal, &t, opened, opened + H - 1, none).is_empty());
        assert_eq!(
            due_in(cal, &t, opened, opened + H, none),
            vec![TimerAction::Remind { n: 1 }]
        );
        // The weekend does not count: the second threshold is Monday 10:00 (66 hours later).
        let one = TimerState {
            reminders: 1,
            escalated: false,
        };
        assert_eq!(next_due_in(cal, &t, opened, one), Some(opened + 66 * H));
        assert!(due_in(cal, &t, opened, opened + 65 * H, one).is_empty());
        // Expiry after 24 working hours: three working days, Wednesday 16:00.
        let expire = opened + 120 * H;
        assert_eq!(
            due_in(cal, &t, opened, expire, none),
            vec![TimerAction::Expire {
                reason: "expired: nobody decided within 1d of business hours".into()
            }]
        );
        assert_ne!(
            due_in(cal, &t, opened, expire - 1, none).first(),
            Some(&TimerAction::Expire {
                reason: "expired: nobody decided within 1d of business hours".into()
            })
        );
        // Without a calendar the same stage expires a day after it opened.
        assert_eq!(
            next_due_in(None, &t, opened, one),
            next_due(&t, opened, one)
        );
    }
}
