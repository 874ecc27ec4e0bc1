//! Commands to a charger: the message a caller sends, the error it can get back, and the
//! queue that keeps at most one CALL outstanding per charger, as OCPP-J requires.

use std::collections::VecDeque;

use actix::Message;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::ocpp::CentralSystemRequest;

/// Why a command did not get an answer from the charger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The charger is not connected to this node.
    #[error("charger {0} is not connected")]
    NotConnected(String),
    /// No answer within the configured timeout.
    #[error("the charger did not answer {action} within {seconds} s")]
    Timeout {
        /// The action.
        action: String,
        /// The timeout.
        seconds: u64,
    },
    /// The charger answered with a CALLERROR.
    #[error("the charger refused {action}: {code} {description}")]
    Rejected {
        /// The action.
        action: String,
        /// Its OCPP error code.
        code: String,
        /// Its description.
        description: String,
    },
    /// The charger's answer did not fit the action's schema.
    #[error("the charger's answer to {action} was invalid: {reason}")]
    InvalidResponse {
        /// The action.
        action: String,
        /// What was wrong.
        reason: String,
    },
    /// The connection closed before the answer came.
    #[error("the charger disconnected before answering")]
    Disconnected,
}

/// Sends a command to the charger this actor serves; resolves with the charger's (validated)
/// CALLRESULT payload.
#[derive(Message)]
#[rtype(result = "Result<Value, CommandError>")]
pub struct SendCommand(pub CentralSystemRequest);

/// A command waiting its turn or in flight.
pub(crate) struct Pending {
    pub request: CentralSystemRequest,
    pub reply: oneshot::Sender<Result<Value, CommandError>>,
}

/// The command in flight.
pub(crate) struct InFlight {
    pub message_id: String,
    pub pending: Pending,
    pub timeout: actix::SpawnHandle,
    /// When it was sent: `ocpp_command_duration_seconds` times the charger's answer from here.
    pub sent_at: std::time::Instant,
}

impl InFlight {
    /// Records how long the charger took to answer (a CALLRESULT or a CALLERROR).
    pub fn record_round_trip(&self, action: &str) {
        metrics::histogram!("ocpp_command_duration_seconds", "action" => action.to_string())
            .record(self.sent_at.elapsed().as_secs_f64());
    }
}

/// Commands in order, with at most one in flight.
#[derive(Default)]
pub(crate) struct CommandQueue {
    pub waiting: VecDeque<Pending>,
    pub in_flight: Option<InFlight>,
    next_id: u64,
}

impl CommandQueue {
    /// A fresh message ID (unique per connection, well under 36 characters).
    pub fn next_message_id(&mut self) -> String {
        self.next_id += 1;
        format!("kw-{}", self.next_id)
    }

    /// Takes the in-flight command if `message_id` is its ID.
    pub fn take_if(&mut self, message_id: &str) -> Option<InFlight> {
        if self.in_flight.as_ref().is_some_and(|f| f.message_id == message_id) { self.in_flight.take() } else { None }
    }

    /// Fails everything with `Disconnected`.
    pub fn fail_all(&mut self) {
        if let Some(in_flight) = self.in_flight.take() {
            let _ = in_flight.pending.reply.send(Err(CommandError::Disconnected));
        }
        for pending in self.waiting.drain(..) {
            let _ = pending.reply.send(Err(CommandError::Disconnected));
        }
    }
}
