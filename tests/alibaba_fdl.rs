//! The old Alibaba FDL (`type: flow`) compiled and run on the engine: the examples of
//! spec §6.7 as golden tests, the data model of §6.3, and definition errors with their paths.

mod support;

use std::sync::Arc;
use std::time::Duration;

use flowgate::dialects::alibaba::error_names;
use flowgate::dialects::alibaba::fdl;
use flowgate::invoke::mock::{MockInvoker, MockResponse};
use flowgate::invoke::{FunctionBinding, Invocation, InvokeError};
use flowgate::model::flow::{
    Amount, ChoiceTarget, DefinitionIssue, Flow, StateKind, TaskMode, SUBFLOW_RESOURCE,
};
use flowgate::model::{EventKind, ExecutionRecord, ExecutionStatus};
use flowgate::store::FlowRecord;
use serde_json::{json, Value};
use support::{
    assert_issue, fast_config, function_error, output, request, scripted, with_bindings, Scripted,
    TestEngine,
};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../dialects/alibaba/fixtures/flows/", $name))
    };
}

// ----- helpers -----

fn mock(name: &str, responses: Vec<MockResponse>) -> FunctionBinding {
    FunctionBinding {
        name: name.to_string(),
        patterns: vec![],
        invoker: Arc::new(MockInvoker::new(name, responses)),
    }
}

fn returning(v: Value) -> Result<Value, InvokeError> {
    Ok(v)
}

fn compile(name: &str, text: &str) -> Flow {
    fdl::compile_text(name, text).unwrap_or_else(|e| panic!("{name} does not compile: {e:#?}"))
}

fn issues(text: &str) -> Vec<DefinitionIssue> {
    fdl::compile_definition("broken", text).expect_err("the definition must be rejected")
}

async fn deploy(t: &TestEngine, flow: Flow, text: &str) -> Arc<FlowRecord> {
    t.deploy_compiled(flow, text, "alibaba", "alibaba").await
}

async fn run_text(t: &TestEngine, name: &str, text: &str, input: Value) -> ExecutionRecord {
    let flow = deploy(t, compile(name, text), text).await;
    t.run(&flow, input).await
}

/// Inputs the history recorded for a state's `StateStarted` events (its effective input).
async fn started_inputs(t: &TestEngine, rec: &ExecutionRecord, state: &str) -> Vec<Value> {
    t.state_inputs(rec, EventKind::StateStarted, state).await
}

/// The canonical JSON of a compiled flow reads back (through the canonical format) as the same
/// flow, so `flowgate validate` can print what the compiler produced.
fn assert_canonical_round_trip(flow: &Flow) {
    let text = serde_json::to_string(flow).unwrap();
    let back = flowgate::canonical::compile(&text)
        .unwrap_or_else(|e| panic!("canonical form does not compile: {e:?}\n{text}"));
    assert_eq!(&back, flow, "canonical round trip of {text}");
}

// ----- golden examples of spec §6.7 -----

#[tokio::test]
async fn minimal_and_seed_flows_run_and_output_the_empty_local() {
    let t = with_bindings(vec![], fast_config());
    for (name, text) in [
        ("minimal", fixture!("fdl_minimal.yaml")),
        ("my_flow_name", fixture!("seed_fdl.yaml")),
    ] {
        let flow = compile(name, text);
        assert_eq!(flow.name, name);
        assert!(flow.root.accumulate_local);
        assert_canonical_round_trip(&flow);
        let rec = run_text(&t, name, text, json!({"key": "value"})).await;
        assert_eq!(rec.status, ExecutionStatus::Succeeded, "{name}");
        // A pass step's local is {}, and the flow's output is its local (spec §6.3).
        assert_eq!(output(&rec), json!({}), "{name}");
    }
    // The definition's own name is used when the API gives none.
    let flow = fdl::compile_definition("", fixture!("seed_fdl.yaml")).unwrap();
    assert_eq!(flow.name, "my_flow_name");
    assert_eq!(flow.root.start_at, "mypass");
}

fn saga_functions(
    flight: fn(&Invocation, usize) -> Result<Value, InvokeError>,
) -> (
    Arc<Scripted>,
    Arc<Scripted>,
    Arc<Scripted>,
    Vec<FunctionBinding>,
) {
    let (train, b1) = scripted("bookTrainTicket", |_, _| {
        returning(json!({"transaction_id": "tx-1", "extra": true}))
    });
    let (fl, b2) = scripted("bookFlight", flight);
    let (cancel, b3) = scripted("cancelTrainTicket", |_, _| {
        returning(json!({"cancelled": true}))
    });
    (train, fl, cancel, vec![b1, b2, b3])
}

