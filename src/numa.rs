//! NUMA placement through hwloc: which node each shard's core sits on, and binding the shard thread's
//! memory to that node.
//!
//! Owns: topology discovery and the per-thread memory binding. Never: decisions about which cores run
//! shards (that is `config.rs`), or anything on the request path.
//!
//! Binding the thread (hwloc's THREAD memory binding with the Bind policy) rather than individual areas
//! covers everything the shard touches first: its pool buffers, its heap, and the page-cache pages of
//! the segments it maps and writes, which the kernel allocates on the faulting thread's policy. On a
//! one-node machine the binding is harmless; where binding is unsupported we log and run unbound.

use std::collections::BTreeMap;
use std::sync::Arc;

use hwlocality::memory::binding::{MemoryBindingFlags, MemoryBindingPolicy};
use hwlocality::memory::nodeset::NodeSet;
use hwlocality::object::types::ObjectType;
use hwlocality::Topology;
use log::{info, warn};

/// The machine's NUMA layout as far as the shards need it. Shared read-only by every shard thread.
pub struct Numa {
    topology: Option<Topology>,
    /// For each NUMA node's OS index: its CPUs.
    nodes: BTreeMap<usize, Vec<usize>>,
}

impl Numa {
    /// Discovers the topology and logs it. Never fails: without hwloc's view we run unbound.
    pub fn discover() -> Arc<Numa> {
        let topology = match Topology::new() {
            Ok(topology) => topology,
            Err(error) => {
                warn!(
                    "hwloc could not read the topology ({error}); shards run without NUMA binding"
                );
                return Arc::new(Numa {
                    topology: None,
                    nodes: BTreeMap::new(),
                });
            }
        };
        let mut nodes = BTreeMap::new();
        for node in topology.objects_with_type(ObjectType::NUMANode) {
            let (Some(index), Some(cpuset)) = (node.os_index(), node.cpuset()) else {
                continue;
            };
            let cpus: Vec<usize> = cpuset.iter_set().map(usize::from).collect();
            nodes.insert(index, cpus);
        }
        let packages = topology.objects_with_type(ObjectType::Package).len();
        let cores = topology.objects_with_type(ObjectType::Core).len();
        let threads = topology.objects_with_type(ObjectType::PU).len();
        info!(
            "topology: {packages} package(s), {cores} core(s), {threads} hardware thread(s), {} NUMA node(s) {:?}",
            nodes.len(),
            nodes
        );
        Arc::new(Numa {
            topology: Some(topology),
            nodes,
        })
    }

    /// The NUMA node of a CPU, if known.
    pub fn node_of(&self, cpu: usize) -> Option<usize> {
        self.nodes
            .iter()
            .find(|(_, cpus)| cpus.contains(&cpu))
            .map(|(&node, _)| node)
    }

    /// Binds the calling thread's future memory allocations to `node`. Returns whether it took.
    pub fn bind_current_thread(&self, node: usize) -> bool {
        let Some(topology) = &self.topology else {
            return false;
        };
        let mut nodeset = NodeSet::new();
        nodeset.set(node);
        match topology.bind_memory(
            &nodeset,
            MemoryBindingPolicy::Bind,
            MemoryBindingFlags::THREAD,
        ) {
            Ok(()) => true,
            Err(error) => {
                warn!("could not bind memory to NUMA node {node}: {error}");
                false
            }
        }
    }
}
