//! `code.run`: a sandboxed [Rhai](https://rhai.rs) script.
//!
//! The script sees the message as `msg` and returns the new `data` (one message), an array of
//! data values (one message each) or `()` (no message). The sandbox has no module resolver
//! (no file access) and no `eval`; operations, expression depth, string, array and map sizes
//! are bounded, and a wall-clock deadline (plus the call's cancellation) is checked while the
//! script runs. Scripts run on the blocking thread pool.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use rhai::{Dynamic, Engine, Scope};
use serde_json::{Map, Value};

use super::{CallContext, Component, ComponentError, check_function, required_str, with_data};

const DEFAULT_TIME_MS: u64 = 1_000;
const MAX_TIME_MS: u64 = 30_000;
const DEFAULT_MEMORY_BYTES: u64 = 16 * 1024 * 1024;
const MAX_MEMORY_BYTES: u64 = 64 * 1024 * 1024;
const DEFAULT_OPERATIONS: u64 = 1_000_000;
const MAX_OPERATIONS: u64 = 100_000_000;
/// Most messages one script may emit.
const MAX_OUTPUTS: usize = 1000;

/// The `code` component.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodeComponent;

/// The effective limits of one run.
#[derive(Debug, Clone, Copy)]
struct Limits {
    time: Duration,
    memory_bytes: usize,
    operations: u64,
}

impl Limits {
    fn from_fields(fields: &Map<String, Value>) -> Self {
        let limits = fields.get("limits");
        let get = |name: &str, default: u64, max: u64| {
            limits.and_then(|l| l.get(name)).and_then(Value::as_u64).unwrap_or(default).clamp(1, max)
        };
        Self {
            time: Duration::from_millis(get("timeMs", DEFAULT_TIME_MS, MAX_TIME_MS)),
            memory_bytes: usize::try_from(get("memoryBytes", DEFAULT_MEMORY_BYTES, MAX_MEMORY_BYTES))
                .unwrap_or(usize::MAX),
            operations: get("operations", DEFAULT_OPERATIONS, MAX_OPERATIONS),
        }
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
        let script = required_str(fields, "script")?.to_owned();
        let limits = Limits::from_fields(fields);
        let input = msg.clone();
        let cancel = ctx.cancel.clone();
        let outputs = tokio::task::spawn_blocking(move || run_script(&script, &input, limits, cancel))
            .await
            .map_err(|e| ComponentError::permanent(format!("script task failed: {e}")))??;
        Ok(outputs.into_iter().map(|data| with_data(msg, data)).collect())
    }
}

fn sandbox(limits: Limits, cancel: tokio_util::sync::CancellationToken) -> Engine {
    let mut engine = Engine::new();
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.disable_symbol("eval");
    engine.set_max_operations(limits.operations);
    engine.set_max_expr_depths(64, 32);
    engine.set_max_call_levels(32);
    engine.set_max_string_size(limits.memory_bytes);
    // Each element costs at least a few words; bound collections by the memory budget.
    engine.set_max_array_size((limits.memory_bytes / 64).max(1));
    engine.set_max_map_size((limits.memory_bytes / 64).max(1));
    engine.on_print(|text| tracing::debug!(target: "flowmate::code", "{text}"));
    engine.on_debug(|text, _, _| tracing::debug!(target: "flowmate::code", "{text}"));
    let deadline = Instant::now() + limits.time;
    engine.on_progress(move |ops| {
        if ops % 256 != 0 {
            return None;
        }
        if cancel.is_cancelled() {
            Some(Dynamic::from("cancelled"))
        } else if Instant::now() >= deadline {
            Some(Dynamic::from("time limit exceeded"))
        } else {
            None
        }
    });
    engine
}

fn run_script(
    script: &str,
    msg: &Value,
    limits: Limits,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<Vec<Value>, ComponentError> {
    let engine = sandbox(limits, cancel);
    let msg = rhai::serde::to_dynamic(msg)
        .map_err(|e| ComponentError::permanent(format!("message not convertible: {e}")))?;
    let mut scope = Scope::new();
    scope.push_dynamic("msg", msg);
    let result = engine.eval_with_scope::<Dynamic>(&mut scope, script).map_err(|e| match *e {
        rhai::EvalAltResult::ErrorTerminated(reason, _) => {
            ComponentError::permanent(format!("script stopped: {reason}"))
        }
        other => ComponentError::permanent(format!("script error: {other}")),
    })?;
    let values = if result.is_unit() {
        Vec::new()
    } else if result.is_array() {
        let array =
            result.into_array().map_err(|t| ComponentError::permanent(format!("script returned {t}")))?;
        if array.len() > MAX_OUTPUTS {
            return Err(ComponentError::permanent(format!("script returned more than {MAX_OUTPUTS} values")));
        }
        array.iter().map(to_json).collect::<Result<_, _>>()?
    } else {
        vec![to_json(&result)?]
    };
    let size: usize = values.iter().map(|v| v.to_string().len()).sum();
    if size > limits.memory_bytes {
        return Err(ComponentError::permanent(format!(
            "script output of {size} bytes exceeds the memory limit"
        )));
    }
    Ok(values)
}

fn to_json(value: &Dynamic) -> Result<Value, ComponentError> {
    rhai::serde::from_dynamic::<Value>(value)
        .map_err(|e| ComponentError::permanent(format!("script result is not JSON: {e}")))
}
