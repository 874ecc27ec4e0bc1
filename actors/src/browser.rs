//! The BrowserSocket: one actor per browser WebSocket (`GET /ws`). It is thin on purpose
//! (actix-web-actors is in maintenance mode): it reads `subscribe` / `unsubscribe` messages,
//! asks a plain function whether this user may see a topic, forwards bus events on the topics
//! it holds as JSON text frames, runs `start` / `stop` commands through a runner the HTTP edge
//! hands it (the same functions as the REST API), and pings the browser. The HTTP edge
//! authenticates the upgrade.
//!
//! Frames in: `{"type":"subscribe","topic":"charger:CP-1"}`, `{"type":"unsubscribe","topic":…}`,
//! `{"type":"start","id":"7","csrf":…,"chargePointId":"CP-1","connectorId":1}`,
//! `{"type":"stop","id":"8","csrf":…,"sessionId":42}`.
//! Frames out: bus events `{"topic":…,"type":…,"data":…}`, `{"type":"subscribed"|"error",…}`,
//! and command results `{"type":"result","id":"7","ok":true,"data":…}` or
//! `{"type":"result","id":"7","ok":false,"error":{"code":…,"message":…}}`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Handler, Message, SpawnHandle, StreamHandler, WrapFuture,
};
use actix_web_actors::ws;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::bus::{Bus, Event, charger_topic, user_topic};
use crate::store::{DbPool, pool, session_views};

/// Most topics one socket may hold.
const MAX_TOPICS: usize = 32;

/// Largest frame a browser may send.
pub const MAX_FRAME_BYTES: usize = 4 * 1024;

/// Most commands one socket may have running at once; more are refused, not queued.
const MAX_COMMANDS_IN_FLIGHT: usize = 2;

/// Who holds the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    /// The signed-in user.
    pub user_id: i64,
    /// Admins may watch every session.
    pub admin: bool,
}

/// A command a browser sent, its CSRF token already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketCommand {
    /// Start charging on a connector, as `POST /api/charging/start`.
    Start {
        /// The charge point ID.
        charge_point_id: String,
        /// The connector.
        connector_id: i32,
    },
    /// Stop one of the user's sessions, as `POST /api/charging/stop`.
    Stop {
        /// The session.
        session_id: i64,
    },
}

/// Why a command failed: the REST API's error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    /// Machine-readable, e.g. `connector_busy`.
    pub code: String,
    /// For the driver.
    pub message: String,
}

/// What a command answers.
pub type CommandResult = Result<Value, CommandError>;

/// A command's work, run on the socket's thread.
pub type CommandFuture = Pin<Box<dyn Future<Output = CommandResult>>>;

/// Runs commands for this socket's user (built by the HTTP edge around the REST API's functions).
pub type CommandRunner = Box<dyn Fn(SocketCommand) -> CommandFuture>;

/// Whether a user may subscribe to a topic.
#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    /// Yes.
    Allow,
    /// Only if this charging session is theirs (asks the database).
    OwnSession(i64),
    /// No.
    Deny,
}

/// Decides access from the topic alone where it can: a charger's public status is for every
/// signed-in user; `user:{id}` only for that user; a session only for its driver.
pub fn access(topic: &str, user_id: i64) -> Access {
    match topic.split_once(':') {
        Some(("charger", id)) if !id.is_empty() && id.len() <= 48 && topic == charger_topic(id) => Access::Allow,
        Some(("user", _)) if topic == user_topic(user_id) => Access::Allow,
        Some(("session", id)) => id.parse().map_or(Access::Deny, Access::OwnSession),
        _ => Access::Deny,
    }
}

/// A message from the browser.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
enum Incoming {
    Subscribe {
        topic: String,
    },
    Unsubscribe {
        topic: String,
    },
    Start {
        #[serde(default)]
        id: Value,
        #[serde(default)]
        csrf: String,
        charge_point_id: String,
        connector_id: i32,
    },
    Stop {
        #[serde(default)]
        id: Value,
        #[serde(default)]
        csrf: String,
        session_id: i64,
    },
}

