//! An owner's stations on the web: the list with a "new station" form (`/owner/stations`), one
//! station's edit form with its chargers and an "add a charger" form (`/owner/stations/{id}`).
//! Every form goes through the same functions as the JSON API (`api::owner_stations`,
//! `api::owner_chargers`), so a page validates, authorizes and claims exactly as its endpoint.

use std::str::FromStr;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::FieldErrors;
use super::dashboard::inr;
use super::owner_dashboard::{ChargerRow, charger_topics, owner};
use super::session::{Chrome, WebError, WebSession, html, see_other};
use crate::http::api::owner_chargers::{NewChargerBody, add_charger};
use crate::http::api::owner_stations::{
    NewStationBody, StationChangesBody, StationView, create_station, list_stations, station_detail, update_station,
};
use crate::http::error::ApiError;
use crate::state::AppState;

/// Registers the station pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/owner/stations", web::get().to(list))
        .route("/owner/stations", web::post().to(create))
        .route("/owner/stations/{id}", web::get().to(show))
        .route("/owner/stations/{id}", web::post().to(update))
        .route("/owner/stations/{id}/chargers", web::post().to(add));
}

/// A station form as typed (new and edit share it; `active` only on edit).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StationForm {
    csrf: String,
    name: String,
    address: String,
    latitude: String,
    longitude: String,
    price_per_kwh: String,
    booking_fee: String,
    opening_hours: String,
    active: Option<String>,
}

/// What a station form shows in its fields.
struct StationValues {
    name: String,
    address: String,
    latitude: String,
    longitude: String,
    price_per_kwh: String,
    booking_fee: String,
    opening_hours: String,
    active: bool,
}

impl StationValues {
    fn blank() -> Self {
        StationValues {
            name: String::new(),
            address: String::new(),
            latitude: String::new(),
            longitude: String::new(),
            price_per_kwh: String::new(),
            booking_fee: String::new(),
            opening_hours: String::new(),
            active: true,
        }
    }

    fn typed(form: &StationForm, active: bool) -> Self {
        StationValues {
            name: form.name.clone(),
            address: form.address.clone(),
            latitude: form.latitude.clone(),
            longitude: form.longitude.clone(),
            price_per_kwh: form.price_per_kwh.clone(),
            booking_fee: form.booking_fee.clone(),
            opening_hours: form.opening_hours.clone(),
            active,
        }
    }

    fn stored(station: &StationView) -> Self {
        StationValues {
            name: station.name.clone(),
            address: station.address.clone(),
            latitude: station.latitude.map(|l| l.to_string()).unwrap_or_default(),
            longitude: station.longitude.map(|l| l.to_string()).unwrap_or_default(),
            price_per_kwh: station.price_per_kwh.to_string(),
            booking_fee: station.booking_fee.map(|f| f.to_string()).unwrap_or_default(),
            opening_hours: station.opening_hours.clone().unwrap_or_default(),
            active: station.active,
        }
    }
}

/// A station form's fields as the API takes them.
struct ParsedStation {
    latitude: Option<f64>,
    longitude: Option<f64>,
    price_per_kwh: Decimal,
    booking_fee: Option<Decimal>,
    opening_hours: Option<String>,
}

/// Rupees as people type them: `18.50`, `₹18.50`, `1,000`.
fn rupees(text: &str) -> Option<Decimal> {
    Decimal::from_str(&text.trim().replace([',', '₹', ' '], "")).ok()
}

/// Turns typed text into numbers; the API's own checks (ranges, decimals) come after.
fn parse_station(form: &StationForm) -> Result<ParsedStation, FieldErrors> {
    let degrees = |field: &str, text: &str, example: &str| -> Result<Option<f64>, FieldErrors> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse::<f64>()
            .map(Some)
            .map_err(|_| FieldErrors::field(field, format!("Enter the {field} in degrees, for example {example}.")))
    };
    let latitude = degrees("latitude", &form.latitude, "12.9716")?;
    let longitude = degrees("longitude", &form.longitude, "77.5946")?;
    let price_per_kwh = rupees(&form.price_per_kwh)
        .ok_or_else(|| FieldErrors::field("pricePerKwh", "Enter the price per kWh in rupees, for example 18.50."))?;
    let booking_fee = match form.booking_fee.trim() {
        "" => None,
        fee => Some(rupees(fee).ok_or_else(|| {
            FieldErrors::field("bookingFee", "Enter the booking fee in rupees, or leave it empty for the default.")
        })?),
    };
    let hours = form.opening_hours.trim();
    let opening_hours = (!hours.is_empty()).then(|| hours.to_owned());
    Ok(ParsedStation { latitude, longitude, price_per_kwh, booking_fee, opening_hours })
}

