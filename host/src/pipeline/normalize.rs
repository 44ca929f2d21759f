//! Normalization of names and birth places before they are blind-indexed, from the data
//! tables below: the same person written by two registries, or by one registry in two eras,
//! gives the same key. "dr. Soetjipto Djojo, Sp.PD" and "SUCIPTO JOJO" are one name;
//! "Kota Jogja" and "Yogyakarta" one place.
//!
//! The keys are stored (`practitioners.match_index`), so changing any table changes what a
//! stored key should be: bump [`VERSION`] with it, and the hub recomputes the stored keys
//! when it starts (`Pipeline::upgrade`).

use std::collections::HashMap;
use std::sync::LazyLock;

/// The version of these tables that stored keys were computed with
/// (`practitioners.match_version`). 1 was the titles-only rule before the tables.
pub const VERSION: i64 = 2;

/// Titles written before a name: honorifics, professions (dr., drg., Ns., apt., Bd.) and
/// religious titles. A token made of one of these and a dot before the name ("dr.Siti") is
/// split there.
const TITLES_BEFORE: &[&str] = &[
    "dr", "drg", "drh", "ns", "ners", "apt", "bd", "prof", "ir", "drs", "dra", "h", "hj", "kh",
];

/// Degrees written after a name, letters only (S.Kep → `skep`, A.Md.Keb → `amdkeb`): the
/// health professions' diplomas (A.Md.*), applied bachelors (S.Tr.*), bachelors, masters and
/// doctorates, and the common others a health worker's name carries.
const DEGREES: &[&str] = &[
    "amd",
    "amdkep",
    "amdkeb",
    "amdkes",
    "amdfarm",
    "amdgz",
    "amdak",
    "amdanakes",
    "amdrad",
    "amdft",
    "amdkl",
    "amdkg",
    "amdrmik",
    "amdtem",
    "amdoft",
    "sst",
    "strkeb",
    "strkep",
    "strkes",
    "strgz",
    "strrad",
    "skep",
    "sked",
    "skg",
    "sfarm",
    "sgz",
    "skm",
    "sft",
    "ssi",
    "spsi",
    "sh",
    "se",
    "spd",
    "ssos",
    "st",
    "skom",
    "mkes",
    "mkm",
    "mkep",
    "mkeb",
    "mfarm",
    "mgz",
    "mmr",
    "mars",
    "mpd",
    "msi",
    "mph",
    "msc",
    "mm",
    "mba",
    "phd",
    "finasim",
];

/// Specialist and subspecialist titles: these followed by a dot and a field code (Sp.PD,
/// Sp.OG(K), Sp.Kep.MB, Subsp.KV), however many parts the code has.
const SPECIALIST: &[&str] = &["sp.", "subsp."];

/// The spellings before the 1972 reform (EYD) and their modern form, applied in this order
/// to every name and place (`dj` before `nj`: see [`modern`]): Soekarno → Sukarno, Djoko → Joko, Tjipto → Cipto, Sjarif →
/// Syarif, Chairul → Khairul, Njoman → Nyoman. Old `j` for modern `y` (Tjahjono, Cahyono)
/// is not folded: it would also make the modern Joko and Yoko one name.
const OLD_SPELLINGS: &[(&str, &str)] = &[
    ("oe", "u"),
    ("dj", "j"),
    ("tj", "c"),
    ("sj", "sy"),
    ("ch", "kh"),
    ("nj", "ny"),
];

/// Words that say what kind of region a birth place is, not which: "Kota Bandung",
/// "Kabupaten Bogor", "Kab. Sleman", "DKI Jakarta", "DI Yogyakarta", "Provinsi ...".
const PLACE_KINDS: &[&str] = &[
    "kota",
    "kabupaten",
    "kab",
    "dki",
    "di",
    "daerah",
    "istimewa",
    "provinsi",
    "prov",
];

/// Other names of a place, written without spaces, and the BPS name they stand for:
/// colloquial names, colonial and pre-reform names, one city's parts. Both sides are read
/// through [`OLD_SPELLINGS`] like every place.
const PLACE_ALIASES: &[(&str, &str)] = &[
    ("jogja", "yogyakarta"),
    ("jogjakarta", "yogyakarta"),
    ("yogya", "yogyakarta"),
    ("jogya", "yogyakarta"),
    ("ujungpandang", "makassar"),
    ("makasar", "makassar"),
    ("batavia", "jakarta"),
    ("jakartapusat", "jakarta"),
    ("jakartautara", "jakarta"),
    ("jakartabarat", "jakarta"),
    ("jakartaselatan", "jakarta"),
    ("jakartatimur", "jakarta"),
    ("buitenzorg", "bogor"),
    ("solo", "surakarta"),
    ("surabaja", "surabaya"),
    ("kutaraja", "bandaaceh"),
    ("tanjungkarang", "bandarlampung"),
    ("telukbetung", "bandarlampung"),
    ("hollandia", "jayapura"),
    ("sukarnapura", "jayapura"),
];

/// A name as matched: titles and degrees dropped, old spellings modernized, lower case,
/// letters and digits only, one space between words.
pub fn name(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in words(value) {
        if SPECIALIST.iter().any(|s| word.starts_with(s)) {
            continue;
        }
        // "dr.siti": a title glued to the name by its dot.
        let word = match word.split_once('.') {
            Some((title, rest)) if TITLES_BEFORE.contains(&title) && rest.starts_with(char::is_alphabetic) => rest,
            _ => word.as_str(),
        };
        let letters = letters(word);
        if letters.is_empty() || TITLES_BEFORE.contains(&letters.as_str()) || DEGREES.contains(&letters.as_str()) {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&modern(letters));
    }
    out
}

