//! `hub plugin run` and `hub plugin test`: a plugin's sync on this machine in the hub's
//! sandbox (limits, quotas, egress allow-list, host-held credentials), with every record put
//! through the pipeline's own checks, and nothing stored.
//!
//! `run` goes to the real endpoints and prints the records the plugin emitted (JSON lines on
//! stdout), which ones the hub would refuse and why, its log and the cursor it saved;
//! `--state DIR` keeps the state between runs, so a second run resumes from the first one's
//! cursor, and `--record FILE` keeps the run as a cassette (`runtime::cassette`). `test`
//! replays a cassette offline and fails when the plugin no longer produces what was recorded.

use anyhow::Context;
use futures::future::BoxFuture;
use hub::manager::CredentialSpec;
use hub::manager::credentials::TokenCache;
use hub::model::CanonicalRecord;
use hub::runtime::cassette::{self, Cassette, Outcome, Player, Recorder, Refusal, Transport};
use hub::runtime::state::CURSOR_KEY;
use hub::runtime::{
    Backends, EmitOutcome, JobSpec, LogLevel, LogSink, PluginError, Quotas, RecordSink, RejectedRow, SecretSource,
    StateStore, SyncRequest, TokenSource,
};
use hub_registry::Package;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The plugin to run: its component and manifest.
#[derive(clap::Args)]
pub struct PluginArgs {
    /// The component (.wasm) built for wasm32-wasip2.
    #[arg(long)]
    component: PathBuf,
    /// Its plugin.toml: checked as the hub checks it, and the config checked against its
    /// config_schema; its egress hosts are allowed.
    #[arg(long, default_value = "plugin.toml")]
    manifest: PathBuf,
    /// A host the plugin may call besides its manifest's egress, `host` or `host:port`.
    #[arg(long = "egress", value_name = "HOST[:PORT]")]
    egress: Vec<String>,
}

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    plugin: PluginArgs,
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
    /// Keep the plugin's state (its cursor) in this directory between runs.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Keep this run's HTTP exchanges and results in a cassette file, for `hub plugin test`
    /// (secret values and tokens are replaced by placeholders).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    plugin: PluginArgs,
    /// The cassette recorded by `hub plugin run --record`; repeat for more.
    #[arg(long = "cassette", value_name = "FILE", required = true)]
    cassettes: Vec<PathBuf>,
    /// Accept what the plugin produces now as the cassette's expected outcome.
    #[arg(long)]
    update: bool,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let plugin = PluginUnderTest::load(&args.plugin).await?;
    let config_text =
        std::fs::read_to_string(&args.config).with_context(|| format!("reading {}", args.config.display()))?;
    let config: serde_json::Value =
        serde_json::from_str(&config_text).with_context(|| format!("{} is not JSON", args.config.display()))?;
    plugin.check_config(&config, &args.config.display().to_string())?;
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
    let recorder = args.record.as_ref().map(|_| Recorder::default());
    let transport = recorder.clone().map_or(Transport::Network, Transport::Record);
    let today = chrono::Utc::now().date_naive();
    let dry = DryRun::new(
        &plugin.package,
        state,
        Given::Values { secrets, credentials },
        today,
        true,
    );
    let started_from = dry.cursor();
    eprintln!("running {} sync (nothing is stored)", plugin.package.manifest.id());
    let outcome = plugin.sync(&dry, &config, transport, &[]).await;

    if let (Some(file), Some(dir)) = (&state_file, &args.state) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let state = dry.state.lock().unwrap().clone();
        std::fs::write(file, serde_json::to_string_pretty(&state)?)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    let refused = outcome.refused.len();
    eprintln!(
        "{} records emitted: {} the hub would take on to matching, {refused} it would refuse (each above with its reason)",
        outcome.records.len(),
        outcome.records.len() - refused
    );
    match &outcome.cursor {
        Some(cursor) => eprintln!("cursor saved: {cursor}"),
        None => eprintln!("no cursor saved"),
    }
    if let (Some(file), Some(recorder)) = (&args.record, recorder) {
        let mut cassette = Cassette {
            format: cassette::FORMAT,
            plugin: plugin.package.manifest.id(),
            config,
            egress: args.plugin.egress.clone(),
            cursor: started_from,
            recorded_on: today,
            exchanges: recorder.exchanges(),
            outcome: outcome.clone(),
        };
        cassette.redact(&dry.redactions());
        write_cassette(file, &cassette)?;
        eprintln!(
            "recorded {} HTTP exchanges in {}: it keeps the answers as the system sent them (secrets and tokens \
             replaced), so record against a test system, or keep the file out of version control when they \
             hold real people's data",
            cassette.exchanges.len(),
            file.display()
        );
    }
    if outcome.result != OK {
        anyhow::bail!("the sync {}", outcome.result);
    }
    eprintln!("sync succeeded");
    Ok(())
}

