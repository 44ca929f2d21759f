//! # HealthForce Hub plugin SDK
//!
//! A connector plugin is a WASI-p2 component that the hub loads in a sandbox, one per external
//! system. The hub calls its exports — [`Connector::sync`] on a schedule or a manual run,
//! [`Connector::handle_webhooks`] for inbound webhooks, [`Connector::handle_messages`] for MQTT,
//! [`Connector::deliver`] with the hub's own events for an outbound connector —
//! and the plugin reaches the outside world only through the host: HTTP to allow-listed hosts
//! ([`http`]), bearer tokens for host-held credentials ([`auth`]), granted secrets
//! ([`secrets`]), durable state ([`state`]), the record pipeline ([`records`]) and logs
//! ([`log`]).
//!
//! Implement [`Connector`] for a type (every method has a default that answers
//! `unsupported`), then export it with [`export_connector!`].
//!
//! ## A complete pull connector
//!
//! ```no_run
//! use healthforce_sdk::{
//!     http::HttpClient, pull_pages, Connector, Error, Gender, Page, Practitioner, SourceRef,
//!     SyncRequest, SyncSummary, CanonicalRecord,
//! };
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Config { base_url: String }
//!
//! #[derive(Deserialize)]
//! struct Listing { data: Vec<Person>, total_pages: u32 }
//!
//! #[derive(Deserialize)]
//! struct Person { id: String, nik: String, name: String }
//!
//! #[derive(Serialize, Deserialize, Default)]
//! struct Cursor { page: u32 }
//!
//! struct Example;
//!
//! impl Connector for Example {
//!     fn sync(request: SyncRequest) -> Result<SyncSummary, Error> {
//!         let config: Config = healthforce_sdk::config(&request.config)?;
//!         let client = HttpClient::new(&config.base_url)?.with_credential("example");
//!         let start: Cursor = healthforce_sdk::cursor(&request)?.unwrap_or_default();
//!         pull_pages(start, |cursor| {
//!             let page = cursor.page.max(1);
//!             let listing: Listing = client.get_json(&format!("/people?page={page}"))?;
//!             let records = listing.data.into_iter().map(|p| {
//!                 CanonicalRecord::Practitioner(Practitioner {
//!                     nik: Some(p.nik),
//!                     full_name: Some(p.name),
//!                     source: SourceRef { system: "example".into(), id: p.id, updated_at: None },
//!                     ..healthforce_sdk::empty_practitioner()
//!                 })
//!             });
//!             Ok(Page {
//!                 records: records.collect(),
//!                 more: page < listing.total_pages,
//!                 checkpoint: Cursor { page: page + 1 },
//!             })
//!         })
//!     }
//! }
//!
//! healthforce_sdk::export_connector!(Example);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release`; the result in
//! `target/wasm32-wasip2/release/*.wasm` is the component the hub installs. Natively, in
//! `cargo test`, [`testing::FakeHost`] answers the host calls, so mappings and whole `sync`
//! calls are tested without the hub.
//!
//! Most registries list rows changed since a time, page by page: [`listing`] runs such a pull
//! with its cursor for you, and [`events`] handles their signed change events. See
//! `plugins/kki` and `plugins/sisdmk` (pull + webhooks) or `plugins/regnakes` (OAuth2 pull)
//! for real connectors.

pub mod bindings;
pub mod events;
pub mod http;
pub mod listing;
pub mod log;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

pub use bindings::healthforce::hub::types::{
    Account, CanonicalRecord, Education, EmitOutcome, Employment, Error, Event, Gender, Message, Observation,
    ObservationComponent, Practitioner, Registration, RejectedRow, SourceRef, SyncRequest, SyncSummary, Training,
    WebhookRequest, WebhookResponse,
};
/// The host interfaces; natively (in `cargo test`), a [`testing::FakeHost`] answers them.
#[cfg(target_arch = "wasm32")]
pub use bindings::healthforce::hub::{auth, records, secrets, state};
#[cfg(not(target_arch = "wasm32"))]
pub use testing::imports::{auth, records, secrets, state};

/// What a connector plugin does. Every method has a default that reports `unsupported`, so a
/// pull-only connector implements [`Connector::sync`] and nothing else.
pub trait Connector {
    /// Pull from the external system, emitting records page by page and saving the cursor
    /// after each page (see [`pull_pages`]).
    fn sync(request: SyncRequest) -> Result<SyncSummary, Error> {
        let _ = request;
        Err(Error::Unsupported("this connector does not pull (sync)".into()))
    }

    /// Handle inbound webhooks, oldest first, with one answer per request in the same order;
    /// the host has verified their signatures already. The host hands over what is queued
    /// at once, so emit the records of all of them in one [`records::emit`]
    /// ([`events::store_each`] does that for events carrying one record each). An error
    /// answer fails only its own request.
    fn handle_webhooks(requests: Vec<WebhookRequest>) -> Vec<Result<WebhookResponse, Error>> {
        requests
            .iter()
            .map(|_| Err(Error::Unsupported("this connector does not take webhooks".into())))
            .collect()
    }

