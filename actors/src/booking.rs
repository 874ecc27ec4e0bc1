//! Booking timers: one [`BookingTimer`] per live booking, supervised by [`BookingTimers`].
//!
//! A timer wakes at the slot start: it notifies the driver, starts the grace period and holds
//! the connector (a `reservations` row, and OCPP ReserveNow where the charger supports it). At
//! the end of the grace period without a check-in the booking expires as a no-show: no refund,
//! the hold is cancelled (CancelReservation), the driver is told, and the connector goes to the
//! charger's queue. A checked-in or charging booking completes at the slot end, or earlier when
//! its session settles.
//!
//! Every step is decided from the database (see [`advance`]) and made with a conditional
//! update, so a timer that fires twice, a driver's check-in racing the grace end, or a restart
//! in the middle never leaves a booking in a wrong state. Timers are rebuilt from the database
//! at start-up, and a sweep every minute (on the [`Clock`]) wakes any booking a timer missed.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use crate::bus::{Bus, charger_topic, user_topic};
use crate::clock::Clock;
use crate::notifier::{Notifier, Notify};
use crate::ocpp::CentralSystemRequest;
use crate::registry::{CommandCharger, ConnectorFreed, Probe, Registry};
use crate::store::bookings::{self, BookingRow};
use crate::store::reservations::{self, HOLDING, NewHold, Reservation};
use crate::store::{DbPool, StoreError, pool};

/// How often the backup sweep runs.
pub const SWEEP_EVERY: Duration = Duration::minutes(1);

/// How long a timer waits before retrying after the database failed.
const RETRY_AFTER: Duration = Duration::seconds(5);

/// Booking policy the timers apply.
#[derive(Debug, Clone)]
pub struct BookingSettings {
    /// How long after the slot start the driver may check in.
    pub grace_period: Duration,
    /// Cancelling at least this long before the slot refunds in full (told in messages).
    pub refund_cutoff: Duration,
    /// Where drivers reach Kilowatt, for links in messages.
    pub public_url: String,
}

/// What every booking timer shares.
pub struct BookingEnv {
    /// The database.
    pub pool: DbPool,
    /// Where time comes from.
    pub clock: Clock,
    /// Live updates (the driver's and the charger's topics).
    pub bus: Bus,
    /// Commands to chargers and the queues.
    pub registry: Addr<Registry>,
    /// Email and SMS to drivers.
    pub notifier: Addr<Notifier>,
    /// Policy.
    pub settings: BookingSettings,
}

/// Makes sure a booking has its timer and that it looks at the booking now (after it was made,
/// checked in or cancelled).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Track(pub i64);

/// Stops every timer and the supervisor (at shutdown; they are rebuilt at the next start).
/// Answers how many timers were running.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "usize")]
pub struct StopAll;

/// How many timers are running.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "usize")]
pub struct TimerCount;

#[derive(Message)]
#[rtype(result = "()")]
struct TimerStopped {
    booking_id: i64,
    token: u64,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Wake;

/// The supervisor: knows each booking's timer, starts the missing ones at start-up and in the
/// sweep, and wakes the ones whose booking is due.
pub struct BookingTimers {
    env: Arc<BookingEnv>,
    timers: HashMap<i64, (u64, Addr<BookingTimer>)>,
    next_token: u64,
}

impl BookingTimers {
    /// A supervisor; started, it rebuilds a timer for every live booking in the database.
    pub fn new(env: Arc<BookingEnv>) -> Self {
        BookingTimers { env, timers: HashMap::new(), next_token: 0 }
    }

    fn track(&mut self, booking_id: i64, ctx: &mut Context<Self>) {
        if let Some((_, addr)) = self.timers.get(&booking_id).filter(|(_, a)| a.connected()) {
            addr.do_send(Wake);
            return;
        }
        self.next_token += 1;
        let timer = BookingTimer::new(booking_id, self.next_token, self.env.clone(), ctx.address());
        if self.timers.insert(booking_id, (self.next_token, timer.start())).is_none() {
            metrics::gauge!("kilowatt_bookings_live").increment(1.0);
        }
    }

