//! Prometheus text metrics (`--metrics ADDR`): per-instance state, priorities, advert counters
//! and dropped adverts by reason.

use std::fmt::Write as _;
use std::net::SocketAddr;

use hav_core::vrrp::{DropReason, Instance, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::control::{Envelope, Request};

use super::plan::InstancePlan;

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

/// Serves `GET /metrics` (any path) on `addr`. Each request asks the daemon loop for the text
/// through the control channel (`{"cmd":"metrics"}`), so the loop renders only when scraped.
pub async fn serve(addr: SocketAddr, control: mpsc::Sender<Envelope>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "metrics listening");
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { continue };
            let control = control.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 1024];
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut req)).await;
                let (reply, answer) = oneshot::channel();
                if control.send((Request { cmd: "metrics".into(), instance: None }, reply)).await.is_err() {
                    return;
                }
                let Ok(Ok(answer)) = tokio::time::timeout(std::time::Duration::from_secs(5), answer).await else { return };
                let body = answer["text"].as_str().unwrap_or_default();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok(())
}
