//! WASM policies: untrusted check and priority logic, sandboxed in wasmtime.
//!
//! A policy is a core WASM module speaking the ABI of [`hav_core::policy`]. A [`PolicySet`]
//! holds the policies of one config; it checks each module's shape before compiling it (code
//! size, locals, initial memory, data segments: [`PolicyLimits`]), its imports, exports and ABI
//! version after, and runs each call in a fresh instance (pooling allocator,
//! [`wasmtime::InstancePre`]) under:
//! - a CPU budget: an epoch deadline (a ticker thread advances the epoch every
//!   [`PolicyLimits::epoch_tick`]; a set whose ticker cannot start does not load), or fuel
//!   when [`PolicyLimits::fuel`] is set (deterministic);
//! - a memory cap ([`wasmtime::StoreLimits`]);
//! - a wall-clock timeout that includes the host calls;
//! - caps on input and output size and on the number of host calls.
//!
//! Sets loaded with the same limits share one engine, its epoch ticker, its runtime and its
//! compiled modules, kept by the SHA-256 of their file: a reload compiles only the modules that
//! changed, on the loading thread (the daemon loads on a worker, never on the VRRP thread), and
//! the running set keeps serving until the new one replaces it.
//!
//! The only imports are `hav::host_call`, `hav::now_ms` and `hav::log` (no WASI). Host calls
//! (TCP connect, HTTP GET, DNS query, UDP probe) run on tokio and may reach only the endpoints the
//! operator allowed for that use of the policy, and each only by the kinds of host call allowed
//! for it ([`PolicyTarget`]):
//! - a `vrrp_script`'s policy: its `targets`;
//! - a WASM_CHECK's policy: its `targets`, and the real server it checks by the host calls the
//!   virtual server's `protocol` implies: `tcp_connect` and `http_get` for TCP, `udp_probe` and
//!   `dns_query` for UDP, none for SCTP ([`HostCalls::for_protocol`]).
//!
//! Nothing else is reachable, loopback and link-local addresses (a cloud metadata service)
//! included. A refused call returns [`hav_core::policy::HostError::Denied`] to the guest.
//!
//! Logs are bounded: a run that fails, or in which the host refused calls or dropped guest log
//! lines, gets one line saying why (the first refusal and the counts), at most
//! [`RUN_LOG_BURST`] per [`RUN_LOG_PERIOD`] for each policy and caller; guest log lines are
//! escaped onto one line and let through at most 20 per 10 s per policy (16 per run).
//!
//! Every call runs on the shared engine's own small runtime ([`PolicyLimits::workers`]
//! threads), never on the caller's: a hostile policy cannot take a worker of the daemon's
//! runtime at all. The guest yields every epoch tick, so runs share those threads fairly.
//!
//! Policies are named by `--policy FILE` (the file stem) or referenced by path in the config.

mod hostcall;
mod runtime;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use hav_core::policy::{
    CheckRequest, CheckResponse, CheckVerdict, History, PriorityRequest, PriorityResponse, PriorityVerdict, Proto,
    Target, EXPORT_CHECK, EXPORT_PRIORITY,
};
use wasmtime::{Engine, InstancePre, Linker};

use crate::config::error::Location;
use crate::config::lvs::Protocol;
use crate::config::Config;
use crate::health::Health;
use crate::ratelimit::KeyedRateLimit;

use runtime::{EpochTicker, GuestLog, RunReport, RunSpec, RunState};

/// Lines about one policy's runs for one caller (a vrrp_script, a real server) let through per
/// [`RUN_LOG_PERIOD`]: a failing policy on a 10 ms script logs a few lines, with the count of
/// those held back.
pub const RUN_LOG_BURST: u32 = 3;
/// The window of [`RUN_LOG_BURST`] and [`OK_LOG_BURST`].
pub const RUN_LOG_PERIOD: Duration = Duration::from_secs(10);
/// Debug lines about runs that went well let through per [`RUN_LOG_PERIOD`], per policy and
/// caller.
pub const OK_LOG_BURST: u32 = 10;

pub use crate::config::check::{HostCall, HostCalls, PolicyTarget};

/// The real server a check runs against: its address, and the `protocol` of its virtual server,
/// which says the host calls that may reach it ([`HostCalls::for_protocol`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckTarget {
    /// The real server (or its `connect_ip`/`connect_port`).
    pub addr: SocketAddr,
    /// Its virtual server's protocol.
    pub protocol: Protocol,
}

impl From<SocketAddr> for CheckTarget {
    /// A real server of a TCP virtual server (keepalived's default protocol).
    fn from(addr: SocketAddr) -> CheckTarget {
        CheckTarget { addr, protocol: Protocol::Tcp }
    }
}