#[tokio::test]
async fn saga_happy_path_outputs_the_trip_order_id() {
    let (train, flight, cancel, bindings) =
        saga_functions(|_, _| returning(json!({"flight": "F1"})));
    let t = with_bindings(bindings, fast_config());
    let text = fixture!("fdl_saga.yaml");
    let flow = compile("trip", text);
    assert_canonical_round_trip(&flow);
    let rec = run_text(
        &t,
        "trip",
        text,
        json!({"trip_order_id": "o-1", "book_train_ticket_result": "r"}),
    )
    .await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"trip_order_id": "o-1"}));
    // inputMappings build the event: `$input` is the flow input.
    assert_eq!(train.events(), vec![json!({"result": "r"})]);
    // Without inputMappings a step gets the flow input merged with the flow local, which holds
    // the previous step's outputMappings (only the mapped key, not `extra`).
    assert_eq!(
        flight.events(),
        vec![
            json!({"trip_order_id": "o-1", "book_train_ticket_result": "r",
                    "book_train_ticket_transaction_id": "tx-1"})
        ]
    );
    assert_eq!(cancel.count(), 0);
}

#[tokio::test]
async fn saga_compensates_and_fails_when_the_flight_cannot_be_booked() {
    let (train, flight, cancel, bindings) =
        saga_functions(|_, _| function_error("BookFlightError", "no seats"));
    let t = with_bindings(bindings, fast_config());
    let rec = run_text(
        &t,
        "trip",
        fixture!("fdl_saga.yaml"),
        json!({"trip_order_id": "o-2"}),
    )
    .await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    // A fail step without `error` raises the canonical sys.Fail, shown as FnF.Failed.
    assert_eq!(rec.error.as_deref(), Some("sys.Fail"));
    assert_eq!(error_names::to_vendor("sys.Fail"), "FnF.Failed");
    assert_eq!((train.count(), flight.count()), (1, 1));
    // CancelTrainTicket's inputMappings read the transaction id from the flow local.
    assert_eq!(cancel.events(), vec![json!({"transaction_id": "tx-1"})]);
}

#[tokio::test]
async fn saga_retries_the_train_ticket_then_catches_to_order_failed() {
    let (train, b1) = scripted("bookTrainTicket", |_, n| {
        if n < 2 {
            function_error("BookTrainTicketError", "busy")
        } else {
            returning(json!({"transaction_id": "tx-9"}))
        }
    });
    let (_, b2) = scripted("bookFlight", |_, _| returning(json!({})));
    let t = with_bindings(vec![b1, b2], fast_config());
    let rec = run_text(
        &t,
        "trip",
        fixture!("fdl_saga.yaml"),
        json!({"trip_order_id": 7}),
    )
    .await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"trip_order_id": 7}));
    assert_eq!(train.count(), 3, "two retries, then success");

    // Always failing: 1 call + 3 retries (maxAttempts), then the catch goes to OrderFailed.
    let (train, b1) = scripted("bookTrainTicket", |_, _| {
        function_error("BookTrainTicketError", "sold out")
    });
    let (flight, b2) = scripted("bookFlight", |_, _| returning(json!({})));
    let t = with_bindings(vec![b1, b2], fast_config());
    let rec = run_text(&t, "trip", fixture!("fdl_saga.yaml"), json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(train.count(), 4);
    assert_eq!(flight.count(), 0);
    let h = t.history(&rec).await;
    assert!(h
        .iter()
        .any(|e| e.kind == EventKind::StateEntered && &*e.state == "OrderFailed"));
    assert!(!h.iter().any(|e| &*e.state == "CancelTrainTicket"));
}

