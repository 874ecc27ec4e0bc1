//! One simulated OCPP 1.6J charger: its state (connectors, sessions, reservations, the queue of
//! CALLs to send) and the task that keeps it connected.
//!
//! The task alternates between two loops: [`Charger::online`] while a WebSocket is open (write
//! what can be sent, then wait for a frame, a timer or the stop signal) and [`Charger::offline`]
//! while it is not (timers keep running, so a car keeps charging and its MeterValues, like
//! StartTransaction and StopTransaction, wait in the queue for the next connection). As OCPP-J
//! requires, at most one CALL is outstanding; answers to the central system's CALLs go out
//! ahead of it.
//!
//! Outgoing CALLs are kept as small [`Outgoing`] values, not text, so a queued MeterValues or
//! StopTransaction picks up its transaction ID when it is finally sent, and each frame is
//! written once, straight into the buffer that becomes the WebSocket message.

use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

use awc::error::WsProtocolError;
use awc::ws::{CloseCode, CloseReason, Frame as WsFrame, Message};
use chrono::{DateTime, Datelike, Timelike, Utc};
use futures_util::{Sink, SinkExt as _, Stream, StreamExt as _};
use kilowatt_actors::ocpp::{
    AvailabilityStatus, AvailabilityType, CentralSystemRequest, ConfigurationStatus, Frame, MessageTrigger,
    RemoteStartStopStatus, ReservationStatus, ResetType, call_error_frame, call_result_frame,
};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::curve::Curve;
use super::stats::{Action, Stats};
use super::{Engine, Rng};

/// Messages kept while offline before MeterValues start being dropped.
const MAX_QUEUED: usize = 1_000;
/// Share of the energy leaving the charger that reaches the battery.
const EFFICIENCY: f64 = 0.92;
/// How long a simulated reboot (Reset) keeps the charger offline.
const REBOOT_TIME: Duration = Duration::from_secs(3);
/// How long a simulated network outage lasts, seconds.
const OUTAGE_SECONDS: (f64, f64) = (2.0, 10.0);
/// How long a fault lasts, seconds.
const FAULT_SECONDS: (f64, f64) = (15.0, 60.0);
/// Seconds between the end of a session and the car leaving (Finishing → Available).
const UNPLUG_SECONDS: (f64, f64) = (1.0, 5.0);
/// Wait before the first BootNotification retry when the central system gives no interval.
const BOOT_RETRY: Duration = Duration::from_secs(10);
/// Largest reconnect backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Vendor error codes a simulated fault reports.
const FAULTS: [&str; 5] = ["GroundFailure", "OverCurrentFailure", "HighTemperature", "PowerMeterFailure", "OtherError"];
/// Charger models by index: name and power per connector, W.
const MODELS: [(&str, f64); 4] = [("AC22", 22_000.0), ("AC7", 7_400.0), ("DC50", 50_000.0), ("DC120", 120_000.0)];
/// The feature profiles the simulated charger claims.
const FEATURE_PROFILES: &str =
    "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger";

/// A connector's OCPP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Available,
    Preparing,
    Charging,
    SuspendedEv,
    Finishing,
    Reserved,
    Unavailable,
    Faulted,
}

impl Status {
    const fn as_str(self) -> &'static str {
        match self {
            Status::Available => "Available",
            Status::Preparing => "Preparing",
            Status::Charging => "Charging",
            Status::SuspendedEv => "SuspendedEV",
            Status::Finishing => "Finishing",
            Status::Reserved => "Reserved",
            Status::Unavailable => "Unavailable",
            Status::Faulted => "Faulted",
        }
    }
}

/// A CALL waiting to be sent (or sent and waiting for its answer).
#[derive(Debug, Clone)]
enum Outgoing {
    Boot,
    Heartbeat,
    Status { connector: u8, status: Status, error: &'static str, at: DateTime<Utc> },
    Authorize { connector: u8, tag: Rc<str> },
    Start { connector: u8, seq: u32, tag: Rc<str>, meter_start: i64, reservation: Option<i32>, at: DateTime<Utc> },
    Meter { connector: u8, seq: Option<u32>, wh: i64, power_w: i64, soc: Option<u8>, at: DateTime<Utc> },
    Stop { seq: u32, tag: Option<Rc<str>>, meter_stop: i64, reason: &'static str, at: DateTime<Utc> },
    Diagnostics(&'static str),
    Firmware(&'static str),
}

impl Outgoing {
    fn action(&self) -> Action {
        match self {
            Outgoing::Boot => Action::BootNotification,
            Outgoing::Heartbeat => Action::Heartbeat,
            Outgoing::Status { .. } => Action::StatusNotification,
            Outgoing::Authorize { .. } => Action::Authorize,
            Outgoing::Start { .. } => Action::StartTransaction,
            Outgoing::Meter { .. } => Action::MeterValues,
            Outgoing::Stop { .. } => Action::StopTransaction,
            Outgoing::Diagnostics(_) => Action::DiagnosticsStatusNotification,
            Outgoing::Firmware(_) => Action::FirmwareStatusNotification,
        }
    }

    /// Transaction messages survive a lost connection (OCPP 1.6 section 4.7 asks chargers to
    /// queue them); everything else is only worth sending now.
    fn is_transactional(&self) -> bool {
        matches!(self, Outgoing::Start { .. } | Outgoing::Meter { .. } | Outgoing::Stop { .. })
    }
}

/// The CALL sent and not answered yet.
struct Pending {
    id: u32,
    message: Outgoing,
    sent_at: Instant,
}

/// A car charging on a connector.
struct Session {
    /// Local number, to match answers and queued messages to the session before (and after)
    /// the central system gives its transaction ID.
    seq: u32,
    tag: Rc<str>,
    transaction_id: Option<i32>,
    curve: Curve,
    soc: f64,
    target_soc: f64,
    /// Whether the idTag was checked with Authorize (else a refused start keeps charging).
    authorized: bool,
    last_update: Instant,
    next_meter: Instant,
}

struct Reservation {
    id: i32,
    tag: Rc<str>,
    expires: Instant,
}

struct Connector {
    number: u8,
    status: Status,
    /// Wh, the energy register: only ever grows.
    register_wh: f64,
    session: Option<Session>,
    reservation: Option<Reservation>,
    /// A car plugged in and waiting for its Authorize answer.
    authorizing: bool,
    fault_until: Option<Instant>,
    unplug_at: Option<Instant>,
    inoperative: bool,
    /// Inoperative once the session under way ends (ChangeAvailability answered Scheduled).
    inoperative_after_session: bool,
    power_w: f64,
}

impl Connector {
    fn is_free(&self) -> bool {
        self.status == Status::Available && self.session.is_none() && !self.authorizing && self.reservation.is_none()
    }

    /// The status this connector should show when nothing is happening on it.
    fn resting_status(&self) -> Status {
        if self.fault_until.is_some() {
            Status::Faulted
        } else if self.inoperative {
            Status::Unavailable
        } else if self.reservation.is_some() {
            Status::Reserved
        } else {
            Status::Available
        }
    }
}

/// Why the online loop ended.
enum Ended {
    /// The run is over.
    Stop,
    /// The connection broke or the central system closed it: reconnect soon.
    Lost,
    /// A simulated outage or reboot: offline until then.
    OfflineUntil(Instant),
}

/// One simulated charger.
pub(crate) struct Charger {
    index: usize,
    id: String,
    url: String,
    rng: Rng,
    model: &'static str,
    power_per_connector_w: f64,
    charges: bool,
    connected: bool,
    /// A BootNotification is due before anything else (first start and after a reboot).
    needs_boot: bool,
    accepted: bool,
    ever_accepted: bool,
    boot_retry_at: Instant,
    heartbeat: Duration,
    heartbeat_due: Option<Instant>,
    meter_interval: Duration,
    call_timeout: Duration,
    connectors: Vec<Connector>,
    queue: std::collections::VecDeque<Outgoing>,
    /// Frames answering the central system's CALLs, sent before any CALL.
    replies: Vec<String>,
    pending: Option<Pending>,
    next_message_id: u32,
    next_seq: u32,
    /// Transaction IDs of sessions whose StopTransaction has not been answered yet.
    transaction_ids: Vec<(u32, i32)>,
    /// idTags accepted by Authorize before (OCPP's authorization cache): allowed offline.
    auth_cache: Vec<Rc<str>>,
    /// The next idTag to present is `tags[tag_cursor % tags.len()]`.
    tag_cursor: usize,
    next_arrival: Option<Instant>,
    next_fault: Option<Instant>,
    next_outage: Option<Instant>,
    /// Set by Reset: reboot once the answer is out.
    reboot: Option<&'static str>,
    local_list_version: i32,
}

fn timestamp(buf: &mut String, at: &DateTime<Utc>) {
    // Written in place (RFC 3339, UTC, milliseconds) from the fields, not through a format
    // string that would be parsed again at every message.
    let (date, time) = (at.date_naive(), at.time());
    let millis = time.nanosecond() / 1_000_000 % 1_000;
    let _ = write!(
        buf,
        "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}Z\"",
        date.year(),
        date.month(),
        date.day(),
        time.hour(),
        time.minute(),
        time.second(),
    );
}

/// Writes `s` as a JSON string.
fn json_str(buf: &mut String, s: &str) {
    buf.push('"');
    for c in s.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(buf, "\\u{:04x}", c as u32);
            }
            c => buf.push(c),
        }
    }
    buf.push('"');
}

fn seconds(range: (f64, f64), rng: &mut Rng) -> Duration {
    Duration::from_secs_f64(rng.range(range.0, range.1))
}

impl Charger {
    fn new(engine: &Engine, index: usize, tag_offset: usize) -> Self {
        let config = engine.config();
        let id = config.charge_point_id(index);
        let mut rng = Rng::new(config.seed, index as u64);
        let (model, power) = MODELS[index % MODELS.len()];
        let now = Instant::now();
        let connectors = (1..=config.connectors)
            .map(|number| Connector {
                number,
                status: Status::Available,
                // A register that has been counting for a while.
                register_wh: (rng.range(100.0, 5_000.0) * 1000.0).round(),
                session: None,
                reservation: None,
                authorizing: false,
                fault_until: None,
                unplug_at: None,
                inoperative: false,
                inoperative_after_session: false,
                power_w: 0.0,
            })
            .collect();
        let next_fault = rng.exponential(config.fault_rate).map(|d| now + d);
        let next_outage = rng.exponential(config.reconnect_rate).map(|d| now + d);
        Charger {
            index,
            url: format!("{}/{}", config.url, encode_path_segment(&id)),
            id,
            rng,
            model,
            power_per_connector_w: power,
            charges: config.charges(index),
            connected: false,
            needs_boot: true,
            accepted: false,
            ever_accepted: false,
            boot_retry_at: now,
            heartbeat: config.heartbeat.unwrap_or(Duration::from_secs(300)),
            heartbeat_due: None,
            meter_interval: config.meter_interval,
            call_timeout: config.call_timeout,
            connectors,
            queue: std::collections::VecDeque::new(),
            replies: Vec::new(),
            pending: None,
            next_message_id: 0,
            next_seq: 0,
            transaction_ids: Vec::new(),
            auth_cache: Vec::new(),
            tag_cursor: tag_offset,
            next_arrival: None,
            next_fault,
            next_outage,
            reboot: None,
            local_list_version: 0,
        }
    }

