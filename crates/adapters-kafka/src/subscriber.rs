//! The subscriber: one `StreamConsumer` per subscription, in consumer group `<prefix>.<group>`,
//! auto-committing only the offsets stored by `ack` (at least once).
//!
//! While it waits for events the stream checks its group member once a second (see
//! `member.rs`); a member stalled past [`KafkaConfig::stall_after`] is closed and replaced by a
//! new one, again after twice as long (up to 8 times the limit) while the stall lasts.

use crate::config::KafkaConfig;
use crate::context::MemberContext;
use crate::errors::classify;
use crate::member::{Member, Verdict};
use crate::topics;
use async_trait::async_trait;
use chrono::Utc;
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::ids::EventId;
use flow_domain::ports::EventStream;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// How often a waiting stream checks its member.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Where a delivered message sits: topic, partition, offset.
type Position = (String, i32, i64);

/// A subscription of one group member. Dropping it leaves the group and commits the offsets
/// stored by `ack`; unacknowledged events are redelivered to the group.
pub struct KafkaStream {
    consumer: StreamConsumer<MemberContext>,
    /// Delivered, not yet acknowledged events (one id may sit at several offsets when the
    /// relay published it twice).
    delivered: HashMap<EventId, Vec<Position>>,
    shutdown: watch::Receiver<bool>,
    config: Arc<KafkaConfig>,
    topics: Vec<String>,
    member: Arc<Member>,
    check: Interval,
    /// No replacement before this instant (back-off between replacements).
    replace_not_before: Instant,
    /// Replacements in a row without the member recovering.
    replacements_in_a_row: u32,
}

impl KafkaStream {
    /// Joins group `<prefix>.<group>` on the topics of `names` (created when missing). A new
    /// group starts from the earliest retained event, so nothing published after `subscribe`
    /// returns is missed while the group is being assigned its partitions.
    ///
    /// # Errors
    /// `Unavailable` when the topics cannot be ensured; `Other` on a bad configuration.
    pub(crate) async fn subscribe(
        config: Arc<KafkaConfig>,
        group: &str,
        names: &[&'static str],
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, PortError> {
        topics::ensure(&config, names).await.map_err(|e| PortError::Unavailable(format!("{e:#}")))?;
        let member = Arc::new(Member::new(config.group(group), config.stall_after, Utc::now()));
        let topics: Vec<String> = names.iter().map(|n| config.topic(n)).collect();
        let consumer = join(&config, &member, &topics)?;
        let mut check = tokio::time::interval(CHECK_EVERY);
        check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(Self {
            consumer,
            delivered: HashMap::new(),
            shutdown,
            replace_not_before: Instant::now() + config.stall_after,
            config,
            topics,
            member,
            check,
            replacements_in_a_row: 0,
        })
    }

    /// The member's shared state (for the bus monitor).
    pub(crate) fn member(&self) -> Arc<Member> {
        self.member.clone()
    }

    /// Checks the member; replaces it when it stalled past the limit and the back-off allows.
    fn supervise(&mut self) {
        match self.member.check(Utc::now()) {
            Verdict::Fine => self.replacements_in_a_row = 0,
            Verdict::Stalled(status) if Instant::now() >= self.replace_not_before => {
                match join(&self.config, &self.member, &self.topics) {
                    Ok(consumer) => {
                        self.replacements_in_a_row += 1;
                        let reason = status.stall_reason().unwrap_or_default();
                        tracing::warn!(group = %self.member.group, %reason, replacement = self.replacements_in_a_row,
                            "event bus: replacing the stalled member of a consumer group");
                        self.commit_stored();
                        self.delivered.clear();
                        let old = std::mem::replace(&mut self.consumer, consumer);
                        // Closing leaves the group, which may wait on the broker: not on this thread.
                        tokio::task::spawn_blocking(move || drop(old));
                        self.member.replaced(Utc::now());
                    }
                    Err(err) => tracing::warn!(group = %self.member.group, error = %err,
                        "event bus: cannot create a consumer to replace a stalled member"),
                }
                let factor = 1u32 << self.replacements_in_a_row.min(3);
                self.replace_not_before = Instant::now() + self.config.stall_after * factor;
            }
            Verdict::Stalled(_) => {}
        }
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
            self.member.waiting(Utc::now());
            let received = tokio::select! {
                changed = self.shutdown.changed() => {
                    if changed.is_err() {
                        // The bus is gone: nothing will ever publish to this stream again.
                        self.commit_stored();
                        return None;
                    }
                    continue;
                }
                _ = self.check.tick() => {
                    self.supervise();
                    continue;
                }
                received = self.consumer.recv() => received.map(|m| {
                    let position = (m.topic().to_owned(), m.partition(), m.offset());
                    (position, serde_json::from_slice::<Event>(m.payload().unwrap_or_default()))
                }),
            };
            match received {
                Ok((position, Ok(mut event))) => {
                    self.member.received(Utc::now());
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
                Err(KafkaError::PartitionEOF(_)) => self.member.idle_at_end(Utc::now()),
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

/// A new member of the group of `member`, subscribed to `topics`.
fn join(
    config: &KafkaConfig,
    member: &Arc<Member>,
    topics: &[String],
) -> Result<StreamConsumer<MemberContext>, PortError> {
    let consumer: StreamConsumer<MemberContext> = config
        .consumer(&member.group)
        .create_with_context(MemberContext { member: member.clone() })
        .map_err(|e| PortError::Other(anyhow::Error::new(e).context("kafka consumer")))?;
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(classify)?;
    Ok(consumer)
}
