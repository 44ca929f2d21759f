//! `hub audit verify` as an operator runs it: exit 0 on an intact log, non-zero naming the
//! entry when one was edited or deleted.

mod common;

use hub::Hub;
use hub::audit::Event;
use hub::config::HubConfig;

fn verify(data_dir: &std::path::Path) -> (bool, String) {
    common::run_hub(&["audit", "verify", "--data-dir", &data_dir.display().to_string()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_exits_non_zero_and_names_the_tampered_entry() {
    let data = tempfile::tempdir().unwrap();
    let config = HubConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().to_path_buf(),
        admin_key: Some(hub::config::SecretString::new("audit-cli-test-key-0123456789")),
        ..HubConfig::default()
    };
    let database_url = config.database_url();
    let hub = Hub::start(config).await.unwrap();
    for target in ["a", "b", "c"] {
        hub.manager
            .audit()
            .record(Event::new("test", "connector.enable", target))
            .await;
    }
    // A pool of the test's own: the hub's is typed per engine.
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&database_url).await.unwrap();
    let (ok, text) = verify(data.path());
    assert!(ok, "{text}");
    assert!(text.contains("3 entries"), "{text}");

    sqlx::query("UPDATE audit_log SET target = 'z' WHERE seq = 2")
        .execute(&db)
        .await
        .unwrap();
    let (ok, text) = verify(data.path());
    assert!(!ok, "{text}");
    assert!(text.contains("audit entry 2 was changed"), "{text}");

    sqlx::query("DELETE FROM audit_log WHERE seq = 2")
        .execute(&db)
        .await
        .unwrap();
    let (ok, text) = verify(data.path());
    assert!(!ok, "{text}");
    assert!(text.contains("audit entry 2 is missing"), "{text}");
    hub.stop().await;
}
