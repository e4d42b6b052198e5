//! The deployment check of a starting flow: every node's component, function and fields, the
//! edges' jq programs and the cron expression; yields the trigger to register, or the reason
//! the flow cannot run. External components (from the catalogue, for the flow's tenant) are
//! actions: their functions take any object of `fields`, and they are never the trigger.

use crate::catalogue::check_fields;
use crate::triggers::{TriggerKind, TriggerRegistration};
use flow_domain::expr::JqProgram;
use flow_domain::ids::{FlowId, TenantId};
use flow_domain::model::Graph;
use flow_domain::ports::{ComponentCatalogue, ComponentKind, ComponentSpec};
use flow_domain::validate::parse_cron;
use serde::Deserialize;
use std::collections::HashMap;

/// What the engine reads of a `flow.starting` payload (the whole flow).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FlowPayload {
    pub(crate) id: FlowId,
    #[serde(default)]
    pub(crate) tenant: Option<TenantId>,
    #[serde(default)]
    pub(crate) cron: Option<String>,
    pub(crate) graph: Graph,
}

/// Checks `flow` against the catalogue. `Ok(Err(reason))` when the flow cannot be deployed
/// (every problem, `; `-separated, each naming its node); `Err` when the catalogue cannot be
/// read (retry later).
pub(crate) async fn check_flow(
    catalogue: &dyn ComponentCatalogue,
    flow: &FlowPayload,
) -> anyhow::Result<Result<TriggerRegistration, String>> {
    let mut problems = Vec::new();
    let cron = flow.cron.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if let Some(expr) = cron
        && let Err(err) = parse_cron(expr)
    {
        problems.push(format!("Flow cron \"{expr}\": {err}"));
    }
    let trigger = flow.graph.trigger();
    if trigger.is_none() {
        problems.push("The flow has no trigger node.".to_string());
    }
    let mut components: HashMap<&str, Option<ComponentSpec>> = HashMap::new();
    for node in &flow.graph.nodes {
        if !components.contains_key(node.component_id.as_str()) {
            components.insert(&node.component_id, catalogue.find(&node.component_id, flow.tenant).await?);
        }
        let Some(Some(component)) = components.get(node.component_id.as_str()) else {
            problems.push(format!("Node \"{}\": unknown component \"{}\"", node.id, node.component_id));
            continue;
        };
        let Some(function) = component.function(&node.function) else {
            problems.push(format!(
                "Node \"{}\": component \"{}\" has no function \"{}\"",
                node.id, node.component_id, node.function
            ));
            continue;
        };
        let is_trigger_node = trigger.is_some_and(|t| t.id == node.id);
        if is_trigger_node && !component.builtin {
            problems.push(format!(
                "Node \"{}\": external component \"{}\" cannot be the flow's trigger",
                node.id, node.component_id
            ));
        }
        if component.kind == ComponentKind::Trigger && !is_trigger_node {
            problems.push(format!(
                "Node \"{}\": trigger component \"{}\" must be the flow's first node",
                node.id, node.component_id
            ));
        }
        if let Err(field_problems) = check_fields(&function.config_schema, &node.fields) {
            problems.extend(field_problems.into_iter().map(|p| format!("Node \"{}\": {p}", node.id)));
        }
    }
    for edge in &flow.graph.edges {
        let programs = [("condition", &edge.config.condition), ("mapper", &edge.config.mapper)];
        for (what, code) in programs {
            if let Some(code) = code
                && let Err(err) = JqProgram::compile(code)
            {
                problems
                    .push(format!("Edge \"{}\" -> \"{}\": invalid {what}: {err}", edge.source, edge.target));
            }
        }
    }
    match trigger {
        Some(node) if problems.is_empty() => {
            let kind = cron.map_or(TriggerKind::Webhook, |c| TriggerKind::Cron(c.to_string()));
            Ok(Ok(TriggerRegistration { flow_id: flow.id, kind, trigger_node: node.id.clone() }))
        }
        _ => Ok(Err(problems.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;
    use chrono::Utc;
    use flow_domain::model::{ExternalComponent, ExternalFunction};
    use flow_domain::ports::MockComponentRepository;
    use serde_json::json;
    use std::sync::Arc;

    fn catalogue(owner: TenantId) -> Catalogue {
        let mut repo = MockComponentRepository::new();
        repo.expect_get().returning(move |name| {
            Ok((name == "acme").then(|| ExternalComponent {
                name: "acme".into(),
                url: "https://example.com/run".into(),
                functions: vec![ExternalFunction { name: "run".into(), description: String::new() }],
                tenant: Some(owner),
                owners: Vec::new(),
                created_at: Utc::now(),
            }))
        });
        Catalogue::new().with_externals(Arc::new(repo))
    }

    fn payload(tenant: TenantId, first: &str, second: &str) -> FlowPayload {
        serde_json::from_value(json!({
            "id": FlowId::new(),
            "tenant": tenant,
            "graph": {
                "nodes": [
                    { "id": "a", "componentId": first, "function": if first == "acme" { "run" } else { "receive" }, "fields": {} },
                    { "id": "b", "componentId": second, "function": "run", "fields": { "anything": [1, 2] } }
                ],
                "edges": [{ "source": "a", "target": "b" }]
            }
        }))
        .expect("payload")
    }

    #[tokio::test]
    async fn external_action_of_the_flows_tenant_deploys() {
        let tenant = TenantId::new();
        let checked =
            check_flow(&catalogue(tenant), &payload(tenant, "webhook", "acme")).await.expect("check");
        assert!(checked.is_ok(), "{checked:?}");
    }

    #[tokio::test]
    async fn external_of_another_tenant_is_unknown() {
        let reason = check_flow(&catalogue(TenantId::new()), &payload(TenantId::new(), "webhook", "acme"))
            .await
            .expect("check")
            .expect_err("refused");
        assert!(reason.contains("unknown component \"acme\""), "{reason}");
    }

    #[tokio::test]
    async fn external_is_never_the_trigger() {
        let tenant = TenantId::new();
        let reason = check_flow(&catalogue(tenant), &payload(tenant, "acme", "acme"))
            .await
            .expect("check")
            .expect_err("refused");
        assert!(reason.contains("cannot be the flow's trigger"), "{reason}");
    }
}
