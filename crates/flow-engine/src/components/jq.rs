//! `jq.transform`: runs a jq program on the whole message; each output value becomes the
//! `data` of one emitted message. The program runs in process when it is bounded by its input,
//! else in the sandbox within the step's time limit (`limits.timeMs`).

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{CallContext, Component, ComponentError, check_function, required_str, with_data};
use crate::sandbox::JqOutput;

/// The most messages one `jq.transform` call may emit.
pub const MAX_JQ_OUTPUTS: usize = 1000;

/// The `jq` component.
#[derive(Debug, Clone, Copy, Default)]
pub struct JqComponent;

#[async_trait]
impl Component for JqComponent {
    async fn call(
        &self,
        function: &str,
        fields: &Map<String, Value>,
        msg: &Value,
        ctx: &CallContext,
    ) -> Result<Vec<Value>, ComponentError> {
        check_function(function, "transform")?;
        let program = super::jq_cache::compiled(required_str(fields, "program")?)
            .map_err(|e| ComponentError::permanent(format!("invalid jq program: {e}")))?;
        let time = ctx.sandbox.config().step_time(fields);
        let outputs = ctx
            .sandbox
            .run_jq(&program, msg, JqOutput::Values(MAX_JQ_OUTPUTS), time, &ctx.cancel)
            .await
            .map_err(ComponentError::permanent)?;
        Ok(outputs.into_iter().map(|data| with_data(msg, data)).collect())
    }
}
