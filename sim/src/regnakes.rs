//! RegNakes (Registrasi Tenaga Kesehatan) simulator: OAuth2 client credentials with
//! short-lived tokens, and an incremental, paginated listing of health workers with their STR
//! and SIP.
//!
//! About 2 % of rows are malformed (bad NIK, missing name or STR) and about 3 % carry an STR
//! that is no longer active; [`RegnakesSim::expected_rejects`] says which, for tests.
//! [`RegnakesSim::mutate`] changes people so that the next incremental sync has updates.

use crate::events::{change_time, paged};
use crate::faults::{self, FaultState, Faults};
use crate::oauth::{TokenIssuer, TokenRequest};
use crate::people::{self, Person, Seeded};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, Duration as Days, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Settings of a RegNakes simulator.
#[derive(Clone, Debug)]
pub struct RegnakesConfig {
    pub people: usize,
    pub seed: u64,
    pub client_id: String,
    pub client_secret: String,
    pub token_lifetime: Duration,
    /// Share of rows that are malformed.
    pub malformed_rate: f64,
    /// Share of rows whose STR is not active.
    pub inactive_rate: f64,
}

impl Default for RegnakesConfig {
    fn default() -> Self {
        Self {
            people: 5_000,
            seed: 2026,
            client_id: "hub-regnakes".into(),
            client_secret: "regnakes-sim-secret".into(),
            token_lifetime: Duration::from_secs(300),
            malformed_rate: 0.02,
            inactive_rate: 0.03,
        }
    }
}

/// How a malformed row is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flaw {
    NikTooShort,
    UnknownProvince,
    ImpossibleBirthDay,
    MissingName,
    MissingStr,
}

const FLAWS: &[Flaw] = &[
    Flaw::NikTooShort,
    Flaw::UnknownProvince,
    Flaw::ImpossibleBirthDay,
    Flaw::MissingName,
    Flaw::MissingStr,
];

/// A health worker as RegNakes lists them.
#[derive(Serialize)]
struct NakesJson<'a> {
    id: String,
    nik: String,
    nama: Option<&'a String>,
    tempat_lahir: &'a str,
    tanggal_lahir: Option<NaiveDate>,
    jenis_kelamin: &'static str,
    profesi: &'static str,
    no_hp: &'a str,
    email: &'a str,
    #[serde(rename = "str")]
    str_doc: Option<StrJson<'a>>,
    sip: [SipJson; 1],
    diperbarui_pada: String,
}

#[derive(Serialize)]
struct StrJson<'a> {
    nomor: &'a str,
    status: &'static str,
    tanggal_terbit: NaiveDate,
    berlaku_sampai: Option<NaiveDate>,
}

#[derive(Serialize)]
struct SipJson {
    nomor: String,
    fasyankes: &'static str,
    berlaku_sampai: NaiveDate,
}

#[derive(Clone)]
struct Nakes {
    person: Person,
    flaw: Option<Flaw>,
    str_active: bool,
    str_issued: NaiveDate,
    facility: &'static str,
    updated_at: DateTime<Utc>,
}

impl Nakes {
    fn id(&self) -> String {
        record_id(&self.person)
    }

    fn rejected(&self) -> bool {
        self.flaw.is_some() || !self.str_active
    }

    fn to_json(&self) -> NakesJson<'_> {
        let p = &self.person;
        let mut nik = p.nik.clone();
        match self.flaw {
            Some(Flaw::NikTooShort) => nik.truncate(15),
            Some(Flaw::UnknownProvince) => nik.replace_range(0..2, "99"),
            Some(Flaw::ImpossibleBirthDay) => nik.replace_range(6..8, "35"),
            _ => {}
        }
        let sip_until = self.str_issued + Days::days(5 * 365);
        NakesJson {
            id: self.id(),
            nik,
            nama: (self.flaw != Some(Flaw::MissingName)).then_some(&p.full_name),
            tempat_lahir: &p.birth_place,
            tanggal_lahir: p.birth_date,
            jenis_kelamin: p.sex.code(),
            profesi: p.profession,
            no_hp: &p.phone,
            email: &p.email,
            str_doc: (self.flaw != Some(Flaw::MissingStr)).then(|| StrJson {
                nomor: &p.str_number,
                status: if self.str_active { "AKTIF" } else { "NONAKTIF" },
                tanggal_terbit: self.str_issued,
                // STRs are valid for life since UU 17/2023; older ones carry an end date.
                berlaku_sampai: (!self.str_active).then_some(sip_until),
            }),
            sip: [SipJson {
                nomor: format!("SIP/{}/{}", p.index, self.str_issued.format("%Y")),
                fasyankes: self.facility,
                berlaku_sampai: sip_until,
            }],
            diperbarui_pada: change_time(self.updated_at),
        }
    }
}

