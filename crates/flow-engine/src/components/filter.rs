//! `filter.filter`: emits the message when its jq `condition` (on the whole message) holds,
//! nothing otherwise; the condition runs as `jq.transform`'s program does.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{CallContext, Component, ComponentError, check_function, required_str};

/// The `filter` component.
#[derive(Debug, Clone, Copy, Default)]
pub struct FilterComponent;

#[async_trait]
impl Component for FilterComponent {
    async fn call(
        &self,
        function: &str,
        fields: &Map<String, Value>,
        msg: &Value,
        ctx: &CallContext,
    ) -> Result<Vec<Value>, ComponentError> {
        check_function(function, "filter")?;
        let condition = super::jq_cache::compiled(required_str(fields, "condition")?)
            .map_err(|e| ComponentError::permanent(format!("invalid jq condition: {e}")))?;
        let time = ctx.sandbox.config().step_time(fields);
        let holds = ctx
            .sandbox
            .jq_holds(&condition, msg, time, &ctx.cancel)
            .await
            .map_err(ComponentError::permanent)?;
        Ok(if holds { vec![msg.clone()] } else { Vec::new() })
    }
}
