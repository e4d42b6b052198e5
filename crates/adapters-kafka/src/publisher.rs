//! The publisher: an idempotent `FutureProducer` (`acks=all`) that sends a batch in order,
//! keyed by the event key, and answers once every event is acknowledged by the broker.
//!
//! An idempotent producer can hit a fatal error (librdkafka gives up on a producer id it cannot
//! keep in sequence); such a producer never delivers again, so it is replaced by a new one and
//! the publish answers `Unavailable` for the caller to retry.

use crate::config::KafkaConfig;
use crate::context::KafkaContext;
use crate::errors::{classify, needs_new_producer};
use anyhow::Context;
use flow_domain::error::PortError;
use flow_domain::event::Event;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use std::sync::{Arc, RwLock};
use std::time::Duration;

type Inner = FutureProducer<KafkaContext>;

/// The producer in use and how many were replaced before it.
struct Current {
    generation: u64,
    producer: Inner,
}

/// Publishes events to `<prefix>.<name>` topics. Cheap to clone.
#[derive(Clone)]
pub struct KafkaPublisher {
    current: Arc<RwLock<Current>>,
    config: Arc<KafkaConfig>,
}

impl KafkaPublisher {
    /// Builds the producer (no network traffic yet; topics must exist, see `KafkaBus::connect`).
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn new(config: &KafkaConfig) -> anyhow::Result<Self> {
        let producer = create(config)?;
        Ok(Self {
            current: Arc::new(RwLock::new(Current { generation: 0, producer })),
            config: Arc::new(config.clone()),
        })
    }

    fn producer(&self) -> (u64, Inner) {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        (current.generation, current.producer.clone())
    }

    /// Replaces the producer of `generation` (unless another publish did already).
    fn replace(&self, generation: u64) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.generation != generation {
            return;
        }
        match create(&self.config) {
            Ok(producer) => {
                current.generation += 1;
                current.producer = producer;
                tracing::info!(generation = current.generation, "kafka: producer replaced");
            }
            Err(err) => tracing::error!(error = %format!("{err:#}"), "kafka: cannot replace the producer"),
        }
    }

    /// Sends `events` in order and waits until the broker acknowledged all of them.
    ///
    /// # Errors
    /// `Unavailable` for transient failures (broker down, timeout, full queue, a producer that
    /// had to be replaced); `Other` otherwise.
    pub async fn publish(&self, events: &[Event]) -> Result<(), PortError> {
        let (generation, producer) = self.producer();
        let result = send_all(&producer, &self.config.topic_prefix, events).await;
        if let Some((code, reason)) = producer.client().fatal_error() {
            tracing::warn!(%code, %reason, "kafka: the producer hit a fatal error; replacing it");
            self.replace(generation);
            return Err(PortError::Unavailable(format!("kafka: producer fatal error {code}: {reason}")));
        }
        if let Err(SendError { code: Some(code), .. }) = &result
            && needs_new_producer(*code)
        {
            tracing::warn!(%code, "kafka: the producer's idempotence state is out of step; replacing it");
            self.replace(generation);
        }
        result.map_err(|e| e.error)
    }

    /// Waits (up to the configured timeout) until every queued message is delivered.
    pub async fn flush(&self) {
        let (_, producer) = self.producer();
        let timeout = self.config.timeout;
        let flushed = tokio::task::spawn_blocking(move || producer.flush(Timeout::After(timeout))).await;
        if let Ok(Err(err)) = flushed {
            tracing::warn!(error = %err, "kafka producer flush incomplete");
        }
    }

    /// Ok when a broker answers a metadata request within the timeout.
    ///
    /// # Errors
    /// A short reason.
    pub async fn check(&self) -> Result<(), String> {
        let (_, producer) = self.producer();
        let timeout = self.config.timeout.min(Duration::from_secs(3));
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout))
            .await
            .map_err(|e| format!("kafka health check: {e}"))?
            .map(|_| ())
            .map_err(|e| format!("kafka: {e}"))
    }
}

fn create(config: &KafkaConfig) -> anyhow::Result<Inner> {
    config.producer().create_with_context(KafkaContext).context("kafka producer")
}

/// A failed send: the port error and librdkafka's code, when it has one.
struct SendError {
    error: PortError,
    code: Option<RDKafkaErrorCode>,
}

impl SendError {
    fn kafka(err: KafkaError) -> Self {
        Self { code: err.rdkafka_error_code(), error: classify(err) }
    }
}

impl From<PortError> for SendError {
    fn from(error: PortError) -> Self {
        Self { error, code: None }
    }
}

async fn send_all(producer: &Inner, prefix: &str, events: &[Event]) -> Result<(), SendError> {
    let mut deliveries = Vec::with_capacity(events.len());
    for event in events {
        let topic = format!("{prefix}.{}", event.name);
        let payload = serde_json::to_vec(event).map_err(|e| PortError::Other(e.into()))?;
        let mut record = FutureRecord::to(&topic).payload(&payload);
        if let Some(key) = &event.key {
            record = record.key(key.as_str());
        }
        let delivery = producer.send_result(record).map_err(|(err, _)| SendError::kafka(err))?;
        deliveries.push(delivery);
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((err, _))) => return Err(SendError::kafka(err)),
            Err(_) => return Err(PortError::Unavailable("kafka producer is shutting down".into()).into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Error paths against librdkafka's in-process mock cluster (no admin API there, so the
    //! topic is created through the mock itself).

    use super::*;
    use chrono::Utc;
    use flow_domain::event::names;
    use rdkafka::mocking::MockCluster;
    use serde_json::json;

    fn event() -> Event {
        Event::new(names::FLOW_EXECUTE, Some("flow".into()), "test", json!({}), Utc::now())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_down_broker_answers_unavailable_and_recovery_publishes_again() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        let mut config = KafkaConfig::new(cluster.bootstrap_servers());
        config.timeout = Duration::from_secs(2);
        cluster.create_topic(&config.topic(names::FLOW_EXECUTE), 3, 1).expect("topic");
        let publisher = KafkaPublisher::new(&config).expect("producer");
        publisher.publish(&[event()]).await.expect("published while the broker is up");
        publisher.check().await.expect("healthy while the broker is up");

        cluster.broker_down(1).expect("broker down");
        let result = publisher.publish(&[event()]).await;
        assert!(matches!(result, Err(PortError::Unavailable(_))), "Unavailable, got {result:?}");

        cluster.broker_up(1).expect("broker up");
        // Like the outbox relay: retry while Unavailable, bounded by a deadline.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match publisher.publish(&[event()]).await {
                Ok(()) => break,
                Err(PortError::Unavailable(reason)) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "published once the broker is back: {reason}"
                    );
                }
                Err(err) => panic!("only Unavailable while reconnecting, got {err:?}"),
            }
        }
    }
}
