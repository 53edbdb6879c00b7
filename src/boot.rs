//! Boot and shutdown: the executor pool, its placement, the mesh wiring, recovery order.
//!
//! Owns: raising RLIMIT_MEMLOCK and sizing glommio's locked I/O memory, starting one pinned executor per
//! selected CPU, binding each to its NUMA node, waiting until every shard has recovered its partitions
//! and bound the port (then logging `ready`), turning SIGTERM/SIGINT into a clean shutdown of every
//! shard, and joining them. Never: serving requests.

use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use glommio::{LocalExecutorBuilder, Placement};
use log::{error, info, warn};
use shards::catalog::{BrokerDefaults, CatalogStore};
use shards::mesh::ShardRequest;
use shards::shard::{Shard, ShardConfig};
use shards::ShardId;

use crate::config::Config;
use crate::handlers::BrokerContext;
use crate::limits;
use crate::numa::Numa;

/// What a shard reports to the main thread once it serves (or why it cannot).
type ReadyReport = Result<ShardId, String>;

pub fn run(config: Config) -> Result<(), String> {
    let started = Instant::now();
    let cpus = config.selected_cpus()?;
    let shard_count = cpus.len();
    std::fs::create_dir_all(&config.data_dir).map_err(|error| {
        format!(
            "cannot create data dir {}: {error}",
            config.data_dir.display()
        )
    })?;
    let catalog = CatalogStore::new(&config.data_dir)
        .load()
        .map_err(|error| {
            format!(
                "cannot load the catalog from {}: {error}",
                config.data_dir.display()
            )
        })?;
    let io_memory = io_memory_per_shard(shard_count);
    let numa = Numa::discover();
    block_stop_signals();

    let shard_config = Arc::new(ShardConfig {
        data_dir: config.data_dir.clone(),
        defaults: broker_defaults(&config),
        shard_count,
        pool_bytes: config.pool_mib * 1024 * 1024,
        page_cache_bytes: page_cache_bytes_per_shard(config.page_cache_mib, shard_count),
        groups: group_config(&config),
    });
    let catalog = Arc::new(catalog);
    let config = Arc::new(config);
    let (ready_sender, ready_receiver) = mpsc::channel::<ReadyReport>();
    let mut handles = Vec::with_capacity(shard_count);
    for ((index, cpu), ends) in cpus
        .iter()
        .copied()
        .enumerate()
        .zip(shards::shard::wire(shard_count))
    {
        let id = ShardId(index as u16);
        let (config, shard_config, catalog, numa) = (
            config.clone(),
            shard_config.clone(),
            catalog.clone(),
            numa.clone(),
        );
        let ready = ready_sender.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("shard-{index}"))
            .io_memory(io_memory)
            .spawn(move || async move {
                let node = numa.node_of(cpu);
                let bound = node.is_some_and(|node| numa.bind_current_thread(node));
                info!(
                    "{id}: core {cpu}, NUMA node {node:?}{}",
                    if bound { " (memory bound)" } else { "" }
                );
                let shard = Shard::start(id, ends, shard_config, catalog).await;
                serve_shard(shard, config, ready).await;
            })
            .map_err(|error| format!("cannot start a shard on CPU {cpu}: {error}"))?;
        handles.push(handle);
    }
    drop(ready_sender);
    for _ in 0..shard_count {
        match ready_receiver.recv() {
            Ok(Ok(_)) => {}
            Ok(Err(reason)) => return Err(reason),
            Err(_) => return Err("a shard stopped during start-up".into()),
        }
    }
    info!(
        "FluxMQ ready on {}:{} with {shard_count} shards on CPUs {cpus:?} in {} ms",
        config.listen,
        config.port,
        started.elapsed().as_millis()
    );
    for handle in handles {
        if handle.join().is_err() {
            error!("a shard ended abnormally");
        }
    }
    info!("FluxMQ stopped");
    Ok(())
}

async fn serve_shard(shard: Rc<Shard>, config: Arc<Config>, ready: mpsc::Sender<ReadyReport>) {
    let context = Rc::new(BrokerContext::new(shard.clone(), &config));
    let listener = match crate::net::bind(&config) {
        Ok(listener) => listener,
        Err(error) => {
            let _ = ready.send(Err(format!(
                "{}: cannot listen on {}:{}: {error}",
                shard.id, config.listen, config.port
            )));
            return;
        }
    };
    if shard.id == ShardId(0) {
        glommio::spawn_local(stop_on_signal(shard.clone())).detach();
    }
    let _ = ready.send(Ok(shard.id));
    crate::net::serve(listener, context, config.max_connections_per_shard).await;
    shard.wait_stopped().await;
}

