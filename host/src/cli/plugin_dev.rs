//! `hub plugin dev`: the inner loop against a local hub. It builds the connector in a
//! directory (as `hub plugin build`), installs it unsigned under a fresh pre-release version
//! (`0.1.0-dev.<ms>`, so no rebuild needs a new version by hand), moves a connector to it
//! (creating the connector the first time) and optionally runs it; then it watches the
//! sources and does it all again on every change. The hub must allow unsigned packages,
//! which it does only when it listens on loopback (`plugins.allow_unsigned`).

use super::api_client::{ApiArgs, Client};
use anyhow::Context;
use hub_registry::Package;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

#[derive(clap::Args)]
pub struct DevArgs {
    /// The connector's directory: plugin.toml beside a Cargo.toml or an app.py.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    api: ApiArgs,
    /// The connector to move to each build (created the first time); default: the plugin's name.
    #[arg(long)]
    connector: Option<String>,
    /// The connector's config, a JSON file: set on every install.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A secret of the connector, `name=value`, set when it is created; repeat for more.
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    secrets: Vec<String>,
    /// A host the connector may call (default: the manifest's egress); repeat for more.
    #[arg(long = "egress", value_name = "HOST[:PORT]")]
    egress: Vec<String>,
    /// Run a sync after each install and print how it went.
    #[arg(long)]
    run: bool,
}

/// How often the sources are looked at for changes.
const POLL: Duration = Duration::from_millis(500);

pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let config: Option<Value> = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Some(serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?)
        }
        None => None,
    };
    let secrets = super::plugin_run::pairs(&args.secrets, "--secret")?;
    let dev = Dev {
        client: Client::new(args.api)?,
        dir: args.dir,
        connector: args.connector,
        config,
        secrets,
        egress: args.egress,
        run: args.run,
    };
    let mut seen = None;
    loop {
        let now = sources(&dev.dir)?;
        if seen.as_ref() != Some(&now) {
            seen = Some(now);
            if let Err(error) = dev.install().await {
                eprintln!("dev: {error:#}");
                eprintln!("dev: waiting for the next change in {}", dev.dir.display());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

struct Dev {
    client: Client,
    dir: PathBuf,
    connector: Option<String>,
    config: Option<Value>,
    secrets: std::collections::BTreeMap<String, String>,
    egress: Vec<String>,
    run: bool,
}

impl Dev {
    /// Build, install under a new dev version, move the connector to it, maybe run it.
    async fn install(&self) -> anyhow::Result<()> {
        let built = super::plugin_crate::build_checked(&self.dir).await?;
        let manifest = &built.package.manifest;
        let release = manifest.version.split(['-', '+']).next().unwrap_or_default();
        let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?.as_millis();
        let version = format!("{release}-dev.{stamp}");
        let manifest_text = with_version(&built.package.manifest_text, &version)?;
        let package = Package::new(&manifest_text, built.package.component)?;
        let plugin = package.manifest.id();
        self.client
            .upload("/api/v1/plugins", package.to_bytes())
            .await
            .with_context(|| format!("installing {plugin} (the hub needs plugins.allow_unsigned = true)"))?;
        let name = self.connector.clone().unwrap_or_else(|| package.manifest.name.clone());
        let connector = match self.find(&name).await? {
            Some(id) => {
                let moved = self
                    .client
                    .post_json(
                        &format!("/api/v1/connectors/{id}/upgrade"),
                        &json!({ "version": version }),
                    )
                    .await?;
                let mut patch = serde_json::Map::new();
                if let Some(config) = &self.config {
                    patch.insert("config".into(), config.clone());
                }
                if !self.egress.is_empty() {
                    patch.insert("egress".into(), json!(self.egress));
                }
                if patch.is_empty() {
                    moved
                } else {
                    let path = format!("/api/v1/connectors/{id}");
                    self.client
                        .send_json(reqwest::Method::PATCH, &path, &Value::Object(patch))
                        .await?
                }
            }
            None => {
                let mut create = json!({
                    "name": name, "plugin": plugin, "enabled": true,
                    "config": self.config.clone().unwrap_or_else(|| json!({})),
                    "secrets": self.secrets,
                });
                if !self.egress.is_empty() {
                    create["egress"] = json!(self.egress);
                }
                self.client.post_json("/api/v1/connectors", &create).await?
            }
        };
        let id = connector["id"]
            .as_str()
            .context("the hub answered a connector without an id")?;
        eprintln!("dev: {plugin} installed; connector {name} ({id}) runs it");
        if self.run {
            self.run_and_report(id).await?;
        }
        Ok(())
    }

    /// The id of the connector named `name`, if there is one.
    async fn find(&self, name: &str) -> anyhow::Result<Option<String>> {
        let mut path = "/api/v1/connectors?limit=500".to_string();
        loop {
            let page = self.client.call(reqwest::Method::GET, &path).await?;
            let items = page["items"].as_array().into_iter().flatten();
            if let Some(found) = items.clone().find(|c| c["name"] == name) {
                return Ok(found["id"].as_str().map(String::from));
            }
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/connectors?limit=500&cursor={cursor}"),
                None => return Ok(None),
            }
        }
    }

    async fn run_and_report(&self, id: &str) -> anyhow::Result<()> {
        let run = self
            .client
            .call(reqwest::Method::POST, &format!("/api/v1/connectors/{id}/run"))
            .await?;
        let path = format!("/api/v1/runs/{}", run["id"].as_str().unwrap_or_default());
        let run = loop {
            let run = self.client.call(reqwest::Method::GET, &path).await?;
            if !run["finished_at"].is_null() {
                break run;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let count = |field: &str| run[field].as_i64().unwrap_or_default();
        eprintln!(
            "dev: run {}: {} received, {} created, {} updated, {} unchanged, {} rejected{}",
            run["status"].as_str().unwrap_or("?"),
            count("records_received"),
            count("records_created"),
            count("records_updated"),
            count("records_unchanged"),
            count("records_rejected"),
            run["error"].as_str().map(|e| format!(": {e}")).unwrap_or_default()
        );
        Ok(())
    }
}

/// `manifest` with its top-level `version` set to `version`.
fn with_version(manifest: &str, version: &str) -> anyhow::Result<String> {
    let mut top_level = true;
    let mut replaced = false;
    let mut out = String::with_capacity(manifest.len() + 16);
    for line in manifest.lines() {
        top_level &= !line.trim_start().starts_with('[');
        let key = line.split('=').next().unwrap_or_default().trim();
        if top_level && !replaced && key == "version" {
            out.push_str(&format!("version = {version:?}"));
            replaced = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    anyhow::ensure!(replaced, "plugin.toml has no top-level `version` to suffix");
    Ok(out)
}

/// Every source file under `dir` with its modification time and size: what a change is
/// looked for in. Build output, version control, caches and cassettes are left out.
fn sources(dir: &Path) -> anyhow::Result<Vec<(PathBuf, SystemTime, u64)>> {
    const SKIP: [&str; 4] = ["target", "__pycache__", "cassettes", "Cargo.lock"];
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || SKIP.contains(&name.as_ref()) {
                continue;
            }
            let metadata = entry.metadata()?;
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                found.push((entry.path(), metadata.modified()?, metadata.len()));
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::with_version;

    #[test]
    fn only_the_top_level_version_is_suffixed() {
        let manifest = "name = \"p\"\nversion = \"0.1.0\"\n[config_schema]\nversion = \"x\"\n";
        let suffixed = with_version(manifest, "0.1.0-dev.5").unwrap();
        assert_eq!(
            suffixed,
            "name = \"p\"\nversion = \"0.1.0-dev.5\"\n[config_schema]\nversion = \"x\"\n"
        );
        assert!(with_version("name = \"p\"\n[t]\nversion = \"1\"\n", "1.0.0-dev.1").is_err());
    }
}
