//! `http.request`: one HTTP call per message, sent through the shared [`HttpTransport`]
//! (retries on 429, 5xx and connection errors with backoff, jitter and `Retry-After`; refusal
//! of loopback, private, link-local and unspecified destinations unless the call context allows
//! private networks).
//!
//! The emitted message is the incoming one with `data` set to the response body (JSON when it
//! parses, else text), `headers` to the response headers and `status` to the status code.
//! Without a `body` field, `POST`, `PUT` and `PATCH` send the incoming message's `data` as JSON.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, Response, Url};
use serde_json::{Map, Value};

use super::transport::{OutboundRequest, RETRY_CAP};
use super::{CallContext, Component, ComponentError, check_function, required_str};

pub use super::transport::{HttpConfig, HttpTransport};

/// The `http` component.
#[derive(Debug, Clone)]
pub struct HttpComponent {
    transport: Arc<HttpTransport>,
}

impl HttpComponent {
    /// Builds the component with its own HTTP clients.
    ///
    /// # Errors
    /// When the TLS backend or resolver cannot be initialised.
    pub fn new(config: HttpConfig) -> Result<Self, ComponentError> {
        Ok(Self::with_transport(Arc::new(HttpTransport::new(config)?)))
    }

    /// The component over a shared transport.
    pub fn with_transport(transport: Arc<HttpTransport>) -> Self {
        Self { transport }
    }

    fn parse(&self, fields: &Map<String, Value>, msg: &Value) -> Result<OutboundRequest, ComponentError> {
        let config = self.transport.config();
        let url = Url::parse(required_str(fields, "url")?)
            .map_err(|e| ComponentError::permanent(format!("invalid url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ComponentError::permanent("url must be http or https"));
        }
        let method = fields.get("method").and_then(Value::as_str).unwrap_or("GET");
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ComponentError::permanent(format!("invalid method `{method}`")))?;
        let timeout = fields
            .get("timeoutMs")
            .and_then(Value::as_u64)
            .map_or(config.default_timeout, Duration::from_millis)
            .clamp(Duration::from_millis(1), config.max_timeout);
        let max_retries = fields
            .get("maxRetries")
            .and_then(Value::as_u64)
            .map_or(config.max_retries, |n| u32::try_from(n).unwrap_or(RETRY_CAP))
            .min(RETRY_CAP);
        Ok(OutboundRequest {
            body: body_of(fields, &method, msg),
            method,
            url,
            headers: string_pairs(fields, "headers")?,
            query: string_pairs(fields, "query")?,
            timeout,
            max_retries,
        })
    }

    async fn emit(&self, msg: &Value, response: Response) -> Result<Value, ComponentError> {
        let status = response.status().as_u16();
        let headers: Map<String, Value> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (k.as_str().to_owned(), Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            })
            .collect();
        let bytes = self.transport.body(response).await?;
        let data = serde_json::from_slice::<Value>(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        let mut out = match msg {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        out.insert("data".into(), data);
        out.insert("headers".into(), Value::Object(headers));
        out.insert("status".into(), Value::from(status));
        Ok(Value::Object(out))
    }
}

/// The `body` field; without one, `POST`, `PUT` and `PATCH` send the message's `data`.
fn body_of(fields: &Map<String, Value>, method: &Method, msg: &Value) -> Option<Value> {
    match fields.get("body") {
        Some(body) if !body.is_null() => Some(body.clone()),
        _ if [Method::POST, Method::PUT, Method::PATCH].contains(method) => {
            msg.get("data").filter(|d| !d.is_null()).cloned()
        }
        _ => None,
    }
}

fn string_pairs(fields: &Map<String, Value>, name: &str) -> Result<Vec<(String, String)>, ComponentError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => Ok(map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect()),
        Some(_) => Err(ComponentError::permanent(format!("field `{name}` must be an object"))),
    }
}

#[async_trait]
impl Component for HttpComponent {
    async fn call(
        &self,
        function: &str,
        fields: &Map<String, Value>,
        msg: &Value,
        ctx: &CallContext,
    ) -> Result<Vec<Value>, ComponentError> {
        check_function(function, "request")?;
        let req = self.parse(fields, msg)?;
        let response = self.transport.execute(&req, ctx).await?;
        Ok(vec![self.emit(msg, response).await?])
    }
}
