//! Feeds arbitrary bytes to hav-linux's HTTP/1.1 response decoder, the one its checkers and the
//! policies' http_get host call read responses with. The decoder's file is compiled here on its
//! own (it needs only std, httparse and thiserror), not the whole daemon.
//!
//! The first two bytes pick the body cap and how the rest is split into reads. The bytes are
//! decoded whole and split; both must give the same outcome (the decoder's contract: the outcome
//! does not depend on the split), no call may panic, and a body never exceeds its cap.
#![no_main]

#[path = "../../host-linux/src/http/response.rs"]
#[allow(dead_code)]
mod response;

use libfuzzer_sys::fuzz_target;
use response::{Limits, Response, ResponseError, ResponseReader};

/// Decodes `pieces` as the reads of one connection, then its close.
fn decode<'a>(pieces: impl Iterator<Item = &'a [u8]>, limits: Limits) -> Result<Response, ResponseError> {
    let mut r = ResponseReader::new(limits);
    for p in pieces {
        r.handle(p)?;
        if let Some(resp) = r.poll_response() {
            return Ok(resp);
        }
    }
    r.handle_eof()?;
    let resp = r.poll_response().expect("a response after a successful EOF");
    // Taken once.
    assert!(r.poll_response().is_none());
    Ok(resp)
}

fuzz_target!(|data: &[u8]| {
    let [cap, split, rest @ ..] = data else { return };
    let limits = Limits { head: 1024, body: usize::from(*cap) * 4 };
    let whole = decode(std::iter::once(rest), limits);
    let pieces = decode(rest.chunks(usize::from(*split % 16) + 1), limits);
    assert_eq!(whole, pieces, "the split changed the outcome");
    if let Ok(r) = &whole {
        assert!(r.body.len() <= limits.body);
        assert!(!r.truncated || r.body.len() == limits.body);
    }
});