    // ---- queueing -------------------------------------------------------------------------

    fn push(&mut self, stats: &Stats, message: Outgoing) {
        if !self.connected && !message.is_transactional() {
            // Status and heartbeats are sent afresh once connected.
            return;
        }
        if self.queue.len() >= MAX_QUEUED && matches!(message, Outgoing::Meter { .. }) {
            Stats::bump(&stats.dropped);
            return;
        }
        self.queue.push_back(message);
    }

    fn set_status(&mut self, stats: &Stats, c: usize, status: Status, error: &'static str) {
        self.connectors[c].status = status;
        let connector = self.connectors[c].number;
        self.push(stats, Outgoing::Status { connector, status, error, at: Utc::now() });
    }

    fn queue_all_statuses(&mut self, stats: &Stats) {
        let at = Utc::now();
        self.push(stats, Outgoing::Status { connector: 0, status: Status::Available, error: "NoError", at });
        for c in 0..self.connectors.len() {
            let connector = &self.connectors[c];
            let error = if connector.status == Status::Faulted { "OtherError" } else { "NoError" };
            let message = Outgoing::Status { connector: connector.number, status: connector.status, error, at };
            self.push(stats, message);
        }
    }

    fn transaction_id(&self, seq: u32) -> Option<i32> {
        self.transaction_ids.iter().find(|(s, _)| *s == seq).map(|(_, id)| *id)
    }

    // ---- writing frames -------------------------------------------------------------------

    /// The next frame to write, if any: answers first, then one CALL when none is outstanding.
    fn next_frame(&mut self, engine: &Engine, now: Instant) -> Option<String> {
        if !self.replies.is_empty() {
            Stats::bump(&engine.stats().commands);
            return Some(self.replies.remove(0));
        }
        if self.pending.is_some() {
            return None;
        }
        let message = if self.needs_boot {
            if now < self.boot_retry_at {
                return None;
            }
            Outgoing::Boot
        } else if !self.accepted {
            // Pending or Rejected: only BootNotification (on its retry timer) may go.
            return None;
        } else {
            loop {
                let message = self.queue.pop_front()?;
                // A transaction the central system never numbered cannot be stopped by ID.
                if let Outgoing::Stop { seq, .. } = message
                    && self.transaction_id(seq).is_none()
                {
                    continue;
                }
                break message;
            }
        };
        self.next_message_id = self.next_message_id.wrapping_add(1);
        let id = self.next_message_id;
        let text = self.render(id, &message);
        engine.stats().sent(message.action());
        self.pending = Some(Pending { id, message, sent_at: now });
        Some(text)
    }

    fn render(&self, id: u32, message: &Outgoing) -> String {
        let mut buf = String::with_capacity(320);
        let _ = write!(buf, "[2,\"{id}\",\"{}\",", message.action().as_str());
        match message {
            Outgoing::Boot => {
                let skip = self.id.chars().count().saturating_sub(18);
                let serial: String = self.id.chars().skip(skip).collect();
                buf.push_str("{\"chargePointVendor\":\"Kilowatt\",\"chargePointModel\":");
                json_str(&mut buf, &format!("Simulator {}", self.model));
                buf.push_str(",\"chargePointSerialNumber\":");
                json_str(&mut buf, &format!("KW-{serial}"));
                buf.push_str(",\"firmwareVersion\":\"1.4.2\",\"meterType\":\"Simulated meter\"}");
            }
            Outgoing::Heartbeat => buf.push_str("{}"),
            Outgoing::Status { connector, status, error, at } => {
                let _ = write!(
                    buf,
                    "{{\"connectorId\":{connector},\"status\":\"{}\",\"errorCode\":\"{error}\",\"timestamp\":",
                    status.as_str()
                );
                timestamp(&mut buf, at);
                buf.push('}');
            }
            Outgoing::Authorize { tag, .. } => {
                buf.push_str("{\"idTag\":");
                json_str(&mut buf, tag);
                buf.push('}');
            }
            Outgoing::Start { connector, tag, meter_start, reservation, at, .. } => {
                let _ = write!(buf, "{{\"connectorId\":{connector},\"meterStart\":{meter_start},\"idTag\":");
                json_str(&mut buf, tag);
                if let Some(reservation) = reservation {
                    let _ = write!(buf, ",\"reservationId\":{reservation}");
                }
                buf.push_str(",\"timestamp\":");
                timestamp(&mut buf, at);
                buf.push('}');
            }
            Outgoing::Meter { connector, seq, wh, power_w, soc, at } => {
                let _ = write!(buf, "{{\"connectorId\":{connector},");
                if let Some(transaction_id) = seq.and_then(|seq| self.transaction_id(seq)) {
                    let _ = write!(buf, "\"transactionId\":{transaction_id},");
                }
                buf.push_str("\"meterValue\":[{\"timestamp\":");
                timestamp(&mut buf, at);
                let _ = write!(
                    buf,
                    ",\"sampledValue\":[\
                     {{\"value\":\"{wh}\",\"context\":\"Sample.Periodic\",\"measurand\":\"Energy.Active.Import.Register\",\"location\":\"Outlet\",\"unit\":\"Wh\"}},\
                     {{\"value\":\"{power_w}\",\"context\":\"Sample.Periodic\",\"measurand\":\"Power.Active.Import\",\"location\":\"Outlet\",\"unit\":\"W\"}}"
                );
                if let Some(soc) = soc {
                    let _ = write!(
                        buf,
                        ",{{\"value\":\"{soc}\",\"context\":\"Sample.Periodic\",\"measurand\":\"SoC\",\"location\":\"EV\",\"unit\":\"Percent\"}}"
                    );
                }
                buf.push_str("]}]}");
            }
            Outgoing::Stop { seq, tag, meter_stop, reason, at } => {
                let transaction_id = self.transaction_id(*seq).unwrap_or_default();
                let _ = write!(
                    buf,
                    "{{\"transactionId\":{transaction_id},\"meterStop\":{meter_stop},\"reason\":\"{reason}\","
                );
                if let Some(tag) = tag {
                    buf.push_str("\"idTag\":");
                    json_str(&mut buf, tag);
                    buf.push(',');
                }
                buf.push_str("\"timestamp\":");
                timestamp(&mut buf, at);
                buf.push('}');
            }
            Outgoing::Diagnostics(status) | Outgoing::Firmware(status) => {
                let _ = write!(buf, "{{\"status\":\"{status}\"}}");
            }
        }
        buf.push(']');
        buf
    }

