//! The wasmtime side: engine, epoch ticker, limits, the `hav` imports, one entry call, and the
//! load-time checks of a module (its shape before compiling, its imports and exports after).

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use hav_core::policy::{
    unpack, HostError, HostRequest, ABI_VERSION, EXPORT_ABI_VERSION, EXPORT_ALLOC, EXPORT_CHECK, EXPORT_PRIORITY,
    HOST_CALL_TOO_SMALL, IMPORT_HOST_CALL, IMPORT_LOG, IMPORT_MODULE, IMPORT_NOW_MS,
};
use wasmtime::{
    Caller, Engine, ExternType, FuncType, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline,
};

use super::hostcall;
use super::{PolicyError, PolicyLimits, PolicyTarget};

/// Bytes of one WASM page.
const PAGE: u64 = 64 * 1024;
/// Most bytes of a host-call request read from the guest.
const MAX_HOST_REQUEST: usize = 64 * 1024;
/// Most bytes of one guest log line; the rest is cut.
const MAX_LOG_LINE: usize = 1024;
/// Most guest log lines one run may emit; the rest are dropped (and counted).
const MAX_LOG_LINES: u32 = 16;
/// Guest log lines let through per policy and window, across runs: a policy logging at every
/// run of a 10 ms script does not fill the log.
pub(crate) const GUEST_LOG_BURST: u32 = 20;
/// The window of [`GUEST_LOG_BURST`].
pub(crate) const GUEST_LOG_PERIOD: Duration = Duration::from_secs(10);
/// Compiles of modules that ran past their deadline and still occupy a thread; past this many,
/// no new compile starts until one of them ends.
const MAX_ABANDONED_COMPILES: usize = 2;

/// Monotonic milliseconds, counted from the first use in this process.
pub(crate) fn mono_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    u64::try_from(BASE.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The engine every policy of a set shares: epoch interruption always on, fuel when
/// the limits ask for it, pooling allocator sized for `max_concurrency` runs.
pub(crate) fn engine(limits: &PolicyLimits) -> Result<Engine, PolicyError> {
    let mut c = wasmtime::Config::new();
    // Async host calls need no switch any more (wasmtime 48): the `*_async` entry points are
    // what makes a run async.
    c.epoch_interruption(true)
        .consume_fuel(limits.fuel.is_some())
        .max_wasm_stack(limits.wasm_stack)
        // The fiber stack holds the wasm stack plus host frames.
        .async_stack_size(limits.wasm_stack + 512 * 1024)
        // Policies have a few KiB of data: copying it beats mapping a copy-on-write image
        // that faults on every call's first writes.
        .memory_init_cow(false);
    let n = limits.max_concurrency.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(n)
        .total_memories(n)
        .total_tables(n)
        .total_stacks(n)
        .max_memory_size(limits.memory)
        .max_unused_warm_slots(n.min(16))
        // Reset the first pages of a memory with memset instead of madvise: no page faults
        // and no TLB shootdown on the next call (policies built with the SDK keep their
        // stack and buffers there).
        .linear_memory_keep_resident(limits.keep_resident)
        .table_keep_resident(4096)
        .async_stack_keep_resident(64 * 1024);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&c).map_err(|e| PolicyError::Engine(format!("{e:#}")))
}

/// Advances the engine's epoch every tick on its own thread until dropped.
///
/// Without it no guest is ever interrupted: a loop would hold its thread for good. So a set
/// whose ticker cannot start does not load ([`EpochTicker::start`] fails).
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the ticker thread.
    pub(crate) fn start(engine: Engine, tick: Duration) -> Result<EpochTicker, PolicyError> {
        Self::start_on(thread::Builder::new().name("hav-policy-epoch".into()), engine, tick)
    }

    /// [`EpochTicker::start`] with the thread built by `builder` (tests make it fail).
    fn start_on(builder: thread::Builder, engine: Engine, tick: Duration) -> Result<EpochTicker, PolicyError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = builder
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| PolicyError::Engine(format!("cannot start the epoch ticker thread, so no policy could be interrupted: {e}")))?;
        Ok(EpochTicker { stop, thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Why the host stopped a run (as opposed to a trap the guest caused itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cpu,
    Memory,
}

/// StoreLimits plus a record of which limit was hit, so the error can name it.
struct Limiter {
    inner: StoreLimits,
    max_memory: usize,
    stop: Option<Stop>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.stop = Some(Stop::Memory);
            wasmtime::bail!("memory cap of {} bytes exceeded (the policy asked for {desired})", self.max_memory);
        }
        self.inner.memory_growing(current, desired, maximum)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// The CPU time a run's guest code has used: the thread CPU time spent inside polls of the
/// run's wasmtime futures. Preemption by other processes, other tasks sharing the worker, and
/// waiting for host calls do not count.
#[derive(Default)]
pub(crate) struct CpuMeter {
    /// Nanoseconds used by finished polls.
    used: AtomicU64,
    /// Thread CPU time at the start of the current poll; 0 when not polling.
    poll_start: AtomicU64,
}

fn thread_cpu_ns() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| (t.tv_sec() as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec() as u64))
        .unwrap_or(0)
}

