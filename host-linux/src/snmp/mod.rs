//! An AgentX subagent (RFC 2741) serving VRRPv3-MIB (RFC 6527) read-only through the host's
//! SNMP agent, as keepalived's `enable_snmp_vrrp` (`-x`) does with net-snmp's snmpd.

pub mod agentx;
pub mod mib;
