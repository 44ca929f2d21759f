//! A registry: a directory (or the same layout served over HTTP) holding packages and an
//! `index.json` that lists them. Versions are immutable: publishing a different package under
//! an existing `name@version` is refused.

use crate::package::{Package, PackageError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const INDEX_FILE: &str = "index.json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("registry index {path} is not valid: {detail}")]
    Index { path: PathBuf, detail: String },
    #[error("{id} is already published with digest {existing}; versions are immutable, publish a new version")]
    VersionExists { id: String, existing: String },
    #[error("{id} is not in the registry")]
    NotFound { id: String },
    #[error("{file} in the registry has digest {actual}, but the index says {expected}; the registry is corrupt")]
    DigestMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Package(#[from] PackageError),
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub packages: Vec<IndexEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexEntry {
    pub name: String,
    pub version: String,
    pub contract: String,
    pub digest: String,
    /// File name of the package, relative to the registry root.
    pub file: String,
    #[serde(default)]
    pub description: String,
    /// The key that signed the package, if any.
    pub publisher: Option<String>,
}

impl IndexEntry {
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

impl Index {
    /// `name@version`, or the highest version of `name` when `version` is `None`.
    pub fn find(&self, name: &str, version: Option<&str>) -> Option<&IndexEntry> {
        self.packages
            .iter()
            .filter(|e| e.name == name && version.is_none_or(|v| e.version == v))
            .max_by_key(|e| version_key(&e.version))
    }
}

/// Sort key of a semantic version: orders `1.10.0` after `1.9.0`, and a pre-release before
/// its release.
pub fn version_key(version: &str) -> (Vec<u64>, bool) {
    let (core, pre) = match version.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (version.split('+').next().unwrap_or(version), None),
    };
    let numbers = core.split('.').map(|n| n.parse().unwrap_or(0)).collect();
    (numbers, pre.is_none())
}

/// A registry in a local directory.
pub struct DirRegistry {
    root: PathBuf,
}

impl DirRegistry {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError {
        let path = path.to_path_buf();
        move |source| RegistryError::Io { path, source }
    }

    pub fn index(&self) -> Result<Index, RegistryError> {
        let path = self.root.join(INDEX_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RegistryError::Index {
                path,
                detail: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(source) => Err(RegistryError::Io { path, source }),
        }
    }

    /// Adds `package` to the registry. Publishing the identical package again is a no-op.
    pub fn publish(&self, package: &Package) -> Result<IndexEntry, RegistryError> {
        std::fs::create_dir_all(&self.root).map_err(self.io(&self.root))?;
        let mut index = self.index()?;
        let entry = IndexEntry {
            name: package.manifest.name.clone(),
            version: package.manifest.version.clone(),
            contract: package.manifest.contract.clone(),
            digest: package.digest(),
            file: package.file_name(),
            description: package.manifest.description.clone(),
            publisher: package.signature.as_ref().map(|s| s.key.to_string()),
        };
        if let Some(existing) = index.find(&entry.name, Some(&entry.version)) {
            if existing.digest == entry.digest && existing.publisher == entry.publisher {
                return Ok(existing.clone());
            }
            return Err(RegistryError::VersionExists {
                id: entry.id(),
                existing: existing.digest.clone(),
            });
        }
        write_atomically(&self.root.join(&entry.file), &package.to_bytes()).map_err(self.io(&self.root))?;
        index.packages.push(entry.clone());
        let text = serde_json::to_vec_pretty(&index).expect("an index serializes");
        write_atomically(&self.root.join(INDEX_FILE), &text).map_err(self.io(&self.root))?;
        Ok(entry)
    }

    /// Reads the package an index entry names and checks it is the one indexed.
    pub fn fetch(&self, entry: &IndexEntry) -> Result<Package, RegistryError> {
        let path = self.root.join(&entry.file);
        let bytes = std::fs::read(&path).map_err(self.io(&path))?;
        check_fetched(entry, &bytes)
    }
}

/// Parses fetched package bytes and checks their digest against the index entry.
pub fn check_fetched(entry: &IndexEntry, bytes: &[u8]) -> Result<Package, RegistryError> {
    let package = Package::from_bytes(bytes)?;
    let actual = package.digest();
    if actual != entry.digest {
        return Err(RegistryError::DigestMismatch {
            file: entry.file.clone(),
            expected: entry.digest.clone(),
            actual,
        });
    }
    Ok(package)
}

/// Index entries name files inside the registry only.
pub fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'))
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(version: &str, component: &[u8]) -> Package {
        let manifest =
            format!("name = \"sisdmk\"\nversion = \"{version}\"\ncontract = \"0.1.0\"\ntriggers = [\"sync\"]\n");
        Package::new(&manifest, component.to_vec()).unwrap()
    }

    #[test]
    fn publish_fetch_and_immutable_versions() {
        let dir = tempfile::tempdir().unwrap();
        let registry = DirRegistry::new(dir.path());
        registry.publish(&package("1.9.0", b"a")).unwrap();
        registry.publish(&package("1.10.0", b"b")).unwrap();
        registry.publish(&package("1.10.0", b"b")).unwrap();
        let err = registry.publish(&package("1.10.0", b"c")).unwrap_err();
        assert!(matches!(err, RegistryError::VersionExists { .. }), "{err}");

        let index = registry.index().unwrap();
        assert_eq!(index.packages.len(), 2);
        let newest = index.find("sisdmk", None).unwrap();
        assert_eq!(newest.version, "1.10.0");
        assert_eq!(registry.fetch(newest).unwrap().component, b"b");

        std::fs::write(dir.path().join(&newest.file), package("1.10.0", b"x").to_bytes()).unwrap();
        assert!(matches!(
            registry.fetch(newest),
            Err(RegistryError::DigestMismatch { .. })
        ));
    }
}