impl CheckTarget {
    /// The allow-list entry of the real server itself; `None` when no host call may reach it.
    fn allowed(&self) -> Option<PolicyTarget> {
        let calls = HostCalls::for_protocol(self.protocol);
        (!calls.is_empty()).then_some(PolicyTarget { addr: self.addr, calls })
    }

    fn proto(&self) -> Proto {
        match self.protocol {
            Protocol::Tcp => Proto::Tcp,
            Protocol::Udp => Proto::Udp,
            Protocol::Sctp => Proto::Sctp,
        }
    }
}

/// The limits every run of a policy set is held to. Data, not code: the daemon may take them
/// from the command line or config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLimits {
    /// CPU time per call: the thread CPU time spent running the policy (instantiation, its
    /// code, the host's side of its calls), checked at every epoch tick. Waiting for host
    /// calls, and time the OS or the executor gives to others, do not count.
    pub cpu: Duration,
    /// Epoch tick: the granularity of the CPU budget, and the longest stretch a policy runs
    /// before yielding to the executor.
    pub epoch_tick: Duration,
    /// Count fuel instead of CPU time: `Some(units)` per call. Deterministic, for tests.
    pub fuel: Option<u64>,
    /// Linear memory cap, bytes.
    pub memory: usize,
    /// Table elements cap.
    pub table_elements: usize,
    /// WASM stack, bytes (deep recursion traps past it).
    pub wasm_stack: usize,
    /// Wall-clock limit of one call, host calls included, when the config gives none; also
    /// the limit of the load-time ABI check.
    pub timeout: Duration,
    /// Largest postcard request handed to a policy, bytes.
    pub max_input: usize,
    /// Largest postcard response accepted from a policy, bytes.
    pub max_output: usize,
    /// Host calls allowed per call.
    pub max_host_calls: u32,
    /// Policy calls running at once (the pool size); more wait.
    pub max_concurrency: u32,
    /// Bytes at the start of each pooled linear memory reset by memset rather than returned
    /// to the kernel between calls (speed against resident memory per pool slot).
    pub keep_resident: usize,
    /// Threads of the policies' own tokio runtime, where every call runs, so that a hostile
    /// policy never holds a worker of the daemon's runtime (nor more than this many cores). 0
    /// runs calls inline on the caller's runtime instead, for tests and benchmarks only (no
    /// thread hop; a looping policy then shares the caller's workers, yielding every tick).
    pub workers: usize,
    /// Largest module file, bytes.
    pub max_module: usize,
    /// Most functions a module may define.
    pub max_functions: u32,
    /// Largest function body, bytes of code: compile time grows with it.
    pub max_function_size: usize,
    /// Most locals one function may declare.
    pub max_locals: u32,
    /// Longest a module may take to compile; past it the load fails (compiling cannot be
    /// interrupted: the compile is abandoned and finishes on its own thread).
    pub compile_timeout: Duration,
}

impl Default for PolicyLimits {
    fn default() -> Self {
        PolicyLimits {
            cpu: Duration::from_millis(50),
            epoch_tick: Duration::from_millis(1),
            fuel: None,
            memory: 16 << 20,
            table_elements: 10_000,
            wasm_stack: 256 << 10,
            timeout: Duration::from_secs(5),
            max_input: 64 << 10,
            max_output: 16 << 10,
            max_host_calls: 16,
            max_concurrency: 32,
            keep_resident: 192 << 10,
            workers: 1,
            max_module: 16 << 20,
            max_functions: 20_000,
            max_function_size: 512 << 10,
            max_locals: 50_000,
            compile_timeout: Duration::from_secs(10),
        }
    }
}

