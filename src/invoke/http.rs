//! [`HttpInvoker`]: calls a function by POSTing the task's event as JSON to an HTTP endpoint,
//! so that functions can run anywhere (a local dev server, a container, a real FC/FunctionGraph
//! HTTP trigger behind a proxy). The response convention is documented in `docs/functions.md`.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;

use super::{Invocation, InvokeError, Invoker};

/// Response header by which a function reports an error of the given type, whatever the status.
pub const ERROR_TYPE_HEADER: &str = "x-flowgate-error-type";

/// Longest part of a response body quoted in an invocation error message.
const BODY_EXCERPT: usize = 512;

/// Checks that a configured header name and value can be sent; the message is a configuration
/// problem.
pub(crate) fn check_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("invalid header name \"{name}\""))?;
    let v =
        HeaderValue::from_str(value).map_err(|_| format!("invalid value for header \"{name}\""))?;
    Ok((n, v))
}

/// A header value from free text (names chosen by users): UTF-8 is sent as is, control
/// characters (which HTTP forbids) are percent-encoded.
fn text_header(s: &str) -> HeaderValue {
    HeaderValue::from_bytes(s.as_bytes()).unwrap_or_else(|_| {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            if (c.is_ascii_control() && c != '\t') || c == '%' {
                out.push_str(&format!("%{:02X}", c as u32));
            } else {
                out.push(c);
            }
        }
        HeaderValue::from_bytes(out.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static(""))
    })
}

/// Calls a function over HTTP: one JSON POST per attempt, with the execution context in
/// `x-flowgate-*` request headers, and the response mapped to a result or an [`InvokeError`]:
///
/// * header `x-flowgate-error-type: T` (any status) → [`InvokeError::Function`] of type `T`,
///   message from the body's `errorMessage` or `message`, or the body text;
/// * non-2xx with a JSON body `{"errorType": ..., "errorMessage": ...}` → [`InvokeError::Function`];
/// * other 2xx → `Ok(body)`: the JSON value, `{}` for an empty body, a string for non-JSON text;
/// * other non-2xx → [`InvokeError::Invocation`] with code `Throttled` (429), `ServerError`
///   (5xx), `BadRequest` (other 4xx) or `BadResponse` (anything else);
/// * connection failure → code `Unreachable`; no answer in time → code `Timeout`.
///
/// The call is cancel-safe: dropping the future aborts the request.
#[derive(Clone)]
pub struct HttpInvoker {
    name: String,
    url: reqwest::Url,
    client: reqwest::Client,
    headers: HeaderMap,
    timeout: Duration,
}

