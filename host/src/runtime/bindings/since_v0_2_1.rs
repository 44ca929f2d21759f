//! Contract 0.2.1 and 0.2.0 (`host/wit/since_v0_2_1/`, frozen). Its records are the latest
//! ones unchanged, so its imports are the latest host capabilities; it lacks only the export
//! 0.3.0 added, `deliver`, which [`super::Connector`] answers `unsupported` for it.

pub const CONTRACT: &str = "0.2.1";

wasmtime::component::bindgen!({
    path: "wit/since_v0_2_1",
    world: "connector",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "wasi": wasmtime_wasi::p2::bindings,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "healthforce:hub/types": super::latest::healthforce::hub::types,
    },
});

super::delegate_imports_to_latest!("healthforce:hub/types@0.2.1", {
    async fn queue(&mut self, batch: Vec<super::CanonicalRecord>) -> wasmtime::Result<Result<(), super::PluginError>> {
        super::latest::healthforce::hub::records::Host::queue(self, batch).await
    }
});