pub async fn test(args: TestArgs) -> anyhow::Result<()> {
    let plugin = PluginUnderTest::load(&args.plugin).await?;
    let mut failed = Vec::new();
    for file in &args.cassettes {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let mut cassette: Cassette = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a cassette of `hub plugin run --record`", file.display()))?;
        if cassette.format != cassette::FORMAT {
            anyhow::bail!(
                "{} is cassette format {}; this hub reads format {}: record it again",
                file.display(),
                cassette.format,
                cassette::FORMAT
            );
        }
        plugin.check_config(&cassette.config, &format!("the config in {}", file.display()))?;
        let state = cassette
            .cursor
            .iter()
            .map(|c| (CURSOR_KEY.to_string(), c.clone()))
            .collect();
        let dry = DryRun::new(&plugin.package, state, Given::Placeholders, cassette.recorded_on, false);
        let player = Player::new(cassette.exchanges.clone());
        let replay = Transport::Replay(player.clone());
        let outcome = plugin.sync(&dry, &cassette.config, replay, &cassette.egress).await;
        let differences = differences(&cassette.outcome, &outcome);
        // Requests differing is not for --update: the answers to new ones were never recorded.
        let requests: Vec<String> = (player.missed().iter())
            .map(|r| format!("the plugin sent {r}, which was not recorded"))
            .chain(
                player
                    .unplayed()
                    .iter()
                    .map(|r| format!("the plugin did not send {r} this time")),
            )
            .collect();
        if differences.is_empty() && requests.is_empty() {
            eprintln!(
                "{}: ok ({} exchanges, {} records, cursor as recorded)",
                file.display(),
                cassette.exchanges.len(),
                outcome.records.len()
            );
        } else if args.update && requests.is_empty() {
            cassette.outcome = outcome;
            write_cassette(file, &cassette)?;
            eprintln!("{}: outcome updated ({})", file.display(), differences.join("; "));
        } else {
            eprintln!("{}: differs from the recording:", file.display());
            differences.iter().chain(&requests).for_each(|d| eprintln!("  - {d}"));
            if !requests.is_empty() {
                eprintln!("  the requests changed: record it again with `hub plugin run --record`");
            }
            failed.push(file.display().to_string());
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} cassettes replay differently: {} (if the change is intended, run again with --update)",
            failed.len(),
            args.cassettes.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// How `expected` and `got` differ, in words; empty when they do not.
fn differences(expected: &Outcome, got: &Outcome) -> Vec<String> {
    let mut found = Vec::new();
    if expected.result != got.result {
        found.push(format!("the sync {} (recorded: {})", got.result, expected.result));
    }
    if expected.records.len() != got.records.len() {
        found.push(format!(
            "{} records emitted (recorded: {})",
            got.records.len(),
            expected.records.len()
        ));
    }
    if let Some(index) = (expected.records.iter().zip(&got.records)).position(|(e, g)| e != g) {
        found.push(format!(
            "record {} is now {} (recorded: {})",
            index + 1,
            got.records[index],
            expected.records[index]
        ));
    }
    if expected.refused != got.refused {
        let show = |r: &[Refusal]| {
            let shown: Vec<String> = r.iter().map(|r| format!("{}: {}", r.record + 1, r.reason)).collect();
            format!("[{}]", shown.join("; "))
        };
        found.push(format!(
            "refused {} (recorded: {})",
            show(&got.refused),
            show(&expected.refused)
        ));
    }
    if expected.cursor != got.cursor {
        found.push(format!(
            "cursor saved {:?} (recorded: {:?})",
            got.cursor, expected.cursor
        ));
    }
    found
}

fn write_cassette(file: &Path, cassette: &Cassette) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(cassette)?;
    std::fs::write(file, text + "\n").with_context(|| format!("writing {}", file.display()))
}

/// `Outcome::result` of a sync that succeeded.
const OK: &str = "ok";

/// A plugin loaded and checked as the hub would, to run here.
struct PluginUnderTest {
    package: Package,
    egress: Vec<String>,
    loaded: super::plugin::Loaded,
}

impl PluginUnderTest {
    async fn load(args: &PluginArgs) -> anyhow::Result<Self> {
        let manifest_text =
            std::fs::read_to_string(&args.manifest).with_context(|| format!("reading {}", args.manifest.display()))?;
        let component =
            std::fs::read(&args.component).with_context(|| format!("reading {}", args.component.display()))?;
        let package = Package::new(&manifest_text, component)
            .with_context(|| format!("{} is not a valid plugin manifest", args.manifest.display()))?;
        let loaded = super::plugin::check_runnable(&package).await?;
        let egress = package.manifest.egress.iter().chain(&args.egress).cloned().collect();
        Ok(Self {
            package,
            egress,
            loaded,
        })
    }

    fn check_config(&self, config: &serde_json::Value, what: &str) -> anyhow::Result<()> {
        let broken = hub::json_schema::validate(&self.package.manifest.config_schema, config);
        if !broken.is_empty() {
            let fields: Vec<String> = broken.iter().map(|e| format!("{} {}", e.pointer, e.message)).collect();
            anyhow::bail!("{what} breaks the plugin's config_schema: {}", fields.join("; "));
        }
        Ok(())
    }

    /// One sync on `dry`'s backends, sending requests through `transport`, to hosts in the
    /// plugin's egress or in `also_allowed`.
    async fn sync(
        &self,
        dry: &Arc<DryRun>,
        config: &serde_json::Value,
        transport: Transport,
        also_allowed: &[String],
    ) -> Outcome {
        let egress = self.egress.iter().chain(also_allowed).cloned().collect();
        let mut spec = JobSpec::new(egress, hex::encode(hub::crypto::random_bytes::<16>()));
        spec.transport = transport;
        let request = SyncRequest {
            run_id: uuid::Uuid::now_v7().to_string(),
            cursor: dry.cursor(),
            config: config.to_string(),
        };
        let loaded = &self.loaded;
        let result = loaded
            .runtime
            .sync(&loaded.plugin, spec, Backends::of(dry.clone()), request)
            .await;
        let emitted = dry.emitted.lock().unwrap();
        Outcome {
            records: emitted.iter().map(|(record, _)| record.clone()).collect(),
            refused: (emitted.iter().enumerate())
                .filter_map(|(record, (_, reason))| reason.clone().map(|reason| Refusal { record, reason }))
                .collect(),
            cursor: dry.cursor(),
            result: match result {
                Ok(Ok(_)) => OK.into(),
                Ok(Err(error)) => format!("failed: {}: {}", error.kind(), error.reason()),
                Err(error) => format!("was stopped: {error}"),
            },
        }
    }
}

/// `name=value` arguments of `flag`, by name.
pub(super) fn pairs(args: &[String], flag: &str) -> anyhow::Result<BTreeMap<String, String>> {
    args.iter()
        .map(|arg| match arg.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
            _ => anyhow::bail!("{flag} {arg:?}: give name=value"),
        })
        .collect()
}

