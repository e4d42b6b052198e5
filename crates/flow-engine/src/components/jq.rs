//! `jq.transform`: runs a jq program on the whole message; each output value becomes the
//! `data` of one emitted message.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{CallContext, Component, ComponentError, check_function, required_str, with_data};

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
        _ctx: &CallContext,
    ) -> Result<Vec<Value>, ComponentError> {
        check_function(function, "transform")?;
        let program = super::jq_cache::compiled(required_str(fields, "program")?)
            .map_err(|e| ComponentError::permanent(format!("invalid jq program: {e}")))?;
        let outputs = program.run(msg, MAX_JQ_OUTPUTS).map_err(ComponentError::permanent)?;
        Ok(outputs.into_iter().map(|data| with_data(msg, data)).collect())
    }
}
