//! The keyword table: every keyword keepalived 2.3 registers, block by block,
//! and what hav does with it.
//!
//! The section parsers consult this table for everything their match arms do
//! not take: a keyword listed as [`Support::Parsed`] or [`Support::Ignored`]
//! warns once, at its location, with the table's text; a keyword that is not
//! listed is an error with a "did you mean". `docs/keywords.md` is generated
//! from [`BLOCKS`] by [`markdown`]: `HAV_WRITE_DOCS=1 cargo test -p hav-linux
//! --test config_keywords` writes it, and the same test fails when the
//! committed file differs from the table.

/// What hav does with a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// hav acts on it as keepalived does.
    Acted,
    /// hav reads it into the typed configuration, but the daemon does not act
    /// on it yet; the text says what hav does meanwhile.
    Parsed(&'static str),
    /// Accepted and not acted on; the text says what hav does instead.
    Ignored(&'static str),
    /// Not a keepalived 2.3 keyword: a hav extension or an older keepalived
    /// spelling hav keeps accepting; the text says which.
    Extension(&'static str),
}

/// One keyword of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyword {
    /// The keyword as written in the configuration.
    pub name: &'static str,
    /// What hav does with it.
    pub support: Support,
}

/// A block of keywords: `(top)` for the top level, else the path of block
/// keywords from the top, joined by `/` (`virtual_server/real_server/HTTP_GET`).
#[derive(Debug, Clone, Copy)]
pub struct Block {
    /// The block's path.
    pub path: &'static str,
    /// Its keywords, in groups (checker blocks share their common keywords).
    pub groups: &'static [&'static [Keyword]],
}

impl Block {
    /// Every keyword of the block, in table order.
    pub fn keywords(&self) -> impl Iterator<Item = &'static Keyword> {
        self.groups.iter().flat_map(|g| g.iter())
    }

    /// The keyword called `name`.
    pub fn get(&self, name: &str) -> Option<&'static Keyword> {
        self.keywords().find(|k| k.name == name)
    }
}

/// The block at `path`, when hav's table has it.
pub fn block(path: &str) -> Option<&'static Block> {
    BLOCKS.iter().find(|b| b.path == path)
}

/// The last element of a block path, for messages (`HTTP_GET`, `url`).
pub fn block_name(path: &str) -> &str {
    if path == TOP {
        return "top level";
    }
    path.rsplit('/').next().unwrap_or(path)
}

/// The path of the top level.
pub const TOP: &str = "(top)";

const fn a(name: &'static str) -> Keyword {
    Keyword { name, support: Support::Acted }
}
const fn p(name: &'static str, text: &'static str) -> Keyword {
    Keyword { name, support: Support::Parsed(text) }
}
const fn i(name: &'static str, text: &'static str) -> Keyword {
    Keyword { name, support: Support::Ignored(text) }
}
const fn x(name: &'static str, text: &'static str) -> Keyword {
    Keyword { name, support: Support::Extension(text) }
}

const ONE_PROCESS: &str = "hav is one process; keepalived's per-process settings do not apply; ignored";
const SCHED: &str = "of keepalived's scheduling settings hav applies only the VRRP thread's realtime ones (vrrp_rt_priority, max_auto_priority, min_auto_priority_delay, vrrp_rlimit_rttime), not nice values, memory locking, CPU affinity or the checkers'; ignored";
const SNMP: &str = "hav has no SNMP agent (state and counters are on the control socket and the metrics listener); ignored";
const DBUS: &str = "hav has no D-Bus interface (use the control socket); ignored";
const NETLINK: &str = "hav sizes its netlink socket buffers itself; ignored";
const FIREWALL: &str = "hav installs no iptables/nftables rules; ignored";
const RELOAD: &str = "hav checks a new configuration before it applies a reload and keeps the running one when it fails; ignored";
const BFD: &str = "hav has no BFD; ignored";
const PROC_RCV_BUFS: &str = "hav sizes the process connector's receive buffer itself and rescans /proc when it overflows; ignored";
const MAIL_DEFAULTS: &str = "hav sends mail for the instances, groups and real servers that say smtp_alert; ignored";
const RX_BUFS: &str = "hav sizes its VRRP receive buffer itself; ignored";
const NAMESPACE: &str = "hav runs in the network namespace it is started in (see -s/--namespace); ignored";
const DUMP_FILES: &str = "hav writes no dump files (the control socket's 'snapshot' and 'dump' answer instead); ignored";
const OWNER_ADVERTS: &str = "an address owner (priority 255) in hav handles received adverts as RFC 5798 and keepalived 2.2 do, never dropping them: it answers a lower priority with an advert of its own (unless lower_prio_no_advert or vrrp_strict), and gives way to another priority-255 router with a higher address; ignored";
const PRIO_CHANGES: &str = "hav reports state changes only, not priority changes; ignored";
const LINKBEAT: &str = "hav follows links with netlink events only; ignored";

