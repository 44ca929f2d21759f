//! Identifying data and credentials are nowhere in clear: after syncing RegNakes and the
//! SSO, no seeded NIK or name, no client secret and no access token the simulators issued is
//! in the database files, in any API answer given without `pii:read`, or in an error body.
//! (The JSON logs of a whole `hub demo` run are checked in `host/tests/demo_logs.rs`.)

use hub_e2e::{Backend, Keeper, TestHub, keepers, kki, regnakes, sisdmk};
use hub_sim::needles::Needles;
use hub_sim::{SsoConfig, SsoSim};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifying_data_and_credentials_never_appear_in_clear() {
    for keeper in keepers() {
        nothing_in_clear(keeper).await;
    }
}

async fn nothing_in_clear(keeper: Keeper) {
    let hub = TestHub::start_kept(Backend::Sqlite, keeper, |_| {}).await;
    let (registry, registry_server) = regnakes(hub_sim::RegnakesConfig {
        people: 600,
        ..Default::default()
    })
    .await;
    let regnakes_id = hub
        .regnakes_connector("regnakes", &registry_server.base_url(), registry.config())
        .await;
    let sso = SsoSim::new(SsoConfig {
        accounts: 200,
        seed: registry.config().seed,
        ..Default::default()
    });
    let sso_server = hub_sim::serve(sso.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    sso.set_issuer(&sso_server.base_url());
    let sso_id = hub.sso_connector("sso", &sso_server.base_url()).await;
    // KKI and SISDMK merge into the same people (golden record, per-source rows).
    let (kki_sim, kki_server) = kki(hub_sim::KkiConfig {
        people: 200,
        seed: registry.config().seed,
        ..Default::default()
    })
    .await;
    let kki_id = hub
        .token_connector("kki", "kki", &kki_server.base_url(), &kki_sim.config().api_token)
        .await;
    let (sisdmk_sim, sisdmk_server) = sisdmk(hub_sim::SisdmkConfig {
        people: 200,
        seed: registry.config().seed,
        ..Default::default()
    })
    .await;
    let sisdmk_id = hub
        .token_connector(
            "sisdmk",
            "sisdmk",
            &sisdmk_server.base_url(),
            &sisdmk_sim.config().api_token,
        )
        .await;
    // KKI last: the rows it writes keep its source id, which must not be the STR number.
    for id in [&regnakes_id, &sso_id, &sisdmk_id, &kki_id] {
        assert_eq!(hub.run_to_end(id).await["status"], "succeeded", "{keeper:?}");
    }
    let people = registry.all_people();
    let some = &registry.valid_people()[0];
    let needles = Needles::people(&people).and_secrets(
        [
            registry.config().client_secret.clone(),
            SsoConfig::default().client_secret,
            kki_sim.config().api_token.clone(),
            sisdmk_sim.config().api_token.clone(),
        ]
        .into_iter()
        .chain(registry.live_tokens())
        .chain(sso.client_tokens()),
    );
    assert!(needles.secret_count() >= 4, "the simulators issued tokens to the hub");

    // API answers without pii:read: an admin and a viewer, every readable route.
    let admin = hub.api_key("admin-no-pii", "admin", false).await;
    let viewer = hub.api_key("viewer", "viewer", false).await;
    let runs = hub.get(&format!("/api/v1/connectors/{regnakes_id}/runs")).await;
    let run_id = runs["items"][0]["id"].as_str().unwrap().to_string();
    let mut answers = Vec::new();
    for path in [
        "/api/v1/connectors".to_string(),
        format!("/api/v1/connectors/{regnakes_id}"),
        format!("/api/v1/connectors/{regnakes_id}/runs"),
        format!("/api/v1/connectors/{regnakes_id}/logs?limit=500"),
        format!("/api/v1/connectors/{sso_id}/logs?limit=500"),
        format!("/api/v1/connectors/{kki_id}/logs?limit=500"),
        format!("/api/v1/connectors/{sisdmk_id}/logs?limit=500"),
        format!("/api/v1/connectors/{regnakes_id}/secrets"),
        format!("/api/v1/runs/{run_id}"),
        "/api/v1/rejects?limit=500".into(),
        "/api/v1/alerts".into(),
        "/api/v1/plugins".into(),
        "/api/v1/audit?limit=500".into(),
        "/api/v1/keys".into(),
        "/api/v1/api-keys".into(),
        "/openapi.json".into(),
    ] {
        let (status, body) = hub.call_as(&admin, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{keeper:?} {path}: {body}");
        answers.push((path, body));
    }
    // Error bodies, including requests that carry a NIK or a secret themselves.
    let bootstrap = hub_e2e::ADMIN_KEY.to_string();
    let errors = [
        (
            &viewer,
            Method::GET,
            format!("/api/v1/practitioners?nik={}", some.nik),
            None,
        ),
        (
            &admin,
            Method::GET,
            format!("/api/v1/practitioners?str={}", some.str_number),
            None,
        ),
        (&viewer, Method::GET, "/api/v1/accounts".to_string(), None),
        (
            &bootstrap,
            Method::GET,
            format!("/api/v1/practitioners?nik={}&bogus=1", some.nik),
            None,
        ),
        (
            &admin,
            Method::PUT,
            format!("/api/v1/connectors/{regnakes_id}/secrets/Not%20A%20Name"),
            Some(json!({ "value": registry.config().client_secret })),
        ),
        (
            &admin,
            Method::POST,
            "/api/v1/connectors".to_string(),
            Some(
                json!({ "name": "bad", "plugin": "regnakes", "config": { "per_page": "many" },
                         "secrets": { "client_secret": registry.config().client_secret } }),
            ),
        ),
        (
            &admin,
            Method::PUT,
            format!("/api/v1/connectors/{regnakes_id}/secrets/client_secret"),
            Some(json!({ "value": registry.config().client_secret, "note": some.full_name })),
        ),
    ];
    for (credential, method, path, body) in errors {
        let (status, answer) = hub.call_as(credential, method.clone(), &path, body).await;
        assert!(
            status.is_client_error(),
            "{keeper:?} {method} {path}: {status} {answer}"
        );
        assert_eq!(answer["status"], status.as_u16(), "problem+json: {answer}");
        answers.push((format!("error of {method} {path}"), answer));
    }
    // The scan finds what is there: a pii:read answer holds the person in clear.
    let (_, with_pii) = hub
        .call(
            Method::GET,
            &format!("/api/v1/practitioners?str={}", some.str_number),
            None,
        )
        .await;
    let found = std::panic::catch_unwind(|| needles.assert_absent("pii:read answer", with_pii.to_string().as_bytes()));
    assert!(found.is_err(), "the scan must see a NIK or name in a pii:read answer");

    for (what, body) in &answers {
        needles.assert_absent(&format!("{keeper:?}: {what}"), body.to_string().as_bytes());
    }

    // The database files, once the hub has let go of them.
    hub.hub.stop().await;
    let files = hub_e2e::sqlite_files(hub.data_dir.path());
    assert!(files.iter().map(|(_, b)| b.len()).sum::<usize>() > 100_000);
    for (name, bytes) in &files {
        needles.assert_absent(&format!("{keeper:?}: {name}"), bytes);
    }
}
