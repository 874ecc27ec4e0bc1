//! Local Auth List Management profile payloads: GetLocalListVersion and SendLocalList
//! (requests and responses).

use super::super::enums::{UpdateStatus, UpdateType};
use super::super::types::AuthorizationData;
use super::super::wire::support::*;

ocpp_struct! {
    /// GetLocalListVersion.req (central system → charge point); no fields.
    pub struct GetLocalListVersionRequest {}
}

ocpp_struct! {
    /// GetLocalListVersion.conf.
    pub struct GetLocalListVersionResponse {
        /// Current version of the local list (0: empty, -1: not supported).
        "listVersion" list_version: i32,
    }
}

ocpp_struct! {
    /// SendLocalList.req (central system → charge point).
    pub struct SendLocalListRequest {
        /// Version of the list after this update.
        "listVersion" list_version: i32,
        /// Entries: the whole list (`Full`) or the changes (`Differential`).
        "localAuthorizationList" local_authorization_list: Option<Vec<AuthorizationData>>,
        /// Full or differential.
        "updateType" update_type: UpdateType,
    }
}

ocpp_struct! {
    /// SendLocalList.conf.
    pub struct SendLocalListResponse {
        /// Result.
        "status" status: UpdateStatus,
    }
}