    /// Loads the live bookings and starts a timer for each.
    fn rebuild(&mut self, ctx: &mut Context<Self>) {
        let env = self.env.clone();
        ctx.spawn(
            async move {
                let mut conn = pool::connection(&env.pool).await?;
                bookings::live_ids(&mut conn).await
            }
            .into_actor(self)
            .map(|ids, act, ctx| match ids {
                Ok(ids) => {
                    if !ids.is_empty() {
                        tracing::info!(bookings = ids.len(), "rebuilding booking timers");
                    }
                    for id in ids {
                        act.track(id, ctx);
                    }
                }
                // The sweep tries again in a minute.
                Err(error) => tracing::warn!(%error, "could not load live bookings"),
            }),
        );
    }

    fn schedule_sweep(&mut self, ctx: &mut Context<Self>) {
        let clock = self.env.clock.clone();
        ctx.spawn(async move { clock.sleep(SWEEP_EVERY).await }.into_actor(self).map(|(), act, ctx| act.sweep(ctx)));
    }

    /// Starts a timer for any live booking without one and wakes every booking that is due.
    fn sweep(&mut self, ctx: &mut Context<Self>) {
        let env = self.env.clone();
        ctx.spawn(
            async move {
                let mut conn = pool::connection(&env.pool).await?;
                let live = bookings::live_ids(&mut conn).await?;
                let due = bookings::due_ids(&mut conn, env.clock.now()).await?;
                Ok::<_, StoreError>((live, due))
            }
            .into_actor(self)
            .map(|found, act, ctx| {
                match found {
                    Ok((live, due)) => {
                        let missing: Vec<i64> = live
                            .into_iter()
                            .filter(|id| !act.timers.get(id).is_some_and(|(_, a)| a.connected()))
                            .collect();
                        if !missing.is_empty() || !due.is_empty() {
                            tracing::info!(missing = missing.len(), due = due.len(), "booking sweep");
                        }
                        for id in missing.into_iter().chain(due) {
                            act.track(id, ctx);
                        }
                    }
                    Err(error) => tracing::warn!(%error, "booking sweep could not read the database"),
                }
                act.schedule_sweep(ctx);
            }),
        );
    }
}

impl Actor for BookingTimers {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Handlers and the sweep track bookings in bursts.
        ctx.set_mailbox_capacity(4096);
        self.rebuild(ctx);
        self.schedule_sweep(ctx);
    }
}

impl Handler<Track> for BookingTimers {
    type Result = ();

    fn handle(&mut self, Track(booking_id): Track, ctx: &mut Self::Context) {
        self.track(booking_id, ctx);
    }
}

impl Handler<TimerStopped> for BookingTimers {
    type Result = ();

    fn handle(&mut self, msg: TimerStopped, _ctx: &mut Self::Context) {
        if self.timers.get(&msg.booking_id).is_some_and(|(token, _)| *token == msg.token) {
            self.timers.remove(&msg.booking_id);
            metrics::gauge!("kilowatt_bookings_live").decrement(1.0);
        }
    }
}

impl Handler<StopAll> for BookingTimers {
    type Result = usize;

    fn handle(&mut self, _msg: StopAll, ctx: &mut Self::Context) -> usize {
        let running = self.timers.len();
        metrics::gauge!("kilowatt_bookings_live").decrement(running as f64);
        for (_, (_, addr)) in self.timers.drain() {
            addr.do_send(StopTimer);
        }
        ctx.stop();
        running
    }
}

impl Handler<Probe> for BookingTimers {
    type Result = ();

    fn handle(&mut self, _msg: Probe, _ctx: &mut Self::Context) {}
}

impl Handler<TimerCount> for BookingTimers {
    type Result = usize;

    fn handle(&mut self, _msg: TimerCount, _ctx: &mut Self::Context) -> usize {
        self.timers.values().filter(|(_, a)| a.connected()).count()
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct StopTimer;

/// What a timer does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Look again at this time.
    At(DateTime<Utc>),
    /// The booking is over: nothing more to do.
    Done,
}

/// One booking's timer.
pub struct BookingTimer {
    booking_id: i64,
    token: u64,
    env: Arc<BookingEnv>,
    supervisor: Addr<BookingTimers>,
    sleeping: Option<SpawnHandle>,
    busy: bool,
    again: bool,
}

impl BookingTimer {
    fn new(booking_id: i64, token: u64, env: Arc<BookingEnv>, supervisor: Addr<BookingTimers>) -> Self {
        BookingTimer { booking_id, token, env, supervisor, sleeping: None, busy: false, again: false }
    }

