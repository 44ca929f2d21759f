//! What a job carries, sealed under the data keys in `jobs.payload` (AAD: the job id).

use crate::crypto::{CryptoError, FieldCipher};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// An inbound webhook as it arrived, signature verified.
#[derive(Debug, Serialize, Deserialize)]
pub struct WebhookPayload {
    /// `webhook-id`.
    pub id: String,
    pub headers: Vec<(String, String)>,
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
}

/// A batch of the hub's events for an outbound connector: those with a seq in
/// `(after, through]` (`events::outbound`).
#[derive(Debug, Serialize, Deserialize)]
pub struct DeliverPayload {
    pub after: i64,
    pub through: i64,
}

/// MQTT messages taken together.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MessagesPayload {
    pub messages: Vec<Message>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Message {
    pub topic: String,
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
}

mod base64_bytes {
    use super::*;

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// Seals a payload for the job `job_id`.
pub fn seal<T: Serialize>(cipher: &FieldCipher, job_id: &str, payload: &T) -> Vec<u8> {
    let json = serde_json::to_vec(payload).expect("job payloads serialize");
    cipher.encrypt("jobs", "payload", job_id, &json)
}

/// Opens the payload of the job `job_id`.
pub fn open<T: for<'de> Deserialize<'de>>(cipher: &FieldCipher, job_id: &str, sealed: &[u8]) -> Result<T, CryptoError> {
    let json = cipher.decrypt("jobs", "payload", job_id, sealed)?;
    serde_json::from_slice(&json).map_err(|e| CryptoError::Malformed {
        field: format!("jobs.payload of row {job_id} ({e})"),
    })
}
