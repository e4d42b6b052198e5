//! The subscriber: one `StreamConsumer` per subscription, in consumer group `<prefix>.<group>`,
//! auto-committing only the offsets stored by `ack` (at least once).

use crate::config::KafkaConfig;
use crate::context::KafkaContext;
use crate::errors::classify;
use crate::topics;
use async_trait::async_trait;
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::ids::EventId;
use flow_domain::ports::EventStream;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use std::collections::HashMap;
use tokio::sync::watch;

/// Where a delivered message sits: topic, partition, offset.
type Position = (String, i32, i64);

/// A subscription of one group member. Dropping it leaves the group and commits the offsets
/// stored by `ack`; unacknowledged events are redelivered to the group.
pub struct KafkaStream {
    consumer: StreamConsumer<KafkaContext>,
    /// Delivered, not yet acknowledged events (one id may sit at several offsets when the
    /// relay published it twice).
    delivered: HashMap<EventId, Vec<Position>>,
    shutdown: watch::Receiver<bool>,
}

impl KafkaStream {
    /// Joins group `<prefix>.<group>` on the topics of `names` (created when missing). A new
    /// group starts from the earliest retained event, so nothing published after `subscribe`
    /// returns is missed while the group is being assigned its partitions.
    ///
    /// # Errors
    /// `Unavailable` when the topics cannot be ensured; `Other` on a bad configuration.
    pub(crate) async fn subscribe(
        config: &KafkaConfig,
        group: &str,
        names: &[&'static str],
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, PortError> {
        topics::ensure(config, names).await.map_err(|e| PortError::Unavailable(format!("{e:#}")))?;
        let consumer: StreamConsumer<KafkaContext> = config
            .consumer(&config.group(group))
            .create_with_context(KafkaContext)
            .map_err(|e| PortError::Other(anyhow::Error::new(e).context("kafka consumer")))?;
        let topics: Vec<String> = names.iter().map(|n| config.topic(n)).collect();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(classify)?;
        Ok(Self { consumer, delivered: HashMap::new(), shutdown })
    }

    fn commit_stored(&self) {
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(err) => tracing::warn!(error = %err, "kafka: committing stored offsets failed"),
        }
    }
}

#[async_trait]
impl EventStream for KafkaStream {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.shutdown.borrow() {
                self.commit_stored();
                return None;
            }
            let received = tokio::select! {
                changed = self.shutdown.changed() => {
                    if changed.is_err() {
                        // The bus is gone: nothing will ever publish to this stream again.
                        self.commit_stored();
                        return None;
                    }
                    continue;
                }
                received = self.consumer.recv() => received.map(|m| {
                    let position = (m.topic().to_owned(), m.partition(), m.offset());
                    (position, serde_json::from_slice::<Event>(m.payload().unwrap_or_default()))
                }),
            };
            match received {
                Ok((position, Ok(mut event))) => {
                    event.key = None;
                    self.delivered.entry(event.id).or_default().push(position);
                    return Some(event);
                }
                Ok(((topic, partition, offset), Err(err))) => {
                    tracing::warn!(%topic, partition, offset, error = %err, "kafka: skipping a message that is not an event");
                    if let Err(err) = self.consumer.store_offset(&topic, partition, offset) {
                        tracing::debug!(error = %err, "kafka: storing the offset of a skipped message");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "kafka: consumer error"),
            }
        }
    }

    async fn ack(&mut self, event: &Event) -> Result<(), PortError> {
        let Some(positions) = self.delivered.remove(&event.id) else {
            return Ok(());
        };
        for (topic, partition, offset) in positions {
            match self.consumer.store_offset(&topic, partition, offset) {
                Ok(()) => {}
                // The partition moved to another member meanwhile: it will redeliver the event.
                Err(KafkaError::StoreOffset(
                    RDKafkaErrorCode::State | RDKafkaErrorCode::UnknownPartition,
                )) => {
                    tracing::debug!(%topic, partition, offset, "kafka: ack after the partition was revoked");
                }
                Err(err) => return Err(PortError::Unavailable(format!("kafka: {err}"))),
            }
        }
        Ok(())
    }
}
