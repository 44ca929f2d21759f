//! JSON over `wasi:http`, with host-held bearer credentials.
//!
//! Every request goes through the host, which checks the host against the connector
//! instance's egress allow-list and adds `X-Request-ID` and `traceparent`. Failures map onto
//! [`Error`] the way the host expects: network errors, 5xx and 429 are `unavailable` (retried
//! with backoff), a 401 that survives one token refresh is `unauthorized`, a denied host is
//! `config`.

use crate::Error;
use crate::auth;
pub use crate::bindings::wasi::http::types::Method;
use crate::bindings::wasi::http::types::{ErrorCode, Scheme};
use serde::de::DeserializeOwned;

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

    /// `POST path_and_query` with `body` as JSON, and parse the JSON answer.
    pub fn post_json<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, Error> {
        let body = serde_json::to_vec(body).map_err(|e| Error::InvalidInput(format!("POST {path_and_query}: {e}")))?;
        let headers = [("content-type", "application/json")];
        let response = self.send(Method::Post, path_and_query, &headers, Some(&body))?;
        serde_json::from_slice(&response.body)
            .map_err(|e| Error::InvalidInput(format!("POST {path_and_query}: response is not the expected JSON: {e}")))
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
        let path = format!("{}{}", self.base_path, path_and_query);
        // On the wire through `wasi:http`; natively, to the test's `testing::FakeHost`.
        #[cfg(target_arch = "wasm32")]
        return wasi::exchange(&self.scheme, &self.authority, method, &path, fields, body);
        #[cfg(not(target_arch = "wasm32"))]
        {
            let scheme = match &self.scheme {
                Scheme::Http => "http",
                Scheme::Https => "https",
                Scheme::Other(other) => other.as_str(),
            };
            crate::testing::exchange(crate::testing::Request {
                method: method_name(method).to_string(),
                url: format!("{scheme}://{}{path}", self.authority),
                headers: fields,
                body: body.unwrap_or_default().to_vec(),
            })
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod wasi {
    use super::{Response, transport_error};
    use crate::Error;
    use crate::bindings::wasi::http::outgoing_handler;
    use crate::bindings::wasi::http::types::{Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
    use crate::bindings::wasi::io::streams::StreamError;

    /// Largest response body accepted (bytes); a larger one is `invalid-input`.
    const MAX_BODY: usize = 64 * 1024 * 1024;

    pub(super) fn exchange(
        scheme: &Scheme,
        authority: &str,
        method: &Method,
        path: &str,
        fields: Vec<(String, Vec<u8>)>,
        body: Option<&[u8]>,
    ) -> Result<Response, Error> {
        let fields = Fields::from_list(&fields)
            .map_err(|_| Error::InvalidInput(format!("{path}: a request header has a forbidden name or value")))?;
        let request = OutgoingRequest::new(fields);
        let invalid = |what: &str| Error::Config(format!("invalid {what} for {path}"));
        request.set_method(method).map_err(|_| invalid("method"))?;
        request.set_scheme(Some(scheme)).map_err(|_| invalid("scheme"))?;
        request
            .set_authority(Some(authority))
            .map_err(|_| invalid("authority"))?;
        request.set_path_with_query(Some(path)).map_err(|_| invalid("path"))?;
        let outgoing_body = request.body().map_err(|_| invalid("body"))?;
        // The request goes out first and its body after: the host buffers little of a body
        // before the request is sent, so writing a larger one first would wait forever.
        let pending = outgoing_handler::handle(request, None).map_err(|e| transport_error(authority, path, e))?;
        if let Some(bytes) = body {
            let stream = outgoing_body.write().map_err(|_| invalid("body"))?;
            for chunk in bytes.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|_| Error::Unavailable(format!("{path}: the request body could not be sent")))?;
            }
        }
        OutgoingBody::finish(outgoing_body, None).map_err(|e| transport_error(authority, path, e))?;
        pending.subscribe().block();
        let incoming = pending
            .get()
            .ok_or_else(|| Error::Unavailable(format!("{path}: no response")))?
            .map_err(|_| Error::Unavailable(format!("{path}: response already taken")))?
            .map_err(|e| transport_error(authority, path, e))?;

        let status = incoming.status();
        let headers = incoming.headers().entries();
        let body = incoming
            .consume()
            .map_err(|_| Error::Unavailable(format!("{path}: response body unavailable")))?;
        let bytes = read_body(path, &body)?;
        IncomingBody::finish(body);
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
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
                        "{path}: reading the response body failed: {}",
                        e.to_debug_string()
                    )));
                }
            }
        }
    }
}

