//! The publisher: an idempotent `FutureProducer` (`acks=all`) that sends a batch in order,
//! keyed by the event key, and answers once every event is acknowledged by the broker.

use crate::config::KafkaConfig;
use crate::errors::classify;
use anyhow::Context;
use flow_domain::error::PortError;
use flow_domain::event::Event;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use std::time::Duration;

/// Publishes events to `<prefix>.<name>` topics. Cheap to clone.
#[derive(Clone)]
pub struct KafkaPublisher {
    producer: FutureProducer,
    prefix: String,
    timeout: Duration,
}

impl KafkaPublisher {
    /// Builds the producer (no network traffic yet; topics must exist, see `KafkaBus::connect`).
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn new(config: &KafkaConfig) -> anyhow::Result<Self> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("client.id", &config.client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", config.timeout_ms())
            .set("socket.timeout.ms", config.timeout_ms())
            .create()
            .context("kafka producer")?;
        Ok(Self { producer, prefix: config.topic_prefix.clone(), timeout: config.timeout })
    }

    /// Sends `events` in order and waits until the broker acknowledged all of them.
    ///
    /// # Errors
    /// `Unavailable` for transient failures (broker down, timeout, full queue); `Other` otherwise.
    pub async fn publish(&self, events: &[Event]) -> Result<(), PortError> {
        let mut deliveries = Vec::with_capacity(events.len());
        for event in events {
            let topic = format!("{}.{}", self.prefix, event.name);
            let payload = serde_json::to_vec(event).map_err(|e| PortError::Other(e.into()))?;
            let mut record = FutureRecord::to(&topic).payload(&payload);
            if let Some(key) = &event.key {
                record = record.key(key.as_str());
            }
            let delivery = self.producer.send_result(record).map_err(|(err, _)| classify(err))?;
            deliveries.push(delivery);
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((err, _))) => return Err(classify(err)),
                Err(_) => return Err(PortError::Unavailable("kafka producer is shutting down".into())),
            }
        }
        Ok(())
    }

    /// Waits (up to the configured timeout) until every queued message is delivered.
    pub async fn flush(&self) {
        let producer = self.producer.clone();
        let timeout = self.timeout;
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
        let producer = self.producer.clone();
        let timeout = self.timeout.min(Duration::from_secs(3));
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout))
            .await
            .map_err(|e| format!("kafka health check: {e}"))?
            .map(|_| ())
            .map_err(|e| format!("kafka: {e}"))
    }
}
