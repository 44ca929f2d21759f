//! Every error of the FHIR server is an `OperationOutcome`: the API's `Problem` (from the
//! bearer check, an extractor or a handler) with its status and its words, and the FHIR
//! issue type its status stands for.

use super::element::Element;
use crate::api::Problem;
use axum::http::StatusCode;

/// The `OperationOutcome` of a problem.
pub fn of(problem: &Problem) -> Element {
    let severity = if problem.status.is_server_error() {
        "fatal"
    } else {
        "error"
    };
    let mut issues = vec![issue(severity, issue_type(problem.status), &problem.detail)];
    for field in &problem.errors {
        issues.push(issue(
            "error",
            "invalid",
            &format!("{}: {}", field.pointer, field.message),
        ));
    }
    Element::resource("OperationOutcome").with("issue", issues)
}

fn issue(severity: &str, code: &str, diagnostics: &str) -> Element {
    Element::object()
        .with("severity", severity)
        .with("code", code)
        .with("diagnostics", diagnostics)
}

/// The issue type (http://hl7.org/fhir/issue-type) an HTTP status stands for.
fn issue_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "login",
        403 => "forbidden",
        404 => "not-found",
        405 | 406 | 415 => "not-supported",
        409 => "conflict",
        503 => "transient",
        500..=599 => "exception",
        _ => "invalid",
    }
}
