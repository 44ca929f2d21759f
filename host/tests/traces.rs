//! Traces as an OpenTelemetry collector receives them: `hub serve` with the standard
//! `OTEL_*` variables exports by OTLP, over HTTP/protobuf and over gRPC, to a receiver here
//! that decodes the real protobuf. A webhook's trace runs from its request through its job
//! and the plugin call to the database write; a run started with a caller's `traceparent`
//! continues that trace through the queue, the plugin call and each request to the external
//! system, and its stored trace id is the OTLP one. The log lines written inside those spans
//! name them.

#[path = "common/process.rs"]
mod process;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use process::{HubProcess, api, hub_config};
use prost::Message;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A span as exported, ids in hex.
#[derive(Clone, Debug)]
struct Span {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    attributes: Vec<(String, String)>,
}

impl Span {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

impl Collector {
    fn take(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.0.lock().unwrap();
        for scope in request.resource_spans.into_iter().flat_map(|r| r.scope_spans) {
            for span in scope.spans {
                let attributes = span
                    .attributes
                    .into_iter()
                    .map(|kv| {
                        let value = match kv.value.and_then(|v| v.value) {
                            Some(AnyValue::StringValue(s)) => s,
                            Some(AnyValue::IntValue(i)) => i.to_string(),
                            Some(AnyValue::BoolValue(b)) => b.to_string(),
                            Some(AnyValue::DoubleValue(d)) => d.to_string(),
                            other => format!("{other:?}"),
                        };
                        (kv.key, value)
                    })
                    .collect();
                spans.push(Span {
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent: hex::encode(&span.parent_span_id),
                    name: span.name,
                    attributes,
                });
            }
        }
    }

