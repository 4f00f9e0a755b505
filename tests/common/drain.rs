//! Running the flow's jobs in-process in tests, without a worker.

use std::time::Duration;

use gatehouse::engine::flow::registry;
use gatehouse::engine::handler::{JobContext, JobError};
use gatehouse::store::Store;
use gatehouse::store::api::FailOutcome;

/// Run the flow's jobs in-process until none is due: each job completed, or dead on any
/// error.
pub async fn drain(store: &Store) {
    let registry = registry();
    let queues: Vec<String> = ["default", "provision", "notify"]
        .iter()
        .map(|q| q.to_string())
        .collect();
    for _ in 0..100 {
        let jobs = store
            .claim("test-worker", &queues, 10, Duration::from_secs(60))
            .await
            .expect("claim");
        if jobs.is_empty() {
            return;
        }
        for job in jobs {
            let handler = registry.get(&job.kind).expect("handler");
            let id = job.id;
            let ctx = JobContext {
                store: store.clone(),
                job,
                worker_id: "test-worker".into(),
            };
            match handler.run(ctx).await {
                Ok(()) => store
                    .complete_jobs("test-worker", &[id])
                    .await
                    .map(|_| ())
                    .expect("complete"),
                Err(JobError::Transient(e) | JobError::Permanent(e)) => store
                    .fail_job("test-worker", id, &e, FailOutcome::Dead)
                    .await
                    .map(|_| ())
                    .expect("fail"),
            }
        }
    }
    panic!("jobs kept coming");
}
