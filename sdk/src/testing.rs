//! A fake host, so that mapping code and whole [`Connector`](crate::Connector) calls run in
//! native `cargo test`, without the hub or the network.
//!
//! Compiled for every target but WebAssembly: there the real host answers. Inside
//! [`FakeHost::run`], every host call of the SDK — [`http`](crate::http),
//! [`records`](crate::records), [`state`](crate::state), [`secrets`](crate::secrets),
//! [`auth`](crate::auth), [`log`](crate::log) — goes to the fake, which answers with what the
//! test gave it and remembers what the plugin did:
//!
//! ```
//! use healthforce_sdk::testing::FakeHost;
//! use healthforce_sdk::http::HttpClient;
//!
//! let host = FakeHost::new()
//!     .secret("api_key", "k-123")
//!     .respond("GET", "https://registry.example/people?limit=2", 200, r#"{"data": []}"#);
//! let body: serde_json::Value = host.run(|| {
//!     let key = healthforce_sdk::secrets::get("api_key").unwrap();
//!     HttpClient::new("https://registry.example").unwrap()
//!         .with_header("x-api-key", &key)
//!         .get_json("/people?limit=2")
//! }).unwrap();
//! assert_eq!(body["data"], serde_json::json!([]));
//! assert_eq!(host.requests()[0].header("x-api-key").as_deref(), Some("k-123"));
//! ```
//!
//! A request the test gave no answer for fails with a `config` error naming it, so a test
//! never reaches the network by mistake.
//!
//! A [`Cassette`] recorded by `hub plugin run --record` answers as the real system did:
//! [`replay_all`] replays every one in a directory through a connector's `sync`.

mod cassette;

pub use cassette::{Cassette, replay_all};

use crate::http::Response;
use crate::{CanonicalRecord, EmitOutcome, Error, RejectedRow, SyncRequest};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A request the plugin sent, as the fake host saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// `scheme://authority/path?query`.
    pub url: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (any case), as text.
    pub fn header(&self, name: &str) -> Option<String> {
        (self.headers.iter())
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// A log line the plugin wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

type Answer = Box<dyn Fn(&Request) -> Option<Response>>;
type Check = Box<dyn Fn(&CanonicalRecord) -> Option<String>>;

#[derive(Default)]
struct State {
    answers: Vec<Answer>,
    secrets: BTreeMap<String, String>,
    tokens: BTreeMap<String, String>,
    state: BTreeMap<String, String>,
    cursor: Option<String>,
    check: Option<Check>,
    requests: Vec<Request>,
    records: Vec<CanonicalRecord>,
    logs: Vec<LogLine>,
    invalidated: Vec<String>,
}

/// The fake host: what it answers, and what the plugin did. Clones share one state.
#[derive(Clone, Default)]
pub struct FakeHost(Rc<RefCell<State>>);

thread_local! {
    static CURRENT: RefCell<Option<FakeHost>> = const { RefCell::new(None) };
}

impl FakeHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// Grants secret `name` (`secrets::get`).
    pub fn secret(self, name: &str, value: &str) -> Self {
        self.0.borrow_mut().secrets.insert(name.into(), value.into());
        self
    }

    /// Holds credential `name`, whose bearer token is `token` (`HttpClient::with_credential`).
    pub fn credential(self, name: &str, token: &str) -> Self {
        self.0.borrow_mut().tokens.insert(name.into(), token.into());
        self
    }

    /// The cursor a run starts from, as a previous run saved it.
    pub fn cursor(self, cursor: &str) -> Self {
        self.0.borrow_mut().cursor = Some(cursor.into());
        self
    }

    /// Answers `method url` (the whole URL, query included) with `status` and `body`, every
    /// time it is asked.
    pub fn respond(self, method: &str, url: &str, status: u16, body: impl Into<Vec<u8>>) -> Self {
        let (method, url, body) = (method.to_string(), url.to_string(), body.into());
        self.respond_with(move |request| {
            (request.method == method && request.url == url).then(|| Response {
                status,
                headers: vec![("content-type".into(), b"application/json".to_vec())],
                body: body.clone(),
            })
        })
    }

    /// Answers the requests `answer` returns a response for; asked in the order added.
    pub fn respond_with(self, answer: impl Fn(&Request) -> Option<Response> + 'static) -> Self {
        self.0.borrow_mut().answers.push(Box::new(answer));
        self
    }

    /// Refuses the emitted records `check` gives a reason for, as the hub's pipeline would
    /// (the fake accepts every record otherwise: `hub plugin run` applies the hub's rules).
    pub fn reject_where(self, check: impl Fn(&CanonicalRecord) -> Option<String> + 'static) -> Self {
        self.0.borrow_mut().check = Some(Box::new(check));
        self
    }

    /// A sync request of this fake's cursor with the connector config `config`.
    pub fn sync_request(&self, config: serde_json::Value) -> SyncRequest {
        SyncRequest {
            run_id: "test-run".into(),
            cursor: self.saved_cursor(),
            config: config.to_string(),
        }
    }

    /// Runs `call` with this fake answering every host call made on this thread.
    pub fn run<T>(&self, call: impl FnOnce() -> T) -> T {
        struct Restore(Option<FakeHost>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|current| *current.borrow_mut() = self.0.take());
            }
        }
        let _restore = Restore(CURRENT.with(|current| current.borrow_mut().replace(self.clone())));
        call()
    }

    /// Every record emitted or queued, in order.
    pub fn records(&self) -> Vec<CanonicalRecord> {
        self.0.borrow().records.clone()
    }

    /// The cursor saved last (or given with [`FakeHost::cursor`]).
    pub fn saved_cursor(&self) -> Option<String> {
        self.0.borrow().cursor.clone()
    }

    /// Every request sent, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.0.borrow().requests.clone()
    }

    pub fn logs(&self) -> Vec<LogLine> {
        self.0.borrow().logs.clone()
    }

    /// The value the plugin stored under `key` with `state::set`.
    pub fn state(&self, key: &str) -> Option<String> {
        self.0.borrow().state.get(key).cloned()
    }

    /// Tokens the plugin reported refused (`auth::invalidate`).
    pub fn invalidated(&self) -> Vec<String> {
        self.0.borrow().invalidated.clone()
    }
}