const TOP_LEVEL: &[Keyword] = &[
    a("global_defs"),
    a("vrrp_instance"),
    a("vrrp_script"),
    a("vrrp_sync_group"),
    a("track_file"),
    a("vrrp_track_file"),
    a("virtual_server"),
    a("virtual_server_group"),
    i("linkbeat_use_polling", LINKBEAT),
    i("net_namespace", NAMESPACE),
    i("net_namespace_ipvs", NAMESPACE),
    i("namespace_with_ipsets", NAMESPACE),
    i("use_pid_dir", "hav names its pid file with --pid; ignored"),
    i("instance", "hav names its files with --pid and --control; ignored"),
    i("child_wait_time", ONE_PROCESS),
    i("track_group", "hav does not watch static addresses, routes and rules, so nothing uses a track group; the block is ignored"),
    a("static_ipaddress"),
    a("static_routes"),
    a("static_rules"),
    i("garp_group", "hav sends gratuitous ARP/NA per instance (vrrp_garp_interval, garp_master_*); the block is ignored"),
    i("linkbeat_interfaces", LINKBEAT),
    a("vrrp_track_process"),
    i("interface_up_down_delays", "hav acts on link changes at once; the block is ignored"),
    i("SSL", "hav's SSL_GET checker verifies no certificates and presents none; the block is ignored"),
    i("bfd_instance", BFD),
];

