//! `hub connectors list | enable | disable | run | reset | logs`: admin verbs over the REST API.

use super::api_client::{ApiArgs, Client, text};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ConnectorsCommand {
    /// List connectors with their health.
    List,
    /// Enable a connector (by id).
    Enable { id: String },
    /// Disable a connector (by id).
    Disable { id: String },
    /// Start a run now and print it.
    Run { id: String },
    /// Set where a connector's next sync starts: the beginning (a full resync, which updates
    /// and never duplicates), or a cursor the plugin saved.
    Reset {
        id: String,
        /// Start from this cursor instead of the beginning.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show a connector's log, newest first.
    Logs {
        id: String,
        /// Lines at this level or more severe.
        #[arg(long)]
        level: Option<String>,
        /// Only lines of this run.
        #[arg(long)]
        run: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

pub async fn run(api: ApiArgs, command: ConnectorsCommand) -> anyhow::Result<()> {
    let client = Client::new(api)?;
    match command {
        ConnectorsCommand::List => {
            let page = client
                .call(reqwest::Method::GET, "/api/v1/connectors?limit=500")
                .await?;
            println!(
                "{:<38} {:<24} {:<22} {:<8} {:<9} LAST RUN",
                "ID", "NAME", "PLUGIN", "ENABLED", "HEALTH"
            );
            for c in page["items"].as_array().into_iter().flatten() {
                let plugin = format!(
                    "{}@{}",
                    c["plugin"]["name"].as_str().unwrap_or("?"),
                    c["plugin"]["version"].as_str().unwrap_or("?")
                );
                let last = &c["health"]["last_run"];
                let last = match last["status"].as_str() {
                    Some(status) => format!("{status} {}", last["finished_at"].as_str().unwrap_or("")),
                    None => "-".into(),
                };
                println!(
                    "{:<38} {:<24} {:<22} {:<8} {:<9} {last}",
                    text(&c["id"]),
                    text(&c["name"]),
                    plugin,
                    c["enabled"].as_bool().unwrap_or_default().to_string(),
                    text(&c["health"]["status"])
                );
            }
        }
        ConnectorsCommand::Enable { id } => {
            let c = client
                .call(reqwest::Method::POST, &format!("/api/v1/connectors/{id}/enable"))
                .await?;
            println!("{} enabled", text(&c["name"]));
        }
        ConnectorsCommand::Disable { id } => {
            let c = client
                .call(reqwest::Method::POST, &format!("/api/v1/connectors/{id}/disable"))
                .await?;
            println!("{} disabled", text(&c["name"]));
        }
        ConnectorsCommand::Run { id } => {
            let run = client
                .call(reqwest::Method::POST, &format!("/api/v1/connectors/{id}/run"))
                .await?;
            println!(
                "run {} {} (GET /api/v1/runs/{} for progress)",
                text(&run["id"]),
                text(&run["status"]),
                text(&run["id"])
            );
        }
        ConnectorsCommand::Reset { id, cursor } => {
            let reset = client
                .post_json(
                    &format!("/api/v1/connectors/{id}/state/reset"),
                    &serde_json::json!({ "cursor": cursor }),
                )
                .await?;
            let shown = |v: &serde_json::Value| v.as_str().map_or("the beginning".into(), |c| format!("cursor {c}"));
            println!(
                "the next sync of {id} starts from {} (it was at {})",
                shown(&reset["cursor"]),
                shown(&reset["previous"])
            );
        }
        ConnectorsCommand::Logs { id, level, run, limit } => {
            let mut path = format!("/api/v1/connectors/{id}/logs?limit={limit}");
            if let Some(level) = level {
                path.push_str(&format!("&level={level}"));
            }
            if let Some(run) = run {
                path.push_str(&format!("&run_id={run}"));
            }
            let page = client.call(reqwest::Method::GET, &path).await?;
            for line in page["items"].as_array().into_iter().flatten() {
                println!(
                    "{} {:<5} {:<6} {}",
                    text(&line["at"]),
                    text(&line["level"]),
                    text(&line["origin"]),
                    text(&line["message"])
                );
            }
        }
    }
    Ok(())
}
