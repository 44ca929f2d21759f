//! HTTP cassettes: a plugin's HTTP exchanges recorded once against the real endpoints
//! (`hub plugin run --record`) and replayed offline (`hub plugin test`, and the SDK's
//! `FakeHost::replay` in native tests), with what the run produced, so a replay can say
//! whether the plugin still does the same.
//!
//! The egress hook ([`super::http`]) keeps every check in both modes — allow-list, request
//! quota, deadlines — and only the last step, the network, is swapped for the recorder or
//! the player. Secret values and bearer tokens never reach the file: the recorder's caller
//! replaces them with `{{secret:NAME}}` / `{{token:NAME}}` ([`Cassette::redact`]), and a
//! replay hands the plugin those placeholders as its secrets, so its requests match the
//! recorded ones byte for byte. The format is docs/plugins.md's "Cassettes".

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::{Arc, Mutex};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// The cassette format this hub writes and reads.
pub const FORMAT: u32 = 1;

/// Headers that carry credentials: kept only as placeholders of secrets and tokens.
const CREDENTIAL_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "set-cookie"];

/// What a credential header that is no placeholder is recorded as; replays do not match on it.
const REDACTED: &str = "{{redacted}}";

/// Headers the host adds to every request with fresh random values: not recorded.
const HOST_HEADERS: [&str; 2] = ["x-request-id", "traceparent"];

/// A recorded run: where it started, every HTTP exchange, and what it produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cassette {
    pub format: u32,
    /// `name@version` of the plugin recorded.
    pub plugin: String,
    /// The connector config of the run.
    pub config: serde_json::Value,
    /// Hosts the run allowed besides the manifest's `egress` (`--egress`): a replay allows
    /// them too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<String>,
    /// The cursor the run started from.
    pub cursor: Option<String>,
    /// The day of the recording: a replay judges records (an STR's expiry, a birth date
    /// in the future) as of that day, so it gives the same verdicts next year.
    pub recorded_on: chrono::NaiveDate,
    pub exchanges: Vec<Exchange>,
    pub outcome: Outcome,
}

/// What a run produced: a replay must produce the same.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Every record emitted, in order, as the hub's model serializes it.
    pub records: Vec<serde_json::Value>,
    /// The records the hub would refuse: their position in `records` and why.
    pub refused: Vec<Refusal>,
    /// The cursor saved last.
    pub cursor: Option<String>,
    /// `ok`, or the error the run ended with.
    pub result: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    pub record: usize,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub request: Message,
    pub response: Message,
}

/// A request (`method`, `url`) or a response (`status`): headers in order, and the body as
/// text when it is UTF-8, else in base64.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

impl Message {
    fn new(headers: &http::HeaderMap, body: &[u8]) -> Self {
        use base64::Engine as _;
        let headers = headers
            .iter()
            .filter(|(name, _)| !HOST_HEADERS.contains(&name.as_str()))
            .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let (body, body_base64) = match std::str::from_utf8(body) {
            Ok(text) => (text.to_string(), None),
            Err(_) => (
                String::new(),
                Some(base64::engine::general_purpose::STANDARD.encode(body)),
            ),
        };
        Self {
            headers,
            body,
            body_base64,
            ..Self::default()
        }
    }

    fn body_bytes(&self) -> Bytes {
        use base64::Engine as _;
        match &self.body_base64 {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap_or_default()
                .into(),
            None => Bytes::from(self.body.clone()),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} {}",
            self.method.as_deref().unwrap_or_default(),
            self.url.as_deref().unwrap_or_default()
        )
    }
}

impl Cassette {
    /// Replaces every occurrence of each `(value, placeholder)` in the requests and
    /// responses: secret values and tokens become `{{secret:NAME}}` / `{{token:NAME}}`.
    /// Values shorter than 4 bytes are left alone, so that a secret `1` does not rewrite
    /// every digit.
    pub fn redact(&mut self, values: &[(String, String)]) {
        let redact = |text: &mut String| {
            for (value, placeholder) in values.iter().filter(|(value, _)| value.len() >= 4) {
                if text.contains(value.as_str()) {
                    *text = text.replace(value.as_str(), placeholder);
                }
            }
        };
        for exchange in &mut self.exchanges {
            for message in [&mut exchange.request, &mut exchange.response] {
                message.url.iter_mut().for_each(redact);
                message.headers.iter_mut().for_each(|(_, value)| redact(value));
                redact(&mut message.body);
                // A credential derived from a secret (`Basic base64(user:password)`, a
                // session cookie) holds no value to find: such headers go whole.
                for (name, value) in &mut message.headers {
                    if CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) && !value.contains("{{") {
                        *value = REDACTED.into();
                    }
                }
            }
        }
    }
}

