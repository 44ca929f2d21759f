//! Host bindings of the plugin contract, one module per supported contract version.
//!
//! When the contract changes, the WIT of the version being replaced is frozen under
//! `host/wit/since_vX_Y_Z/` and keeps its module here, so plugins built against it still run
//! (Zed's extension host does the same).

pub mod since_v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "connector",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi": wasmtime_wasi::p2::bindings,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

pub use since_v0_1_0::healthforce::hub::types::{
    Account, CanonicalRecord, Error as PluginError, Gender, Practitioner, Registration, SourceRef,
};

/// The contract versions this host runs.
pub const SUPPORTED_CONTRACTS: &[&str] = &["0.1.0"];