impl CpuMeter {
    /// CPU time used so far; call from inside a poll (the epoch callback) or after the run.
    fn used(&self) -> Duration {
        let mut ns = self.used.load(Ordering::Relaxed);
        let start = self.poll_start.load(Ordering::Relaxed);
        if start != 0 {
            ns = ns.saturating_add(thread_cpu_ns().saturating_sub(start));
        }
        Duration::from_nanos(ns)
    }
}

/// Polls `fut`, adding the thread CPU time of each poll to `meter`.
async fn metered<F: Future>(meter: &CpuMeter, fut: F) -> F::Output {
    let mut fut = Box::pin(fut);
    std::future::poll_fn(|cx| {
        let start = thread_cpu_ns().max(1);
        meter.poll_start.store(start, Ordering::Relaxed);
        let r = fut.as_mut().poll(cx);
        meter.poll_start.store(0, Ordering::Relaxed);
        meter.used.fetch_add(thread_cpu_ns().saturating_sub(start), Ordering::Relaxed);
        r
    })
    .await
}

/// Per-run state, held in the store.
pub(crate) struct RunState {
    limiter: Limiter,
    policy: Arc<str>,
    /// Endpoints host calls may reach, by kind; `None` refuses every host call (load-time
    /// checks).
    allowed: Option<Arc<[PolicyTarget]>>,
    host_calls: u32,
    max_host_calls: u32,
    logs: u32,
    /// What the host refused or dropped during the run (shared with the caller, which reads it
    /// even when the run is cut short).
    report: Arc<Mutex<RunReport>>,
    /// Guest log lines let through per policy, across runs.
    guest_log: Arc<GuestLog>,
    cpu_budget: Duration,
    cpu: Arc<CpuMeter>,
    /// End of the run's wall-clock budget.
    deadline: Instant,
    fuel: bool,
}

/// What one run is allowed, and where it reports.
pub(crate) struct RunSpec<'a> {
    pub(crate) policy: &'a Arc<str>,
    pub(crate) allowed: Option<Arc<[PolicyTarget]>>,
    pub(crate) timeout: Duration,
    pub(crate) report: Arc<Mutex<RunReport>>,
    pub(crate) guest_log: Arc<GuestLog>,
}

/// What the host refused or dropped during one run. The run's caller puts it in the run's one
/// summary line: a guest calling the host in a loop gets one line, not one per call.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RunReport {
    /// Host calls refused: endpoint or kind not allowed, or made while loading.
    pub(crate) denied: u32,
    /// The first refusal, with its reason.
    pub(crate) first_denied: Option<String>,
    /// Host calls past the per-run budget.
    pub(crate) over_budget: u32,
    /// Host calls whose request did not decode, or was too large.
    pub(crate) bad_requests: u32,
    /// Guest log lines dropped: past the per-run cap, or the policy's rate.
    pub(crate) logs_dropped: u32,
}

impl RunReport {
    /// Whether anything is worth a line.
    pub(crate) fn is_empty(&self) -> bool {
        self.denied == 0 && self.over_budget == 0 && self.bad_requests == 0 && self.logs_dropped == 0
    }
}

