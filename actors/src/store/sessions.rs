//! Queries on `charging_sessions`: authorizing id tags, starting transactions (a retransmitted
//! StartTransaction maps onto the transaction it created), and settling a session exactly once
//! — closing it at its latest stored reading, debiting the wallet and recording the owner's
//! revenue in one database transaction. Meter readings are stored by [`super::meters`].

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Integer;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use super::StoreError;
use super::chargers;
use super::revenue;
use super::schema::{
    chargers as chargers_t, charging_sessions, connectors, meter_readings, rfid_cards, stations, users,
};
use super::wallets::{self, Entry};
use crate::billing;

/// The outcome of looking up an idTag, in OCPP's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTagDecision {
    /// Accepted, Blocked, Expired, Invalid or ConcurrentTx.
    pub status: &'static str,
    /// The driver it belongs to, when known.
    pub user_id: Option<i64>,
    /// The driver's own idTag, given as parentIdTag for their RFID cards.
    pub parent_id_tag: Option<String>,
    /// When the card expires, if it does.
    pub expiry: Option<DateTime<Utc>>,
}

impl IdTagDecision {
    fn invalid() -> Self {
        Self { status: "Invalid", user_id: None, parent_id_tag: None, expiry: None }
    }
}

use super::sql::upper;

/// Looks an idTag up: a driver's own tag, or one of their RFID cards.
pub async fn authorize_id_tag(
    conn: &mut AsyncPgConnection,
    id_tag: &str,
    now: DateTime<Utc>,
) -> Result<IdTagDecision, StoreError> {
    let driver: Option<i64> =
        users::table.filter(upper(users::id_tag).eq(upper(id_tag))).select(users::id).first(conn).await.optional()?;
    if let Some(user_id) = driver {
        return Ok(IdTagDecision { status: "Accepted", user_id: Some(user_id), parent_id_tag: None, expiry: None });
    }
    let card: Option<(i64, bool, Option<DateTime<Utc>>, String)> = rfid_cards::table
        .inner_join(users::table)
        .filter(upper(rfid_cards::id_tag).eq(upper(id_tag)))
        .select((rfid_cards::user_id, rfid_cards::blocked, rfid_cards::expires_at, users::id_tag))
        .first(conn)
        .await
        .optional()?;
    Ok(match card {
        None => IdTagDecision::invalid(),
        Some((user_id, blocked, expiry, parent)) => {
            let status = if blocked {
                "Blocked"
            } else if expiry.is_some_and(|at| at <= now) {
                "Expired"
            } else {
                "Accepted"
            };
            IdTagDecision { status, user_id: Some(user_id), parent_id_tag: Some(parent), expiry }
        }
    })
}

/// Whether the driver has a session under way (pending or active).
pub async fn has_open_session(conn: &mut AsyncPgConnection, user_id: i64) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        charging_sessions::table
            .filter(charging_sessions::user_id.eq(user_id))
            .filter(charging_sessions::status.eq_any(["pending", "active"])),
    ))
    .get_result(conn)
    .await?)
}

/// A StartTransaction from a charger.
#[derive(Debug, Clone)]
pub struct StartInput {
    /// The charger's row.
    pub charger_id: i64,
    /// Connector number.
    pub connector_number: i32,
    /// The idTag presented.
    pub id_tag: String,
    /// Meter reading at start, Wh.
    pub meter_start: i64,
    /// The charger's timestamp (in the past when it was offline).
    pub timestamp: DateTime<Utc>,
}

/// What the central system answers a StartTransaction with.
#[derive(Debug, Clone)]
pub struct StartOutcome {
    /// The session.
    pub session_id: i64,
    /// The OCPP transaction ID.
    pub transaction_id: i32,
    /// The idTag's authorization.
    pub decision: IdTagDecision,
    /// True when this was a retransmission of a StartTransaction already recorded.
    pub retransmission: bool,
    /// Sessions on the connector that this start superseded (settled as failed).
    pub superseded: Vec<i64>,
}

#[derive(Queryable)]
struct OpenSession {
    id: i64,
    user_id: Option<i64>,
    status: String,
}

/// Records a StartTransaction: maps a retransmission onto its transaction, turns a pending
/// remote start on the connector into the active transaction, or creates a new one. An idTag
/// that is not Accepted still gets a transaction (the charger needs an ID to stop it), recorded
/// without a driver and never billed.
pub async fn start_transaction(
    conn: &mut AsyncPgConnection,
    input: &StartInput,
    now: DateTime<Utc>,
) -> Result<StartOutcome, StoreError> {
    let input = input.clone();
    conn.transaction::<_, StoreError, _>(async move |conn| record_start(conn, &input, now).await).await
}

