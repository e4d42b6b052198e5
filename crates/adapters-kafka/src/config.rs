//! Configuration of the Kafka adapter and the naming of its topics and groups.

use rdkafka::ClientConfig;
use std::time::Duration;

/// How to reach Kafka, how to name FlowMate's topics and groups there, and the client settings
/// that decide latency and recovery.
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
    /// answering `Unavailable` (`message.timeout.ms`, `socket.timeout.ms`).
    pub timeout: Duration,
    /// Producer `linger.ms`: how long a message may wait to be batched with the next ones.
    /// Every publish waits for the broker's acknowledgement anyway, so batching gains little.
    pub linger: Duration,
    /// Consumer `fetch.wait.max.ms`: how long the broker may hold a fetch that found nothing.
    /// Apache Kafka answers as soon as data arrives, so there this only bounds idle polling;
    /// brokers that do not (tansu holds every fetch about this long) add it to every hop.
    pub fetch_wait_max: Duration,
    /// Consumer `session.timeout.ms`: a member silent this long leaves the group and its
    /// partitions move to the others. 6 s (Apache Kafka's smallest by default,
    /// `group.min.session.timeout.ms`): a killed worker's partitions move after about 9 s on
    /// the test broker (docs/operations.md). Not below the time a broker holds a JoinGroup
    /// (about 5 s on tansu), or members waiting in a rebalance expire themselves.
    pub session_timeout: Duration,
    /// Consumer `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// Consumer `max.poll.interval.ms`, also the rebalance timeout announced in `JoinGroup`.
    pub max_poll_interval: Duration,
    /// `reconnect.backoff.max.ms` of every client: the longest pause between two connection
    /// attempts to a broker that is down, hence how soon a returning broker is used again.
    pub reconnect_backoff_max: Duration,
    /// How long a consumer group member may go without an assignment, or with events waiting
    /// and none arriving, before the bus reports it (`/healthcheck` warns, a WARN line) and
    /// replaces it with a new member.
    pub stall_after: Duration,
    /// Further librdkafka properties for every client, applied last (e.g. `debug` = `cgrp`,
    /// or settings of a managed cluster).
    pub properties: Vec<(String, String)>,
}

impl KafkaConfig {
    /// Defaults for `brokers`: prefix `flowmate`, 6 partitions, replication 1, client id
    /// `flowmate`, timeout 10 s, linger 0, fetch wait 10 ms, session 6 s, heartbeat 1 s,
    /// max poll interval 300 s, reconnect back-off at most 1 s, stall limit 30 s.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic_prefix: "flowmate".into(),
            partitions: 6,
            replication: 1,
            client_id: "flowmate".into(),
            timeout: Duration::from_secs(10),
            linger: Duration::ZERO,
            fetch_wait_max: Duration::from_millis(10),
            session_timeout: Duration::from_secs(6),
            heartbeat_interval: Duration::from_secs(1),
            max_poll_interval: Duration::from_secs(300),
            reconnect_backoff_max: Duration::from_secs(1),
            stall_after: Duration::from_secs(30),
            properties: Vec::new(),
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

    /// The topic where group generations are announced (see `generations.rs`).
    pub(crate) fn generations_topic(&self) -> String {
        format!("{}.bus.generations", self.topic_prefix)
    }

    /// The settings of a reader outside any group: it assigns itself partitions and never
    /// joins or commits (librdkafka wants a `group.id` for that all the same).
    pub(crate) fn reader(&self) -> ClientConfig {
        let mut client = self.client();
        client
            .set("group.id", format!("{}.bus.reader", self.topic_prefix))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest");
        self.with_properties(client)
    }

    /// The settings every client shares: brokers, client id, connection handling.
    pub(crate) fn client(&self) -> ClientConfig {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            .set("socket.timeout.ms", ms(self.timeout))
            .set("socket.nagle.disable", "true")
            .set("reconnect.backoff.ms", ms(self.reconnect_backoff_max.min(Duration::from_millis(100))))
            .set("reconnect.backoff.max.ms", ms(self.reconnect_backoff_max));
        client
    }

    /// The producer's settings.
    pub(crate) fn producer(&self) -> ClientConfig {
        let mut client = self.client();
        client
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", ms(self.linger))
            .set("message.timeout.ms", ms(self.timeout));
        self.with_properties(client)
    }

    /// The settings of a member of consumer group `group` (the Kafka name).
    pub(crate) fn consumer(&self, group: &str) -> ClientConfig {
        let mut client = self.client();
        client
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", ms(self.fetch_wait_max.max(Duration::from_millis(1))))
            .set("session.timeout.ms", ms(self.session_timeout))
            .set("heartbeat.interval.ms", ms(self.heartbeat_interval))
            .set("max.poll.interval.ms", ms(self.max_poll_interval))
            // Group state, assignment and lag once a second, for the member's health.
            .set("statistics.interval.ms", "1000")
            // Reaching the end of a partition counts as progress (nothing is waiting there).
            .set("enable.partition.eof", "true");
        self.with_properties(client)
    }

    /// The admin client's settings.
    pub(crate) fn admin(&self) -> ClientConfig {
        self.with_properties(self.client())
    }

    fn with_properties(&self, mut client: ClientConfig) -> ClientConfig {
        for (key, value) in &self.properties {
            client.set(key, value);
        }
        client
    }
}

/// A duration in milliseconds, as librdkafka settings want it.
fn ms(duration: Duration) -> String {
    duration.as_millis().to_string()
}
