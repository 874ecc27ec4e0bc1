//! One charger as its owner sees it (`/owner/chargers/{chargePointId}`): online state, what it
//! reported at boot, connectors with their live status, the status history and the OCPP
//! message log (both newest first, paginated), its settings (station, OCPP password, metering)
//! and remote commands (Reset, UnlockConnector, ChangeAvailability, TriggerMessage, ClearCache).
//! Settings and commands go through the JSON API's functions; a command's answer (or why it
//! failed) comes back to the page after the redirect as `?command=…&answer=…` or `&error=…`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use kilowatt_actors::ocpp::ALL_ACTIONS;
use kilowatt_actors::store::chargers::StatusHistoryEntry;
use kilowatt_actors::store::schema::{connector_status_history, connectors};
use kilowatt_actors::store::{AsyncPgConnection, StoreError, pool};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::FieldErrors;
use super::owner_dashboard::{charger_href, charger_topics, owner, when};
use super::owner_stations::form_errors;
use super::session::{Chrome, WebError, WebSession, html, see_other};
use crate::http::api::owner_chargers::{
    ChargerChangesBody, ConnectorChange, MessagesQuery, message_log, owned_charger, owned_charger_detail, send_command,
    update_charger,
};
use crate::http::api::owner_stations::list_stations;
use crate::http::error::ApiError;
use crate::state::AppState;

/// Status reports per page.
const HISTORY_PAGE: i64 = 20;
/// Logged frames per page.
const LOG_PAGE: i64 = 20;
/// The commands this page offers.
const COMMANDS: [&str; 5] = ["Reset", "UnlockConnector", "ChangeAvailability", "TriggerMessage", "ClearCache"];
/// Messages a charger can be asked to send (TriggerMessage).
const TRIGGERS: [&str; 4] = ["StatusNotification", "Heartbeat", "MeterValues", "BootNotification"];
/// Longest flash text shown from the query string.
const FLASH_CHARS: usize = 300;

/// Registers the charger page, its settings form and its command forms.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/owner/chargers/{chargePointId}", web::get().to(show))
        .route("/owner/chargers/{chargePointId}", web::post().to(save))
        .route("/owner/chargers/{chargePointId}/commands/{action}", web::post().to(command));
}

/// One page of a charger's status reports (all connectors, 0 included), newest first, and how
/// many there are. Here rather than in the store until the store pages its status history.
async fn status_page(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    limit: i64,
    offset: i64,
) -> Result<(Vec<StatusHistoryEntry>, i64), StoreError> {
    let total: i64 = connector_status_history::table
        .inner_join(connectors::table)
        .filter(connectors::charger_id.eq(charger_id))
        .count()
        .get_result(conn)
        .await?;
    let entries = connector_status_history::table
        .inner_join(connectors::table)
        .filter(connectors::charger_id.eq(charger_id))
        .order(connector_status_history::id.desc())
        .limit(limit)
        .offset(offset)
        .select((
            connectors::connector_number,
            connector_status_history::status,
            connector_status_history::error_code,
            connector_status_history::info,
            connector_status_history::vendor_error_code,
            connector_status_history::reported_at,
            connector_status_history::received_at,
        ))
        .load(conn)
        .await?;
    Ok((entries, total))
}

/// The page's query: paging, the log filter and the flash after a command or a save. Offsets
/// are text, so a mangled link shows the first page instead of an error.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChargerQuery {
    history_offset: String,
    log_offset: String,
    direction: String,
    action: String,
    command: String,
    answer: String,
    error: String,
    saved: Option<String>,
}

/// An offset from the query string: a whole number of rows, 0 when missing or nonsense.
fn offset(text: &str) -> i64 {
    text.trim().parse::<i64>().unwrap_or(0).max(0)
}

/// Where the page's lists are: their offsets and the log's filter.
#[derive(Debug, Clone, Default, PartialEq)]
struct Place {
    history_offset: i64,
    log_offset: i64,
    direction: String,
    action: String,
}

