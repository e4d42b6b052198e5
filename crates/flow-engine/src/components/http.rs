//! `http.request`: one HTTP call per message, with retries on 429, 5xx and connection errors
//! (exponential backoff with jitter, `Retry-After` in seconds honoured, both capped) and a
//! refusal of loopback, private, link-local and unspecified destinations unless the call
//! context allows private networks.
//!
//! The emitted message is the incoming one with `data` set to the response body (JSON when it
//! parses, else text), `headers` to the response headers and `status` to the status code.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Client, Method, Response, StatusCode, Url};
use serde_json::{Map, Value};

use super::net::{GuardedResolver, Refused, is_forbidden_address, resolve_checked};
use super::{CallContext, Component, ComponentError, check_function, required_str};

/// Tuning of the `http` component.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// First backoff delay; attempt `n` waits about `base_backoff * 2^n` (with jitter).
    pub base_backoff: Duration,
    /// Upper bound of one backoff delay.
    pub max_backoff: Duration,
    /// Upper bound of a `Retry-After` wait.
    pub max_retry_after: Duration,
    /// Retries when the fields do not say (`maxRetries`); never more than 5.
    pub max_retries: u32,
    /// Timeout of one attempt when `timeoutMs` is absent.
    pub default_timeout: Duration,
    /// Upper bound of `timeoutMs`.
    pub max_timeout: Duration,
    /// Largest response body accepted.
    pub max_response_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            max_retries: 5,
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(300),
            max_response_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Hard cap on retries, whatever the configuration says.
const RETRY_CAP: u32 = 5;
const MAX_REDIRECTS: usize = 10;

/// The `http` component.
#[derive(Debug, Clone)]
pub struct HttpComponent {
    guarded: Client,
    open: Client,
    config: HttpConfig,
}

impl HttpComponent {
    /// Builds the HTTP clients.
    ///
    /// # Errors
    /// When the TLS backend or resolver cannot be initialised.
    pub fn new(config: HttpConfig) -> Result<Self, ComponentError> {
        let guarded = Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error("too many redirects");
                }
                let literal = attempt
                    .url()
                    .host_str()
                    .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
                    .and_then(|h| h.parse::<std::net::IpAddr>().ok());
                match literal {
                    Some(ip) if is_forbidden_address(ip) => attempt.error(Refused(ip.to_string())),
                    _ => attempt.follow(),
                }
            }))
            .build()
            .map_err(|e| ComponentError::permanent(format!("HTTP client: {e}")))?;
        let open = Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| ComponentError::permanent(format!("HTTP client: {e}")))?;
        Ok(Self { guarded, open, config })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.config.base_backoff.saturating_mul(2u32.saturating_pow(attempt));
        let jitter: f64 = rand::random_range(0.5..=1.0);
        exp.min(self.config.max_backoff).mul_f64(jitter)
    }

    fn retry_after(&self, response: &Response) -> Option<Duration> {
        let secs = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()?;
        Some(Duration::from_secs(secs).min(self.config.max_retry_after))
    }
}

/// The parsed `fields` of one request.
struct Request {
    method: Method,
    url: Url,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    body: Option<Value>,
    timeout: Duration,
    max_retries: u32,
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

impl HttpComponent {
    fn parse(&self, fields: &Map<String, Value>) -> Result<Request, ComponentError> {
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
            .map_or(self.config.default_timeout, Duration::from_millis)
            .clamp(Duration::from_millis(1), self.config.max_timeout);
        let max_retries = fields
            .get("maxRetries")
            .and_then(Value::as_u64)
            .map_or(self.config.max_retries, |n| u32::try_from(n).unwrap_or(RETRY_CAP))
            .min(RETRY_CAP);
        Ok(Request {
            method,
            url,
            headers: string_pairs(fields, "headers")?,
            query: string_pairs(fields, "query")?,
            body: fields.get("body").filter(|b| !b.is_null()).cloned(),
            timeout,
            max_retries,
        })
    }

    async fn send(&self, client: &Client, req: &Request) -> Result<Response, reqwest::Error> {
        let mut builder =
            client.request(req.method.clone(), req.url.clone()).timeout(req.timeout).query(&req.query);
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        builder = match &req.body {
            None => builder,
            Some(Value::String(text)) => builder.body(text.clone()),
            Some(json) => builder.json(json),
        };
        builder.send().await
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
        let bytes = read_limited(response, self.config.max_response_bytes).await?;
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

async fn read_limited(mut response: Response, limit: usize) -> Result<Vec<u8>, ComponentError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ComponentError::transient(format!("reading the response failed: {e}")))?
    {
        if body.len() + chunk.len() > limit {
            return Err(ComponentError::permanent(format!("response larger than {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn refused_in(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused.to_string());
        }
        current = e.source();
    }
    None
}

/// Refuses `url` when its host is (or resolves to) a forbidden address.
async fn check_destination(url: &Url) -> Result<(), ComponentError> {
    let host = url.host_str().ok_or_else(|| ComponentError::permanent("url has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    match resolve_checked(host, port).await {
        Ok(_) => Ok(()),
        Err(e) => match refused_in(e.as_ref()) {
            Some(reason) => Err(ComponentError::permanent(reason)),
            None => Err(ComponentError::transient(format!("cannot resolve {host}: {e}"))),
        },
    }
}

fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
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
        let req = self.parse(fields)?;
        let client = if ctx.allow_private_networks {
            &self.open
        } else {
            check_destination(&req.url).await?;
            &self.guarded
        };
        let mut attempt = 0;
        loop {
            let wait = match self.send(client, &req).await {
                Ok(response) if response.status().is_success() => {
                    return Ok(vec![self.emit(msg, response).await?]);
                }
                Ok(response) if retryable_status(response.status()) => {
                    if attempt >= req.max_retries {
                        return Err(ComponentError::transient(format!(
                            "HTTP {} after {attempt} retries",
                            response.status()
                        )));
                    }
                    self.retry_after(&response).unwrap_or_else(|| self.backoff(attempt))
                }
                Ok(response) => {
                    let status = response.status();
                    let body = read_limited(response, 4096).await.unwrap_or_default();
                    return Err(ComponentError::permanent(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&body)
                    )));
                }
                Err(e) => {
                    if let Some(reason) = refused_in(&e) {
                        return Err(ComponentError::permanent(reason));
                    }
                    let transient = e.is_connect() || e.is_timeout() || e.is_request();
                    if !transient {
                        return Err(ComponentError::permanent(format!("request failed: {e}")));
                    }
                    if attempt >= req.max_retries {
                        return Err(ComponentError::transient(format!(
                            "request failed after {attempt} retries: {e}"
                        )));
                    }
                    self.backoff(attempt)
                }
            };
            tracing::debug!(flow = %ctx.flow_id, step = %ctx.step_id, attempt, ?wait, "retrying HTTP request");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = ctx.cancel.cancelled() => return Err(ComponentError::permanent("cancelled")),
            }
            attempt += 1;
        }
    }
}
