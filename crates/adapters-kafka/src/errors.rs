//! Classification of rdkafka errors into port errors: transient ones (broker down, timeouts,
//! full queue) are `Unavailable`, the caller retries later; the rest are `Other`.

use flow_domain::error::PortError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Whether `code` is a condition that passes by itself (the broker comes back, the queue drains).
pub(crate) fn is_transient(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::QueueFull
            | C::MessageTimedOut
            | C::RequestTimedOut
            | C::OperationTimedOut
            | C::TimedOutQueue
            | C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::Resolve
            | C::BrokerNotAvailable
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::NetworkException
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::CoordinatorNotAvailable
            | C::CoordinatorLoadInProgress
            | C::NotCoordinator
            | C::UnknownTopicOrPartition
            | C::PurgeQueue
            | C::PurgeInflight
            | C::Retry
            | C::ThrottlingQuotaExceeded
    )
}

/// Whether `code` says the producer's idempotence state (producer id, epoch, sequence numbers)
/// no longer matches the broker's: a new producer starts afresh.
pub(crate) fn needs_new_producer(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::Fatal
            | C::Inconsistent
            | C::Fenced
            | C::OutOfOrderSequenceNumber
            | C::DuplicateSequenceNumber
            | C::InvalidProducerEpoch
            | C::InvalidProducerIdMapping
            | C::UnknownProducerId
            | C::ProducerFenced
    )
}

/// The port error for `err`.
pub(crate) fn classify(err: KafkaError) -> PortError {
    match err.rdkafka_error_code() {
        Some(code) if is_transient(code) || needs_new_producer(code) => {
            PortError::Unavailable(format!("kafka: {err}"))
        }
        _ => PortError::Other(anyhow::anyhow!("kafka: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_are_unavailable() {
        for code in
            [RDKafkaErrorCode::QueueFull, RDKafkaErrorCode::MessageTimedOut, RDKafkaErrorCode::AllBrokersDown]
        {
            assert!(
                matches!(classify(KafkaError::MessageProduction(code)), PortError::Unavailable(_)),
                "{code:?}"
            );
        }
    }

    #[test]
    fn fatal_errors_are_other() {
        for code in [RDKafkaErrorCode::MessageSizeTooLarge, RDKafkaErrorCode::TopicAuthorizationFailed] {
            assert!(matches!(classify(KafkaError::MessageProduction(code)), PortError::Other(_)), "{code:?}");
        }
    }
}
