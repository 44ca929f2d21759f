//! Standard Webhooks v1 signatures (<https://www.standardwebhooks.com>): HMAC-SHA256 over
//! `webhook-id.webhook-timestamp.body` under a `whsec_` secret, sent base64-encoded as
//! `v1,<signature>` in `webhook-signature` (several, space-separated, while a sender rotates).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a webhook's timestamp may be from the hub's clock, either way.
pub const TOLERANCE_SECS: i64 = 5 * 60;
const PREFIX: &str = "whsec_";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("webhook-id must be 1-256 visible ASCII characters")]
    BadId,
    #[error("webhook-timestamp must be whole seconds since 1970-01-01 UTC")]
    BadTimestamp,
    #[error(
        "webhook-timestamp is more than 5 minutes from the hub's clock: check the sender's clock, or send the webhook again"
    )]
    Stale,
    #[error("no v1 signature in webhook-signature matches this body under the connector's webhook secret")]
    NoMatch,
    #[error("a webhook secret is whsec_ followed by 24 to 64 base64-encoded bytes")]
    BadSecret,
}

/// A webhook signing secret. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    /// 32 random bytes.
    pub fn generate() -> Self {
        Self(crate::crypto::random_bytes::<32>().to_vec())
    }

    /// `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let encoded = text.strip_prefix(PREFIX).ok_or(SignatureError::BadSecret)?;
        let bytes = BASE64.decode(encoded).map_err(|_| SignatureError::BadSecret)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(SignatureError::BadSecret);
        }
        Ok(Self(bytes))
    }

    /// `whsec_<base64>`, as given to the sender.
    pub fn encode(&self) -> String {
        format!("{PREFIX}{}", BASE64.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` value a sender puts on this message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            BASE64.encode(self.mac(id, timestamp, body).finalize().into_bytes())
        )
    }
}

/// The three Standard Webhooks headers of a request, as received.
pub struct SignedHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Checks a webhook against any of `secrets` (the current one and, during a rotation's
/// grace period, the previous one) at time `now` (seconds since 1970). Signatures are
/// compared in constant time.
pub fn verify(
    secrets: &[WebhookSecret],
    headers: &SignedHeaders<'_>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let id = headers.id.ok_or(SignatureError::MissingHeader("webhook-id"))?;
    let timestamp = headers
        .timestamp
        .ok_or(SignatureError::MissingHeader("webhook-timestamp"))?;
    let signatures = headers
        .signature
        .ok_or(SignatureError::MissingHeader("webhook-signature"))?;
    if id.is_empty() || id.len() > 256 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SignatureError::BadId);
    }
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::BadTimestamp);
    }
    let timestamp: i64 = timestamp.parse().map_err(|_| SignatureError::BadTimestamp)?;
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let candidates: Vec<Vec<u8>> = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| BASE64.decode(s).ok())
        .collect();
    let matched = secrets.iter().any(|secret| {
        candidates
            .iter()
            .any(|candidate| secret.mac(id, timestamp, body).verify_slice(candidate).is_ok())
    });
    if matched { Ok(()) } else { Err(SignatureError::NoMatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers<'a>(signature: &'a str, timestamp: &'a str) -> SignedHeaders<'a> {
        SignedHeaders {
            id: Some(ID),
            timestamp: Some(timestamp),
            signature: Some(signature),
        }
    }

    #[test]
    fn the_specification_example_verifies() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY), SIGNATURE);
        assert_eq!(secret.encode(), SECRET);
        let ts = TIMESTAMP.to_string();
        assert_eq!(
            verify(
                std::slice::from_ref(&secret),
                &headers(SIGNATURE, &ts),
                BODY,
                TIMESTAMP + 10
            ),
            Ok(())
        );
        // Several signatures (the sender rotating), unknown versions ignored.
        let several = format!("v1a,xyz v1,{} {SIGNATURE}", BASE64.encode([0u8; 32]));
        assert_eq!(verify(&[secret], &headers(&several, &ts), BODY, TIMESTAMP), Ok(()));
    }

    #[test]
    fn anything_changed_is_refused_with_its_reason() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let ts = TIMESTAMP.to_string();
        let check = |h: &SignedHeaders<'_>, body: &[u8], now: i64| verify(std::slice::from_ref(&secret), h, body, now);
        assert_eq!(
            check(&headers(SIGNATURE, &ts), b"{\"test\": 2432232315}", TIMESTAMP),
            Err(SignatureError::NoMatch)
        );
        let other_ts = (TIMESTAMP + 1).to_string();
        assert_eq!(
            check(&headers(SIGNATURE, &other_ts), BODY, TIMESTAMP),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            check(&headers(SIGNATURE, &ts), BODY, TIMESTAMP + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(&headers(SIGNATURE, &ts), BODY, TIMESTAMP - 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(&headers(SIGNATURE, "16142653e3"), BODY, TIMESTAMP),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            check(&headers("v2,abc", &ts), BODY, TIMESTAMP),
            Err(SignatureError::NoMatch)
        );
        let missing = SignedHeaders {
            id: None,
            timestamp: Some(&ts),
            signature: Some(SIGNATURE),
        };
        assert_eq!(
            check(&missing, BODY, TIMESTAMP),
            Err(SignatureError::MissingHeader("webhook-id"))
        );
        let other = WebhookSecret::generate();
        assert_eq!(
            verify(std::slice::from_ref(&other), &headers(SIGNATURE, &ts), BODY, TIMESTAMP),
            Err(SignatureError::NoMatch)
        );
        // The previous secret still verifies while it is listed.
        assert_eq!(
            verify(&[other, secret], &headers(SIGNATURE, &ts), BODY, TIMESTAMP),
            Ok(())
        );
    }

    #[test]
    fn secrets_are_whsec_base64_and_never_printed() {
        assert_eq!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SignatureError::BadSecret)
        );
        assert_eq!(WebhookSecret::parse("whsec_!!!"), Err(SignatureError::BadSecret));
        assert_eq!(WebhookSecret::parse("whsec_AAAA"), Err(SignatureError::BadSecret));
        let secret = WebhookSecret::generate();
        assert_eq!(WebhookSecret::parse(&secret.encode()).unwrap(), secret);
        assert!(!format!("{secret:?}").contains(&secret.encode()[6..]));
    }
}