#[tokio::test]
async fn parallel_branches_and_local_projection() {
    let (cb, b) = scripted("callback", |call, _| {
        returning(json!({"status": call.event["key"]}))
    });
    let t = with_bindings(vec![b], fast_config());
    let text = fixture!("fdl_parallel_subflow.yaml");
    assert_canonical_round_trip(&compile("subFlowTest", text));
    let rec = run_text(&t, "subFlowTest", text, json!({"task_token": "tt-1"})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    // $local of a parallel step is the array of branch outputs; $local[*].status projects it.
    assert_eq!(output(&rec), json!({"result": ["key1", "key2"]}));
    let mut events = cb.events();
    events.sort_by_key(|e| e["key"].as_str().unwrap_or("").to_string());
    assert_eq!(
        events,
        vec![
            json!({"key": "key1", "task_token": "tt-1"}),
            json!({"key": "key2", "task_token": "tt-1"})
        ]
    );
}

#[tokio::test]
async fn callback_sub_flow_gets_the_token_and_its_end_completes_the_task() {
    let (callback, b) = scripted("callback", |call, _| {
        returning(json!({"status": format!("done-{}", call.event["key"].as_str().unwrap())}))
    });
    let t = with_bindings(vec![b], fast_config());
    let text = fixture!("fdl_parallel_main.yaml");
    let flow = compile("main", text);
    assert_canonical_round_trip(&flow);
    let StateKind::Task(task) = &flow.root.states[0].kind else {
        panic!("a task");
    };
    assert_eq!(task.mode, TaskMode::WaitForCallback);
    assert_eq!(&*task.resource, SUBFLOW_RESOURCE);
    assert!(task.result_selector.is_none());
    // `Input: $` is the step input, evaluated again as the event so that the token is real.
    assert_eq!(
        serde_json::to_value(task.parameters.as_ref().unwrap()).unwrap(),
        json!({"flow": "subFlowTest", "input.$": "{\"task_token\": $context.state.task_token}"})
    );
    let sub_text = fixture!("fdl_parallel_subflow.yaml");
    deploy(&t, compile("subFlowTest", sub_text), sub_text).await;
    let flow = deploy(&t, flow, text).await;
    let rec = t.run(&flow, json!({"x": 1})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.error);
    let h = t.history(&rec).await;
    let token = h
        .iter()
        .find(|e| e.kind == EventKind::TaskSubmitted)
        .and_then(|e| e.detail.extra().task_token.clone())
        .expect("the task had a token");
    // The child got {task_token} as its input and handed it to both branches' functions.
    let mut events = callback.events();
    events.sort_by_key(|e| e["key"].to_string());
    assert_eq!(
        events,
        vec![
            json!({"key": "key1", "task_token": token}),
            json!({"key": "key2", "task_token": token})
        ]
    );
    // The child's end completed the task with the child's output (its local).
    assert_eq!(output(&rec), json!({"result": ["done-key1", "done-key2"]}));
}

#[tokio::test]
async fn mns_topic_callback_maps_the_token_and_the_reported_status() {
    let (mns, b) = scripted("acs:mns:::/topics/demo-topic/messages", |_, _| {
        returning(json!({"MessageId": "m-1"}))
    });
    let t = with_bindings(vec![b], fast_config());
    let text = fixture!("fdl_mns_topic.yaml");
    let flow = deploy(&t, compile("mns", text), text).await;
    let started = t
        .engine
        .start(request(&flow, None, json!({"messageBody": "hello"})))
        .await
        .unwrap();
    let token = t.token_of(&started.record).await;
    assert_eq!(
        mns.events(),
        vec![json!({"MessageBody": {"messageBody": "hello", "taskToken": token}})]
    );
    t.engine
        .report_success(&token, json!({"status": "delivered", "other": 1}))
        .await
        .unwrap();
    let rec = t
        .engine
        .wait_execution(&started.record.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"status": "delivered"}));
}

fn list_objects(_: &Invocation, n: usize) -> Result<Value, InvokeError> {
    if n == 0 {
        returning(json!({"small": ["a", "b"], "has_more": true, "marker": "m1"}))
    } else {
        returning(json!({"small": ["c"], "has_more": false}))
    }
}

#[tokio::test]
async fn foreach_and_choice_loop_until_no_more_objects() {
    let (list, b1) = scripted("listObjects", list_objects);
    let (copy, b2) = scripted("copyObjects", |call, _| {
        returning(json!({"copied": call.event["keys"]}))
    });
    let (start, b3) = scripted("fnf:StartExecution", |_, _| returning(json!({})));
    let t = with_bindings(vec![b1, b2, b3], fast_config());
    let text = fixture!("fdl_oss_copy.yaml");
    let flow = compile("copy", text);
    assert_canonical_round_trip(&flow);
    let StateKind::Map(m) = &flow.root.states[1].kind else {
        panic!("foreach lowers to a map");
    };
    assert_eq!(m.items.text(), "$input.small");
    let rec = run_text(&t, "copy", text, json!({"flow_name": "copy"})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.error);
    assert_eq!(
        list.count(),
        2,
        "the choice looped back to listObjects once"
    );
    assert_eq!(start.count(), 0);
    let mut keys: Vec<Value> = copy.events().iter().map(|e| e["keys"].clone()).collect();
    keys.sort_by_key(|k| k.to_string());
    assert_eq!(keys, vec![json!("a"), json!("b"), json!("c")]);
    // Each iteration input is the foreach input merged with {keys: item}.
    assert!(copy
        .events()
        .iter()
        .all(|e| e.as_object().unwrap().len() == 1));
    let out = output(&rec);
    assert_eq!(out["has_more"], json!(false));
    assert_eq!(out["small"], json!(["c"]));
    assert!(out["event_id"].as_u64().is_some_and(|id| id > 0), "{out}");
    assert!(
        out.get("marker").is_none(),
        "only mapped keys reach the local"
    );
}

