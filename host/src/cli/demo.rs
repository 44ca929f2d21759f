//! `hub demo`: the hub on its embedded defaults (SQLite and a master key under the data
//! directory), the simulators in the same process (RegNakes, the SSO, KKI, SISDMK, Odoo, and
//! IoT sensors when an MQTT broker answers), the bundled plugins installed, a connector for
//! each created, enabled and synced, KKI and SISDMK sending signed webhooks, every sync
//! recorded on Odoo's SDMK dashboard by the outbound Odoo connector, and the API accepting
//! tokens from the simulated SSO, with a logged-in admin token printed.

use anyhow::Context;
use hub::Hub;
use hub::config::HubConfig;
use hub::manager::{CredentialSpec, NewConnector};
use hub_sim::{
    IotConfig, IotSim, KkiConfig, KkiSim, OdooSim, RegnakesConfig, RegnakesSim, SisdmkConfig, SisdmkSim, SsoConfig,
    SsoSim,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub struct DemoOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub sim_listen: SocketAddr,
    pub sso_listen: SocketAddr,
    pub kki_listen: SocketAddr,
    pub sisdmk_listen: SocketAddr,
    pub odoo_listen: SocketAddr,
    /// The MQTT broker the IoT connector reads from (skipped when none answers there).
    pub mqtt: SocketAddr,
    pub people: usize,
}

