//! RFC 9457 problem details: every error the API returns is `application/problem+json`,
//! saying what went wrong and what to do.

use crate::manager::{FieldError, ManagerError};
use crate::store::StoreError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Clone, Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// An internal failure: logged in full, answered without internals.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the hub failed to handle this request; the x-request-id header identifies it in the hub log",
        )
    }
}

impl Problem {
    /// The `application/problem+json` body.
    pub fn body(&self) -> String {
        let mut body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if !self.errors.is_empty() {
            body["errors"] = json!(self.errors);
        }
        body.to_string()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
        // The FHIR server answers it as an OperationOutcome instead.
        response.extensions_mut().insert(self);
        response
    }
}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl From<ManagerError> for Problem {
    fn from(error: ManagerError) -> Self {
        match error {
            ManagerError::NotFound { .. } => Self::not_found(error.to_string()),
            ManagerError::Invalid { detail, fields } => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                detail,
                errors: fields,
            },
            ManagerError::Conflict(detail) => Self::new(StatusCode::CONFLICT, detail),
            ManagerError::Refused(detail) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail),
            ManagerError::Runtime(e) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
            ManagerError::Store(e) => Self::internal(&e),
            ManagerError::Secrets(crate::secrets::SecretError::Vault(e)) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the secret store is unavailable ({e}); retry when Vault/OpenBao is reachable"),
            ),
            ManagerError::Secrets(e) => Self::internal(&e),
            ManagerError::Keys(e @ crate::crypto::KeyError::Conflict(_)) => {
                Self::new(StatusCode::CONFLICT, e.to_string())
            }
            ManagerError::Keys(e) => Self::internal(&e),
            ManagerError::Crypto(e) => Self::internal(&e),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        Self::internal(&error)
    }
}

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Self {
        Self::new(rejection.status(), format!("request body: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for Problem {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(format!("query string: {}", rejection.body_text()))
    }
}

impl From<PathRejection> for Problem {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request(format!("path: {}", rejection.body_text()))
    }
}
