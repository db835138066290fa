//! Per-interface sysctls under /proc/sys/net, and a guard that puts back what
//! it changed.
//!
//! /proc/sys/net is per network namespace: a path is resolved in the
//! namespace of the thread that opens it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::{NetError, Result};
use super::netlink::check_ifname;

const ROOT: &str = "/proc/sys/net";

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.contains(['/', '\0']) || key == "." || key == ".." {
        return Err(NetError::Invalid {
            what: "sysctl name",
            detail: format!("{key:?}"),
        });
    }
    Ok(())
}

/// `/proc/sys/net/ipv4/conf/IFNAME/KEY`. `ifname` may also be `all` or
/// `default`.
pub fn ipv4_conf(ifname: &str, key: &str) -> Result<PathBuf> {
    check_ifname(ifname)?;
    check_key(key)?;
    Ok(Path::new(ROOT).join("ipv4/conf").join(ifname).join(key))
}

/// `/proc/sys/net/ipv6/conf/IFNAME/KEY`. `ifname` may also be `all` or
/// `default`.
pub fn ipv6_conf(ifname: &str, key: &str) -> Result<PathBuf> {
    check_ifname(ifname)?;
    check_key(key)?;
    Ok(Path::new(ROOT).join("ipv6/conf").join(ifname).join(key))
}

/// Reads a sysctl, without the trailing newline.
pub fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|s| s.trim_end().to_owned())
        .map_err(|source| NetError::Sysctl {
            path: path.to_owned(),
            source,
        })
}

/// Writes a sysctl. Never creates a file: a missing sysctl (or interface)
/// is a `NotFound` error.
pub fn write(path: &Path, value: &str) -> Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{value}\n").as_bytes()))
        .map_err(|source| NetError::Sysctl {
            path: path.to_owned(),
            source,
        })
}

/// Remembers the previous value of every sysctl it sets and restores them,
/// last set first, on [`SysctlGuard::restore`] or on drop.
///
/// Values of an interface that has gone away in the meantime (a deleted
/// VMAC) are skipped silently.
#[derive(Debug, Default)]
pub struct SysctlGuard {
    saved: Vec<(PathBuf, String)>,
}

impl SysctlGuard {
    /// A guard that has changed nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `path` to `value`, remembering the value it had the first time
    /// this guard touched it.
    pub fn set(&mut self, path: &Path, value: &str) -> Result<()> {
        let old = read(path)?;
        write(path, value)?;
        if !self.saved.iter().any(|(p, _)| p == path) {
            self.saved.push((path.to_owned(), old));
        }
        Ok(())
    }

    /// The sysctls changed so far, with their previous values.
    pub fn saved(&self) -> &[(PathBuf, String)] {
        &self.saved
    }

    /// Prepares the parent link of a VMAC: `arp_ignore=1` (answer ARP only
    /// for addresses of the receiving interface, so the VIP on the macvlan
    /// is answered only with the virtual MAC) and `arp_announce=2` (ARP
    /// requests from the parent always carry the parent's own address: a
    /// request with the VIP as sender would teach its neighbours the parent's
    /// MAC for the VIP).
    pub fn prepare_vmac_parent(&mut self, parent: &str) -> Result<()> {
        self.set(&ipv4_conf(parent, "arp_ignore")?, "1")?;
        self.set(&ipv4_conf(parent, "arp_announce")?, "2")
    }

    /// Prepares a VMAC macvlan before it goes up: `arp_ignore=1` and
    /// `arp_announce=1` as on the parent and, when it carries IPv6 VIPs,
    /// `accept_dad=0` so a VIP still held by the old master on the wire does
    /// not fail DAD during a takeover.
    pub fn prepare_vmac(&mut self, vmac: &str, ipv6: bool) -> Result<()> {
        self.set(&ipv4_conf(vmac, "arp_ignore")?, "1")?;
        self.set(&ipv4_conf(vmac, "arp_announce")?, "1")?;
        if ipv6 {
            self.set(&ipv6_conf(vmac, "accept_dad")?, "0")?;
        }
        Ok(())
    }

    /// Restores every saved value, last set first. Keeps going after a
    /// failure and returns the first one.
    pub fn restore(&mut self) -> Result<()> {
        let mut first = None;
        while let Some((path, old)) = self.saved.pop() {
            match write(&path, &old) {
                Ok(()) => {}
                Err(NetError::Sysctl { source, .. })
                    if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for SysctlGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            tracing::warn!("could not restore sysctl: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_paths() {
        assert_eq!(
            ipv4_conf("eth0", "arp_ignore").unwrap(),
            Path::new("/proc/sys/net/ipv4/conf/eth0/arp_ignore")
        );
        assert_eq!(
            ipv6_conf("vrrp.51", "accept_dad").unwrap(),
            Path::new("/proc/sys/net/ipv6/conf/vrrp.51/accept_dad")
        );
        assert!(ipv4_conf("../x", "arp_ignore").is_err());
        assert!(ipv4_conf("eth0", "../../kernel/hostname").is_err());
        assert!(ipv6_conf("eth0", "").is_err());
    }

    #[test]
    fn test_read_missing_names_path() {
        let p = ipv4_conf("hvnosuch0", "arp_ignore").unwrap();
        let e = read(&p).unwrap_err();
        assert!(
            e.to_string()
                .contains("/proc/sys/net/ipv4/conf/hvnosuch0/arp_ignore"),
            "{e}"
        );
        let mut g = SysctlGuard::new();
        assert!(g.set(&p, "1").is_err());
        assert!(g.saved().is_empty());
    }

    #[test]
    fn test_guard_restores_files() {
        // Any file behaves like a sysctl for the guard's logic.
        let dir = std::env::temp_dir().join(format!("hav-sysctl-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a");
        let b = dir.join("b");
        fs::write(&a, "0\n").unwrap();
        fs::write(&b, "2\n").unwrap();
        {
            let mut g = SysctlGuard::new();
            g.set(&a, "1").unwrap();
            g.set(&a, "3").unwrap();
            g.set(&b, "1").unwrap();
            assert_eq!(read(&a).unwrap(), "3");
            assert_eq!(g.saved().len(), 2);
            // A vanished file is not an error on restore.
            fs::remove_file(&b).unwrap();
        }
        assert_eq!(read(&a).unwrap(), "0");
        assert!(!b.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