/// A policy failure: at load time (bad module, bad reference) or per call (limit, trap, output).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The module file could not be read.
    #[error("{path}: cannot read policy: {source}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The module does not compile.
    #[error("{path}: not a valid WASM module: {message}", path = path.display())]
    Compile {
        /// The file.
        path: PathBuf,
        /// wasmtime's reason.
        message: String,
    },
    /// The module imports something besides `hav::host_call`, `hav::now_ms`, `hav::log`, or one of
    /// those with the wrong type.
    #[error(
        "{path}: forbidden import {module}::{name} ({kind}); a policy may import only hav::host_call, hav::now_ms and hav::log",
        path = path.display()
    )]
    ForbiddenImport {
        /// The file.
        path: PathBuf,
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// Its kind and type.
        kind: String,
    },
    /// A required export is missing.
    #[error("{path}: missing export `{name}`", path = path.display())]
    MissingExport {
        /// The file.
        path: PathBuf,
        /// The export.
        name: &'static str,
    },
    /// An export has the wrong type.
    #[error("{path}: export `{name}` is {found}, expected {expected}", path = path.display())]
    ExportType {
        /// The file.
        path: PathBuf,
        /// The export.
        name: &'static str,
        /// What it is.
        found: String,
        /// What the ABI wants.
        expected: String,
    },
    /// The module exports neither entry.
    #[error("{path}: exports neither hav_check nor hav_priority", path = path.display())]
    NoEntry {
        /// The file.
        path: PathBuf,
    },
    /// The module was built for another ABI version.
    #[error("{path}: built for policy ABI version {found}, this host speaks version {expected}", path = path.display())]
    AbiVersion {
        /// The file.
        path: PathBuf,
        /// What `hav_abi_version` returned.
        found: i64,
        /// [`hav_core::policy::ABI_VERSION`].
        expected: u32,
    },
    /// The module's initial memory is over the cap.
    #[error("policy {policy} ({path}): declares {declared} bytes of initial memory, more than the memory cap of {cap}", path = path.display())]
    MemoryTooLarge {
        /// The policy.
        policy: String,
        /// The file.
        path: PathBuf,
        /// Its initial memory.
        declared: u64,
        /// The cap.
        cap: usize,
    },
    /// The module's active data segments add up to more than the memory cap: every
    /// instantiation would copy them, or fail.
    #[error("policy {policy} ({path}): active data segments of {active} bytes, more than the memory cap of {cap}", path = path.display())]
    DataTooLarge {
        /// The policy.
        policy: String,
        /// The file.
        path: PathBuf,
        /// Sum of the active data segments' sizes.
        active: u64,
        /// The cap.
        cap: usize,
    },
    /// The module's code is past a compile limit (functions, function size, locals).
    #[error("policy {policy} ({path}): {message}", path = path.display())]
    TooComplex {
        /// The policy.
        policy: String,
        /// The file.
        path: PathBuf,
        /// Which limit, and by how much.
        message: String,
    },
    /// Compiling the module took longer than [`PolicyLimits::compile_timeout`].
    #[error("policy {policy} ({path}): not compiled within {timeout:?}: {message}", path = path.display())]
    CompileTimeout {
        /// The policy.
        policy: String,
        /// The file.
        path: PathBuf,
        /// The limit.
        timeout: Duration,
        /// What happened.
        message: String,
    },
    /// Two `--policy` files have the same name.
    #[error("two policies are named '{name}': {first} and {second}", first = first.display(), second = second.display())]
    DuplicateName {
        /// The name (file stem).
        name: String,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
    /// A config reference that does not resolve, or a policy used for an entry it lacks.
    #[error("{location}: {message}")]
    Config {
        /// Where the reference is.
        location: Location,
        /// What is wrong.
        message: String,
    },
    /// A call names a policy or vrrp_script this set does not have.
    #[error("unknown policy '{0}'")]
    Unknown(String),
    /// The policy does not export the entry a call needs.
    #[error("policy {policy} has no {entry} entry")]
    NoSuchEntry {
        /// The policy.
        policy: String,
        /// The missing export.
        entry: &'static str,
    },
    /// The call used up its CPU budget (an infinite loop, say).
    #[error("policy {policy}: CPU budget of {budget} exhausted")]
    CpuBudget {
        /// The policy.
        policy: String,
        /// The budget, as configured.
        budget: String,
    },
    /// The call tried to grow memory past the cap.
    #[error("policy {policy}: memory cap of {cap} bytes exceeded")]
    Memory {
        /// The policy.
        policy: String,
        /// The cap.
        cap: usize,
    },
    /// The WASM stack overflowed (deep recursion).
    #[error("policy {policy}: WASM stack overflow (recursion too deep)")]
    StackOverflow {
        /// The policy.
        policy: String,
    },
    /// The guest trapped.
    #[error("policy {policy}: trap: {message}")]
    Trap {
        /// The policy.
        policy: String,
        /// The trap.
        message: String,
    },
    /// The call, host calls included, ran past its wall-clock limit.
    #[error("policy {policy}: wall-clock timeout of {timeout:?} exceeded")]
    Timeout {
        /// The policy.
        policy: String,
        /// The limit.
        timeout: Duration,
    },
    /// The request is over the input cap.
    #[error("policy {policy}: input of {len} bytes exceeds the cap of {cap}")]
    InputTooLarge {
        /// The policy.
        policy: String,
        /// Its size.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// The response is over the output cap.
    #[error("policy {policy}: output of {len} bytes exceeds the cap of {cap}")]
    OutputTooLarge {
        /// The policy.
        policy: String,
        /// Its size.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// The response is not a valid postcard message, or buffers point outside memory.
    #[error("policy {policy}: bad output: {message}")]
    BadOutput {
        /// The policy.
        policy: String,
        /// What is wrong.
        message: String,
    },
    /// wasmtime could not be set up.
    #[error("policy engine: {0}")]
    Engine(String),
}

/// A verdict with the policy's message, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<V> {
    /// The verdict.
    pub verdict: V,
    /// The policy's reason.
    pub message: String,
}

/// A module compiled and checked once, shared by every policy (and every set) loaded from the
/// same bytes with the same limits.
struct Compiled {
    pre: InstancePre<RunState>,
    entries: runtime::Entries,
}

/// One policy: a name and file, and its compiled module.
struct Policy {
    name: Arc<str>,
    path: PathBuf,
    compiled: Arc<Compiled>,
}

/// A `vrrp_script` whose source is a policy.
struct ScriptPolicy {
    policy: Arc<Policy>,
    args: String,
    allowed: Arc<[PolicyTarget]>,
    timeout: Duration,
}

/// The set's own runtime; shut down without blocking when the set is dropped (which may
/// happen inside another runtime).
struct PolicyRuntime(Option<tokio::runtime::Runtime>);

impl Drop for PolicyRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Aborts the policy task when the caller stops waiting for it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// SHA-256 of a module file.
type Digest = [u8; 32];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Caches and log limiters: nothing a panic could leave half-done matters.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What every set loaded with the same limits shares, across reloads: the engine (its
/// pooling allocator, sized for `max_concurrency` runs, so the run slots are shared too), the
/// epoch ticker, the runtime calls run on, the compiled modules and the log limiters.
struct Shared {
    limits: PolicyLimits,
    engine: Engine,
    linker: Linker<RunState>,
    rt: PolicyRuntime,
    slots: Arc<tokio::sync::Semaphore>,
    /// Compiled modules by file digest, while some set uses them.
    modules: Mutex<HashMap<Digest, Weak<Compiled>>>,
    compiled: AtomicU64,
    reused: AtomicU64,
    guest_log: Arc<GuestLog>,
    /// Per (policy, caller): the lines about runs that failed or had the host refuse something.
    run_log: Mutex<KeyedRateLimit<String>>,
    /// Per (policy, caller): the debug lines about runs that went well.
    ok_log: Mutex<KeyedRateLimit<String>>,
    // Dropped last: stops the epoch thread.
    _ticker: EpochTicker,
}

impl Shared {
    fn new(limits: &PolicyLimits) -> Result<Shared, PolicyError> {
        let engine = runtime::engine(limits)?;
        let ticker = EpochTicker::start(engine.clone(), limits.epoch_tick)?;
        let linker = runtime::linker(&engine)?;
        let rt = if limits.workers == 0 {
            None
        } else {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(limits.workers)
                .thread_name("hav-policy")
                // Poll I/O and timers often: guests yield every epoch tick.
                .event_interval(8)
                .enable_all()
                .build()
                .map_err(|e| PolicyError::Engine(format!("policy runtime: {e}")))?;
            Some(rt)
        };
        Ok(Shared {
            limits: limits.clone(),
            engine,
            linker,
            rt: PolicyRuntime(rt),
            slots: Arc::new(tokio::sync::Semaphore::new(limits.max_concurrency.max(1) as usize)),
            modules: Mutex::new(HashMap::new()),
            compiled: AtomicU64::new(0),
            reused: AtomicU64::new(0),
            guest_log: Arc::new(Mutex::new(KeyedRateLimit::new(runtime::GUEST_LOG_BURST, runtime::GUEST_LOG_PERIOD, 4096))),
            run_log: Mutex::new(KeyedRateLimit::new(RUN_LOG_BURST, RUN_LOG_PERIOD, 4096)),
            ok_log: Mutex::new(KeyedRateLimit::new(OK_LOG_BURST, RUN_LOG_PERIOD, 4096)),
            _ticker: ticker,
        })
    }

    /// The shared engine for `limits`: the one a live set already uses, or a new one.
    fn for_limits(limits: &PolicyLimits) -> Result<Arc<Shared>, PolicyError> {
        static ALL: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());
        let mut all = lock(&ALL);
        all.retain(|w| w.strong_count() > 0);
        if let Some(s) = all.iter().filter_map(Weak::upgrade).find(|s| s.limits == *limits) {
            return Ok(s);
        }
        let s = Arc::new(Shared::new(limits)?);
        all.push(Arc::downgrade(&s));
        Ok(s)
    }

    fn cached(&self, digest: &Digest) -> Option<Arc<Compiled>> {
        let mut modules = lock(&self.modules);
        modules.retain(|_, w| w.strong_count() > 0);
        modules.get(digest).and_then(Weak::upgrade)
    }
}

struct Inner {
    shared: Arc<Shared>,
    /// By `--policy` name, and by the spec string config references use.
    policies: HashMap<String, Arc<Policy>>,
    scripts: HashMap<String, ScriptPolicy>,
    history: Mutex<HashMap<(String, String, SocketAddr), History>>,
}

/// Modules compiled and reused by the loads of sets sharing one engine, since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleStats {
    /// Modules compiled.
    pub compiled: u64,
    /// Module files found already compiled (same bytes): not compiled again.
    pub reused: u64,
}

