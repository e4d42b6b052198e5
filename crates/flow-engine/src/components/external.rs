//! External components (SPEC §7): components registered with `POST /components`. Each call
//! POSTs `{function, fields, msg}` to the registered URL through the shared [`HttpTransport`]
//! (same destination guard, timeouts and retries as `http.request`) and takes the messages the
//! service answers with:
//!
//! - a JSON array: each element is one message; an element that is not an object becomes the
//!   `data` of a copy of the incoming message;
//! - an object `{messages: [...]}`: the same, for the array;
//! - anything else is a permanent error.

use std::sync::Arc;

use async_trait::async_trait;
use flow_domain::model::ExternalComponent;
use reqwest::{Method, Url};
use serde_json::{Map, Value, json};

use super::transport::{HttpTransport, OutboundRequest, RETRY_CAP};
use super::{CallContext, Component, ComponentError, with_data};

/// The executable side of an external component: calls its URL for each message.
#[derive(Debug, Clone)]
pub struct RemoteComponent {
    name: String,
    url: Url,
    functions: Vec<String>,
    transport: Arc<HttpTransport>,
}

impl RemoteComponent {
    /// The caller of the registered component `component`, sending through `transport`.
    ///
    /// # Errors
    /// When the registered URL is not an absolute http(s) URL (permanent).
    pub fn new(component: &ExternalComponent, transport: Arc<HttpTransport>) -> Result<Self, ComponentError> {
        let url = Url::parse(&component.url).map_err(|e| {
            ComponentError::permanent(format!("component `{}` has an invalid url: {e}", component.name))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ComponentError::permanent(format!(
                "component `{}` url must be http or https",
                component.name
            )));
        }
        Ok(Self {
            name: component.name.clone(),
            url,
            functions: component.functions.iter().map(|f| f.name.clone()).collect(),
            transport,
        })
    }
}

#[async_trait]
impl Component for RemoteComponent {
    async fn call(
        &self,
        function: &str,
        fields: &Map<String, Value>,
        msg: &Value,
        ctx: &CallContext,
    ) -> Result<Vec<Value>, ComponentError> {
        if !self.functions.iter().any(|f| f == function) {
            return Err(ComponentError::permanent(format!(
                "component `{}` has no function `{function}`",
                self.name
            )));
        }
        let config = self.transport.config();
        let req = OutboundRequest {
            method: Method::POST,
            url: self.url.clone(),
            headers: Vec::new(),
            query: Vec::new(),
            body: Some(json!({ "function": function, "fields": fields, "msg": msg })),
            timeout: config.default_timeout,
            max_retries: config.max_retries.min(RETRY_CAP),
        };
        let response = self.transport.execute(&req, ctx).await?;
        let bytes = self.transport.body(response).await?;
        let answer: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ComponentError::permanent(format!("component `{}` answered with invalid JSON: {e}", self.name))
        })?;
        messages_from(&self.name, msg, answer)
    }
}

/// The messages of an external component's answer (see the module docs).
fn messages_from(name: &str, msg: &Value, answer: Value) -> Result<Vec<Value>, ComponentError> {
    let items = match answer {
        Value::Array(items) => items,
        Value::Object(mut object) => match object.remove("messages") {
            Some(Value::Array(items)) => items,
            _ => return Err(not_messages(name)),
        },
        _ => return Err(not_messages(name)),
    };
    Ok(items.into_iter().map(|item| if item.is_object() { item } else { with_data(msg, item) }).collect())
}

fn not_messages(name: &str) -> ComponentError {
    ComponentError::permanent(format!(
        "component `{name}` must answer with an array of messages or an object {{\"messages\": [...]}}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_messages() {
        let msg = json!({ "id": "m", "data": 1, "headers": {} });
        let out = messages_from("c", &msg, json!([{ "data": 2 }, 3])).expect("array");
        assert_eq!(out, vec![json!({ "data": 2 }), json!({ "id": "m", "data": 3, "headers": {} })]);
        let out = messages_from("c", &msg, json!({ "messages": ["x"] })).expect("object");
        assert_eq!(out, vec![json!({ "id": "m", "data": "x", "headers": {} })]);
        assert!(messages_from("c", &msg, json!([])).expect("empty").is_empty());
        for bad in [json!({ "data": 1 }), json!({ "messages": 1 }), json!("x"), json!(null)] {
            let err = messages_from("c", &msg, bad).expect_err("refused");
            assert!(!err.retryable);
        }
    }
}
