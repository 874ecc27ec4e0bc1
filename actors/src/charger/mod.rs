//! The ChargerActor: one per connected charger. It owns the WebSocket (framing, ping/pong,
//! close), keeps at most one outgoing CALL in flight with a timeout, and feeds incoming CALLs
//! one at a time, in order, to the plain functions in [`handlers`]. It registers with the
//! Registry when it starts and unregisters when it stops, on every exit path.
//!
//! What keeps one charger from hurting the others: a token bucket on the CALLs it sends (over
//! the limit a CALL is answered GenericError; a charger that keeps sending at several times the
//! limit is disconnected), a bounded queue of calls waiting their turn, and a bounded outgoing
//! queue ([`crate::outbox`]) that disconnects a charger which stopped reading its socket.
//!
//! What an idle connection costs is kept small: no task or channel of its own for incoming
//! calls (a call's work is spawned on the actor only while it runs, and Heartbeats are answered
//! inline), no buffers kept between messages, and no copy of the charger's password hash.

pub mod command;
pub mod credentials;
pub mod handlers;
pub mod transactions;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use self::command::{CommandError, CommandQueue, InFlight, Pending, SendCommand};
use self::credentials::Credentials;
use self::handlers::ConnectionState;
use self::transactions::{TransactionWriter, start_transaction_writer};
use crate::bus::{Bus, charger_topic};
use crate::clock::Clock;
use crate::last_seen::LastSeen;
use crate::meter_writer::{BatchFuture, GroupCommit, MeterWriter, PoolFactory, start_meter_writer};
use crate::ocpp::direct::{self, DirectCall};
use crate::ocpp::messages::TriggerMessageRequest;
use crate::ocpp::{
    CallError, CentralSystemRequest, CentralSystemResponse, ChargePointRequest, Disposition, ErrorCode, Frame,
    MessageTrigger, call_error_frame, call_result_frame,
};
use crate::outbox::{self, Outbox, SocketOptions};
use crate::registry::{CloseConnection, CloseReason, ConnectionHandle, RegisterCharger, Registry, UnregisterCharger};
use crate::store::chargers::{self, BootWrite, ChargerIdentity, IdentityLookup, Presence, StatusWrite};
use crate::store::ocpp_log::{LoggedFrame, OcppLog};
use crate::store::{AsyncPgConnection, DbPool};

/// Settings for charger connections.
#[derive(Debug, Clone)]
pub struct ChargerSettings {
    /// Heartbeat interval given at boot.
    pub heartbeat_interval: Duration,
    /// WebSocket ping interval; a peer silent for two intervals is dropped.
    pub ping_interval: Duration,
    /// How long a command waits for the charger's answer.
    pub call_timeout: Duration,
    /// Largest frame accepted; larger ones close the socket with 1009.
    pub max_frame_bytes: usize,
    /// A driver's idTag is refused (Blocked) when the wallet holds less than this.
    pub min_start_balance: rust_decimal::Decimal,
    /// CALLs a charger may send per second, sustained.
    pub rate_limit_per_second: u32,
    /// CALLs a charger may send at once on top of the sustained rate.
    pub rate_limit_burst: u32,
    /// Bytes queued for a charger that does not read its socket before it is disconnected.
    pub outbox_high_water_bytes: usize,
    /// Actions whose CALLs and CALLRESULTs stay out of the OCPP message log (CALLERRORs are
    /// always logged): the frequent ones whose content is stored elsewhere anyway.
    pub unlogged_actions: Vec<String>,
}

/// What every charger connection shares.
pub struct ChargerEnv {
    /// Database.
    pub pool: DbPool,
    /// Time.
    pub clock: Clock,
    /// Live updates.
    pub bus: Bus,
    /// The registry.
    pub registry: Addr<Registry>,
    /// The message log.
    pub log: OcppLog,
    /// Last-seen times, connections and disconnections, written in batches.
    pub last_seen: LastSeen,
    /// Identity lookups, boots, statuses and meter values, group-committed.
    pub writes: ChargerWriters,
    /// Charger passwords, checked fast.
    pub credentials: Credentials,
    /// Settings.
    pub settings: ChargerSettings,
}

/// The group-commit writers every charger connection shares (see [`crate::meter_writer`]).
#[derive(Clone)]
pub struct ChargerWriters {
    /// Handshake identity lookups (registering unknown chargers per the policy).
    pub identities: GroupCommit<IdentityLookup, Option<ChargerIdentity>>,
    /// BootNotifications; each answers the registration status.
    pub boots: GroupCommit<BootWrite, String>,
    /// StatusNotifications; each answers the connector's row.
    pub statuses: GroupCommit<StatusWrite, i64>,
    /// MeterValues; each answers where its session's meter stands.
    pub meters: MeterWriter,
    /// Authorize, StartTransaction and StopTransaction.
    pub transactions: TransactionWriter,
}

/// Batches in flight at once per writer: one being committed while the next fills.
const WRITERS_PER_KIND: usize = 2;

/// Connections the writers can use at once, besides the meter writer's (which has a pool of its
/// own, [`METER_CONNECTIONS`]): two batches for each of identities, boots and statuses, the
/// transaction writer's, and one for the presence batcher ([`crate::last_seen`]).
pub const WRITER_CONNECTIONS: usize = 3 * WRITERS_PER_KIND + transactions::TRANSACTION_WRITERS + 1;