    // ---- sessions -------------------------------------------------------------------------

    fn free_connector(&self) -> Option<usize> {
        self.connectors.iter().position(Connector::is_free)
    }

    /// A car arrives at a charging charger: plug in, then Authorize (or start at once in
    /// free-vend mode, or offline with a cached idTag).
    fn arrive(&mut self, engine: &Engine, now: Instant) {
        self.next_arrival = None;
        let stats = engine.stats();
        let Some(c) = self.free_connector() else {
            self.schedule_arrival(engine, now, 1.0);
            return;
        };
        let tags = engine.tags();
        if tags.is_empty() {
            let tag: Rc<str> = Rc::from(format!("SIM{:06}", self.index + 1).as_str());
            self.set_status(stats, c, Status::Preparing, "NoError");
            self.begin_session(engine, c, tag, false, None, now);
            return;
        }
        let tag = tags[self.tag_cursor % tags.len()].clone();
        if !engine.config().one_tag_per_charger {
            self.tag_cursor += 1;
        }
        if self.connected && self.accepted {
            self.connectors[c].authorizing = true;
            self.set_status(stats, c, Status::Preparing, "NoError");
            let number = self.connectors[c].number;
            self.push(stats, Outgoing::Authorize { connector: number, tag });
        } else if self.auth_cache.contains(&tag) {
            self.connectors[c].status = Status::Preparing;
            self.begin_session(engine, c, tag, true, None, now);
        } else {
            self.schedule_arrival(engine, now, 0.5);
        }
    }

    fn schedule_arrival(&mut self, engine: &Engine, now: Instant, scale: f64) {
        if !self.charges {
            return;
        }
        let gap = engine.config().session_gap.as_secs_f64() * scale;
        self.next_arrival = Some(now + Duration::from_secs_f64(self.rng.range(0.5 * gap, 1.5 * gap)));
    }

    fn begin_session(
        &mut self,
        engine: &Engine,
        c: usize,
        tag: Rc<str>,
        authorized: bool,
        reservation: Option<i32>,
        now: Instant,
    ) {
        let stats = engine.stats();
        self.next_seq += 1;
        let seq = self.next_seq;
        // A car: 30–80 kWh, accepting 7–150 kW, arriving at 10–50 %, leaving at 80–100 %.
        let battery_wh = self.rng.range(30_000.0, 80_000.0);
        let car_max_w = self.rng.range(7_000.0, 150_000.0);
        let curve = Curve::new(battery_wh, self.power_per_connector_w.min(car_max_w) * EFFICIENCY);
        let soc = self.rng.range(0.1, 0.5);
        let target_soc = self.rng.range(0.8, 1.0);
        let connector = &mut self.connectors[c];
        connector.authorizing = false;
        connector.unplug_at = None;
        let meter_start = connector.register_wh.round() as i64;
        let number = connector.number;
        connector.power_w = curve.power_at(soc) / EFFICIENCY;
        let reservation = reservation.or_else(|| connector.reservation.take().map(|r| r.id));
        connector.session = Some(Session {
            seq,
            tag: tag.clone(),
            transaction_id: None,
            curve,
            soc,
            target_soc,
            authorized,
            last_update: now,
            next_meter: now + self.meter_interval,
        });
        Stats::bump(&stats.sessions_started);
        Stats::gauge(&stats.charging, true);
        self.push(stats, Outgoing::Start { connector: number, seq, tag, meter_start, reservation, at: Utc::now() });
        self.set_status(stats, c, Status::Charging, "NoError");
    }

    /// Brings a session's meter up to `now` along the curve.
    fn update_meter(&mut self, c: usize, now: Instant) {
        let connector = &mut self.connectors[c];
        let Some(session) = connector.session.as_mut() else { return };
        let seconds = now.saturating_duration_since(session.last_update).as_secs_f64();
        session.last_update = now;
        let step = session.curve.advance(session.soc, seconds);
        session.soc = step.soc;
        connector.register_wh += step.energy_wh / EFFICIENCY;
        connector.power_w = step.power_w / EFFICIENCY;
    }

    fn meter_message(&self, c: usize, at: DateTime<Utc>) -> Outgoing {
        let connector = &self.connectors[c];
        let session = connector.session.as_ref();
        Outgoing::Meter {
            connector: connector.number,
            seq: session.map(|s| s.seq),
            wh: connector.register_wh.round() as i64,
            power_w: if session.is_some() { connector.power_w.round() as i64 } else { 0 },
            soc: session.map(|s| (s.soc * 100.0).round().clamp(0.0, 100.0) as u8),
            at,
        }
    }

    fn meter_due(&mut self, engine: &Engine, c: usize, now: Instant) {
        self.update_meter(c, now);
        if self.connected && self.pending.is_some() {
            Stats::bump(&engine.stats().late);
        }
        let message = self.meter_message(c, Utc::now());
        self.push(engine.stats(), message);
        let interval = self.meter_interval;
        let Some(session) = self.connectors[c].session.as_mut() else { return };
        session.next_meter = next_tick(session.next_meter, interval, now);
        let full = session.soc >= session.target_soc;
        let was_charging = self.connectors[c].status == Status::Charging;
        if full {
            self.end_session(engine, c, "EVDisconnected", now);
        } else if self.connectors[c].power_w < 1.0 && was_charging {
            self.set_status(engine.stats(), c, Status::SuspendedEv, "NoError");
        }
    }

    /// Stops the session on connector `c` (if any): final reading, StopTransaction queued,
    /// Finishing (unless `after` says otherwise) and Available once the car is unplugged.
    fn end_session(&mut self, engine: &Engine, c: usize, reason: &'static str, now: Instant) {
        self.update_meter(c, now);
        let stats = engine.stats();
        let Some(session) = self.connectors[c].session.take() else { return };
        let meter_stop = self.connectors[c].register_wh.round() as i64;
        self.connectors[c].power_w = 0.0;
        Stats::bump(&stats.sessions_stopped);
        Stats::gauge(&stats.charging, false);
        let tag = (reason == "Local" || reason == "EVDisconnected").then(|| session.tag.clone());
        self.push(stats, Outgoing::Stop { seq: session.seq, tag, meter_stop, reason, at: Utc::now() });
        if self.connectors[c].inoperative_after_session {
            self.connectors[c].inoperative_after_session = false;
            self.connectors[c].inoperative = true;
        }
        if self.connectors[c].status != Status::Faulted {
            self.set_status(stats, c, Status::Finishing, "NoError");
            self.connectors[c].unplug_at = Some(now + seconds(UNPLUG_SECONDS, &mut self.rng));
        }
        if self.next_arrival.is_none() {
            self.schedule_arrival(engine, now, 1.0);
        }
    }

