//! A mesh round trip between two shards: shard 0 `Shard::call`s shard 1 with a request that does no
//! work (`PartitionSizes` on a shard with no partitions) and awaits the answer. This is the fixed cost a
//! produce or fetch pays whenever the connection's shard does not own the partition, which with Kafka
//! clients (one connection per broker) is the common case. The local call (shard 0 to itself, the
//! direct path) is measured next to it.
//!
//! Back of the envelope (CPU and cross-core wake-ups; no disk, no network). Each direction is a push
//! into a bounded SPSC ring (~50 ns with the cache line moving between cores) plus, when the other
//! executor is parked in `io_uring_enter`, an eventfd write to wake it (~1-2 µs for the system call,
//! then ~5-10 µs on a VM for the wake-up and the switch back to the executor thread). Both executors
//! sleep between requests here, so expect two wake-ups per round trip: ~10-30 µs. With both cores busy
//! (no parking), the same round trip should drop to ~1-3 µs. The local call is an allocation and a
//! poll, ~100-300 ns. At 30 µs a cross-shard produce of one 100-record batch adds 0.3 µs per record.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use glommio::{LocalExecutorBuilder, Placement};
use shards::catalog::{BrokerDefaults, Catalog};
use shards::mesh::ShardRequest;
use shards::shard::{Shard, ShardConfig};
use shards::ShardId;

/// glommio's minimum; shards in this bench do no file or socket I/O through io_uring buffers.
const IO_MEMORY_BYTES: usize = 512 * 1024;

/// What the bench thread asks shard 0 to do.
enum Command {
    /// Make this many calls to the given shard and answer with the time they took.
    Calls(ShardId, u64),
    Stop,
}

/// Two pinned shards (CPUs 0 and 1 when the process may use two, else both unpinned) and a command
/// channel into shard 0.
struct TwoShards {
    commands: mpsc::Sender<Command>,
    timings: mpsc::Receiver<Duration>,
    executors: Vec<glommio::ExecutorJoinHandle<()>>,
    _data_dir: tempfile::TempDir,
}

impl TwoShards {
    fn start() -> TwoShards {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let config = Arc::new(ShardConfig {
            data_dir: data_dir.path().to_path_buf(),
            defaults: BrokerDefaults {
                partitions: 1,
                segment_bytes: 64 * 1024 * 1024,
                segment_ms: 604_800_000,
                retention_ms: 604_800_000,
                retention_bytes: -1,
                max_message_bytes: 1_048_588,
                index_interval_bytes: 4096,
                auto_create_topics: false,
            },
            shard_count: 2,
            pool_bytes: 16 * 1024 * 1024,
            page_cache_bytes: u64::MAX,
            groups: shards::group::GroupConfig::default(),
        });
        let catalog = Arc::new(Catalog::default());
        let cpus = core_affinity::get_core_ids().unwrap_or_default();
        let (command_sender, command_receiver) = mpsc::channel::<Command>();
        let (timing_sender, timing_receiver) = mpsc::channel::<Duration>();
        let mut command_receiver = Some(command_receiver);
        let mut executors = Vec::new();
        for (index, ends) in shards::shard::wire(2).into_iter().enumerate() {
            let placement = match cpus.get(index) {
                Some(cpu) if cpus.len() >= 2 => Placement::Fixed(cpu.id),
                _ => Placement::Unbound,
            };
            let (config, catalog) = (config.clone(), catalog.clone());
            let commands = command_receiver.take();
            let timings = timing_sender.clone();
            let executor = LocalExecutorBuilder::new(placement)
                .name(&format!("bench-shard-{index}"))
                .io_memory(IO_MEMORY_BYTES)
                .spawn(move || async move {
                    let id = ShardId(index as u16);
                    let shard = Shard::start(id, ends, config, catalog).await;
                    match commands {
                        Some(commands) => drive(shard, commands, timings).await,
                        None => shard.wait_stopped().await,
                    }
                })
                .expect("a glommio executor");
            executors.push(executor);
        }
        TwoShards {
            commands: command_sender,
            timings: timing_receiver,
            executors,
            _data_dir: data_dir,
        }
    }

    fn time_calls(&self, target: ShardId, count: u64) -> Duration {
        self.commands
            .send(Command::Calls(target, count))
            .expect("shard 0 is running");
        self.timings.recv().expect("shard 0 answers")
    }

    fn stop(self) {
        self.commands
            .send(Command::Stop)
            .expect("shard 0 is running");
        for executor in self.executors {
            executor.join().expect("a clean executor exit");
        }
    }
}

/// Shard 0's loop: wait for a command on glommio's blocking pool (the reactor never blocks), run it.
async fn drive(
    shard: std::rc::Rc<Shard>,
    commands: mpsc::Receiver<Command>,
    timings: mpsc::Sender<Duration>,
) {
    let mut commands = commands;
    loop {
        let (receiver, command) = glommio::executor()
            .spawn_blocking(move || {
                let command = commands.recv().unwrap_or(Command::Stop);
                (commands, command)
            })
            .await;
        commands = receiver;
        match command {
            Command::Calls(target, count) => {
                let started = Instant::now();
                for _ in 0..count {
                    let answer = shard.call(target, ShardRequest::PartitionSizes).await;
                    assert!(answer.is_ok());
                }
                timings
                    .send(started.elapsed())
                    .expect("the bench thread waits");
            }
            Command::Stop => break,
        }
    }
    for target in [ShardId(1), ShardId(0)] {
        let _ = shard.call(target, ShardRequest::Shutdown).await;
    }
}

fn mesh_round_trip(criterion: &mut Criterion) {
    let shards = TwoShards::start();
    let mut group = criterion.benchmark_group("mesh_round_trip");
    group.bench_function("cross_shard", |bencher| {
        bencher.iter_custom(|count| shards.time_calls(ShardId(1), count))
    });
    group.bench_function("same_shard", |bencher| {
        bencher.iter_custom(|count| shards.time_calls(ShardId(0), count))
    });
    group.finish();
    shards.stop();
}

criterion_group!(benches, mesh_round_trip);
criterion_main!(benches);
