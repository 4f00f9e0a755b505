//! The manual-task list (`:manual`): manual provisioning steps waiting for a person, as lines
//! for the text popup — request, person, step, age, the instruction, and why an earlier
//! "done" was not accepted. Every text from a request is shown inert (no control characters).

use crate::domain::inert::inert;
use crate::store::api::Millis;
use crate::store::steps::ManualTask;

/// The lines shown for `tasks` at `now`, oldest task first.
pub fn task_lines(tasks: &[ManualTask], now: Millis) -> Vec<String> {
    if tasks.is_empty() {
        return vec!["no manual step is waiting".to_string()];
    }
    let mut lines = Vec::new();
    for t in tasks {
        let verify = if t.connector.is_empty() {
            "no read-back".to_string()
        } else {
            format!("read back from {}", inert(&t.connector))
        };
        lines.push(format!(
            "#{} {} · {} · {} · waiting {}",
            t.request_id,
            inert(&t.subject_name),
            inert(&t.step),
            verify,
            age(now - t.since)
        ));
        lines.push(format!("  {}", inert(&t.instruction)));
        if let Some(problem) = &t.problem {
            lines.push(format!("  ! {}", inert(problem)));
        }
    }
    lines.push(String::new());
    lines.push(":rq ID opens a request; there D marks the step done, S skips it".to_string());
    lines
}

fn age(ms: Millis) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
