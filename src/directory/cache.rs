//! A small time-limited cache of directory answers, so a burst of requests asks the directory
//! once per person or group within the cache lifetime.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::DirPerson;

/// One cached answer: a person, or a list of names (`None`: no such group).
#[derive(Debug, Clone)]
pub struct Entry {
    /// A person lookup's answer.
    pub person: Option<DirPerson>,
    /// A list lookup's answer.
    pub names: Option<Vec<String>>,
}

impl Entry {
    /// A person lookup's answer.
    pub fn person(person: Option<DirPerson>) -> Self {
        Self {
            person,
            names: None,
        }
    }

    /// A list lookup's answer.
    pub fn names(names: Option<Vec<String>>) -> Self {
        Self {
            person: None,
            names,
        }
    }
}

/// Answers kept for `ttl`; a zero `ttl` keeps nothing.
#[derive(Debug)]
pub struct Cache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Entry)>>,
    misses: AtomicU64,
}

impl Cache {
    /// An empty cache keeping answers for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            misses: AtomicU64::new(0),
        }
    }

    /// A fresh answer for `key`, or `None` (counted as a miss).
    pub fn get(&self, key: &str) -> Option<Entry> {
        let hit = self.entries.lock().ok().and_then(|entries| {
            entries
                .get(key)
                .filter(|(at, _)| at.elapsed() < self.ttl)
                .map(|(_, entry)| entry.clone())
        });
        if hit.is_none() {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Keep `entry` for `key`.
    pub fn put(&self, key: &str, entry: Entry) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            entries.insert(key.to_string(), (Instant::now(), entry));
        }
    }

    /// How many lookups missed the cache.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_and_zero_keeps_nothing() {
        let cache = Cache::new(Duration::from_millis(30));
        assert!(cache.get("a").is_none());
        cache.put("a", Entry::names(Some(vec!["x".into()])));
        assert_eq!(
            cache.get("a").and_then(|e| e.names),
            Some(vec!["x".to_string()])
        );
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get("a").is_none());
        assert_eq!(cache.misses(), 2);
        let off = Cache::new(Duration::ZERO);
        off.put("a", Entry::names(None));
        assert!(off.get("a").is_none());
    }
}
