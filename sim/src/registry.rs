//! What the token-authenticated registry simulators (KKI, SISDMK) share: rows about people of
//! the shared generator, an incremental paged listing behind an API token, faults, and signed
//! change events sent to a subscriber. Each simulator supplies its row type.

use crate::events::{Delivery, EventSender, paged, unauthorized};
use crate::faults::{self, FaultState, Faults};
use crate::people::Person;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};

/// One row of a registry: a person as that registry records them.
pub trait RegistryRow: Send + Sync + 'static {
    fn person(&self) -> &Person;
    fn updated_at(&self) -> DateTime<Utc>;
    fn set_updated_at(&mut self, at: DateTime<Utc>);
    /// The row in the registry's own JSON.
    fn to_json(&self) -> impl Serialize + '_;
}

/// How the API token is presented.
#[derive(Clone, Copy, Debug)]
pub enum TokenHeader {
    /// `x-api-key: <token>`
    ApiKey,
    /// `authorization: Bearer <token>`
    Bearer,
}

struct Inner<R> {
    rows: RwLock<Vec<R>>,
    header: TokenHeader,
    token: String,
    faults: Arc<FaultState>,
    events: EventSender,
}

/// A registry's rows and controls; cheap to clone.
pub struct Registry<R>(Arc<Inner<R>>);

impl<R> Clone for Registry<R> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<R: RegistryRow> Registry<R> {
    pub fn new(rows: Vec<R>, header: TokenHeader, token: &str) -> Self {
        Self(Arc::new(Inner {
            rows: RwLock::new(rows),
            header,
            token: token.to_string(),
            faults: Arc::default(),
            events: EventSender::default(),
        }))
    }

    /// `GET <path>` (the listing: `updated_since`, `page`, `per_page`) and `/_sim/faults`.
    pub fn router(&self, path: &str) -> Router {
        Router::new()
            .route(path, get(list::<R>))
            .with_state(self.clone())
            .merge(faults::router(self.0.faults.clone()))
    }

    pub fn set_faults(&self, faults: Faults) {
        self.0.faults.set(faults);
    }

    pub fn total(&self) -> usize {
        self.0.rows.read().unwrap().len()
    }

    /// The person behind row `index`.
    pub fn person(&self, index: usize) -> Person {
        self.0.rows.read().unwrap()[index].person().clone()
    }

    /// Reads row `index`.
    pub fn read<T>(&self, index: usize, read: impl FnOnce(&R) -> T) -> T {
        read(&self.0.rows.read().unwrap()[index])
    }

    /// Row `index` in the registry's JSON, as a tree to edit (tests and benches forge events
    /// from it).
    pub fn json(&self, index: usize) -> serde_json::Value {
        self.read(index, |row| {
            serde_json::to_value(row.to_json()).expect("a row serializes")
        })
    }

    /// Sends events to `url`, signed with `secret` (`whsec_…`, as the hub returned it).
    pub fn subscribe(&self, url: &str, secret: &str) -> anyhow::Result<()> {
        self.0.events.subscribe(url, secret)
    }

    /// The event sender, to repeat a delivery or sign one at another time.
    pub fn events(&self) -> &EventSender {
        &self.0.events
    }

    /// Edits row `index`, marks it changed now, and sends event `kind` carrying it.
    pub async fn change(&self, index: usize, kind: &str, edit: impl FnOnce(&mut R)) -> anyhow::Result<Delivery> {
        let row = {
            let mut rows = self.0.rows.write().unwrap();
            let row = rows.get_mut(index).ok_or_else(|| anyhow::anyhow!("no row {index}"))?;
            edit(row);
            row.set_updated_at(Utc::now().trunc_subsecs(6));
            serde_json::to_value(row.to_json())?
        };
        self.0.events.send(kind, row).await
    }
}

#[derive(Deserialize)]
struct ListQuery {
    updated_since: Option<DateTime<Utc>>,
    page: Option<usize>,
    per_page: Option<usize>,
}

async fn list<R: RegistryRow>(
    State(registry): State<Registry<R>>,
    headers: HeaderMap,
    query: Query<ListQuery>,
) -> Response {
    let inner = &registry.0;
    if let Some(failed) = inner.faults.injected_failure().await {
        return failed;
    }
    let denied = match inner.header {
        TokenHeader::ApiKey => unauthorized(&headers, "x-api-key", &inner.token),
        TokenHeader::Bearer => unauthorized(&headers, "authorization", &format!("Bearer {}", inner.token)),
    };
    if let Some(denied) = denied {
        return denied;
    }
    let rows = inner.rows.read().unwrap();
    let mut matching: Vec<&R> = rows
        .iter()
        .filter(|r| query.updated_since.is_none_or(|since| r.updated_at() > since))
        .collect();
    matching.sort_by_key(|r| (r.updated_at(), r.person().index));
    paged(&matching, query.page, query.per_page, |r| r.to_json()).into_response()
}
