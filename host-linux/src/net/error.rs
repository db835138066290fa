//! The one error type of the `net` boundary.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while talking to the kernel's network stack.
///
/// Every variant names what it was working on (interface, address, path), so
/// a log line is enough to find the culprit. Malformed packets are not errors:
/// the sockets log and drop them.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// No interface has this name (in the current network namespace).
    #[error("interface {name:?} not found")]
    NoSuchInterface {
        /// The name that was looked up.
        name: String,
    },
    /// No interface has this index (in the current network namespace).
    #[error("interface index {index} not found")]
    NoSuchIndex {
        /// The index that was looked up.
        index: u32,
    },
    /// The kernel refused a netlink request (the errno of its NLMSG_ERROR).
    #[error("netlink {op} on {target}: {source}")]
    Kernel {
        /// The request, e.g. `"RTM_NEWADDR"`.
        op: &'static str,
        /// What it was about, e.g. `"10.0.0.1/24 on ifindex 3"`.
        target: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// The netlink conversation itself failed: socket, (de)serialisation,
    /// unexpected message.
    #[error("netlink {op}: {detail}")]
    Netlink {
        /// The request or step.
        op: &'static str,
        /// What neli or the kernel reported.
        detail: String,
    },
    /// A socket system call failed.
    #[error("{op} on interface {ifname}: {source}")]
    Socket {
        /// The call, e.g. `"IP_ADD_MEMBERSHIP 224.0.0.18"`.
        op: String,
        /// The interface the socket serves.
        ifname: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// A link exists under the wanted name but is not what was asked for.
    #[error("link {name:?} already exists and differs: {detail}")]
    LinkConflict {
        /// The link name.
        name: String,
        /// How it differs.
        detail: String,
    },
    /// Reading or writing a sysctl failed.
    #[error("sysctl {}: {source}", path.display())]
    Sysctl {
        /// The file under /proc/sys.
        path: PathBuf,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// An argument the kernel would reject anyway (bad prefix length,
    /// interface name too long, address family mismatch).
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// The argument.
        what: &'static str,
        /// Why.
        detail: String,
    },
}

impl NetError {
    /// The errno behind this error, when the kernel gave one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            NetError::Kernel { source, .. }
            | NetError::Socket { source, .. }
            | NetError::Sysctl { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn socket(op: impl Into<String>, ifname: &str, source: io::Error) -> Self {
        NetError::Socket {
            op: op.into(),
            ifname: ifname.to_owned(),
            source,
        }
    }
}

/// The result type of the `net` module.
pub type Result<T, E = NetError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_display_names_the_target() {
        let e = NetError::NoSuchInterface {
            name: "eth9".into(),
        };
        assert_eq!(e.to_string(), "interface \"eth9\" not found");
        let e = NetError::Kernel {
            op: "RTM_NEWADDR",
            target: "10.0.0.1/24 on ifindex 3".into(),
            source: io::Error::from_raw_os_error(libc::EPERM),
        };
        assert!(e.to_string().contains("10.0.0.1/24 on ifindex 3"));
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        let e = NetError::Sysctl {
            path: "/proc/sys/net/ipv4/conf/x/arp_ignore".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert!(e
            .to_string()
            .contains("/proc/sys/net/ipv4/conf/x/arp_ignore"));
    }
}
