//! Prometheus metrics, served at `GET /metrics` in the text format (0.0.4).
//!
//! One registry per process ([`metrics`]): the counters and histograms below are moved where
//! things happen (a run ends, a batch is stored, a webhook is answered); the gauges of
//! `scrape.rs` are read from the database when Prometheus asks, so they hold across restarts
//! and across the hubs sharing a database. docs/operations.md lists every metric; a test
//! holds it to [`Metrics::render`].
//!
//! Labels are bounded: connector and plugin names (an operator creates them), route
//! templates, kinds and outcomes from fixed lists — never ids, NIKs or URLs.

pub mod scrape;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// A fractional gauge (timestamps, ratios).
pub type FloatGauge = Gauge<f64, AtomicU64>;

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorLabel {
    pub connector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    connector: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordLabels {
    connector: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginCallLabels {
    plugin: String,
    export: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrapLabels {
    plugin: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VaultLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// What the pipeline makes of a record, as `hub_records_total` labels it.
pub const RECORD_OUTCOMES: [&str; 5] = ["created", "updated", "unchanged", "rejected", "held"];

/// Where the hub delivers its events, as `hub_events_delivered_total` labels it.
pub const EVENT_SINKS: [&str; 2] = ["webhooks", "rabbitmq"];

/// How `/webhooks/{id}` answers, as `hub_webhooks_received_total` labels it.
pub const WEBHOOK_RESULTS: [&str; 8] = [
    "queued",
    "duplicate",
    "bad_signature",
    "not_found",
    "disabled",
    "too_large",
    "unavailable",
    "failed",
];

/// Seconds, for what answers while the caller waits (API requests, webhook accepts).
const REQUEST_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Seconds, for a job's attempt or a plugin call: a webhook takes milliseconds, a sync
/// page minutes.
const WORK_BUCKETS: [f64; 11] = [0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0];
/// Seconds, for a whole run: seconds for a delta, an hour for a full sync of 100,000 people.
const RUN_BUCKETS: [f64; 10] = [1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0];
/// Seconds to instantiate a pre-linked component: tens of microseconds with the pooling
/// allocator (BENCHMARKS.md, runtime), milliseconds when memory is short.
const INSTANTIATE_BUCKETS: [f64; 8] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05, 0.25];
/// The attempt a job ended on.
const ATTEMPT_BUCKETS: [f64; 6] = [1.0, 2.0, 3.0, 5.0, 8.0, 13.0];

/// Every metric of the hub, by area.
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    run_duration: Histograms<ConnectorLabel>,
    records: Family<RecordLabels, Counter>,
    jobs_finished: Family<JobLabels, Counter>,
    job_duration: Histograms<KindLabel>,
    job_attempts: Histograms<KindLabel>,
    webhooks: Family<WebhookLabels, Counter>,
    webhook_accept: Histogram,
    mqtt_received: Family<ConnectorLabel, Counter>,
    mqtt_acked: Family<ConnectorLabel, Counter>,
    mqtt_connected: Family<ConnectorLabel, Gauge>,
    events_delivered: Family<SinkLabel, Counter>,
    sink_connected: Family<SinkLabel, Gauge>,
    instantiate: Histograms<PluginLabel>,
    plugin_calls: Histograms<PluginCallLabels>,
    traps: Family<TrapLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histograms<RouteLabels>,
    vault_errors: Family<VaultLabels, Counter>,
    /// Read from the database at each scrape (`scrape.rs`).
    pub(crate) state: scrape::Gauges,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("hub");
        registry.register(
            "build",
            "The hub's version (value 1)",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        let metrics = Self {
            runs: Family::default(),
            run_duration: Family::new_with_constructor(|| Histogram::new(RUN_BUCKETS)),
            records: Family::default(),
            jobs_finished: Family::default(),
            job_duration: Family::new_with_constructor(|| Histogram::new(WORK_BUCKETS)),
            job_attempts: Family::new_with_constructor(|| Histogram::new(ATTEMPT_BUCKETS)),
            webhooks: Family::default(),
            webhook_accept: Histogram::new(REQUEST_BUCKETS),
            mqtt_received: Family::default(),
            mqtt_acked: Family::default(),
            mqtt_connected: Family::default(),
            events_delivered: Family::default(),
            sink_connected: Family::default(),
            instantiate: Family::new_with_constructor(|| Histogram::new(INSTANTIATE_BUCKETS)),
            plugin_calls: Family::new_with_constructor(|| Histogram::new(WORK_BUCKETS)),
            traps: Family::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(|| Histogram::new(REQUEST_BUCKETS)),
            vault_errors: Family::default(),
            state: scrape::Gauges::default(),
            registry,
        };
        for result in WEBHOOK_RESULTS {
            metrics.webhooks.get_or_create(&WebhookLabels { result }).inc_by(0);
        }
        for sink in EVENT_SINKS {
            metrics.events_delivered.get_or_create(&SinkLabel { sink }).inc_by(0);
        }
        metrics.register()
    }

    fn register(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "runs",
            "Runs finished, by connector and status (succeeded, failed)",
            self.runs.clone(),
        );
        r.register_with_unit(
            "run_duration",
            "Time from a run's first attempt to its end",
            Unit::Seconds,
            self.run_duration.clone(),
        );
        r.register(
            "records",
            "Records a connector emitted, by what the pipeline made of them (created, updated, unchanged, rejected, held)",
            self.records.clone(),
        );
        r.register(
            "jobs_finished",
            "Job attempts ended, by kind and outcome (succeeded, retried, dead)",
            self.jobs_finished.clone(),
        );
        r.register_with_unit(
            "job_duration",
            "Time a group of job attempts of one kind took, run together (events share one plugin call)",
            Unit::Seconds,
            self.job_duration.clone(),
        );
        r.register(
            "job_attempts",
            "The attempt a job ended on (succeeded or dead)",
            self.job_attempts.clone(),
        );
        r.register(
            "webhooks_received",
            "Inbound webhooks by answer (queued, duplicate, bad_signature, not_found, disabled, too_large, unavailable, failed)",
            self.webhooks.clone(),
        );
        r.register_with_unit(
            "webhook_accept_duration",
            "Time from a webhook's last byte to its answer: verify, seal, commit",
            Unit::Seconds,
            self.webhook_accept.clone(),
        );
        r.register(
            "mqtt_messages_received",
            "MQTT messages received, by connector",
            self.mqtt_received.clone(),
        );
        r.register(
            "mqtt_messages_acked",
            "MQTT messages acknowledged to the broker once stored, by connector",
            self.mqtt_acked.clone(),
        );
        r.register(
            "mqtt_connected",
            "The connector's MQTT connections that are up (0: it receives nothing)",
            self.mqtt_connected.clone(),
        );
        r.register(
            "events_delivered",
            "Events delivered, by sink (webhooks: accepted by a subscriber; rabbitmq: confirmed by the broker)",
            self.events_delivered.clone(),
        );
        r.register(
            "events_sink_connected",
            "Whether this hub is connected to the sink (rabbitmq)",
            self.sink_connected.clone(),
        );
        r.register_with_unit(
            "plugin_instantiate_duration",
            "Time to instantiate a plugin for a job",
            Unit::Seconds,
            self.instantiate.clone(),
        );
        r.register_with_unit(
            "plugin_call_duration",
            "Time of a call into a plugin, by plugin and export (sync, handle_webhooks, handle_messages, deliver)",
            Unit::Seconds,
            self.plugin_calls.clone(),
        );
        r.register(
            "plugin_traps",
            "What the sandbox stopped or refused, by plugin and reason: calls stopped (deadline, cpu, memory, quota, trap, instantiate) and requests to hosts off the allow-list (egress_denied)",
            self.traps.clone(),
        );
        r.register(
            "http_requests",
            "API requests by method, route template and status",
            self.http_requests.clone(),
        );
        r.register_with_unit(
            "http_request_duration",
            "API request latency by method and route template",
            Unit::Seconds,
            self.http_duration.clone(),
        );
        r.register(
            "vault_errors",
            "Vault/OpenBao calls that failed, by operation (read, write, list, delete, encrypt, decrypt)",
            self.vault_errors.clone(),
        );
        self.state.register(r);
        self
    }

    /// The text Prometheus scrapes; the gauges are as last read ([`scrape::refresh`]).
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(64 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }

    /// Shows `connector`'s run and record counters at 0 before anything happens to them:
    /// Prometheus sees a counter's first increase only from a sample before it, and a
    /// reject ratio needs both of its series (called for every connector at each scrape).
    pub fn track_connector(&self, connector: &str) {
        for status in ["succeeded", "failed"] {
            self.runs
                .get_or_create(&RunLabels {
                    connector: connector.into(),
                    status,
                })
                .inc_by(0);
        }
        for outcome in RECORD_OUTCOMES {
            self.records
                .get_or_create(&RecordLabels {
                    connector: connector.into(),
                    outcome,
                })
                .inc_by(0);
        }
    }

    pub fn run_finished(&self, connector: &str, succeeded: bool, took: Option<Duration>) {
        let status = if succeeded { "succeeded" } else { "failed" };
        self.runs
            .get_or_create(&RunLabels {
                connector: connector.into(),
                status,
            })
            .inc();
        if let Some(took) = took {
            self.run_duration
                .get_or_create(&ConnectorLabel {
                    connector: connector.into(),
                })
                .observe(took.as_secs_f64());
        }
    }

    /// A stored batch's records by outcome, in the order of [`RECORD_OUTCOMES`].
    pub fn records(&self, connector: &str, counts: [u64; 5]) {
        let counts = RECORD_OUTCOMES.into_iter().zip(counts);
        for (outcome, n) in counts {
            if n > 0 {
                self.records
                    .get_or_create(&RecordLabels {
                        connector: connector.into(),
                        outcome,
                    })
                    .inc_by(n);
            }
        }
    }

    /// Jobs of one kind run together (one plugin call for events) took `took`.
    pub fn jobs_ran(&self, kind: &str, took: Duration) {
        self.job_duration
            .get_or_create(&KindLabel { kind: kind.into() })
            .observe(took.as_secs_f64());
    }

    /// A job attempt's end: `outcome` is succeeded, retried or dead.
    pub fn job_finished(&self, kind: &str, outcome: &'static str, attempt: i64) {
        self.jobs_finished
            .get_or_create(&JobLabels {
                kind: kind.into(),
                outcome,
            })
            .inc();
        if outcome != "retried" {
            self.job_attempts
                .get_or_create(&KindLabel { kind: kind.into() })
                .observe(attempt as f64);
        }
    }

    pub fn webhook(&self, result: &'static str, took: Duration) {
        self.webhooks.get_or_create(&WebhookLabels { result }).inc();
        self.webhook_accept.observe(took.as_secs_f64());
    }

    pub fn mqtt_received(&self, connector: &str, messages: u64) {
        self.mqtt_received
            .get_or_create(&ConnectorLabel {
                connector: connector.into(),
            })
            .inc_by(messages);
    }

    pub fn mqtt_acked(&self, connector: &str, messages: u64) {
        self.mqtt_acked
            .get_or_create(&ConnectorLabel {
                connector: connector.into(),
            })
            .inc_by(messages);
    }

    /// A connector starts reading MQTT: its connection gauge shows 0 until one is up, so an
    /// alert sees a connector that never connected.
    pub fn mqtt_subscribed(&self, connector: &str) {
        self.mqtt_connected
            .get_or_create(&ConnectorLabel {
                connector: connector.into(),
            })
            .inc_by(0);
    }

    /// One of the connector's MQTT connections came up or went down.
    pub fn mqtt_connection(&self, connector: &str, up: bool) {
        let connected = self.mqtt_connected.get_or_create(&ConnectorLabel {
            connector: connector.into(),
        });
        if up {
            connected.inc();
        } else {
            connected.dec();
        }
    }

    /// `count` events reached `sink`.
    pub fn events_delivered(&self, sink: &'static str, count: u64) {
        self.events_delivered.get_or_create(&SinkLabel { sink }).inc_by(count);
    }

    /// This hub's connection to `sink` came up or went down.
    pub fn sink_connected(&self, sink: &'static str, up: bool) {
        self.sink_connected
            .get_or_create(&SinkLabel { sink })
            .set(i64::from(up));
    }

    /// A connector no longer read from MQTT: its series go.
    pub fn mqtt_forget(&self, connector: &str) {
        self.mqtt_connected.remove(&ConnectorLabel {
            connector: connector.into(),
        });
    }

    pub fn instantiated(&self, plugin: &str, took: Duration) {
        self.instantiate
            .get_or_create(&PluginLabel { plugin: plugin.into() })
            .observe(took.as_secs_f64());
    }

    pub fn plugin_call(&self, plugin: &str, export: &'static str, took: Duration) {
        self.plugin_calls
            .get_or_create(&PluginCallLabels {
                plugin: plugin.into(),
                export,
            })
            .observe(took.as_secs_f64());
    }

    pub fn traps(&self, plugin: &str, reason: &'static str, count: u64) {
        if count > 0 {
            self.traps
                .get_or_create(&TrapLabels {
                    plugin: plugin.into(),
                    reason,
                })
                .inc_by(count);
        }
    }

    /// Labels are `&'static str` (the route table's templates): a request allocates nothing
    /// to be counted.
    pub fn http_request(&self, method: &'static str, route: &'static str, status: u16, took: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels { method, route, status })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels { method, route })
            .observe(took.as_secs_f64());
    }

    pub fn vault_error(&self, operation: &'static str) {
        self.vault_errors.get_or_create(&VaultLabels { operation }).inc();
    }
}

