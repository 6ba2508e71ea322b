//! The Huawei workflow-definition compiler: golden runs of the documented examples on the
//! engine with mock functions, and validation with field paths.

mod support;

use std::sync::Arc;

use flowgate::dialects::huawei::flow::{
    compile, compile_text, workflow_urn, ActionMode, CompiledWorkflow, InvokeMode, LogLevel, Retry,
    StateType, TriggerType, WorkflowMode, BUSINESS_ERROR,
};
use flowgate::model::execution::{ExecutionMode, FlowKey};
use flowgate::model::flow::StateKind;
use flowgate::model::{Event, EventKind, ExecutionStatus};
use flowgate::store::FlowRecord;
use serde_json::{json, Value};
use support::{engine, fast_config, output, TestEngine};

const PROJECT: &str = "0123456789abcdef0123456789abcdef";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/dialects/huawei/fixtures/flows/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn compiled(body: &Value) -> CompiledWorkflow {
    compile(PROJECT, body).unwrap_or_else(|issues| panic!("does not compile: {issues:#?}"))
}

async fn deploy(t: &TestEngine, body: &Value) -> Arc<FlowRecord> {
    let c = compiled(body);
    let now = chrono::Utc::now();
    let rec = FlowRecord {
        id: uuid::Uuid::new_v4().to_string().into(),
        key: FlowKey::new(format!("huawei/{PROJECT}"), c.flow.name.clone()),
        dialect: "huawei".into(),
        definition: Arc::from(body.to_string().as_str()),
        flow: Arc::new(c.flow),
        created: now,
        modified: now,
        metadata: Value::Null,
    };
    Arc::new(t.engine.create_flow(rec).await.expect("create flow"))
}

/// The sorted field paths of the problems a body has.
fn issue_paths(body: &Value) -> Vec<String> {
    let issues = match compile(PROJECT, body) {
        Ok(_) => panic!("expected problems, but it compiles"),
        Err(issues) => issues,
    };
    let mut paths: Vec<String> = issues.iter().map(|i| i.path.clone()).collect();
    paths.sort();
    paths
}

fn message_at(body: &Value, path: &str) -> String {
    let issues = compile(PROJECT, body).expect_err("problems");
    issues
        .iter()
        .find(|i| i.path == path)
        .unwrap_or_else(|| panic!("no problem at {path}: {issues:#?}"))
        .message
        .clone()
}

fn urn(function: &str) -> String {
    format!("urn:fss:cn-north-4:{PROJECT}:function:default:{function}:latest")
}

/// The events sent to the function of `state`, attempt by attempt.
fn events_sent(h: &[Event], state: &str) -> Vec<Value> {
    h.iter()
        .filter(|e| e.kind == EventKind::TaskScheduled && &*e.state == state)
        .map(|e| e.detail.input.as_deref().cloned().unwrap_or(Value::Null))
        .collect()
}

fn position(h: &[Event], kind: EventKind, state: &str) -> usize {
    h.iter()
        .position(|e| e.kind == kind && &*e.state == state)
        .unwrap_or_else(|| panic!("no {kind:?} event for {state}"))
}

fn mock(name: &str, responses: Value) -> Value {
    json!({"name": name, "invoker": "mock", "responses": responses})
}

fn always(name: &str, ret: Value) -> Value {
    mock(name, json!([{"attempts": "*", "return": ret}]))
}

// ----- the documented examples -----

