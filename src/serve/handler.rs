//! One SSH connection: public-key authentication against the store (passwords and
//! keyboard-interactive refused), one session channel with a pty, the console on `shell`,
//! and a message for anything else (`exec`, subsystems, a shell without a pty).

use std::net::SocketAddr;
use std::sync::Arc;

use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, ChannelReadHalf, ChannelWriteHalf, MethodKind, MethodSet, Pty};

use crate::domain::sshkey;
use crate::serve::registry::KeySlot;
use crate::serve::session::{self, ConsoleStart};
use crate::serve::{ServeError, Shared};
use crate::store::api::Actor;
use crate::tui::TermEnv;

/// Shown to `ssh host COMMAND`.
const NO_COMMANDS: &str =
    "gatehouse: commands are not available here; run `ssh -t` with no command for the console.\r\n";
/// Shown to a shell request without a pty (`ssh -T host`).
const NEEDS_PTY: &str =
    "gatehouse: the console needs a terminal; connect with `ssh -t` (no -T, no command).\r\n";

/// Who a connection authenticated as.
struct Owner {
    operator: String,
    role: String,
    fingerprint: String,
    _slot: KeySlot,
}

/// A session channel before its console starts.
struct Pending {
    read: Option<ChannelReadHalf>,
    write: Option<ChannelWriteHalf<Msg>>,
    pty: Option<(String, u16, u16)>,
    env: TermEnv,
    started: bool,
}

/// The state of one connection.
pub(crate) struct ConnectionHandler {
    shared: Arc<Shared>,
    peer: SocketAddr,
    owner: Option<Owner>,
    channel: Option<(ChannelId, Pending)>,
}

fn only_publickey() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(MethodSet::from(&[MethodKind::PublicKey][..])),
        partial_success: false,
    }
}

fn clamp(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX).max(1)
}

impl ConnectionHandler {
    pub(crate) fn new(shared: Arc<Shared>, peer: SocketAddr) -> ConnectionHandler {
        ConnectionHandler {
            shared,
            peer,
            owner: None,
            channel: None,
        }
    }

    fn pending(&mut self, id: ChannelId) -> Option<&mut Pending> {
        match &mut self.channel {
            Some((cid, p)) if *cid == id => Some(p),
            _ => None,
        }
    }

    /// Sends `message`, exit status 1 and closes the channel.
    fn refuse(
        &mut self,
        id: ChannelId,
        message: &str,
        session: &mut Session,
    ) -> Result<(), ServeError> {
        session.data(id, message.as_bytes().to_vec())?;
        session.exit_status_request(id, 1)?;
        session.eof(id)?;
        session.close(id)?;
        Ok(())
    }
}

impl Handler for ConnectionHandler {
    type Error = ServeError;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(only_publickey())
    }

    async fn auth_password(&mut self, user: &str, _password: &str) -> Result<Auth, Self::Error> {
        tracing::warn!(peer = %self.peer, user, "authentication refused: passwords are not accepted");
        Ok(only_publickey())
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        _response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        tracing::warn!(peer = %self.peer, user, "authentication refused: keyboard-interactive is not accepted");
        Ok(only_publickey())
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let fingerprint = sshkey::fingerprint(offer.public_key);
        if let Err(e) = sshkey::check_accepted(offer.public_key) {
            tracing::warn!(peer = %self.peer, user, fingerprint, error = %e, "authentication refused: key not accepted");
            return Ok(only_publickey());
        }
        match self.shared.store.operator_for_key(&fingerprint).await? {
            Some(_) => Ok(Auth::Accept),
            None => {
                tracing::warn!(peer = %self.peer, user, fingerprint, "authentication refused: unknown key");
                Ok(only_publickey())
            }
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let fingerprint = sshkey::fingerprint(key.public_key);
        if sshkey::check_accepted(key.public_key).is_err() {
            return Ok(only_publickey());
        }
        // Read again now: a key removed since the offer no longer logs in.
        let Some(owner) = self.shared.store.operator_for_key(&fingerprint).await? else {
            tracing::warn!(peer = %self.peer, user, fingerprint, "authentication refused: unknown key");
            return Ok(only_publickey());
        };
        let Some(slot) = self.shared.registry.key_slot(&fingerprint) else {
            tracing::warn!(peer = %self.peer, user, fingerprint, operator = %owner.operator,
                limit = self.shared.options.max_per_key, "authentication refused: too many connections with this key");
            return Ok(Auth::reject());
        };
        let from = self.peer.to_string();
        if let Err(e) = self
            .shared
            .store
            .record_key_use(&fingerprint, &from, chrono::Utc::now().timestamp_millis())
            .await
        {
            tracing::warn!(fingerprint, error = %e, "could not record the key's last use");
        }
        tracing::info!(peer = %self.peer, user, fingerprint, operator = %owner.operator, role = %owner.role, "authenticated");
        self.owner = Some(Owner {
            operator: owner.operator,
            role: owner.role,
            fingerprint,
            _slot: slot,
        });
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.owner.is_none() || self.channel.is_some() {
            // One console per connection; dropping the handle refuses the channel.
            drop(reply);
            return Ok(());
        }
        let id = channel.id();
        let (read, write) = channel.split();
        self.channel = Some((
            id,
            Pending {
                read: Some(read),
                write: Some(write),
                pty: None,
                env: TermEnv::default(),
                started: false,
            },
        ));
        reply.accept().await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.pending(channel) {
            Some(p) => {
                p.pty = Some((term.to_string(), clamp(col_width), clamp(row_height)));
                p.env.term = Some(term.to_string());
                session.channel_success(channel)?;
            }
            None => session.channel_failure(channel)?,
        }
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(p) = self.pending(channel) {
            match name {
                "COLORTERM" => p.env.colorterm = Some(value.to_string()),
                "NO_COLOR" => p.env.no_color = Some(value.to_string()),
                _ => {}
            }
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(owner) = &self.owner else {
            return Ok(session.channel_failure(channel)?);
        };
        let actor = Actor::operator(
            owner.operator.clone(),
            format!("ssh-key:{}@{}", owner.fingerprint, self.peer),
        );
        let role = owner.role.clone();
        let Some(p) = self.pending(channel) else {
            return Ok(session.channel_failure(channel)?);
        };
        let Some((_, width, height)) = p.pty.clone() else {
            tracing::info!(operator = %actor.user, "shell without a pty refused");
            session.channel_success(channel)?;
            return self.refuse(channel, NEEDS_PTY, session);
        };
        if p.started {
            return Ok(session.channel_failure(channel)?);
        }
        let (Some(read), Some(write)) = (p.read.take(), p.write.take()) else {
            return Ok(session.channel_failure(channel)?);
        };
        p.started = true;
        let env = p.env.clone();
        session.channel_success(channel)?;
        let store = self.shared.store.viewing_as(&actor.user);
        session::start(
            self.shared.clone(),
            ConsoleStart {
                store,
                actor,
                role,
                env,
                size: (width, height),
            },
            read,
            write,
        );
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(peer = %self.peer, command = %crate::domain::inert::inert(&String::from_utf8_lossy(data)),
            "exec request refused");
        session.channel_success(channel)?;
        self.refuse(channel, NO_COMMANDS, session)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(peer = %self.peer, subsystem = %crate::domain::inert::inert(name), "subsystem request refused");
        session.channel_failure(channel)?;
        Ok(())
    }
}
