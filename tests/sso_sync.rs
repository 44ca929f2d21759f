//! The SSO connector: accounts synced from the SSO simulator, stored sealed, each linked to
//! the practitioner with the same NIK.

use hub_e2e::{Backend, TestHub, backends, regnakes};
use hub_sim::{SsoConfig, SsoSim};
use std::collections::HashSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_accounts_are_stored_sealed_and_linked_to_practitioners_by_nik() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let (registry, registry_server) = regnakes(hub_sim::RegnakesConfig {
            people: 300,
            ..Default::default()
        })
        .await;
        let regnakes_id = hub
            .regnakes_connector("regnakes", &registry_server.base_url(), registry.config())
            .await;
        assert_eq!(hub.run_to_end(&regnakes_id).await["status"], "succeeded");

        let sso = SsoSim::new(SsoConfig {
            accounts: 120,
            seed: registry.config().seed,
            ..Default::default()
        });
        let sso_server = hub_sim::serve(sso.router(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let sso_url = sso_server.base_url();
        sso.set_issuer(&sso_url);
        let sso_id = hub.sso_connector("sso", &sso_url).await;
        let run = hub.run_to_end(&sso_id).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["records_received"], 120);
        assert_eq!(run["records_created"], 120);

        let accounts = hub.all_pages("/api/v1/accounts").await;
        assert_eq!(accounts.len(), 120);
        let stored_niks: HashSet<String> = registry.valid_people().into_iter().map(|p| p.nik).collect();
        let people: Vec<_> = (0..120)
            .map(|i| hub_sim::people::person(registry.config().seed, i))
            .collect();
        let expected_links = people.iter().filter(|p| stored_niks.contains(&p.nik)).count();
        let linked = accounts.iter().filter(|a| !a["practitioner_id"].is_null()).count();
        assert_eq!(linked, expected_links);
        assert!(linked > 100, "{linked}");

        // The link points at the practitioner with that NIK.
        let person = people.iter().find(|p| stored_niks.contains(&p.nik)).unwrap();
        let practitioner = hub.get(&format!("/api/v1/practitioners?nik={}", person.nik)).await;
        let practitioner_id = practitioner["items"][0]["id"].as_str().unwrap();
        let of_practitioner = hub
            .get(&format!("/api/v1/accounts?practitioner_id={practitioner_id}"))
            .await;
        assert_eq!(
            of_practitioner["items"].as_array().unwrap().len(),
            1,
            "{of_practitioner}"
        );
        assert_eq!(of_practitioner["items"][0]["email"], person.email.as_str());

        // Nothing identifying in clear in the table.
        let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as("SELECT username, subject FROM accounts")
            .fetch_all(&hub.raw_sql().await)
            .await
            .unwrap();
        let usernames: HashSet<&str> = accounts.iter().map(|a| a["username"].as_str().unwrap()).collect();
        for (username, subject) in &rows {
            let text = String::from_utf8_lossy(username);
            assert!(!usernames.iter().any(|u| text.contains(u)), "username stored in clear");
            assert!(
                !String::from_utf8_lossy(subject).contains("user-"),
                "subject stored in clear"
            );
        }

        // The next sync changes nothing and duplicates nothing.
        let again = hub.run_to_end(&sso_id).await;
        assert_eq!(again["records_unchanged"], 120, "{again}");
        assert_eq!(hub.all_pages("/api/v1/accounts").await.len(), 120);
        hub.hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default_and_allows_only_configured_origins() {
    let closed = TestHub::start(Backend::Sqlite).await;
    let open = TestHub::start_with(Backend::Sqlite, |c| {
        c.auth.cors_origins = vec!["https://admin.example".into()]
    })
    .await;
    for (hub, origin, allowed) in [
        (&closed, "https://admin.example", false),
        (&open, "https://admin.example", true),
        (&open, "https://evil.example", false),
    ] {
        let response = hub
            .http
            .request(reqwest::Method::OPTIONS, hub.url("/api/v1/connectors"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        let header = response.headers().get("access-control-allow-origin");
        assert_eq!(header.is_some(), allowed, "{origin}: {:?}", response.headers());
    }
}
