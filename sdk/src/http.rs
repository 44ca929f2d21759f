//! JSON over `wasi:http`, with host-held bearer credentials.
//!
//! Every request goes through the host, which checks the host against the connector
//! instance's egress allow-list and adds `X-Request-ID` and `traceparent`. Failures map onto
//! [`Error`] the way the host expects: network errors, 5xx and 429 are `unavailable` (retried
//! with backoff), a 401 that survives one token refresh is `unauthorized`, a denied host is
//! `config`.

use crate::Error;
use crate::bindings::healthforce::hub::auth;
use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;
use serde::de::DeserializeOwned;

/// Largest response body accepted (bytes); a larger one is `invalid-input`.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// A response: status, headers and the whole body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// An HTTP client bound to one base URL, optionally authenticating with a host-held
/// credential.
#[derive(Clone)]
pub struct HttpClient {
    scheme: Scheme,
    authority: String,
    base_path: String,
    credential: Option<String>,
    /// Sent with every request (an API key header, say).
    headers: Vec<(String, String)>,
}

impl HttpClient {
    /// A client for `base_url` (`http://host:port/optional/prefix`).
    pub fn new(base_url: &str) -> Result<Self, Error> {
        let (scheme, rest) = if let Some(rest) = base_url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = base_url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else {
            return Err(Error::Config(format!(
                "base URL {base_url:?} must start with http:// or https://"
            )));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(Error::Config(format!("base URL {base_url:?} has no host")));
        }
        Ok(Self {
            scheme,
            authority: authority.to_string(),
            base_path: path.to_string(),
            credential: None,
            headers: Vec::new(),
        })
    }

    /// Authenticate every request with a bearer token for the named credential, which the host
    /// holds, caches and refreshes.
    pub fn with_credential(mut self, credential: &str) -> Self {
        self.credential = Some(credential.to_string());
        self
    }

    /// Send `name: value` with every request, e.g. an API key read from a granted secret.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// `GET path_and_query` and parse the JSON body.
    pub fn get_json<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T, Error> {
        let response = self.send(Method::Get, path_and_query, &[], None)?;
        serde_json::from_slice(&response.body)
            .map_err(|e| Error::InvalidInput(format!("GET {path_and_query}: response is not the expected JSON: {e}")))
    }

    /// Sends a request and returns the response when its status is 2xx. With a credential, a
    /// 401 makes the host refresh the token and the request is sent once more.
    pub fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, Error> {
        let token = self.token()?;
        let response = self.send_once(&method, path_and_query, headers, body, token.as_deref())?;
        let response = match (&self.credential, token) {
            (Some(credential), Some(token)) if response.status == 401 => {
                auth::invalidate(credential, &token);
                let fresh = self.token()?;
                self.send_once(&method, path_and_query, headers, body, fresh.as_deref())?
            }
            _ => response,
        };
        check_status(&method, path_and_query, response)
    }

    fn token(&self) -> Result<Option<String>, Error> {
        self.credential.as_deref().map(auth::bearer_token).transpose()
    }

    fn send_once(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        token: Option<&str>,
    ) -> Result<Response, Error> {
        let mut fields: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(headers.iter().copied())
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        fields.push(("accept".into(), b"application/json".to_vec()));
        if let Some(token) = token {
            fields.push(("authorization".into(), format!("Bearer {token}").into_bytes()));
        }
        let fields =
            Fields::from_list(&fields).map_err(|e| Error::InvalidInput(format!("bad request header: {e:?}")))?;
        let request = OutgoingRequest::new(fields);
        let path = format!("{}{}", self.base_path, path_and_query);
        let invalid = |what: &str| Error::Config(format!("invalid {what} for {path}"));
        request.set_method(method).map_err(|_| invalid("method"))?;
        request.set_scheme(Some(&self.scheme)).map_err(|_| invalid("scheme"))?;
        request
            .set_authority(Some(&self.authority))
            .map_err(|_| invalid("authority"))?;
        request.set_path_with_query(Some(&path)).map_err(|_| invalid("path"))?;
        let outgoing_body = request.body().map_err(|_| invalid("body"))?;
        if let Some(bytes) = body {
            let stream = outgoing_body.write().map_err(|_| invalid("body"))?;
            for chunk in bytes.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| Error::Unavailable(format!("writing request body: {e:?}")))?;
            }
        }
        OutgoingBody::finish(outgoing_body, None).map_err(|e| transport_error(&path, e))?;

        let pending = outgoing_handler::handle(request, None).map_err(|e| transport_error(&path, e))?;
        pending.subscribe().block();
        let incoming = pending
            .get()
            .ok_or_else(|| Error::Unavailable(format!("{path}: no response")))?
            .map_err(|_| Error::Unavailable(format!("{path}: response already taken")))?
            .map_err(|e| transport_error(&path, e))?;

        let status = incoming.status();
        let headers = incoming.headers().entries();
        let body = incoming
            .consume()
            .map_err(|_| Error::Unavailable(format!("{path}: response body unavailable")))?;
        let bytes = read_body(&path, &body)?;
        IncomingBody::finish(body);
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
    }
}

fn read_body(path: &str, body: &IncomingBody) -> Result<Vec<u8>, Error> {
    let stream = body
        .stream()
        .map_err(|_| Error::Unavailable(format!("{path}: response body unavailable")))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(256 * 1024) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_BODY {
                    return Err(Error::InvalidInput(format!(
                        "{path}: response body exceeds {MAX_BODY} bytes"
                    )));
                }
            }
            Err(StreamError::Closed) => return Ok(bytes),
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(Error::Unavailable(format!(
                    "{path}: reading response body: {}",
                    e.to_debug_string()
                )));
            }
        }
    }
}

fn check_status(method: &Method, path: &str, response: Response) -> Result<Response, Error> {
    let status = response.status;
    let detail = || {
        let snippet = String::from_utf8_lossy(&response.body[..response.body.len().min(200)]);
        format!("{method:?} {path}: HTTP {status}: {snippet}")
    };
    match status {
        200..=299 => Ok(response),
        401 | 403 => Err(Error::Unauthorized(detail())),
        404 => Err(Error::Config(detail())),
        408 | 429 | 500..=599 => Err(Error::Unavailable(detail())),
        _ => Err(Error::InvalidInput(detail())),
    }
}

fn transport_error(path: &str, error: ErrorCode) -> Error {
    match error {
        ErrorCode::HttpRequestDenied => Error::Config(format!(
            "{path}: request denied by the host: its host is not in this connector's egress allow-list"
        )),
        other => Error::Unavailable(format!("{path}: {other:?}")),
    }
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters pass through).
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
