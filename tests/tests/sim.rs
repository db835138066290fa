//! Property test of the election over random schedules in the simulator.

use hav_tests::sim::{Scenario, Sim};

fn seeds() -> std::ops::Range<u64> {
    // At least 1,000 schedules in every CI run; HAV_SIM_SCHEDULES raises it
    // and HAV_SIM_FIRST moves the window (soak runs).
    let n = std::env::var("HAV_SIM_SCHEDULES").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let first = std::env::var("HAV_SIM_FIRST").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    first..first + n
}

#[test]
fn random_schedules_keep_the_promises() {
    let mut failed = Vec::new();
    for seed in seeds() {
        let mut sim = Sim::new(Scenario::from_seed(seed));
        let v = sim.run();
        if !v.is_empty() {
            if failed.is_empty() {
                eprintln!("{}", sim.trace);
            }
            failed.push((seed, v));
            // A broken core can fail every schedule slowly; five are enough.
            if failed.len() >= 5 {
                break;
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} schedules broke a promise (trace of the first above; replay with \
         HAV_SIM_SEED=<seed> cargo test -p hav-tests --test sim replay -- --nocapture): {:?}",
        failed.len(),
        failed.iter().take(5).collect::<Vec<_>>()
    );
}

#[test]
fn replay() {
    // Replays one seed with its full trace; without HAV_SIM_SEED, seed 0.
    let seed = std::env::var("HAV_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut sim = Sim::new(Scenario::from_seed(seed));
    let v = sim.run();
    println!("{}", sim.trace);
    assert!(v.is_empty(), "seed {seed}: {v:?}");
}

#[test]
fn same_seed_same_trace() {
    for seed in [1, 77, 4242] {
        let mut a = Sim::new(Scenario::from_seed(seed));
        let mut b = Sim::new(Scenario::from_seed(seed));
        a.run();
        b.run();
        assert_eq!(a.trace, b.trace);
        assert!(a.trace.lines().count() > 2, "a run does something");
    }
}

#[test]
fn schedules_cover_the_space() {
    // The generator must reach every kind of disturbance and configuration
    // the promises are about, or the property test proves little.
    use hav_core::wire::VrrpVersion;
    use hav_tests::sim::Event;
    let (mut v2, mut v3, mut v6, mut uni, mut owner, mut nopre) = (0, 0, 0, 0, 0, 0);
    let mut kinds = [0usize; 7];
    for seed in seeds() {
        let sc = Scenario::from_seed(seed);
        match sc.version {
            VrrpVersion::V2 => v2 += 1,
            VrrpVersion::V3 => v3 += 1,
        }
        v6 += usize::from(sc.ipv6);
        uni += usize::from(sc.unicast);
        owner += usize::from(sc.priorities.contains(&255));
        nopre += usize::from(!sc.preempt);
        assert!((2..=16).contains(&sc.priorities.len()));
        for (_, e) in &sc.events {
            kinds[match e {
                Event::Partition(_) => 0,
                Event::Loss(_) => 1,
                Event::Heal => 2,
                Event::Crash(_) => 3,
                Event::Restart(_) => 4,
                Event::Priority(..) => 5,
                Event::Stop(_) => 6,
            }] += 1;
        }
    }
    for count in [v2, v3, v6, uni, owner, nopre].into_iter().chain(kinds) {
        assert!(count > 20, "{v2} {v3} {v6} {uni} {owner} {nopre} {kinds:?}");
    }
}
