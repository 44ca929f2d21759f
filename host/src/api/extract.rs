//! Extractors whose rejections are problem+json.

use super::problem::Problem;
use axum::extract::FromRequest;
use axum::extract::FromRequestParts;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct Json<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct Query<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct Path<T>(pub T);

/// A page of a list: `items` and the cursor of the next page (`null` on the last).
pub fn page<T: serde::Serialize>(items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> serde_json::Value {
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(&cursor_of))
        .flatten();
    serde_json::json!({ "items": items, "next_cursor": next })
}