/// What a cassette holds in place of the value of secret `name`.
pub fn secret_placeholder(name: &str) -> String {
    format!("{{{{secret:{name}}}}}")
}

/// What a cassette holds in place of a bearer token of credential `name`.
pub fn token_placeholder(name: &str) -> String {
    format!("{{{{token:{name}}}}}")
}

/// Where the egress hook sends a request that passed its checks.
#[derive(Clone, Debug, Default)]
pub enum Transport {
    /// The network.
    #[default]
    Network,
    /// The network, keeping each exchange.
    Record(Recorder),
    /// The recorded exchanges, never the network.
    Replay(Player),
}

#[derive(Clone, Debug, Default)]
pub struct Recorder(Arc<Mutex<Vec<Exchange>>>);

impl Recorder {
    /// The exchanges so far, in the order their requests were sent.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Clone, Debug)]
pub struct Player(Arc<Mutex<Playback>>);

#[derive(Debug)]
struct Playback {
    exchanges: Vec<Exchange>,
    played: Vec<bool>,
    /// Requests the cassette had no answer for, as `METHOD url`.
    missed: Vec<String>,
}

impl Player {
    pub fn new(exchanges: Vec<Exchange>) -> Self {
        let played = vec![false; exchanges.len()];
        Self(Arc::new(Mutex::new(Playback {
            exchanges,
            played,
            missed: Vec::new(),
        })))
    }

    /// Requests the plugin sent that the cassette had no answer for.
    pub fn missed(&self) -> Vec<String> {
        self.0.lock().unwrap().missed.clone()
    }

    /// Recorded requests the plugin did not send this time.
    pub fn unplayed(&self) -> Vec<String> {
        let playback = self.0.lock().unwrap();
        (playback.exchanges.iter().zip(&playback.played))
            .filter(|(_, played)| !**played)
            .map(|(exchange, _)| exchange.request.describe())
            .collect()
    }

    /// The answer to `request`: the first exchange not played yet with the same method,
    /// URL and body, whose placeholder headers (`{{secret:…}}`, `{{token:…}}`) the request
    /// also carries — a plugin that stopped sending its key does not pass.
    fn answer(&self, request: &Message) -> Option<Message> {
        let mut playback = self.0.lock().unwrap();
        let Playback {
            exchanges,
            played,
            missed,
        } = &mut *playback;
        let found = exchanges.iter().zip(played.iter()).position(|(exchange, played)| {
            let recorded = &exchange.request;
            !played
                && recorded.method == request.method
                && recorded.url == request.url
                && recorded.body == request.body
                && recorded.body_base64 == request.body_base64
                && recorded
                    .headers
                    .iter()
                    .filter(|(_, value)| value.contains("{{secret:") || value.contains("{{token:"))
                    .all(|header| request.headers.contains(header))
        });
        match found {
            Some(index) => {
                played[index] = true;
                Some(exchanges[index].response.clone())
            }
            None => {
                missed.push(request.describe());
                None
            }
        }
    }
}

pub(super) type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

impl Transport {
    /// Sends `request` as this transport does.
    pub(super) async fn send(self, request: http::Request<WasiBody>, options: RequestOptions) -> Result<Sent, Error> {
        match self {
            Self::Network => {
                let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
                Ok((
                    response.map(BodyExt::boxed_unsync),
                    Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
                ))
            }
            Self::Record(recorder) => {
                let (request, recorded) = read_whole(request).await?;
                let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
                let (parts, body) = response.into_parts();
                // The connection is driven by `io` while the body is read.
                let (body, io) = tokio::join!(body.collect(), io);
                io?;
                let body = body?.to_bytes();
                let mut answer = Message::new(&parts.headers, &body);
                answer.status = Some(parts.status.as_u16());
                recorder.0.lock().unwrap().push(Exchange {
                    request: recorded,
                    response: answer,
                });
                Ok(done(http::Response::from_parts(parts, full(body))))
            }
            Self::Replay(player) => {
                let (_, asked) = read_whole(request).await?;
                let Some(answer) = player.answer(&asked) else {
                    return Err(Error::InternalError(Some(format!(
                        "{} is not in the cassette: record it again with `hub plugin run --record`",
                        asked.describe()
                    ))));
                };
                let mut response = http::Response::new(full(answer.body_bytes()));
                *response.status_mut() =
                    http::StatusCode::from_u16(answer.status.unwrap_or(200)).map_err(|_| Error::HttpProtocolError)?;
                for (name, value) in &answer.headers {
                    if let (Ok(name), Ok(value)) = (
                        http::HeaderName::try_from(name.as_str()),
                        http::HeaderValue::try_from(value.as_str()),
                    ) {
                        response.headers_mut().append(name, value);
                    }
                }
                Ok(done(response))
            }
        }
    }
}

/// `request` with its body read whole, and as a cassette keeps it.
async fn read_whole(request: http::Request<WasiBody>) -> Result<(http::Request<WasiBody>, Message), Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let mut message = Message::new(&parts.headers, &body);
    message.method = Some(parts.method.to_string());
    message.url = Some(parts.uri.to_string());
    Ok((http::Request::from_parts(parts, full(body)), message))
}