    /// Handle a batch of MQTT messages.
    fn handle_messages(messages: Vec<Message>, config: String) -> Result<(), Error> {
        let _ = (messages, config);
        Err(Error::Unsupported("this connector does not take MQTT messages".into()))
    }

    /// Send on the hub's events (an outbound connector: `triggers = ["events"]`), a batch in
    /// outbox order. On an error the host hands the same batch again later, so sending must
    /// be safe to repeat (upsert by the event's or its subject's id). `unavailable` retries
    /// after a backoff; `unauthorized` also raises an alert on the connector.
    fn deliver(events: Vec<Event>, config: String) -> Result<(), Error> {
        let _ = (events, config);
        Err(Error::Unsupported(
            "this connector does not take the hub's events".into(),
        ))
    }
}

/// Adapts a [`Connector`] to the generated export trait; used by [`export_connector!`].
#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: Connector> bindings::Guest for Export<T> {
    fn sync(request: SyncRequest) -> Result<SyncSummary, Error> {
        T::sync(request)
    }

    fn handle_webhooks(requests: Vec<WebhookRequest>) -> Vec<Result<WebhookResponse, Error>> {
        T::handle_webhooks(requests)
    }

    fn handle_messages(messages: Vec<Message>, config: String) -> Result<(), Error> {
        T::handle_messages(messages, config)
    }

    fn deliver(events: Vec<Event>, config: String) -> Result<(), Error> {
        T::deliver(events, config)
    }
}

/// Exports a [`Connector`] implementation as the plugin's component exports. Use it once, at
/// the crate root of the plugin.
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        type __HubConnectorExport = $crate::Export<$connector>;
        $crate::bindings::export!(__HubConnectorExport with_types_in $crate::bindings);
    };
}

/// Parses the connector instance's JSON configuration into `T`; a mismatch is a `config` error
/// naming the problem.
pub fn config<T: DeserializeOwned>(json: &str) -> Result<T, Error> {
    serde_json::from_str(json).map_err(|e| Error::Config(format!("connector config: {e}")))
}

/// The cursor saved by the previous run, parsed as `C` (`None` on the first run).
pub fn cursor<C: DeserializeOwned>(request: &SyncRequest) -> Result<Option<C>, Error> {
    request
        .cursor
        .as_deref()
        .map(|c| {
            serde_json::from_str(c).map_err(|e| Error::Config(format!("stored cursor is unreadable ({e}); reset it")))
        })
        .transpose()
}

/// One page of a paginated pull.
pub struct Page<C> {
    /// The records of this page, in the canonical model.
    pub records: Vec<CanonicalRecord>,
    /// Where to resume if the run stops after this page; saved once the page is stored.
    pub checkpoint: C,
    /// Whether another page follows.
    pub more: bool,
}

/// Drives a paginated pull: fetch a page with `next`, queue its records ([`records::queue`]),
/// save its checkpoint as the cursor, and repeat while pages remain. The host stores each
/// page while the next is fetched, and keeps a checkpoint only once the pages before it are
/// stored, so a run that stops half-way resumes from the last stored page.
pub fn pull_pages<C: Serialize>(
    start: C,
    mut next: impl FnMut(&C) -> Result<Page<C>, Error>,
) -> Result<SyncSummary, Error> {
    let mut summary = SyncSummary {
        pages: 0,
        records_emitted: 0,
    };
    let mut cursor = start;
    loop {
        let page = next(&cursor)?;
        let count = page.records.len() as u32;
        if count > 0 {
            records::queue(&page.records)?;
        }
        let checkpoint = serde_json::to_string(&page.checkpoint)
            .map_err(|e| Error::InvalidInput(format!("cursor does not serialize: {e}")))?;
        state::save_cursor(&checkpoint);
        summary.pages += 1;
        summary.records_emitted += count;
        if !page.more {
            return Ok(summary);
        }
        cursor = page.checkpoint;
    }
}

/// `jenis_kelamin` as Indonesian registries write it: `L` (laki-laki) is male, `P`
/// (perempuan) female; anything else, or nothing, is unknown.
pub fn gender_from_code(code: Option<&str>) -> Gender {
    match code {
        Some("L") => Gender::Male,
        Some("P") => Gender::Female,
        _ => Gender::Unknown,
    }
}

/// A practitioner with every field empty, for struct-update syntax in mappings.
pub fn empty_practitioner() -> Practitioner {
    Practitioner {
        nik: None,
        str_number: None,
        full_name: None,
        birth_place: None,
        birth_date: None,
        gender: Gender::Unknown,
        profession: None,
        phone: None,
        email: None,
        registrations: Vec::new(),
        trainings: Vec::new(),
        employments: Vec::new(),
        educations: Vec::new(),
        source: SourceRef {
            system: String::new(),
            id: String::new(),
            updated_at: None,
        },
    }
}