/// Connections of the meter writer's pool, one for each batch in flight (see [`MeterWriter`]).
/// The pool should be built with [`crate::store::pool::build_batch_pool`], so that its kept
/// statements keep plans that suit every batch (see
/// [`crate::store::meters::record_meter_batch`]).
pub const METER_CONNECTIONS: usize = crate::meter_writer::METER_WRITERS;

impl ChargerWriters {
    /// Starts the writers on the current runtime, on connections from `pool` (the meter
    /// writer on a thread of its own, on a pool `meter_pools` builds there); sessions' running
    /// totals are written at most every `session_totals_every`, and the sessions' actors hear of
    /// their readings through `registry` (see [`MeterWriter`]).
    pub fn start(
        pool: DbPool,
        meter_pools: PoolFactory,
        session_totals_every: chrono::Duration,
        registry: Addr<Registry>,
    ) -> Self {
        ChargerWriters {
            identities: GroupCommit::start("identities", pool.clone(), WRITERS_PER_KIND, find_identities),
            boots: GroupCommit::start("boots", pool.clone(), WRITERS_PER_KIND, write_boots),
            statuses: GroupCommit::start("statuses", pool.clone(), WRITERS_PER_KIND, write_statuses),
            meters: start_meter_writer(meter_pools, session_totals_every, registry),
            transactions: start_transaction_writer(pool),
        }
    }
}

fn find_identities<'a>(
    conn: &'a mut AsyncPgConnection,
    lookups: &'a [IdentityLookup],
) -> BatchFuture<'a, Option<ChargerIdentity>> {
    Box::pin(chargers::find_or_register(conn, lookups))
}

fn write_boots<'a>(conn: &'a mut AsyncPgConnection, boots: &'a [BootWrite]) -> BatchFuture<'a, String> {
    Box::pin(chargers::record_boots(conn, boots))
}

fn write_statuses<'a>(conn: &'a mut AsyncPgConnection, statuses: &'a [StatusWrite]) -> BatchFuture<'a, i64> {
    Box::pin(chargers::record_statuses(conn, statuses))
}

/// Incoming CALLs a connection may have waiting before it answers "busy".
const MAX_WAITING_CALLS: usize = 64;

/// How long after connecting a charger that has not reported its status is asked for it.
const STATUS_REFRESH_DELAY: Duration = Duration::from_secs(2);

/// The window over which a flood is measured.
const FLOOD_WINDOW: Duration = Duration::from_secs(10);

/// A charger offering more than this many times its sustained rate over a whole window is
/// disconnected.
const FLOOD_FACTOR: u32 = 3;

static CONNECTION_TOKENS: AtomicU64 = AtomicU64::new(1);

/// What the rate limiter says about one more CALL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// Within the limit.
    Allow,
    /// Over the limit: answer it with a CALLERROR.
    Refuse,
    /// Flooding: disconnect.
    Disconnect,
}

/// A token bucket (`per_second` sustained, `burst` at once) plus a flood detector: more than
/// `FLOOD_FACTOR × per_second` per second (plus the burst) offered over a [`FLOOD_WINDOW`].
#[derive(Debug)]
struct RateLimiter {
    per_second: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
    window_started: Instant,
    offered: u32,
    flood_threshold: u32,
}

impl RateLimiter {
    fn new(per_second: u32, burst: u32, now: Instant) -> Self {
        let per_second = per_second.max(1);
        let window = u32::try_from(FLOOD_WINDOW.as_secs()).unwrap_or(u32::MAX);
        RateLimiter {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            refilled: now,
            window_started: now,
            offered: 0,
            flood_threshold: per_second.saturating_mul(FLOOD_FACTOR).saturating_mul(window).saturating_add(burst),
        }
    }

    fn admit(&mut self, now: Instant) -> Admission {
        if now.duration_since(self.window_started) >= FLOOD_WINDOW {
            self.window_started = now;
            self.offered = 0;
        }
        self.offered = self.offered.saturating_add(1);
        if self.offered > self.flood_threshold {
            return Admission::Disconnect;
        }
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Admission::Allow
        } else {
            Admission::Refuse
        }
    }
}

/// A CALL waiting to be handled.
struct IncomingCall {
    message_id: String,
    action: String,
    payload: CallPayload,
    received: Instant,
}

/// A CALL's payload: already read as its action's request, or JSON still to be read.
enum CallPayload {
    Read(ChargePointRequest),
    Json(serde_json::Value),
}

/// What the message log records about a frame, known where the frame is made or read
/// (so nothing is parsed twice just to log it). Borrowed: a frame that stays out of the log
/// costs no copy.
#[derive(Debug, Default)]
struct FrameMeta<'a> {
    message_type: Option<i16>,
    message_id: Option<&'a str>,
    action: Option<&'a str>,
    error_code: Option<&'static str>,
}

impl<'a> FrameMeta<'a> {
    fn call(message_id: &'a str, action: &'a str) -> Self {
        Self { message_type: Some(2), message_id: Some(message_id), action: Some(action), error_code: None }
    }

