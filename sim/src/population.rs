//! A labelled population to measure identity resolution with: people as RegNakes, KKI and
//! SISDMK each record them, written with the noise real registries show, among hard
//! negatives. Every record's true person is its `Person::index` (its record id carries it):
//! known to whoever scores the hub, never read by the hub.
//!
//! The noise, per record: titles and degrees around a name, pre-1972 spellings, upper case
//! and doubled spaces; a birth place under its region kind, an alias or an old spelling; a
//! missing birth date; no STR number (SISDMK); a re-issued STR (KKI). People who hold no STR
//! at all (support staff, SISDMK only). Hard negatives, each a different person: twins by
//! name, birth place and birth year; people born the same day in the same district, NIKs
//! one digit apart; and a SISDMK record carrying someone else's STR number.

use crate::people::{self, Person, Seeded};
use chrono::{Datelike, Duration, NaiveDate};

/// The people, and their records per system. A person is in each system at most once.
pub struct Population {
    /// Who they truly are, by index.
    pub people: Vec<Person>,
    pub regnakes: Vec<Person>,
    pub kki: Vec<Person>,
    pub sisdmk: Vec<Person>,
}

/// Shares of people and records with each kind of noise.
const SUPPORT_STAFF: f64 = 0.10;
const IN_REGNAKES: f64 = 0.90;
const IN_KKI: f64 = 0.95;
const IN_SISDMK: f64 = 0.80;
const TWIN_BY_NAME: f64 = 0.04;
const NIK_NEIGHBOUR: f64 = 0.03;
const FOREIGN_STR: f64 = 0.02;
const TITLED: f64 = 0.35;
const OLD_SPELLING: f64 = 0.15;
const UPPER_CASE: f64 = 0.10;
const DOUBLE_SPACE: f64 = 0.05;
const PLACE_WRITTEN_OTHERWISE: f64 = 0.25;
const NO_BIRTH_DATE: f64 = 0.08;
const SISDMK_WITHOUT_STR: f64 = 0.25;
const KKI_REISSUED: f64 = 0.15;

impl Population {
    /// `people` people of the shared generator seeded with `seed`, with their records.
    pub fn generate(people: usize, seed: u64) -> Self {
        assert!(
            people < 9000,
            "NIK serials come from the index, under 9000 (a neighbour takes 9xxx)"
        );
        let mut rng = Seeded::new(seed ^ 0x4C41_4245);
        let mut truth: Vec<Person> = Vec::with_capacity(people);
        // Whether the previous person is a NIK neighbour: one is never made of another, so no
        // two people share a NIK.
        let mut neighbour = false;
        for index in 0..people {
            let mut person = people::person(seed, index);
            let previous = truth.last();
            match previous {
                Some(previous) if rng.chance(TWIN_BY_NAME) => twin_by_name(&mut person, previous, &mut rng),
                Some(previous) if !neighbour && rng.chance(NIK_NEIGHBOUR) => nik_neighbour(&mut person, previous),
                _ => {}
            }
            neighbour = previous.is_some_and(|p| p.nik[..12] == person.nik[..12]);
            if rng.chance(SUPPORT_STAFF) {
                person.str_number.clear();
            }
            truth.push(person);
        }
        let mut population = Population {
            people: Vec::new(),
            regnakes: Vec::new(),
            kki: Vec::new(),
            sisdmk: Vec::new(),
        };
        for (index, person) in truth.iter().enumerate() {
            let licensed = !person.str_number.is_empty();
            if licensed && rng.chance(IN_REGNAKES) {
                let mut record = written(person, &mut rng);
                record.birth_date = person.birth_date;
                population.regnakes.push(record);
            }
            if licensed && person.profession.starts_with("Dokter") && rng.chance(IN_KKI) {
                let mut record = written(person, &mut rng);
                if rng.chance(KKI_REISSUED) {
                    record.str_number = format!("9{}", &person.str_number[1..]);
                }
                population.kki.push(record);
            }
            if !licensed || rng.chance(IN_SISDMK) {
                let mut record = written(person, &mut rng);
                if index > 0 && licensed && rng.chance(FOREIGN_STR) {
                    record.str_number = truth[index - 1].str_number.clone();
                } else if rng.chance(SISDMK_WITHOUT_STR) {
                    record.str_number.clear();
                }
                population.sisdmk.push(record);
            }
        }
        population.people = truth;
        population
    }

