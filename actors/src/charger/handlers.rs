//! What the central system does with each message a charger sends: plain async functions
//! over the store, called one at a time (in order) per connection. Each answers the
//! CALLRESULT payload or a CALLERROR; a database failure becomes InternalError so the charger
//! retries instead of losing the message.
//!
//! The most frequent messages never hold a database connection of their own: a Heartbeat is
//! answered at once (last-seen goes to the presence batcher, [`crate::last_seen`]); Boot-,
//! Status- and MeterValues go to the group-committing writers ([`crate::meter_writer`]), and
//! Authorize, Start- and StopTransaction to the transaction writer ([`super::transactions`]);
//! each is answered once its batch is committed. A MeterValues is answered from the commit
//! itself ([`AnswerEarly`]), not when its connection's task next runs.

use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use serde_json::json;

use super::ChargerEnv;
use super::transactions::{TransactionDone, TransactionMessage, TransactionWrite};
use crate::bus::{charger_topic, session_topic};
use crate::meter_writer::WriteError;
use crate::ocpp::messages::core::*;
use crate::ocpp::messages::firmware::*;
use crate::ocpp::{
    AuthorizationStatus, CallError, CentralSystemResponse, ChargePointRequest, DataTransferStatus, ErrorCode,
    IdTagInfo, IdToken, MeterValue, RegistrationStatus,
};
use crate::registry::{ConnectorFreed, NotifyChargerSessions, NotifySession};
use crate::session::SessionEvent;
use crate::store::chargers::{self, BootReport, StatusReport};
use crate::store::meters::{self, MeterInput, MeterSample};
use crate::store::sessions::{IdTagDecision, Settlement, StartInput, StopInput, StopOutcome};
use crate::store::{AsyncPgConnection, StoreError, pool};

/// What one connection knows about its charger.
#[derive(Debug, Clone)]
pub struct ConnectionState {
    /// The charger's row.
    pub charger_id: i64,
    /// The charge point ID.
    pub charge_point_id: String,
    /// accepted, pending or rejected.
    pub registration_status: String,
}

fn internal(error: StoreError) -> CallError {
    tracing::error!(%error, "store error while handling a charger message");
    CallError::internal("The central system could not process the message; please retry.")
}

fn write_failed(error: WriteError) -> CallError {
    tracing::error!(%error, "group-committed write failed while handling a charger message");
    match error {
        WriteError::Busy => CallError::internal("The central system is busy; please retry."),
        WriteError::Store(_) | WriteError::Stopped => {
            CallError::internal("The central system could not process the message; please retry.")
        }
    }
}

fn id_tag_info(decision: &IdTagDecision) -> IdTagInfo {
    IdTagInfo {
        status: AuthorizationStatus::from_wire_str(decision.status).unwrap_or(AuthorizationStatus::Invalid),
        parent_id_tag: decision.parent_id_tag.as_deref().and_then(|p| IdToken::new(p).ok()),
        expiry_date: decision.expiry,
    }
}

/// The answer to a Heartbeat: the time, and nothing to store (the connection notes last-seen
/// for every frame it receives).
pub fn heartbeat(env: &ChargerEnv) -> CentralSystemResponse {
    HeartbeatResponse { current_time: env.clock.now() }.into()
}

/// Sends a CALL's answer ahead of the connection's task: a handler whose answer is settled
/// once a group-committed write is (MeterValues) hands it to the writer's arrival hook
/// ([`crate::reply::channel_with_hook`]), so the CALLRESULT leaves as soon as the charger's thread
/// takes the commit, not a pass over that thread's ready tasks later when the connection's task
/// resumes. The handler still returns the same answer, which the connection then does not send
/// again.
pub type AnswerEarly = Box<dyn FnOnce(&CentralSystemResponse)>;

