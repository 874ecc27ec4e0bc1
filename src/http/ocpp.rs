//! The OCPP WebSocket handshake: checks the charge point ID, the `ocpp1.6` sub-protocol,
//! HTTP Basic auth for chargers with a password (security profile 1, checked at connect-storm
//! speed by `charger::credentials`) and the unknown-charger policy, then hands the socket to a
//! new ChargerActor. On the OCPP listener the upgraded connection is taken out of the HTTP
//! dispatcher ([`take_over`]); on the HTTP listener it stays with it ([`connect`]).

use std::convert::Infallible;
use std::time::Instant;

use actix_codec::{Framed, FramedParts};
use actix_http::body::BodySize;
use actix_http::h1::{self, Message};
use actix_http::{ConnectionType, Request, Response, ws};
use actix_web::HttpMessage as _;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine;
use futures_util::SinkExt;
use kilowatt_actors::charger;
use kilowatt_actors::charger::credentials::StoredPassword;
use kilowatt_actors::store::chargers::ChargerIdentity;

use super::admission::AdmittedStream;
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

/// `GET /ocpp/{chargePointId}` on the HTTP listener: upgrade to OCPP 1.6J, the socket staying
/// with the HTTP dispatcher. The charger waits for a connecting place like one on the OCPP
/// listener, before its handshake is checked. (The OCPP listener takes upgrades out of the
/// dispatcher instead: see [`take_over`]; a plain request for this path there is refused here.)
pub async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let charge_point_id = path.into_inner();
    if ws::verify_handshake(req.head()).is_err() {
        return refuse(&charge_point_id, not_a_websocket()).error_response();
    }
    let connecting_place = state.admission.place().await;
    let identity = match admit(&state, &charge_point_id, req.headers()).await {
        Ok(identity) => identity,
        Err(refusal) => return refusal,
    };
    charger::start(identity, state.chargers.clone(), &req, stream, connecting_place).unwrap_or_else(|error| {
        tracing::warn!(%charge_point_id, %error, "WebSocket handshake failed");
        not_a_websocket().error_response()
    })
}

/// The OCPP listener's upgrade service: every request asking for a connection upgrade comes
/// here with its connection, out of the HTTP dispatcher. The handshake is checked and answered
/// as in [`connect`], then the socket is served by a ChargerActor without the dispatcher's
/// buffers (what an idle charger costs is most of what a node of 19,000 holds).
pub async fn take_over(
    state: web::Data<AppState>,
    req: Request,
    mut framed: Framed<AdmittedStream, h1::Codec>,
) -> Result<(), Infallible> {
    let started = Instant::now();
    let path = req.path().to_string();
    let route = if path.starts_with("/ocpp/") { "/ocpp/{chargePointId}" } else { "/{chargePointId}" };
    let admitted = match charge_point_id_in(&path) {
        None => Err((ApiError::not_found(format!("No WebSocket endpoint at {path}.")).error_response(), "unmatched")),
        Some(charge_point_id) => {
            if req.method() != Method::GET || ws::verify_handshake(req.head()).is_err() {
                Err((refuse(&charge_point_id, not_a_websocket()).error_response(), route))
            } else {
                // A connection that carried a plain request first gave its place back: its
                // upgrade waits for another, as a new connection would.
                let place = framed.io_ref().place();
                if !place.is_held() {
                    place.hold(state.admission.place().await);
                }
                // Boxed: the lookup's state is needed only until it answers, and this future
                // stays allocated for the life of the connection.
                Box::pin(admit(&state, &charge_point_id, req.headers())).await.map_err(|refusal| (refusal, route))
            }
        }
    };
    let method = req.method().to_string();
    let identity = match admitted {
        Ok(identity) => identity,
        Err((refusal, route)) => {
            crate::metrics::record_http_request(&method, &path, route, refusal.status(), started.elapsed());
            if let Err(error) = send_refusal(&mut framed, refusal).await {
                tracing::debug!(%error, %path, "could not send a handshake refusal");
            }
            return Ok(());
        }
    };
    let accepted =
        ws::handshake_response(req.head()).insert_header((header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL)).finish();
    crate::metrics::record_http_request(&method, &path, route, accepted.status(), started.elapsed());
    if let Err(error) = framed.send(Message::Item((accepted.drop_body(), BodySize::None))).await {
        tracing::debug!(%error, %path, "charger gone before its handshake was answered");
        return Ok(());
    }
    // The dispatcher's buffers go: what it read past the handshake (from a charger that did not
    // wait for the 101) is copied out. So does the request, whose headers are slices of the
    // read buffer. Only then is the charger served, for as long as it stays connected.
    let FramedParts { io, read_buf, .. } = framed.into_parts();
    let (io, connecting_place) = io.into_parts();
    let serving =
        charger::serve(identity, state.chargers.clone(), io, Bytes::copy_from_slice(&read_buf), connecting_place);
    drop(read_buf);
    drop(req);
    serving.await;
    Ok(())
}

