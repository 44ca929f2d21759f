//! `hub keys status | rotate`: the data keys over the REST API (admin).

use super::api_client::{ApiArgs, Client, text};
use clap::Subcommand;
use serde_json::Value;
use std::time::Duration;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Show the data key versions, what wraps them and the last rotation.
    Status,
    /// Create a new data key version; the hub re-encrypts every stored row in the background.
    Rotate {
        /// Follow the re-encryption until it ends; exits 1 if it fails.
        #[arg(long)]
        wait: bool,
    },
}

pub async fn run(api: ApiArgs, command: KeysCommand) -> anyhow::Result<()> {
    let client = Client::new(api)?;
    match command {
        KeysCommand::Status => print_status(&client.call(reqwest::Method::GET, "/api/v1/keys").await?),
        KeysCommand::Rotate { wait } => {
            let status = client.call(reqwest::Method::POST, "/api/v1/keys/rotate").await?;
            println!(
                "data key version {} is active; re-encrypting {} rows in the background",
                status["active_version"], status["rotation"]["total"]
            );
            if wait {
                return follow(&client).await;
            }
            println!("follow it with `hub keys status`");
        }
    }
    Ok(())
}

fn print_status(status: &Value) {
    println!("key-encryption key: {}", text(&status["kek"]));
    println!("secrets backend:    {}", text(&status["secrets_backend"]));
    println!("{:<8} {:<9} CREATED", "VERSION", "STATUS");
    for key in status["versions"].as_array().into_iter().flatten() {
        println!(
            "{:<8} {:<9} {}",
            key["version"],
            text(&key["status"]),
            text(&key["created_at"])
        );
    }
    if let Some(rotation) = status["rotation"].as_object() {
        println!(
            "last rotation to version {}: {} ({} of {} rows){}",
            rotation["to_version"],
            text(&rotation["status"]),
            rotation["done"],
            rotation["total"],
            rotation["error"].as_str().map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
}

/// Prints progress every second until the rotation ends.
async fn follow(client: &Client) -> anyhow::Result<()> {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let status = client.call(reqwest::Method::GET, "/api/v1/keys").await?;
        let rotation = &status["rotation"];
        let (done, total) = (
            rotation["done"].as_i64().unwrap_or(0),
            rotation["total"].as_i64().unwrap_or(0),
        );
        let percent = if total > 0 { done * 100 / total } else { 100 };
        println!("{}: {done} of {total} rows ({percent} %)", text(&rotation["status"]));
        match rotation["status"].as_str() {
            Some("running") => continue,
            Some("done") => return Ok(()),
            _ => anyhow::bail!("the rotation failed: {}", text(&rotation["error"])),
        }
    }
}
