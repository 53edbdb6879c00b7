//! The control plane: version negotiation, topic creation, leader discovery, offset lookup, and the
//! plan of which connection serves which partitions.
//!
//! Owns: every request that is not Produce or Fetch, and `plan_connections`. Never: the hot loops.
//! All requests here are blocking calls on a connection with nothing else in flight.

use std::collections::{BTreeMap, HashMap};
use std::thread;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, BrokerId, CreateTopicsRequest, ListOffsetsRequest, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::error::{Error, Result};
use crate::limits::{CLIENT_ID, METADATA_WAIT, PRODUCE_TIMEOUT_MS, RETRY_BACKOFF};
use crate::produce_request::{PRODUCE_VERSION_MAX, PRODUCE_VERSION_MIN};
use crate::wire::Connection;

/// Fetch versions we use: v4 is the oldest Kafka 4 serves; v13 names topics by id.
pub const FETCH_VERSION_MIN: i16 = 4;
pub const FETCH_VERSION_MAX: i16 = 12;
/// Metadata up to v12 still names topics in requests, which is all we need.
const METADATA_VERSION_RANGE: (i16, i16) = (1, 12);
const LIST_OFFSETS_VERSION_RANGE: (i16, i16) = (1, 10);
/// CreateTopics v4+ may leave the replication factor to the broker's default.
const CREATE_TOPICS_VERSION_RANGE: (i16, i16) = (2, 7);
/// The ApiVersions version we ask with first; v3 carries our client name, v0 every broker reads.
const API_VERSIONS_VERSION: i16 = 3;
const UNSUPPORTED_VERSION: i16 = 35;
const TOPIC_ALREADY_EXISTS: i16 = 36;
/// ListOffsets timestamps meaning "earliest" and "latest".
pub const OFFSET_EARLIEST: i64 = -2;
pub const OFFSET_LATEST: i64 = -1;

/// The version of each API this run uses: the highest both we and the broker support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub produce: i16,
    pub fetch: i16,
    pub metadata: i16,
    pub list_offsets: i16,
    pub create_topics: i16,
}

/// A Kafka error code as `Name (code)`, for reports.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::Unknown(_)) | None => format!("error code {code}"),
        Some(error) => format!("{error:?} ({code})"),
    }
}

/// Asks the broker which versions it serves and picks ours.
pub fn negotiate(connection: &mut Connection) -> Result<Versions> {
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    let response = match connection.call(API_VERSIONS_VERSION, &request) {
        Ok(response) if response.error_code != UNSUPPORTED_VERSION => response,
        // A broker without v3 answers in v0 (KIP-511), which a v3 decoder may not read: ask again.
        _ => connection.call(0, &ApiVersionsRequest::default())?,
    };
    if response.error_code != 0 {
        return Err(Error::new(format!(
            "ApiVersions failed: {}",
            error_name(response.error_code)
        )));
    }
    choose_versions(&response)
}

fn choose_versions(response: &ApiVersionsResponse) -> Result<Versions> {
    let pick = |key: ApiKey, (ours_min, ours_max): (i16, i16)| -> Result<i16> {
        let theirs = response
            .api_keys
            .iter()
            .find(|api| api.api_key == key as i16)
            .ok_or_else(|| Error::new(format!("the broker does not serve {key:?}")))?;
        let highest = ours_max.min(theirs.max_version);
        if highest < ours_min.max(theirs.min_version) {
            return Err(Error::new(format!(
                "no common {key:?} version: we speak {ours_min}..={ours_max}, the broker {}..={}",
                theirs.min_version, theirs.max_version
            )));
        }
        Ok(highest)
    };
    Ok(Versions {
        produce: pick(ApiKey::Produce, (PRODUCE_VERSION_MIN, PRODUCE_VERSION_MAX))?,
        fetch: pick(ApiKey::Fetch, (FETCH_VERSION_MIN, FETCH_VERSION_MAX))?,
        metadata: pick(ApiKey::Metadata, METADATA_VERSION_RANGE)?,
        list_offsets: pick(ApiKey::ListOffsets, LIST_OFFSETS_VERSION_RANGE)?,
        create_topics: pick(ApiKey::CreateTopics, CREATE_TOPICS_VERSION_RANGE)?,
    })
}