    fn result(message_id: &'a str, action: Option<&'a str>) -> Self {
        Self { message_type: Some(3), message_id: Some(message_id), action, error_code: None }
    }

    fn error(message_id: &'a str, action: Option<&'a str>, code: ErrorCode) -> Self {
        Self { message_type: Some(4), message_id: Some(message_id), action, error_code: Some(code.as_str()) }
    }

    fn of(frame: &'a Frame, action: Option<&'a str>) -> Self {
        match frame {
            Frame::Call(call) => Self::call(&call.message_id, &call.action),
            Frame::CallResult(result) => Self::result(&result.message_id, action),
            Frame::CallError(error) => Self::error(&error.message_id, action, error.error.code),
        }
    }

    /// A CALL or CALLRESULT of one of these actions (errors are always logged).
    fn is_one_of(&self, actions: &[String]) -> bool {
        matches!(self.message_type, Some(2 | 3)) && self.action.is_some_and(|a| actions.iter().any(|x| x == a))
    }
}

/// Logs and counts a CALLERROR we answer a charger's CALL with.
fn record_rejection(charge_point_id: &str, action: &str, error: &CallError) {
    tracing::warn!(
        %charge_point_id,
        %action,
        code = error.code.as_str(),
        description = %error.description,
        "rejected message from charger"
    );
    metrics::counter!("ocpp_messages_total", "action" => action.to_string(), "outcome" => "rejected").increment(1);
    metrics::counter!("ocpp_call_errors_total", "code" => error.code.as_str(), "direction" => "out").increment(1);
}

/// The actor serving one charger's socket.
pub struct ChargerActor {
    charger_id: i64,
    charge_point_id: String,
    accepted_at_connect: bool,
    /// Whether the charger sent a BootNotification or StatusNotification on this connection.
    reported: bool,
    env: Arc<ChargerEnv>,
    token: u64,
    connected_at: DateTime<Utc>,
    /// Taken by the call being handled, given back when it is answered.
    state: Option<ConnectionState>,
    /// Whether the connection is recorded online (calls wait until it is).
    ready: bool,
    waiting: VecDeque<IncomingCall>,
    commands: CommandQueue,
    last_heard: Instant,
    fragment: Option<String>,
    limiter: RateLimiter,
    outbox: Outbox,
    /// The connection's place among the chargers connecting at once (see the OCPP listener's
    /// admission): given back when the first CALL is answered, when the charger has said
    /// nothing for [`CONNECTING_QUIET`], or after [`CONNECTING_HOLD`] whatever happens.
    connecting_place: Option<OwnedSemaphorePermit>,
}

/// A charger with no CALL under way this long after connecting gives its connecting place
/// back: one that reconnects without booting may say nothing for minutes, and a reconnect
/// storm must not wait for it.
const CONNECTING_QUIET: Duration = Duration::from_millis(200);

/// Longest a charger keeps its connecting place while its first CALL is under way.
const CONNECTING_HOLD: Duration = Duration::from_secs(2);

/// Upgrades the request to an OCPP 1.6J WebSocket served by a new [`ChargerActor`]. The caller
/// has already authenticated the charger and checked the sub-protocol; `connecting_place` is
/// the charger's place among those connecting at once, if it has one (given back as in [`serve`]).
pub fn start(
    identity: ChargerIdentity,
    env: Arc<ChargerEnv>,
    req: &HttpRequest,
    stream: web::Payload,
    connecting_place: Option<OwnedSemaphorePermit>,
) -> Result<HttpResponse, actix_web::Error> {
    let options = socket_options(&env);
    outbox::start(req, stream, &options, move |outbox| {
        let mut actor = ChargerActor::new(identity, env, outbox);
        actor.connecting_place = connecting_place;
        actor
    })
}

/// Serves a charger on a connection taken over from the HTTP dispatcher once the handshake
/// (with sub-protocol `ocpp1.6`) is answered: `received` is what was read past the handshake,
/// `connecting_place` the connection's place among those connecting at once, if it has one.
/// Ends when the connection does.
pub fn serve(
    identity: ChargerIdentity,
    env: Arc<ChargerEnv>,
    io: actix_rt::net::TcpStream,
    received: actix_web::web::Bytes,
    connecting_place: Option<OwnedSemaphorePermit>,
) -> impl std::future::Future<Output = ()> + 'static {
    let options = socket_options(&env);
    outbox::serve(io, received, &options, move |outbox| {
        let mut actor = ChargerActor::new(identity, env, outbox);
        actor.connecting_place = connecting_place;
        actor
    })
}

fn socket_options(env: &ChargerEnv) -> SocketOptions<'static> {
    SocketOptions {
        protocols: &["ocpp1.6"],
        max_frame_bytes: env.settings.max_frame_bytes,
        high_water_bytes: env.settings.outbox_high_water_bytes,
        kind: "charger",
    }
}

