//! The meter path's store: one MeterValues' readings as a row of `meter_readings`, and a batch
//! of many chargers' readings stored, and their sessions' running totals moved, in one
//! statement. [`MeterSessions`] remembers the sessions a writer has seen, so a batch whose
//! sessions are all known is one round trip to PostgreSQL.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Numeric, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;
use serde::Serialize;

use super::StoreError;
use super::prepared::KeepPrepared;
use crate::{billing, clock};

/// One sampled value as `meter_readings.samples` keeps it: an element of the reading's JSON
/// array, absent fields left out (the `meter_values` view reads them back as NULL).
#[derive(Debug, Clone, Serialize)]
pub struct MeterSample<'a> {
    /// When it was sampled, if not at the reading's `sampled_at` (most MeterValues carry one
    /// timestamp for all their values, so it is stored once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampled_at: Option<DateTime<Utc>>,
    /// Measurand (default Energy.Active.Import.Register).
    pub measurand: &'a str,
    /// Phase, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<&'a str>,
    /// Unit as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'a str>,
    /// Context as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<&'a str>,
    /// Location as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<&'a str>,
    /// Format as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'a str>,
    /// The value as sent.
    pub raw_value: &'a str,
    /// Normalised to the base unit, when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Decimal>,
}

/// Sampled values as the JSON array one `meter_readings` row stores, and how many there are.
pub fn samples_json<'a>(
    samples: impl IntoIterator<Item = MeterSample<'a>>,
) -> Result<(String, usize), serde_json::Error> {
    let samples: Vec<MeterSample<'a>> = samples.into_iter().collect();
    Ok((serde_json::to_string(&samples)?, samples.len()))
}

/// Where the meter of a session stands after new readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The session.
    pub session_id: i64,
    /// Energy delivered so far, Wh.
    pub energy_wh: i64,
    /// Latest power, W.
    pub power_w: Option<i64>,
    /// Latest state of charge, %.
    pub soc_percent: Option<i16>,
    /// Running cost, INR.
    pub cost: Decimal,
}

/// Readings from one MeterValues (or a StopTransaction's transactionData).
#[derive(Debug, Clone)]
pub struct MeterInput {
    /// The charger's row.
    pub charger_id: i64,
    /// Connector number.
    pub connector_number: i32,
    /// The transaction they belong to, if any.
    pub transaction_id: Option<i32>,
    /// Every sampled value, as a JSON array of [`MeterSample`] (see [`samples_json`]).
    pub samples: String,
    /// How many sampled values `samples` holds; a reading without any is not stored.
    pub sample_count: usize,
    /// The latest timestamp among them.
    pub sampled_at: DateTime<Utc>,
    /// The energy register, Wh, if the readings had one.
    pub energy_register_wh: Option<i64>,
    /// Active import power, W.
    pub power_w: Option<i64>,
    /// State of charge, %.
    pub soc_percent: Option<i16>,
}

