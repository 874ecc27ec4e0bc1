//! `GET /ws`: the live-update socket, owned by a `BrowserSocket` actor. A browser opens it with
//! its session cookie and the session's CSRF token as `?csrf=` (a page of another site can open
//! a WebSocket with the browser's cookies, but cannot read the token); the mobile app opens it
//! with `Authorization: Bearer …`. Both may send `start` / `stop` commands, run here by the
//! REST API's own functions so the rules are the same.

use actix_web::{FromRequest, HttpRequest, HttpResponse, http::header, web};
use kilowatt_actors::accounts::Role;
use kilowatt_actors::browser::{BrowserSocket, CommandError, CommandFuture, MAX_FRAME_BYTES, SocketCommand, Viewer};
use kilowatt_actors::outbox::{self, SocketOptions};
use kilowatt_actors::session::StopInitiator;
use kilowatt_actors::store::{pool, session_views};
use serde::Deserialize;
use serde_json::json;

use super::session::{WebError, WebSession};
use crate::auth::Auth;
use crate::http::api::charging::{StartRequest, begin, stop_session};
use crate::http::error::ApiError;
use crate::state::AppState;

/// Bytes that may wait for one browser before it is disconnected: hundreds of pushes.
const OUTBOX_HIGH_WATER_BYTES: usize = 256 * 1024;

/// `?csrf=` on the upgrade.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SocketQuery {
    csrf: String,
}

/// `GET /ws`: upgrades to a BrowserSocket for the signed-in user (cookie session, or a bearer
/// token when the request carries one).
pub async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    query: web::Query<SocketQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let (auth, csrf) = if req.headers().contains_key(header::AUTHORIZATION) {
        (Auth::extract(&req).await?, None)
    } else {
        let session = WebSession::extract(&req).await?;
        session.check_csrf(&query.csrf)?;
        (session.auth(), Some(session.csrf))
    };
    let viewer = Viewer { user_id: auth.user.id, admin: auth.role == Role::Admin };
    let runner_state = state.get_ref().clone();
    let runner = Box::new(move |command| run(runner_state.clone(), auth.clone(), command));
    let socket = BrowserSocket::new(state.bus.clone(), state.pool.clone(), viewer, state.config.ocpp.ping_interval)
        .with_commands(runner, csrf);
    let options = SocketOptions {
        protocols: &[],
        max_frame_bytes: MAX_FRAME_BYTES,
        high_water_bytes: OUTBOX_HIGH_WATER_BYTES,
        kind: "browser",
    };
    // A browser that stops reading is disconnected once this much waits for it; its page
    // reconnects and reloads what it shows.
    outbox::start(&req, stream, &options, |_outbox| socket)
        .map_err(|e| WebError::from(ApiError::bad_request("not_a_websocket", e.to_string())))
}

/// Runs one socket command as its REST endpoint would.
fn run(state: AppState, auth: Auth, command: SocketCommand) -> CommandFuture {
    Box::pin(async move {
        let result = match command {
            SocketCommand::Start { charge_point_id, connector_id } => {
                let request = StartRequest {
                    charger_id: charge_point_id,
                    connector_id,
                    limit_energy_wh: None,
                    limit_amount: None,
                    battery_level: None,
                };
                begin(&auth, &state, request)
                    .await
                    .map(|session_id| json!({ "sessionId": session_id, "status": "pending" }))
            }
            SocketCommand::Stop { session_id } => stop(&state, &auth, session_id).await,
        };
        result.map_err(|error| {
            tracing::info!(user_id = auth.user.id, code = error.code(), "socket command refused");
            CommandError { code: error.code().to_owned(), message: error.message().to_owned() }
        })
    })
}

async fn stop(state: &AppState, auth: &Auth, session_id: i64) -> Result<serde_json::Value, ApiError> {
    let mut conn = pool::connection(&state.pool).await?;
    let row = session_views::by_id(&mut conn, session_id).await?.filter(|s| s.user_id == Some(auth.user.id));
    drop(conn);
    let row = row.ok_or_else(|| ApiError::not_found("You have no such session."))?;
    let answer = stop_session(state, &row, StopInitiator::Driver).await?;
    tracing::info!(
        user_id = auth.user.id,
        session_id,
        status = answer.status,
        "driver stopped a session over the socket"
    );
    serde_json::to_value(answer).map_err(ApiError::internal)
}