const REGNAKES_CONNECTOR: &str = "regnakes-demo";
const SSO_CONNECTOR: &str = "sso-demo";
const KKI_CONNECTOR: &str = "kki-demo";
const SISDMK_CONNECTOR: &str = "sisdmk-demo";
const IOT_CONNECTOR: &str = "iot-demo";
const ODOO_CONNECTOR: &str = "odoo-demo";
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

    // KKI's doctors are the registry's people too (same seed).
    let kki = KkiSim::new(KkiConfig {
        people: options.people.min(2_000),
        seed: sim_config.seed,
        ..KkiConfig::default()
    });
    let kki_server = hub_sim::serve(kki.router(), options.kki_listen)
        .await
        .with_context(|| format!("starting the KKI simulator on {}", options.kki_listen))?;
    // SISDMK's workers too: their records merge into the same practitioners.
    let sisdmk = SisdmkSim::new(SisdmkConfig {
        people: options.people.min(2_000),
        seed: sim_config.seed,
        // Support staff without an STR, whom only SISDMK knows (and creates).
        staff_without_str: options.people.min(2_000) / 20,
        ..SisdmkConfig::default()
    });
    let sisdmk_server = hub_sim::serve(sisdmk.router(), options.sisdmk_listen)
        .await
        .with_context(|| format!("starting the SISDMK simulator on {}", options.sisdmk_listen))?;
    let odoo = OdooSim::new(hub_sim::odoo::DEMO_API_KEY);
    let odoo_server = hub_sim::serve(odoo.router(), options.odoo_listen)
        .await
        .with_context(|| format!("starting the Odoo simulator on {}", options.odoo_listen))?;
    let mqtt = broker_answers(&options.mqtt).await.then(|| hub::triggers::MqttConfig {
        host: options.mqtt.ip().to_string(),
        port: options.mqtt.port(),
        ..Default::default()
    });

    let mut config = HubConfig {
        listen: options.listen,
        data_dir: options.data_dir.clone(),
        mqtt: mqtt.clone(),
        ..HubConfig::default()
    };
    // The demo listens on loopback: its metrics are for whoever runs it.
    config.auth.metrics_public = true;
    config.auth.oidc = Some(hub::auth::OidcConfig {
        issuer: sso.issuer(),
        audience: sso.audience().to_string(),
        roles_claim: "roles".into(),
        jwks_min_refresh_secs: 10,
        console_client_id: Some(hub_sim::sso::CONSOLE_CLIENT.into()),
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
    let regnakes_credential = CredentialSpec {
        token_url: format!("{sim_url}/oauth/token"),
        client_id: sim_config.client_id.clone(),
        client_secret: "regnakes_client_secret".into(),
        scope: None,
    };
    let regnakes = demo_connector(
        REGNAKES_CONNECTOR,
        "regnakes",
        &sim_server,
        Some(regnakes_credential),
        &[("regnakes_client_secret", &sim_config.client_secret)],
    );
    // Odoo first: an outbound connector gets the events from its creation on, so every
    // sync below reaches the SDMK dashboard.
    let odoo_connector = demo_connector(
        ODOO_CONNECTOR,
        "odoo",
        &odoo_server,
        None,
        &[("api_key", hub_sim::odoo::DEMO_API_KEY)],
    );
    let odoo_connector = ensure_connector(&hub, odoo_connector).await?;
    let regnakes = ensure_connector(&hub, regnakes).await?;
    let sso_url = sso_server.base_url();
    let sso_defaults = SsoConfig::default();
    let sso_credential = CredentialSpec {
        token_url: format!("{sso_url}/oauth/token"),
        client_id: sso_defaults.client_id.clone(),
        client_secret: "sso_client_secret".into(),
        scope: None,
    };
    let sso_connector = demo_connector(
        SSO_CONNECTOR,
        "sso",
        &sso_server,
        Some(sso_credential),
        &[("sso_client_secret", &sso_defaults.client_secret)],
    );
    let sso_connector = ensure_connector(&hub, sso_connector).await?;

    // KKI: a daily pull, and signed webhooks when an STR is revoked.
    let kki_connector = demo_connector(
        KKI_CONNECTOR,
        "kki",
        &kki_server,
        None,
        &[("api-token", &kki.config().api_token)],
    );
    let kki_connector = ensure_connector(&hub, kki_connector).await?;
    let webhook_secret = hub.webhook_secrets.rotate(&kki_connector.id, ACTOR).await?;
    kki.subscribe(
        &format!("{}/webhooks/{}", hub.url(), kki_connector.id),
        &webhook_secret.secret,
    )?;
    let kki_run = hub.manager.runs().request(&kki_connector.id, "demo", ACTOR).await?;

    // SISDMK: an incremental pull (after RegNakes, so its rows join the people the registries
    // made; it creates the support staff no registry knows), and signed webhooks when a
    // worker moves.
    let sisdmk_connector = demo_connector(
        SISDMK_CONNECTOR,
        "sisdmk",
        &sisdmk_server,
        None,
        &[("api-token", &sisdmk.config().api_token)],
    );
    let sisdmk_connector = ensure_connector(&hub, sisdmk_connector).await?;
    let sisdmk_secret = hub.webhook_secrets.rotate(&sisdmk_connector.id, ACTOR).await?;
    sisdmk.subscribe(
        &format!("{}/webhooks/{}", hub.url(), sisdmk_connector.id),
        &sisdmk_secret.secret,
    )?;

    // IoT sensors over MQTT, when a broker answers.
    let iot_connector = match &mqtt {
        Some(_) => {
            let connector = NewConnector {
                config: serde_json::json!({}),
                egress: Some(Vec::new()),
                ..demo_connector(IOT_CONNECTOR, "iot-sensors", &kki_server, None, &[])
            };
            Some(ensure_connector(&hub, connector).await?)
        }
        None => None,
    };
    let run = hub.manager.runs().request(&regnakes.id, "demo", ACTOR).await?;
    let admin_token = login(&sso_url).await?;

    let api = hub.url();
    println!();
    println!("HealthForce Hub demo");
    println!(
        "  Console             {api}/   (sign in with the SSO as admin / admin-password, or with the API key below)"
    );
    println!("  API                 {api}/api/v1   (health: {api}/healthz)");
    println!("  FHIR R4             {api}/fhir/r4   (what it serves: {api}/fhir/r4/metadata; docs/fhir.md)");
    println!("  RegNakes simulator  {sim_url}   (faults: PUT {sim_url}/_sim/faults; 25 people change every minute)");
    println!("  SSO simulator       {sso_url}   (users admin, operator, integrator, viewer; password <user>-password)");
    println!(
        "  KKI simulator       {}   (revokes an STR every 45 s: a signed webhook to the hub)",
        kki_server.base_url()
    );
    println!(
        "  SISDMK simulator    {}   (moves a worker to another facility every 60 s: a signed webhook)",
        sisdmk_server.base_url()
    );
    println!(
        "  Odoo simulator      {}   (each sync on its SDMK dashboard, through {ODOO_CONNECTOR}: {})",
        odoo_server.base_url(),
        odoo_connector.id
    );
    match &iot_connector {
        Some(c) => println!(
            "  IoT sensors         10 devices publishing vitals every 5 s to {} ({IOT_CONNECTOR}: {})",
            options.mqtt, c.id
        ),
        None => println!(
            "  IoT sensors         off: no MQTT broker answers on {} (start mosquitto, or pass --mqtt)",
            options.mqtt
        ),
    }
    println!("  data directory      {}", options.data_dir.display());
    match &printed_key {
        Some(key) => println!("  admin API key       {key}"),
        None => println!("  admin API key       the value of HUB_ADMIN_KEY"),
    }
    println!(
        "  connectors          {REGNAKES_CONNECTOR} ({}), first sync: run {}; {SSO_CONNECTOR} ({}), syncs after it; {KKI_CONNECTOR} ({}), run {}; {SISDMK_CONNECTOR} ({}), syncs after RegNakes",
        regnakes.id, run.id, sso_connector.id, kki_connector.id, kki_run.id, sisdmk_connector.id
    );
    println!();
    println!("Logged in through the SSO as admin (token valid 10 minutes):");
    println!("  export TOKEN={admin_token}");
    println!("  curl -H \"Authorization: Bearer $TOKEN\" {api}/api/v1/connectors");
    println!("  curl -H \"Authorization: Bearer $TOKEN\" '{api}/fhir/r4/Practitioner?_count=5&_pretty=true'");
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

    // KKI revokes an STR now and then: a signed webhook, stored, then handled by the plugin.
    let revoking = kki.clone();
    let doctors = kki.total();
    let revocations = tokio::spawn(async move {
        for n in 0.. {
            tokio::time::sleep(Duration::from_secs(45)).await;
            match revoking.revoke((n * 97) % doctors.max(1)).await {
                Ok(delivery) => println!(
                    "KKI sent str.revoked {}: hub answered {}",
                    delivery.webhook_id, delivery.status
                ),
                Err(error) => eprintln!("KKI could not send a webhook: {error}"),
            }
        }
    });
    // SISDMK moves a worker now and then: the golden record's employment follows.
    let moving = sisdmk.clone();
    let workers = sisdmk.total();
    let transfers = tokio::spawn(async move {
        for n in 0.. {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let facility = n % hub_sim::sisdmk::FACILITIES.len();
            match moving.transfer((n * 89 + 7) % workers.max(1), facility).await {
                Ok(delivery) => println!(
                    "SISDMK sent pegawai.mutasi {}: hub answered {}",
                    delivery.webhook_id, delivery.status
                ),
                Err(error) => eprintln!("SISDMK could not send a webhook: {error}"),
            }
        }
    });
    let sensors = mqtt.clone().map(|mqtt| {
        tokio::spawn(async move {
            let sensors = IotSim::new(IotConfig {
                devices: 10,
                ..IotConfig::default()
            });
            loop {
                if let Err(error) = sensors
                    .publish(&mqtt.host, mqtt.port, 1, None, chrono::Utc::now())
                    .await
                {
                    eprintln!("IoT simulator: {error}");
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
    });

    let db = hub.manager.db().clone();
    let run_id = run.id.clone();
    let manager = hub.manager.clone();
    let after_registry = [sso_connector.id.clone(), sisdmk_connector.id.clone()];
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
                    // Accounts link to practitioners by NIK and SISDMK adds to them, so both
                    // sync once practitioners are in.
                    for connector in &after_registry {
                        if let Err(error) = manager.runs().request(connector, "demo", ACTOR).await {
                            eprintln!("could not start the sync of {connector}: {error}");
                        }
                    }
                    // The Odoo connector records the sync on the dashboard shortly after.
                    for _ in 0..600 {
                        let rows = odoo.rows("x_sdmk.sync");
                        if let Some(row) = rows.iter().find(|row| row["x_run_id"] == r.id.as_str()) {
                            println!(
                                "Odoo SDMK dashboard: sync {} recorded ({} received, {} created, trace {})",
                                r.id, row["x_received"], row["x_created"], row["x_trace_id"]
                            );
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
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
    revocations.abort();
    transfers.abort();
    if let Some(sensors) = sensors {
        sensors.abort();
    }
    hub.stop().await;
    drop(sim_server);
    drop(sso_server);
    drop(kki_server);
    drop(sisdmk_server);
    drop(odoo_server);
    Ok(())
}

/// Whether something accepts TCP connections at `addr` (the demo's MQTT broker).
async fn broker_answers(addr: &SocketAddr) -> bool {
    tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
        .await
        .is_ok_and(|connected| connected.is_ok())
}

/// Creates the demo connector `new.name`, or points the existing one at the simulator
/// (which may listen elsewhere than last time), and enables it.
async fn ensure_connector(hub: &Hub, new: NewConnector) -> anyhow::Result<hub::store::connectors::ConnectorRecord> {
    let connector = match hub.manager.db().connector_by_name(&new.name).await? {
        Some(mut existing) => {
            existing.config = new.config.to_string();
            existing.egress = serde_json::to_string(&new.egress.unwrap_or_default())?;
            existing.credentials = serde_json::to_string(&new.credentials)?;
            hub.manager.update_connector(&existing, &new.secrets).await?;
            existing
        }
        None => hub.manager.create_connector(new, ACTOR).await?,
    };
    hub.manager.set_enabled(&connector.id, true, ACTOR).await?;
    Ok(connector)
}

/// A demo connector of `plugin` reading from `sim` (`base_url` in its config, `sim` its only
/// egress), with one host-held OAuth2 credential named after the plugin when given.
fn demo_connector(
    name: &str,
    plugin: &str,
    sim: &hub_sim::Running,
    credential: Option<CredentialSpec>,
    secrets: &[(&str, &str)],
) -> NewConnector {
    NewConnector {
        config: serde_json::json!({ "base_url": sim.base_url() }),
        egress: Some(vec![sim.addr.to_string()]),
        credentials: credential
            .map(|c| BTreeMap::from([(plugin.to_string(), c)]))
            .unwrap_or_default(),
        secrets: secrets.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        enabled: true,
        ..NewConnector::new(name, plugin)
    }
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
