//! The SessionActor: one per charging session under way (pending or active). The charger's
//! actor persists meter values; this actor makes the decisions a session needs while it runs:
//! it stops the charge before the running cost reaches the wallet balance (or the driver's
//! own limit), ends it when the charger faults, stays offline too long or its meter stalls,
//! fails a remote start the charger never began, and carries out stops asked for by the
//! driver or the station owner. It is rebuilt from the database at start-up.

use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::json;

use crate::billing;
use crate::bus::{Bus, charger_topic, session_topic};
use crate::charger::command::CommandError;
use crate::clock::Clock;
use crate::ocpp::CentralSystemRequest;
use crate::ocpp::messages::RemoteStopTransactionRequest;
use crate::registry::{CommandCharger, ConnectorFreed, Registry, SessionClosed, SessionLoaded};
use crate::store::live_sessions::{self, OpenSessionAt};
use crate::store::sessions::{self, Settle, Settlement};
use crate::store::{DbPool, StoreError, pool, session_views, wallets};

/// How long a wallet reading far above the session's cost stands without another read.
const BALANCE_FRESH_FOR: Duration = Duration::seconds(30);

/// Timings and margins for sessions.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// A remote start the charger has not begun by then fails at no cost.
    pub start_timeout: Duration,
    /// After a stop was sent, how long to wait for StopTransaction before settling anyway.
    pub stop_timeout: Duration,
    /// A charger offline this long ends its sessions.
    pub offline_timeout: Duration,
    /// A meter that has not advanced this long ends the session.
    pub meter_stall_timeout: Duration,
    /// How long a charger takes to act on RemoteStopTransaction; the prepaid margin covers it.
    pub reaction_time: Duration,
}

/// What every session actor shares.
pub struct SessionEnv {
    /// The database.
    pub pool: DbPool,
    /// Where time comes from.
    pub clock: Clock,
    /// Live updates.
    pub bus: Bus,
    /// Timings.
    pub settings: SessionSettings,
}

/// Who asked for a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopInitiator {
    /// The session's driver.
    Driver,
    /// The station owner's normal stop.
    OwnerComplete,
    /// The station owner's emergency stop: closed at once as Cancelled, billed for energy delivered.
    OwnerCancel,
}

impl StopInitiator {
    fn reason(self) -> &'static str {
        match self {
            StopInitiator::Driver => "Stopped by the driver",
            StopInitiator::OwnerComplete => "Completed by the station owner",
            StopInitiator::OwnerCancel => "Cancelled by the station owner",
        }
    }
}

/// What a stop did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    /// The charger accepted RemoteStopTransaction; StopTransaction will settle the session.
    Stopping,
    /// The session was settled now.
    Settled {
        /// completed, cancelled, or failed (it had not started).
        status: &'static str,
        /// Energy billed, Wh.
        energy_wh: i64,
        /// Amount debited.
        cost: Decimal,
    },
}

/// Why a stop could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// The session is no longer under way.
    #[error("the session has already ended")]
    Ended,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Something that happened to the session's charger or meter.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum SessionEvent {
    /// StartTransaction made a pending session active (or a new one began).
    Started,
    /// Meter values were stored: the session's totals now.
    Progress {
        /// Energy so far, Wh.
        energy_wh: i64,
        /// Power now, W.
        power_w: Option<i64>,
        /// Running cost.
        cost: Decimal,
        /// When the charger sampled it.
        sampled_at: DateTime<Utc>,
    },
    /// The charger connected.
    ChargerOnline,
    /// The charger's connection closed.
    ChargerOffline,
    /// A connector of the session's charger reported Faulted.
    Faulted {
        /// The connector (0: the whole charger).
        connector_number: i32,
        /// OCPP error code.
        error_code: String,
    },
    /// StopTransaction (or anyone else) settled the session.
    Settled,
}

