//! The preset sandbox: one wasmtime engine, and every call into a preset bounded in time, memory
//! and output.
//!
//! A preset is untrusted code. It gets no preopened directories, no environment, no arguments and
//! no network; its clocks are frozen and its randomness is a fixed seed so the same request always
//! gives the same plan. Each call runs in a fresh instance (cheap through `InstancePre`), under an
//! epoch deadline and a memory cap counting all its linear memories together; a trapped instance
//! is simply dropped.
//!
//! The deadline holds in host calls too, because no host call a preset can make blocks: stdin is
//! closed, stdout and stderr are taken into the call's capped log at once, the filesystem and
//! sockets that language runtimes import are linked with nothing behind them (every call fails at
//! once, see [`link_denied_wasi`]), and waiting on the monotonic clock (`std::thread::sleep`,
//! a poll with a timeout) is virtual: the pollable is ready at once and the time asked for is
//! counted against the call's deadline, so a preset that asks to wait past it fails with
//! [`PresetFault::Deadline`] as surely as one that spins. Everything else runs in wasm, where
//! epochs interrupt it.
//!
//! Instances come from a fixed pool through back-pressure: a call waits (boundedly) for a free
//! instance of its [`Lane`], and dry runs have a share of their own so they never take the
//! instances jobs plan with. Not getting an instance is the host's fault, never the preset's.
//!
//! Not here: what a preset's plan may contain (that is `plan::validate`) or which presets exist
//! (that is `preset::registry`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use semver::{Version, VersionReq};
use wasmtime::component::{Component, HasData, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolConcurrencyLimitError, PoolingAllocationConfig,
    ResourceLimiter, Store,
};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::cache::ArtifactCache;
use super::compile::{self, CompileCost, Compiler, compile_config};
use super::{v1, v2};
use crate::error::ErrorCode;
use crate::model;

/// How often the engine's epoch advances; deadlines are whole multiples of it.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits applied to every call into a preset.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    pub deadline: Duration,
    /// Bytes all linear memories of one instance may use together.
    pub memory_bytes: usize,
    /// Bytes of log a single call may write; the rest is dropped with a note.
    pub log_bytes: usize,
    /// Preset instances jobs and loading may have alive at once ([`Lane::Job`]).
    pub max_instances: u32,
    /// Preset instances dry runs may have alive at once ([`Lane::DryRun`]), on top of
    /// `max_instances`: the pooling allocator's pool holds both shares.
    pub dry_run_instances: u32,
    /// How long a call waits for a free instance of its lane before it fails
    /// [`PresetFault::Overloaded`].
    pub instance_wait: Duration,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(100),
            memory_bytes: 64 << 20,
            log_bytes: 64 << 10,
            max_instances: 64,
            dry_run_instances: 2,
            instance_wait: Duration::from_secs(10),
        }
    }
}

/// Whose share of the instance pool a call takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A job's planning, and `describe` when a component is loaded.
    Job,
    /// A dry run (`POST /v1/presets/.../plan`): open to every API client, so it has a share of
    /// its own and can never starve the workers.
    DryRun,
}

/// A line a preset logged during a call.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PresetLog {
    pub level: &'static str,
    pub message: String,
}

/// Why a call into a preset did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum PresetFault {
    #[error("the preset ran past its {0:?} deadline")]
    Deadline(Duration),
    #[error("the preset trapped: {0}")]
    Trap(String),
    #[error("the preset could not be instantiated: {0}")]
    Instantiate(String),
    /// No preset instance was free in time: the host is busy, the preset did nothing wrong.
    #[error("no preset instance was free ({0}); the host is busy, retry later")]
    Overloaded(String),
}

impl PresetFault {
    /// The code a job or request fails with: the preset's own faults are permanent, the host's
    /// are retryable.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Deadline(_) | Self::Trap(_) | Self::Instantiate(_) => ErrorCode::PresetFailed,
            Self::Overloaded(_) => ErrorCode::HostOverloaded,
        }
    }
}

/// A wait that would end past the call's deadline; raised by the virtual monotonic clock.
#[derive(Debug, thiserror::Error)]
#[error("the preset asked to wait {waited:?} in all, past its {deadline:?} deadline")]
struct WaitPastDeadline {
    waited: Duration,
    deadline: Duration,
}

/// Per-call state of a sandboxed instance.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
    logs: Vec<PresetLog>,
    log_budget: usize,
    /// What the preset writes to stdout and stderr, on its way into `logs`.
    stdio: StdioLog,
    /// Time the preset has asked to wait on the monotonic clock during this call.
    waited: Duration,
    deadline: Duration,
}

impl Sandbox {
    /// A virtual wait: ready at once, its length counted against the deadline.
    fn wait(&mut self, nanos: u64) -> wasmtime::Result<Resource<DynPollable>> {
        self.waited = self.waited.saturating_add(Duration::from_nanos(nanos));
        if self.waited > self.deadline {
            return Err(wasmtime::Error::new(WaitPastDeadline {
                waited: self.waited,
                deadline: self.deadline,
            }));
        }
        let elapsed = self.table.push(Elapsed)?;
        subscribe(&mut self.table, elapsed)
    }
}

/// The monotonic clock a preset sees: frozen at zero, with virtual waits. wasmtime-wasi's own
/// sleeps for real in the host, where no epoch can interrupt it.
impl monotonic_clock::Host for Sandbox {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(0)
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(1_000_000_000)
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        // The clock reads zero, so an instant is also the wait until it.
        self.wait(when)
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.wait(duration)
    }
}

/// A clock pollable whose time has (virtually) come.
struct Elapsed;

#[wasmtime_wasi::async_trait]
impl Pollable for Elapsed {
    async fn ready(&mut self) {}
}

