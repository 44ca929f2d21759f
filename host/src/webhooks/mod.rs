//! Inbound webhooks: Standard Webhooks v1 signatures (`signature.rs`) and each connector's
//! signing secret (`secret.rs`), kept in the secret backend and rotated with a grace period;
//! the durable inbox that stores verified webhooks as jobs (`inbox.rs`).

mod inbox;
mod secret;
pub mod signature;

pub use inbox::{Accepted, Inbox, InboxError, WebhooksConfig};
pub use secret::{ROTATION_GRACE_SECS, RotatedWebhookSecret, WebhookSecrets};
pub use signature::{SignatureError, SignedHeaders, TOLERANCE_SECS, WebhookSecret, verify};
