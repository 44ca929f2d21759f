//! Practitioners: identifying columns sealed (see `crypto`), blind indexes for matching and
//! lookup, a keyed content hash to tell unchanged rows without decrypting.

use super::Timestamp;
use super::search::{Bind, Filter, Search, TimeRange};
use super::{Backed, Backend, Conn, Connection, Db, StoreError, Tx, on, on_tx, trusted};
use sqlx::{FromRow, PgConnection, Row, SqliteConnection};

/// The blind indexes and content hash of a stored practitioner: all matching needs.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MatchKeys {
    pub id: String,
    pub str_index: Option<Vec<u8>>,
    pub nik_index: Option<Vec<u8>>,
    pub match_index: Option<Vec<u8>>,
    pub twin_index: Option<Vec<u8>>,
    pub content_hash: Vec<u8>,
}

/// A stored practitioner found by an STR number they hold or once held.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StrHolder {
    pub held_str: Vec<u8>,
    #[sqlx(flatten)]
    pub keys: MatchKeys,
}

/// One STR number a practitioner holds or held (`practitioner_strs`): its blind index finds
/// them after a re-issue; the number is sealed (AAD `practitioner_strs.str_number`, `id`) so
/// a reindex can recompute the index.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SealedStr {
    pub id: String,
    pub str_index: Vec<u8>,
    pub practitioner_id: String,
    pub key_version: i64,
    pub str_number: Vec<u8>,
    pub first_seen: Timestamp,
}

/// Which source systems contributed to a practitioner, through which connector, and the
/// matching tier that joined each (`created`, `str`, `nik`, `fallback`).
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize, schemars::JsonSchema)]
pub struct SourceLink {
    #[serde(skip)]
    pub practitioner_id: String,
    #[serde(rename = "system")]
    pub source_system: String,
    pub connector_id: String,
    /// The source's own id of the record (`None` only until the hub, upgraded from before
    /// migration 0015, has started once).
    #[serde(rename = "record_id")]
    pub source_id: Option<String>,
    /// `None` for records stored before the hub recorded tiers (migration 0014).
    pub matched_by: Option<String>,
    /// The source's own change time of its latest record.
    #[serde(rename = "updated_at")]
    pub source_updated_at: Option<String>,
}

/// The sources of the given practitioners (see [`SourceLink`]), without their records.
pub async fn source_links(conn: &mut Conn, ids: &[String]) -> Result<Vec<SourceLink>, StoreError> {
    contributions_as(
        conn,
        "practitioner_id, source_system, connector_id, source_id, matched_by, source_updated_at",
        ids,
    )
    .await
}

/// A practitioner row as stored: identifying columns are ciphertexts. On update, a `None`
/// sealed column keeps the stored value (a source that does not know a field never erases
/// it).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SealedPractitioner {
    pub id: String,
    pub str_index: Option<Vec<u8>>,
    pub nik_index: Option<Vec<u8>>,
    pub match_index: Option<Vec<u8>>,
    /// The normalization tables `match_index` and `twin_index` were computed with
    /// (`pipeline::normalize`).
    pub match_version: Option<i64>,
    pub twin_index: Option<Vec<u8>>,
    pub key_version: i64,
    pub nik: Option<Vec<u8>>,
    pub str_number: Option<Vec<u8>>,
    pub full_name: Option<Vec<u8>>,
    pub birth_place: Option<Vec<u8>>,
    pub birth_date: Option<Vec<u8>>,
    pub phone: Option<Vec<u8>>,
    pub email: Option<Vec<u8>>,
    pub details: Option<Vec<u8>>,
    pub gender: String,
    pub profession: Option<String>,
    pub content_hash: Vec<u8>,
    pub source_system: String,
    pub source_id: String,
    pub source_updated_at: Option<String>,
    /// JSON: each golden field's source system and time (`pipeline::golden::Provenance`).
    pub provenance: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Set by the database, never written: 1 when the practitioner is stored, one more on
    /// every write of their golden record since (FHIR `meta.versionId`).
    #[sqlx(default)]
    pub version_id: i64,
}

/// What one source system last said about a practitioner: the canonical record, sealed whole
/// under its [`SealedContribution::row_id`].
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SealedContribution {
    pub practitioner_id: String,
    pub source_system: String,
    /// The connector that brought it.
    pub connector_id: String,
    pub key_version: i64,
    pub record: Vec<u8>,
    pub content_hash: Vec<u8>,
    pub source_updated_at: Option<String>,
    pub received_at: Timestamp,
    /// The matching tier that joined this record to the practitioner (`created` for the
    /// record that made them); `None` for records stored before migration 0014.
    pub matched_by: Option<String>,
    /// The source's own id of the record, in clear (see [`SourceLink`]).
    pub source_id: Option<String>,
}

