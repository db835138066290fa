//! UDP_CHECK: send a datagram; with `require_reply` a (matching) reply must come back, without
//! it the check fails only on an ICMP error (port unreachable, ...) within `connect_timeout`.

use std::net::SocketAddr;

use super::ProbeError;
use crate::config::check::{CheckCommon, UdpCheck};

/// One UDP_CHECK probe.
pub(super) async fn check(u: &UdpCheck, target: SocketAddr, c: &CheckCommon) -> Result<(), ProbeError> {
    let sock = super::net::udp_connect(target, c).await.map_err(|e| ProbeError::io("", e))?;
    let payload = match &u.payload {
        Some(p) => p.clone(),
        None => (0..8).map(|_| fastrand::u8(..)).collect(),
    };
    sock.send(&payload).await.map_err(|e| ProbeError::io("send", e))?;
    let mut buf = vec![0u8; 65536];
    let r = tokio::time::timeout(c.connect_timeout, sock.recv(&mut buf)).await;
    let Some(want) = &u.require_reply else {
        return match r {
            Ok(Err(e)) => Err(ProbeError::io("", e)),
            _ => Ok(()),
        };
    };
    let n = match r {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => return Err(ProbeError::io("", e)),
        Err(_) => return Err(format!("no reply within {:?}", c.connect_timeout).into()),
    };
    let min = u.min_reply_length.unwrap_or(0) as usize;
    let max = u.max_reply_length.unwrap_or(255) as usize;
    if n < min || n > max {
        return Err(format!("reply of {n} bytes, expected {min}..={max}").into());
    }
    let m = n.min(want.len());
    if buf[..m] != want[..m] {
        return Err(ProbeError::Failed("reply does not match require_reply".into()));
    }
    Ok(())
}
