//! The HTTP/1.1 response decoder: sans-IO, resumable, bounded.
//!
//! [`ResponseReader`] takes the bytes of a response as they arrive ([`ResponseReader::handle`],
//! [`ResponseReader::handle_eof`]) and hands the response out once it is complete
//! ([`ResponseReader::poll_response`]). It does no I/O and reads no clock: the caller bounds
//! the time.
//!
//! The head is parsed by `httparse`, once, when its end has arrived; earlier bytes are searched
//! for that end only once each. The body is framed as RFC 9112 section 6.3 says for a response to
//! a GET: none for 1xx (skipped: a final response follows), 204 and 304; chunked when
//! `Transfer-Encoding` ends in `chunked`; until the connection closes when it ends in anything
//! else; `Content-Length` (all values equal) otherwise; until the connection closes without
//! either.
//!
//! The contract, whatever the bytes and however they are split:
//! - no call panics, and all arithmetic on sizes from the wire is checked;
//! - each byte is looked at a constant number of times (linear time);
//! - memory is at most [`Limits::head`] for the head and [`Limits::body`] for the body;
//! - a body longer than [`Limits::body`] ends the response at the cap, marked
//!   [`Response::truncated`], without reading the rest; chunk framing (size lines, extensions,
//!   CRLFs, trailers) is held to eight times [`Limits::body`] plus 64 KiB (room for 1-byte
//!   chunks up to the body cap), so the bytes read are bounded too;
//! - the outcome does not depend on how the bytes were split between calls.
//!
//! This file uses only `std`, `httparse` and `thiserror`, so that the fuzz target
//! (`fuzz/fuzz_targets/http_response.rs`) can compile it on its own.

/// Most headers in one head.
const MAX_HEADERS: usize = 64;
/// Chunk framing allowed per byte of [`Limits::body`], and on top of it.
const FRAMING_PER_BODY_BYTE: usize = 8;
const FRAMING_SLACK: usize = 64 * 1024;

/// The bounds of one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Most bytes of response heads (status line and headers), interim 1xx heads included.
    pub(crate) head: usize,
    /// Most bytes of body kept; a longer body is cut here and the response marked truncated.
    pub(crate) body: usize,
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// The status code of the final (non-1xx) response.
    pub(crate) status: u16,
    /// The body, decoded from chunks, at most [`Limits::body`] bytes.
    pub(crate) body: Vec<u8>,
    /// The body was longer than [`Limits::body`] and was cut there.
    pub(crate) truncated: bool,
}

/// Why the bytes are not a usable HTTP/1.x response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResponseError {
    /// The connection closed before any response byte.
    #[error("connection closed without a response")]
    NoResponse,
    /// The connection closed inside a response head.
    #[error("connection closed inside the response head")]
    ClosedInHead,
    /// The head is not HTTP/1.x.
    #[error("malformed response head: {0}")]
    Head(httparse::Error),
    /// The heads are longer than [`Limits::head`].
    #[error("response head larger than {0} bytes")]
    HeadTooLarge(usize),
    /// A `Content-Length` that is not a number, or two that differ.
    #[error("invalid Content-Length")]
    ContentLength,
    /// A chunk size line that is not hex digits, optionally with extensions.
    #[error("invalid chunk size line")]
    ChunkSize,
    /// A chunk size of more than 64 bits.
    #[error("chunk size does not fit in 64 bits")]
    ChunkSizeOverflow,
    /// Chunk data not followed by CRLF, or a trailer line with a bare CR.
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
    /// Chunk sizes, extensions, CRLFs and trailers beyond the cap.
    #[error("chunk framing larger than {0} bytes")]
    FramingTooLarge(usize),
    /// The connection closed before `Content-Length` bytes of body.
    #[error("connection closed after {got} of {expected} body bytes")]
    ShortBody {
        /// Body bytes received.
        got: u64,
        /// The `Content-Length`.
        expected: u64,
    },
    /// The connection closed before the last chunk.
    #[error("connection closed inside a chunked body")]
    ClosedInChunkedBody,
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// In the hex digits of a size line.
    Size { size: u64, digits: u32 },
    /// In the extensions of a size line.
    Ext { size: u64 },
    /// After the CR of a size line.
    SizeLf { size: u64 },
    /// In chunk data, `left` bytes to go (never 0).
    Data { left: u64 },
    /// After chunk data, before its CR.
    DataCr,
    /// After the CR that follows chunk data.
    DataLf,
    /// In the trailer section, `line` bytes into a line.
    Trailer { line: usize },
    /// After the CR of a trailer line of `line` bytes.
    TrailerLf { line: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a head (the final one or a 1xx).
    Head,
    /// A body of `total` bytes, `left` to go (never 0).
    Length { left: u64, total: u64 },
    /// A body that ends when the connection closes.
    Close,
    /// A chunked body.
    Chunked(Chunk),
    /// The response is complete.
    Done,
    /// The response was handed out.
    Taken,
}

