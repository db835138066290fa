//! DNS_CHECK: a query over UDP must get a NOERROR answer with our id.

use std::net::SocketAddr;

use super::ProbeError;
use crate::config::check::{CheckCommon, DnsCheck};

/// The QTYPE number of a DNS_CHECK `type`.
fn qtype(t: &str) -> u16 {
    match t {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        _ => 6, // SOA, the default
    }
}

/// Builds a query for `name`/`qtype` with `id` (RFC 1035 4.1), recursion desired.
pub(crate) fn query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        let len = u8::try_from(label.len()).ok().filter(|l| *l <= 63).ok_or_else(|| format!("DNS label too long in '{name}'"))?;
        q.push(len);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]); // IN
    Ok(q)
}

/// One DNS_CHECK probe.
pub(super) async fn check(d: &DnsCheck, target: SocketAddr, c: &CheckCommon) -> Result<(), ProbeError> {
    let id = fastrand::u16(..);
    let q = query(id, &d.name, qtype(&d.query_type))?;
    let sock = super::net::udp_connect(target, c).await.map_err(|e| ProbeError::io("", e))?;
    sock.send(&q).await.map_err(|e| ProbeError::io("send", e))?;
    let mut buf = [0u8; 1500];
    let deadline = tokio::time::Instant::now() + c.connect_timeout;
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(ProbeError::io("receive", e)),
            Err(_) => return Err(format!("no answer within {:?}", c.connect_timeout).into()),
        };
        // Not ours (stale or stray): keep waiting.
        if n < 12 || buf[..2] != id.to_be_bytes() || buf[2] & 0x80 == 0 {
            continue;
        }
        let rcode = buf[3] & 0x0f;
        if rcode != 0 {
            return Err(format!("answer rcode {rcode}").into());
        }
        return Ok(());
    }
}