    /// Every record.
    pub fn records(&self) -> usize {
        self.regnakes.len() + self.kki.len() + self.sisdmk.len()
    }
}

/// Another person with `previous`'s name and birth place, born another day of the same
/// year, so with another NIK.
fn twin_by_name(person: &mut Person, previous: &Person, rng: &mut Seeded) {
    let Some(born) = previous.birth_date else { return };
    let day = NaiveDate::from_ymd_opt(born.year(), 1, 1).unwrap() + Duration::days(rng.below(365) as i64);
    let day = if day == born { day + Duration::days(1) } else { day };
    person.full_name = previous.full_name.clone();
    person.birth_place = previous.birth_place.clone();
    person.sex = previous.sex;
    person.birth_date = Some(day);
    person.nik = format!(
        "{}{}{}",
        &previous.nik[..6],
        people::nik_for(0, 0, 0, day, person.sex, 0)[6..12].to_owned(),
        &person.nik[12..]
    );
}

/// Another person born the same day in the same district as `previous`: their NIKs differ
/// in the first digit of the serial, 9 for theirs (serials from an index stay under 9000).
fn nik_neighbour(person: &mut Person, previous: &Person) {
    assert!(
        previous.nik[12..].starts_with(|d: char| d < '9'),
        "people's serials stay under 9000"
    );
    person.nik = format!("{}9{}", &previous.nik[..12], &previous.nik[13..]);
    person.birth_date = previous.birth_date;
    person.birth_place = previous.birth_place.clone();
    person.sex = previous.sex;
}

/// `person` as one system writes them: name and birth place with their noise, the birth
/// date sometimes missing.
fn written(person: &Person, rng: &mut Seeded) -> Person {
    let mut record = person.clone();
    record.full_name = name_as_written(person, rng);
    record.birth_place = place_as_written(&person.birth_place, rng);
    if rng.chance(NO_BIRTH_DATE) {
        record.birth_date = None;
    }
    record
}

fn name_as_written(person: &Person, rng: &mut Seeded) -> String {
    let mut name = person.full_name.clone();
    if rng.chance(OLD_SPELLING) {
        name = old_spelling(&name);
    }
    if rng.chance(TITLED) {
        let (before, after) = match person.profession {
            "Dokter" => ("dr. ", ""),
            "Dokter Gigi" => ("drg. ", ""),
            "Dokter Spesialis" => ("dr. ", *rng.pick(&[", Sp.PD", ", Sp.OG(K)", ", Sp.A, M.Kes"])),
            "Perawat" => *rng.pick(&[("Ns. ", ", S.Kep"), ("", ", A.Md.Kep")]),
            "Bidan" => *rng.pick(&[("Bd. ", ", S.Tr.Keb"), ("", ", A.Md.Keb")]),
            "Apoteker" => ("apt. ", ", S.Farm"),
            _ => ("", *rng.pick(&[", A.Md.Kes", ", S.Tr.Kes", ", S.KM"])),
        };
        name = format!("{before}{name}{after}");
    }
    if rng.chance(UPPER_CASE) {
        name = name.to_uppercase();
    }
    if rng.chance(DOUBLE_SPACE) {
        name = name.replacen(' ', "  ", 1);
    }
    name
}

/// A modern name as it was written before the 1972 reform: Joko → Djoko, Cahya → Tjahya,
/// Nyoman → Njoman, Syarif → Sjarif, Khairul → Chairul, Budi → Boedi.
fn old_spelling(name: &str) -> String {
    const OLD: &[(&str, &str)] = &[
        ("j", "dj"),
        ("c", "tj"),
        ("ny", "nj"),
        ("sy", "sj"),
        ("kh", "ch"),
        ("u", "oe"),
    ];
    name.split(' ')
        .map(|word| {
            let old = OLD
                .iter()
                .fold(word.to_lowercase(), |word, (new, old)| word.replace(new, old));
            let mut letters = old.chars();
            letters
                .next()
                .map(|first| first.to_uppercase().chain(letters).collect())
                .unwrap_or_default()
        })
        .collect::<Vec<String>>()
        .join(" ")
}

