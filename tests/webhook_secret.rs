//! A connector's Standard Webhooks secret as an integrator manages it: created and rotated
//! through the API, shown once, kept in the secret backend out of every plugin's reach, and
//! the previous secret still verifying during the grace period.

use hub::webhooks::{SignedHeaders, WebhookSecret, verify};
use hub_e2e::{Backend, TestHub, keepers, regnakes};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn signed_by(secret: &str, body: &[u8], now: i64) -> String {
    WebhookSecret::parse(secret).unwrap().sign("msg_1", now, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_secrets_rotate_with_a_grace_period_and_are_shown_once() {
    for keeper in keepers() {
        let hub = TestHub::start_kept(Backend::Sqlite, keeper, |_| {}).await;
        let (sim, server) = regnakes(hub_sim::RegnakesConfig {
            people: 10,
            ..Default::default()
        })
        .await;
        let id = hub
            .regnakes_connector("webhooks", &server.base_url(), sim.config())
            .await;
        let path = format!("/api/v1/connectors/{id}/webhook-secret");
        assert!(hub.hub.manager.webhook_secrets(&id).await.unwrap().is_empty());

        let (status, first) = hub.post(&path, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{keeper:?}: {first}");
        let first_secret = first["secret"].as_str().unwrap().to_string();
        assert!(first_secret.starts_with("whsec_"), "{first}");
        assert!(first["previous_valid_until"].is_null(), "{first}");
        let (status, second) = hub.post(&path, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{second}");
        let second_secret = second["secret"].as_str().unwrap().to_string();
        assert_ne!(first_secret, second_secret);
        assert!(second["previous_valid_until"].is_string(), "{second}");

        // Both verify during the grace period; a made-up secret does not.
        let secrets = hub.hub.manager.webhook_secrets(&id).await.unwrap();
        let now = chrono::Utc::now().timestamp();
        let body = br#"{"type":"str.revoked"}"#;
        for (secret, expected) in [(&first_secret, true), (&second_secret, true)] {
            let signature = signed_by(secret, body, now);
            let headers = SignedHeaders {
                id: Some("msg_1"),
                timestamp: Some(&now.to_string()),
                signature: Some(&signature),
            };
            assert_eq!(verify(&secrets, &headers, body, now).is_ok(), expected, "{keeper:?}");
        }
        let stranger = WebhookSecret::generate().sign("msg_1", now, body);
        let headers = SignedHeaders {
            id: Some("msg_1"),
            timestamp: Some(&now.to_string()),
            signature: Some(&stranger),
        };
        assert!(verify(&secrets, &headers, body, now).is_err());

        // After the grace period only the current secret verifies.
        hub.hub
            .manager
            .secrets()
            .put(&id, "hub.webhook-previous", &format!("{} {first_secret}", now - 1))
            .await
            .unwrap();
        let secrets = hub.hub.manager.webhook_secrets(&id).await.unwrap();
        assert_eq!(
            secrets,
            vec![WebhookSecret::parse(&second_secret).unwrap()],
            "{keeper:?}"
        );

        // Listed by name only; never in the audit trail; integrators only.
        let listed = hub.get(&format!("/api/v1/connectors/{id}/secrets")).await;
        let names: Vec<&str> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"hub.webhook-current"), "{listed}");
        let everything = format!("{listed}{}", json!(hub.all_pages("/api/v1/audit").await));
        assert!(!everything.contains(&first_secret[6..]) && !everything.contains(&second_secret[6..]));
        let viewer = hub.api_key("viewer", "viewer", false).await;
        let (status, _) = hub.call_as(&viewer, Method::POST, &path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = hub.post("/api/v1/connectors/nope/webhook-secret", json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        hub.hub.stop().await;
    }
}
