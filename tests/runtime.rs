//! The plugin runtime across restarts.

use hub::Hub;
use hub_e2e::test_config;
use std::path::Path;

fn cached_components(dir: &Path) -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir.join("compile-cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .map(|p| {
            let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, modified)
        })
        .collect();
    entries.sort();
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_plugins_are_reused_from_disk_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), None);
    Hub::start(config.clone()).await.unwrap().stop().await;
    let first = cached_components(dir.path());
    assert_eq!(
        first.len(),
        hub::bundled::ALL.len(),
        "one compiled component per bundled plugin: {first:?}"
    );

    Hub::start(config).await.unwrap().stop().await;
    assert_eq!(
        cached_components(dir.path()),
        first,
        "the restart loaded the cache instead of recompiling"
    );
}
