//! Webhook authentication (SPEC §6): the per-flow settings in `flowSettings.webhooks` and the
//! signature checks (HMAC-SHA256 of the raw body in a header, and Standard Webhooks). Every
//! comparison of secret material is constant-time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the HMAC unless the flow names another.
pub const DEFAULT_HMAC_HEADER: &str = "x-hmac";

/// How far a Standard Webhooks timestamp may be from now, either way.
pub const STANDARD_WEBHOOKS_TOLERANCE_SECS: i64 = 300;

/// The secret's key in `flowSettings.webhooks` (write-only: never rendered).
pub const SECRET_FIELD: &str = "secret";

/// A flow's webhook settings, read from `flowSettings.webhooks`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Whether callers must authenticate.
    pub require_auth: bool,
    /// The header holding the hex HMAC (lowercase).
    pub hmac_header: String,
    /// The shared secret (`whsec_<base64>` for Standard Webhooks, any string for HMAC).
    pub secret: Option<String>,
    /// Whether any user of the flow's tenant with `webhooks.execute` may call (not only owners).
    pub all_tenant_users: bool,
}

impl WebhookSettings {
    /// Reads the settings from a flow's `flowSettings` (missing or mistyped values take the
    /// defaults; validation of the flow reports mistyped values).
    pub fn from_flow_settings(flow_settings: &Map<String, Value>) -> Self {
        let hooks = flow_settings.get("webhooks").and_then(Value::as_object);
        let get = |key: &str| hooks.and_then(|h| h.get(key));
        Self {
            require_auth: get("requireWebhookAuth").and_then(Value::as_bool).unwrap_or(false),
            hmac_header: get("hmacHeaderKey")
                .and_then(Value::as_str)
                .map_or_else(|| DEFAULT_HMAC_HEADER.to_string(), str::to_ascii_lowercase),
            secret: get(SECRET_FIELD)
                .or_else(|| get("hmacAuthSecret"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            all_tenant_users: get("allTenantUsers").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

/// Checks `flowSettings.webhooks`; returns one message per problem with its field path.
pub fn check_settings(flow_settings: &Map<String, Value>) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let Some(hooks) = flow_settings.get("webhooks") else { return problems };
    let Some(hooks) = hooks.as_object() else {
        problems.push(("flowSettings.webhooks".into(), "Must be an object.".into()));
        return problems;
    };
    for (key, value) in hooks {
        let field = format!("flowSettings.webhooks.{key}");
        let ok = match key.as_str() {
            "requireWebhookAuth" | "allTenantUsers" => value.is_boolean(),
            "hmacHeaderKey" => value.as_str().is_some_and(is_header_name),
            "secret" | "hmacAuthSecret" => value.is_string(),
            "hmacAlgorithm" => value.as_str() == Some("sha256"),
            _ => {
                problems.push((field, format!("Unknown field \"{key}\".")));
                continue;
            }
        };
        if !ok {
            let expected = match key.as_str() {
                "requireWebhookAuth" | "allTenantUsers" => "a boolean",
                "hmacHeaderKey" => "a header name",
                "hmacAlgorithm" => "\"sha256\"",
                _ => "a string",
            };
            problems.push((field, format!("Must be {expected}.")));
        }
    }
    problems
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Removes the write-only secret from `flowSettings` (for rendering a flow).
pub fn redact_secret(flow_settings: &mut Map<String, Value>) {
    if let Some(Value::Object(hooks)) = flow_settings.get_mut("webhooks") {
        hooks.remove(SECRET_FIELD);
        hooks.remove("hmacAuthSecret");
    }
}

/// Keeps the stored secret when an update of `flowSettings` does not mention one (clients
/// never see it, so they cannot send it back).
pub fn keep_secret(old: &Map<String, Value>, new: &mut Map<String, Value>) {
    let old_hooks = old.get("webhooks").and_then(Value::as_object);
    let Some(Value::Object(new_hooks)) = new.get_mut("webhooks") else { return };
    for key in [SECRET_FIELD, "hmacAuthSecret"] {
        if !new_hooks.contains_key(key)
            && let Some(secret) = old_hooks.and_then(|h| h.get(key))
        {
            new_hooks.insert(key.into(), secret.clone());
        }
    }
}

/// Whether `signature_hex` is the hex HMAC-SHA256 of `body` under `secret` (constant-time).
pub fn verify_hmac(secret: &str, body: &[u8], signature_hex: &str) -> bool {
    let Some(given) = decode_hex(hmac_hex(signature_hex)) else { return false };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else { return false };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// The idempotency key of a call whose HMAC `signature_hex` verified: `hmac:` and the signature
/// in one spelling (lowercase hex, without `sha256=` or blanks), so a replay that respells the
/// signature still has the first call's key.
pub fn hmac_idempotency_key(signature_hex: &str) -> String {
    format!("hmac:{}", hmac_hex(signature_hex).to_ascii_lowercase())
}

/// The hex digits of an HMAC header value (`<hex>` or `sha256=<hex>`).
fn hmac_hex(signature: &str) -> &str {
    signature.trim().trim_start_matches("sha256=")
}

/// The idempotency key of a call whose Standard Webhooks signature verified: `webhook-id:` and
/// the signed `webhook-id`. The timestamp is left out on purpose: a sender re-delivers a message
/// with its `webhook-id` and a fresh timestamp and signature, and the standard makes the id the
/// key to deduplicate on; a replay cannot change the id without the secret either way.
pub fn standard_webhook_idempotency_key(id: &str) -> String {
    format!("webhook-id:{id}")
}

/// The hex HMAC-SHA256 of `body` under `secret` (what a caller puts in `x-hmac`).
pub fn sign_hmac(secret: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable_hmac());
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC accepts keys of every length.
fn unreachable_hmac() -> HmacSha256 {
    HmacSha256::new_from_slice(&[0]).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
}

/// The Standard Webhooks headers of a request.
#[derive(Debug, Clone, Copy)]
pub struct StandardWebhookHeaders<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp` (seconds since the epoch).
    pub timestamp: &'a str,
    /// `webhook-signature`: space-separated `v1,<base64>` entries.
    pub signature: &'a str,
}

/// Why a Standard Webhooks signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardWebhookError {
    /// The timestamp is not a number or is more than the tolerance away from now.
    StaleOrInvalidTimestamp,
    /// No `v1` signature matches.
    BadSignature,
}

fn standard_webhooks_key(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => BASE64.decode(encoded).unwrap_or_else(|_| secret.as_bytes().to_vec()),
        None => secret.as_bytes().to_vec(),
    }
}

fn standard_webhooks_mac(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let key = standard_webhooks_key(secret);
    let mut mac = HmacSha256::new_from_slice(&key).unwrap_or_else(|_| unreachable_hmac());
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Verifies a Standard Webhooks signature: `base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))`
/// with the timestamp within [`STANDARD_WEBHOOKS_TOLERANCE_SECS`] of `now`.
///
/// # Errors
/// Why it was refused.
pub fn verify_standard_webhook(
    secret: &str,
    headers: StandardWebhookHeaders<'_>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), StandardWebhookError> {
    let timestamp: i64 =
        headers.timestamp.trim().parse().map_err(|_| StandardWebhookError::StaleOrInvalidTimestamp)?;
    if (now.timestamp() - timestamp).abs() > STANDARD_WEBHOOKS_TOLERANCE_SECS {
        return Err(StandardWebhookError::StaleOrInvalidTimestamp);
    }
    let expected = standard_webhooks_mac(secret, headers.id, headers.timestamp.trim(), body);
    let mut matched = subtle::Choice::from(0);
    for entry in headers.signature.split_whitespace() {
        if let Some(given) = entry.strip_prefix("v1,").and_then(|b64| BASE64.decode(b64).ok()) {
            matched |= given.ct_eq(&expected);
        }
    }
    if bool::from(matched) { Ok(()) } else { Err(StandardWebhookError::BadSignature) }
}

/// The `webhook-signature` value a Standard Webhooks sender would put (`v1,<base64>`).
pub fn sign_standard_webhook(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", BASE64.encode(standard_webhooks_mac(secret, id, &timestamp.to_string(), body)))
}

/// Constant-time equality of two strings (for shared secrets).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    #[test]
    fn hmac_accepts_the_right_signature_only() {
        let sig = sign_hmac("s3cret", b"{\"a\":1}");
        assert!(verify_hmac("s3cret", b"{\"a\":1}", &sig));
        assert!(verify_hmac("s3cret", b"{\"a\":1}", &format!("sha256={sig}")));
        assert!(!verify_hmac("s3cret", b"{\"a\":2}", &sig));
        assert!(!verify_hmac("other", b"{\"a\":1}", &sig));
        assert!(!verify_hmac("s3cret", b"{\"a\":1}", "zz"));
        assert!(!verify_hmac("s3cret", b"{\"a\":1}", ""));
    }

    #[test]
    fn standard_webhooks_checks_signature_and_window() {
        let secret = format!("whsec_{}", BASE64.encode(b"key material"));
        let sig = sign_standard_webhook(&secret, "msg_1", 1_700_000_000, b"body");
        let headers = StandardWebhookHeaders { id: "msg_1", timestamp: "1700000000", signature: &sig };
        assert_eq!(verify_standard_webhook(&secret, headers, b"body", at(1_700_000_100)), Ok(()));
        let many = format!("v1,AAAA {sig}");
        let h = StandardWebhookHeaders { signature: &many, ..headers };
        assert_eq!(verify_standard_webhook(&secret, h, b"body", at(1_700_000_000)), Ok(()));
        assert_eq!(
            verify_standard_webhook(&secret, headers, b"body", at(1_700_000_301)),
            Err(StandardWebhookError::StaleOrInvalidTimestamp)
        );
        assert_eq!(
            verify_standard_webhook(&secret, headers, b"other", at(1_700_000_000)),
            Err(StandardWebhookError::BadSignature)
        );
        let forged = StandardWebhookHeaders { id: "msg_2", ..headers };
        assert_eq!(
            verify_standard_webhook(&secret, forged, b"body", at(1_700_000_000)),
            Err(StandardWebhookError::BadSignature)
        );
    }

    #[test]
    fn settings_read_validate_and_redact() {
        let settings =
            json!({"webhooks": {"requireWebhookAuth": true, "hmacHeaderKey": "X-Sig", "secret": "s"}});
        let settings = settings.as_object().cloned().unwrap_or_default();
        let read = WebhookSettings::from_flow_settings(&settings);
        assert!(read.require_auth);
        assert_eq!(read.hmac_header, "x-sig");
        assert_eq!(read.secret.as_deref(), Some("s"));
        assert!(check_settings(&settings).is_empty());
        let mut shown = settings.clone();
        redact_secret(&mut shown);
        assert_eq!(shown["webhooks"], json!({"requireWebhookAuth": true, "hmacHeaderKey": "X-Sig"}));
        let mut updated = shown.clone();
        keep_secret(&settings, &mut updated);
        assert_eq!(updated, settings);
        let bad = json!({"webhooks": {"requireWebhookAuth": "yes", "nope": 1}});
        assert_eq!(check_settings(bad.as_object().unwrap_or(&Map::new())).len(), 2);
    }
}