/// Asks the session to stop.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<StopOutcome, StopError>")]
pub struct StopSession(pub StopInitiator);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Start,
    Stop,
    Offline,
    MeterStall,
}

/// The session actor.
pub struct SessionActor {
    id: i64,
    env: Arc<SessionEnv>,
    registry: Addr<Registry>,
    charger_online: bool,
    state: Option<OpenSessionAt>,
    power_w: Option<i64>,
    last_sample_at: Option<DateTime<Utc>>,
    sample_interval: Duration,
    stop_requested: bool,
    /// The wallet balance last read, and when (by the session clock): while the cost is far
    /// from it, meter updates need not read it again.
    known_balance: Option<(Decimal, DateTime<Utc>)>,
    timers: Vec<(Timer, SpawnHandle)>,
    /// When the meter counts as stalled if it does not advance again. Each advancing reading
    /// moves it; the timer armed for an earlier deadline re-arms itself for this one when it
    /// fires, so a reading costs no timer of its own (20,000 readings a second re-armed a timer
    /// each before).
    meter_stall_at: Option<DateTime<Utc>>,
    /// The status this actor is counted under in the `kilowatt_sessions` gauge.
    counted_as: Option<&'static str>,
}

impl SessionActor {
    /// A session actor for `id`; it loads itself from the database when started.
    pub fn new(id: i64, env: Arc<SessionEnv>, registry: Addr<Registry>, charger_online: bool) -> Self {
        SessionActor {
            id,
            env,
            registry,
            charger_online,
            state: None,
            power_w: None,
            last_sample_at: None,
            sample_interval: Duration::seconds(60),
            stop_requested: false,
            known_balance: None,
            timers: Vec::new(),
            meter_stall_at: None,
            counted_as: None,
        }
    }

    fn arm(&mut self, ctx: &mut Context<Self>, timer: Timer, deadline: DateTime<Utc>) {
        self.disarm(ctx, timer);
        let clock = self.env.clock.clone();
        let handle =
            ctx.spawn(async move { clock.sleep_until(deadline).await }.into_actor(self).map(move |(), act, ctx| {
                act.timers.retain(|(t, _)| *t != timer);
                act.on_timer(ctx, timer);
            }));
        self.timers.push((timer, handle));
    }

    /// Moves the meter-stall deadline; arms its timer only if none is armed.
    fn push_meter_stall(&mut self, ctx: &mut Context<Self>, deadline: DateTime<Utc>) {
        self.meter_stall_at = Some(deadline);
        if !self.timers.iter().any(|(t, _)| *t == Timer::MeterStall) {
            self.arm(ctx, Timer::MeterStall, deadline);
        }
    }

    fn disarm(&mut self, ctx: &mut Context<Self>, timer: Timer) {
        self.timers.retain(|(t, handle)| {
            if *t == timer {
                ctx.cancel_future(*handle);
                false
            } else {
                true
            }
        });
    }

    fn on_timer(&mut self, ctx: &mut Context<Self>, timer: Timer) {
        let Some(pending) = self.state.as_ref().map(|s| s.session.status == "pending") else { return };
        let minutes = |d: Duration| d.num_minutes().max(1);
        let settings = self.env.settings.clone();
        let (status, reason) = match timer {
            Timer::Start if pending => {
                ("failed", format!("The charger did not start within {} minutes", minutes(settings.start_timeout)))
            }
            Timer::Start => return,
            Timer::Stop => ("completed", "The charger did not confirm the stop; billed to its last reading".into()),
            Timer::Offline => ("failed", format!("Charger offline for {} minutes", minutes(settings.offline_timeout))),
            Timer::MeterStall => {
                // The meter advanced since this timer was armed: wait for the new deadline.
                if let Some(deadline) = self.meter_stall_at.filter(|at| *at > self.env.clock.now()) {
                    self.arm(ctx, Timer::MeterStall, deadline);
                    return;
                }
                self.send_remote_stop(ctx);
                (
                    "completed",
                    format!("The meter stopped advancing for {} minutes", minutes(settings.meter_stall_timeout)),
                )
            }
        };
        tracing::info!(session_id = self.id, ?timer, %reason, "session ends on a timer");
        self.settle_now(ctx, status, reason);
    }