/// [`start_transaction`] in the caller's transaction (a group commit of many chargers' starts).
pub async fn record_start(
    conn: &mut AsyncPgConnection,
    input: &StartInput,
    now: DateTime<Utc>,
) -> Result<StartOutcome, StoreError> {
    let connector = chargers::connector_id(conn, input.charger_id, input.connector_number).await?;
    let previous: Option<(i64, Option<i32>, Option<i64>)> = charging_sessions::table
        .filter(charging_sessions::connector_id.eq(connector))
        .filter(upper(charging_sessions::id_tag).eq(upper(&input.id_tag)))
        .filter(charging_sessions::meter_start_wh.eq(input.meter_start))
        .filter(charging_sessions::started_at.eq(input.timestamp))
        // The fingerprint index's own conditions, so it is used (without them: a scan of every
        // session for every start).
        .filter(charging_sessions::source.ne("manual"))
        .filter(charging_sessions::transaction_id.is_not_null())
        .select((charging_sessions::id, charging_sessions::transaction_id, charging_sessions::user_id))
        .first(conn)
        .await
        .optional()?;
    if let Some((session_id, Some(transaction_id), user_id)) = previous {
        let mut decision = authorize_id_tag(conn, &input.id_tag, now).await?;
        if user_id.is_none() && decision.status == "Accepted" {
            decision.status = "ConcurrentTx";
        }
        return Ok(StartOutcome { session_id, transaction_id, decision, retransmission: true, superseded: vec![] });
    }

    let mut decision = authorize_id_tag(conn, &input.id_tag, now).await?;
    let open: Vec<OpenSession> = charging_sessions::table
        .filter(charging_sessions::connector_id.eq(connector))
        .filter(charging_sessions::status.eq_any(["pending", "active"]))
        .select((charging_sessions::id, charging_sessions::user_id, charging_sessions::status))
        .load(conn)
        .await?;
    // A remote start for this driver waiting on this connector becomes the transaction.
    if let Some(pending) =
        open.iter().find(|s| s.status == "pending" && s.user_id.is_some() && s.user_id == decision.user_id)
    {
        let transaction_id: i32 = diesel::update(charging_sessions::table.find(pending.id))
            .set((
                charging_sessions::transaction_id.eq(diesel::dsl::sql::<diesel::sql_types::Nullable<Integer>>(
                    "nextval('ocpp_transaction_id_seq')::int",
                )),
                charging_sessions::status.eq("active"),
                charging_sessions::id_tag.eq(&input.id_tag),
                charging_sessions::meter_start_wh.eq(input.meter_start),
                charging_sessions::meter_last_wh.eq(input.meter_start),
                charging_sessions::started_at.eq(input.timestamp),
                charging_sessions::updated_at.eq(now),
            ))
            .returning(charging_sessions::transaction_id.assume_not_null())
            .get_result(conn)
            .await?;
        return Ok(StartOutcome {
            session_id: pending.id,
            transaction_id,
            decision,
            retransmission: false,
            superseded: vec![],
        });
    }
    // Anything else still open on this connector is stale: the charger has moved on.
    let mut superseded = Vec::new();
    for stale in &open {
        let reason = "Superseded: the charger started a new transaction on this connector";
        settle(conn, stale.id, &Settle::failed_or_billed(now, reason), now).await?;
        superseded.push(stale.id);
    }
    if decision.status == "Accepted"
        && let Some(user_id) = decision.user_id
    {
        // Two chargers starting for one driver at once: the driver's row serialises them,
        // so the second sees the first's session and is answered ConcurrentTx. (NO KEY: the
        // lock must not wait on the ledger rows other transactions add for this driver.)
        users::table.find(user_id).select(users::id).for_no_key_update().first::<i64>(conn).await?;
        if has_open_session(conn, user_id).await? {
            decision.status = "ConcurrentTx";
        }
    }
    let billable_user = if decision.status == "Accepted" { decision.user_id } else { None };
    let (station_id, price): (Option<i64>, Option<Decimal>) = chargers_t::table
        .left_join(stations::table)
        .filter(chargers_t::id.eq(input.charger_id))
        .select((chargers_t::station_id, stations::price_per_kwh.nullable()))
        .first(conn)
        .await?;
    let (session_id, transaction_id): (i64, i32) = diesel::insert_into(charging_sessions::table)
        .values((
            charging_sessions::user_id.eq(billable_user),
            charging_sessions::charger_id.eq(input.charger_id),
            charging_sessions::connector_id.eq(connector),
            charging_sessions::station_id.eq(station_id),
            charging_sessions::transaction_id.eq(diesel::dsl::sql::<diesel::sql_types::Nullable<Integer>>(
                "nextval('ocpp_transaction_id_seq')::int",
            )),
            charging_sessions::id_tag.eq(&input.id_tag),
            charging_sessions::source.eq("charger"),
            charging_sessions::status.eq("active"),
            charging_sessions::price_per_kwh.eq(price.unwrap_or_default()),
            charging_sessions::meter_start_wh.eq(input.meter_start),
            charging_sessions::meter_last_wh.eq(input.meter_start),
            charging_sessions::requested_at.eq(now),
            charging_sessions::started_at.eq(input.timestamp),
        ))
        .returning((charging_sessions::id, charging_sessions::transaction_id.assume_not_null()))
        .get_result(conn)
        .await?;
    Ok(StartOutcome { session_id, transaction_id, decision, retransmission: false, superseded })
}

