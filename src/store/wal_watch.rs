//! Wake the SQLite change watcher the moment another process commits: every commit in WAL mode
//! writes the `-wal` file, so an inotify watch on the store's directory (the `-wal` file comes
//! and goes with the last connection) says "look now" within microseconds. The watcher still
//! decides by `PRAGMA data_version`; this only replaces waiting out its poll interval.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use tokio::io::unix::AsyncFd;

/// Events that mean a file in the directory was written, created or replaced.
const MASK: u32 = libc::IN_MODIFY | libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_CLOSE_WRITE;

/// An inotify watch on the directory of a SQLite file.
pub(crate) struct WalWatch {
    fd: AsyncFd<OwnedFd>,
}

impl WalWatch {
    /// Watch the directory holding `db_file`; `None` when inotify is unavailable (the caller
    /// keeps polling).
    pub(crate) fn new(db_file: &Path) -> Option<WalWatch> {
        let dir = match db_file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let dir = CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
        // SAFETY: inotify_init1 takes flags only; a negative answer is an error.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return None;
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `fd` is a live inotify descriptor and `dir` a NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), dir.as_ptr(), MASK) };
        if wd < 0 {
            return None;
        }
        // SAFETY: the OwnedFd moves into the AsyncFd, stays open until it is dropped and always
        // answers the same descriptor; this runs inside the watcher task, so a reactor exists.
        let fd = unsafe { AsyncFd::register(fd) }.ok()?;
        Some(WalWatch { fd })
    }

    /// Wait until something in the directory was written, then drain every queued event (a
    /// burst of writes is one wake-up). Answers false when the watch broke.
    pub(crate) async fn changed(&self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return false;
            };
            let mut got = false;
            loop {
                // SAFETY: reads into our own buffer of the given length from a live descriptor.
                let n = unsafe {
                    libc::read(
                        self.fd.get_ref().as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                    )
                };
                if n > 0 {
                    got = true;
                    continue;
                }
                if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
                {
                    guard.clear_ready();
                    break;
                }
                return false;
            }
            if got {
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_write_in_the_directory_wakes_the_watch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("gh.db");
        let watch = WalWatch::new(&db).expect("inotify");
        let quiet = tokio::time::timeout(Duration::from_millis(50), watch.changed()).await;
        assert!(quiet.is_err(), "no event before a write");
        std::fs::write(dir.path().join("gh.db-wal"), b"x").expect("write");
        let woke = tokio::time::timeout(Duration::from_secs(2), watch.changed()).await;
        assert_eq!(woke.ok(), Some(true));
    }
}
