//! `GET /ws`: the browser's live-update socket, owned by a `BrowserSocket` actor. The upgrade
//! needs the session cookie and the session's CSRF token as `?csrf=` (a page of another site
//! can open a WebSocket with the browser's cookies, but cannot read the token).

use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use kilowatt_actors::browser::{BrowserSocket, MAX_FRAME_BYTES};
use serde::Deserialize;

use super::session::{WebError, WebSession};
use crate::http::error::ApiError;
use crate::state::AppState;

/// `?csrf=` on the upgrade.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SocketQuery {
    csrf: String,
}

/// `GET /ws`: upgrades to a BrowserSocket for the signed-in user.
pub async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    session: WebSession,
    query: web::Query<SocketQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    session.check_csrf(&query.csrf)?;
    let socket =
        BrowserSocket::new(state.bus.clone(), state.pool.clone(), session.user.id, state.config.ocpp.ping_interval);
    ws::WsResponseBuilder::new(socket, &req, stream)
        .frame_size(MAX_FRAME_BYTES)
        .start()
        .map_err(|e| WebError::from(ApiError::bad_request("not_a_websocket", e.to_string())))
}
