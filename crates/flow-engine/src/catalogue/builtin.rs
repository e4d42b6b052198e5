//! The built-in components and the JSON Schemas of their functions' `fields`.
//!
//! String properties holding a jq program are marked `"format": "jq"`; the checker compiles
//! them when a flow starts.

use flow_domain::ports::{ComponentFunction, ComponentKind, ComponentSpec};
use serde_json::{Value, json};

/// Every built-in component, in listing order.
pub fn builtin_components() -> Vec<ComponentSpec> {
    vec![
        component(
            "webhook",
            "Webhook",
            "Starts an execution for each HTTP request to the flow's webhook URL and passes the request on.",
            ComponentKind::Trigger,
            vec![function("receive", "Receives a webhook request.", object(json!({}), &[]))],
        ),
        component(
            "scheduler",
            "Scheduler",
            "Starts an execution at each due time of the flow's cron expression.",
            ComponentKind::Trigger,
            vec![function("schedule", "Fires on the flow's cron schedule.", object(json!({}), &[]))],
        ),
        component(
            "http",
            "HTTP request",
            "Calls an HTTP endpoint; retries on 429, 5xx and connection errors with backoff.",
            ComponentKind::Action,
            vec![function("request", "Sends one HTTP request per message.", http_request_schema())],
        ),
        component(
            "jq",
            "jq",
            "Transforms messages with a jq program; each output value is one message.",
            ComponentKind::Action,
            vec![function(
                "transform",
                "Runs a jq program on the message.",
                object(
                    json!({ "program": { "type": "string", "format": "jq", "description": "The jq program." } }),
                    &["program"],
                ),
            )],
        ),
        component(
            "filter",
            "Filter",
            "Passes a message on only when a jq condition holds.",
            ComponentKind::Action,
            vec![function(
                "filter",
                "Keeps messages for which the condition is truthy.",
                object(
                    json!({ "condition": { "type": "string", "format": "jq", "description": "A jq condition on the message." } }),
                    &["condition"],
                ),
            )],
        ),
        component(
            "code",
            "Code",
            "Runs a sandboxed script with time, memory and operation limits.",
            ComponentKind::Action,
            vec![function("run", "Runs the script on the message.", code_run_schema())],
        ),
        component(
            "log",
            "Log",
            "Writes a line to the step's log and passes the message on.",
            ComponentKind::Action,
            vec![function(
                "info",
                "Logs a message.",
                object(
                    json!({
                        "message": { "type": "string", "description": "The text to log; the message itself when absent." },
                        "level": { "type": "string", "enum": ["debug", "info", "warn", "error"], "default": "info" }
                    }),
                    &[],
                ),
            )],
        ),
        component(
            "delay",
            "Delay",
            "Waits before passing the message on.",
            ComponentKind::Action,
            vec![function(
                "wait",
                "Waits a number of milliseconds.",
                object(
                    json!({ "ms": { "type": "integer", "minimum": 0, "maximum": 3_600_000, "description": "Milliseconds to wait." } }),
                    &["ms"],
                ),
            )],
        ),
    ]
}

fn http_request_schema() -> Value {
    object(
        json!({
            "method": {
                "type": "string",
                "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                "default": "GET"
            },
            "url": { "type": "string", "description": "Absolute http(s) URL." },
            "headers": { "type": "object", "additionalProperties": { "type": "string" } },
            "query": { "type": "object", "additionalProperties": { "type": "string" } },
            "body": { "description": "Request body; JSON values are sent as JSON." },
            "timeoutMs": { "type": "integer", "minimum": 1, "default": 30_000 },
            "maxRetries": { "type": "integer", "minimum": 0, "maximum": 5, "default": 5 }
        }),
        &["url"],
    )
}

fn code_run_schema() -> Value {
    object(
        json!({
            "script": { "type": "string", "description": "The script; it receives the message and returns messages." },
            "limits": {
                "type": "object",
                "properties": {
                    "timeMs": { "type": "integer", "minimum": 1, "default": 1_000 },
                    "memoryBytes": { "type": "integer", "minimum": 1, "default": 16_777_216 },
                    "operations": { "type": "integer", "minimum": 1, "default": 1_000_000 }
                }
            }
        }),
        &["script"],
    )
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required })
}

fn function(name: &str, description: &str, config_schema: Value) -> ComponentFunction {
    ComponentFunction { name: name.into(), description: description.into(), config_schema }
}

fn component(
    id: &str,
    name: &str,
    description: &str,
    kind: ComponentKind,
    functions: Vec<ComponentFunction>,
) -> ComponentSpec {
    ComponentSpec {
        id: id.into(),
        name: name.into(),
        description: description.into(),
        kind,
        builtin: true,
        functions,
    }
}