/// The API's error as the form shows it: next to its field, in words (the API names fields
/// as JSON does, e.g. `pricePerKwh`).
pub(crate) fn form_errors(error: &ApiError) -> FieldErrors {
    let Some(field) = error.field() else { return FieldErrors::from_api(error) };
    let message = error.message();
    let message = message.strip_prefix(&format!("{field}: ")).unwrap_or(message);
    let mut message = message
        .replace("pricePerKwh", "The price per kWh")
        .replace("bookingFee", "The booking fee")
        .replace("openingHours", "Opening hours");
    if let Some(first) = message.get(..1) {
        message.replace_range(..1, &first.to_uppercase());
    }
    FieldErrors::field(field, message)
}

/// A station in the list.
struct StationItem {
    id: i64,
    name: String,
    address: String,
    price: String,
    active: bool,
    chargers: i64,
    online: i64,
}

/// `/owner/stations`.
#[derive(Template)]
#[template(path = "web/owner_stations.html")]
struct StationsPage {
    chrome: Chrome,
    stations: Vec<StationItem>,
    values: StationValues,
    errors: FieldErrors,
}

async fn render_list(
    session: &WebSession,
    state: &AppState,
    status: StatusCode,
    values: StationValues,
    errors: FieldErrors,
) -> Result<HttpResponse, WebError> {
    let auth = owner(session)?;
    let stations = list_stations(state, &auth)
        .await?
        .into_iter()
        .map(|s| StationItem {
            id: s.id,
            name: s.name,
            address: s.address,
            price: inr(s.price_per_kwh),
            active: s.active,
            chargers: s.charger_count,
            online: s.online_charger_count,
        })
        .collect();
    let page = StationsPage { chrome: session.chrome("My stations"), stations, values, errors };
    html(status, &page)
}

/// `GET /owner/stations`: my stations and the form for a new one.
pub async fn list(session: WebSession, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    render_list(&session, &state, StatusCode::OK, StationValues::blank(), FieldErrors::default()).await
}

/// `POST /owner/stations`: creates a station as `POST /api/owner/stations` does and opens it
/// (to add its chargers); bad input shows the form again with the error next to its field.
pub async fn create(
    session: WebSession,
    form: web::Form<StationForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    session.check_csrf(&form.csrf)?;
    let auth = owner(&session)?;
    let values = StationValues::typed(&form, true);
    let parsed = match parse_station(&form) {
        Ok(parsed) => parsed,
        Err(errors) => return render_list(&session, &state, StatusCode::UNPROCESSABLE_ENTITY, values, errors).await,
    };
    let body = NewStationBody {
        name: form.name,
        address: form.address,
        latitude: parsed.latitude,
        longitude: parsed.longitude,
        price_per_kwh: parsed.price_per_kwh,
        booking_fee: parsed.booking_fee,
        opening_hours: parsed.opening_hours,
    };
    match create_station(&state, &auth, body).await {
        Ok(station) => Ok(see_other(&format!("/owner/stations/{}?created=1", station.id))),
        Err(error) if error.field().is_some() => {
            render_list(&session, &state, error.status_code(), values, form_errors(&error)).await
        }
        Err(error) => Err(error.into()),
    }
}

/// The "add a charger" form as typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ChargerForm {
    csrf: String,
    charge_point_id: String,
    connectors: String,
    password: String,
}

/// What the "add a charger" form shows.
struct ChargerValues {
    charge_point_id: String,
    connectors: String,
}

/// `/owner/stations/{id}`.
#[derive(Template)]
#[template(path = "web/owner_station.html")]
struct StationPage {
    chrome: Chrome,
    id: i64,
    title: String,
    values: StationValues,
    errors: FieldErrors,
    chargers: Vec<ChargerRow>,
    charger: ChargerValues,
    charger_errors: FieldErrors,
    notice: Option<String>,
    ocpp_url: String,
    topics: String,
}

/// What the station page re-shows after a failed form.
#[derive(Default)]
struct Retyped {
    station: Option<(StationValues, FieldErrors)>,
    charger: Option<(ChargerValues, FieldErrors)>,
}

