//! `hub keys rotate --wait` and `hub keys status` as an admin runs them against a live hub:
//! progress until the rotation is done, then the old version shown retired.

mod common;

use hub::Hub;
use hub::config::{HubConfig, SecretString};
use hub::crypto::KeysConfig;

const KEY: &str = "keys-cli-test-key-0123456789abcdef";

fn hub_keys(api: &str, args: &[&str]) -> (bool, String) {
    let args: Vec<&str> = ["keys"]
        .iter()
        .chain(args)
        .chain(&["--api", api, "--key", KEY])
        .copied()
        .collect();
    common::run_hub(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_waits_with_progress_and_status_shows_the_retired_version() {
    let data = tempfile::tempdir().unwrap();
    let hub = Hub::start(HubConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().to_path_buf(),
        admin_key: Some(SecretString::new(KEY)),
        keys: KeysConfig {
            reload_secs: 1,
            ..KeysConfig::default()
        },
        ..HubConfig::default()
    })
    .await
    .unwrap();
    let api = hub.url();
    let (ok, text) = tokio::task::spawn_blocking({
        let api = api.clone();
        move || hub_keys(&api, &["rotate", "--wait"])
    })
    .await
    .unwrap();
    assert!(ok, "{text}");
    assert!(text.contains("data key version 2 is active"), "{text}");
    assert!(text.lines().last().unwrap().starts_with("done:"), "{text}");

    let (ok, text) = tokio::task::spawn_blocking(move || hub_keys(&api, &["status"]))
        .await
        .unwrap();
    assert!(ok, "{text}");
    assert!(text.contains("key-encryption key: local"), "{text}");
    let versions: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with(char::is_numeric))
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    assert_eq!(versions, vec![vec!["1", "retired"], vec!["2", "active"]], "{text}");
    assert!(text.contains("last rotation to version 2: done"), "{text}");

    let (ok, text) = tokio::task::spawn_blocking(|| hub_keys("http://127.0.0.1:9", &["status"]))
        .await
        .unwrap();
    assert!(!ok && text.contains("cannot reach the hub"), "{text}");
    hub.stop().await;
}