fn full(body: Bytes) -> WasiBody {
    Full::new(body).map_err(|never| match never {}).boxed_unsync()
}

/// A response read whole: nothing left for its connection to do.
fn done(response: http::Response<WasiBody>) -> Sent {
    (response, Box::new(async { Ok(()) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(url: &str, key: &str, status: u16) -> Exchange {
        Exchange {
            request: Message {
                method: Some("GET".into()),
                url: Some(url.into()),
                headers: vec![("x-api-key".into(), key.into())],
                ..Message::default()
            },
            response: Message {
                status: Some(status),
                body: "{}".into(),
                ..Message::default()
            },
        }
    }

    #[test]
    fn redaction_replaces_every_secret_value_and_credential_header_and_leaves_short_values() {
        let mut cassette = Cassette {
            format: FORMAT,
            plugin: "p@1.0.0".into(),
            config: serde_json::json!({}),
            egress: Vec::new(),
            cursor: None,
            recorded_on: chrono::NaiveDate::MIN,
            exchanges: vec![exchange("https://r.example/people?key=k-secret-1", "k-secret-1", 200)],
            outcome: Outcome::default(),
        };
        cassette.exchanges[0]
            .request
            .headers
            .push(("Authorization".into(), "Basic dXNlcjpwYXNz".into()));
        cassette.redact(&[
            ("k-secret-1".into(), "{{secret:api_key}}".into()),
            ("1".into(), "{{secret:short}}".into()),
        ]);
        let request = &cassette.exchanges[0].request;
        assert_eq!(
            request.headers[1].1, REDACTED,
            "a credential derived from a secret goes whole"
        );
        assert_eq!(
            request.url.as_deref(),
            Some("https://r.example/people?key={{secret:api_key}}")
        );
        assert_eq!(request.headers[0].1, "{{secret:api_key}}");
        assert!(!serde_json::to_string(&cassette).unwrap().contains("k-secret-1"));
    }

    #[test]
    fn a_player_answers_each_recorded_request_once_in_order_and_needs_its_secret_headers() {
        let page = "https://r.example/people";
        let player = Player::new(vec![
            exchange(page, "{{secret:api_key}}", 200),
            exchange(page, "{{secret:api_key}}", 503),
        ]);
        let ask = |key: &str| exchange(page, key, 0).request;
        assert_eq!(player.answer(&ask("{{secret:api_key}}")).unwrap().status, Some(200));
        assert_eq!(player.unplayed(), vec![format!("GET {page}")]);
        assert!(player.answer(&ask("")).is_none(), "a request without its key");
        assert_eq!(player.answer(&ask("{{secret:api_key}}")).unwrap().status, Some(503));
        assert!(player.answer(&ask("{{secret:api_key}}")).is_none(), "played out");
        assert_eq!(player.missed().len(), 2);
        assert!(player.unplayed().is_empty());
    }
}
