//! The bus: actors publish what changed on topics (`charger:{id}`, `session:{id}`,
//! `user:{id}`, `station:{id}`); browser sockets and tests subscribe. In-process fan-out over
//! tokio broadcast channels; a topic nobody listens to costs nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

/// One published change.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// The topic it was published on.
    pub topic: String,
    /// What happened (`connectorStatus`, `chargerOnline`, `sessionUpdate`, …).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The details, camelCase.
    pub data: Value,
}

/// How many undelivered events a slow subscriber may fall behind before it loses the oldest.
const TOPIC_CAPACITY: usize = 256;

/// A cheap-to-clone handle to the bus.
#[derive(Clone, Default)]
pub struct Bus {
    topics: Arc<Mutex<HashMap<String, broadcast::Sender<Arc<Event>>>>>,
}

impl Bus {
    /// Publishes to a topic; a topic without subscribers drops the event.
    pub fn publish(&self, topic: impl Into<String>, kind: &'static str, data: Value) {
        self.publish_with(topic, kind, || data);
    }

    /// As [`Bus::publish`], building the event only if the topic has subscribers: for events
    /// published on every meter reading, which nobody watches most of the time.
    pub fn publish_with(&self, topic: impl Into<String>, kind: &'static str, data: impl FnOnce() -> Value) {
        let topic = topic.into();
        let Ok(mut topics) = self.topics.lock() else { return };
        if let Some(sender) = topics.get(&topic) {
            metrics::counter!("bus_messages_total", "kind" => kind).increment(1);
            if sender.send(Arc::new(Event { topic: topic.clone(), kind, data: data() })).is_err() {
                topics.remove(&topic);
            }
        }
    }

    /// Subscribes to a topic.
    pub fn subscribe(&self, topic: &str) -> broadcast::Receiver<Arc<Event>> {
        match self.topics.lock() {
            Ok(mut topics) => {
                topics.entry(topic.to_string()).or_insert_with(|| broadcast::channel(TOPIC_CAPACITY).0).subscribe()
            }
            // A poisoned lock means a publisher panicked mid-insert; hand out a closed receiver.
            Err(_) => broadcast::channel(1).1,
        }
    }
}

/// The topic of a charger's events.
pub fn charger_topic(charge_point_id: &str) -> String {
    format!("charger:{charge_point_id}")
}

/// The topic of a session's events.
pub fn session_topic(session_id: i64) -> String {
    format!("session:{session_id}")
}

/// The topic of everything one user should hear about (queue turns, bookings).
pub fn user_topic(user_id: i64) -> String {
    format!("user:{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn subscribers_receive_only_their_topic() {
        let bus = Bus::default();
        let mut cp1 = bus.subscribe("charger:CP1");
        let mut cp2 = bus.subscribe("charger:CP2");
        bus.publish("charger:CP1", "connectorStatus", json!({"status": "Charging"}));
        let event = cp1.recv().await.expect("event");
        assert_eq!(event.kind, "connectorStatus");
        assert_eq!(event.data["status"], "Charging");
        assert!(cp2.try_recv().is_err());
        drop(cp1);
        drop(cp2);
        // Publishing with nobody listening removes the topic instead of growing.
        bus.publish("charger:CP1", "connectorStatus", json!({}));
        assert!(!bus.topics.lock().expect("lock").contains_key("charger:CP1"));
    }
}
