//! A connector's Standard Webhooks secret as an integrator manages it: created and rotated
//! through the API, shown once, kept in the secret backend out of every plugin's reach, and
//! the previous secret still verifying during the grace period.

use hub::webhooks::{SignedHeaders, WebhookSecret, verify};
use hub_e2e::{Backend, TestHub, backends, keepers, kki, regnakes};
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
        assert!(hub.hub.webhook_secrets.valid(&id).await.unwrap().is_empty());

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
        let secrets = hub.hub.webhook_secrets.valid(&id).await.unwrap();
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
            .store()
            .put(&id, "hub.webhook-previous", &format!("{} {first_secret}", now - 1))
            .await
            .unwrap();
        let secrets = hub.hub.webhook_secrets.valid(&id).await.unwrap();
        assert_eq!(
            secrets,
            vec![WebhookSecret::parse(&second_secret).unwrap()],
            "{keeper:?}"
        );

        // Out of reach of the secrets routes (the hub's own); never in the audit trail;
        // integrators only.
        let listed = hub.get(&format!("/api/v1/connectors/{id}/secrets")).await;
        assert!(!listed.to_string().contains("hub.webhook"), "{listed}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_takes_effect_on_this_hub_at_once() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let (sim, server) = kki(hub_sim::KkiConfig {
            people: 5,
            ..Default::default()
        })
        .await;
        let id = hub
            .token_connector("kki", "kki", &server.base_url(), &sim.config().api_token)
            .await;
        let path = format!("/api/v1/connectors/{id}/webhook-secret");
        let rotate = async || {
            hub.post(&path, json!({})).await.1["secret"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let post = async |secret: &str, n: u32| {
            let body = json!({ "type": "unknown.event", "data": {} }).to_string();
            let now = chrono::Utc::now().timestamp();
            let msg = format!("msg_rotation_{n}");
            let signature = WebhookSecret::parse(secret).unwrap().sign(&msg, now, body.as_bytes());
            hub.http
                .post(hub.url(&format!("/webhooks/{id}")))
                .header("webhook-id", msg)
                .header("webhook-timestamp", now.to_string())
                .header("webhook-signature", signature)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        };
        let oldest = rotate().await;
        // The inbox has read (and cached) the first secret.
        assert_eq!(post(&oldest, 1).await, StatusCode::ACCEPTED, "{backend:?}");
        let previous = rotate().await;
        let current = rotate().await;
        // At once: the new secret verifies, the one two rotations old does not, and the one
        // just replaced still does (grace period).
        assert_eq!(post(&current, 2).await, StatusCode::ACCEPTED, "{backend:?}");
        assert_eq!(post(&oldest, 3).await, StatusCode::UNAUTHORIZED, "{backend:?}");
        assert_eq!(post(&previous, 4).await, StatusCode::ACCEPTED, "{backend:?}");
        // Disabling takes effect at once too.
        let (status, _) = hub.post(&format!("/api/v1/connectors/{id}/disable"), json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert_ne!(post(&current, 5).await, StatusCode::ACCEPTED, "{backend:?}");
        hub.hub.stop().await;
    }
}
