//! Queries on `users` (and the wallet every user is created with).

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::StoreError;
pub use super::models::{NewUser, User, UserChanges};
use super::schema::{users, wallets};
use super::sql::lower;

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    /// A unique field is taken: `username`, `phone`, `email` or `idTag`.
    #[error("{0} is already taken")]
    Taken(&'static str),
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a user and their empty wallet in one transaction.
pub async fn insert(conn: &mut AsyncPgConnection, new_user: &NewUser<'_>) -> Result<User, InsertUserError> {
    let result = conn
        .transaction::<_, DieselError, _>(async |conn| {
            let user: User = diesel::insert_into(users::table)
                .values(new_user)
                .returning(User::as_returning())
                .get_result(conn)
                .await?;
            diesel::insert_into(wallets::table).values(wallets::user_id.eq(user.id)).execute(conn).await?;
            Ok(user)
        })
        .await;
    result.map_err(unique_violation)
}

/// Maps a unique violation on `users` to the field that is taken.
fn unique_violation(error: DieselError) -> InsertUserError {
    match &error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            let field = match info.constraint_name() {
                Some("users_username_key") => "username",
                Some("users_phone_key") => "phone",
                Some("users_email_key") => "email",
                Some("users_id_tag_key") => "idTag",
                _ => return InsertUserError::Store(error.into()),
            };
            InsertUserError::Taken(field)
        }
        _ => InsertUserError::Store(StoreError::from(error)),
    }
}

/// A user by ID.
pub async fn find(conn: &mut AsyncPgConnection, user_id: i64) -> Result<Option<User>, StoreError> {
    Ok(users::table.find(user_id).select(User::as_select()).first(conn).await.optional()?)
}

/// A user by username (any case) or by E.164 phone.
pub async fn find_by_login(
    conn: &mut AsyncPgConnection,
    username: &str,
    phone: Option<&str>,
) -> Result<Option<User>, StoreError> {
    let by_username = lower(users::username).eq(username.to_lowercase());
    let query = users::table.select(User::as_select()).into_boxed();
    let query = match phone {
        Some(phone) => query.filter(by_username.or(users::phone.eq(phone.to_owned()))),
        None => query.filter(by_username),
    };
    Ok(query.first(conn).await.optional()?)
}

/// Applies profile changes; a taken phone or email is reported as such.
pub async fn update(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    changes: &UserChanges<'_>,
) -> Result<User, InsertUserError> {
    diesel::update(users::table.find(user_id))
        .set(changes)
        .returning(User::as_returning())
        .get_result(conn)
        .await
        .map_err(unique_violation)
}

/// Replaces the PIN hash.
pub async fn set_pin_hash(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    pin_hash: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    diesel::update(users::table.find(user_id))
        .set((users::pin_hash.eq(pin_hash), users::updated_at.eq(now)))
        .execute(conn)
        .await?;
    Ok(())
}
