//! The API's listener. hyper answers a request head it cannot parse — a target over 65,534
//! bytes (414), bytes that are not HTTP in the request line or a header (400), a head larger
//! than its buffer (431) — by itself, before any handler runs, with an empty body. Those
//! answers are the only responses without an `x-request-id` (the router stamps every one of
//! its own), so the connection's writer recognises them and sends the same status as
//! `application/problem+json` saying what to fix: every error a client sees is problem+json.

use super::problem::{PROBLEM_JSON, Problem};
use axum::http::StatusCode;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Accepts TCP connections for `axum::serve`, each wrapped in [`ProblemIo`].
pub struct ApiListener(pub TcpListener);

impl axum::serve::Listener for ApiListener {
    type Io = ProblemIo<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        // Answers go out as soon as they are written, not after the client's delayed ACK.
        if let Err(error) = io.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
        (ProblemIo::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection whose bodiless parse-error answers are rewritten as problem+json.
pub struct ProblemIo<T> {
    inner: T,
    /// A rewritten answer being sent, how much of it went out, and how many of the caller's
    /// bytes it stands for (reported written once it is all out).
    rewriting: Option<(Vec<u8>, usize, usize)>,
}

impl<T> ProblemIo<T> {
    pub fn new(inner: T) -> Self {
        Self { inner, rewriting: None }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> ProblemIo<T> {
    /// Starts rewriting when `first` (the first bytes of a write) is such an answer.
    fn recognise(&mut self, first: &[u8]) {
        if self.rewriting.is_none()
            && let Some((status, head_len)) = bare_parse_error(first)
        {
            tracing::debug!(
                status = status.as_u16(),
                "unparsable request answered with problem+json"
            );
            self.rewriting = Some((problem_answer(status), 0, head_len));
        }
    }

    /// Sends the rewritten answer; ready with the count of the caller's bytes it replaced.
    fn poll_rewritten(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some((answer, sent, stands_for)) = &mut self.rewriting else {
            return Poll::Ready(Ok(0));
        };
        while *sent < answer.len() {
            match ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*sent..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => *sent += n,
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
        let written = *stands_for;
        self.rewriting = None;
        Poll::Ready(Ok(written))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.recognise(buf);
        if self.rewriting.is_some() {
            return self.poll_rewritten(cx);
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    /// Vectored like the socket, so hyper writes a head and its body in one call; a response
    /// head is always the first slice.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            self.recognise(first);
        }
        if self.rewriting.is_some() {
            return self.poll_rewritten(cx);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// When `buf` starts with a bodiless 4xx response head the router did not write: its status
/// and the head's length.
fn bare_parse_error(buf: &[u8]) -> Option<(StatusCode, usize)> {
    if !buf.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let status = StatusCode::from_bytes(&buf[9..12]).ok()?;
    let head = std::str::from_utf8(&buf[..end]).ok()?.to_ascii_lowercase();
    let bodiless = head.contains("\r\ncontent-length: 0\r\n");
    let ours = head.contains("\r\nx-request-id:") || head.contains("\r\ncontent-type:");
    (bodiless && !ours).then_some((status, end))
}

/// What every route answers to a request head that cannot be parsed (the OpenAPI document
/// lists them on every operation).
pub(crate) const UNPARSABLE: &[(u16, &str)] = &[
    (
        400,
        "The request is not valid HTTP/1.1: the request line or a header holds bytes HTTP does not allow (percent-encode non-ASCII bytes in the path and query)",
    ),
    (
        414,
        "The request target is longer than 65,534 bytes; shorten the query (long lists are paged with cursor=)",
    ),
    (
        431,
        "The request head is larger than the server reads; send fewer or shorter headers",
    ),
];

fn problem_answer(status: StatusCode) -> Vec<u8> {
    let detail = UNPARSABLE
        .iter()
        .find(|(code, _)| *code == status.as_u16())
        .unwrap_or(&UNPARSABLE[0])
        .1;
    let body = Problem::new(status, detail).body();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {PROBLEM_JSON}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body.as_bytes());
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodiless_answers_the_router_did_not_write_are_rewritten() {
        let hyper_414 =
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 08:00:00 GMT\r\n\r\n";
        assert_eq!(
            bare_parse_error(hyper_414),
            Some((StatusCode::URI_TOO_LONG, hyper_414.len()))
        );
        for ours in [
            &b"HTTP/1.1 404 Not Found\r\ncontent-type: application/problem+json\r\ncontent-length: 90\r\n\r\n{"[..],
            b"HTTP/1.1 409 Conflict\r\nx-request-id: 1\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"{\"items\": []}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert_eq!(bare_parse_error(ours), None, "{}", String::from_utf8_lossy(ours));
        }
    }
}
