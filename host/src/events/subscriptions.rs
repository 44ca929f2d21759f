//! Webhook subscriptions: who gets which events, and their signing secrets. Delivery is
//! `delivery.rs`; the API is `api/subscriptions.rs`.

use crate::crypto::FieldCipher;
use crate::store::Timestamp;
use crate::store::events::StoredEvent;
use crate::store::subscriptions::SubscriptionRecord;
use crate::webhooks::WebhookSecret;
use schemars::JsonSchema;
use serde::Serialize;

/// How long the secret a rotation replaced still signs deliveries, beside the new one.
pub const ROTATION_GRACE: chrono::Duration = chrono::Duration::hours(24);

/// Which events a subscription wants.
pub struct Filter {
    types: Vec<String>,
    connector_id: Option<String>,
}

impl Filter {
    pub fn of(subscription: &SubscriptionRecord) -> Self {
        Self {
            types: serde_json::from_str(&subscription.event_types).unwrap_or_default(),
            connector_id: subscription.connector_id.clone(),
        }
    }

    pub fn wants(&self, event: &StoredEvent) -> bool {
        (self.types.is_empty() || self.types.contains(&event.kind))
            && (self.connector_id.is_none() || self.connector_id == event.connector_id)
    }
}

/// Why a subscription's settings are refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubscriptionError {
    #[error("url must be an absolute http:// or https:// URL of at most 2,048 characters")]
    BadUrl,
    #[error(
        "url must not hold a user name or password: anyone who may read the hub sees the URL; verify each delivery's signature instead"
    )]
    CredentialsInUrl,
    #[error("{0} is not an event type the hub writes: use some of {1}")]
    UnknownType(String, String),
    #[error("description must be at most 200 characters")]
    LongDescription,
}

/// Checks a subscription's URL, event types and description.
pub fn check(url: &str, event_types: &[String], description: &str) -> Result<(), SubscriptionError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| SubscriptionError::BadUrl)?;
    if url.len() > 2048 || !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(SubscriptionError::BadUrl);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(SubscriptionError::CredentialsInUrl);
    }
    let known: Vec<&str> = super::TYPES.iter().map(|(t, _)| *t).collect();
    if let Some(unknown) = event_types.iter().find(|t| !known.contains(&t.as_str())) {
        return Err(SubscriptionError::UnknownType(unknown.clone(), known.join(", ")));
    }
    if description.chars().count() > 200 {
        return Err(SubscriptionError::LongDescription);
    }
    Ok(())
}

/// A new signing secret for subscription `id`: as given to the subscriber, and sealed.
pub fn new_secret(cipher: &FieldCipher, id: &str) -> (String, Vec<u8>) {
    let secret = WebhookSecret::generate().encode();
    let sealed = cipher.encrypt_str("subscriptions", "secret", id, &secret);
    (secret, sealed)
}

/// A subscription as the API shows it: never its secret.
#[derive(Serialize, JsonSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub url: String,
    /// The event types it gets; empty: every type.
    pub event_types: Vec<String>,
    /// Only the events this connector caused, when set.
    pub connector_id: Option<String>,
    pub description: String,
    /// `active`, `paused` (by someone) or `disabled` (by the hub: see `disabled_reason`).
    pub status: String,
    pub disabled_reason: Option<String>,
    /// The outbox seq it has had every event through.
    pub delivered_through: i64,
    /// Failed tries of the next event since one last succeeded.
    pub failures: i64,
    pub failing_since: Option<Timestamp>,
    /// When the next try is due, while it fails.
    pub retry_at: Option<Timestamp>,
    /// Until when the secret a rotation replaced still signs, beside the new one.
    pub previous_secret_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<SubscriptionRecord> for SubscriptionView {
    fn from(s: SubscriptionRecord) -> Self {
        SubscriptionView {
            event_types: serde_json::from_str(&s.event_types).unwrap_or_default(),
            previous_secret_until: s.previous_until.filter(|until| *until > Timestamp::now()),
            id: s.id,
            url: s.url,
            connector_id: s.connector_id,
            description: s.description,
            status: s.status,
            disabled_reason: s.disabled_reason,
            delivered_through: s.delivered_through,
            failures: s.failures,
            failing_since: s.failing_since,
            retry_at: s.retry_at,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_takes_http_urls_and_the_event_types_the_hub_writes() {
        let types = |t: &[&str]| t.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check("https://odoo.example/hook", &types(&["run.succeeded"]), ""),
            Ok(())
        );
        assert_eq!(check("http://127.0.0.1:9000/", &[], "all of them"), Ok(()));
        for url in ["ftp://example.org/", "/relative", "https://", "not a url"] {
            assert_eq!(check(url, &[], ""), Err(SubscriptionError::BadUrl), "{url}");
        }
        assert_eq!(
            check("https://odoo:s3cret@odoo.example/hook", &[], ""),
            Err(SubscriptionError::CredentialsInUrl)
        );
        assert!(matches!(
            check("https://example.org/", &types(&["practitioner.deleted"]), ""),
            Err(SubscriptionError::UnknownType(t, _)) if t == "practitioner.deleted"
        ));
        assert_eq!(
            check("https://example.org/", &[], &"x".repeat(201)),
            Err(SubscriptionError::LongDescription)
        );
    }
}
