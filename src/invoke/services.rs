//! Built-in service targets: task resources that flowgate answers itself when no
//! `[[functions]]` binding matches them (a binding always wins).
//!
//! * `HTTP:Request` (CloudFlow): a real HTTP call described by the task's event
//!   ([`HttpRequestInvoker`]).
//! * `MNS:SendMessage` (CloudFlow) and the MNS ARNs `acs:mns:{region}:{uid}:/queues/{q}/messages`
//!   and `acs:mns:{region}:{uid}:/topics/{t}/messages` (old FDL): the message is kept in an
//!   in-memory, bounded [`Outbox`] that `GET /_flowgate/outbox` lists ([`MnsInvoker`]).
//!
//! See the "Built-in service tasks" section of `docs/functions.md`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use md5::Digest;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use serde::Serialize;
use serde_json::{Map, Value};

use super::binding::FunctionBinding;
use super::{Invocation, InvokeError, Invoker};

/// The task resource of a CloudFlow HTTP call.
pub const HTTP_REQUEST: &str = "HTTP:Request";
/// The task resource of a CloudFlow MNS send.
pub const MNS_SEND_MESSAGE: &str = "MNS:SendMessage";
/// How many messages the outbox keeps by default; older ones are dropped first.
pub const OUTBOX_CAPACITY: usize = 10_000;
/// Timeout of an `HTTP:Request` task without a task timeout.
pub const DEFAULT_HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether an MNS target is a queue or a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MnsKind {
    /// `/queues/{name}/messages`.
    Queue,
    /// `/topics/{name}/messages`.
    Topic,
}

/// Parses an MNS ARN `acs:mns:{region}:{uid}:/queues/{q}/messages` or
/// `acs:mns:{region}:{uid}:/topics/{t}/messages` (region and uid may be empty, the leading `/`
/// of the path may be left out) into the kind and the queue or topic name.
pub fn mns_target(arn: &str) -> Option<(MnsKind, &str)> {
    let rest = arn.strip_prefix("acs:mns:")?;
    let mut it = rest.splitn(3, ':');
    let (_region, _uid, path) = (it.next()?, it.next()?, it.next()?);
    let path = path.strip_prefix('/').unwrap_or(path);
    let (kind, rest) = if let Some(r) = path.strip_prefix("queues/") {
        (MnsKind::Queue, r)
    } else if let Some(r) = path.strip_prefix("topics/") {
        (MnsKind::Topic, r)
    } else {
        return None;
    };
    let name = rest.strip_suffix("/messages")?;
    (!name.is_empty() && !name.contains('/')).then_some((kind, name))
}

/// One message sent to MNS by a task, as kept in the outbox and listed by
/// `GET /_flowgate/outbox`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxMessage {
    /// The message id (a UUID), also the task result's `MessageId`.
    pub id: String,
    /// When the message was sent (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// The task's resource as written in the flow (`MNS:SendMessage` or the MNS ARN).
    pub resource: String,
    /// Queue or topic.
    pub kind: MnsKind,
    /// The queue or topic name.
    pub name: String,
    /// The sending execution's id.
    pub execution_id: String,
    /// The sending execution's name.
    pub execution_name: String,
    /// The sending flow's name.
    pub flow: String,
    /// The sending state's name.
    pub state: String,
    /// The message body text, whose MD5 is the result's `MessageBodyMD5`.
    pub body: String,
    /// The task's whole event.
    pub message: Value,
}

/// The messages MNS tasks sent, oldest first, bounded: when full, the oldest is dropped.
#[derive(Debug)]
pub struct Outbox {
    capacity: usize,
    messages: Mutex<VecDeque<OutboxMessage>>,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::with_capacity(OUTBOX_CAPACITY)
    }
}

