//! `hub plugin new | build`: a connector's own crate, outside this repository. `new` writes
//! one from a template (pull, webhook or mqtt: the SDK dependency, `plugin.toml`, the code
//! with a native test against the SDK's fake host, a README); `build` compiles it for
//! wasm32-wasip2 (adding the target when missing) — or, for a Python connector (`app.py`
//! beside `plugin.toml`), with componentize-py against this hub's WIT — and checks the
//! component and manifest as the hub checks them on install, so what builds here installs
//! there.

use anyhow::Context;
use hub_registry::Package;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The kinds of connector a template starts.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Template {
    /// Pulls changed people from a JSON API (API key, cursor pages) on schedules and runs.
    Pull,
    /// Stores the people a system reports in signed webhooks.
    Webhook,
    /// Stores device readings published over MQTT.
    Mqtt,
}

impl Template {
    fn name(self) -> &'static str {
        match self {
            Template::Pull => "pull",
            Template::Webhook => "webhook",
            Template::Mqtt => "mqtt",
        }
    }

    /// `plugin.toml` and `src/lib.rs` of this template.
    fn files(self) -> [&'static str; 2] {
        match self {
            Template::Pull => [
                include_str!("../../templates/plugin/pull/plugin.toml"),
                include_str!("../../templates/plugin/pull/lib.rs"),
            ],
            Template::Webhook => [
                include_str!("../../templates/plugin/webhook/plugin.toml"),
                include_str!("../../templates/plugin/webhook/lib.rs"),
            ],
            Template::Mqtt => [
                include_str!("../../templates/plugin/mqtt/plugin.toml"),
                include_str!("../../templates/plugin/mqtt/lib.rs"),
            ],
        }
    }
}

#[derive(clap::Args)]
pub struct NewArgs {
    /// The plugin's name: 1-64 characters of a-z, 0-9 and '-'.
    name: String,
    #[arg(long, value_enum, default_value = "pull")]
    template: Template,
    /// Where to create the crate (default: ./NAME); it must not exist or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The hub's SDK crate (`sdk/` of the hub's checkout); default: the one this hub was
    /// built from.
    #[arg(long)]
    sdk: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// The plugin's directory: plugin.toml beside a Cargo.toml, or beside an app.py.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

pub fn new(args: NewArgs) -> anyhow::Result<()> {
    let name = &args.name;
    let name_ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    anyhow::ensure!(
        name_ok,
        "plugin name {name:?} must be 1-64 characters of a-z, 0-9 and '-', not starting with '-'"
    );
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        anyhow::bail!("{} exists and is not empty; choose another --dir", dir.display());
    }
    let sdk = match args.sdk {
        Some(sdk) => sdk,
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk"),
    };
    let sdk = sdk
        .canonicalize()
        .ok()
        .filter(|s| s.join("Cargo.toml").exists())
        .with_context(|| {
            format!(
                "{} is not the hub's SDK crate; give --sdk with the path of sdk/ in a checkout of the hub",
                sdk.display()
            )
        })?;
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{type}}", &type_name(name))
            .replace("{{template}}", args.template.name())
            .replace("{{contract}}", hub::runtime::bindings::CONTRACT)
            .replace("{{sdk}}", &sdk.display().to_string())
    };
    let [manifest, code] = args.template.files();
    let files = [
        ("Cargo.toml", include_str!("../../templates/plugin/Cargo.toml")),
        ("plugin.toml", manifest),
        ("src/lib.rs", code),
        ("README.md", include_str!("../../templates/plugin/README.md")),
        (".gitignore", include_str!("../../templates/plugin/gitignore")),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("files are in the crate"))
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(&path, fill(text)).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "Created {} ({} connector) in {}",
        name,
        args.template.name(),
        dir.display()
    );
    println!("Next: cd {}; cargo test; hub plugin build", dir.display());
    Ok(())
}

/// `staff-registry` as `StaffRegistry`: the connector's type in the template.
fn type_name(name: &str) -> String {
    let mut out = String::new();
    for word in name.split('-').filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        out.extend(chars.next().map(|c| c.to_ascii_uppercase()));
        out.push_str(chars.as_str());
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "Connector");
    }
    out
}

