//! One engine for both dialects: an Alibaba flow runs a Huawei workflow as its sub-flow, and
//! the Huawei workflow's result (or error) comes back to the Alibaba task.

use axum::body::Body;
use axum::http::Request;
use flowgate::config::{AuthMode, Config};
use flowgate::server::{app, prepare};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

async fn send(router: &axum::Router, req: Request<Body>) -> (u16, Value) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn rpc(pairs: &[(&str, &str)]) -> Request<Body> {
    let mut all = vec![("Version", "2019-03-15")];
    all.extend_from_slice(pairs);
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(all)
        .finish();
    Request::post(format!("/?{q}")).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn an_alibaba_flow_runs_a_huawei_workflow_as_a_sub_flow() {
    let mut config = Config::default();
    config.store = flowgate::config::StoreConfig::memory();
    config.flows.dir = None;
    config.auth.mode = AuthMode::Off;
    config.engine.time_scale = 0.0;
    config.functions = serde_json::from_value(json!([
        {"name": "double", "invoker": "mock", "responses": [{"attempts": "*", "return": {"doubled": 42}}]},
        {"name": "refuse", "invoker": "mock", "responses": [{"attempts": "*", "throw": {"error": "Refused", "cause": "huawei says no"}}]}
    ]))
    .unwrap();
    let (state, dialects) = prepare(config).await.unwrap();
    let router = app(state, &dialects);

    for (name, function) in [("hw-double", "double"), ("hw-refuse", "refuse")] {
        let wf = json!({
            "name": name, "start": "call", "constants": {}, "retries": [],
            "functions": [{"name": function, "operation": format!("urn:fss:cn-north-4:p1:function:default:{function}:latest")}],
            "states": [
                {"id": "call", "name": "call", "type": "Operation", "end": false, "transition": "done",
                 "actions": [{"function_ref": {"ref_name": function, "arguments": {"n": "$.n"}}}]},
                {"id": "done", "name": "done", "type": "End", "end": true, "transition": "", "actions": []}
            ]
        });
        let req = Request::post("/v2/p1/fgs/workflows")
            .header("content-type", "application/json")
            .body(Body::from(wf.to_string()))
            .unwrap();
        let (s, v) = send(&router, req).await;
        assert_eq!(s, 201, "{v}");
    }

    let parent = "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: callHuawei\n    resourceArn: acs:fnf:::flow/huawei/p1/hw-double\n    pattern: sync\n    inputMappings:\n      - target: n\n        source: $input.n\n    outputMappings:\n      - target: fromHuawei\n        source: $local.doubled\n";
    let (s, v) = send(
        &router,
        rpc(&[
            ("Action", "CreateFlow"),
            ("Name", "parent"),
            ("Definition", parent),
            ("Description", "d"),
            ("Type", "FDL"),
            ("ExecutionMode", "Express"),
        ]),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = send(
        &router,
        rpc(&[
            ("Action", "StartSyncExecution"),
            ("FlowName", "parent"),
            ("Input", "{\"n\": 21}"),
        ]),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["Status"], "Succeeded", "{v}");
    let output: Value = serde_json::from_str(v["Output"].as_str().unwrap()).unwrap();
    assert_eq!(output, json!({"fromHuawei": 42}));

    let catching = "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: callHuawei\n    resourceArn: acs:fnf:::flow/huawei/p1/hw-refuse\n    pattern: sync\n    catch:\n      - errors: [Refused]\n        goto: handled\n  - type: succeed\n    name: ok\n  - type: pass\n    name: handled\n    outputMappings:\n      - target: caught\n        source: $input.error\n";
    let (s, v) = send(
        &router,
        rpc(&[
            ("Action", "CreateFlow"),
            ("Name", "catching"),
            ("Definition", catching),
            ("Description", "d"),
            ("Type", "FDL"),
            ("ExecutionMode", "Express"),
        ]),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = send(
        &router,
        rpc(&[("Action", "StartSyncExecution"), ("FlowName", "catching")]),
    )
    .await;
    assert_eq!(v["Status"], "Succeeded", "{v}");
    let output: Value = serde_json::from_str(v["Output"].as_str().unwrap()).unwrap();
    assert_eq!(
        output["caught"],
        json!("Refused"),
        "the Huawei function's error type reached the Alibaba catch"
    );
    assert_eq!(output["cause"], json!("huawei says no"));

    let (_, v) = send(
        &router,
        Request::get("/v2/p1/fgs/workflows?workflow_name=hw-double")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let id = v["workflows"][0]["id"].as_str().unwrap().to_string();
    let (_, v) = send(
        &router,
        Request::get(format!("/v2/p1/fgs/workflows/{id}/executions"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        v["executions"].as_array().map(Vec::len),
        Some(1),
        "the child shows in the Huawei API: {v}"
    );
    assert_eq!(v["executions"][0]["status"], "success");
}
