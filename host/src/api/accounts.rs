//! `/api/v1/accounts`: SSO accounts, decrypted, with the practitioner each is linked to.
//! Needs `pii:read`; every read is audited.

use super::extract::Query;
use super::problem::Problem;
use super::{AppState, Page};
use crate::audit::Event;
use crate::auth::Caller;
use crate::store::Timestamp;
use crate::store::accounts::SealedAccount;
use axum::Extension;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only accounts linked to this practitioner.
    pub practitioner_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct AccountView {
    pub id: String,
    pub source_system: String,
    pub subject: String,
    pub username: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub active: bool,
    /// The practitioner with the account's NIK; null when none is stored (yet).
    pub practitioner_id: Option<String>,
    pub updated_at: Timestamp,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<AccountView>>, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let rows = state
        .manager
        .db()
        .list_accounts(q.practitioner_id.as_deref(), q.cursor.as_deref(), limit)
        .await?;
    let items = rows
        .iter()
        .map(|row| open(&state, row))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Problem::internal(&e))?;
    let event = Event::new(&caller.actor, "pii.read", "accounts").details(json!({
        "count": items.len(),
        "practitioner_id": q.practitioner_id,
    }));
    // No audit entry, no data.
    state.manager.audit().try_record(&event).await?;
    Ok(axum::Json(Page::new(items, limit, |a| a.id.clone())))
}

fn open(state: &AppState, row: &SealedAccount) -> Result<AccountView, crate::crypto::CryptoError> {
    let cipher = state.manager.keys().cipher();
    let open = |column: &str, sealed: &[u8]| cipher.decrypt_str("accounts", column, &row.id, sealed);
    Ok(AccountView {
        id: row.id.clone(),
        source_system: row.source_system.clone(),
        subject: open("subject", &row.subject)?,
        username: open("username", &row.username)?,
        email: row.email.as_deref().map(|e| open("email", e)).transpose()?,
        roles: serde_json::from_str(&row.roles).unwrap_or_default(),
        active: row.active,
        practitioner_id: row.practitioner_id.clone(),
        updated_at: row.updated_at,
    })
}
