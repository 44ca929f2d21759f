//! Subcommands of the `hub` binary.

pub mod demo;
