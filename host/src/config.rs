//! Command line and environment: every flag has a `MEDIAHOST_*` variable and an embedded
//! default, so `mediahost serve` with nothing else runs a working service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "mediahost",
    version,
    about = "FFmpeg media jobs from sandboxed WebAssembly presets"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub options: Options,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// The HTTP API and workers in one process (the default set-up).
    Serve,
    /// Only the HTTP API.
    Api,
    /// Only workers.
    Worker,
    /// Publish, list, show, yank and dry-run presets on a running host (over its HTTP API).
    Preset(crate::cli::PresetArgs),
    /// Submit, follow, inspect, cancel and replay jobs on a running host (over its HTTP API).
    Job(crate::cli::JobArgs),
    /// Upload a file to a running host's storage; prints the object URI to give a job as input.
    Upload(crate::cli::UploadArgs),
    /// Compiles a preset component read on stdin (run by the host itself; see
    /// `preset::compile`).
    #[command(hide = true)]
    CompilePreset(crate::cli::CompilePresetArgs),
}

/// What a server process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Serve,
    Api,
    Worker,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    Local,
    S3,
}

/// How log lines are written to stderr.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object per line, with the fields of the spans it was logged in (`job_id` while
    /// a job is handled).
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct Options {
    /// How log lines are written to stderr: `text`, or `json` for log collectors (one object
    /// per line; every line a worker writes while it handles a job carries its `job_id`).
    #[arg(
        long,
        env = "MEDIAHOST_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// Address the HTTP API listens on.
    #[arg(
        long,
        env = "MEDIAHOST_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Redis URL. When not given and nothing answers on 127.0.0.1:6379, a private redis-server
    /// is started under the data directory (if one is installed).
    #[arg(long, env = "MEDIAHOST_REDIS_URL", global = true)]
    pub redis: Option<String>,

    /// Prefix of every Redis key, so several deployments can share one Redis.
    #[arg(
        long,
        env = "MEDIAHOST_REDIS_PREFIX",
        default_value = "mediahost",
        global = true
    )]
    pub redis_prefix: String,

    /// Directory for local objects, scratch space and the private Redis.
    #[arg(
        long,
        env = "MEDIAHOST_DATA_DIR",
        default_value = "data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Directory of preset components (`*.wasm`); by default the released presets,
    /// `presets-wasm/released` of the checkout the binary was built from.
    #[arg(long, env = "MEDIAHOST_PRESETS_DIR", global = true)]
    pub presets_dir: Option<PathBuf>,

    /// Where inputs and outputs live.
    #[arg(
        long,
        env = "MEDIAHOST_STORAGE",
        value_enum,
        default_value = "local",
        global = true
    )]
    pub storage: StorageKind,

    /// S3 bucket (with --storage s3).
    #[arg(long, env = "MEDIAHOST_S3_BUCKET", global = true)]
    pub s3_bucket: Option<String>,

    /// S3 endpoint URL, for S3-compatible stores.
    #[arg(long, env = "MEDIAHOST_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,

    /// S3 region.
    #[arg(
        long,
        env = "MEDIAHOST_S3_REGION",
        default_value = "us-east-1",
        global = true
    )]
    pub s3_region: String,

    /// Path-style S3 addressing (most S3-compatible stores want it).
    #[arg(long, env = "MEDIAHOST_S3_PATH_STYLE", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub s3_path_style: bool,

    /// Base URL clients reach this host at, for signed local-storage URLs.
    #[arg(long, env = "MEDIAHOST_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Jobs one worker process runs at once.
    #[arg(
        long,
        env = "MEDIAHOST_CONCURRENCY",
        default_value_t = 2,
        global = true
    )]
    pub concurrency: usize,

    /// Jobs running at once across every worker process sharing the Redis (0: no central
    /// limit; each process still runs at most --concurrency). Give every worker the same value.
    #[arg(
        long,
        env = "MEDIAHOST_MAX_RUNNING",
        default_value_t = 0,
        global = true
    )]
    pub max_running: usize,

    /// Seconds after which a job whose worker stopped renewing its claim is taken over.
    #[arg(
        long,
        env = "MEDIAHOST_RECLAIM_AFTER_S",
        default_value_t = 30,
        global = true
    )]
    pub reclaim_after_s: u64,

    /// Seconds between a process's reconciles of its presets with the catalog in Redis (changes
    /// are also announced at once; this bounds how stale a process that missed one can be).
    #[arg(
        long,
        env = "MEDIAHOST_PRESET_RECONCILE_S",
        default_value_t = 10,
        global = true
    )]
    pub preset_reconcile_s: u64,

    /// The bearer token for publishing and yanking presets. When not given, the host uses the
    /// file `admin-token` in the data directory, creating it with a random token.
    #[arg(
        long,
        env = "MEDIAHOST_ADMIN_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Attempts a job gets: a retryable failure (storage, Redis, a timeout, a lost worker) is
    /// retried with exponential backoff until then, and the job is DEAD after the last.
    #[arg(
        long,
        env = "MEDIAHOST_MAX_ATTEMPTS",
        default_value_t = 3,
        global = true
    )]
    pub max_attempts: u32,

    /// Milliseconds before the first retry; each further retry waits twice as long (with
    /// jitter), at most five minutes.
    #[arg(
        long,
        env = "MEDIAHOST_RETRY_BASE_MS",
        default_value_t = 2000,
        global = true
    )]
    pub retry_base_ms: u64,

    /// Secrets job webhooks are signed with (`whsec_` + base64), comma-separated; every one signs
    /// each delivery, so a new secret can be added before the old one is removed. When not given,
    /// the file `webhook-secret` in the data directory (created with a random secret).
    #[arg(
        long,
        env = "MEDIAHOST_WEBHOOK_SECRETS",
        global = true,
        hide_env_values = true
    )]
    pub webhook_secrets: Option<String>,

    /// Seconds a failed attempt's scratch directory (inputs, intermediates) is kept under
    /// `<data-dir>/scratch/failed/` for debugging; 0 removes it at once.
    #[arg(
        long,
        env = "MEDIAHOST_KEEP_FAILED_S",
        default_value_t = 3600,
        global = true
    )]
    pub keep_failed_s: u64,

    /// Milliseconds a preset call may run.
    #[arg(
        long,
        env = "MEDIAHOST_PRESET_DEADLINE_MS",
        default_value_t = 100,
        global = true
    )]
    pub preset_deadline_ms: u64,

    /// MiB of memory a preset instance may use.
    #[arg(
        long,
        env = "MEDIAHOST_PRESET_MEMORY_MIB",
        default_value_t = 64,
        global = true
    )]
    pub preset_memory_mib: usize,

    /// MiB of address space a preset compile may use. Each component that is not in the
    /// artifact cache is compiled in a child process of its own, one at a time, under this limit
    /// (`RLIMIT_AS`); a component that needs more is refused.
    #[arg(
        long,
        env = "MEDIAHOST_PRESET_COMPILE_MEMORY_MIB",
        default_value_t = 4096,
        global = true
    )]
    pub preset_compile_memory_mib: u64,

    /// Seconds a preset compile may take; a component that takes longer is refused.
    #[arg(
        long,
        env = "MEDIAHOST_PRESET_COMPILE_TIMEOUT_S",
        default_value_t = 120,
        global = true
    )]
    pub preset_compile_timeout_s: u64,

    /// Preset calls of dry runs (`POST /v1/presets/.../plan`) running at once in an API process;
    /// more wait their turn. Dry runs never take the instances workers plan with.
    #[arg(
        long,
        env = "MEDIAHOST_DRY_RUN_CONCURRENCY",
        default_value_t = 2,
        global = true
    )]
    pub dry_run_concurrency: usize,

    /// MiB a job may write to its scratch directory (inputs, intermediates, outputs) while it
    /// runs; over it, ffmpeg is stopped and the job fails with OUTPUT_TOO_LARGE.
    #[arg(
        long,
        env = "MEDIAHOST_JOB_DISK_BUDGET_MIB",
        default_value_t = 20480,
        global = true
    )]
    pub job_disk_budget_mib: u64,

    /// Seconds one attempt of a job may run in all (every ffmpeg step, probe and analysis),
    /// whatever duration its media claims; over it, the job fails with JOB_TIMEOUT.
    #[arg(
        long,
        env = "MEDIAHOST_JOB_TIMEOUT_S",
        default_value_t = 14400,
        global = true
    )]
    pub job_timeout_s: u64,

    /// MiB one upload (`PUT /v1/objects/...`) may carry; a larger one answers 413
    /// UPLOAD_TOO_LARGE and stores nothing.
    #[arg(
        long,
        env = "MEDIAHOST_MAX_UPLOAD_MIB",
        default_value_t = 4096,
        global = true
    )]
    pub max_upload_mib: u64,

    /// Seconds a stopping worker (SIGTERM or SIGINT) lets its running jobs finish; the jobs
    /// still running then are handed back to the queue for another worker.
    #[arg(
        long,
        env = "MEDIAHOST_SHUTDOWN_GRACE_S",
        default_value_t = 30,
        global = true
    )]
    pub shutdown_grace_s: u64,

    /// Webhook hosts or CIDRs allowed although they are (or resolve to) loopback, link-local,
    /// unspecified or multicast addresses, comma-separated (e.g. `127.0.0.1/32,hooks.internal`).
    #[arg(long, env = "MEDIAHOST_WEBHOOK_ALLOW", global = true)]
    pub webhook_allow: Option<String>,

    /// Bearer tokens accepted by the job API (jobs, uploads, dry runs), comma-separated. Off by
    /// default: without it the job API is open to every client that reaches the listener.
    #[arg(
        long,
        env = "MEDIAHOST_API_TOKENS",
        global = true,
        hide_env_values = true
    )]
    pub api_tokens: Option<String>,

    /// Entries the result cache keeps (completed jobs whose outputs an identical job reuses),
    /// the least recently used evicted first; 0 turns the cache off.
    #[arg(
        long,
        env = "MEDIAHOST_RESULT_CACHE_ENTRIES",
        default_value_t = 10000,
        global = true
    )]
    pub result_cache_entries: u64,

    /// Job event streams (`GET /v1/jobs/{id}/events`) open at once in an API process.
    #[arg(
        long,
        env = "MEDIAHOST_MAX_EVENT_STREAMS",
        default_value_t = 256,
        global = true
    )]
    pub max_event_streams: usize,

    /// Seconds a client has to send a request's headers, and then its body (uploads excepted:
    /// they get this long between two chunks of the body).
    #[arg(
        long,
        env = "MEDIAHOST_REQUEST_TIMEOUT_S",
        default_value_t = 30,
        global = true
    )]
    pub request_timeout_s: u64,
}

impl Options {
    pub fn presets_dir(&self) -> PathBuf {
        self.presets_dir.clone().unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../presets-wasm/released"
            ))
        })
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    pub fn preset_reconcile(&self) -> Duration {
        Duration::from_secs(self.preset_reconcile_s.max(1))
    }

    pub fn admin_token_file(&self) -> PathBuf {
        self.data_dir.join("admin-token")
    }

    pub fn reclaim_after(&self) -> Duration {
        Duration::from_secs(self.reclaim_after_s.max(3))
    }
}
