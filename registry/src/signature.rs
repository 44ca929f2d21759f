//! ed25519 publisher signatures over a package digest, and the trust policy that checks them.
//!
//! A signature records the sha256 of the manifest and of the component separately, so a
//! refusal can say which part was changed after signing.

use crate::package::{Package, sha256_hex};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

const SIGNED_CONTEXT: &[u8] = b"healthforce-plugin-signature-v1\0";
const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "hub-ed25519-secret:";

/// A publisher's public key, written `ed25519:<base64url>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for PublicKey {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a publisher key; expected ed25519:<base64url of 32 bytes>");
        let encoded = text.trim().strip_prefix(PUBLIC_PREFIX).ok_or_else(bad)?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| bad())?;
        Ok(Self(bytes.try_into().map_err(|_| bad())?))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A publisher's private key. Its text form is `hub-ed25519-secret:<base64 PKCS#8>`; keep
/// the file private (the CLI writes it with mode 0600).
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
#[error("not a publisher signing key (expected the text `hub plugin keygen` writes): {0}")]
pub struct KeyError(String);

impl SigningKey {
    pub fn generate() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("the system RNG works");
        Self::from_pkcs8(pkcs8.as_ref().to_vec()).expect("a freshly generated key parses")
    }

    fn from_pkcs8(pkcs8: Vec<u8>) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|e| KeyError(e.to_string()))?;
        Ok(Self { pair, pkcs8 })
    }

    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| KeyError("missing the hub-ed25519-secret: prefix".into()))?;
        let pkcs8 = STANDARD.decode(encoded).map_err(|e| KeyError(e.to_string()))?;
        Self::from_pkcs8(pkcs8)
    }

    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}\n", STANDARD.encode(&self.pkcs8))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(
            self.pair
                .public_key()
                .as_ref()
                .try_into()
                .expect("ed25519 public keys are 32 bytes"),
        )
    }

    /// Signs `package` in place.
    pub fn sign(&self, package: &mut Package) {
        let signature = self.pair.sign(&signed_message(&package.digest()));
        package.signature = Some(Signature {
            key: self.public_key(),
            manifest_sha256: sha256_hex(package.manifest_text.as_bytes()),
            component_sha256: sha256_hex(&package.component),
            signature: STANDARD.encode(signature.as_ref()),
        });
    }
}

fn signed_message(digest: &str) -> Vec<u8> {
    [SIGNED_CONTEXT, digest.as_bytes()].concat()
}

/// `signature.toml` in a package.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The publisher key that signed.
    pub key: PublicKey,
    pub manifest_sha256: String,
    pub component_sha256: String,
    /// base64 ed25519 signature over the package digest.
    pub signature: String,
}

impl Signature {
    pub(crate) fn to_toml(&self) -> String {
        toml::to_string(self).expect("a signature serializes")
    }

    pub(crate) fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// Why a package was refused. Each case names the package and what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error(
        "package {package} is unsigned; sign it with `hub plugin package --key`, or allow unsigned packages in dev mode (plugins.allow_unsigned = true)"
    )]
    Unsigned { package: String },
    #[error(
        "the manifest (plugin.toml) of package {package} was changed after it was signed; get the package again from its publisher"
    )]
    ManifestTampered { package: String },
    #[error(
        "the component (component.wasm) of package {package} was changed after it was signed; get the package again from its publisher"
    )]
    ComponentTampered { package: String },
    #[error(
        "package {package} is signed by {key}, which is not a trusted publisher key; add it to plugins.trusted_keys if you trust its publisher"
    )]
    UntrustedKey { package: String, key: PublicKey },
    #[error(
        "the signature of package {package} does not verify against its key {key}; the package was altered or mis-signed"
    )]
    BadSignature { package: String, key: PublicKey },
}

/// Which packages the host accepts.
#[derive(Clone, Debug, Default)]
pub struct TrustPolicy {
    pub trusted_keys: Vec<PublicKey>,
    /// Dev mode: accept packages without a signature (a present signature is still checked).
    pub allow_unsigned: bool,
}

