//! Plugins built by `build.rs` from `plugins/`: the bundled connectors, embedded in the
//! binary and installed at start, and the test fixtures, read from the build directory.

use hub_registry::{ManifestError, Package};
use std::path::PathBuf;

/// A plugin embedded in the hub binary.
pub struct Bundled {
    pub manifest: &'static str,
    pub component: &'static [u8],
}

impl Bundled {
    pub fn package(&self) -> Result<Package, ManifestError> {
        Package::new(self.manifest, self.component.to_vec())
    }
}

pub const REGNAKES: Bundled = Bundled {
    manifest: include_str!("../../plugins/regnakes/plugin.toml"),
    component: include_bytes!(concat!(env!("HUB_PLUGIN_ARTIFACTS"), "/regnakes_plugin.wasm")),
};

pub const SSO: Bundled = Bundled {
    manifest: include_str!("../../plugins/sso/plugin.toml"),
    component: include_bytes!(concat!(env!("HUB_PLUGIN_ARTIFACTS"), "/sso_plugin.wasm")),
};

pub const KKI: Bundled = Bundled {
    manifest: include_str!("../../plugins/kki/plugin.toml"),
    component: include_bytes!(concat!(env!("HUB_PLUGIN_ARTIFACTS"), "/kki_plugin.wasm")),
};

pub const SISDMK: Bundled = Bundled {
    manifest: include_str!("../../plugins/sisdmk/plugin.toml"),
    component: include_bytes!(concat!(env!("HUB_PLUGIN_ARTIFACTS"), "/sisdmk_plugin.wasm")),
};

pub const IOT_SENSORS: Bundled = Bundled {
    manifest: include_str!("../../plugins/iot-sensors/plugin.toml"),
    component: include_bytes!(concat!(env!("HUB_PLUGIN_ARTIFACTS"), "/iot_sensors_plugin.wasm")),
};

pub const ODOO: Bundled = Bundled {
    manifest: include_str!("../../plugins/odoo/plugin.toml"),
    component: include_bytes!(concat!(env!("HUB_PLUGIN_ARTIFACTS"), "/odoo_plugin.wasm")),
};

/// Every bundled connector.
pub const ALL: &[Bundled] = &[REGNAKES, SSO, KKI, SISDMK, IOT_SENSORS, ODOO];

/// A test fixture plugin (`plugins/fixtures/<name>`), as a package. Fixtures are built with
/// the host but never embedded in it.
pub fn fixture(name: &str) -> std::io::Result<Package> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = std::fs::read_to_string(root.join("plugins/fixtures").join(name).join("plugin.toml"))?;
    let component = std::fs::read(
        PathBuf::from(env!("HUB_PLUGIN_ARTIFACTS")).join(format!("{}_plugin.wasm", name.replace('-', "_"))),
    )?;
    Package::new(&manifest, component).map_err(std::io::Error::other)
}
