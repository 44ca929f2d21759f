//! `/api/v1/subscriptions`: webhook subscribers of the hub's events (docs/events.md): create
//! (the `whsec_` secret shown once), list, read, rotate the secret, pause, resume, replay,
//! delete, and each one's delivery attempts.

use super::extract::{Json, Path, Query};
use super::problem::Problem;
use super::{AppState, Page, PageQuery};
use crate::audit::Event;
use crate::auth::Caller;
use crate::events::subscriptions::{self, ROTATION_GRACE, SubscriptionView};
use crate::store::Timestamp;
use crate::store::subscriptions::{DeliveryAttempt, SubscriptionRecord};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// `{"url", "event_types", "connector_id", "description"}`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where each event is POSTed: `http://` or `https://`.
    pub url: String,
    /// The event types to deliver (docs/events.md); none: every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Only the events this connector caused.
    pub connector_id: Option<String>,
    /// What it is for, up to 200 characters.
    #[serde(default)]
    pub description: String,
}

/// A subscription with, this once, its signing secret.
#[derive(Serialize, JsonSchema)]
pub struct CreatedSubscription {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    /// `whsec_…`: verify each delivery's `webhook-signature` with it (Standard Webhooks). The
    /// hub never shows it again.
    pub secret: String,
}

/// `POST /api/v1/subscriptions/{id}/secret`: the new secret, shown once.
#[derive(Serialize, JsonSchema)]
pub struct RotatedSecret {
    /// `whsec_…`, signing every delivery from now on.
    pub secret: String,
    /// Until when deliveries also carry a signature under the secret it replaced.
    pub previous_valid_until: Timestamp,
}

/// `{"since"}` or `{"event_id"}`: where a replay starts.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// Every event that occurred at or after this time, again.
    pub since: Option<Timestamp>,
    /// This event and every one after it, again.
    pub event_id: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(new): Json<NewSubscription>,
) -> Result<(StatusCode, axum::Json<CreatedSubscription>), Problem> {
    subscriptions::check(&new.url, &new.event_types, &new.description)
        .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let db = state.manager.db();
    if let Some(connector_id) = &new.connector_id {
        state.manager.connector(connector_id).await?;
    }
    let id = uuid::Uuid::now_v7().to_string();
    let cipher = state.manager.keys().cipher();
    let (secret, sealed) = subscriptions::new_secret(&cipher, &id);
    let now = Timestamp::now();
    let record = SubscriptionRecord {
        id: id.clone(),
        url: new.url,
        event_types: serde_json::to_string(&new.event_types).expect("strings serialize"),
        connector_id: new.connector_id,
        description: new.description,
        key_version: cipher.active_version() as i64,
        secret: sealed,
        previous_secret: None,
        previous_until: None,
        status: "active".into(),
        disabled_reason: None,
        // Events from now on; a replay goes back.
        delivered_through: db.last_event_seq().await?,
        failures: 0,
        failing_since: None,
        retry_at: None,
        created_at: now,
        updated_at: now,
    };
    db.insert_subscription(&record).await?;
    let event = Event::new(&caller.actor, "subscription.create", format!("subscription:{id}"))
        .details(json!({ "url": record.url, "event_types": new.event_types, "connector_id": record.connector_id }));
    state.manager.audit().record(event).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedSubscription {
            subscription: record.into(),
            secret,
        }),
    ))
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Page<SubscriptionView>>, Problem> {
    let limit = crate::store::clamp_limit(q.limit);
    let records = state
        .manager
        .db()
        .list_subscriptions(q.cursor.as_deref(), limit)
        .await?;
    let views: Vec<SubscriptionView> = records.into_iter().map(Into::into).collect();
    Ok(axum::Json(Page::new(views, limit, |s| s.id.clone())))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<SubscriptionView>, Problem> {
    Ok(axum::Json(stored(&state, &id).await?.into()))
}

/// `POST …/secret`: a new signing secret; the old one signs beside it for 24 hours, so the
/// subscriber can switch without rejecting a delivery.
pub async fn rotate_secret(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<RotatedSecret>, Problem> {
    let record = stored(&state, &id).await?;
    let cipher = state.manager.keys().cipher();
    let old = cipher
        .decrypt_str("subscriptions", "secret", &id, &record.secret)
        .map_err(|e| Problem::internal(&e))?;
    let previous = cipher.encrypt_str("subscriptions", "previous_secret", &id, &old);
    let (secret, sealed) = subscriptions::new_secret(&cipher, &id);
    let previous_valid_until = Timestamp::from(chrono::Utc::now() + ROTATION_GRACE);
    let rotated = state
        .manager
        .db()
        .rotate_subscription_secret(
            &id,
            &record.secret,
            &sealed,
            &previous,
            cipher.active_version() as i64,
            previous_valid_until,
        )
        .await?;
    if !rotated {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "the secret was rotated by another request meanwhile: rotate again if you need a secret you have not seen",
        ));
    }
    let event = Event::new(
        &caller.actor,
        "subscription.rotate-secret",
        format!("subscription:{id}"),
    );
    state.manager.audit().record(event).await;
    Ok(axum::Json(RotatedSecret {
        secret,
        previous_valid_until,
    }))
}