impl Place {
    /// The charger page's address showing this place (defaults left out).
    fn href(&self, charge_point_id: &str) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if self.history_offset > 0 {
            pairs.push(("history_offset", self.history_offset.to_string()));
        }
        if self.log_offset > 0 {
            pairs.push(("log_offset", self.log_offset.to_string()));
        }
        if !self.direction.is_empty() {
            pairs.push(("direction", self.direction.clone()));
        }
        if !self.action.is_empty() {
            pairs.push(("action", self.action.clone()));
        }
        let query: Vec<String> =
            pairs.iter().map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC))).collect();
        let base = charger_href(charge_point_id);
        if query.is_empty() { base } else { format!("{base}?{}", query.join("&")) }
    }
}

/// Previous and next page links of a list, and which rows it shows.
struct Pager {
    first: i64,
    last: i64,
    total: i64,
    newer: Option<String>,
    older: Option<String>,
}

impl Pager {
    fn new(offset: i64, limit: i64, shown: usize, total: i64, at: impl Fn(i64) -> String) -> Self {
        let shown = i64::try_from(shown).unwrap_or(0);
        Pager {
            first: if shown == 0 { 0 } else { offset + 1 },
            last: offset + shown,
            total,
            newer: (offset > 0).then(|| at((offset - limit).max(0))),
            older: (offset + shown < total).then(|| at(offset + limit)),
        }
    }
}

struct ConnectorItem {
    number: i32,
    status: String,
    error_code: String,
    info: String,
    metered: bool,
    status_at: String,
}

struct HistoryItem {
    connector: i32,
    status: String,
    error_code: String,
    info: String,
    reported_at: String,
    received_at: String,
}

struct LogItem {
    at: String,
    direction: String,
    kind: &'static str,
    action: String,
    message_id: String,
    error_code: String,
    summary: String,
    frame: String,
}

/// What came back from a command, shown after the redirect.
struct Flash {
    command: String,
    answer: Option<String>,
    error: Option<String>,
}

/// The charger's settings as the form shows them.
struct Settings {
    /// Each of the owner's stations, and whether the charger is there.
    stations: Vec<(i64, String, bool)>,
    password_set: bool,
}

