//! What the central system does with each message a charger sends: plain async functions
//! over the store, called one at a time (in order) per connection. Each answers the
//! CALLRESULT payload or a CALLERROR; a database failure becomes InternalError so the charger
//! retries instead of losing the message.

use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use serde_json::json;

use super::ChargerEnv;
use crate::bus::{charger_topic, session_topic};
use crate::ocpp::messages::core::*;
use crate::ocpp::messages::firmware::*;
use crate::ocpp::{
    AuthorizationStatus, CallError, CentralSystemResponse, ChargePointRequest, DataTransferStatus, ErrorCode,
    IdTagInfo, IdToken, MeterValue, RegistrationStatus,
};
use crate::registry::{ConnectorFreed, NotifyChargerSessions, NotifySession};
use crate::session::SessionEvent;
use crate::store::chargers::{self, BootReport, StatusReport};
use crate::store::sessions::{
    self, IdTagDecision, MeterInput, MeterSample, Settlement, StartInput, StopInput, StopOutcome,
};
use crate::store::{StoreError, live_sessions, pool, wallets};

/// How often, at most, a heartbeat writes last-seen to the database.
const LAST_SEEN_WRITE_INTERVAL_SECONDS: i64 = 60;

/// What one connection knows about its charger.
pub struct ConnectionState {
    /// The charger's row.
    pub charger_id: i64,
    /// The charge point ID.
    pub charge_point_id: String,
    /// accepted, pending or rejected.
    pub registration_status: String,
    /// When last-seen was last written.
    pub last_seen_written: Option<DateTime<Utc>>,
}

fn internal(error: StoreError) -> CallError {
    tracing::error!(%error, "store error while handling a charger message");
    CallError::internal("The central system could not process the message; please retry.")
}

fn id_tag_info(decision: &IdTagDecision) -> IdTagInfo {
    IdTagInfo {
        status: AuthorizationStatus::from_wire_str(decision.status).unwrap_or(AuthorizationStatus::Invalid),
        parent_id_tag: decision.parent_id_tag.as_deref().and_then(|p| IdToken::new(p).ok()),
        expiry_date: decision.expiry,
    }
}

