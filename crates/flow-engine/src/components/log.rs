//! `log.info`: writes a line through `tracing` with the flow and step, then passes the message
//! on.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{CallContext, Component, ComponentError, check_function};

/// The `log` component. Field `message` (the message's `data` when absent) and `level`
/// (`debug`, `info` (default), `warn`, `error`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogComponent;

#[async_trait]
impl Component for LogComponent {
    async fn call(
        &self,
        function: &str,
        fields: &Map<String, Value>,
        msg: &Value,
        ctx: &CallContext,
    ) -> Result<Vec<Value>, ComponentError> {
        check_function(function, "info")?;
        let text = match fields.get("message") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => msg.get("data").unwrap_or(&Value::Null).to_string(),
        };
        let (flow, step) = (ctx.flow_id.as_str(), ctx.step_id.as_str());
        match fields.get("level").and_then(Value::as_str).unwrap_or("info") {
            "debug" => tracing::debug!(flow, step, "{text}"),
            "info" => tracing::info!(flow, step, "{text}"),
            "warn" => tracing::warn!(flow, step, "{text}"),
            "error" => tracing::error!(flow, step, "{text}"),
            other => {
                return Err(ComponentError::permanent(format!("unknown log level `{other}`")));
            }
        }
        Ok(vec![msg.clone()])
    }
}
