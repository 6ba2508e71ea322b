//! Task targets reached through the dialect APIs with real invokers: Alibaba (old FDL) and
//! Huawei workflows calling `http` functions (an axum server in the test) and `command`
//! functions (scripts in a temporary directory), with a function error caught by the flow and a
//! retry driven by a mock; a Huawei terminate that kills a running command; and an Alibaba
//! callback reported by another process to a live `flowgate serve`.
//!
//! The app is driven without a socket (`prepare` + `app` + `oneshot`, auth off, time_scale 0)
//! except for the callback test, which starts the binary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use flowgate::config::{AuthMode, Config};
use flowgate::dialects::alibaba::signature::encode_form;
use flowgate::server::{app, prepare};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const PROJECT: &str = "0123456789abcdef0123456789abcdef";

// ----- the app without a socket -----

async fn gateway(functions: Value) -> Router {
    let mut config = Config::default();
    config.store = flowgate::config::StoreConfig::memory();
    config.flows.dir = None;
    config.engine.time_scale = 0.0;
    config.auth.mode = AuthMode::Off;
    config.functions = serde_json::from_value(functions).expect("functions");
    let (state, dialects) = prepare(config).await.expect("app state");
    app(state, &dialects)
}

async fn send(router: &Router, req: Request<Body>) -> (u16, Value) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body)
}

/// One unsigned fnf RPC call: `Action` in the query, the parameters as a form body.
async fn ali(router: &Router, action: &str, params: &[(&str, &str)]) -> Value {
    let form: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let req = Request::builder()
        .method("POST")
        .uri(format!("/?Action={action}&Version=2019-03-15"))
        .header("host", "127.0.0.1:8080")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(encode_form(&form)))
        .unwrap();
    let (status, body) = send(router, req).await;
    assert_eq!(status, 200, "{action}: {body}");
    body
}

/// One unsigned Huawei REST call.
async fn hw(router: &Router, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("/v2/{PROJECT}/fgs{path}"))
        .header("host", "127.0.0.1:8080");
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    send(router, b.body(body).unwrap()).await
}

/// Creates an old-FDL flow, runs it to its end (StartExecution + a long DescribeExecution)
/// and answers the DescribeExecution body.
async fn run_fdl(router: &Router, flow: &str, definition: &str, exec: &str, input: Value) -> Value {
    ali(
        router,
        "CreateFlow",
        &[
            ("Name", flow),
            ("Type", "FDL"),
            ("Description", ""),
            ("Definition", definition),
        ],
    )
    .await;
    describe_after_start(router, flow, exec, input).await
}

async fn describe_after_start(router: &Router, flow: &str, exec: &str, input: Value) -> Value {
    let input = input.to_string();
    ali(
        router,
        "StartExecution",
        &[
            ("FlowName", flow),
            ("ExecutionName", exec),
            ("Input", &input),
        ],
    )
    .await;
    let d = ali(
        router,
        "DescribeExecution",
        &[
            ("FlowName", flow),
            ("ExecutionName", exec),
            ("WaitTimeSeconds", "20"),
        ],
    )
    .await;
    assert_ne!(d["Status"], "Running", "still running after 20 s: {d}");
    d
}

fn output_of(describe: &Value) -> Value {
    let text = describe["Output"]
        .as_str()
        .unwrap_or_else(|| panic!("no Output: {describe}"));
    serde_json::from_str(text).unwrap()
}

