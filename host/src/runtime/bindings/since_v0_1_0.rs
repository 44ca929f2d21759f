//! Contract 0.1.0 (`host/wit/since_v0_1_0/`, frozen). Its records are the latest ones
//! unchanged, so its imports are the latest host capabilities; its one export that changed,
//! `handle-webhook` (one request a call), is adapted in [`super::Connector`].

pub const CONTRACT: &str = "0.1.0";

wasmtime::component::bindgen!({
    path: "wit/since_v0_1_0",
    world: "connector",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "wasi": wasmtime_wasi::p2::bindings,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "healthforce:hub/types": super::latest::healthforce::hub::types,
    },
});

super::delegate_imports_to_latest!("healthforce:hub/types@0.1.0", {});