/// Who a run was for, in its log line.
#[derive(Debug, Clone, Copy)]
enum Caller<'a> {
    /// A WASM_CHECK of this real server.
    Check(SocketAddr),
    /// A vrrp_script, for this instance.
    Script { script: &'a str, instance: &'a str },
}

impl std::fmt::Display for Caller<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Check(t) => write!(f, "check {t}"),
            Caller::Script { script, .. } => write!(f, "vrrp_script {script}"),
        }
    }
}

/// The loaded policies of a daemon: cheap to clone, shareable across tasks.
#[derive(Clone)]
pub struct PolicySet {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.inner.policies.keys().collect();
        names.sort();
        f.debug_struct("PolicySet").field("policies", &names).field("limits", &self.inner.shared.limits).finish()
    }
}

fn is_path(spec: &str) -> bool {
    spec.contains('/') || spec.ends_with(".wasm") || spec.ends_with(".wat")
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

struct Loader {
    shared: Arc<Shared>,
    policies: HashMap<String, Arc<Policy>>,
    by_path: HashMap<PathBuf, Arc<Policy>>,
}

impl Loader {
    fn load_file(&mut self, path: &Path, name: &str) -> Result<Arc<Policy>, PolicyError> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(p) = self.by_path.get(&key) {
            return Ok(p.clone());
        }
        let sh = &*self.shared;
        let name: Arc<str> = Arc::from(name);
        let bytes = runtime::read_module(path, &sh.limits)?;
        let digest: Digest = ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref().try_into().unwrap_or([0; 32]);
        let (compiled, fresh) = match sh.cached(&digest) {
            Some(c) => {
                sh.reused.fetch_add(1, Ordering::Relaxed);
                (c, false)
            }
            None => {
                let binary = runtime::binary(bytes, path)?;
                runtime::inspect(&binary, &name, path, &sh.limits)?;
                let module = runtime::compile(&sh.engine, binary, &name, path, &sh.limits)?;
                let entries = runtime::validate(&module, path)?;
                let pre = sh.linker.instantiate_pre(&module).map_err(|e| PolicyError::Compile {
                    path: path.to_path_buf(),
                    message: format!("{e:#}"),
                })?;
                runtime::check_abi(&sh.engine, &pre, &sh.limits, &name, path, &sh.guest_log)?;
                let c = Arc::new(Compiled { pre, entries });
                lock(&sh.modules).insert(digest, Arc::downgrade(&c));
                sh.compiled.fetch_add(1, Ordering::Relaxed);
                (c, true)
            }
        };
        let entries = compiled.entries;
        let p = Arc::new(Policy { name, path: path.to_path_buf(), compiled });
        tracing::info!(policy = &*p.name, path = %path.display(), check = entries.check, priority = entries.priority, compiled = fresh, "policy loaded");
        self.by_path.insert(key, p.clone());
        Ok(p)
    }

    /// Resolves a config reference: a `--policy` name, or a path relative to the config file.
    fn resolve(&mut self, spec: &str, location: &Location) -> Result<Arc<Policy>, PolicyError> {
        if let Some(p) = self.policies.get(spec) {
            return Ok(p.clone());
        }
        if !is_path(spec) {
            let mut known: Vec<&str> = self.policies.keys().map(String::as_str).collect();
            known.sort();
            let known = if known.is_empty() { "none loaded; use --policy FILE or a path".into() } else { known.join(", ") };
            return Err(PolicyError::Config {
                location: location.clone(),
                message: format!("unknown policy '{spec}' (known: {known})"),
            });
        }
        let mut path = PathBuf::from(spec);
        if path.is_relative() {
            if let Some(dir) = location.file.parent() {
                path = dir.join(path);
            }
        }
        let p = self.load_file(&path, spec).map_err(|e| PolicyError::Config { location: location.clone(), message: e.to_string() })?;
        self.policies.insert(spec.to_string(), p.clone());
        Ok(p)
    }
}