#[tokio::test]
async fn official_example_compiles_and_resolves_an_argument_path() {
    let body = fixture("official_example.json");
    let c = compiled(&body);
    assert_eq!(c.definition.name, "workflow_test");
    assert_eq!(
        c.definition.retries,
        vec![Retry {
            name: "test".into(),
            delay: 1,
            max_attempts: 3
        }],
        "retry defaults are filled in"
    );
    assert_eq!(c.definition.states[1].kind, StateType::End);
    assert_eq!(c.definition.states[1].action_mode, None, "\"\" is absent");
    assert_eq!(c.flow.mode, ExecutionMode::Standard);
    let names: Vec<&str> = c.flow.root.states.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["test", "end"]);
    assert!(matches!(c.flow.root.states[1].kind, StateKind::Succeed));
    let StateKind::Task(task) = &c.flow.root.states[0].kind else {
        panic!("the Operation is a task")
    };
    assert_eq!(
        &*task.resource,
        "urn:fss:{regin}:c53626012ba84727b938ca8bf03108ef:test:latest"
    );
    assert!(task.result_must_be_object);
    assert_eq!(c.flow.root.states[0].next.as_deref(), Some("end"));

    // The example's URN is not a well-formed function URN (and its `{regin}` placeholder is
    // no valid binding pattern), so bind it with a glob.
    let t = engine(
        json!([{"name": "unused", "matches": ["urn:fss:*:c53626012ba84727b938ca8bf03108ef:test:latest"],
                "invoker": "mock",
                "responses": [{"attempts": "*", "return": {"status": "ok"}}]}]),
        fast_config(),
    );
    let flow = deploy(&t, &body).await;
    let rec = t.run(&flow, json!({"test": "run-1", "other": 1})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{rec:?}");
    assert_eq!(output(&rec), json!({"status": "ok"}), "End passes through");
    let h = t.history(&rec).await;
    assert_eq!(
        events_sent(&h, "test"),
        vec![json!({"execution_name": "run-1"})]
    );
}

#[tokio::test]
async fn image_example_mixes_paths_literals_and_constant_fallbacks() {
    let body = fixture("image_processing.json");
    let c = compiled(&body);
    let d = &c.definition;
    assert_eq!(d.description.as_deref(), Some("image_resize_template"));
    assert_eq!(d.triggers.len(), 2);
    assert_eq!(d.triggers[0].trigger_type, TriggerType::Obs);
    let cfg = d.triggers[0].trigger_config.as_ref().unwrap();
    assert_eq!(
        (cfg.bucket.as_str(), cfg.events.clone()),
        ("images", vec!["ObjectCreated:Put".to_string()])
    );
    assert!(!d.triggers[1].enabled);
    assert_eq!(d.states[0].action_mode, Some(ActionMode::Sequential));
    assert_eq!(
        d.states[0].actions[0].invoke_mode,
        Some(InvokeMode::Synchronize),
        "invoke_mode beside function_ref is kept"
    );
    assert_eq!(
        d.functions[0].metadata.as_ref().unwrap()["template"],
        json!("image-processing")
    );
    assert!(
        c.flow.root.states[0].input.is_none() && c.flow.root.states[0].output.is_none(),
        "'$' filters are no filters"
    );

    let t = engine(
        json!([always("image_resize", json!({"resized": 2}))]),
        fast_config(),
    );
    let flow = deploy(&t, &body).await;
    let given = t
        .run(
            &flow,
            json!({"Records": [{"obs": {"object": "a.jpg"}}], "execution_name": "e1",
                   "inputs": {"resize_outbucket": "mine", "width": 10}}),
        )
        .await;
    assert_eq!(given.status, ExecutionStatus::Succeeded, "{given:?}");
    assert_eq!(output(&given), json!({"resized": 2}));
    assert_eq!(
        events_sent(&t.history(&given).await, "image_resize"),
        vec![json!({
            "Records": [{"obs": {"object": "a.jpg"}}],
            "execution_name": "e1",
            "inputs": {"resize_outbucket": "mine", "width": 10},
            "dynamic_source": {"output": {"bucket": "mine", "location": "cn-north-7"}}
        })]
    );

    let defaulted = t.run(&flow, json!({"execution_name": "e2"})).await;
    assert_eq!(
        events_sent(&t.history(&defaulted).await, "image_resize"),
        vec![json!({
            "Records": null,
            "execution_name": "e2",
            "inputs": null,
            "dynamic_source": {"output": {"bucket": "default-bucket", "location": "cn-north-7"}}
        })],
        "$.constants... is the constants fallback"
    );
}

