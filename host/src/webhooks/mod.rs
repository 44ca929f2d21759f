//! Inbound webhooks: Standard Webhooks v1 signatures (`signature.rs`) and each connector's
//! signing secret (`secret.rs`), kept in the secret backend and rotated with a grace period.

mod secret;
pub mod signature;

pub use secret::{ROTATION_GRACE_SECS, RotatedWebhookSecret};
pub use signature::{SignatureError, SignedHeaders, TOLERANCE_SECS, WebhookSecret, verify};