/// The memory cap of one instance: the sizes of all its linear memories added together
/// (wasmtime's `StoreLimits` caps each memory alone, so a component with several memories could
/// use the cap several times over).
struct MemoryCap {
    cap: usize,
    used: usize,
    /// Bytes granted by the last approved growth, given back if that growth then fails.
    last_granted: usize,
}

impl MemoryCap {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            used: 0,
            last_granted: 0,
        }
    }
}

/// Memories, tables and instances a store may create; a preset built by Rust needs a few.
const MAX_MEMORIES: usize = 4;
const MAX_TABLES: usize = 16;
const MAX_INSTANCES: usize = 16;
/// Elements one table may hold.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        let total = self.used.saturating_add(grow);
        if total > self.cap {
            // A trap, not a failed `memory.grow`: the preset learns nothing it could retry on.
            wasmtime::bail!(
                "the preset's memories would use {total} bytes together, over its cap of {} bytes",
                self.cap
            );
        }
        self.used = total;
        self.last_granted = grow;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.used -= std::mem::take(&mut self.last_granted);
        Err(error)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            wasmtime::bail!(
                "the preset's table would hold {desired} elements, over the cap of {MAX_TABLE_ELEMENTS}"
            );
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// A counting semaphore for one lane of the instance pool; calls run on blocking threads, so
/// waiting for a slot blocks too, for a bounded time.
struct Slots {
    free: Mutex<u32>,
    freed: Condvar,
}

/// A taken slot, given back when dropped.
struct Slot<'a>(&'a Slots);

impl Slots {
    fn new(n: u32) -> Self {
        Self {
            free: Mutex::new(n),
            freed: Condvar::new(),
        }
    }

    fn take(&self, wait: Duration) -> Option<Slot<'_>> {
        let free = self.free.lock().expect("slots lock");
        let (mut free, _) = self
            .freed
            .wait_timeout_while(free, wait, |free| *free == 0)
            .expect("slots lock");
        if *free == 0 {
            return None;
        }
        *free -= 1;
        Some(Slot(self))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().expect("slots lock") += 1;
        self.0.freed.notify_one();
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Sandbox {
    /// Keeps a line the preset logged, within the call's log budget. Each interface version's
    /// `host.log` import lands here.
    pub(super) fn record_log(&mut self, level: model::LogLevel, message: String) {
        // Lines the preset wrote to stdout or stderr before this call come first.
        self.drain_stdio(false);
        self.keep_log(level_name(level), message);
    }

    /// Moves the whole lines written to stdout and stderr into the log; with `all`, the
    /// unfinished last line of each too (the call is over).
    fn drain_stdio(&mut self, all: bool) {
        for (level, message) in self.stdio.take_lines(all) {
            self.keep_log(level, message);
        }
    }

    /// The call's log, stdout and stderr included.
    fn take_logs(&mut self) -> Vec<PresetLog> {
        self.drain_stdio(true);
        std::mem::take(&mut self.logs)
    }

    fn keep_log(&mut self, level: &'static str, message: String) {
        if self.log_budget == 0 {
            return;
        }
        if message.len() >= self.log_budget {
            let mut cut = self.log_budget;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            self.logs.push(PresetLog {
                level,
                message: format!(
                    "{} [log limit reached; the rest was dropped]",
                    &message[..cut]
                ),
            });
            self.log_budget = 0;
            return;
        }
        self.log_budget -= message.len();
        self.logs.push(PresetLog { level, message });
    }
}

fn level_name(level: model::LogLevel) -> &'static str {
    match level {
        model::LogLevel::Debug => "debug",
        model::LogLevel::Info => "info",
        model::LogLevel::Warn => "warn",
        model::LogLevel::Error => "error",
    }
}

/// Which of the preset's output streams a write came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StdioStream {
    Stdout,
    Stderr,
}

impl StdioStream {
    /// stdout is what a runtime prints (`print`, `console.log`): `info`. stderr carries warnings
    /// and tracebacks (Python's, a JS exception's): `warn`, not `error`, because a runtime also
    /// writes harmless notices there; a traceback that fails the call is already a
    /// `PRESET_FAILED` of its own.
    fn level(self) -> &'static str {
        match self {
            Self::Stdout => "info",
            Self::Stderr => "warn",
        }
    }
}

/// A preset's stdout and stderr, cut into lines for its log (language runtimes print there:
/// Python's tracebacks, `console.error`). Writes never block and never fail: they are taken in
/// whole, and what does not fit the call's log budget is dropped here already, so a preset
/// printing in a loop holds at most `log_bytes` of it in the host, unfinished lines included.
/// The lines reach the log, in order with `host.log` lines, through [`Sandbox::record_log`] and
/// at the end of the call.
#[derive(Clone)]
struct StdioLog(Arc<Mutex<StdioLines>>);

struct StdioLines {
    /// Whole lines not yet moved into the log.
    lines: Vec<(&'static str, String)>,
    /// The unfinished last line of stdout and of stderr.
    partial: [Vec<u8>; 2],
    /// Bytes still taken in; past them, writes are dropped, and a note says so.
    budget: usize,
    /// Some bytes were dropped for the budget.
    dropped: bool,
}

impl StdioLog {
    fn new(log_bytes: usize) -> Self {
        Self(Arc::new(Mutex::new(StdioLines {
            lines: Vec::new(),
            partial: [Vec::new(), Vec::new()],
            budget: log_bytes,
            dropped: false,
        })))
    }

    fn stream(&self, stream: StdioStream) -> StdioWriter {
        StdioWriter {
            log: self.clone(),
            stream,
        }
    }