/// A contribution's keyed content hash, without the record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, sqlx::FromRow)]
pub struct ContributionHash {
    pub practitioner_id: String,
    pub source_system: String,
    pub content_hash: Vec<u8>,
}

impl SealedContribution {
    /// `<practitioner id>/<system>`: the primary key, and the row id in `record`'s AAD.
    pub fn row_id(practitioner_id: &str, source_system: &str) -> String {
        format!("{practitioner_id}/{source_system}")
    }
}

/// An earlier version of a practitioner's golden record (`practitioner_versions`): the row as
/// it stood before a write superseded it, its sealed columns still bound to `practitioners`
/// and the practitioner's id.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SealedVersion {
    pub practitioner_id: String,
    pub version_id: i64,
    pub key_version: i64,
    pub details: Option<Vec<u8>>,
    pub nik: Option<Vec<u8>>,
    pub str_number: Option<Vec<u8>>,
    pub full_name: Option<Vec<u8>>,
    pub birth_place: Option<Vec<u8>>,
    pub birth_date: Option<Vec<u8>>,
    pub phone: Option<Vec<u8>>,
    pub email: Option<Vec<u8>>,
    pub gender: String,
    pub profession: Option<String>,
    pub source_system: String,
    pub source_id: String,
    pub source_updated_at: Option<String>,
    pub provenance: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<SealedVersion> for SealedPractitioner {
    /// The version as the practitioners row it was, to open the same way; blind indexes and
    /// content hash are not kept with versions, so they are empty.
    fn from(v: SealedVersion) -> Self {
        SealedPractitioner {
            id: v.practitioner_id,
            str_index: None,
            nik_index: None,
            match_index: None,
            match_version: None,
            twin_index: None,
            key_version: v.key_version,
            nik: v.nik,
            str_number: v.str_number,
            full_name: v.full_name,
            birth_place: v.birth_place,
            birth_date: v.birth_date,
            phone: v.phone,
            email: v.email,
            details: v.details,
            gender: v.gender,
            profession: v.profession,
            content_hash: Vec::new(),
            source_system: v.source_system,
            source_id: v.source_id,
            source_updated_at: v.source_updated_at,
            provenance: v.provenance,
            created_at: v.created_at,
            updated_at: v.updated_at,
            version_id: v.version_id,
        }
    }
}

/// Which blind index a lookup uses.
#[derive(Clone, Copy, Debug)]
pub enum IndexColumn {
    Str,
    Nik,
}

const COLUMNS: &str = "id, str_index, nik_index, match_index, match_version, twin_index, key_version, nik, str_number, full_name, birth_place, \
     birth_date, phone, email, details, gender, profession, content_hash, source_system, source_id, source_updated_at, \
     provenance, created_at, updated_at";
const COLUMN_COUNT: usize = 24;
/// What `practitioner_versions` keeps of a superseded row, besides its id and version.
const VERSION_COLUMNS: &str = "key_version, details, nik, str_number, full_name, birth_place, birth_date, phone, email, \
     gender, profession, source_system, source_id, source_updated_at, provenance, created_at, updated_at";
/// Every write of a stored practitioner is a new version of them.
const NEXT_VERSION: &str = "version_id = practitioners.version_id + 1";

/// Sealed columns merge on update: new ciphertext if given, else the stored one.
const UPSERT_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET \
     str_index = COALESCE(excluded.str_index, practitioners.str_index), \
     nik_index = COALESCE(excluded.nik_index, practitioners.nik_index), \
     match_index = COALESCE(excluded.match_index, practitioners.match_index), \
     match_version = CASE WHEN excluded.match_index IS NULL THEN practitioners.match_version \
                          ELSE excluded.match_version END, \
     twin_index = COALESCE(excluded.twin_index, practitioners.twin_index), \
     key_version = CASE WHEN excluded.key_version < practitioners.key_version \
                        THEN excluded.key_version ELSE practitioners.key_version END, \
     nik = COALESCE(excluded.nik, practitioners.nik), \
     str_number = COALESCE(excluded.str_number, practitioners.str_number), \
     full_name = COALESCE(excluded.full_name, practitioners.full_name), \
     birth_place = COALESCE(excluded.birth_place, practitioners.birth_place), \
     birth_date = COALESCE(excluded.birth_date, practitioners.birth_date), \
     phone = COALESCE(excluded.phone, practitioners.phone), \
     email = COALESCE(excluded.email, practitioners.email), \
     details = COALESCE(excluded.details, practitioners.details), \
     gender = excluded.gender, \
     profession = COALESCE(excluded.profession, practitioners.profession), \
     content_hash = excluded.content_hash, \
     source_system = excluded.source_system, source_id = excluded.source_id, \
     source_updated_at = excluded.source_updated_at, \
     provenance = COALESCE(excluded.provenance, practitioners.provenance), updated_at = excluded.updated_at";

