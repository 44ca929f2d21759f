//! `hub demo`: the hub on its embedded defaults (SQLite and a master key under the data
//! directory), the simulators in the same process, the bundled RegNakes plugin installed and
//! one connector created, enabled and synced.

use anyhow::Context;
use hub::Hub;
use hub::config::HubConfig;
use hub::manager::{CredentialSpec, NewConnector};
use hub_sim::{RegnakesConfig, RegnakesSim};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub struct DemoOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub sim_listen: SocketAddr,
    pub people: usize,
}

const CONNECTOR: &str = "regnakes-demo";
/// Who the demo's own setup actions are recorded as in the audit log.
const ACTOR: &str = "hub-demo";

pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let sim_config = RegnakesConfig {
        people: options.people,
        ..RegnakesConfig::default()
    };
    let sim = RegnakesSim::new(sim_config.clone());
    let sim_server = hub_sim::serve(sim.router(), options.sim_listen)
        .await
        .with_context(|| format!("starting the RegNakes simulator on {}", options.sim_listen))?;

    let mut config = HubConfig {
        listen: options.listen,
        data_dir: options.data_dir.clone(),
        ..HubConfig::default()
    };
    config.apply_env(|var| std::env::var(var).ok())?;
    // The demo prints a working admin key on every start (the hub stores only its hash).
    let printed_key = match &config.admin_key {
        Some(_) => None,
        None => {
            let key = format!("hub_demo_{}", hex::encode(hub::crypto::random_bytes::<16>()));
            config.admin_key = Some(key.clone());
            Some(key)
        }
    };
    let hub = Hub::start(config).await.context("starting the hub")?;

    let sim_url = sim_server.base_url();
    let secrets = BTreeMap::from([("regnakes_client_secret".to_string(), sim_config.client_secret.clone())]);
    let connector = match hub.manager.db().connector_by_name(CONNECTOR).await? {
        Some(mut existing) => {
            // The simulator may listen elsewhere than last time: point the connector at it.
            existing.config = serde_json::json!({ "base_url": sim_url }).to_string();
            existing.egress = serde_json::json!([sim_server.addr.to_string()]).to_string();
            existing.credentials = serde_json::json!({ "regnakes": credential(&sim_url, &sim_config) }).to_string();
            hub.manager.update_connector(&existing, &secrets).await?;
            existing
        }
        None => {
            hub.manager
                .create_connector(
                    NewConnector {
                        name: CONNECTOR.into(),
                        plugin: "regnakes".into(),
                        config: serde_json::json!({ "base_url": sim_url }),
                        egress: Some(vec![sim_server.addr.to_string()]),
                        credentials: BTreeMap::from([("regnakes".to_string(), credential(&sim_url, &sim_config))]),
                        secrets,
                        enabled: true,
                        concurrency: None,
                        max_attempts: None,
                    },
                    ACTOR,
                )
                .await?
        }
    };
    hub.manager.set_enabled(&connector.id, true, ACTOR).await?;
    let run = hub.manager.request_run(&connector.id, "demo", ACTOR).await?;

    let api = hub.url();
    println!();
    println!("HealthForce Hub demo");
    println!("  API                 {api}/api/v1   (health: {api}/healthz)");
    println!("  RegNakes simulator  {sim_url}   (faults: PUT {sim_url}/_sim/faults; 25 people change every minute)");
    println!("  data directory      {}", options.data_dir.display());
    match &printed_key {
        Some(key) => println!("  admin API key       {key}"),
        None => println!("  admin API key       the value of HUB_ADMIN_KEY"),
    }
    println!(
        "  connector           {CONNECTOR} ({}), first sync: run {}",
        connector.id, run.id
    );
    println!();
    println!(
        "Try:  curl -H 'Authorization: Bearer <key>' {api}/api/v1/connectors/{}/runs",
        connector.id
    );
    println!("Press Ctrl-C to stop.");

    // RegNakes keeps changing, as a registry does: the next sync has updates to fetch.
    let changing = sim.clone();
    let churn = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            changing.mutate(25);
        }
    });

    let db = hub.manager.db().clone();
    let run_id = run.id.clone();
    let report = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            match db.run(&run_id).await {
                Ok(Some(r)) if r.status == "succeeded" || r.status == "failed" => {
                    println!(
                        "First sync {}: {} received, {} created, {} updated, {} unchanged, {} rejected{}",
                        r.status,
                        r.records_received,
                        r.records_created,
                        r.records_updated,
                        r.records_unchanged,
                        r.records_rejected,
                        r.error.map(|e| format!(" ({e})")).unwrap_or_default()
                    );
                    return;
                }
                Ok(_) => {}
                Err(error) => {
                    eprintln!("could not read the run: {error}");
                    return;
                }
            }
        }
    });
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    report.abort();
    churn.abort();
    hub.stop().await;
    drop(sim_server);
    Ok(())
}

fn credential(sim_url: &str, sim: &RegnakesConfig) -> CredentialSpec {
    CredentialSpec {
        token_url: format!("{sim_url}/oauth/token"),
        client_id: sim.client_id.clone(),
        client_secret: "regnakes_client_secret".into(),
        scope: None,
    }
}