impl Outbox {
    /// An empty outbox keeping at most `capacity` messages (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Outbox {
            capacity: capacity.max(1),
            messages: Mutex::new(VecDeque::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<OutboxMessage>> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a message, dropping the oldest when the outbox is full.
    pub fn push(&self, message: OutboxMessage) {
        let mut q = self.lock();
        while q.len() >= self.capacity {
            q.pop_front();
        }
        q.push_back(message);
    }

    /// The messages, oldest first, whose `resource` and `name` equal the given filters.
    pub fn list(&self, resource: Option<&str>, name: Option<&str>) -> Vec<OutboxMessage> {
        self.lock()
            .iter()
            .filter(|m| resource.is_none_or(|r| m.resource == r))
            .filter(|m| name.is_none_or(|n| m.name == n))
            .cloned()
            .collect()
    }

    /// Empties the outbox; returns how many messages it held.
    pub fn clear(&self) -> usize {
        let mut q = self.lock();
        let n = q.len();
        q.clear();
        n
    }

    /// How many messages the outbox holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the outbox is empty.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The most messages kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

fn bad_request(message: String) -> InvokeError {
    InvokeError::Invocation {
        code: "BadRequest".to_string(),
        message,
    }
}

/// A JSON value as message or parameter text: a string as is, anything else as compact JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The message body of an MNS send: the event's `MessageBody` (old FDL `serviceParams`) or
/// `message` (CloudFlow `Parameters`), else the whole event.
fn message_body(event: &Value) -> String {
    let field = ["MessageBody", "message"]
        .iter()
        .find_map(|k| event.get(*k).filter(|v| !v.is_null()));
    text_of(field.unwrap_or(event))
}

/// Upper-case hex MD5 of `text`, as MNS reports `MessageBodyMD5`.
pub fn body_md5(text: &str) -> String {
    md5::Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Sends MNS messages to the [`Outbox`] and answers like MNS:
/// `{"MessageId", "MessageBodyMD5", "RequestId"}`.
#[derive(Debug, Clone)]
pub struct MnsInvoker {
    outbox: Arc<Outbox>,
}

impl MnsInvoker {
    /// An invoker sending to `outbox`.
    pub fn new(outbox: Arc<Outbox>) -> Self {
        MnsInvoker { outbox }
    }

    /// The queue or topic of a call: from the resource ARN, else (for `MNS:SendMessage`) from
    /// the event's `resourceArn`, `QueueName`/`queueName` or `TopicName`/`topicName`.
    fn target(call: &Invocation<'_>) -> Result<(MnsKind, String), InvokeError> {
        if let Some((k, n)) = mns_target(call.resource) {
            return Ok((k, n.to_string()));
        }
        let str_field = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| call.event.get(*k).and_then(Value::as_str))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        if let Some(arn) = str_field(&["resourceArn", "ResourceArn"]) {
            return mns_target(arn)
                .map(|(k, n)| (k, n.to_string()))
                .ok_or_else(|| {
                    bad_request(format!(
                        "resourceArn '{arn}' is not an MNS queue or topic \
                         (acs:mns:{{region}}:{{uid}}:/queues/{{q}}/messages or /topics/{{t}}/messages)"
                    ))
                });
        }
        if let Some(q) = str_field(&["QueueName", "queueName"]) {
            return Ok((MnsKind::Queue, q.to_string()));
        }
        if let Some(t) = str_field(&["TopicName", "topicName"]) {
            return Ok((MnsKind::Topic, t.to_string()));
        }
        Err(bad_request(format!(
            "{} needs a queue or topic: give resourceArn (acs:mns:::/queues/{{q}}/messages or \
             acs:mns:::/topics/{{t}}/messages), QueueName or TopicName",
            call.resource
        )))
    }
}

#[async_trait]
impl Invoker for MnsInvoker {
    async fn invoke(&self, call: &Invocation<'_>) -> Result<Value, InvokeError> {
        let (kind, name) = Self::target(call)?;
        let body = message_body(call.event);
        let md5 = body_md5(&body);
        let id = uuid::Uuid::new_v4().to_string();
        self.outbox.push(OutboxMessage {
            id: id.clone(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            resource: call.resource.to_string(),
            kind,
            name,
            execution_id: call.execution_id.to_string(),
            execution_name: call.execution_name.to_string(),
            flow: call.flow_name.to_string(),
            state: call.state_name.to_string(),
            body,
            message: call.event.clone(),
        });
        Ok(serde_json::json!({
            "MessageId": id,
            "MessageBodyMD5": md5,
            "RequestId": uuid::Uuid::new_v4().to_string(),
        }))
    }
}

/// Performs the HTTP call an `HTTP:Request` task's event describes:
/// `{"method", "url", "headers", "query", "body"}` → `{"StatusCode", "Headers", "Body"}`.
/// Any status is a result; only transport failures are errors (`Unreachable`, `Timeout`,
/// `BadResponse`), and bad parameters are `BadRequest`. Cancel-safe: dropping the future
/// aborts the request.
#[derive(Debug, Default)]
pub struct HttpRequestInvoker {
    client: OnceLock<reqwest::Client>,
}

impl HttpRequestInvoker {
    /// An invoker with its own connection pool, created on the first call.
    pub fn new() -> Self {
        Self::default()
    }

    fn client(&self) -> Result<&reqwest::Client, InvokeError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let c = reqwest::Client::builder()
            .build()
            .map_err(|e| InvokeError::Invocation {
                code: "Unknown".to_string(),
                message: format!("cannot create the HTTP client: {e}"),
            })?;
        Ok(self.client.get_or_init(|| c))
    }

    fn request(&self, event: &Value) -> Result<reqwest::RequestBuilder, InvokeError> {
        let Value::Object(p) = event else {
            return Err(bad_request(format!(
                "{HTTP_REQUEST} parameters must be an object with at least `url`"
            )));
        };
        let method = match p.get("method") {
            None | Some(Value::Null) => reqwest::Method::GET,
            Some(Value::String(m)) => {
                reqwest::Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                    .map_err(|_| bad_request(format!("invalid HTTP method '{m}'")))?
            }
            Some(other) => {
                return Err(bad_request(format!("method must be a string, not {other}")))
            }
        };
        let url = match p.get("url") {
            Some(Value::String(u)) => u.trim(),
            _ => return Err(bad_request(format!("{HTTP_REQUEST} needs a string `url`"))),
        };
        let mut url = reqwest::Url::parse(url)
            .map_err(|e| bad_request(format!("invalid url '{url}': {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad_request(format!(
                "url '{url}' must start with http:// or https://"
            )));
        }
        match p.get("query") {
            None | Some(Value::Null) => {}
            Some(Value::Object(q)) => {
                let mut pairs = Vec::new();
                for (k, v) in q {
                    match v {
                        Value::Null => {}
                        Value::Array(items) => {
                            for i in items {
                                pairs.push((k, scalar(i, &format!("query.{k}"))?));
                            }
                        }
                        v => pairs.push((k, scalar(v, &format!("query.{k}"))?)),
                    }
                }
                if !pairs.is_empty() {
                    let mut qp = url.query_pairs_mut();
                    for (k, v) in pairs {
                        qp.append_pair(k, &v);
                    }
                }
            }
            Some(other) => {
                return Err(bad_request(format!("query must be an object, not {other}")))
            }
        }
        let mut headers = HeaderMap::new();
        match p.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (k, v) in h {
                    let v = scalar(v, &format!("headers.{k}"))?;
                    let (n, v) = super::http::check_header(k, &v).map_err(bad_request)?;
                    headers.append(n, v);
                }
            }
            Some(other) => {
                return Err(bad_request(format!(
                    "headers must be an object, not {other}"
                )))
            }
        }
        let body = match p.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some((s.clone().into_bytes(), "text/plain; charset=utf-8")),
            Some(v) => Some((v.to_string().into_bytes(), "application/json")),
        };
        let mut req = self.client()?.request(method, url);
        if let Some((bytes, content_type)) = body {
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            }
            req = req.body(bytes);
        }
        Ok(req.headers(headers))
    }

    async fn call(&self, call: &Invocation<'_>, timeout: Duration) -> Result<Value, InvokeError> {
        let req = self.request(call.event)?;
        let response = req
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| transport_error(&e, timeout))?;
        let status = response.status().as_u16();
        let mut headers = Map::new();
        for (name, value) in response.headers() {
            let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.get_mut(name.as_str()) {
                Some(Value::String(prev)) => {
                    prev.push_str(", ");
                    prev.push_str(&v);
                }
                _ => {
                    headers.insert(name.as_str().to_string(), Value::String(v));
                }
            }
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(&e, timeout))?;
        let body = serde_json::from_slice::<Value>(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok(serde_json::json!({
            "StatusCode": status,
            "Headers": headers,
            "Body": body,
        }))
    }
}