/// Creates a Huawei workflow and answers its id.
async fn create_workflow(router: &Router, body: Value) -> String {
    let (status, created) = hw(router, "POST", "/workflows", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

// ----- the flows -----

/// greet (a real function) → flaky (a mock: throws `Transient`, then returns; retried) →
/// book (a real function: `NoSeats` when the seat is "none", caught).
const FDL: &str = r#"version: v1
type: flow
steps:
  - type: task
    name: greet
    resourceArn: acs:fc:cn-hangzhou:123:services/t.LATEST/functions/greet
    inputMappings: [{target: name, source: $input.name}]
    outputMappings: [{target: greeting, source: $local.greeting}]
  - type: task
    name: flaky
    resourceArn: acs:fc:::services/t/functions/flaky
    retry: [{errors: [Transient], intervalSeconds: 1, maxAttempts: 2}]
    outputMappings: [{target: recovered, source: $local.recovered}]
  - type: task
    name: book
    resourceArn: acs:fc:::functions/book/LATEST
    inputMappings:
      - {target: name, source: $input.name}
      - {target: seat, source: $input.seat}
    catch: [{errors: [NoSeats], goto: soldOut}]
    outputMappings: [{target: booking, source: $local.booking}]
  - type: succeed
    name: done
  - type: pass
    name: soldOut
    outputMappings: [{target: booking, source: none}]
"#;

/// The same as a Huawei workflow: greet and flaky run as two actions of one node, book reads
/// both results, `on_errors` retries `Transient` and moves on to `soldOut` on `NoSeats`.
fn huawei_workflow(name: &str) -> Value {
    let urn = |f: &str| format!("urn:fss:cn-north-4:{PROJECT}:function:default:{f}:latest");
    json!({
        "name": name, "mode": "EXPRESS", "start": "prep",
        "functions": [
            {"name": "greet", "operation": urn("greet")},
            {"name": "flaky", "operation": urn("flaky")},
            {"name": "book", "operation": urn("book")}
        ],
        "retries": [{"name": "again", "delay": 1, "max_attempts": 2}],
        "states": [
            {"id": "prep", "name": "prep", "type": "Operation", "end": false, "transition": "book",
             "action_mode": "parallel",
             "actions": [
                 {"function_ref": {"ref_name": "greet", "arguments": {"name": "$.name", "seat": "$.seat"}}},
                 {"function_ref": {"ref_name": "flaky", "arguments": {}}}
             ],
             "on_errors": [{"error": "$.error == 'Transient'", "retry_ref": "again"}]},
            {"id": "book", "name": "book", "type": "Operation", "end": false, "transition": "done",
             "actions": [{"function_ref": {"ref_name": "book", "arguments": {
                 "name": "$[0].name", "seat": "$[0].seat", "greeting": "$[0].greeting",
                 "recovered": "$[1].recovered"}}}],
             "on_errors": [{"error": "$.error == 'NoSeats'", "transition": "soldOut"}]},
            {"id": "soldOut", "name": "soldOut", "type": "End", "end": true, "actions": []},
            {"id": "done", "name": "done", "type": "End", "end": true, "actions": []}
        ]
    })
}

/// The mock every variant shares: `Transient` on the first attempt, a result on the retry.
fn flaky_mock() -> Value {
    json!({"name": "flaky", "invoker": "mock", "responses": [
        {"attempts": "0", "throw": {"error": "Transient", "cause": "try again"}},
        {"attempts": "1-", "return": {"recovered": true}}
    ]})
}

// ----- an HTTP function server in the test -----

#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

async fn http_function(
    State(calls): State<Calls>,
    UrlPath(function): UrlPath<String>,
    headers: HeaderMap,
    Json(event): Json<Value>,
) -> Response {
    calls.0.fetch_add(1, Ordering::SeqCst);
    let mut out = event.clone();
    match function.as_str() {
        "greet" => {
            out["greeting"] = json!(format!("hello {}", event["name"].as_str().unwrap_or("?")));
            out["state"] = json!(headers
                .get("x-flowgate-state")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""));
            Json(out).into_response()
        }
        "book" if event["seat"] == "none" => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"errorType": "NoSeats", "errorMessage": "no seats left"})),
        )
            .into_response(),
        "book" => {
            out["booking"] = json!(format!("BK-{}", event["seat"].as_str().unwrap_or("?")));
            Json(out).into_response()
        }
        _ => (
            [("x-flowgate-error-type", "NoSuchFunction")],
            Json(json!({"errorMessage": "unknown function"})),
        )
            .into_response(),
    }
}

/// Serves `/{function}` on 127.0.0.1:0; answers the base URL and the call counter.
async fn function_server() -> (String, Calls) {
    let calls = Calls::default();
    let router = Router::new()
        .route("/{function}", axum::routing::post(http_function))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}"), calls)
}

fn http_bindings(base: &str) -> Value {
    json!([
        {"name": "greet", "invoker": "http", "url": format!("{base}/greet"), "timeout_seconds": 10},
        {"name": "book", "invoker": "http", "url": format!("{base}/book"), "timeout_seconds": 10},
        flaky_mock()
    ])
}

// ----- command functions -----

fn write_script(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_string()
}

/// One script for both functions: the function name is its argument.
const FUNCTION_SCRIPT: &str = r#"#!/usr/bin/env python3
import json, os, sys
event = json.load(sys.stdin)
fn = sys.argv[1]
if fn == "greet":
    event["greeting"] = "hello " + event.get("name", "?")
    event["state"] = os.environ["FLOWGATE_STATE"]
elif event.get("seat") == "none":
    print(json.dumps({"errorType": "NoSeats", "errorMessage": "no seats left"}))
    sys.exit(0)
else:
    event["booking"] = "BK-" + event.get("seat", "?")
print(json.dumps(event))
"#;

fn command_bindings(script: &str) -> Value {
    json!([
        {"name": "greet", "invoker": "command", "command": script, "args": ["greet"], "timeout_seconds": 20},
        {"name": "book", "invoker": "command", "command": script, "args": ["book"], "timeout_seconds": 20},
        flaky_mock()
    ])
}

