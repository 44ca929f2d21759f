//! Capability backends for benchmarks: real host-held tokens, and batches either dropped or kept so
//! the plugin side and the pipeline side can be timed apart.

use futures::future::BoxFuture;
use hub::manager::CredentialSpec;
use hub::manager::credentials::TokenCache;
use hub::model::CanonicalRecord;
use hub::runtime::{EmitOutcome, LogLevel, LogSink, PluginError, RecordSink, SecretSource, StateStore, TokenSource};
use std::sync::Mutex;

pub struct BenchJob {
    pub credential: Option<(CredentialSpec, String)>,
    pub tokens: TokenCache,
    pub keep: bool,
    pub batches: Mutex<Vec<Vec<CanonicalRecord>>>,
    pub cursor: Mutex<Option<String>>,
}

impl BenchJob {
    pub fn new(credential: Option<(CredentialSpec, String)>, keep: bool) -> Self {
        Self {
            credential,
            tokens: TokenCache::new(),
            keep,
            batches: Mutex::default(),
            cursor: Mutex::default(),
        }
    }
}

impl RecordSink for BenchJob {
    fn emit(&self, batch: Vec<CanonicalRecord>) -> BoxFuture<'_, Result<EmitOutcome, PluginError>> {
        let accepted = batch.len() as u32;
        if self.keep {
            self.batches.lock().unwrap().push(batch);
        }
        Box::pin(async move {
            Ok(EmitOutcome {
                accepted,
                rejected: Vec::new(),
            })
        })
    }
}

impl StateStore for BenchJob {
    fn state_get(&self, _key: String) -> BoxFuture<'_, wasmtime::Result<Option<String>>> {
        Box::pin(async { Ok(None) })
    }

    fn state_set(&self, _key: String, value: String, _max_keys: u32) -> BoxFuture<'_, wasmtime::Result<bool>> {
        *self.cursor.lock().unwrap() = Some(value);
        Box::pin(async { Ok(true) })
    }
}

impl TokenSource for BenchJob {
    fn bearer_token(&self, credential: String) -> BoxFuture<'_, Result<String, PluginError>> {
        Box::pin(async move {
            let (spec, secret) = self
                .credential
                .as_ref()
                .ok_or_else(|| PluginError::Config("no credential".into()))?;
            self.tokens.token("bench", &credential, spec, secret).await
        })
    }

    fn invalidate_token(&self, credential: String, token: String) -> BoxFuture<'_, ()> {
        self.tokens.invalidate("bench", &credential, &token);
        Box::pin(async {})
    }
}

impl SecretSource for BenchJob {
    fn secret(&self, name: String) -> BoxFuture<'_, Result<String, PluginError>> {
        Box::pin(async move { Err(PluginError::Config(format!("no secret {name}"))) })
    }
}

impl LogSink for BenchJob {
    fn log(&self, _level: LogLevel, _message: String, _fields: Vec<(String, String)>, _from_plugin: bool) {}

    fn flush_logs(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
