//! Account rules shared by the API, the web UI and the CLI: username, phone (E.164) and PIN
//! validation, PIN hashing with Argon2, and driver idTag generation.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;

/// A rule an account field broke, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field, as the API names it.
    pub field: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

fn field_error(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError { field, message: message.into() }
}

/// Account roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Charges and pays.
    Driver,
    /// Runs stations.
    Owner,
    /// Operates the whole network.
    Admin,
}

impl Role {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Driver => "driver",
            Role::Owner => "owner",
            Role::Admin => "admin",
        }
    }

    /// Parses the database spelling.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "driver" => Some(Role::Driver),
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// 3–32 characters: letters, digits, `_`, `.` and `-`.
pub fn validate_username(username: &str) -> Result<String, FieldError> {
    let username = username.trim();
    let valid_chars = username.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !(3..=32).contains(&username.len()) || !valid_chars {
        return Err(field_error("username", "use 3 to 32 letters, digits, '_', '.' or '-'"));
    }
    Ok(username.to_string())
}

/// Normalises a phone number to E.164. Spaces, dashes, dots and parentheses are ignored; a
/// number without a country code is taken as Indian (+91), with a leading trunk 0 dropped.
pub fn normalize_phone(phone: &str) -> Result<String, FieldError> {
    let invalid = || field_error("phone", "enter a phone number such as 98765 43210 or +91 98765 43210");
    let trimmed = phone.trim();
    let (international, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => match trimmed.strip_prefix("00") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        },
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(invalid()),
        }
    }
    let e164 = if international {
        digits
    } else {
        let national = digits.trim_start_matches('0');
        if national.len() == 12 && national.starts_with("91") {
            national.to_string()
        } else if national.len() == 10 {
            format!("91{national}")
        } else {
            return Err(invalid());
        }
    };
    if !(7..=15).contains(&e164.len()) || e164.starts_with('0') {
        return Err(invalid());
    }
    Ok(format!("+{e164}"))
}

/// A PIN is 4 to 6 digits.
pub fn validate_pin(pin: &str) -> Result<(), FieldError> {
    if (4..=6).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(field_error("pin", "use 4 to 6 digits"))
    }
}

/// Hashes a PIN with Argon2id and a random salt (PHC string).
pub fn hash_pin(pin: &str) -> Result<String, argon2::password_hash::Error> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes)?;
    Ok(Argon2::default().hash_password(pin.as_bytes(), &salt)?.to_string())
}

/// Checks a PIN against its stored hash; a malformed hash never verifies.
pub fn verify_pin(pin: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(pin.as_bytes(), &parsed).is_ok())
}

/// A fresh driver idTag for OCPP: `KW` and 10 random characters (fits CiString20), from an
/// alphabet without look-alikes.
pub fn generate_id_tag() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let tail: String = (0..10).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("KW{tail}")
}

/// A fresh bearer secret (32 random bytes, base64url) and the SHA-256 hash that is stored
/// in its place. The secret is shown to the client once and never kept.
pub fn new_token() -> (String, [u8; 32]) {
    use base64::Engine;
    let secret: [u8; 32] = rand::random();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a bearer secret.
pub fn hash_token(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalise_to_e164_with_india_as_default() {
        assert_eq!(normalize_phone("98765 43210").as_deref(), Ok("+919876543210"));
        assert_eq!(normalize_phone("098765-43210").as_deref(), Ok("+919876543210"));
        assert_eq!(normalize_phone("919876543210").as_deref(), Ok("+919876543210"));
        assert_eq!(normalize_phone("+44 20 7946 0958").as_deref(), Ok("+442079460958"));
        assert_eq!(normalize_phone("0044 20 7946 0958").as_deref(), Ok("+442079460958"));
        for bad in ["", "12345", "phone", "+0123456789", "98765x43210", "+1234567890123456"] {
            assert!(normalize_phone(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn usernames_and_pins_follow_the_rules() {
        assert_eq!(validate_username(" asha_k ").as_deref(), Ok("asha_k"));
        assert!(validate_username("ab").is_err());
        assert!(validate_username("has space").is_err());
        assert!(validate_pin("1234").is_ok());
        assert!(validate_pin("123456").is_ok());
        assert!(validate_pin("123").is_err());
        assert!(validate_pin("1234567").is_err());
        assert!(validate_pin("12a4").is_err());
    }

    #[test]
    fn pins_hash_and_verify() {
        let hash = hash_pin("4321").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_pin("4321", &hash));
        assert!(!verify_pin("4322", &hash));
        assert!(!verify_pin("4321", "not a hash"));
    }

    #[test]
    fn id_tags_fit_ocpp_and_differ() {
        let a = generate_id_tag();
        assert_eq!(a.len(), 12);
        assert!(a.starts_with("KW"));
        assert_ne!(a, generate_id_tag());
    }
}
