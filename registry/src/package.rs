//! A plugin package: the component plus its manifest, identified by a sha256 digest over both
//! and optionally signed. On disk a package is a tar file (`.hfpkg`) with the entries
//! `plugin.toml`, `component.wasm` and, when signed, `signature.toml`.

use crate::manifest::{Manifest, ManifestError};
use crate::signature::Signature;
use sha2::{Digest, Sha256};
use std::io::Read;

/// File extension of a package.
pub const EXTENSION: &str = "hfpkg";

const MANIFEST_ENTRY: &str = "plugin.toml";
const COMPONENT_ENTRY: &str = "component.wasm";
const SIGNATURE_ENTRY: &str = "signature.toml";
const MAX_MANIFEST: u64 = 256 * 1024;
const MAX_SIGNATURE: u64 = 16 * 1024;
/// Largest component a package may carry.
pub const MAX_COMPONENT: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("not a readable plugin package (expected a tar file with plugin.toml and component.wasm): {0}")]
    Archive(std::io::Error),
    #[error(
        "the package entry {entry:?} is not allowed; a package holds only plugin.toml, component.wasm and signature.toml"
    )]
    UnexpectedEntry { entry: String },
    #[error("the package holds {entry} twice")]
    DuplicateEntry { entry: &'static str },
    #[error("the package has no {entry}")]
    MissingEntry { entry: &'static str },
    #[error("{entry} is larger than the {limit}-byte limit")]
    TooLarge { entry: &'static str, limit: u64 },
    #[error("{entry} is not UTF-8 text")]
    NotText { entry: &'static str },
    #[error("signature.toml is malformed: {0}")]
    Signature(String),
}

/// A plugin package: the manifest's text, the component's bytes, the signature if any.
#[derive(Clone)]
pub struct Package {
    pub manifest: Manifest,
    pub manifest_text: String,
    pub component: Vec<u8>,
    pub signature: Option<Signature>,
}

impl Package {
    /// An unsigned package.
    pub fn new(manifest_text: &str, component: Vec<u8>) -> Result<Self, ManifestError> {
        Ok(Self {
            manifest: Manifest::parse(manifest_text)?,
            manifest_text: manifest_text.to_string(),
            component,
            signature: None,
        })
    }

    /// `sha256:<hex>` over the manifest and the component, each length-prefixed so that no
    /// byte can move from one to the other without changing the digest.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"healthforce-plugin-package-v1\0");
        for part in [self.manifest_text.as_bytes(), &self.component] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }

    /// `<name>-<version>.hfpkg`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.{EXTENSION}", self.manifest.name, self.manifest.version)
    }

    /// The package as a `.hfpkg` file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut append = |name: &str, data: &[u8]| {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, data)
                .expect("writing a tar entry to memory cannot fail");
        };
        append(MANIFEST_ENTRY, self.manifest_text.as_bytes());
        append(COMPONENT_ENTRY, &self.component);
        if let Some(signature) = &self.signature {
            append(SIGNATURE_ENTRY, signature.to_toml().as_bytes());
        }
        builder.into_inner().expect("finishing a tar in memory cannot fail")
    }

    /// Reads a `.hfpkg` file, refusing anything but the three known entries and oversized
    /// parts, so an upload cannot smuggle files or exhaust memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PackageError> {
        let mut archive = tar::Archive::new(bytes);
        let (mut manifest, mut component, mut signature) = (None, None, None);
        for entry in archive.entries().map_err(PackageError::Archive)? {
            let mut entry = entry.map_err(PackageError::Archive)?;
            let path = entry
                .path()
                .map_err(PackageError::Archive)?
                .to_string_lossy()
                .into_owned();
            let (slot, name, limit) = match path.as_str() {
                MANIFEST_ENTRY => (&mut manifest, MANIFEST_ENTRY, MAX_MANIFEST),
                COMPONENT_ENTRY => (&mut component, COMPONENT_ENTRY, MAX_COMPONENT),
                SIGNATURE_ENTRY => (&mut signature, SIGNATURE_ENTRY, MAX_SIGNATURE),
                _ => return Err(PackageError::UnexpectedEntry { entry: path }),
            };
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(PackageError::UnexpectedEntry { entry: path });
            }
            if slot.is_some() {
                return Err(PackageError::DuplicateEntry { entry: name });
            }
            if entry.size() > limit {
                return Err(PackageError::TooLarge { entry: name, limit });
            }
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut data).map_err(PackageError::Archive)?;
            *slot = Some(data);
        }
        let text = |data: Vec<u8>, entry| String::from_utf8(data).map_err(|_| PackageError::NotText { entry });
        let manifest_text = text(
            manifest.ok_or(PackageError::MissingEntry { entry: MANIFEST_ENTRY })?,
            MANIFEST_ENTRY,
        )?;
        let component = component.ok_or(PackageError::MissingEntry { entry: COMPONENT_ENTRY })?;
        let mut package = Package::new(&manifest_text, component)?;
        if let Some(data) = signature {
            let text = text(data, SIGNATURE_ENTRY)?;
            package.signature = Some(Signature::from_toml(&text).map_err(PackageError::Signature)?);
        }
        Ok(package)
    }
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "name = \"regnakes\"\nversion = \"0.1.0\"\ncontract = \"0.1.0\"\ntriggers = [\"sync\"]\n";

    #[test]
    fn digest_covers_manifest_and_component() {
        let a = Package::new(MANIFEST, vec![1, 2, 3]).unwrap();
        let b = Package::new(MANIFEST, vec![1, 2, 4]).unwrap();
        let c = Package::new(
            &MANIFEST.replace("version = \"0.1.0\"", "version = \"0.1.1\""),
            vec![1, 2, 3],
        )
        .unwrap();
        assert_ne!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
        assert!(a.digest().starts_with("sha256:"));
    }

    #[test]
    fn file_round_trip_and_refusals() {
        let package = Package::new(MANIFEST, vec![0, 97, 115, 109]).unwrap();
        let read = Package::from_bytes(&package.to_bytes()).unwrap();
        assert_eq!(read.digest(), package.digest());
        assert!(read.signature.is_none());

        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(1);
        header.set_cksum();
        builder.append_data(&mut header, "run.sh", &b"x"[..]).unwrap();
        let err = Package::from_bytes(&builder.into_inner().unwrap()).err().unwrap();
        assert!(err.to_string().contains("not allowed"), "{err}");

        let err = Package::from_bytes(b"definitely not a tar file").err().unwrap();
        assert!(err.to_string().contains("plugin.toml"), "{err}");
    }
}