/// What the meter path needs of a session: ID, charger, status, meter start, price, whether
/// the connector's meter is trusted, its running totals, and when they were last written.
#[derive(Debug, Clone, QueryableByName)]
struct MeteredSession {
    #[diesel(sql_type = Integer)]
    transaction_id: i32,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    charger_id: i64,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    meter_start_wh: Option<i64>,
    #[diesel(sql_type = Numeric)]
    price_per_kwh: Decimal,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    metered: bool,
    #[diesel(sql_type = BigInt)]
    energy_wh: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    meter_last_wh: Option<i64>,
    #[diesel(sql_type = Numeric)]
    cost: Decimal,
    #[diesel(sql_type = Nullable<BigInt>)]
    power_w: Option<i64>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    soc_percent: Option<i16>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

/// The columns of [`MeteredSession`], for `FROM charging_sessions s`. The connector's
/// `metered` is a subquery by its primary key rather than a join: as a join, PostgreSQL hashed
/// the whole connectors table for every batch (57,000 rows, 30 ms of a 33 ms query, measured
/// on a 19,000-charger benchmark's database).
macro_rules! metered_session_columns {
    () => {
        "s.transaction_id, s.id, s.charger_id, s.status, s.meter_start_wh, s.price_per_kwh, \
         (SELECT c.metered FROM connectors c WHERE c.id = s.connector_id) AS metered, \
         s.energy_wh, s.meter_last_wh, s.cost, s.power_w, s.soc_percent, s.updated_at"
    };
}

/// Sessions a meter writer remembers before it forgets those it has not seen for a while; if
/// more than three quarters of them were seen lately, it forgets them all (and reads each again
/// at its next reading) rather than sweep the whole map at every batch.
const REMEMBERED: usize = 100_000;

/// How long a remembered session is kept without a reading once there are [`REMEMBERED`].
const FORGET_AFTER: chrono::Duration = chrono::Duration::minutes(10);

/// The active sessions one meter writer has seen, by transaction ID, as its last batch left
/// them. A batch reads from the database only the sessions it does not know, so in a fleet
/// that is charging (every reading's session seen before) it is one round trip, not two.
///
/// What is remembered is refreshed from the database by every batch that has a reading of the
/// session (the batch's one statement reads it back): the status, price, whether the connector
/// is metered and, for a connector that is not, the energy the app reported. The energy of a
/// metered session is this writer's own: it follows from the readings alone. A session that is
/// no longer active is forgotten.
#[derive(Debug, Default)]
pub struct MeterSessions {
    by_transaction: HashMap<i32, (MeteredSession, DateTime<Utc>)>,
}

impl MeterSessions {
    /// The remembered sessions of these transactions.
    fn known(&self, transactions: &[i32]) -> HashMap<i32, MeteredSession> {
        transactions.iter().filter_map(|tx| Some((*tx, self.by_transaction.get(tx)?.0.clone()))).collect()
    }

    /// Remembers where a batch left its transactions' sessions (`sessions`; a transaction of
    /// the batch that is not there has no active session), at `now`.
    fn remember(&mut self, transactions: &[i32], sessions: HashMap<i32, MeteredSession>, now: DateTime<Utc>) {
        for tx in transactions {
            if !sessions.contains_key(tx) {
                self.by_transaction.remove(tx);
            }
        }
        self.by_transaction.extend(sessions.into_iter().map(|(tx, session)| (tx, (session, now))));
        if self.by_transaction.len() > REMEMBERED {
            self.by_transaction.retain(|_, (_, seen)| now - *seen < FORGET_AFTER);
            if self.by_transaction.len() > REMEMBERED / 4 * 3 {
                self.by_transaction.clear();
            }
        }
    }
}

/// Where a batch moves one session's meter: `energy_wh`, `meter_last_wh` and `cost` are `None`
/// when no reading of the batch moved the register (the session keeps what it has: a
/// connector that is not metered has its energy from the app).
#[derive(Debug, Default)]
struct MeterMove {
    energy_wh: Option<i64>,
    meter_last_wh: Option<i64>,
    cost: Option<Decimal>,
    power_w: Option<i64>,
    soc_percent: Option<i16>,
}

/// Stores the readings of many MeterValues (from any chargers) and answers, in input order,
/// where each reading left its session (`None` for a reading of no active session).
///
/// One statement inserts the readings, updates the sessions whose running totals are due and
/// reads the batch's sessions back, so the readings and totals are committed together or not
/// at all, without a transaction's BEGIN and COMMIT around them. Sessions that `known` does
/// not hold are read first, a second round trip; `known` then remembers where the batch left
/// them (see [`MeterSessions`]).
///
/// Every reading is stored, with its energy register, before the batch answers. A session's
/// running totals (energy, meter, cost, power, state of charge) are written with the first
/// reading that moves its meter, and then when `totals_every` has passed since they were last
/// written: a charger sending readings every second would otherwise rewrite its session's row
/// every second, the largest single cost of the meter path in the benchmark. Nothing is billed
/// from totals that lag: [`super::sessions::settle`] takes the meter from the latest stored
/// reading. A settled session is never moved, and one settled before the batch's statement
/// answers no progress (one settled while it runs may still answer one).
///
/// The statements are kept prepared, so `conn` should be one whose kept plans suit every batch
/// (from [`super::pool::build_batch_pool`]): see [`super::prepared`]. On another connection the
/// results are the same, and the plans may go stale.
pub async fn record_meter_batch(
    conn: &mut AsyncPgConnection,
    inputs: &[&MeterInput],
    known: &RefCell<MeterSessions>,
    now: DateTime<Utc>,
    totals_every: chrono::Duration,
) -> Result<Vec<Option<Progress>>, StoreError> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let mut transactions: Vec<i32> = inputs.iter().filter_map(|input| input.transaction_id).collect();
    transactions.sort_unstable();
    transactions.dedup();
    let mut sessions = known.borrow().known(&transactions);
    let unknown: Vec<i32> = transactions.iter().copied().filter(|tx| !sessions.contains_key(tx)).collect();
    if !unknown.is_empty() {
        let found: Vec<MeteredSession> = diesel::sql_query(concat!(
            "SELECT ",
            metered_session_columns!(),
            " FROM charging_sessions s WHERE s.transaction_id = ANY($1)"
        ))
        .bind::<Array<Integer>, _>(&unknown)
        .prepared()
        .load(conn)
        .await?;
        sessions.extend(found.into_iter().map(|session| (session.transaction_id, session)));
    }
    // Sessions whose running totals this batch writes: those with no energy written yet
    // (the first reading that moves the meter shows at once), and those whose totals are due.
    let due: HashSet<i64> = sessions
        .values()
        .filter(|session| session.energy_wh == 0 || totals_due(session.id, session.updated_at, now, totals_every))
        .map(|session| session.id)
        .collect();

