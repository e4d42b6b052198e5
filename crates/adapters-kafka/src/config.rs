//! Configuration of the Kafka adapter and the naming of its topics and groups.

use std::time::Duration;

/// How to reach Kafka and how to name FlowMate's topics and groups there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// Prefix of every topic (`<prefix>.<event name>`) and group (`<prefix>.<group>`).
    pub topic_prefix: String,
    /// Partitions of a topic created by the adapter.
    pub partitions: i32,
    /// Replication factor of a topic created by the adapter.
    pub replication: i32,
    /// `client.id` of the producer and consumers.
    pub client_id: String,
    /// How long a publish, a topic creation or a health check may wait for the broker before
    /// answering `Unavailable`.
    pub timeout: Duration,
}

impl KafkaConfig {
    /// Defaults for `brokers`: prefix `flowmate`, 6 partitions, replication 1, client id
    /// `flowmate`, timeout 10 s.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic_prefix: "flowmate".into(),
            partitions: 6,
            replication: 1,
            client_id: "flowmate".into(),
            timeout: Duration::from_secs(10),
        }
    }

    /// The topic of the events named `name`.
    pub fn topic(&self, name: &str) -> String {
        format!("{}.{name}", self.topic_prefix)
    }

    /// The Kafka consumer group of the bus group `group`.
    pub fn group(&self, group: &str) -> String {
        format!("{}.{group}", self.topic_prefix)
    }

    /// `timeout` in milliseconds, as librdkafka settings want it.
    pub(crate) fn timeout_ms(&self) -> String {
        self.timeout.as_millis().to_string()
    }
}