/// A query or header value: strings as is, numbers and booleans as their JSON text.
fn scalar(v: &Value, at: &str) -> Result<String, InvokeError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(_) | Value::Bool(_) => Ok(v.to_string()),
        other => Err(bad_request(format!(
            "{at} must be a string, number or boolean, not {other}"
        ))),
    }
}

fn timeout_error(timeout: Duration) -> InvokeError {
    InvokeError::Invocation {
        code: "Timeout".to_string(),
        message: format!("{HTTP_REQUEST} got no answer within {timeout:?}"),
    }
}

fn transport_error(e: &reqwest::Error, timeout: Duration) -> InvokeError {
    if e.is_timeout() {
        return timeout_error(timeout);
    }
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
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
        message: format!("{HTTP_REQUEST}: {detail}"),
    }
}

#[async_trait]
impl Invoker for HttpRequestInvoker {
    async fn invoke(&self, call: &Invocation<'_>) -> Result<Value, InvokeError> {
        let timeout = call.timeout.unwrap_or(DEFAULT_HTTP_REQUEST_TIMEOUT);
        match tokio::time::timeout(timeout, self.call(call, timeout)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(timeout_error(timeout)),
        }
    }
}

/// The built-in targets of a [`super::FunctionRegistry`], consulted after its bindings.
#[derive(Debug)]
pub(crate) struct Services {
    outbox: Arc<Outbox>,
    http: FunctionBinding,
    mns: FunctionBinding,
}

