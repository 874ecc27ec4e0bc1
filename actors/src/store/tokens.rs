//! Queries on `auth_tokens`: bearer tokens for the API and cookie sessions for the web UI.
//! Only the SHA-256 of a secret is stored; a token is valid until it expires or is revoked.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::StoreError;
use super::models::User;
use super::schema::{auth_tokens, users};

/// What kind of client holds a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `Authorization: Bearer` from the API or the mobile app.
    Api,
    /// The web UI's session cookie.
    Web,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Api => "api",
            TokenKind::Web => "web",
        }
    }
}

/// A token that authenticated a request.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The token's row, to revoke it at logout.
    pub token_id: i64,
    /// Its owner.
    pub user: User,
    /// The web session's CSRF token, if it is one.
    pub csrf_token: Option<String>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A token's ID, CSRF token, expiry, last use and its user.
type TokenRow = (i64, Option<String>, DateTime<Utc>, Option<DateTime<Utc>>, User);

/// How often `last_used_at` is refreshed: a write per request would be waste.
const LAST_USED_RESOLUTION: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Stores a new token for `user_id`.
pub async fn issue(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    kind: TokenKind,
    token_hash: &[u8; 32],
    csrf_token: Option<&str>,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(auth_tokens::table)
        .values((
            auth_tokens::user_id.eq(user_id),
            auth_tokens::token_hash.eq(token_hash.as_slice()),
            auth_tokens::kind.eq(kind.as_str()),
            auth_tokens::csrf_token.eq(csrf_token),
            auth_tokens::created_at.eq(now),
            auth_tokens::expires_at.eq(expires_at),
        ))
        .returning(auth_tokens::id)
        .get_result(conn)
        .await?)
}

/// The live token with this hash and kind, with its user; `None` when unknown, expired or revoked.
pub async fn authenticate(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8; 32],
    kind: TokenKind,
    now: DateTime<Utc>,
) -> Result<Option<Authenticated>, StoreError> {
    let found: Option<TokenRow> = auth_tokens::table
        .inner_join(users::table)
        .filter(auth_tokens::token_hash.eq(token_hash.as_slice()))
        .filter(auth_tokens::kind.eq(kind.as_str()))
        .filter(auth_tokens::revoked_at.is_null())
        .filter(auth_tokens::expires_at.gt(now))
        .select((
            auth_tokens::id,
            auth_tokens::csrf_token,
            auth_tokens::expires_at,
            auth_tokens::last_used_at,
            User::as_select(),
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((token_id, csrf_token, expires_at, last_used_at, user)) = found else {
        return Ok(None);
    };
    if last_used_at.is_none_or(|at| now - at > LAST_USED_RESOLUTION) {
        diesel::update(auth_tokens::table.find(token_id)).set(auth_tokens::last_used_at.eq(now)).execute(conn).await?;
    }
    Ok(Some(Authenticated { token_id, user, csrf_token, expires_at }))
}

/// Revokes one token (logout). Revoking twice changes nothing.
pub async fn revoke(conn: &mut AsyncPgConnection, token_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    diesel::update(auth_tokens::table.find(token_id).filter(auth_tokens::revoked_at.is_null()))
        .set(auth_tokens::revoked_at.eq(now))
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes every live token of a user except `keep` (after a PIN change); answers how many.
pub async fn revoke_others(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    keep: i64,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        auth_tokens::table
            .filter(auth_tokens::user_id.eq(user_id))
            .filter(auth_tokens::id.ne(keep))
            .filter(auth_tokens::revoked_at.is_null()),
    )
    .set(auth_tokens::revoked_at.eq(now))
    .execute(conn)
    .await?)
}
