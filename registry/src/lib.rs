//! Plugin packages and registries.
//!
//! - [`manifest`]: `plugin.toml`, the source of truth about a plugin;
//! - [`package`]: component + manifest with a sha256 digest, as a `.hfpkg` file;
//! - [`signature`]: ed25519 publisher signatures and the host's trust policy;
//! - [`index`]: a registry directory (or HTTP base URL) with `index.json`.

pub mod index;
pub mod manifest;
pub mod package;
pub mod signature;

pub use index::{DirRegistry, Index, IndexEntry, RegistryError};
pub use manifest::{CreatePolicy, Manifest, ManifestError, Trigger};
pub use package::{Package, PackageError};
pub use signature::{PublicKey, SigningKey, Trust, TrustPolicy, VerifyError};