pub async fn build(args: BuildArgs) -> anyhow::Result<()> {
    let built = build_checked(&args.dir).await?;
    println!(
        "{} ({} KiB): {} for contract {}, checked as the hub checks it on install",
        built.component.display(),
        built.package.component.len() / 1024,
        built.package.manifest.id(),
        built.package.manifest.contract
    );
    Ok(())
}

/// A connector built and checked: its package (unsigned) and where the component is.
pub(super) struct Built {
    pub package: Package,
    pub component: PathBuf,
}

/// Builds the connector in `dir` (Rust or Python) and checks it as the hub checks a package
/// on install.
pub(super) async fn build_checked(dir: &Path) -> anyhow::Result<Built> {
    let manifest_path = dir.join("plugin.toml");
    let manifest_text =
        std::fs::read_to_string(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?;
    // The manifest first: a broken one is reported before a long build.
    let manifest = hub_registry::Manifest::parse(&manifest_text)
        .with_context(|| format!("{} is not a valid plugin manifest", manifest_path.display()))?;
    let component_path = if dir.join("Cargo.toml").exists() {
        build_rust(dir)?
    } else if dir.join(PYTHON_MODULE).exists() {
        build_python(dir, &manifest.name)?
    } else {
        anyhow::bail!(
            "{} has neither a Cargo.toml (a Rust connector) nor an {PYTHON_MODULE} (a Python one): run the \
             command in the connector's directory, or give it with --dir",
            dir.display()
        );
    };
    let component = std::fs::read(&component_path).with_context(|| format!("reading {}", component_path.display()))?;
    let package = Package::new(&manifest_text, component)?;
    super::plugin::check_runnable(&package)
        .await
        .with_context(|| format!("{} would be refused by the hub", component_path.display()))?;
    Ok(Built {
        package,
        component: component_path,
    })
}

fn build_rust(dir: &Path) -> anyhow::Result<PathBuf> {
    hub::toolchain::ensure_wasm_target("rustc", None).map_err(anyhow::Error::msg)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(dir)
        .args(["build", "--release", "--target", hub::toolchain::WASM_TARGET])
        .status()
        .with_context(|| format!("running {cargo}"))?;
    anyhow::ensure!(status.success(), "cargo build failed (see its output above)");
    artifact(&cargo, dir)
}

/// The module a Python connector's `WitWorld` class is in.
const PYTHON_MODULE: &str = "app.py";

/// Builds the Python connector in `dir` with componentize-py against this hub's WIT, into
/// `dir/target/NAME.wasm`.
fn build_python(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let target = dir.join("target");
    let wit = target.join("wit");
    if wit.exists() {
        std::fs::remove_dir_all(&wit).with_context(|| format!("removing the old {}", wit.display()))?;
    }
    hub::runtime::bindings::write_wit(&wit).with_context(|| format!("writing the hub's WIT to {}", wit.display()))?;
    let out = target.join(format!("{}.wasm", name.replace('-', "_")));
    let module = PYTHON_MODULE.trim_end_matches(".py");
    let status = Command::new("componentize-py")
        .current_dir(dir)
        .arg("-d")
        .arg(&wit)
        .args(["-w", "connector", "componentize", module, "-o"])
        .arg(&out)
        .status()
        .map_err(|e| {
            anyhow::anyhow!(
                "could not run componentize-py ({e}): install it with `python3 -m pip install \
                 componentize-py=={}`",
                hub::toolchain::COMPONENTIZE_PY
            )
        })?;
    anyhow::ensure!(status.success(), "componentize-py failed (see its output above)");
    Ok(out)
}

/// The component `cargo build` wrote for the crate in `dir`.
fn artifact(cargo: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    let output = Command::new(cargo)
        .current_dir(dir)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    anyhow::ensure!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).context("reading cargo metadata")?;
    let target = metadata["target_directory"]
        .as_str()
        .context("cargo metadata names no target directory")?;
    let package = metadata["packages"][0]["name"]
        .as_str()
        .context("cargo metadata names no package")?;
    let path = Path::new(target)
        .join(hub::toolchain::WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    anyhow::ensure!(
        path.exists(),
        "the build wrote no {}; is the crate a cdylib?",
        path.display()
    );
    Ok(path)
}
