//! Installing plugin packages: from an upload, from a configured registry, or bundled in the
//! binary. Uploaded and registry packages must pass the trust policy; bundled ones come from
//! this binary's own build.

use super::{Manager, ManagerError};
use crate::audit::{Event, Outcome};
use crate::runtime::bindings::SUPPORTED_CONTRACTS;
use crate::runtime::{LoadedPlugin, Runtime};
use crate::store::{self, plugins::PluginRecord};
use hub_registry::index::{INDEX_FILE, check_fetched, is_safe_file_name};
use hub_registry::{DirRegistry, Index, IndexEntry, Package, Trust};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// `[plugins]`: where packages come from and whose signatures are trusted.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Publisher keys (`ed25519:...`) whose packages may be installed.
    #[schemars(with = "Vec<String>")]
    pub trusted_keys: Vec<hub_registry::PublicKey>,
    /// Dev mode only: install packages that carry no signature (`hub plugin dev`); the hub
    /// then refuses to start unless it listens on a loopback address.
    pub allow_unsigned: bool,
    /// Registries searched in order for `name@version`: directories or `http(s)://` base URLs.
    pub registries: Vec<String>,
}

impl Manager {
    /// Installs an uploaded or fetched package after checking its signature against the
    /// trusted publisher keys. Every attempt, refused or not, is audited.
    pub async fn install(&self, package: &Package, actor: &str) -> Result<PluginRecord, ManagerError> {
        let id = package.manifest.id();
        let result = match self.inner.trust.verify(package) {
            Ok(trust) => self.install_checked(package, trust).await,
            Err(refused) => Err(ManagerError::Refused(refused.to_string())),
        };
        let event = Event::new(actor, "plugin.install", &id);
        let event = match &result {
            Ok(record) => event.details(json!({ "digest": record.digest, "publisher": record.publisher })),
            Err(error) => event
                .outcome(Outcome::Denied)
                .details(json!({ "digest": package.digest(), "reason": error.to_string() })),
        };
        self.inner.audit.record(event).await;
        result
    }

    /// Installs a plugin embedded in this binary (or a test fixture built with it).
    pub async fn install_bundled(&self, package: &Package) -> Result<PluginRecord, ManagerError> {
        self.install_checked(package, Trust::UnsignedAllowed).await
    }

    /// Finds `name` (newest) or `name@version` in the configured registries, in order, and
    /// installs it.
    pub async fn install_from_registry(&self, spec: &str, actor: &str) -> Result<PluginRecord, ManagerError> {
        let (name, version) = match spec.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (spec, None),
        };
        if self.inner.plugins.registries.is_empty() {
            return Err(ManagerError::invalid(
                "no plugin registries are configured; set plugins.registries in hub.toml, or upload the package",
            ));
        }
        let mut problems = Vec::new();
        for registry in &self.inner.plugins.registries {
            match self.fetch(registry, name, version).await {
                Ok(Some(package)) => return self.install(&package, actor).await,
                Ok(None) => problems.push(format!("{registry}: not listed")),
                Err(problem) => problems.push(format!("{registry}: {problem}")),
            }
        }
        Err(ManagerError::NotFound {
            what: "plugin package",
            id: format!("{spec} (searched {})", problems.join("; ")),
        })
    }

    async fn fetch(&self, registry: &str, name: &str, version: Option<&str>) -> Result<Option<Package>, String> {
        if registry.starts_with("http://") || registry.starts_with("https://") {
            let base = registry.trim_end_matches('/');
            let index: Index = self
                .get(&format!("{base}/{INDEX_FILE}"))
                .await?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let Some(entry) = index.find(name, version) else {
                return Ok(None);
            };
            let entry = safe(entry)?;
            let response = self.get(&format!("{base}/{}", entry.file)).await?;
            let bytes = response.bytes().await.map_err(|e| e.to_string())?;
            check_fetched(entry, &bytes).map(Some).map_err(|e| e.to_string())
        } else {
            let registry = DirRegistry::new(registry);
            let index = registry.index().map_err(|e| e.to_string())?;
            let Some(entry) = index.find(name, version) else {
                return Ok(None);
            };
            registry.fetch(safe(entry)?).map(Some).map_err(|e| e.to_string())
        }
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, String> {
        let response = self
            .inner
            .tokens
            .http()
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", response.status()));
        }
        Ok(response)
    }

    /// Checks the contract version, compiles and links the component against this host,
    /// then records it. Installing the same package twice is a no-op.
    async fn install_checked(&self, package: &Package, trust: Trust) -> Result<PluginRecord, ManagerError> {
        let manifest = &package.manifest;
        let digest = package.digest();
        if let Some(existing) = self
            .inner
            .db
            .find_plugin(&manifest.name, Some(&manifest.version))
            .await?
            && existing.digest != digest
        {
            return Err(ManagerError::Conflict(format!(
                "{} is installed already with digest {}; versions are immutable, publish a new version",
                manifest.id(),
                existing.digest
            )));
        }
        check_runnable(&self.inner.runtime, package).await?;
        let record = PluginRecord {
            digest,
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            contract: manifest.contract.clone(),
            manifest: package.manifest_text.clone(),
            publisher: match trust {
                Trust::SignedBy(key) => Some(key.to_string()),
                Trust::UnsignedAllowed => None,
            },
            installed_at: store::Timestamp::now(),
        };
        self.inner.db.insert_plugin(&record, &package.component).await?;
        tracing::info!(plugin = %manifest.id(), digest = %record.digest, "plugin installed");
        Ok(record)
    }
}

/// Whether `package` runs on this hub: a contract version it serves, a component that
/// compiles and links against its capabilities, exporting the contract its manifest names.
/// `hub plugin package` checks the same before it signs anything.
pub async fn check_runnable(runtime: &Runtime, package: &Package) -> Result<Arc<LoadedPlugin>, ManagerError> {
    let manifest = &package.manifest;
    if !SUPPORTED_CONTRACTS.contains(&manifest.contract.as_str()) {
        return Err(ManagerError::Refused(format!(
            "plugin {} was built against contract {}, which this hub cannot run (it runs {}); rebuild it with a supported SDK",
            manifest.id(),
            manifest.contract,
            SUPPORTED_CONTRACTS.join(", ")
        )));
    }
    let loaded = runtime.load(&package.digest(), &package.component).await?;
    if loaded.contract() != manifest.contract {
        return Err(ManagerError::Refused(format!(
            "plugin {}: its plugin.toml says contract {} but the component exports contract {}; set `contract = \"{}\"` in plugin.toml and package it again",
            manifest.id(),
            manifest.contract,
            loaded.contract(),
            loaded.contract()
        )));
    }
    Ok(loaded)
}

/// An index entry whose file name stays inside the registry.
fn safe(entry: &IndexEntry) -> Result<&IndexEntry, String> {
    if is_safe_file_name(&entry.file) {
        Ok(entry)
    } else {
        Err(format!(
            "the index names the file {:?}, which is outside the registry",
            entry.file
        ))
    }
}
