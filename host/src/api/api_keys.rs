//! `/api/v1/api-keys`: create (the key is shown once), list, revoke.

use super::extract::{Json, Path, Query};
use super::problem::Problem;
use super::{AppState, Page, PageQuery};
use crate::audit::Event;
use crate::auth::{Caller, Grant, PII_READ, Role};
use crate::store::api_keys::{ApiKeyRecord, Revoked};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// `{"name", "role", "permissions"}`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What the key is for; shown in the audit log as `api-key:<name>`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]{1,64}$"))]
    pub name: String,
    pub role: Role,
    /// Extra grants. Only a caller holding a grant may give it.
    #[serde(default)]
    pub permissions: Vec<Grant>,
}

/// The new key's record and, this once, the key.
#[derive(Serialize, JsonSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub record: ApiKeyRecord,
    /// The key itself. It is stored only as a hash: save it now.
    pub key: String,
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(new): Json<NewApiKey>,
) -> Result<(StatusCode, axum::Json<CreatedApiKey>), Problem> {
    if new.permissions.contains(&Grant::PiiRead) && !caller.pii_read {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!("only a caller holding {PII_READ} may grant it"),
        ));
    }
    let role = new.role;
    let key = crate::crypto::new_api_key();
    let record = ApiKeyRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name: new.name,
        role: role.as_str().into(),
        permissions: new.permissions.iter().map(|g| g.as_str().to_string()).collect(),
        created_at: crate::store::Timestamp::now(),
        created_by: Some(caller.actor.clone()),
        revoked_at: None,
    };
    state
        .manager
        .db()
        .insert_api_key(&record, &super::hash_key(&key))
        .await?;
    let event = Event::new(&caller.actor, "api_key.create", &record.id)
        .details(json!({ "name": record.name, "role": record.role, "permissions": record.permissions }));
    state.manager.audit().record(event).await;
    Ok((StatusCode::CREATED, axum::Json(CreatedApiKey { record, key })))
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Page<ApiKeyRecord>>, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let keys = state.manager.db().list_api_keys(q.cursor.as_deref(), limit).await?;
    Ok(axum::Json(Page::new(keys, limit, |k| k.id.clone())))
}

pub async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    match state.manager.db().revoke_api_key(&id).await? {
        Revoked::Revoked => {}
        Revoked::NotFound => return Err(Problem::not_found(format!("no live API key has id {id:?}"))),
        Revoked::LastAdmin => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "this is the last live admin key: revoking it would lock every admin out; create another admin key first \
                 (to recover a hub with no admin key, restart it with HUB_ADMIN_KEY set)",
            ));
        }
    }
    state
        .manager
        .audit()
        .record(Event::new(&caller.actor, "api_key.revoke", &id))
        .await;
    Ok(StatusCode::NO_CONTENT)
}
