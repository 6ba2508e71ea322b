//! Built-in service tasks: `HTTP:Request` against a local axum server, MNS sends landing in the
//! outbox (engine, `/_flowgate/outbox` route, Alibaba compilers), and bindings overriding them.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use flowgate::config::Config;
use flowgate::engine::Engine;
use flowgate::invoke::services::{HttpRequestInvoker, OUTBOX_CAPACITY};
use flowgate::invoke::{Invocation, InvokeError, Invoker};
use flowgate::model::execution::FlowKey;
use flowgate::model::{ExecutionRecord, ExecutionStatus};
use flowgate::server::{app, prepare};
use flowgate::store::FlowRecord;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use support::{engine, fast_config, output, TestEngine};
use tower::ServiceExt;

type Seen = Arc<Mutex<Vec<Value>>>;

/// A local server: `/echo` (any method) answers with what it received and an `x-answer`
/// header; `/missing` answers 404 with text; `/slow` answers after 5 s; `/sink` records POSTed
/// JSON bodies and answers `{"sunk": true}`.
async fn start_server() -> (SocketAddr, Seen) {
    async fn echo(
        method: Method,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
        body: String,
    ) -> (HeaderMap, Json<Value>) {
        let mut h = HeaderMap::new();
        h.insert("x-answer", "42".parse().unwrap());
        let header = |n: &str| {
            headers
                .get(n)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        (
            h,
            Json(json!({
                "method": method.as_str(),
                "query": query.unwrap_or_default(),
                "x_test": header("x-test"),
                "content_type": header("content-type"),
                "body": body,
            })),
        )
    }
    async fn missing() -> (StatusCode, &'static str) {
        (StatusCode::NOT_FOUND, "nope")
    }
    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "late"
    }
    async fn sink(State(seen): State<Seen>, Json(v): Json<Value>) -> Json<Value> {
        seen.lock().unwrap().push(v);
        Json(json!({"sunk": true}))
    }
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/echo", any(echo))
        .route("/missing", get(missing))
        .route("/slow", get(slow))
        .route("/sink", post(sink))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

/// A one-task canonical flow calling `resource` with `parameters`.
fn task_flow(name: &str, resource: &str, parameters: Value) -> Value {
    json!({"name": name, "root": {"start_at": "T", "states": [
        {"name": "T", "type": "task", "resource": resource, "parameters": parameters, "end": true}]}})
}

async fn run_task(t: &TestEngine, resource: &str, parameters: Value) -> ExecutionRecord {
    let name = format!("svc-{}", uuid::Uuid::new_v4().simple());
    let flow = t.deploy(task_flow(&name, resource, parameters)).await;
    t.run(&flow, json!({"name": "bo", "text": "hi"})).await
}

fn succeeded(rec: &ExecutionRecord) -> Value {
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{rec:?}");
    output(rec)
}

#[tokio::test]
async fn http_request_get_with_query_and_headers() {
    let (addr, _) = start_server().await;
    let t = engine(json!([]), fast_config());
    let rec = run_task(
        &t,
        "HTTP:Request",
        json!({
            "url": format!("http://{addr}/echo?fixed=1"),
            "query": {"who.$": "$input.name", "n": 2, "tags": ["a b", "c&d"]},
            "headers": {"X-Test": "yes"},
        }),
    )
    .await;
    let out = succeeded(&rec);
    assert_eq!(out["StatusCode"], 200);
    assert_eq!(out["Headers"]["x-answer"], "42", "{out}");
    assert_eq!(out["Headers"]["content-type"], "application/json");
    assert_eq!(out["Body"]["method"], "GET", "GET is the default");
    assert_eq!(
        out["Body"]["query"],
        "fixed=1&who=bo&n=2&tags=a+b&tags=c%26d"
    );
    assert_eq!(out["Body"]["x_test"], "yes");
    assert_eq!(out["Body"]["body"], "");
}

#[tokio::test]
async fn http_request_post_json_and_text_bodies() {
    let (addr, _) = start_server().await;
    let t = engine(json!([]), fast_config());
    let rec = run_task(
        &t,
        "HTTP:Request",
        json!({"method": "post", "url": format!("http://{addr}/echo"),
               "body": {"greeting.$": "$input.text", "list": [1, 2]}}),
    )
    .await;
    let out = succeeded(&rec);
    assert_eq!(out["Body"]["method"], "POST");
    assert_eq!(out["Body"]["content_type"], "application/json");
    let sent: Value = serde_json::from_str(out["Body"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent, json!({"greeting": "hi", "list": [1, 2]}));

    let rec = run_task(
        &t,
        "HTTP:Request",
        json!({"method": "PUT", "url": format!("http://{addr}/echo"), "body": "raw text",
               "headers": {"content-type": "text/csv"}}),
    )
    .await;
    let out = succeeded(&rec);
    assert_eq!(out["Body"]["method"], "PUT");
    assert_eq!(out["Body"]["body"], "raw text");
    assert_eq!(
        out["Body"]["content_type"], "text/csv",
        "an explicit content-type wins"
    );
}

#[tokio::test]
async fn http_request_non_2xx_is_data() {
    let (addr, _) = start_server().await;
    let t = engine(json!([]), fast_config());
    let rec = run_task(
        &t,
        "HTTP:Request",
        json!({"url": format!("http://{addr}/missing")}),
    )
    .await;
    let out = succeeded(&rec);
    assert_eq!(out["StatusCode"], 404);
    assert_eq!(out["Body"], "nope", "a non-JSON body is text");
}

#[tokio::test]
async fn http_request_failures() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = engine(json!([]), fast_config());
    let rec = run_task(
        &t,
        "HTTP:Request",
        json!({"url": format!("http://127.0.0.1:{port}/x")}),
    )
    .await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(
        rec.error.as_deref(),
        Some("sys.Invoke.Unreachable"),
        "{rec:?}"
    );

    let rec = run_task(&t, "HTTP:Request", json!({"url": "ftp://example.com/f"})).await;
    assert_eq!(
        rec.error.as_deref(),
        Some("sys.Invoke.BadRequest"),
        "{rec:?}"
    );
    let rec = run_task(&t, "HTTP:Request", json!({"method": "GET"})).await;
    assert_eq!(
        rec.error.as_deref(),
        Some("sys.Invoke.BadRequest"),
        "{rec:?}"
    );
    assert!(rec.cause.unwrap().contains("url"));
}

#[tokio::test]
async fn http_request_times_out() {
    let (addr, _) = start_server().await;
    let event = json!({"url": format!("http://{addr}/slow")});
    let call = Invocation {
        resource: "HTTP:Request",
        event: &event,
        attempt: 0,
        execution_id: "e",
        execution_name: "n",
        flow_name: "f",
        state_name: "s",
        task_token: None,
        timeout: Some(Duration::from_millis(200)),
    };
    let started = std::time::Instant::now();
    let r = HttpRequestInvoker::new().invoke(&call).await;
    assert!(
        matches!(&r, Err(InvokeError::Invocation { code, .. }) if code == "Timeout"),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn mns_sends_land_in_the_outbox() {
    let t = engine(json!([]), fast_config());
    let flow = t
        .deploy(json!({"name": "sender", "root": {"start_at": "Q", "states": [
            {"name": "Q", "type": "task", "resource": "acs:mns:cn-hangzhou:123:/queues/orders/messages",
             "parameters": {"MessageBody.$": "$input.text", "Priority": 8},
             "output": {"q.$": "$result"}, "next": "S"},
            {"name": "S", "type": "task", "resource": "MNS:SendMessage",
             "parameters": {"resourceArn": "acs:mns:::/topics/news/messages", "message": {"n": 1}},
             "output": {"q.$": "$input.q", "s.$": "$result"}, "end": true}]}}))
        .await;
    let rec = t.run(&flow, json!({"name": "bo", "text": "hi"})).await;
    let out = succeeded(&rec);
    let outbox = t.engine.outbox().list(None, None);
    assert_eq!(outbox.len(), 2);
    let (q, s) = (&outbox[0], &outbox[1]);
    let q = serde_json::to_value(q).unwrap();
    assert_eq!(
        q["resource"],
        "acs:mns:cn-hangzhou:123:/queues/orders/messages"
    );
    assert_eq!(q["kind"], "queue");
    assert_eq!(q["name"], "orders");
    assert_eq!(q["execution_id"], &*rec.id);
    assert_eq!(q["execution_name"], &*rec.name);
    assert_eq!(q["flow"], "sender");
    assert_eq!(q["state"], "Q");
    assert_eq!(q["body"], "hi");
    assert_eq!(q["message"], json!({"MessageBody": "hi", "Priority": 8}));
    assert!(chrono::DateTime::parse_from_rfc3339(q["time"].as_str().unwrap()).is_ok());
    assert_eq!(out["q"]["MessageId"], q["id"]);
    assert_eq!(
        out["q"]["MessageBodyMD5"],
        "49F68A5C8493EC2C0BF489821C21FC3B"
    );
    assert_eq!(out["q"]["RequestId"].as_str().unwrap().len(), 36);

    assert_eq!(s.resource, "MNS:SendMessage");
    assert_eq!(s.name, "news");
    assert_eq!(serde_json::to_value(s.kind).unwrap(), "topic");
    assert_eq!(s.body, r#"{"n":1}"#);
    assert_eq!(out["s"]["MessageId"], s.id.as_str());
    assert_ne!(s.id, outbox[0].id);

    assert_eq!(t.engine.outbox().list(None, Some("news")).len(), 1);
    assert_eq!(
        t.engine.outbox().list(Some("MNS:SendMessage"), None)[0].id,
        s.id
    );
    assert_eq!(t.engine.outbox().capacity(), OUTBOX_CAPACITY);
}

#[tokio::test]
async fn mns_send_without_a_queue_fails() {
    let t = engine(json!([]), fast_config());
    let rec = run_task(&t, "MNS:SendMessage", json!({"message": "x"})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(
        rec.error.as_deref(),
        Some("sys.Invoke.BadRequest"),
        "{rec:?}"
    );
    assert!(t.engine.outbox().is_empty());
}

#[tokio::test]
async fn bindings_win_over_built_in_services() {
    let (addr, seen) = start_server().await;
    let t = engine(
        json!([
            {"name": "orders", "matches": ["acs:mns:*"], "invoker": "http",
             "url": format!("http://{addr}/sink")},
            {"name": "HTTP:Request", "invoker": "mock",
             "responses": [{"return": {"mocked": true}}]}
        ]),
        fast_config(),
    );
    let rec = run_task(
        &t,
        "acs:mns:::/queues/orders/messages",
        json!({"MessageBody.$": "$input.text"}),
    )
    .await;
    assert_eq!(succeeded(&rec), json!({"sunk": true}));
    assert_eq!(*seen.lock().unwrap(), vec![json!({"MessageBody": "hi"})]);
    assert!(
        t.engine.outbox().is_empty(),
        "the binding bypasses the outbox"
    );

    let rec = run_task(&t, "HTTP:Request", json!({"url": "http://127.0.0.1:1/"})).await;
    assert_eq!(succeeded(&rec), json!({"mocked": true}));

    // MNS:SendMessage is not matched by `acs:mns:*`: it is still the built-in.
    let rec = run_task(
        &t,
        "MNS:SendMessage",
        json!({"resourceArn": "acs:mns:::/queues/orders/messages", "message": "m"}),
    )
    .await;
    succeeded(&rec);
    assert_eq!(t.engine.outbox().len(), 1);
}

async fn send(router: &Router, method: &str, path: &str) -> (StatusCode, Value) {
    let resp = router
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn deploy_on(engine: &Engine, flow: Value) -> Arc<FlowRecord> {
    let text = flow.to_string();
    let compiled = flowgate::canonical::compile(&text).unwrap();
    let now = chrono::Utc::now();
    let rec = FlowRecord {
        id: uuid::Uuid::new_v4().to_string().into(),
        key: FlowKey::new("test", compiled.name.clone()),
        dialect: "canonical".into(),
        definition: Arc::from(text.as_str()),
        flow: Arc::new(compiled),
        created: now,
        modified: now,
        metadata: Value::Null,
    };
    Arc::new(engine.create_flow(rec).await.unwrap())
}

#[tokio::test]
async fn outbox_route_lists_filters_and_empties() {
    let mut config = Config::default();
    config.store = flowgate::config::StoreConfig::memory();
    config.flows.dir = None;
    let (state, dialects) = prepare(config).await.unwrap();
    let engine = state.engine.clone();
    let router = app(state, &dialects);
    let (status, body) = send(&router, "GET", "/_flowgate/outbox").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"messages": []}));

    for (name, resource) in [
        ("a", "acs:mns:::/queues/alpha/messages"),
        ("b", "acs:mns:::/topics/beta/messages"),
    ] {
        let flow = deploy_on(
            &engine,
            task_flow(name, resource, json!({"MessageBody": name})),
        )
        .await;
        let rec = engine
            .start_sync(support::request(&flow, None, json!({})), true)
            .await
            .unwrap();
        succeeded(&rec);
    }

    let (_, body) = send(&router, "GET", "/_flowgate/outbox").await;
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["name"], "alpha", "oldest first");
    assert_eq!(messages[0]["flow"], "a");
    assert_eq!(messages[1]["kind"], "topic");
    let (_, body) = send(&router, "GET", "/_flowgate/outbox?name=beta").await;
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);
    assert_eq!(body["messages"][0]["body"], "b");
    let (_, body) = send(
        &router,
        "GET",
        "/_flowgate/outbox?resource=acs%3Amns%3A%3A%3A%2Fqueues%2Falpha%2Fmessages",
    )
    .await;
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);
    assert_eq!(body["messages"][0]["name"], "alpha");

    let (status, body) = send(&router, "DELETE", "/_flowgate/outbox").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["deleted"], 2);
    let (_, body) = send(&router, "GET", "/_flowgate/outbox").await;
    assert_eq!(body, json!({"messages": []}));
}