    fn stop_all(&mut self, engine: &Engine, reason: &'static str, now: Instant) {
        for c in 0..self.connectors.len() {
            self.end_session(engine, c, reason, now);
            self.connectors[c].authorizing = false;
        }
    }

    // ---- answers to our CALLs -------------------------------------------------------------

    fn on_answer(&mut self, engine: &Engine, message_id: &str, payload: Result<&Value, ()>, now: Instant) {
        let stats = engine.stats();
        let Some(pending) = self.pending.take_if(|p| message_id.parse::<u32>() == Ok(p.id)) else {
            Stats::bump(&stats.protocol_errors);
            tracing::debug!(charge_point_id = %self.id, message_id, "answer to no outstanding CALL");
            return;
        };
        stats.round_trip(pending.message.action(), now.saturating_duration_since(pending.sent_at));
        let Ok(payload) = payload else {
            stats.call_error(pending.message.action());
            self.on_refused_call(engine, pending.message, now);
            return;
        };
        match pending.message {
            Outgoing::Boot => self.on_boot_answer(engine, payload, now),
            Outgoing::Authorize { connector, tag } => {
                let c = usize::from(connector) - 1;
                let still_waiting = self.connectors[c].authorizing;
                self.connectors[c].authorizing = false;
                if !still_waiting {
                    return;
                }
                if payload["idTagInfo"]["status"] == "Accepted" {
                    if !self.auth_cache.contains(&tag) {
                        self.auth_cache.push(tag.clone());
                    }
                    self.begin_session(engine, c, tag, true, None, now);
                } else {
                    Stats::bump(&stats.refused);
                    let status = self.connectors[c].resting_status();
                    self.set_status(stats, c, status, "NoError");
                    self.schedule_arrival(engine, now, 0.5);
                }
            }
            Outgoing::Start { connector, seq, .. } => {
                let Some(transaction_id) = payload["transactionId"].as_i64().and_then(|id| i32::try_from(id).ok())
                else {
                    Stats::bump(&stats.protocol_errors);
                    return;
                };
                self.transaction_ids.push((seq, transaction_id));
                Stats::bump(&stats.transactions_numbered);
                let c = usize::from(connector) - 1;
                let accepted = payload["idTagInfo"]["status"] == "Accepted";
                let Some(session) = self.connectors[c].session.as_mut().filter(|s| s.seq == seq) else { return };
                session.transaction_id = Some(transaction_id);
                // Authorized sessions obey StopTransactionOnInvalidId; free vend keeps charging.
                if !accepted && (session.authorized || !engine.tags().is_empty()) {
                    Stats::bump(&stats.refused);
                    self.end_session(engine, c, "DeAuthorized", now);
                }
            }
            Outgoing::Stop { seq, .. } => self.transaction_ids.retain(|(s, _)| *s != seq),
            Outgoing::Meter { soc, .. } => {
                let samples = 2 + u64::from(soc.is_some());
                stats.meter_samples_acknowledged.set(stats.meter_samples_acknowledged.get() + samples);
            }
            _ => {}
        }
    }

    fn on_boot_answer(&mut self, engine: &Engine, payload: &Value, now: Instant) {
        let stats = engine.stats();
        let interval = payload["interval"].as_u64().filter(|&i| i > 0).map(Duration::from_secs);
        match payload["status"].as_str() {
            Some("Accepted") => {
                self.needs_boot = false;
                self.accepted = true;
                if !self.ever_accepted {
                    self.ever_accepted = true;
                    Stats::bump(&stats.accepted);
                }
                self.heartbeat = engine.config().heartbeat.or(interval).unwrap_or(self.heartbeat);
                // The first one after 0.5–1.5 intervals: chargers booted together (a connect
                // storm) spread their heartbeats evenly instead of sending them in bursts.
                self.heartbeat_due = Some(now + self.heartbeat.mul_f64(self.rng.range(0.5, 1.5)));
                self.queue_all_statuses(stats);
                if self.charges && self.next_arrival.is_none() && self.connectors.iter().all(|c| c.session.is_none()) {
                    // Spread first sessions over one gap.
                    let gap = engine.config().session_gap.as_secs_f64();
                    self.next_arrival = Some(now + Duration::from_secs_f64(self.rng.range(0.0, gap)));
                }
            }
            _ => {
                // Pending or Rejected: boot again after the interval given.
                self.accepted = false;
                self.needs_boot = true;
                self.boot_retry_at = now + interval.unwrap_or(BOOT_RETRY);
            }
        }
    }