/// Waits (on glommio's blocking pool, so the reactor never blocks) for SIGTERM or SIGINT, then stops
/// every shard: each closes its partitions cleanly, so the next start skips crash recovery.
async fn stop_on_signal(shard: Rc<Shard>) {
    let signal = glommio::executor()
        .spawn_blocking(wait_for_stop_signal)
        .await;
    info!("received signal {signal}; stopping");
    for target in (0..shard.shard_count()).rev() {
        if let Err(error) = shard
            .call(ShardId(target as u16), ShardRequest::Shutdown)
            .await
        {
            warn!("shard {target} did not confirm shutdown: {error}");
        }
    }
}

fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset only write the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Blocks SIGTERM/SIGINT in the main thread before any other thread exists, so every thread inherits
/// the mask and the signals stay pending until `wait_for_stop_signal` takes them.
fn block_stop_signals() {
    let set = stop_signals();
    // SAFETY: a valid set; the old mask is not needed.
    let result = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    assert_eq!(result, 0);
}

fn wait_for_stop_signal() -> i32 {
    let set = stop_signals();
    let mut signal = 0;
    // SAFETY: a valid set and out-pointer. sigwait only fails for an invalid set.
    let result = unsafe { libc::sigwait(&set, &mut signal) };
    assert_eq!(result, 0);
    signal
}

/// The page-cache budget of one shard: `--page-cache-mib`, or an equal share of
/// `1 / PAGE_CACHE_SHARE_OF_MEMORY_DIVISOR` of physical memory.
fn page_cache_bytes_per_shard(page_cache_mib: Option<u64>, shard_count: usize) -> u64 {
    if let Some(mib) = page_cache_mib {
        return mib.saturating_mul(1024 * 1024);
    }
    // SAFETY: sysconf only reads its argument.
    let (pages, page_bytes) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let memory_bytes = u64::try_from(pages)
        .unwrap_or(0)
        .saturating_mul(u64::try_from(page_bytes).unwrap_or(0));
    memory_bytes / limits::PAGE_CACHE_SHARE_OF_MEMORY_DIVISOR / shard_count.max(1) as u64
}

/// Raises the soft RLIMIT_MEMLOCK to the hard limit (allowed for any user) and sizes glommio's locked
/// I/O memory so all shards fit in it.
fn io_memory_per_shard(shard_count: usize) -> usize {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) == 0 {
                limit = raised;
            }
        }
    }
    let locked_bytes = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX);
    // Half of the limit for registered buffers; the rest stays for the rings on kernels that still
    // charge them to RLIMIT_MEMLOCK (before 5.12).
    let per_shard =
        (locked_bytes / 2 / shard_count.max(1)).min(limits::IO_MEMORY_BYTES_PER_SHARD_MAX);
    if per_shard < limits::IO_MEMORY_BYTES_PER_SHARD_MIN {
        warn!(
            "RLIMIT_MEMLOCK is {locked_bytes} bytes, too little for {shard_count} shards; raise `ulimit -l` \
             (LimitMEMLOCK= in systemd) or glommio may refuse to start"
        );
    }
    info!(
        "RLIMIT_MEMLOCK {} KiB; io_uring memory {} KiB per shard",
        locked_bytes / 1024,
        per_shard / 1024
    );
    per_shard.max(limits::IO_MEMORY_BYTES_PER_SHARD_MIN)
}

fn group_config(config: &Config) -> shards::group::GroupConfig {
    shards::group::GroupConfig {
        initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
        session_timeout_ms_min: config.group_min_session_timeout_ms,
        session_timeout_ms_max: config.group_max_session_timeout_ms,
        consumer_heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
        consumer_session_timeout_ms: config.group_consumer_session_timeout_ms,
        offsets_retention_ms: config.offsets_retention_ms,
    }
}

fn broker_defaults(config: &Config) -> BrokerDefaults {
    BrokerDefaults {
        partitions: config.default_partitions,
        segment_bytes: config.segment_bytes,
        segment_ms: 604_800_000,
        retention_ms: config.retention_ms,
        retention_bytes: -1,
        max_message_bytes: config.message_max_bytes,
        index_interval_bytes: 4096,
        auto_create_topics: config.auto_create_topics,
    }
}