impl ChargerActor {
    fn new(identity: ChargerIdentity, env: Arc<ChargerEnv>, outbox: Outbox) -> Self {
        let now = Instant::now();
        let limiter = RateLimiter::new(env.settings.rate_limit_per_second, env.settings.rate_limit_burst, now);
        ChargerActor {
            charger_id: identity.id,
            accepted_at_connect: identity.registration_status == "accepted",
            reported: false,
            state: Some(ConnectionState {
                charger_id: identity.id,
                charge_point_id: identity.charge_point_id.clone(),
                registration_status: identity.registration_status,
            }),
            charge_point_id: identity.charge_point_id,
            env,
            token: CONNECTION_TOKENS.fetch_add(1, Ordering::Relaxed),
            // Wall-clock time, not the (possibly manual) clock: it tells connections apart.
            connected_at: Utc::now(),
            ready: false,
            waiting: VecDeque::new(),
            commands: CommandQueue::default(),
            last_heard: now,
            fragment: None,
            limiter,
            outbox,
            connecting_place: None,
        }
    }
}

/// Records a frame in the message log, unless its action is one that stays out of it.
fn log_frame(env: &ChargerEnv, charge_point_id: &str, direction: &'static str, text: &str, meta: FrameMeta) {
    if meta.is_one_of(&env.settings.unlogged_actions) {
        return;
    }
    env.log.record(LoggedFrame {
        charge_point_id: charge_point_id.to_string(),
        direction,
        message_type: meta.message_type,
        message_id: meta.message_id.map(str::to_owned),
        action: meta.action.map(str::to_owned),
        payload: text.to_string(),
        error_code: meta.error_code.map(str::to_owned),
        created_at: env.clock.now(),
    });
}

/// The metrics a CALL answered with a CALLRESULT moves, for one action.
struct AnsweredMetrics {
    answered: metrics::Counter,
    duration: metrics::Histogram,
}

thread_local! {
    /// [`AnsweredMetrics`] by action, looked up in the registry once per action on each thread
    /// that serves sockets, rather than at every message (a lookup allocates and hashes its
    /// labels). Only actions the charge point may send are answered with a CALLRESULT, so the
    /// map stays small.
    static ANSWERED_METRICS: RefCell<HashMap<String, AnsweredMetrics>> = RefCell::new(HashMap::new());
}

/// Counts a CALL answered with a CALLRESULT, and how long it took.
fn record_answered(action: &str, received: Instant) {
    let seconds = received.elapsed().as_secs_f64();
    ANSWERED_METRICS.with_borrow_mut(|by_action| {
        let metrics = match by_action.get(action) {
            Some(metrics) => metrics,
            None => by_action.entry(action.to_owned()).or_insert_with(|| AnsweredMetrics {
                answered: metrics::counter!("ocpp_messages_total", "action" => action.to_owned(), "outcome" => "ok"),
                duration: metrics::histogram!("ocpp_message_duration_seconds", "action" => action.to_owned()),
            }),
        };
        metrics.answered.increment(1);
        metrics.duration.record(seconds);
    });
}

/// A CALL being handled on the actor: what its answer needs, shared with the hook that may
/// send the answer before the actor's task runs again ([`handlers::AnswerEarly`]).
struct Handling {
    message_id: String,
    action: String,
    received: Instant,
    /// The hook sent the CALLRESULT: the actor does not send it again.
    answered: Cell<bool>,
}

impl ChargerActor {
    fn log(&self, direction: &'static str, text: &str, meta: FrameMeta) {
        log_frame(&self.env, &self.charge_point_id, direction, text, meta);
    }

    /// The hook that sends `handling`'s CALLRESULT straight to the socket, from outside the
    /// actor (see [`handlers::AnswerEarly`]); if the socket is closing, it leaves the answer to
    /// the actor.
    fn answer_early(&self, handling: &Rc<Handling>) -> handlers::AnswerEarly {
        let (handling, outbox, env) = (handling.clone(), self.outbox.clone(), self.env.clone());
        let charge_point_id = self.charge_point_id.clone();
        Box::new(move |response| {
            let text = call_result_frame(&handling.message_id, &response.payload());
            if outbox.send_text(&text) {
                handling.answered.set(true);
                record_answered(&handling.action, handling.received);
                let meta = FrameMeta::result(&handling.message_id, Some(&handling.action));
                log_frame(&env, &charge_point_id, "out", &text, meta);
            }
        })
    }

    fn send_text(&mut self, text: String, meta: FrameMeta, ctx: &mut ws::WebsocketContext<Self>) {
        self.log("out", &text, meta);
        ctx.text(text);
    }

    /// Closes the socket with `code` and stops.
    fn close(&mut self, code: ws::CloseCode, description: &str, ctx: &mut ws::WebsocketContext<Self>) {
        ctx.close(Some(ws::CloseReason { code, description: Some(description.into()) }));
        ctx.stop();
    }