/// One browser's socket.
pub struct BrowserSocket {
    bus: Bus,
    pool: DbPool,
    viewer: Viewer,
    ping_interval: Duration,
    last_heard: Instant,
    subscriptions: HashMap<String, SpawnHandle>,
    /// The CSRF token every command must carry; `None` for a bearer-token socket (the app).
    csrf: Option<String>,
    commands: Option<CommandRunner>,
    commands_in_flight: usize,
}

impl BrowserSocket {
    /// A socket for `viewer`, pinging every `ping_interval` (silent for two: dropped).
    pub fn new(bus: Bus, pool: DbPool, viewer: Viewer, ping_interval: Duration) -> Self {
        BrowserSocket {
            bus,
            pool,
            viewer,
            ping_interval,
            last_heard: Instant::now(),
            subscriptions: HashMap::new(),
            csrf: None,
            commands: None,
            commands_in_flight: 0,
        }
    }

    /// Accepts `start` / `stop` commands, run by `runner`; `csrf` is the token each must carry
    /// (`None` when the socket was opened with a bearer token, which no other site can use).
    pub fn with_commands(mut self, runner: CommandRunner, csrf: Option<String>) -> Self {
        self.commands = Some(runner);
        self.csrf = csrf;
        self
    }

    fn result(ctx: &mut ws::WebsocketContext<Self>, id: &Value, result: CommandResult) {
        let frame = match result {
            Ok(data) => json!({ "type": "result", "id": id, "ok": true, "data": data }),
            Err(error) => json!({
                "type": "result", "id": id, "ok": false,
                "error": { "code": error.code, "message": error.message },
            }),
        };
        ctx.text(frame.to_string());
    }