#[cfg(test)]
mod tests {
    fn repo_file(path: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The names docs/operations.md's metrics table lists.
    fn documented() -> Vec<String> {
        repo_file("docs/operations.md")
            .lines()
            .filter_map(|line| line.strip_prefix("| `hub_"))
            .map(|rest| format!("hub_{}", &rest[..rest.find('`').unwrap()]))
            .collect()
    }

    #[test]
    fn docs_operations_lists_every_metric_the_hub_serves_and_no_other() {
        // A family shows once it has a series: record one of each.
        let metrics = super::Metrics::new();
        let second = std::time::Duration::from_secs(1);
        metrics.track_connector("c");
        metrics.run_finished("c", true, Some(second));
        metrics.records("c", [1, 0, 0, 0, 0]);
        metrics.jobs_ran("sync", second);
        metrics.job_finished("sync", "succeeded", 1);
        metrics.webhook("queued", second);
        metrics.mqtt_received("c", 1);
        metrics.mqtt_acked("c", 1);
        metrics.mqtt_subscribed("c");
        metrics.instantiated("p", second);
        metrics.plugin_call("p", "sync", second);
        metrics.traps("p", "trap", 1);
        metrics.http_request("GET", "/healthz", 200, second);
        metrics.vault_error("read");
        metrics.state.show_every_family();
        metrics.sink_connected("rabbitmq", false);
        let text = metrics.render();
        let served: Vec<String> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# HELP "))
            .map(|rest| rest.split(' ').next().unwrap().to_string())
            .collect();
        let documented = documented();
        for name in &served {
            assert!(
                documented.contains(name),
                "{name} is served but not in docs/operations.md"
            );
        }
        for name in &documented {
            assert!(
                served.contains(name),
                "docs/operations.md lists {name}, which the hub does not serve"
            );
        }
    }

    #[test]
    fn every_alert_rule_has_its_runbook_section_in_docs_operations() {
        let docs = repo_file("docs/operations.md");
        let rules = repo_file("deploy/prometheus/alerts.yml");
        let alerts: Vec<&str> = rules
            .lines()
            .filter_map(|line| line.trim().strip_prefix("- alert: "))
            .collect();
        assert!(alerts.len() >= 10, "{alerts:?}");
        for alert in alerts {
            assert!(
                docs.contains(&format!("\n### {alert}\n")),
                "no runbook section for {alert}"
            );
            let link = format!("runbook_url: \"docs/operations.md#{}\"", alert.to_lowercase());
            assert!(rules.contains(&link), "{alert} links its runbook ({link})");
        }
    }
}