#[tokio::test]
async fn choice_inline_steps_run_and_their_local_becomes_the_choice_output() {
    let (list, b1) = scripted("listObjects", list_objects);
    let (_, b2) = scripted("copyObjects", |_, _| returning(json!({})));
    let t = with_bindings(vec![b1, b2], fast_config());
    // The child already has a finished execution named run-2.
    let child_text = fixture!("fdl_child_echo.yaml");
    let child = deploy(&t, compile("echo_child", child_text), child_text).await;
    let first = t
        .engine
        .start(request(&child, Some("run-2"), json!({"value": 0})))
        .await
        .unwrap();
    let first = t
        .engine
        .wait_execution(&first.record.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(first.status, ExecutionStatus::Succeeded);
    // The same flow with a threshold the first listing reaches.
    let text = fixture!("fdl_oss_copy.yaml").replace(">= 4000", ">= 0");
    let flow = compile("copy", &text);
    let StateKind::Choice(choice) = &flow.root.states[2].kind else {
        panic!("a choice");
    };
    let ChoiceTarget::Steps(inline) = &choice.rules[0].target else {
        panic!("inline steps");
    };
    let StateKind::Task(task) = &inline.states[0].kind else {
        panic!("a task");
    };
    assert_eq!(&*task.resource, SUBFLOW_RESOURCE);
    assert_eq!(
        inline.states[0].catch[0].errors,
        vec![
            "fnf.ExecutionAlreadyExists",
            "sys.Flow.ExecutionAlreadyExists"
        ]
    );
    let rec = run_text(
        &t,
        "copy",
        &text,
        json!({"flow_name": "echo_child", "execution_name": "run-2"}),
    )
    .await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.error);
    assert_eq!(list.count(), 1);
    // The caught error (no errorMappings) is the task's local {error, cause} with the Alibaba
    // name; the inline branch hands its local to the choice, whose output joins the flow local.
    let out = output(&rec);
    assert_eq!(out["error"], json!("fnf.ExecutionAlreadyExists"), "{out}");
    assert!(out["cause"].as_str().unwrap().contains("run-2"), "{out}");
}

#[tokio::test]
async fn audit_child_waits_then_succeeds_or_fails_with_error_and_cause() {
    let t = with_bindings(
        vec![mock(
            "audit",
            vec![MockResponse::returning("*", json!({"ok": true}))],
        )],
        fast_config(),
    );
    let text = fixture!("fdl_audit_child.yaml");
    let rec = run_text(&t, "audit_child", text, json!({"doc": 1})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"ok": true}));
    let h = t.history(&rec).await;
    let wait = h.iter().find(|e| e.kind == EventKind::WaitStarted).unwrap();
    assert_eq!(&*wait.state, "notify");
    assert_eq!(wait.detail.extra().seconds, Some(10.0));
    assert!(
        !h.iter().any(|e| &*e.state == "ErrUnknown"),
        "done ends the flow"
    );

    // A result that is not an object is FnF.InvalidLocal, caught into the fail step.
    let t = with_bindings(
        vec![mock(
            "audit",
            vec![MockResponse::returning("*", json!("approved"))],
        )],
        fast_config(),
    );
    let rec = run_text(&t, "audit_child", text, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(rec.error.as_deref(), Some("AuditUnknown"));
    assert_eq!(rec.cause.as_deref(), Some("unknown error occurs"));
}

/// The subflow-best-practice pair (spec §6.7): `audit_child` deployed next to its parent.
async fn audit_pair(audit: Value) -> (TestEngine, Arc<Scripted>, Arc<FlowRecord>) {
    let (notify, b2) = scripted("notify", |_, _| returning(json!({"notified": true})));
    let t = with_bindings(
        vec![mock("audit", vec![MockResponse::returning("*", audit)]), b2],
        fast_config(),
    );
    let child_text = fixture!("fdl_audit_child.yaml");
    deploy(&t, compile("audit_child", child_text), child_text).await;
    let text = fixture!("fdl_audit_parent.yaml");
    let flow = deploy(&t, compile("parent", text), text).await;
    (t, notify, flow)
}

#[tokio::test]
async fn sync_sub_flow_returns_the_child_output() {
    let flow = compile("parent", fixture!("fdl_audit_parent.yaml"));
    assert_canonical_round_trip(&flow);
    let StateKind::Task(task) = &flow.root.states[0].kind else {
        panic!("a task");
    };
    assert_eq!(&*task.resource, SUBFLOW_RESOURCE);
    assert_eq!(task.mode, TaskMode::Sync);
    assert!(task.result_selector.is_none());
    assert!(task.result_must_be_object);
    assert_eq!(
        serde_json::to_value(task.parameters.as_ref().unwrap()).unwrap(),
        json!({"flow": "audit_child", "input.$": "$input"})
    );
    let (t, notify, flow) = audit_pair(json!({"ok": true})).await;
    let rec = t.run(&flow, json!({"doc": "d"})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.error);
    assert_eq!(notify.count(), 0);
    // The child's output (its local) is the task's local.
    assert_eq!(output(&rec), json!({"ok": true}));
}

#[tokio::test]
async fn parent_catches_the_sub_flow_error_and_maps_it_into_the_local() {
    // "approved" is not an object: FnF.InvalidLocal in the child, caught into its fail step
    // AuditUnknown, which fails the parent's task and is caught there.
    let (t, notify, flow) = audit_pair(json!("approved")).await;
    let rec = t.run(&flow, json!({"doc": "d"})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.error);
    assert_eq!(notify.events(), vec![json!({"reason": "AuditUnknown"})]);
    assert_eq!(
        output(&rec),
        json!({"error": "AuditUnknown", "cause": "unknown error occurs", "notified": true})
    );
}

