//! Realtime scheduling of the VRRP thread, as keepalived schedules its VRRP process:
//!
//! - `vrrp_rt_priority N`: `SCHED_RR` at N from the start;
//! - `max_auto_priority [N]`: when a timer fires more than `min_auto_priority_delay` (1 s)
//!   late, the thread is too busy or starved: it goes to `SCHED_RR` at the lowest priority (1),
//!   and one higher at each further late timer, up to N (no value: 99). `0`, the default, and
//!   `-1` never raise it;
//! - whenever it runs realtime, `RLIMIT_RTTIME` is `vrrp_rlimit_rttime` microseconds (10000), half
//!   of it soft: a realtime thread that runs that long without blocking gets SIGXCPU (logged),
//!   then SIGKILL.
//!
//! hav runs its VRRP loop on a thread of its own, so the policy applies to that thread only
//! (keepalived's VRRP process is single-threaded); the checkers, on their own runtime, are not
//! raised (keepalived's checker process is raised by the same setting). Scripts start under
//! the normal policy (`SCHED_RESET_ON_FORK`), as keepalived's.

use std::time::Duration;

use crate::config::GlobalDefs;

/// Changes the thread's scheduling: `set(priority, rttime_micros)`.
pub trait Scheduler {
    /// Puts the thread under `SCHED_RR` at `priority`; `rttime`: set `RLIMIT_RTTIME` too.
    fn realtime(&mut self, priority: i32, rttime: Option<u64>) -> Result<(), String>;
}

/// The real one: [`crate::resource`].
#[derive(Debug, Default)]
pub struct System;

impl Scheduler for System {
    fn realtime(&mut self, priority: i32, rttime: Option<u64>) -> Result<(), String> {
        crate::resource::set_thread_realtime(priority).map_err(|e| format!("SCHED_RR priority {priority}: {e}"))?;
        if let Some(us) = rttime {
            crate::resource::set_rttime_limit(us).map_err(|e| format!("RLIMIT_RTTIME {us} us: {e}"))?;
        }
        Ok(())
    }
}

/// The VRRP thread's realtime state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtPriority {
    /// Highest automatic priority; 0 never raises.
    max: i32,
    min_delay: Duration,
    rttime: u64,
    /// Current realtime priority; 0 while under the normal policy.
    current: i32,
    rttime_set: bool,
}

impl RtPriority {
    /// The settings of `g`.
    pub fn new(g: &GlobalDefs) -> RtPriority {
        RtPriority {
            max: g.max_auto_priority.unwrap_or(0).max(0),
            min_delay: g.min_auto_priority_delay,
            rttime: g.vrrp_rlimit_rttime,
            current: 0,
            rttime_set: false,
        }
    }

    /// A reload's settings: the cap, the delay and the limit change; the priority reached
    /// stays (keepalived's reload keeps its process's scheduling too).
    pub fn reconfigure(&mut self, g: &GlobalDefs) {
        let fresh = RtPriority::new(g);
        self.max = fresh.max;
        self.min_delay = fresh.min_delay;
        self.rttime = fresh.rttime;
    }

    /// The realtime priority now (0: normal policy).
    pub fn current(&self) -> i32 {
        self.current
    }

    /// At start: `vrrp_rt_priority`, when set.
    pub fn start(&mut self, rt_priority: Option<i32>, s: &mut impl Scheduler) {
        if let Some(p) = rt_priority {
            self.apply(p, s);
        }
    }

    /// A timer fired `late` after its time: raises the priority one step when that is more
    /// than `min_auto_priority_delay` and the cap allows.
    pub fn late(&mut self, late: Duration, s: &mut impl Scheduler) {
        if late <= self.min_delay || self.max == 0 {
            return;
        }
        tracing::warn!(late_ms = late.as_millis() as u64, "a VRRP timer fired late: the thread is not scheduled soon enough");
        let next = if self.current == 0 { 1 } else { self.current + 1 };
        if next > self.max {
            return;
        }
        self.apply(next, s);
    }