/// Other ways a birth place is written: its colloquial, colonial or pre-reform name, one of
/// its parts, or under its kind of region.
const PLACE_ALIASES: &[(&str, &[&str])] = &[
    (
        "Yogyakarta",
        &["Jogja", "Jogjakarta", "DI Yogyakarta", "Daerah Istimewa Yogyakarta"],
    ),
    ("Makassar", &["Ujung Pandang", "Makasar"]),
    (
        "Jakarta",
        &["DKI Jakarta", "Jakarta Selatan", "Jakarta Pusat", "Djakarta", "Batavia"],
    ),
    ("Surakarta", &["Solo"]),
    ("Bogor", &["Buitenzorg", "Kab. Bogor"]),
    ("Bandar Lampung", &["Tanjung Karang", "Tandjoengkarang"]),
    ("Palangka Raya", &["Palangkaraya"]),
    ("Surabaya", &["Soerabaja"]),
    ("Jayapura", &["Hollandia"]),
    ("Banda Aceh", &["Kutaraja", "Koetaradja"]),
];

fn place_as_written(place: &str, rng: &mut Seeded) -> String {
    if !rng.chance(PLACE_WRITTEN_OTHERWISE) {
        return place.to_string();
    }
    match PLACE_ALIASES.iter().find(|(canonical, _)| *canonical == place) {
        Some((_, aliases)) if rng.chance(0.7) => rng.pick(aliases).to_string(),
        _ => format!("{}{place}", rng.pick(&["Kota ", "Kabupaten ", "Kab. ", "KOTA "])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_record_is_a_person_once_per_system_and_the_noise_is_there() {
        let population = Population::generate(2_000, 7);
        for records in [&population.regnakes, &population.kki, &population.sisdmk] {
            let people: HashSet<usize> = records.iter().map(|p| p.index).collect();
            assert_eq!(people.len(), records.len(), "one record per person and system");
        }
        let all: Vec<&Person> = (population.regnakes.iter())
            .chain(&population.kki)
            .chain(&population.sisdmk)
            .collect();
        let share = |test: &dyn Fn(&Person) -> bool| all.iter().filter(|p| test(p)).count() as f64 / all.len() as f64;
        assert!(share(&|p| p.full_name.contains(", ") || p.full_name.contains(". ")) > 0.15);
        assert!(share(&|p| p.birth_date.is_none()) > 0.03);
        assert!(share(&|p| p.birth_place.starts_with("Kota ")) > 0.01);
        assert!(share(&|p| p.str_number.is_empty()) > 0.05);
        assert!(share(&|p| p.full_name.to_lowercase().contains("oe")) > 0.02);
        assert_eq!(old_spelling("Joko Cahyadi Nyoman Budi"), "Djoko Tjahyadi Njoman Boedi");
        let niks: HashSet<&str> = population.people.iter().map(|p| p.nik.as_str()).collect();
        assert_eq!(niks.len(), population.people.len(), "no two people share a NIK");
    }

    #[test]
    fn hard_negatives_are_different_people_that_look_alike() {
        let population = Population::generate(2_000, 7);
        let sisdmk = &population.sisdmk;
        let mut niks: Vec<&str> = sisdmk.iter().map(|p| p.nik.as_str()).collect();
        niks.sort();
        let neighbours = niks
            .windows(2)
            .filter(|w| w[0][..12] == w[1][..12] && w[0] != w[1])
            .count();
        assert!(neighbours > 10, "{neighbours} NIKs one digit apart");
        let mut seen = HashSet::new();
        let twins = (population.people.iter())
            .filter(|p| !seen.insert((&p.full_name, &p.birth_place, p.birth_date.map(|d| d.year()))))
            .count();
        assert!(twins > 40, "{twins} twins by name, birth place and year");
    }
}
