//! State-change notifications: notify scripts, notify FIFOs and SMTP alerts, with keepalived's
//! arguments and line formats.
//!
//! - `notify_master` / `notify_backup` / `notify_fault` / `notify_stop` run without arguments;
//! - `notify` runs with `TYPE NAME STATE PRIORITY` (`INSTANCE "VI_1" MASTER 100`);
//! - each FIFO gets the line `TYPE "NAME" STATE PRIORITY`;
//! - with `smtp_alert`, a mail goes to every `notification_email` through `smtp_server`.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::proc::{self, Creds};
use crate::config::global::SmtpServer;
use crate::config::vrrp::Notify;
use crate::config::Config;

/// How long a notify script may run.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// What changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `vrrp_instance`.
    Instance,
    /// A `vrrp_sync_group`.
    Group,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Instance => "INSTANCE",
            Kind::Group => "GROUP",
        }
    }
}

/// Where mail goes.
#[derive(Debug, Clone)]
pub struct Smtp {
    /// The relay.
    pub server: SmtpServer,
    /// Connect (and per-reply) timeout.
    pub timeout: Duration,
    /// `notification_email_from`.
    pub from: String,
    /// `notification_email`.
    pub to: Vec<String>,
    /// `router_id`, used in the subject and HELO.
    pub router_id: String,
}

/// Sends notifications; cheap to clone into tasks.
#[derive(Debug, Clone)]
pub struct Notifier {
    pending: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    creds: Option<Creds>,
    secure: bool,
    fifo: Option<mpsc::UnboundedSender<String>>,
    smtp: Option<Smtp>,
}

impl Notifier {
    /// From the global settings. Must be called inside a tokio runtime (it starts the FIFO
    /// writer).
    pub fn new(config: &Config, creds: Option<Creds>) -> Self {
        let mut fifos: Vec<PathBuf> = Vec::new();
        for f in [&config.global.notify_fifo, &config.global.vrrp_notify_fifo].into_iter().flatten() {
            let p = PathBuf::from(f);
            if !fifos.contains(&p) {
                fifos.push(p);
            }
        }
        let fifo = (!fifos.is_empty()).then(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(fifo_writer(fifos, rx));
            tx
        });
        let router_id = config.global.router_id.clone().unwrap_or_else(|| {
            nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "hav".into())
        });
        let smtp = config.global.smtp_server.clone().map(|server| Smtp {
            server,
            timeout: config.global.smtp_connect_timeout,
            from: config
                .global
                .notification_email_from
                .clone()
                .unwrap_or_else(|| format!("hav@{router_id}")),
            to: config.global.notification_email.clone(),
            router_id,
        });
        Notifier { pending: Default::default(), creds, secure: config.global.enable_script_security, fifo, smtp }
    }

    /// `what` entered `state` (`MASTER`, `BACKUP`, `FAULT`, `STOP`) with `priority`.
    pub fn changed(&self, kind: Kind, name: &str, notify: &Notify, state: &str, priority: u8, smtp_alert: bool) {
        let specific = match state {
            "MASTER" => &notify.master,
            "BACKUP" => &notify.backup,
            "FAULT" => &notify.fault,
            "STOP" => &notify.stop,
            _ => &None,
        };
        let allowed = |s: &crate::config::Script| match self.secure.then(|| proc::insecure(s, self.creds)).flatten() {
            Some(why) => {
                tracing::error!(script = %s.command, reason = %why, "notify script not run (enable_script_security)");
                false
            }
            None => true,
        };
        if let Some(s) = specific.clone().filter(|s| allowed(s)) {
            let creds = self.creds;
            self.track(tokio::spawn(async move { report(&s, proc::run(&s, &[], creds, NOTIFY_TIMEOUT).await) }));
        }
        if let Some(s) = notify.notify.clone().filter(|s| allowed(s)) {
            let creds = self.creds;
            let args = vec![kind.as_str().to_owned(), name.to_owned(), state.to_owned(), priority.to_string()];
            self.track(tokio::spawn(async move { report(&s, proc::run(&s, &args, creds, NOTIFY_TIMEOUT).await) }));
        }
        if let Some(tx) = &self.fifo {
            let _ = tx.send(fifo_line(kind, name, state, priority));
        }
        if smtp_alert {
            if let Some(smtp) = self.smtp.clone() {
                let subject = format!("[{}] VRRP {} {} - Entering {} state", smtp.router_id, kind_word(kind), name, state);
                let body = format!("=> VRRP {} {} is now {} (priority {}) <=\r\n", kind_word(kind), name, state, priority);
                self.track(tokio::spawn(async move {
                    if let Err(e) = send_mail(&smtp, &subject, &body).await {
                        tracing::warn!(server = %smtp.server.host, error = %e, "smtp_alert not sent");
                    }
                }));
            }
        }
    }
}

