//! The client contexts of the rdkafka clients: librdkafka's log lines and global errors go to
//! `tracing` (target `librdkafka`) instead of the `log` crate, which nothing here listens to;
//! a consumer's context also feeds its group member's statistics to [`Member`].

use crate::member::Member;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use std::sync::Arc;

/// Forwards librdkafka's logs and errors to `tracing` (producer and admin clients).
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaContext;

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        forward_log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        forward_error(&error, reason);
    }
}

impl ConsumerContext for KafkaContext {}

/// The context of a consumer group member: logs as [`KafkaContext`], and every statistics
/// report (`statistics.interval.ms`) updates the member's state.
pub struct MemberContext {
    pub(crate) member: Arc<Member>,
}

impl ClientContext for MemberContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        forward_log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        forward_error(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        self.member.observe(&statistics);
    }
}

impl ConsumerContext for MemberContext {}

fn forward_log(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", facility = fac, "{message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility = fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", facility = fac, "{message}");
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility = fac, "{message}"),
    }
}

fn forward_error(error: &KafkaError, reason: &str) {
    // Connection losses are routine while a broker restarts; the publish or the fetch that
    // suffers from one reports it where it matters.
    tracing::warn!(target: "librdkafka", %error, "{reason}");
}
