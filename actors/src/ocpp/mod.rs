//! OCPP 1.6J, the protocol only: pure functions and types, no actors, no I/O, no async.
//!
//! - [`direct`]: the fast path for a charger's CALL: read straight into typed values.
//! - [`frame`]: OCPP-J RPC frames (CALL / CALLRESULT / CALLERROR), parsing and writing.
//! - [`error`]: the ten OCPP-J 1.6 error codes and [`CallError`].
//! - [`messages`]: every payload of OCPP 1.6 edition 2 (all six feature profiles) and the
//!   dispatch enums [`ChargePointRequest`], [`CentralSystemResponse`], [`CentralSystemRequest`]
//!   and [`ChargePointResponse`].
//! - [`types`] and [`enums`]: shared structures and enumerations.
//! - [`wire`]: validation against the official JSON schemas, with failures mapped to the right
//!   error code, and the bounded [`CiString`] type.
//! - [`meter`]: meter values in base units (Wh, W, %).
//!
//! Typical use by the charger connection:
//!
//! ```text
//! match Frame::parse(text) {
//!     Ok(Frame::Call(call)) => match ChargePointRequest::parse(&call.action, &call.payload) {
//!         Ok(request) => { /* handle, then send call_result_frame(&call.message_id, &response.payload()) */ }
//!         Err(error) => { /* send call_error_frame(&call.message_id, &error) */ }
//!     },
//!     Ok(Frame::CallResult(result)) => { /* parse_response(pending_action, &result.payload) */ }
//!     Ok(Frame::CallError(error)) => { /* fail the pending request */ }
//!     Err(e) => { /* e.reply_json() if Some, or fail the pending e.message_id, or drop */ }
//! }
//! ```
//!
//! The schemas used as the contract are the OCPP 1.6 edition 2 JSON schemas
//! (`urn:OCPP:1.6:2019:12:*`, the errata release); where this module accepts more than they do
//! (unknown fields, `null` for optional fields or the payload, `Celsius`) the relevant file says
//! so.
//!
//! This file is the root of the module tree and also works as a crate root (for building the
//! protocol layer alone): paths inside use `super::`, never `crate::`.

#[macro_use]
mod macros;

pub mod direct;
pub mod enums;
pub mod error;
pub mod frame;
pub mod messages;
pub mod meter;
pub mod types;
pub mod wire;

#[cfg(test)]
mod tests;

pub use self::enums::*;
pub use self::error::{CallError, ErrorCode};
pub use self::frame::{
    Call, CallErrorFrame, CallResult, Disposition, Frame, FrameError, MAX_MESSAGE_ID_LEN, MessageType,
    call_error_frame, call_frame, call_result_frame, parse_frame,
};
pub use self::messages::{
    ALL_ACTIONS, CentralSystemRequest, CentralSystemResponse, ChargePointRequest, ChargePointResponse,
    is_ocpp16_action, parse_response,
};
pub use self::meter::{energy_register_wh, power_active_import_w, soc_percent};
pub use self::types::*;
pub use self::wire::{CiString, CiString20, CiString25, CiString50, CiString255, CiString500, IdToken, Wire};