/// How a package passed the trust policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    SignedBy(PublicKey),
    UnsignedAllowed,
}

impl TrustPolicy {
    pub fn verify(&self, package: &Package) -> Result<Trust, VerifyError> {
        let id = package.manifest.id();
        let Some(signature) = &package.signature else {
            return if self.allow_unsigned {
                Ok(Trust::UnsignedAllowed)
            } else {
                Err(VerifyError::Unsigned { package: id })
            };
        };
        if signature.manifest_sha256 != sha256_hex(package.manifest_text.as_bytes()) {
            return Err(VerifyError::ManifestTampered { package: id });
        }
        if signature.component_sha256 != sha256_hex(&package.component) {
            return Err(VerifyError::ComponentTampered { package: id });
        }
        if !self.trusted_keys.contains(&signature.key) {
            return Err(VerifyError::UntrustedKey {
                package: id,
                key: signature.key,
            });
        }
        let bad = || VerifyError::BadSignature {
            package: id.clone(),
            key: signature.key,
        };
        let bytes = STANDARD.decode(&signature.signature).map_err(|_| bad())?;
        UnparsedPublicKey::new(&ED25519, signature.key.0)
            .verify(&signed_message(&package.digest()), &bytes)
            .map_err(|_| bad())?;
        Ok(Trust::SignedBy(signature.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "name = \"kki\"\nversion = \"1.0.0\"\ncontract = \"0.1.0\"\ntriggers = [\"sync\"]\n";

    fn signed(key: &SigningKey) -> Package {
        let mut package = Package::new(MANIFEST, b"\0asm component".to_vec()).unwrap();
        key.sign(&mut package);
        Package::from_bytes(&package.to_bytes()).unwrap()
    }

    #[test]
    fn each_refusal_has_its_own_reason() {
        let key = SigningKey::generate();
        let policy = TrustPolicy {
            trusted_keys: vec![key.public_key()],
            allow_unsigned: false,
        };
        let package = signed(&key);
        assert_eq!(policy.verify(&package), Ok(Trust::SignedBy(key.public_key())));

        let mut manifest = package.clone();
        manifest.manifest_text.push_str("description = \"evil\"\n");
        assert!(matches!(
            policy.verify(&manifest),
            Err(VerifyError::ManifestTampered { .. })
        ));

        let mut component = package.clone();
        component.component.push(0);
        assert!(matches!(
            policy.verify(&component),
            Err(VerifyError::ComponentTampered { .. })
        ));

        // Tampered and re-hashed: only the signature can tell.
        let mut rehashed = component.clone();
        let signature = rehashed.signature.as_mut().unwrap();
        signature.component_sha256 = sha256_hex(&rehashed.component);
        assert!(matches!(
            policy.verify(&rehashed),
            Err(VerifyError::BadSignature { .. })
        ));

        let stranger = signed(&SigningKey::generate());
        assert!(matches!(
            policy.verify(&stranger),
            Err(VerifyError::UntrustedKey { .. })
        ));

        let mut unsigned = package.clone();
        unsigned.signature = None;
        assert!(matches!(policy.verify(&unsigned), Err(VerifyError::Unsigned { .. })));
        let dev = TrustPolicy {
            allow_unsigned: true,
            ..policy.clone()
        };
        assert_eq!(dev.verify(&unsigned), Ok(Trust::UnsignedAllowed));
        assert!(
            dev.verify(&manifest).is_err(),
            "dev mode still checks a present signature"
        );
    }

    #[test]
    fn keys_round_trip_as_text() {
        let key = SigningKey::generate();
        let again = SigningKey::from_text(&key.to_text()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public: PublicKey = key.public_key().to_string().parse().unwrap();
        assert_eq!(public, key.public_key());
        assert!("ed25519:short".parse::<PublicKey>().is_err());
        assert!(SigningKey::from_text("nope").is_err());
    }
}