/// `GET`, `POST`, … as on the wire.
pub fn method_name(method: &Method) -> &str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other,
    }
}

fn check_status(method: &Method, path: &str, response: Response) -> Result<Response, Error> {
    let status = response.status;
    let detail = || {
        let snippet = String::from_utf8_lossy(&response.body[..response.body.len().min(200)]);
        format!("{} {path}: HTTP {status}: {snippet}", method_name(method))
    };
    match status {
        200..=299 => Ok(response),
        401 | 403 => Err(Error::Unauthorized(detail())),
        404 => Err(Error::Config(detail())),
        408 | 429 | 500..=599 => Err(Error::Unavailable(detail())),
        _ => Err(Error::InvalidInput(detail())),
    }
}

/// A failed exchange in words: the denied host named, the network failure said plainly.
// Natively a FakeHost answers, and nothing fails on the wire.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn transport_error(authority: &str, path: &str, error: ErrorCode) -> Error {
    let failure = match error {
        ErrorCode::HttpRequestDenied => {
            return Error::Config(format!(
                "{path}: the host refused the request: {authority} is not in this connector's egress allow-list \
                 (add it to the connector's \"egress\")"
            ));
        }
        ErrorCode::DnsTimeout => format!("looking up {authority} timed out"),
        ErrorCode::DnsError(_) => format!("{authority} could not be looked up (DNS)"),
        ErrorCode::DestinationNotFound => format!("{authority} was not found"),
        ErrorCode::DestinationUnavailable => format!("{authority} is unavailable"),
        ErrorCode::DestinationIpProhibited | ErrorCode::DestinationIpUnroutable => {
            format!("{authority}'s address cannot be reached from here")
        }
        ErrorCode::ConnectionRefused => format!("{authority} refused the connection (is it running?)"),
        ErrorCode::ConnectionTerminated => format!("{authority} closed the connection"),
        ErrorCode::ConnectionTimeout => format!("connecting to {authority} timed out"),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            format!("{authority} did not answer in time")
        }
        ErrorCode::ConnectionWriteTimeout => format!("sending to {authority} timed out"),
        ErrorCode::TlsCertificateError => format!("{authority}'s TLS certificate is not trusted"),
        ErrorCode::TlsProtocolError | ErrorCode::TlsAlertReceived(_) => {
            format!("the TLS handshake with {authority} failed")
        }
        ErrorCode::InternalError(Some(detail)) => format!("the host's HTTP client failed: {detail}"),
        _ => format!(
            "the HTTP exchange with {authority} failed ({})",
            words(&format!("{error:?}"))
        ),
    };
    Error::Unavailable(format!("{path}: {failure}"))
}

/// `HttpResponseIncomplete` as "http response incomplete": a WASI error code's name, read.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn words(name: &str) -> String {
    let name = name.split(['(', ' ', '{']).next().unwrap_or(name);
    let name = name.rsplit("::").next().unwrap_or(name);
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() && !out.is_empty() {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn said(error: Error) -> String {
        match error {
            Error::Config(m) | Error::Unavailable(m) => m,
            _ => unreachable!("a transport error is config or unavailable"),
        }
    }

    #[test]
    fn transport_errors_name_the_host_in_words() {
        let denied = said(transport_error(
            "api.example:443",
            "/people",
            ErrorCode::HttpRequestDenied,
        ));
        assert!(
            denied.contains("api.example:443 is not in this connector's egress allow-list"),
            "{denied}"
        );
        let refused = said(transport_error("127.0.0.1:9", "/people", ErrorCode::ConnectionRefused));
        assert_eq!(refused, "/people: 127.0.0.1:9 refused the connection (is it running?)");
        let other = said(transport_error("h", "/p", ErrorCode::HttpResponseIncomplete));
        assert_eq!(other, "/p: the HTTP exchange with h failed (http response incomplete)");
        assert_eq!(method_name(&Method::Patch), "PATCH");
    }
}
