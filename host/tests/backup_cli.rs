//! `hub backup` and `hub restore` as an operator runs them: a backup of a serving hub, restored
//! into a new data directory holding the master key; a second restore there is refused.

mod common;

use hub::Hub;
use hub::config::HubConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_backs_up_a_serving_hub_and_restores_it_into_a_new_directory() {
    let data = tempfile::tempdir().unwrap();
    let config = HubConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().to_path_buf(),
        admin_key: Some(hub::config::SecretString::new("backup-cli-test-key-0123456789")),
        ..HubConfig::default()
    };
    let hub = Hub::start(config).await.unwrap();
    let data_dir = data.path().display().to_string();

    let (ok, text) = common::run_hub(&["backup", "--data-dir", &data_dir]);
    assert!(ok, "{text}");
    assert!(text.contains("backup written") && text.contains("SHA-256"), "{text}");
    assert!(text.contains("back that up separately"), "{text}");
    let backup = std::fs::read_dir(data.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sqlite"))
        .expect("a backup file in <data_dir>/backups");
    hub.stop().await;

    let restored = tempfile::tempdir().unwrap();
    let restored_dir = restored.path().display().to_string();
    let backup = backup.display().to_string();
    let restore = || common::run_hub(&["restore", "--from", &backup, "--data-dir", &restored_dir]);
    let (ok, text) = restore();
    assert!(!ok, "{text}");
    assert!(
        text.contains("master.key") && text.contains("not in the backup"),
        "{text}"
    );

    std::fs::copy(data.path().join("master.key"), restored.path().join("master.key")).unwrap();
    let (ok, text) = restore();
    assert!(ok, "{text}");
    assert!(text.contains("restored hub-"), "{text}");
    let (ok, text) = common::run_hub(&["audit", "verify", "--data-dir", &restored_dir]);
    assert!(ok, "{text}");

    let (ok, text) = restore();
    assert!(!ok, "{text}");
    assert!(text.contains("already holds data"), "{text}");
}