impl std::fmt::Display for RunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.denied > 0 {
            let first = self.first_denied.as_deref().unwrap_or("");
            parts.push(format!("host calls refused: {} (first: {first})", self.denied));
        }
        if self.over_budget > 0 {
            parts.push(format!("host calls past the per-run budget: {}", self.over_budget));
        }
        if self.bad_requests > 0 {
            parts.push(format!("malformed host calls: {}", self.bad_requests));
        }
        if self.logs_dropped > 0 {
            parts.push(format!("guest log lines dropped: {}", self.logs_dropped));
        }
        f.write_str(&parts.join("; "))
    }
}

/// Guest log lines let through per policy: [`GUEST_LOG_BURST`] per [`GUEST_LOG_PERIOD`].
pub(crate) type GuestLog = Mutex<crate::ratelimit::KeyedRateLimit<Arc<str>>>;

fn report(st: &RunState) -> std::sync::MutexGuard<'_, RunReport> {
    st.report.lock().unwrap_or_else(|p| p.into_inner())
}

/// A guest's log text as one line: control characters (newlines, carriage returns, escape
/// sequences, Unicode line separators) are escaped, so a guest cannot start a line of its own
/// nor move the cursor over ours.
pub(crate) fn escape_guest(text: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.chars().any(bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if bad(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn guest_ptr(v: i32) -> usize {
    v as u32 as usize
}

/// The linker with the three `hav` imports, and nothing else.
pub(crate) fn linker(engine: &Engine) -> Result<Linker<RunState>, PolicyError> {
    let mut l = Linker::new(engine);
    let e = |e: wasmtime::Error| PolicyError::Engine(format!("{e:#}"));
    l.func_wrap(IMPORT_MODULE, IMPORT_NOW_MS, || -> i64 { mono_ms() as i64 }).map_err(e)?;
    l.func_wrap(IMPORT_MODULE, IMPORT_LOG, |mut caller: Caller<'_, RunState>, level: i32, ptr: i32, len: i32| {
        let mem = caller
            .get_export("memory")
            .and_then(|m| m.into_memory())
            .ok_or_else(|| wasmtime::format_err!("log: the policy exports no memory"))?;
        let len = guest_ptr(len).min(MAX_LOG_LINE);
        let mut buf = vec![0u8; len];
        mem.read(&caller, guest_ptr(ptr), &mut buf).map_err(|_| wasmtime::format_err!("log: buffer out of bounds"))?;
        let st = caller.data_mut();
        st.logs += 1;
        let admitted = st.logs <= MAX_LOG_LINES
            && st.guest_log.lock().unwrap_or_else(|p| p.into_inner()).check(&st.policy, Instant::now()).is_some();
        if !admitted {
            report(st).logs_dropped += 1;
            return Ok(());
        }
        let text = String::from_utf8_lossy(&buf);
        let text = escape_guest(&text);
        let policy = &*st.policy;
        match level {
            0 => tracing::error!(policy, guest = true, "{text}"),
            1 => tracing::warn!(policy, guest = true, "{text}"),
            2 => tracing::info!(policy, guest = true, "{text}"),
            3 => tracing::debug!(policy, guest = true, "{text}"),
            _ => tracing::trace!(policy, guest = true, "{text}"),
        }
        wasmtime::Result::<()>::Ok(())
    })
    .map_err(e)?;
    l.func_wrap_async(
        IMPORT_MODULE,
        IMPORT_HOST_CALL,
        |mut caller: Caller<'_, RunState>, (rp, rl, op, oc): (i32, i32, i32, i32)| {
            Box::new(async move { host_call(&mut caller, rp, rl, op, oc).await })
        },
    )
    .map_err(e)?;
    Ok(l)
}

fn code(e: HostError) -> i32 {
    -(e as i32)
}

async fn host_call(caller: &mut Caller<'_, RunState>, rp: i32, rl: i32, op: i32, oc: i32) -> wasmtime::Result<i32> {
    let mem = caller
        .get_export("memory")
        .and_then(|m| m.into_memory())
        .ok_or_else(|| wasmtime::format_err!("host_call: the policy exports no memory"))?;
    let rl = guest_ptr(rl);
    if rl > MAX_HOST_REQUEST {
        report(caller.data()).bad_requests += 1;
        return Ok(code(HostError::BadRequest));
    }
    let mut raw = vec![0u8; rl];
    mem.read(&*caller, guest_ptr(rp), &mut raw).map_err(|_| wasmtime::format_err!("host_call: request out of bounds"))?;
    let st = caller.data_mut();
    // Refusals are counted, not logged: the run's one summary line says how many and why.
    let Some(allowed) = st.allowed.clone() else {
        let mut r = report(st);
        r.denied += 1;
        r.first_denied.get_or_insert_with(|| "no host calls while loading".into());
        return Ok(code(HostError::Denied));
    };
    st.host_calls += 1;
    if st.host_calls > st.max_host_calls {
        report(st).over_budget += 1;
        return Ok(code(HostError::Budget));
    }
    let Ok(req) = postcard::from_bytes::<HostRequest<'_>>(&raw) else {
        report(st).bad_requests += 1;
        return Ok(code(HostError::BadRequest));
    };
    let (call, to) = (hostcall::kind(&req), hostcall::destination(&req));
    if let Err(why) = hostcall::permit(&allowed, call, to) {
        let mut r = report(st);
        r.denied += 1;
        r.first_denied.get_or_insert(why);
        return Ok(code(HostError::Denied));
    }
    let policy = st.policy.clone();
    let left = st.deadline.saturating_duration_since(Instant::now());
    let answer = hostcall::perform(&req, left).await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            tracing::trace!(policy = &*policy, call = call.name(), target = %to, error = ?e, "host call failed");
            return Ok(code(e));
        }
    };
    let bytes = postcard::to_allocvec(&answer.response()).map_err(|e| wasmtime::format_err!("host_call: encode: {e}"))?;
    if bytes.len() > guest_ptr(oc) {
        return Ok(-(HOST_CALL_TOO_SMALL.saturating_add(i32::try_from(bytes.len()).unwrap_or(i32::MAX - HOST_CALL_TOO_SMALL))));
    }
    mem.write(&mut *caller, guest_ptr(op), &bytes).map_err(|_| wasmtime::format_err!("host_call: response buffer out of bounds"))?;
    Ok(i32::try_from(bytes.len()).unwrap_or(i32::MAX))
}