    /// Asks the rate limiter about one more frame; refuses or disconnects as it says.
    fn admit(&mut self, ctx: &mut ws::WebsocketContext<Self>) -> Admission {
        let admission = self.limiter.admit(Instant::now());
        match admission {
            Admission::Allow => {}
            Admission::Refuse => {
                metrics::counter!("ocpp_rate_limited_total", "outcome" => "refused").increment(1);
            }
            Admission::Disconnect => {
                tracing::warn!(
                    charge_point_id = %self.charge_point_id,
                    limit_per_second = self.env.settings.rate_limit_per_second,
                    "charger keeps sending far over its rate limit: disconnecting"
                );
                metrics::counter!("ocpp_rate_limited_total", "outcome" => "disconnected").increment(1);
                self.close(ws::CloseCode::Policy, "message rate limit exceeded", ctx);
            }
        }
        admission
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        self.env.last_seen.seen(self.charger_id, self.env.clock.now());
        // The common case, a valid CALL, is read straight into its request; anything else is
        // parsed the usual way, which also says what is wrong with it.
        if let Some(DirectCall { message_id, action, request }) = direct::read_call(text) {
            self.log("in", text, FrameMeta::call(&message_id, &action));
            return self.on_call(message_id, action, CallPayload::Read(request), ctx);
        }
        let frame = match Frame::parse(text) {
            Ok(frame) => frame,
            Err(error) => {
                self.log("in", text, FrameMeta { message_id: error.message_id.as_deref(), ..FrameMeta::default() });
                // Unreadable frames cost a token like CALLs; over the limit they are dropped.
                if error.disposition != Disposition::FailPending && self.admit(ctx) != Admission::Allow {
                    return;
                }
                tracing::warn!(
                    charge_point_id = %self.charge_point_id,
                    code = error.code.as_str(),
                    description = %error.description,
                    "malformed frame from charger"
                );
                metrics::counter!("ocpp_frames_rejected_total", "code" => error.code.as_str()).increment(1);
                match error.disposition {
                    Disposition::Reply => {
                        if let (Some(reply), Some(id)) = (error.reply_json(), error.message_id.as_deref()) {
                            metrics::counter!("ocpp_call_errors_total", "code" => error.code.as_str(), "direction" => "out").increment(1);
                            self.send_text(reply, FrameMeta::error(id, None, error.code), ctx);
                        }
                    }
                    Disposition::FailPending => {
                        if let Some(in_flight) = error.message_id.as_deref().and_then(|id| self.commands.take_if(id)) {
                            ctx.cancel_future(in_flight.timeout);
                            let action = in_flight.pending.request.action().to_string();
                            let reason = error.description.clone();
                            let _ = in_flight.pending.reply.send(Err(CommandError::InvalidResponse { action, reason }));
                            self.pump(ctx);
                        }
                    }
                    Disposition::Ignore => {}
                }
                return;
            }
        };
        // A result or error answers our in-flight CALL, whose action names it in the log.
        let answered_action = match &frame {
            Frame::Call(_) => None,
            other => self
                .commands
                .in_flight
                .as_ref()
                .filter(|f| f.message_id == other.message_id())
                .map(|f| f.pending.request.action()),
        };
        self.log("in", text, FrameMeta::of(&frame, answered_action));
        match frame {
            Frame::Call(call) => self.on_call(call.message_id, call.action, CallPayload::Json(call.payload), ctx),
            Frame::CallResult(result) => {
                let Some(in_flight) = self.commands.take_if(&result.message_id) else {
                    tracing::warn!(charge_point_id = %self.charge_point_id, message_id = %result.message_id, "CALLRESULT for no outstanding CALL: ignored");
                    return;
                };
                ctx.cancel_future(in_flight.timeout);
                let action = in_flight.pending.request.action().to_string();
                in_flight.record_round_trip(&action);
                let outcome = match in_flight.pending.request.parse_response(&result.payload) {
                    Ok(_) => {
                        metrics::counter!("ocpp_commands_total", "action" => action.clone(), "result" => "answered")
                            .increment(1);
                        Ok(result.payload)
                    }
                    Err(error) => {
                        metrics::counter!("ocpp_commands_total", "action" => action.clone(), "result" => "invalid")
                            .increment(1);
                        Err(CommandError::InvalidResponse { action, reason: error.description })
                    }
                };
                let _ = in_flight.pending.reply.send(outcome);
                self.pump(ctx);
            }
            Frame::CallError(error) => {
                let Some(in_flight) = self.commands.take_if(&error.message_id) else { return };
                ctx.cancel_future(in_flight.timeout);
                let action = in_flight.pending.request.action().to_string();
                in_flight.record_round_trip(&action);
                metrics::counter!("ocpp_commands_total", "action" => action.clone(), "result" => "rejected")
                    .increment(1);
                metrics::counter!("ocpp_call_errors_total", "code" => error.error.code.as_str(), "direction" => "in")
                    .increment(1);
                let _ = in_flight.pending.reply.send(Err(CommandError::Rejected {
                    action,
                    code: error.error.code.as_str().to_string(),
                    description: error.error.description,
                }));
                self.pump(ctx);
            }
        }
    }