const GLOBAL: &[Keyword] = &[
    i("process_names", ONE_PROCESS),
    i("process_name", ONE_PROCESS),
    i("vrrp_process_name", ONE_PROCESS),
    i("checker_process_name", ONE_PROCESS),
    i("lvs_process_name", ONE_PROCESS),
    i("bfd_process_name", ONE_PROCESS),
    i("use_symlink_paths", "hav runs scripts by the path given; ignored"),
    a("router_id"),
    a("notification_email_from"),
    a("smtp_server"),
    i("smtp_helo_name", "hav greets the SMTP server with the router_id; ignored"),
    a("smtp_connect_timeout"),
    a("notification_email"),
    i("smtp_alert", MAIL_DEFAULTS),
    a("startup_script"),
    a("startup_script_timeout"),
    a("shutdown_script"),
    a("shutdown_script_timeout"),
    a("max_auto_priority"),
    a("min_auto_priority_delay"),
    i("smtp_alert_vrrp", MAIL_DEFAULTS),
    i("smtp_alert_checker", MAIL_DEFAULTS),
    i("checker_log_all_failures", "hav logs a checker's state changes; ignored"),
    a("dynamic_interfaces"),
    i("no_email_faults", "hav sends no mail for FAULT states it does not have a smtp_alert for; ignored"),
    a("default_interface"),
    i("disable_local_igmp", "hav leaves IGMP reports to the kernel; ignored"),
    i("v3_checksum_as_v2", "hav computes VRRPv3 checksums as RFC 5798 says (with the pseudo-header); ignored"),
    i("lvs_timeouts", "hav leaves the kernel's IPVS timeouts as they are; ignored"),
    i("lvs_flush", "hav does not flush the IPVS table at start-up; it manages only the services it configures; ignored"),
    i("lvs_flush_on_stop", "hav removes the IPVS services it configured when it stops, not the whole table; ignored"),
    i("lvs_flush_onstop", "hav removes the IPVS services it configured when it stops, not the whole table; ignored"),
    a("lvs_sync_daemon"),
    a("vrrp_mcast_group4"),
    a("vrrp_mcast_group6"),
    a("vrrp_garp_master_delay"),
    a("vrrp_garp_master_repeat"),
    a("vrrp_garp_master_refresh"),
    a("vrrp_garp_master_refresh_repeat"),
    a("vrrp_garp_lower_prio_delay"),
    a("vrrp_garp_lower_prio_repeat"),
    a("vrrp_down_timer_adverts"),
    a("vrrp_garp_interval"),
    a("vrrp_gna_interval"),
    a("vrrp_min_garp"),
    a("vrrp_garp_extra_if"),
    a("vrrp_vmac_garp_intvl"),
    a("vrrp_lower_prio_no_advert"),
    a("vrrp_higher_prio_send_advert"),
    a("vrrp_version"),
    a("vrrp_iptables"),
    i("vrrp_ipsets", "hav uses nftables sets (table 'keepalived') for accept mode off, not ipsets; ignored"),
    a("nftables"),
    a("nftables_priority"),
    a("nftables_ifindex"),
    a("vrrp_check_unicast_src"),
    a("vrrp_skip_check_adv_addr"),
    a("vrrp_strict"),
    i("vrrp_priority", SCHED),
    i("vrrp_no_swap", SCHED),
    a("vrrp_rt_priority"),
    i("vrrp_cpu_affinity", SCHED),
    a("vrrp_rlimit_rttime"),
    a("vrrp_rlimit_rtime"),
    i("nftables_ipvs", FIREWALL),
    i("nftables_ipvs_priority", FIREWALL),
    i("nftables_ipvs_start_fwmark", FIREWALL),
    a("nftables_counters"),
    a("notify_fifo"),
    a("notify_fifo_script"),
    a("vrrp_notify_fifo"),
    a("vrrp_notify_fifo_script"),
    i("vrrp_notify_priority_changes", PRIO_CHANGES),
    i("fifo_write_vrrp_states_on_reload", "hav writes states to the FIFO when they change; ignored"),
    a("lvs_notify_fifo"),
    a("lvs_notify_fifo_script"),
    i("checker_priority", SCHED),
    i("checker_no_swap", SCHED),
    i("checker_rt_priority", SCHED),
    i("checker_cpu_affinity", SCHED),
    i("checker_rlimit_rttime", SCHED),
    i("checker_rlimit_rtime", SCHED),
    i("bfd_priority", BFD),
    i("bfd_no_swap", BFD),
    i("bfd_rt_priority", BFD),
    i("bfd_cpu_affinity", BFD),
    i("bfd_rlimit_rttime", BFD),
    i("bfd_rlimit_rtime", BFD),
    i("snmp_socket", SNMP),
    i("enable_traps", SNMP),
    i("enable_snmp_vrrp", SNMP),
    i("enable_snmp_keepalived", SNMP),
    i("enable_snmp_rfc", SNMP),
    i("enable_snmp_rfcv2", SNMP),
    i("enable_snmp_rfcv3", SNMP),
    i("enable_snmp_checker", SNMP),
    i("snmp_vs_stats_update_interval", SNMP),
    i("snmp_rs_stats_update_interval", SNMP),
    i("enable_dbus", DBUS),
    i("dbus_service_name", DBUS),
    i("dbus_no_interface_name", DBUS),
    a("script_user"),
    a("enable_script_security"),
    i("vrrp_netlink_cmd_rcv_bufs", NETLINK),
    i("vrrp_netlink_cmd_rcv_bufs_force", NETLINK),
    i("vrrp_netlink_monitor_rcv_bufs", NETLINK),
    i("vrrp_netlink_monitor_rcv_bufs_force", NETLINK),
    i("process_monitor_rcv_bufs", PROC_RCV_BUFS),
    i("process_monitor_rcv_bufs_force", PROC_RCV_BUFS),
    i("lvs_netlink_cmd_rcv_bufs", NETLINK),
    i("lvs_netlink_cmd_rcv_bufs_force", NETLINK),
    i("lvs_netlink_monitor_rcv_bufs", NETLINK),
    i("lvs_netlink_monitor_rcv_bufs_force", NETLINK),
    i("rs_init_notifies", "hav runs a real server's notify scripts on changes only, not for the initial state; ignored"),
    i("no_checker_emails", MAIL_DEFAULTS),
    i("vrrp_rx_bufs_policy", RX_BUFS),
    i("vrrp_rx_bufs_multiplier", RX_BUFS),
    a("vrrp_startup_delay"),
    i("log_unknown_vrids", "hav counts adverts for VRIDs it does not run (metrics) instead of logging each; ignored"),
    i("vrrp_owner_ignore_adverts", OWNER_ADVERTS),
    i("vmac_prefix", "hav names VMAC interfaces vrrp.VRID unless use_vmac names one; ignored"),
    i("vmac_addr_prefix", "hav names VMAC interfaces vrrp.VRID unless use_vmac names one; ignored"),
    i("umask", "hav creates its files with mode 0644 (pid) and 0600 (control socket) whatever the umask; ignored"),
    i("random_seed", "hav seeds its random numbers from the kernel; ignored"),
    i("reload_check_config", RELOAD),
    i("reload_time_file", RELOAD),
    i("reload_repeat", RELOAD),
    i("reload_file", RELOAD),
    a("include_check"),
    i("config_save_dir", RELOAD),
    i("tmp_config_directory", RELOAD),
    i("data_use_instance", "hav names its files with --pid and --control; ignored"),
    i("json_version", DUMP_FILES),
    i("iproute_usr_dir", "hav reads no iproute2 name tables (give scopes and tables by number or standard name); ignored"),
    i("iproute_etc_dir", "hav reads no iproute2 name tables (give scopes and tables by number or standard name); ignored"),
    i("state_dump_file", DUMP_FILES),
    i("stats_dump_file", DUMP_FILES),
    i("json_dump_file", DUMP_FILES),
    i("set_supplementary_groups", "hav runs scripts with the script user's own groups; ignored (keepalived 2.4)"),
    a("vrrp_delay_after_boot"),
    x("lvs_id", "keepalived 1.x name of router_id"),
];

