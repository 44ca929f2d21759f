//! The hub's Vault/OpenBao login as production runs it: AppRole, a least-privilege policy
//! (its KV prefix and its transit key, nothing else), and tokens that live 2 s with a 4 s
//! maximum, so the hub must renew them and then log in again without a sync noticing.

use hub_e2e::{Backend, Keeper, TestHub, keepers, openbao_call, openbao_enable, regnakes};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

const POLICY: &str = r#"
path "secret/data/hub-test/*"     { capabilities = ["create", "read", "update", "delete"] }
path "secret/metadata/hub-test/*" { capabilities = ["read", "list", "delete"] }
path "transit/encrypt/hub-test-*" { capabilities = ["update"] }
path "transit/decrypt/hub-test-*" { capabilities = ["update"] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_tokens_are_renewed_and_replaced_while_the_hub_works() {
    if !keepers().contains(&Keeper::OpenBao) {
        return;
    }
    openbao_enable("auth", "approle", "approle").await;
    openbao_enable("mounts", "transit", "transit").await;
    let role = format!("hub-{}", uuid::Uuid::new_v4().simple());
    let (status, body) = openbao_call(
        Method::PUT,
        &format!("sys/policies/acl/{role}"),
        Some(json!({ "policy": POLICY })),
    )
    .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = openbao_call(
        Method::POST,
        &format!("auth/approle/role/{role}"),
        Some(json!({ "token_policies": [role], "token_ttl": "2s", "token_max_ttl": "4s" })),
    )
    .await;
    assert!(status.is_success(), "{body}");
    let (_, body) = openbao_call(Method::GET, &format!("auth/approle/role/{role}/role-id"), None).await;
    let role_id = body["data"]["role_id"].as_str().unwrap().to_string();
    let (_, body) = openbao_call(Method::POST, &format!("auth/approle/role/{role}/secret-id"), None).await;
    let secret_id = body["data"]["secret_id"].as_str().unwrap().to_string();

    // The policy may not create transit keys: the operator creates the hub's beforehand.
    let transit_key = format!("hub-test-{role}");
    let (status, body) = openbao_call(Method::POST, &format!("transit/keys/{transit_key}"), None).await;
    assert!(status.is_success(), "{body}");
    let hub = TestHub::start_kept(Backend::Sqlite, Keeper::OpenBao, |config| {
        config.keys.transit_key = transit_key;
        let vault = config.vault.as_mut().unwrap();
        vault.token = None;
        vault.role_id = Some(role_id);
        vault.secret_id = Some(hub::config::SecretString::new(secret_id));
    })
    .await;

    let (sim, server) = regnakes(hub_sim::RegnakesConfig {
        people: 200,
        ..Default::default()
    })
    .await;
    let id = hub
        .regnakes_connector("approle", &server.base_url(), sim.config())
        .await;
    assert_eq!(hub.run_to_end(&id).await["status"], "succeeded");

    // Past the tokens' max TTL: every Vault call still works.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, body) = hub
        .call(
            Method::PUT,
            &format!("/api/v1/connectors/{id}/secrets/client_secret"),
            Some(json!({ "value": sim.config().client_secret })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 2);
    let listed = hub.get(&format!("/api/v1/connectors/{id}/secrets")).await;
    assert_eq!(listed["items"][0]["version"], 2, "{listed}");
    assert_eq!(hub.run_to_end(&id).await["status"], "succeeded");
    hub.hub.stop().await;
}
