//! `code.run`: a [Rhai](https://rhai.rs) script, run in a sandbox process
//! ([`crate::sandbox`]).
//!
//! The script sees the message as `msg` and returns the new `data` (one message), an array of
//! data values (one message each) or `()` (no message). Limits (`fields.limits`): `timeMs`
//! (default 1,000, at most the server's step time limit), `memoryBytes` (largest string, and
//! collections by it; default 16 MiB, at most 64 MiB) and `operations` (default 1,000,000, at
//! most 100,000,000); the sandbox process adds its own memory limit and is killed when the time
//! is up.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{CallContext, Component, ComponentError, check_function, required_str, with_data};
use crate::sandbox::RhaiLimits;

const DEFAULT_MEMORY_BYTES: u64 = 16 * 1024 * 1024;
const MAX_MEMORY_BYTES: u64 = 64 * 1024 * 1024;
const DEFAULT_OPERATIONS: u64 = 1_000_000;
const MAX_OPERATIONS: u64 = 100_000_000;

/// The `code` component.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodeComponent;

/// The limits of one run of a script configured by `fields`, its time capped by `ctx`'s
/// sandbox.
fn limits(fields: &Map<String, Value>, ctx: &CallContext) -> RhaiLimits {
    let limits = fields.get("limits");
    let get = |name: &str, default: u64, max: u64| {
        limits.and_then(|l| l.get(name)).and_then(Value::as_u64).unwrap_or(default).clamp(1, max)
    };
    RhaiLimits {
        time_ms: u64::try_from(ctx.sandbox.config().step_time(fields).as_millis()).unwrap_or(u64::MAX),
        memory_bytes: get("memoryBytes", DEFAULT_MEMORY_BYTES, MAX_MEMORY_BYTES),
        operations: get("operations", DEFAULT_OPERATIONS, MAX_OPERATIONS),
        max_nesting: ctx.sandbox.config().max_output_nesting,
    }
}

#[async_trait]
impl Component for CodeComponent {
    async fn call(
        &self,
        function: &str,
        fields: &Map<String, Value>,
        msg: &Value,
        ctx: &CallContext,
    ) -> Result<Vec<Value>, ComponentError> {
        check_function(function, "run")?;
        let script = required_str(fields, "script")?;
        let outputs = ctx
            .sandbox
            .run_rhai(script, msg, limits(fields, ctx), &ctx.cancel)
            .await
            .map_err(ComponentError::permanent)?;
        Ok(outputs.into_iter().map(|data| with_data(msg, data)).collect())
    }
}
