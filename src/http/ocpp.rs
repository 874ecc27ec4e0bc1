//! The OCPP WebSocket handshake: checks the charge point ID, the `ocpp1.6` sub-protocol,
//! HTTP Basic auth for chargers with a password (security profile 1, checked at connect-storm
//! speed by `charger::credentials`) and the unknown-charger policy, then hands the socket to a
//! new ChargerActor.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine;
use kilowatt_actors::charger;
use kilowatt_actors::charger::credentials::StoredPassword;

use super::error::ApiError;
use crate::config::UnknownChargerPolicy;
use crate::state::AppState;

/// The only sub-protocol spoken.
const SUBPROTOCOL: &str = "ocpp1.6";

/// Whether a charge point ID is acceptable (the database holds the same rule).
pub fn valid_charge_point_id(id: &str) -> bool {
    (1..=48).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn offers_ocpp16(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL))
}

/// The password from `Authorization: Basic`, if the username is the charge point ID.
fn basic_password(headers: &HeaderMap, charge_point_id: &str) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    (user == charge_point_id).then(|| password.to_string())
}

/// `GET /{chargePointId}` and `/ocpp/{chargePointId}`: upgrade to OCPP 1.6J.
pub async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let charge_point_id = path.into_inner();
    if !valid_charge_point_id(&charge_point_id) {
        return Err(refuse(
            &charge_point_id,
            ApiError::bad_request(
                "invalid_charge_point_id",
                "A charge point ID is 1 to 48 letters, digits, '.', '_', ':' or '-'.",
            ),
        ));
    }
    if !offers_ocpp16(req.headers()) {
        return Err(refuse(
            &charge_point_id,
            ApiError::bad_request("unsupported_subprotocol", "Offer the WebSocket sub-protocol ocpp1.6."),
        ));
    }
    // Looked up (and registered, per the policy) together with the other handshakes under way:
    // a connect storm costs a few queries, not one per charger.
    let register = match state.config.ocpp.unknown_chargers {
        UnknownChargerPolicy::Reject => None,
        UnknownChargerPolicy::Accept => Some("accepted"),
        UnknownChargerPolicy::Pending => Some("pending"),
    };
    let found = state.chargers.writes.identities.submit((charge_point_id.clone(), register)).await;
    let identity = match found.map_err(|error| {
        tracing::warn!(%charge_point_id, %error, "charger lookup failed");
        ApiError::unavailable("The central system is busy. Please try again shortly.")
    })? {
        Some(identity) => identity,
        None => {
            return Err(refuse(
                &charge_point_id,
                ApiError::not_found("Unknown charge point: register it with an owner first."),
            ));
        }
    };
    if let Some(hash) = &identity.password_hash {
        // Argon2 only the first time a password is seen; see `charger::credentials`.
        let authorized = match basic_password(req.headers(), &charge_point_id) {
            None => false,
            Some(password) => {
                let stored = StoredPassword {
                    charger_id: identity.id,
                    charge_point_id: &charge_point_id,
                    hash,
                    mac: identity.password_mac.as_deref(),
                };
                state.chargers.credentials.verify(&state.pool, &stored, &password).await?
            }
        };
        if !authorized {
            let error = refuse(
                &charge_point_id,
                ApiError::unauthorized("This charge point needs HTTP Basic auth with its password."),
            );
            let mut response = error.error_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"Kilowatt OCPP\""));
            return Ok(response);
        }
    }
    charger::start(identity, state.chargers.clone(), &req, stream).map_err(|error| {
        tracing::warn!(%charge_point_id, %error, "WebSocket handshake failed");
        ApiError::bad_request("websocket_handshake_failed", "This endpoint needs a WebSocket upgrade.")
    })
}

fn refuse(charge_point_id: &str, error: ApiError) -> ApiError {
    tracing::warn!(%charge_point_id, code = error.code(), "OCPP handshake refused");
    metrics::counter!("ocpp_handshakes_refused_total", "code" => error.code().to_string()).increment(1);
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    #[test]
    fn reads_basic_auth_only_for_the_right_username() {
        let mut headers = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode("CP-1:s3cret:with-colon");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {token}")).expect("header"));
        assert_eq!(basic_password(&headers, "CP-1").as_deref(), Some("s3cret:with-colon"));
        assert_eq!(basic_password(&headers, "CP-2"), None);
    }

    #[test]
    fn sub_protocol_must_include_ocpp16() {
        let mut headers = HeaderMap::new();
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("ocpp2.0.1, ocpp1.6"));
        assert!(offers_ocpp16(&headers));
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("ocpp2.0.1"));
        assert!(!offers_ocpp16(&headers));
    }

    #[test]
    fn charge_point_ids_follow_the_rules() {
        assert!(valid_charge_point_id("0748911403000154"));
        assert!(valid_charge_point_id("CP_1.a:b-c"));
        assert!(!valid_charge_point_id(""));
        assert!(!valid_charge_point_id("has space"));
        assert!(!valid_charge_point_id(&"x".repeat(49)));
    }
}
