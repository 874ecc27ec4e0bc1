//! Remote Trigger profile payloads: TriggerMessage (request and response).

use super::super::enums::{MessageTrigger, TriggerMessageStatus};
use super::super::wire::support::*;

ocpp_struct! {
    /// TriggerMessage.req (central system → charge point).
    pub struct TriggerMessageRequest {
        /// The message to send.
        "requestedMessage" requested_message: MessageTrigger,
        /// Connector (> 0) the request applies to, if any.
        "connectorId" connector_id: Option<u32> [positive],
    }
}

ocpp_struct! {
    /// TriggerMessage.conf.
    pub struct TriggerMessageResponse {
        /// Whether the message will be sent.
        "status" status: TriggerMessageStatus,
    }
}
