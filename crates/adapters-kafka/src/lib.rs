//! Kafka event-bus adapter (work in progress).
