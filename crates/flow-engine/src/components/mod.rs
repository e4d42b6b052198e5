//! Execution of components: the [`Component`] trait, the per-call [`CallContext`], the
//! [`ComponentError`] they fail with, and the [`ComponentRegistry`] mapping a component id to
//! its implementation (the built-ins, and the external components of a tenant).
//!
//! A message is a JSON object `{id, data, attachments, metadata, headers, query, method, url,
//! pathSuffix}`; a call returns the messages the component emits (zero, one or many).
//! Running whole graphs is not done here.

mod code;
mod delay;
mod external;
mod filter;
mod http;
mod jq;
mod jq_cache;
mod log;
mod net;
mod passthrough;
mod registry;
mod transport;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::sandbox::Sandbox;

pub use code::CodeComponent;
pub use delay::{DelayComponent, MAX_DELAY};
pub use external::RemoteComponent;
pub use filter::FilterComponent;
pub use http::{HttpComponent, HttpConfig, HttpTransport};
pub use jq::{JqComponent, MAX_JQ_OUTPUTS};
pub use log::LogComponent;
pub use net::is_forbidden_address;
pub use passthrough::PassThrough;
pub use registry::ComponentRegistry;

/// Why a component call failed, and whether trying again later may succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentError {
    /// Human-readable reason (no secrets).
    pub message: String,
    /// Whether a later retry of the same call may succeed (e.g. the remote side was down).
    pub retryable: bool,
}

impl ComponentError {
    /// A failure that retrying will not fix (bad configuration, script error, refusal).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: false }
    }

    /// A failure that may go away on a later attempt.
    pub fn transient(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: true }
    }
}

impl std::fmt::Display for ComponentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ComponentError {}

/// What a component knows about the call beyond its fields and message.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The flow being executed (for logs).
    pub flow_id: String,
    /// The node (step) of the flow being executed (for logs).
    pub step_id: String,
    /// Cancelled when the execution is cancelled or the engine shuts down.
    pub cancel: CancellationToken,
    /// Whether outbound calls may reach loopback, private, link-local or unspecified addresses.
    pub allow_private_networks: bool,
    /// Where user programs (jq, Rhai) run.
    pub sandbox: Arc<Sandbox>,
}

/// One executable component.
#[async_trait]
pub trait Component: Send + Sync {
    /// Runs `function` with its configuration `fields` on `msg` and returns the emitted
    /// messages.
    ///
    /// # Errors
    /// A [`ComponentError`] saying whether the call may be retried.
    async fn call(
        &self,
        function: &str,
        fields: &Map<String, Value>,
        msg: &Value,
        ctx: &CallContext,
    ) -> Result<Vec<Value>, ComponentError>;
}

/// Fails unless `function` is `expected`.
pub(crate) fn check_function(function: &str, expected: &str) -> Result<(), ComponentError> {
    if function == expected {
        Ok(())
    } else {
        Err(ComponentError::permanent(format!("unknown function `{function}`")))
    }
}

/// A required string field.
pub(crate) fn required_str<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, ComponentError> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ComponentError::permanent(format!("field `{name}` must be a string")))
}

/// `msg` with its `data` replaced by `data` (a fresh message when `msg` is not an object). The
/// old `data` is not copied on the way.
pub(crate) fn with_data(msg: &Value, data: Value) -> Value {
    let mut out: Map<String, Value> = match msg {
        Value::Object(map) => {
            map.iter().filter(|(key, _)| *key != "data").map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        _ => Map::new(),
    };
    out.insert("data".into(), data);
    Value::Object(out)
}
