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
    /// The pull connector in Python (componentize-py): examples/python-staff-registry.
    Python,
}

/// The name the Python example goes by, replaced by the new connector's.
const PYTHON_EXAMPLE_NAME: &str = "staff-registry-py";

impl Template {
    fn name(self) -> &'static str {
        match self {
            Template::Pull => "pull",
            Template::Webhook => "webhook",
            Template::Mqtt => "mqtt",
            Template::Python => "python",
        }
    }

    /// The files of this template, by path in the new directory.
    fn files(self) -> Vec<(&'static str, &'static str)> {
        let rust = |manifest, code| {
            vec![
                ("Cargo.toml", include_str!("../../templates/plugin/Cargo.toml")),
                ("plugin.toml", manifest),
                ("src/lib.rs", code),
                ("README.md", include_str!("../../templates/plugin/README.md")),
                (".gitignore", include_str!("../../templates/plugin/gitignore")),
            ]
        };
        match self {
            Template::Pull => rust(
                include_str!("../../templates/plugin/pull/plugin.toml"),
                include_str!("../../templates/plugin/pull/lib.rs"),
            ),
            Template::Webhook => rust(
                include_str!("../../templates/plugin/webhook/plugin.toml"),
                include_str!("../../templates/plugin/webhook/lib.rs"),
            ),
            Template::Mqtt => rust(
                include_str!("../../templates/plugin/mqtt/plugin.toml"),
                include_str!("../../templates/plugin/mqtt/lib.rs"),
            ),
            Template::Python => vec![
                (
                    "plugin.toml",
                    include_str!("../../../examples/python-staff-registry/plugin.toml"),
                ),
                (
                    PYTHON_MODULE,
                    include_str!("../../../examples/python-staff-registry/app.py"),
                ),
                ("README.md", include_str!("../../templates/plugin/python/README.md")),
                (
                    ".gitignore",
                    include_str!("../../../examples/python-staff-registry/.gitignore"),
                ),
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
    /// The hub's SDK crate to depend on (`sdk/` of a checkout of the hub); default: a copy
    /// of the one this hub was built with, in `vendor/`.
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
    // Rust crates get the SDK of this hub beside them, unless told to use a checkout's.
    let rust = !matches!(args.template, Template::Python);
    let sdk = match &args.sdk {
        Some(sdk) => sdk
            .canonicalize()
            .ok()
            .filter(|s| s.join("Cargo.toml").exists())
            .with_context(|| {
                format!(
                    "{} is not the hub's SDK crate; give --sdk with the path of sdk/ in a checkout of the hub",
                    sdk.display()
                )
            })?
            .display()
            .to_string(),
        None => {
            if rust {
                vendor_sdk(&dir.join("vendor"))?;
            }
            "vendor/healthforce-sdk".into()
        }
    };
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace(PYTHON_EXAMPLE_NAME, name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{type}}", &type_name(name))
            .replace("{{template}}", args.template.name())
            .replace("{{contract}}", hub::runtime::bindings::CONTRACT)
            .replace("{{sdk}}", &sdk)
    };
    let files = args.template.files().into_iter().map(|(path, text)| (path, fill(text)));
    write_files(&dir, files)?;
    println!(
        "Created {} ({} connector) in {}",
        name,
        args.template.name(),
        dir.display()
    );
    match args.template {
        Template::Python => println!("Next: cd {}; hub plugin build", dir.display()),
        _ => println!("Next: cd {}; cargo test; hub plugin build", dir.display()),
    }
    Ok(())
}

/// The SDK this hub was built with, file by file (path under `sdk/src/`, text).
const SDK_SOURCES: &[(&str, &str)] = &[
    ("bindings.rs", include_str!("../../../sdk/src/bindings.rs")),
    ("events.rs", include_str!("../../../sdk/src/events.rs")),
    ("http.rs", include_str!("../../../sdk/src/http.rs")),
    ("lib.rs", include_str!("../../../sdk/src/lib.rs")),
    ("listing.rs", include_str!("../../../sdk/src/listing.rs")),
    ("log.rs", include_str!("../../../sdk/src/log.rs")),
    ("testing.rs", include_str!("../../../sdk/src/testing.rs")),
    (
        "testing/cassette.rs",
        include_str!("../../../sdk/src/testing/cassette.rs"),
    ),
];

/// Writes the SDK into `vendor/healthforce-sdk` and the contract it is generated from into
/// `vendor/wit`, where its bindings look (`../wit`): a crate that builds with no checkout
/// of the hub, against this hub's contract.
fn vendor_sdk(vendor: &Path) -> anyhow::Result<()> {
    let crate_dir = vendor.join("healthforce-sdk");
    write_files(&crate_dir.join("src"), SDK_SOURCES.iter().copied())?;
    let manifest = SDK_DEPENDENCIES.iter().fold(
        include_str!("../../templates/plugin/sdk-Cargo.toml").replace("{{sdk_version}}", env!("CARGO_PKG_VERSION")),
        |text, (name, version)| text.replace(&format!("{{{{{name}}}}}"), version),
    );
    std::fs::write(crate_dir.join("Cargo.toml"), manifest).context("writing the vendored SDK's Cargo.toml")?;
    hub::runtime::bindings::write_wit(&vendor.join("wit")).context("writing the contract's WIT")?;
    Ok(())
}

/// Writes each `(path under root, text)`, creating directories as needed.
fn write_files<T: AsRef<[u8]>>(root: &Path, files: impl IntoIterator<Item = (&'static str, T)>) -> anyhow::Result<()> {
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(root))
            .with_context(|| format!("creating {}", path.parent().unwrap_or(root).display()))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The versions of the SDK's dependencies, as this workspace's Cargo.toml gives them.
const SDK_DEPENDENCIES: &[(&str, &str)] = &[
    ("wit-bindgen", "0.61"),
    ("serde", "1"),
    ("serde_json", "1"),
    ("base64", "0.22"),
];

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
    // componentize-py runs in `dir`: the paths it is given must not be relative to ours.
    let dir = &std::path::absolute(dir).with_context(|| format!("finding {}", dir.display()))?;
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn the_vendored_sdk_is_all_of_sdk_with_the_workspaces_dependency_versions() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let src = root.join("sdk/src");
        let mut on_disk = Vec::new();
        let mut pending = vec![src.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    on_disk.push(path.strip_prefix(&src).unwrap().display().to_string());
                }
            }
        }
        on_disk.sort();
        let vendored: Vec<String> = super::SDK_SOURCES.iter().map(|(path, _)| path.to_string()).collect();
        assert_eq!(vendored, on_disk, "add the new SDK file to SDK_SOURCES");

        let read = |path: &str| -> toml::Table { std::fs::read_to_string(root.join(path)).unwrap().parse().unwrap() };
        let (sdk, workspace) = (read("sdk/Cargo.toml"), read("Cargo.toml"));
        let mut names: Vec<&String> = sdk["dependencies"].as_table().unwrap().keys().collect();
        for target in sdk
            .get("target")
            .and_then(|t| t.as_table())
            .into_iter()
            .flat_map(|t| t.values())
        {
            names.extend(target["dependencies"].as_table().unwrap().keys());
        }
        let versions = workspace["workspace"]["dependencies"].as_table().unwrap();
        let mut expected: Vec<(String, String)> = names
            .iter()
            .map(|name| {
                let spec = &versions[name.as_str()];
                let version = spec.as_str().or_else(|| spec.get("version").and_then(|v| v.as_str()));
                (name.to_string(), version.unwrap().to_string())
            })
            .collect();
        expected.sort();
        let mut vendored: Vec<(String, String)> = (super::SDK_DEPENDENCIES.iter())
            .map(|(name, version)| (name.to_string(), version.to_string()))
            .collect();
        vendored.sort();
        assert_eq!(vendored, expected, "SDK_DEPENDENCIES follows sdk/Cargo.toml");
    }
}
