//! A connector's webhook signing secret. It lives in the secret backend under names a plugin
//! manifest cannot declare (they hold a '.'), so no plugin can read it. Rotating keeps the
//! previous secret valid for a grace period, so a sender can switch without losing webhooks.

use super::WebhookSecret;
use crate::audit::Event;
use crate::manager::{Manager, ManagerError};

const CURRENT: &str = "hub.webhook-current";
/// Stored as `<valid until, unix seconds> <whsec_…>`.
const PREVIOUS: &str = "hub.webhook-previous";

/// How long the previous secret keeps verifying after a rotation.
pub const ROTATION_GRACE_SECS: i64 = 24 * 3600;

/// `POST /api/v1/connectors/{id}/webhook-secret`: the new secret, shown this once.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct RotatedWebhookSecret {
    /// `whsec_…`: give it to the sender; the hub never shows it again.
    pub secret: String,
    /// Until when the secret it replaced still verifies (none on the first call).
    pub previous_valid_until: Option<crate::store::Timestamp>,
}

/// Connectors' webhook signing secrets: rotated by integrators, read by the inbox.
#[derive(Clone)]
pub struct WebhookSecrets {
    manager: Manager,
}

impl WebhookSecrets {
    pub fn new(manager: Manager) -> Self {
        Self { manager }
    }

    /// Creates or rotates a connector's webhook secret.
    pub async fn rotate(&self, connector_id: &str, actor: &str) -> Result<RotatedWebhookSecret, ManagerError> {
        let manager = &self.manager;
        manager.connector(connector_id).await?;
        let store = manager.secrets().store();
        let now = chrono::Utc::now();
        let previous_valid_until = match store.get(connector_id, CURRENT).await? {
            Some(current) => {
                let until = now + chrono::Duration::seconds(ROTATION_GRACE_SECS);
                store
                    .put(connector_id, PREVIOUS, &format!("{} {current}", until.timestamp()))
                    .await?;
                Some(crate::store::Timestamp::from(until))
            }
            None => None,
        };
        let secret = WebhookSecret::generate();
        let info = store.put(connector_id, CURRENT, &secret.encode()).await?;
        // This hub's inbox verifies with the new secret from the next webhook on.
        manager.settings_changed();
        manager
            .audit()
            .record(
                Event::new(actor, "webhook-secret.rotate", connector_id).details(serde_json::json!({
                    "version": info.version,
                    "previous_valid_until": previous_valid_until,
                })),
            )
            .await;
        Ok(RotatedWebhookSecret {
            secret: secret.encode(),
            previous_valid_until,
        })
    }

    /// The secrets a webhook for this connector may be signed with now: the current one and,
    /// within its grace period, the one before it. Empty when none was ever created.
    pub async fn valid(&self, connector_id: &str) -> Result<Vec<WebhookSecret>, ManagerError> {
        let store = self.manager.secrets().store();
        let mut secrets = Vec::with_capacity(2);
        if let Some(current) = store.get(connector_id, CURRENT).await? {
            secrets.push(parse_stored(&current)?);
        }
        if let Some(previous) = store.get(connector_id, PREVIOUS).await?
            && let Some((until, encoded)) = previous.split_once(' ')
            && until
                .parse::<i64>()
                .is_ok_and(|until| until > chrono::Utc::now().timestamp())
        {
            secrets.push(parse_stored(encoded)?);
        }
        Ok(secrets)
    }
}

fn parse_stored(text: &str) -> Result<WebhookSecret, ManagerError> {
    WebhookSecret::parse(text).map_err(|e| {
        ManagerError::Store(crate::store::StoreError::Corrupt {
            what: "webhook secret",
            detail: e.to_string(),
        })
    })
}