    fn on_refused_call(&mut self, engine: &Engine, message: Outgoing, now: Instant) {
        match message {
            Outgoing::Boot => self.boot_retry_at = now + BOOT_RETRY,
            Outgoing::Start { connector, seq, .. } => {
                // No transaction ID: nothing to meter against or stop; the car gives up.
                let c = usize::from(connector) - 1;
                if self.connectors[c].session.as_ref().is_some_and(|s| s.seq == seq) {
                    self.connectors[c].session = None;
                    self.connectors[c].power_w = 0.0;
                    Stats::gauge(&engine.stats().charging, false);
                    self.set_status(engine.stats(), c, Status::Finishing, "NoError");
                    self.connectors[c].unplug_at = Some(now + seconds(UNPLUG_SECONDS, &mut self.rng));
                    if self.next_arrival.is_none() {
                        self.schedule_arrival(engine, now, 1.0);
                    }
                }
            }
            Outgoing::Authorize { connector, .. } => {
                let c = usize::from(connector) - 1;
                if std::mem::take(&mut self.connectors[c].authorizing) {
                    let status = self.connectors[c].resting_status();
                    self.set_status(engine.stats(), c, status, "NoError");
                    self.schedule_arrival(engine, now, 0.5);
                }
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, engine: &Engine, now: Instant) {
        let Some(pending) = self.pending.take() else { return };
        engine.stats().timed_out(pending.message.action());
        tracing::debug!(charge_point_id = %self.id, action = pending.message.action().as_str(), "no answer in time");
        if pending.message.is_transactional() && !matches!(pending.message, Outgoing::Meter { .. }) {
            self.queue.push_front(pending.message);
        } else {
            self.on_refused_call(engine, pending.message, now);
        }
    }

    // ---- commands from the central system -------------------------------------------------

    fn on_command(&mut self, engine: &Engine, message_id: &str, action: &str, payload: &Value, now: Instant) {
        let reply = match CentralSystemRequest::parse(action, payload) {
            Ok(request) => call_result_frame(message_id, &self.answer(engine, request, now)),
            Err(error) => call_error_frame(message_id, &error),
        };
        self.replies.push(reply);
    }

    fn connector_index(&self, connector_id: u32) -> Option<usize> {
        (connector_id >= 1 && connector_id as usize <= self.connectors.len()).then(|| connector_id as usize - 1)
    }

    fn answer(&mut self, engine: &Engine, request: CentralSystemRequest, now: Instant) -> Value {
        let stats = engine.stats();
        let status = |s: &str| json!({ "status": s });
        match request {
            CentralSystemRequest::RemoteStartTransaction(start) => {
                let tag: Rc<str> = Rc::from(start.id_tag.as_str());
                let c = match start.connector_id {
                    Some(id) => self.connector_index(id),
                    None => self.free_connector(),
                };
                let usable = c.filter(|&c| {
                    let connector = &self.connectors[c];
                    let reserved_for_other = connector.reservation.as_ref().is_some_and(|r| r.tag != tag);
                    connector.session.is_none()
                        && !connector.authorizing
                        && !reserved_for_other
                        && matches!(connector.status, Status::Available | Status::Preparing | Status::Reserved)
                });
                let Some(c) = usable else {
                    return status(RemoteStartStopStatus::Rejected.as_str());
                };
                // AuthorizeRemoteTxRequests is false: start at once with the idTag given.
                self.set_status(stats, c, Status::Preparing, "NoError");
                self.begin_session(engine, c, tag, true, None, now);
                status(RemoteStartStopStatus::Accepted.as_str())
            }
            CentralSystemRequest::RemoteStopTransaction(stop) => {
                let c = self
                    .connectors
                    .iter()
                    .position(|c| c.session.as_ref().is_some_and(|s| s.transaction_id == Some(stop.transaction_id)));
                match c {
                    Some(c) => {
                        self.end_session(engine, c, "Remote", now);
                        status(RemoteStartStopStatus::Accepted.as_str())
                    }
                    None => status(RemoteStartStopStatus::Rejected.as_str()),
                }
            }
            CentralSystemRequest::Reset(reset) => {
                self.reboot = Some(match reset.kind {
                    ResetType::Hard => "HardReset",
                    ResetType::Soft => "SoftReset",
                });
                status("Accepted")
            }
            CentralSystemRequest::ReserveNow(reserve) => {
                let c = if reserve.connector_id == 0 {
                    self.free_connector().or(Some(0))
                } else {
                    self.connector_index(reserve.connector_id)
                };
                let Some(c) = c else { return status(ReservationStatus::Rejected.as_str()) };
                let connector = &self.connectors[c];
                let answer = if connector.fault_until.is_some() {
                    ReservationStatus::Faulted
                } else if connector.inoperative {
                    ReservationStatus::Unavailable
                } else if connector.session.is_some()
                    || connector.authorizing
                    || connector.reservation.as_ref().is_some_and(|r| r.id != reserve.reservation_id)
                {
                    ReservationStatus::Occupied
                } else {
                    let millis_left = (reserve.expiry_date - Utc::now()).num_milliseconds().max(0) as u64;
                    self.connectors[c].reservation = Some(Reservation {
                        id: reserve.reservation_id,
                        tag: Rc::from(reserve.id_tag.as_str()),
                        expires: now + Duration::from_millis(millis_left),
                    });
                    self.connectors[c].unplug_at = None;
                    self.set_status(stats, c, Status::Reserved, "NoError");
                    ReservationStatus::Accepted
                };
                status(answer.as_str())
            }
            CentralSystemRequest::CancelReservation(cancel) => {
                let c = self
                    .connectors
                    .iter()
                    .position(|c| c.reservation.as_ref().is_some_and(|r| r.id == cancel.reservation_id));
                match c {
                    Some(c) => {
                        self.connectors[c].reservation = None;
                        if self.connectors[c].status == Status::Reserved {
                            let status = self.connectors[c].resting_status();
                            self.set_status(stats, c, status, "NoError");
                        }
                        status("Accepted")
                    }
                    None => status("Rejected"),
                }
            }
            CentralSystemRequest::TriggerMessage(trigger) => {
                let only = trigger.connector_id.map(|id| self.connector_index(id));
                if only == Some(None) {
                    return status("Rejected");
                }
                let only = only.flatten();
                match trigger.requested_message {
                    MessageTrigger::BootNotification => self.push(stats, Outgoing::Boot),
                    MessageTrigger::Heartbeat => self.push(stats, Outgoing::Heartbeat),
                    MessageTrigger::StatusNotification => match only {
                        Some(c) => {
                            let status = self.connectors[c].status;
                            let error = if status == Status::Faulted { "OtherError" } else { "NoError" };
                            self.set_status(stats, c, status, error);
                        }
                        None => self.queue_all_statuses(stats),
                    },
                    MessageTrigger::MeterValues => {
                        for c in 0..self.connectors.len() {
                            if only.is_none_or(|only| only == c) {
                                self.update_meter(c, now);
                                let message = self.meter_message(c, Utc::now());
                                self.push(stats, message);
                            }
                        }
                    }
                    MessageTrigger::DiagnosticsStatusNotification => self.push(stats, Outgoing::Diagnostics("Idle")),
                    MessageTrigger::FirmwareStatusNotification => self.push(stats, Outgoing::Firmware("Idle")),
                }
                status("Accepted")
            }
            CentralSystemRequest::ChangeAvailability(change) => {
                let targets: Vec<usize> = if change.connector_id == 0 {
                    (0..self.connectors.len()).collect()
                } else {
                    match self.connector_index(change.connector_id) {
                        Some(c) => vec![c],
                        None => return status(AvailabilityStatus::Rejected.as_str()),
                    }
                };
                let inoperative = change.kind == AvailabilityType::Inoperative;
                let mut scheduled = false;
                for c in targets {
                    let connector = &mut self.connectors[c];
                    if inoperative && connector.session.is_some() {
                        connector.inoperative_after_session = true;
                        scheduled = true;
                        continue;
                    }
                    connector.inoperative = inoperative;
                    connector.inoperative_after_session = false;
                    if connector.session.is_none() && !connector.authorizing && connector.unplug_at.is_none() {
                        let status = connector.resting_status();
                        if status != connector.status {
                            self.set_status(stats, c, status, "NoError");
                        }
                    }
                }
                let answer = if scheduled { AvailabilityStatus::Scheduled } else { AvailabilityStatus::Accepted };
                status(answer.as_str())
            }
            CentralSystemRequest::UnlockConnector(unlock) => {
                if let Some(c) = self.connector_index(unlock.connector_id) {
                    self.end_session(engine, c, "UnlockCommand", now);
                    status("Unlocked")
                } else {
                    status("NotSupported")
                }
            }
            CentralSystemRequest::ChangeConfiguration(change) => {
                let value = change.value.as_str();
                let seconds =
                    value.parse::<f64>().ok().filter(|s| *s > 0.0).and_then(|s| Duration::try_from_secs_f64(s).ok());
                let answer = match (change.key.as_str(), seconds) {
                    ("HeartbeatInterval", Some(interval)) => {
                        self.heartbeat = interval;
                        self.heartbeat_due = self.accepted.then(|| now + interval);
                        ConfigurationStatus::Accepted
                    }
                    ("MeterValueSampleInterval", Some(interval)) => {
                        self.meter_interval = interval;
                        ConfigurationStatus::Accepted
                    }
                    ("HeartbeatInterval" | "MeterValueSampleInterval", None) => ConfigurationStatus::Rejected,
                    ("NumberOfConnectors" | "SupportedFeatureProfiles", _) => ConfigurationStatus::Rejected,
                    ("AuthorizeRemoteTxRequests" | "LocalAuthorizeOffline" | "StopTransactionOnInvalidId", _) => {
                        ConfigurationStatus::Accepted
                    }
                    _ => ConfigurationStatus::NotSupported,
                };
                status(answer.as_str())
            }
            CentralSystemRequest::GetConfiguration(get) => self.configuration(get.key.as_deref()),
            CentralSystemRequest::ClearCache(_) => {
                self.auth_cache.clear();
                status("Accepted")
            }
            CentralSystemRequest::DataTransfer(_) => status("UnknownVendorId"),
            CentralSystemRequest::SetChargingProfile(_) => status("Accepted"),
            CentralSystemRequest::ClearChargingProfile(_) => status("Accepted"),
            CentralSystemRequest::GetCompositeSchedule(_) => status("Rejected"),
            CentralSystemRequest::SendLocalList(list) => {
                self.local_list_version = list.list_version;
                status("Accepted")
            }
            CentralSystemRequest::GetLocalListVersion(_) => json!({ "listVersion": self.local_list_version }),
            CentralSystemRequest::GetDiagnostics(_) => {
                self.push(stats, Outgoing::Diagnostics("Uploading"));
                self.push(stats, Outgoing::Diagnostics("Uploaded"));
                json!({ "fileName": format!("diagnostics-{}.log", self.id) })
            }
            CentralSystemRequest::UpdateFirmware(_) => {
                for step in ["Downloading", "Downloaded", "Installing", "Installed"] {
                    self.push(stats, Outgoing::Firmware(step));
                }
                json!({})
            }
        }
    }

    fn configuration(&self, keys: Option<&[kilowatt_actors::ocpp::CiString50]>) -> Value {
        let known = [
            ("HeartbeatInterval", false, self.heartbeat.as_secs().to_string()),
            ("MeterValueSampleInterval", false, self.meter_interval.as_secs().max(1).to_string()),
            ("NumberOfConnectors", true, self.connectors.len().to_string()),
            ("AuthorizeRemoteTxRequests", false, "false".to_owned()),
            ("LocalAuthorizeOffline", false, "true".to_owned()),
            ("StopTransactionOnInvalidId", false, "true".to_owned()),
            ("SupportedFeatureProfiles", true, FEATURE_PROFILES.to_owned()),
        ];
        let entry =
            |(key, readonly, value): &(&str, bool, String)| json!({ "key": key, "readonly": readonly, "value": value });
        let Some(keys) = keys.filter(|k| !k.is_empty()) else {
            return json!({ "configurationKey": known.iter().map(entry).collect::<Vec<_>>() });
        };
        let (mut found, mut unknown) = (Vec::new(), Vec::new());
        for key in keys {
            match known.iter().find(|(name, _, _)| *name == key.as_str()) {
                Some(known_key) => found.push(entry(known_key)),
                None => unknown.push(json!(key.as_str())),
            }
        }
        json!({ "configurationKey": found, "unknownKey": unknown })
    }

    // ---- timers ---------------------------------------------------------------------------

    /// The next time something is due.
    fn next_deadline(&self, now: Instant) -> Instant {
        let mut next = now + Duration::from_secs(3600);
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at
                && at < next
            {
                next = at;
            }
        };
        if self.connected {
            consider(self.pending.as_ref().map(|p| p.sent_at + self.call_timeout));
            consider(self.heartbeat_due);
            consider(self.next_outage);
            if self.needs_boot && self.pending.is_none() {
                consider(Some(self.boot_retry_at));
            }
        }
        consider(self.next_arrival);
        consider(self.next_fault);
        for connector in &self.connectors {
            consider(connector.session.as_ref().map(|s| s.next_meter));
            consider(connector.unplug_at);
            consider(connector.fault_until);
            consider(connector.reservation.as_ref().map(|r| r.expires));
        }
        next
    }

    /// Does whatever is due at `now`; answers an outage to simulate, if one is due.
    fn on_timer(&mut self, engine: &Engine, now: Instant) -> Option<Instant> {
        let stats = engine.stats();
        if engine.is_stopping() {
            // Only the last answers matter now.
            if self.pending.as_ref().is_some_and(|p| now >= p.sent_at + self.call_timeout) {
                self.on_timeout(engine, now);
            }
            return None;
        }
        if self.connected {
            if self.pending.as_ref().is_some_and(|p| now >= p.sent_at + self.call_timeout) {
                self.on_timeout(engine, now);
            }
            if self.accepted
                && let Some(due) = self.heartbeat_due.filter(|&due| now >= due)
            {
                let queued = self.queue.iter().any(|m| matches!(m, Outgoing::Heartbeat));
                if self.pending.is_some() || queued {
                    Stats::bump(&stats.late);
                }
                // A heartbeat still waiting to go out stands for this one too.
                if !queued {
                    self.push(stats, Outgoing::Heartbeat);
                }
                self.heartbeat_due = Some(next_tick(due, self.heartbeat, now));
            }
        }
        for c in 0..self.connectors.len() {
            if self.connectors[c].session.as_ref().is_some_and(|s| now >= s.next_meter) {
                self.meter_due(engine, c, now);
            }
            if self.connectors[c].unplug_at.is_some_and(|at| now >= at) {
                self.connectors[c].unplug_at = None;
                let status = self.connectors[c].resting_status();
                self.set_status(stats, c, status, "NoError");
            }
            if self.connectors[c].fault_until.is_some_and(|at| now >= at) {
                self.connectors[c].fault_until = None;
                let status = self.connectors[c].resting_status();
                self.set_status(stats, c, status, "NoError");
            }
            if self.connectors[c].reservation.as_ref().is_some_and(|r| now >= r.expires) {
                self.connectors[c].reservation = None;
                if self.connectors[c].status == Status::Reserved {
                    let status = self.connectors[c].resting_status();
                    self.set_status(stats, c, status, "NoError");
                }
            }
        }
        if self.next_arrival.is_some_and(|at| now >= at) {
            self.arrive(engine, now);
        }
        if self.next_fault.is_some_and(|at| now >= at) {
            self.next_fault = self.rng.exponential(engine.config().fault_rate).map(|d| now + d);
            self.fault(engine, now);
        }
        if self.connected && self.next_outage.is_some_and(|at| now >= at) {
            self.next_outage = self.rng.exponential(engine.config().reconnect_rate).map(|d| now + d);
            Stats::bump(&stats.reconnects);
            return Some(now + seconds(OUTAGE_SECONDS, &mut self.rng));
        }
        None
    }

    fn fault(&mut self, engine: &Engine, now: Instant) {
        let stats = engine.stats();
        let c = self.rng.below(self.connectors.len());
        if self.connectors[c].fault_until.is_some() {
            return;
        }
        Stats::bump(&stats.faults);
        let error = FAULTS[self.rng.below(FAULTS.len())];
        self.connectors[c].fault_until = Some(now + seconds(FAULT_SECONDS, &mut self.rng));
        self.connectors[c].unplug_at = None;
        self.connectors[c].authorizing = false;
        self.set_status(stats, c, Status::Faulted, error);
        self.end_session(engine, c, "Other", now);
    }

    // ---- the connection -------------------------------------------------------------------

    fn on_text(&mut self, engine: &Engine, text: &str, now: Instant) {
        let stats = engine.stats();
        match Frame::parse(text) {
            Ok(Frame::Call(call)) => self.on_command(engine, &call.message_id, &call.action, &call.payload, now),
            Ok(Frame::CallResult(result)) => self.on_answer(engine, &result.message_id, Ok(&result.payload), now),
            Ok(Frame::CallError(error)) => {
                tracing::debug!(charge_point_id = %self.id, code = error.error.code.as_str(), description = %error.error.description, "CALLERROR");
                self.on_answer(engine, &error.message_id, Err(()), now);
            }
            Err(error) => {
                Stats::bump(&stats.protocol_errors);
                tracing::debug!(charge_point_id = %self.id, %error, "broken frame from the central system");
                if let Some(reply) = error.reply_json() {
                    self.replies.push(reply);
                }
            }
        }
    }

    fn went_offline(&mut self, engine: &Engine) {
        self.connected = false;
        Stats::gauge(&engine.stats().connected, false);
        // An unanswered transaction message is sent again; the rest is moot.
        if let Some(pending) = self.pending.take()
            && pending.message.is_transactional()
        {
            self.queue.push_front(pending.message);
        }
        self.queue.retain(Outgoing::is_transactional);
        self.replies.clear();
        for connector in &mut self.connectors {
            // A car waiting for an Authorize answer gives up.
            connector.authorizing = false;
            if connector.status == Status::Preparing && connector.session.is_none() {
                connector.status = connector.resting_status();
            }
        }
        self.heartbeat_due = None;
    }

    /// Runs while the WebSocket is open.
    async fn online<S>(&mut self, engine: &Engine, mut socket: S) -> Ended
    where
        S: Stream<Item = Result<WsFrame, WsProtocolError>> + Sink<Message> + Unpin,
    {
        let stats = engine.stats();
        self.connected = true;
        Stats::gauge(&stats.connected, true);
        if self.accepted && !self.needs_boot {
            self.heartbeat_due = Some(Instant::now() + self.heartbeat);
        }
        let sleep = tokio::time::sleep_until(Instant::now());
        tokio::pin!(sleep);
        // Made once for the connection, not at every turn of the loop (each one joins and leaves
        // the stop signal's list of waiters). It is not polled again once it has fired: the
        // loop then drains.
        let stopped = engine.stopped();
        tokio::pin!(stopped);
        let mut draining_until: Option<Instant> = None;
        let ended = 'connection: loop {
            let now = Instant::now();
            if engine.is_stopping() && draining_until.is_none() {
                // Switched off: end the transactions and give their StopTransactions a moment.
                // Meter values it never sent go with it (the StopTransaction carries the final
                // register), so a backlog cannot keep the stops from going out.
                self.queue.retain(|message| !matches!(message, Outgoing::Meter { .. }));
                self.stop_all(engine, "Local", now);
                draining_until = Some(now + engine.config().drain);
            }
            let mut wrote = false;
            while let Some(text) = self.next_frame(engine, now) {
                if socket.feed(Message::Text(text.into())).await.is_err() {
                    Stats::bump(&stats.disconnects);
                    break 'connection Ended::Lost;
                }
                wrote = true;
            }
            if wrote && socket.flush().await.is_err() {
                Stats::bump(&stats.disconnects);
                break 'connection Ended::Lost;
            }
            if let Some(until) = draining_until
                && (now >= until || (self.pending.is_none() && !self.queue.iter().any(Outgoing::is_transactional)))
            {
                close_politely(&mut socket).await;
                break Ended::Stop;
            }
            if let Some(reason) = self.reboot.take() {
                Stats::bump(&stats.reconnects);
                self.stop_all(engine, reason, now);
                let _ = socket.send(Message::Close(Some(CloseReason::from(CloseCode::Normal)))).await;
                self.needs_boot = true;
                self.accepted = false;
                self.boot_retry_at = now + REBOOT_TIME;
                break Ended::OfflineUntil(now + REBOOT_TIME);
            }
            let deadline = self.next_deadline(now);
            sleep.as_mut().reset(draining_until.map_or(deadline, |until| deadline.min(until)));
            tokio::select! {
                () = &mut stopped, if draining_until.is_none() => {}
                frame = socket.next() => {
                    let now = Instant::now();
                    match frame {
                        Some(Ok(WsFrame::Text(bytes))) => {
                            Stats::bump(&stats.received);
                            match std::str::from_utf8(&bytes) {
                                Ok(text) => self.on_text(engine, text, now),
                                Err(_) => Stats::bump(&stats.protocol_errors),
                            }
                        }
                        Some(Ok(WsFrame::Ping(data))) => {
                            if socket.send(Message::Pong(data)).await.is_err() {
                                Stats::bump(&stats.disconnects);
                                break Ended::Lost;
                            }
                        }
                        Some(Ok(WsFrame::Pong(_))) => {}
                        Some(Ok(WsFrame::Close(reason))) => {
                            let _ = socket.send(Message::Close(reason.clone())).await;
                            Stats::bump(&stats.disconnects);
                            tracing::debug!(charge_point_id = %self.id, ?reason, "closed by the central system");
                            break Ended::Lost;
                        }
                        Some(Ok(WsFrame::Binary(_) | WsFrame::Continuation(_))) => Stats::bump(&stats.protocol_errors),
                        Some(Err(error)) => {
                            Stats::bump(&stats.disconnects);
                            tracing::debug!(charge_point_id = %self.id, %error, "connection broke");
                            break Ended::Lost;
                        }
                        None => {
                            Stats::bump(&stats.disconnects);
                            break Ended::Lost;
                        }
                    }
                }
                () = &mut sleep => {
                    if let Some(until) = self.on_timer(engine, Instant::now()) {
                        // A simulated network loss: drop the connection without a close frame.
                        break Ended::OfflineUntil(until);
                    }
                }
            }
        };
        self.went_offline(engine);
        ended
    }

