//! `hub plugin run`: a plugin's sync on this machine, against the real endpoints, in the
//! hub's sandbox (limits, quotas, egress allow-list, host-held credentials), with every
//! record put through the pipeline's own checks, and nothing stored: it prints the records
//! the plugin emitted (JSON lines on stdout), which ones the hub would refuse and why, its log
//! and the cursor it saved. `--state DIR` keeps the state between runs, so a second run
//! resumes from the first one's cursor.

use anyhow::Context;
use futures::future::BoxFuture;
use hub::manager::CredentialSpec;
use hub::manager::credentials::TokenCache;
use hub::model::CanonicalRecord;
use hub::runtime::state::CURSOR_KEY;
use hub::runtime::{
    Backends, EmitOutcome, JobSpec, LogLevel, LogSink, PluginError, Quotas, RecordSink, RejectedRow, SecretSource,
    StateStore, SyncRequest, TokenSource,
};
use hub_registry::Package;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The component (.wasm) built for wasm32-wasip2.
    #[arg(long)]
    component: PathBuf,
    /// Its plugin.toml: checked as the hub checks it, and the config checked against its
    /// config_schema; its egress hosts are allowed.
    #[arg(long, default_value = "plugin.toml")]
    manifest: PathBuf,
    /// The connector's config, a JSON file.
    #[arg(long)]
    config: PathBuf,
    /// A secret granted to the plugin, `name=value`; repeat for more.
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    secrets: Vec<String>,
    /// A host-held OAuth2 client-credentials credential, `name=token_url,client_id,secret`
    /// (the client secret named by a --secret); repeat for more.
    #[arg(long = "credential", value_name = "NAME=TOKEN_URL,CLIENT_ID,SECRET")]
    credentials: Vec<String>,
    /// A host the plugin may call besides its manifest's egress, `host` or `host:port`.
    #[arg(long = "egress", value_name = "HOST[:PORT]")]
    egress: Vec<String>,
    /// Keep the plugin's state (its cursor) in this directory between runs.
    #[arg(long)]
    state: Option<PathBuf>,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let manifest_text =
        std::fs::read_to_string(&args.manifest).with_context(|| format!("reading {}", args.manifest.display()))?;
    let component = std::fs::read(&args.component).with_context(|| format!("reading {}", args.component.display()))?;
    let package = Package::new(&manifest_text, component)
        .with_context(|| format!("{} is not a valid plugin manifest", args.manifest.display()))?;
    let manifest = &package.manifest;
    let config_text =
        std::fs::read_to_string(&args.config).with_context(|| format!("reading {}", args.config.display()))?;
    let config: serde_json::Value =
        serde_json::from_str(&config_text).with_context(|| format!("{} is not JSON", args.config.display()))?;
    let broken = hub::json_schema::validate(&manifest.config_schema, &config);
    if !broken.is_empty() {
        let fields: Vec<String> = broken.iter().map(|e| format!("{} {}", e.pointer, e.message)).collect();
        anyhow::bail!(
            "{} breaks the config_schema of {}: {}",
            args.config.display(),
            args.manifest.display(),
            fields.join("; ")
        );
    }
    let secrets = pairs(&args.secrets, "--secret")?;
    let mut credentials = BTreeMap::new();
    for (name, spec) in pairs(&args.credentials, "--credential")? {
        let [token_url, client_id, client_secret] = spec.splitn(3, ',').collect::<Vec<_>>()[..] else {
            anyhow::bail!("--credential {name}={spec}: give token_url,client_id,secret");
        };
        credentials.insert(
            name,
            CredentialSpec {
                token_url: token_url.into(),
                client_id: client_id.into(),
                client_secret: client_secret.into(),
                scope: None,
            },
        );
    }
    let state_file = args.state.as_ref().map(|dir| dir.join("state.json"));
    let state = match &state_file {
        Some(file) if file.exists() => serde_json::from_str(&std::fs::read_to_string(file)?)
            .with_context(|| format!("{} is not a state file of `hub plugin run`", file.display()))?,
        _ => BTreeMap::new(),
    };

    let super::plugin::Loaded { runtime, plugin, .. } = super::plugin::check_runnable(&package).await?;
    let dry = Arc::new(DryRun {
        quotas: Quotas::default(),
        creates: manifest.creates_practitioners,
        state: Mutex::new(state),
        granted: manifest.secrets.clone(),
        secrets,
        credentials,
        tokens: TokenCache::new(),
        emitted: Mutex::default(),
    });
    let cursor = dry.state.lock().unwrap().get(CURSOR_KEY).cloned();
    let egress = manifest.egress.iter().chain(&args.egress).cloned().collect();
    let spec = JobSpec::new(egress, hex::encode(hub::crypto::random_bytes::<16>()));
    let request = SyncRequest {
        run_id: uuid::Uuid::now_v7().to_string(),
        cursor,
        config: config.to_string(),
    };
    eprintln!("running {} sync (nothing is stored)", manifest.id());
    let result = runtime.sync(&plugin, spec, Backends::of(dry.clone()), request).await;

    let state = dry.state.lock().unwrap().clone();
    if let (Some(file), Some(dir)) = (&state_file, &args.state) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(file, serde_json::to_string_pretty(&state)?)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    let (emitted, refused) = {
        let emitted = dry.emitted.lock().unwrap();
        (
            emitted.len(),
            emitted.iter().filter(|(_, reason)| reason.is_some()).count(),
        )
    };
    eprintln!(
        "{emitted} records emitted: {} the hub would take on to matching, {refused} it would refuse (each above with its reason)",
        emitted - refused
    );
    match state.get(CURSOR_KEY) {
        Some(cursor) => eprintln!("cursor saved: {cursor}"),
        None => eprintln!("no cursor saved"),
    }
    match result {
        Ok(Ok(summary)) => {
            eprintln!("sync succeeded: {} pages", summary.pages);
            Ok(())
        }
        Ok(Err(error)) => anyhow::bail!("the sync failed: {}: {}", error.kind(), error.reason()),
        Err(error) => anyhow::bail!("the sync was stopped: {error}"),
    }
}