/// Search-key entries counted at most, to put the rarest key of a search first: 0.05 ms
/// for three keys on SQLite, one of them 12,000 practitioners' first word.
const KEY_COUNT_CAP: i64 = 256;

/// A condition of a practitioner search (`search::Search`): identifying fields are matched
/// by blind index only.
#[derive(Clone, Debug)]
pub enum Condition {
    Id(String),
    /// Every one of these search keys (words of the name, the birth date:
    /// `pipeline::derive`).
    SearchKeys(Vec<Vec<u8>>),
    NikIndex(Vec<u8>),
    /// An STR number they hold or held before a re-issue.
    StrIndex(Vec<u8>),
    Gender(String),
    UpdatedAt(TimeRange),
}

impl Filter for Condition {
    fn clause(&self, bind: &mut dyn FnMut(Bind) -> String) -> String {
        match self {
            Condition::Id(id) => format!("id = {}", bind(Bind::Text(id.clone()))),
            // The first key finds the candidates, each other key is probed per candidate
            // (its primary key): [`Db::search_practitioners`] puts the rarest key first.
            // Each key as `id IN (…)` made SQLite read every practitioner of the first key
            // and build a list of every other's, whatever their sizes.
            Condition::SearchKeys(keys) => {
                let each: Vec<String> = (keys.iter().enumerate())
                    .map(|(at, key)| {
                        let key = bind(Bind::Bytes(key.clone()));
                        match at {
                            0 => format!(
                                "id IN (SELECT practitioner_id FROM practitioner_search_keys WHERE search_key = {key})"
                            ),
                            _ => format!(
                                "EXISTS (SELECT 1 FROM practitioner_search_keys k \
                                 WHERE k.search_key = {key} AND k.practitioner_id = practitioners.id)"
                            ),
                        }
                    })
                    .collect();
                format!("({})", each.join(" AND "))
            }
            Condition::NikIndex(index) => format!("nik_index = {}", bind(Bind::Bytes(index.clone()))),
            Condition::StrIndex(index) => format!(
                "id IN (SELECT practitioner_id FROM practitioner_strs WHERE str_index = {})",
                bind(Bind::Bytes(index.clone()))
            ),
            Condition::Gender(gender) => format!("gender = {}", bind(Bind::Text(gender.clone()))),
            Condition::UpdatedAt(range) => range.clause("updated_at", bind),
        }
    }
}

