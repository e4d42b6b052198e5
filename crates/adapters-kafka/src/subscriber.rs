//! The subscriber: one `StreamConsumer` per subscription, in consumer group `<prefix>.<group>`,
//! auto-committing only the offsets stored by `ack` (at least once).
//!
//! While it waits for events the stream checks its group member once a second (see
//! `member.rs`): a member stalled past [`KafkaConfig::stall_after`] moves the group to its next
//! generation (`generations.rs`) as a new member, again after twice as long (up to 8 times the
//! limit) while the stall lasts; a generation another member announced is followed at once.

use crate::config::KafkaConfig;
use crate::context::MemberContext;
use crate::errors::classify;
use crate::generations::{self, Generations};
use crate::member::{Member, Verdict};
use crate::topics;
use async_trait::async_trait;
use chrono::Utc;
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::ids::EventId;
use flow_domain::ports::EventStream;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
    generations: Arc<Mutex<Generations>>,
    check: Interval,
    /// No move to a new generation before this instant (back-off between moves).
    move_not_before: Instant,
    /// Moves in a row without the member recovering.
    moves_in_a_row: u32,
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
        generations: Arc<Mutex<Generations>>,
    ) -> Result<Self, PortError> {
        topics::ensure(&config, names).await.map_err(|e| PortError::Unavailable(format!("{e:#}")))?;
        let base = config.group(group);
        let generation = {
            let mut known = lock(&generations);
            known.refresh();
            known.of(&base)
        };
        let member = Arc::new(Member::new(base, generation, config.stall_after, Utc::now()));
        let topics: Vec<String> = names.iter().map(|n| config.topic(n)).collect();
        let consumer = member_of(&config, &member, &member.group_id())?;
        subscribe_to(&consumer, &topics)?;
        let mut check = tokio::time::interval(CHECK_EVERY);
        check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(Self {
            consumer,
            delivered: HashMap::new(),
            shutdown,
            move_not_before: Instant::now() + config.stall_after,
            config,
            topics,
            member,
            generations,
            check,
            moves_in_a_row: 0,
        })
    }

    /// The member's shared state (for the bus monitor).
    pub(crate) fn member(&self) -> Arc<Member> {
        self.member.clone()
    }

    /// Follows the group to a generation another member announced; moves it to the next one
    /// when this member stalled past the limit and the back-off allows.
    async fn supervise(&mut self) {
        let current = self.member.generation();
        let announced = {
            let mut known = lock(&self.generations);
            known.refresh();
            known.of(&self.member.group)
        };
        if announced > current {
            tracing::warn!(group = %self.member.group, generation = announced,
                "event bus: following a consumer group to its new generation");
            self.move_to(announced).await;
            return;
        }
        match self.member.check(Utc::now()) {
            Verdict::Fine => self.moves_in_a_row = 0,
            Verdict::Stalled(status) if Instant::now() >= self.move_not_before => {
                let next = current + 1;
                let reason = status.stall_reason().unwrap_or_default();
                tracing::warn!(group = %self.member.group, %reason, generation = next,
                    "event bus: moving a stalled consumer group to a new generation");
                if let Err(err) = generations::announce(&self.config, &self.member.group, next).await {
                    tracing::warn!(group = %self.member.group, error = %err,
                        "event bus: the other members will not follow to the new generation");
                }
                self.moves_in_a_row += 1;
                self.move_to(next).await;
                let factor = 1u32 << self.moves_in_a_row.min(3);
                self.move_not_before = Instant::now() + self.config.stall_after * factor;
            }
            Verdict::Stalled(_) => {}
        }
    }

    /// Replaces the consumer by a member of generation `generation` that starts where the
    /// current group committed (for partitions the new group has not committed yet).
    async fn move_to(&mut self, generation: u32) {
        self.commit_stored();
        let (config, member, topics) = (self.config.clone(), self.member.clone(), self.topics.clone());
        let joined = tokio::task::spawn_blocking(move || {
            let group = generations::group_id(&member.group, generation);
            let consumer = member_of(&config, &member, &group)?;
            carry_offsets(&config, &member.group_id(), &consumer, &topics);
            subscribe_to(&consumer, &topics)?;
            Ok::<_, PortError>(consumer)
        })
        .await;
        match joined {
            Ok(Ok(consumer)) => {
                self.delivered.clear();
                let old = std::mem::replace(&mut self.consumer, consumer);
                // Closing leaves the group, which may wait on the broker: not on this thread.
                tokio::task::spawn_blocking(move || drop(old));
                self.member.replaced(generation, Utc::now());
            }
            Ok(Err(err)) => tracing::warn!(group = %self.member.group, error = %err,
                "event bus: cannot create a member of the new generation"),
            Err(err) => tracing::warn!(group = %self.member.group, error = %err,
                "event bus: creating a member of the new generation failed"),
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
                    self.supervise().await;
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

/// A new consumer in Kafka group `group`, as the member `member` (not subscribed yet).
fn member_of(
    config: &KafkaConfig,
    member: &Arc<Member>,
    group: &str,
) -> Result<StreamConsumer<MemberContext>, PortError> {
    config
        .consumer(group)
        .create_with_context(MemberContext { member: member.clone() })
        .map_err(|e| PortError::Other(anyhow::Error::new(e).context("kafka consumer")))
}

fn subscribe_to(consumer: &StreamConsumer<MemberContext>, topics: &[String]) -> Result<(), PortError> {
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(classify)
}

/// Commits to the group of `new` (before it joins) the offsets group `old` committed, for the
/// partitions of `topics` the new group has no offset for. Blocking; failures are logged (the
/// new group then starts from the earliest retained event: delivered again, never lost).
fn carry_offsets(config: &KafkaConfig, old: &str, new: &StreamConsumer<MemberContext>, topics: &[String]) {
    let carried = (|| -> Result<usize, KafkaError> {
        let metadata = new.fetch_metadata(None, config.timeout)?;
        let mut partitions = TopicPartitionList::new();
        for topic in metadata.topics().iter().filter(|t| topics.iter().any(|name| name == t.name())) {
            for partition in topic.partitions() {
                partitions.add_partition(topic.name(), partition.id());
            }
        }
        let reader: BaseConsumer = config.consumer(old).create()?;
        let before = reader.committed_offsets(partitions.clone(), config.timeout)?;
        let already = new.committed_offsets(partitions, config.timeout)?;
        let mut carry = TopicPartitionList::new();
        for element in before.elements() {
            let Offset::Offset(offset) = element.offset() else { continue };
            let fresh = already
                .find_partition(element.topic(), element.partition())
                .is_none_or(|e| !matches!(e.offset(), Offset::Offset(_)));
            if fresh {
                carry.add_partition_offset(element.topic(), element.partition(), Offset::Offset(offset))?;
            }
        }
        if carry.count() > 0 {
            new.commit(&carry, CommitMode::Sync)?;
        }
        Ok(carry.count())
    })();
    match carried {
        Ok(partitions) => {
            tracing::info!(from = old, partitions, "event bus: offsets carried to the new generation")
        }
        Err(err) => tracing::warn!(from = old, error = %err,
            "event bus: cannot carry offsets to the new generation; it starts from the earliest retained events"),
    }
}

/// Locks the generations, whatever a panicking holder left.
fn lock(generations: &Mutex<Generations>) -> std::sync::MutexGuard<'_, Generations> {
    generations.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
