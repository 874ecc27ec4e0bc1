//! The Registry: the supervised actor that knows every live connection by ID.
//!
//! Charger actors (and later session, queue and booking actors) register themselves here
//! in `started()` and unregister in `stopping()`. At shutdown the registry asks each
//! connection to close cleanly. A newer connection for the same ID replaces the older one,
//! which is told to close.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use serde_json::Value;

use crate::charger::command::{CommandError, SendCommand};
use crate::ocpp::CentralSystemRequest;
use crate::queue::{QueueActor, QueueEnv, QueueEvent};
use crate::session::{SessionActor, SessionEnv, SessionEvent, StopError, StopOutcome, StopSession};

/// Why a connection is asked to close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The central system is shutting down (WebSocket close code 1001).
    Shutdown,
    /// A newer connection for the same ID took over (close code 1000 with a reason).
    Replaced,
}

/// Asks a connection actor to close its socket.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct CloseConnection(pub CloseReason);

/// What the registry holds for a connection: a handle to ask it to close, and a token that
/// tells this connection apart from a later one under the same ID.
#[derive(Clone, Debug)]
pub struct ConnectionHandle {
    /// Unique per connection, so a late `Unregister` from a replaced connection does not
    /// remove its replacement.
    pub token: u64,
    /// Where to send [`CloseConnection`].
    pub close: Recipient<CloseConnection>,
    /// Where to send commands for the charger.
    pub commands: Recipient<SendCommand>,
}

/// Registers a charger connection under its charge point ID, replacing (and closing) any
/// older connection with that ID.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterCharger {
    /// The charge point ID.
    pub charge_point_id: String,
    /// The connection.
    pub handle: ConnectionHandle,
}

/// Removes a charger connection, if it is still the registered one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnregisterCharger {
    /// The charge point ID.
    pub charge_point_id: String,
    /// The token the connection registered with.
    pub token: u64,
}

/// Sends a command to a connected charger and waits for its answer.
#[derive(Message)]
#[rtype(result = "Result<Value, CommandError>")]
pub struct CommandCharger {
    /// The charge point ID.
    pub charge_point_id: String,
    /// The command.
    pub request: CentralSystemRequest,
}

/// Whether a charger is connected to this node.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsConnected(pub String);

/// A charger's command inbox, when it is connected to this node: a command sent there is
/// answered straight back to its sender, without passing through the registry's thread.
#[derive(Message)]
#[rtype(result = "Option<Recipient<SendCommand>>")]
pub struct ChargerInbox(pub String);

/// How many chargers are connected now.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ConnectedChargers;

/// Closes every registered connection cleanly; answers with how many were told.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Shutdown;

/// Gives the registry what session actors need; sessions are only supervised once it has it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UseSessionEnv(pub Arc<SessionEnv>);

/// Makes sure a session under way has its actor (started from the database if it has none).
#[derive(Message)]
#[rtype(result = "()")]
pub struct OpenSession(pub i64);

/// A session actor loaded its session: index it under its charger.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionLoaded {
    /// The session.
    pub session_id: i64,
    /// Its charger.
    pub charge_point_id: String,
}

/// A session actor stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionClosed {
    /// The session.
    pub session_id: i64,
}

/// Tells one session's actor what happened (starting it first if need be).
#[derive(Message)]
#[rtype(result = "()")]
pub struct NotifySession {
    /// The session.
    pub session_id: i64,
    /// What happened.
    pub event: SessionEvent,
}

/// Tells many sessions' actors what happened, in order (one message for a batch of events).
#[derive(Message)]
#[rtype(result = "()")]
pub struct NotifySessions(pub Vec<NotifySession>);

/// Tells every session on a charger what happened to the charger.
#[derive(Message)]
#[rtype(result = "()")]
pub struct NotifyChargerSessions {
    /// The charger.
    pub charge_point_id: String,
    /// What happened.
    pub event: SessionEvent,
}

/// Asks a session's actor to stop the session.
#[derive(Message)]
#[rtype(result = "Result<StopOutcome, StopError>")]
pub struct StopSessionNow {
    /// The session.
    pub session_id: i64,
    /// Who asks.
    pub stop: StopSession,
}

/// Stops a session or queue actor at shutdown (its state is in the database).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct StopActor;

