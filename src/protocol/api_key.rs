//! The Kafka API keys FluxMQ knows, and from which version each one's request uses the flexible encoding
//! (compact strings and arrays, tagged fields, request header v2).
//!
//! Owns: the key numbers and the flexible-version table, taken from Kafka 4.1's message specs.
//! Never: which versions we serve (the handlers' table decides that), I/O, or panics on unknown keys.

/// Marks an API whose requests are never flexible (SaslHandshake, OffsetDelete).
const FLEXIBLE_NEVER: i16 = i16::MAX;

macro_rules! api_keys {
    ($($name:ident = $key:literal, flexible from $flexible_version_min:expr;)*) => {
        /// A Kafka API key, as carried in the first two bytes of every request header.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i16)]
        pub enum ApiKey {
            $($name = $key,)*
        }

        impl ApiKey {
            /// Every key in this table, in key order.
            pub const ALL: &'static [ApiKey] = &[$(ApiKey::$name,)*];

            /// The key for a wire value, or `None` for a key this table does not know.
            pub fn from_i16(key: i16) -> Option<ApiKey> {
                match key {
                    $($key => Some(ApiKey::$name),)*
                    _ => None,
                }
            }

            /// The first request version that uses the flexible encoding.
            fn flexible_version_min(self) -> i16 {
                match self {
                    $(ApiKey::$name => $flexible_version_min,)*
                }
            }
        }
    };
}

api_keys! {
    Produce = 0, flexible from 9;
    Fetch = 1, flexible from 12;
    ListOffsets = 2, flexible from 6;
    Metadata = 3, flexible from 9;
    OffsetCommit = 8, flexible from 8;
    OffsetFetch = 9, flexible from 6;
    FindCoordinator = 10, flexible from 3;
    JoinGroup = 11, flexible from 6;
    Heartbeat = 12, flexible from 4;
    LeaveGroup = 13, flexible from 4;
    SyncGroup = 14, flexible from 4;
    DescribeGroups = 15, flexible from 5;
    ListGroups = 16, flexible from 3;
    SaslHandshake = 17, flexible from FLEXIBLE_NEVER;
    ApiVersions = 18, flexible from 3;
    CreateTopics = 19, flexible from 5;
    DeleteTopics = 20, flexible from 4;
    DeleteRecords = 21, flexible from 2;
    InitProducerId = 22, flexible from 2;
    OffsetForLeaderEpoch = 23, flexible from 4;
    AddPartitionsToTxn = 24, flexible from 3;
    AddOffsetsToTxn = 25, flexible from 3;
    EndTxn = 26, flexible from 3;
    TxnOffsetCommit = 28, flexible from 3;
    DescribeConfigs = 32, flexible from 4;
    AlterConfigs = 33, flexible from 2;
    DescribeLogDirs = 35, flexible from 2;
    SaslAuthenticate = 36, flexible from 2;
    CreatePartitions = 37, flexible from 2;
    DeleteGroups = 42, flexible from 2;
    IncrementalAlterConfigs = 44, flexible from 1;
    OffsetDelete = 47, flexible from FLEXIBLE_NEVER;
    DescribeCluster = 60, flexible from 0;
    DescribeProducers = 61, flexible from 0;
    DescribeTransactions = 65, flexible from 0;
    ListTransactions = 66, flexible from 0;
    ConsumerGroupHeartbeat = 68, flexible from 0;
    ConsumerGroupDescribe = 69, flexible from 0;
    DescribeTopicPartitions = 75, flexible from 0;
}

impl ApiKey {
    /// Whether a request of this version uses the flexible encoding and request header v2. Versions above the
    /// newest stay flexible, as in Kafka's generated code, so an unsupported ApiVersions v5 still frames correctly.
    pub fn request_is_flexible(self, version: i16) -> bool {
        version >= self.flexible_version_min()
    }

    /// Whether the response carries response header v1 (a tagged-field byte after the correlation id).
    /// ApiVersions never does, whatever its version: clients parse that response before they know our versions.
    pub fn response_is_flexible(self, version: i16) -> bool {
        match self {
            ApiKey::ApiVersions => false,
            _ => self.request_is_flexible(version),
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey as OracleKey;

    #[test]
    fn flexible_table_matches_the_kafka_specs() {
        for key in ApiKey::ALL {
            let oracle = OracleKey::try_from(*key as i16).expect("key known to kafka-protocol");
            let range = oracle.valid_versions();
            for version in 0..=range.max {
                let request_flexible = oracle.request_header_version(version) == 2;
                let response_flexible = oracle.response_header_version(version) == 1;
                assert_eq!(
                    key.request_is_flexible(version),
                    request_flexible,
                    "{key:?} v{version}"
                );
                assert_eq!(
                    key.response_is_flexible(version),
                    response_flexible,
                    "{key:?} v{version}"
                );
            }
        }
    }

    #[test]
    fn from_i16_round_trips_and_rejects_unknown_keys() {
        for key in ApiKey::ALL {
            assert_eq!(ApiKey::from_i16(*key as i16), Some(*key));
        }
        assert_eq!(ApiKey::from_i16(-1), None);
        assert_eq!(ApiKey::from_i16(27), None);
        assert_eq!(ApiKey::from_i16(i16::MAX), None);
    }
}
