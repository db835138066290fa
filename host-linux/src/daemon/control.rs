//! The control socket: a Unix stream socket carrying one JSON request per line and one JSON
//! reply per line.
//!
//! Requests: `{"cmd":"status"}`, `{"cmd":"standby","instance":"VI_1"}`, `{"cmd":"takeover",...}`,
//! `{"cmd":"resume",...}`, `{"cmd":"reload"}`, `{"cmd":"metrics"}` (Prometheus text in `text`).
//! Replies: `{"ok":true,...}` or
//! `{"ok":false,"error":"..."}`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `status`, `standby`, `takeover`, `resume`, `reload` or `metrics`.
    pub cmd: String,
    /// The instance, for the admin commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// A request with the channel its reply goes to.
pub type Envelope = (Request, oneshot::Sender<serde_json::Value>);

/// Removes the socket file when dropped.
#[derive(Debug)]
pub struct ControlSocket {
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on `path` (replacing a stale socket) and forwards requests to `tx`.
pub fn serve(path: &Path, tx: mpsc::Sender<Envelope>) -> std::io::Result<ControlSocket> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{}: another daemon is listening", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Err(e) = session(stream, tx).await {
                    tracing::debug!(error = %e, "control session ended");
                }
            });
        }
    });
    Ok(ControlSocket { path: path.to_owned() })
}

async fn session(stream: UnixStream, tx: mpsc::Sender<Envelope>) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await? {
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let (otx, orx) = oneshot::channel();
                if tx.send((req, otx)).await.is_err() {
                    break;
                }
                orx.await.unwrap_or_else(|_| serde_json::json!({"ok": false, "error": "daemon stopping"}))
            }
            Err(e) => serde_json::json!({"ok": false, "error": format!("bad request: {e}")}),
        };
        let mut out = serde_json::to_vec(&reply)?;
        out.push(b'\n');
        w.write_all(&out).await?;
    }
    Ok(())
}

/// Sends one request to the daemon at `path` and returns its reply (blocking client for the CLI).
pub fn request(path: &Path, req: &Request) -> Result<serde_json::Value, String> {
    use std::io::{BufRead, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("{}: cannot reach the daemon: {e}", path.display()))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    line.push(b'\n');
    s.write_all(&line).map_err(|e| e.to_string())?;
    let mut reply = String::new();
    std::io::BufReader::new(s).read_line(&mut reply).map_err(|e| format!("reading the reply: {e}"))?;
    serde_json::from_str(&reply).map_err(|e| format!("bad reply from the daemon: {e}"))
}