/// Gives the registry what queue actors need.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UseQueueEnv(pub Arc<QueueEnv>);

/// Tells a charger's queue something changed (starting its actor if it has none).
#[derive(Message)]
#[rtype(result = "()")]
pub struct QueueChanged(pub String);

/// A connector may have freed up: its charger's queue (if it has one) advances.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConnectorFreed {
    /// The charger.
    pub charge_point_id: String,
    /// The connector.
    pub connector_number: i32,
}

/// A queue actor stopped (its queue emptied).
#[derive(Message)]
#[rtype(result = "()")]
pub struct QueueClosed(pub String);

/// Answered at once by the single actors (the registry, the booking timers' supervisor, the
/// notifier): actix does not tell how full a mailbox is, so the round trip of this no-op
/// measures how long messages wait there (`actor_mailbox_delay_seconds`).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Probe;

/// The registry actor. Start it with [`Registry::start_supervised`].
#[derive(Default)]
pub struct Registry {
    chargers: HashMap<String, ConnectionHandle>,
    session_env: Option<Arc<SessionEnv>>,
    sessions: HashMap<i64, Addr<SessionActor>>,
    sessions_by_charger: HashMap<String, HashSet<i64>>,
    /// The other way round, so a close touches one charger's set, not every charger's.
    charger_of_session: HashMap<i64, String>,
    queue_env: Option<Arc<QueueEnv>>,
    queues: HashMap<String, Addr<QueueActor>>,
}

impl Registry {
    /// Starts the registry under a supervisor that restarts it if it ever panics.
    pub fn start_supervised() -> Addr<Registry> {
        Supervisor::start(|_| Registry::default())
    }

    /// The session's actor, started if it has none yet (and sessions are configured).
    fn session(&mut self, session_id: i64, ctx: &mut Context<Self>) -> Option<Addr<SessionActor>> {
        if let Some(addr) = self.sessions.get(&session_id).filter(|a| a.connected()) {
            return Some(addr.clone());
        }
        let env = self.session_env.clone()?;
        // Until the actor has loaded its charger, assume it is online; a charger that is in
        // fact gone is reported by the ChargerOffline that follows its disconnect.
        let addr = SessionActor::new(session_id, env, ctx.address(), true).start();
        self.sessions.insert(session_id, addr.clone());
        Some(addr)
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Every charger and browser socket talks to the registry; the default 16 is far too small.
        ctx.set_mailbox_capacity(65_536);
        tracing::debug!("registry started");
    }
}

impl Supervised for Registry {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(chargers = self.chargers.len(), "registry restarting");
    }
}

impl Handler<RegisterCharger> for Registry {
    type Result = ();

    fn handle(&mut self, msg: RegisterCharger, _ctx: &mut Self::Context) {
        if let Some(old) = self.chargers.insert(msg.charge_point_id.clone(), msg.handle) {
            tracing::info!(charge_point_id = %msg.charge_point_id, "newer connection replaces the old one");
            old.close.do_send(CloseConnection(CloseReason::Replaced));
        }
        self.notify_charger_sessions(&msg.charge_point_id, SessionEvent::ChargerOnline);
    }
}

impl Handler<UnregisterCharger> for Registry {
    type Result = ();

    fn handle(&mut self, msg: UnregisterCharger, _ctx: &mut Self::Context) {
        if self.chargers.get(&msg.charge_point_id).is_some_and(|h| h.token == msg.token) {
            self.chargers.remove(&msg.charge_point_id);
            self.notify_charger_sessions(&msg.charge_point_id, SessionEvent::ChargerOffline);
        }
    }
}

impl Registry {
    fn notify_charger_sessions(&self, charge_point_id: &str, event: SessionEvent) {
        for id in self.sessions_by_charger.get(charge_point_id).into_iter().flatten() {
            if let Some(addr) = self.sessions.get(id) {
                addr.do_send(event.clone());
            }
        }
    }
}

impl Handler<UseQueueEnv> for Registry {
    type Result = ();

    fn handle(&mut self, msg: UseQueueEnv, _ctx: &mut Self::Context) {
        self.queue_env = Some(msg.0);
    }
}

impl Handler<QueueChanged> for Registry {
    type Result = ();

