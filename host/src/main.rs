//! The `hub` binary: `hub serve`, `hub demo`, `hub sim`.

mod cli;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hub::Hub;
use hub::config::HubConfig;
use std::net::SocketAddr;
use std::path::PathBuf;

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
        /// People in the simulated registry.
        #[arg(long, default_value_t = 5_000)]
        people: usize,
    },
    /// Run the simulators alone.
    Sim {
        #[arg(long, default_value = "127.0.0.1:8091")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 5_000)]
        people: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hub::telemetry::init();
    match Cli::parse().command {
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
            people,
        } => {
            cli::demo::run(cli::demo::DemoOptions {
                listen,
                data_dir,
                sim_listen,
                people,
            })
            .await?;
        }
        Command::Sim { listen, people } => {
            let sim = hub_sim::RegnakesSim::new(hub_sim::RegnakesConfig {
                people,
                ..Default::default()
            });
            let running = hub_sim::serve(sim.router(), listen)
                .await
                .context("starting the RegNakes simulator")?;
            println!("RegNakes simulator on {} ({people} people)", running.base_url());
            tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        }
    }
    Ok(())
}
