//! Rhai scripts, as a sandbox process runs them: no module resolver (no file access), no
//! `eval`, operations, expression depth, call depth, string, array and map sizes bounded, and a
//! wall-clock deadline checked while the script runs. The result is converted to JSON with a
//! nesting and size limit (a script can build values nested far deeper than JSON may be).

use std::time::{Duration, Instant};

use flow_domain::expr::MAX_OUTPUT_BYTES;
use rhai::{Dynamic, Engine, Scope};
use serde_json::{Map, Value};

use super::protocol::RhaiLimits;

/// Most messages one script may emit.
pub(crate) const MAX_OUTPUTS: usize = 1000;

fn engine(limits: RhaiLimits) -> Engine {
    let mut engine = Engine::new();
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.disable_symbol("eval");
    engine.set_max_operations(limits.operations);
    engine.set_max_expr_depths(64, 32);
    engine.set_max_call_levels(32);
    let memory = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
    engine.set_max_string_size(memory);
    // Each element costs at least a few words; bound collections by the memory budget.
    engine.set_max_array_size((memory / 64).max(1));
    engine.set_max_map_size((memory / 64).max(1));
    // Nothing may reach the process's output, which carries the replies.
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    let deadline = Instant::now() + Duration::from_millis(limits.time_ms);
    engine.on_progress(
        move |ops| {
            if ops % 256 == 0 && Instant::now() >= deadline { Some(Dynamic::UNIT) } else { None }
        },
    );
    engine
}

/// Runs `script` on `msg`: the values it returns (`()`: none; an array: one each; anything
/// else: one).
///
/// # Errors
/// The script's error, or the limit it hit, as a plain message.
pub(crate) fn run(script: &str, msg: &Value, limits: RhaiLimits) -> Result<Vec<Value>, String> {
    let engine = engine(limits);
    let msg = rhai::serde::to_dynamic(msg).map_err(|e| format!("message not convertible: {e}"))?;
    let mut scope = Scope::new();
    scope.push_dynamic("msg", msg);
    let result = engine.eval_with_scope::<Dynamic>(&mut scope, script).map_err(|e| match *e {
        rhai::EvalAltResult::ErrorTerminated(..) => format!("time limit of {} ms exceeded", limits.time_ms),
        rhai::EvalAltResult::ErrorTooManyOperations(..) => {
            format!("limit of {} operations exceeded", limits.operations)
        }
        other => format!("script error: {other}"),
    })?;
    let mut budget = MAX_OUTPUT_BYTES.min(usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX));
    if result.is_unit() {
        Ok(Vec::new())
    } else if result.is_array() {
        let array = result.into_array().map_err(|t| format!("script returned {t}"))?;
        if array.len() > MAX_OUTPUTS {
            return Err(format!("script returned more than {MAX_OUTPUTS} values"));
        }
        array.iter().map(|v| to_json(v, 0, limits.max_nesting, &mut budget)).collect()
    } else {
        Ok(vec![to_json(&result, 0, limits.max_nesting, &mut budget)?])
    }
}

/// The JSON value of a script's result at nesting `depth` (at most `max_nesting`), charging
/// every node to `budget`.
fn to_json(value: &Dynamic, depth: usize, max_nesting: usize, budget: &mut usize) -> Result<Value, String> {
    let over = || format!("script output larger than {} bytes", MAX_OUTPUT_BYTES);
    *budget = budget.checked_sub(8).ok_or_else(over)?;
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = value.as_float() {
        return Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number));
    }
    if let Ok(c) = value.as_char() {
        return Ok(Value::String(c.to_string()));
    }
    if value.is_string() {
        let text = value.clone().into_string().map_err(|t| format!("script returned {t}"))?;
        *budget = budget.checked_sub(text.len()).ok_or_else(over)?;
        return Ok(Value::String(text));
    }
    if depth >= max_nesting && (value.is_array() || value.is_map() || value.is_blob()) {
        return Err(format!("nesting deeper than {max_nesting} levels"));
    }
    if value.is_array() {
        let items = value.read_lock::<rhai::Array>().ok_or("script returned a locked array")?;
        return Ok(Value::Array(
            items.iter().map(|v| to_json(v, depth + 1, max_nesting, budget)).collect::<Result<_, _>>()?,
        ));
    }
    if value.is_blob() {
        let bytes = value.read_lock::<rhai::Blob>().ok_or("script returned a locked blob")?;
        *budget = budget.checked_sub(bytes.len() * 4).ok_or_else(over)?;
        return Ok(Value::Array(bytes.iter().map(|b| Value::from(*b)).collect()));
    }
    if value.is_map() {
        let entries = value.read_lock::<rhai::Map>().ok_or("script returned a locked map")?;
        let mut out = Map::new();
        for (key, item) in entries.iter() {
            *budget = budget.checked_sub(key.len()).ok_or_else(over)?;
            out.insert(key.to_string(), to_json(item, depth + 1, max_nesting, budget)?);
        }
        return Ok(Value::Object(out));
    }
    Err(format!("script result is not JSON: {}", value.type_name()))
}
