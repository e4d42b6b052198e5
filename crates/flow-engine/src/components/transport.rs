//! The outbound HTTP machinery shared by the `http` component and external components: two
//! `reqwest` clients (one guarded against loopback, private and link-local destinations, one
//! open for deployments that allow private networks), timeouts, and retries on 429, 5xx and
//! connection errors with exponential backoff, jitter and `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Method, Response, StatusCode, Url};
use serde_json::Value;

use super::net::{GuardedResolver, Refused, is_forbidden_address, resolve_checked};
use super::{CallContext, ComponentError};

/// Tuning of outbound HTTP calls (the `http` component and external components).
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
pub(crate) const RETRY_CAP: u32 = 5;
const MAX_REDIRECTS: usize = 10;

/// One outbound request, as the components describe it.
#[derive(Debug, Clone)]
pub(crate) struct OutboundRequest {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) query: Vec<(String, String)>,
    /// `None`: no body; a JSON string: sent as text; any other JSON value: sent as JSON.
    pub(crate) body: Option<Value>,
    pub(crate) timeout: Duration,
    pub(crate) max_retries: u32,
}

/// The HTTP clients and retry policy of outbound calls. Cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    guarded: Client,
    open: Client,
    config: HttpConfig,
}

impl HttpTransport {
    /// Builds the guarded and the open client.
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

    /// The tuning this transport was built with.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Sends `req`, retrying on 429, 5xx and connection errors, and returns the first
    /// successful (2xx) response. Refuses forbidden destinations unless `ctx` allows private
    /// networks; stops waiting when `ctx` is cancelled.
    pub(crate) async fn execute(
        &self,
        req: &OutboundRequest,
        ctx: &CallContext,
    ) -> Result<Response, ComponentError> {
        let client = if ctx.allow_private_networks {
            &self.open
        } else {
            check_destination(&req.url).await?;
            &self.guarded
        };
        let mut attempt = 0;
        loop {
            let wait = match send(client, req).await {
                Ok(response) if response.status().is_success() => return Ok(response),
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
            // The step id is the user's: a `&str` field, printed escaped (a Display field is not).
            let (flow, step) = (ctx.flow_id.as_str(), ctx.step_id.as_str());
            tracing::debug!(flow, step, attempt, ?wait, "retrying HTTP request");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = ctx.cancel.cancelled() => return Err(ComponentError::permanent("cancelled")),
            }
            attempt += 1;
        }
    }

    /// The body of `response`, refused when larger than the configured limit.
    pub(crate) async fn body(&self, response: Response) -> Result<Vec<u8>, ComponentError> {
        read_limited(response, self.config.max_response_bytes).await
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

async fn send(client: &Client, req: &OutboundRequest) -> Result<Response, reqwest::Error> {
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
