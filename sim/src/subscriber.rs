//! A webhook subscriber of the hub's events: it records every delivery as received (the
//! Standard Webhooks headers and the body, unverified: tests verify them with the official
//! library) and answers as told: 200, a status (with `Retry-After`), 410, or slowly.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One delivery as it arrived.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// Whether the subscriber answered 2xx (a slow answer too, though the sender may have
    /// stopped waiting for it).
    pub accepted: bool,
}

/// How the subscriber answers a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Accept,
    /// This status, with `Retry-After: <seconds>` when given.
    Status(u16, Option<u64>),
    /// Accept after this long.
    Slow(Duration),
}

#[derive(Default)]
struct Inner {
    received: Vec<Delivery>,
    /// Answers for the next requests, in turn; then `otherwise`.
    next: VecDeque<Answer>,
    otherwise: Option<Answer>,
}

#[derive(Clone, Default)]
pub struct SubscriberSim(Arc<Mutex<Inner>>);

impl SubscriberSim {
    pub fn new() -> Self {
        Self::default()
    }

    /// `POST /` (any path) receives deliveries.
    pub fn router(&self) -> Router {
        Router::new().fallback(receive).with_state(self.clone())
    }

    /// Answer the next requests so, one each, before going back to the standing answer.
    pub fn answer_next(&self, answers: impl IntoIterator<Item = Answer>) {
        self.0.lock().unwrap().next.extend(answers);
    }

    /// Answer every request so from now on (`Accept` to go back to normal).
    pub fn answer_always(&self, answer: Answer) {
        self.0.lock().unwrap().otherwise = Some(answer);
    }

    /// Every delivery received so far, in arrival order.
    pub fn received(&self) -> Vec<Delivery> {
        self.0.lock().unwrap().received.clone()
    }

    /// The deliveries it accepted, in arrival order.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.received().into_iter().filter(|d| d.accepted).collect()
    }
}

async fn receive(State(sim): State<SubscriberSim>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let answer = {
        let mut inner = sim.0.lock().unwrap();
        let answer = (inner.next.pop_front())
            .or_else(|| inner.otherwise.clone())
            .unwrap_or(Answer::Accept);
        inner.received.push(Delivery {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body: String::from_utf8_lossy(&body).into_owned(),
            accepted: !matches!(answer, Answer::Status(..)),
        });
        answer
    };
    match answer {
        Answer::Accept => StatusCode::NO_CONTENT.into_response(),
        Answer::Slow(wait) => {
            tokio::time::sleep(wait).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Answer::Status(status, retry_after) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            match retry_after {
                Some(seconds) => (status, [("retry-after", seconds.to_string())]).into_response(),
                None => status.into_response(),
            }
        }
    }
}
