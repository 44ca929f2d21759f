//! `hub demo`: the hub on its embedded defaults (SQLite and a master key under the data
//! directory), the simulators in the same process (RegNakes and the SSO), the bundled
//! plugins installed, a connector for each created, enabled and synced, and the API
//! accepting tokens from the simulated SSO, with a logged-in admin token printed.

use anyhow::Context;
use hub::Hub;
use hub::config::HubConfig;
use hub::manager::{CredentialSpec, NewConnector};
use hub_sim::{RegnakesConfig, RegnakesSim, SsoConfig, SsoSim};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub struct DemoOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub sim_listen: SocketAddr,
    pub sso_listen: SocketAddr,
    pub people: usize,
}

const REGNAKES_CONNECTOR: &str = "regnakes-demo";
const SSO_CONNECTOR: &str = "sso-demo";
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

    // The SSO's accounts are the registry's people: the SSO connector links them by NIK.
    let sso = SsoSim::new(SsoConfig {
        accounts: options.people.min(1_000),
        seed: sim_config.seed,
        ..SsoConfig::default()
    });
    let sso_server = hub_sim::serve(sso.router(), options.sso_listen)
        .await
        .with_context(|| format!("starting the SSO simulator on {}", options.sso_listen))?;
    sso.set_issuer(&sso_server.base_url());

    let mut config = HubConfig {
        listen: options.listen,
        data_dir: options.data_dir.clone(),
        ..HubConfig::default()
    };
    config.auth.oidc = Some(hub::config::OidcConfig {
        issuer: sso.issuer(),
        audience: sso.audience().to_string(),
        roles_claim: "roles".into(),
        jwks_min_refresh_secs: 10,
    });
    config.apply_env(|var| std::env::var(var).ok())?;
    // The demo prints a working admin key on every start (the hub stores only its hash).
    let printed_key = match &config.admin_key {
        Some(_) => None,
        None => {
            let key = format!("hub_demo_{}", hex::encode(hub::crypto::random_bytes::<16>()));
            config.admin_key = Some(hub::config::SecretString::new(key.clone()));
            Some(key)
        }
    };
    let hub = Hub::start(config).await.context("starting the hub")?;

    let sim_url = sim_server.base_url();
    let regnakes = ensure_connector(
        &hub,
        REGNAKES_CONNECTOR,
        "regnakes",
        &sim_server,
        CredentialSpec {
            token_url: format!("{sim_url}/oauth/token"),
            client_id: sim_config.client_id.clone(),
            client_secret: "regnakes_client_secret".into(),
            scope: None,
        },
        &sim_config.client_secret,
    )
    .await?;
    let sso_url = sso_server.base_url();
    let sso_defaults = SsoConfig::default();
    let sso_connector = ensure_connector(
        &hub,
        SSO_CONNECTOR,
        "sso",
        &sso_server,
        CredentialSpec {
            token_url: format!("{sso_url}/oauth/token"),
            client_id: sso_defaults.client_id.clone(),
            client_secret: "sso_client_secret".into(),
            scope: None,
        },
        &sso_defaults.client_secret,
    )
    .await?;
    let run = hub.manager.request_run(&regnakes.id, "demo", ACTOR).await?;
    let admin_token = login(&sso_url).await?;

    let api = hub.url();
    println!();
    println!("HealthForce Hub demo");
    println!("  API                 {api}/api/v1   (health: {api}/healthz)");
    println!("  RegNakes simulator  {sim_url}   (faults: PUT {sim_url}/_sim/faults; 25 people change every minute)");
    println!("  SSO simulator       {sso_url}   (users admin, operator, integrator, viewer; password <user>-password)");
    println!("  data directory      {}", options.data_dir.display());
    match &printed_key {
        Some(key) => println!("  admin API key       {key}"),
        None => println!("  admin API key       the value of HUB_ADMIN_KEY"),
    }
    println!(
        "  connectors          {REGNAKES_CONNECTOR} ({}), first sync: run {}; {SSO_CONNECTOR} ({}), syncs after it",
        regnakes.id, run.id, sso_connector.id
    );
    println!();
    println!("Logged in through the SSO as admin (token valid 10 minutes):");
    println!("  export TOKEN={admin_token}");
    println!("  curl -H \"Authorization: Bearer $TOKEN\" {api}/api/v1/connectors");
    println!("Or with the admin API key:  hub connectors list --key <key> --api {api}");
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
    let manager = hub.manager.clone();
    let sso_id = sso_connector.id.clone();
    let report = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            match db.run(&run_id).await {
                Ok(Some(r)) if r.status == "succeeded" || r.status == "failed" => {
                    println!(
                        "RegNakes sync {}: {} received, {} created, {} updated, {} unchanged, {} rejected{}",
                        r.status,
                        r.records_received,
                        r.records_created,
                        r.records_updated,
                        r.records_unchanged,
                        r.records_rejected,
                        r.error.map(|e| format!(" ({e})")).unwrap_or_default()
                    );
                    // Accounts link to practitioners by NIK, so they sync once practitioners are in.
                    if let Err(error) = manager.request_run(&sso_id, "demo", ACTOR).await {
                        eprintln!("could not start the SSO sync: {error}");
                    }
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
    drop(sso_server);
    Ok(())
}

/// Creates the demo connector `name`, or points the existing one at the simulator (which
/// may listen elsewhere than last time), and enables it.
async fn ensure_connector(
    hub: &Hub,
    name: &str,
    plugin: &str,
    sim: &hub_sim::Running,
    credential: CredentialSpec,
    client_secret: &str,
) -> anyhow::Result<hub::store::connectors::ConnectorRecord> {
    let secrets = BTreeMap::from([(credential.client_secret.clone(), client_secret.to_string())]);
    let config = serde_json::json!({ "base_url": sim.base_url() });
    let egress = vec![sim.addr.to_string()];
    let credentials = BTreeMap::from([(plugin.to_string(), credential)]);
    let connector = match hub.manager.db().connector_by_name(name).await? {
        Some(mut existing) => {
            existing.config = config.to_string();
            existing.egress = serde_json::to_string(&egress)?;
            existing.credentials = serde_json::to_string(&credentials)?;
            hub.manager.update_connector(&existing, &secrets).await?;
            existing
        }
        None => {
            let new = NewConnector {
                name: name.into(),
                plugin: plugin.into(),
                config,
                egress: Some(egress),
                credentials,
                secrets,
                enabled: true,
                concurrency: None,
                max_attempts: None,
                schedule: None,
                timezone: None,
            };
            hub.manager.create_connector(new, ACTOR).await?
        }
    };
    hub.manager.set_enabled(&connector.id, true, ACTOR).await?;
    Ok(connector)
}

/// Logs in to the SSO as its seeded admin with the password grant, as a person would.
async fn login(sso_url: &str) -> anyhow::Result<String> {
    hub::manager::credentials::install_tls_provider();
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{sso_url}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", "admin-password"),
        ])
        .send()
        .await
        .context("logging in to the SSO simulator")?
        .json()
        .await
        .context("reading the SSO's token answer")?;
    answer["access_token"]
        .as_str()
        .map(String::from)
        .context("the SSO answered without an access token")
}