#[tokio::test]
async fn start_execution_returns_the_start_answer() {
    let text = fixture!("fdl_start_execution.yaml");
    let flow = compile("starter", text);
    assert_canonical_round_trip(&flow);
    let StateKind::Task(task) = &flow.root.states[0].kind else {
        panic!("a task");
    };
    assert_eq!(&*task.resource, SUBFLOW_RESOURCE);
    assert_eq!(task.mode, TaskMode::RequestResponse);
    assert_eq!(
        serde_json::to_value(task.parameters.as_ref().unwrap()).unwrap(),
        json!({
            "flow.$": "$input.flow_name",
            "input": {"value.$": "$input.value"},
            "execution_name.$": "$input.name"
        })
    );
    assert_eq!(
        serde_json::to_value(task.result_selector.as_ref().unwrap()).unwrap(),
        json!({
            "FlowName.$": "$result.flow",
            "ExecutionName.$": "$result.execution_name",
            "RequestId.$": "$result.execution_id"
        })
    );
    let t = with_bindings(vec![], fast_config());
    let child_text = fixture!("fdl_child_echo.yaml");
    deploy(&t, compile("echo_child", child_text), child_text).await;
    let starter = deploy(&t, flow, text).await;
    let rec = t
        .run(
            &starter,
            json!({"flow_name": "echo_child", "name": "c-1", "value": 7}),
        )
        .await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.error);
    let started = output(&rec)["started"].clone();
    assert_eq!(started["FlowName"], json!("echo_child"));
    assert_eq!(started["ExecutionName"], json!("c-1"));
    let id = started["RequestId"]
        .as_str()
        .expect("the child's id")
        .to_string();
    let child = t
        .engine
        .wait_execution(&id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(&*child.name, "c-1");
    assert_eq!(child.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&child), json!({"echoed": 7}));

    // A flow that does not exist fails the start: fnf.FlowNotExists.
    let rec = t
        .run(
            &starter,
            json!({"flow_name": "nope", "name": "c-2", "value": 1}),
        )
        .await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(rec.error.as_deref(), Some("sys.Flow.FlowNotExists"));
    assert_eq!(
        error_names::to_vendor(rec.error.as_deref().unwrap()),
        "fnf.FlowNotExists"
    );
}

#[tokio::test]
async fn starting_the_same_child_name_twice_is_caught_as_execution_already_exists() {
    let text = fixture!("fdl_start_twice.yaml");
    let flow = compile("twice", text);
    assert_canonical_round_trip(&flow);
    let StateKind::Task(first) = &flow.root.states[0].kind else {
        panic!("a task");
    };
    assert_eq!(first.mode, TaskMode::Sync);
    assert_eq!(
        serde_json::to_value(first.parameters.as_ref().unwrap()).unwrap(),
        json!({"flow": "echo_child", "input.$": "$input", "execution_name.$": "$input.name"})
    );
    let StateKind::Task(second) = &flow.root.states[1].kind else {
        panic!("a task");
    };
    // Without Input the child gets the step input.
    assert_eq!(
        serde_json::to_value(second.parameters.as_ref().unwrap()).unwrap(),
        json!({"flow": "echo_child", "input.$": "$input", "execution_name.$": "$input.name"})
    );
    let t = with_bindings(vec![], fast_config());
    let child_text = fixture!("fdl_child_echo.yaml");
    deploy(&t, compile("echo_child", child_text), child_text).await;
    let rec = run_text(&t, "twice", text, json!({"name": "once", "value": "v"})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.error);
    let out = output(&rec);
    assert_eq!(out["echoed"], json!("v"));
    assert_eq!(out["error"], json!("fnf.ExecutionAlreadyExists"));
    assert_eq!(out["again"], json!(false));
}

#[tokio::test]
async fn task_timeouts_are_fnf_task_timeout_for_retry_and_catch() {
    let t = with_bindings(
        vec![mock(
            "slow",
            vec![
                MockResponse::returning("0", json!({})).delayed(60_000),
                MockResponse::returning("1-", json!({"second": true})),
            ],
        )],
        fast_config(),
    );
    let text = "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: t\n    resourceArn: acs:fc:::services/s/functions/slow\n    timeoutSeconds: 0.05\n    retry: [{errors: [FnF.TaskTimeout], maxAttempts: 1}]\n";
    let flow = compile("to", text);
    assert_eq!(
        flow.root.states[0].retry[0].errors,
        vec!["FnF.TaskTimeout", "sys.TaskTimeout"]
    );
    let StateKind::Task(task) = &flow.root.states[0].kind else {
        panic!()
    };
    assert_eq!(task.timeout_seconds, Some(Amount::Fixed(0.05)));
    assert!(task.result_must_be_object);
    let rec = run_text(&t, "to", text, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"second": true}));
}

