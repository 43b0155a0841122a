//! The preset sandbox: one wasmtime engine, and every call into a preset bounded in time, memory
//! and output.
//!
//! A preset is untrusted code. It gets no preopened directories, no environment, no arguments and
//! no network; its clocks are frozen and its randomness is a fixed seed so the same request always
//! gives the same plan. Each call runs in a fresh instance (cheap through `InstancePre`), under an
//! epoch deadline and a memory cap; a trapped instance is simply dropped.
//!
//! Not here: what a preset's plan may contain (that is `plan::validate`) or which presets exist
//! (that is `preset::registry`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use semver::{Version, VersionReq};
use wasmtime::component::{Component, HasData, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::cache::ArtifactCache;
use super::v1::{self, PresetWorld, PresetWorldPre};
use super::wit;
use crate::error::ErrorCode;

/// How often the engine's epoch advances; deadlines are whole multiples of it.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits applied to every call into a preset.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    pub deadline: Duration,
    pub memory_bytes: usize,
    /// Bytes of log a single call may write; the rest is dropped with a note.
    pub log_bytes: usize,
    /// Preset instances alive at once (the size of the pooling allocator's pool).
    pub max_instances: u32,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(100),
            memory_bytes: 64 << 20,
            log_bytes: 64 << 10,
            max_instances: 64,
        }
    }
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
}

/// Per-call state of a sandboxed instance.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    logs: Vec<PresetLog>,
    log_budget: usize,
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl v1::Host for Sandbox {
    fn log(&mut self, level: wit::LogLevel, message: String) {
        let level = match level {
            wit::LogLevel::Debug => "debug",
            wit::LogLevel::Info => "info",
            wit::LogLevel::Warn => "warn",
            wit::LogLevel::Error => "error",
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

impl v1::types::Host for Sandbox {}

/// A compiled preset component, ready to be instantiated many times (the instantiation work,
/// `InstancePre`, is done once here and reused by every call).
///
/// One variant per major version of `mediahost:preset`: a 2.0 gets a variant and a bindings
/// module of its own beside `v1`, and the calls below convert its types to the latest ones.
pub enum CompiledPreset {
    V1(PresetWorldPre<Sandbox>),
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
pub const SUPPORTED_INTERFACE: &str = ">=1.0.0, <2.0.0";

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
        let n = limits.max_instances.max(1);
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
        PresetWorld::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |s| s)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;

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
                         for the wasm32-wasip2 target (presets-wasm/build.sh does)",
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
        let compiled = match interface.major {
            1 => CompiledPreset::V1(PresetWorldPre::new(instance_pre).map_err(|e| {
                LoadError::invalid(format!(
                    "the component's mediahost:preset/preset@{interface} export does not match \
                     the interface: {e:#}"
                ))
            })?),
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
                     mediahost:preset {SUPPORTED_INTERFACE}; rebuild it with a preset-sdk for 1.x"
                ),
            });
        }
        Ok(version)
    }

    fn store(&self) -> Store<Sandbox> {
        let wasi = WasiCtx::builder()
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(StdRng::seed_from_u64(0))
            .insecure_random(StdRng::seed_from_u64(0))
            .insecure_random_seed(0)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .instances(16)
            .tables(16)
            .memories(4)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            &self.engine,
            Sandbox {
                wasi,
                table: ResourceTable::new(),
                limits,
                logs: Vec::new(),
                log_budget: self.limits.log_bytes,
            },
        );
        store.limiter(|s| &mut s.limits);
        let ticks = self.limits.deadline.as_millis() / EPOCH_TICK.as_millis();
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
        store.epoch_deadline_trap();
        store
    }

    /// Calls `describe` in a fresh instance.
    pub fn describe(&self, preset: &CompiledPreset) -> Result<wit::Descriptor, PresetFault> {
        self.call(preset, |world, store| match world {
            World::V1(w) => w.mediahost_preset_preset().call_describe(store),
        })
        .map(|(descriptor, _logs)| descriptor)
    }

    /// Calls `plan` in a fresh instance; returns the answer and what the preset logged.
    pub fn plan(
        &self,
        preset: &CompiledPreset,
        request: &wit::PlanRequest,
    ) -> (
        Result<Result<wit::Decision, wit::Refusal>, PresetFault>,
        Vec<PresetLog>,
    ) {
        let mut logs = Vec::new();
        let result = self
            .call(preset, |world, store| match world {
                World::V1(w) => w.mediahost_preset_preset().call_plan(store, request),
            })
            .map(|(answer, call_logs)| {
                logs = call_logs;
                answer
            });
        (result, logs)
    }

    fn call<R>(
        &self,
        preset: &CompiledPreset,
        f: impl FnOnce(&World, &mut Store<Sandbox>) -> wasmtime::Result<R>,
    ) -> Result<(R, Vec<PresetLog>), PresetFault> {
        let mut store = self.store();
        let started = Instant::now();
        let world = match preset {
            CompiledPreset::V1(pre) => pre.instantiate(&mut store).map(World::V1),
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
    V1(PresetWorld),
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
/// streams, stdio, environment, exit, clocks and randomness, all empty, frozen or seeded. No
/// filesystem and no sockets: a component that imports them is refused at load.
fn link_wasi(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, random, sync::io};
    use wasmtime_wasi::random::WasiRandom;

    io::error::add_to_linker::<Sandbox, Table>(linker, |s| &mut s.table)?;
    io::poll::add_to_linker::<Sandbox, Table>(linker, |s| &mut s.table)?;
    io::streams::add_to_linker::<Sandbox, Table>(linker, |s| &mut s.table)?;
    clocks::wall_clock::add_to_linker::<Sandbox, WasiClocks>(linker, Sandbox::clocks)?;
    clocks::monotonic_clock::add_to_linker::<Sandbox, WasiClocks>(linker, Sandbox::clocks)?;
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

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}