/// Handles one request from the charger; `answer_early`, if the request's answer can be sent as
/// soon as its write is committed (see [`AnswerEarly`]).
pub async fn handle(
    env: &ChargerEnv,
    state: &mut ConnectionState,
    request: ChargePointRequest,
    answer_early: Option<AnswerEarly>,
) -> Result<CentralSystemResponse, CallError> {
    let now = env.clock.now();
    let allowed_before_acceptance =
        matches!(request, ChargePointRequest::BootNotification(_) | ChargePointRequest::Heartbeat(_));
    if state.registration_status != "accepted" && !allowed_before_acceptance {
        return Err(CallError::new(
            ErrorCode::SecurityError,
            "This charge point is not accepted yet: send BootNotification and wait for Accepted.",
        ));
    }
    match request {
        ChargePointRequest::Heartbeat(_) => Ok(heartbeat(env)),
        ChargePointRequest::BootNotification(boot) => {
            let report = BootReport {
                vendor: Some(boot.charge_point_vendor.as_str().to_string()),
                model: Some(boot.charge_point_model.as_str().to_string()),
                charge_point_serial: boot.charge_point_serial_number.map(|s| s.as_str().to_string()),
                charge_box_serial: boot.charge_box_serial_number.map(|s| s.as_str().to_string()),
                firmware_version: boot.firmware_version.map(|s| s.as_str().to_string()),
                iccid: boot.iccid.map(|s| s.as_str().to_string()),
                imsi: boot.imsi.map(|s| s.as_str().to_string()),
                meter_type: boot.meter_type.map(|s| s.as_str().to_string()),
                meter_serial: boot.meter_serial_number.map(|s| s.as_str().to_string()),
            };
            state.registration_status =
                env.writes.boots.submit((state.charger_id, report, now)).await.map_err(write_failed)?;
            let heartbeat = i32::try_from(env.settings.heartbeat_interval.as_secs()).unwrap_or(i32::MAX);
            let (status, interval) = match state.registration_status.as_str() {
                "accepted" => (RegistrationStatus::Accepted, heartbeat),
                "pending" => (RegistrationStatus::Pending, heartbeat.min(60)),
                _ => (RegistrationStatus::Rejected, heartbeat),
            };
            env.bus.publish(
                charger_topic(&state.charge_point_id),
                "chargerBooted",
                json!({ "status": status.as_str() }),
            );
            Ok(BootNotificationResponse { current_time: now, interval, status }.into())
        }
        ChargePointRequest::StatusNotification(report) => {
            let status = StatusReport {
                connector_number: i32::try_from(report.connector_id).unwrap_or(i32::MAX),
                status: report.status.as_str().to_string(),
                error_code: report.error_code.as_str().to_string(),
                info: report.info.map(|s| s.as_str().to_string()),
                vendor_id: report.vendor_id.map(|s| s.as_str().to_string()),
                vendor_error_code: report.vendor_error_code.map(|s| s.as_str().to_string()),
                reported_at: report.timestamp,
            };
            env.writes.statuses.submit((state.charger_id, status.clone(), now)).await.map_err(write_failed)?;
            if status.status == "Available" && status.connector_number > 0 {
                env.registry.do_send(ConnectorFreed {
                    charge_point_id: state.charge_point_id.clone(),
                    connector_number: status.connector_number,
                });
            }
            if status.status == "Faulted" {
                env.registry.do_send(NotifyChargerSessions {
                    charge_point_id: state.charge_point_id.clone(),
                    event: SessionEvent::Faulted {
                        connector_number: status.connector_number,
                        error_code: status.error_code.clone(),
                    },
                });
            }
            env.bus.publish(
                charger_topic(&state.charge_point_id),
                "connectorStatus",
                json!({
                    "chargePointId": state.charge_point_id,
                    "connectorId": status.connector_number,
                    "status": status.status,
                    "errorCode": status.error_code,
                    "info": status.info,
                    "at": status.reported_at.unwrap_or(now),
                }),
            );
            Ok(StatusNotificationResponse {}.into())
        }
        ChargePointRequest::MeterValues(values) => {
            let connector_number = i32::try_from(values.connector_id).unwrap_or(i32::MAX);
            let on_stored = answer_early.map(|send| move || send(&MeterValuesResponse {}.into()));
            record_meter_values(
                env,
                state,
                connector_number,
                values.transaction_id,
                &values.meter_value,
                now,
                on_stored,
            )
            .await?;
            Ok(MeterValuesResponse {}.into())
        }
        ChargePointRequest::StopTransaction(stop) => {
            // Its readings first, through the meter writer.
            if let Some(data) = stop.transaction_data.as_deref().filter(|d| !d.is_empty()) {
                record_meter_values(env, state, 0, Some(stop.transaction_id), data, now, None::<fn()>).await?;
            }
            stop_transaction(env, state, stop, now).await
        }
        ChargePointRequest::Authorize(request) => {
            let message = TransactionMessage::Authorize { id_tag: request.id_tag.as_str().to_string() };
            let TransactionDone::Authorized(decision) = submit_transaction(env, message, now).await? else {
                return Err(mismatched_answer());
            };
            Ok(AuthorizeResponse { id_tag_info: id_tag_info(&decision) }.into())
        }
        ChargePointRequest::StartTransaction(start) => start_transaction(env, state, start, now).await,
        ChargePointRequest::DataTransfer(transfer) => {
            tracing::info!(
                charge_point_id = %state.charge_point_id,
                vendor_id = %transfer.vendor_id.as_str(),
                message_id = ?transfer.message_id.as_ref().map(|m| m.as_str().to_string()),
                "DataTransfer from charger: no vendor extension registered"
            );
            Ok(DataTransferResponse { status: DataTransferStatus::UnknownVendorId, data: None }.into())
        }
        request => {
            let mut conn = pool::connection(&env.pool).await.map_err(internal)?;
            handle_with_connection(env, &mut conn, state, request).await
        }
    }
}