impl PolicySet {
    /// Loads the `--policy` files (named by their file stem) and every policy the config
    /// references (WASM_CHECK `policy`, `vrrp_script` `policy`), with the default limits.
    ///
    /// Each module is checked before compiling (size, code, initial memory, data segments),
    /// compiled unless a live set already compiled the same bytes, and checked after: imports,
    /// exports and ABI version. Blocks the calling thread while compiling (call it at startup or
    /// from `spawn_blocking`; never on a thread with deadlines).
    pub fn load(paths: &[PathBuf], config: &Config) -> Result<PolicySet, PolicyError> {
        PolicySet::load_with(paths, config, PolicyLimits::default())
    }

    /// [`PolicySet::load`] with explicit limits.
    pub fn load_with(paths: &[PathBuf], config: &Config, limits: PolicyLimits) -> Result<PolicySet, PolicyError> {
        let shared = Shared::for_limits(&limits)?;
        let mut l = Loader { shared, policies: HashMap::new(), by_path: HashMap::new() };
        for path in paths {
            let name = stem(path);
            let p = l.load_file(path, &name)?;
            if let Some(first) = l.policies.get(&name) {
                if !Arc::ptr_eq(first, &p) {
                    return Err(PolicyError::DuplicateName { name, first: first.path.clone(), second: path.clone() });
                }
            }
            l.policies.insert(name, p);
        }
        for vs in &config.virtual_servers {
            for rs in &vs.real_servers {
                for c in &rs.checkers {
                    if let crate::config::check::CheckKind::Wasm(w) = &c.kind {
                        let p = l.resolve(&w.policy, &c.location)?;
                        if !p.compiled.entries.check {
                            return Err(PolicyError::Config {
                                location: c.location.clone(),
                                message: format!("policy '{}' has no check entry ({EXPORT_CHECK})", w.policy),
                            });
                        }
                    }
                }
            }
        }
        let mut scripts = HashMap::new();
        for s in &config.vrrp_scripts {
            let Some(spec) = &s.policy else { continue };
            let p = l.resolve(spec, &s.location)?;
            if !p.compiled.entries.priority {
                return Err(PolicyError::Config {
                    location: s.location.clone(),
                    message: format!("policy '{spec}' has no priority entry ({EXPORT_PRIORITY})"),
                });
            }
            scripts.insert(
                s.name.clone(),
                ScriptPolicy {
                    policy: p,
                    args: s.args.clone().unwrap_or_default(),
                    allowed: s.targets.clone().into(),
                    timeout: s.timeout.unwrap_or(s.interval),
                },
            );
        }
        Ok(PolicySet {
            inner: Arc::new(Inner { shared: l.shared, policies: l.policies, scripts, history: Mutex::new(HashMap::new()) }),
        })
    }

