//! FlowMate's production event bus on Apache Kafka (rdkafka): implements the `EventPublisher`,
//! `EventSubscriber` and `Health` ports of `flow-domain`.
//!
//! One topic per event name (`<prefix>.<name>`), events keyed by flow id so their order holds
//! per flow, one Kafka consumer group per bus group (`<prefix>.<group>`), offsets stored only
//! when an event is acknowledged (at least once).

mod config;
mod context;
mod errors;
mod generations;
mod member;
mod publisher;
mod subscriber;
mod topics;

pub use config::KafkaConfig;
pub use publisher::KafkaPublisher;
pub use subscriber::KafkaStream;

use async_trait::async_trait;
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::ports::{BusMonitor, EventPublisher, EventStream, EventSubscriber, Health, MemberStatus};
use generations::Generations;
use member::Member;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::watch;

/// The Kafka event bus: a publisher, a subscription factory and a health check sharing one
/// configuration. Cheap to clone.
#[derive(Clone)]
pub struct KafkaBus {
    config: Arc<KafkaConfig>,
    publisher: KafkaPublisher,
    shutdown: watch::Sender<bool>,
    /// The group members of this process's live subscriptions.
    members: Arc<Mutex<Vec<Weak<Member>>>>,
    /// The group generations announced (shared by the subscriptions).
    generations: Arc<Mutex<Generations>>,
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
        let generations = Arc::new(Mutex::new(Generations::open(&config).await?));
        Ok(Self { config: Arc::new(config), publisher, shutdown, members: Arc::default(), generations })
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
        let stream = KafkaStream::subscribe(
            self.config.clone(),
            group,
            names,
            self.shutdown.subscribe(),
            self.generations.clone(),
        )
        .await?;
        let mut members = self.members.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        members.retain(|m| m.strong_count() > 0);
        members.push(Arc::downgrade(&stream.member()));
        Ok(Box::new(stream))
    }
}

#[async_trait]
impl Health for KafkaBus {
    async fn check(&self) -> Result<(), String> {
        self.publisher.check().await
    }
}

impl BusMonitor for KafkaBus {
    fn members(&self) -> Vec<MemberStatus> {
        let now = chrono::Utc::now();
        let members = self.members.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        members.iter().filter_map(Weak::upgrade).map(|m| m.status(now)).collect()
    }
}