/// `/owner/chargers/{chargePointId}`.
#[derive(Template)]
#[template(path = "web/owner_charger.html")]
struct ChargerPage {
    chrome: Chrome,
    charge_point_id: String,
    href: String,
    station: Option<(i64, String)>,
    online: bool,
    registration_status: String,
    facts: Vec<(&'static str, String)>,
    connectors: Vec<ConnectorItem>,
    history: Vec<HistoryItem>,
    history_pager: Pager,
    log: Vec<LogItem>,
    log_pager: Pager,
    direction: String,
    action_options: Vec<(&'static str, bool)>,
    triggers: [&'static str; 4],
    flash: Option<Flash>,
    saved: bool,
    settings: Settings,
    errors: FieldErrors,
    topics: String,
}

fn text(value: Option<String>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or_else(|| "–".to_owned())
}

/// Text from a query string as a flash shows it: trimmed and cut to [`FLASH_CHARS`].
fn flash_text(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.chars().take(FLASH_CHARS).collect())
}

async fn render(
    session: &WebSession,
    state: &AppState,
    charge_point_id: &str,
    query: ChargerQuery,
    status: StatusCode,
    errors: FieldErrors,
) -> Result<HttpResponse, WebError> {
    let auth = owner(session)?;
    let detail = owned_charger_detail(state, &auth, charge_point_id).await?;
    let history_offset = offset(&query.history_offset);
    let log_offset = offset(&query.log_offset);
    let direction = Some(query.direction.clone()).filter(|d| d == "in" || d == "out");
    let action = Some(query.action.clone()).filter(|a| ALL_ACTIONS.contains(&a.as_str()));
    let log = message_log(
        state,
        &auth,
        charge_point_id,
        MessagesQuery {
            limit: Some(LOG_PAGE),
            offset: Some(log_offset),
            direction: direction.clone(),
            action: action.clone(),
        },
    )
    .await?;
    let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
    let owned = owned_charger(&mut conn, &auth, charge_point_id).await?;
    let (history, history_total) =
        status_page(&mut conn, owned.charger.id, HISTORY_PAGE, history_offset).await.map_err(ApiError::from)?;
    drop(conn);
    let here = detail.summary.station.as_ref().map(|s| s.id);
    let stations = list_stations(state, &auth).await?.into_iter().map(|s| (s.id, s.name, Some(s.id) == here)).collect();

    let cp = detail.summary.charge_point_id.clone();
    let here = Place {
        history_offset,
        log_offset,
        direction: direction.clone().unwrap_or_default(),
        action: action.clone().unwrap_or_default(),
    };
    let history_pager = Pager::new(history_offset, HISTORY_PAGE, history.len(), history_total, |offset| {
        let place = Place { history_offset: offset, ..here.clone() };
        format!("{}#status-history", place.href(&cp))
    });
    let log_pager = Pager::new(log_offset, LOG_PAGE, log.items.len(), log.total, |offset| {
        let place = Place { log_offset: offset, ..here.clone() };
        format!("{}#message-log", place.href(&cp))
    });
    let flash = COMMANDS.iter().find(|c| **c == query.command).map(|command| Flash {
        command: (*command).to_owned(),
        answer: flash_text(&query.answer),
        error: flash_text(&query.error),
    });
    let facts = vec![
        ("Vendor", text(detail.vendor)),
        ("Model", text(detail.model)),
        ("Firmware", text(detail.firmware_version)),
        ("Serial number", text(detail.charge_point_serial)),
        ("Charge box serial", text(detail.charge_box_serial)),
        ("Meter", text(detail.meter_type)),
        ("Meter serial", text(detail.meter_serial)),
        ("Firmware update", text(detail.firmware_status)),
        ("Diagnostics", text(detail.diagnostics_status)),
        ("Last boot", when(detail.last_boot_at)),
        ("Connected since", if detail.summary.online { when(detail.connected_at) } else { "–".to_owned() }),
        ("Last seen", when(detail.summary.last_seen_at)),
        ("Registered", when(Some(detail.created_at))),
    ];
    let page = ChargerPage {
        chrome: session.chrome(&format!("Charger {cp}")),
        href: charger_href(&cp),
        station: detail.summary.station.as_ref().map(|s| (s.id, s.name.clone())),
        online: detail.summary.online,
        registration_status: detail.summary.registration_status.clone(),
        facts,
        connectors: detail
            .summary
            .connectors
            .iter()
            .map(|c| ConnectorItem {
                number: c.connector_id,
                status: c.status.clone(),
                error_code: c.error_code.clone(),
                info: c.info.clone().unwrap_or_default(),
                metered: c.metered,
                status_at: when(c.status_at),
            })
            .collect(),
        history: history
            .into_iter()
            .map(|h| HistoryItem {
                connector: h.connector_number,
                status: h.status,
                error_code: h.error_code,
                info: h.info.unwrap_or_default(),
                reported_at: when(h.reported_at),
                received_at: when(Some(h.received_at)),
            })
            .collect(),
        history_pager,
        log: log
            .items
            .into_iter()
            .map(|m| {
                let frame = match &m.frame {
                    Value::String(raw) => raw.clone(),
                    other => other.to_string(),
                };
                LogItem {
                    at: when(Some(m.created_at)),
                    direction: m.direction,
                    kind: match m.message_type {
                        Some(2) => "CALL",
                        Some(3) => "CALLRESULT",
                        Some(4) => "CALLERROR",
                        _ => "unreadable",
                    },
                    action: m.action.unwrap_or_default(),
                    message_id: m.message_id.unwrap_or_default(),
                    error_code: m.error_code.unwrap_or_default(),
                    summary: frame.chars().take(120).collect(),
                    frame: serde_json::to_string_pretty(&m.frame).unwrap_or(frame),
                }
            })
            .collect(),
        log_pager,
        direction: direction.unwrap_or_default(),
        action_options: ALL_ACTIONS.iter().map(|a| (*a, action.as_deref() == Some(*a))).collect(),
        triggers: TRIGGERS,
        flash,
        saved: query.saved.is_some(),
        settings: Settings { stations, password_set: detail.summary.password_set },
        errors,
        topics: charger_topics(std::iter::once(cp.as_str())),
        charge_point_id: cp,
    };
    html(status, &page)
}

/// `GET /owner/chargers/{chargePointId}`: one of my chargers (another owner's is a 404).
pub async fn show(
    session: WebSession,
    path: web::Path<String>,
    query: web::Query<ChargerQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    render(&session, &state, &path, query.into_inner(), StatusCode::OK, FieldErrors::default()).await
}

/// `POST /owner/chargers/{chargePointId}`: moves the charger to another of my stations, sets or
/// removes its OCPP password and marks connectors metered, as `PATCH /api/owner/chargers/{id}`.
/// Fields: `stationId`, `password`, `removePassword`, one `connector` per connector shown and
/// one `metered` per ticked connector.
pub async fn save(
    session: WebSession,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    let value = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let numbers = |name: &str| -> Vec<i32> {
        form.iter().filter(|(k, _)| k == name).filter_map(|(_, v)| v.trim().parse().ok()).collect()
    };
    session.check_csrf(value("csrf").unwrap_or_default())?;
    let auth = owner(&session)?;
    let charge_point_id = path.into_inner();
    let station_id = match value("stationId").map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => match id.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                let errors = FieldErrors::field("stationId", "Choose one of your stations.");
                let query = ChargerQuery::default();
                return render(&session, &state, &charge_point_id, query, StatusCode::UNPROCESSABLE_ENTITY, errors)
                    .await;
            }
        },
        None => None,
    };
    let password = if value("removePassword").is_some() {
        Some(None)
    } else {
        value("password").filter(|p| !p.is_empty()).map(|p| Some(p.to_owned()))
    };
    let metered = numbers("metered");
    let connectors = numbers("connector")
        .into_iter()
        .map(|n| ConnectorChange { connector_id: n, metered: metered.contains(&n) })
        .collect();
    let body = ChargerChangesBody { station_id, password, connectors: Some(connectors) };
    match update_charger(&state, &auth, &charge_point_id, body).await {
        Ok(_) => Ok(see_other(&format!("{}?saved=1#settings", charger_href(&charge_point_id)))),
        Err(error) if error.field().is_some() => {
            let query = ChargerQuery::default();
            render(&session, &state, &charge_point_id, query, error.status_code(), form_errors(&error)).await
        }
        Err(error) => Err(error.into()),
    }
}

