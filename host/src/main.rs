//! The `hub` binary: `hub serve`, `hub demo`, `hub sim`, `hub plugin`, `hub audit`,
//! `hub connectors`, `hub keys`, `hub backup`, `hub restore`.

mod cli;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hub::Hub;
use hub::config::HubConfig;
use std::net::SocketAddr;
use std::path::PathBuf;

/// mimalloc: with glibc's allocator, malloc and free were 24 % of the hub's CPU samples
/// while it accepted webhooks; with mimalloc the same code accepts 6 % more a second
/// (BENCHMARKS.md, "Allocator, and the overhead of metrics and tracing again").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "hub",
    version,
    about = "HealthForce Hub: an integration hub for Indonesian health-workforce data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub from hub.toml and HUB_* variables (production).
    Serve {
        /// Config file; defaults apply when it is absent.
        #[arg(long, default_value = "hub.toml")]
        config: PathBuf,
    },
    /// Run the hub with embedded defaults, the simulators and the bundled plugins, all in one
    /// process.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(long, default_value = "hub-data")]
        data_dir: PathBuf,
        /// Where the RegNakes simulator listens.
        #[arg(long, default_value = "127.0.0.1:8091")]
        sim_listen: SocketAddr,
        /// Where the SSO simulator listens.
        #[arg(long, default_value = "127.0.0.1:8092")]
        sso_listen: SocketAddr,
        /// Where the KKI simulator listens.
        #[arg(long, default_value = "127.0.0.1:8093")]
        kki_listen: SocketAddr,
        /// Where the SISDMK simulator listens.
        #[arg(long, default_value = "127.0.0.1:8094")]
        sisdmk_listen: SocketAddr,
        /// Where the Odoo simulator listens.
        #[arg(long, default_value = "127.0.0.1:8095")]
        odoo_listen: SocketAddr,
        /// The MQTT broker for the IoT sensors (they are skipped when none answers).
        #[arg(long, default_value = "127.0.0.1:1883")]
        mqtt: SocketAddr,
        /// People in the simulated registry.
        #[arg(long, default_value_t = 5_000)]
        people: usize,
    },
    /// Publisher keys, signed packages and registries.
    Plugin {
        #[command(subcommand)]
        command: cli::plugin::PluginCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Take a backup of the hub's database now (while it serves), into `[backup] dir`, and
    /// delete those older than `[backup] keep_days`.
    Backup {
        #[command(flatten)]
        data: cli::offline::DataArgs,
    },
    /// Bring a backup back into an empty data directory (SQLite) or an empty database
    /// (--database-url); refuses to overwrite data.
    Restore {
        /// The backup file (`hub-<time>.sqlite` or `.pgdump`), its `.json` manifest beside it.
        #[arg(long)]
        from: PathBuf,
        #[command(flatten)]
        data: cli::offline::DataArgs,
    },
    /// Manage connectors over the API.
    Connectors {
        #[command(flatten)]
        api: cli::api_client::ApiArgs,
        #[command(subcommand)]
        command: cli::connectors::ConnectorsCommand,
    },
    /// The configuration: its reference, or a check of a file.
    Config {
        #[command(subcommand)]
        command: cli::config::ConfigCommand,
    },
    /// Data keys over the API: status, rotation.
    Keys {
        #[command(flatten)]
        api: cli::api_client::ApiArgs,
        #[command(subcommand)]
        command: cli::keys::KeysCommand,
    },
    /// Run the simulators alone.
    Sim {
        /// Where the RegNakes simulator listens.
        #[arg(long, default_value = "127.0.0.1:8091")]
        listen: SocketAddr,
        /// Where the SSO simulator listens.
        #[arg(long, default_value = "127.0.0.1:8092")]
        sso_listen: SocketAddr,
        /// Where the KKI simulator listens.
        #[arg(long, default_value = "127.0.0.1:8093")]
        kki_listen: SocketAddr,
        /// Where the SISDMK simulator listens.
        #[arg(long, default_value = "127.0.0.1:8094")]
        sisdmk_listen: SocketAddr,
        /// Where the Odoo simulator listens.
        #[arg(long, default_value = "127.0.0.1:8095")]
        odoo_listen: SocketAddr,
        #[arg(long, default_value_t = 5_000)]
        people: usize,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every entry's MAC, the numbering and the head; exits 1 when the log was edited,
    /// deleted from or truncated, naming the first broken entry.
    Verify {
        #[command(flatten)]
        data: cli::offline::DataArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hub::telemetry::init()?;
    let result = run(Cli::parse().command).await;
    hub::telemetry::shutdown();
    result
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { config } => {
            let path = config.exists().then_some(config.as_path());
            let config = HubConfig::load(path)?;
            let hub = Hub::start(config).await.context("starting the hub")?;
            if let Some(key) = &hub.generated_admin_key {
                println!("Generated the bootstrap admin API key (shown once, stored hashed): {key}");
            }
            tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
            hub.stop().await;
        }
        Command::Demo {
            listen,
            data_dir,
            sim_listen,
            sso_listen,
            kki_listen,
            sisdmk_listen,
            odoo_listen,
            mqtt,
            people,
        } => {
            cli::demo::run(cli::demo::DemoOptions {
                listen,
                data_dir,
                sim_listen,
                sso_listen,
                kki_listen,
                sisdmk_listen,
                odoo_listen,
                mqtt,
                people,
            })
            .await?;
        }
        Command::Plugin { command } => cli::plugin::run(command).await?,
        Command::Config { command } => cli::config::run(command)?,
        Command::Audit {
            command: AuditCommand::Verify { data },
        } => {
            if !cli::audit::verify(data).await? {
                std::process::exit(1);
            }
        }
        Command::Backup { data } => cli::backup::backup(data).await?,
        Command::Restore { from, data } => cli::backup::restore(&from, data).await?,
        Command::Connectors { api, command } => cli::connectors::run(api, command).await?,
        Command::Keys { api, command } => cli::keys::run(api, command).await?,
        Command::Sim {
            listen,
            sso_listen,
            kki_listen,
            sisdmk_listen,
            odoo_listen,
            people,
        } => {
            let config = hub_sim::RegnakesConfig {
                people,
                ..Default::default()
            };
            let sso = hub_sim::SsoSim::new(hub_sim::SsoConfig {
                accounts: people.min(1_000),
                seed: config.seed,
                ..Default::default()
            });
            let sim = hub_sim::RegnakesSim::new(config);
            let running = hub_sim::serve(sim.router(), listen)
                .await
                .context("starting the RegNakes simulator")?;
            let sso_running = hub_sim::serve(sso.router(), sso_listen)
                .await
                .context("starting the SSO simulator")?;
            sso.set_issuer(&sso_running.base_url());
            let kki = hub_sim::KkiSim::new(hub_sim::KkiConfig {
                people: people.min(2_000),
                ..Default::default()
            });
            let kki_running = hub_sim::serve(kki.router(), kki_listen)
                .await
                .context("starting the KKI simulator")?;
            let sisdmk = hub_sim::SisdmkSim::new(hub_sim::SisdmkConfig {
                people: people.min(2_000),
                ..Default::default()
            });
            let sisdmk_running = hub_sim::serve(sisdmk.router(), sisdmk_listen)
                .await
                .context("starting the SISDMK simulator")?;
            println!("RegNakes simulator on {} ({people} people)", running.base_url());
            println!(
                "SISDMK simulator on {} (bearer token {})",
                sisdmk_running.base_url(),
                sisdmk.config().api_token
            );
            println!(
                "KKI simulator on {} (API token {})",
                kki_running.base_url(),
                kki.config().api_token
            );
            println!(
                "SSO simulator on {} (issuer; users admin, operator, integrator, viewer)",
                sso.issuer()
            );
            let odoo = hub_sim::OdooSim::new(hub_sim::odoo::DEMO_API_KEY);
            let odoo_running = hub_sim::serve(odoo.router(), odoo_listen)
                .await
                .context("starting the Odoo simulator")?;
            println!(
                "Odoo simulator on {} (JSON-2 API, API key {})",
                odoo_running.base_url(),
                hub_sim::odoo::DEMO_API_KEY
            );
            tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