#[tokio::test]
async fn express_example_filters_sleeps_and_retries_a_returned_business_error() {
    let body = fixture("order_flow_express.json");
    let c = compiled(&body);
    assert_eq!(c.definition.mode, WorkflowMode::Express);
    assert_eq!(
        c.definition.express_config.as_ref().unwrap().log_level,
        Some(LogLevel::None)
    );
    assert_eq!(c.flow.mode, ExecutionMode::Express);
    assert_eq!(c.flow.constants, json!({"currency": "CNY"}));

    let t = engine(
        json!([
            always(
                "validate",
                json!({"result": {"amount": 30, "ok": true}, "trace": "t1"})
            ),
            mock(
                "charge",
                json!([
                    {"attempts": "0", "return": {"errorCode": 500, "msg": "busy"}},
                    {"attempts": "1-", "return": {"charged": 30}}
                ])
            )
        ]),
        fast_config(),
    );
    let flow = deploy(&t, &body).await;
    let rec = t.run(&flow, json!({"order": {"id": 7}})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{rec:?}");
    assert_eq!(output(&rec), json!({"charged": 30}));
    let h = t.history(&rec).await;
    assert_eq!(
        events_sent(&h, "validate"),
        vec![json!({"order": {"id": 7}, "cur": "CNY"})],
        "the missing currency falls back to $CONST.currency"
    );
    assert_eq!(
        events_sent(&h, "charge"),
        vec![json!({"amount": 30}), json!({"amount": 30})],
        "the output filter $.result fed the next states; one retry after errorCode 500"
    );
    let retry = h
        .iter()
        .find(|e| e.kind == EventKind::RetryScheduled)
        .expect("a retry");
    assert_eq!(&*retry.state, "charge");
    assert_eq!(retry.detail.extra().error.as_deref(), Some(BUSINESS_ERROR));
    assert_eq!(retry.detail.extra().delay_seconds, Some(2.0));
    let wait = h
        .iter()
        .find(|e| e.kind == EventKind::WaitStarted)
        .expect("the sleep");
    assert_eq!(
        (&*wait.state, wait.detail.extra().seconds),
        ("pause", Some(1.0))
    );

    let usd = t
        .run(&flow, json!({"order": {"id": 8}, "currency": "USD"}))
        .await;
    assert_eq!(
        events_sent(&t.history(&usd).await, "validate"),
        vec![json!({"order": {"id": 8}, "cur": "USD"})]
    );
}

#[tokio::test]
async fn exhausted_retries_continue_at_the_on_errors_transition() {
    let body = fixture("order_flow_express.json");
    let t = engine(
        json!([
            always("validate", json!({"result": {"amount": 5}})),
            always("charge", json!({"errorCode": 500}))
        ]),
        fast_config(),
    );
    let flow = deploy(&t, &body).await;
    let rec = t.run(&flow, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{rec:?}");
    let h = t.history(&rec).await;
    assert_eq!(
        events_sent(&h, "charge").len(),
        4,
        "the first call and max_attempts = 3 retries"
    );
    let caught = &h[position(&h, EventKind::ErrorCaught, "charge")];
    assert_eq!(caught.detail.extra().next.as_deref(), Some("done"));
    let out = output(&rec);
    assert_eq!(out["error"], json!(BUSINESS_ERROR));
    assert_eq!(
        out["errorCode"],
        json!(500),
        "the error object carries the output"
    );
    assert!(out["cause"].as_str().unwrap().contains("errorCode"));
}

// ----- errors -----

fn handler_flow() -> Value {
    json!({
        "name": "handled", "start": "work",
        "functions": [{"name": "work", "operation": urn("work")},
                      {"name": "notify", "operation": urn("notify")}],
        "states": [
            {"id": "work", "name": "Work", "type": "Operation", "end": false, "transition": "done",
             "actions": [{"function_ref": {"ref_name": "work", "arguments": {"x": "$.x"}}}],
             "on_errors": [{"error": "$.error == 'Boom'", "transition": "handler"}]},
            {"id": "handler", "name": "Handler", "type": "Operation", "end": true, "transition": "",
             "actions": [{"function_ref": {"ref_name": "notify",
                                           "arguments": {"failed": "$.error", "why": "$.cause"}}}]},
            {"id": "done", "name": "Done", "type": "End", "end": true, "transition": "", "actions": []}
        ]
    })
}

#[tokio::test]
async fn a_matching_function_error_goes_to_the_handler_node() {
    let t = engine(
        json!([
            mock(
                "work",
                json!([{"attempts": "*", "throw": {"error": "Boom", "cause": "exploded"}}])
            ),
            always("notify", json!({"notified": true}))
        ]),
        fast_config(),
    );
    let flow = deploy(&t, &handler_flow()).await;
    let rec = t.run(&flow, json!({"x": 1})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{rec:?}");
    assert_eq!(output(&rec), json!({"notified": true}));
    let h = t.history(&rec).await;
    assert_eq!(
        events_sent(&h, "handler"),
        vec![json!({"failed": "Boom", "why": "exploded"})]
    );
    assert!(
        !h.iter().any(|e| &*e.state == "done"),
        "the handler ends the flow"
    );
}

#[tokio::test]
async fn an_unhandled_function_error_fails_the_execution() {
    let t = engine(
        json!([
            mock(
                "work",
                json!([{"attempts": "*", "throw": {"error": "Other", "cause": "disk full"}}])
            ),
            always("notify", json!({}))
        ]),
        fast_config(),
    );
    let flow = deploy(&t, &handler_flow()).await;
    let rec = t.run(&flow, json!({"x": 1})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(rec.error.as_deref(), Some("Other"));
    assert_eq!(rec.cause.as_deref(), Some("disk full"));
    let h = t.history(&rec).await;
    assert!(events_sent(&h, "handler").is_empty());
    assert_eq!(events_sent(&h, "work").len(), 1, "no retry_ref, no retry");
}

fn business_flow(function: &str) -> Value {
    json!({
        "name": format!("biz-{function}"), "start": "call",
        "functions": [{"name": "f", "operation": urn(function)}],
        "states": [
            {"id": "call", "name": "call", "type": "Operation", "end": true, "transition": "",
             "actions": [{"function_ref": {"ref_name": "f", "arguments": {}}}],
             "on_errors": [{"error": "$.errorCode != 0"}]}
        ]
    })
}

#[tokio::test]
async fn returned_business_errors_fail_the_node_only_when_the_code_is_there() {
    let t = engine(
        json!([
            always("plain", json!({"ok": true})),
            always("zero", json!({"errorCode": 0, "ok": true})),
            always("bad", json!({"errorCode": 42, "reason": "no stock"}))
        ]),
        fast_config(),
    );
    let c = compiled(&business_flow("plain"));
    let StateKind::Task(task) = &c.flow.root.states[0].kind else {
        panic!()
    };
    assert_eq!(
        task.fail_when
            .as_ref()
            .map(|e| e.text().to_string())
            .as_deref(),
        Some("$result.errorCode != null && $result.errorCode != 0")
    );
    assert_eq!(task.fail_error.as_deref(), Some(BUSINESS_ERROR));
    assert!(c.flow.root.states[0].end && c.flow.root.states[0].next.is_none());

    for (function, input) in [
        ("plain", json!({"ok": true})),
        ("zero", json!({"errorCode": 0, "ok": true})),
    ] {
        let flow = deploy(&t, &business_flow(function)).await;
        let rec = t.run(&flow, json!({"in": 1})).await;
        assert_eq!(
            rec.status,
            ExecutionStatus::Succeeded,
            "{function}: {rec:?}"
        );
        assert_eq!(
            output(&rec),
            input,
            "an Operation with end: true ends the flow"
        );
        assert_eq!(
            events_sent(&t.history(&rec).await, "call"),
            vec![json!({"in": 1})],
            "without arguments the function gets the state input"
        );
    }
    let flow = deploy(&t, &business_flow("bad")).await;
    let rec = t.run(&flow, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(rec.error.as_deref(), Some(BUSINESS_ERROR));
}

#[tokio::test]
async fn a_function_that_returns_no_json_object_fails() {
    let t = engine(json!([always("plain", json!("just text"))]), fast_config());
    let flow = deploy(&t, &business_flow("plain")).await;
    let rec = t.run(&flow, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(rec.error.as_deref(), Some("sys.InvalidOutput"));
}

// ----- several actions -----

fn two_actions(mode: &str) -> Value {
    json!({
        "name": format!("two-{mode}"), "start": "both",
        "functions": [{"name": "slow", "operation": urn("slow")},
                      {"name": "flaky", "operation": urn("flaky")}],
        "retries": [{"name": "again", "delay": 1, "max_attempts": 2}],
        "states": [
            {"id": "both", "name": "both", "type": "Operation", "end": false, "transition": "end",
             "action_mode": mode,
             "actions": [
                {"function_ref": {"ref_name": "slow", "arguments": {"n": "$.n"}}},
                {"function_ref": {"ref_name": "flaky", "arguments": {"m": "$.m | 0"}}}
             ],
             "on_errors": [{"error": "$.errorCode == 503", "retry_ref": "again"}]},
            {"id": "end", "name": "end", "type": "End", "end": true, "transition": "", "actions": []}
        ]
    })
}

fn two_action_engine() -> TestEngine {
    engine(
        json!([
            mock(
                "slow",
                json!([{"attempts": "*", "return": {"a": 1}, "delay_ms": 150}])
            ),
            mock(
                "flaky",
                json!([
                    {"attempts": "0", "return": {"errorCode": 503}},
                    {"attempts": "1-", "return": {"b": 2}}
                ])
            )
        ]),
        fast_config(),
    )
}

#[tokio::test]
async fn parallel_actions_run_together_and_return_an_array_in_action_order() {
    let t = two_action_engine();
    let c = compiled(&two_actions("parallel"));
    let StateKind::Parallel(p) = &c.flow.root.states[0].kind else {
        panic!("several actions are a parallel")
    };
    assert_eq!((p.branches.len(), p.max_concurrency), (2, None));
    let flow = deploy(&t, &two_actions("parallel")).await;
    let rec = t.run(&flow, json!({"n": 5})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{rec:?}");
    assert_eq!(output(&rec), json!([{"a": 1}, {"b": 2}]));
    let h = t.history(&rec).await;
    assert_eq!(events_sent(&h, "both.actions[0]"), vec![json!({"n": 5})]);
    assert_eq!(
        events_sent(&h, "both.actions[1]"),
        vec![json!({"m": 0}), json!({"m": 0})],
        "only the failing action is retried"
    );
    assert!(
        position(&h, EventKind::TaskScheduled, "both.actions[1]")
            < position(&h, EventKind::TaskSucceeded, "both.actions[0]"),
        "the second action starts before the first one ends"
    );
}

#[tokio::test]
async fn sequential_actions_run_one_after_the_other() {
    for mode in ["sequential", ""] {
        let t = two_action_engine();
        let c = compiled(&two_actions(mode));
        let StateKind::Parallel(p) = &c.flow.root.states[0].kind else {
            panic!()
        };
        assert_eq!(p.max_concurrency, Some(1), "mode {mode:?}");
        let flow = deploy(&t, &two_actions(mode)).await;
        let rec = t.run(&flow, json!({"n": 5, "m": 6})).await;
        assert_eq!(rec.status, ExecutionStatus::Succeeded, "{rec:?}");
        assert_eq!(output(&rec), json!([{"a": 1}, {"b": 2}]));
        let h = t.history(&rec).await;
        assert!(
            position(&h, EventKind::TaskSucceeded, "both.actions[0]")
                < position(&h, EventKind::TaskScheduled, "both.actions[1]"),
            "mode {mode:?}: the second action waits for the first"
        );
        assert_eq!(events_sent(&h, "both.actions[1]")[0], json!({"m": 6}));
    }
}

// ----- data handling -----

#[tokio::test]
async fn arguments_resolve_paths_fallbacks_constants_and_nested_values() {
    let body = json!({
        "name": "args", "start": "call",
        "functions": [{"name": "f", "operation": urn("echo")}],
        "constants": {"region": "cn-north-4", "nested": {"v": [1, 2]}},
        "states": [{
            "id": "call", "name": "call", "type": "Operation", "end": true, "transition": "",
            "actions": [{"function_ref": {"ref_name": "f", "arguments": {
                "path": "$.a.b[0]",
                "num": "$.missing | 3",
                "str": "$.missing | 'dflt'",
                "bool": "$.missing | true",
                "from_const": "$.missing | $CONST.region",
                "const": "$CONST.nested.v",
                "kept": "$.zero | 5",
                "literal": "cn-north-4",
                "empty": "",
                "n": 7,
                "flag": false,
                "filter": "$.items[?(@.n > 1)].id",
                "nested": {"list": ["$.a.b[1]", "x", {"deep": "$.none | false"}]}
            }}}]
        }]
    });
    let t = engine(
        json!([always("echo", json!({"done": true}))]),
        fast_config(),
    );
    let flow = deploy(&t, &body).await;
    let rec = t
        .run(
            &flow,
            json!({"a": {"b": [10, 20]}, "zero": 0,
                   "items": [{"n": 1, "id": "a"}, {"n": 2, "id": "b"}, {"n": 3, "id": "c"}]}),
        )
        .await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{rec:?}");
    assert_eq!(
        events_sent(&t.history(&rec).await, "call"),
        vec![json!({
            "path": 10, "num": 3, "str": "dflt", "bool": true, "from_const": "cn-north-4",
            "const": [1, 2], "kept": 0, "literal": "cn-north-4", "empty": "", "n": 7,
            "flag": false, "filter": ["b", "c"],
            "nested": {"list": [20, "x", {"deep": false}]}
        })]
    );
}

#[tokio::test]
async fn state_data_filters_select_the_input_and_the_output() {
    let body = json!({
        "name": "filters", "start": "step",
        "functions": [{"name": "f", "operation": urn("step")}],
        "constants": {"k": "K"},
        "states": [
            {"id": "step", "name": "step", "type": "Operation", "end": false, "transition": "nap",
             "actions": [{"function_ref": {"ref_name": "f", "arguments": {"x": "$.x", "k": "$CONST.k"}}}],
             "state_data_filter": {"input": "$.body", "output": "$.data"}},
            {"id": "nap", "name": "nap", "type": "Sleep", "duration": 0, "end": false, "transition": "end",
             "actions": [], "state_data_filter": {"output": "$.value"}},
            {"id": "end", "name": "end", "type": "End", "end": true, "transition": "", "actions": [],
             "state_data_filter": {"input": "$.inner | 'none'", "output": "$"}}
        ]
    });
    let t = engine(
        json!([always(
            "step",
            json!({"data": {"value": {"inner": {"n": 10}}}, "meta": 1})
        )]),
        fast_config(),
    );
    let flow = deploy(&t, &body).await;
    let rec = t
        .run(&flow, json!({"body": {"x": 5, "y": 6}, "ignored": true}))
        .await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{rec:?}");
    assert_eq!(output(&rec), json!({"n": 10}));
    let h = t.history(&rec).await;
    assert_eq!(events_sent(&h, "step"), vec![json!({"x": 5, "k": "K"})]);
    let started = &h[position(&h, EventKind::StateStarted, "step")];
    assert_eq!(
        started.detail.input.as_deref(),
        Some(&json!({"x": 5, "y": 6})),
        "the input filter selected $.body"
    );
    let nap = &h[position(&h, EventKind::StateSucceeded, "nap")];
    assert_eq!(
        nap.detail.output.as_deref(),
        Some(&json!({"inner": {"n": 10}}))
    );
}

// ----- leniency, rendering, round trips -----

#[tokio::test]
async fn go_sdk_nulls_unknown_keys_and_empty_strings_are_accepted() {
    let body = json!({
        "name": "go-flow", "description": null, "start": "s1",
        "functions": [{"name": "f", "operation": urn("echo"), "metadata": null}],
        "constants": null, "retries": null, "triggers": null, "mode": null,
        "express_config": null, "enterprise_project_id": null, "enable_stream_response": null,
        "states": [
            {"id": "s1", "name": "Call", "type": "Operation", "end": false, "transition": "s2",
             "action_mode": null, "on_errors": null, "state_data_filter": null, "duration": null,
             "actions": [{"function_ref": {"ref_name": "f", "arguments": null, "invoke_mode": null},
                          "invoke_mode": "synchronize", "comment": "unknown keys are ignored"}]},
            {"id": "s2", "name": "Finish", "type": "End", "end": true, "transition": "",
             "actions": [], "action_mode": "", "state_data_filter": {"input": "", "output": ""}}
        ]
    });
    let c = compiled(&body);
    assert_eq!(
        c.definition.states[0].name, "Call",
        "the display name is kept"
    );
    assert_eq!(
        c.flow.root.states[0].name, "s1",
        "canonical states are named by id"
    );
    assert_eq!(c.flow.root.start_at, "s1");
    assert!(c.definition.constants.is_empty() && c.definition.retries.is_empty());
    assert_eq!(c.definition.mode, WorkflowMode::Normal);
    assert_eq!(
        c.definition.states[0].actions[0].invoke_mode,
        Some(InvokeMode::Synchronize)
    );
    let t = engine(json!([always("echo", json!({"r": 1}))]), fast_config());
    let flow = deploy(&t, &body).await;
    let rec = t.run(&flow, json!({"v": 1})).await;
    assert_eq!(output(&rec), json!({"r": 1}));
}

#[test]
fn definitions_render_back_and_recompile_to_the_same_flow() {
    for name in [
        "official_example.json",
        "image_processing.json",
        "order_flow_express.json",
    ] {
        let c = compiled(&fixture(name));
        let rendered = serde_json::to_value(&c.definition).unwrap();
        let again = compiled(&rendered);
        assert_eq!(again, c, "{name}");
        let typed: flowgate::dialects::huawei::flow::WorkflowDefinition =
            serde_json::from_value(rendered.clone()).unwrap();
        assert_eq!(typed, c.definition, "{name}");
        // The flow is plain canonical JSON too.
        let text = serde_json::to_string(&c.flow).unwrap();
        let canonical =
            flowgate::canonical::compile(&text).unwrap_or_else(|e| panic!("{name}: {e:?}\n{text}"));
        assert_eq!(canonical, c.flow, "{name}");
    }
    let rendered =
        serde_json::to_value(compiled(&fixture("official_example.json")).definition).unwrap();
    assert_eq!(
        rendered["retries"],
        json!([{"name": "test", "delay": 1, "max_attempts": 3}])
    );
    assert_eq!(rendered["mode"], json!("NORMAL"));
    assert_eq!(rendered["states"][1]["type"], json!("End"));
    assert!(rendered["states"][1].get("action_mode").is_none());
}

#[test]
fn workflow_urns_follow_the_documented_format() {
    assert_eq!(
        workflow_urn("cn-north-4", PROJECT, "order-flow"),
        format!("urn:fss:cn-north-4:{PROJECT}:workflow:default:order-flow:latest")
    );
}

#[test]
fn a_project_placeholder_in_a_function_urn_is_filled_in() {
    let body = json!({
        "name": "p", "start": "a",
        "functions": [{"name": "f", "operation": "urn:fss:cn-north-4:{project_id}:function:default:f:latest"}],
        "states": [{"id": "a", "name": "a", "type": "Operation", "end": true,
                    "actions": [{"function_ref": {"ref_name": "f", "arguments": {}}}]}]
    });
    let c = compiled(&body);
    let StateKind::Task(task) = &c.flow.root.states[0].kind else {
        panic!()
    };
    assert_eq!(&*task.resource, urn("f"));
    assert_eq!(
        c.definition.functions[0].operation,
        "urn:fss:cn-north-4:{project_id}:function:default:f:latest",
        "the definition keeps what was sent"
    );
}

// ----- validation -----

#[test]
fn structural_problems_are_all_reported_with_field_paths() {
    let eleven: Vec<Value> = (0..11)
        .map(|_| json!({"function_ref": {"ref_name": "f", "arguments": {}}}))
        .collect();
    let body = json!({
        "name": "bad name!",
        "start": "nowhere",
        "mode": "FAST",
        "express_config": {"log_level": "DEBUG"},
        "enable_stream_response": "yes",
        "functions": [{"name": "f", "operation": urn("f")}, {"name": "f", "operation": "x"}],
        "retries": [{"name": "r", "delay": 0, "max_attempts": 9}, {"name": "ok"}],
        "triggers": [{"trigger_name": "t", "trigger_type": "CRON"},
                     {"trigger_name": "o", "trigger_type": "OBS"}],
        "constants": [1],
        "states": [
            {"id": "a", "name": "a", "type": "Operation", "end": false, "transition": "b",
             "action_mode": "random",
             "actions": [{"function_ref": {"ref_name": "f", "arguments": {}}},
                         {"function_ref": {"ref_name": "nope", "arguments": {}}}],
             "on_errors": [{"error": "", "retry_ref": "missing", "transition": "ghost"}]},
            {"id": "b", "name": "b", "type": "Operation", "end": false, "transition": "zzz", "actions": []},
            {"id": "b", "name": "b2", "type": "Sleep", "end": false, "transition": "a"},
            {"id": "d", "name": "d", "type": "Sleep", "duration": 1.5, "end": true},
            {"id": "e", "name": "e", "type": "Finish", "end": true},
            {"id": "g", "name": "g", "type": "Operation", "end": false, "transition": "", "actions": eleven},
            {"id": "h", "name": "h", "type": "End", "end": true, "actions": [{"function_ref": {"ref_name": "f"}}]},
            {"id": "i", "name": "i", "type": "Sleep", "duration": 86401, "end": true}
        ]
    });
    assert_eq!(
        issue_paths(&body),
        [
            "constants",
            "enable_stream_response",
            "express_config.log_level",
            "functions[1].name",
            "mode",
            "name",
            "retries[0].delay",
            "retries[0].max_attempts",
            "start",
            "states[0].action_mode",
            "states[0].actions[1].function_ref.ref_name",
            "states[0].on_errors[0].retry_ref",
            "states[0].on_errors[0].transition",
            "states[1].actions",
            "states[1].transition",
            "states[2].duration",
            "states[2].id",
            "states[3].duration",
            "states[4].type",
            "states[5].actions",
            "states[5].transition",
            "states[6].actions",
            "states[7].duration",
            "triggers[0].trigger_type",
            "triggers[1].trigger_config",
        ]
    );
    assert!(message_at(&body, "name").contains("must match"));
    assert!(message_at(&body, "start").contains("'nowhere' does not exist"));
    assert!(message_at(&body, "mode").contains("NORMAL, EXPRESS"));
    assert!(message_at(&body, "states[0].actions[1].function_ref.ref_name").contains("'nope'"));
    assert!(message_at(&body, "states[1].transition").contains("'zzz'"));
    assert!(message_at(&body, "states[2].id").contains("duplicate"));
    assert!(message_at(&body, "states[3].duration").contains("integer"));
    assert!(message_at(&body, "states[5].actions").contains("at most 10"));
    assert!(message_at(&body, "states[1].actions").contains("at least 1"));
    assert!(message_at(&body, "retries[0].delay").contains("1 to 30"));
    assert!(message_at(&body, "retries[0].max_attempts").contains("1 to 8"));
}

#[test]
fn expression_problems_are_reported_with_field_paths_alongside_the_rest() {
    let body = json!({
        "name": "exprs", "start": "a",
        "functions": [{"name": "f", "operation": urn("f")}],
        "states": [{
            "id": "a", "name": "a", "type": "Operation", "end": true,
            "actions": [{"function_ref": {"ref_name": "f", "arguments": {
                "order": "$.a[",
                "nested": {"x": "$.b + 1", "fine": "$.c"},
                "list": ["ok", "$.c | $.d + 1"],
                "unknown": "$ENV.x"
            }}}],
            "state_data_filter": {"input": "$..[", "output": "$.a == 1"},
            "on_errors": [{"error": "$.errorCode = 500"}]
        }],
        "retries": [{"name": "x", "delay": 31}]
    });
    assert_eq!(
        issue_paths(&body),
        [
            "retries[0].delay",
            "states[0].actions[0].function_ref.arguments.list[1]",
            "states[0].actions[0].function_ref.arguments.nested.x",
            "states[0].actions[0].function_ref.arguments.order",
            "states[0].actions[0].function_ref.arguments.unknown",
            "states[0].on_errors[0].error",
            "states[0].state_data_filter.input",
            "states[0].state_data_filter.output",
        ]
    );
    assert!(
        message_at(&body, "states[0].actions[0].function_ref.arguments.order")
            .contains("invalid JSONPath")
    );
    assert!(message_at(&body, "states[0].on_errors[0].error").contains("'=='"));
    assert!(
        message_at(&body, "states[0].actions[0].function_ref.arguments.unknown").contains("$ENV")
    );
}

#[test]
fn missing_and_mistyped_top_level_fields_are_reported() {
    assert_eq!(
        issue_paths(&json!([1, 2])),
        ["$", "name", "start", "states"]
    );
    assert_eq!(
        issue_paths(&json!({"name": "x", "start": "a", "states": []})),
        ["states"]
    );
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"id": format!("s{i}"), "name": "s", "type": "End", "end": true}))
        .collect();
    let body = json!({"name": "x", "start": "s0", "states": many});
    assert_eq!(issue_paths(&body), ["states"]);
    assert!(message_at(&body, "states").contains("at most 100"));
    let body = json!({"name": 5, "start": "a", "states": "nope", "functions": {}});
    assert_eq!(issue_paths(&body), ["functions", "name", "states"]);
    assert!(message_at(&body, "states").contains("must be an array"));
    let body = json!({"name": "x", "start": "a", "states": [
        {"id": "a", "name": "a", "type": "Operation", "end": false, "transition": "a",
         "actions": [{"function": "f"}, 3]}
    ]});
    assert_eq!(
        issue_paths(&body),
        ["states[0].actions[0].function_ref", "states[0].actions[1]"]
    );
}

#[test]
fn json_syntax_errors_point_at_line_and_column() {
    let issues = compile_text(PROJECT, "{\n  \"name\": \"x\",\n  oops\n}").unwrap_err();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].path, "$");
    assert!(
        issues[0].message.contains("line 3 column 3"),
        "{}",
        issues[0].message
    );
    let ok = compile_text(
        PROJECT,
        &serde_json::to_string(&fixture("official_example.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(ok.definition.name, "workflow_test");
}