/// A command form: the fields each command uses.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CommandForm {
    csrf: String,
    /// Reset: Soft or Hard; ChangeAvailability: Operative or Inoperative.
    #[serde(rename = "type")]
    kind: String,
    /// The connector (0 = the whole charger, for ChangeAvailability).
    connector_id: String,
    /// TriggerMessage: the message to send.
    requested_message: String,
}

/// The OCPP payload of a command from its form; a message for people when a field is missing.
fn payload(action: &str, form: &CommandForm) -> Result<Value, String> {
    let connector =
        || -> Result<u32, String> { form.connector_id.trim().parse().map_err(|_| "Choose a connector.".to_owned()) };
    Ok(match action {
        "Reset" => json!({ "type": form.kind }),
        "UnlockConnector" => json!({ "connectorId": connector()? }),
        "ChangeAvailability" => json!({ "connectorId": connector()?, "type": form.kind }),
        "TriggerMessage" => match form.connector_id.trim() {
            "" => json!({ "requestedMessage": form.requested_message }),
            _ => json!({ "requestedMessage": form.requested_message, "connectorId": connector()? }),
        },
        _ => json!({}),
    })
}

/// The charger's answer in a word where it has one (`Accepted`, `Unlocked`), else as JSON.
fn answer_text(response: &Value) -> String {
    match response.get("status").and_then(Value::as_str) {
        Some(status) => status.to_owned(),
        None => response.to_string(),
    }
}

