//! Start-up and shut-down: wires storage, Redis, presets, the API and workers together.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::config::{Options, Role, StorageKind};
use crate::ffmpeg::Tools;
use crate::job::JobStore;
use crate::lifecycle::{Endings, Keys, Lifecycle, RetryPolicy};
use crate::preset::catalog::Catalog;
use crate::preset::compile::{Compiler, Subprocess};
use crate::preset::runtime::{Runtime, SandboxLimits};
use crate::queue::Queue;
use crate::result_cache::ResultCache;
use crate::storage::{Storage, local::LocalStorage, s3};
use crate::worker::{Worker, pipeline::Context};

pub async fn run(role: Role, opts: Options) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.data_dir)?;
    crate::ffmpeg::confine::check_data_dir(&opts.data_dir).map_err(anyhow::Error::msg)?;
    let storage = Arc::new(match opts.storage {
        StorageKind::Local => {
            Storage::Local(LocalStorage::open(&opts.data_dir, &opts.public_url())?)
        }
        StorageKind::S3 => {
            let bucket = opts.s3_bucket.clone().ok_or_else(|| {
                anyhow::anyhow!("--storage s3 needs --s3-bucket (or MEDIAHOST_S3_BUCKET)")
            })?;
            Storage::S3(
                s3::S3Storage::connect(s3::S3Config {
                    bucket,
                    region: opts.s3_region.clone(),
                    endpoint: opts.s3_endpoint.clone(),
                    path_style: opts.s3_path_style,
                })
                .await,
            )
        }
    });
    if let Err(e) = storage.check().await {
        tracing::warn!(error = %e, "storage is not reachable yet; requests will fail until it is");
    }

    let (redis_url, _private_redis) =
        crate::redis_server::locate(opts.redis.as_deref(), &opts.data_dir).await?;
    let client = redis::Client::open(redis_url.as_str())?;
    // The client library's default 500 ms response timeout turns a busy Redis into failed
    // requests, and a submission that timed out after Redis ran it into a job the client was
    // told was refused. Wait longer.
    let manager_config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(10)))
        .set_connection_timeout(Some(Duration::from_secs(5)));
    let manager = redis::aio::ConnectionManager::new_with_config(client.clone(), manager_config)
        .await
        .map_err(|e| {
            let info = client.get_connection_info();
            anyhow::anyhow!("cannot connect to Redis at {}: {e}", info.addr())
        })?;
    let jobs = JobStore::new(manager.clone(), &opts.redis_prefix);
    let queue = Queue::new(&opts.redis_prefix, opts.reclaim_after());
    queue.ensure_group(&mut manager.clone()).await?;

    // Components are compiled by this binary's `compile-preset`, in a child process each, one
    // at a time (see `preset::compile`). `/proc/self/exe` still runs this binary after a
    // deploy replaced the file.
    let exe = std::path::PathBuf::from("/proc/self/exe");
    let compiler = Compiler::Subprocess(Subprocess {
        exe: if exe.exists() {
            exe
        } else {
            std::env::current_exe().map_err(|e| {
                anyhow::anyhow!("cannot find this executable to compile presets: {e}")
            })?
        },
        address_space_bytes: opts
            .preset_compile_memory_mib
            .max(64)
            .saturating_mul(1 << 20),
        timeout: Duration::from_secs(opts.preset_compile_timeout_s.max(1)),
    });
    let runtime = Arc::new(Runtime::with_compiler(
        SandboxLimits {
            deadline: Duration::from_millis(opts.preset_deadline_ms.max(1)),
            memory_bytes: opts.preset_memory_mib.max(1) << 20,
            max_instances: u32::try_from(opts.concurrency * 2)
                .unwrap_or(u32::MAX)
                .max(64),
            dry_run_instances: u32::try_from(opts.dry_run_concurrency.max(1)).unwrap_or(u32::MAX),
            ..SandboxLimits::default()
        },
        Some(opts.data_dir.join("preset-cache")),
        compiler,
    )?);
    let catalog = Arc::new(Catalog::new(
        manager.clone(),
        client.clone(),
        storage.clone(),
        runtime.clone(),
        &opts.redis_prefix,
    ));
    // Bundled and published presets load in the background: the API answers at once, /readyz
    // says how far loading is, and a lookup of a version still loading waits for it.
    crate::preset::catalog::wasm_files(&opts.presets_dir())?;
    catalog.spawn_load_at_start(opts.presets_dir());
    let (tools, warnings) = Tools::detect().await;
    for w in &warnings {
        tracing::warn!("{w}");
    }

    let webhook_policy = Arc::new(
        crate::webhook::UrlPolicy::parse(opts.webhook_allow.as_deref())
            .map_err(|e| anyhow::anyhow!(e))?,
    );
    let result_cache = (opts.result_cache_entries > 0).then(|| {
        Arc::new(ResultCache::new(
            manager.clone(),
            &opts.redis_prefix,
            storage.clone(),
            opts.result_cache_entries,
        ))
    });
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = vec![catalog.spawn_sync(opts.preset_reconcile(), shutdown_rx.clone())];
    let scratch_root = opts.data_dir.join("scratch");
    std::fs::create_dir_all(&scratch_root)?;

    if role != Role::Api {
        let worker = Arc::new(Worker {
            ctx: Arc::new(Context {
                storage: storage.clone(),
                catalog: catalog.clone(),
                runtime: runtime.clone(),
                jobs: jobs.clone(),
                tools: tools.clone(),
                scratch_root: scratch_root.clone(),
                keep_failed: Duration::from_secs(opts.keep_failed_s),
                disk_budget: opts.job_disk_budget_mib.saturating_mul(1 << 20),
                result_cache: result_cache.clone(),
            }),
            queue: queue.clone(),
            lifecycle: Lifecycle::new(
                manager.clone(),
                &opts.redis_prefix,
                RetryPolicy {
                    base: Duration::from_millis(opts.retry_base_ms.max(1)),
                    max: Duration::from_secs(300),
                },
            ),
            metrics: crate::metrics::Metrics::new(manager.clone(), &opts.redis_prefix),
            child_cpu: crate::metrics::ChildCpu::default(),
            outbox: crate::webhook::Outbox::new(manager.clone(), &opts.redis_prefix)
                .with_policy(webhook_policy.clone()),
            webhook_secrets: webhook_secrets(&opts)?,
            max_running: opts.max_running,
            redis: client.clone(),
            concurrency: opts.concurrency.max(1),
            name: format!("{}-{}", hostname(), std::process::id()),
            job_timeout: Duration::from_secs(opts.job_timeout_s.max(1)),
            shutdown_grace: Duration::from_secs(opts.shutdown_grace_s),
            scratch_locks: opts.data_dir.join("scratch-locks"),
        });
        let rx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move { worker.run(rx).await }));
        tracing::info!(concurrency = opts.concurrency, "workers started");
    }

    if role != Role::Worker {
        let admin_token =
            crate::secret::admin_token(opts.admin_token.as_deref(), &opts.admin_token_file())?;
        let state = Arc::new(AppState {
            catalog,
            runtime,
            tools,
            scratch_root,
            max_attempts: opts.max_attempts.max(1),
            max_upload_bytes: opts.max_upload_mib.saturating_mul(1 << 20),
            metrics: crate::metrics::Metrics::new(manager.clone(), &opts.redis_prefix),
            lifecycle: Lifecycle::new(manager.clone(), &opts.redis_prefix, RetryPolicy::default()),
            api_tokens: api::ApiTokens::parse(opts.api_tokens.as_deref(), &admin_token),
            admin_token,
            storage,
            jobs,
            queue,
            warnings,
            dry_runs: tokio::sync::Semaphore::new(opts.dry_run_concurrency.max(1)),
            webhooks: webhook_policy,
            event_streams: Arc::new(tokio::sync::Semaphore::new(opts.max_event_streams)),
            max_event_streams: opts.max_event_streams,
            request_timeout: Duration::from_secs(opts.request_timeout_s.max(1)),
            result_cache,
            endings: Endings::listen(client.clone(), &Keys::new(&opts.redis_prefix)),
        });
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", opts.listen))?;
        tracing::info!(
            listen = %opts.listen,
            api_tokens = state.api_tokens.is_some(),
            "API listening"
        );
        let timeout = state.request_timeout;
        tasks.push(tokio::spawn(api::serve(
            listener,
            api::router(state),
            timeout,
            shutdown_rx.clone(),
        )));
    }

    shutdown_signal().await;
    tracing::info!(
        grace_s = opts.shutdown_grace_s,
        "shutting down: no new jobs are taken; running ones get the grace period to finish, then \
         are handed back to the queue"
    );
    let _ = shutdown_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

/// The secrets webhooks are signed with: `--webhook-secrets`, else the file `webhook-secret` in
/// the data directory (created with a random secret).
fn webhook_secrets(opts: &Options) -> anyhow::Result<Vec<crate::webhook::Secret>> {
    let text = match &opts.webhook_secrets {
        Some(list) => list.clone(),
        None => {
            let path = opts.data_dir.join("webhook-secret");
            let bytes = crate::secret::read_or_create(
                &path,
                crate::webhook::Secret::generate().into_bytes(),
            )
            .map_err(|e| anyhow::anyhow!("cannot read or create {}: {e}", path.display()))?;
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    text.split([',', ' ', '\n'])
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            crate::webhook::Secret::parse(s).map_err(|e| anyhow::anyhow!("--webhook-secrets: {e}"))
        })
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