const FACILITIES: &[&str] = &[
    "RSUD Dr. Soetomo",
    "RSUP Dr. Sardjito",
    "RSUP Nasional Dr. Cipto Mangunkusumo",
    "RSUD Kota Bandung",
    "Puskesmas Kecamatan Menteng",
    "Puskesmas Sleman",
    "RS Hasan Sadikin",
    "Klinik Pratama Sehat Sentosa",
    "RSUD Sanglah",
    "Puskesmas Tamalanrea",
];

struct Dataset {
    rows: Vec<Nakes>,
    /// Row positions ordered by (updated_at, id): the listing order.
    order: Vec<usize>,
    mutations: Seeded,
}

impl Dataset {
    fn reorder(&mut self) {
        let rows = &self.rows;
        self.order.sort_by(|&a, &b| {
            (rows[a].updated_at, rows[a].person.index).cmp(&(rows[b].updated_at, rows[b].person.index))
        });
    }
}

struct Inner {
    config: RegnakesConfig,
    data: RwLock<Dataset>,
    tokens: TokenIssuer,
    faults: Arc<FaultState>,
    /// `traceparent` and `x-request-id` of the last listing request.
    last_trace_headers: std::sync::Mutex<(Option<String>, Option<String>)>,
}

/// A running RegNakes simulator's shared state; cheap to clone.
#[derive(Clone)]
pub struct RegnakesSim(Arc<Inner>);

/// RegNakes's id of `person`.
pub fn record_id(person: &Person) -> String {
    format!("RN-{:07}", person.index)
}

impl RegnakesSim {
    /// `config.people` health workers of the shared generator.
    pub fn new(config: RegnakesConfig) -> Self {
        let people = (0..config.people).map(|i| people::person(config.seed, i)).collect();
        Self::with_people(config, people)
    }

    /// A registry of exactly these people (`config.people` is not read), e.g. a
    /// [`crate::population::Population`]'s.
    pub fn with_people(config: RegnakesConfig, people: Vec<Person>) -> Self {
        let now = now_micros();
        let mut rng = Seeded::new(config.seed);
        let rows: Vec<Nakes> = people
            .into_iter()
            .map(|person| generate(&config, &mut rng, person, now))
            .collect();
        let mut data = Dataset {
            order: (0..rows.len()).collect(),
            rows,
            mutations: Seeded::new(config.seed ^ 0x4D55_7A7E),
        };
        data.reorder();
        let tokens = TokenIssuer::new(&config.client_id, &config.client_secret, config.token_lifetime);
        Self(Arc::new(Inner {
            config,
            data: RwLock::new(data),
            tokens,
            faults: Arc::default(),
            last_trace_headers: Default::default(),
        }))
    }