    fn write(&self, stream: StdioStream, mut bytes: &[u8]) {
        let mut state = self.0.lock().expect("stdio log lock");
        let state = &mut *state;
        if bytes.len() > state.budget {
            bytes = &bytes[..state.budget];
            state.dropped = true;
        }
        state.budget -= bytes.len();
        let partial = &mut state.partial[stream as usize];
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            partial.extend_from_slice(chunk);
            if chunk.ends_with(b"\n") {
                let line = std::mem::take(partial);
                push_line(&mut state.lines, stream, &line);
            }
        }
    }

    /// The whole lines written so far; with `all`, each stream's unfinished line too.
    fn take_lines(&self, all: bool) -> Vec<(&'static str, String)> {
        let mut state = self.0.lock().expect("stdio log lock");
        let state = &mut *state;
        if all {
            for stream in [StdioStream::Stdout, StdioStream::Stderr] {
                let line = std::mem::take(&mut state.partial[stream as usize]);
                push_line(&mut state.lines, stream, &line);
            }
            if std::mem::take(&mut state.dropped) {
                state.lines.push((
                    "warn",
                    "[stdout/stderr past the log limit were dropped]".to_owned(),
                ));
            }
        }
        std::mem::take(&mut state.lines)
    }
}

/// Keeps a line without its line ending; blank lines are not kept.
fn push_line(lines: &mut Vec<(&'static str, String)>, stream: StdioStream, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\n', '\r']);
    if !text.trim().is_empty() {
        lines.push((stream.level(), text.to_owned()));
    }
}

/// One of the preset's output streams, as wasmtime-wasi wants it: always ready, every write
/// taken at once.
struct StdioWriter {
    log: StdioLog,
    stream: StdioStream,
}

/// The most a preset may write in one `write` call (WASI's "permit").
const STDIO_PERMIT: usize = 64 << 10;