/// `POST /owner/chargers/{chargePointId}/commands/{action}`: sends the command through the same
/// function as `POST /api/owner/chargers/{id}/commands/{action}` and goes back to the page with
/// the charger's answer, or with why there is none (offline, timeout, refused).
pub async fn command(
    session: WebSession,
    path: web::Path<(String, String)>,
    form: web::Form<CommandForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    session.check_csrf(&form.csrf)?;
    let auth = owner(&session)?;
    let (charge_point_id, action) = path.into_inner();
    let Some(action) = COMMANDS.iter().find(|c| c.eq_ignore_ascii_case(&action)).copied() else {
        return Err(WebError::not_found(format!("{action} is not a command this page sends.")));
    };
    let back = |outcome: (&str, &str)| {
        let (key, text) = outcome;
        let text = utf8_percent_encode(text, NON_ALPHANUMERIC);
        see_other(&format!("{}?command={action}&{key}={text}#commands", charger_href(&charge_point_id)))
    };
    let payload = match payload(action, &form) {
        Ok(payload) => payload,
        Err(message) => return Ok(back(("error", &message))),
    };
    match send_command(&state, &auth, &charge_point_id, action, &payload).await {
        Ok(answer) => {
            tracing::info!(user_id = auth.user.id, %charge_point_id, action, "owner sent a command from the web");
            Ok(back(("answer", &answer_text(&answer.response))))
        }
        // Not theirs, or not allowed: the page itself is refused.
        Err(error) if matches!(error.status_code(), StatusCode::NOT_FOUND | StatusCode::FORBIDDEN) => Err(error.into()),
        Err(error) => Ok(back(("error", error.message()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_link_to_their_neighbours_and_keep_the_rest_of_the_place() {
        let here = Place { history_offset: 0, log_offset: 40, direction: "in".to_owned(), action: String::new() };
        let at = |offset| Place { log_offset: offset, ..here.clone() }.href("CP 1");
        let pager = Pager::new(40, 20, 20, 75, at);
        assert_eq!((pager.first, pager.last, pager.total), (41, 60, 75));
        assert_eq!(pager.newer.as_deref(), Some("/owner/chargers/CP%201?log_offset=20&direction=in"));
        assert_eq!(pager.older.as_deref(), Some("/owner/chargers/CP%201?log_offset=60&direction=in"));
        let first = Pager::new(0, 20, 20, 20, |o| o.to_string());
        assert_eq!((first.newer, first.older), (None, None));
        let empty = Pager::new(0, 20, 0, 0, |o| o.to_string());
        assert_eq!((empty.first, empty.last), (0, 0));
    }

    #[test]
    fn offsets_from_links_are_never_negative_or_errors() {
        assert_eq!(offset("20"), 20);
        assert_eq!(offset("-5"), 0);
        assert_eq!(offset("abc"), 0);
        assert_eq!(offset(""), 0);
    }

    #[test]
    fn command_payloads_come_from_their_forms() {
        let form = |kind: &str, connector: &str, message: &str| CommandForm {
            csrf: String::new(),
            kind: kind.to_owned(),
            connector_id: connector.to_owned(),
            requested_message: message.to_owned(),
        };
        assert_eq!(payload("Reset", &form("Hard", "", "")), Ok(json!({"type": "Hard"})));
        assert_eq!(payload("UnlockConnector", &form("", "2", "")), Ok(json!({"connectorId": 2})));
        assert!(payload("UnlockConnector", &form("", "", "")).is_err());
        assert_eq!(
            payload("ChangeAvailability", &form("Inoperative", "0", "")),
            Ok(json!({"connectorId": 0, "type": "Inoperative"}))
        );
        assert_eq!(payload("TriggerMessage", &form("", "", "Heartbeat")), Ok(json!({"requestedMessage": "Heartbeat"})));
        assert_eq!(payload("ClearCache", &form("", "", "")), Ok(json!({})));
        assert_eq!(answer_text(&json!({"status": "Unlocked"})), "Unlocked");
        assert_eq!(answer_text(&json!({"listVersion": 3})), r#"{"listVersion":3}"#);
    }
}