/// Creates `topic` with `partitions` partitions; an existing topic is fine (its size is checked
/// when the layout is read).
pub fn create_topic(
    connection: &mut Connection,
    versions: &Versions,
    topic: &str,
    partitions: usize,
) -> Result<()> {
    let replication_factor = if versions.create_topics >= 4 { -1 } else { 1 };
    let creatable = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_num_partitions(partitions as i32)
        .with_replication_factor(replication_factor);
    let request = CreateTopicsRequest::default()
        .with_topics(vec![creatable])
        .with_timeout_ms(PRODUCE_TIMEOUT_MS);
    let response = connection.call(versions.create_topics, &request)?;
    for result in &response.topics {
        if result.error_code != 0 && result.error_code != TOPIC_ALREADY_EXISTS {
            return Err(Error::new(format!(
                "CreateTopics {topic}: {} {}",
                error_name(result.error_code),
                result.error_message.as_deref().unwrap_or("")
            )));
        }
    }
    Ok(())
}

/// Which broker leads each partition, and where to reach each broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLayout {
    /// (partition, leader node id) for partitions 0..wanted, in partition order.
    pub leaders: Vec<(i32, i32)>,
    /// Node id to its advertised `host:port`.
    pub brokers: HashMap<i32, String>,
}

/// Reads the layout of partitions 0..`partitions` of `topic`. With `wait`, retries for up to
/// `METADATA_WAIT` while the topic or its leaders are not there yet (just after creation).
pub fn topic_layout(
    connection: &mut Connection,
    versions: &Versions,
    topic: &str,
    partitions: usize,
    wait: bool,
) -> Result<TopicLayout> {
    let deadline = Instant::now() + METADATA_WAIT;
    loop {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                TopicName(StrBytes::from_string(topic.to_string())),
            ))]))
            .with_allow_auto_topic_creation(false);
        let response = connection.call(versions.metadata, &request)?;
        match read_layout(&response, topic, partitions) {
            Ok(layout) => return Ok(layout),
            Err(problem) if wait && Instant::now() < deadline => {
                log_retry(&problem);
                thread::sleep(RETRY_BACKOFF);
            }
            Err(problem) => return Err(problem),
        }
    }
}

fn log_retry(problem: &Error) {
    eprintln!("waiting for the topic: {problem}");
}

fn read_layout(response: &MetadataResponse, topic: &str, wanted: usize) -> Result<TopicLayout> {
    let found = response
        .topics
        .iter()
        .find(|candidate| candidate.name.as_ref().map(|name| name.0.as_str()) == Some(topic))
        .ok_or_else(|| Error::new(format!("metadata does not list topic {topic}")))?;
    if found.error_code != 0 {
        return Err(Error::new(format!(
            "topic {topic}: {} (use --create-topic to create it)",
            error_name(found.error_code)
        )));
    }
    let mut leaders = Vec::with_capacity(wanted);
    for partition in 0..wanted as i32 {
        let entry = found
            .partitions
            .iter()
            .find(|candidate| candidate.partition_index == partition)
            .ok_or_else(|| {
                Error::new(format!(
                    "topic {topic} has {} partitions, fewer than the {wanted} asked for",
                    found.partitions.len()
                ))
            })?;
        if entry.error_code != 0 || entry.leader_id.0 < 0 {
            return Err(Error::new(format!(
                "partition {partition} has no leader yet ({})",
                error_name(entry.error_code)
            )));
        }
        leaders.push((partition, entry.leader_id.0));
    }
    let brokers = response
        .brokers
        .iter()
        .map(|broker| {
            (
                broker.node_id.0,
                format!("{}:{}", broker.host.as_str(), broker.port),
            )
        })
        .collect::<HashMap<_, _>>();
    if let Some((partition, leader)) = leaders
        .iter()
        .find(|(_, leader)| !brokers.contains_key(leader))
    {
        return Err(Error::new(format!(
            "partition {partition} is led by broker {leader}, which metadata does not list"
        )));
    }
    Ok(TopicLayout { leaders, brokers })
}