/// `POST …/pause`: no deliveries until resumed; events keep waiting in the outbox.
pub async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<SubscriptionView>, Problem> {
    set_status(&state, &caller, &id, "paused").await
}

/// `POST …/resume`: active again (a disabled one too), tried at once from where it stopped.
pub async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<SubscriptionView>, Problem> {
    set_status(&state, &caller, &id, "active").await
}

async fn set_status(
    state: &AppState,
    caller: &Caller,
    id: &str,
    status: &str,
) -> Result<axum::Json<SubscriptionView>, Problem> {
    let subscription = stored(state, id).await?;
    if !state.manager.set_subscription_status(&subscription, status).await? {
        return Err(missing(id));
    }
    let action = if status == "active" {
        "subscription.resume"
    } else {
        "subscription.pause"
    };
    state
        .manager
        .audit()
        .record(Event::new(&caller.actor, action, format!("subscription:{id}")))
        .await;
    Ok(axum::Json(stored(state, id).await?.into()))
}

/// `POST …/replay`: every event from a time or an event id on is delivered again.
pub async fn replay(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Json(replay): Json<Replay>,
) -> Result<axum::Json<SubscriptionView>, Problem> {
    let db = state.manager.db();
    stored(&state, &id).await?;
    let after = match (&replay.since, &replay.event_id) {
        (Some(since), None) => {
            db.seq_before_time(&crate::events::id_floor(since.as_datetime()))
                .await?
        }
        (None, Some(event_id)) => db.seq_before_event(event_id).await?.ok_or_else(|| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("there is no event {event_id}: GET /api/v1/events lists them"),
            )
        })?,
        _ => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "give either since (a time) or event_id, not both or neither",
            ));
        }
    };
    db.rewind_subscription(&id, after).await?;
    let event = Event::new(&caller.actor, "subscription.replay", format!("subscription:{id}"))
        .details(json!({ "after_seq": after }));
    state.manager.audit().record(event).await;
    Ok(axum::Json(stored(&state, &id).await?.into()))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let subscription = stored(&state, &id).await?;
    if !state.manager.delete_subscription(&subscription).await? {
        return Err(missing(&id));
    }
    let event = Event::new(&caller.actor, "subscription.delete", format!("subscription:{id}"));
    state.manager.audit().record(event).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/attempts`: every try to deliver, newest first.
pub async fn attempts(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Page<DeliveryAttempt>>, Problem> {
    stored(&state, &id).await?;
    let limit = crate::store::clamp_limit(q.limit);
    let attempts = state
        .manager
        .db()
        .delivery_attempts(&id, q.cursor.as_deref(), limit)
        .await?;
    Ok(axum::Json(Page::new(attempts, limit, |a| a.id.clone())))
}

async fn stored(state: &AppState, id: &str) -> Result<SubscriptionRecord, Problem> {
    state.manager.db().subscription(id).await?.ok_or_else(|| missing(id))
}

fn missing(id: &str) -> Problem {
    Problem::not_found(format!("no subscription {id}: GET /api/v1/subscriptions lists them"))
}
