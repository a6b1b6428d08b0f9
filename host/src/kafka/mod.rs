//! The Kafka side: reading a pipeline's topics as one consumer-group
//! member, handing each partition's events to its worker, committing what
//! the workers finalized, and the producer whose writes are waited for.
//!
//! [`client_config`] holds every client's librdkafka settings and has
//! librdkafka validate them; [`consumer`] runs the poll loop, reading
//! messages in bursts from the [`fetch_queue`]; [`rebalance`] handles revocations;
//! [`commit`] commits, periodically and on revoke and shutdown, as
//! [`commit_rule`] allows (who may commit a partition, and when);
//! [`fence`] stops a member cut off from its group before the group can
//! give its partitions away;
//! [`assignment`] holds the partitions this member works on; [`handoff`]
//! is what the consumer and a partition worker share; [`message`] reads a
//! message into an event; [`statistics`] reads librdkafka's statistics for
//! the lag; [`unreadable`] finds a partition stopped at a record that cannot
//! be decoded; [`probe`] connects for `check --connect`; [`producer`] writes records and waits for their
//! acknowledgement (dead letters, and Kafka sinks' records).
//!
//! Auto-commit and auto offset store are off: an offset is committed only
//! when the partition's worker has published it as final.

pub mod assignment;
pub mod client_config;
pub mod commit;
pub mod commit_rule;
pub mod consumer;
pub mod fence;
pub mod fetch_queue;
pub mod handoff;
pub mod message;
pub mod probe;
pub mod producer;
pub mod rebalance;
pub mod statistics;
pub mod unreadable;

pub use consumer::PipelineConsumer;
pub use handoff::{PartitionShared, PartitionWorkers, Publisher, WorkerHandle};