#[tokio::test]
async fn error_mappings_see_the_vendor_error_name_and_the_step_input() {
    let (_, b) = scripted("throttled", |_, _| {
        Err(InvokeError::Invocation {
            code: "ResourceThrottled".into(),
            message: "slow down".into(),
        })
    });
    let t = with_bindings(vec![b], fast_config());
    let text = r#"
version: v1
type: flow
steps:
  - type: task
    name: call
    resourceArn: acs:fc:::services/s/functions/throttled
    inputMappings: [{target: user, source: $input.who}]
    retry: [{errors: [FC.ResourceThrottled], maxAttempts: 2, intervalSeconds: 0}]
    catch: [{errors: [FC.ResourceThrottled], goto: handle}]
    errorMappings:
      - {target: reason, source: $local.error}
      - {target: detail, source: $local.cause}
      - {target: user, source: $input.user}
      - {target: whole, source: $local}
  - type: pass
    name: handle
"#;
    let flow = compile("em", text);
    assert_eq!(
        flow.root.states[0].catch[0].errors,
        vec!["FC.ResourceThrottled", "sys.Invoke.ResourceThrottled"]
    );
    let rec = run_text(&t, "em", text, json!({"who": "ann"})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(
        output(&rec),
        json!({"reason": "FC.ResourceThrottled", "detail": "slow down", "user": "ann",
               "whole": {"error": "FC.ResourceThrottled", "cause": "slow down"}})
    );
    let h = t.history(&rec).await;
    assert_eq!(
        h.iter()
            .filter(|e| e.kind == EventKind::RetryScheduled)
            .count(),
        2
    );
}

#[tokio::test]
async fn mappings_constants_projections_and_context() {
    let t = with_bindings(vec![], fast_config());
    let text = r#"
version: v1
type: flow
name: ignored_by_the_api
inputMappings:
  - {target: items, source: $input.order.items}
  - {target: fixed, source: 5}
steps:
  - type: pass
    name: shape
    inputMappings:
      - {target: ids, source: "$input.items[*].id"}
      - {target: method, source: POST}
      - {target: n, source: 12.5}
      - {target: flag, source: true}
      - {target: obj, source: {a: b, c: 1}}
      - {target: fixed, source: $input.fixed}
    outputMappings:
      - {target: ids, source: $input.ids}
      - {target: method, source: $input.method}
      - {target: obj, source: $input.obj}
      - {target: local_of_pass, source: $local}
      - {target: exec, source: $context.execution.name}
      - {target: flow, source: $context.flow.name}
      - {target: step, source: $context.step.name}
  - type: pass
    name: read_local
    inputMappings:
      - {target: first_id, source: "$local.ids[0]"}
      - {target: all, source: $local}
    outputMappings:
      - {target: first_id, source: $input.first_id}
      - {target: n_keys, source: $input.all.method}
outputMappings:
  - {target: ids, source: $local.ids}
  - {target: first_id, source: $local.first_id}
  - {target: exec, source: $local.exec}
  - {target: flow, source: $local.flow}
  - {target: step, source: $local.step}
  - {target: local_of_pass, source: $local.local_of_pass}
  - {target: n_keys, source: $local.n_keys}
  - {target: fixed_in, source: $input.fixed}
"#;
    let flow = compile("shapes", text);
    assert_eq!(
        flow.name, "shapes",
        "the API name wins over the definition's"
    );
    assert_canonical_round_trip(&flow);
    let flow = deploy(&t, flow, text).await;
    let rec = t
        .engine
        .start_sync(
            request(
                &flow,
                Some("exec-1"),
                json!({"order": {"items": [{"id": 1}, {"id": 2}, {"sku": "x"}]}}),
            ),
            true,
        )
        .await
        .unwrap();
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.cause);
    assert_eq!(
        output(&rec),
        json!({"ids": [1, 2], "first_id": 1, "exec": rec.name, "flow": "shapes", "step": "shape",
               "local_of_pass": {}, "n_keys": "POST", "fixed_in": 5})
    );
    assert_eq!(
        started_inputs(&t, &rec, "shape").await,
        vec![
            json!({"ids": [1, 2], "method": "POST", "n": 12.5, "flag": true,
                    "obj": {"a": "b", "c": 1}, "fixed": 5})
        ]
    );
}

