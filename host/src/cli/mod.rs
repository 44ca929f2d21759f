//! The `hub` subcommands beyond `serve`.

pub mod api_client;
pub mod audit;
pub mod backup;
pub mod config;
pub mod connectors;
pub mod demo;
pub mod keys;
pub mod offline;
pub mod plugin;
pub mod plugin_crate;
pub mod plugin_dev;
pub mod plugin_run;
