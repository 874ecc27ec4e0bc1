//! The QueueActor: one per charger with drivers waiting. When a connector frees up, the first
//! driver waiting for it is told at once (live on the bus and by notification) and the
//! connector is held for them for a while — with OCPP ReserveNow where the charger supports it,
//! and by Kilowatt itself refusing anyone else's start. Starting in time consumes the hold;
//! when it lapses the next driver advances. Queues are rebuilt from the database at start-up.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use chrono::{Duration, SecondsFormat};
use serde_json::json;

use crate::bus::{Bus, charger_topic, user_topic};
use crate::clock::Clock;
use crate::notifier::{Notifier, Notify};
use crate::ocpp::CentralSystemRequest;
use crate::registry::{CommandCharger, Registry};
use crate::store::bookings;
use crate::store::queue::{self, QueueEntry};
use crate::store::reservations::{self, NewHold};
use crate::store::{DbPool, StoreError, pool};

/// What every queue actor shares.
pub struct QueueEnv {
    /// The database.
    pub pool: DbPool,
    /// Where time comes from.
    pub clock: Clock,
    /// Live updates.
    pub bus: Bus,
    /// Email and SMS.
    pub notifier: Addr<Notifier>,
    /// How long a freed connector is held for the next driver.
    pub hold: Duration,
}

/// Something that concerns a charger's queue.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub enum QueueEvent {
    /// Entries changed (joined, left, started): reload, and hand out any free connector.
    Changed,
    /// A connector may have freed up (a session settled, the charger reported Available).
    ConnectorFreed(i32),
}

/// A charger's queue.
pub struct QueueActor {
    charge_point_id: String,
    env: Arc<QueueEnv>,
    registry: Addr<Registry>,
    lapses: HashMap<i64, SpawnHandle>,
    /// What this queue adds to the `kilowatt_queue_entries` gauge: (waiting, held).
    counted: (f64, f64),
}

impl QueueActor {
    /// The queue of `charge_point_id`.
    pub fn new(charge_point_id: String, env: Arc<QueueEnv>, registry: Addr<Registry>) -> Self {
        QueueActor { charge_point_id, env, registry, lapses: HashMap::new(), counted: (0.0, 0.0) }
    }

    /// Brings this queue's share of the `kilowatt_queue_entries{status}` gauge up to date.
    fn count_entries(&mut self, entries: &[QueueEntry]) {
        let waiting = entries.iter().filter(|e| e.status == "waiting").count() as f64;
        let held = entries.len() as f64 - waiting;
        let (was_waiting, was_held) = std::mem::replace(&mut self.counted, (waiting, held));
        metrics::gauge!("kilowatt_queue_entries", "status" => "waiting").increment(waiting - was_waiting);
        metrics::gauge!("kilowatt_queue_entries", "status" => "held").increment(held - was_held);
    }

    /// Reloads entries, re-arms the lapse timers of holds, and offers every free connector.
    fn refresh(&mut self, ctx: &mut Context<Self>, only: Option<i32>) {
        let env = self.env.clone();
        let registry = self.registry.clone();
        let charge_point_id = self.charge_point_id.clone();
        ctx.wait(
            async move {
                let mut conn = pool::connection(&env.pool).await?;
                let Some((charger_id, connectors)) = queue::charger_connectors(&mut conn, &charge_point_id).await?
                else {
                    return Ok(Vec::new());
                };
                drop(conn);
                for connector in connectors.into_iter().filter(|c| only.is_none_or(|o| o == *c)) {
                    advance(&env, &registry, &charge_point_id, charger_id, connector).await?;
                }
                let mut conn = pool::connection(&env.pool).await?;
                queue::live_for_charger(&mut conn, charger_id).await
            }
            .into_actor(self)
            .map(|result, act, ctx| match result {
                Ok(entries) => {
                    act.count_entries(&entries);
                    act.arm_lapses(ctx, &entries);
                }
                Err(error) => tracing::warn!(charge_point_id = %act.charge_point_id, %error, "queue refresh failed"),
            }),
        );
    }

    fn arm_lapses(&mut self, ctx: &mut Context<Self>, entries: &[QueueEntry]) {
        for entry in entries {
            let (Some(until), Some(connector)) = (entry.held_until, entry.held_connector) else { continue };
            if self.lapses.contains_key(&entry.id) {
                continue;
            }
            let clock = self.env.clock.clone();
            let entry_id = entry.id;
            let handle =
                ctx.spawn(async move { clock.sleep_until(until).await }.into_actor(self).map(move |(), act, ctx| {
                    act.lapses.remove(&entry_id);
                    act.lapse(ctx, entry_id, connector);
                }));
            self.lapses.insert(entry.id, handle);
        }
        if entries.is_empty() && self.lapses.is_empty() {
            ctx.stop();
        }
    }