/// The offset of each of `partitions` at `timestamp` (`OFFSET_EARLIEST` or `OFFSET_LATEST`), asked
/// of their leader on `connection`.
pub fn list_offsets(
    connection: &mut Connection,
    versions: &Versions,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<Vec<i64>> {
    let wanted = partitions
        .iter()
        .map(|&partition| {
            ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)
        })
        .collect();
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(wanted)])
        .with_timeout_ms(PRODUCE_TIMEOUT_MS);
    let response = connection.call(versions.list_offsets, &request)?;
    let mut found = HashMap::new();
    for answer in response.topics.iter().flat_map(|topic| &topic.partitions) {
        if answer.error_code != 0 {
            return Err(Error::new(format!(
                "ListOffsets partition {}: {}",
                answer.partition_index,
                error_name(answer.error_code)
            )));
        }
        found.insert(answer.partition_index, answer.offset);
    }
    partitions
        .iter()
        .map(|partition| {
            found.get(partition).copied().ok_or_else(|| {
                Error::new(format!(
                    "ListOffsets did not answer for partition {partition}"
                ))
            })
        })
        .collect()
}

/// What every mode learns before it starts: the versions to speak and where the partitions live.
pub struct Cluster {
    pub versions: Versions,
    pub layout: TopicLayout,
}

/// Connects to the bootstrap broker, negotiates versions, creates the topic if asked, and reads
/// the layout of partitions 0..`partitions`.
pub fn discover(bootstrap: &str, topic: &str, partitions: usize, create: bool) -> Result<Cluster> {
    let mut connection = Connection::connect(bootstrap)?;
    let versions = negotiate(&mut connection)?;
    if create {
        create_topic(&mut connection, &versions, topic, partitions)?;
    }
    let layout = topic_layout(&mut connection, &versions, topic, partitions, create)?;
    let cluster = Cluster { versions, layout };
    if create {
        wait_until_served(&cluster, topic)?;
    }
    Ok(cluster)
}

/// Waits until every leader serves its partitions. Kafka lists a new partition's leader in
/// Metadata a moment before that leader accepts requests for it, and the first produces would
/// fail with NOT_LEADER_OR_FOLLOWER; ListOffsets goes through the same check, so it is the probe.
fn wait_until_served(cluster: &Cluster, topic: &str) -> Result<()> {
    let deadline = Instant::now() + METADATA_WAIT;
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for &(partition, leader) in &cluster.layout.leaders {
        by_leader.entry(leader).or_default().push(partition);
    }
    for (leader, partitions) in by_leader {
        let mut connection = Connection::connect(&cluster.address_of(leader))?;
        loop {
            match list_offsets(
                &mut connection,
                &cluster.versions,
                topic,
                &partitions,
                OFFSET_LATEST,
            ) {
                Ok(_) => break,
                Err(problem) if Instant::now() < deadline => {
                    log_retry(&problem);
                    thread::sleep(RETRY_BACKOFF);
                }
                Err(problem) => return Err(problem),
            }
        }
    }
    Ok(())
}

impl Cluster {
    /// The advertised `host:port` of `leader` (present: `read_layout` checked every leader).
    pub fn address_of(&self, leader: i32) -> String {
        self.layout
            .brokers
            .get(&leader)
            .cloned()
            .unwrap_or_default()
    }
}