    fn handle(&mut self, msg: QueueChanged, ctx: &mut Self::Context) {
        if let Some(addr) = self.queues.get(&msg.0).filter(|a| a.connected()) {
            addr.do_send(QueueEvent::Changed);
            return;
        }
        let Some(env) = self.queue_env.clone() else { return };
        // A new actor loads the queue and hands out free connectors as it starts.
        let addr = QueueActor::new(msg.0.clone(), env, ctx.address()).start();
        self.queues.insert(msg.0, addr);
    }
}

impl Handler<ConnectorFreed> for Registry {
    type Result = ();

    fn handle(&mut self, msg: ConnectorFreed, _ctx: &mut Self::Context) {
        // Only chargers with a queue have an actor; the others have nobody to tell.
        if let Some(addr) = self.queues.get(&msg.charge_point_id).filter(|a| a.connected()) {
            addr.do_send(QueueEvent::ConnectorFreed(msg.connector_number));
        }
    }
}

impl Handler<QueueClosed> for Registry {
    type Result = ();

    fn handle(&mut self, msg: QueueClosed, _ctx: &mut Self::Context) {
        if self.queues.get(&msg.0).is_some_and(|a| !a.connected()) {
            self.queues.remove(&msg.0);
        }
    }
}

impl Handler<UseSessionEnv> for Registry {
    type Result = ();

    fn handle(&mut self, msg: UseSessionEnv, _ctx: &mut Self::Context) {
        self.session_env = Some(msg.0);
    }
}

impl Handler<OpenSession> for Registry {
    type Result = ();

    fn handle(&mut self, msg: OpenSession, ctx: &mut Self::Context) {
        self.session(msg.0, ctx);
    }
}

impl Handler<SessionLoaded> for Registry {
    type Result = ();

    fn handle(&mut self, msg: SessionLoaded, _ctx: &mut Self::Context) {
        let online = self.chargers.contains_key(&msg.charge_point_id);
        if let Some(addr) = self.sessions.get(&msg.session_id) {
            addr.do_send(if online { SessionEvent::ChargerOnline } else { SessionEvent::ChargerOffline });
        }
        self.charger_of_session.insert(msg.session_id, msg.charge_point_id.clone());
        self.sessions_by_charger.entry(msg.charge_point_id).or_default().insert(msg.session_id);
    }
}

impl Handler<SessionClosed> for Registry {
    type Result = ();

    fn handle(&mut self, msg: SessionClosed, _ctx: &mut Self::Context) {
        self.sessions.remove(&msg.session_id);
        if let Some(charge_point_id) = self.charger_of_session.remove(&msg.session_id)
            && let Some(ids) = self.sessions_by_charger.get_mut(&charge_point_id)
        {
            ids.remove(&msg.session_id);
            if ids.is_empty() {
                self.sessions_by_charger.remove(&charge_point_id);
            }
        }
    }
}

impl Handler<NotifySession> for Registry {
    type Result = ();

    fn handle(&mut self, msg: NotifySession, ctx: &mut Self::Context) {
        let existing = self.sessions.get(&msg.session_id).filter(|a| a.connected()).cloned();
        match (existing, msg.event) {
            (Some(addr), event) => addr.do_send(event),
            // Nothing to tell a session that has no actor and has just closed.
            (None, SessionEvent::Settled) => {}
            (None, event) => {
                if let Some(addr) = self.session(msg.session_id, ctx) {
                    addr.do_send(event);
                }
            }
        }
    }
}

impl Handler<NotifySessions> for Registry {
    type Result = ();

    fn handle(&mut self, NotifySessions(events): NotifySessions, ctx: &mut Self::Context) {
        for event in events {
            <Self as Handler<NotifySession>>::handle(self, event, ctx);
        }
    }
}

impl Handler<NotifyChargerSessions> for Registry {
    type Result = ();

    fn handle(&mut self, msg: NotifyChargerSessions, _ctx: &mut Self::Context) {
        self.notify_charger_sessions(&msg.charge_point_id, msg.event);
    }
}

impl Handler<StopSessionNow> for Registry {
    type Result = ResponseFuture<Result<StopOutcome, StopError>>;

    fn handle(&mut self, msg: StopSessionNow, ctx: &mut Self::Context) -> Self::Result {
        let addr = self.session(msg.session_id, ctx);
        Box::pin(async move {
            match addr {
                Some(addr) => addr.send(msg.stop).await.unwrap_or(Err(StopError::Ended)),
                None => Err(StopError::Ended),
            }
        })
    }
}