const TRACK_BFD_TEXT: &str = BFD;

const SYNC_GROUP: &[Keyword] = &[
    a("group"),
    a("track_interface"),
    a("track_script"),
    a("track_file"),
    a("track_process"),
    i("track_bfd", TRACK_BFD_TEXT),
    a("notify_backup"),
    a("notify_master"),
    a("notify_fault"),
    a("notify_stop"),
    a("notify"),
    a("smtp_alert"),
    i("global_tracking", "hav applies a group's tracking to every member already; ignored"),
    a("sync_group_tracking_weight"),
    i("notify_priority_changes", PRIO_CHANGES),
    x("nopreempt", "keepalived 1.x; hav keeps every member from preempting"),
];

const GARP_GROUP: &[Keyword] = &[
    i("garp_interval", "in a garp_group, which hav ignores"),
    i("gna_interval", "in a garp_group, which hav ignores"),
    i("interface", "in a garp_group, which hav ignores"),
    i("interfaces", "in a garp_group, which hav ignores"),
];

const TRACK_GROUP: &[Keyword] = &[i("group", "in a track_group, which hav ignores")];

const INSTANCE: &[Keyword] = &[
    a("use_vmac"),
    p("use_vmac_addr", "the daemon gives the VMAC interface the VRRP virtual MAC only"),
    a("vmac_xmit_base"),
    i("use_ipvlan", "hav does not create ipvlan interfaces; the instance runs on its interface"),
    a("unicast_peer"),
    p("unicast_fault_no_peer", "the daemon runs the instance with multicast when it has no peers"),
    a("check_unicast_src"),
    i("old_unicast_checksum", "hav computes unicast VRRPv3 checksums as RFC 5798 says; ignored"),
    i("native_ipv6", "hav runs IPv6 instances with IPv6 adverts already; ignored"),
    a("state"),
    a("interface"),
    p("vrf", "the daemon binds nothing to the VRF and uses the main routing table"),
    a("dont_track_primary"),
    a("track_interface"),
    a("track_script"),
    a("track_file"),
    a("track_process"),
    i("track_bfd", TRACK_BFD_TEXT),
    a("mcast_src_ip"),
    a("unicast_src_ip"),
    p("mcast_dst_ip", "the daemon sends to and listens on vrrp_mcast_group4/6"),
    p("track_src_ip", "the daemon does not fault the instance when its source address goes away"),
    a("virtual_router_id"),
    a("unicast_ttl"),
    a("version"),
    a("priority"),
    a("advert_int"),
    a("virtual_ipaddress"),
    a("virtual_ipaddress_excluded"),
    a("no_virtual_ipaddress"),
    a("promote_secondaries"),
    i("linkbeat_use_polling", LINKBEAT),
    i("v3_checksum_as_v2", "hav computes VRRPv3 checksums as RFC 5798 says (with the pseudo-header); ignored"),
    a("virtual_routes"),
    a("virtual_rules"),
    a("accept"),
    a("no_accept"),
    i("skip_check_adv_addr", "hav checks the addresses of every advert unless vrrp_skip_check_adv_addr is set globally; ignored"),
    a("strict_mode"),
    a("preempt"),
    a("nopreempt"),
    a("preempt_delay"),
    p("debug", "the daemon logs at the level --log-level gives"),
    a("notify_backup"),
    a("notify_master"),
    a("notify_fault"),
    a("notify_stop"),
    a("notify_deleted"),
    a("notify"),
    a("notify_master_rx_lower_pri"),
    a("smtp_alert"),
    i("notify_priority_changes", PRIO_CHANGES),
    p("lvs_sync_daemon_interface", "the daemon uses the global lvs_sync_daemon only"),
    a("garp_master_delay"),
    a("garp_master_refresh"),
    a("garp_master_repeat"),
    a("garp_master_refresh_repeat"),
    a("garp_lower_prio_delay"),
    a("garp_lower_prio_repeat"),
    a("down_timer_adverts"),
    p("timer_expired_backup", "the daemon does not change state when the master-down timer expires in BACKUP"),
    i("thread_timer_expired", "hav does not change state when the master-down timer expires in BACKUP; ignored"),
    a("garp_extra_if"),
    a("vmac_garp_intvl"),
    a("lower_prio_no_advert"),
    a("higher_prio_send_advert"),
    i("owner_ignore_adverts", OWNER_ADVERTS),
    i("kernel_rx_buf_size", RX_BUFS),
    a("authentication"),
    i("auth_hmac", "hav has no HMAC authentication; the block is ignored (keepalived 2.4)"),
];