/// The backends of a run that stores nothing: records checked (and printed by `run`), state
/// in memory (and `--state`), secrets and credentials as given, log lines on stderr.
struct DryRun {
    quotas: Quotas,
    /// The manifest's creation policy, judged as if nobody were stored yet.
    creates: hub_registry::CreatePolicy,
    /// The day records are judged as of.
    today: chrono::NaiveDate,
    /// Whether records are printed as they are emitted (`run`; `test` reports differences).
    print: bool,
    state: Mutex<BTreeMap<String, String>>,
    /// The secret names the plugin may read: its manifest's `secrets`, as on the hub (a
    /// credential's client secret is the host's alone).
    granted: Vec<String>,
    given: Given,
    tokens: TokenCache,
    /// Tokens handed to the plugin, with their credential's name: kept out of cassettes.
    issued: Mutex<BTreeMap<String, String>>,
    /// Every record emitted, as JSON, with the reason the hub would refuse it.
    emitted: Mutex<Vec<(serde_json::Value, Option<String>)>>,
}

/// What the plugin's secrets and credentials are.
enum Given {
    /// From the command line, for the real endpoints.
    Values {
        secrets: BTreeMap<String, String>,
        credentials: BTreeMap<String, CredentialSpec>,
    },
    /// `{{secret:NAME}}` and `{{token:NAME}}`: what a cassette recorded in their place.
    Placeholders,
}