/// Handles one request from the charger.
pub async fn handle(
    env: &ChargerEnv,
    state: &mut ConnectionState,
    request: ChargePointRequest,
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
    // The most frequent message: a pool connection only when last-seen is due a write.
    if matches!(request, ChargePointRequest::Heartbeat(_)) {
        if state.last_seen_written.is_none_or(|at| (now - at).num_seconds() >= LAST_SEEN_WRITE_INTERVAL_SECONDS) {
            let mut conn = pool::connection(&env.pool).await.map_err(internal)?;
            chargers::touch_last_seen(&mut conn, state.charger_id, now).await.map_err(internal)?;
            state.last_seen_written = Some(now);
        }
        return Ok(HeartbeatResponse { current_time: now }.into());
    }
    let mut conn = pool::connection(&env.pool).await.map_err(internal)?;
    let conn = &mut *conn;
    Ok(match request {
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
                chargers::record_boot(conn, state.charger_id, &report, now).await.map_err(internal)?;
            state.last_seen_written = Some(now);
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
            BootNotificationResponse { current_time: now, interval, status }.into()
        }
        // Answered before any checkout; see above.
        ChargePointRequest::Heartbeat(_) => HeartbeatResponse { current_time: now }.into(),
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
            chargers::record_status(conn, state.charger_id, &status, now).await.map_err(internal)?;
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
            StatusNotificationResponse {}.into()
        }
        ChargePointRequest::Authorize(request) => {
            let mut decision =
                sessions::authorize_id_tag(conn, request.id_tag.as_str(), now).await.map_err(internal)?;
            if decision.status == "Accepted"
                && let Some(user_id) = decision.user_id
                && sessions::has_open_session(conn, user_id).await.map_err(internal)?
            {
                decision.status = "ConcurrentTx";
            }
            refuse_without_balance(env, conn, &mut decision).await?;
            AuthorizeResponse { id_tag_info: id_tag_info(&decision) }.into()
        }
        ChargePointRequest::StartTransaction(start) => {
            let input = StartInput {
                charger_id: state.charger_id,
                connector_number: i32::try_from(start.connector_id).unwrap_or(i32::MAX),
                id_tag: start.id_tag.as_str().to_string(),
                meter_start: start.meter_start,
                timestamp: start.timestamp,
            };
            let mut outcome = sessions::start_transaction(conn, &input, now).await.map_err(internal)?;
            for superseded in &outcome.superseded {
                env.registry.do_send(NotifySession { session_id: *superseded, event: SessionEvent::Settled });
            }
            refuse_without_balance(env, conn, &mut outcome.decision).await?;
            if !outcome.retransmission {
                env.registry.do_send(NotifySession { session_id: outcome.session_id, event: SessionEvent::Started });
                let data = json!({
                    "chargePointId": state.charge_point_id,
                    "connectorId": input.connector_number,
                    "sessionId": outcome.session_id,
                    "transactionId": outcome.transaction_id,
                    "idTagStatus": outcome.decision.status,
                });
                env.bus.publish(charger_topic(&state.charge_point_id), "transactionStarted", data.clone());
                env.bus.publish(session_topic(outcome.session_id), "sessionStarted", data);
            }
            StartTransactionResponse {
                id_tag_info: id_tag_info(&outcome.decision),
                transaction_id: outcome.transaction_id,
            }
            .into()
        }
        ChargePointRequest::MeterValues(values) => {
            let connector_number = i32::try_from(values.connector_id).unwrap_or(i32::MAX);
            record_meter_values(env, conn, state, connector_number, values.transaction_id, &values.meter_value, now)
                .await?;
            MeterValuesResponse {}.into()
        }
        ChargePointRequest::StopTransaction(stop) => {
            if let Some(data) = stop.transaction_data.as_deref().filter(|d| !d.is_empty()) {
                record_meter_values(env, conn, state, 0, Some(stop.transaction_id), data, now).await?;
            }
            let input = StopInput {
                charger_id: state.charger_id,
                transaction_id: stop.transaction_id,
                meter_stop: stop.meter_stop,
                timestamp: stop.timestamp,
                reason: stop.reason.map(|r| r.as_str().to_string()),
            };
            let outcome = sessions::stop_transaction(conn, &input, now).await.map_err(internal)?;
            match &outcome {
                StopOutcome::Unknown => tracing::warn!(
                    charge_point_id = %state.charge_point_id,
                    transaction_id = stop.transaction_id,
                    "StopTransaction for an unknown transaction: recorded and acknowledged"
                ),
                StopOutcome::Known {
                    session_id,
                    settlement: Settlement::Settled { energy_wh, cost, meter_fault, .. },
                } => {
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
                StopOutcome::Known { session_id, settlement: Settlement::AlreadySettled } => {
                    // Closed earlier (a fault, offline, the owner): the final reading may add
                    // energy the last good reading did not show — at most one adjustment.
                    let reconciled = live_sessions::reconcile_late_stop(conn, *session_id, stop.meter_stop, now)
                        .await
                        .map_err(internal)?;
                    tracing::info!(
                        charge_point_id = %state.charge_point_id,
                        transaction_id = stop.transaction_id,
                        ?reconciled,
                        "StopTransaction for a session already settled"
                    );
                }
            }
            let id_tag_info = match stop.id_tag {
                Some(tag) => {
                    Some(id_tag_info(&sessions::authorize_id_tag(conn, tag.as_str(), now).await.map_err(internal)?))
                }
                None => None,
            };
            StopTransactionResponse { id_tag_info }.into()
        }
        ChargePointRequest::DataTransfer(transfer) => {
            tracing::info!(
                charge_point_id = %state.charge_point_id,
                vendor_id = %transfer.vendor_id.as_str(),
                message_id = ?transfer.message_id.as_ref().map(|m| m.as_str().to_string()),
                "DataTransfer from charger: no vendor extension registered"
            );
            DataTransferResponse { status: DataTransferStatus::UnknownVendorId, data: None }.into()
        }
        ChargePointRequest::DiagnosticsStatusNotification(status) => {
            chargers::set_diagnostics_status(conn, state.charger_id, status.status.as_str()).await.map_err(internal)?;
            DiagnosticsStatusNotificationResponse {}.into()
        }
        ChargePointRequest::FirmwareStatusNotification(status) => {
            chargers::set_firmware_status(conn, state.charger_id, status.status.as_str()).await.map_err(internal)?;
            FirmwareStatusNotificationResponse {}.into()
        }
    })
}

