//! `hub plugin new | build | run | test | dev | wit | keygen | package | publish | reference`:
//! a connector's own crate (`plugin_crate.rs`), a plugin run here storing nothing or replayed
//! from a cassette (`plugin_run.rs`), the dev loop against a local hub (`plugin_dev.rs`), the
//! contract's WIT, publisher keys, signed packages, registries, and the manifest's reference.

use anyhow::Context;
use clap::Subcommand;
use hub_registry::{DirRegistry, Package, SigningKey};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Create a connector's own crate from a template (pull, webhook or mqtt), outside this
    /// repository, with a native test and a README.
    New(super::plugin_crate::NewArgs),
    /// Build a connector's crate for wasm32-wasip2 and check the component and manifest as the
    /// hub checks them on install.
    Build(super::plugin_crate::BuildArgs),
    /// Create a publisher signing key; prints its public key for the hub's trusted_keys.
    Keygen {
        /// Where to write the private key (mode 0600; refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Build a signed package (.hfpkg) from a manifest and a compiled component.
    Package {
        /// The plugin's plugin.toml.
        #[arg(long)]
        manifest: PathBuf,
        /// The component (.wasm) built for wasm32-wasip2.
        #[arg(long)]
        component: PathBuf,
        /// The publisher's private key (from `hub plugin keygen`).
        #[arg(long)]
        key: PathBuf,
        /// Directory to write `<name>-<version>.hfpkg` into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Run a plugin's sync here, against the real endpoints, in the hub's sandbox and with
    /// its record checks, storing nothing: prints the records, what the hub would refuse and
    /// why, the log and the cursor.
    Run(super::plugin_run::RunArgs),
    /// Replay cassettes recorded by `hub plugin run --record`, offline, and fail when the
    /// plugin no longer emits the same records, refusals and cursor.
    Test(super::plugin_run::TestArgs),
    /// Build, install into a local dev hub unsigned under a fresh `-dev.N` version, move a
    /// connector to it (and run it with --run), then again on every change of the sources.
    Dev(super::plugin_dev::DevArgs),
    /// Write the WIT of the contract this hub speaks (`connector.wit` and its wasi deps), to
    /// generate a plugin's bindings in any language.
    Wit {
        /// The directory to write into.
        #[arg(long, default_value = "wit")]
        out: PathBuf,
    },
    /// Print every plugin.toml field with its type, default and rules (Markdown;
    /// docs/plugin-toml.md is this output).
    Reference,
    /// Add a package to a registry directory and its index.json.
    Publish {
        /// The .hfpkg file.
        package: PathBuf,
        /// The registry directory (created if missing).
        #[arg(long)]
        registry: PathBuf,
    },
}

pub async fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Keygen { out } => {
            let key = SigningKey::generate();
            write_private(&out, key.to_text().as_bytes())?;
            println!("Wrote the private key to {} (keep it secret).", out.display());
            println!("Public key, for plugins.trusted_keys: {}", key.public_key());
        }
        PluginCommand::Package {
            manifest,
            component,
            key,
            out,
        } => {
            let manifest_text =
                std::fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
            let component_bytes =
                std::fs::read(&component).with_context(|| format!("reading {}", component.display()))?;
            let key_text = std::fs::read_to_string(&key).with_context(|| format!("reading {}", key.display()))?;
            let key = SigningKey::from_text(&key_text)?;
            let mut package = Package::new(&manifest_text, component_bytes)
                .with_context(|| format!("{} is not a valid plugin manifest", manifest.display()))?;
            check_runnable(&package)
                .await
                .with_context(|| format!("{} cannot be packaged", component.display()))?;
            key.sign(&mut package);
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let path = out.join(package.file_name());
            std::fs::write(&path, package.to_bytes()).with_context(|| format!("writing {}", path.display()))?;
            println!("{} {} signed by {}", path.display(), package.digest(), key.public_key());
        }
        PluginCommand::New(args) => super::plugin_crate::new(args)?,
        PluginCommand::Build(args) => super::plugin_crate::build(args).await?,
        PluginCommand::Run(args) => super::plugin_run::run(args).await?,
        PluginCommand::Test(args) => super::plugin_run::test(args).await?,
        PluginCommand::Dev(args) => super::plugin_dev::dev(args).await?,
        PluginCommand::Wit { out } => {
            hub::runtime::bindings::write_wit(&out).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "Wrote the healthforce:hub@{} WIT to {} (world `connector`)",
                hub::runtime::bindings::CONTRACT,
                out.display()
            );
        }
        PluginCommand::Reference => print!("{}", hub::config::reference::manifest_markdown()),
        PluginCommand::Publish { package, registry } => {
            let bytes = std::fs::read(&package).with_context(|| format!("reading {}", package.display()))?;
            let package = Package::from_bytes(&bytes)?;
            let entry = DirRegistry::new(&registry).publish(&package)?;
            println!("Published {} ({}) to {}", entry.id(), entry.digest, registry.display());
        }
    }
    Ok(())
}

/// A package loaded as the hub would load it, in a runtime of its own.
pub(super) struct Loaded {
    pub runtime: hub::runtime::Runtime,
    pub plugin: std::sync::Arc<hub::runtime::LoadedPlugin>,
}

/// Compiled components the CLI keeps, newest first: a Python component takes tens of seconds
/// to compile, and `build`, `run`, `test` and `package` of one version compile it once.
const CACHED_COMPILES: usize = 16;

/// Refuses what the hub would refuse on install: a component that is not one, does not link
/// against this hub, or exports another contract than its manifest names.
pub(super) async fn check_runnable(package: &Package) -> anyhow::Result<Loaded> {
    let cache = compile_cache();
    let runtime = hub::runtime::Runtime::new(hub::runtime::Limits::default(), cache.clone())?;
    let plugin = hub::manager::check_runnable(&runtime, package).await?;
    prune(&cache, CACHED_COMPILES);
    Ok(Loaded { runtime, plugin })
}

/// The CLI's compile cache: `$XDG_CACHE_HOME/healthforce-hub/compiled`, else under
/// `~/.cache`, else the temporary directory.
fn compile_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("healthforce-hub/compiled")
}

/// Deletes all but the `keep` most recently written entries of the cache at `dir`.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            Some((entry.metadata().ok()?.modified().ok()?, entry.path()))
        })
        .collect();
    files.sort_by_key(|(written, _)| std::cmp::Reverse(*written));
    for (_, path) in files.into_iter().skip(keep) {
        let _ = std::fs::remove_file(path);
    }
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(data)?;
    Ok(())
}
