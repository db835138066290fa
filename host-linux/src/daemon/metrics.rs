//! Prometheus text metrics (`--metrics ADDR`): per-instance state, priorities, advert counters
//! and dropped adverts by reason.

use std::fmt::Write as _;
use std::net::SocketAddr;

use hav_core::vrrp::{DropReason, Instance, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::plan::InstancePlan;

/// Scrapes waiting for the daemon loop to render the text: the loop renders only when asked, so
/// an unscraped `--metrics` costs nothing per event.
pub type Scrapes = mpsc::Receiver<oneshot::Sender<String>>;

/// Renders the metrics of every instance.
pub fn render(plans: &[InstancePlan], insts: &[Instance]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# HELP hav_vrrp_state Instance state: 0 init, 1 backup, 2 master, 3 fault.");
    let _ = writeln!(s, "# TYPE hav_vrrp_state gauge");
    for (p, i) in plans.iter().zip(insts) {
        let v = match i.state() {
            State::Initialize => 0,
            State::Backup => 1,
            State::Master => 2,
            State::Fault => 3,
        };
        let _ = writeln!(s, "hav_vrrp_state{{instance=\"{}\"}} {v}", p.name);
    }
    let _ = writeln!(s, "# TYPE hav_vrrp_priority gauge");
    for (p, i) in plans.iter().zip(insts) {
        let _ = writeln!(s, "hav_vrrp_priority{{instance=\"{}\"}} {}", p.name, i.effective_priority());
    }
    for (name, f) in [
        ("adverts_rx", (|i: &Instance| i.counters().adverts_rx) as fn(&Instance) -> u64),
        ("adverts_tx", |i| i.counters().adverts_tx),
        ("transitions", |i| i.counters().transitions),
        ("became_master", |i| i.counters().became_master),
    ] {
        let _ = writeln!(s, "# TYPE hav_vrrp_{name}_total counter");
        for (p, i) in plans.iter().zip(insts) {
            let _ = writeln!(s, "hav_vrrp_{name}_total{{instance=\"{}\"}} {}", p.name, f(i));
        }
    }
    let _ = writeln!(s, "# TYPE hav_vrrp_dropped_total counter");
    for (p, i) in plans.iter().zip(insts) {
        for (r, n) in DropReason::ALL.iter().zip(i.counters().drops.iter()) {
            let _ = writeln!(s, "hav_vrrp_dropped_total{{instance=\"{}\",reason=\"{}\"}} {n}", p.name, r.as_str());
        }
    }
    s
}

/// Serves `GET /metrics` (any path) on `addr`; each request is answered with the text the daemon
/// loop renders for it.
pub async fn serve(addr: SocketAddr) -> std::io::Result<Scrapes> {
    let listener = TcpListener::bind(addr).await?;
    let (tx, rx) = mpsc::channel::<oneshot::Sender<String>>(16);
    tracing::info!(%addr, "metrics listening");
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 1024];
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut req)).await;
                let (reply, body) = oneshot::channel();
                if tx.send(reply).await.is_err() {
                    return;
                }
                let Ok(Ok(body)) = tokio::time::timeout(std::time::Duration::from_secs(5), body).await else { return };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok(rx)
}