const AUTHENTICATION: &[Keyword] = &[a("auth_type"), a("auth_pass")];

const AUTH_HMAC: &[Keyword] = &[
    i("key", "in auth_hmac, which hav ignores"),
    i("active_key", "in auth_hmac, which hav ignores"),
    i("time_window", "in auth_hmac, which hav ignores"),
    i("anti_replay", "in auth_hmac, which hav ignores"),
    i("mode", "in auth_hmac, which hav ignores"),
];

const SCRIPT: &[Keyword] = &[
    a("script"),
    a("interval"),
    a("timeout"),
    a("weight"),
    a("rise"),
    a("fall"),
    a("user"),
    a("init_fail"),
    x("policy", "hav: a WASM priority policy instead of a script"),
    x("args", "hav: arguments handed to the policy"),
    x("targets", "hav: the endpoints the policy may reach"),
];

const TRACK_PROCESS_BLOCK: &[Keyword] = &[
    a("process"),
    a("param_match"),
    a("weight"),
    a("quorum"),
    a("quorum_max"),
    a("delay"),
    a("terminate_delay"),
    a("fork_delay"),
    a("full_command"),
];

const SSL_BLOCK: &[Keyword] = &[
    i("password", "in the SSL block, which hav ignores"),
    i("ca", "in the SSL block, which hav ignores"),
    i("certificate", "in the SSL block, which hav ignores"),
    i("key", "in the SSL block, which hav ignores"),
];

const TRACK_FILE: &[Keyword] = &[a("file"), a("weight"), a("init_file")];

const BFD_INSTANCE: &[Keyword] = &[
    i("source_ip", "in a bfd_instance, which hav ignores"),
    i("neighbor_ip", "in a bfd_instance, which hav ignores"),
    i("neighbour_ip", "in a bfd_instance, which hav ignores"),
    i("min_rx", "in a bfd_instance, which hav ignores"),
    i("min_tx", "in a bfd_instance, which hav ignores"),
    i("idle_tx", "in a bfd_instance, which hav ignores"),
    i("multiplier", "in a bfd_instance, which hav ignores"),
    i("passive", "in a bfd_instance, which hav ignores"),
    i("ttl", "in a bfd_instance, which hav ignores"),
    i("hoplimit", "in a bfd_instance, which hav ignores"),
    i("max_hops", "in a bfd_instance, which hav ignores"),
    i("multihop", "in a bfd_instance, which hav ignores"),
    i("weight", "in a bfd_instance, which hav ignores"),
    i("vrrp", "in a bfd_instance, which hav ignores"),
    i("checker", "in a bfd_instance, which hav ignores"),
];