#[tokio::test]
async fn wait_by_path_and_timestamp_choice_default_steps_and_foreach_index() {
    let t = with_bindings(vec![], fast_config());
    let text = r#"
version: v1.0
type: flow
steps:
  - {type: wait, name: w1, duration: $.pollInterval}
  - {type: wait, name: w2, timestamp: $.when}
  - {type: wait, name: w3, timestamp: "2001-01-01T00:00:00Z"}
  - type: choice
    name: route
    choices:
      - condition: $.kind == "a" || $.kind in ["b", "c"]
        goto: fin
    default:
      steps:
        - type: foreach
          name: each
          iterationMapping: {collection: $.names, item: name, index: i}
          steps:
            - type: pass
              name: tag
              outputMappings:
                - {target: label, source: $input.name}
                - {target: pos, source: $input.i}
          outputMappings:
            - {target: labels, source: "$local[*].label"}
            - {target: positions, source: "$local[*].pos"}
  - type: pass
    name: after
    outputMappings: [{target: seen, source: $input.labels}]
  - {type: succeed, name: fin}
"#;
    let flow = compile("misc", text);
    assert_canonical_round_trip(&flow);
    let flow = deploy(&t, flow, text).await;
    let rec = t
        .run(
            &flow,
            json!({"pollInterval": 5, "when": "2001-01-01T00:00:00Z", "kind": "z",
                   "names": ["x", "y"]}),
        )
        .await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.cause);
    assert_eq!(
        output(&rec),
        json!({"labels": ["x", "y"], "positions": [0, 1], "seen": ["x", "y"]})
    );
    let h = t.history(&rec).await;
    let waits: Vec<_> = h
        .iter()
        .filter(|e| e.kind == EventKind::WaitStarted)
        .map(|e| e.detail.extra().seconds)
        .collect();
    assert_eq!(waits, vec![Some(5.0), Some(0.0), Some(0.0)]);

    // The goto branch: the choice contributes nothing to the local, `after` is skipped.
    let rec = t
        .run(
            &flow,
            json!({"pollInterval": 0, "when": "2001-01-01T00:00:00Z", "kind": "c"}),
        )
        .await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({}));
}

#[tokio::test]
async fn flow_level_fields_and_json_crlf_text() {
    let json_text = "{\"version\": \"v1\", \"type\": \"flow\", \"timeoutSeconds\": 60,\r\n \"steps\": [{\"type\": \"pass\", \"name\": \"p\", \"outputMappings\": [{\"target\": \"a\", \"source\": \"$input.a\"}]}]}";
    let flow = fdl::compile_definition("j", json_text).unwrap();
    assert_eq!(flow.timeout_seconds, Some(60.0));
    let crlf = fixture!("fdl_saga.yaml").replace('\n', "\r\n");
    let flow = fdl::compile_definition("trip", &crlf).unwrap();
    assert_eq!(flow.root.states.len(), 5);
    assert_eq!(flow.root.states[1].next.as_deref(), Some("OrderSucceeded"));
    assert!(flow.root.states[3].next.as_deref() == Some("OrderFailed"));
    assert!(flow.root.states[2].next.is_none() && !flow.root.states[2].end);
    // Block style needs no quotes around `[*]` (flow style does: `[`, `]`, `*` are indicators).
    let block = "version: v1\ntype: flow\nsteps:\n  - type: pass\n    name: p\n    outputMappings:\n      - target: ids\n        source: $input.items[*].id\n";
    let t = with_bindings(vec![], fast_config());
    let rec = run_text(&t, "block", block, json!({"items": [{"id": 1}, {"id": 2}]})).await;
    assert_eq!(output(&rec), json!({"ids": [1, 2]}));
    let flow = deploy(
        &t,
        fdl::compile_definition("j", json_text).unwrap(),
        json_text,
    )
    .await;
    let rec = t.run(&flow, json!({"a": [1]})).await;
    assert_eq!(output(&rec), json!({"a": [1]}));
}

// ----- definition errors -----

#[test]
fn structural_problems_are_reported_together_with_vendor_paths() {
    let text = r#"
version: v2
type: flow
extra: 1
steps:
  - type: pass
    name: a
    colour: blue
  - type: task
    name: b
    resourceArn: acs:fc:::services/s/functions/f
    retry: [{errors: [], multiplier: 0.5}]
    catch:
      - {errors: [X], goto: nowhere}
      - {errors: [Y], goto: inner}
  - type: choice
    name: c
    choices:
      - condition: $.a ==
        goto: a
      - condition: $.b
        goto: inner
      - condition: $.c
        steps:
          - {type: pass, name: inner}
          - {type: pass, name: inner}
  - type: banana
    name: d
  - {type: pass, name: a}
  - type: task
    name: e
    inputMappings: [{target: x, source: $nope.x}, {source: $input}]
  - {type: foreach, name: f, iterationMapping: {collection: names, item: n}, steps: []}
  - {type: wait, name: g}
  - {type: parallel, name: h, branches: []}
  - {type: pass}
"#;
    let found = issues(text);
    assert_issue(&found, "version", "v1, v1beta1, v1.0");
    assert_issue(&found, "extra", "unknown field 'extra'");
    assert_issue(
        &found,
        "steps[0].colour",
        "unknown field 'colour' for a pass step",
    );
    assert_issue(&found, "steps[1].retry[0].errors", "at least one error");
    assert_issue(&found, "steps[1].retry[0].multiplier", "at least 1");
    assert_issue(
        &found,
        "steps[1].catch[0].goto",
        "'nowhere' is not a step of the same steps list",
    );
    assert_issue(
        &found,
        "steps[1].catch[1].goto",
        "'inner' is not a step of the same steps list",
    );
    assert_issue(
        &found,
        "steps[2].choices[0].condition",
        "invalid expression",
    );
    assert_issue(
        &found,
        "steps[2].choices[1].goto",
        "not a step of the same steps list",
    );
    assert_issue(
        &found,
        "steps[2].choices[2].steps[1].name",
        "duplicate step name 'inner'",
    );
    assert_issue(&found, "steps[3].type", "unknown step type 'banana'");
    assert_issue(&found, "steps[4].name", "duplicate step name 'a'");
    assert_issue(&found, "steps[5].resourceArn", "needs resourceArn");
    assert_issue(
        &found,
        "steps[5].inputMappings[0].source",
        "unknown variable '$nope'",
    );
    assert_issue(&found, "steps[5].inputMappings[1].target", "is required");
    assert_issue(&found, "steps[6].iterationMapping.collection", "not a path");
    assert_issue(&found, "steps[6].steps", "at least one step");
    assert_issue(&found, "steps[7]", "exactly one of duration and timestamp");
    assert_issue(&found, "steps[8].branches", "at least one branch");
    assert_issue(&found, "steps[9].name", "is required");
    assert!(found.len() >= 20, "{found:#?}");
}

