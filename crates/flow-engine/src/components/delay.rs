//! `delay.wait`: waits `ms` milliseconds (bounded) before passing the message on; the wait
//! ends early with an error when the call is cancelled.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{CallContext, Component, ComponentError, check_function};

/// The longest wait accepted by default (the schema's maximum, one hour).
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

/// The `delay` component.
#[derive(Debug, Clone, Copy)]
pub struct DelayComponent {
    /// Waits longer than this are refused.
    pub max: Duration,
}

impl Default for DelayComponent {
    fn default() -> Self {
        Self { max: MAX_DELAY }
    }
}

#[async_trait]
impl Component for DelayComponent {
    async fn call(
        &self,
        function: &str,
        fields: &Map<String, Value>,
        msg: &Value,
        ctx: &CallContext,
    ) -> Result<Vec<Value>, ComponentError> {
        check_function(function, "wait")?;
        let ms = fields
            .get("ms")
            .and_then(Value::as_u64)
            .ok_or_else(|| ComponentError::permanent("field `ms` must be a non-negative integer"))?;
        let wait = Duration::from_millis(ms);
        if wait > self.max {
            return Err(ComponentError::permanent(format!(
                "delay of {ms} ms exceeds the maximum of {} ms",
                self.max.as_millis()
            )));
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => Ok(vec![msg.clone()]),
            () = ctx.cancel.cancelled() => Err(ComponentError::permanent("cancelled")),
        }
    }
}
