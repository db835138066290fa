//! SMTP_CHECK: the server greets with 220, answers HELO with 250; then QUIT.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::ProbeError;
use crate::config::check::{CheckCommon, SmtpCheck};

/// Reads one (possibly multi-line) SMTP reply and returns its code.
async fn reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<u16, String> {
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line).await.map_err(|e| format!("receive: {e}"))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        if line.len() > 1024 {
            return Err("reply line too long".into());
        }
        let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| format!("bad SMTP reply '{}'", line.trim_end()))?;
        // "250-..." continues, "250 ..." (or a bare "250") ends the reply.
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(code);
        }
    }
}

async fn session(m: &SmtpCheck, target: SocketAddr, c: &CheckCommon) -> Result<(), ProbeError> {
    let stream = super::net::connect(target, c).await.map_err(|e| ProbeError::io("", e))?;
    let mut s = BufReader::new(stream);
    let code = reply(&mut s).await?;
    if code != 220 {
        return Err(format!("greeting {code}, expected 220").into());
    }
    let helo = match &m.helo_name {
        Some(h) => h.clone(),
        None => nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into()),
    };
    s.get_mut().write_all(format!("HELO {helo}\r\n").as_bytes()).await.map_err(|e| format!("send: {e}"))?;
    let code = reply(&mut s).await?;
    if code != 250 {
        return Err(format!("HELO answered {code}, expected 250").into());
    }
    // QUIT is a courtesy; its answer does not matter.
    let _ = s.get_mut().write_all(b"QUIT\r\n").await;
    let _ = tokio::time::timeout(std::time::Duration::from_millis(100), reply(&mut s)).await;
    Ok(())
}

/// One SMTP_CHECK probe, bounded by `connect_timeout`.
pub(super) async fn check(m: &SmtpCheck, target: SocketAddr, c: &CheckCommon) -> Result<(), ProbeError> {
    tokio::time::timeout(c.connect_timeout, session(m, target, c))
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {:?}", c.connect_timeout).into()))
}
