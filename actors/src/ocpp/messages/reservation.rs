//! Reservation profile payloads: CancelReservation and ReserveNow (requests and responses).

use chrono::{DateTime, Utc};

use super::super::enums::{CancelReservationStatus, ReservationStatus};
use super::super::wire::IdToken;
use super::super::wire::support::*;

ocpp_struct! {
    /// CancelReservation.req (central system → charge point).
    pub struct CancelReservationRequest {
        /// Reservation to cancel.
        "reservationId" reservation_id: i32,
    }
}

ocpp_struct! {
    /// CancelReservation.conf.
    pub struct CancelReservationResponse {
        /// Result.
        "status" status: CancelReservationStatus,
    }
}

ocpp_struct! {
    /// ReserveNow.req (central system → charge point).
    pub struct ReserveNowRequest {
        /// Connector to reserve (>= 0); 0 means any connector.
        "connectorId" connector_id: u32,
        /// When the reservation ends.
        "expiryDate" expiry_date: DateTime<Utc>,
        /// Identifier to reserve for.
        "idTag" id_tag: IdToken,
        /// Parent identifier.
        "parentIdTag" parent_id_tag: Option<IdToken>,
        /// Unique id of this reservation.
        "reservationId" reservation_id: i32,
    }
}

ocpp_struct! {
    /// ReserveNow.conf.
    pub struct ReserveNowResponse {
        /// Result.
        "status" status: ReservationStatus,
    }
}
