//! Policy host benchmarks.
//!
//! - `policy/trivial_call/*`: per-call overhead of a policy that does no host call (the Rust
//!   SDK's `static_verdict` example, and a hand-written WAT module) with the default limits:
//!   request encoding, a fresh instance from the pool, the call, response decoding (a policy
//!   that finishes within its first epoch tick never leaves the caller's runtime).
//!   `trivial_call_inline/*` is the same with `workers: 0` (no policy runtime at all).
//!   Target: under 20 µs.
//! - A printed table of CPU time per call for those variants and memory-reset settings
//!   (steadier than wall time on a shared machine).
//! - `policy/epoch_interrupt`: a looping policy against a 10 ms CPU budget; the time to stop it,
//!   with median / p90 / max ratio to the budget printed. Target: under 2x.
//!
//! Needs the example policies: `scripts/build-policies` (run here when missing).
// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use hav_core::policy::History;
use hav_linux::config::Config;
use hav_linux::policy::{PolicyError, PolicyLimits, PolicySet};

fn examples() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
    let dir = root.join("target/policies");
    if !dir.join("static_verdict.wasm").exists() {
        let st = std::process::Command::new(root.join("scripts/build-policies")).arg(&dir).status().expect("build-policies");
        assert!(st.success(), "scripts/build-policies failed");
    }
    dir
}

fn wat(name: &str, body: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("hav-policy-bench-{}-{name}.wat", std::process::id()));
    let text = format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\00")
  (func (export "hav_abi_version") (result i32) (i32.const 1))
  (func (export "hav_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "hav_check") (param i32 i32) (result i64) {body}))"#
    );
    std::fs::write(&p, text).expect("write wat");
    p
}

/// CPU time of the whole process.
#[allow(unsafe_code)]
fn process_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn bench(c: &mut Criterion) {
    // wasmtime 27 builds (and drops) an anyhow error on every instantiation (no GC heap);
    // with RUST_BACKTRACE=1 and no RUST_LIB_BACKTRACE, each would capture a backtrace (+15 µs).
    // hav-linux's main should do the same; panics keep their backtraces.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let target: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let rust = examples().join("static_verdict.wasm");
    let trivial_wat = wat("trivial", "(i64.const 2)");
    let set = PolicySet::load(&[rust.clone(), trivial_wat.clone()], &Config::default()).expect("load");
    let inline = PolicyLimits { workers: 0, ..PolicyLimits::default() };
    let inline_set = PolicySet::load_with(&[rust.clone(), trivial_wat.clone()], &Config::default(), inline.clone()).expect("load");
    let no_resident = PolicyLimits { keep_resident: 0, ..inline };
    let madvise_set = PolicySet::load_with(&[rust, trivial_wat.clone()], &Config::default(), no_resident).expect("load");

    let mut g = c.benchmark_group("policy");
    let wat_name = format!("hav-policy-bench-{}-trivial", std::process::id());
    for (label, name, set) in [
        ("trivial_call/rust_sdk", "static_verdict", &set),
        ("trivial_call/wat", wat_name.as_str(), &set),
        ("trivial_call_inline/rust_sdk", "static_verdict", &inline_set),
        ("trivial_call_inline/wat", wat_name.as_str(), &inline_set),
        ("trivial_call_inline_no_keep_resident/rust_sdk", "static_verdict", &madvise_set),
    ] {
        g.bench_function(label, |b| {
            b.iter(|| {
                rt.block_on(set.run_check(name, target, "", &[], History::default(), Duration::from_secs(1)))
                    .expect("runs")
            })
        });
    }

    // CPU time per call (process-wide, so the policy runtime's thread counts too): steadier
    // than wall time on a loaded machine.
    for (label, keep_resident, workers, name) in [
        ("rust_sdk, default (workers 1), keep_resident 192K", 192 << 10, 1, "static_verdict"),
        ("rust_sdk, workers 0, keep_resident 192K", 192 << 10, 0, "static_verdict"),
        ("rust_sdk, workers 0, keep_resident 64K", 64 << 10, 0, "static_verdict"),
        ("rust_sdk, workers 0, keep_resident 0", 0, 0, "static_verdict"),
        ("wat, workers 0, keep_resident 64K", 64 << 10, 0, wat_name.as_str()),
        ("wat, workers 0, keep_resident 0", 0, 0, wat_name.as_str()),
    ] {
        let limits = PolicyLimits { keep_resident, workers, ..PolicyLimits::default() };
        let s = PolicySet::load_with(&[examples().join("static_verdict.wasm"), trivial_wat.clone()], &Config::default(), limits)
            .expect("load");
        let n = 20_000u32;
        let call = || rt.block_on(s.run_check(name, target, "", &[], History::default(), Duration::from_secs(1))).expect("runs");
        for _ in 0..1000 {
            call();
        }
        let (cpu0, wall0) = (process_cpu(), Instant::now());
        for _ in 0..n {
            call();
        }
        let (cpu, wall) = (process_cpu() - cpu0, wall0.elapsed());
        println!("per call, {label}: {:.1} µs CPU, {:.1} µs wall", cpu.as_secs_f64() * 1e6 / f64::from(n), wall.as_secs_f64() * 1e6 / f64::from(n));
    }

    let budget = Duration::from_millis(10);
    let spin = wat("spin", "(loop $l (br $l)) (i64.const 0)");
    let spin_name = format!("hav-policy-bench-{}-spin", std::process::id());
    let limits = PolicyLimits { cpu: budget, ..PolicyLimits::default() };
    let spin_set = PolicySet::load_with(&[spin], &Config::default(), limits).expect("load");
    let run_spin = || {
        let t = Instant::now();
        let e = rt
            .block_on(spin_set.run_check(&spin_name, target, "", &[], History::default(), Duration::from_secs(5)))
            .expect_err("loops");
        assert!(matches!(e, PolicyError::CpuBudget { .. }), "{e}");
        t.elapsed()
    };
    let mut times: Vec<Duration> = (0..50).map(|_| run_spin()).collect();
    times.sort();
    let ratio = |d: Duration| d.as_secs_f64() / budget.as_secs_f64();
    println!(
        "epoch interruption, budget {budget:?}: median {:?} ({:.2}x), p90 {:?} ({:.2}x), max {:?} ({:.2}x) over {} runs",
        times[times.len() / 2],
        ratio(times[times.len() / 2]),
        times[times.len() * 9 / 10],
        ratio(times[times.len() * 9 / 10]),
        times[times.len() - 1],
        ratio(times[times.len() - 1]),
        times.len()
    );
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.bench_function("epoch_interrupt/10ms_budget", |b| b.iter(run_spin));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