    fn spans(&self) -> Vec<Span> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until the trace `trace_id` holds a span of each of `names` (a span is exported
    /// when it ends, the outer ones last); the trace's spans.
    async fn trace_with(&self, trace_id: &str, names: &[&str]) -> Vec<Span> {
        for _ in 0..300 {
            let trace: Vec<Span> = self.spans().into_iter().filter(|s| s.trace_id == trace_id).collect();
            if names.iter().all(|name| !named(&trace, name).is_empty()) {
                return trace;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let received: Vec<(String, String)> = self.spans().into_iter().map(|s| (s.trace_id, s.name)).collect();
        panic!("trace {trace_id} lacks one of {names:?} after 30 s; received {received:?}");
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.take(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/HTTP receiver (`POST /v1/traces`, protobuf); its base URL.
async fn http_receiver(collector: Collector) -> String {
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: bytes::Bytes| {
            let collector = collector.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                collector.take(request);
                (
                    [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    let running = serve(router).await;
    let url = running.base_url();
    std::mem::forget(running);
    url
}

/// An OTLP/gRPC receiver; its URL.
async fn grpc_receiver(collector: Collector) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    url
}

/// `hub serve` exporting to `endpoint` by `protocol`, JSON logs in `log`.
async fn traced_hub(dir: &std::path::Path, endpoint: &str, protocol: &str) -> (HubProcess, process::Api) {
    let (config, url) = hub_config(dir, None, "");
    let log = dir.join("hub.log");
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("HUB_LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
    ];
    let hub = HubProcess::start_with(&config, &url, &env, Some(&log)).await;
    (hub, api(&url))
}

/// `router` on a free local port.
async fn serve(router: axum::Router) -> hub_sim::Running {
    hub_sim::serve(router, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// A RegNakes simulator of `people` and an enabled connector on it: the simulator, its
/// server and the connector's id.
async fn regnakes(api: &process::Api, people: usize) -> (hub_sim::RegnakesSim, hub_sim::Running, String) {
    let sim = hub_sim::RegnakesSim::new(hub_sim::RegnakesConfig {
        people,
        ..Default::default()
    });
    let server = serve(sim.router()).await;
    let id = regnakes_connector(api, &sim, &server.base_url()).await;
    (sim, server, id)
}

async fn regnakes_connector(api: &process::Api, sim: &hub_sim::RegnakesSim, url: &str) -> String {
    let config = sim.config();
    let created = api
        .create(
            "/api/v1/connectors",
            json!({
                "name": "regnakes", "plugin": "regnakes", "enabled": true,
                "config": { "base_url": url, "per_page": 50 },
                "egress": [url.trim_start_matches("http://")],
                "credentials": { "regnakes": {
                    "token_url": format!("{url}/oauth/token"),
                    "client_id": config.client_id, "client_secret": "client_secret",
                }},
                "secrets": { "client_secret": config.client_secret },
            }),
        )
        .await;
    created["id"].as_str().unwrap().to_string()
}

/// Starts a run of `connector` as a caller inside trace `trace_id` (its span `parent`); the
/// finished run.
async fn run_in_trace(api: &process::Api, connector: &str, trace_id: &str, parent: &str) -> Value {
    let started = api
        .http
        .post(format!("{}/api/v1/connectors/{connector}/run", api.url))
        .bearer_auth(process::ADMIN_KEY)
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let run: Value = started.json().await.unwrap();
    let path = format!("/api/v1/runs/{}", run["id"].as_str().unwrap());
    loop {
        let (_, run) = api.call(reqwest::Method::GET, &path, None).await;
        if !run["finished_at"].is_null() {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The spans of `trace` named `name`; an HTTP span is named as OpenTelemetry names them
/// (`POST /route` served, `GET` sent), so `request` and `http.request` find those.
fn named<'a>(trace: &'a [Span], name: &str) -> Vec<&'a Span> {
    trace
        .iter()
        .filter(|s| match name {
            "request" => s.attribute("http.route").is_some(),
            "http.request" => s.attribute("server.address").is_some(),
            name => s.name == name,
        })
        .collect()
}

/// The one span of `trace` named `name`, child of `parent`.
fn child<'a>(trace: &'a [Span], name: &str, parent: &Span) -> &'a Span {
    let children: Vec<&Span> = named(trace, name)
        .into_iter()
        .filter(|s| s.parent == parent.span_id)
        .collect();
    assert!(
        !children.is_empty(),
        "no {name:?} under {:?} in {trace:#?}",
        parent.name
    );
    children[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_and_a_run_each_make_one_connected_trace_exported_by_otlp_http() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::default();
    let endpoint = http_receiver(collector.clone()).await;
    let (_hub, api) = traced_hub(dir.path(), &endpoint, "http/protobuf").await;

    // A run, started by a caller inside its own trace.
    let (registry, registry_server, connector) = regnakes(&api, 120).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let run = run_in_trace(&api, &connector, trace_id, caller_span).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["trace_id"], trace_id,
        "the run's stored trace id is the OTLP trace id"
    );

    let stages = [
        "pipeline.validate",
        "pipeline.store",
        "pipeline.match",
        "pipeline.merge",
        "db.write",
    ];
    let hops = ["request", "run.queue", "job", "plugin.call", "http.request"];
    let trace = collector.trace_with(trace_id, &[&hops[..], &stages[..]].concat()).await;
    let request = named(&trace, "request")
        .into_iter()
        .find(|s| s.parent == caller_span)
        .unwrap_or_else(|| panic!("the API request continues the caller's span: {trace:#?}"));
    assert_eq!(request.attribute("http.route"), Some("/api/v1/connectors/{id}/run"));
    assert_eq!(request.attribute("http.response.status_code"), Some("202"));
    let queued = child(&trace, "run.queue", request);
    let job = child(&trace, "job", queued);
    assert_eq!(job.attribute("run"), run["id"].as_str());
    let call = child(&trace, "plugin.call", job);
    assert_eq!(call.attribute("plugin"), Some("regnakes"));
    let outbound = child(&trace, "http.request", call);
    let sim_host = registry_server.addr.ip().to_string();
    assert_eq!(outbound.attribute("server.address"), Some(sim_host.as_str()));
    assert_eq!(outbound.attribute("http.response.status_code"), Some("200"));
    let (traceparent, _) = registry.last_trace_headers();
    let traceparent = traceparent.expect("the simulator got a traceparent");
    assert!(traceparent.starts_with(&format!("00-{trace_id}-")), "{traceparent}");
    let sent_span = &traceparent[36..52];
    assert!(
        named(&trace, "http.request").iter().any(|s| s.span_id == sent_span),
        "the traceparent the external system got names an exported request span"
    );
    let store = child(&trace, "pipeline.store", call);
    child(&trace, "pipeline.validate", store);
    child(&trace, "pipeline.match", store);
    child(&trace, "pipeline.merge", store);
    child(&trace, "db.write", store);

    // A webhook: its request span is the root of a trace through its job to the database.
    let kki = hub_sim::KkiSim::new(hub_sim::KkiConfig {
        people: 10,
        ..Default::default()
    });
    let kki_server = serve(kki.router()).await;
    let kki_url = kki_server.base_url();
    let kki_connector = api
        .create(
            "/api/v1/connectors",
            json!({
                "name": "kki", "plugin": "kki", "enabled": true,
                "config": { "base_url": kki_url, "per_page": 50 },
                "egress": [kki_url.trim_start_matches("http://")],
                "secrets": { "api-token": kki.config().api_token },
            }),
        )
        .await;
    let kki_id = kki_connector["id"].as_str().unwrap();
    let secret = api
        .create(&format!("/api/v1/connectors/{kki_id}/webhook-secret"), json!({}))
        .await;
    kki.subscribe(
        &format!("{}/webhooks/{kki_id}", api.url),
        secret["secret"].as_str().unwrap(),
    )
    .unwrap();
    let delivery = kki.revoke(2).await.unwrap();
    assert_eq!(delivery.status, 202, "{delivery:?}");
    let webhook_job = serde_json::from_str::<Value>(&delivery.body).unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let webhook_request = loop {
        let found = collector
            .spans()
            .into_iter()
            .find(|s| s.attribute("http.route") == Some("/webhooks/{id}"));
        if let Some(found) = found {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(webhook_request.name, "POST /webhooks/{id}");
    assert!(
        webhook_request.parent.is_empty(),
        "the sender sent no traceparent: a new trace"
    );
    let trace = collector
        .trace_with(&webhook_request.trace_id, &["job", "plugin.call", "db.write"])
        .await;
    let job = child(&trace, "job", &webhook_request);
    assert_eq!(job.attribute("job.kind"), Some("webhook"));
    let call = child(&trace, "plugin.call", job);
    assert_eq!(call.attribute("export"), Some("handle_webhooks"));
    assert!(!named(&trace, "db.write").is_empty());
    let (_, settled) = api
        .call(reqwest::Method::GET, &format!("/api/v1/jobs/{webhook_job}"), None)
        .await;
    assert_eq!(settled["status"], "succeeded", "{settled}");

    // Log lines written inside the run's spans name its trace.
    let log = std::fs::read_to_string(dir.path().join("hub.log")).unwrap();
    let finished: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("sync finished"))
        })
        .collect();
    assert!(!finished.is_empty(), "the run logged its end:\n{log}");
    assert_eq!(finished[0]["trace_id"], trace_id, "{}", finished[0]);
    let span_id = finished[0]["span_id"].as_str().unwrap();
    assert!(
        trace
            .iter()
            .chain(collector.spans().iter())
            .any(|s| s.span_id == span_id),
        "the log line names an exported span"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_exported_over_otlp_grpc_with_its_stored_trace_id() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::default();
    let endpoint = grpc_receiver(collector.clone()).await;
    let (_hub, api) = traced_hub(dir.path(), &endpoint, "grpc").await;
    let (_sim, _server, connector) = regnakes(&api, 30).await;
    let run = api.run_to_end(&connector).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let trace_id = run["trace_id"].as_str().unwrap();
    let trace = collector
        .trace_with(trace_id, &["job", "plugin.call", "http.request"])
        .await;
    let job = named(&trace, "job")[0];
    assert_eq!(job.attribute("connector"), Some("regnakes"));
    child(&trace, "plugin.call", job);
}