    /// Settles in the database, publishes, and stops the actor.
    fn settle_now(&mut self, ctx: &mut Context<Self>, status: &'static str, reason: String) {
        let env = self.env.clone();
        let id = self.id;
        let charge_point_id = self.state.as_ref().map(|s| s.charge_point_id.clone()).unwrap_or_default();
        // What the store closes a session that never started as (see `sessions::settle`).
        let never_started = self.state.as_ref().is_some_and(|s| s.session.status == "pending");
        let final_status = if never_started { "failed" } else { status };
        ctx.wait(
            async move {
                let how = Settle {
                    ended_at: env.clock.now(),
                    meter_stop: None,
                    status,
                    stop_reason: reason,
                    ocpp_reason: None,
                };
                let mut conn = pool::connection(&env.pool).await?;
                let settlement = sessions::settle(&mut conn, id, &how, env.clock.now()).await?;
                if let Settlement::Settled { energy_wh, cost, .. } = &settlement {
                    count_settlement(final_status, *energy_wh, *cost);
                    publish_settled(&env.bus, &charge_point_id, id, *energy_wh, *cost);
                }
                Ok::<_, StoreError>(settlement)
            }
            .into_actor(self)
            .map(move |result, act, ctx| match result {
                Ok(_) => ctx.stop(),
                Err(error) => {
                    // The database is down: try again shortly rather than lose the decision.
                    tracing::warn!(session_id = act.id, %error, "could not settle the session; retrying");
                    let retry = act.env.clock.now() + Duration::seconds(5);
                    act.arm(ctx, Timer::Stop, retry);
                }
            }),
        );
    }

    fn send_remote_stop(&mut self, ctx: &mut Context<Self>) {
        let Some(state) = &self.state else { return };
        let Some(transaction_id) = state.session.transaction_id else { return };
        self.stop_requested = true;
        let registry = self.registry.clone();
        let request = CentralSystemRequest::RemoteStopTransaction(RemoteStopTransactionRequest { transaction_id });
        let command = CommandCharger { charge_point_id: state.charge_point_id.clone(), request };
        let deadline = self.env.clock.now() + self.env.settings.stop_timeout;
        self.arm(ctx, Timer::Stop, deadline);
        ctx.spawn(async move { registry.send(command).await }.into_actor(self).map(|result, act, _ctx| {
            let accepted = matches!(&result, Ok(Ok(answer)) if answer["status"] == "Accepted");
            if !accepted {
                tracing::warn!(session_id = act.id, ?result, "RemoteStopTransaction not accepted");
            }
        }));
    }

