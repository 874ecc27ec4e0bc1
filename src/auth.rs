//! Who is asking: the `Auth` extractor resolves `Authorization: Bearer <token>` to a user
//! (401 otherwise), and role checks answer 403. Tokens are random secrets; only their SHA-256
//! is stored, so a leaked database cannot be replayed against the API.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use chrono::{DateTime, Utc};
use kilowatt_actors::accounts::{self, Role};
use kilowatt_actors::store::models::User;
use kilowatt_actors::store::tokens::{self, TokenKind};
use kilowatt_actors::store::{DbPool, pool};

use crate::http::error::ApiError;
use crate::state::AppState;

/// An authenticated request: the user and the token that proved it.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The signed-in user, as stored when the request arrived.
    pub user: User,
    /// The token's row (logout revokes it).
    pub token_id: i64,
    /// The user's role.
    pub role: Role,
}

impl Auth {
    /// Owners and admins pass; drivers get 403.
    pub fn require_owner(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Owner | Role::Admin => Ok(()),
            Role::Driver => Err(ApiError::forbidden("Only station owners and admins can do this.")),
        }
    }

    /// Admins pass; everybody else gets 403.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            _ => Err(ApiError::forbidden("Only admins can do this.")),
        }
    }

    /// Whether this user may act on something owned by `owner_id` (its owner, or an admin).
    pub fn owns(&self, owner_id: Option<i64>) -> bool {
        self.role == Role::Admin || owner_id == Some(self.user.id)
    }
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req).map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("AppState missing"))?;
            let token = token.ok_or_else(|| ApiError::unauthorized("Sign in: send Authorization: Bearer <token>."))?;
            authenticate(&state.pool, &token, state.clock.now()).await
        })
    }
}

/// The bearer secret from the `Authorization` header, if there is one.
fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

async fn authenticate(pool: &DbPool, token: &str, now: DateTime<Utc>) -> Result<Auth, ApiError> {
    let mut conn = pool::connection(pool).await?;
    let found = tokens::authenticate(&mut conn, &accounts::hash_token(token), TokenKind::Api, now).await?;
    let found = found.ok_or_else(|| ApiError::unauthorized("This token is unknown, expired or signed out."))?;
    let role = Role::parse(&found.user.role).ok_or_else(|| ApiError::internal("unknown role in users"))?;
    Ok(Auth { user: found.user, token_id: found.token_id, role })
}

/// A new API token for `user_id`, stored hashed: the secret (shown once) and its expiry.
pub async fn issue_api_token(state: &AppState, user_id: i64) -> Result<(String, DateTime<Utc>), ApiError> {
    let (token, hash) = accounts::new_token();
    let now = state.clock.now();
    let ttl = chrono::Duration::from_std(state.config.policy.token_ttl).unwrap_or(chrono::Duration::days(30));
    let expires_at = now + ttl;
    let mut conn = pool::connection(&state.pool).await?;
    tokens::issue(&mut conn, user_id, TokenKind::Api, &hash, None, now, expires_at).await?;
    Ok((token, expires_at))
}

/// Argon2 takes tens of milliseconds of CPU: run it off the async workers.
pub async fn hash_pin(pin: String) -> Result<String, ApiError> {
    web::block(move || accounts::hash_pin(&pin)).await.map_err(ApiError::internal)?.map_err(ApiError::internal)
}

/// Verifies a PIN off the async workers.
pub async fn verify_pin(pin: String, hash: String) -> Result<bool, ApiError> {
    web::block(move || accounts::verify_pin(&pin, &hash)).await.map_err(ApiError::internal)
}