impl wasmtime_wasi::cli::IsTerminal for StdioWriter {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for StdioWriter {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        Box::new(self.log.stream(self.stream))
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.log.stream(self.stream))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StdioWriter {
    async fn ready(&mut self) {}
}

impl wasmtime_wasi::p2::OutputStream for StdioWriter {
    fn write(&mut self, bytes: bytes::Bytes) -> wasmtime_wasi::p2::StreamResult<()> {
        self.log.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> wasmtime_wasi::p2::StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> wasmtime_wasi::p2::StreamResult<usize> {
        Ok(STDIO_PERMIT)
    }
}

impl tokio::io::AsyncWrite for StdioWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.log.write(self.stream, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A compiled preset component, ready to be instantiated many times (the instantiation work,
/// `InstancePre`, is done once here and reused by every call).
///
/// One variant per major version of `mediahost:preset`, each with its adapter module (`v1`,
/// `v2`), which converts the call's types to and from the host's model.
pub enum CompiledPreset {
    V1(v1::WorldPre<Sandbox>),
    V2(v2::WorldPre<Sandbox>),
}

/// Where a compiled component came from, for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompiledFrom {
    /// Compiled from the component's bytes (and written to the artifact cache).
    Compiled,
    /// Deserialized from the on-disk artifact cache.
    Cache,
}

/// A component ready to run, with what was learnt loading it.
pub struct Loaded {
    pub compiled: CompiledPreset,
    pub from: CompiledFrom,
    /// What compiling (or loading the cached artifact) cost.
    pub cost: CompileCost,
    /// The `mediahost:preset` version the component was built for.
    pub interface: Version,
}

/// The interface versions of `mediahost:preset` this host runs, as a semver range.
pub const SUPPORTED_INTERFACE: &str = ">=1.0.0, <3.0.0";

/// Why a component cannot be run as a preset.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LoadError {
    pub code: ErrorCode,
    pub message: String,
}

impl LoadError {
    /// A `PRESET_INVALID` refusal; the message is kept to one line (wasmtime's can span many).
    pub fn invalid(message: impl Into<String>) -> Self {
        let message: String = message.into();
        Self {
            code: ErrorCode::PresetInvalid,
            message: message.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<Sandbox>,
    limits: SandboxLimits,
    cache: Option<ArtifactCache>,
    compiler: Compiler,
    /// Held while a component compiles: one compile at a time in a process, however many
    /// publishes, reconciles and lookups want one (each costs seconds and hundreds of MiB).
    compiling: Mutex<()>,
    /// Compiles under way now, and the most there ever were at once (always 1: a check).
    compiles_now: AtomicUsize,
    most_compiles_at_once: AtomicUsize,
    job_slots: Slots,
    dry_run_slots: Slots,
    _ticker: Arc<EpochTicker>,
}

struct EpochTicker {
    stop: Mutex<bool>,
}

/// An artifact file a compile child wrote, removed when dropped unless taken.
struct Artifact(Option<PathBuf>);

impl Artifact {
    fn path(&self) -> &std::path::Path {
        self.0.as_deref().expect("an artifact not yet taken")
    }

    fn take(&mut self) -> PathBuf {
        self.0.take().expect("an artifact not yet taken")
    }
}

impl Drop for Artifact {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Runtime {
    /// The engine and linker every preset shares. With `cache_dir`, compiled components are
    /// kept there (keyed by the component's SHA-256 and the engine's compatibility hash), so a
    /// restart or another process on the same disk loads them without compiling. Compiles
    /// happen in this process ([`Compiler::InProcess`]); the server uses
    /// [`Runtime::with_compiler`].
    pub fn new(limits: SandboxLimits, cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        Self::with_compiler(limits, cache_dir, Compiler::InProcess)
    }

    /// Like [`Runtime::new`], compiling components that are not cached with `compiler`.
    pub fn with_compiler(
        limits: SandboxLimits,
        cache_dir: Option<PathBuf>,
        compiler: Compiler,
    ) -> anyhow::Result<Self> {
        // The settings that shape compiled code are shared with the compile child's engine.
        let mut config = compile_config();
        // Instances come from a pre-reserved pool: instantiation is then a few page resets,
        // not fresh mmaps, which is what makes a fresh instance per call cheap.
        let n = limits
            .max_instances
            .max(1)
            .saturating_add(limits.dry_run_instances.max(1));
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 8)
            .max_memory_size(limits.memory_bytes);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:#}"))?;

        let mut linker = Linker::<Sandbox>::new(&engine);
        link_wasi(&mut linker).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        // Each version's host interface has its own versioned name, so both link side by side.
        v1::link(&mut linker).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        v2::link(&mut linker).map_err(|e| anyhow::anyhow!("{e:#}"))?;

        let ticker = Arc::new(EpochTicker {
            stop: Mutex::new(false),
        });
        let weak = Arc::downgrade(&ticker);
        let tick_engine = engine.clone();
        thread::Builder::new()
            .name("preset-epoch".into())
            .spawn(move || {
                while let Some(ticker) = weak.upgrade() {
                    if *ticker.stop.lock().expect("epoch ticker lock") {
                        break;
                    }
                    drop(ticker);
                    thread::sleep(EPOCH_TICK);
                    tick_engine.increment_epoch();
                }
            })?;

        let cache = cache_dir
            .map(|dir| ArtifactCache::open(dir, &engine))
            .transpose()?;
        Ok(Self {
            engine,
            linker,
            job_slots: Slots::new(limits.max_instances.max(1)),
            dry_run_slots: Slots::new(limits.dry_run_instances.max(1)),
            limits,
            cache,
            compiler,
            compiling: Mutex::new(()),
            compiles_now: AtomicUsize::new(0),
            most_compiles_at_once: AtomicUsize::new(0),
            _ticker: ticker,
        })
    }

    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Compiles a component (or loads its cached artifact) and checks that it implements a
    /// supported interface version with only the imports a preset may use.
    pub fn load(&self, bytes: &[u8], sha256: &str) -> Result<Loaded, LoadError> {
        let started = Instant::now();
        let cached = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&self.engine, sha256));
        // Held from a compile until its artifact is in the cache.
        let mut turn = None;
        let (component, from, peak_rss_mib, artifact) = match cached {
            Some(component) => (component, CompiledFrom::Cache, None, None),
            None => {
                if bytes.starts_with(b"\0asm\x01\0\0\0") {
                    return Err(LoadError::invalid(
                        "this is a core WebAssembly module, not a component; build the preset \
                         for the wasm32-wasip2 target (`cargo build --release --target wasm32-wasip2`)",
                    ));
                }
                turn = Some(self.compiling.lock().unwrap_or_else(|e| e.into_inner()));
                // Whoever had the turn before may have just compiled these very bytes (a
                // bundled component and its published entry load side by side at start).
                match self
                    .cache
                    .as_ref()
                    .and_then(|c| c.get(&self.engine, sha256))
                {
                    Some(component) => (component, CompiledFrom::Cache, None, None),
                    None => {
                        let (component, peak_rss_mib, artifact) = self.compile(bytes)?;
                        (component, CompiledFrom::Compiled, peak_rss_mib, artifact)
                    }
                }
            }
        };
        let cost = CompileCost {
            from,
            ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            peak_rss_mib,
        };
        let interface = self.interface_of(&component)?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            LoadError::invalid(format!(
                "the component cannot be linked: it must import only mediahost:preset \
                 {SUPPORTED_INTERFACE} and the WASI interfaces a preset may use (no wasi:http, \
                 no raw sockets): {e:#}"
            ))
        })?;
        let mismatch = |e: wasmtime::Error| {
            LoadError::invalid(format!(
                "the component's mediahost:preset/preset@{interface} export does not match \
                 the interface: {e:#}"
            ))
        };
        let compiled = match interface.major {
            1 => CompiledPreset::V1(v1::pre(instance_pre).map_err(mismatch)?),
            2 => CompiledPreset::V2(v2::pre(instance_pre).map_err(mismatch)?),
            _ => unreachable!("interface_of admits only supported major versions"),
        };
        // Only a component that turned out to be a preset is cached.
        match (&self.cache, artifact) {
            (Some(cache), Some(mut file)) => cache.adopt(sha256, &file.take()),
            (Some(cache), None) if from == CompiledFrom::Compiled => cache.put(sha256, &component),
            _ => {}
        }
        drop(turn);
        Ok(Loaded {
            compiled,
            from,
            cost,
            interface,
        })
    }