#[test]
fn more_definition_errors() {
    assert_issue(&issues("version: v1\ntype: flow\n"), "steps", "is required");
    let found = fdl::compile("x", &json!({"version": "v1", "steps": []})).unwrap_err();
    assert_issue(&found, "type", "is required");
    assert_issue(&found, "steps", "at least one step");
    let found = issues(
        "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: t\n    resourceArn: a\n    action: b\n    pattern: eventually\n    timeoutSeconds: soon\n    errorMappings: [{target: e, source: $local.error}]\n    serviceParams: [1]\n  - type: wait\n    name: w\n    duration: 999999\n  - type: wait\n    name: w2\n    timestamp: tomorrow\n  - type: choice\n    name: c\n  - type: pass\n    name: p\n    outputMappings: [{target: a, source: $context.task.nope}]\n",
    );
    assert_issue(&found, "steps[0].action", "not both");
    assert_issue(&found, "steps[0].pattern", "unknown pattern 'eventually'");
    assert_issue(&found, "steps[0].timeoutSeconds", "must be a number");
    assert_issue(
        &found,
        "steps[0].errorMappings",
        "only used together with catch",
    );
    assert_issue(&found, "steps[0].serviceParams", "must be a mapping");
    assert_issue(&found, "steps[1].duration", "between 0 and 172800");
    assert_issue(&found, "steps[2].timestamp", "not an RFC 3339 timestamp");
    assert_issue(&found, "steps[3].choices", "at least one entry in choices");
    assert_issue(
        &found,
        "steps[4].outputMappings[0].source",
        "$context: unknown field 'nope'",
    );
    // Flow-level inputMappings have no local.
    assert_issue(
        &issues("version: v1\ntype: flow\ninputMappings: [{target: a, source: $local.a}]\nsteps: [{type: pass, name: p}]\n"),
        "inputMappings[0].source",
        "unknown variable '$local'",
    );
}

#[test]
fn sub_flow_task_definition_errors() {
    let found = issues(
        "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: a\n    action: fnf:StartExecution\n    serviceParams: {ExecutionName: x, Priority: 1}\n  - type: task\n    name: b\n    resourceArn: acs:fnf:::flow/child\n    serviceParams: {FlowName: other, Input: $}\n  - type: task\n    name: c\n    resourceArn: acs:fnf:::flow/child\n    serviceParams: {Input: '$.a['}\n",
    );
    assert_issue(&found, "steps[0].serviceParams.FlowName", "is required");
    assert_issue(
        &found,
        "steps[0].serviceParams.Priority",
        "unknown field 'Priority'",
    );
    assert_issue(
        &found,
        "steps[1].serviceParams.FlowName",
        "named by resourceArn",
    );
    assert_issue(&found, "steps[2].serviceParams.Input", "invalid expression");
    // Other fnf ARNs (not `flow/<name>`) stay ordinary targets.
    let flow = compile(
        "x",
        "version: v1\ntype: flow\nsteps:\n  - {type: task, name: t, resourceArn: 'acs:fnf:::flows/x', pattern: sync}\n",
    );
    let StateKind::Task(task) = &flow.root.states[0].kind else {
        panic!("a task");
    };
    assert_eq!(&*task.resource, "acs:fnf:::flows/x");
    assert_eq!(task.mode, TaskMode::Sync);
}

#[test]
fn text_level_errors() {
    let found = issues("version: v1\ntype: flow\nsteps: [\n");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path, "$");
    assert!(found[0].message.contains("line "), "{found:?}");
    let found = issues("kind: workflow\n");
    assert_issue(&found, "$", "neither Alibaba flow language was recognised");
    let found = issues("- a\n- b\n");
    assert_issue(&found, "$", "neither Alibaba flow language was recognised");
    let found = fdl::compile_text("x", "[1, 2]").unwrap_err();
    assert_issue(&found, "$", "must be a mapping");
    let found = fdl::compile_text(
        "",
        "version: v1\ntype: flow\nsteps: [{type: pass, name: p}]\n",
    )
    .unwrap_err();
    assert_issue(&found, "name", "needs a name");
}