impl Handler<CommandCharger> for Registry {
    type Result = ResponseFuture<Result<Value, CommandError>>;

    fn handle(&mut self, msg: CommandCharger, _ctx: &mut Self::Context) -> Self::Result {
        let recipient = self.chargers.get(&msg.charge_point_id).map(|h| h.commands.clone());
        Box::pin(async move {
            match recipient {
                None => Err(CommandError::NotConnected(msg.charge_point_id)),
                Some(recipient) => {
                    recipient.send(SendCommand(msg.request)).await.unwrap_or(Err(CommandError::Disconnected))
                }
            }
        })
    }
}

impl Handler<IsConnected> for Registry {
    type Result = bool;

    fn handle(&mut self, msg: IsConnected, _ctx: &mut Self::Context) -> bool {
        self.chargers.contains_key(&msg.0)
    }
}

impl Handler<ChargerInbox> for Registry {
    type Result = Option<Recipient<SendCommand>>;

    fn handle(&mut self, msg: ChargerInbox, _ctx: &mut Self::Context) -> Self::Result {
        self.chargers.get(&msg.0).map(|handle| handle.commands.clone())
    }
}

impl Handler<ConnectedChargers> for Registry {
    type Result = usize;

    fn handle(&mut self, _msg: ConnectedChargers, _ctx: &mut Self::Context) -> usize {
        self.chargers.len()
    }
}

impl Handler<Probe> for Registry {
    type Result = ();

    fn handle(&mut self, _msg: Probe, _ctx: &mut Self::Context) {}
}

impl Handler<Shutdown> for Registry {
    type Result = usize;

    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Self::Context) -> usize {
        for handle in self.chargers.values() {
            handle.close.do_send(CloseConnection(CloseReason::Shutdown));
        }
        // Sessions and queues live in the database; their actors are rebuilt at the next start.
        for addr in self.sessions.values() {
            addr.do_send(StopActor);
        }
        for addr in self.queues.values() {
            addr.do_send(StopActor);
        }
        self.session_env = None;
        self.queue_env = None;
        self.chargers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    struct FakeConnection(Arc<Mutex<Vec<CloseReason>>>);

    impl Actor for FakeConnection {
        type Context = Context<Self>;
    }

    impl Handler<SendCommand> for FakeConnection {
        type Result = Result<Value, CommandError>;
        fn handle(&mut self, _msg: SendCommand, _ctx: &mut Self::Context) -> Self::Result {
            Err(CommandError::Disconnected)
        }
    }

    impl Handler<CloseConnection> for FakeConnection {
        type Result = ();
        fn handle(&mut self, msg: CloseConnection, _ctx: &mut Self::Context) {
            self.0.lock().expect("lock").push(msg.0);
        }
    }

    #[actix_rt::test]
    async fn replacement_closes_old_connection_and_late_unregister_keeps_new_one() {
        let registry = Registry::start_supervised();
        let old_closed = Arc::new(Mutex::new(Vec::new()));
        let new_closed = Arc::new(Mutex::new(Vec::new()));
        let old = FakeConnection(old_closed.clone()).start();
        let new = FakeConnection(new_closed.clone()).start();
        let register = |token, addr: &Addr<FakeConnection>| RegisterCharger {
            charge_point_id: "CP-1".into(),
            handle: ConnectionHandle { token, close: addr.clone().recipient(), commands: addr.clone().recipient() },
        };
        registry.send(register(1, &old)).await.expect("registry");
        registry.send(register(2, &new)).await.expect("registry");
        // The replaced connection's own unregister arrives late and must not evict the new one.
        registry.send(UnregisterCharger { charge_point_id: "CP-1".into(), token: 1 }).await.expect("registry");
        assert_eq!(registry.send(ConnectedChargers).await.expect("registry"), 1);
        assert_eq!(registry.send(Shutdown).await.expect("registry"), 1);
        // Let the fake connections process their mail.
        old.send(CloseConnection(CloseReason::Replaced)).await.expect("old");
        new.send(CloseConnection(CloseReason::Shutdown)).await.expect("new");
        assert_eq!(old_closed.lock().expect("lock")[0], CloseReason::Replaced);
        assert_eq!(new_closed.lock().expect("lock")[0], CloseReason::Shutdown);
    }
}