impl Notifier {
    fn track(&self, h: tokio::task::JoinHandle<()>) {
        if let Ok(mut p) = self.pending.lock() {
            p.retain(|h| !h.is_finished());
            p.push(h);
        }
    }

    /// Waits (at most `limit`) for the notifications still running: at shutdown, so that
    /// `notify_stop` and the last mails are not cut off.
    pub async fn drain(&self, limit: Duration) {
        let handles: Vec<_> = self.pending.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        let _ = tokio::time::timeout(limit, async {
            for h in handles {
                let _ = h.await;
            }
        })
        .await;
    }
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Instance => "Instance",
        Kind::Group => "Group",
    }
}

fn report(script: &crate::config::Script, outcome: proc::Outcome) {
    if !outcome.success() {
        tracing::warn!(script = %script.command, ?outcome, "notify script failed");
    }
}

/// The FIFO line for a change: `INSTANCE "VI_1" MASTER 100`.
pub fn fifo_line(kind: Kind, name: &str, state: &str, priority: u8) -> String {
    format!("{} \"{}\" {} {}\n", kind.as_str(), name, state, priority)
}

async fn fifo_writer(paths: Vec<PathBuf>, mut rx: mpsc::UnboundedReceiver<String>) {
    while let Some(line) = rx.recv().await {
        for p in &paths {
            let p = p.clone();
            let l = line.clone();
            let r = tokio::task::spawn_blocking(move || write_fifo(&p, &l)).await;
            if let Ok(Err(e)) = r {
                tracing::debug!(error = %e, "notify fifo not written");
            }
        }
    }
}

fn write_fifo(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking open fails with ENXIO when nobody reads the FIFO: skip rather than hang.
    let mut f = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    f.write_all(line.as_bytes())
}

/// Sends one mail through `smtp` (RFC 5321: EHLO, falling back to HELO; no auth, no TLS, as
/// keepalived's relay setup).
pub async fn send_mail(smtp: &Smtp, subject: &str, body: &str) -> Result<(), String> {
    if smtp.to.is_empty() {
        return Err("no notification_email configured".into());
    }
    let addr = format!("{}:{}", smtp.server.host, smtp.server.port);
    let t = smtp.timeout;
    let stream = tokio::time::timeout(t, TcpStream::connect(&addr))
        .await
        .map_err(|_| format!("connect to {addr}: timed out"))?
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    expect(&mut r, t, 220).await?;
    let helo = &smtp.router_id;
    w.write_all(format!("EHLO {helo}\r\n").as_bytes()).await.map_err(|e| e.to_string())?;
    if expect(&mut r, t, 250).await.is_err() {
        w.write_all(format!("HELO {helo}\r\n").as_bytes()).await.map_err(|e| e.to_string())?;
        expect(&mut r, t, 250).await?;
    }
    w.write_all(format!("MAIL FROM:<{}>\r\n", smtp.from).as_bytes()).await.map_err(|e| e.to_string())?;
    expect(&mut r, t, 250).await?;
    for to in &smtp.to {
        w.write_all(format!("RCPT TO:<{to}>\r\n").as_bytes()).await.map_err(|e| e.to_string())?;
        expect(&mut r, t, 250).await?;
    }
    w.write_all(b"DATA\r\n").await.map_err(|e| e.to_string())?;
    expect(&mut r, t, 354).await?;
    let mut msg = format!("From: {}\r\nTo: {}\r\nSubject: {}\r\n", smtp.from, smtp.to.join(", "), subject);
    msg.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
    for line in body.lines() {
        // Dot-stuffing (RFC 5321 section 4.5.2).
        if line.starts_with('.') {
            msg.push('.');
        }
        msg.push_str(line);
        msg.push_str("\r\n");
    }
    msg.push_str(".\r\n");
    w.write_all(msg.as_bytes()).await.map_err(|e| e.to_string())?;
    expect(&mut r, t, 250).await?;
    w.write_all(b"QUIT\r\n").await.map_err(|e| e.to_string())?;
    let _ = expect(&mut r, t, 221).await;
    Ok(())
}

async fn expect<R: AsyncBufReadExt + Unpin>(r: &mut R, t: Duration, code: u16) -> Result<(), String> {
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(t, r.read_line(&mut line))
            .await
            .map_err(|_| format!("no reply (expected {code})"))?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("connection closed (expected {code})"));
        }
        let got: u16 = line.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| format!("bad reply '{}'", line.trim_end()))?;
        // "250-..." continues a multi-line reply; "250 ..." ends it.
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        return if got == code { Ok(()) } else { Err(format!("expected {code}, got '{}'", line.trim_end())) };
    }
}
