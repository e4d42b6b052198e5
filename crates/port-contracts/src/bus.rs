//! Event-bus contract: EventPublisher + EventSubscriber.