/// How a session ends.
#[derive(Debug, Clone)]
pub struct Settle {
    /// When it ended.
    pub ended_at: DateTime<Utc>,
    /// The final meter reading, if the charger sent one.
    pub meter_stop: Option<i64>,
    /// completed, cancelled or failed.
    pub status: &'static str,
    /// Why, in words.
    pub stop_reason: String,
    /// OCPP's Reason, if the charger gave one.
    pub ocpp_reason: Option<String>,
}

impl Settle {
    /// Ends a session the charger will not finish: billed for what the meter last showed.
    pub fn failed_or_billed(at: DateTime<Utc>, reason: &str) -> Self {
        Self { ended_at: at, meter_stop: None, status: "completed", stop_reason: reason.to_string(), ocpp_reason: None }
    }
}

/// What settlement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Closed now, with this energy and cost.
    Settled {
        /// The session.
        session_id: i64,
        /// Billed energy, Wh.
        energy_wh: i64,
        /// Amount debited.
        cost: Decimal,
        /// The meter went backwards.
        meter_fault: bool,
    },
    /// It had been settled before; nothing changed.
    AlreadySettled,
}

#[derive(Queryable)]
struct SessionForSettle {
    user_id: Option<i64>,
    connector_id: i64,
    station_id: Option<i64>,
    status: String,
    price_per_kwh: Decimal,
    meter_start_wh: Option<i64>,
    meter_last_wh: Option<i64>,
    energy_wh: i64,
    started_at: Option<DateTime<Utc>>,
    requested_at: DateTime<Utc>,
    settled_at: Option<DateTime<Utc>>,
    stop_reason: Option<String>,
}

