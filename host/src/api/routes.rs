//! Every route of the API in one table: method, path, the permission it needs, what it does
//! and the shapes it takes and returns. The router, the authorization checks and
//! `/openapi.json` are all built from this table, so none of them can miss a route.

use super::{
    AppState, accounts, alerts, api_keys, audit, connectors, events, identity, jobs, keys, metrics, observations,
    plugins, practitioners, rejects, runs, secrets, service, subscriptions, webhooks,
};
use crate::auth::Permission;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed.
    Public,
    /// An authenticated caller holding this permission.
    Needs(Permission),
    /// Prometheus: with `HUB_METRICS_TOKEN` as bearer token, or anyone when `[auth]
    /// metrics_public` is set; else no one.
    Scrape,
}

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

pub struct Route {
    pub method: Method,
    /// axum path syntax: `/api/v1/connectors/{id}`.
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub tag: &'static str,
    pub query: Option<SchemaFn>,
    /// Accepted request bodies by media type.
    pub bodies: Vec<(&'static str, SchemaFn)>,
    pub response: Option<SchemaFn>,
    /// The media type of the success answer.
    pub response_media: &'static str,
    pub status: u16,
    /// Largest request body, in bytes (`usize::MAX`: the handler enforces a configured one).
    pub max_body: usize,
    /// Error answers of this route besides those every authenticated route may give.
    pub errors: &'static [(u16, &'static str)],
    /// Path parameters with a pattern (the others are any text), as `(name, pattern)`.
    pub patterns: &'static [(&'static str, &'static str)],
    pub(super) handler: MethodRouter<AppState>,
}

/// Secret names follow the connector name rule; `hub.…` names are the hub's own and out of
/// reach (the pattern has no dot).
const SECRET_NAME: &[(&str, &str)] = &[("name", crate::manager::NAME_PATTERN)];

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

fn root_schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.root_schema_for::<T>()
}

impl Route {
    fn new<H, T>(method: Method, path: &'static str, access: Access, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("routes use standard methods");
        let tag = path
            .trim_start_matches("/api/v1/")
            .split('/')
            .next()
            .filter(|_| path.starts_with("/api/v1/"))
            .unwrap_or("service");
        Self {
            method,
            path,
            access,
            summary,
            tag,
            query: None,
            bodies: Vec::new(),
            response: None,
            response_media: "application/json",
            status: 200,
            max_body: super::body::DEFAULT_LIMIT,
            errors: &[],
            patterns: &[],
            handler: on(filter, handler),
        }
    }

    fn get<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: H,
    ) -> Self {
        Self::new(Method::GET, path, access, summary, handler)
    }

    fn post<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: H,
    ) -> Self {
        Self::new(Method::POST, path, access, summary, handler)
    }

    fn put<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: H,
    ) -> Self {
        Self::new(Method::PUT, path, access, summary, handler)
    }

    fn patch<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: H,
    ) -> Self {
        Self::new(Method::PATCH, path, access, summary, handler)
    }

    fn delete<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: H,
    ) -> Self {
        Self::new(Method::DELETE, path, access, summary, handler)
    }

    fn query<Q: JsonSchema>(mut self) -> Self {
        self.query = Some(root_schema::<Q>);
        self
    }

    fn json_body<B: JsonSchema>(mut self) -> Self {
        self.bodies.push(("application/json", schema::<B>));
        self
    }

    fn returns<R: JsonSchema>(mut self, status: u16) -> Self {
        self.response = Some(schema::<R>);
        self.status = status;
        self
    }

    /// A success answer that is text in `media`, not JSON.
    fn returns_text<R: JsonSchema>(mut self, media: &'static str) -> Self {
        self.response = Some(schema::<R>);
        self.response_media = media;
        self
    }

    fn upload_body<B: JsonSchema>(mut self) -> Self {
        self.bodies.push(("application/octet-stream", schema::<B>));
        self
    }

    /// Bodies up to `bytes` (the default limit is 2 MiB).
    fn body_limit(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    fn errors(mut self, errors: &'static [(u16, &'static str)]) -> Self {
        self.errors = errors;
        self
    }

    fn patterns(mut self, patterns: &'static [(&'static str, &'static str)]) -> Self {
        self.patterns = patterns;
        self
    }

    fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

/// A package upload: the `.hfpkg` file as the request body.
pub struct PackageUpload;