impl std::fmt::Debug for HttpInvoker {
    // Header values are left out: they often hold credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpInvoker")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field(
                "headers",
                &self.headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpInvoker {
    /// Timeout of a call when neither the binding nor the task sets one.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    /// Creates an invoker of function `name` (used in messages) at `url` (`http://` or
    /// `https://`), using `client` so that bindings can share one connection pool. The timeout
    /// is [`HttpInvoker::DEFAULT_TIMEOUT`] until [`HttpInvoker::with_timeout`].
    pub fn new(
        name: impl Into<String>,
        url: &str,
        client: reqwest::Client,
    ) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL \"{url}\": {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("URL \"{url}\" must start with http:// or https://"));
        }
        Ok(HttpInvoker {
            name: name.into(),
            url: parsed,
            client,
            headers: HeaderMap::new(),
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// Sets the binding's timeout; a call uses the shorter of it and the task's timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Adds a header sent with every call (e.g. `authorization`). The `x-flowgate-*` context
    /// headers and `content-type` are set per call and override configured ones.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, String> {
        let (n, v) = check_header(name, value)?;
        self.headers.append(n, v);
        Ok(self)
    }

    /// The function name this invoker calls.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The binding's timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn request_headers(&self, call: &Invocation<'_>) -> HeaderMap {
        let mut h = self.headers.clone();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(
            HeaderName::from_static("x-flowgate-execution-id"),
            text_header(call.execution_id),
        );
        h.insert(
            HeaderName::from_static("x-flowgate-execution-name"),
            text_header(call.execution_name),
        );
        h.insert(
            HeaderName::from_static("x-flowgate-flow"),
            text_header(call.flow_name),
        );
        h.insert(
            HeaderName::from_static("x-flowgate-state"),
            text_header(call.state_name),
        );
        h.insert(
            HeaderName::from_static("x-flowgate-attempt"),
            HeaderValue::from(call.attempt),
        );
        match &call.task_token {
            Some(t) => {
                h.insert(
                    HeaderName::from_static("x-flowgate-task-token"),
                    text_header(t),
                );
            }
            None => {
                h.remove("x-flowgate-task-token");
            }
        }
        h
    }

    fn transport_error(&self, e: &reqwest::Error, timeout: Duration) -> InvokeError {
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        if e.is_timeout() {
            return self.timeout_error(timeout);
        }
        let code = if e.is_connect() || e.is_request() {
            "Unreachable"
        } else if e.is_body() || e.is_decode() {
            "BadResponse"
        } else {
            "Unknown"
        };
        InvokeError::Invocation {
            code: code.to_string(),
            message: format!("calling function {} at {}: {detail}", self.name, self.url),
        }
    }

    fn timeout_error(&self, timeout: Duration) -> InvokeError {
        InvokeError::Invocation {
            code: "Timeout".to_string(),
            message: format!(
                "function {} at {} did not answer within {:?}",
                self.name, self.url, timeout
            ),
        }
    }

    /// Maps a complete response to the call's outcome (see the type's documentation).
    fn interpret(
        &self,
        status: StatusCode,
        error_type: Option<String>,
        body: &[u8],
    ) -> Result<Value, InvokeError> {
        let text = String::from_utf8_lossy(body);
        let json: Option<Value> = if text.trim().is_empty() {
            None
        } else {
            serde_json::from_slice(body).ok()
        };
        let message_of = |v: &Value| -> Option<String> {
            ["errorMessage", "message"]
                .iter()
                .find_map(|k| v.get(k))
                .map(|m| match m {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
        };
        if let Some(error_type) = error_type {
            let message = match &json {
                Some(Value::String(s)) => s.clone(),
                Some(v) => message_of(v).unwrap_or_else(|| v.to_string()),
                None => text.trim().to_string(),
            };
            return Err(InvokeError::Function {
                error_type,
                message,
            });
        }
        if status.is_success() {
            return Ok(match json {
                Some(v) => v,
                None if text.trim().is_empty() => Value::Object(Default::default()),
                None => Value::String(text.into_owned()),
            });
        }
        if let Some(Value::String(t)) = json.as_ref().and_then(|v| v.get("errorType")) {
            if !t.is_empty() {
                let message = json.as_ref().and_then(message_of).unwrap_or_default();
                return Err(InvokeError::Function {
                    error_type: t.clone(),
                    message,
                });
            }
        }
        let code = match status.as_u16() {
            429 => "ResourceThrottled",
            500..=599 => "InternalServerError",
            400..=499 => "BadRequest",
            _ => "BadResponse",
        };
        let excerpt: String = text.chars().take(BODY_EXCERPT).collect();
        let ellipsis = if text.chars().nth(BODY_EXCERPT).is_some() {
            "..."
        } else {
            ""
        };
        Err(InvokeError::Invocation {
            code: code.to_string(),
            message: format!(
                "function {} at {} answered HTTP {status}: {excerpt}{ellipsis}",
                self.name, self.url
            ),
        })
    }

    async fn call(&self, call: &Invocation<'_>, timeout: Duration) -> Result<Value, InvokeError> {
        let body = serde_json::to_vec(&call.event).map_err(|e| InvokeError::Invocation {
            code: "BadRequest".to_string(),
            message: format!("cannot serialize the event: {e}"),
        })?;
        let response = self
            .client
            .post(self.url.clone())
            .headers(self.request_headers(call))
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(&e, timeout))?;
        let status = response.status();
        let error_type = response
            .headers()
            .get(ERROR_TYPE_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .filter(|t| !t.is_empty());
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e, timeout))?;
        self.interpret(status, error_type, &body)
    }
}

#[async_trait]
impl Invoker for HttpInvoker {
    async fn invoke(&self, call: &Invocation<'_>) -> Result<Value, InvokeError> {
        let timeout = call.timeout.map_or(self.timeout, |t| t.min(self.timeout));
        // reqwest's own timeout covers connecting through reading the body; the outer one makes
        // the deadline hold whatever the transport does.
        match tokio::time::timeout(timeout, self.call(call, timeout)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(self.timeout_error(timeout)),
        }
    }
}
