//! Trigger components (`webhook`, `scheduler`): the trigger already built the message, so the
//! call passes it on unchanged.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{CallContext, Component, ComponentError, check_function};

/// Emits the incoming message unchanged for its one function.
#[derive(Debug, Clone)]
pub struct PassThrough {
    function: &'static str,
}

impl PassThrough {
    /// A pass-through component whose only function is `function`.
    pub fn new(function: &'static str) -> Self {
        Self { function }
    }
}

#[async_trait]
impl Component for PassThrough {
    async fn call(
        &self,
        function: &str,
        _fields: &Map<String, Value>,
        msg: &Value,
        _ctx: &CallContext,
    ) -> Result<Vec<Value>, ComponentError> {
        check_function(function, self.function)?;
        Ok(vec![msg.clone()])
    }
}
