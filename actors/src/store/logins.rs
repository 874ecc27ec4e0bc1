//! Login throttling: every attempt is recorded per client address, and an account that keeps
//! failing is locked for a while. A PIN has at most a million values, so both limits matter.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::StoreError;
use super::schema::{login_attempts, users};

/// Records one attempt.
pub async fn record_attempt(
    conn: &mut AsyncPgConnection,
    login: &str,
    client_addr: &str,
    succeeded: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let login: String = login.chars().take(100).collect();
    diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::login.eq(login),
            login_attempts::client_addr.eq(client_addr),
            login_attempts::succeeded.eq(succeeded),
            login_attempts::attempted_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Failed attempts from one client address since `since`.
pub async fn failures_from(
    conn: &mut AsyncPgConnection,
    client_addr: &str,
    since: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(login_attempts::table
        .filter(login_attempts::client_addr.eq(client_addr))
        .filter(login_attempts::attempted_at.gt(since))
        .filter(login_attempts::succeeded.eq(false))
        .count()
        .get_result(conn)
        .await?)
}

/// Counts a failed PIN against an account; at `max_failures` the account locks until
/// `lock_until` and the count starts again. Answers the lock, if one was set.
pub async fn register_failure(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    max_failures: u32,
    lock_until: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let max = i32::try_from(max_failures).unwrap_or(i32::MAX);
    let failures: i32 = diesel::update(users::table.find(user_id))
        .set(users::failed_logins.eq(users::failed_logins + 1))
        .returning(users::failed_logins)
        .get_result(conn)
        .await?;
    if failures < max {
        return Ok(None);
    }
    diesel::update(users::table.find(user_id))
        .set((users::failed_logins.eq(0), users::locked_until.eq(lock_until)))
        .execute(conn)
        .await?;
    Ok(Some(lock_until))
}

/// A correct PIN clears the failure count and any expired lock.
pub async fn register_success(conn: &mut AsyncPgConnection, user_id: i64) -> Result<(), StoreError> {
    diesel::update(users::table.find(user_id))
        .filter(users::failed_logins.ne(0).or(users::locked_until.is_not_null()))
        .set((users::failed_logins.eq(0), users::locked_until.eq(None::<DateTime<Utc>>)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes attempts older than `before` (they only matter for the throttling window).
pub async fn prune(conn: &mut AsyncPgConnection, before: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(diesel::delete(login_attempts::table.filter(login_attempts::attempted_at.lt(before))).execute(conn).await?)
}
