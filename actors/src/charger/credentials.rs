//! Charger passwords (OCPP security profile 1: HTTP Basic auth at the WebSocket handshake),
//! checked fast enough for a connect storm and still stored safely.
//!
//! The password's Argon2 hash (`chargers.password_hash`) stays the reference: it is what an
//! owner sets, and what protects a short password if the database leaks. But one Argon2
//! verification costs tens of milliseconds of CPU and ~19 MiB of memory, so 19,000 chargers
//! reconnecting at once (a restart) would need minutes of CPU on two cores. Two shortcuts,
//! each only taken after Argon2 itself accepted the password once:
//!
//! - **A keyed hash in the database, for long passwords.** After Argon2 accepts a password of
//!   at least [`MAC_MIN_LENGTH`] characters (the minimum OCPP's security profile 1 sets for a
//!   charger's Basic-auth password; such machine secrets are random and long, so Argon2's
//!   stretching adds nothing against guessing them), the server stores
//!   `HMAC-SHA256(server key, charge point ID ‖ Argon2 hash ‖ password)` in
//!   `chargers.password_mac`. Checking it takes a microsecond and survives restarts. Without the
//!   server key (`KILOWATT_SECRET_KEY`, never in the database) a leaked MAC cannot be tested
//!   against guesses; and since it binds the Argon2 hash, changing the password voids it. It is
//!   tagged with the key's ID and the hash's fingerprint: a MAC made under another key (the key
//!   was rotated, or none is configured and each process draws a random one) or for another
//!   hash is ignored, and the next successful Argon2 check writes a fresh one.
//! - **An in-memory cache, for every password.** charger → `HMAC(per-process random key,
//!   Argon2 hash ‖ password)`, so a short password costs one Argon2 check per process, not one
//!   per connection. Nothing in it is useful outside this process.
//!
//! Argon2 itself runs on the blocking thread pool, at most one per core at a time, so a burst
//! of first-time (or wrong) passwords queues instead of starving the async workers.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::accounts::verify_pin;
use crate::store::{DbPool, StoreError, chargers, pool};

/// Passwords at least this long get the keyed hash in the database.
pub const MAC_MIN_LENGTH: usize = 16;

/// Cached verifications before the cache starts over.
const CACHE_LIMIT: usize = 200_000;

/// Version tag of the stored MAC format.
const MAC_VERSION: &str = "v1";

/// HMAC-SHA256 (RFC 2104). Written out here because it is twelve lines over `sha2`, which is
/// already a dependency; the tests check it against RFC 4231.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares in time independent of where the inputs differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Length-prefixed fields, so no two different inputs hash the same.
fn fields(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum());
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// A charger's password as stored: the charger, its Argon2 hash and its MAC, if any.
#[derive(Debug, Clone, Copy)]
pub struct StoredPassword<'a> {
    /// The charger's row.
    pub charger_id: i64,
    /// Its charge point ID.
    pub charge_point_id: &'a str,
    /// The Argon2 PHC string.
    pub hash: &'a str,
    /// The keyed hash, if one was written.
    pub mac: Option<&'a str>,
}

/// Verifies charger passwords; shared by every handshake.
pub struct Credentials {
    key: [u8; 32],
    key_id: String,
    process_key: [u8; 32],
    cache: Mutex<HashMap<i64, [u8; 32]>>,
    argon2: Semaphore,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials keyed by the server's secret; with none (empty), a random key for this
    /// process, so stored MACs only help until it restarts.
    pub fn new(secret_key: &[u8]) -> Self {
        let random: [u8; 32] = rand::random();
        let secret: &[u8] = if secret_key.is_empty() {
            tracing::warn!(
                "KILOWATT_SECRET_KEY is not set: after a restart, charger passwords are checked with Argon2 again"
            );
            &random
        } else {
            secret_key
        };
        let key = hmac_sha256(secret, b"kilowatt/charger-password-mac");
        let key_id = hex(&Sha256::digest(fields(&[b"kilowatt/key-id", &key]))[..4]);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Credentials {
            key,
            key_id,
            process_key: rand::random(),
            cache: Mutex::new(HashMap::new()),
            argon2: Semaphore::new(cores),
        }
    }

    fn fingerprint(hash: &str) -> String {
        hex(&Sha256::digest(hash.as_bytes())[..8])
    }