/// One connection of the run: the leader it talks to and the partitions it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub leader: i32,
    pub partitions: Vec<i32>,
}

/// Spreads partitions over about `connections` connections. A connection talks to one leader, so
/// each leader gets a share of connections proportional to the partitions it leads (at least one,
/// at most one per partition), and deals its partitions out round-robin over them.
pub fn plan_connections(leaders: &[(i32, i32)], connections: usize) -> Vec<Assignment> {
    assert!(connections > 0);
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for &(partition, leader) in leaders {
        by_leader.entry(leader).or_default().push(partition);
    }
    let total = leaders.len().max(1);
    let mut plan = Vec::new();
    for (leader, partitions) in by_leader {
        let share = (connections * partitions.len() + total / 2) / total;
        let share = share.clamp(1, partitions.len());
        let mut assignments = vec![Vec::new(); share];
        for (index, partition) in partitions.into_iter().enumerate() {
            assignments[index % share].push(partition);
        }
        plan.extend(
            assignments
                .into_iter()
                .map(|partitions| Assignment { leader, partitions }),
        );
    }
    plan
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    use super::*;

    fn partitions_of(plan: &[Assignment]) -> Vec<Vec<i32>> {
        plan.iter()
            .map(|assignment| assignment.partitions.clone())
            .collect()
    }

    #[test]
    fn one_leader_deals_partitions_round_robin() {
        let leaders: Vec<(i32, i32)> = (0..8).map(|partition| (partition, 1)).collect();
        let plan = plan_connections(&leaders, 3);
        assert_eq!(
            partitions_of(&plan),
            vec![vec![0, 3, 6], vec![1, 4, 7], vec![2, 5]]
        );
        assert!(plan.iter().all(|assignment| assignment.leader == 1));
        // More connections than partitions: one partition each, no idle connection.
        assert_eq!(plan_connections(&leaders[..2], 5).len(), 2);
    }

    #[test]
    fn several_leaders_share_connections_by_partitions() {
        let leaders = vec![(0, 1), (1, 2), (2, 1), (3, 2), (4, 1), (5, 1)];
        let plan = plan_connections(&leaders, 3);
        let leader_one: Vec<_> = plan.iter().filter(|a| a.leader == 1).collect();
        let leader_two: Vec<_> = plan.iter().filter(|a| a.leader == 2).collect();
        assert_eq!(leader_one.len(), 2);
        assert_eq!(leader_two.len(), 1);
        let mut all: Vec<i32> = plan.iter().flat_map(|a| a.partitions.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..6).collect::<Vec<_>>());
        // Even one connection asked for: every leader still needs its own.
        assert_eq!(plan_connections(&leaders, 1).len(), 2);
    }

    fn api(key: ApiKey, min_version: i16, max_version: i16) -> ApiVersion {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min_version)
            .with_max_version(max_version)
    }

    #[test]
    fn versions_are_the_highest_both_sides_speak() {
        // Kafka 4.0's ranges.
        let response = ApiVersionsResponse::default().with_api_keys(vec![
            api(ApiKey::Produce, 3, 12),
            api(ApiKey::Fetch, 4, 17),
            api(ApiKey::Metadata, 0, 12),
            api(ApiKey::ListOffsets, 1, 9),
            api(ApiKey::CreateTopics, 2, 7),
        ]);
        let versions = choose_versions(&response).expect("overlap");
        assert_eq!(
            versions,
            Versions {
                produce: 12,
                fetch: 12,
                metadata: 12,
                list_offsets: 9,
                create_topics: 7
            }
        );
        let old = ApiVersionsResponse::default().with_api_keys(vec![api(ApiKey::Produce, 0, 2)]);
        assert!(choose_versions(&old).is_err());
    }

    #[test]
    fn error_codes_have_names() {
        assert_eq!(error_name(6), "NotLeaderOrFollower (6)");
        assert_eq!(error_name(-999), "error code -999");
    }
}
