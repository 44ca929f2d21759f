//! Synthetic Indonesian health workers, seeded and reproducible: names, NIKs with real
//! province codes and the +40 birth-day rule for women, STR numbers, professions.
//!
//! Every simulator draws from the same population so that one person shows up, with typos
//! and gaps, in several systems.

use chrono::{Datelike, Duration, NaiveDate};

/// A small, fast, seeded PRNG (SplitMix64): the simulators need reproducibility, not
/// cryptographic quality.
#[derive(Clone)]
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Province codes in use on NIKs (Kemendagri), with a city of that province and its regency
/// code, used as birth place.
pub const PROVINCES: &[(u8, &str, u8)] = &[
    (11, "Banda Aceh", 71),
    (12, "Medan", 71),
    (13, "Padang", 71),
    (14, "Pekanbaru", 71),
    (15, "Jambi", 71),
    (16, "Palembang", 71),
    (17, "Bengkulu", 71),
    (18, "Bandar Lampung", 71),
    (19, "Pangkal Pinang", 71),
    (21, "Batam", 71),
    (31, "Jakarta", 74),
    (32, "Bandung", 73),
    (32, "Bogor", 71),
    (33, "Semarang", 74),
    (33, "Surakarta", 72),
    (34, "Yogyakarta", 71),
    (35, "Surabaya", 78),
    (35, "Malang", 73),
    (36, "Tangerang", 71),
    (51, "Denpasar", 71),
    (52, "Mataram", 71),
    (53, "Kupang", 71),
    (61, "Pontianak", 71),
    (62, "Palangka Raya", 71),
    (63, "Banjarmasin", 71),
    (64, "Samarinda", 72),
    (65, "Tarakan", 71),
    (71, "Manado", 71),
    (72, "Palu", 71),
    (73, "Makassar", 71),
    (74, "Kendari", 71),
    (75, "Gorontalo", 71),
    (76, "Mamuju", 4),
    (81, "Ambon", 71),
    (82, "Ternate", 71),
    (91, "Jayapura", 71),
    (92, "Manokwari", 2),
];

const MALE_NAMES: &[&str] = &[
    "Budi", "Agus", "Andi", "Ahmad", "Muhammad", "Rizky", "Dedi", "Eko", "Hendra", "Joko", "Arief", "Bambang", "Dimas",
    "Fajar", "Gilang", "Hadi", "Irfan", "Yusuf", "Teguh", "Wahyu", "Made", "Ketut", "Putu", "Yohanes", "Stefanus",
    "Rudi", "Slamet", "Taufik", "Ilham", "Reza",
];

const FEMALE_NAMES: &[&str] = &[
    "Siti", "Dewi", "Sri", "Rina", "Ayu", "Fitri", "Indah", "Wulan", "Nurul", "Ratna", "Lestari", "Putri", "Ani",
    "Yuliana", "Maria", "Kartika", "Novita", "Dian", "Rahma", "Intan", "Ni Luh", "Nyoman", "Anisa", "Melati", "Sari",
    "Endang", "Wati", "Yanti", "Eka", "Citra",
];

const FAMILY_NAMES: &[&str] = &[
    "Santoso",
    "Wijaya",
    "Saputra",
    "Pratama",
    "Hidayat",
    "Nugroho",
    "Kusuma",
    "Rahayu",
    "Setiawan",
    "Siregar",
    "Nasution",
    "Harahap",
    "Lubis",
    "Simanjuntak",
    "Sitompul",
    "Gunawan",
    "Susanto",
    "Wibowo",
    "Purnomo",
    "Halim",
    "Tanjung",
    "Sinaga",
    "Pangaribuan",
    "Manurung",
    "Lestari",
    "Permata",
    "Utami",
    "Hasibuan",
    "Firmansyah",
    "Kurniawan",
    "Suharto",
    "Wardani",
];