/// Queues a transaction message for the group-committing transaction writer.
async fn submit_transaction(
    env: &ChargerEnv,
    message: TransactionMessage,
    now: DateTime<Utc>,
) -> Result<TransactionDone, CallError> {
    let write = TransactionWrite { message, received_at: now, min_start_balance: env.settings.min_start_balance };
    env.writes.transactions.submit(write).await.map_err(write_failed)
}

fn mismatched_answer() -> CallError {
    tracing::error!("the transaction writer answered a different kind of message");
    CallError::internal("The central system could not process the message; please retry.")
}

/// A StartTransaction: recorded (or recognised as a retransmission), then the session and its
/// watchers are told.
async fn start_transaction(
    env: &ChargerEnv,
    state: &ConnectionState,
    start: StartTransactionRequest,
    now: DateTime<Utc>,
) -> Result<CentralSystemResponse, CallError> {
    let input = StartInput {
        charger_id: state.charger_id,
        connector_number: i32::try_from(start.connector_id).unwrap_or(i32::MAX),
        id_tag: start.id_tag.as_str().to_string(),
        meter_start: start.meter_start,
        timestamp: start.timestamp,
    };
    let connector_number = input.connector_number;
    let TransactionDone::Started(outcome) = submit_transaction(env, TransactionMessage::Start(input), now).await?
    else {
        return Err(mismatched_answer());
    };
    for superseded in &outcome.superseded {
        env.registry.do_send(NotifySession { session_id: *superseded, event: SessionEvent::Settled });
    }
    if !outcome.retransmission {
        env.registry.do_send(NotifySession { session_id: outcome.session_id, event: SessionEvent::Started });
        let data = json!({
            "chargePointId": state.charge_point_id,
            "connectorId": connector_number,
            "sessionId": outcome.session_id,
            "transactionId": outcome.transaction_id,
            "idTagStatus": outcome.decision.status,
        });
        env.bus.publish(charger_topic(&state.charge_point_id), "transactionStarted", data.clone());
        env.bus.publish(session_topic(outcome.session_id), "sessionStarted", data);
    }
    Ok(StartTransactionResponse { id_tag_info: id_tag_info(&outcome.decision), transaction_id: outcome.transaction_id }
        .into())
}

/// The rare status reports, on one pooled connection.
async fn handle_with_connection(
    env: &ChargerEnv,
    conn: &mut AsyncPgConnection,
    state: &mut ConnectionState,
    request: ChargePointRequest,
) -> Result<CentralSystemResponse, CallError> {
    Ok(match request {
        ChargePointRequest::DiagnosticsStatusNotification(status) => {
            chargers::set_diagnostics_status(conn, state.charger_id, status.status.as_str()).await.map_err(internal)?;
            DiagnosticsStatusNotificationResponse {}.into()
        }
        ChargePointRequest::FirmwareStatusNotification(status) => {
            chargers::set_firmware_status(conn, state.charger_id, status.status.as_str()).await.map_err(internal)?;
            FirmwareStatusNotificationResponse {}.into()
        }

        // Served by `handle` itself, without holding this connection.
        ChargePointRequest::Heartbeat(_) => heartbeat(env),
        ChargePointRequest::BootNotification(_)
        | ChargePointRequest::StatusNotification(_)
        | ChargePointRequest::MeterValues(_)
        | ChargePointRequest::DataTransfer(_)
        | ChargePointRequest::Authorize(_)
        | ChargePointRequest::StartTransaction(_)
        | ChargePointRequest::StopTransaction(_) => {
            return Err(CallError::internal("The central system could not process the message; please retry."));
        }
    })
}