    /// Looks at the booking now; a wake-up while a look is under way runs another after it.
    fn run(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            self.again = true;
            return;
        }
        self.busy = true;
        if let Some(handle) = self.sleeping.take() {
            ctx.cancel_future(handle);
        }
        let env = self.env.clone();
        let booking_id = self.booking_id;
        ctx.spawn(async move { advance(&env, booking_id).await }.into_actor(self).map(|next, act, ctx| {
            act.busy = false;
            if std::mem::take(&mut act.again) {
                act.run(ctx);
                return;
            }
            match next {
                Ok(Next::At(deadline)) => act.arm(ctx, deadline),
                Ok(Next::Done) => ctx.stop(),
                Err(error) => {
                    tracing::warn!(booking_id = act.booking_id, %error, "booking timer could not act; retrying");
                    let retry = act.env.clock.now() + RETRY_AFTER;
                    act.arm(ctx, retry);
                }
            }
        }));
    }

    fn arm(&mut self, ctx: &mut Context<Self>, deadline: DateTime<Utc>) {
        let clock = self.env.clock.clone();
        let handle =
            ctx.spawn(async move { clock.sleep_until(deadline).await }.into_actor(self).map(|(), act, ctx| {
                act.sleeping = None;
                act.run(ctx);
            }));
        self.sleeping = Some(handle);
    }
}

impl Actor for BookingTimer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.run(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.supervisor.do_send(TimerStopped { booking_id: self.booking_id, token: self.token });
    }
}

impl Handler<Wake> for BookingTimer {
    type Result = ();

    fn handle(&mut self, _msg: Wake, ctx: &mut Self::Context) {
        self.run(ctx);
    }
}

impl Handler<StopTimer> for BookingTimer {
    type Result = ();

