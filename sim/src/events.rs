//! What the registry simulators share: signed Standard Webhooks v1 events sent to one
//! subscriber, API-token checks and the paged `{"data", "meta"}` listing.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::json;
use std::sync::RwLock;

/// A row's change time as the registries write it: UTC, microseconds, always the same width
/// (so the newest is the greatest string, which the plugins' cursors rely on).
pub fn change_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A Standard Webhooks payload.
#[derive(Serialize)]
pub struct Envelope<'a, T> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub timestamp: String,
    pub data: T,
}

impl<'a, T: Serialize> Envelope<'a, T> {
    /// Event `kind` carrying `data`, stamped now.
    pub fn now(kind: &'a str, data: T) -> Self {
        Self {
            kind,
            timestamp: Utc::now().to_rfc3339(),
            data,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event serializes")
    }
}

/// What sending one event came to.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub webhook_id: String,
    pub status: u16,
    pub body: String,
}

/// Where events go: the hub's webhook URL and the `whsec_` secret it issued.
struct Subscriber {
    url: String,
    key: Vec<u8>,
}

/// Sends a simulator's events to its subscriber.
pub struct EventSender {
    subscriber: RwLock<Option<Subscriber>>,
    http: reqwest::Client,
}

impl Default for EventSender {
    fn default() -> Self {
        // reqwest is built without a default TLS provider; the process-wide one may be
        // installed already (by the hub), which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            subscriber: RwLock::new(None),
            http: reqwest::Client::new(),
        }
    }
}

impl EventSender {
    /// Sends events to `url`, signed with `secret` (`whsec_…`, as the hub returned it).
    pub fn subscribe(&self, url: &str, secret: &str) -> anyhow::Result<()> {
        let encoded = secret
            .strip_prefix("whsec_")
            .ok_or_else(|| anyhow::anyhow!("a webhook secret starts with whsec_"))?;
        *self.subscriber.write().unwrap() = Some(Subscriber {
            url: url.to_string(),
            key: BASE64.decode(encoded)?,
        });
        Ok(())
    }

    /// Sends event `kind` carrying `data`, with a fresh webhook id.
    pub async fn send(&self, kind: &str, data: impl Serialize) -> anyhow::Result<Delivery> {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let body = Envelope::now(kind, data).to_bytes();
        self.deliver(&id, Utc::now().timestamp(), &body).await
    }

    /// Sends one signed webhook as it is (tests use it to repeat a delivery or sign it at
    /// another time).
    pub async fn deliver(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> anyhow::Result<Delivery> {
        let (url, signature) = {
            let subscriber = self.subscriber.read().unwrap();
            let subscriber = subscriber
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("no subscriber: call subscribe first"))?;
            (
                subscriber.url.clone(),
                sign(&subscriber.key, webhook_id, timestamp, body),
            )
        };
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", format!("v1,{signature}"))
            .body(body.to_vec())
            .send()
            .await?;
        Ok(Delivery {
            webhook_id: webhook_id.to_string(),
            status: response.status().as_u16(),
            body: response.text().await.unwrap_or_default(),
        })
    }
}

/// Standard Webhooks v1: base64 HMAC-SHA256 over `id.timestamp.body`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

/// The `401` to answer unless header `name` holds `expected` (compared in constant time).
pub fn unauthorized(headers: &HeaderMap, name: &str, expected: &str) -> Option<Response> {
    let token = headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let expected = expected.as_bytes();
    let matches =
        token.len() == expected.len() && token.bytes().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    (!matches).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "pesan": "token API tidak valid" })),
        )
            .into_response()
    })
}

/// A page of a listing: `{"data": [...], "meta": {page, per_page, total, total_pages}}`.
#[derive(Serialize)]
pub struct Listing<T> {
    pub data: Vec<T>,
    pub meta: ListingMeta,
}

#[derive(Serialize)]
pub struct ListingMeta {
    pub page: usize,
    pub per_page: usize,
    pub total: usize,
    pub total_pages: usize,
}

/// Page `page` (from 1) of `rows`, `per_page` each (1..=1000, default 100); only the rows
/// on the page are turned into JSON (`to_json`).
pub fn paged<R, T: Serialize>(
    rows: &[R],
    page: Option<usize>,
    per_page: Option<usize>,
    to_json: impl Fn(&R) -> T,
) -> Json<Listing<T>> {
    let page = page.unwrap_or(1).max(1);
    let per_page = per_page.unwrap_or(100).clamp(1, 1000);
    let total = rows.len();
    Json(Listing {
        data: rows
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(to_json)
            .collect(),
        meta: ListingMeta {
            page,
            per_page,
            total,
            total_pages: total.div_ceil(per_page),
        },
    })
}