const VIRTUAL_SERVER: &[Keyword] = &[
    a("ip_family"),
    a("retry"),
    a("delay_before_retry"),
    a("warmup"),
    a("connect_timeout"),
    a("delay_loop"),
    a("inhibit_on_failure"),
    a("lb_algo"),
    a("lvs_sched"),
    i("hashed", "hav does not set IPVS's hashed flag (keepalived sets it for the sh scheduler only); ignored"),
    a("ops"),
    a("flag-1"),
    a("flag-2"),
    a("flag-3"),
    a("sh-port"),
    a("sh-fallback"),
    a("mh-port"),
    a("mh-fallback"),
    a("lb_kind"),
    a("lvs_method"),
    a("persistence_engine"),
    a("persistence_timeout"),
    a("persistence_granularity"),
    a("protocol"),
    a("ha_suspend"),
    i("smtp_alert", "hav sends no mail for virtual servers; ignored"),
    a("virtualhost"),
    i("snmp_name", SNMP),
    a("alpha"),
    a("omega"),
    a("quorum_up"),
    a("quorum_down"),
    a("quorum"),
    a("hysteresis"),
    p("weight", "the daemon gives the IPVS service no weight (keepalived passes it to IPVS for a virtual server group's weight)"),
    a("sorry_server"),
    a("sorry_server_inhibit"),
    a("sorry_server_lvs_method"),
    a("real_server"),
    x("no_alpha", "hav: alpha off"),
    x("no_omega", "hav: omega off"),
    x("announce", "hav: hold the VIP as a route for the host's routing daemon (BGP, ECMP) while the virtual server has quorum; a block of its own"),
];

const ANNOUNCE: &[Keyword] = &[
    x("table", "hav: the route table of the announced route (default 254, main)"),
    x("proto", "hav: the route protocol of hav's routes, 3-255 (default 250)"),
    x("metric", "hav: the announced route's metric (default 0)"),
    x("drain_time", "hav: seconds from the withdrawal to the IPVS removal at a clean stop (default 5)"),
    x("dev", "hav: the link the VIP is delivered on (default lo)"),
];

const REAL_SERVER: &[Keyword] = &[
    a("weight"),
    a("lvs_method"),
    a("uthreshold"),
    a("lthreshold"),
    a("inhibit_on_failure"),
    a("notify_up"),
    a("notify_down"),
    a("alpha"),
    a("retry"),
    a("delay_before_retry"),
    a("warmup"),
    a("connect_timeout"),
    a("delay_loop"),
    i("smtp_alert", "hav sends no mail for real servers; ignored"),
    i("virtualhost", "hav takes the virtual host from the checker or the virtual server; ignored"),
    i("snmp_name", SNMP),
    a("MISC_CHECK"),
    a("SMTP_CHECK"),
    a("TCP_CHECK"),
    a("PING_CHECK"),
    a("UDP_CHECK"),
    a("HTTP_GET"),
    a("SSL_GET"),
    a("DNS_CHECK"),
    a("FILE_CHECK"),
    i("BFD_CHECK", BFD),
    x("lb_kind", "hav: lvs_method's other name, as in a virtual server"),
    x("no_alpha", "hav: alpha off"),
    x("ICMP_CHECK", "hav: PING_CHECK's other name"),
    x("WASM_CHECK", "hav: a WASM policy as checker"),
];

const LOG_ALL_FAILURES: &str = "hav logs a checker's state changes; ignored";

const CHECK_CONNECTION: &[Keyword] = &[
    a("connect_ip"),
    a("connect_port"),
    a("bindto"),
    a("bind_port"),
    a("bind_if"),
    a("connect_timeout"),
    a("fwmark"),
];

const CHECK_COMMON: &[Keyword] = &[
    a("retry"),
    a("delay_before_retry"),
    a("warmup"),
    a("delay_loop"),
    a("alpha"),
    i("log_all_failures", LOG_ALL_FAILURES),
    x("no_alpha", "hav: alpha off"),
];