    /// A CALL from the charger: admitted by the rate limiter, then served at once or queued
    /// behind the calls before it.
    fn on_call(
        &mut self,
        message_id: String,
        action: String,
        payload: CallPayload,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        match self.admit(ctx) {
            Admission::Allow => {}
            Admission::Refuse => {
                let error = CallError::new(
                    ErrorCode::GenericError,
                    format!(
                        "Rate limit exceeded: at most {} messages per second (bursts of {}); retry later.",
                        self.env.settings.rate_limit_per_second, self.env.settings.rate_limit_burst
                    ),
                );
                record_rejection(&self.charge_point_id, &action, &error);
                let meta = FrameMeta::error(&message_id, Some(&action), error.code);
                return self.send_text(call_error_frame(&message_id, &error), meta, ctx);
            }
            Admission::Disconnect => return,
        }
        if self.waiting.len() >= MAX_WAITING_CALLS {
            let error = CallError::new(ErrorCode::GenericError, "Too many messages in flight; slow down and retry.");
            record_rejection(&self.charge_point_id, &action, &error);
            let meta = FrameMeta::error(&message_id, Some(&action), error.code);
            return self.send_text(call_error_frame(&message_id, &error), meta, ctx);
        }
        if matches!(action.as_str(), "BootNotification" | "StatusNotification") {
            self.reported = true;
        }
        let incoming = IncomingCall { message_id, action, payload, received: Instant::now() };
        if self.may_serve(&incoming.action) && self.waiting.is_empty() {
            self.serve(incoming, ctx);
        } else {
            self.waiting.push_back(incoming);
        }
    }

    /// Whether a CALL with this action can be served now: none is being handled, and the
    /// connection is recorded online — except for what reads nothing that depends on it
    /// (Boot-, Status- and Heartbeat), which need not wait for that write in a connect storm.
    fn may_serve(&self, action: &str) -> bool {
        self.state.is_some()
            && (self.ready || matches!(action, "BootNotification" | "StatusNotification" | "Heartbeat"))
    }

    /// Serves waiting calls, in order, while none is being handled.
    fn serve_waiting(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        while self.waiting.front().is_some_and(|call| self.may_serve(&call.action)) {
            let Some(call) = self.waiting.pop_front() else { break };
            self.serve(call, ctx);
        }
        if self.waiting.is_empty() && self.waiting.capacity() > 0 {
            // An idle connection keeps no queue.
            self.waiting = VecDeque::new();
        }
    }

    /// Handles one CALL: a Heartbeat (or an invalid payload) is answered at once; anything else
    /// runs on the actor, holding the connection's state, until it is answered.
    fn serve(&mut self, call: IncomingCall, ctx: &mut ws::WebsocketContext<Self>) {
        let IncomingCall { message_id, action, payload, received } = call;
        let parsed = match payload {
            CallPayload::Read(request) => Ok(request),
            CallPayload::Json(payload) => ChargePointRequest::parse(&action, &payload),
        };
        let request = match parsed {
            Ok(ChargePointRequest::Heartbeat(_)) => {
                return self.answer(&message_id, &action, received, Ok(handlers::heartbeat(&self.env)), ctx);
            }
            Ok(request) => request,
            Err(error) => return self.answer(&message_id, &action, received, Err(error), ctx),
        };
        let Some(mut state) = self.state.take() else { return };
        let env = self.env.clone();
        let handling = Rc::new(Handling { message_id, action, received, answered: Cell::new(false) });
        let answer_early = self.answer_early(&handling);
        let work = async move {
            let reply = handlers::handle(&env, &mut state, request, Some(answer_early)).await;
            (state, reply)
        };
        ctx.spawn(work.into_actor(self).map(move |(state, reply), actor, ctx| {
            actor.state = Some(state);
            if handling.answered.get() {
                actor.connecting_place = None;
                if let Err(error) = reply {
                    // A handler answers early only once its answer is settled; if it ever
                    // failed after that, the charger already has its CALLRESULT.
                    tracing::error!(
                        charge_point_id = %actor.charge_point_id,
                        action = %handling.action,
                        %error,
                        "a CALL answered early failed afterwards"
                    );
                }
            } else {
                actor.answer(&handling.message_id, &handling.action, handling.received, reply, ctx);
            }
            actor.serve_waiting(ctx);
        }));
    }

    /// Sends the CALLRESULT or CALLERROR for a handled CALL, and counts it.
    fn answer(
        &mut self,
        message_id: &str,
        action: &str,
        received: Instant,
        reply: Result<CentralSystemResponse, CallError>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let (text, meta) = match reply {
            Ok(response) => {
                record_answered(action, received);
                (call_result_frame(message_id, &response.payload()), FrameMeta::result(message_id, Some(action)))
            }
            Err(error) => {
                record_rejection(&self.charge_point_id, action, &error);
                metrics::histogram!("ocpp_message_duration_seconds", "action" => action.to_string())
                    .record(received.elapsed().as_secs_f64());
                let meta = FrameMeta::error(message_id, Some(action), error.code);
                (call_error_frame(message_id, &error), meta)
            }
        };
        self.send_text(text, meta, ctx);
        self.connecting_place = None;
    }

    /// Sends `pending` now if no command is in flight, else queues it behind the others.
    fn dispatch(&mut self, pending: Pending, ctx: &mut ws::WebsocketContext<Self>) {
        if self.commands.in_flight.is_none() && self.commands.waiting.is_empty() {
            self.send_command(pending, ctx);
        } else {
            self.commands.waiting.push_back(pending);
            self.pump(ctx);
        }
    }

