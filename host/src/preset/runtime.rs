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
//! closed, stdout and stderr are sinks, and waiting on the monotonic clock (`std::thread::sleep`,
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
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use semver::{Version, VersionReq};
use wasmtime::component::{Component, HasData, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolConcurrencyLimitError, PoolingAllocationConfig,
    ResourceLimiter, Store,
};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::cache::ArtifactCache;
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
        let level = match level {
            model::LogLevel::Debug => "debug",
            model::LogLevel::Info => "info",
            model::LogLevel::Warn => "warn",
            model::LogLevel::Error => "error",
        };
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
    job_slots: Slots,
    dry_run_slots: Slots,
    _ticker: Arc<EpochTicker>,
}

struct EpochTicker {
    stop: Mutex<bool>,
}

impl Runtime {
    /// The engine and linker every preset shares. With `cache_dir`, compiled components are
    /// kept there (keyed by the component's SHA-256 and the engine's compatibility hash), so a
    /// restart or another process on the same disk loads them without compiling.
    pub fn new(limits: SandboxLimits, cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.max_wasm_stack(512 << 10);
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
            _ticker: ticker,
        })
    }

    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Compiles a component (or loads its cached artifact) and checks that it implements a
    /// supported interface version with only the imports a preset may use.
    pub fn load(&self, bytes: &[u8], sha256: &str) -> Result<Loaded, LoadError> {
        let cached = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&self.engine, sha256));
        let (component, from) = match cached {
            Some(component) => (component, CompiledFrom::Cache),
            None => {
                if bytes.starts_with(b"\0asm\x01\0\0\0") {
                    return Err(LoadError::invalid(
                        "this is a core WebAssembly module, not a component; build the preset \
                         for the wasm32-wasip2 target (`cargo build --release --target wasm32-wasip2`)",
                    ));
                }
                let component = Component::new(&self.engine, bytes).map_err(|e| {
                    LoadError::invalid(format!("not a valid WebAssembly component: {e:#}"))
                })?;
                (component, CompiledFrom::Compiled)
            }
        };
        let interface = self.interface_of(&component)?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            LoadError::invalid(format!(
                "the component cannot be linked: it must import only mediahost:preset \
                 {SUPPORTED_INTERFACE} and the WASI interfaces a preset may use (no filesystem, \
                 no sockets): {e:#}"
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
        if from == CompiledFrom::Compiled
            && let Some(cache) = &self.cache
        {
            cache.put(sha256, &component);
        }
        Ok(Loaded {
            compiled,
            from,
            interface,
        })
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
        let wasi = WasiCtx::builder()
            .wall_clock(FrozenClock)
            .secure_random(StdRng::seed_from_u64(0))
            .insecure_random(StdRng::seed_from_u64(0))
            .insecure_random_seed(0)
            .allow_ip_name_lookup(false)
            .build();
        let mut store = Store::new(
            &self.engine,
            Sandbox {
                wasi,
                table: ResourceTable::new(),
                memory: MemoryCap::new(self.limits.memory_bytes),
                logs: Vec::new(),
                log_budget: self.limits.log_bytes,
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
        .map(|(descriptor, _logs)| descriptor)
    }

    /// Calls `plan` in a fresh instance of `lane`'s share; returns the answer and what the preset
    /// logged.
    pub fn plan(
        &self,
        lane: Lane,
        preset: &CompiledPreset,
        request: &model::PlanRequest,
    ) -> (Result<model::Answer, PresetFault>, Vec<PresetLog>) {
        let mut logs = Vec::new();
        let result = self
            .call(lane, preset, |world, store| match world {
                World::V1(w) => v1::plan(w, store, request),
                World::V2(w) => v2::plan(w, store, request),
            })
            .map(|(answer, call_logs)| {
                logs = call_logs;
                answer
            });
        (result, logs)
    }

    fn call<R>(
        &self,
        lane: Lane,
        preset: &CompiledPreset,
        f: impl FnOnce(&World, &mut Store<Sandbox>) -> wasmtime::Result<R>,
    ) -> Result<(R, Vec<PresetLog>), PresetFault> {
        let slots = match lane {
            Lane::Job => &self.job_slots,
            Lane::DryRun => &self.dry_run_slots,
        };
        // Declared before the store, so the slot is given back only once the store (and with it
        // the pooled instance) is gone.
        let _slot = slots.take(self.limits.instance_wait).ok_or_else(|| {
            PresetFault::Overloaded(format!("waited {:?}", self.limits.instance_wait))
        })?;
        let mut store = self.store();
        let started = Instant::now();
        let world = match preset {
            CompiledPreset::V1(pre) => pre.instantiate(&mut store).map(World::V1),
            CompiledPreset::V2(pre) => pre.instantiate(&mut store).map(World::V2),
        }
        .map_err(|e| classify(e, self.limits.deadline, started, true))?;
        let answer =
            f(&world, &mut store).map_err(|e| classify(e, self.limits.deadline, started, false))?;
        let logs = std::mem::take(&mut store.data_mut().logs);
        Ok((answer, logs))
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

/// Links only the WASI interfaces a preset built with Rust's standard library imports: I/O
/// streams, stdio, environment, exit, clocks and randomness, all empty, frozen or seeded (the
/// monotonic clock is this module's own, with virtual waits). No filesystem and no sockets: a
/// component that imports them is refused at load.
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
    Ok(())
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

    #[test]
    fn running_out_of_instances_is_the_hosts_fault() {
        let fault = PresetFault::Overloaded("waited 10s".into());
        assert_eq!(fault.code(), ErrorCode::HostOverloaded);
        assert!(fault.code().retryable());
    }
}