    /// The MAC to store for `password` (see the module docs).
    pub fn mac_for(&self, stored: &StoredPassword<'_>, password: &str) -> String {
        let mac = hmac_sha256(
            &self.key,
            &fields(&[stored.charge_point_id.as_bytes(), stored.hash.as_bytes(), password.as_bytes()]),
        );
        format!("{MAC_VERSION}${}${}${}", self.key_id, Self::fingerprint(stored.hash), hex(&mac))
    }

    /// `Some(verdict)` when the stored MAC was made with this key for this hash; `None` when
    /// it cannot decide (no MAC, another key, another hash).
    fn check_mac(&self, stored: &StoredPassword<'_>, password: &str) -> Option<bool> {
        let mac = stored.mac?;
        let mut parts = mac.split('$');
        let (Some(MAC_VERSION), Some(key_id), Some(fingerprint), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if key_id != self.key_id || fingerprint != Self::fingerprint(stored.hash) {
            return None;
        }
        Some(same_bytes(self.mac_for(stored, password).as_bytes(), mac.as_bytes()))
    }

    fn cache_tag(&self, stored: &StoredPassword<'_>, password: &str) -> [u8; 32] {
        hmac_sha256(&self.process_key, &fields(&[stored.hash.as_bytes(), password.as_bytes()]))
    }

    fn cached(&self, stored: &StoredPassword<'_>, password: &str) -> bool {
        let tag = self.cache_tag(stored, password);
        let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.get(&stored.charger_id).is_some_and(|known| same_bytes(known, &tag))
    }

    fn remember(&self, stored: &StoredPassword<'_>, password: &str) {
        let tag = self.cache_tag(stored, password);
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(stored.charger_id, tag);
    }

    /// Whether `password` is the charger's: by its stored MAC or this process's cache when they
    /// can tell, else by Argon2 (after which the cache, and for a long password the stored MAC,
    /// can tell next time). Fails only when the database could not be reached for the MAC.
    pub async fn verify(&self, db: &DbPool, stored: &StoredPassword<'_>, password: &str) -> Result<bool, StoreError> {
        if let Some(verdict) = self.check_mac(stored, password) {
            metrics::counter!("ocpp_password_checks_total", "method" => "mac").increment(1);
            return Ok(verdict);
        }
        if self.cached(stored, password) {
            metrics::counter!("ocpp_password_checks_total", "method" => "cache").increment(1);
            return Ok(true);
        }
        metrics::counter!("ocpp_password_checks_total", "method" => "argon2").increment(1);
        let verified = {
            let _turn = self.argon2.acquire().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let (password, hash) = (password.to_owned(), stored.hash.to_owned());
            tokio::task::spawn_blocking(move || verify_pin(&password, &hash))
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?
        };
        if !verified {
            return Ok(false);
        }
        self.remember(stored, password);
        if password.len() >= MAC_MIN_LENGTH {
            let mac = self.mac_for(stored, password);
            let mut conn = pool::connection(db).await?;
            chargers::store_password_mac(&mut conn, stored.charger_id, stored.hash, &mac).await?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hexed(bytes: [u8; 32]) -> String {
        hex(&bytes)
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hexed(hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hexed(hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_stored_mac_decides_only_for_its_key_and_hash() {
        let credentials = Credentials::new(b"0123456789abcdef0123456789abcdef");
        let stored = StoredPassword { charger_id: 7, charge_point_id: "CP-7", hash: "$argon2id$one", mac: None };
        let mac = credentials.mac_for(&stored, "a-long-machine-secret-1234");
        let with_mac = StoredPassword { mac: Some(&mac), ..stored };
        assert_eq!(credentials.check_mac(&with_mac, "a-long-machine-secret-1234"), Some(true));
        assert_eq!(credentials.check_mac(&with_mac, "a-long-machine-secret-1235"), Some(false));
        // The password changed (a new Argon2 hash): the old MAC cannot decide.
        let rehashed = StoredPassword { hash: "$argon2id$two", ..with_mac };
        assert_eq!(credentials.check_mac(&rehashed, "a-long-machine-secret-1234"), None);
        // Another server key: cannot decide either.
        let other = Credentials::new(b"another-secret-key-of-32-characters!");
        assert_eq!(other.check_mac(&with_mac, "a-long-machine-secret-1234"), None);
        assert!(!mac.contains("a-long-machine-secret"));
    }
}