impl Default for Services {
    fn default() -> Self {
        let outbox = Arc::new(Outbox::default());
        Services {
            http: FunctionBinding {
                name: HTTP_REQUEST.to_string(),
                patterns: Vec::new(),
                invoker: Arc::new(HttpRequestInvoker::new()),
            },
            mns: FunctionBinding {
                name: MNS_SEND_MESSAGE.to_string(),
                patterns: Vec::new(),
                invoker: Arc::new(MnsInvoker::new(outbox.clone())),
            },
            outbox,
        }
    }
}

impl Services {
    /// The built-in binding answering for `resource`, if any: `HTTP:Request`,
    /// `MNS:SendMessage` (both case-insensitive) or an MNS queue/topic ARN.
    pub(crate) fn resolve(&self, resource: &str) -> Option<&FunctionBinding> {
        if resource.eq_ignore_ascii_case(HTTP_REQUEST) {
            Some(&self.http)
        } else if resource.eq_ignore_ascii_case(MNS_SEND_MESSAGE) || mns_target(resource).is_some()
        {
            Some(&self.mns)
        } else {
            None
        }
    }

    /// The outbox of the MNS built-in.
    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mns_arns() {
        assert_eq!(
            mns_target("acs:mns:::/queues/orders/messages"),
            Some((MnsKind::Queue, "orders"))
        );
        assert_eq!(
            mns_target("acs:mns:cn-hangzhou:123:/topics/t1/messages"),
            Some((MnsKind::Topic, "t1"))
        );
        assert_eq!(
            mns_target("acs:mns:::queues/q/messages"),
            Some((MnsKind::Queue, "q"))
        );
        assert_eq!(mns_target("acs:mns:::/queues//messages"), None);
        assert_eq!(mns_target("acs:mns:::/queues/a/b/messages"), None);
        assert_eq!(mns_target("acs:mns:::/queues/a"), None);
        assert_eq!(mns_target("acs:fc:::/queues/a/messages"), None);
    }

    #[test]
    fn md5_is_upper_hex_of_the_body_text() {
        assert_eq!(body_md5(""), "D41D8CD98F00B204E9800998ECF8427E");
        assert_eq!(message_body(&serde_json::json!({"message": "hi"})), "hi");
        assert_eq!(
            message_body(&serde_json::json!({"MessageBody": {"a": 1}})),
            r#"{"a":1}"#
        );
        assert_eq!(message_body(&serde_json::json!({"x": 1})), r#"{"x":1}"#);
    }

    #[test]
    fn outbox_is_bounded_and_filters() {
        let o = Outbox::with_capacity(2);
        for (i, n) in ["a", "b", "a"].iter().enumerate() {
            o.push(OutboxMessage {
                id: i.to_string(),
                time: String::new(),
                resource: "r".into(),
                kind: MnsKind::Queue,
                name: n.to_string(),
                execution_id: String::new(),
                execution_name: String::new(),
                flow: String::new(),
                state: String::new(),
                body: String::new(),
                message: Value::Null,
            });
        }
        assert_eq!(o.len(), 2);
        let ids: Vec<_> = o.list(None, None).into_iter().map(|m| m.id).collect();
        assert_eq!(ids, ["1", "2"]);
        assert_eq!(o.list(None, Some("a")).len(), 1);
        assert_eq!(o.list(Some("x"), None).len(), 0);
        assert_eq!(o.clear(), 2);
        assert!(o.is_empty());
    }
}
