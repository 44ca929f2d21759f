//! Logging: human-readable by default, JSON lines with `HUB_LOG_FORMAT=json`; `RUST_LOG`
//! filters.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,wasmtime=warn,cranelift=warn,tower_http=info,rustify=off,vaultrs=off")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if std::env::var("HUB_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