/// The charge point ID in an upgrade's path (`/ocpp/{id}` or `/{id}`), percent-decoded.
fn charge_point_id_in(path: &str) -> Option<String> {
    let segment = path.strip_prefix("/ocpp/").or_else(|| path.strip_prefix('/'))?;
    if segment.is_empty() || segment.contains('/') || path == "/healthz" {
        return None;
    }
    percent_encoding::percent_decode_str(segment).decode_utf8().ok().map(|id| id.into_owned())
}

/// Writes a refusal with its JSON body and closes the connection.
async fn send_refusal(framed: &mut Framed<AdmittedStream, h1::Codec>, refusal: HttpResponse) -> std::io::Result<()> {
    let (head, body) = refusal.into_parts();
    let body = actix_web::body::to_bytes(body).await.unwrap_or_default();
    let mut head: Response<()> = head.into();
    head.head_mut().set_connection_type(ConnectionType::Close);
    framed.send(Message::Item((head, BodySize::Sized(body.len() as u64)))).await?;
    framed.send(Message::Chunk(Some(body))).await?;
    framed.send(Message::Chunk(None)).await
}

fn not_a_websocket() -> ApiError {
    ApiError::bad_request("websocket_handshake_failed", "This endpoint needs a WebSocket upgrade.")
}

/// Checks a charger's handshake: its ID, the sub-protocol, whether it is known (or registered
/// per the unknown-charger policy) and its password. A refusal comes back as the response to
/// send.
async fn admit(state: &AppState, charge_point_id: &str, headers: &HeaderMap) -> Result<ChargerIdentity, HttpResponse> {
    if !valid_charge_point_id(charge_point_id) {
        return Err(refuse(
            charge_point_id,
            ApiError::bad_request(
                "invalid_charge_point_id",
                "A charge point ID is 1 to 48 letters, digits, '.', '_', ':' or '-'.",
            ),
        )
        .error_response());
    }
    if !offers_ocpp16(headers) {
        return Err(refuse(
            charge_point_id,
            ApiError::bad_request("unsupported_subprotocol", "Offer the WebSocket sub-protocol ocpp1.6."),
        )
        .error_response());
    }
    // Looked up (and registered, per the policy) together with the other handshakes under way:
    // a connect storm costs a few queries, not one per charger.
    let register = match state.config.ocpp.unknown_chargers {
        UnknownChargerPolicy::Reject => None,
        UnknownChargerPolicy::Accept => Some("accepted"),
        UnknownChargerPolicy::Pending => Some("pending"),
    };
    let found = state.chargers.writes.identities.submit((charge_point_id.to_string(), register)).await;
    let identity = match found {
        Err(error) => {
            tracing::warn!(%charge_point_id, %error, "charger lookup failed");
            return Err(ApiError::unavailable("The central system is busy. Please try again shortly.").error_response());
        }
        Ok(Some(identity)) => identity,
        Ok(None) => {
            return Err(refuse(
                charge_point_id,
                ApiError::not_found("Unknown charge point: register it with an owner first."),
            )
            .error_response());
        }
    };
    if let Some(hash) = &identity.password_hash {
        // Argon2 only the first time a password is seen; see `charger::credentials`.
        let authorized = match basic_password(headers, charge_point_id) {
            None => false,
            Some(password) => {
                let stored = StoredPassword {
                    charger_id: identity.id,
                    charge_point_id,
                    hash,
                    mac: identity.password_mac.as_deref(),
                };
                match state.chargers.credentials.verify(&state.pool, &stored, &password).await {
                    Ok(authorized) => authorized,
                    Err(error) => return Err(ApiError::from(error).error_response()),
                }
            }
        };
        if !authorized {
            let mut response = refuse(
                charge_point_id,
                ApiError::unauthorized("This charge point needs HTTP Basic auth with its password."),
            )
            .error_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"Kilowatt OCPP\""));
            return Err(response);
        }
    }
    Ok(identity)
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