// ----- (a) + (c): Alibaba old FDL -----

async fn check_alibaba(router: &Router, flow: &str) {
    let ok = run_fdl(
        router,
        flow,
        FDL,
        "booked",
        json!({"name": "ann", "seat": "12A"}),
    )
    .await;
    assert_eq!(ok["Status"], "Succeeded", "{ok}");
    assert_eq!(
        output_of(&ok),
        json!({"greeting": "hello ann", "recovered": true, "booking": "BK-12A"})
    );

    let caught = describe_after_start(
        router,
        flow,
        "sold_out",
        json!({"name": "bob", "seat": "none"}),
    )
    .await;
    assert_eq!(caught["Status"], "Succeeded", "{caught}");
    let out = output_of(&caught);
    assert_eq!(out["greeting"], "hello bob", "{out}");
    assert_eq!(out["error"], "NoSeats", "{out}");
    assert_eq!(out["cause"], "no seats left", "{out}");
    assert_eq!(out["booking"], "none", "the catch went to soldOut: {out}");

    // The retry is in the history: the flaky step was scheduled twice.
    let h = ali(
        router,
        "GetExecutionHistory",
        &[("FlowName", flow), ("ExecutionName", "booked")],
    )
    .await;
    let flaky_tasks = h["Events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["Type"] == "TaskScheduled" && e["StepName"] == "flaky")
        .count();
    assert_eq!(flaky_tasks, 2, "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alibaba_fdl_calls_http_functions_with_retry_and_catch() {
    let (base, calls) = function_server().await;
    let router = gateway(http_bindings(&base)).await;
    check_alibaba(&router, "trip_http").await;
    // greet + book for each of the two executions.
    assert_eq!(calls.0.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alibaba_fdl_calls_command_functions_with_retry_and_catch() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), "fn.py", FUNCTION_SCRIPT);
    let router = gateway(command_bindings(&script)).await;
    check_alibaba(&router, "trip_command").await;
}

// ----- (b) + (c): Huawei -----

async fn check_huawei(router: &Router, name: &str) {
    let id = create_workflow(router, huawei_workflow(name)).await;
    let path = format!("/workflows/{id}/sync-executions");

    let (status, ok) = hw(
        router,
        "POST",
        &path,
        Some(json!({"input": {"name": "ann", "seat": "12A"}})),
    )
    .await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["status"], "success", "{ok}");
    assert_eq!(
        ok["output"],
        json!({"name": "ann", "seat": "12A", "greeting": "hello ann",
               "recovered": true, "booking": "BK-12A"})
    );

    let (status, caught) = hw(
        router,
        "POST",
        &path,
        Some(json!({"input": {"name": "bob", "seat": "none"}})),
    )
    .await;
    assert_eq!(status, 200, "{caught}");
    assert_eq!(caught["status"], "success", "{caught}");
    assert_eq!(caught["output"]["error"], "NoSeats", "{caught}");
    assert_eq!(caught["output"]["cause"], "no seats left", "{caught}");

    // The caught execution went prep → book (failed with NoSeats) → soldOut. Without the
    // retry the first execution would have failed in prep (Transient has no transition).
    let exec = caught["execution_id"].as_str().unwrap();
    let (status, shown) = hw(
        router,
        "GET",
        &format!("/workflows/{id}/executions/{exec}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    let nodes = shown["node_execution_details"].as_array().unwrap();
    let ids: Vec<&str> = nodes
        .iter()
        .map(|n| n["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["prep", "book", "soldOut"], "{shown}");
    assert_eq!(
        nodes[1]["executions"][0]["error_message"]["error_code"], "NoSeats",
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huawei_workflow_calls_http_functions_with_retry_and_on_errors() {
    let (base, calls) = function_server().await;
    let router = gateway(http_bindings(&base)).await;
    check_huawei(&router, "trip-http").await;
    assert_eq!(calls.0.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huawei_workflow_calls_command_functions_with_retry_and_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), "fn.py", FUNCTION_SCRIPT);
    let router = gateway(command_bindings(&script)).await;
    check_huawei(&router, "trip-command").await;
}

// ----- (d): Huawei terminate kills a running command -----

fn process_alive(pid: u32) -> bool {
    // A zombie has exited already; only a live process counts.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z')
        }
        Err(_) => false,
    }
}

async fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huawei_terminate_kills_the_running_command() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = write_script(
        dir.path(),
        "slow.sh",
        "#!/bin/sh\necho $$ > \"$PID_FILE.tmp\"\nmv \"$PID_FILE.tmp\" \"$PID_FILE\"\nexec sleep 120\n",
    );
    let router = gateway(json!([{
        "name": "slow", "invoker": "command", "command": script,
        "env": {"PID_FILE": pid_file.to_str().unwrap()}, "timeout_seconds": 300
    }]))
    .await;
    let id = create_workflow(
        &router,
        json!({
            "name": "slow-normal", "mode": "NORMAL", "start": "wait",
            "functions": [{"name": "slow", "operation":
                format!("urn:fss:cn-north-4:{PROJECT}:function:default:slow:latest")}],
            "states": [
                {"id": "wait", "name": "wait", "type": "Operation", "end": false, "transition": "done",
                 "actions": [{"function_ref": {"ref_name": "slow"}}]},
                {"id": "done", "name": "done", "type": "End", "end": true, "actions": []}
            ]
        }),
    )
    .await;
    let (status, started) = hw(
        &router,
        "POST",
        &format!("/workflows/{id}/executions"),
        Some(json!({"input": {}})),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let exec = started["execution_id"].as_str().unwrap().to_string();

    wait_until("the command to start", Duration::from_secs(20), || {
        pid_file.exists()
    })
    .await;
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_alive(pid), "the command is running");

    let (status, body) = hw(
        &router,
        "POST",
        &format!("/workflows/{id}/executions/{exec}/terminate"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_until("the command to be killed", Duration::from_secs(10), || {
        !process_alive(pid)
    })
    .await;

    let (status, shown) = hw(
        &router,
        "GET",
        &format!("/workflows/{id}/executions/{exec}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["status"], "cancel", "{shown}");
}

// ----- (e): a callback reported by another process to a live gateway -----

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

const REPORTER: &str = r#"
import sys, urllib.parse, urllib.request
port, token, output = sys.argv[1], sys.argv[2], sys.argv[3]
body = urllib.parse.urlencode({"TaskToken": token, "Output": output}).encode()
req = urllib.request.Request(
    "http://127.0.0.1:%s/?Action=ReportTaskSucceeded&Version=2019-03-15" % port, data=body,
    headers={"content-type": "application/x-www-form-urlencoded"}, method="POST")
with urllib.request.urlopen(req, timeout=30) as resp:
    print(resp.status, resp.read().decode())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alibaba_callback_reported_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("flowgate.toml");
    std::fs::write(
        &config,
        "[auth]\nmode = \"off\"\n\n[engine]\ntime_scale = 0\n\n[flows]\ndir = \"\"\n\n\
         [log]\nlevel = \"warn\"\n\n[[functions]]\nname = \"notify\"\ninvoker = \"mock\"\n\
         responses = [{ return = {} }]\n",
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_flowgate"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--config",
            ])
            .arg(&config)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start flowgate"),
    );
    let client = reqwest::Client::new();
    let health = format!("{base}/_flowgate/health");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(&health).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "flowgate did not start on {base}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rpc = |action: &str, params: Vec<(&str, String)>| {
        let req = client
            .post(format!("{base}/?Action={action}&Version=2019-03-15"))
            .form(&params);
        let action = action.to_string();
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap();
            assert!(status.is_success(), "{action}: {status} {body}");
            body
        }
    };
    let definition = "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: approve\n    \
                      resourceArn: acs:fc:::services/s/functions/notify\n    \
                      pattern: waitForCallback\n";
    rpc(
        "CreateFlow",
        vec![
            ("Name", "approval".into()),
            ("Type", "FDL".into()),
            ("Description", "".into()),
            ("Definition", definition.into()),
        ],
    )
    .await;
    rpc(
        "StartExecution",
        vec![
            ("FlowName", "approval".into()),
            ("ExecutionName", "e1".into()),
            ("Input", "{}".into()),
        ],
    )
    .await;

    // The task token, from the TaskSubmitted event once the task waits.
    let deadline = Instant::now() + Duration::from_secs(20);
    let token = loop {
        let h = rpc(
            "GetExecutionHistory",
            vec![
                ("FlowName", "approval".into()),
                ("ExecutionName", "e1".into()),
            ],
        )
        .await;
        let submitted = h["Events"].as_array().and_then(|events| {
            events
                .iter()
                .find(|e| e["Type"] == "TaskSubmitted")
                .cloned()
        });
        if let Some(e) = submitted {
            let detail: Value = serde_json::from_str(e["EventDetail"].as_str().unwrap()).unwrap();
            break detail["task_token"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no TaskSubmitted event: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", REPORTER, &port.to_string(), &token])
            .arg(r#"{"approved": true, "by": "python"}"#)
            .output()
            .expect("run python3")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "reporter failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("200"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let d = rpc(
        "DescribeExecution",
        vec![
            ("FlowName", "approval".into()),
            ("ExecutionName", "e1".into()),
            ("WaitTimeSeconds", "20".into()),
        ],
    )
    .await;
    assert_eq!(d["Status"], "Succeeded", "{d}");
    assert_eq!(output_of(&d), json!({"approved": true, "by": "python"}));
}