const HTTP: &[Keyword] = &[
    a("nb_get_retry"),
    a("virtualhost"),
    a("http_protocol"),
    a("enable_sni"),
    i("fast_recovery", "hav counts retries as usual after a failure; ignored"),
    a("url"),
    a("sni_name"),
    x("sni_server_name", "hav: the SNI server name"),
];

const TLS_COMPLIANT: &[Keyword] = &[i("tls_compliant", "hav's TLS client closes connections as TLS requires already; ignored")];

const URL: &[Keyword] = &[
    a("path"),
    a("digest"),
    a("status_code"),
    a("virtualhost"),
    a("regex"),
    a("regex_no_match"),
    i("regex_options", "hav matches regex with its default options; ignored"),
    i("regex_min_offset", "hav matches regex anywhere in the body; ignored"),
    i("regex_max_offset", "hav matches regex anywhere in the body; ignored"),
    i("regex_stack", "hav's regex engine needs no stack size; ignored"),
];

const TCP_CHECK: &[Keyword] = &[x(
    "half_open",
    "hav extension: probe with a raw SYN instead of a connect; a SYN-ACK is up, and the kernel's reset leaves nothing half-open on the real server (keepalived warns and connects)",
)];
const NB_GET_RETRY: &[Keyword] = &[x("nb_get_retry", "keepalived 1.x name of retry (keepalived 2.3 keeps it in HTTP_GET and SSL_GET only)")];

const SMTP: &[Keyword] = &[a("helo_name"), i("host", "hav checks the real server's address (host blocks are deprecated in keepalived); the block is ignored")];
const SMTP_HOST: &[Keyword] = &[];
const DNS: &[Keyword] = &[a("type"), a("name")];
const UDP: &[Keyword] = &[a("payload"), a("require_reply"), a("min_reply_length"), a("max_reply_length")];
const MISC: &[Keyword] = &[a("misc_path"), a("misc_timeout"), a("misc_dynamic"), a("user")];
const FILE_CHECK: &[Keyword] = &[a("track_file"), a("weight"), x("file", "hav: track_file's other name")];
const BFD_CHECK: &[Keyword] = &[i("name", BFD), i("alpha", BFD)];
const WASM: &[Keyword] = &[
    x("policy", "hav: the WASM policy"),
    x("timeout", "hav: the policy's time limit"),
    x("args", "hav: arguments handed to the policy"),
    x("targets", "hav: the endpoints the policy may reach"),
];

/// Every block hav's parsers know, with its keywords.
pub static BLOCKS: &[Block] = &[
    Block { path: TOP, groups: &[TOP_LEVEL] },
    Block { path: "global_defs", groups: &[GLOBAL] },
    Block { path: "track_group", groups: &[TRACK_GROUP] },
    Block { path: "vrrp_sync_group", groups: &[SYNC_GROUP] },
    Block { path: "garp_group", groups: &[GARP_GROUP] },
    Block { path: "vrrp_instance", groups: &[INSTANCE] },
    Block { path: "vrrp_instance/authentication", groups: &[AUTHENTICATION] },
    Block { path: "vrrp_instance/auth_hmac", groups: &[AUTH_HMAC] },
    Block { path: "vrrp_script", groups: &[SCRIPT] },
    Block { path: "vrrp_track_process", groups: &[TRACK_PROCESS_BLOCK] },
    Block { path: "SSL", groups: &[SSL_BLOCK] },
    Block { path: "track_file", groups: &[TRACK_FILE] },
    Block { path: "vrrp_track_file", groups: &[TRACK_FILE] },
    Block { path: "bfd_instance", groups: &[BFD_INSTANCE] },
    Block { path: "virtual_server", groups: &[VIRTUAL_SERVER] },
    Block { path: "virtual_server/announce", groups: &[ANNOUNCE] },
    Block { path: "virtual_server/real_server", groups: &[REAL_SERVER] },
    Block { path: "virtual_server/real_server/MISC_CHECK", groups: &[CHECK_COMMON, MISC, NB_GET_RETRY] },
    Block { path: "virtual_server/real_server/SMTP_CHECK", groups: &[CHECK_CONNECTION, CHECK_COMMON, SMTP, NB_GET_RETRY] },
    Block { path: "virtual_server/real_server/SMTP_CHECK/host", groups: &[CHECK_CONNECTION, CHECK_COMMON, SMTP_HOST] },
    Block { path: "virtual_server/real_server/TCP_CHECK", groups: &[CHECK_CONNECTION, CHECK_COMMON, TCP_CHECK, NB_GET_RETRY] },
    Block { path: "virtual_server/real_server/PING_CHECK", groups: &[CHECK_CONNECTION, CHECK_COMMON, NB_GET_RETRY] },
    Block { path: "virtual_server/real_server/ICMP_CHECK", groups: &[CHECK_CONNECTION, CHECK_COMMON, NB_GET_RETRY] },
    Block { path: "virtual_server/real_server/UDP_CHECK", groups: &[CHECK_CONNECTION, CHECK_COMMON, UDP, NB_GET_RETRY] },
    Block { path: "virtual_server/real_server/HTTP_GET", groups: &[CHECK_CONNECTION, CHECK_COMMON, HTTP] },
    Block { path: "virtual_server/real_server/HTTP_GET/url", groups: &[URL] },
    Block { path: "virtual_server/real_server/SSL_GET", groups: &[CHECK_CONNECTION, CHECK_COMMON, HTTP, TLS_COMPLIANT] },
    Block { path: "virtual_server/real_server/SSL_GET/url", groups: &[URL, TLS_COMPLIANT] },
    Block { path: "virtual_server/real_server/DNS_CHECK", groups: &[CHECK_CONNECTION, CHECK_COMMON, DNS, NB_GET_RETRY] },
    Block { path: "virtual_server/real_server/FILE_CHECK", groups: &[FILE_CHECK] },
    Block { path: "virtual_server/real_server/BFD_CHECK", groups: &[BFD_CHECK] },
    Block { path: "virtual_server/real_server/WASM_CHECK", groups: &[CHECK_CONNECTION, CHECK_COMMON, WASM] },
];

