//! Raw bindings generated from `wit/connector.wit`. Most plugins never need these directly:
//! the crate root re-exports the record types, and [`crate::http`], [`crate::log`] and
//! [`crate::pull_pages`] wrap the imports.

// Generated code: a WIT record with many fields becomes a function with many arguments.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "connector",
    path: "../wit",
    generate_all,
    pub_export_macro: true,
    export_macro_name: "export",
    default_bindings_module: "healthforce_sdk::bindings",
});