/// A StopTransaction (its readings already stored): settles the session exactly once.
async fn stop_transaction(
    env: &ChargerEnv,
    state: &ConnectionState,
    stop: StopTransactionRequest,
    now: DateTime<Utc>,
) -> Result<CentralSystemResponse, CallError> {
    let input = StopInput {
        charger_id: state.charger_id,
        transaction_id: stop.transaction_id,
        meter_stop: stop.meter_stop,
        timestamp: stop.timestamp,
        reason: stop.reason.map(|r| r.as_str().to_string()),
    };
    let message = TransactionMessage::Stop { input, id_tag: stop.id_tag.map(|tag| tag.as_str().to_string()) };
    let TransactionDone::Stopped { outcome, reconciled, id_tag } = submit_transaction(env, message, now).await? else {
        return Err(mismatched_answer());
    };
    match &outcome {
        StopOutcome::Unknown => tracing::warn!(
            charge_point_id = %state.charge_point_id,
            transaction_id = stop.transaction_id,
            "StopTransaction for an unknown transaction: recorded and acknowledged"
        ),
        StopOutcome::Known { session_id, settlement: Settlement::Settled { energy_wh, cost, meter_fault, .. } } => {
            env.registry.do_send(NotifySession { session_id: *session_id, event: SessionEvent::Settled });
            let data = json!({
                "chargePointId": state.charge_point_id,
                "sessionId": session_id,
                "transactionId": stop.transaction_id,
                "energyWh": energy_wh,
                "cost": cost,
                "meterFault": meter_fault,
            });
            env.bus.publish(charger_topic(&state.charge_point_id), "transactionStopped", data.clone());
            env.bus.publish(session_topic(*session_id), "sessionSettled", data);
        }
        StopOutcome::Known { settlement: Settlement::AlreadySettled, .. } => tracing::info!(
            charge_point_id = %state.charge_point_id,
            transaction_id = stop.transaction_id,
            ?reconciled,
            "StopTransaction for a session already settled"
        ),
    }
    Ok(StopTransactionResponse { id_tag_info: id_tag.as_ref().map(id_tag_info) }.into())
}

/// Stores readings through the group-committing meter writer (answered once committed), then
/// tells the session and its watchers where the meter stands.
async fn record_meter_values(
    env: &ChargerEnv,
    state: &ConnectionState,
    connector_number: i32,
    transaction_id: Option<i32>,
    values: &[MeterValue],
    now: DateTime<Utc>,
    on_stored: Option<impl FnOnce() + 'static>,
) -> Result<(), CallError> {
    let sampled_at = values.iter().map(|v| v.timestamp).max().unwrap_or(now);
    let (samples, sample_count) = meters::samples_json(values.iter().flat_map(|value| {
        value.sampled_value.iter().map(move |sample| MeterSample {
            sampled_at: (value.timestamp != sampled_at).then_some(value.timestamp),
            measurand: sample.measurand_or_default().as_str(),
            phase: sample.phase.map(|p| p.as_str()),
            unit: sample.unit.map(|u| u.as_str()),
            context: sample.context.map(|c| c.as_str()),
            location: sample.location.map(|l| l.as_str()),
            format: sample.format.map(|f| f.as_str()),
            raw_value: &sample.value,
            value: sample.base_value().map(|(value, _)| value),
        })
    }))
    .map_err(|error| {
        // Plain strings, numbers and timestamps always serialise; if they ever did not, the
        // charger is told to retry rather than the readings being stored empty.
        tracing::error!(charge_point_id = %state.charge_point_id, %error, "meter values not serialisable");
        CallError::internal("The central system could not process the message; please retry.")
    })?;
    let input = MeterInput {
        charger_id: state.charger_id,
        connector_number,
        transaction_id,
        samples,
        sample_count,
        sampled_at,
        energy_register_wh: crate::ocpp::energy_register_wh(values),
        power_w: crate::ocpp::power_active_import_w(values).and_then(|w| w.round().to_i64()),
        soc_percent: crate::ocpp::soc_percent(values)
            .and_then(|s| s.round().to_i16())
            .filter(|s| (0..=100).contains(s)),
    };
    let stored = match on_stored {
        Some(on_stored) => env.writes.meters.submit_with_hook(input, now, on_stored).await,
        None => env.writes.meters.submit(input, now).await,
    };
    let progress = stored.map_err(|error| {
        tracing::error!(charge_point_id = %state.charge_point_id, %error, "meter values not stored");
        write_failed(error)
    })?;
    // The session's actor has heard of it from the writer (see `MeterWriter`).
    if let Some(progress) = progress {
        env.bus.publish_with(session_topic(progress.session_id), "sessionUpdate", || {
            json!({
                "sessionId": progress.session_id,
                "energyWh": progress.energy_wh,
                "powerW": progress.power_w,
                "socPercent": progress.soc_percent,
                "cost": progress.cost,
            })
        });
    }
    Ok(())
}
