//! FlowMate's production event bus on Apache Kafka (rdkafka): implements the `EventPublisher`,
//! `EventSubscriber` and `Health` ports of `flow-domain`.
//!
//! One topic per event name (`<prefix>.<name>`), events keyed by flow id so their order holds
//! per flow, one Kafka consumer group per bus group (`<prefix>.<group>`), offsets stored only
//! when an event is acknowledged (at least once).

mod config;
mod context;
mod errors;
mod publisher;
mod subscriber;
mod topics;

pub use config::KafkaConfig;
pub use publisher::KafkaPublisher;
pub use subscriber::KafkaStream;

use async_trait::async_trait;
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::ports::{EventPublisher, EventStream, EventSubscriber, Health};
use std::sync::Arc;
use tokio::sync::watch;

/// The Kafka event bus: a publisher, a subscription factory and a health check sharing one
/// configuration. Cheap to clone.
#[derive(Clone)]
pub struct KafkaBus {
    config: Arc<KafkaConfig>,
    publisher: KafkaPublisher,
    shutdown: watch::Sender<bool>,
}

impl KafkaBus {
    /// Connects to `config.brokers`, creates the topics of every known event name when missing
    /// and builds the idempotent producer.
    ///
    /// # Errors
    /// When the client cannot be configured or the topics cannot be created (broker down:
    /// fails after the configured timeout).
    pub async fn connect(config: KafkaConfig) -> anyhow::Result<Self> {
        topics::ensure(&config, topics::ALL_NAMES).await?;
        let publisher = KafkaPublisher::new(&config)?;
        let (shutdown, _) = watch::channel(false);
        Ok(Self { config: Arc::new(config), publisher, shutdown })
    }

    /// Flushes the producer and ends every subscription (`next` answers `None`; stored offsets
    /// are committed).
    pub async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        self.publisher.flush().await;
    }
}

#[async_trait]
impl EventPublisher for KafkaBus {
    async fn publish(&self, events: &[Event]) -> Result<(), PortError> {
        self.publisher.publish(events).await
    }
}

#[async_trait]
impl EventSubscriber for KafkaBus {
    async fn subscribe(
        &self,
        group: &str,
        names: &[&'static str],
    ) -> Result<Box<dyn EventStream>, PortError> {
        let stream = KafkaStream::subscribe(&self.config, group, names, self.shutdown.subscribe()).await?;
        Ok(Box::new(stream))
    }
}

#[async_trait]
impl Health for KafkaBus {
    async fn check(&self) -> Result<(), String> {
        self.publisher.check().await
    }
}