/// Decodes one HTTP/1.x response; see the module documentation for its contract.
#[derive(Debug)]
pub(crate) struct ResponseReader {
    limits: Limits,
    state: State,
    /// The head being read, from its first non-newline byte.
    head: Vec<u8>,
    /// Bytes of `head` already searched for the empty line that ends it.
    scanned: usize,
    /// Head bytes consumed before `head`: interim 1xx heads, empty lines before a status line.
    heads_before: usize,
    status: u16,
    body: Vec<u8>,
    truncated: bool,
    /// Chunk framing bytes so far.
    framing: usize,
    /// The first error; every later call returns it.
    failed: Option<ResponseError>,
}

fn hex(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &v[start..end]
}

/// A `Content-Length` value: decimal digits only, at most 64 bits.
fn length(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |n, b| {
        let d = if b.is_ascii_digit() { u64::from(b - b'0') } else { return None };
        n.checked_mul(10)?.checked_add(d)
    })
}

/// The body state after a final head with `status` and `headers`.
fn framing(status: u16, headers: &[httparse::Header<'_>]) -> Result<State, ResponseError> {
    if status == 204 || status == 304 {
        return Ok(State::Done);
    }
    let mut coding: Option<&[u8]> = None;
    let mut transfer_encoding = false;
    let mut content_length: Option<u64> = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            for c in h.value.split(|b| *b == b',').map(trim).filter(|c| !c.is_empty()) {
                coding = Some(c);
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            for v in h.value.split(|b| *b == b',').map(trim) {
                let n = length(v).ok_or(ResponseError::ContentLength)?;
                if content_length.is_some_and(|l| l != n) {
                    return Err(ResponseError::ContentLength);
                }
                content_length = Some(n);
            }
        }
    }
    // Transfer-Encoding overrides Content-Length; a response whose last coding is not chunked
    // ends when the connection closes.
    if transfer_encoding {
        return Ok(if coding.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")) {
            State::Chunked(Chunk::Size { size: 0, digits: 0 })
        } else {
            State::Close
        });
    }
    Ok(match content_length {
        Some(0) => State::Done,
        Some(n) => State::Length { left: n, total: n },
        None => State::Close,
    })
}

impl ResponseReader {
    /// A reader for one response, held to `limits`.
    pub(crate) fn new(limits: Limits) -> ResponseReader {
        ResponseReader {
            limits,
            state: State::Head,
            head: Vec::new(),
            scanned: 0,
            heads_before: 0,
            status: 0,
            body: Vec::new(),
            truncated: false,
            framing: 0,
            failed: None,
        }
    }

