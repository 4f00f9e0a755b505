//! The chat half of a notification job: post the rendered message to each `[[chat]]` target
//! of the notifier that an earlier attempt of the job has not reached, one timeline step per
//! post with the target and its outcome.

use serde_json::json;
use tracing::info;

use super::record;
use crate::domain::config::Notifier;
use crate::engine::handler::{JobContext, JobError};
use crate::notify::{ChatFailure, ChatMessage, ChatPoster};
use crate::store::api::RequestDetail;

/// A target this job's attempts did not reach.
pub(super) struct Unreached {
    /// The target's label.
    pub target: String,
    /// Why.
    pub failure: ChatFailure,
}

/// The key a post is recorded under: position and label, so a renamed or reordered target is
/// posted again rather than wrongly skipped.
fn key_of(index: usize, label: &str) -> String {
    format!("{index}:{label}")
}

/// Targets an earlier attempt of this job already posted to.
fn already_posted(ctx: &JobContext, detail: &RequestDetail) -> Vec<String> {
    detail
        .timeline
        .iter()
        .filter(|e| e.kind == "step" && e.detail.get("job_id") == Some(&json!(ctx.job.id)))
        .filter_map(|e| e.detail.get("output"))
        .filter(|out| out.get("posted") == Some(&json!(true)))
        .filter_map(|out| out.get("chat_key").and_then(|k| k.as_str()))
        .map(String::from)
        .collect()
}

/// The Matrix transaction ID of this notification to target `index`: the same for every
/// attempt of the job, so a retried post is not shown twice. The job's creation time (ms) is
/// part of it: a homeserver keeps transaction IDs per access token for hours, and request and
/// job IDs alone repeat in another database posting with the same bot (a second installation,
/// a restored or re-created one), whose notices Synapse would then drop as repeats.
pub fn txn_id(request_id: i64, job_id: i64, job_created_at: i64, index: usize) -> String {
    format!("gatehouse.{request_id}.{job_id}.{job_created_at}.{index}")
}

/// Posts `message` to the notifier's chat targets not yet reached; records each post.
pub(super) async fn post_all(
    ctx: &JobContext,
    request_id: i64,
    notifier: &Notifier,
    detail: &RequestDetail,
    message: &ChatMessage,
    retrying: bool,
) -> Result<Vec<Unreached>, JobError> {
    if notifier.chat.is_empty() {
        return Ok(Vec::new());
    }
    let done = already_posted(ctx, detail);
    let poster = ChatPoster::new(notifier.timeout());
    let mut unreached = Vec::new();
    for (index, target) in notifier.chat.iter().enumerate() {
        let label = target.label(index);
        let key = key_of(index, &label);
        if done.contains(&key) {
            continue;
        }
        let outcome = match &poster {
            Ok(poster) => {
                poster
                    .post(
                        target,
                        message,
                        &txn_id(request_id, ctx.job.id, ctx.job.created_at, index),
                    )
                    .await
            }
            Err(e) => Err(e.clone()),
        };
        let (output, error) = match &outcome {
            Ok(event_id) => (
                json!({"posted": true, "chat_key": key, "target": label, "kind": target.kind.as_str(), "notifier": notifier.name, "event_id": event_id}),
                None,
            ),
            Err(failure) => (
                json!({"posted": false, "chat_key": key, "target": label, "kind": target.kind.as_str(), "notifier": notifier.name, "permanent": failure.permanent, "retrying": retrying && !failure.permanent}),
                Some(failure.reason.clone()),
            ),
        };
        record(
            ctx,
            request_id,
            &format!("{} chat to {label}", ctx.job.kind),
            output,
            error.as_deref(),
        )
        .await?;
        info!(request_id, kind = %ctx.job.kind, target = %label, posted = outcome.is_ok(), "chat notification");
        if let Err(failure) = outcome {
            unreached.push(Unreached {
                target: label,
                failure,
            });
        }
    }
    Ok(unreached)
}
