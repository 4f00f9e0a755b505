//! Periodic jobs: every host proposes the same job for the same period under one unique key,
//! so however many workers run, each period's job is enqueued once.

use std::time::Duration;

use tokio::sync::watch;
use tracing::warn;

use crate::store::Store;
use crate::store::api::{Millis, NewJob};

/// A job enqueued once per period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Periodic {
    /// Job kind (handler name).
    pub kind: &'static str,
    /// Queue it goes to.
    pub queue: &'static str,
    /// Period length.
    pub every: Duration,
}

/// How often the scheduler returns jobs whose lease expired to their queues. This runs in the
/// scheduler itself, not as a job: a job every few seconds would add ~17,000 finished rows a
/// day to the jobs table. Every host's scheduler runs it; it is one idempotent indexed UPDATE.
pub const RESCUE_EVERY: Duration = Duration::from_secs(5);

/// The engine's built-in periodic jobs.
pub fn builtin_periodics() -> Vec<Periodic> {
    vec![
        Periodic {
            kind: "approvals.timers",
            queue: "maintenance",
            every: Duration::from_secs(30),
        },
        Periodic {
            kind: "maintenance.prune",
            queue: "maintenance",
            every: Duration::from_secs(3600),
        },
    ]
}

/// The job for the period containing `now`: its unique key names the period's start, so a
/// second host proposing it in the same period is a no-op.
pub fn job_for_period(periodic: &Periodic, now: Millis) -> NewJob {
    let every = periodic.every.as_millis().max(1) as i64;
    let start = now - now.rem_euclid(every);
    NewJob {
        queue: periodic.queue.to_string(),
        kind: periodic.kind.to_string(),
        payload: serde_json::json!({ "period_start": start }),
        priority: 10,
        run_at: start,
        max_attempts: 3,
        unique_key: Some(format!("periodic:{}:{start}", periodic.kind)),
        request_id: None,
    }
}

/// Propose each periodic job once per period until `shutdown`.
pub async fn run_scheduler(
    store: Store,
    periodics: Vec<Periodic>,
    mut shutdown: watch::Receiver<bool>,
) {
    let tick = periodics
        .iter()
        .map(|p| p.every)
        .min()
        .unwrap_or(RESCUE_EVERY)
        .min(RESCUE_EVERY);
    loop {
        if let Err(e) = store.rescue_expired().await {
            warn!(error = %e, "scheduler could not rescue expired leases; will try next tick");
        }
        let now = chrono::Utc::now().timestamp_millis();
        for periodic in &periodics {
            if let Err(e) = store.enqueue_periodic(&job_for_period(periodic, now)).await {
                warn!(kind = periodic.kind, error = %e, "scheduler could not enqueue a periodic job; will try next tick");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_period_same_key() {
        let p = Periodic {
            kind: "maintenance.rescue",
            queue: "maintenance",
            every: Duration::from_secs(5),
        };
        let a = job_for_period(&p, 10_001);
        let b = job_for_period(&p, 14_999);
        let c = job_for_period(&p, 15_000);
        assert_eq!(a.unique_key, b.unique_key);
        assert_ne!(b.unique_key, c.unique_key);
        assert_eq!(a.run_at, 10_000);
        assert_eq!(
            c.unique_key.as_deref(),
            Some("periodic:maintenance.rescue:15000")
        );
    }
}