impl DryRun {
    fn new(
        package: &Package,
        state: BTreeMap<String, String>,
        given: Given,
        today: chrono::NaiveDate,
        print: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            quotas: Quotas::default(),
            creates: package.manifest.creates_practitioners,
            today,
            print,
            state: Mutex::new(state),
            granted: package.manifest.secrets.clone(),
            given,
            tokens: TokenCache::new(),
            issued: Mutex::default(),
            emitted: Mutex::default(),
        })
    }

    fn cursor(&self) -> Option<String> {
        self.state.lock().unwrap().get(CURSOR_KEY).cloned()
    }

    fn secret_value(&self, name: &str) -> Result<String, PluginError> {
        match &self.given {
            Given::Values { secrets, .. } => (secrets.get(name).cloned())
                .ok_or_else(|| PluginError::Config(format!("secret {name:?} was not given (--secret {name}=VALUE)"))),
            Given::Placeholders => Ok(cassette::secret_placeholder(name)),
        }
    }

    /// Each secret value and token handed out, with its placeholder.
    fn redactions(&self) -> Vec<(String, String)> {
        let mut values: Vec<(String, String)> = match &self.given {
            Given::Values { secrets, .. } => secrets
                .iter()
                .map(|(name, value)| (value.clone(), cassette::secret_placeholder(name)))
                .collect(),
            Given::Placeholders => Vec::new(),
        };
        let issued = self.issued.lock().unwrap();
        values.extend(
            issued
                .iter()
                .map(|(token, name)| (token.clone(), cassette::token_placeholder(name))),
        );
        // The longest first, so a secret inside another is not replaced piecemeal.
        values.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        values
    }
}

/// The connector id tokens are cached under: there is one connector.
const CONNECTOR: &str = "plugin-run";

impl RecordSink for DryRun {
    fn emit(&self, batch: Vec<CanonicalRecord>) -> BoxFuture<'_, Result<EmitOutcome, PluginError>> {
        let mut rejected = Vec::new();
        let mut emitted = self.emitted.lock().unwrap();
        for (index, record) in batch.iter().enumerate() {
            let reason = hub::pipeline::refusal(record, &self.quotas, self.creates, self.today);
            let json = serde_json::to_value(record).expect("records serialize");
            if self.print {
                println!("{json}");
                if let Some(reason) = &reason {
                    eprintln!("  refused, record {}: {reason}", emitted.len() + 1);
                }
            }
            if let Some(reason) = &reason {
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
            self.secret_value(&name)
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
            let Given::Values { credentials, .. } = &self.given else {
                return Ok(cassette::token_placeholder(&credential));
            };
            let spec = credentials.get(&credential).ok_or_else(|| {
                PluginError::Config(format!(
                    "credential {credential:?} was not given (--credential {credential}=TOKEN_URL,CLIENT_ID,SECRET)"
                ))
            })?;
            let secret = self.secret_value(&spec.client_secret)?;
            let token = self.tokens.token(CONNECTOR, &credential, spec, &secret).await?;
            self.issued.lock().unwrap().insert(token.clone(), credential);
            Ok(token)
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