    fn handle(&mut self, _msg: StopTimer, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Moves a booking on as far as the time allows, and answers when to look again. Each step
/// reloads the booking and changes it with a conditional update: whoever changed it first
/// (the driver checking in or cancelling, another wake-up) wins, and the next round sees it.
pub async fn advance(env: &BookingEnv, booking_id: i64) -> Result<Next, StoreError> {
    let grace_period = env.settings.grace_period;
    // Each round makes one step; a booking has at most five, so this only guards a loop.
    for _ in 0..8 {
        let mut conn = pool::connection(&env.pool).await?;
        let Some(row) = bookings::find(&mut conn, booking_id).await? else { return Ok(Next::Done) };
        let booking = &row.booking;
        let now = env.clock.now();
        match booking.status.as_str() {
            "confirmed" if now < booking.start_at => return Ok(Next::At(booking.start_at)),
            "confirmed" => {
                let grace_ends_at = booking.start_at + grace_period;
                if let Some(started) = bookings::start_slot(&mut conn, booking_id, grace_ends_at, now).await? {
                    tracing::info!(booking_id, %grace_ends_at, "booked slot started; grace period running");
                    publish(&env.bus, &row, &started);
                    // A slot processed only after its grace period (Kilowatt was down) goes
                    // straight to expiry without a "you have 30 minutes" message.
                    if now < grace_ends_at {
                        env.notifier.do_send(slot_started_message(&env.settings, &row, &started));
                    }
                }
            }
            "grace" => {
                let grace_ends_at = booking.grace_ends_at.unwrap_or(booking.start_at + grace_period);
                if now >= grace_ends_at {
                    if let Some(expired) = bookings::expire_no_show(&mut conn, booking_id, now).await? {
                        drop(conn);
                        tracing::info!(booking_id, "no check-in by the end of the grace period: booking expired");
                        publish(&env.bus, &row, &expired);
                        release_hold(env, &row, "cancelled", true).await?;
                        env.notifier.do_send(expired_message(&env.settings, &row, &expired));
                        release_to_queue(&env.registry, &row.charge_point_id, row.connector_number);
                    }
                } else if bookings::session_under_way(&mut conn, booking).await? {
                    mark_charging(env, &mut conn, &row).await?;
                } else {
                    drop(conn);
                    ensure_hold(env, &row, grace_ends_at).await?;
                    return Ok(Next::At(grace_ends_at));
                }
            }
            "checked_in" | "charging" => {
                let charging = booking.status == "charging";
                if now >= booking.end_at {
                    complete(env, &mut conn, &row, "the slot ended").await?;
                } else if !charging && bookings::session_under_way(&mut conn, booking).await? {
                    mark_charging(env, &mut conn, &row).await?;
                } else if charging && !bookings::session_under_way(&mut conn, booking).await? {
                    complete(env, &mut conn, &row, "its session ended").await?;
                } else {
                    drop(conn);
                    if !charging {
                        ensure_hold(env, &row, booking.end_at).await?;
                    }
                    return Ok(Next::At(booking.end_at));
                }
            }
            // Over (completed, expired, cancelled): make sure nothing still holds the connector.
            status => {
                drop(conn);
                let (as_status, tell_charger) =
                    if status == "completed" { ("expired", false) } else { ("cancelled", true) };
                if release_hold(env, &row, as_status, tell_charger).await? && status == "cancelled" {
                    release_to_queue(&env.registry, &row.charge_point_id, row.connector_number);
                }
                return Ok(Next::Done);
            }
        }
    }
    Ok(Next::At(env.clock.now() + RETRY_AFTER))
}

/// The booking's session is under way (its driver started charging on the held connector).
async fn mark_charging(
    env: &BookingEnv,
    conn: &mut crate::store::AsyncPgConnection,
    row: &BookingRow,
) -> Result<(), StoreError> {
    let booking = &row.booking;
    if bookings::mark_charging(conn, booking.user_id, booking.connector_id).await?.is_some() {
        tracing::info!(booking_id = booking.id, "the booking's session is under way: charging");
        publish(&env.bus, row, &bookings::Booking { status: "charging".to_owned(), ..booking.clone() });
    }
    Ok(())
}

async fn complete(
    env: &BookingEnv,
    conn: &mut crate::store::AsyncPgConnection,
    row: &BookingRow,
    why: &str,
) -> Result<(), StoreError> {
    if let Some(completed) = bookings::complete(conn, row.booking.id, env.clock.now()).await? {
        tracing::info!(booking_id = row.booking.id, why, "booking completed");
        publish(&env.bus, row, &completed);
        // A hold left (checked in, never started) lapses with the slot; the charger's own
        // reservation already ended with the grace period.
        release_hold(env, row, "expired", false).await?;
    }
    Ok(())
}

/// Makes sure the booking's connector is held until `until`: records the hold and sends OCPP
/// ReserveNow the first time; later only extends Kilowatt's hold (a checked-in driver keeps
/// the connector to the end of the slot).
async fn ensure_hold(env: &BookingEnv, row: &BookingRow, until: DateTime<Utc>) -> Result<(), StoreError> {
    let booking = &row.booking;
    let now = env.clock.now();
    let mut conn = pool::connection(&env.pool).await?;
    if let Some(hold) = bookings::hold_of(&mut conn, booking.id).await? {
        // Used (the session started), rejected by the charger, or already over: leave it.
        if HOLDING.contains(&hold.status.as_str()) && hold.expires_at < until {
            bookings::extend_hold(&mut conn, hold.id, until, now).await?;
        }
        return Ok(());
    }
    let new = NewHold {
        charger_id: booking.charger_id,
        connector_number: row.connector_number,
        id_tag: &row.id_tag,
        user_id: booking.user_id,
        booking_id: Some(booking.id),
        queue_entry_id: None,
        expires_at: until,
    };
    let reservation = reservations::create(&mut conn, &new, now).await?;
    drop(conn);
    let status = reserve_now(env, row, &reservation).await;
    let mut conn = pool::connection(&env.pool).await?;
    reservations::set_status(&mut conn, reservation.id, status, env.clock.now()).await?;
    tracing::info!(booking_id = booking.id, reservation_id = reservation.id, status, "connector held for the booking");
    Ok(())
}

/// Sends ReserveNow; answers the reservation's status from the charger's answer. A charger
/// that cannot reserve (offline, no Reservation profile) leaves the hold to Kilowatt:
/// `unsupported` still refuses anyone else's start.
async fn reserve_now(env: &BookingEnv, row: &BookingRow, reservation: &Reservation) -> &'static str {
    let payload = json!({
        "connectorId": row.connector_number,
        "expiryDate": reservation.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "idTag": row.id_tag,
        "reservationId": reservation.id,
    });
    let request = match CentralSystemRequest::from_action("ReserveNow", &payload) {
        Ok(request) => request,
        Err(error) => {
            tracing::error!(booking_id = row.booking.id, ?error, "could not build ReserveNow");
            return "unsupported";
        }
    };
    let command = CommandCharger { charge_point_id: row.charge_point_id.clone(), request };
    match env.registry.send(command).await {
        Ok(Ok(answer)) if answer["status"] == "Accepted" => "accepted",
        Ok(Ok(answer)) => {
            tracing::info!(booking_id = row.booking.id, answer = %answer["status"], "the charger did not reserve");
            "rejected"
        }
        Ok(Err(error)) => {
            tracing::info!(booking_id = row.booking.id, %error, "ReserveNow not carried out; Kilowatt holds the connector");
            "unsupported"
        }
        Err(error) => {
            tracing::warn!(booking_id = row.booking.id, %error, "registry unavailable for ReserveNow");
            "unsupported"
        }
    }
}

/// Ends the booking's hold if it still holds (as `status`), with CancelReservation when the
/// charger had accepted it and `tell_charger`. Answers whether a hold was released.
async fn release_hold(
    env: &BookingEnv,
    row: &BookingRow,
    status: &str,
    tell_charger: bool,
) -> Result<bool, StoreError> {
    let mut conn = pool::connection(&env.pool).await?;
    let Some(hold) = bookings::hold_of(&mut conn, row.booking.id).await? else { return Ok(false) };
    if !bookings::release_hold(&mut conn, hold.id, status, env.clock.now()).await? {
        return Ok(false);
    }
    drop(conn);
    if tell_charger && hold.status == "accepted" {
        let request = CentralSystemRequest::from_action("CancelReservation", &json!({ "reservationId": hold.id }));
        match request {
            Ok(request) => {
                let command = CommandCharger { charge_point_id: row.charge_point_id.clone(), request };
                let answer = env.registry.send(command).await;
                let accepted = matches!(&answer, Ok(Ok(a)) if a["status"] == "Accepted");
                if !accepted {
                    // The charger's own reservation lapses at its expiry anyway.
                    tracing::info!(booking_id = row.booking.id, ?answer, "CancelReservation not accepted");
                }
            }
            Err(error) => tracing::error!(booking_id = row.booking.id, ?error, "could not build CancelReservation"),
        }
    }
    Ok(true)
}

/// Tells the driver's apps and the charger's watchers that a booking changed
/// (`bookingUpdated` on `user:{id}` and `charger:{chargePointId}`).
pub fn publish(bus: &Bus, row: &BookingRow, booking: &bookings::Booking) {
    let data = json!({
        "bookingId": booking.id,
        "status": booking.status,
        "chargePointId": row.charge_point_id,
        "connectorId": row.connector_number,
        "startAt": booking.start_at,
        "endAt": booking.end_at,
        "graceEndsAt": booking.grace_ends_at,
    });
    bus.publish(user_topic(booking.user_id), "bookingUpdated", data.clone());
    bus.publish(charger_topic(&row.charge_point_id), "bookingUpdated", data);
}

/// Gives a connector a booking no longer holds to the charger's queue.
pub fn release_to_queue(registry: &Addr<Registry>, charge_point_id: &str, connector_number: i32) {
    registry.do_send(ConnectorFreed { charge_point_id: charge_point_id.to_owned(), connector_number });
}

fn at(time: DateTime<Utc>) -> String {
    time.format("%d %b %Y, %H:%M UTC").to_string()
}

fn clock_time(time: DateTime<Utc>) -> String {
    time.format("%H:%M UTC").to_string()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

struct Place {
    station: String,
    address: String,
    charger: String,
    driver: String,
    link: String,
}

fn place(settings: &BookingSettings, row: &BookingRow) -> Place {
    let station = row.station.as_ref().map_or_else(|| "your station".to_owned(), |s| s.name.clone());
    let address = row.station.as_ref().map(|s| s.address.clone()).unwrap_or_default();
    Place {
        station,
        address,
        charger: format!("charger {}, connector {}", row.charge_point_id, row.connector_number),
        driver: row.driver_name.clone().unwrap_or_else(|| row.username.clone()),
        link: format!("{}/bookings/{}", settings.public_url.trim_end_matches('/'), row.booking.id),
    }
}

fn rupees(amount: Decimal) -> String {
    format!("₹{}", amount.round_dp(2))
}

/// The slot-start message: the grace countdown, where, how to check in, the no-refund policy.
pub fn slot_started_message(settings: &BookingSettings, row: &BookingRow, booking: &bookings::Booking) -> Notify {
    let p = place(settings, row);
    let minutes = settings.grace_period.num_minutes();
    let grace_ends_at = booking.grace_ends_at.unwrap_or(booking.start_at + settings.grace_period);
    let fee = rupees(booking.fee);
    let where_ = if p.address.is_empty() { p.station.clone() } else { format!("{}, {}", p.station, p.address) };
    let subject = format!("Your charging slot at {} has started: check in within {minutes} minutes", p.station);
    let text = format!(
        "Hello {driver},\n\n\
         Your booked charging slot has started. You have {minutes} minutes to check in: until {grace_end}.\n\n\
         Station: {where_}\n\
         Where: {charger}\n\
         Slot: {start} to {end}\n\n\
         How to check in:\n\
         - in the Kilowatt app, open your booking and tap Check in, or\n\
         - scan the QR code on the charger.\n\
         Your booking: {link}\n\n\
         The connector is reserved for you until you check in or the grace period ends.\n\n\
         No-refund policy: if you have not checked in by {grace_end}, the booking expires, the connector \
         goes to other drivers and the booking fee of {fee} is not refunded.",
        driver = p.driver,
        grace_end = at(grace_ends_at),
        charger = p.charger,
        start = at(booking.start_at),
        end = at(booking.end_at),
        link = p.link,
    );
    let html = format!(
        "<p style=\"margin:0 0 12px;\">Hello {driver},</p>\
         <p style=\"margin:0 0 12px;\">Your booked charging slot has started.</p>\
         <p style=\"margin:0 0 16px;padding:12px 16px;background:#fff4e5;border-radius:6px;font-size:17px;\">\
         <strong>{minutes} minutes</strong> to check in: until <strong>{grace_end}</strong></p>\
         <table role=\"presentation\" cellspacing=\"0\" cellpadding=\"0\" style=\"margin:0 0 16px;\">\
         <tr><td style=\"padding:2px 12px 2px 0;color:#7b8794;\">Station</td><td>{where_}</td></tr>\
         <tr><td style=\"padding:2px 12px 2px 0;color:#7b8794;\">Where</td><td>{charger}</td></tr>\
         <tr><td style=\"padding:2px 12px 2px 0;color:#7b8794;\">Slot</td><td>{start} to {end}</td></tr></table>\
         <p style=\"margin:0 0 8px;\"><strong>How to check in:</strong> open your booking in the Kilowatt app and tap \
         <em>Check in</em>, or scan the QR code on the charger.</p>\
         <p style=\"margin:0 0 16px;\"><a href=\"{link}\" style=\"display:inline-block;padding:10px 18px;background:#0b7a43;\
         color:#ffffff;border-radius:6px;text-decoration:none;font-weight:600;\">Check in now</a></p>\
         <p style=\"margin:0 0 12px;\">The connector is reserved for you until you check in or the grace period ends.</p>\
         <p style=\"margin:0 0 12px;color:#b42318;\"><strong>No-refund policy:</strong> if you have not checked in by \
         {grace_end}, the booking expires, the connector goes to other drivers and the booking fee of {fee} is not \
         refunded.</p>",
        driver = escape(&p.driver),
        grace_end = escape(&at(grace_ends_at)),
        where_ = escape(&where_),
        charger = escape(&p.charger),
        start = escape(&at(booking.start_at)),
        end = escape(&at(booking.end_at)),
        link = escape(&p.link),
        fee = escape(&fee),
    );
    let sms = format!(
        "Kilowatt: your slot at {} ({} #{}) has started. Check in within {minutes} min (by {}) in the app or by \
         scanning the charger's QR code, or the booking expires and the {fee} fee is not refunded.",
        p.station,
        row.charge_point_id,
        row.connector_number,
        clock_time(grace_ends_at),
    );
    Notify {
        user_id: booking.user_id,
        kind: "booking_slot_started".to_owned(),
        subject,
        text,
        html: Some(html),
        sms: Some(sms),
        booking_id: Some(booking.id),
        session_id: None,
    }
}

/// The expiry message: what happened, the no-refund policy, and how to do better next time.
pub fn expired_message(settings: &BookingSettings, row: &BookingRow, booking: &bookings::Booking) -> Notify {
    let p = place(settings, row);
    let minutes = settings.grace_period.num_minutes();
    let cutoff = settings.refund_cutoff.num_minutes();
    let grace_ends_at = booking.grace_ends_at.unwrap_or(booking.start_at + settings.grace_period);
    let fee = rupees(booking.fee);
    let subject = format!("Your booking at {} has expired", p.station);
    let text = format!(
        "Hello {driver},\n\n\
         We are sorry we missed you. Your charging slot at {station} ({charger}) started at {start}, and the \
         {minutes}-minute grace period ended at {grace_end} without a check-in, so the booking has expired and \
         the connector has been released to other drivers.\n\n\
         As stated when you booked, the booking fee of {fee} is not refunded for a missed slot.\n\n\
         Next time:\n\
         - book a slot that leaves you time to get there; we tell you when it starts;\n\
         - check in as soon as you arrive, in the app or by scanning the charger's QR code;\n\
         - if your plans change, cancel at least {cutoff} minutes before the slot for a full refund.\n\n\
         Your booking: {link}",
        driver = p.driver,
        station = p.station,
        charger = p.charger,
        start = at(booking.start_at),
        grace_end = at(grace_ends_at),
        link = p.link,
    );
    let html = format!(
        "<p style=\"margin:0 0 12px;\">Hello {driver},</p>\
         <p style=\"margin:0 0 12px;\">We are sorry we missed you. Your charging slot at <strong>{station}</strong> \
         ({charger}) started at {start}, and the {minutes}-minute grace period ended at {grace_end} without a \
         check-in, so the booking has expired and the connector has been released to other drivers.</p>\
         <p style=\"margin:0 0 12px;\">As stated when you booked, the booking fee of <strong>{fee}</strong> is not \
         refunded for a missed slot.</p>\
         <p style=\"margin:0 0 8px;\"><strong>Next time</strong></p>\
         <ul style=\"margin:0 0 12px;padding-left:20px;\">\
         <li>Book a slot that leaves you time to get there; we tell you when it starts.</li>\
         <li>Check in as soon as you arrive, in the app or by scanning the charger's QR code.</li>\
         <li>If your plans change, cancel at least {cutoff} minutes before the slot for a full refund.</li></ul>\
         <p style=\"margin:0 0 12px;\"><a href=\"{link}\" style=\"color:#0b7a43;\">See your booking</a></p>",
        driver = escape(&p.driver),
        station = escape(&p.station),
        charger = escape(&p.charger),
        start = escape(&at(booking.start_at)),
        grace_end = escape(&at(grace_ends_at)),
        fee = escape(&fee),
        link = escape(&p.link),
    );
    let sms = format!(
        "Kilowatt: no check-in by {}, so your booking at {} has expired and the {fee} fee is not refunded. \
         Cancel at least {cutoff} min ahead next time for a full refund.",
        clock_time(grace_ends_at),
        p.station,
    );
    Notify {
        user_id: booking.user_id,
        kind: "booking_expired".to_owned(),
        subject,
        text,
        html: Some(html),
        sms: Some(sms),
        booking_id: Some(booking.id),
        session_id: None,
    }
}
