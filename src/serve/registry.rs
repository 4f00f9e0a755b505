//! What is open now: connections (limited in total), authenticated connections per key
//! (limited per key) and consoles (told to close when the server stops). Slots are guards:
//! dropping one frees it, so a connection that ends in any way gives its places back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc::UnboundedSender;

use crate::tui::action::Action;

/// Connections and consoles open now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// TCP connections, authenticated or not.
    pub connections: usize,
    /// Consoles running.
    pub consoles: usize,
}

#[derive(Default)]
struct Inner {
    connections: usize,
    per_key: HashMap<String, usize>,
    handles: HashMap<u64, russh::server::Handle>,
    consoles: HashMap<u64, ConsoleEntry>,
    next_id: u64,
}

struct ConsoleEntry {
    input: UnboundedSender<Action>,
    farewell: Arc<Mutex<Option<String>>>,
}

/// The registry shared by every connection of one endpoint.
pub(crate) struct Registry {
    inner: Arc<Mutex<Inner>>,
    max_connections: usize,
    max_per_key: usize,
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // Nothing panics while holding the lock (only map and counter updates), so a poisoned
    // lock still holds consistent counts.
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    pub(crate) fn new(max_connections: usize, max_per_key: usize) -> Registry {
        Registry {
            inner: Arc::new(Mutex::new(Inner::default())),
            max_connections,
            max_per_key,
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        let inner = lock(&self.inner);
        Counts {
            connections: inner.connections,
            consoles: inner.consoles.len(),
        }
    }

    /// A place for one more connection, or `None` at the limit.
    pub(crate) fn connection_slot(&self) -> Option<ConnectionSlot> {
        let mut inner = lock(&self.inner);
        if inner.connections >= self.max_connections {
            return None;
        }
        inner.connections += 1;
        Some(ConnectionSlot {
            inner: self.inner.clone(),
        })
    }

    /// A place for one more connection with key `fingerprint`, or `None` at the limit.
    pub(crate) fn key_slot(&self, fingerprint: &str) -> Option<KeySlot> {
        let mut inner = lock(&self.inner);
        let n = inner.per_key.entry(fingerprint.to_string()).or_insert(0);
        if *n >= self.max_per_key {
            return None;
        }
        *n += 1;
        Some(KeySlot {
            inner: self.inner.clone(),
            fingerprint: fingerprint.to_string(),
        })
    }

    pub(crate) fn add_connection(&self, handle: russh::server::Handle) -> u64 {
        let mut inner = lock(&self.inner);
        inner.next_id += 1;
        let id = inner.next_id;
        inner.handles.insert(id, handle);
        id
    }

    pub(crate) fn remove_connection(&self, id: u64) {
        lock(&self.inner).handles.remove(&id);
    }

    /// Registers a running console whose input channel is `input`; the guard unregisters it.
    pub(crate) fn add_console(&self, input: UnboundedSender<Action>) -> ConsoleSlot {
        let farewell = Arc::new(Mutex::new(None));
        let mut inner = lock(&self.inner);
        inner.next_id += 1;
        let id = inner.next_id;
        inner.consoles.insert(
            id,
            ConsoleEntry {
                input,
                farewell: farewell.clone(),
            },
        );
        let open = inner.consoles.len();
        drop(inner);
        tracing::info!(consoles = open, "console opened");
        ConsoleSlot {
            inner: self.inner.clone(),
            id,
            farewell,
        }
    }

    /// Asks every console to close after showing `message`; returns how many were asked.
    pub(crate) fn stop_consoles(&self, message: &str) -> usize {
        let inner = lock(&self.inner);
        for entry in inner.consoles.values() {
            if let Ok(mut f) = entry.farewell.lock() {
                *f = Some(message.to_string());
            }
            let _ = entry.input.send(Action::Terminate);
        }
        inner.consoles.len()
    }

    /// Disconnects every connection still open.
    pub(crate) async fn disconnect_all(&self) {
        let handles: Vec<_> = lock(&self.inner).handles.values().cloned().collect();
        for handle in handles {
            let _ = handle
                .disconnect(
                    russh::Disconnect::ByApplication,
                    "the server is stopping".into(),
                    String::new(),
                )
                .await;
        }
    }
}

/// One connection's place; freed on drop.
pub(crate) struct ConnectionSlot {
    inner: Arc<Mutex<Inner>>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut inner = lock(&self.inner);
        inner.connections = inner.connections.saturating_sub(1);
    }
}

/// One authenticated connection's place under its key; freed on drop.
pub(crate) struct KeySlot {
    inner: Arc<Mutex<Inner>>,
    fingerprint: String,
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut inner = lock(&self.inner);
        if let Some(n) = inner.per_key.get_mut(&self.fingerprint) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.per_key.remove(&self.fingerprint);
            }
        }
    }
}

/// A running console; unregistered on drop.
pub(crate) struct ConsoleSlot {
    inner: Arc<Mutex<Inner>>,
    id: u64,
    farewell: Arc<Mutex<Option<String>>>,
}

impl ConsoleSlot {
    /// The message to show before closing, when the server asked the console to close.
    pub(crate) fn farewell(&self) -> Option<String> {
        self.farewell.lock().ok().and_then(|f| f.clone())
    }
}

impl Drop for ConsoleSlot {
    fn drop(&mut self) {
        let mut inner = lock(&self.inner);
        inner.consoles.remove(&self.id);
        let open = inner.consoles.len();
        drop(inner);
        tracing::info!(consoles = open, "console closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_and_free_on_drop() {
        let r = Registry::new(2, 1);
        let a = r.connection_slot().expect("first");
        let b = r.connection_slot().expect("second");
        assert!(r.connection_slot().is_none(), "limit of 2");
        drop(a);
        assert_eq!(r.counts().connections, 1);
        let _c = r.connection_slot().expect("freed place");
        drop(b);
        let k = r.key_slot("SHA256:x").expect("first key use");
        assert!(r.key_slot("SHA256:x").is_none(), "one per key");
        assert!(r.key_slot("SHA256:y").is_some(), "another key");
        drop(k);
        assert!(r.key_slot("SHA256:x").is_some(), "freed");
    }

    #[test]
    fn stopping_tells_consoles_and_counts_them() {
        let r = Registry::new(4, 4);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let slot = r.add_console(tx);
        assert_eq!(r.counts().consoles, 1);
        assert_eq!(r.stop_consoles("bye"), 1);
        assert!(matches!(rx.try_recv(), Ok(Action::Terminate)));
        assert_eq!(slot.farewell().as_deref(), Some("bye"));
        drop(slot);
        assert_eq!(r.counts().consoles, 0);
    }
}
