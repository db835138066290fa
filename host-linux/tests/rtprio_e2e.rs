//! `max_auto_priority` in the namespace lab, hav beside Debian's keepalived: the VRRP process
//! (keepalived's VRRP child; hav's VRRP thread) is stopped for 2.5 s, so its advert timer
//! fires more than `min_auto_priority_delay` (1 s) late. Each time, both go to `SCHED_RR` one
//! step higher (1, then 2), up to `max_auto_priority 2`; without the keyword both stay under
//! the normal policy. With `vrrp_rt_priority 5` both run `SCHED_RR` 5 from the start, raised
//! from there.

use std::time::Duration;

use hav_tests::netns::{skip_unless, Lab, Need};
use hav_tests::peers::{instance_conf, wait_until, Daemon, Node};

fn hav() -> Daemon {
    Daemon::Hav(env!("CARGO_BIN_EXE_hav-linux").into())
}

/// (policy, realtime priority) of a task: fields 41 and 40 of its `stat`.
fn sched(stat: &str) -> Option<(i32, i32)> {
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Field N of stat is f[N - 3].
    Some((f.get(38)?.parse().ok()?, f.get(37)?.parse().ok()?))
}

/// The VRRP process: keepalived's VRRP child, or hav itself.
fn vrrp_pid(node: &Node<'_>) -> u32 {
    let file = match node.daemon {
        Daemon::Keepalived => node.dir.join("v.pid"),
        Daemon::Hav(_) => node.dir.join("hav.pid"),
    };
    std::fs::read_to_string(&file).ok().and_then(|s| s.trim().parse().ok()).unwrap_or_else(|| panic!("no pid in {}", file.display()))
}

/// The highest realtime priority among the process's threads under SCHED_RR (0: none).
fn rt_priority(pid: u32) -> i32 {
    let mut best = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks").flatten() {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        if let Some((2, p)) = sched(&stat) {
            best = best.max(p);
        }
    }
    best
}

/// The priority at start, then after each of `stops` stops of 2.5 s.
fn run(daemon: Daemon, who: &str, global: &str, stops: usize) -> Vec<i32> {
    let lab = Lab::new(1).expect("lab");
    let conf = instance_conf("VI_RT", 72, 255, 2, "1", &["10.0.0.240/24"], "").replace("global_defs {\n", &format!("global_defs {{\n{global}\n"));
    let node = Node::start(&lab.routers[0], daemon, &conf);
    assert!(wait_until(Duration::from_secs(8), || node.holds("10.0.0.240")).is_some(), "{who}: never master\n{}", node.log());
    let pid = vrrp_pid(&node);
    let mut seen = vec![rt_priority(pid)];
    for _ in 0..stops {
        let stop = |sig: &str| std::process::Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill");
        stop("-STOP");
        std::thread::sleep(Duration::from_millis(2_500));
        stop("-CONT");
        std::thread::sleep(Duration::from_millis(800));
        seen.push(rt_priority(pid));
    }
    eprintln!("{who} [{global}]: {seen:?}");
    assert!(node.alive(), "{who} died\n{}", node.log());
    seen
}

#[test]
fn max_auto_priority_raises_the_vrrp_process_as_keepalived_does() {
    if skip_unless("max_auto_priority_raises_the_vrrp_process_as_keepalived_does", &[Need::Root, Need::Keepalived]) {
        return;
    }
    let cases: [(&str, usize, Vec<i32>); 3] = [
        ("  max_auto_priority 2", 3, vec![0, 1, 2, 2]),
        ("", 1, vec![0, 0]),
        // vrrp_rt_priority: realtime from the start; raised from there.
        ("  vrrp_rt_priority 5\n  max_auto_priority 6", 2, vec![5, 6, 6]),
    ];
    for (global, stops, expected) in cases {
        let (k, h) = std::thread::scope(|s| {
            let k = s.spawn(|| run(Daemon::Keepalived, "keepalived", global, stops));
            let h = s.spawn(|| run(hav(), "hav", global, stops));
            (k.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
        });
        assert_eq!(k, expected, "keepalived [{global}]");
        assert_eq!(h, expected, "hav [{global}]");
    }
}