    /// Compiles a component with this runtime's [`Compiler`]; the caller holds the compile
    /// turn (`self.compiling`), so compiles run one at a time. Returns the compile child's peak
    /// RSS and the artifact file it wrote, if a child compiled it.
    fn compile(
        &self,
        bytes: &[u8],
    ) -> Result<(Component, Option<u64>, Option<Artifact>), LoadError> {
        let now = self.compiles_now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_compiles_at_once.fetch_max(now, Ordering::SeqCst);
        let result = match &self.compiler {
            Compiler::InProcess => Component::new(&self.engine, bytes)
                .map(|c| (c, None, None))
                .map_err(|e| {
                    LoadError::invalid(format!("not a valid WebAssembly component: {e:#}"))
                }),
            Compiler::Subprocess(sub) => {
                let artifact = Artifact(Some(match &self.cache {
                    Some(cache) => cache.temp_path(),
                    None => std::env::temp_dir()
                        .join(format!("mediahost-compile-{}.tmp", uuid::Uuid::new_v4())),
                }));
                compile::in_child(sub, bytes, artifact.path()).and_then(|peak_rss_mib| {
                    // SAFETY: the file is the artifact our own binary's `compile-preset` just
                    // wrote with an engine of the same settings ([`compile_config`]), at a fresh
                    // name only this process knows, in its data directory (or the temporary
                    // directory). wasmtime checks its compatibility with this engine.
                    unsafe { Component::deserialize_file(&self.engine, artifact.path()) }
                        .map(|c| (c, Some(peak_rss_mib), Some(artifact)))
                        .map_err(|e| LoadError {
                            code: ErrorCode::Internal,
                            message: format!("the compiled artifact does not load: {e:#}"),
                        })
                })
            }
        };
        self.compiles_now.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// The most compiles that ever ran at once in this runtime (one, unless something is wrong).
    pub fn most_compiles_at_once(&self) -> usize {
        self.most_compiles_at_once.load(Ordering::SeqCst)
    }

    /// The `mediahost:preset` version the component exports, if this host supports it.
    fn interface_of(&self, component: &Component) -> Result<Version, LoadError> {
        const EXPORT: &str = "mediahost:preset/preset@";
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let Some(found) = exports.iter().find_map(|n| n.strip_prefix(EXPORT)) else {
            let shown = if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports.join(", ")
            };
            return Err(LoadError::invalid(format!(
                "the component does not implement the mediahost:preset preset-world (it exports \
                 {shown}); build it against mediahost:preset {SUPPORTED_INTERFACE}, as preset-sdk does"
            )));
        };
        let version = Version::parse(found).map_err(|e| {
            LoadError::invalid(format!(
                "the export {EXPORT}{found} has no valid version: {e}"
            ))
        })?;
        let supported = VersionReq::parse(SUPPORTED_INTERFACE).expect("a valid range");
        if !supported.matches(&version) {
            return Err(LoadError {
                code: ErrorCode::PresetInterfaceUnsupported,
                message: format!(
                    "the component was built for mediahost:preset@{version}; this host supports \
                     mediahost:preset {SUPPORTED_INTERFACE}; rebuild it with a preset-sdk for 1.x or 2.x"
                ),
            });
        }
        Ok(version)
    }

    fn store(&self) -> Store<Sandbox> {
        let stdio = StdioLog::new(self.limits.log_bytes);
        let mut wasi = WasiCtx::builder();
        wasi.wall_clock(FrozenClock)
            .secure_random(StdRng::seed_from_u64(0))
            .insecure_random(StdRng::seed_from_u64(0))
            .insecure_random_seed(0)
            .stdout(stdio.stream(StdioStream::Stdout))
            .stderr(stdio.stream(StdioStream::Stderr));
        deny_files_and_network(&mut wasi);
        let wasi = wasi.build();
        let mut store = Store::new(
            &self.engine,
            Sandbox {
                wasi,
                table: ResourceTable::new(),
                memory: MemoryCap::new(self.limits.memory_bytes),
                logs: Vec::new(),
                log_budget: self.limits.log_bytes,
                stdio,
                waited: Duration::ZERO,
                deadline: self.limits.deadline,
            },
        );
        store.limiter(|s| &mut s.memory);
        let ticks = self.limits.deadline.as_millis() / EPOCH_TICK.as_millis();
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
        store.epoch_deadline_trap();
        store
    }

    /// Calls `describe` in a fresh instance.
    pub fn describe(&self, preset: &CompiledPreset) -> Result<model::Descriptor, PresetFault> {
        self.call(Lane::Job, preset, |world, store| match world {
            World::V1(w) => v1::describe(w, store),
            World::V2(w) => v2::describe(w, store),
        })
        .0
    }

    /// Calls `plan` in a fresh instance of `lane`'s share; returns the answer and what the preset
    /// logged (also when the call failed: a traceback on stderr explains the fault).
    pub fn plan(
        &self,
        lane: Lane,
        preset: &CompiledPreset,
        request: &model::PlanRequest,
    ) -> (Result<model::Answer, PresetFault>, Vec<PresetLog>) {
        self.call(lane, preset, |world, store| match world {
            World::V1(w) => v1::plan(w, store, request),
            World::V2(w) => v2::plan(w, store, request),
        })
    }

    /// Runs `f` in a fresh instance; the log (`host.log`, stdout, stderr) comes back whether or
    /// not the call succeeded.
    fn call<R>(
        &self,
        lane: Lane,
        preset: &CompiledPreset,
        f: impl FnOnce(&World, &mut Store<Sandbox>) -> wasmtime::Result<R>,
    ) -> (Result<R, PresetFault>, Vec<PresetLog>) {
        let slots = match lane {
            Lane::Job => &self.job_slots,
            Lane::DryRun => &self.dry_run_slots,
        };
        // Declared before the store, so the slot is given back only once the store (and with it
        // the pooled instance) is gone.
        let Some(_slot) = slots.take(self.limits.instance_wait) else {
            let fault = PresetFault::Overloaded(format!("waited {:?}", self.limits.instance_wait));
            return (Err(fault), Vec::new());
        };
        let mut store = self.store();
        let started = Instant::now();
        let world = match preset {
            CompiledPreset::V1(pre) => pre.instantiate(&mut store).map(World::V1),
            CompiledPreset::V2(pre) => pre.instantiate(&mut store).map(World::V2),
        }
        .map_err(|e| classify(e, self.limits.deadline, started, true));
        let answer = world.and_then(|world| {
            f(&world, &mut store).map_err(|e| classify(e, self.limits.deadline, started, false))
        });
        (answer, store.data_mut().take_logs())
    }
}

/// An instance of a preset, by interface major version.
enum World {
    V1(v1::World),
    V2(v2::World),
}

impl Drop for Runtime {
    fn drop(&mut self) {
        *self._ticker.stop.lock().expect("epoch ticker lock") = true;
    }
}

/// The resource table, as the WASI I/O bindings want it.
struct Table;

impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