    /// The names a config or caller can use (`--policy` names and config paths), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.inner.policies.keys().cloned().collect();
        v.sort();
        v
    }

    /// The limits in force.
    pub fn limits(&self) -> &PolicyLimits {
        &self.inner.shared.limits
    }

    /// Modules compiled and reused by every set sharing this set's engine (the same limits).
    pub fn module_stats(&self) -> ModuleStats {
        let sh = &self.inner.shared;
        ModuleStats { compiled: sh.compiled.load(Ordering::Relaxed), reused: sh.reused.load(Ordering::Relaxed) }
    }

    fn policy(&self, name: &str) -> Result<Arc<Policy>, PolicyError> {
        self.inner.policies.get(name).cloned().ok_or_else(|| PolicyError::Unknown(name.to_string()))
    }

    /// Runs `entry` of `policy` on the policy runtime (never the caller's, unless
    /// [`PolicyLimits::workers`] is 0), within `timeout` (wall clock). Returns what the host
    /// refused or dropped during the run too, even when the run was cut short.
    async fn run(
        &self,
        policy: &Arc<Policy>,
        entry: &'static str,
        input: Vec<u8>,
        allowed: Arc<[PolicyTarget]>,
        timeout: Duration,
    ) -> (Result<Vec<u8>, PolicyError>, RunReport) {
        let shared = self.inner.shared.clone();
        let report = Arc::new(Mutex::new(RunReport::default()));
        let job = {
            let (policy, report) = (policy.clone(), report.clone());
            async move {
                let spec = RunSpec { policy: &policy.name, allowed: Some(allowed), timeout, report, guest_log: shared.guest_log.clone() };
                let work = async {
                    let _slot = shared.slots.acquire().await.map_err(|_| PolicyError::Engine("policy set closed".into()))?;
                    runtime::invoke(&shared.engine, &policy.compiled.pre, &shared.limits, &spec, entry, &input).await
                };
                match tokio::time::timeout(timeout, work).await {
                    Ok(r) => r,
                    Err(_) => Err(PolicyError::Timeout { policy: policy.name.to_string(), timeout }),
                }
            }
        };
        let r = match &self.inner.shared.rt.0 {
            None => job.await,
            Some(rt) => {
                // The whole call, instantiation included, runs there; I/O and timers too.
                let mut task = AbortOnDrop(rt.spawn(job));
                match (&mut task.0).await {
                    Ok(r) => r,
                    Err(e) => Err(PolicyError::Engine(format!("policy task failed: {e}"))),
                }
            }
        };
        let report = lock(&report).clone();
        (r, report)
    }

    /// Logs one run: a debug line when it went well, else one line saying why (the error, what
    /// the host refused or dropped); both rate-limited per policy and caller.
    fn log_run<V: std::fmt::Debug>(
        &self,
        policy: &str,
        caller: Caller<'_>,
        r: &Result<Outcome<V>, PolicyError>,
        report: &RunReport,
        start: Instant,
    ) {
        let elapsed = start.elapsed();
        let key = format!("{policy}\0{caller}");
        if let (Ok(o), true) = (r, report.is_empty()) {
            if !tracing::enabled!(tracing::Level::DEBUG) || lock(&self.inner.shared.ok_log).check(&key, Instant::now()).is_none() {
                return;
            }
            match caller {
                Caller::Check(target) => tracing::debug!(policy, %target, verdict = ?o.verdict, message = %runtime::escape_guest(&o.message), ?elapsed, "policy check"),
                Caller::Script { script, instance } => tracing::debug!(policy, script, instance, verdict = ?o.verdict, message = %runtime::escape_guest(&o.message), ?elapsed, "policy priority"),
            }
            return;
        }
        let Some(held_back) = lock(&self.inner.shared.run_log).check(&key, Instant::now()) else { return };
        let what = match r {
            Err(e) if report.is_empty() => e.to_string(),
            Err(e) => format!("{e}; {report}"),
            Ok(o) => format!("verdict {:?}, but {report}", o.verdict),
        };
        let failed = if r.is_err() { "failed" } else { "ran" };
        match caller {
            Caller::Check(target) => tracing::warn!(policy, %target, held_back, ?elapsed, "policy check {failed}: {what}"),
            Caller::Script { script, instance } => {
                tracing::warn!(policy, script, instance, held_back, ?elapsed, "priority policy {failed}: {what}")
            }
        }
    }

    async fn call_check(
        &self,
        policy: &str,
        target: CheckTarget,
        args: &str,
        extra: &[PolicyTarget],
        history: History,
        timeout: Duration,
    ) -> (Result<Outcome<CheckVerdict>, PolicyError>, RunReport) {
        let p = match self.policy(policy) {
            Ok(p) => p,
            Err(e) => return (Err(e), RunReport::default()),
        };
        if !p.compiled.entries.check {
            return (Err(PolicyError::NoSuchEntry { policy: policy.to_string(), entry: EXPORT_CHECK }), RunReport::default());
        }
        let req = CheckRequest {
            target: Target { addr: target.addr.ip(), port: target.addr.port(), proto: target.proto() },
            name: policy,
            args,
            history,
            now_ms: runtime::mono_ms(),
        };
        let input = match postcard::to_allocvec(&req) {
            Ok(i) => i,
            Err(e) => return (Err(PolicyError::Engine(format!("encode request: {e}"))), RunReport::default()),
        };
        let allowed: Vec<PolicyTarget> = target.allowed().into_iter().chain(extra.iter().copied()).collect();
        let (out, report) = self.run(&p, EXPORT_CHECK, input, allowed.into(), timeout).await;
        let r = out.and_then(|out| {
            let resp: CheckResponse<'_> = postcard::from_bytes(&out)
                .map_err(|e| PolicyError::BadOutput { policy: policy.to_string(), message: format!("not a CheckResponse: {e}") })?;
            Ok(Outcome { verdict: resp.verdict, message: resp.message.to_string() })
        });
        (r, report)
    }

    /// Runs the check entry of `policy` (a name as [`PolicySet::names`] lists) against
    /// `target` (a `SocketAddr` is a real server of a TCP virtual server), within `timeout`
    /// (wall clock, host calls included). Host calls may reach `target` by the kinds its
    /// protocol implies, and `extra` by the kinds each entry lists; nothing else. `history` is
    /// what the caller remembers of earlier checks. A failed run is logged here, once.
    pub async fn run_check(
        &self,
        policy: &str,
        target: impl Into<CheckTarget>,
        args: &str,
        extra: &[PolicyTarget],
        history: History,
        timeout: Duration,
    ) -> Result<Outcome<CheckVerdict>, PolicyError> {
        let target: CheckTarget = target.into();
        let start = Instant::now();
        let (r, report) = self.call_check(policy, target, args, extra, history, timeout).await;
        self.log_run(policy, Caller::Check(target.addr), &r, &report, start);
        r
    }

    /// Runs a WASM_CHECK against real server `target`: its policy, `args`, `targets` and
    /// `protocol` apply, and the set keeps the history of earlier results per (policy, args, target). A `Down`
    /// verdict is `Ok(Health::Down)`; a failed policy is `Err(reason)` (logged here, once),
    /// which counts as a failed check.
    pub async fn check(
        &self,
        check: &crate::config::check::WasmCheck,
        target: SocketAddr,
        timeout: Duration,
    ) -> Result<Health, String> {
        let key = (check.policy.clone(), check.args.clone().unwrap_or_default(), target);
        let history = lock(&self.inner.history).get(&key).copied().unwrap_or_default();
        let timeout = check.timeout.unwrap_or(timeout);
        let server = CheckTarget { addr: target, protocol: check.protocol };
        let r = self.run_check(&check.policy, server, &key.1, &check.targets, history, timeout).await;
        let verdict = r.as_ref().ok().map(|o| o.verdict);
        {
            let mut h = lock(&self.inner.history);
            let e = h.entry(key).or_default();
            match verdict {
                Some(CheckVerdict::Up) | Some(CheckVerdict::Weight(_)) => {
                    e.successes = e.successes.saturating_add(1);
                    e.failures = 0;
                }
                _ => {
                    e.failures = e.failures.saturating_add(1);
                    e.successes = 0;
                }
            }
            e.last = Some(verdict.unwrap_or(CheckVerdict::Down));
        }
        match r {
            Ok(o) => Ok(match o.verdict {
                CheckVerdict::Up => Health::Up,
                CheckVerdict::Down => Health::Down,
                CheckVerdict::Weight(w) => Health::UpWeight(w),
            }),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Runs the priority entry for `vrrp_script` `script` (its policy, `args`, `targets` and
    /// timeout apply; `req.args` is replaced by the script's). When no vrrp_script has that name,
    /// `script` names a policy directly, with no host calls allowed and the default timeout.
    ///
    /// The policy runs on the policy runtime, not the caller's. A failed run is logged here,
    /// once (rate-limited); the caller need not log it again.
    pub async fn priority(&self, script: &str, req: PriorityRequest<'_>) -> Result<Outcome<PriorityVerdict>, PolicyError> {
        let start = Instant::now();
        let (policy, args, allowed, timeout) = match self.inner.scripts.get(script) {
            Some(s) => (s.policy.clone(), s.args.as_str(), s.allowed.clone(), s.timeout),
            None => (self.policy(script)?, req.args, Arc::from(Vec::new()), self.inner.shared.limits.timeout),
        };
        if !policy.compiled.entries.priority {
            return Err(PolicyError::NoSuchEntry { policy: policy.name.to_string(), entry: EXPORT_PRIORITY });
        }
        let req = PriorityRequest { args, now_ms: runtime::mono_ms(), ..req };
        let input = postcard::to_allocvec(&req).map_err(|e| PolicyError::Engine(format!("encode request: {e}")))?;
        let (out, report) = self.run(&policy, EXPORT_PRIORITY, input, allowed, timeout).await;
        let r = out.and_then(|out| {
            let resp: PriorityResponse<'_> = postcard::from_bytes(&out).map_err(|e| PolicyError::BadOutput {
                policy: policy.name.to_string(),
                message: format!("not a PriorityResponse: {e}"),
            })?;
            Ok(Outcome { verdict: resp.verdict, message: resp.message.to_string() })
        });
        self.log_run(&policy.name, Caller::Script { script, instance: req.instance }, &r, &report, start);
        r
    }
}

impl crate::health::PolicyRunner for PolicySet {
    fn check(
        &self,
        check: &crate::config::check::WasmCheck,
        target: SocketAddr,
        timeout: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Health, String>> + Send>> {
        let set = self.clone();
        let check = check.clone();
        Box::pin(async move { set.check(&check, target, timeout).await })
    }
}