/// `name=value` arguments of `flag`, by name.
fn pairs(args: &[String], flag: &str) -> anyhow::Result<BTreeMap<String, String>> {
    args.iter()
        .map(|arg| match arg.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
            _ => anyhow::bail!("{flag} {arg:?}: give name=value"),
        })
        .collect()
}

/// The backends of a run that stores nothing: records checked and printed, state in memory
/// (and `--state`), secrets and credentials from the command line, log lines on stderr.
struct DryRun {
    quotas: Quotas,
    /// The manifest's creation policy, judged as if nobody were stored yet.
    creates: hub_registry::CreatePolicy,
    state: Mutex<BTreeMap<String, String>>,
    /// The secret names the plugin may read: its manifest's `secrets`, as on the hub (a
    /// credential's client secret is the host's alone).
    granted: Vec<String>,
    secrets: BTreeMap<String, String>,
    credentials: BTreeMap<String, CredentialSpec>,
    tokens: TokenCache,
    /// Every record emitted, as JSON, with the reason the hub would refuse it.
    emitted: Mutex<Vec<(String, Option<String>)>>,
}

impl DryRun {
    fn given(&self, name: &str) -> Result<String, PluginError> {
        (self.secrets.get(name).cloned())
            .ok_or_else(|| PluginError::Config(format!("secret {name:?} was not given (--secret {name}=VALUE)")))
    }
}

/// The connector id tokens are cached under: there is one connector.
const CONNECTOR: &str = "plugin-run";

impl RecordSink for DryRun {
    fn emit(&self, batch: Vec<CanonicalRecord>) -> BoxFuture<'_, Result<EmitOutcome, PluginError>> {
        let today = chrono::Utc::now().date_naive();
        let mut rejected = Vec::new();
        let mut emitted = self.emitted.lock().unwrap();
        for (index, record) in batch.iter().enumerate() {
            let reason = hub::pipeline::refusal(record, &self.quotas, self.creates, today);
            let json = serde_json::to_string(record).expect("records serialize");
            println!("{json}");
            if let Some(reason) = &reason {
                eprintln!("  refused, record {}: {reason}", emitted.len() + 1);
                rejected.push(RejectedRow {
                    index: index as u32,
                    reason: reason.clone(),
                });
            }
            emitted.push((json, reason));
        }
        let accepted = (batch.len() - rejected.len()) as u32;
        Box::pin(async move { Ok(EmitOutcome { accepted, rejected }) })
    }
}

impl StateStore for DryRun {
    fn state_get(&self, key: String) -> BoxFuture<'_, wasmtime::Result<Option<String>>> {
        let value = self.state.lock().unwrap().get(&key).cloned();
        Box::pin(async move { Ok(value) })
    }

    fn state_set(&self, key: String, value: String, max_keys: u32) -> BoxFuture<'_, wasmtime::Result<bool>> {
        let mut state = self.state.lock().unwrap();
        let room = state.contains_key(&key) || state.len() < max_keys as usize;
        if room {
            state.insert(key, value);
        }
        Box::pin(async move { Ok(room) })
    }
}

impl SecretSource for DryRun {
    fn secret(&self, name: String) -> BoxFuture<'_, Result<String, PluginError>> {
        let found = if self.granted.contains(&name) {
            self.given(&name)
        } else {
            Err(PluginError::Config(format!(
                "secret {name:?} is not granted: the plugin's manifest does not declare it in `secrets`"
            )))
        };
        Box::pin(async move { found })
    }
}

impl TokenSource for DryRun {
    fn bearer_token(&self, credential: String) -> BoxFuture<'_, Result<String, PluginError>> {
        Box::pin(async move {
            let spec = self.credentials.get(&credential).ok_or_else(|| {
                PluginError::Config(format!(
                    "credential {credential:?} was not given (--credential {credential}=TOKEN_URL,CLIENT_ID,SECRET)"
                ))
            })?;
            let secret = self.given(&spec.client_secret)?;
            self.tokens.token(CONNECTOR, &credential, spec, &secret).await
        })
    }

    fn invalidate_token(&self, credential: String, token: String) -> BoxFuture<'_, ()> {
        self.tokens.invalidate(CONNECTOR, &credential, &token);
        Box::pin(async {})
    }
}

impl LogSink for DryRun {
    fn log(&self, level: LogLevel, message: String, fields: Vec<(String, String)>, from_plugin: bool) {
        let origin = if from_plugin { "plugin" } else { "host" };
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!("{:<5} {origin:<6} {message} {}", level.as_str(), fields.join(" "));
    }

    fn flush_logs(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
