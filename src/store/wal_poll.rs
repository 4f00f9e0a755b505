//! Where inotify does not exist, the SQLite change watcher has no file events and polls
//! `PRAGMA data_version` at its interval (see `watch.rs`).

use std::path::Path;

/// No file events on this platform.
pub(crate) struct WalWatch;

impl WalWatch {
    /// Always `None`: the caller polls.
    pub(crate) fn new(_db_file: &Path) -> Option<WalWatch> {
        None
    }

    /// Never called (there is no watch); answers that the watch is gone.
    pub(crate) async fn changed(&self) -> bool {
        false
    }
}