    /// The HTTP API: `POST /oauth/token`, `GET /api/v1/nakes`, and `/_sim/*` controls.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/oauth/token", post(token))
            .route("/api/v1/nakes", get(list))
            .route("/_sim/mutate", post(mutate_route))
            .with_state(self.clone())
            .merge(faults::router(self.0.faults.clone()))
    }

    pub fn config(&self) -> &RegnakesConfig {
        &self.0.config
    }

    pub fn set_faults(&self, faults: Faults) {
        self.0.faults.set(faults);
    }

    /// `(traceparent, x-request-id)` of the last listing request.
    pub fn last_trace_headers(&self) -> (Option<String>, Option<String>) {
        self.0.last_trace_headers.lock().unwrap().clone()
    }

    pub fn tokens_issued(&self) -> u64 {
        self.0.tokens.issued()
    }

    /// The access tokens issued and still live.
    pub fn live_tokens(&self) -> Vec<String> {
        self.0.tokens.live_tokens()
    }

    /// Number of rows served by a full listing.
    pub fn total(&self) -> usize {
        self.0.data.read().unwrap().rows.len()
    }

    /// Source ids of the rows the hub must reject (malformed, or STR not active).
    pub fn expected_rejects(&self) -> HashSet<String> {
        let data = self.0.data.read().unwrap();
        data.rows.iter().filter(|r| r.rejected()).map(Nakes::id).collect()
    }

    /// The people behind rows the hub must accept.
    pub fn valid_people(&self) -> Vec<Person> {
        let data = self.0.data.read().unwrap();
        data.rows
            .iter()
            .filter(|r| !r.rejected())
            .map(|r| r.person.clone())
            .collect()
    }

    /// Every person, valid or not (for checks that nothing identifying leaks).
    pub fn all_people(&self) -> Vec<Person> {
        self.0
            .data
            .read()
            .unwrap()
            .rows
            .iter()
            .map(|r| r.person.clone())
            .collect()
    }

    /// Changes the phone number of `count` valid people and marks them updated now; returns
    /// their source ids. The next incremental sync sees exactly these as updates.
    pub fn mutate(&self, count: usize) -> Vec<String> {
        let mut data = self.0.data.write().unwrap();
        let now = now_micros();
        let candidates: Vec<usize> = (0..data.rows.len()).filter(|&i| !data.rows[i].rejected()).collect();
        let mut chosen = HashSet::new();
        while chosen.len() < count.min(candidates.len()) {
            let pick = candidates[data.mutations.below(candidates.len() as u64) as usize];
            chosen.insert(pick);
        }
        let mut ids = Vec::new();
        for (n, &i) in chosen.iter().enumerate() {
            let phone = format!("0812{:08}", data.mutations.below(100_000_000));
            let row = &mut data.rows[i];
            row.person.phone = phone;
            row.updated_at = now + Days::microseconds(n as i64);
            ids.push(row.id());
        }
        data.reorder();
        ids
    }
}

/// Now, at the microsecond precision the API writes, so that a timestamp read back from a
/// listing compares equal to the stored one.
fn now_micros() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn generate(config: &RegnakesConfig, rng: &mut Seeded, person: Person, now: DateTime<Utc>) -> Nakes {
    let flaw = rng.chance(config.malformed_rate).then(|| *rng.pick(FLAWS));
    let str_active = !rng.chance(config.inactive_rate);
    let str_issued = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap() + Days::days(rng.below(3650) as i64);
    Nakes {
        person,
        flaw,
        str_active,
        str_issued,
        facility: rng.pick::<&str>(FACILITIES),
        updated_at: now - Days::seconds(1 + rng.below(365 * 24 * 3600) as i64),
    }
}

async fn token(State(sim): State<RegnakesSim>, form: Form<TokenRequest>) -> Response {
    if let Some(failed) = sim.0.faults.injected_failure().await {
        return failed;
    }
    sim.0.tokens.issue(form)
}

#[derive(Deserialize)]
struct ListQuery {
    updated_since: Option<DateTime<Utc>>,
    profession: Option<String>,
    page: Option<usize>,
    per_page: Option<usize>,
}

async fn list(State(sim): State<RegnakesSim>, headers: HeaderMap, query: Query<ListQuery>) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    *sim.0.last_trace_headers.lock().unwrap() = (header("traceparent"), header("x-request-id"));
    if let Some(failed) = sim.0.faults.injected_failure().await {
        return failed;
    }
    if !sim.0.tokens.authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_token"}))).into_response();
    }
    let body = {
        let data = sim.0.data.read().unwrap();
        let start = match query.updated_since {
            Some(since) => data.order.partition_point(|&i| data.rows[i].updated_at <= since),
            None => 0,
        };
        let matching: Vec<&Nakes> = data.order[start..]
            .iter()
            .map(|&i| &data.rows[i])
            .filter(|r| (query.profession.as_deref()).is_none_or(|p| r.person.profession.eq_ignore_ascii_case(p)))
            .collect();
        // Serialized under the read lock: the rows borrow from it.
        serde_json::to_vec(&paged(&matching, query.page, query.per_page, |r| r.to_json()).0)
            .expect("a listing serializes")
    };
    if sim.0.faults.after_data_request() {
        sim.0.tokens.revoke_all();
    }
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[derive(Deserialize)]
struct MutateQuery {
    count: usize,
}

async fn mutate_route(State(sim): State<RegnakesSim>, Query(q): Query<MutateQuery>) -> Json<Value> {
    let ids = sim.mutate(q.count);
    Json(json!({ "updated": ids }))
}
