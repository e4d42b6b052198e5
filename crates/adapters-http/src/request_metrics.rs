//! Request metrics through the `metrics` facade: a counter and a latency histogram per method,
//! matched route and status. The binary installs the Prometheus exporter that serves them.
//!
//! Every label comes from a bounded set whatever the client sends: the method is one of the
//! standard ones or `other`, the route is the route template (`/flows/{id}`) or `unmatched`,
//! and the status is one the server answered.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// The `route` label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// The `method` label of a method outside the standard ones.
pub const OTHER_METHOD: &str = "other";

/// Records `http_requests_total` and `http_request_duration_seconds` for every request.
pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    // The route template (`/flows/{id}`), never the raw path, keeps label cardinality bounded.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method.to_owned()), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

/// The `method` label: the standard method's name, or [`OTHER_METHOD`] for any other (a client
/// can send any token as a method, and each would otherwise be a new series).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => OTHER_METHOD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_methods_keep_their_name_and_any_other_is_other() {
        for name in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"] {
            let method = Method::from_bytes(name.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(method_label(&method), name);
        }
        for name in ["FOO", "get", "PROPFIND", "X-1", "BREW"] {
            let method = Method::from_bytes(name.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(method_label(&method), OTHER_METHOD, "{name}");
        }
    }
}