/// Settles a session exactly once, in the caller's transaction (or its own): closes it, debits
/// the driver's wallet with a ledger entry referencing the session, and records the owner's
/// revenue. A second call answers `AlreadySettled` and changes nothing.
pub async fn settle(
    conn: &mut AsyncPgConnection,
    session_id: i64,
    how: &Settle,
    now: DateTime<Utc>,
) -> Result<Settlement, StoreError> {
    let how = how.clone();
    conn.transaction::<_, StoreError, _>(async move |conn| {
        let session: SessionForSettle = charging_sessions::table
            .find(session_id)
            .for_update()
            .select((
                charging_sessions::user_id,
                charging_sessions::connector_id,
                charging_sessions::station_id,
                charging_sessions::status,
                charging_sessions::price_per_kwh,
                charging_sessions::meter_start_wh,
                charging_sessions::meter_last_wh,
                charging_sessions::energy_wh,
                charging_sessions::started_at,
                charging_sessions::requested_at,
                charging_sessions::settled_at,
                charging_sessions::stop_reason,
            ))
            .first(conn)
            .await?;
        if session.settled_at.is_some() {
            return Ok(Settlement::AlreadySettled);
        }
        let meter_start = session.meter_start_wh.unwrap_or(0);
        let metered: bool =
            connectors::table.find(session.connector_id).select(connectors::metered).first(conn).await?;
        // The meter as its latest stored reading left it: the session's running totals may lag
        // behind it by a few seconds (see `meters::record_meter_batch`). Readings stored before their
        // register had a column of its own have none; their session's totals are exact.
        let last_register = if metered && how.meter_stop.is_none_or(|stop| stop < meter_start) {
            latest_register(conn, session_id, meter_start).await?
        } else {
            None
        };
        let last_good = match last_register.or(session.meter_last_wh) {
            Some(last) => (last - meter_start).max(0),
            None => session.energy_wh,
        };
        let (energy_wh, meter_fault) = match how.meter_stop {
            // The owner marked this connector as not metered: the app's energy (or the estimate
            // from battery levels) is what was delivered.
            _ if !metered => (session.energy_wh, false),
            Some(stop) if stop >= meter_start => (stop - meter_start, false),
            // A meter that runs backwards is a fault: bill what the last good reading showed.
            Some(_) => (last_good, true),
            None => (last_good, false),
        };
        // A session that never started (a remote start the charger never confirmed) ends failed.
        let status = if session.status == "pending" { "failed" } else { how.status };
        let energy_wh = if status == "failed" && session.started_at.is_none() { 0 } else { energy_wh };
        let cost =
            if session.user_id.is_some() { billing::cost(energy_wh, session.price_per_kwh) } else { Decimal::ZERO };
        let started = session.started_at.unwrap_or(session.requested_at);
        let ended_at = how.ended_at.max(started);
        let seconds = (ended_at - started).num_seconds().max(0);
        diesel::update(charging_sessions::table.find(session_id))
            .set((
                charging_sessions::status.eq(status),
                charging_sessions::ended_at.eq(ended_at),
                charging_sessions::duration_seconds.eq(i32::try_from(seconds).unwrap_or(i32::MAX)),
                charging_sessions::energy_wh.eq(energy_wh),
                charging_sessions::meter_stop_wh.eq(how.meter_stop),
                charging_sessions::average_power_w.eq(billing::average_power_w(energy_wh, seconds)),
                charging_sessions::cost.eq(cost),
                // A reason recorded when the stop was asked for (prepaid limit, owner) wins.
                charging_sessions::stop_reason.eq(session.stop_reason.as_ref().unwrap_or(&how.stop_reason)),
                charging_sessions::ocpp_stop_reason.eq(&how.ocpp_reason),
                charging_sessions::meter_fault.eq(meter_fault),
                charging_sessions::settled_at.eq(now),
                charging_sessions::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        if let Some(user_id) = session.user_id
            && cost > Decimal::ZERO
        {
            wallets::apply(
                conn,
                &Entry {
                    user_id,
                    amount: -cost,
                    kind: "charging",
                    description: "Charging session payment",
                    reference_kind: "session",
                    reference_id: session_id,
                },
            )
            .await?;
            if let Some(station_id) = session.station_id {
                revenue::record_session(conn, station_id, session_id, "charging", cost, energy_wh, now).await?;
            }
        }
        Ok(Settlement::Settled { session_id, energy_wh, cost, meter_fault })
    })
    .await
}

/// The energy register of a session's latest stored reading (in the order they were stored)
/// that is not below the session's meter start, if any.
async fn latest_register(
    conn: &mut AsyncPgConnection,
    session_id: i64,
    meter_start: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(meter_readings::table
        .filter(meter_readings::session_id.eq(session_id))
        .filter(meter_readings::energy_register_wh.ge(meter_start))
        .order(meter_readings::id.desc())
        .select(meter_readings::energy_register_wh)
        .first::<Option<i64>>(conn)
        .await
        .optional()?
        .flatten())
}

/// A StopTransaction from a charger.
#[derive(Debug, Clone)]
pub struct StopInput {
    /// The charger's row.
    pub charger_id: i64,
    /// The transaction.
    pub transaction_id: i32,
    /// Final meter reading, Wh.
    pub meter_stop: i64,
    /// When it stopped (charger's time).
    pub timestamp: DateTime<Utc>,
    /// OCPP Reason.
    pub reason: Option<String>,
}

/// What a StopTransaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    /// No such transaction on this charger: recorded in the message log, answered normally.
    Unknown,
    /// The session was settled by this stop (or had been before).
    Known {
        /// The session.
        session_id: i64,
        /// What settlement did.
        settlement: Settlement,
    },
}

/// Records a StopTransaction and settles its session (exactly once).
pub async fn stop_transaction(
    conn: &mut AsyncPgConnection,
    input: &StopInput,
    now: DateTime<Utc>,
) -> Result<StopOutcome, StoreError> {
    let session: Option<i64> = charging_sessions::table
        .filter(charging_sessions::transaction_id.eq(input.transaction_id))
        .filter(charging_sessions::charger_id.eq(input.charger_id))
        .select(charging_sessions::id)
        .first(conn)
        .await
        .optional()?;
    let Some(session_id) = session else { return Ok(StopOutcome::Unknown) };
    let how = Settle {
        ended_at: input.timestamp,
        meter_stop: Some(input.meter_stop),
        status: "completed",
        stop_reason: match input.reason.as_deref() {
            None | Some("Local") => "Stopped at the charger".to_string(),
            Some("Remote") => "Stopped remotely".to_string(),
            Some("EVDisconnected") => "Vehicle disconnected".to_string(),
            Some(other) => format!("Stopped by the charger ({other})"),
        },
        ocpp_reason: input.reason.clone(),
    };
    let settlement = settle(conn, session_id, &how, now).await?;
    Ok(StopOutcome::Known { session_id, settlement })
}