impl JsonSchema for PackageUpload {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PackageUpload".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({ "type": "string", "contentMediaType": "application/x-tar", "description": "a .hfpkg plugin package" })
    }
}

/// The Prometheus text exposition format (docs/operations.md lists the metrics).
pub struct MetricsText;

impl JsonSchema for MetricsText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MetricsText".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({ "type": "string", "description": "metrics in the Prometheus text format 0.0.4" })
    }
}

/// A webhook body: whatever the external system sends, signed as it is.
pub struct WebhookBody;

impl JsonSchema for WebhookBody {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WebhookBody".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({ "type": "string", "description": "the webhook body, as signed" })
    }
}

/// The template of the route a request matched, as this table's (or the console's)
/// `&'static str` (metrics label requests with it without allocating); `unmatched` for a
/// path no route has.
pub fn template(matched: Option<&axum::extract::MatchedPath>) -> &'static str {
    matched
        .and_then(|path| templates().get(path.as_str()).copied())
        .unwrap_or(UNMATCHED)
}

/// The template of a request no route matched.
pub(super) const UNMATCHED: &str = "unmatched";

/// Every route template: this table's, the console's and the FHIR server's.
pub(super) fn templates() -> &'static std::collections::HashSet<&'static str> {
    static TEMPLATES: std::sync::LazyLock<std::collections::HashSet<&'static str>> = std::sync::LazyLock::new(|| {
        table()
            .iter()
            .map(|route| route.path)
            .chain(crate::console::paths())
            .chain(crate::fhir::paths())
            .collect()
    });
    &TEMPLATES
}

