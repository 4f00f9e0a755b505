//! The execution log: a tracing layer that keeps events carrying request or job ids (or any
//! event at INFO and above) and persists them to the store in batches for the console's tail.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::store::Store;
use crate::store::api::NewLog;

/// Lines buffered between the layer and the flusher; beyond it lines are dropped and counted,
/// so a slow database never blocks a worker.
const BUFFER: usize = 10_000;

/// The tracing layer; pair it with [`run_flusher`] on the receiver from [`log_channel`].
pub struct StoreLogLayer {
    tx: mpsc::Sender<NewLog>,
    worker: Option<String>,
}

/// A channel for log lines: the layer's sender and the flusher's receiver.
pub fn log_channel(worker: Option<String>) -> (StoreLogLayer, mpsc::Receiver<NewLog>) {
    let (tx, rx) = mpsc::channel(BUFFER);
    (StoreLogLayer { tx, worker }, rx)
}

/// Fields of a span that log lines inherit.
#[derive(Default, Clone)]
struct SpanIds {
    request_id: Option<i64>,
    job_id: Option<i64>,
}

#[derive(Default)]
struct Collect {
    message: String,
    fields: String,
    ids: SpanIds,
}

impl Visit for Collect {
    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            "request_id" => self.ids.request_id = Some(value),
            "job_id" => self.ids.job_id = Some(value),
            _ => {}
        }
        let _ = write!(self.fields, " {}={value}", field.name());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(v) => self.record_i64(field, v),
            Err(_) => {
                let _ = write!(self.fields, " {}={value}", field.name());
            }
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl<S> Layer<S> for StoreLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut collect = Collect::default();
        attrs.record(&mut collect);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(collect.ids);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        let mut collect = Collect::default();
        event.record(&mut collect);
        let mut ids = collect.ids.clone();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(found) = span.extensions().get::<SpanIds>() {
                    ids.request_id = ids.request_id.or(found.request_id);
                    ids.job_id = ids.job_id.or(found.job_id);
                }
            }
        }
        // Keep what the console's tail is for: work on requests and jobs, and anything notable.
        let relevant = ids.request_id.is_some() || ids.job_id.is_some() || level <= Level::INFO;
        let target = event.metadata().target();
        // Our own failures must not loop back into the sink that is failing.
        if !relevant || target.starts_with("sqlx") || target == module_path!() {
            return;
        }
        let line = NewLog {
            at: chrono::Utc::now().timestamp_millis(),
            level: level.as_str().to_string(),
            target: event.metadata().target().to_string(),
            message: format!("{}{}", collect.message, collect.fields),
            request_id: ids.request_id,
            job_id: ids.job_id,
            worker: self.worker.clone(),
        };
        // Never block the caller: a full buffer drops the line.
        let _ = self.tx.try_send(line);
    }
}

/// Write buffered lines to the store in batches until the channel closes.
pub async fn run_flusher(store: Store, mut rx: mpsc::Receiver<NewLog>) {
    let mut buf = Vec::with_capacity(500);
    loop {
        buf.clear();
        if rx.recv_many(&mut buf, 500).await == 0 {
            return;
        }
        // A failed batch is dropped, not retried forever: the log file still has every line.
        if let Err(e) = store.append_logs(&buf).await {
            tracing::warn!(lines = buf.len(), error = %e, "execution log batch lost");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