/// Links the WASI interfaces a preset may import: I/O streams, stdio, environment, exit, clocks
/// and randomness, all empty, frozen or seeded (the monotonic clock is this module's own, with
/// virtual waits; stdout and stderr go to the call's log), plus the filesystem and sockets that
/// language runtimes import whether or not a preset uses them (see [`link_denied_wasi`]). Any
/// other import is refused at load.
fn link_wasi(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, random, sync::io};
    use wasmtime_wasi::random::WasiRandom;

    io::error::add_to_linker::<Sandbox, Table>(linker, |s| &mut s.table)?;
    io::poll::add_to_linker::<Sandbox, Table>(linker, |s| &mut s.table)?;
    io::streams::add_to_linker::<Sandbox, Table>(linker, |s| &mut s.table)?;
    clocks::wall_clock::add_to_linker::<Sandbox, WasiClocks>(linker, Sandbox::clocks)?;
    clocks::monotonic_clock::add_to_linker::<Sandbox, HasSelf<Sandbox>>(linker, |s| s)?;
    random::random::add_to_linker::<Sandbox, WasiRandom>(linker, |s| s.wasi.random())?;
    random::insecure::add_to_linker::<Sandbox, WasiRandom>(linker, |s| s.wasi.random())?;
    random::insecure_seed::add_to_linker::<Sandbox, WasiRandom>(linker, |s| s.wasi.random())?;
    cli::exit::add_to_linker::<Sandbox, WasiCli>(linker, Sandbox::cli)?;
    cli::environment::add_to_linker::<Sandbox, WasiCli>(linker, Sandbox::cli)?;
    cli::stdin::add_to_linker::<Sandbox, WasiCli>(linker, Sandbox::cli)?;
    cli::stdout::add_to_linker::<Sandbox, WasiCli>(linker, Sandbox::cli)?;
    cli::stderr::add_to_linker::<Sandbox, WasiCli>(linker, Sandbox::cli)?;
    cli::terminal_input::add_to_linker::<Sandbox, WasiCli>(linker, Sandbox::cli)?;
    cli::terminal_output::add_to_linker::<Sandbox, WasiCli>(linker, Sandbox::cli)?;
    cli::terminal_stdin::add_to_linker::<Sandbox, WasiCli>(linker, Sandbox::cli)?;
    cli::terminal_stdout::add_to_linker::<Sandbox, WasiCli>(linker, Sandbox::cli)?;
    cli::terminal_stderr::add_to_linker::<Sandbox, WasiCli>(linker, Sandbox::cli)?;
    link_denied_wasi(linker)
}

/// Links `wasi:filesystem` (types, preopens) and `wasi:sockets` (network, instance-network,
/// tcp, tcp-create-socket, udp, udp-create-socket, ip-name-lookup) so that components built by
/// language runtimes (componentize-py's CPython imports both, for `open` and `socket`) load, with
/// nothing behind them.
///
/// These are wasmtime-wasi's own implementations, over the [`WasiCtx`] that
/// [`deny_files_and_network`] locks down, rather than traps from
/// `define_unknown_imports_as_traps`: a runtime calls `preopens.get-directories` while starting
/// and needs an empty list, not a trap, and the resource types (`descriptor`, `tcp-socket`, ...)
/// must be the ones `wasi:io` streams expect. What a preset reaches through them:
///
/// - files: nothing. With no preopened directory the preset never holds a `descriptor`, and
///   every filesystem function takes one (the component model checks handles, so none can be
///   forged); `open`, `stat`, `listdir` fail with an error.
/// - network: nothing. TCP and UDP are disabled, so creating a socket fails `access-denied`
///   before any host socket exists; name lookups fail; the address check denies every address
///   (a second lock should either switch be turned on by mistake).
///
/// None of these calls blocks, so the call's deadline still holds. Unit tests check each.
fn link_denied_wasi(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{filesystem, sockets, sync};
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};

    filesystem::preopens::add_to_linker::<Sandbox, WasiFilesystem>(linker, Sandbox::filesystem)?;
    sync::filesystem::types::add_to_linker::<Sandbox, WasiFilesystem>(linker, Sandbox::filesystem)?;
    let options = sockets::network::LinkOptions::default();
    sockets::network::add_to_linker::<Sandbox, WasiSockets>(linker, &options, Sandbox::sockets)?;
    sockets::instance_network::add_to_linker::<Sandbox, WasiSockets>(linker, Sandbox::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<Sandbox, WasiSockets>(linker, Sandbox::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<Sandbox, WasiSockets>(linker, Sandbox::sockets)?;
    sync::sockets::tcp::add_to_linker::<Sandbox, WasiSockets>(linker, Sandbox::sockets)?;
    sync::sockets::udp::add_to_linker::<Sandbox, WasiSockets>(linker, Sandbox::sockets)?;
    sync::sockets::udp_create_socket::add_to_linker::<Sandbox, WasiSockets>(
        linker,
        Sandbox::sockets,
    )?;
    Ok(())
}

/// The files and network behind [`link_denied_wasi`]: none. No preopened directory (the
/// builder's default, and never added), TCP, UDP and name lookups off, and every socket address
/// refused.
fn deny_files_and_network(wasi: &mut wasmtime_wasi::WasiCtxBuilder) {
    wasi.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
}

fn classify(
    err: wasmtime::Error,
    deadline: Duration,
    started: Instant,
    instantiating: bool,
) -> PresetFault {
    if let Some(trap) = err.downcast_ref::<wasmtime::Trap>()
        && *trap == wasmtime::Trap::Interrupt
    {
        return PresetFault::Deadline(deadline);
    }
    if err.downcast_ref::<WaitPastDeadline>().is_some() {
        return PresetFault::Deadline(deadline);
    }
    if instantiating && err.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        // The pool is sized to the slots, so this is the host's accounting, not the preset.
        return PresetFault::Overloaded(format!("{err:#}"));
    }
    if started.elapsed() >= deadline && format!("{err:#}").contains("interrupt") {
        return PresetFault::Deadline(deadline);
    }
    if instantiating {
        PresetFault::Instantiate(format!("{err:#}"))
    } else {
        PresetFault::Trap(format!("{err:#}"))
    }
}