/// Professions (tenaga kesehatan) with a relative weight: nurses and midwives dominate.
pub const PROFESSIONS: &[(&str, u64)] = &[
    ("Perawat", 30),
    ("Bidan", 20),
    ("Dokter", 12),
    ("Dokter Gigi", 4),
    ("Dokter Spesialis", 4),
    ("Apoteker", 6),
    ("Tenaga Teknis Kefarmasian", 6),
    ("Ahli Teknologi Laboratorium Medik", 5),
    ("Radiografer", 3),
    ("Fisioterapis", 3),
    ("Nutrisionis", 4),
    ("Sanitarian", 3),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// As Indonesian registries write it (`jenis_kelamin`): `L` (laki-laki) or `P` (perempuan).
    pub fn code(self) -> &'static str {
        match self {
            Sex::Male => "L",
            Sex::Female => "P",
        }
    }
}

/// One synthetic person, as every simulated system knows them underneath their own format.
#[derive(Clone, Debug)]
pub struct Person {
    pub index: usize,
    pub nik: String,
    pub full_name: String,
    pub birth_place: String,
    /// `None` where a system does not record it.
    pub birth_date: Option<NaiveDate>,
    pub sex: Sex,
    pub profession: &'static str,
    pub str_number: String,
    pub phone: String,
    pub email: String,
}

/// Deterministic person `index` of the population seeded with `seed`.
pub fn person(seed: u64, index: usize) -> Person {
    let mut rng = Seeded::new(seed ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let sex = if rng.chance(0.55) { Sex::Female } else { Sex::Male };
    let given = match sex {
        Sex::Male => *rng.pick(MALE_NAMES),
        Sex::Female => *rng.pick(FEMALE_NAMES),
    };
    // Many Indonesians carry a single name.
    let full_name = if rng.chance(0.15) {
        given.to_string()
    } else {
        format!("{given} {}", rng.pick(FAMILY_NAMES))
    };
    let &(province, city, regency) = rng.pick(PROVINCES);
    let birth_date = NaiveDate::from_ymd_opt(1960, 1, 1).unwrap() + Duration::days(rng.below(365 * 42) as i64);
    let nik = nik_for(province, regency, 1 + rng.below(30) as u8, birth_date, sex, index);
    let profession = weighted_profession(&mut rng);
    let str_number = format!(
        "{:02}{:02}{}{:08}",
        province,
        PROFESSIONS.iter().position(|(p, _)| *p == profession).unwrap_or(0) + 10,
        birth_date.year() % 100 + 10,
        index
    );
    let phone = format!("08{}{:09}", 11 + rng.below(9), rng.below(1_000_000_000));
    let email = format!(
        "{}.{}@{}",
        full_name.split(' ').next().unwrap_or("nakes").to_lowercase(),
        index,
        rng.pick(&["gmail.com", "yahoo.co.id", "kemkes.go.id"])
    );
    Person {
        index,
        nik,
        full_name,
        birth_place: city.to_string(),
        birth_date: Some(birth_date),
        sex,
        profession,
        str_number,
        phone,
        email,
    }
}

/// A NIK: province, regency, district, birth date as DDMMYY (day + 40 for women), and a
/// serial. The serial comes from the person's index so that NIKs are unique.
pub fn nik_for(province: u8, regency: u8, district: u8, birth: NaiveDate, sex: Sex, index: usize) -> String {
    let day = birth.day() + if sex == Sex::Female { 40 } else { 0 };
    format!(
        "{province:02}{regency:02}{district:02}{day:02}{:02}{:02}{:04}",
        birth.month(),
        birth.year() % 100,
        index % 9999 + 1
    )
}

fn weighted_profession(rng: &mut Seeded) -> &'static str {
    let total: u64 = PROFESSIONS.iter().map(|(_, w)| w).sum();
    let mut roll = rng.below(total);
    for (name, weight) in PROFESSIONS {
        if roll < *weight {
            return name;
        }
        roll -= weight;
    }
    PROFESSIONS[0].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_reproducible_and_niks_follow_the_rules() {
        for i in 0..500 {
            let a = person(7, i);
            assert_eq!(a.nik, person(7, i).nik);
            assert_eq!(a.nik.len(), 16, "{}", a.nik);
            let day: u32 = a.nik[6..8].parse().unwrap();
            match a.sex {
                Sex::Female => assert_eq!(day, a.birth_date.unwrap().day() + 40),
                Sex::Male => assert_eq!(day, a.birth_date.unwrap().day()),
            }
            let province: u8 = a.nik[..2].parse().unwrap();
            assert!(PROVINCES.iter().any(|(p, _, _)| *p == province));
        }
    }
}
