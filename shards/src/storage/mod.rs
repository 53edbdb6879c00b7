//! Storage: record batch validation, segments, indexes, partition logs and their recovery.
