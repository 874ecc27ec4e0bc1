//! The BrowserSocket: one actor per browser WebSocket (`GET /ws`). It is thin on purpose
//! (actix-web-actors is in maintenance mode): it reads `subscribe` / `unsubscribe` messages,
//! asks a plain function whether this user may see a topic, forwards bus events on the topics
//! it holds as JSON text frames, and pings the browser. The HTTP edge authenticates the upgrade.
//!
//! Frames in: `{"type":"subscribe","topic":"charger:CP-1"}`, `{"type":"unsubscribe","topic":…}`.
//! Frames out: bus events `{"topic":…,"type":…,"data":…}`, and `{"type":"subscribed"|"error",…}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Handler, Message, SpawnHandle, StreamHandler, WrapFuture,
};
use actix_web_actors::ws;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::bus::{Bus, Event, charger_topic, user_topic};
use crate::store::{DbPool, pool, session_views};

/// Most topics one socket may hold.
const MAX_TOPICS: usize = 32;

/// Largest frame a browser may send.
pub const MAX_FRAME_BYTES: usize = 4 * 1024;

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
#[serde(tag = "type", rename_all = "camelCase")]
enum Incoming {
    Subscribe { topic: String },
    Unsubscribe { topic: String },
}

/// One browser's socket.
pub struct BrowserSocket {
    bus: Bus,
    pool: DbPool,
    user_id: i64,
    ping_interval: Duration,
    last_heard: Instant,
    subscriptions: HashMap<String, SpawnHandle>,
}

impl BrowserSocket {
    /// A socket for `user_id`, pinging every `ping_interval` (silent for two: dropped).
    pub fn new(bus: Bus, pool: DbPool, user_id: i64, ping_interval: Duration) -> Self {
        BrowserSocket { bus, pool, user_id, ping_interval, last_heard: Instant::now(), subscriptions: HashMap::new() }
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
        match access(&topic, self.user_id) {
            Access::Allow => self.listen(topic, ctx),
            Access::Deny => Self::reply(ctx, "error", &topic, Some("You may not subscribe to this topic.")),
            Access::OwnSession(session_id) => {
                let pool = self.pool.clone();
                let user_id = self.user_id;
                let check = async move {
                    let mut conn = pool::connection(&pool).await.ok()?;
                    let row = session_views::by_id(&mut conn, session_id).await.ok()??;
                    Some(row.user_id == Some(user_id))
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
                    Err(RecvError::Lagged(_)) => continue,
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
        ctx.set_mailbox_capacity(256);
        ctx.run_interval(self.ping_interval, |act, ctx| {
            if act.last_heard.elapsed() > act.ping_interval * 2 {
                tracing::debug!(user_id = act.user_id, "browser socket silent: closing");
                ctx.stop();
            } else {
                ctx.ping(b"");
            }
        });
    }
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
                Err(_) => Self::reply(ctx, "error", "", Some("Send {\"type\":\"subscribe\",\"topic\":\"…\"}.")),
            },
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Pong(_)) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Binary(_) | ws::Message::Continuation(_) | ws::Message::Nop) => {}
            Err(error) => {
                tracing::debug!(%error, user_id = self.user_id, "browser socket protocol error");
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
