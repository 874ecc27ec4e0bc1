//! A driver's RFID cards: `GET/POST /api/me/cards`, `DELETE /api/me/cards/{cardId}`. A card
//! authorizes at any charger as its driver (OCPP Authorize and StartTransaction).

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use kilowatt_actors::store::cards::{self, AddCardError, Card};
use kilowatt_actors::store::pool;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::http::openapi::{Empty, Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// A card as the API shows it.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CardView {
    /// Card ID.
    pub id: i64,
    /// The idTag the card presents to chargers.
    pub id_tag: String,
    /// The driver's name for it.
    pub label: Option<String>,
    /// Blocked cards are refused at chargers.
    pub blocked: bool,
    /// Refused as Expired after this.
    pub expires_at: Option<DateTime<Utc>>,
    /// Registered.
    pub created_at: DateTime<Utc>,
}

impl From<Card> for CardView {
    fn from(card: Card) -> Self {
        CardView {
            id: card.id,
            id_tag: card.id_tag,
            label: card.label,
            blocked: card.blocked,
            expires_at: card.expires_at,
            created_at: card.created_at,
        }
    }
}

/// `GET /api/me/cards`: the driver's cards.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cards, oldest first", body = Envelope<Vec<CardView>>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
    )
)]
#[get("/api/me/cards")]
pub async fn list(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.pool).await?;
    let cards: Vec<CardView> = cards::list(&mut conn, auth.user.id).await?.into_iter().map(CardView::from).collect();
    Ok(response::ok(cards))
}

/// A card to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCard {
    /// The idTag printed on or read from the card: 1 to 20 printable characters.
    #[schema(example = "04A2B3C4D5")]
    id_tag: String,
    /// A name for it ("Blue card").
    label: Option<String>,
    /// Optional expiry.
    expires_at: Option<DateTime<Utc>>,
}

/// `POST /api/me/cards`: register a card that then authorizes at chargers as this driver.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    request_body = NewCard,
    responses(
        (status = 201, description = "Registered", body = Envelope<CardView>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 409, description = "The idTag is already in use", body = ErrorEnvelope),
        (status = 422, description = "A field is invalid", body = ErrorEnvelope),
    )
)]
#[post("/api/me/cards")]
pub async fn add(auth: Auth, body: web::Json<NewCard>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let NewCard { id_tag, label, expires_at } = body.into_inner();
    let id_tag = id_tag.trim().to_owned();
    if !(1..=20).contains(&id_tag.len()) || !id_tag.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::validation("idTag", "An idTag is 1 to 20 printable ASCII characters."));
    }
    let label = label.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty());
    if label.as_ref().is_some_and(|l| l.chars().count() > 50) {
        return Err(ApiError::validation("label", "A label is at most 50 characters."));
    }
    let mut conn = pool::connection(&state.pool).await?;
    let card =
        cards::add(&mut conn, auth.user.id, &id_tag, label.as_deref(), expires_at).await.map_err(|e| match e {
            AddCardError::Taken => {
                ApiError::conflict("card_taken", "This idTag is already registered.").with_field("idTag")
            }
            AddCardError::Store(e) => e.into(),
        })?;
    tracing::info!(user_id = auth.user.id, card_id = card.id, "RFID card registered");
    Ok(response::created(CardView::from(card)))
}

/// `DELETE /api/me/cards/{cardId}`: remove a card; it stops authorizing at once.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    params(("cardId" = i64, Path, description = "The card")),
    responses(
        (status = 200, description = "Removed", body = Envelope<Empty>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "No such card of yours", body = ErrorEnvelope),
    )
)]
#[delete("/api/me/cards/{cardId}")]
pub async fn remove(auth: Auth, path: web::Path<i64>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let card_id = path.into_inner();
    let mut conn = pool::connection(&state.pool).await?;
    if !cards::remove(&mut conn, auth.user.id, card_id).await? {
        return Err(ApiError::not_found("You have no such card."));
    }
    tracing::info!(user_id = auth.user.id, card_id, "RFID card removed");
    Ok(response::ok(Empty {}))
}
