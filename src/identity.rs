//! Who is operating a local process: the account of the real uid, never an environment variable.
//!
//! Rules (see "Trust" in the design):
//! - The operator is the account name of the process's **real** uid (`getuid`), looked up in the
//!   password database; a uid without an entry is named `uid:<n>`.
//! - `SUDO_USER` counts only when the real uid is 0 (sudo runs its command as root) **and**
//!   `SUDO_UID` is set and equals the uid that `SUDO_USER` names in the password database. Root
//!   could set both by hand, but root can already do anything the store allows.
//! - `USER`, `LOGNAME` and `SSH_CONNECTION` are never read for the identity: any caller sets them.
//!   `SSH_CONNECTION` is only recorded in the source as an unverified claim, in the form
//!   `cli (ssh claim 10.0.0.5:52311)` (`[addr]:port` for IPv6), and only when it parses as an
//!   address and a port; otherwise `cli (ssh claim unparsed)`.
//!
//! The decision is [`operator_name`] and [`source_with_claim`], pure and unit-tested; the libc
//! calls are at the edge ([`real_uid`], [`name_of_uid`], [`uid_of_name`]).

use std::path::Path;

use crate::store::api::Actor;

/// The operator behind this process (see the module rules), built once at start.
pub fn current_actor(default_source: &str) -> Actor {
    let sudo_user = std::env::var("SUDO_USER").ok();
    let sudo_uid = std::env::var("SUDO_UID").ok();
    let ssh = std::env::var("SSH_CONNECTION").ok();
    let name = operator_name(
        real_uid(),
        sudo_user.as_deref(),
        sudo_uid.as_deref(),
        name_of_uid,
        uid_of_name,
    );
    Actor::operator(name, source_with_claim(default_source, ssh.as_deref()))
}

/// The real uid of this process (who started it, not a set-uid owner).
pub fn real_uid() -> u32 {
    // SAFETY: getuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::getuid() }
}

/// True when the real uid is root.
pub fn is_root() -> bool {
    real_uid() == 0
}

/// True when the real uid owns `path` (false when it cannot be read). Used for "the first admin
/// is created by root or by the OS owner of the store".
pub fn owns_path(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.uid() == real_uid())
}

/// Pure core: the operator name for `uid`, given `SUDO_USER` / `SUDO_UID` as found and the two
/// password-database lookups.
pub fn operator_name(
    uid: u32,
    sudo_user: Option<&str>,
    sudo_uid: Option<&str>,
    name_of_uid: impl Fn(u32) -> Option<String>,
    uid_of_name: impl Fn(&str) -> Option<u32>,
) -> String {
    if uid == 0
        && let (Some(user), Some(claimed)) = (sudo_user, sudo_uid)
        && !user.is_empty()
        && let Ok(claimed) = claimed.parse::<u32>()
        && uid_of_name(user) == Some(claimed)
    {
        return user.to_string();
    }
    name_of_uid(uid).unwrap_or_else(|| format!("uid:{uid}"))
}

/// Pure core: `default_source`, plus the unverified SSH client address when `SSH_CONNECTION`
/// (`client_addr client_port server_addr server_port`) is present.
pub fn source_with_claim(default_source: &str, ssh_connection: Option<&str>) -> String {
    let Some(conn) = ssh_connection.filter(|c| !c.trim().is_empty()) else {
        return default_source.to_string();
    };
    let mut parts = conn.split_ascii_whitespace();
    let claim = match (parts.next(), parts.next()) {
        (Some(addr), Some(port)) if is_address(addr) && is_port(port) => {
            if addr.contains(':') {
                format!("[{addr}]:{port}")
            } else {
                format!("{addr}:{port}")
            }
        }
        _ => "unparsed".to_string(),
    };
    format!("{default_source} (ssh claim {claim})")
}

/// An IPv4 or IPv6 address as sshd writes it (no zone names, at most 45 characters).
fn is_address(text: &str) -> bool {
    (2..=45).contains(&text.len()) && text.parse::<std::net::IpAddr>().is_ok()
}

fn is_port(text: &str) -> bool {
    text.parse::<u16>().is_ok_and(|p| p > 0) && !text.starts_with('+')
}

/// The account name of `uid` in the password database.
pub fn name_of_uid(uid: u32) -> Option<String> {
    with_passwd_buffer(|pwd, buf, len, result| {
        // SAFETY: getpwuid_r writes only into `pwd` and `buf[..len]`, both owned by the caller
        // and sized as passed; `result` is set to `pwd` on success or null.
        unsafe { libc::getpwuid_r(uid, pwd, buf, len, result) }
    })
    .map(|(name, _)| name)
}

/// The uid that `name` has in the password database.
pub fn uid_of_name(name: &str) -> Option<u32> {
    let c_name = std::ffi::CString::new(name).ok()?;
    with_passwd_buffer(|pwd, buf, len, result| {
        // SAFETY: as in name_of_uid; `c_name` is a NUL-terminated string that outlives the call.
        unsafe { libc::getpwnam_r(c_name.as_ptr(), pwd, buf, len, result) }
    })
    .map(|(_, uid)| uid)
}

