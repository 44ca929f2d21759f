//! The `hub` subcommands beyond `serve`.

pub mod audit;
pub mod connectors;
pub mod demo;
pub mod plugin;