    /// Checks the driver's limits and the wallet after new meter values.
    ///
    /// The prepaid cut-off reads the wallet on each update while the cost nears the balance;
    /// far from it, a reading younger than [`BALANCE_FRESH_FOR`] stands (one read per session
    /// every half minute instead of one per meter update).
    fn check_limits(&mut self, ctx: &mut Context<Self>) {
        if self.stop_requested {
            return;
        }
        let Some(state) = &self.state else { return };
        let session = &state.session;
        let Some(user_id) = session.user_id else { return };
        // What the charger will deliver before it reacts to a stop sent now.
        let window = self.sample_interval + self.env.settings.reaction_time;
        let margin_wh = self.power_w.unwrap_or(0).max(0) * window.num_seconds() / 3600;
        let margin = billing::cost(margin_wh, session.price_per_kwh).max(Decimal::ONE);
        let limit_reason = if session.limit_energy_wh.is_some_and(|limit| session.energy_wh >= limit) {
            Some("Energy limit reached")
        } else if session.limit_amount.is_some_and(|limit| session.cost + margin >= limit) {
            Some("Amount limit reached")
        } else {
            None
        };
        if let Some(reason) = limit_reason {
            self.stop_for(ctx, reason);
            return;
        }
        let env = self.env.clone();
        let cost = session.cost;
        // A fresh reading far above the cost (under half of it spent, margin included) stands:
        // only another debit of half the wallet within the freshness window could make it
        // wrong, and near the cut-off every update reads the wallet again.
        let now = env.clock.now();
        if let Some((balance, read_at)) = self.known_balance
            && now - read_at < BALANCE_FRESH_FOR
            && (cost + margin) * Decimal::TWO < balance
        {
            return;
        }
        ctx.spawn(
            async move {
                let mut conn = pool::connection(&env.pool).await?;
                wallets::balance(&mut conn, user_id).await
            }
            .into_actor(self)
            .map(
                move |balance: Result<Option<Decimal>, StoreError>, act: &mut SessionActor, ctx: &mut Context<Self>| {
                    if let Ok(Some(balance)) = balance {
                        act.known_balance = Some((balance, now));
                    }
                    match balance {
                        Ok(Some(balance)) if cost + margin >= balance && !act.stop_requested => {
                            tracing::info!(session_id = act.id, %cost, %balance, %margin, "prepaid balance reached");
                            act.stop_for(ctx, "Prepaid balance reached");
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!(session_id = act.id, %error, "could not read the wallet balance"),
                    }
                },
            ),
        );
    }

    /// Records the reason and sends RemoteStopTransaction.
    fn stop_for(&mut self, ctx: &mut Context<Self>, reason: &'static str) {
        self.stop_requested = true;
        let env = self.env.clone();
        let id = self.id;
        ctx.spawn(
            async move {
                let mut conn = pool::connection(&env.pool).await?;
                live_sessions::record_stop_reason(&mut conn, id, reason, env.clock.now()).await
            }
            .into_actor(self)
            .map(|result, act, ctx| {
                if let Err(error) = result {
                    tracing::warn!(session_id = act.id, %error, "could not record the stop reason");
                }
                act.send_remote_stop(ctx);
            }),
        );
    }

    fn reload(&mut self, ctx: &mut Context<Self>) {
        let env = self.env.clone();
        let id = self.id;
        ctx.wait(
            async move {
                let mut conn = pool::connection(&env.pool).await?;
                live_sessions::load_open(&mut conn, id).await
            }
            .into_actor(self)
            .map(|loaded, act, ctx| match loaded {
                Ok(Some(state)) => act.loaded(ctx, state),
                Ok(None) => ctx.stop(),
                Err(error) => {
                    tracing::warn!(session_id = act.id, %error, "could not load the session; retrying");
                    let retry = act.env.clock.now() + Duration::seconds(5);
                    act.arm(ctx, Timer::Stop, retry);
                }
            }),
        );
    }

    fn loaded(&mut self, ctx: &mut Context<Self>, state: OpenSessionAt) {
        let now = self.env.clock.now();
        let settings = self.env.settings.clone();
        self.registry.do_send(SessionLoaded { session_id: self.id, charge_point_id: state.charge_point_id.clone() });
        if state.session.status == "pending" {
            self.arm(ctx, Timer::Start, state.session.requested_at + settings.start_timeout);
        } else {
            self.disarm(ctx, Timer::Start);
            self.push_meter_stall(ctx, now + settings.meter_stall_timeout);
        }
        self.count_as(Some(if state.session.status == "pending" { "pending" } else { "active" }));
        self.stop_requested = state.session.stop_reason.is_some();
        if self.stop_requested {
            // A stop asked for before a restart: wait for StopTransaction, then settle anyway.
            self.arm(ctx, Timer::Stop, now + settings.stop_timeout);
        }
        self.state = Some(state);
        if !self.charger_online {
            self.arm(ctx, Timer::Offline, now + settings.offline_timeout);
        }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(256);
        // Everything else waits until the session is loaded.
        self.reload(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.count_as(None);
        self.registry.do_send(SessionClosed { session_id: self.id });
        if let Some(state) = &self.state {
            // The charger's queue (if any) looks at whether the connector is free now.
            self.registry.do_send(ConnectorFreed {
                charge_point_id: state.charge_point_id.clone(),
                connector_number: state.connector_number,
            });
        }
    }
}

impl Handler<SessionEvent> for SessionActor {
    type Result = ();

    fn handle(&mut self, event: SessionEvent, ctx: &mut Self::Context) {
        match event {
            SessionEvent::Started => self.reload(ctx),
            SessionEvent::Progress { energy_wh, power_w, cost, sampled_at } => {
                let Some(state) = &mut self.state else { return };
                let advanced = energy_wh > state.session.energy_wh;
                state.session.energy_wh = energy_wh.max(state.session.energy_wh);
                state.session.cost = cost.max(state.session.cost);
                if let Some(previous) = self.last_sample_at.filter(|p| sampled_at > *p) {
                    self.sample_interval = (sampled_at - previous).min(Duration::minutes(15));
                }
                self.last_sample_at = Some(sampled_at);
                self.power_w = power_w.or(self.power_w);
                if advanced {
                    let deadline = self.env.clock.now() + self.env.settings.meter_stall_timeout;
                    self.push_meter_stall(ctx, deadline);
                }
                self.check_limits(ctx);
            }
            SessionEvent::ChargerOnline => {
                self.charger_online = true;
                self.disarm(ctx, Timer::Offline);
            }
            SessionEvent::ChargerOffline => {
                self.charger_online = false;
                let deadline = self.env.clock.now() + self.env.settings.offline_timeout;
                self.arm(ctx, Timer::Offline, deadline);
            }
            SessionEvent::Faulted { connector_number, error_code } => {
                let ours = self
                    .state
                    .as_ref()
                    .is_some_and(|s| connector_number == 0 || s.connector_number == connector_number);
                if !ours {
                    return;
                }
                self.send_remote_stop(ctx);
                self.settle_now(ctx, "failed", format!("The charger reported a fault ({error_code})"));
            }
            SessionEvent::Settled => {
                count_settled_elsewhere(&self.env, self.id);
                ctx.stop();
            }
        }
    }
}

impl Handler<StopSession> for SessionActor {
    type Result = ResponseActFuture<Self, Result<StopOutcome, StopError>>;

    fn handle(&mut self, StopSession(initiator): StopSession, _ctx: &mut Self::Context) -> Self::Result {
        let Some(state) = self.state.clone() else {
            return Box::pin(actix::fut::ready(Err(StopError::Ended)));
        };
        let env = self.env.clone();
        let registry = self.registry.clone();
        let id = self.id;
        let reason = initiator.reason();
        self.stop_requested = true;
        let work = async move {
            let mut conn = pool::connection(&env.pool).await?;
            live_sessions::record_stop_reason(&mut conn, id, reason, env.clock.now()).await?;
            drop(conn);
            let remote_stop = match state.session.transaction_id {
                Some(transaction_id) => {
                    let request =
                        CentralSystemRequest::RemoteStopTransaction(RemoteStopTransactionRequest { transaction_id });
                    let command = CommandCharger { charge_point_id: state.charge_point_id.clone(), request };
                    Some(registry.send(command).await.unwrap_or(Err(CommandError::Disconnected)))
                }
                None => None,
            };
            let accepted = matches!(&remote_stop, Some(Ok(answer)) if answer["status"] == "Accepted");
            if accepted && initiator != StopInitiator::OwnerCancel {
                return Ok(StopOutcome::Stopping);
            }
            // Cancelled by the owner, never started, or the charger cannot act: close it now,
            // billed to the last reading. A StopTransaction that comes later is reconciled.
            let status = match initiator {
                _ if state.session.status == "pending" => "failed",
                StopInitiator::OwnerCancel => "cancelled",
                _ => "completed",
            };
            let how = Settle {
                ended_at: env.clock.now(),
                meter_stop: None,
                status,
                stop_reason: reason.into(),
                ocpp_reason: None,
            };
            let mut conn = pool::connection(&env.pool).await?;
            match sessions::settle(&mut conn, id, &how, env.clock.now()).await? {
                Settlement::Settled { energy_wh, cost, .. } => {
                    count_settlement(status, energy_wh, cost);
                    publish_settled(&env.bus, &state.charge_point_id, id, energy_wh, cost);
                    Ok(StopOutcome::Settled { status, energy_wh, cost })
                }
                Settlement::AlreadySettled => Err(StopError::Ended),
            }
        };
        Box::pin(work.into_actor(self).map(|result, act, ctx| {
            match &result {
                Ok(StopOutcome::Stopping) => {
                    let deadline = act.env.clock.now() + act.env.settings.stop_timeout;
                    act.arm(ctx, Timer::Stop, deadline);
                }
                Ok(StopOutcome::Settled { .. }) | Err(StopError::Ended) => ctx.stop(),
                Err(StopError::Store(_)) => act.stop_requested = false,
            }
            result
        }))
    }
}

impl SessionActor {
    /// Moves this session in the `kilowatt_sessions{status}` gauge (`None`: out of it).
    fn count_as(&mut self, status: Option<&'static str>) {
        if self.counted_as == status {
            return;
        }
        if let Some(old) = self.counted_as {
            metrics::gauge!("kilowatt_sessions", "status" => old).decrement(1.0);
        }
        if let Some(new) = status {
            metrics::gauge!("kilowatt_sessions", "status" => new).increment(1.0);
        }
        self.counted_as = status;
    }
}

/// Counts one settlement: by final status, with the energy and the money billed.
fn count_settlement(status: &str, energy_wh: i64, cost: Decimal) {
    metrics::counter!("kilowatt_sessions_settled_total", "status" => status.to_owned()).increment(1);
    metrics::counter!("kilowatt_energy_delivered_wh_total").increment(u64::try_from(energy_wh).unwrap_or(0));
    let paise = (cost * Decimal::ONE_HUNDRED).round().to_u64().unwrap_or(0);
    metrics::counter!("kilowatt_billed_paise_total").increment(paise);
}

/// Counts a settlement made elsewhere (StopTransaction, a failed remote start, a superseding
/// start): those paths only report that the session settled, so what it was billed is read
/// back, off the actor, once.
fn count_settled_elsewhere(env: &Arc<SessionEnv>, session_id: i64) {
    let env = env.clone();
    actix::spawn(async move {
        let row = async {
            let mut conn = pool::connection(&env.pool).await?;
            session_views::by_id(&mut conn, session_id).await
        };
        match row.await {
            Ok(Some(row)) if !matches!(row.status.as_str(), "pending" | "active") => {
                count_settlement(&row.status, row.energy_wh, row.cost);
            }
            Ok(_) => {}
            Err(error) => tracing::debug!(session_id, %error, "settlement not counted in the metrics"),
        }
    });
}

/// Tells browsers a session closed.
pub fn publish_settled(bus: &Bus, charge_point_id: &str, session_id: i64, energy_wh: i64, cost: Decimal) {
    let data =
        json!({ "chargePointId": charge_point_id, "sessionId": session_id, "energyWh": energy_wh, "cost": cost });
    bus.publish(charger_topic(charge_point_id), "sessionSettled", data.clone());
    bus.publish(session_topic(session_id), "sessionSettled", data);
}

impl Handler<crate::registry::StopActor> for SessionActor {
    type Result = ();

    fn handle(&mut self, _msg: crate::registry::StopActor, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