    fn apply(&mut self, priority: i32, s: &mut impl Scheduler) {
        let rttime = (!self.rttime_set).then_some(self.rttime);
        match s.realtime(priority, rttime) {
            Ok(()) => {
                self.current = priority;
                self.rttime_set = true;
                tracing::info!(priority, rlimit_rttime_us = self.rttime, "VRRP thread: realtime priority set (SCHED_RR)");
            }
            Err(e) => tracing::warn!("VRRP thread: cannot raise the priority: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Record(Vec<(i32, Option<u64>)>, bool);

    impl Scheduler for Record {
        fn realtime(&mut self, priority: i32, rttime: Option<u64>) -> Result<(), String> {
            if self.1 {
                return Err("EPERM".into());
            }
            self.0.push((priority, rttime));
            Ok(())
        }
    }

    fn global(text: &str) -> GlobalDefs {
        crate::config::load_str(std::path::Path::new("g.conf"), &format!("global_defs {{\n{text}\n}}\n")).expect("config").config.global
    }

    const LATE: Duration = Duration::from_millis(1_500);

    #[test]
    fn test_raised_one_step_per_late_timer_up_to_the_cap() {
        let mut r = RtPriority::new(&global(" max_auto_priority 3"));
        let mut s = Record::default();
        r.late(Duration::from_millis(900), &mut s);
        assert!(s.0.is_empty(), "under min_auto_priority_delay (1 s)");
        for _ in 0..5 {
            r.late(LATE, &mut s);
        }
        // SCHED_RR 1, then one up each time, up to 3; RLIMIT_RTTIME once (10 ms by default).
        assert_eq!(s.0, [(1, Some(10_000)), (2, None), (3, None)]);
        assert_eq!(r.current(), 3);
    }

    #[test]
    fn test_off_by_default_and_with_minus_one() {
        for text in ["", " max_auto_priority 0", " max_auto_priority -1"] {
            let mut r = RtPriority::new(&global(text));
            let mut s = Record::default();
            r.late(Duration::from_secs(5), &mut s);
            assert!(s.0.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn test_no_value_is_the_highest_and_settings_are_read() {
        let g = global(" max_auto_priority\n min_auto_priority_delay 200000\n vrrp_rlimit_rttime 50000\n vrrp_rt_priority 5");
        assert_eq!(g.max_auto_priority, Some(99));
        let mut r = RtPriority::new(&g);
        let mut s = Record::default();
        r.start(g.vrrp_rt_priority, &mut s);
        r.late(Duration::from_millis(300), &mut s);
        assert_eq!(s.0, [(5, Some(50_000)), (6, None)], "from vrrp_rt_priority on, 0.2 s late is late");
    }

    #[test]
    fn test_a_refusal_keeps_the_normal_policy() {
        let mut r = RtPriority::new(&global(" max_auto_priority 2"));
        let mut s = Record(Vec::new(), true);
        r.late(LATE, &mut s);
        assert_eq!(r.current(), 0);
        s.1 = false;
        r.late(LATE, &mut s);
        assert_eq!(s.0, [(1, Some(10_000))], "tried again, RLIMIT_RTTIME not yet set");
    }

    /// The real thing, on a thread of its own (needs CAP_SYS_NICE: skipped without it): the
    /// thread only, not the programs or threads it starts.
    #[test]
    fn test_system_scheduler_sets_the_thread_only() {
        std::thread::spawn(|| {
            let before = crate::resource::thread_scheduling().expect("sched_getscheduler");
            if let Err(e) = System.realtime(1, None) {
                eprintln!("skipped: {e}");
                return;
            }
            assert_eq!(crate::resource::thread_scheduling().expect("read"), (libc::SCHED_RR, 1));
            // A program it starts runs under the normal policy (SCHED_RESET_ON_FORK): field 41
            // of /proc/self/stat.
            let out = std::process::Command::new("cat").arg("/proc/self/stat").output().expect("cat");
            let stat = String::from_utf8_lossy(&out.stdout).to_string();
            let policy: i32 = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(38)).and_then(|f| f.parse().ok()).expect("policy");
            assert_eq!(policy, before.0, "{stat}");
            // So does a thread it starts (the kernel resets on every clone, threads too): the
            // blocking-pool threads of the loop's runtime are not realtime.
            let thread = std::thread::spawn(|| crate::resource::thread_scheduling().expect("read")).join().expect("thread");
            assert_eq!(thread, before);
        })
        .join()
        .expect("thread");
    }
}