impl Db {
    pub async fn practitioners_by_index(
        &self,
        column: IndexColumn,
        index: &[u8],
        limit: i64,
    ) -> Result<Vec<SealedPractitioner>, StoreError> {
        on!(self.pool(), pool => {
            // An STR number finds whoever holds it or held it before a re-issue.
            let filter = match column {
                IndexColumn::Str => "id IN (SELECT practitioner_id FROM practitioner_strs WHERE str_index = $1)",
                IndexColumn::Nik => "nik_index = $1",
            };
            let rows = sqlx::query(trusted(format!(
                "SELECT {COLUMNS}, version_id FROM practitioners WHERE {filter} ORDER BY id LIMIT $2"
            )))
            .bind(index)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(SealedPractitioner::from_row).collect::<Result<_, _>>()?)
        })
    }

    /// The practitioners with these ids (those that exist).
    pub async fn practitioners_by_id(&self, ids: &[String]) -> Result<Vec<SealedPractitioner>, StoreError> {
        let mut tx = self.begin().await?;
        let select = format!("SELECT {COLUMNS}, version_id FROM practitioners");
        super::select_where_in(&mut tx, &select, "id", ids).await
    }

    /// Practitioner `id`'s earlier versions, newest first, below version `before` if given.
    pub async fn practitioner_versions(
        &self,
        id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SealedVersion>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_as(trusted(format!(
                "SELECT practitioner_id, version_id, {VERSION_COLUMNS} FROM practitioner_versions \
                 WHERE practitioner_id = $1 AND version_id < $2 ORDER BY version_id DESC LIMIT $3"
            )))
            .bind(id)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Ordered by id after `after` (cursor pagination).
    pub async fn list_practitioners(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SealedPractitioner>, StoreError> {
        on!(self.pool(), pool => {
            let rows = sqlx::query(trusted(format!(
                "SELECT {COLUMNS}, version_id FROM practitioners WHERE id > $1 ORDER BY id LIMIT $2"
            )))
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(SealedPractitioner::from_row).collect::<Result<_, _>>()?)
        })
    }

    /// The practitioners every condition of `search` holds for, ordered by id after
    /// `search.after`, and (when `count`) how many there are in all.
    pub async fn search_practitioners(
        &self,
        search: &Search<Condition>,
        limit: i64,
        count: bool,
    ) -> Result<(Vec<SealedPractitioner>, Option<i64>), StoreError> {
        let search = self.rarest_key_first(search).await?;
        self.search(
            "practitioners",
            &format!("{COLUMNS}, version_id"),
            &search,
            limit,
            count,
        )
        .await
    }

    /// `search` with every search key it requires (the words of a name and a birth date,
    /// each asked without alternatives) as one condition, first, the key fewest
    /// practitioners have first: it finds the candidates, the others are probed. A common
    /// first word ("Siti": thousands) leading the birth date (a handful) made a search
    /// read thousands of practitioners (BENCHMARKS.md).
    async fn rarest_key_first(&self, search: &Search<Condition>) -> Result<Search<Condition>, StoreError> {
        let mut required = Vec::new();
        let mut all_of = Vec::with_capacity(search.all_of.len());
        for any_of in &search.all_of {
            match any_of.as_slice() {
                [Condition::SearchKeys(keys)] => required.extend(keys.iter().cloned()),
                _ => all_of.push(any_of.clone()),
            }
        }
        if required.len() > 1 {
            let counts = self.search_key_counts(&required).await?;
            let mut counted: Vec<(i64, Vec<u8>)> = counts.into_iter().zip(required).collect();
            counted.sort_by_key(|(count, _)| *count);
            required = counted.into_iter().map(|(_, key)| key).collect();
        }
        if !required.is_empty() {
            all_of.insert(0, vec![Condition::SearchKeys(required)]);
        }
        Ok(Search {
            all_of,
            after: search.after.clone(),
        })
    }

    /// How many practitioners have each of `keys`, counted up to [`KEY_COUNT_CAP`]: enough
    /// to tell a rare key from a common one, in one statement that reads at most that many
    /// index entries a key.
    async fn search_key_counts(&self, keys: &[Vec<u8>]) -> Result<Vec<i64>, StoreError> {
        let each: Vec<String> = (1..=keys.len())
            .map(|n| {
                format!(
                    "SELECT CAST({n} AS BIGINT) AS at, COUNT(*) AS n FROM (SELECT 1 FROM practitioner_search_keys \
                     WHERE search_key = ${n} LIMIT {KEY_COUNT_CAP}) AS c{n}"
                )
            })
            .collect();
        let sql = format!("{} ORDER BY at", each.join(" UNION ALL "));
        on!(self.pool(), pool => {
            let mut query = sqlx::query_as::<_, (i64, i64)>(trusted(sql));
            for key in keys {
                query = query.bind(key);
            }
            Ok(query.fetch_all(pool).await?.into_iter().map(|(_, n)| n).collect())
        })
    }

    /// Up to `limit` practitioners on the list [`to_derive`] keeps.
    pub async fn practitioners_to_derive(&self, limit: i64) -> Result<Vec<String>, StoreError> {
        on!(self.pool(), pool => {
            Ok(sqlx::query_scalar("SELECT id FROM practitioners_to_derive ORDER BY id LIMIT $1")
                .bind(limit)
                .fetch_all(pool)
                .await?)
        })
    }

    pub async fn count_practitioners(&self) -> Result<i64, StoreError> {
        on!(self.pool(), pool => {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM practitioners")
                .fetch_one(pool)
                .await?;
            Ok(row.try_get("n")?)
        })
    }
}

/// A blind key a practitioner is searched by (a word of the name, the birth date).
#[derive(Clone, Debug)]
pub struct SearchKey {
    pub practitioner_id: String,
    pub search_key: Vec<u8>,
}

