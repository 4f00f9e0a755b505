//! Who is operating: the login user (SUDO_USER first) and where they came from (SSH_CONNECTION).

use crate::store::api::Actor;

/// The operator behind this process, read from the environment once at start.
///
/// `SUDO_USER` wins over `USER` so `sudo gatehouse approve` is recorded as the person, not root;
/// `SSH_CONNECTION` (client address and port) is the source when present.
pub fn current_actor(default_source: &str) -> Actor {
    actor_from(
        std::env::var("SUDO_USER").ok().as_deref(),
        std::env::var("USER")
            .ok()
            .or_else(|| std::env::var("LOGNAME").ok())
            .or_else(login_of_uid)
            .as_deref(),
        std::env::var("SSH_CONNECTION").ok().as_deref(),
        default_source,
    )
}

/// The account name of this process's effective uid (when `USER` is unset, as under tmux
/// started by a service or a bare `ssh host cmd`).
fn login_of_uid() -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let mut pwd = std::mem::MaybeUninit::<libc::passwd>::uninit();
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into `pwd` and `buf`, both ours and sized as passed; on
    // success `result` points at `pwd`, whose `pw_name` points into `buf`.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::geteuid(),
            pwd.as_mut_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: result is non-null, so pwd was initialised and pw_name is a C string in buf.
    let name = unsafe { std::ffi::CStr::from_ptr((*result).pw_name) };
    name.to_str().ok().map(str::to_string)
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Pure core of [`current_actor`], so the precedence rules are testable.
pub fn actor_from(
    sudo_user: Option<&str>,
    user: Option<&str>,
    ssh_connection: Option<&str>,
    default_source: &str,
) -> Actor {
    let user = non_empty(sudo_user)
        .or(non_empty(user))
        .unwrap_or("unknown")
        .to_string();
    let source = match non_empty(ssh_connection) {
        Some(conn) => {
            let mut parts = conn.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some(addr), Some(port)) => format!("ssh:{addr}:{port}"),
                _ => format!("ssh:{conn}"),
            }
        }
        None => default_source.to_string(),
    };
    Actor::operator(user, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_user_wins_over_user() {
        let a = actor_from(Some("alice"), Some("root"), None, "cli");
        assert_eq!(a.user, "alice");
        assert_eq!(a.source, "cli");
    }

    #[test]
    fn empty_sudo_user_falls_back_to_user() {
        assert_eq!(actor_from(Some(" "), Some("bob"), None, "cli").user, "bob");
    }

    #[test]
    fn missing_everything_is_unknown() {
        assert_eq!(actor_from(None, None, None, "cli").user, "unknown");
    }

    #[test]
    fn ssh_connection_becomes_source() {
        let a = actor_from(
            None,
            Some("carol"),
            Some("10.0.0.5 52311 10.0.0.1 22"),
            "tui",
        );
        assert_eq!(a.source, "ssh:10.0.0.5:52311");
    }

    #[test]
    fn the_uid_has_a_login() {
        assert!(login_of_uid().is_some_and(|n| !n.is_empty()));
    }

    #[test]
    fn odd_ssh_connection_is_kept_whole() {
        let a = actor_from(None, Some("carol"), Some("weird"), "tui");
        assert_eq!(a.source, "ssh:weird");
    }
}
