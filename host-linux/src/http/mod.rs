//! One HTTP/1.1 client for the checkers (`HTTP_GET`, `SSL_GET`) and the policies' `http_get`
//! host call: a GET request written by [`get_request`], its response read by [`exchange`] with
//! the bounded decoder of [`response`] (heads parsed by `httparse`).
//!
//! Connecting (and TLS) stays with the callers, which differ there (`bindto`, SNI rules); the
//! request and the response are handled here once.

mod response;

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

pub(crate) use response::{Limits, Response, ResponseError, ResponseReader};

/// Why a GET failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// The path or host cannot go into a request line or header.
    #[error("bad request: {0}")]
    Request(&'static str),
    /// Writing the request failed.
    #[error("send: {0}")]
    Send(io::Error),
    /// Reading the response failed.
    #[error("receive: {0}")]
    Receive(io::Error),
    /// The response was not complete by the deadline.
    #[error("timed out")]
    Timeout,
    /// The response is not HTTP/1.x, or broke a limit.
    #[error(transparent)]
    Response(#[from] ResponseError),
}

/// Whether `s` can go into a request line or header value as is: no controls, no spaces.
fn clean(s: &str) -> bool {
    !s.bytes().any(|b| b.is_ascii_control() || b == b' ')
}

/// A `GET path HTTP/version` request with `Host: host`, `User-Agent: user_agent`,
/// `Accept: */*` and `Connection: close`.
pub(crate) fn get_request(version: &str, host: &str, path: &str, user_agent: &str) -> Result<Vec<u8>, HttpError> {
    if path.is_empty() || !clean(path) {
        return Err(HttpError::Request("the path is empty or has spaces or control characters"));
    }
    if !clean(host) {
        return Err(HttpError::Request("the host has spaces or control characters"));
    }
    Ok(format!(
        "GET {path} HTTP/{version}\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .into_bytes())
}

/// Sends `request` on `stream` and reads one response held to `limits`, all before
/// `deadline`. Returns as soon as the response is complete (the server may keep the connection
/// open); the caller closes the stream.
///
/// A TLS stream that ends without close_notify ends the response like a TCP close: servers
/// often close that way.
pub(crate) async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
    limits: Limits,
    deadline: Instant,
) -> Result<Response, HttpError> {
    let work = async {
        stream.write_all(request).await.map_err(HttpError::Send)?;
        stream.flush().await.map_err(HttpError::Send)?;
        let mut reader = ResponseReader::new(limits);
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => reader.handle_eof()?,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => reader.handle_eof()?,
                Ok(n) => reader.handle(&buf[..n])?,
                Err(e) => return Err(HttpError::Receive(e)),
            }
            if let Some(r) = reader.poll_response() {
                return Ok(r);
            }
        }
    };
    tokio::time::timeout_at(deadline, work).await.unwrap_or(Err(HttpError::Timeout))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A loopback server that answers each connection with `head`, then `repeat` over and over
    /// (forever, or `times` times and then closes); counts the bytes it wrote.
    pub(crate) struct Endless {
        pub(crate) addr: SocketAddr,
        pub(crate) written: Arc<AtomicU64>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Endless {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Endless {
        pub(crate) async fn start(head: &'static [u8], repeat: &'static [u8], times: Option<usize>) -> Endless {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = l.local_addr().expect("addr");
            let written = Arc::new(AtomicU64::new(0));
            let w = written.clone();
            let task = tokio::spawn(async move {
                while let Ok((mut s, _)) = l.accept().await {
                    let w = w.clone();
                    tokio::spawn(async move {
                        let mut req = [0u8; 1024];
                        let _ = s.read(&mut req).await;
                        // Batch the repeats so the server is not the bottleneck.
                        let batch: Vec<u8> = repeat.iter().copied().cycle().take(repeat.len() * (65536 / repeat.len().max(1))).collect();
                        if s.write_all(head).await.is_err() {
                            return;
                        }
                        w.fetch_add(head.len() as u64, Ordering::Relaxed);
                        let mut left = times;
                        loop {
                            let chunk: &[u8] = match &mut left {
                                Some(0) => return,
                                Some(n) => {
                                    *n -= 1;
                                    repeat
                                }
                                None => &batch,
                            };
                            if s.write_all(chunk).await.is_err() {
                                return;
                            }
                            w.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        }
                    });
                }
            });
            Endless { addr, written, task }
        }
    }

    async fn get(addr: SocketAddr, limits: Limits) -> Result<Response, HttpError> {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = get_request("1.1", "x", "/", "test").expect("request");
        exchange(&mut s, &req, limits, Instant::now() + Duration::from_secs(20)).await
    }

    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

    #[tokio::test]
    async fn test_chunked_bomb_stops_at_the_cap_in_linear_time() {
        let cap = 1 << 20;
        let limits = Limits { head: 16 << 10, body: cap };
        // Endless 1-byte chunks: six wire bytes per body byte, read once each.
        let srv = Endless::start(CHUNKED, b"1\r\nz\r\n", None).await;
        let t = std::time::Instant::now();
        let r = get(srv.addr, limits).await.expect("response");
        let elapsed = t.elapsed();
        assert_eq!((r.status, r.body.len(), r.truncated), (200, cap, true));
        assert!(r.body.iter().all(|b| *b == b'z'));
        // The old readers rescanned all they had read on every read: quadratic, far slower.
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?} for a 1 MiB cap");
        // It stopped reading: what the server got out is the cap's worth plus socket buffers.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let written = srv.written.load(Ordering::Relaxed);
        assert!(written < 6 * cap as u64 + (32 << 20), "the server wrote {written} bytes");

        // Endless chunk extensions: framing is capped too.
        let srv = Endless::start(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;", b"eeeeeeee", None).await;
        let e = get(srv.addr, Limits { head: 16 << 10, body: 1024 }).await.expect_err("framing bomb");
        assert!(matches!(e, HttpError::Response(ResponseError::FramingTooLarge(_))), "{e}");

        // Endless trailers, likewise.
        let srv = Endless::start(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", b"X-Trailer: t\r\n", None).await;
        let e = get(srv.addr, Limits { head: 16 << 10, body: 1024 }).await.expect_err("trailer bomb");
        assert!(matches!(e, HttpError::Response(ResponseError::FramingTooLarge(_))), "{e}");
    }

    #[tokio::test]
    async fn test_largest_chunk_size_is_a_clean_outcome() {
        let limits = Limits { head: 16 << 10, body: 4096 };
        // The size line says 2^64-1 bytes and data follows: the body is cut at the cap.
        let srv = Endless::start(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n", b"data", None).await;
        let r = get(srv.addr, limits).await.expect("response");
        assert_eq!((r.body.len(), r.truncated), (4096, true));
        // ... and the connection closes inside it: an error, not a panic.
        let srv = Endless::start(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n", b"ab", Some(1)).await;
        let e = get(srv.addr, limits).await.expect_err("closed");
        assert!(matches!(e, HttpError::Response(ResponseError::ClosedInChunkedBody)), "{e}");
        // A size past 64 bits.
        let srv = Endless::start(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n", b"ab", Some(1)).await;
        let e = get(srv.addr, limits).await.expect_err("overflow");
        assert!(matches!(e, HttpError::Response(ResponseError::ChunkSizeOverflow)), "{e}");
    }

    #[tokio::test]
    async fn test_chunked_and_content_length_bodies() {
        let limits = Limits { head: 16 << 10, body: 4096 };
        let srv = Endless::start(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;e=x\r\n \r\n5\r\nworld\r\n0\r\n\r\n", b"", Some(0)).await;
        let r = get(srv.addr, limits).await.expect("response");
        assert_eq!((r.status, r.body.as_slice(), r.truncated), (200, &b"hello world"[..], false));
        let srv = Endless::start(b"HTTP/1.0 503 Busy\r\nContent-Length: 4\r\n\r\nbusy", b"", Some(0)).await;
        let r = get(srv.addr, limits).await.expect("response");
        assert_eq!((r.status, r.body.as_slice()), (503, &b"busy"[..]));
        // Without a length, the body runs to the close.
        let srv = Endless::start(b"HTTP/1.0 200 OK\r\n\r\n", b"0123456789", Some(3)).await;
        let r = get(srv.addr, limits).await.expect("response");
        assert_eq!(r.body.len(), 30);
    }

    #[test]
    fn test_get_request() {
        let r = get_request("1.0", "svc.example", "/health?x=1", "hav-check").expect("valid");
        assert_eq!(
            r,
            b"GET /health?x=1 HTTP/1.0\r\nHost: svc.example\r\nUser-Agent: hav-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        assert!(matches!(get_request("1.1", "h", "/a b", "x"), Err(HttpError::Request(_))));
        assert!(matches!(get_request("1.1", "h\r\nX: y", "/", "x"), Err(HttpError::Request(_))));
        assert!(matches!(get_request("1.1", "h", "", "x"), Err(HttpError::Request(_))));
    }

    #[tokio::test]
    async fn test_exchange_stops_when_complete_and_at_the_deadline() {
        // The server answers and keeps the connection open: the response is complete anyway.
        let (mut client, mut server) = tokio::io::duplex(64);
        let srv = tokio::spawn(async move {
            let mut req = [0u8; 256];
            let _ = server.read(&mut req).await;
            server.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await.expect("write");
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let limits = Limits { head: 1024, body: 1024 };
        let deadline = Instant::now() + Duration::from_secs(5);
        let r = exchange(&mut client, b"GET / HTTP/1.1\r\n\r\n", limits, deadline).await.expect("response");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        srv.abort();

        // A server that never finishes: the deadline ends it.
        let (mut client, mut server) = tokio::io::duplex(64);
        let srv = tokio::spawn(async move {
            let mut req = [0u8; 256];
            let _ = server.read(&mut req).await;
            server.write_all(b"HTTP/1.1 200 OK\r\n").await.expect("write");
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let deadline = Instant::now() + Duration::from_millis(100);
        let e = exchange(&mut client, b"GET / HTTP/1.1\r\n\r\n", limits, deadline).await.expect_err("times out");
        assert!(matches!(e, HttpError::Timeout), "{e}");
        srv.abort();
    }
}
