//! `hub connectors list | enable | disable | run | logs`: admin verbs over the REST API.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Args)]
pub struct ApiArgs {
    /// Base URL of the hub.
    #[arg(long, global = true, env = "HUB_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// API key or SSO token.
    #[arg(long, global = true, env = "HUB_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

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

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

struct Client {
    http: reqwest::Client,
    api: ApiArgs,
}

impl Client {
    fn new(api: ApiArgs) -> anyhow::Result<Self> {
        if api.key.as_deref().is_none_or(|k| k.trim().is_empty()) {
            anyhow::bail!("no credentials: pass --key <API key or SSO token> or set HUB_API_KEY");
        }
        hub::manager::credentials::install_tls_provider();
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
            api,
        })
    }

    /// Calls the API; a problem+json answer becomes an error carrying its `detail`.
    async fn call(&self, method: reqwest::Method, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.api.api.trim_end_matches('/'));
        let response = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(self.api.key.as_deref().unwrap_or_default())
            .send()
            .await
            .with_context(|| format!("cannot reach the hub at {} (set --api or HUB_API_URL)", self.api.api))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            anyhow::bail!(
                "{method} {path}: {status}: {}",
                body["detail"].as_str().unwrap_or("no details")
            );
        }
        Ok(body)
    }
}