    /// Sends the next waiting command if none is in flight.
    fn pump(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        while self.commands.in_flight.is_none() {
            let Some(pending) = self.commands.waiting.pop_front() else { break };
            self.send_command(pending, ctx);
        }
        if self.commands.waiting.is_empty() && self.commands.waiting.capacity() > 0 {
            self.commands.waiting = VecDeque::new();
        }
    }

    /// Sends one command (unless its caller gave up) and arms its timeout.
    fn send_command(&mut self, pending: Pending, ctx: &mut ws::WebsocketContext<Self>) {
        if pending.reply.is_closed() {
            return;
        }
        let message_id = self.commands.next_message_id();
        let text = pending.request.to_call(message_id.clone()).to_json();
        let meta = FrameMeta::call(&message_id, pending.request.action());
        self.send_text(text, meta, ctx);
        let timeout = self.env.settings.call_timeout;
        let id_for_timeout = message_id.clone();
        let handle = ctx.run_later(timeout, move |actor, ctx| {
            if let Some(in_flight) = actor.commands.take_if(&id_for_timeout) {
                let action = in_flight.pending.request.action().to_string();
                tracing::warn!(charge_point_id = %actor.charge_point_id, %action, "command timed out");
                metrics::counter!("ocpp_commands_total", "action" => action.clone(), "result" => "timeout")
                    .increment(1);
                let _ = in_flight.pending.reply.send(Err(CommandError::Timeout { action, seconds: timeout.as_secs() }));
                actor.pump(ctx);
            }
        });
        self.commands.in_flight = Some(InFlight { message_id, pending, timeout: handle, sent_at: Instant::now() });
    }

    /// Asks the charger for its current state after a reconnect, so our view is never stale.
    fn request_status(&self, ctx: &mut ws::WebsocketContext<Self>) {
        let request = CentralSystemRequest::TriggerMessage(TriggerMessageRequest {
            requested_message: MessageTrigger::StatusNotification,
            connector_id: None,
        });
        let addr = ctx.address();
        let charge_point_id = self.charge_point_id.clone();
        actix_rt::spawn(async move {
            if let Ok(Err(error)) = addr.send(SendCommand(request)).await {
                tracing::info!(%charge_point_id, %error, "status refresh after reconnect not answered");
            }
        });
    }

    fn presence(&self) -> Presence {
        Presence { charger_id: self.charger_id, connected_at: self.connected_at, seen_at: self.env.clock.now() }
    }
}

impl Actor for ChargerActor {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(256);
        let addr = ctx.address();
        self.env.registry.do_send(RegisterCharger {
            charge_point_id: self.charge_point_id.clone(),
            handle: ConnectionHandle { token: self.token, close: addr.clone().recipient(), commands: addr.recipient() },
        });
        metrics::gauge!("ocpp_connected_chargers").increment(1.0);
        tracing::info!(charge_point_id = %self.charge_point_id, "charger connected");

        // Online before the first message is handled, so nothing reads a stale "offline".
        let env = self.env.clone();
        let presence = self.presence();
        let charge_point_id = self.charge_point_id.clone();
        let online = async move {
            if let Err(error) = env.last_seen.connected(presence).await {
                tracing::error!(%charge_point_id, %error, "could not mark charger online");
            }
            env.bus.publish(
                charger_topic(&charge_point_id),
                "chargerOnline",
                json!({ "chargePointId": charge_point_id, "online": true }),
            );
        };
        ctx.spawn(online.into_actor(self).map(|(), actor, ctx| {
            actor.ready = true;
            actor.serve_waiting(ctx);
        }));

        if self.connecting_place.is_some() {
            ctx.run_later(CONNECTING_QUIET, |actor, _| {
                // `state` is taken while a CALL is handled; `waiting` holds those that arrived
                // before the connection was recorded online.
                if actor.state.is_some() && actor.waiting.is_empty() {
                    actor.connecting_place = None;
                }
            });
            ctx.run_later(CONNECTING_HOLD, |actor, _| actor.connecting_place = None);
        }