    /// Runs while disconnected, until `until`: sessions keep charging and queueing.
    async fn offline(&mut self, engine: &Engine, until: Instant) -> bool {
        loop {
            let now = Instant::now();
            if engine.is_stopping() {
                return false;
            }
            if now >= until {
                return true;
            }
            let deadline = self.next_deadline(now).min(until);
            tokio::select! {
                () = engine.stopped() => return false,
                () = tokio::time::sleep_until(deadline) => {
                    self.on_timer(engine, Instant::now());
                }
            }
        }
    }
}

/// Sends a normal close and waits briefly for the central system's close in return.
async fn close_politely<S>(socket: &mut S)
where
    S: Stream<Item = Result<WsFrame, WsProtocolError>> + Sink<Message> + Unpin,
{
    if socket.send(Message::Close(Some(CloseReason::from(CloseCode::Normal)))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(frame)) = socket.next().await {
            if matches!(frame, WsFrame::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// The task of simulated charger `index`: connects, runs, reconnects with backoff, until the
/// run stops.
pub(crate) async fn run(engine: Rc<Engine>, index: usize, tag_offset: usize) {
    let mut charger = Charger::new(&engine, index, tag_offset);
    let stats = engine.stats();
    let mut failures: u32 = 0;
    loop {
        if engine.is_stopping() {
            return;
        }
        let mut request = engine.client(index).ws(charger.url.as_str()).protocols(["ocpp1.6"]);
        if let Some(password) = &engine.config().password {
            request = request.basic_auth(&charger.id, Some(password.as_str()));
        }
        let connected = tokio::select! {
            () = engine.stopped() => return,
            result = request.connect() => result,
        };
        let offline_until = match connected {
            Ok((_, socket)) => {
                failures = 0;
                match charger.online(&engine, socket).await {
                    Ended::Stop => return,
                    Ended::Lost => Instant::now() + backoff(&mut charger.rng, 0),
                    Ended::OfflineUntil(until) => until,
                }
            }
            Err(error) => {
                Stats::bump(&stats.connect_failures);
                // One warning per run: after a restart of the central system every charger fails
                // at once, and the progress line counts the failures anyway.
                if failures == 0 && !engine.warned_connect.replace(true) {
                    tracing::warn!(charge_point_id = %charger.id, %error, "cannot connect (further failures are counted, not logged)");
                } else {
                    tracing::debug!(charge_point_id = %charger.id, %error, "cannot connect");
                }
                failures = failures.saturating_add(1);
                Instant::now() + backoff(&mut charger.rng, failures)
            }
        };
        if !charger.offline(&engine, offline_until).await {
            return;
        }
    }
}

/// When a periodic message is next due: one interval after the last was due (a fixed rate,
/// whatever the answers' delay), or one interval from now when it fell more than an interval
/// behind.
fn next_tick(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next > now { next } else { now + interval }
}

/// Reconnect delay after `failures` failed attempts: 1 s doubling to 30 s, with jitter so a
/// restarted central system is not hit by every charger at once.
fn backoff(rng: &mut Rng, failures: u32) -> Duration {
    let base = Duration::from_secs(1u64 << failures.min(5)).min(MAX_BACKOFF);
    base.mul_f64(rng.range(0.5, 1.5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::{Config, Scenario};

    #[test]
    fn timestamps_are_rfc_3339_utc_with_milliseconds() {
        for (text, written) in [
            ("2026-11-23T05:10:00.250Z", "\"2026-11-23T05:10:00.250Z\""),
            ("2026-01-02T03:04:05.006789Z", "\"2026-01-02T03:04:05.006Z\""),
            ("1999-12-31T23:59:59.999999999+00:00", "\"1999-12-31T23:59:59.999Z\""),
            ("2026-11-23T10:40:00+05:30", "\"2026-11-23T05:10:00.000Z\""),
        ] {
            let at = DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).expect("a date-time");
            let mut buf = String::new();
            timestamp(&mut buf, &at);
            assert_eq!(buf, written);
        }
    }

    fn charger(scenario: Scenario) -> (Engine, Charger) {
        let mut config = Config::new("ws://127.0.0.1:9", 3);
        config.scenario = scenario;
        let engine = Engine::new(config);
        let charger = Charger::new(&engine, 0, 0);
        (engine, charger)
    }

    fn frame(text: &str) -> Value {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[actix_web::test]
    async fn frames_are_valid_ocpp_requests() {
        let (engine, mut cp) = charger(Scenario::Charging);
        cp.connected = true;
        cp.needs_boot = false;
        cp.accepted = true;
        cp.transaction_ids.push((1, 42));
        let at = Utc::now();
        let tag: Rc<str> = Rc::from("TAG\"1");
        let messages = [
            Outgoing::Boot,
            Outgoing::Heartbeat,
            Outgoing::Status { connector: 1, status: Status::SuspendedEv, error: "NoError", at },
            Outgoing::Authorize { connector: 1, tag: tag.clone() },
            Outgoing::Start { connector: 1, seq: 1, tag: tag.clone(), meter_start: 10, reservation: Some(3), at },
            Outgoing::Meter { connector: 1, seq: Some(1), wh: 20, power_w: 7000, soc: Some(55), at },
            Outgoing::Stop { seq: 1, tag: Some(tag), meter_stop: 30, reason: "Local", at },
            Outgoing::Diagnostics("Uploaded"),
            Outgoing::Firmware("Installed"),
        ];
        for message in messages {
            let text = cp.render(7, &message);
            let Ok(Frame::Call(call)) = Frame::parse(&text) else { panic!("not a CALL: {text}") };
            assert_eq!(call.message_id, "7");
            kilowatt_actors::ocpp::ChargePointRequest::parse(&call.action, &call.payload)
                .unwrap_or_else(|e| panic!("{text}: {e:?}"));
        }
        let meter = frame(&cp.render(8, &cp.meter_message(0, at)));
        assert!(meter[3].get("transactionId").is_none());
        assert_eq!(meter[3]["meterValue"][0]["sampledValue"][1]["value"], "0");
        drop(engine);
    }

    #[actix_web::test]
    async fn a_remote_start_starts_a_transaction_and_a_remote_stop_ends_it() {
        let (engine, mut cp) = charger(Scenario::Idle);
        cp.connected = true;
        cp.needs_boot = false;
        cp.accepted = true;
        let now = Instant::now();
        let start = json!({ "connectorId": 2, "idTag": "DRIVER1" });
        cp.on_command(&engine, "s1", "RemoteStartTransaction", &start, now);
        assert_eq!(frame(&cp.replies[0])[2]["status"], "Accepted");
        assert!(cp.connectors[1].session.is_some());
        // Preparing, StartTransaction, Charging.
        let actions: Vec<_> = cp.queue.iter().map(|m| m.action()).collect();
        assert_eq!(actions, [Action::StatusNotification, Action::StartTransaction, Action::StatusNotification]);
        // The same connector again is refused.
        cp.on_command(&engine, "s2", "RemoteStartTransaction", &start, now);
        assert_eq!(frame(&cp.replies[1])[2]["status"], "Rejected");

        // The central system numbers the transaction.
        cp.queue.clear();
        cp.pending = Some(Pending {
            id: 5,
            message: Outgoing::Start {
                connector: 2,
                seq: 1,
                tag: Rc::from("DRIVER1"),
                meter_start: 0,
                reservation: None,
                at: Utc::now(),
            },
            sent_at: now,
        });
        let answer = json!({ "transactionId": 77, "idTagInfo": { "status": "Accepted" } });
        cp.on_answer(&engine, "5", Ok(&answer), now);
        assert_eq!(cp.connectors[1].session.as_ref().unwrap().transaction_id, Some(77));

        cp.on_command(&engine, "s3", "RemoteStopTransaction", &json!({ "transactionId": 77 }), now);
        assert_eq!(frame(&cp.replies[2])[2]["status"], "Accepted");
        assert!(cp.connectors[1].session.is_none());
        let stop = cp.queue.iter().find(|m| m.action() == Action::StopTransaction).expect("stop queued");
        let stop = frame(&cp.render(9, stop));
        assert_eq!(stop[3]["transactionId"], 77);
        assert_eq!(stop[3]["reason"], "Remote");
        assert_eq!(engine.stats().charging.get(), 0);
    }

    #[actix_web::test]
    async fn bad_commands_get_callerrors_and_unknown_ones_not_implemented() {
        let (engine, mut cp) = charger(Scenario::Idle);
        let now = Instant::now();
        cp.on_command(&engine, "a", "RemoteStopTransaction", &json!({}), now);
        cp.on_command(&engine, "b", "Teleport", &json!({}), now);
        assert_eq!(frame(&cp.replies[0])[0], 4);
        assert_eq!(frame(&cp.replies[1])[2], "NotImplemented");
    }

    #[actix_web::test]
    async fn heartbeats_keep_a_fixed_pace_and_count_as_late_when_the_last_one_is_still_waiting() {
        let (engine, mut cp) = charger(Scenario::Idle);
        cp.connected = true;
        cp.needs_boot = false;
        cp.accepted = true;
        cp.heartbeat = Duration::from_secs(1);
        let start = Instant::now();
        cp.heartbeat_due = Some(start);
        // Handled 300 ms late, the next is still due one interval after this one was.
        cp.on_timer(&engine, start + Duration::from_millis(300));
        assert_eq!(cp.heartbeat_due, Some(start + Duration::from_secs(1)));
        assert_eq!(cp.queue.len(), 1);
        assert_eq!(engine.stats().late.get(), 0);
        // The first has not gone out when the next falls due: late, and not queued twice.
        cp.on_timer(&engine, start + Duration::from_secs(1));
        assert_eq!(cp.queue.len(), 1);
        assert_eq!(engine.stats().late.get(), 1);
        // Far behind, the pace starts again from now instead of catching up in a burst.
        cp.on_timer(&engine, start + Duration::from_secs(10));
        assert_eq!(cp.heartbeat_due, Some(start + Duration::from_secs(11)));
    }

    #[actix_web::test]
    async fn with_one_tag_per_charger_every_car_at_a_charger_presents_the_same_idtag() {
        let mut config = Config::new("ws://127.0.0.1:9", 3);
        config.scenario = Scenario::Charging;
        config.id_tags = vec!["TAG-A".to_owned(), "TAG-B".to_owned(), "TAG-C".to_owned()];
        config.one_tag_per_charger = true;
        let engine = Engine::new(config);
        let mut cp = Charger::new(&engine, 1, 1);
        cp.connected = true;
        cp.needs_boot = false;
        cp.accepted = true;
        for _ in 0..3 {
            cp.arrive(&engine, Instant::now());
            let tag = cp.queue.iter().find_map(|m| match m {
                Outgoing::Authorize { tag, .. } => Some(tag.clone()),
                _ => None,
            });
            assert_eq!(tag.as_deref(), Some("TAG-B"));
            // The car leaves again.
            cp.queue.clear();
            for connector in &mut cp.connectors {
                connector.authorizing = false;
                connector.status = Status::Available;
            }
        }
    }

    #[actix_web::test]
    async fn acknowledged_meter_values_count_their_sampled_values_and_refused_ones_do_not() {
        let (engine, mut cp) = charger(Scenario::Charging);
        let now = Instant::now();
        let meter = |soc| Outgoing::Meter { connector: 1, seq: None, wh: 10, power_w: 0, soc, at: Utc::now() };
        cp.pending = Some(Pending { id: 3, message: meter(Some(50)), sent_at: now });
        cp.on_answer(&engine, "3", Ok(&json!({})), now);
        cp.pending = Some(Pending { id: 4, message: meter(None), sent_at: now });
        cp.on_answer(&engine, "4", Err(()), now);
        let stats = engine.stats();
        assert_eq!(stats.meter_samples_acknowledged.get(), 3, "energy, power and SoC of the first only");
        assert_eq!(stats.latency_of(Action::MeterValues).count(), 2);
        assert_eq!(stats.answers.get(), 2);
        assert_eq!(stats.call_errors_of(Action::MeterValues), 1);
    }

    #[actix_web::test]
    async fn offline_transaction_messages_wait_in_the_queue_and_the_rest_are_dropped() {
        let (engine, mut cp) = charger(Scenario::Charging);
        cp.connected = true;
        cp.needs_boot = false;
        cp.accepted = true;
        cp.went_offline(&engine);
        let now = Instant::now();
        cp.auth_cache.push(Rc::from("CACHED"));
        cp.begin_session(&engine, 0, Rc::from("CACHED"), true, None, now);
        cp.meter_due(&engine, 0, now + Duration::from_secs(60));
        cp.push(engine.stats(), Outgoing::Heartbeat);
        let actions: Vec<_> = cp.queue.iter().map(|m| m.action()).collect();
        assert_eq!(actions, [Action::StartTransaction, Action::MeterValues]);
        let Outgoing::Meter { wh, .. } = cp.queue[1] else { panic!() };
        let Outgoing::Start { meter_start, .. } = cp.queue[0] else { panic!() };
        assert!(wh > meter_start, "the meter advanced while offline");
    }
}
