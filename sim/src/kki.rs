//! KKI (Konsil Kedokteran Indonesia) simulator: doctors' STR registrations with their
//! certification status and training history, listed daily behind an API token, and signed
//! Standard Webhooks v1 events (`str.revoked`, `str.updated`) sent to a subscriber.
//!
//! Doctors are the people of the shared generator (same seed, same index: same NIK and STR
//! as in RegNakes), so the hub sees one person from several systems.

use crate::faults::{FaultState, Faults, Injected};
use crate::people::{self, Person, Seeded};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Duration as Days, NaiveDate, SubsecRound, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};

#[derive(Clone, Debug)]
pub struct KkiConfig {
    pub people: usize,
    /// The people generator's seed: the RegNakes simulator's, for overlapping people.
    pub seed: u64,
    /// The API token KKI issues to the hub (`x-api-key`).
    pub api_token: String,
    /// Share of doctors whose STR has expired.
    pub expired_rate: f64,
}

impl Default for KkiConfig {
    fn default() -> Self {
        Self {
            people: 500,
            seed: 2026,
            api_token: "kki-sim-api-token-0001".into(),
            expired_rate: 0.04,
        }
    }
}

const CERTIFICATIONS: &[&str] = &[
    "Sertifikat Kompetensi Dokter",
    "ACLS",
    "ATLS",
    "Sertifikat Kompetensi Dokter Spesialis",
];
const TRAININGS: &[(&str, &str)] = &[
    ("Pelatihan Kegawatdaruratan", "PB IDI"),
    ("Manajemen Nyeri", "Kolegium Dokter Indonesia"),
    ("Tata Laksana TB", "Kemenkes RI"),
    ("Etika Kedokteran", "MKEK"),
];

#[derive(Clone)]
struct Doctor {
    person: Person,
    /// `aktif`, `dicabut` (revoked) or `kedaluwarsa` (expired).
    status: &'static str,
    issued: NaiveDate,
    certification: (&'static str, &'static str),
    trainings: Vec<(&'static str, &'static str, NaiveDate, u32)>,
    updated_at: DateTime<Utc>,
}

impl Doctor {
    fn to_json(&self) -> Value {
        json!({
            "nomor_str": self.person.str_number,
            "nik": self.person.nik,
            "nama": self.person.full_name,
            "tempat_lahir": self.person.birth_place,
            "tanggal_lahir": self.person.birth_date.to_string(),
            "jenis_kelamin": match self.person.sex { people::Sex::Male => "L", people::Sex::Female => "P" },
            "status_str": self.status,
            "tanggal_terbit": self.issued.to_string(),
            "berlaku_sampai": (self.issued + Days::days(5 * 365)).to_string(),
            "sertifikasi": [{ "nama": self.certification.0, "status": self.certification.1 }],
            "pelatihan": self.trainings.iter().map(|(nama, penyelenggara, tanggal, jpl)| json!({
                "nama": nama, "penyelenggara": penyelenggara, "tanggal": tanggal.to_string(), "jpl": jpl,
            })).collect::<Vec<_>>(),
            "diperbarui_pada": self.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        })
    }
}

/// Where events go: the hub's webhook URL and the `whsec_` secret it gave KKI.
struct Subscriber {
    url: String,
    key: Vec<u8>,
}

struct Inner {
    config: KkiConfig,
    doctors: RwLock<Vec<Doctor>>,
    faults: FaultState,
    subscriber: RwLock<Option<Subscriber>>,
    http: reqwest::Client,
}

/// A KKI simulator's shared state; cheap to clone.
#[derive(Clone)]
pub struct KkiSim(Arc<Inner>);

/// What sending one event came to.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub webhook_id: String,
    pub status: u16,
    pub body: String,
}

impl KkiSim {
    pub fn new(config: KkiConfig) -> Self {
        let now = Utc::now().trunc_subsecs(6);
        let mut rng = Seeded::new(config.seed ^ 0x4B4B_4931);
        let doctors = (0..config.people)
            .map(|index| {
                let person = people::person(config.seed, index);
                let status = if rng.chance(config.expired_rate) {
                    "kedaluwarsa"
                } else {
                    "aktif"
                };
                let trainings = (0..1 + rng.below(3))
                    .map(|_| {
                        let (name, provider) = *rng.pick(TRAININGS);
                        let on = NaiveDate::from_ymd_opt(2018, 1, 1).unwrap() + Days::days(rng.below(2500) as i64);
                        (name, provider, on, 8 + rng.below(32) as u32)
                    })
                    .collect();
                Doctor {
                    person,
                    status,
                    issued: NaiveDate::from_ymd_opt(2022, 1, 1).unwrap() + Days::days(rng.below(1400) as i64),
                    certification: (*rng.pick(CERTIFICATIONS), "berlaku"),
                    trainings,
                    updated_at: now - Days::seconds(1 + rng.below(30 * 24 * 3600) as i64),
                }
            })
            .collect();
        Self(Arc::new(Inner {
            config,
            doctors: RwLock::new(doctors),
            faults: FaultState::default(),
            subscriber: RwLock::new(None),
            http: {
                // reqwest is built without a default TLS provider; the process-wide one may
                // be installed already (by the hub), which is fine.
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::new()
            },
        }))
    }