        let ping_interval = self.env.settings.ping_interval;
        ctx.run_interval(ping_interval, move |actor, ctx| {
            if actor.last_heard.elapsed() > ping_interval * 2 {
                tracing::warn!(charge_point_id = %actor.charge_point_id, "no sign of life for two ping intervals: dropping the connection");
                actor.close(ws::CloseCode::Away, "no pong", ctx);
            } else {
                ctx.ping(b"kw");
            }
        });
        if self.accepted_at_connect {
            // A charger that boots reports its connectors itself; one that only reconnected
            // (or has not said a word yet) is asked, so our view is never stale.
            ctx.run_later(STATUS_REFRESH_DELAY, |actor, ctx| {
                if !actor.reported {
                    actor.request_status(ctx);
                }
            });
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.commands.fail_all();
        metrics::gauge!("ocpp_connected_chargers").decrement(1.0);
        self.env
            .registry
            .do_send(UnregisterCharger { charge_point_id: self.charge_point_id.clone(), token: self.token });
        if self.outbox.overflowed() {
            tracing::warn!(
                charge_point_id = %self.charge_point_id,
                high_water_bytes = self.outbox.high_water_bytes(),
                "charger stopped reading its socket: disconnected"
            );
        }
        tracing::info!(charge_point_id = %self.charge_point_id, "charger disconnected");
        let env = self.env.clone();
        let presence = self.presence();
        let charge_point_id = std::mem::take(&mut self.charge_point_id);
        // The connection only counts as closed once the charger is recorded offline (so a
        // graceful shutdown leaves every charger offline with its last-seen time written).
        self.outbox.finish_with(async move {
            match env.last_seen.disconnected(presence).await {
                Ok(true) => env.bus.publish(
                    charger_topic(&charge_point_id),
                    "chargerOffline",
                    json!({ "chargePointId": charge_point_id, "online": false }),
                ),
                Ok(false) => {}
                Err(error) => tracing::error!(%charge_point_id, %error, "could not mark charger offline"),
            }
        });
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for ChargerActor {
    fn handle(&mut self, message: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match message {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Pong(_)) => {}
            Ok(ws::Message::Binary(_)) => {
                tracing::warn!(charge_point_id = %self.charge_point_id, "binary frame from charger: OCPP-J is text only; ignored");
                metrics::counter!("ocpp_frames_rejected_total", "code" => "BinaryFrame").increment(1);
            }
            Ok(ws::Message::Continuation(item)) => self.on_continuation(item, ctx),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Nop) => {}
            Err(ws::ProtocolError::Overflow) => {
                tracing::warn!(charge_point_id = %self.charge_point_id, max = self.env.settings.max_frame_bytes, "frame too large: closing with 1009");
                metrics::counter!("ocpp_frames_rejected_total", "code" => "FrameTooLarge").increment(1);
                self.close(ws::CloseCode::Size, "frame too large", ctx);
            }
            Err(error) => {
                tracing::warn!(charge_point_id = %self.charge_point_id, %error, "WebSocket protocol error: closing");
                ctx.close(Some(ws::CloseReason { code: ws::CloseCode::Protocol, description: None }));
                ctx.stop();
            }
        }
    }
}

impl ChargerActor {
    fn on_continuation(&mut self, item: actix_http::ws::Item, ctx: &mut ws::WebsocketContext<Self>) {
        let max = self.env.settings.max_frame_bytes;
        let append = |buffer: &mut String, bytes: &[u8]| -> bool {
            buffer.push_str(&String::from_utf8_lossy(bytes));
            buffer.len() <= max
        };
        let ok = match item {
            actix_http::ws::Item::FirstText(bytes) => {
                let mut buffer = String::new();
                let ok = append(&mut buffer, &bytes);
                self.fragment = Some(buffer);
                ok
            }
            actix_http::ws::Item::FirstBinary(_) => {
                self.fragment = None;
                true
            }
            actix_http::ws::Item::Continue(bytes) => self.fragment.as_mut().is_none_or(|buffer| append(buffer, &bytes)),
            actix_http::ws::Item::Last(bytes) => {
                if let Some(mut buffer) = self.fragment.take() {
                    if !append(&mut buffer, &bytes) {
                        false
                    } else {
                        self.on_text(&buffer, ctx);
                        true
                    }
                } else {
                    true
                }
            }
        };
        if !ok {
            self.fragment = None;
            self.close(ws::CloseCode::Size, "message too large", ctx);
        }
    }
}

impl Handler<SendCommand> for ChargerActor {
    type Result = ResponseFuture<Result<serde_json::Value, CommandError>>;

    fn handle(&mut self, msg: SendCommand, ctx: &mut Self::Context) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        self.dispatch(Pending { request: msg.0, reply }, ctx);
        Box::pin(async move { answer.await.unwrap_or(Err(CommandError::Disconnected)) })
    }
}

impl Handler<CloseConnection> for ChargerActor {
    type Result = ();

    fn handle(&mut self, msg: CloseConnection, ctx: &mut Self::Context) {
        let (code, description) = match msg.0 {
            CloseReason::Shutdown => (ws::CloseCode::Away, "central system shutting down"),
            CloseReason::Replaced => (ws::CloseCode::Policy, "replaced by a newer connection"),
        };
        self.close(code, description, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_sustained_rate() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(20, 100, start);
        assert!((0..100).all(|_| limiter.admit(start) == Admission::Allow));
        assert_eq!(limiter.admit(start), Admission::Refuse);
        // Half a second later, ten more tokens.
        let later = start + Duration::from_millis(500);
        assert_eq!((0..12).filter(|_| limiter.admit(later) == Admission::Allow).count(), 10);
    }

    #[test]
    fn a_charger_sending_three_times_the_rate_for_a_whole_window_is_disconnected() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(20, 100, start);
        // 3 × 20/s for 10 s, plus the burst: still tolerated (mostly refused).
        let mut last = Admission::Allow;
        for i in 0..700u64 {
            last = limiter.admit(start + Duration::from_millis(i * 14));
        }
        assert_ne!(last, Admission::Disconnect);
        assert_eq!(limiter.admit(start + Duration::from_millis(9_900)), Admission::Disconnect);
        // A new window starts afresh.
        let mut limiter = RateLimiter::new(20, 100, start);
        for i in 0..600u64 {
            limiter.admit(start + Duration::from_millis(i * 16));
        }
        assert_ne!(limiter.admit(start + Duration::from_secs(11)), Admission::Disconnect);
    }
}
