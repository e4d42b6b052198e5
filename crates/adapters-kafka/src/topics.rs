//! Topic creation: one topic per event name, created with the admin client when missing.

use crate::config::KafkaConfig;
use crate::context::KafkaContext;
use anyhow::{Context, bail};
use flow_domain::event::names;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;

/// Every event name of SPEC §5; their topics are created at connect.
pub(crate) const ALL_NAMES: &[&str] = &[
    names::FLOW_STARTING,
    names::FLOW_STARTED,
    names::FLOW_FAILED,
    names::FLOW_STOPPING,
    names::FLOW_STOPPED,
    names::FLOW_EXECUTE,
    names::FLOW_CREATED,
    names::FLOW_MODIFIED,
    names::FLOW_DELETED,
    names::TEMPLATE_CREATED,
    names::TEMPLATE_MODIFIED,
    names::TEMPLATE_DELETED,
    names::USER_CREATED,
    names::USER_DELETED,
];

/// Creates the topics of `event_names` that do not exist yet; existing ones are left as they are.
pub(crate) async fn ensure(config: &KafkaConfig, event_names: &[&str]) -> anyhow::Result<()> {
    let topics: Vec<(String, i32)> =
        event_names.iter().map(|n| (config.topic(n), config.partitions)).collect();
    ensure_topics(config, &topics).await
}

/// Creates the topics of `topics` (name, partitions) that do not exist yet.
pub(crate) async fn ensure_topics(config: &KafkaConfig, topics: &[(String, i32)]) -> anyhow::Result<()> {
    let admin: AdminClient<KafkaContext> =
        config.admin().create_with_context(KafkaContext).context("kafka admin client")?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(t, partitions)| NewTopic::new(t, *partitions, TopicReplication::Fixed(config.replication)))
        .collect();
    let opts =
        AdminOptions::new().request_timeout(Some(config.timeout)).operation_timeout(Some(config.timeout));
    let results = tokio::time::timeout(config.timeout * 2, admin.create_topics(&new, &opts))
        .await
        .context("kafka: creating topics timed out")?
        .context("kafka: creating topics")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => bail!("kafka: creating topic {topic}: {code}"),
        }
    }
    Ok(())
}