    /// Takes the next bytes read from the connection. Bytes after the end of the response are
    /// ignored. Call [`ResponseReader::poll_response`] after each call.
    ///
    /// An error is final: every later call returns it again.
    pub(crate) fn handle(&mut self, data: &[u8]) -> Result<(), ResponseError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.consume(data);
        if let Err(e) = r {
            self.failed = Some(e);
        }
        r
    }

    /// Takes the end of the connection: completes a body that ends there, or fails a response
    /// that needed more.
    pub(crate) fn handle_eof(&mut self) -> Result<(), ResponseError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = match self.state {
            State::Head if self.head.is_empty() && self.heads_before == 0 => Err(ResponseError::NoResponse),
            State::Head => Err(ResponseError::ClosedInHead),
            State::Length { left, total } => Err(ResponseError::ShortBody { got: total - left, expected: total }),
            State::Chunked(_) => Err(ResponseError::ClosedInChunkedBody),
            State::Close => {
                self.state = State::Done;
                Ok(())
            }
            State::Done | State::Taken => Ok(()),
        };
        if let Err(e) = r {
            self.failed = Some(e);
        }
        r
    }

    /// The response, once complete; `None` before, and after it was taken.
    pub(crate) fn poll_response(&mut self) -> Option<Response> {
        if self.state != State::Done {
            return None;
        }
        self.state = State::Taken;
        Some(Response { status: self.status, body: std::mem::take(&mut self.body), truncated: self.truncated })
    }

    fn consume(&mut self, mut data: &[u8]) -> Result<(), ResponseError> {
        while !data.is_empty() {
            data = match self.state {
                State::Head => self.consume_head(data)?,
                State::Length { left, total } => self.consume_length(left, total, data),
                State::Close => self.consume_close(data),
                State::Chunked(c) => self.consume_chunked(c, data)?,
                State::Done | State::Taken => return Ok(()),
            };
        }
        Ok(())
    }

    fn head_room(&self) -> usize {
        self.limits.head.saturating_sub(self.heads_before.saturating_add(self.head.len()))
    }

    fn consume_head<'d>(&mut self, mut data: &'d [u8]) -> Result<&'d [u8], ResponseError> {
        if self.head.is_empty() {
            // Empty lines before a status line (after a 1xx, say) are skipped here rather than by
            // httparse, so that the search below never mistakes them for the end of a head.
            let skip = data.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
            if skip > self.head_room() {
                return Err(ResponseError::HeadTooLarge(self.limits.head));
            }
            self.heads_before += skip;
            data = &data[skip..];
            if data.is_empty() {
                return Ok(data);
            }
        }
        let before = self.head.len();
        let take = data.len().min(self.head_room());
        self.head.extend_from_slice(&data[..take]);
        // The head ends with an empty line: LF LF or LF CR LF. Only new bytes are searched (the
        // look-back is at most two bytes), and head[0] is never a newline.
        let h = &self.head;
        let end = (self.scanned.max(1)..h.len())
            .find(|&i| h[i] == b'\n' && (h[i - 1] == b'\n' || (i >= 2 && h[i - 1] == b'\r' && h[i - 2] == b'\n')))
            .map(|i| i + 1);
        let Some(end) = end else {
            self.scanned = self.head.len();
            if take < data.len() {
                return Err(ResponseError::HeadTooLarge(self.limits.head));
            }
            return Ok(&data[take..]);
        };
        self.head.truncate(end);
        self.parse_head()?;
        Ok(&data[end - before..])
    }

    /// Parses the complete head in `self.head` and moves to what follows it.
    fn parse_head(&mut self) -> Result<(), ResponseError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let (status, next) = match parsed.parse(&self.head) {
            Ok(httparse::Status::Complete(n)) if n == self.head.len() => {
                let status = parsed.code.unwrap_or(0);
                let next = if (100..200).contains(&status) { State::Head } else { framing(status, parsed.headers)? };
                (status, next)
            }
            // The search found an empty line where httparse sees none: not a head it accepts.
            Ok(_) => return Err(ResponseError::Head(httparse::Error::NewLine)),
            Err(e) => return Err(ResponseError::Head(e)),
        };
        self.heads_before += self.head.len();
        self.head.clear();
        self.scanned = 0;
        if next != State::Head {
            self.status = status;
            self.head = Vec::new();
        }
        self.state = next;
        Ok(())
    }

    /// Keeps what fits of `bytes` in the body; false when some did not fit.
    fn keep(&mut self, bytes: &[u8]) -> bool {
        let room = self.limits.body.saturating_sub(self.body.len());
        let n = bytes.len().min(room);
        self.body.extend_from_slice(&bytes[..n]);
        n == bytes.len()
    }

    fn cut(&mut self) {
        self.truncated = true;
        self.state = State::Done;
    }

    fn consume_length<'d>(&mut self, left: u64, total: u64, data: &'d [u8]) -> &'d [u8] {
        let n = usize::try_from(left).map_or(data.len(), |l| l.min(data.len()));
        let left = left - n as u64;
        if !self.keep(&data[..n]) || (left > 0 && self.body.len() >= self.limits.body) {
            self.cut();
        } else if left == 0 {
            self.state = State::Done;
        } else {
            self.state = State::Length { left, total };
        }
        &data[n..]
    }

    fn consume_close<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        if !self.keep(data) {
            self.cut();
        }
        &data[data.len()..]
    }

    fn consume_chunked<'d>(&mut self, mut c: Chunk, data: &'d [u8]) -> Result<&'d [u8], ResponseError> {
        let max_framing = self.limits.body.saturating_mul(FRAMING_PER_BODY_BYTE).saturating_add(FRAMING_SLACK);
        let mut i = 0;
        while i < data.len() {
            if let Chunk::Data { left } = c {
                let n = usize::try_from(left).map_or(data.len() - i, |l| l.min(data.len() - i));
                let left = left - n as u64;
                if !self.keep(&data[i..i + n]) || (left > 0 && self.body.len() >= self.limits.body) {
                    self.cut();
                    return Ok(&data[data.len()..]);
                }
                i += n;
                c = if left == 0 { Chunk::DataCr } else { Chunk::Data { left } };
                continue;
            }
            let b = data[i];
            i += 1;
            self.framing += 1;
            if self.framing > max_framing {
                return Err(ResponseError::FramingTooLarge(max_framing));
            }
            let data_or_trailer = |size: u64| if size == 0 { Chunk::Trailer { line: 0 } } else { Chunk::Data { left: size } };
            c = match (c, b) {
                (Chunk::Size { size, digits }, _) if hex(b).is_some() => {
                    let size = size.checked_mul(16).and_then(|s| s.checked_add(hex(b).unwrap_or(0)));
                    Chunk::Size { size: size.ok_or(ResponseError::ChunkSizeOverflow)?, digits: digits + 1 }
                }
                (Chunk::Size { digits: 0, .. }, _) => return Err(ResponseError::ChunkSize),
                (Chunk::Size { size, .. }, b';' | b' ' | b'\t') => Chunk::Ext { size },
                (Chunk::Size { size, .. } | Chunk::Ext { size }, b'\r') => Chunk::SizeLf { size },
                (Chunk::Size { size, .. } | Chunk::Ext { size } | Chunk::SizeLf { size }, b'\n') => data_or_trailer(size),
                (Chunk::Size { .. } | Chunk::SizeLf { .. }, _) => return Err(ResponseError::ChunkSize),
                (Chunk::Ext { size }, _) => Chunk::Ext { size },
                (Chunk::DataCr, b'\r') => Chunk::DataLf,
                (Chunk::DataCr | Chunk::DataLf, b'\n') => Chunk::Size { size: 0, digits: 0 },
                (Chunk::DataCr | Chunk::DataLf, _) => return Err(ResponseError::ChunkEnd),
                (Chunk::Trailer { line }, b'\r') => Chunk::TrailerLf { line },
                (Chunk::Trailer { line: 0 } | Chunk::TrailerLf { line: 0 }, b'\n') => {
                    self.state = State::Done;
                    return Ok(&data[i..]);
                }
                (Chunk::Trailer { .. } | Chunk::TrailerLf { .. }, b'\n') => Chunk::Trailer { line: 0 },
                (Chunk::TrailerLf { .. }, _) => return Err(ResponseError::ChunkEnd),
                (Chunk::Trailer { line }, _) => Chunk::Trailer { line: line + 1 },
                // Handled before the byte is taken.
                (Chunk::Data { .. }, _) => c,
            };
        }
        self.state = State::Chunked(c);
        Ok(&data[data.len()..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { head: 1024, body: 64 };

    /// The outcome of `bytes` fed at once, then the connection closed.
    fn whole(bytes: &[u8], limits: Limits) -> Result<Response, ResponseError> {
        let mut r = ResponseReader::new(limits);
        r.handle(bytes)?;
        if let Some(resp) = r.poll_response() {
            return Ok(resp);
        }
        r.handle_eof()?;
        Ok(r.poll_response().expect("complete after EOF"))
    }

    /// The same, fed one byte at a time; checks it agrees with [`whole`].
    fn bytewise(bytes: &[u8], limits: Limits) -> Result<Response, ResponseError> {
        let mut r = ResponseReader::new(limits);
        let mut out = None;
        for b in bytes {
            if let Err(e) = r.handle(std::slice::from_ref(b)) {
                out = Some(Err(e));
                break;
            }
            if let Some(resp) = r.poll_response() {
                out = Some(Ok(resp));
                break;
            }
        }
        let out = out.unwrap_or_else(|| {
            r.handle_eof()?;
            Ok(r.poll_response().expect("complete after EOF"))
        });
        assert_eq!(out, whole(bytes, limits), "split and whole differ for {:?}", String::from_utf8_lossy(bytes));
        out
    }

    fn ok(status: u16, body: &[u8]) -> Result<Response, ResponseError> {
        Ok(Response { status, body: body.to_vec(), truncated: false })
    }

    #[test]
    fn test_content_length() {
        assert_eq!(bytewise(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabcdef", LIMITS), ok(404, b"abc"));
        assert_eq!(bytewise(b"HTTP/1.0 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc", LIMITS), ok(200, b"abc"));
        assert_eq!(bytewise(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", LIMITS), ok(200, b""));
        assert_eq!(bytewise(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", LIMITS), Err(ResponseError::ContentLength));
        assert_eq!(bytewise(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", LIMITS), Err(ResponseError::ContentLength));
        assert_eq!(
            bytewise(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", LIMITS),
            Err(ResponseError::ContentLength)
        );
        assert_eq!(bytewise(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", LIMITS), Err(ResponseError::ShortBody { got: 2, expected: 5 }));
        // Longer than the cap: cut there, the rest not waited for.
        let big = format!("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n{}", "x".repeat(64));
        assert_eq!(bytewise(big.as_bytes(), LIMITS), Ok(Response { status: 200, body: vec![b'x'; 64], truncated: true }));
    }

    #[test]
    fn test_chunked() {
        let r = b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nTrailer: t\r\n\r\nextra";
        assert_eq!(bytewise(r, LIMITS), ok(503, b"abcde"));
        assert_eq!(bytewise(b"HTTP/1.1 200 OK\nTransfer-Encoding: gzip, Chunked\n\nA\nabcdefghij\n0\n\n", LIMITS), ok(200, b"abcdefghij"));
        assert_eq!(bytewise(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX", LIMITS), Err(ResponseError::ChunkEnd));
        assert_eq!(bytewise(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", LIMITS), Err(ResponseError::ChunkSize));
        assert_eq!(bytewise(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n", LIMITS), Err(ResponseError::ChunkSize));
        assert_eq!(bytewise(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", LIMITS), Err(ResponseError::ClosedInChunkedBody));
        // Not chunked last: the body runs to the close.
        assert_eq!(bytewise(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc", LIMITS), ok(200, b"3\r\nabc"));
    }

    #[test]
    fn test_chunk_size_overflow_and_cap() {
        // The largest 64-bit size is a valid size line: the body is cut at the cap.
        let huge = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n{}", "y".repeat(100));
        assert_eq!(bytewise(huge.as_bytes(), LIMITS), Ok(Response { status: 200, body: vec![b'y'; 64], truncated: true }));
        // One more digit does not fit.
        let over = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n";
        assert_eq!(bytewise(over, LIMITS), Err(ResponseError::ChunkSizeOverflow));
        // Leading zeros are digits like any other.
        let zeros = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000000001\r\na\r\n0\r\n\r\n";
        assert_eq!(bytewise(zeros, LIMITS), ok(200, b"a"));
        // Endless small chunks stop at the body cap; endless extensions at the framing cap.
        let mut bomb = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..100 {
            bomb.extend_from_slice(b"1\r\nz\r\n");
        }
        assert_eq!(bytewise(&bomb, LIMITS), Ok(Response { status: 200, body: vec![b'z'; 64], truncated: true }));
        let mut ext = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
        ext.extend(std::iter::repeat_n(b'e', 70 * 1024));
        assert_eq!(whole(&ext, LIMITS), Err(ResponseError::FramingTooLarge(8 * 64 + 64 * 1024)));
    }

    #[test]
    fn test_heads() {
        // Interim responses are skipped; the final one counts.
        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(bytewise(r, LIMITS), ok(200, b"ok"));
        assert_eq!(bytewise(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", LIMITS), ok(204, b""));
        assert_eq!(bytewise(b"HTTP/1.0 200 OK\r\n\r\nuntil close", LIMITS), ok(200, b"until close"));
        assert_eq!(bytewise(b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!", LIMITS), ok(200, b"!"));
        assert_eq!(bytewise(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", LIMITS), Err(ResponseError::Head(httparse::Error::Version)));
        assert_eq!(bytewise(b"HTTP/1.1 abc OK\r\n\r\n", LIMITS), Err(ResponseError::Head(httparse::Error::Status)));
        assert_eq!(bytewise(b"", LIMITS), Err(ResponseError::NoResponse));
        assert_eq!(bytewise(b"HTTP/1.1 200 OK\r\n", LIMITS), Err(ResponseError::ClosedInHead));
        let long = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "h".repeat(2000));
        assert_eq!(bytewise(long.as_bytes(), LIMITS), Err(ResponseError::HeadTooLarge(1024)));
        // Interim heads count toward the head cap too.
        let many = "HTTP/1.1 100 Continue\r\n\r\n".repeat(60);
        assert_eq!(bytewise(many.as_bytes(), LIMITS), Err(ResponseError::HeadTooLarge(1024)));
        let headers = format!("HTTP/1.1 200 OK\r\n{}\r\n", "A: b\r\n".repeat(65));
        assert_eq!(whole(headers.as_bytes(), Limits { head: 4096, body: 0 }), Err(ResponseError::Head(httparse::Error::TooManyHeaders)));
    }

    #[test]
    fn test_errors_are_final() {
        let mut r = ResponseReader::new(LIMITS);
        assert_eq!(r.handle(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nq"), Err(ResponseError::ChunkSize));
        assert_eq!(r.handle(b"0\r\n\r\n"), Err(ResponseError::ChunkSize));
        assert_eq!(r.handle_eof(), Err(ResponseError::ChunkSize));
        assert_eq!(r.poll_response(), None);
    }
}