#[tokio::test]
async fn compiled_alibaba_flows_reach_the_outbox() {
    use flowgate::dialects::alibaba::fdl::compile_definition;
    let t = engine(json!([]), fast_config());

    let cloudflow = r#"
Type: StateMachine
SpecVersion: v1
Name: notify
StartAt: Send
States:
  - Type: Task
    Name: Send
    Action: MNS:SendMessage
    Parameters:
      resourceArn: acs:mns:cn-hangzhou:123:/queues/q/messages
      message.$: $Input.text
    End: true
"#;
    let flow = compile_definition("notify", cloudflow).unwrap();
    let flow = t
        .deploy_compiled(flow, cloudflow, "alibaba", "alibaba")
        .await;
    let rec = t.run(&flow, json!({"text": "hi"})).await;
    let out = succeeded(&rec);
    let sent = t.engine.outbox().list(Some("MNS:SendMessage"), None);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].name, "q");
    assert_eq!(sent[0].state, "Send");
    assert_eq!(sent[0].body, "hi");
    assert_eq!(
        sent[0].message,
        json!({"resourceArn": "acs:mns:cn-hangzhou:123:/queues/q/messages", "message": "hi"})
    );
    assert_eq!(out["MessageId"], sent[0].id.as_str());
    assert_eq!(out["MessageBodyMD5"], "49F68A5C8493EC2C0BF489821C21FC3B");

    let fdl = r#"
version: v1
type: flow
steps:
  - type: task
    name: publish
    resourceArn: acs:mns:::/topics/demo-topic/messages
    inputMappings:
      - {target: messageBody, source: $input.messageBody}
      - {target: n, source: $input.n}
    serviceParams:
      MessageBody: $
    outputMappings:
      - {target: id, source: $local.MessageId}
      - {target: md5, source: $local.MessageBodyMD5}
"#;
    let flow = compile_definition("publisher", fdl).unwrap();
    let flow = t.deploy_compiled(flow, fdl, "alibaba", "alibaba").await;
    let rec = t.run(&flow, json!({"messageBody": "m1", "n": 2})).await;
    let out = succeeded(&rec);
    let sent = t.engine.outbox().list(None, Some("demo-topic"));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].resource, "acs:mns:::/topics/demo-topic/messages");
    assert_eq!(sent[0].state, "publish");
    assert_eq!(sent[0].body, r#"{"messageBody":"m1","n":2}"#);
    assert_eq!(out["id"], sent[0].id.as_str());
    assert_eq!(out["md5"], "623307752B1B5D20863FC854F7DFAC1E");
}