/// Runs a `getpw*_r` call with a growing buffer (ERANGE → twice the size, up to 1 MiB) and
/// returns the entry's name and uid.
fn with_passwd_buffer<F>(mut call: F) -> Option<(String, u32)>
where
    F: FnMut(
        *mut libc::passwd,
        *mut libc::c_char,
        libc::size_t,
        *mut *mut libc::passwd,
    ) -> libc::c_int,
{
    let mut size = 1024usize;
    loop {
        let mut buf = vec![0u8; size];
        let mut pwd = std::mem::MaybeUninit::<libc::passwd>::uninit();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = call(
            pwd.as_mut_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        );
        if rc == libc::ERANGE && size < (1 << 20) {
            size *= 2;
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        // SAFETY: result is non-null, so the call initialised `pwd` (result points at it) and
        // pw_name is a NUL-terminated string inside `buf`, which is still alive here.
        let (name, uid) = unsafe {
            let entry = &*result;
            (std::ffi::CStr::from_ptr(entry.pw_name), entry.pw_uid)
        };
        return name.to_str().ok().map(|n| (n.to_string(), uid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A password database: alice 1000, bob 1001, root 0.
    fn name_of(uid: u32) -> Option<String> {
        match uid {
            0 => Some("root".into()),
            1000 => Some("alice".into()),
            1001 => Some("bob".into()),
            _ => None,
        }
    }

    fn uid_of(name: &str) -> Option<u32> {
        match name {
            "root" => Some(0),
            "alice" => Some(1000),
            "bob" => Some(1001),
            _ => None,
        }
    }

    fn who(uid: u32, sudo_user: Option<&str>, sudo_uid: Option<&str>) -> String {
        operator_name(uid, sudo_user, sudo_uid, name_of, uid_of)
    }

    #[test]
    fn the_real_uid_names_the_operator() {
        assert_eq!(who(1000, None, None), "alice");
        assert_eq!(who(1001, None, None), "bob");
        assert_eq!(who(0, None, None), "root");
    }

    #[test]
    fn a_uid_without_an_entry_is_named_by_number() {
        assert_eq!(who(4242, None, None), "uid:4242");
        assert_eq!(who(4242, Some("alice"), Some("1000")), "uid:4242");
    }

    #[test]
    fn sudo_user_counts_only_under_root_with_a_matching_sudo_uid() {
        assert_eq!(who(0, Some("bob"), Some("1001")), "bob");
        assert_eq!(who(0, Some("alice"), Some("1000")), "alice");
        assert_eq!(who(0, Some("root"), Some("0")), "root");
    }

    #[test]
    fn sudo_vars_are_ignored_for_a_non_root_uid() {
        // An unprivileged user setting both variables to an admin's values is still themselves.
        assert_eq!(who(1001, Some("alice"), Some("1000")), "bob");
        assert_eq!(who(1001, Some("alice"), None), "bob");
        assert_eq!(who(1001, None, Some("1000")), "bob");
    }

    #[test]
    fn sudo_user_that_disagrees_with_sudo_uid_is_ignored() {
        let cases: &[(Option<&str>, Option<&str>)] = &[
            (Some("alice"), None),               // no SUDO_UID
            (Some("alice"), Some("1001")),       // bob's uid
            (Some("alice"), Some("")),           // empty
            (Some("alice"), Some("x1000")),      // not a number
            (Some("alice"), Some("-1000")),      // negative
            (Some("alice"), Some(" 1000")),      // padded
            (Some("ghost"), Some("1000")),       // no such user
            (Some(""), Some("1000")),            // empty name
            (Some(" alice"), Some("1000")),      // padded name
            (None, Some("1000")),                // no SUDO_USER
            (Some("alice"), Some("4294967296")), // out of range
        ];
        for (user, uid) in cases {
            assert_eq!(who(0, *user, *uid), "root", "{user:?} {uid:?}");
        }
    }

    #[test]
    fn source_records_ssh_only_as_a_claim() {
        assert_eq!(source_with_claim("cli", None), "cli");
        assert_eq!(source_with_claim("cli", Some("  ")), "cli");
        assert_eq!(
            source_with_claim("cli", Some("10.0.0.5 52311 10.0.0.1 22")),
            "cli (ssh claim 10.0.0.5:52311)"
        );
        assert_eq!(
            source_with_claim("tui", Some("fe80::1 2222 fe80::2 22")),
            "tui (ssh claim [fe80::1]:2222)"
        );
        for odd in [
            "weird",
            "10.0.0.5",
            "10.0.0.5 0",
            "10.0.0.5 65536",
            "10.0.0.5 +22",
            "not-an-ip 22",
            "\x1b[2J 22",
            "10.0.0.5\x1b 22",
        ] {
            assert_eq!(
                source_with_claim("cli", Some(odd)),
                "cli (ssh claim unparsed)",
                "{odd:?}"
            );
        }
    }

    #[test]
    fn the_real_uid_is_looked_up_both_ways() {
        let uid = real_uid();
        assert_eq!(is_root(), uid == 0);
        let name = name_of_uid(uid).expect("the test user has a passwd entry");
        assert!(!name.is_empty());
        assert_eq!(uid_of_name(&name), Some(uid));
        assert_eq!(uid_of_name("no such user, surely"), None);
        assert_eq!(uid_of_name("nul\0inside"), None);
        assert_eq!(name_of_uid(0).as_deref(), Some("root"));
    }

    #[test]
    fn ownership_of_paths() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        assert!(owns_path(file.path()));
        assert!(!owns_path(Path::new("/nonexistent/gatehouse/store.db")));
        // The root directory belongs to root.
        assert_eq!(owns_path(Path::new("/")), is_root());
    }

    #[test]
    fn current_actor_is_an_operator_named_by_the_uid() {
        let actor = current_actor("cli");
        assert!(!actor.is_system());
        assert!(actor.source.starts_with("cli"));
        if !is_root() {
            assert_eq!(Some(actor.user), name_of_uid(real_uid()));
        }
    }
}