    // One row per reading (its sampled values in one JSON array), each with its session if its
    // transaction is one of its charger's.
    let stored: Vec<&MeterInput> = inputs.iter().copied().filter(|input| input.sample_count > 0).collect();
    let stored_sessions: Vec<Option<i64>> = stored
        .iter()
        .map(|input| {
            input
                .transaction_id
                .and_then(|tx| sessions.get(&tx))
                .filter(|session| session.charger_id == input.charger_id)
                .map(|session| session.id)
        })
        .collect();

    // Where each reading moves its (active) session; a later reading of the same session in
    // this batch builds on the earlier one.
    let mut answers: Vec<Option<Progress>> = Vec::with_capacity(inputs.len());
    let mut moves: HashMap<i64, MeterMove> = HashMap::new();
    for &input in inputs {
        let session = input
            .transaction_id
            .and_then(|tx| sessions.get_mut(&tx))
            .filter(|session| session.charger_id == input.charger_id && session.status == "active");
        let Some(session) = session else {
            answers.push(None);
            continue;
        };
        let moved = moves.entry(session.id).or_default();
        let meter_start = session.meter_start_wh.unwrap_or(0);
        match input.energy_register_wh {
            // On a connector marked not metered, energy comes from the app, not this register.
            Some(register) if register >= meter_start && session.metered => {
                session.energy_wh = register - meter_start;
                session.meter_last_wh = Some(register);
                session.cost = billing::cost(session.energy_wh, session.price_per_kwh);
                moved.energy_wh = Some(session.energy_wh);
                moved.meter_last_wh = session.meter_last_wh;
                moved.cost = Some(session.cost);
            }
            _ => {}
        }
        moved.power_w = input.power_w.or(moved.power_w);
        moved.soc_percent = input.soc_percent.or(moved.soc_percent);
        answers.push(Some(Progress {
            session_id: session.id,
            energy_wh: session.energy_wh,
            power_w: moved.power_w,
            soc_percent: moved.soc_percent,
            cost: session.cost,
        }));
    }
    let session_ids: Vec<i64> = sessions.values().map(|session| session.id).collect();
    if stored.is_empty() && session_ids.is_empty() {
        return Ok(answers);
    }
    let mut due_moves: Vec<(i64, &MeterMove)> =
        moves.iter().filter(|(id, _)| due.contains(id)).map(|(id, moved)| (*id, moved)).collect();
    // One lock order for every multi-row update of sessions.
    due_moves.sort_unstable_by_key(|(id, _)| *id);
    // The readings, all in one INSERT of column arrays (a constant statement PostgreSQL parses
    // in no time), the due sessions' totals, and the batch's sessions read back, in one
    // statement: a data-modifying WITH runs to completion whether or not the rest reads it, the
    // three see one snapshot, and the writes commit together.
    //
    // Each session is updated by its primary key, one probe per session: "not settled
    // meanwhile" is asked as `settled_at IS NULL` (the same thing for a session that was
    // active, by the table's check), which no index serves, rather than `status = 'active'`.
    // With the latter, stale statistics (thousands of sessions started since the last
    // ANALYZE) made PostgreSQL read every open session through a partial index on status,
    // for every batch; with `s.id = ANY($1)` added, it compared every reading with every
    // session (512 × 512 per batch). Measured on a 19,000-charger benchmark's database:
    // 23 ms per 512-row batch as a quadratic join, 7 ms as primary-key probes. The sessions
    // are read back apart from the UPDATE (not joined with what it returns) for the same
    // reason: the batch connection's plans rule out hash joins.
    let read_back: Vec<MeteredSession> = diesel::sql_query(concat!(
        "WITH stored AS ( \
           INSERT INTO meter_readings (charger_id, connector_number, session_id, transaction_id, sampled_at, \
             samples, energy_register_wh, received_at) \
           SELECT c, n, s, t, a, j::json, e, $8 \
           FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::int[], $5::timestamptz[], $6::text[], \
             $7::bigint[]) AS v(c, n, s, t, a, j, e)), \
         moved AS ( \
           UPDATE charging_sessions AS s SET energy_wh = coalesce(v.energy_wh, s.energy_wh), \
             meter_last_wh = coalesce(v.meter_last_wh, s.meter_last_wh), cost = coalesce(v.cost, s.cost), \
             power_w = coalesce(v.power_w, s.power_w), soc_percent = coalesce(v.soc_percent, s.soc_percent), \
             updated_at = $8 \
           FROM unnest($9::bigint[], $10::bigint[], $11::bigint[], $12::numeric[], $13::bigint[], $14::smallint[]) \
             AS v(id, energy_wh, meter_last_wh, cost, power_w, soc_percent) \
           WHERE s.id = v.id AND s.settled_at IS NULL) \
         SELECT ",
        metered_session_columns!(),
        " FROM charging_sessions s WHERE s.id = ANY($15)"
    ))
    .bind::<Array<BigInt>, _>(stored.iter().map(|input| input.charger_id).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(stored.iter().map(|input| input.connector_number).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(stored_sessions)
    .bind::<Array<Nullable<Integer>>, _>(stored.iter().map(|input| input.transaction_id).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(stored.iter().map(|input| input.sampled_at).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(stored.iter().map(|input| input.samples.as_str()).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(stored.iter().map(|input| input.energy_register_wh).collect::<Vec<_>>())
    .bind::<Timestamptz, _>(now)
    .bind::<Array<BigInt>, _>(due_moves.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(due_moves.iter().map(|(_, m)| m.energy_wh).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(due_moves.iter().map(|(_, m)| m.meter_last_wh).collect::<Vec<_>>())
    .bind::<Array<Nullable<Numeric>>, _>(due_moves.iter().map(|(_, m)| m.cost).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(due_moves.iter().map(|(_, m)| m.power_w).collect::<Vec<_>>())
    .bind::<Array<Nullable<SmallInt>>, _>(due_moves.iter().map(|(_, m)| m.soc_percent).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(&session_ids)
    .prepared()
    .load(conn)
    .await?;

    let read_back: HashMap<i64, MeteredSession> = read_back.into_iter().map(|session| (session.id, session)).collect();
    // A reading answers progress only if its session is still active as the statement read
    // it. A connector that is not metered has its energy from the app, as read back.
    let answers = answers
        .into_iter()
        .map(|answer| {
            let mut progress = answer?;
            let session = read_back.get(&progress.session_id).filter(|session| session.status == "active")?;
            if !session.metered {
                progress.energy_wh = session.energy_wh;
                progress.cost = session.cost;
            }
            progress.power_w = progress.power_w.or(session.power_w);
            progress.soc_percent = progress.soc_percent.or(session.soc_percent);
            Some(progress)
        })
        .collect();
    // Where the batch left its active sessions: as read back, with what only this batch knows
    // (a metered session's meter, the latest power and state of charge, the totals it wrote).
    let active: HashMap<i32, MeteredSession> = read_back
        .into_values()
        .filter(|session| session.status == "active")
        .map(|mut session| {
            if let Some(ours) = sessions.get(&session.transaction_id).filter(|ours| ours.id == session.id)
                && session.metered
            {
                session.energy_wh = ours.energy_wh;
                session.meter_last_wh = ours.meter_last_wh;
                session.cost = ours.cost;
            }
            if let Some(moved) = moves.get(&session.id) {
                session.power_w = moved.power_w.or(session.power_w);
                session.soc_percent = moved.soc_percent.or(session.soc_percent);
                if due.contains(&session.id) {
                    session.updated_at = now;
                }
            }
            (session.transaction_id, session)
        })
        .collect();
    known.borrow_mut().remember(&transactions, active, now);
    Ok(answers)
}

/// Whether a session's running totals, last written at `written`, are due again at `now`: once
/// in each period of `every`, at the session's own moment in it (see [`clock::new_period`]), so
/// the totals of a fleet whose sessions started together are written evenly over the period,
/// not all within the seconds the fleet took to start. In the benchmark, 19,000 sessions
/// started within 2 s wrote their totals in bursts every 5 s, and every reading answered
/// during a burst waited for it.
fn totals_due(session_id: i64, written: DateTime<Utc>, now: DateTime<Utc>, every: chrono::Duration) -> bool {
    clock::new_period(session_id, written, now, every)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(transaction_id: i32, status: &str) -> MeteredSession {
        MeteredSession {
            transaction_id,
            id: i64::from(transaction_id),
            charger_id: 1,
            status: status.to_owned(),
            meter_start_wh: Some(0),
            price_per_kwh: Decimal::from(18),
            metered: true,
            energy_wh: 0,
            meter_last_wh: None,
            cost: Decimal::ZERO,
            power_w: None,
            soc_percent: None,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn remember_all(known: &mut MeterSessions, transactions: std::ops::Range<i32>, now: DateTime<Utc>) {
        let batch: Vec<i32> = transactions.collect();
        let sessions = batch.iter().map(|tx| (*tx, session(*tx, "active"))).collect();
        known.remember(&batch, sessions, now);
    }

    #[test]
    fn a_batch_forgets_its_sessions_that_are_no_longer_active() {
        let now = Utc::now();
        let mut known = MeterSessions::default();
        remember_all(&mut known, 1..4, now);
        // Transaction 2 was read back settled: it is not among the batch's active sessions.
        known.remember(&[1, 2], [(1, session(1, "active"))].into(), now);
        assert_eq!(known.known(&[1, 2, 3]).keys().copied().collect::<HashSet<_>>(), HashSet::from([1, 3]));
    }

    #[test]
    fn past_the_limit_sessions_unseen_for_a_while_are_forgotten_and_if_too_few_were_all_are() {
        let start = Utc::now();
        let limit = i32::try_from(REMEMBERED).unwrap();
        let mut known = MeterSessions::default();
        remember_all(&mut known, 0..limit / 2, start);
        let later = start + FORGET_AFTER + chrono::Duration::seconds(1);
        remember_all(&mut known, limit / 2..limit + 1, later);
        // The first half was unseen for longer than FORGET_AFTER; the rest stays.
        assert_eq!(known.by_transaction.len(), REMEMBERED / 2 + 1);
        assert!(known.known(&[0]).is_empty() && known.known(&[limit]).len() == 1);

        // All seen lately and still over three quarters of the limit: all are forgotten.
        remember_all(&mut known, limit + 1..2 * limit, later);
        assert!(known.by_transaction.is_empty());
    }
}