async fn record_meter_values(
    env: &ChargerEnv,
    conn: &mut crate::store::AsyncPgConnection,
    state: &ConnectionState,
    connector_number: i32,
    transaction_id: Option<i32>,
    values: &[MeterValue],
    now: DateTime<Utc>,
) -> Result<(), CallError> {
    let samples = values
        .iter()
        .flat_map(|value| {
            value.sampled_value.iter().map(move |sample| MeterSample {
                sampled_at: value.timestamp,
                measurand: sample.measurand_or_default().as_str().to_string(),
                phase: sample.phase.map(|p| p.as_str().to_string()),
                unit: sample.unit.map(|u| u.as_str().to_string()),
                context: sample.context.map(|c| c.as_str().to_string()),
                location: sample.location.map(|l| l.as_str().to_string()),
                format: sample.format.map(|f| f.as_str().to_string()),
                raw_value: sample.value.clone(),
                value: sample.base_value().map(|(value, _)| value),
            })
        })
        .collect();
    let input = MeterInput {
        charger_id: state.charger_id,
        connector_number,
        transaction_id,
        samples,
        energy_register_wh: crate::ocpp::energy_register_wh(values),
        power_w: crate::ocpp::power_active_import_w(values).and_then(|w| w.round().to_i64()),
        soc_percent: crate::ocpp::soc_percent(values)
            .and_then(|s| s.round().to_i16())
            .filter(|s| (0..=100).contains(s)),
    };
    let sampled_at = values.iter().map(|v| v.timestamp).max().unwrap_or(now);
    if let Some(progress) = sessions::record_meter_values(conn, &input, now).await.map_err(internal)? {
        env.registry.do_send(NotifySession {
            session_id: progress.session_id,
            event: SessionEvent::Progress {
                energy_wh: progress.energy_wh,
                power_w: progress.power_w,
                cost: progress.cost,
                sampled_at,
            },
        });
        env.bus.publish(
            session_topic(progress.session_id),
            "sessionUpdate",
            json!({
                "sessionId": progress.session_id,
                "energyWh": progress.energy_wh,
                "powerW": progress.power_w,
                "socPercent": progress.soc_percent,
                "cost": progress.cost,
            }),
        );
    }
    Ok(())
}

/// An accepted driver whose wallet holds less than the minimum to start is answered Blocked.
async fn refuse_without_balance(
    env: &ChargerEnv,
    conn: &mut crate::store::AsyncPgConnection,
    decision: &mut IdTagDecision,
) -> Result<(), CallError> {
    if decision.status != "Accepted" {
        return Ok(());
    }
    let Some(user_id) = decision.user_id else { return Ok(()) };
    let balance = wallets::balance(conn, user_id).await.map_err(internal)?.unwrap_or_default();
    if balance < env.settings.min_start_balance {
        tracing::info!(user_id, %balance, "idTag refused: wallet below the minimum to start");
        decision.status = "Blocked";
    }
    Ok(())
}