    fn lapse(&mut self, ctx: &mut Context<Self>, entry_id: i64, connector: i32) {
        let env = self.env.clone();
        let registry = self.registry.clone();
        let charge_point_id = self.charge_point_id.clone();
        ctx.wait(
            async move {
                let now = env.clock.now();
                let mut conn = pool::connection(&env.pool).await?;
                if !queue::finish(&mut conn, entry_id, "lapsed", now).await? {
                    return Ok(None);
                }
                let hold = reservations::for_queue_entry(&mut conn, entry_id).await?;
                if let Some(hold) = &hold {
                    reservations::set_status(&mut conn, hold.id, "expired", now).await?;
                }
                drop(conn);
                if let Some(hold) = hold.filter(|h| h.status == "accepted") {
                    cancel_reservation(&registry, &charge_point_id, hold.id).await;
                }
                Ok::<_, StoreError>(Some(entry_id))
            }
            .into_actor(self)
            .map(move |result, act, ctx| match result {
                Ok(Some(entry_id)) => {
                    tracing::info!(charge_point_id = %act.charge_point_id, entry_id, connector, "queue hold lapsed");
                    act.refresh(ctx, Some(connector));
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(charge_point_id = %act.charge_point_id, %error, "queue lapse failed"),
            }),
        );
    }
}

/// Gives a free connector to the first driver waiting for it: holds it, reserves it on the
/// charger, and tells the driver. Answers the hold, if one was given.
async fn advance(
    env: &QueueEnv,
    registry: &Addr<Registry>,
    charge_point_id: &str,
    charger_id: i64,
    connector: i32,
) -> Result<bool, StoreError> {
    let now = env.clock.now();
    let mut conn = pool::connection(&env.pool).await?;
    if !queue::connector_free(&mut conn, charger_id, connector).await?
        || reservations::holding(&mut conn, charger_id, connector, now).await?.is_some()
        // A booked slot that begins within the hold (plus a typical session) keeps its connector.
        || bookings::starts_before(&mut conn, charger_id, connector, now, now + env.hold + Duration::minutes(30)).await?
    {
        return Ok(false);
    }
    let entries = queue::live_for_charger(&mut conn, charger_id).await?;
    let Some(next) =
        entries.iter().find(|e| e.status == "waiting" && e.connector_number.is_none_or(|c| c == connector)).cloned()
    else {
        return Ok(false);
    };
    let until = now + env.hold;
    if !queue::hold(&mut conn, next.id, connector, until).await? {
        return Ok(false);
    }
    let id_tag = queue::id_tag(&mut conn, next.user_id).await?;
    let hold = NewHold {
        charger_id,
        connector_number: connector,
        id_tag: &id_tag,
        user_id: next.user_id,
        booking_id: None,
        queue_entry_id: Some(next.id),
        expires_at: until,
    };
    let reservation = reservations::create(&mut conn, &hold, now).await?;
    drop(conn);

    let payload = json!({
        "connectorId": connector,
        "expiryDate": until.to_rfc3339_opts(SecondsFormat::Secs, true),
        "idTag": id_tag,
        "reservationId": reservation.id,
    });
    let status = match CentralSystemRequest::from_action("ReserveNow", &payload) {
        Ok(request) => {
            let answer = registry.send(CommandCharger { charge_point_id: charge_point_id.to_owned(), request }).await;
            match answer {
                Ok(Ok(answer)) if answer["status"] == "Accepted" => "accepted",
                Ok(Ok(_)) => "rejected",
                _ => "unsupported",
            }
        }
        Err(_) => "unsupported",
    };
    // Whatever the charger said, Kilowatt holds the connector: nobody else can start on it.
    let status = if status == "rejected" { "unsupported" } else { status };
    let mut conn = pool::connection(&env.pool).await?;
    let recorded = reservations::settle_requested(&mut conn, reservation.id, status, env.clock.now()).await?;
    drop(conn);
    if !recorded {
        // Released while the charger was answering (the driver left): the charger must not
        // keep a reservation Kilowatt no longer holds.
        if status == "accepted" {
            cancel_reservation(registry, charge_point_id, reservation.id).await;
        }
        return Ok(false);
    }

    let minutes = env.hold.num_minutes();
    let data = json!({
        "chargePointId": charge_point_id,
        "connectorId": connector,
        "heldUntil": until,
        "entryId": next.id,
    });
    env.bus.publish(user_topic(next.user_id), "queueTurn", data.clone());
    env.bus.publish(charger_topic(charge_point_id), "queueAdvanced", data);
    env.notifier.do_send(Notify {
        user_id: next.user_id,
        kind: "queue_turn".into(),
        subject: format!("Your turn at {charge_point_id}"),
        text: format!(
            "Connector {connector} of charger {charge_point_id} is free and held for you for {minutes} minutes. \
             Start charging before it is released to the next driver."
        ),
        html: None,
        sms: Some(format!("Kilowatt: your turn at {charge_point_id} connector {connector}. Held {minutes} min.")),
        booking_id: None,
        session_id: None,
    });
    tracing::info!(charge_point_id, connector, entry_id = next.id, user_id = next.user_id, %until, "queue advanced");
    Ok(true)
}

async fn cancel_reservation(registry: &Addr<Registry>, charge_point_id: &str, reservation_id: i32) {
    if let Ok(request) =
        CentralSystemRequest::from_action("CancelReservation", &json!({ "reservationId": reservation_id }))
    {
        let _ = registry.send(CommandCharger { charge_point_id: charge_point_id.to_owned(), request }).await;
    }
}

impl Actor for QueueActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(256);
        self.refresh(ctx, None);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.count_entries(&[]);
        self.registry.do_send(crate::registry::QueueClosed(self.charge_point_id.clone()));
    }
}

impl Handler<QueueEvent> for QueueActor {
    type Result = ();

    fn handle(&mut self, event: QueueEvent, ctx: &mut Self::Context) {
        match event {
            QueueEvent::Changed => {
                // Holds that were given up (the driver left or started) must not lapse later.
                for (_, handle) in self.lapses.drain() {
                    ctx.cancel_future(handle);
                }
                self.refresh(ctx, None);
            }
            QueueEvent::ConnectorFreed(connector) => self.refresh(ctx, Some(connector)),
        }
    }
}

impl Handler<crate::registry::StopActor> for QueueActor {
    type Result = ();

    fn handle(&mut self, _msg: crate::registry::StopActor, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