/// A clock that always reads the same instant, so a preset cannot observe time.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instantiates a core module under a [`MemoryCap`] and calls its `grow` export, if any.
    fn run_capped(wat: &str, cap: usize) -> wasmtime::Result<()> {
        let engine = Engine::default();
        let module = wasmtime::Module::new(&engine, wat::parse_str(wat)?)?;
        let mut store = Store::new(&engine, MemoryCap::new(cap));
        store.limiter(|cap| cap);
        let instance = wasmtime::Instance::new(&mut store, &module, &[])?;
        if let Ok(grow) = instance.get_typed_func::<(), ()>(&mut store, "grow") {
            grow.call(&mut store, ())?;
        }
        Ok(())
    }

    const MIB: usize = 1 << 20;

    #[test]
    fn the_memory_cap_counts_every_memory_together() {
        // 640 pages of 64 KiB are 40 MiB: one such memory fits a 64 MiB cap, two do not.
        run_capped("(module (memory 640))", 64 * MIB).expect("one memory fits");
        let err = run_capped("(module (memory 640) (memory 640))", 64 * MIB)
            .expect_err("two memories of 40 MiB are over a 64 MiB cap");
        assert!(format!("{err:#}").contains("together"), "{err:#}");
    }

    #[test]
    fn growing_a_second_memory_past_the_cap_traps() {
        let wat = r#"(module
            (memory 1) (memory 1)
            (func (export "grow")
                (drop (memory.grow 0 (i32.const 600)))
                (drop (memory.grow 1 (i32.const 600)))))"#;
        run_capped(wat, 64 * MIB).expect_err("600 + 600 pages are over 64 MiB");
        run_capped(wat, 128 * MIB).expect("600 + 600 pages fit 128 MiB");
    }

    #[test]
    fn a_failed_growth_gives_its_bytes_back() {
        let mut cap = MemoryCap::new(64 * MIB);
        assert!(cap.memory_growing(0, 40 * MIB, None).unwrap());
        cap.memory_grow_failed(wasmtime::format_err!("mmap failed"))
            .expect_err("the failure is passed on");
        assert!(cap.memory_growing(0, 40 * MIB, None).unwrap());
    }

    #[test]
    fn waits_are_virtual_and_count_against_the_deadline() {
        let runtime = Runtime::new(
            SandboxLimits {
                max_instances: 1,
                dry_run_instances: 1,
                ..SandboxLimits::default()
            },
            None,
        )
        .expect("a runtime");
        let mut store = runtime.store();
        let started = Instant::now();
        store.data_mut().wait(60_000_000).expect("60 ms of 100 ms");
        let err = store
            .data_mut()
            .wait(600_000_000_000)
            .expect_err("ten minutes are past a 100 ms deadline");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "waits are virtual"
        );
        let fault = classify(err, runtime.limits().deadline, started, false);
        assert!(matches!(fault, PresetFault::Deadline(_)), "{fault}");
        assert_eq!(fault.code(), ErrorCode::PresetFailed);
    }

    #[test]
    fn a_lane_waits_boundedly_for_a_free_slot() {
        let slots = Slots::new(1);
        let held = slots.take(Duration::ZERO).expect("a free slot");
        let started = Instant::now();
        assert!(slots.take(Duration::from_millis(50)).is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                drop(held);
            });
            assert!(
                slots.take(Duration::from_secs(10)).is_some(),
                "freed by the drop"
            );
        });
    }

    fn small_runtime() -> Runtime {
        Runtime::new(
            SandboxLimits {
                max_instances: 1,
                dry_run_instances: 1,
                log_bytes: 256,
                ..SandboxLimits::default()
            },
            None,
        )
        .expect("a runtime")
    }

    /// Links `wat` with the preset linker, as loading a preset does.
    fn link(runtime: &Runtime, wat: &str) -> wasmtime::Result<()> {
        let component = Component::new(&runtime.engine, wat::parse_str(wat)?)?;
        runtime.linker.instantiate_pre(&component).map(drop)
    }

    /// The filesystem and sockets a language runtime imports (componentize-py's CPython imports
    /// these), by the resources and functions their interfaces hold.
    const RUNTIME_IMPORTS: &str = r#"
        (import "wasi:filesystem/types@0.2.0" (instance $types
            (export "descriptor" (type (sub resource)))))
        (alias export $types "descriptor" (type $descriptor))
        (import "wasi:filesystem/preopens@0.2.0" (instance
            (alias outer 1 $descriptor (type $d))
            (export "descriptor" (type $de (eq $d)))
            (type $own (own $de))
            (type $pair (tuple $own string))
            (type $list (list $pair))
            (export "get-directories" (func (result $list)))))
        (import "wasi:sockets/network@0.2.0" (instance $network
            (export "network" (type (sub resource)))))
        (alias export $network "network" (type $net))
        (import "wasi:sockets/instance-network@0.2.0" (instance
            (alias outer 1 $net (type $n))
            (export "network" (type $ne (eq $n)))
            (export "instance-network" (func (result (own $ne))))))
        (import "wasi:sockets/tcp@0.2.0" (instance
            (export "tcp-socket" (type (sub resource)))))
        (import "wasi:sockets/tcp-create-socket@0.2.0" (instance))
        (import "wasi:sockets/udp@0.2.0" (instance
            (export "udp-socket" (type (sub resource)))))
        (import "wasi:sockets/udp-create-socket@0.2.0" (instance))
        (import "wasi:sockets/ip-name-lookup@0.2.0" (instance
            (export "resolve-address-stream" (type (sub resource)))))
    "#;

    #[test]
    fn a_component_importing_files_and_sockets_links() {
        let runtime = small_runtime();
        link(&runtime, &format!("(component {RUNTIME_IMPORTS})"))
            .expect("filesystem and sockets imports link");
    }

    #[test]
    fn any_other_unknown_import_is_still_refused() {
        let runtime = small_runtime();
        for import in [
            r#"(import "wasi:http/types@0.2.0" (instance (export "fields" (type (sub resource)))))"#,
            r#"(import "wasi:filesystem/types@0.2.0" (instance (export "not-a-descriptor" (func))))"#,
            r#"(import "wasi:sockets/raw@0.2.0" (instance (export "raw" (func))))"#,
            r#"(import "acme:backdoor/shell" (instance (export "run" (func))))"#,
        ] {
            let err = link(&runtime, &format!("(component {RUNTIME_IMPORTS} {import})"))
                .expect_err("an unknown import is refused");
            let name = import.split('"').nth(1).expect("a name");
            assert!(
                format!("{err:#}").contains(name.split('@').next().unwrap()),
                "{err:#}"
            );
        }
    }

    #[test]
    fn files_and_sockets_have_nothing_behind_them() {
        use wasmtime_wasi::filesystem::WasiFilesystemView;
        use wasmtime_wasi::p2::bindings::filesystem::preopens;
        use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
        use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
        use wasmtime_wasi::p2::bindings::sockets::{instance_network, ip_name_lookup};
        use wasmtime_wasi::p2::bindings::sync::sockets::udp_create_socket;
        use wasmtime_wasi::sockets::WasiSocketsView;

        let runtime = small_runtime();
        let mut store = runtime.store();
        let sandbox = store.data_mut();
        let started = Instant::now();
        let dirs = preopens::Host::get_directories(&mut sandbox.filesystem()).expect("a list");
        assert!(dirs.is_empty(), "no preopened directory");

        let code = |e: wasmtime_wasi::p2::SocketError| e.downcast().expect("an error code");
        for family in [IpAddressFamily::Ipv4, IpAddressFamily::Ipv6] {
            let tcp = tcp_create_socket::Host::create_tcp_socket(&mut sandbox.sockets(), family);
            assert!(matches!(tcp.map_err(code), Err(ErrorCode::AccessDenied)));
            let udp = udp_create_socket::Host::create_udp_socket(&mut sandbox.sockets(), family);
            assert!(matches!(udp.map_err(code), Err(ErrorCode::AccessDenied)));
        }
        let network = instance_network::Host::instance_network(&mut sandbox.sockets()).unwrap();
        for name in ["localhost", "127.0.0.1", "example.com"] {
            let network = Resource::new_borrow(network.rep());
            let lookup = ip_name_lookup::Host::resolve_addresses(
                &mut sandbox.sockets(),
                network,
                name.to_owned(),
            );
            // Refused at once, or a stream whose first address is an error.
            if let Ok(stream) = lookup {
                let next = ip_name_lookup::HostResolveAddressStream::resolve_next_address(
                    &mut sandbox.sockets(),
                    stream,
                );
                assert!(next.is_err(), "{name} does not resolve");
            }
        }
        assert!(started.elapsed() < Duration::from_secs(1), "no call waits");
    }

    #[test]
    fn stdout_and_stderr_land_in_the_log_in_order_and_capped() {
        let runtime = small_runtime();
        let mut store = runtime.store();
        let stdio = store.data().stdio.clone();
        let out = stdio.stream(StdioStream::Stdout);
        let err = stdio.stream(StdioStream::Stderr);
        use wasmtime_wasi::p2::OutputStream;
        let mut out: Box<dyn OutputStream> = Box::new(out);
        let mut err: Box<dyn OutputStream> = Box::new(err);
        out.write("planning: round 1\nhalf a ".into()).unwrap();
        err.write("Traceback (most recent call last):\r\n".into())
            .unwrap();
        store
            .data_mut()
            .record_log(model::LogLevel::Debug, "from host.log".into());
        out.write("line\n\n".into()).unwrap();
        err.write("ValueError: boom".into()).unwrap();
        let logs = store.data_mut().take_logs();
        let seen: Vec<(&str, &str)> = logs.iter().map(|l| (l.level, l.message.as_str())).collect();
        assert_eq!(
            seen,
            [
                ("info", "planning: round 1"),
                ("warn", "Traceback (most recent call last):"),
                ("debug", "from host.log"),
                ("info", "half a line"),
                ("warn", "ValueError: boom"),
            ]
        );

        // A preset printing in a loop: every write is taken at once, and the log holds at most
        // `log_bytes` (256 here) of it.
        let mut store = runtime.store();
        let mut out: Box<dyn OutputStream> =
            Box::new(store.data().stdio.stream(StdioStream::Stdout));
        let started = Instant::now();
        for i in 0..100_000 {
            assert_eq!(out.check_write().unwrap(), STDIO_PERMIT);
            out.write(format!("spam {i}\n").into()).unwrap();
        }
        out.write(vec![b'x'; 1 << 20].into()).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "writes never wait"
        );
        let logs = store.data_mut().take_logs();
        let bytes: usize = logs.iter().map(|l| l.message.len()).sum();
        assert!(bytes <= 256 + 64, "{bytes} bytes kept");
        assert_eq!(logs[0].message, "spam 0");
        assert!(
            logs.last().unwrap().message.contains("dropped"),
            "the cut is marked: {logs:?}"
        );
    }

    #[test]
    fn running_out_of_instances_is_the_hosts_fault() {
        let fault = PresetFault::Overloaded("waited 10s".into());
        assert_eq!(fault.code(), ErrorCode::HostOverloaded);
        assert!(fault.code().retryable());
    }
}
