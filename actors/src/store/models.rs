//! Row structs read from the database and the insert forms written to it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::users;

/// A user account row.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    /// Primary key.
    pub id: i64,
    /// Unique username.
    pub username: String,
    /// E.164 phone number.
    pub phone: String,
    /// Email, if given.
    pub email: Option<String>,
    /// Display name, if given.
    pub name: Option<String>,
    /// driver, owner or admin.
    pub role: String,
    /// Argon2 PHC hash of the PIN.
    pub pin_hash: String,
    /// The driver's OCPP idTag.
    pub id_tag: String,
    /// Vehicle battery size in Wh.
    pub vehicle_battery_wh: i64,
    /// Email notifications wanted.
    pub notify_email: bool,
    /// SMS notifications wanted.
    pub notify_sms: bool,
    /// Consecutive failed logins.
    pub failed_logins: i32,
    /// Locked until, after too many failed logins.
    pub locked_until: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The insert form for a user.
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    /// Validated username.
    pub username: &'a str,
    /// E.164 phone.
    pub phone: &'a str,
    /// Email.
    pub email: Option<&'a str>,
    /// Display name.
    pub name: Option<&'a str>,
    /// Role.
    pub role: &'a str,
    /// PIN hash.
    pub pin_hash: &'a str,
    /// OCPP idTag.
    pub id_tag: &'a str,
}

/// Profile changes; `None` leaves a field alone, `Some(None)` clears an optional one.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges<'a> {
    /// New E.164 phone.
    pub phone: Option<&'a str>,
    /// New or cleared email.
    pub email: Option<Option<&'a str>>,
    /// New or cleared display name.
    pub name: Option<Option<&'a str>>,
    /// New vehicle battery size in Wh.
    pub vehicle_battery_wh: Option<i64>,
    /// Email notifications wanted.
    pub notify_email: Option<bool>,
    /// SMS notifications wanted.
    pub notify_sms: Option<bool>,
    /// When the change was made.
    pub updated_at: Option<DateTime<Utc>>,
}