/// The fake of the current [`FakeHost::run`].
fn current(call: &str) -> FakeHost {
    CURRENT.with(|current| current.borrow().clone()).unwrap_or_else(|| {
        panic!(
            "healthforce_sdk: `{call}` is a host call, and natively only a FakeHost answers one: \
             wrap the code under test in healthforce_sdk::testing::FakeHost::new().run(|| …)"
        )
    })
}

/// Sends `request` to the fake: its answer, or a `config` error naming the request.
pub(crate) fn exchange(request: Request) -> Result<Response, Error> {
    let host = current("http");
    let mut state = host.0.borrow_mut();
    let answer = state.answers.iter().find_map(|answer| answer(&request));
    let missing = format!(
        "the fake host has no answer for {} {}: give one with FakeHost::respond",
        request.method, request.url
    );
    state.requests.push(request);
    answer.ok_or(Error::Config(missing))
}

/// The host interfaces as the plugin calls them, answered by the current fake.
pub(crate) mod imports {
    use super::current;

    pub mod secrets {
        use crate::Error;

        pub fn get(name: &str) -> Result<String, Error> {
            let host = super::current("secrets.get");
            let secret = host.0.borrow().secrets.get(name).cloned();
            secret.ok_or_else(|| Error::Config(format!("secret {name:?} is not granted to this connector")))
        }
    }

    pub mod auth {
        use crate::Error;

        pub fn bearer_token(credential: &str) -> Result<String, Error> {
            let host = super::current("auth.bearer-token");
            let token = host.0.borrow().tokens.get(credential).cloned();
            token.ok_or_else(|| Error::Config(format!("this connector has no credential {credential:?}")))
        }

        pub fn invalidate(credential: &str, token: &str) {
            let _ = credential;
            let host = super::current("auth.invalidate");
            host.0.borrow_mut().invalidated.push(token.to_string());
        }
    }

    pub mod state {
        pub fn get(key: &str) -> Option<String> {
            super::current("state.get").0.borrow().state.get(key).cloned()
        }

        pub fn set(key: &str, value: &str) {
            let host = super::current("state.set");
            host.0.borrow_mut().state.insert(key.into(), value.into());
        }

        pub fn save_cursor(cursor: &str) {
            super::current("state.save-cursor").0.borrow_mut().cursor = Some(cursor.into());
        }
    }

    pub mod records {
        use crate::{CanonicalRecord, EmitOutcome, Error};

        pub fn emit(batch: &[CanonicalRecord]) -> Result<EmitOutcome, Error> {
            Ok(super::super::store(&super::current("records.emit"), batch))
        }

        pub fn queue(batch: &[CanonicalRecord]) -> Result<(), Error> {
            super::super::store(&super::current("records.queue"), batch);
            Ok(())
        }
    }

    pub mod log {
        pub use crate::bindings::healthforce::hub::log::Level;

        pub fn write(level: Level, message: &str, fields: &[(String, String)]) {
            let level = match level {
                Level::Trace => "trace",
                Level::Debug => "debug",
                Level::Info => "info",
                Level::Warn => "warn",
                Level::Error => "error",
            };
            super::current("log.write")
                .0
                .borrow_mut()
                .logs
                .push(super::super::LogLine {
                    level,
                    message: message.into(),
                    fields: fields.to_vec(),
                });
        }
    }
}

/// Keeps `batch`, less the rows the test's check refuses.
fn store(host: &FakeHost, batch: &[CanonicalRecord]) -> EmitOutcome {
    let mut state = host.0.borrow_mut();
    let mut rejected = Vec::new();
    for (index, record) in batch.iter().enumerate() {
        match state.check.as_ref().and_then(|check| check(record)) {
            Some(reason) => rejected.push(RejectedRow {
                index: index as u32,
                reason,
            }),
            None => state.records.push(record.clone()),
        }
    }
    EmitOutcome {
        accepted: (batch.len() - rejected.len()) as u32,
        rejected,
    }
}
