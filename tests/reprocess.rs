//! `POST /api/v1/rejects/{id}/reprocess`: a row RegNakes sent for a person the hub did not
//! know, with an STR no longer active, is rejected (an inactive STR never creates a
//! practitioner); once KKI has brought that person in, reprocessing the reject stores it as an
//! update of them. Both backends.

use hub_e2e::{TestHub, backends, kki, regnakes};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn inactive_str_reject(hub: &TestHub, connector: &str) -> Value {
    hub.all_pages(&format!("/api/v1/rejects?connector_id={connector}"))
        .await
        .into_iter()
        .find(|r| r["reason"].as_str().unwrap().contains("STR is not active"))
        .expect("RegNakes sends rows whose STR is not active")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reject_is_stored_once_what_made_it_fail_has_changed() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let people = 300;
        let (regnakes_sim, regnakes_server) = regnakes(hub_sim::RegnakesConfig {
            people,
            ..Default::default()
        })
        .await;
        let (kki_sim, kki_server) = kki(hub_sim::KkiConfig {
            people,
            expired_rate: 0.0,
            ..Default::default()
        })
        .await;
        let from_regnakes = hub
            .regnakes_connector("regnakes", &regnakes_server.base_url(), regnakes_sim.config())
            .await;
        assert_eq!(hub.run_to_end(&from_regnakes).await["status"], "succeeded");
        let reject = inactive_str_reject(&hub, &from_regnakes).await;
        let rejects_before = hub
            .all_pages(&format!("/api/v1/rejects?connector_id={from_regnakes}"))
            .await
            .len();

        // Nothing has changed yet: rejected again, for the same reason, and not twice.
        let (status, again) = hub
            .post(
                &format!("/api/v1/rejects/{}/reprocess", reject["id"].as_str().unwrap()),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["outcome"], "rejected", "{again}");
        assert!(
            again["reason"].as_str().unwrap().contains("STR is not active"),
            "{again}"
        );
        let rejects = hub
            .all_pages(&format!("/api/v1/rejects?connector_id={from_regnakes}"))
            .await;
        assert_eq!(rejects.len(), rejects_before);
        assert!(
            rejects.iter().all(|r| r["id"] != reject["id"]),
            "the old reject is gone"
        );

        // KKI knows every doctor, with an active STR: now the RegNakes row updates them.
        let from_kki = hub
            .token_connector("kki", "kki", &kki_server.base_url(), &kki_sim.config().api_token)
            .await;
        assert_eq!(hub.run_to_end(&from_kki).await["status"], "succeeded");
        let reject = inactive_str_reject(&hub, &from_regnakes).await;
        let (status, stored) = hub
            .post(
                &format!("/api/v1/rejects/{}/reprocess", reject["id"].as_str().unwrap()),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{stored}");
        assert_eq!(stored["outcome"], "updated", "{stored}");
        assert_eq!(
            hub.all_pages(&format!("/api/v1/rejects?connector_id={from_regnakes}"))
                .await
                .len(),
            rejects_before - 1
        );

        let (status, missing) = hub.post("/api/v1/rejects/no-such-reject/reprocess", json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }
}
