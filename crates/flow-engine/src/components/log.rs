//! `log.info`: writes one log event through `tracing` with the flow and step, then passes the
//! message on.
//!
//! The user's text is never the event's message (which the text log format prints as it is):
//! it is the structured field `text`, which the text format prints quoted with every control
//! character escaped (`\n`, `\r`, `\u{1b}`...) and the JSON format as a JSON string. So a
//! message holding a newline and a made-up log line stays inside its own line and cannot start
//! a forged one at column 0.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{CallContext, Component, ComponentError, check_function};

/// The fixed message of every event the `log` component writes.
pub const LOG_EVENT_MESSAGE: &str = "log node";

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
        // `text` is recorded as a `&str` field, never formatted into the message: the log
        // formats escape a field's control characters (see the module documentation).
        let (flow, step, text) = (ctx.flow_id.as_str(), ctx.step_id.as_str(), text.as_str());
        match fields.get("level").and_then(Value::as_str).unwrap_or("info") {
            "debug" => tracing::debug!(flow, step, text, "{LOG_EVENT_MESSAGE}"),
            "info" => tracing::info!(flow, step, text, "{LOG_EVENT_MESSAGE}"),
            "warn" => tracing::warn!(flow, step, text, "{LOG_EVENT_MESSAGE}"),
            "error" => tracing::error!(flow, step, text, "{LOG_EVENT_MESSAGE}"),
            other => {
                return Err(ComponentError::permanent(format!("unknown log level `{other}`")));
            }
        }
        Ok(vec![msg.clone()])
    }
}
