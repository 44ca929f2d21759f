//! The durable inbox behind `POST /webhooks/{connector_id}`: verify the signature, store the
//! webhook as a job, and only then answer `202`.
//!
//! Stores are group-committed by the job queue: webhooks arriving together go into one
//! multi-row insert, and each request is answered after the commit that holds it.

use super::{SignatureError, SignedHeaders, WebhookSecret, WebhookSecrets, verify};
use crate::jobs::{CommitError, JobKind, WebhookPayload};
use crate::manager::{Manager, ManagerError};
use crate::store::connectors::ConnectorRecord;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `[webhooks]`: the inbound webhook endpoint (`POST /webhooks/{connector id}`).
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Largest body accepted; larger ones get `413`.
    pub max_body_bytes: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("no connector {0:?} takes webhooks here; check the URL")]
    UnknownConnector(String),
    #[error("connector {0:?} runs a plugin that takes no webhooks (its manifest's triggers lack \"webhook\")")]
    NoWebhooks(String),
    #[error("connector {0:?} is disabled and refuses webhooks until it is enabled; send it again later")]
    Disabled(String),
    #[error(
        "connector {0:?} has no webhook secret yet: an admin creates one with POST /api/v1/connectors/{0}/webhook-secret"
    )]
    NoSecret(String),
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("the webhook could not be stored: {0}")]
    Store(#[from] CommitError),
    #[error(transparent)]
    Manager(#[from] ManagerError),
}

/// What became of an accepted webhook.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now as this job.
    Queued { job_id: String },
    /// Its `webhook-id` was stored before: acknowledged, not queued again.
    Duplicate,
}

/// How long a connector's settings and webhook secrets are reused between reads. A change
/// made on this hub (a rotation, a disable) drops the cache at once; one made on another
/// replica is seen within `CACHE_TTL` — and a webhook signed with a new secret is checked
/// again with fresh ones once the cached ones are older than `RECHECK`, so a new secret
/// verifies everywhere within 1 s, a retired one stops verifying within 5 s. `RECHECK` also
/// bounds the reads forged signatures can cause: one per connector per second.
const CACHE_TTL: Duration = Duration::from_secs(5);
const RECHECK: Duration = Duration::from_secs(1);

/// Headers never handed to plugins.
const WITHHELD_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

struct Cached {
    fetched: Instant,
    /// `Manager::settings_generation` when read: stale once it moves on.
    generation: u64,
    connector: Arc<ConnectorRecord>,
    secrets: Arc<Vec<WebhookSecret>>,
}

pub struct Inbox {
    manager: Manager,
    secrets: WebhookSecrets,
    max_body_bytes: usize,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Inbox {
    pub fn new(manager: Manager, secrets: WebhookSecrets, config: &WebhooksConfig) -> Self {
        Self {
            manager,
            secrets,
            max_body_bytes: config.max_body_bytes,
            cache: Mutex::default(),
        }
    }

    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The signing secrets webhooks are verified with.
    pub fn secrets(&self) -> &WebhookSecrets {
        &self.secrets
    }

    /// Verifies a webhook for `connector_id` and stores it durably; `Ok` only once it is
    /// committed (or was stored before).
    pub async fn accept(
        &self,
        connector_id: &str,
        headers: &http::HeaderMap,
        body: bytes::Bytes,
    ) -> Result<Accepted, InboxError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let signed = SignedHeaders {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
        };
        let now = chrono::Utc::now().timestamp();
        let mut cached = self.settings(connector_id, false).await?;
        if let Err(error) = verify(&cached.1, &signed, &body, now) {
            if error != SignatureError::NoMatch || cached.2.elapsed() < RECHECK {
                return Err(error.into());
            }
            cached = self.settings(connector_id, true).await?;
            verify(&cached.1, &signed, &body, now)?;
        }
        let (connector, _, _) = cached;
        let id = signed.id.expect("verified webhooks have an id").to_string();
        let payload = WebhookPayload {
            id: id.clone(),
            headers: headers
                .iter()
                .filter(|(name, _)| !WITHHELD_HEADERS.contains(&name.as_str()))
                .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
                .collect(),
            body: body.to_vec(),
        };
        let job = self
            .manager
            .runs()
            .new_job(&connector, JobKind::Webhook, Some(id), None, &payload);
        let job_id = job.id.clone();
        match self.manager.queue().store(job).await {
            Ok(true) => Ok(Accepted::Queued { job_id }),
            Ok(false) => Ok(Accepted::Duplicate),
            Err(error) => Err(error.into()),
        }
    }

    /// The connector (enabled, with a webhook secret) and its secrets, from the cache unless
    /// `fresh` or expired; with the age of what is returned.
    async fn settings(
        &self,
        connector_id: &str,
        fresh: bool,
    ) -> Result<(Arc<ConnectorRecord>, Arc<Vec<WebhookSecret>>, Instant), InboxError> {
        let generation = self.manager.settings_generation();
        let hit = self.cache.lock().unwrap().get(connector_id).and_then(|c| {
            let current = !fresh && c.generation == generation && c.fetched.elapsed() < CACHE_TTL;
            current.then(|| (c.connector.clone(), c.secrets.clone(), c.fetched))
        });
        let (connector, secrets, fetched) = match hit {
            Some(hit) => hit,
            None => {
                let connector = match self.manager.db().connector(connector_id).await {
                    Ok(Some(connector)) => Arc::new(connector),
                    Ok(None) => return Err(InboxError::UnknownConnector(connector_id.into())),
                    Err(error) => {
                        tracing::error!(%error, connector = connector_id, "reading a connector for a webhook failed");
                        return Err(CommitError::Store.into());
                    }
                };
                let manifest = self.manager.manifest_of(&connector.plugin_digest).await?;
                if !manifest.triggers.contains(&hub_registry::Trigger::Webhook) {
                    return Err(InboxError::NoWebhooks(connector_id.into()));
                }
                let secrets = Arc::new(self.secrets.valid(connector_id).await?);
                let fetched = Instant::now();
                let mut cache = self.cache.lock().unwrap();
                // Bounded: ids of deleted connectors must not pile up.
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(
                    connector_id.to_string(),
                    Cached {
                        fetched,
                        generation,
                        connector: connector.clone(),
                        secrets: secrets.clone(),
                    },
                );
                (connector, secrets, fetched)
            }
        };
        if !connector.enabled {
            return Err(InboxError::Disabled(connector_id.into()));
        }
        if secrets.is_empty() {
            return Err(InboxError::NoSecret(connector_id.into()));
        }
        Ok((connector, secrets, fetched))
    }
}