/// Replaces the search keys of the `replaced` practitioners, and adds `keys`.
pub async fn write_search_keys(tx: &mut Tx, replaced: &[String], keys: &[SearchKey]) -> Result<(), StoreError> {
    super::delete_where_in(tx, "practitioner_search_keys", "practitioner_id", replaced).await?;
    if keys.is_empty() {
        return Ok(());
    }
    // One practitioner's name may repeat a word ("Nur Nur"): the key is kept once.
    const TAIL: &str = " ON CONFLICT DO NOTHING";
    match tx {
        Backed::Sqlite(tx) => {
            for chunk in keys.chunks(1000) {
                let sql = format!(
                    "INSERT INTO practitioner_search_keys (search_key, practitioner_id) VALUES {}{TAIL}",
                    Backend::Sqlite.placeholders(chunk.len(), 2, 1)
                );
                let mut query = super::batch_write(sql);
                for k in chunk {
                    query = query.bind(&k.search_key).bind(&k.practitioner_id);
                }
                query.execute(&mut **tx).await?;
            }
        }
        Backed::Postgres(tx) => {
            sqlx::query(trusted(format!(
                "INSERT INTO practitioner_search_keys (search_key, practitioner_id) \
                 SELECT * FROM UNNEST($1::bytea[], $2::text[]){TAIL}"
            )))
            .bind(keys.iter().map(|k| k.search_key.as_slice()).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.practitioner_id.as_str()).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Puts practitioners on the list of those whose search rows (`pipeline::derive`) are to be
/// derived again when the hub starts: stored before migration 0021, or their match keys
/// normalized again.
pub async fn to_derive(tx: &mut Tx, ids: &[String]) -> Result<(), StoreError> {
    const TAIL: &str = " ON CONFLICT DO NOTHING";
    match tx {
        Backed::Sqlite(tx) => {
            for chunk in ids.chunks(1000) {
                let sql = format!(
                    "INSERT INTO practitioners_to_derive (id) VALUES {}{TAIL}",
                    Backend::Sqlite.placeholders(chunk.len(), 1, 1)
                );
                let mut query = super::batch_write(sql);
                for id in chunk {
                    query = query.bind(id);
                }
                query.execute(&mut **tx).await?;
            }
        }
        Backed::Postgres(tx) => {
            sqlx::query(trusted(format!(
                "INSERT INTO practitioners_to_derive (id) SELECT * FROM UNNEST($1::text[]){TAIL}"
            )))
            .bind(ids)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Takes practitioners off the list [`to_derive`] keeps.
pub async fn derived(tx: &mut Tx, ids: &[String]) -> Result<(), StoreError> {
    super::delete_where_in(tx, "practitioners_to_derive", "id", ids).await
}

/// Inserts new practitioners and merges updates into stored ones, keeping the versions
/// they supersede.
pub async fn upsert(tx: &mut Tx, rows: &[SealedPractitioner]) -> Result<(), StoreError> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    keep_versions(tx, &ids).await?;
    write(tx, rows, &format!("{UPSERT_TAIL}, {NEXT_VERSION}")).await
}

/// Copies the stored rows of `ids` (those that exist) to `practitioner_versions` as they
/// stand, ciphertexts verbatim: one statement, nothing opened.
async fn keep_versions(tx: &mut Tx, ids: &[String]) -> Result<(), StoreError> {
    super::copy_where_in(
        tx,
        &format!("INSERT INTO practitioner_versions (practitioner_id, version_id, {VERSION_COLUMNS})"),
        &format!("SELECT id, version_id, {VERSION_COLUMNS} FROM practitioners"),
        "id",
        ids,
    )
    .await
}

/// Replaces practitioner `row.id`'s golden record whole: after a split, fields only the taken
/// record gave must go, where [`upsert`] keeps what a source does not say.
pub async fn replace(tx: &mut Tx, row: &SealedPractitioner) -> Result<(), StoreError> {
    let every_column: Vec<String> = (COLUMNS.split(", "))
        .filter(|c| !["id", "created_at"].contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let tail = format!(
        " ON CONFLICT (id) DO UPDATE SET {}, {NEXT_VERSION}",
        every_column.join(", ")
    );
    keep_versions(tx, std::slice::from_ref(&row.id)).await?;
    write(tx, std::slice::from_ref(row), &tail).await
}

/// Inserts `rows`, and on a stored id does what `tail` (`ON CONFLICT (id) …`) says.
async fn write(tx: &mut Tx, rows: &[SealedPractitioner], tail: &str) -> Result<(), StoreError> {
    match tx {
        Backed::Sqlite(tx) => write_sqlite(tx, rows, tail).await,
        Backed::Postgres(tx) => write_postgres(tx, rows, tail).await,
    }
}

/// SQLite: one multi-row statement per 1,000 rows (24 columns × 1,000 rows stays under its
/// 32,766-parameter limit).
async fn write_sqlite(tx: &mut SqliteConnection, rows: &[SealedPractitioner], tail: &str) -> Result<(), StoreError> {
    for chunk in rows.chunks(1000) {
        let sql = format!(
            "INSERT INTO practitioners ({COLUMNS}) VALUES {}{tail}",
            Backend::Sqlite.placeholders(chunk.len(), COLUMN_COUNT, 1)
        );
        let mut query = super::batch_write(sql);
        for p in chunk {
            query = query
                .bind(&p.id)
                .bind(&p.str_index)
                .bind(&p.nik_index)
                .bind(&p.match_index)
                .bind(p.match_version)
                .bind(&p.twin_index)
                .bind(p.key_version)
                .bind(&p.nik)
                .bind(&p.str_number)
                .bind(&p.full_name)
                .bind(&p.birth_place)
                .bind(&p.birth_date)
                .bind(&p.phone)
                .bind(&p.email)
                .bind(&p.details)
                .bind(&p.gender)
                .bind(&p.profession)
                .bind(&p.content_hash)
                .bind(&p.source_system)
                .bind(&p.source_id)
                .bind(&p.source_updated_at)
                .bind(&p.provenance)
                .bind(p.created_at)
                .bind(p.updated_at);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// PostgreSQL: one array per column through `UNNEST`, so a batch of any size is one
/// statement of 24 parameters (a 1,000-row VALUES list has 24,000, each parsed and planned).
async fn write_postgres(tx: &mut PgConnection, rows: &[SealedPractitioner], tail: &str) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&SealedPractitioner) -> &Option<Vec<u8>>| rows.iter().map(f).collect::<Vec<_>>();
    let text = |f: fn(&SealedPractitioner) -> &str| rows.iter().map(f).collect::<Vec<_>>();
    let optional_text = |f: fn(&SealedPractitioner) -> Option<&str>| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(trusted(format!(
        "INSERT INTO practitioners ({COLUMNS}) SELECT * FROM UNNEST($1::text[], $2::bytea[], $3::bytea[], \
         $4::bytea[], $5::int8[], $6::bytea[], $7::int8[], $8::bytea[], $9::bytea[], $10::bytea[], $11::bytea[], \
         $12::bytea[], $13::bytea[], $14::bytea[], $15::bytea[], $16::text[], $17::text[], $18::bytea[], \
         $19::text[], $20::text[], $21::text[], $22::text[], $23::timestamptz[], $24::timestamptz[]){tail}"
    )))
    .bind(text(|p| &p.id))
    .bind(column(|p| &p.str_index))
    .bind(column(|p| &p.nik_index))
    .bind(column(|p| &p.match_index))
    .bind(rows.iter().map(|p| p.match_version).collect::<Vec<_>>())
    .bind(column(|p| &p.twin_index))
    .bind(rows.iter().map(|p| p.key_version).collect::<Vec<_>>())
    .bind(column(|p| &p.nik))
    .bind(column(|p| &p.str_number))
    .bind(column(|p| &p.full_name))
    .bind(column(|p| &p.birth_place))
    .bind(column(|p| &p.birth_date))
    .bind(column(|p| &p.phone))
    .bind(column(|p| &p.email))
    .bind(column(|p| &p.details))
    .bind(text(|p| &p.gender))
    .bind(optional_text(|p| p.profession.as_deref()))
    .bind(rows.iter().map(|p| &p.content_hash).collect::<Vec<_>>())
    .bind(text(|p| &p.source_system))
    .bind(text(|p| &p.source_id))
    .bind(optional_text(|p| p.source_updated_at.as_deref()))
    .bind(optional_text(|p| p.provenance.as_deref()))
    .bind(rows.iter().map(|p| p.created_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|p| p.updated_at).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(super) const CONTRIBUTION_COLUMNS: &str = "id, practitioner_id, source_system, connector_id, key_version, record, \
     content_hash, source_updated_at, received_at, matched_by, source_id";

/// What [`match_keys`] found.
pub struct Found {
    /// Who holds or held each STR number found.
    pub holders: Vec<StrHolder>,
    /// Those found by NIK, review key or id.
    pub people: Vec<MatchKeys>,
}

const MATCH_KEYS: &str = "id, str_index, nik_index, match_index, twin_index, content_hash";

/// The stored practitioners who hold or held any of the STR numbers, those under any of the
/// NIKs or review keys (`twin_index`), and those with any of the ids, read in the caller's
/// transaction: one query per kind.
pub async fn match_keys(
    tx: &mut Tx,
    str_indexes: &[Vec<u8>],
    nik_indexes: &[Vec<u8>],
    twin_indexes: &[Vec<u8>],
    ids: &[String],
) -> Result<Found, StoreError> {
    let holders = super::select_where_in::<StrHolder, _>(
        tx,
        "SELECT s.str_index AS held_str, p.id, p.str_index, p.nik_index, p.match_index, p.twin_index, \
         p.content_hash FROM practitioner_strs s JOIN practitioners p ON p.id = s.practitioner_id",
        "s.str_index",
        str_indexes,
    )
    .await?;
    let select = format!("SELECT {MATCH_KEYS} FROM practitioners");
    let mut people = super::select_where_in::<MatchKeys, _>(tx, &select, "nik_index", nik_indexes).await?;
    people.extend(super::select_where_in::<MatchKeys, _>(tx, &select, "twin_index", twin_indexes).await?);
    people.extend(super::select_where_in::<MatchKeys, _>(tx, &select, "id", ids).await?);
    Ok(Found { holders, people })
}

const STR_COLUMNS: &str = "id, str_index, practitioner_id, key_version, str_number, first_seen";

/// Records STR numbers practitioners hold; one already recorded keeps its holder.
pub async fn insert_strs(tx: &mut Tx, rows: &[SealedStr]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    const TAIL: &str = " ON CONFLICT (str_index) DO NOTHING";
    match tx {
        Backed::Sqlite(tx) => {
            for chunk in rows.chunks(1000) {
                let sql = format!(
                    "INSERT INTO practitioner_strs ({STR_COLUMNS}) VALUES {}{TAIL}",
                    Backend::Sqlite.placeholders(chunk.len(), 6, 1)
                );
                let mut query = super::batch_write(sql);
                for r in chunk {
                    query = query
                        .bind(&r.id)
                        .bind(&r.str_index)
                        .bind(&r.practitioner_id)
                        .bind(r.key_version)
                        .bind(&r.str_number)
                        .bind(r.first_seen);
                }
                query.execute(&mut **tx).await?;
            }
        }
        Backed::Postgres(tx) => {
            sqlx::query(trusted(format!(
                "INSERT INTO practitioner_strs ({STR_COLUMNS}) SELECT * FROM UNNEST($1::text[], $2::bytea[], \
                 $3::text[], $4::int8[], $5::bytea[], $6::timestamptz[]){TAIL}"
            )))
            .bind(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.str_index.as_slice()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.practitioner_id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.key_version).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.str_number.as_slice()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.first_seen).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// The contributions to the given practitioners (one query per 1,000 ids). Run inside the
/// writing transaction, after [`lock`], it sees what no concurrent writer can change.
pub async fn contributions(tx: &mut Tx, ids: &[String]) -> Result<Vec<SealedContribution>, StoreError> {
    contributions_as(tx, CONTRIBUTION_COLUMNS, ids).await
}

/// Which source said what, by hash, about the given practitioners: all that tells an
/// unchanged record, without reading the sealed records (~2.4 KB each).
pub async fn contribution_hashes(tx: &mut Tx, ids: &[String]) -> Result<Vec<ContributionHash>, StoreError> {
    contributions_as(tx, "practitioner_id, source_system, content_hash", ids).await
}

async fn contributions_as<T>(conn: &mut impl Connection, columns: &str, ids: &[String]) -> Result<Vec<T>, StoreError>
where
    T: for<'r> FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let select = format!("SELECT {columns} FROM practitioner_sources");
    super::select_where_in(conn, &select, "practitioner_id", ids).await
}

/// Takes the write lock on the given practitioners for the rest of the transaction (row
/// locks on PostgreSQL; SQLite's one writer lock), so their contributions can be read and
/// merged without a concurrent merge slipping in between.
pub async fn lock(tx: &mut Tx, ids: &[String]) -> Result<(), StoreError> {
    const LOCK: &str = "UPDATE practitioners SET updated_at = updated_at WHERE id";
    match tx {
        Backed::Postgres(tx) => {
            sqlx::query(trusted(format!("{LOCK} = ANY($1)")))
                .bind(ids)
                .execute(&mut **tx)
                .await?;
        }
        Backed::Sqlite(tx) => {
            for chunk in ids.chunks(1000) {
                let sql = format!("{LOCK} IN ({})", Backend::Sqlite.list_placeholders(chunk.len(), 1));
                let mut query = sqlx::query(trusted(sql));
                for id in chunk {
                    query = query.bind(id);
                }
                query.execute(&mut **tx).await?;
            }
        }
    }
    Ok(())
}

/// Stores each source's latest contribution, replacing its previous one.
pub async fn upsert_contributions(tx: &mut Tx, rows: &[SealedContribution]) -> Result<(), StoreError> {
    match tx {
        Backed::Sqlite(tx) => upsert_contributions_sqlite(tx, rows).await,
        Backed::Postgres(tx) => upsert_contributions_postgres(tx, rows).await,
    }
}

const CONTRIBUTION_UPSERT_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET connector_id = excluded.connector_id, \
     key_version = excluded.key_version, record = excluded.record, content_hash = excluded.content_hash, \
     source_updated_at = excluded.source_updated_at, received_at = excluded.received_at, \
     matched_by = excluded.matched_by, source_id = excluded.source_id";

async fn upsert_contributions_sqlite(tx: &mut SqliteConnection, rows: &[SealedContribution]) -> Result<(), StoreError> {
    for chunk in rows.chunks(1000) {
        let sql = format!(
            "INSERT INTO practitioner_sources ({CONTRIBUTION_COLUMNS}) VALUES {}{CONTRIBUTION_UPSERT_TAIL}",
            Backend::Sqlite.placeholders(chunk.len(), 11, 1)
        );
        let mut query = super::batch_write(sql);
        for c in chunk {
            query = query
                .bind(SealedContribution::row_id(&c.practitioner_id, &c.source_system))
                .bind(&c.practitioner_id)
                .bind(&c.source_system)
                .bind(&c.connector_id)
                .bind(c.key_version)
                .bind(&c.record)
                .bind(&c.content_hash)
                .bind(&c.source_updated_at)
                .bind(c.received_at)
                .bind(&c.matched_by)
                .bind(&c.source_id);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// PostgreSQL: one array per column, as [`write_postgres`].
async fn upsert_contributions_postgres(tx: &mut PgConnection, rows: &[SealedContribution]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&SealedContribution) -> &str| rows.iter().map(f).collect::<Vec<_>>();
    let bytes = |f: fn(&SealedContribution) -> &[u8]| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(trusted(format!(
        "INSERT INTO practitioner_sources ({CONTRIBUTION_COLUMNS}) SELECT * FROM UNNEST($1::text[], $2::text[], \
         $3::text[], $4::text[], $5::int8[], $6::bytea[], $7::bytea[], $8::text[], $9::timestamptz[], \
         $10::text[], $11::text[]){CONTRIBUTION_UPSERT_TAIL}"
    )))
    .bind(
        rows.iter()
            .map(|c| SealedContribution::row_id(&c.practitioner_id, &c.source_system))
            .collect::<Vec<_>>(),
    )
    .bind(text(|c| &c.practitioner_id))
    .bind(text(|c| &c.source_system))
    .bind(text(|c| &c.connector_id))
    .bind(rows.iter().map(|c| c.key_version).collect::<Vec<_>>())
    .bind(bytes(|c| &c.record))
    .bind(bytes(|c| &c.content_hash))
    .bind(rows.iter().map(|c| c.source_updated_at.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|c| c.received_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|c| c.matched_by.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|c| c.source_id.as_deref()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Removes `system`'s record from practitioner `id`.
pub async fn delete_contribution(tx: &mut Tx, id: &str, system: &str) -> Result<(), StoreError> {
    on_tx!(tx, tx => {
        sqlx::query("DELETE FROM practitioner_sources WHERE id = $1")
            .bind(SealedContribution::row_id(id, system))
            .execute(&mut *tx)
            .await?;
        Ok(())
    })
}

/// Makes the STR numbers `str_indexes` that practitioner `from` holds `to`'s.
pub async fn move_strs(tx: &mut Tx, from: &str, to: &str, str_indexes: &[Vec<u8>]) -> Result<(), StoreError> {
    on_tx!(tx, tx => {
        for str_index in str_indexes {
            sqlx::query("UPDATE practitioner_strs SET practitioner_id = $3 WHERE practitioner_id = $1 AND str_index = $2")
                .bind(from)
                .bind(str_index)
                .bind(to)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    })
}
