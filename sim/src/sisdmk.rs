//! SISDMK (Sistem Informasi SDM Kesehatan) simulator: health workers' personal data, their
//! employment at health facilities (fasyankes) and their education history, listed
//! incrementally behind a bearer API token, with signed Standard Webhooks v1 events
//! (`pegawai.mutasi` when a worker moves facility, `pegawai.diperbarui` when personal data
//! changes) sent to a subscriber.
//!
//! Workers are the people of the shared generator (same seed, same index: same NIK and STR as
//! in RegNakes and KKI). SISDMK keeps contacts more current than the registries: a share of
//! workers have a newer phone number here than in RegNakes.

use crate::events::{Delivery, change_time};
use crate::people::{self, Person, Seeded};
use crate::registry::{Registry, RegistryRow, TokenHeader};
use axum::Router;
use chrono::{DateTime, Datelike, Duration as Days, NaiveDate, SubsecRound, Utc};
use serde::Serialize;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct SisdmkConfig {
    pub people: usize,
    /// The people generator's seed: the RegNakes simulator's, for overlapping people.
    pub seed: u64,
    /// The bearer token SISDMK issues to the hub.
    pub api_token: String,
    /// Share of workers whose phone number here is newer than the registries'.
    pub new_phone_rate: f64,
    /// Workers only SISDMK knows, after the registries' `people`: support staff who hold no
    /// STR (SDMK counts them too).
    pub staff_without_str: usize,
}

impl Default for SisdmkConfig {
    fn default() -> Self {
        Self {
            people: 500,
            seed: 2026,
            api_token: "sisdmk-sim-token-0001".into(),
            new_phone_rate: 0.2,
            staff_without_str: 0,
        }
    }
}

/// Health facilities: code (Kemenkes fasyankes code), name.
pub const FACILITIES: &[(&str, &str)] = &[
    ("3171011", "RSUP Nasional Dr. Cipto Mangunkusumo"),
    ("3578015", "RSUD Dr. Soetomo"),
    ("3273012", "RSUP Dr. Hasan Sadikin"),
    ("3404013", "RSUP Dr. Sardjito"),
    ("5171014", "RSUP Prof. Dr. I.G.N.G. Ngoerah"),
    ("7371016", "RSUP Dr. Wahidin Sudirohusodo"),
    ("P3171010201", "Puskesmas Kecamatan Menteng"),
    ("P3578020101", "Puskesmas Ketabang"),
    ("P5171010202", "Puskesmas I Denpasar Barat"),
    ("P1271030101", "Puskesmas Padang Bulan"),
];
const EMPLOYMENT_KINDS: &[&str] = &["PNS", "PPPK", "Kontrak", "BLUD"];
const SCHOOLS: &[&str] = &[
    "Universitas Indonesia",
    "Universitas Airlangga",
    "Universitas Gadjah Mada",
    "Universitas Padjadjaran",
    "Poltekkes Kemenkes Jakarta I",
    "Poltekkes Kemenkes Surabaya",
    "Universitas Hasanuddin",
];

/// `jenis_sdmk` of the workers who hold no STR.
pub const SUPPORT_STAFF: &str = "Tenaga Penunjang";

#[derive(Clone)]
struct Job {
    facility: usize,
    kind: &'static str,
    start: NaiveDate,
    end: Option<NaiveDate>,
}

#[derive(Clone)]
pub struct Worker {
    /// Support staff hold no STR: an empty `str_number`.
    person: Person,
    phone: String,
    jobs: Vec<Job>,
    /// (level, school, graduation year)
    educations: Vec<(&'static str, &'static str, i32)>,
    updated_at: DateTime<Utc>,
}

/// A worker as SISDMK lists them and sends them in events.
#[derive(Serialize)]
struct WorkerJson<'a> {
    id_sdmk: String,
    nik: &'a str,
    nama: &'a str,
    tempat_lahir: &'a str,
    tanggal_lahir: Option<NaiveDate>,
    jenis_kelamin: &'static str,
    nomor_str: Option<&'a str>,
    jenis_sdmk: &'static str,
    no_hp: &'a str,
    email: &'a str,
    riwayat_pekerjaan: Vec<PostJson>,
    riwayat_pendidikan: Vec<SchoolJson>,
    diperbarui_pada: String,
}

#[derive(Serialize)]
struct PostJson {
    kode_fasyankes: &'static str,
    nama_fasyankes: &'static str,
    jabatan: &'static str,
    status_kepegawaian: &'static str,
    tmt_mulai: NaiveDate,
    tmt_selesai: Option<NaiveDate>,
}

#[derive(Serialize)]
struct SchoolJson {
    jenjang: &'static str,
    institusi: &'static str,
    program_studi: &'static str,
    tahun_lulus: i32,
}

/// A SISDMK simulator's shared state; cheap to clone.
#[derive(Clone)]
pub struct SisdmkSim {
    config: Arc<SisdmkConfig>,
    registry: Registry<Worker>,
}

/// The registry's controls (faults, workers, subscription, events) are the simulator's.
impl std::ops::Deref for SisdmkSim {
    type Target = Registry<Worker>;

    fn deref(&self) -> &Registry<Worker> {
        &self.registry
    }
}

impl RegistryRow for Worker {
    fn person(&self) -> &Person {
        &self.person
    }

    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    fn set_updated_at(&mut self, at: DateTime<Utc>) {
        self.updated_at = at;
    }