    fn command(&mut self, id: Value, csrf: &str, command: SocketCommand, ctx: &mut ws::WebsocketContext<Self>) {
        let refuse = |code: &str, message: &str| Err(CommandError { code: code.into(), message: message.into() });
        let Some(runner) = &self.commands else {
            return Self::result(ctx, &id, refuse("unsupported", "This socket does not take commands."));
        };
        if self.csrf.as_deref().is_some_and(|expected| !same_token(csrf, expected)) {
            tracing::warn!(user_id = self.viewer.user_id, "socket command refused: missing or wrong CSRF token");
            return Self::result(ctx, &id, refuse("csrf", "This page is out of date: reload it and try again."));
        }
        if self.commands_in_flight >= MAX_COMMANDS_IN_FLIGHT {
            return Self::result(ctx, &id, refuse("busy", "Wait for the previous command to finish."));
        }
        self.commands_in_flight += 1;
        let work = runner(command);
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| {
            act.commands_in_flight -= 1;
            Self::result(ctx, &id, result);
        }));
    }

    fn reply(ctx: &mut ws::WebsocketContext<Self>, kind: &str, topic: &str, message: Option<&str>) {
        ctx.text(json!({ "type": kind, "topic": topic, "message": message }).to_string());
    }

    fn subscribe(&mut self, topic: String, ctx: &mut ws::WebsocketContext<Self>) {
        if self.subscriptions.contains_key(&topic) {
            return Self::reply(ctx, "subscribed", &topic, None);
        }
        if self.subscriptions.len() >= MAX_TOPICS {
            return Self::reply(ctx, "error", &topic, Some("Too many subscriptions on one socket."));
        }
        match access(&topic, self.viewer.user_id) {
            Access::Allow => self.listen(topic, ctx),
            Access::Deny => Self::reply(ctx, "error", &topic, Some("You may not subscribe to this topic.")),
            Access::OwnSession(session_id) => {
                let pool = self.pool.clone();
                let viewer = self.viewer;
                // The driver, the owner of the station, or an admin.
                let check = async move {
                    let mut conn = pool::connection(&pool).await.ok()?;
                    let row = session_views::by_id(&mut conn, session_id).await.ok()??;
                    let mine = row.user_id == Some(viewer.user_id);
                    Some(mine || viewer.admin || row.station_owner_id == Some(viewer.user_id))
                };
                ctx.spawn(check.into_actor(self).map(move |allowed, act, ctx| {
                    if allowed == Some(true) {
                        act.listen(topic, ctx);
                    } else {
                        Self::reply(ctx, "error", &topic, Some("You may not subscribe to this topic."));
                    }
                }));
            }
        }
    }

    /// Forwards the topic's events to the browser until unsubscribed or closed.
    fn listen(&mut self, topic: String, ctx: &mut ws::WebsocketContext<Self>) {
        let mut events = self.bus.subscribe(&topic);
        let addr = ctx.address();
        let forward = async move {
            loop {
                match events.recv().await {
                    Ok(event) => addr.do_send(Push(event)),
                    // A browser that fell behind loses the oldest updates, never the socket.
                    Err(RecvError::Lagged(missed)) => {
                        metrics::counter!("browser_events_dropped_total").increment(missed);
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        };
        let handle = ctx.spawn(forward.into_actor(self));
        Self::reply(ctx, "subscribed", &topic, None);
        self.subscriptions.insert(topic, handle);
    }
}

impl Actor for BrowserSocket {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        metrics::gauge!("browser_sockets").increment(1.0);
        ctx.set_mailbox_capacity(256);
        ctx.run_interval(self.ping_interval, |act, ctx| {
            if act.last_heard.elapsed() > act.ping_interval * 2 {
                tracing::debug!(user_id = act.viewer.user_id, "browser socket silent: closing");
                ctx.stop();
            } else {
                ctx.ping(b"");
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        metrics::gauge!("browser_sockets").decrement(1.0);
    }
}

/// Compares two tokens in time independent of where they differ.
fn same_token(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A bus event to send to the browser.
#[derive(Message)]
#[rtype(result = "()")]
struct Push(Arc<Event>);

impl Handler<Push> for BrowserSocket {
    type Result = ();

    fn handle(&mut self, Push(event): Push, ctx: &mut Self::Context) {
        match serde_json::to_string(&*event) {
            Ok(text) => ctx.text(text),
            Err(error) => tracing::warn!(%error, "bus event not serialisable"),
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for BrowserSocket {
    fn handle(&mut self, message: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match message {
            Ok(ws::Message::Text(text)) => match serde_json::from_str::<Incoming>(&text) {
                Ok(Incoming::Subscribe { topic }) => self.subscribe(topic, ctx),
                Ok(Incoming::Unsubscribe { topic }) => {
                    if let Some(handle) = self.subscriptions.remove(&topic) {
                        ctx.cancel_future(handle);
                    }
                    Self::reply(ctx, "unsubscribed", &topic, None);
                }
                Ok(Incoming::Start { id, csrf, charge_point_id, connector_id }) => {
                    self.command(id, &csrf, SocketCommand::Start { charge_point_id, connector_id }, ctx);
                }
                Ok(Incoming::Stop { id, csrf, session_id }) => {
                    self.command(id, &csrf, SocketCommand::Stop { session_id }, ctx);
                }
                Err(_) => Self::reply(
                    ctx,
                    "error",
                    "",
                    Some("Send subscribe, unsubscribe, start or stop, as JSON with a \"type\"."),
                ),
            },
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Pong(_)) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Binary(_) | ws::Message::Continuation(_) | ws::Message::Nop) => {}
            Err(error) => {
                tracing::debug!(%error, user_id = self.viewer.user_id, "browser socket protocol error");
                ctx.stop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_see_chargers_their_own_topic_and_only_ask_about_sessions() {
        assert_eq!(access("charger:CP-1", 7), Access::Allow);
        assert_eq!(access("user:7", 7), Access::Allow);
        assert_eq!(access("user:8", 7), Access::Deny);
        assert_eq!(access("session:42", 7), Access::OwnSession(42));
        assert_eq!(access("session:x", 7), Access::Deny);
        assert_eq!(access("station:1", 7), Access::Deny);
        assert_eq!(access("charger:", 7), Access::Deny);
    }
}
