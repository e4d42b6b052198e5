//! Group generations: how the members of a consumer group leave, together, a group the broker
//! cannot settle.
//!
//! A broker can keep a group from ever completing a rebalance (tansu 0.6.0 keeps a departed
//! leader; docs/operations.md). A new member of the same group meets the same state, so the way
//! out is a new group: generation `n` of group `<prefix>.<group>` is the Kafka group
//! `<prefix>.<group>.g<n>` (generation 0 is the plain name). A member that stalls past the limit
//! announces the next generation on the topic `<prefix>.bus.generations` (one
//! partition, keyed by group) and moves there; every other member of the group reads the
//! announcement within a second and follows, and a process that starts reads the topic first.
//! The new group starts where the old one had committed (see `subscriber.rs`), so nothing
//! acknowledged is delivered again and nothing unacknowledged is lost.

use crate::config::KafkaConfig;
use crate::context::KafkaContext;
use crate::topics;
use flow_domain::error::PortError;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The generations announced so far, read from the generations topic.
pub struct Generations {
    consumer: BaseConsumer<KafkaContext>,
    known: HashMap<String, u32>,
}

/// The Kafka group of generation `generation` of the group named `base` (`<prefix>.<group>`).
pub(crate) fn group_id(base: &str, generation: u32) -> String {
    if generation == 0 { base.to_owned() } else { format!("{base}.g{generation}") }
}

impl Generations {
    /// Creates the generations topic when missing and reads it to its end (at most the
    /// configured timeout).
    ///
    /// # Errors
    /// `Unavailable` when the topic cannot be ensured or read.
    pub(crate) async fn open(config: &KafkaConfig) -> Result<Self, PortError> {
        let topic = config.generations_topic();
        topics::ensure_topics(config, &[(topic.clone(), 1)])
            .await
            .map_err(|e| PortError::Unavailable(format!("{e:#}")))?;
        let consumer: BaseConsumer<KafkaContext> = config
            .reader()
            .create_with_context(KafkaContext)
            .map_err(|e| PortError::Other(anyhow::Error::new(e).context("kafka generations reader")))?;
        let mut start = TopicPartitionList::new();
        start
            .add_partition_offset(&topic, 0, Offset::Beginning)
            .map_err(|e| PortError::Other(anyhow::Error::new(e)))?;
        consumer.assign(&start).map_err(|e| PortError::Unavailable(format!("kafka: {e}")))?;
        let mut generations = Self { consumer, known: HashMap::new() };
        let deadline = Instant::now() + config.timeout;
        tokio::task::spawn_blocking(move || {
            generations.catch_up(deadline);
            generations
        })
        .await
        .map_err(|e| PortError::Other(anyhow::Error::new(e)))
    }

    fn catch_up(&mut self, deadline: Instant) {
        while Instant::now() < deadline {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => take(&mut self.known, &message),
                Some(Err(KafkaError::PartitionEOF(_))) => return,
                Some(Err(err)) => tracing::debug!(error = %err, "kafka: reading the generations topic"),
                None => {}
            }
        }
        tracing::warn!("kafka: the generations topic was not read to its end in time");
    }

    /// Takes in what was announced since the last look, without waiting.
    pub(crate) fn refresh(&mut self) {
        while let Some(result) = self.consumer.poll(Duration::ZERO) {
            if let Ok(message) = result {
                take(&mut self.known, &message);
            }
        }
    }

    /// The latest generation announced for the group named `base`.
    pub(crate) fn of(&self, base: &str) -> u32 {
        self.known.get(base).copied().unwrap_or(0)
    }
}

/// Takes in one announcement: the highest generation of a group wins.
fn take(known: &mut HashMap<String, u32>, message: &BorrowedMessage<'_>) {
    let Some(Ok(group)) = message.key_view::<str>() else { return };
    let generation = message
        .payload()
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
        .and_then(|v| v["generation"].as_u64())
        .and_then(|g| u32::try_from(g).ok());
    if let Some(generation) = generation {
        let known = known.entry(group.to_owned()).or_default();
        *known = (*known).max(generation);
    }
}

/// Announces generation `generation` of the group named `base` to every member.
///
/// # Errors
/// `Unavailable` when the broker does not take the announcement.
pub(crate) async fn announce(config: &KafkaConfig, base: &str, generation: u32) -> Result<(), PortError> {
    let producer: FutureProducer<KafkaContext> = config
        .producer()
        .create_with_context(KafkaContext)
        .map_err(|e| PortError::Other(anyhow::Error::new(e).context("kafka producer")))?;
    let payload = json!({ "generation": generation }).to_string();
    let topic = config.generations_topic();
    let record = FutureRecord::to(&topic).key(base).payload(&payload);
    producer
        .send(record, Timeout::After(config.timeout))
        .await
        .map(|_| ())
        .map_err(|(err, _)| PortError::Unavailable(format!("kafka: announcing a group generation: {err}")))
}