/// Counts of the table: (acted, parsed, ignored, extensions) over every block.
pub fn counts() -> (usize, usize, usize, usize) {
    let mut c = (0, 0, 0, 0);
    for k in BLOCKS.iter().flat_map(|b| b.keywords()) {
        match k.support {
            Support::Acted => c.0 += 1,
            Support::Parsed(_) => c.1 += 1,
            Support::Ignored(_) => c.2 += 1,
            Support::Extension(_) => c.3 += 1,
        }
    }
    c
}

/// `docs/keywords.md`: the table as a document.
pub fn markdown() -> String {
    use std::fmt::Write as _;
    let (acted, parsed, ignored, ext) = counts();
    let mut s = String::new();
    s.push_str("# keepalived keywords in hav\n\n");
    s.push_str("Generated from hav's keyword table (`host-linux/src/config/keywords.rs`) by\n");
    s.push_str("`HAV_WRITE_DOCS=1 cargo test -p hav-linux --test config_keywords`; that test fails\n");
    s.push_str("when this file and the table disagree.\n\n");
    s.push_str("Every keyword keepalived 2.3 registers is listed under its block. **acted**: hav does\n");
    s.push_str("what keepalived does. **parsed**: hav reads the value, but the daemon does not act on it\n");
    s.push_str("yet (one warning at the keyword says so). **ignored**: accepted with one warning that\n");
    s.push_str("says what hav does instead. **hav**: not a keepalived 2.3 keyword (a hav extension or\n");
    s.push_str("an older spelling). A keyword that is not listed is an error with a suggestion.\n\n");
    let _ = writeln!(s, "Totals over all blocks: {acted} acted, {parsed} parsed, {ignored} ignored, {ext} hav.\n");
    for b in BLOCKS {
        let _ = writeln!(s, "## `{}`\n", b.path);
        s.push_str("| keyword | hav | what hav does |\n| --- | --- | --- |\n");
        for k in b.keywords() {
            let (tag, text) = match k.support {
                Support::Acted => ("acted", ""),
                Support::Parsed(t) => ("parsed", t),
                Support::Ignored(t) => ("ignored", t),
                Support::Extension(t) => ("hav", t),
            };
            let _ = writeln!(s, "| `{}` | {tag} | {} |", k.name, text.replace('|', "\\|"));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_no_duplicates() {
        for b in BLOCKS {
            let mut seen = std::collections::HashSet::new();
            for k in b.keywords() {
                assert!(seen.insert(k.name), "{} listed twice in {}", k.name, b.path);
            }
        }
    }
}