    fn to_json(&self) -> impl Serialize + '_ {
        let p = &self.person;
        WorkerJson {
            id_sdmk: record_id(p),
            nik: &p.nik,
            nama: &p.full_name,
            tempat_lahir: &p.birth_place,
            tanggal_lahir: p.birth_date,
            jenis_kelamin: p.sex.code(),
            nomor_str: (!p.str_number.is_empty()).then_some(p.str_number.as_str()),
            jenis_sdmk: if p.str_number.is_empty() {
                SUPPORT_STAFF
            } else {
                p.profession
            },
            no_hp: &self.phone,
            email: &p.email,
            riwayat_pekerjaan: (self.jobs.iter())
                .map(|job| PostJson {
                    kode_fasyankes: FACILITIES[job.facility].0,
                    nama_fasyankes: FACILITIES[job.facility].1,
                    jabatan: p.profession,
                    status_kepegawaian: job.kind,
                    tmt_mulai: job.start,
                    tmt_selesai: job.end,
                })
                .collect(),
            riwayat_pendidikan: (self.educations.iter())
                .map(|&(jenjang, institusi, tahun_lulus)| SchoolJson {
                    jenjang,
                    institusi,
                    program_studi: p.profession,
                    tahun_lulus,
                })
                .collect(),
            diperbarui_pada: change_time(self.updated_at),
        }
    }
}

/// SISDMK's id of `person`.
pub fn record_id(person: &Person) -> String {
    format!("SDMK-{:07}", person.index)
}

impl SisdmkSim {
    /// `config.people` workers of the shared generator, then `config.staff_without_str`.
    pub fn new(config: SisdmkConfig) -> Self {
        let workers = (0..config.people + config.staff_without_str)
            .map(|index| {
                let mut person = people::person(config.seed, index);
                if index >= config.people {
                    person.str_number.clear();
                }
                person
            })
            .collect();
        Self::with_people(config, workers)
    }

    /// A registry of exactly these workers (`config.people` and `staff_without_str` are not
    /// read; a worker with an empty `str_number` holds none), e.g. a
    /// [`crate::population::Population`]'s.
    pub fn with_people(config: SisdmkConfig, workers: Vec<Person>) -> Self {
        let now = Utc::now().trunc_subsecs(6);
        let mut rng = Seeded::new(config.seed ^ 0x5344_4D4B);
        let workers = workers
            .into_iter()
            .map(|person| {
                let phone = if rng.chance(config.new_phone_rate) {
                    format!("0813{:08}", rng.below(100_000_000))
                } else {
                    person.phone.clone()
                };
                let born = person.birth_date.map_or(1985, |d| d.year());
                let graduated = born + 22 + rng.below(3) as i32;
                // Never in the future, however young the worker.
                let start = NaiveDate::from_ymd_opt(graduated + 1, 1 + rng.below(12) as u32, 1)
                    .unwrap()
                    .min(now.date_naive() - Days::days(400));
                let mut jobs = vec![Job {
                    facility: rng.below(FACILITIES.len() as u64) as usize,
                    kind: rng.pick::<&str>(EMPLOYMENT_KINDS),
                    start,
                    end: None,
                }];
                if rng.chance(0.3) {
                    // An earlier contract post, ended the day before the current one began;
                    // the current post then began later.
                    let years = 1 + rng.below(4) as i64;
                    jobs[0].start = (start + Days::days(365 * years)).min(now.date_naive() - Days::days(30));
                    jobs.insert(
                        0,
                        Job {
                            facility: rng.below(FACILITIES.len() as u64) as usize,
                            kind: "Kontrak",
                            start,
                            end: Some(jobs[0].start - Days::days(1)),
                        },
                    );
                }
                let mut educations = vec![(*rng.pick(&["D3", "D4", "S1"]), *rng.pick(SCHOOLS), graduated)];
                if rng.chance(0.4) {
                    educations.push(("Profesi", *rng.pick(SCHOOLS), graduated + 1));
                }
                Worker {
                    person,
                    phone,
                    jobs,
                    educations,
                    updated_at: now - Days::seconds(1 + rng.below(30 * 24 * 3600) as i64),
                }
            })
            .collect();
        Self {
            registry: Registry::new(workers, TokenHeader::Bearer, &config.api_token),
            config: Arc::new(config),
        }
    }

    /// `GET /api/v1/sdmk` (the incremental listing) and `/_sim/faults`.
    pub fn router(&self) -> Router {
        self.registry.router("/api/v1/sdmk")
    }

    pub fn config(&self) -> &SisdmkConfig {
        &self.config
    }

    /// Worker `index`'s phone number as SISDMK has it.
    pub fn phone(&self, index: usize) -> String {
        self.read(index, |w| w.phone.clone())
    }

    /// Worker `index`'s current facility name.
    pub fn facility(&self, index: usize) -> &'static str {
        self.read(index, |w| {
            let current = w.jobs.last().expect("every worker has a post");
            FACILITIES[current.facility].1
        })
    }

    /// Moves worker `index` to facility `facility` (an index into [`FACILITIES`]) from today,
    /// ending the current post, and sends `pegawai.mutasi`.
    pub async fn transfer(&self, index: usize, facility: usize) -> anyhow::Result<Delivery> {
        anyhow::ensure!(facility < FACILITIES.len(), "no facility {facility}");
        let today = Utc::now().date_naive();
        self.registry
            .change(index, "pegawai.mutasi", |w| {
                if let Some(current) = w.jobs.last_mut() {
                    current.end = Some(today - Days::days(1));
                }
                w.jobs.push(Job {
                    facility,
                    kind: "PNS",
                    start: today,
                    end: None,
                });
            })
            .await
    }

    /// Gives worker `index` a new phone number and sends `pegawai.diperbarui`.
    pub async fn change_phone(&self, index: usize, phone: &str) -> anyhow::Result<Delivery> {
        self.registry
            .change(index, "pegawai.diperbarui", |w| w.phone = phone.to_string())
            .await
    }
}
