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
    /// Settings handed to the job with its period (merged into its payload).
    pub settings: serde_json::Value,
}

/// How often the scheduler returns jobs whose lease expired to their queues. This runs in the
/// scheduler itself, not as a job: a job every few seconds would add ~17,000 finished rows a
/// day to the jobs table. Every host's scheduler runs it; it is one idempotent indexed UPDATE.
pub const RESCUE_EVERY: Duration = Duration::from_secs(5);

/// The engine's built-in periodic jobs; the prune deletes finished jobs older than
/// `job_retention`, every half retention (at least every 5 s, at most hourly); the dormant
/// accounts scan hourly.
pub fn builtin_periodics(job_retention: Duration) -> Vec<Periodic> {
    vec![
        Periodic {
            kind: "approvals.timers",
            queue: "maintenance",
            every: Duration::from_secs(30),
            settings: serde_json::Value::Null,
        },
        Periodic {
            kind: "maintenance.prune",
            queue: "maintenance",
            every: (job_retention / 2).clamp(Duration::from_secs(5), Duration::from_secs(3600)),
            settings: serde_json::json!({
                "job_retention_ms": u64::try_from(job_retention.as_millis()).unwrap_or(u64::MAX)
            }),
        },
        Periodic {
            kind: "dormant.scan",
            queue: "maintenance",
            every: Duration::from_secs(3600),
            settings: serde_json::Value::Null,
        },
    ]
}

/// The job for the period containing `now`: its unique key names the period's start, so a
/// second host proposing it in the same period is a no-op.
pub fn job_for_period(periodic: &Periodic, now: Millis) -> NewJob {
    let every = periodic.every.as_millis().max(1) as i64;
    let start = now - now.rem_euclid(every);
    let mut payload = serde_json::json!({ "period_start": start });
    if let (Some(into), Some(settings)) = (payload.as_object_mut(), periodic.settings.as_object()) {
        into.extend(settings.clone());
    }
    NewJob {
        queue: periodic.queue.to_string(),
        kind: periodic.kind.to_string(),
        payload,
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
            settings: serde_json::Value::Null,
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

    #[test]
    fn the_prune_carries_its_retention() {
        let periodics = builtin_periodics(Duration::from_secs(86_400));
        let prune = periodics
            .iter()
            .find(|p| p.kind == "maintenance.prune")
            .expect("prune");
        let job = job_for_period(prune, 7_200_000);
        assert_eq!(job.payload["job_retention_ms"], 86_400_000);
        assert_eq!(job.payload["period_start"], 7_200_000);
        let timers = job_for_period(&periodics[0], 7_200_000);
        assert_eq!(
            timers.payload,
            serde_json::json!({"period_start": 7_200_000})
        );
    }
}