async fn render_station(
    session: &WebSession,
    state: &AppState,
    id: i64,
    status: StatusCode,
    retyped: Retyped,
    notice: Option<String>,
) -> Result<HttpResponse, WebError> {
    let auth = owner(session)?;
    let detail = station_detail(state, &auth, id).await?;
    let (values, errors) =
        retyped.station.unwrap_or_else(|| (StationValues::stored(&detail.station), FieldErrors::default()));
    let (charger, charger_errors) = retyped.charger.unwrap_or_else(|| {
        (ChargerValues { charge_point_id: String::new(), connectors: "1".to_owned() }, FieldErrors::default())
    });
    let base = state.config.public_url.trim_end_matches('/');
    let ocpp_url = match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}/ocpp/"),
        Some((_, rest)) => format!("ws://{rest}/ocpp/"),
        None => format!("{base}/ocpp/"),
    };
    let page = StationPage {
        chrome: session.chrome(&format!("Station {}", detail.station.name)),
        id: detail.station.id,
        title: detail.station.name.clone(),
        values,
        errors,
        topics: charger_topics(detail.chargers.iter().map(|c| c.charge_point_id.as_str())),
        chargers: detail.chargers.iter().map(ChargerRow::from).collect(),
        charger,
        charger_errors,
        notice,
        ocpp_url,
    };
    html(status, &page)
}

/// `?created` / `?saved` / `?added=CP` after a successful form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StationNotice {
    created: Option<String>,
    saved: Option<String>,
    added: Option<String>,
}

/// `GET /owner/stations/{id}`: one of my stations to edit, its chargers, and a form to add one.
pub async fn show(
    session: WebSession,
    path: web::Path<i64>,
    query: web::Query<StationNotice>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let notice = if let Some(added) = query.added.as_deref().filter(|cp| !cp.is_empty() && cp.len() <= 48) {
        Some(format!("Charger {added} added. It is accepted when it connects with this ID."))
    } else if query.created.is_some() {
        Some("Station created. Add its chargers below.".to_owned())
    } else if query.saved.is_some() {
        Some("Changes saved.".to_owned())
    } else {
        None
    };
    render_station(&session, &state, path.into_inner(), StatusCode::OK, Retyped::default(), notice).await
}

/// `POST /owner/stations/{id}`: changes the station as `PATCH /api/owner/stations/{id}` does
/// (every field of the form is sent; empty optional fields are cleared).
pub async fn update(
    session: WebSession,
    path: web::Path<i64>,
    form: web::Form<StationForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    session.check_csrf(&form.csrf)?;
    let auth = owner(&session)?;
    let id = path.into_inner();
    let active = form.active.is_some();
    let values = StationValues::typed(&form, active);
    let parsed = match parse_station(&form) {
        Ok(parsed) => parsed,
        Err(errors) => {
            let retyped = Retyped { station: Some((values, errors)), charger: None };
            return render_station(&session, &state, id, StatusCode::UNPROCESSABLE_ENTITY, retyped, None).await;
        }
    };
    let body = StationChangesBody {
        name: Some(form.name),
        address: Some(form.address),
        latitude: Some(parsed.latitude),
        longitude: Some(parsed.longitude),
        price_per_kwh: Some(parsed.price_per_kwh),
        booking_fee: Some(parsed.booking_fee),
        opening_hours: Some(parsed.opening_hours),
        active: Some(active),
    };
    match update_station(&state, &auth, id, body).await {
        Ok(_) => Ok(see_other(&format!("/owner/stations/{id}?saved=1"))),
        Err(error) if error.field().is_some() => {
            let retyped = Retyped { station: Some((values, form_errors(&error))), charger: None };
            render_station(&session, &state, id, error.status_code(), retyped, None).await
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /owner/stations/{id}/chargers`: adds (or claims) a charger by its charge point ID, as
/// `POST /api/owner/stations/{id}/chargers` does.
pub async fn add(
    session: WebSession,
    path: web::Path<i64>,
    form: web::Form<ChargerForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    session.check_csrf(&form.csrf)?;
    let auth = owner(&session)?;
    let id = path.into_inner();
    let values = ChargerValues { charge_point_id: form.charge_point_id.clone(), connectors: form.connectors.clone() };
    let connectors = match form.connectors.trim() {
        "" => None,
        n => match n.parse::<i32>() {
            Ok(n) => Some(n),
            Err(_) => {
                let errors = FieldErrors::field("connectors", "Enter how many connectors it has, 1 to 10.");
                let retyped = Retyped { station: None, charger: Some((values, errors)) };
                return render_station(&session, &state, id, StatusCode::UNPROCESSABLE_ENTITY, retyped, None).await;
            }
        },
    };
    let password = Some(form.password).filter(|p| !p.is_empty());
    let body = NewChargerBody { charge_point_id: form.charge_point_id, connectors, password };
    match add_charger(&state, &auth, id, body).await {
        Ok(added) => {
            let cp = percent_encoding::utf8_percent_encode(&added.summary.charge_point_id, super::PATH_SEGMENT);
            Ok(see_other(&format!("/owner/stations/{id}?added={cp}")))
        }
        Err(error) if error.field().is_some() => {
            let retyped = Retyped { station: None, charger: Some((values, form_errors(&error))) };
            render_station(&session, &state, id, error.status_code(), retyped, None).await
        }
        Err(error) => Err(error.into()),
    }
}