/// The permission the route `method path` (a template of the table) needs; `None` for a
/// public route or a route the table does not have. The console shows a button only when
/// this says the caller may use it, so buttons follow the very checks the API makes.
pub fn permission_of(method: &Method, path: &str) -> Option<Permission> {
    static ACCESS: std::sync::LazyLock<Vec<(Method, &'static str, Access)>> =
        std::sync::LazyLock::new(|| table().into_iter().map(|r| (r.method, r.path, r.access)).collect());
    ACCESS
        .iter()
        .find(|(m, p, _)| m == method && *p == path)
        .and_then(|(_, _, access)| match access {
            Access::Needs(permission) => Some(*permission),
            Access::Public | Access::Scrape => None,
        })
}

/// The table.
pub fn table() -> Vec<Route> {
    use Access::{Needs, Public, Scrape};
    use Permission::{Admin, Integrate, Operate, PiiRead, Read};
    vec![
        Route::get("/healthz", Public, "Liveness: the process answers", service::healthz),
        Route::get("/readyz", Public, "Readiness: the database answers", service::readyz),
        Route::get("/openapi.json", Public, "This API as OpenAPI 3.1", service::openapi),
        Route::get("/metrics", Scrape, "Prometheus metrics (docs/operations.md), for the bearer token HUB_METRICS_TOKEN (or anyone, with [auth] metrics_public = true)", metrics::scrape)
            .errors(&[(401, "The request does not carry HUB_METRICS_TOKEN as `Authorization: Bearer`, or the hub has no metrics token and is not metrics_public")])
            .returns_text::<MetricsText>(crate::metrics::CONTENT_TYPE),
        Route::post("/webhooks/{id}", Public, "Inbound webhook for a connector, signed with Standard Webhooks v1 (webhook-id, webhook-timestamp, webhook-signature); 202 once stored, 200 for a repeated webhook-id, 401 for a bad signature or a timestamp over 5 minutes off", webhooks::receive)
            .upload_body::<WebhookBody>()
            // The handler enforces `[webhooks] max_body_bytes`, a setting of this hub.
            .body_limit(usize::MAX)
            .errors(&[
                (401, "The signature does not verify, a signature header is missing, the timestamp is over 5 minutes off, or the connector has no webhook secret yet; nothing was stored"),
                (404, "No such connector, or its plugin takes no webhooks"),
                (409, "The connector is disabled"),
                (500, "The hub failed; `x-request-id` identifies the request in the hub log"),
                (503, "The hub could not store the webhook now; send it again"),
            ])
            .returns::<webhooks::WebhookReceipt>(202),
        // Plugins
        Route::get("/api/v1/plugins", Needs(Read), "List installed plugin versions", plugins::list)
            .query::<super::PageQuery>()
            .returns::<super::Page<plugins::PluginView>>(200),
        Route::post(
            "/api/v1/plugins",
            Needs(Integrate),
            "Install a plugin: upload a signed .hfpkg (application/octet-stream) or name one in a configured registry (JSON {\"source\": \"name@version\"})",
            plugins::install,
        )
        .json_body::<plugins::InstallFromRegistry>()
        .upload_body::<PackageUpload>()
        .body_limit(hub_registry::package::MAX_COMPONENT as usize + 1024 * 1024)
        .returns::<plugins::PluginView>(201),
        // Connectors
        Route::get("/api/v1/connectors", Needs(Read), "List connectors with their health", connectors::list)
            .query::<super::PageQuery>()
            .returns::<super::Page<connectors::ConnectorView>>(200),
        Route::post("/api/v1/connectors", Needs(Integrate), "Create a connector instance", connectors::create)
            .json_body::<crate::manager::NewConnector>()
            .returns::<connectors::ConnectorView>(201),
        Route::get("/api/v1/connectors/{id}", Needs(Read), "A connector, its settings and health", connectors::get)
            .returns::<connectors::ConnectorView>(200),
        Route::patch("/api/v1/connectors/{id}", Needs(Integrate), "Change a connector's config, egress, concurrency or attempts", connectors::patch)
            .json_body::<crate::manager::ConnectorPatch>()
            .returns::<connectors::ConnectorView>(200),
        Route::delete("/api/v1/connectors/{id}", Needs(Admin), "Delete a connector (its stored records stay)", connectors::delete)
            .status(204),
        Route::post("/api/v1/connectors/{id}/enable", Needs(Operate), "Enable a connector", connectors::enable)
            .returns::<connectors::ConnectorView>(200),
        Route::post("/api/v1/connectors/{id}/disable", Needs(Operate), "Disable a connector", connectors::disable)
            .returns::<connectors::ConnectorView>(200),
        Route::post("/api/v1/connectors/{id}/run", Needs(Operate), "Start a run now", connectors::run)
            .returns::<crate::store::runs::RunRecord>(202),
        Route::post("/api/v1/connectors/{id}/state/reset", Needs(Operate), "Set where the next sync starts: a given cursor, or the beginning (a full resync that updates, never duplicates)", connectors::reset_cursor)
            .json_body::<crate::manager::CursorReset>()
            .returns::<crate::manager::CursorState>(200)
            .errors(&[(409, "A run of the connector is going")]),
        Route::post("/api/v1/connectors/{id}/upgrade", Needs(Integrate), "Move a connector to another installed version of its plugin", connectors::upgrade)
            .json_body::<connectors::UpgradeRequest>()
            .returns::<connectors::ConnectorView>(200),
        Route::post("/api/v1/connectors/{id}/rollback", Needs(Integrate), "Move a connector back to the version before its last upgrade", connectors::rollback)
            .returns::<connectors::ConnectorView>(200),
        Route::get("/api/v1/connectors/{id}/runs", Needs(Read), "Run history, newest first", runs::list)
            .query::<super::PageQuery>()
            .returns::<super::Page<crate::store::runs::RunRecord>>(200),
        Route::get("/api/v1/connectors/{id}/logs", Needs(Read), "The plugin's log lines and the host's events, newest first", connectors::logs)
            .query::<connectors::LogsQuery>()
            .returns::<super::Page<crate::store::logs::LogLine>>(200),
        Route::get("/api/v1/connectors/{id}/secrets", Needs(Read), "A connector's secret names and versions (never values)", secrets::list)
            .returns::<super::Page<crate::secrets::SecretInfo>>(200),
        Route::put("/api/v1/connectors/{id}/secrets/{name}", Needs(Integrate), "Set or rotate a connector secret", secrets::put)
            .patterns(SECRET_NAME)
            .json_body::<secrets::SecretValue>()
            .returns::<crate::secrets::SecretInfo>(200),
        Route::delete("/api/v1/connectors/{id}/secrets/{name}", Needs(Integrate), "Delete a connector secret", secrets::delete)
            .patterns(SECRET_NAME)
            .status(204),
        Route::post("/api/v1/connectors/{id}/webhook-secret", Needs(Integrate), "Create or rotate the connector's Standard Webhooks secret; the new whsec_ secret is in the answer once, the previous one verifies for 24 h more", connectors::rotate_webhook_secret)
            .returns::<crate::webhooks::RotatedWebhookSecret>(200),
        Route::get("/api/v1/runs/{id}", Needs(Read), "One run", runs::get)
            .returns::<crate::store::runs::RunRecord>(200),
        Route::get("/api/v1/jobs", Needs(Read), "Durable jobs (syncs, webhooks, MQTT batches, alert deliveries, event batches for outbound connectors), newest first; ?status=dead lists the dead-lettered", jobs::list)
            .query::<jobs::ListQuery>()
            .returns::<super::Page<crate::store::jobs::JobRecord>>(200),
        Route::get("/api/v1/jobs/{id}", Needs(Read), "One job", jobs::get)
            .returns::<crate::store::jobs::JobRecord>(200),
        Route::post("/api/v1/jobs/{id}/retry", Needs(Operate), "Queue a dead job again with a fresh set of attempts", jobs::retry)
            .returns::<crate::store::jobs::JobRecord>(202),
        Route::get("/api/v1/rejects", Needs(Read), "Rejected records with their reasons", rejects::list)
            .query::<rejects::ListQuery>()
            .returns::<super::Page<crate::store::rejects::RejectRecord>>(200),
        Route::post("/api/v1/rejects/{id}/reprocess", Needs(Operate), "Run a rejected row through the pipeline again: stored if what made it fail has changed, else rejected again with the current reason", rejects::reprocess)
            .returns::<crate::manager::Reprocessed>(200),
        Route::get("/api/v1/events", Needs(Read), "Events: every change the hub made, oldest first; ids, never identifying values", events::list)
            .query::<events::ListQuery>()
            .returns::<super::Page<crate::events::Event>>(200),
        Route::get("/api/v1/subscriptions", Needs(Read), "Webhook subscriptions to the hub's events (never their secrets)", subscriptions::list)
            .query::<super::PageQuery>()
            .returns::<super::Page<crate::events::subscriptions::SubscriptionView>>(200),
        Route::post("/api/v1/subscriptions", Needs(Integrate), "Subscribe a URL to events; the whsec_ signing secret is in the answer once", subscriptions::create)
            .json_body::<subscriptions::NewSubscription>()
            .returns::<subscriptions::CreatedSubscription>(201)
            .errors(&[(422, "The URL, an event type or the description is refused: the detail says which")]),
        Route::get("/api/v1/subscriptions/{id}", Needs(Read), "A subscription and where its delivery stands", subscriptions::get)
            .returns::<crate::events::subscriptions::SubscriptionView>(200),
        Route::delete("/api/v1/subscriptions/{id}", Needs(Integrate), "Delete a subscription and its delivery attempts", subscriptions::delete)
            .status(204),
        Route::post("/api/v1/subscriptions/{id}/secret", Needs(Integrate), "Rotate the signing secret: the new one is in the answer once; the old one also signs for 24 h more", subscriptions::rotate_secret)
            .returns::<subscriptions::RotatedSecret>(200)
            .errors(&[(409, "Another rotation came first")]),
        Route::post("/api/v1/subscriptions/{id}/pause", Needs(Operate), "Stop delivering until resumed; events wait in the outbox", subscriptions::pause)
            .returns::<crate::events::subscriptions::SubscriptionView>(200),
        Route::post("/api/v1/subscriptions/{id}/resume", Needs(Operate), "Deliver again (a disabled subscription too), at once, from where it stopped", subscriptions::resume)
            .returns::<crate::events::subscriptions::SubscriptionView>(200),
        Route::post("/api/v1/subscriptions/{id}/replay", Needs(Operate), "Deliver again every event from a time or an event id on", subscriptions::replay)
            .json_body::<subscriptions::Replay>()
            .returns::<crate::events::subscriptions::SubscriptionView>(200)
            .errors(&[(422, "Neither or both of since and event_id, or an unknown event")]),
        Route::get("/api/v1/subscriptions/{id}/attempts", Needs(Read), "Every try to deliver an event to the subscription, newest first", subscriptions::attempts)
            .query::<super::PageQuery>()
            .returns::<super::Page<crate::store::subscriptions::DeliveryAttempt>>(200),
        Route::get("/api/v1/alerts", Needs(Read), "Alerts: refused credentials, reject rates over 20 %, webhook subscriptions the hub disabled", alerts::list)
            .query::<alerts::ListQuery>()
            .returns::<super::Page<crate::store::alerts::AlertRecord>>(200),
        Route::get("/api/v1/observations", Needs(Read), "Device observations (vital signs, LOINC/UCUM), newest first; subjects stay sealed", observations::list)
            .query::<observations::ListQuery>()
            .returns::<super::Page<crate::store::observations::ObservationRecord>>(200),
        Route::get("/api/v1/practitioners", Needs(PiiRead), "Decrypted practitioners by STR or NIK (audited)", practitioners::list)
            .query::<practitioners::ListQuery>()
            .returns::<super::Page<practitioners::PractitionerView>>(200),
        Route::get("/api/v1/practitioners/{id}", Needs(PiiRead), "One practitioner, decrypted, with per-field provenance and sources (audited)", practitioners::get)
            .returns::<practitioners::PractitionerView>(200)
            .errors(&[(404, "No such practitioner")]),
        Route::get("/api/v1/identity/candidates", Needs(Read), "The identity review queue: records held because they are probably, not surely, a stored person, beside that person field by field (values with pii:read only, audited)", identity::list)
            .query::<identity::ListQuery>()
            .returns::<super::Page<crate::manager::review::CandidateView>>(200),
        Route::post("/api/v1/identity/candidates/{id}/merge", Needs(Operate), "Decide a held record is its candidate person's: it is merged into them, and so is every later version of it", identity::merge)
            .returns::<crate::manager::Reprocessed>(200)
            .errors(&[(404, "No such candidate"), (409, "The candidate is already decided")]),
        Route::post("/api/v1/identity/candidates/{id}/keep-apart", Needs(Operate), "Decide a held record is not its candidate person's: it goes on as if they did not match, and is never proposed against them again", identity::keep_apart)
            .returns::<crate::manager::Reprocessed>(200)
            .errors(&[(404, "No such candidate"), (409, "The candidate is already decided")]),
        Route::post("/api/v1/practitioners/{id}/split", Needs(Operate), "Take one source's record back out of a practitioner into a person of its own, for good; the practitioner is merged again from their other sources", identity::split)
            .json_body::<identity::SplitRequest>()
            .returns::<crate::manager::review::Split>(200)
            .errors(&[(404, "No such practitioner, or no record of that system"), (409, "The record is the practitioner's only one, or carries their own NIK")]),
        Route::get("/api/v1/accounts", Needs(PiiRead), "SSO accounts, decrypted, with their linked practitioner (audited)", accounts::list)
            .query::<accounts::ListQuery>()
            .returns::<super::Page<accounts::AccountView>>(200),
        // Access and audit
        Route::get("/api/v1/api-keys", Needs(Admin), "List API keys (never the keys themselves)", api_keys::list)
            .query::<super::PageQuery>()
            .returns::<super::Page<crate::store::api_keys::ApiKeyRecord>>(200),
        Route::post("/api/v1/api-keys", Needs(Admin), "Create an API key; the key is in the answer once", api_keys::create)
            .json_body::<api_keys::NewApiKey>()
            .returns::<api_keys::CreatedApiKey>(201),
        Route::delete("/api/v1/api-keys/{id}", Needs(Admin), "Revoke an API key", api_keys::revoke)
            .status(204),
        Route::get("/api/v1/audit", Needs(Admin), "The audit trail, oldest first", audit::list)
            .query::<audit::ListQuery>()
            .returns::<super::Page<crate::store::audit::AuditRow>>(200),
        Route::get("/api/v1/audit/verify", Needs(Admin), "Check the whole audit chain: every entry's MAC, the numbering and the head", audit::verify)
            .returns::<audit::ChainStatus>(200)
            .errors(&[(409, "An entry was edited or deleted, or the log was cut off: the detail names the first")]),
        // Keys
        Route::get("/api/v1/keys", Needs(Admin), "Data key versions, what wraps them, and the last rotation's progress", keys::status)
            .returns::<crate::manager::keys::KeysStatus>(200),
        Route::post("/api/v1/keys/rotate", Needs(Admin), "Create a new data key version and re-encrypt every stored row under it in the background", keys::rotate)
            .returns::<crate::manager::keys::KeysStatus>(202),
    ]
}
