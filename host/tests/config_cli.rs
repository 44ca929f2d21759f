//! `hub config check` as an operator runs it before a start.

mod common;

#[test]
fn config_check_prints_the_settings_in_effect_without_secrets_and_names_a_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    let path = config.display().to_string();
    std::fs::write(
        &config,
        "database_url = \"postgres://hub:s3cret-pw@db.example:5432/hub\"\n[limits]\nmemory_mib = 64\n",
    )
    .unwrap();
    let (ok, text) = common::run_hub(&["config", "check", "--config", &path]);
    assert!(ok, "{text}");
    assert!(
        text.contains("memory_mib = 64") && text.contains("call_deadline_secs = 600"),
        "{text}"
    );
    assert!(
        !text.contains("s3cret-pw"),
        "the database password is not printed: {text}"
    );

    std::fs::write(&config, "[limits]\nmemory_mb = 64\n").unwrap();
    let (ok, text) = common::run_hub(&["config", "check", "--config", &path]);
    assert!(!ok && text.contains("memory_mb"), "{text}");
}