/// A birth place as matched: the kind of region dropped, old spellings modernized, letters
/// only without spaces ("Palangka Raya" and "Palangkaraya" are one place), aliases resolved.
pub fn place(value: &str) -> String {
    /// [`PLACE_ALIASES`] read as every place is, once.
    static ALIASES: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
        (PLACE_ALIASES.iter())
            .map(|(alias, canonical)| (modern(alias.to_string()), modern(canonical.to_string())))
            .collect()
    });
    let mut joined = String::with_capacity(value.len());
    for word in words(value) {
        let letters = letters(&word);
        if !letters.is_empty() && !PLACE_KINDS.contains(&letters.as_str()) {
            joined.push_str(&modern(letters));
        }
    }
    match ALIASES.get(&joined) {
        Some(canonical) => canonical.clone(),
        None => joined,
    }
}

/// Lower-cased words, split at spaces and commas.
fn words(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn letters(word: &str) -> String {
    word.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// `word` in modern spelling: each of [`OLD_SPELLINGS`] in turn over the whole word, so that
/// old and modern spellings of a word end the same (Tandjung → Tanjung → Tanyung, as the
/// modern Tanjung does: its `nj` is the old `ndj`, never the old `nj`). Most words hold no
/// old spelling and are returned as they are: this runs four times per record on the sync
/// path, and replacing unconditionally (six allocations a word) cost a third of the sync's
/// throughput.
fn modern(word: String) -> String {
    let old = |pair: &[u8]| OLD_SPELLINGS.iter().any(|(old, _)| old.as_bytes() == pair);
    if !word.as_bytes().windows(2).any(old) {
        return word;
    }
    OLD_SPELLINGS
        .iter()
        .fold(word, |word, (old, new)| word.replace(old, new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_degrees_around_a_name_are_not_the_name() {
        let plain = name("Siti Rahayu");
        for written in [
            "dr. Siti  Rahayu, S.Kep.",
            "SITI RAHAYU, A.Md.Keb",
            "Ns. Siti Rahayu, S.Kep., M.Kes",
            "dr.Siti Rahayu, Sp.PD",
            "dr. Siti Rahayu, Sp.OG(K)",
            "Hj. Siti Rahayu S.Tr.Keb",
            "Prof. dr. Siti Rahayu, Sp.Kep.MB, PhD",
        ] {
            assert_eq!(name(written), plain, "{written}");
        }
        assert_eq!(plain, "siti rahayu");
    }

    #[test]
    fn old_spellings_are_the_modern_name() {
        assert_eq!(name("Soekarno"), name("Sukarno"));
        assert_eq!(name("DJOKO Soetjipto"), name("Joko Sucipto"));
        assert_eq!(name("Sjarif Chairul"), name("Syarif Khairul"));
        assert_eq!(name("Njoman"), name("Nyoman"));
        assert_eq!(name("Tandjung"), name("Tanjung"), "the modern nj is the old ndj");
        assert_ne!(name("Joko"), name("Yoko"), "old j for y is not folded");
    }

    #[test]
    fn a_place_is_the_same_under_its_kind_prefix_alias_or_old_spelling() {
        for (written, canonical) in [
            ("Kota Jogja", "Yogyakarta"),
            ("DI Yogyakarta", "Yogyakarta"),
            ("Ujung Pandang", "Makassar"),
            ("DKI Jakarta", "Jakarta"),
            ("Kota Jakarta Selatan", "Jakarta"),
            ("Djakarta", "Jakarta"),
            ("Kab. Bogor", "Bogor"),
            ("Kabupaten Buitenzorg", "Bogor"),
            ("Palangkaraya", "Palangka Raya"),
            ("Soerabaja", "Surabaya"),
            ("Tandjoengkarang", "Bandar Lampung"),
        ] {
            assert_eq!(place(written), place(canonical), "{written}");
        }
        assert_ne!(place("Bandung"), place("Bogor"));
    }

    #[test]
    fn the_tables_change_only_with_a_new_version() {
        // A stored key is only recomputed when VERSION moves: this pins what VERSION 2 is.
        let key = format!(
            "{}|{}",
            name("Prof. dr. Soetjipto Djojo, Sp.PD, M.Kes"),
            place("Kota Ujung Pandang")
        );
        assert_eq!((VERSION, key.as_str()), (2, "sucipto jojo|makassar"));
    }

    #[test]
    fn every_table_entry_is_in_the_docs() {
        let docs = include_str!("../../../docs/golden-record.md");
        let section = docs
            .split("### Normalization")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("docs/golden-record.md has a Normalization section");
        let listed = |entry: &str| section.contains(&format!("`{entry}`"));
        let entries = (TITLES_BEFORE.iter().chain(DEGREES).chain(PLACE_KINDS))
            .copied()
            .chain(SPECIALIST.iter().copied())
            .chain(OLD_SPELLINGS.iter().flat_map(|(old, new)| [*old, *new]))
            .chain(PLACE_ALIASES.iter().flat_map(|(alias, canonical)| [*alias, *canonical]));
        let missing: Vec<&str> = entries.filter(|e| !listed(e)).collect();
        assert!(missing.is_empty(), "not in docs/golden-record.md: {missing:?}");
    }
}
