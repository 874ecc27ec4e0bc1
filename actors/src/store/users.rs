//! Queries on `users` (and the wallet every user is created with).

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::StoreError;
pub use super::models::{NewUser, User};
use super::schema::{users, wallets};

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
    result.map_err(|error| match &error {
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
    })
}