    /// `GET /api/v1/str` (the daily listing) and `/_sim/faults`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/str", get(list))
            .route(
                "/_sim/faults",
                get(|State(sim): State<KkiSim>| async move { Json(sim.0.faults.get()) }).put(
                    |State(sim): State<KkiSim>, Json(faults): Json<Faults>| async move {
                        sim.set_faults(faults);
                        StatusCode::NO_CONTENT
                    },
                ),
            )
            .with_state(self.clone())
    }

    pub fn config(&self) -> &KkiConfig {
        &self.0.config
    }

    pub fn set_faults(&self, faults: Faults) {
        self.0.faults.set(faults);
    }

    pub fn total(&self) -> usize {
        self.0.doctors.read().unwrap().len()
    }

    /// The person behind doctor `index`.
    pub fn person(&self, index: usize) -> Person {
        self.0.doctors.read().unwrap()[index].person.clone()
    }

    /// Sends events to `url`, signed with `secret` (`whsec_…`, as the hub returned it).
    pub fn subscribe(&self, url: &str, secret: &str) -> anyhow::Result<()> {
        let encoded = secret
            .strip_prefix("whsec_")
            .ok_or_else(|| anyhow::anyhow!("a webhook secret starts with whsec_"))?;
        *self.0.subscriber.write().unwrap() = Some(Subscriber {
            url: url.to_string(),
            key: BASE64.decode(encoded)?,
        });
        Ok(())
    }

    /// Revokes doctor `index`'s STR and sends `str.revoked`.
    pub async fn revoke(&self, index: usize) -> anyhow::Result<Delivery> {
        self.change(index, "str.revoked", |d| d.status = "dicabut").await
    }

    /// Adds a training to doctor `index` and sends `str.updated`.
    pub async fn add_training(&self, index: usize, name: &'static str) -> anyhow::Result<Delivery> {
        let today = Utc::now().date_naive();
        self.change(index, "str.updated", |d| d.trainings.push((name, "PB IDI", today, 12)))
            .await
    }

    async fn change(&self, index: usize, kind: &str, edit: impl FnOnce(&mut Doctor)) -> anyhow::Result<Delivery> {
        let row = {
            let mut doctors = self.0.doctors.write().unwrap();
            let doctor = doctors
                .get_mut(index)
                .ok_or_else(|| anyhow::anyhow!("no doctor {index}"))?;
            edit(doctor);
            doctor.updated_at = Utc::now().trunc_subsecs(6);
            doctor.to_json()
        };
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let body = json!({ "type": kind, "timestamp": Utc::now().to_rfc3339(), "data": row }).to_string();
        self.deliver(&id, Utc::now().timestamp(), body.as_bytes()).await
    }

    /// Sends one signed webhook as it is (tests use it to repeat a delivery or sign it at
    /// another time).
    pub async fn deliver(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> anyhow::Result<Delivery> {
        let (url, signature) = {
            let subscriber = self.0.subscriber.read().unwrap();
            let subscriber = subscriber
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("no subscriber: call subscribe first"))?;
            (
                subscriber.url.clone(),
                sign(&subscriber.key, webhook_id, timestamp, body),
            )
        };
        let response = self
            .0
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", format!("v1,{signature}"))
            .body(body.to_vec())
            .send()
            .await?;
        Ok(Delivery {
            webhook_id: webhook_id.to_string(),
            status: response.status().as_u16(),
            body: response.text().await.unwrap_or_default(),
        })
    }
}

/// Standard Webhooks v1: base64 HMAC-SHA256 over `id.timestamp.body`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

#[derive(Deserialize)]
struct ListQuery {
    updated_since: Option<DateTime<Utc>>,
    page: Option<usize>,
    per_page: Option<usize>,
}

async fn list(State(sim): State<KkiSim>, headers: HeaderMap, query: Query<ListQuery>) -> Response {
    if let Injected::Fail(status) = sim.0.faults.before_request().await {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (status, Json(json!({ "pesan": "layanan tidak tersedia" }))).into_response();
    }
    let token = headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or("");
    let expected = sim.0.config.api_token.as_bytes();
    let matches =
        token.len() == expected.len() && token.bytes().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !matches {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "pesan": "token API tidak valid" })),
        )
            .into_response();
    }
    let page = query.page.unwrap_or(1).max(1);
    let per_page = query.per_page.unwrap_or(100).clamp(1, 1000);
    let doctors = sim.0.doctors.read().unwrap();
    let mut matching: Vec<&Doctor> = doctors
        .iter()
        .filter(|d| query.updated_since.is_none_or(|since| d.updated_at > since))
        .collect();
    matching.sort_by_key(|d| (d.updated_at, d.person.index));
    let total = matching.len();
    let rows: Vec<Value> = matching
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|d| d.to_json())
        .collect();
    Json(json!({
        "data": rows,
        "meta": { "page": page, "per_page": per_page, "total": total, "total_pages": total.div_ceil(per_page) },
    }))
    .into_response()
}
