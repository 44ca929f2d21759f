//! `hub config reference | check`: the configuration's reference (docs/config.md), and a
//! file checked the way `hub serve` reads it.

use clap::Subcommand;
use hub::config::HubConfig;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print every hub.toml key and HUB_* variable with its type, default and meaning
    /// (Markdown; docs/config.md is this output).
    Reference,
    /// Read a config file and the HUB_* variables as `hub serve` would, and print the
    /// settings in effect (secrets left out), or what is wrong.
    Check {
        #[arg(long, default_value = "hub.toml")]
        config: PathBuf,
    },
}

pub fn run(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Reference => print!("{}", hub::config::reference::config_markdown()),
        ConfigCommand::Check { config } => {
            if !config.exists() {
                anyhow::bail!(
                    "{} does not exist; `hub serve` would start on the defaults (see `hub config reference`)",
                    config.display()
                );
            }
            let mut loaded = HubConfig::load(Some(&config))?;
            // A database password is a secret too.
            if let Some(url) = loaded.database_url.as_deref()
                && let Ok(mut parsed) = reqwest::Url::parse(url)
                && parsed.password().is_some()
            {
                let _ = parsed.set_password(Some("hidden"));
                loaded.database_url = Some(parsed.to_string());
            }
            println!(
                "# {} is valid; the settings in effect, secrets left out:",
                config.display()
            );
            print!("{}", toml::to_string(&loaded)?);
        }
    }
    Ok(())
}
