//! Facilities (`facilities`) and the roles linking practitioners to them
//! (`practitioner_roles`), as FHIR's Organization, Location and PractitionerRole search them
//! (migration 0021). Both are derived from golden records (`pipeline::derive`) and written in
//! the transaction that writes those records.

use super::search::{Bind, Filter, Search, TimeRange};
use super::{Backed, Backend, Db, StoreError, Timestamp, Tx, trusted};

/// A facility: its code (the row id), its name as a source last gave it.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct Facility {
    pub id: String,
    pub name: String,
    pub updated_at: Timestamp,
    /// Set by the database: 1, and one more each time the name changes.
    #[sqlx(default)]
    pub version_id: i64,
}

/// One employment of a practitioner: which facility (by code, when the source gave one).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct RoleLink {
    pub id: String,
    pub practitioner_id: String,
    pub facility_id: Option<String>,
    pub updated_at: Timestamp,
}

/// The roles and facilities of golden records being written.
#[derive(Debug, Default)]
pub struct Roles {
    /// Practitioners stored before, whose roles `roles` replace: a practitioner new to the
    /// store has none to delete (a first sync deletes nothing).
    pub replaced: Vec<String>,
    pub roles: Vec<RoleLink>,
    /// Each code once: PostgreSQL refuses an upsert that meets the same row twice.
    pub facilities: Vec<Facility>,
}

const FACILITY_COLUMNS: &str = "id, name, updated_at, version_id";
const ROLE_COLUMNS: &str = "id, practitioner_id, facility_id, updated_at";

/// Writes `roles`: the practitioners' old roles go, theirs now are inserted, and each
/// facility is stored, or renamed (a new version) when its name changed.
pub async fn write(tx: &mut Tx, roles: &Roles) -> Result<(), StoreError> {
    if roles.replaced.is_empty() && roles.roles.is_empty() && roles.facilities.is_empty() {
        return Ok(());
    }
    const UPSERT: &str = " ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at, \
                          version_id = facilities.version_id + 1 WHERE facilities.name <> excluded.name";
    super::delete_where_in(tx, "practitioner_roles", "practitioner_id", &roles.replaced).await?;
    match tx {
        Backed::Sqlite(tx) => {
            for chunk in roles.roles.chunks(1000) {
                let sql = format!(
                    "INSERT INTO practitioner_roles ({ROLE_COLUMNS}) VALUES {}",
                    Backend::Sqlite.placeholders(chunk.len(), 4, 1)
                );
                let mut query = super::batch_write(sql);
                for r in chunk {
                    query = query
                        .bind(&r.id)
                        .bind(&r.practitioner_id)
                        .bind(&r.facility_id)
                        .bind(r.updated_at);
                }
                query.execute(&mut **tx).await?;
            }
            for chunk in roles.facilities.chunks(1000) {
                let sql = format!(
                    "INSERT INTO facilities (id, name, updated_at) VALUES {}{UPSERT}",
                    Backend::Sqlite.placeholders(chunk.len(), 3, 1)
                );
                let mut query = super::batch_write(sql);
                for f in chunk {
                    query = query.bind(&f.id).bind(&f.name).bind(f.updated_at);
                }
                query.execute(&mut **tx).await?;
            }
        }
        Backed::Postgres(tx) => {
            let rows = &roles.roles;
            if !rows.is_empty() {
                sqlx::query(trusted(format!(
                    "INSERT INTO practitioner_roles ({ROLE_COLUMNS}) SELECT * FROM UNNEST($1::text[], $2::text[], \
                     $3::text[], $4::timestamptz[])"
                )))
                .bind(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.practitioner_id.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.facility_id.as_deref()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.updated_at).collect::<Vec<_>>())
                .execute(&mut **tx)
                .await?;
            }
            let facilities = &roles.facilities;
            if !facilities.is_empty() {
                sqlx::query(trusted(format!(
                    "INSERT INTO facilities (id, name, updated_at) SELECT * FROM UNNEST($1::text[], $2::text[], \
                     $3::timestamptz[]){UPSERT}"
                )))
                .bind(facilities.iter().map(|f| f.id.as_str()).collect::<Vec<_>>())
                .bind(facilities.iter().map(|f| f.name.as_str()).collect::<Vec<_>>())
                .bind(facilities.iter().map(|f| f.updated_at).collect::<Vec<_>>())
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(())
}

/// Which facilities a search of them matches.
#[derive(Clone, Debug)]
pub enum FacilityCondition {
    Id(String),
    /// Names starting with this, ignoring ASCII case.
    NameStarts(String),
    UpdatedAt(TimeRange),
}

impl Filter for FacilityCondition {
    fn clause(&self, bind: &mut dyn FnMut(Bind) -> String) -> String {
        match self {
            FacilityCondition::Id(id) => format!("id = {}", bind(Bind::Text(id.clone()))),
            FacilityCondition::NameStarts(start) => {
                let escaped: String = start
                    .to_ascii_lowercase()
                    .chars()
                    .flat_map(|c| match c {
                        '%' | '_' | '\\' => vec!['\\', c],
                        c => vec![c],
                    })
                    .collect();
                format!(
                    "LOWER(name) LIKE {} ESCAPE '\\'",
                    bind(Bind::Text(format!("{escaped}%")))
                )
            }
            FacilityCondition::UpdatedAt(range) => range.clause("updated_at", bind),
        }
    }
}

/// Which roles a search of them matches.
#[derive(Clone, Debug)]
pub enum RoleCondition {
    Id(String),
    Practitioner(String),
    Facility(String),
    UpdatedAt(TimeRange),
}

impl Filter for RoleCondition {
    fn clause(&self, bind: &mut dyn FnMut(Bind) -> String) -> String {
        match self {
            RoleCondition::Id(id) => format!("id = {}", bind(Bind::Text(id.clone()))),
            RoleCondition::Practitioner(id) => format!("practitioner_id = {}", bind(Bind::Text(id.clone()))),
            RoleCondition::Facility(id) => format!("facility_id = {}", bind(Bind::Text(id.clone()))),
            RoleCondition::UpdatedAt(range) => range.clause("updated_at", bind),
        }
    }
}

impl Db {
    pub async fn search_facilities(
        &self,
        search: &Search<FacilityCondition>,
        limit: i64,
        count: bool,
    ) -> Result<(Vec<Facility>, Option<i64>), StoreError> {
        self.search("facilities", FACILITY_COLUMNS, search, limit, count).await
    }

    pub async fn search_roles(
        &self,
        search: &Search<RoleCondition>,
        limit: i64,
        count: bool,
    ) -> Result<(Vec<RoleLink>, Option<i64>), StoreError> {
        self.search("practitioner_roles", ROLE_COLUMNS, search, limit, count)
            .await
    }

    pub async fn facilities_by_id(&self, ids: &[String]) -> Result<Vec<Facility>, StoreError> {
        let mut tx = self.begin().await?;
        let select = format!("SELECT {FACILITY_COLUMNS} FROM facilities");
        super::select_where_in(&mut tx, &select, "id", ids).await
    }
}