fn new_store(
    engine: &Engine,
    limits: &PolicyLimits,
    spec: &RunSpec<'_>,
    cpu: Arc<CpuMeter>,
) -> Result<Store<RunState>, PolicyError> {
    let now = Instant::now();
    let state = RunState {
        limiter: Limiter {
            inner: StoreLimitsBuilder::new()
                .memory_size(limits.memory)
                .instances(1)
                .memories(1)
                .tables(4)
                .table_elements(limits.table_elements)
                .build(),
            max_memory: limits.memory,
            stop: None,
        },
        policy: spec.policy.clone(),
        allowed: spec.allowed.clone(),
        host_calls: 0,
        max_host_calls: limits.max_host_calls,
        logs: 0,
        report: spec.report.clone(),
        guest_log: spec.guest_log.clone(),
        cpu_budget: limits.cpu,
        cpu,
        deadline: now + spec.timeout,
        fuel: limits.fuel.is_some(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    let engine_err = |e: wasmtime::Error| PolicyError::Engine(format!("{e:#}"));
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel).map_err(engine_err)?;
        store.fuel_async_yield_interval(Some(10_000)).map_err(engine_err)?;
    }
    // Each tick the guest yields to the executor (so it never holds a worker for more than a
    // tick) and its CPU time is compared with the budget.
    store.epoch_deadline_callback(|mut ctx| {
        let st = ctx.data();
        if !st.fuel && st.cpu.used() >= st.cpu_budget {
            ctx.data_mut().limiter.stop = Some(Stop::Cpu);
            wasmtime::bail!("CPU budget exhausted");
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store.set_epoch_deadline(1);
    Ok(store)
}

fn run_error(store: &Store<RunState>, limits: &PolicyLimits, e: wasmtime::Error) -> PolicyError {
    let st = store.data();
    let policy = st.policy.to_string();
    match st.limiter.stop {
        Some(Stop::Cpu) => return PolicyError::CpuBudget { policy, budget: format!("{:?}", limits.cpu) },
        Some(Stop::Memory) => return PolicyError::Memory { policy, cap: limits.memory },
        None => {}
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => PolicyError::CpuBudget { policy, budget: format!("{} fuel", limits.fuel.unwrap_or(0)) },
        Some(Trap::Interrupt) => PolicyError::CpuBudget { policy, budget: format!("{:?}", limits.cpu) },
        Some(Trap::StackOverflow) => PolicyError::StackOverflow { policy },
        Some(t) => PolicyError::Trap { policy, message: t.to_string() },
        None => PolicyError::Trap { policy, message: format!("{e:#}") },
    }
}

/// Instantiates `pre` and calls `entry` with `input`; returns the output bytes.
///
/// Bounded by the CPU budget and memory cap; the caller bounds the wall clock (the future can
/// be dropped at any point).
pub(crate) async fn invoke(
    engine: &Engine,
    pre: &InstancePre<RunState>,
    limits: &PolicyLimits,
    spec: &RunSpec<'_>,
    entry: &str,
    input: &[u8],
) -> Result<Vec<u8>, PolicyError> {
    if input.len() > limits.max_input {
        return Err(PolicyError::InputTooLarge { policy: spec.policy.to_string(), len: input.len(), cap: limits.max_input });
    }
    let cpu = Arc::new(CpuMeter::default());
    // One meter around the whole run: a trivial policy completes in a single poll.
    metered(&cpu, invoke_unmetered(engine, pre, limits, spec, entry, input, cpu.clone())).await
}

async fn invoke_unmetered(
    engine: &Engine,
    pre: &InstancePre<RunState>,
    limits: &PolicyLimits,
    spec: &RunSpec<'_>,
    entry: &str,
    input: &[u8],
    cpu: Arc<CpuMeter>,
) -> Result<Vec<u8>, PolicyError> {
    let policy = spec.policy.to_string();
    let mut store = new_store(engine, limits, spec, cpu)?;
    let instance = match pre.instantiate_async(&mut store).await {
        Ok(i) => i,
        Err(e) => return Err(run_error(&store, limits, e)),
    };
    let bad = |message: String| PolicyError::BadOutput { policy: policy.clone(), message };
    let memory = instance.get_memory(&mut store, "memory").ok_or_else(|| bad("no memory export".into()))?;
    let alloc = instance.get_typed_func::<i32, i32>(&mut store, EXPORT_ALLOC).map_err(|e| bad(format!("{e:#}")))?;
    let func = instance.get_typed_func::<(i32, i32), i64>(&mut store, entry).map_err(|e| bad(format!("{e:#}")))?;
    let len = i32::try_from(input.len()).unwrap_or(i32::MAX);
    let ptr = match alloc.call_async(&mut store, len).await {
        Ok(p) => p,
        Err(e) => return Err(run_error(&store, limits, e)),
    };
    if ptr == 0 && !input.is_empty() {
        return Err(bad(format!("{EXPORT_ALLOC} refused {} bytes of input", input.len())));
    }
    memory
        .write(&mut store, guest_ptr(ptr), input)
        .map_err(|_| bad(format!("{EXPORT_ALLOC} returned a buffer outside memory ({ptr:#x}+{len})")))?;
    let packed = match func.call_async(&mut store, (ptr, len)).await {
        Ok(v) => v,
        Err(e) => return Err(run_error(&store, limits, e)),
    };
    let (optr, olen) = unpack(packed);
    let olen = olen as usize;
    if olen > limits.max_output {
        return Err(PolicyError::OutputTooLarge { policy, len: olen, cap: limits.max_output });
    }
    let mut out = vec![0u8; olen];
    memory
        .read(&store, optr as usize, &mut out)
        .map_err(|_| bad(format!("output buffer outside memory ({optr:#x}+{olen})")))?;
    Ok(out)
}

/// The entries a module exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entries {
    pub(crate) check: bool,
    pub(crate) priority: bool,
}

fn sig(ft: &FuncType) -> String {
    let p: Vec<String> = ft.params().map(|v| v.to_string()).collect();
    let r: Vec<String> = ft.results().map(|v| v.to_string()).collect();
    format!("({}) -> ({})", p.join(", "), r.join(", "))
}

fn kind(t: &ExternType) -> String {
    match t {
        ExternType::Func(f) => format!("func {}", sig(f)),
        ExternType::Global(_) => "global".into(),
        ExternType::Table(_) => "table".into(),
        ExternType::Memory(_) => "memory".into(),
        ExternType::Tag(_) => "tag".into(),
    }
}

/// Checks a compiled module's imports and exports against the ABI (everything but the
/// version, which needs a call). Its shape was checked before compiling ([`inspect`]).
pub(crate) fn validate(module: &Module, path: &Path) -> Result<Entries, PolicyError> {
    let p = || path.to_path_buf();
    for imp in module.imports() {
        let ty = imp.ty();
        let expected = match (imp.module(), imp.name()) {
            (IMPORT_MODULE, IMPORT_HOST_CALL) => Some("(i32, i32, i32, i32) -> (i32)"),
            (IMPORT_MODULE, IMPORT_NOW_MS) => Some("() -> (i64)"),
            (IMPORT_MODULE, IMPORT_LOG) => Some("(i32, i32, i32) -> ()"),
            _ => None,
        };
        let ok = match (&ty, expected) {
            (ExternType::Func(f), Some(want)) => sig(f) == want,
            _ => false,
        };
        if !ok {
            return Err(PolicyError::ForbiddenImport {
                path: p(),
                module: imp.module().to_string(),
                name: imp.name().to_string(),
                kind: kind(&ty),
            });
        }
    }
    let func_export = |name: &'static str, want: &str, required: bool| -> Result<bool, PolicyError> {
        match module.get_export(name) {
            Some(ExternType::Func(f)) if sig(&f) == want => Ok(true),
            Some(other) => Err(PolicyError::ExportType { path: p(), name, found: kind(&other), expected: format!("func {want}") }),
            None if required => Err(PolicyError::MissingExport { path: p(), name }),
            None => Ok(false),
        }
    };
    func_export(EXPORT_ABI_VERSION, "() -> (i32)", true)?;
    func_export(EXPORT_ALLOC, "(i32) -> (i32)", true)?;
    let entries = Entries {
        check: func_export(EXPORT_CHECK, "(i32, i32) -> (i64)", false)?,
        priority: func_export(EXPORT_PRIORITY, "(i32, i32) -> (i64)", false)?,
    };
    if !entries.check && !entries.priority {
        return Err(PolicyError::NoEntry { path: p() });
    }
    match module.get_export("memory") {
        Some(ExternType::Memory(_)) => {}
        Some(other) => {
            return Err(PolicyError::ExportType { path: p(), name: "memory", found: kind(&other), expected: "memory".into() })
        }
        None => return Err(PolicyError::MissingExport { path: p(), name: "memory" }),
    }
    Ok(entries)
}

/// Reads the module file at `path`, refusing one over [`PolicyLimits::max_module`] before
/// reading it.
pub(crate) fn read_module(path: &Path, limits: &PolicyLimits) -> Result<Vec<u8>, PolicyError> {
    let read_err = |source| PolicyError::Read { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    let cap = limits.max_module as u64;
    if meta.len() > cap {
        return Err(PolicyError::Compile { path: path.to_path_buf(), message: format!("{} bytes, more than the cap of {cap}", meta.len()) });
    }
    // Read at most the cap, in case the file grew since.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(std::fs::File::open(path).map_err(read_err)?, cap + 1), &mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > cap {
        return Err(PolicyError::Compile { path: path.to_path_buf(), message: format!("more than the cap of {cap} bytes") });
    }
    Ok(bytes)
}

/// The binary form of a module file: as is, or the text format translated.
pub(crate) fn binary(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>, PolicyError> {
    if bytes.starts_with(b"\0asm") {
        return Ok(bytes);
    }
    wat::parse_bytes(&bytes)
        .map(|b| b.into_owned())
        .map_err(|e| PolicyError::Compile { path: path.to_path_buf(), message: format!("{e}") })
}

/// Checks the shape of a module before it is compiled, against the limits: its code (number of
/// functions, size and locals of each: what makes compiling slow), its memories (initial size)
/// and its active data segments (what every instantiation copies into memory). A module past
/// one of them is refused here, with the policy's name, instead of costing a compile or failing
/// at every run.
pub(crate) fn inspect(binary: &[u8], name: &str, path: &Path, limits: &PolicyLimits) -> Result<(), PolicyError> {
    use wasmparser::{DataKind, Parser, Payload};
    let policy = || name.to_string();
    let malformed = |e: wasmparser::BinaryReaderError| PolicyError::Compile { path: path.to_path_buf(), message: e.to_string() };
    let too_complex = |message: String| PolicyError::TooComplex { policy: policy(), path: path.to_path_buf(), message };
    let mut active: u64 = 0;
    let mut function = 0u32;
    for payload in Parser::new(0).parse_all(binary) {
        match payload.map_err(malformed)? {
            Payload::MemorySection(r) => {
                for m in r {
                    let declared = m.map_err(malformed)?.initial.saturating_mul(PAGE);
                    if declared > limits.memory as u64 {
                        return Err(PolicyError::MemoryTooLarge { policy: policy(), path: path.to_path_buf(), declared, cap: limits.memory });
                    }
                }
            }
            Payload::DataSection(r) => {
                for d in r {
                    let d = d.map_err(malformed)?;
                    if let DataKind::Active { .. } = d.kind {
                        active = active.saturating_add(d.data.len() as u64);
                    }
                }
                if active > limits.memory as u64 {
                    return Err(PolicyError::DataTooLarge { policy: policy(), path: path.to_path_buf(), active, cap: limits.memory });
                }
            }
            Payload::CodeSectionStart { count, .. } if count > limits.max_functions => {
                return Err(too_complex(format!("{count} functions, more than the cap of {}", limits.max_functions)));
            }
            Payload::CodeSectionEntry(body) => {
                let size = body.range().len();
                if size > limits.max_function_size {
                    return Err(too_complex(format!(
                        "function {function} has {size} bytes of code, more than the cap of {}",
                        limits.max_function_size
                    )));
                }
                let mut locals: u64 = 0;
                for l in body.get_locals_reader().map_err(malformed)? {
                    locals = locals.saturating_add(u64::from(l.map_err(malformed)?.0));
                }
                if locals > u64::from(limits.max_locals) {
                    return Err(too_complex(format!("function {function} declares {locals} locals, more than the cap of {}", limits.max_locals)));
                }
                function += 1;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Compiles that outlived their deadline and still run, in the whole process; see [`compile`].
static ABANDONED: AtomicUsize = AtomicUsize::new(0);

/// The state of one compile, between its thread and the loader waiting for it.
const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED_STATE: u8 = 2;

/// Ends a compile's thread: takes its count back when the loader abandoned it.
struct Abandon {
    state: Arc<std::sync::atomic::AtomicU8>,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if self.state.compare_exchange(RUNNING, DONE, Ordering::AcqRel, Ordering::Acquire).is_err() {
            ABANDONED.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Compiles `binary` on a thread of its own, waiting at most [`PolicyLimits::compile_timeout`].
///
/// Cranelift cannot be interrupted; a compile past its deadline is abandoned (the load fails,
/// naming the policy) and its thread ends on its own. While [`MAX_ABANDONED_COMPILES`] of those
/// still run, no new compile starts: a module reloaded over and over cannot pile up threads.
pub(crate) fn compile(
    engine: &Engine,
    binary: Vec<u8>,
    name: &str,
    path: &Path,
    limits: &PolicyLimits,
) -> Result<Module, PolicyError> {
    let running = ABANDONED.load(Ordering::Acquire);
    if running >= MAX_ABANDONED_COMPILES {
        return Err(PolicyError::CompileTimeout {
            policy: name.to_string(),
            path: path.to_path_buf(),
            timeout: limits.compile_timeout,
            message: format!("{running} earlier compiles past their deadline still run; try again later"),
        });
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let state = Arc::new(std::sync::atomic::AtomicU8::new(RUNNING));
    let guard = Abandon { state: state.clone() };
    let engine = engine.clone();
    thread::Builder::new()
        .name("hav-policy-compile".into())
        .spawn(move || {
            let _guard = guard;
            let _ = tx.send(Module::from_binary(&engine, &binary));
        })
        .map_err(|e| PolicyError::Engine(format!("cannot start a compile thread: {e}")))?;
    match rx.recv_timeout(limits.compile_timeout) {
        Ok(r) => r.map_err(|e| PolicyError::Compile { path: path.to_path_buf(), message: format!("{e:#}") }),
        Err(_) => {
            // Counted before the state changes, so the thread's guard never takes back more
            // than was added; a thread that ended in between is not counted.
            ABANDONED.fetch_add(1, Ordering::AcqRel);
            if state.compare_exchange(RUNNING, ABANDONED_STATE, Ordering::AcqRel, Ordering::Acquire).is_err() {
                ABANDONED.fetch_sub(1, Ordering::AcqRel);
            }
            Err(PolicyError::CompileTimeout {
                policy: name.to_string(),
                path: path.to_path_buf(),
                timeout: limits.compile_timeout,
                message: "compiling took longer".into(),
            })
        }
    }
}

/// Calls `hav_abi_version` (on this thread, host calls refused) and compares it with ours.
pub(crate) fn check_abi(
    engine: &Engine,
    pre: &InstancePre<RunState>,
    limits: &PolicyLimits,
    name: &Arc<str>,
    path: &Path,
    guest_log: &Arc<GuestLog>,
) -> Result<(), PolicyError> {
    let report = Arc::new(Mutex::new(RunReport::default()));
    let spec = RunSpec { policy: name, allowed: None, timeout: limits.timeout, report, guest_log: guest_log.clone() };
    let cpu = Arc::new(CpuMeter::default());
    let fut = metered(&cpu, async {
        let mut store = new_store(engine, limits, &spec, cpu.clone())?;
        let instance = match pre.instantiate_async(&mut store).await {
            Ok(i) => i,
            Err(e) => return Err(run_error(&store, limits, e)),
        };
        let f = instance
            .get_typed_func::<(), i32>(&mut store, EXPORT_ABI_VERSION)
            .map_err(|e| PolicyError::Engine(format!("{e:#}")))?;
        match f.call_async(&mut store, ()).await {
            Ok(v) => Ok(v),
            Err(e) => Err(run_error(&store, limits, e)),
        }
    });
    let found = block_on(fut, Instant::now() + limits.timeout)
        .ok_or_else(|| PolicyError::Timeout { policy: name.to_string(), timeout: limits.timeout })??;
    if found as u32 != ABI_VERSION {
        return Err(PolicyError::AbiVersion { path: path.to_path_buf(), found: i64::from(found), expected: ABI_VERSION });
    }
    Ok(())
}

struct ThreadWaker(thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives `fut` on this thread until it is ready or `deadline` passes. Used at load time, which
/// may run outside (or inside, blocking) a tokio runtime; the future must not need tokio.
fn block_on<F: Future>(fut: F, deadline: Instant) -> Option<F::Output> {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::park_timeout(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_escape_guest() {
        assert_eq!(escape_guest("plain text: 100% fine"), "plain text: 100% fine");
        assert_eq!(escape_guest("a\nINFO b\r\tc"), r"a\nINFO b\r\tc");
        assert_eq!(escape_guest("\x1b[2Kx\u{2028}y\u{85}"), r"\u{1b}[2Kx\u{2028}y\u{85}");
    }

    /// A ticker that cannot start fails the load: without it no guest would ever be interrupted.
    #[test]
    fn test_ticker_that_cannot_start_is_an_error() {
        let engine = engine(&PolicyLimits::default()).expect("engine");
        // A petabyte of stack: more address space than a process has.
        let builder = thread::Builder::new().stack_size(1 << 50);
        let e = EpochTicker::start_on(builder, engine.clone(), Duration::from_millis(1)).err().expect("no thread");
        assert!(e.to_string().contains("cannot start the epoch ticker thread"), "{e}");
        assert!(EpochTicker::start(engine, Duration::from_millis(1)).is_ok());
    }

    #[test]
    fn test_run_report_line() {
        let mut r = RunReport::default();
        assert!(r.is_empty());
        r.denied = 2;
        r.first_denied = Some("tcp_connect to 127.0.0.1:80: no".into());
        r.over_budget = 5;
        r.logs_dropped = 1;
        assert_eq!(
            r.to_string(),
            "host calls refused: 2 (first: tcp_connect to 127.0.0.1:80: no); host calls past the per-run budget: 5; guest log lines dropped: 1"
        );
    }
}
