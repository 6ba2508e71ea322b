//! Alibaba CloudFlow (`Type: StateMachine`) compiled and run on the engine: the examples of
//! spec §7.7 as golden tests, `$Context`/`$Output`/`$Global`/`$Item`, and definition errors
//! with their paths.

mod support;

use std::sync::Arc;
use std::time::Duration;

use flowgate::dialects::alibaba::{cloudflow, fdl};
use flowgate::invoke::InvokeError;
use flowgate::model::flow::{
    Amount, DefinitionIssue, Flow, StateKind, TaskMode, TaskSpec, SUBFLOW_RESOURCE,
};
use flowgate::model::{EventKind, ExecutionRecord, ExecutionStatus};
use flowgate::store::FlowRecord;
use serde_json::{json, Value};
use support::{
    assert_issue, fast_config, function_error, output, request, scripted, with_bindings, TestEngine,
};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../dialects/alibaba/fixtures/flows/", $name))
    };
}

// ----- helpers -----

fn throttled() -> Result<Value, InvokeError> {
    Err(InvokeError::Invocation {
        code: "ResourceThrottled".into(),
        message: "throttled".into(),
    })
}

fn compile(name: &str, text: &str) -> Flow {
    fdl::compile_definition(name, text)
        .unwrap_or_else(|e| panic!("{name} does not compile: {e:#?}"))
}

fn issues(text: &str) -> Vec<DefinitionIssue> {
    cloudflow::compile_text("wf", text).expect_err("the definition must be rejected")
}

async fn deploy(t: &TestEngine, flow: Flow, text: &str) -> Arc<FlowRecord> {
    t.deploy_compiled(flow, text, "alibaba", "alibaba").await
}

async fn run_text(t: &TestEngine, name: &str, text: &str, input: Value) -> ExecutionRecord {
    let flow = deploy(t, compile(name, text), text).await;
    t.run(&flow, input).await
}

/// The input a state was entered with, per visit.
async fn entered_inputs(t: &TestEngine, rec: &ExecutionRecord, state: &str) -> Vec<Value> {
    t.state_inputs(rec, EventKind::StateEntered, state).await
}

fn assert_canonical_round_trip(flow: &Flow) {
    let text = serde_json::to_string(flow).unwrap();
    let back = flowgate::canonical::compile(&text)
        .unwrap_or_else(|e| panic!("canonical form does not compile: {e:?}\n{text}"));
    assert_eq!(&back, flow, "canonical round trip of {text}");
}

// ----- golden examples of spec §7.7 -----

#[tokio::test]
async fn pass_input_constructor_is_the_output() {
    let t = with_bindings(vec![], fast_config());
    let text = fixture!("cf_pass.yaml");
    let flow = compile("my-wkfl", text);
    assert_canonical_round_trip(&flow);
    let rec = run_text(&t, "my-wkfl", text, json!({"ignored": true})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"FieldA": 123}));
}

#[tokio::test]
async fn seed_pass_state_returns_its_input() {
    let t = with_bindings(vec![], fast_config());
    let rec = run_text(
        &t,
        "my_flow_name",
        fixture!("seed_cloudflow.yaml"),
        json!({"key": "value"}),
    )
    .await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"key": "value"}));
}

#[tokio::test]
async fn choice_routes_by_condition_and_default() {
    let t = with_bindings(vec![], fast_config());
    let text = fixture!("cf_choice.yaml");
    assert_canonical_round_trip(&compile("choice-demo", text));
    let flow = deploy(&t, compile("choice-demo", text), text).await;
    let go = t.run(&flow, json!({"data": "ready"})).await;
    assert_eq!(output(&go), json!({"result": "go"}));
    let hold = t.run(&flow, json!({"data": "later"})).await;
    assert_eq!(output(&hold), json!({"result": "hold"}));
    assert_eq!(
        entered_inputs(&t, &hold, "Hold").await,
        vec![json!({"data": "later"})]
    );
}

#[tokio::test]
async fn parallel_with_succeed_outputs_branch_keys() {
    let t = with_bindings(vec![], fast_config());
    let text = fixture!("cf_parallel.yaml");
    assert_canonical_round_trip(&compile("my-wkfl", text));
    let rec = run_text(&t, "my-wkfl", text, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(
        output(&rec),
        json!({"Branch0": {"FieldA": 123}, "Branch1": {"FieldA": 321}})
    );
}

#[tokio::test]
async fn map_outputs_items_in_order() {
    let t = with_bindings(vec![], fast_config());
    let text = fixture!("cf_map.yaml");
    let flow = compile("map-demo", text);
    assert_canonical_round_trip(&flow);
    let StateKind::Map(m) = &flow.root.states[0].kind else {
        panic!("a map");
    };
    assert_eq!(m.max_concurrency, Some(2));
    assert_eq!(m.items.text(), "$input.users");
    let rec = run_text(
        &t,
        "map-demo",
        text,
        json!({"users": [{"id": 1}, {"id": 2}]}),
    )
    .await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(
        output(&rec),
        json!({"Items": [{"msg": "hello 1"}, {"msg": "hello 2"}]})
    );
}

#[tokio::test]
async fn fc_task_retries_throttling_and_shapes_the_body() {
    let (f, b) = scripted("myfn", |call, n| {
        if n < 2 {
            throttled()
        } else {
            Ok(json!({"greeting": format!("hi {}", call.event["name"].as_str().unwrap_or("?"))}))
        }
    });
    let t = with_bindings(vec![b], fast_config());
    let text = fixture!("cf_fc_task.yaml");
    let flow = compile("fc-demo", text);
    assert_canonical_round_trip(&flow);
    let st = &flow.root.states[0];
    let StateKind::Task(task) = &st.kind else {
        panic!("a task");
    };
    assert_eq!(
        &*task.resource,
        "acs:fc:cn-hangzhou:123456789:functions/myfn/LATEST"
    );
    assert_eq!(task.timeout_seconds, Some(Amount::Fixed(30.0)));
    assert_eq!(
        st.retry[0].errors,
        vec!["FC.ResourceThrottled", "sys.Invoke.ResourceThrottled"]
    );
    assert_eq!(st.retry[0].backoff_rate, 2.0);
    assert_eq!(st.catch[0].errors, vec!["*"]);
    let rec = run_text(&t, "fc-demo", text, json!({"name": "ann", "other": 1})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.cause);
    assert_eq!(f.count(), 3);
    // Parameters.body is the event sent to the function.
    assert_eq!(f.events()[0], json!({"name": "ann"}));
    let out = output(&rec);
    assert_eq!(out["greeting"], json!("hi ann"));
    assert_eq!(out["returnID"].as_str().map(str::len), Some(36), "{out}");
    assert_eq!(out.as_object().unwrap().len(), 2);
}

#[tokio::test]
async fn fc_task_catches_function_errors_with_the_vendor_error_code() {
    let (f, b) = scripted("myfn", |_, _| function_error("MyError", "bad input"));
    let t = with_bindings(vec![b], fast_config());
    let text = fixture!("cf_fc_task.yaml");
    let rec = run_text(&t, "fc-demo", text, json!({"name": "bob"})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(rec.error.as_deref(), Some("InvokeFailed"));
    assert_eq!(rec.cause.as_deref(), Some("function call failed"));
    assert_eq!(f.count(), 1, "MyError is not retried");
    assert_eq!(
        entered_inputs(&t, &rec, "Failed").await,
        vec![json!({"error": "MyError"})]
    );

    // Throttled every time: 1 call + 3 retries, then the FnF.ALL catch sees FC.ResourceThrottled.
    let (f, b) = scripted("myfn", |_, _| throttled());
    let t = with_bindings(vec![b], fast_config());
    let rec = run_text(&t, "fc-demo", text, json!({"name": "bob"})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(f.count(), 4);
    assert_eq!(
        entered_inputs(&t, &rec, "Failed").await,
        vec![json!({"error": "FC.ResourceThrottled"})]
    );
    let h = t.history(&rec).await;
    let delays: Vec<_> = h
        .iter()
        .filter(|e| e.kind == EventKind::RetryScheduled)
        .map(|e| e.detail.extra().delay_seconds)
        .collect();
    assert_eq!(delays, vec![Some(1.0), Some(2.0), Some(4.0)]);
}

#[tokio::test]
async fn wait_then_custom_callback_result_is_the_output() {
    let (notify, b) = scripted("notify", |_, _| Ok(json!({"RequestId": "r"})));
    let t = with_bindings(vec![b], fast_config());
    let text = fixture!("cf_callback.yaml");
    let flow = compile("callback-demo", text);
    assert_canonical_round_trip(&flow);
    let StateKind::Task(task) = &flow.root.states[1].kind else {
        panic!("a task");
    };
    assert_eq!(task.mode, TaskMode::WaitForCallback);
    assert!(
        task.result_selector.is_none(),
        "a reported output is not wrapped in Body"
    );
    let flow = deploy(&t, flow, text).await;
    let started = t
        .engine
        .start(request(&flow, Some("cb-1"), json!({"delay": 3})))
        .await
        .unwrap();
    let mut token = None;
    for _ in 0..400 {
        let h = t.history(&started.record).await;
        if let Some(e) = h.iter().find(|e| e.kind == EventKind::TaskSubmitted) {
            token = e.detail.extra().task_token.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let token = token.expect("the task handed its token out");
    assert_eq!(notify.events(), vec![json!({"token": token})]);
    t.engine
        .report_success(&token, json!({"approved": true}))
        .await
        .unwrap();
    let rec = t
        .engine
        .wait_execution(&started.record.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"approved": true}));
    let h = t.history(&rec).await;
    let wait = h.iter().find(|e| e.kind == EventKind::WaitStarted).unwrap();
    assert_eq!(wait.detail.extra().seconds, Some(3.0));
}

#[tokio::test]
async fn retry_rules_in_order_and_catch_output_constructor() {
    let (f, b) = scripted("flaky", |_, n| {
        if n == 0 {
            function_error("Transient", "once")
        } else {
            Ok(json!({"ok": true}))
        }
    });
    let t = with_bindings(vec![b], fast_config());
    let text = fixture!("cf_retry_catch.yaml");
    let flow = compile("retry-catch", text);
    assert_canonical_round_trip(&flow);
    let rec = run_text(&t, "retry-catch", text, json!({"order": "o-1", "noise": 1})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.cause);
    assert_eq!(output(&rec), json!({"ok": true, "attempts": 1}));
    // body.$: $Input is the state input after its InputConstructor.
    assert_eq!(f.events(), vec![json!({"order": "o-1"}); 2]);

    let (f, b) = scripted("flaky", |_, _| function_error("Boom", "it broke"));
    let t = with_bindings(vec![b], fast_config());
    let rec = run_text(&t, "retry-catch", text, json!({"order": "o-2", "noise": 1})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(f.count(), 1);
    assert_eq!(
        output(&rec),
        json!({"errorCode": "Boom", "errorDetail": "it broke", "order": "o-2", "attempts": 0})
    );
}

#[tokio::test]
async fn context_global_item_and_output_views() {
    let t = with_bindings(vec![], fast_config());
    let text = r#"
Type: StateMachine
SpecVersion: v1
Name: ctx
StartAt: First
States:
  - Type: Pass
    Name: First
    InputConstructor:
      seen.$: $Input
      current.$: $Context.Current.Input
    OutputConstructor:
      exec.$: $Context.Execution.Name
      execInput.$: $Context.Execution.Input
      state.$: $Context.Current.Name
      flow.$: $Context.Flow.Name
      input.$: $Context.Current.Input
      out.$: $Output.seen.a
      role.$: $Context.Execution.RoleArn
      noError.$: $Context.Current.Error.Code
      nested:
        constant: [1, 2]
        sum.$: $Input.seen.a + 1
    GlobalConstructor:
      total.$: $Input.seen.a
    Next: Fan
  - Type: Map
    Name: Fan
    ItemsPath: $Context.Execution.Input.list
    MaxConcuccency: 1
    MaxItems: 2
    ItemConstructor:
      value.$: $Item
      total.$: $Global.total
      from.$: $Input.exec
    Processor:
      StartAt: Echo
      States:
        - Type: Pass
          Name: Echo
          End: true
    OutputConstructor:
      count.$: length($Output.Items)
      firstValue.$: $Output.Items[0].value
      values.$: $Output.Items[*].value
    Next: Both
  - Type: Parallel
    Name: Both
    Branches:
      - StartAt: A
        States: [{Type: Pass, Name: A, OutputConstructor: {n: 1}, End: true}]
      - StartAt: B
        States: [{Type: Pass, Name: B, OutputConstructor: {n: 2}, End: true}]
    OutputConstructor:
      b0.$: $Output.Branch0.n
      b1.$: $Output.Branch1
      prev.$: $Input.count
    End: true
"#;
    let flow = compile("ctx", text);
    assert_canonical_round_trip(&flow);
    let StateKind::Map(m) = &flow.root.states[1].kind else {
        panic!("a map");
    };
    assert_eq!(
        m.max_concurrency,
        Some(1),
        "the documented typo is accepted"
    );
    let flow = deploy(&t, flow, text).await;
    let rec = t
        .engine
        .start_sync(
            request(
                &flow,
                Some("run-7"),
                json!({"a": 41, "list": ["x", "y", "z"]}),
            ),
            true,
        )
        .await
        .unwrap();
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.cause);
    assert!(rec.name.starts_with("run-7"), "{}", rec.name);
    assert_eq!(output(&rec), json!({"b0": 1, "b1": {"n": 2}, "prev": 2}));
    let h = t.history(&rec).await;
    let first_out = h
        .iter()
        .find(|e| e.kind == EventKind::StateSucceeded && &*e.state == "First")
        .and_then(|e| e.detail.output.as_deref().cloned())
        .unwrap();
    let input = json!({"a": 41, "list": ["x", "y", "z"]});
    assert_eq!(
        first_out,
        json!({"exec": rec.name, "execInput": input, "state": "First", "flow": "ctx",
               "input": {"seen": input, "current": input}, "out": 41, "role": null,
               "noError": null, "nested": {"constant": [1, 2], "sum": 42}})
    );
    let fan_out = h
        .iter()
        .find(|e| e.kind == EventKind::StateSucceeded && &*e.state == "Fan")
        .and_then(|e| e.detail.output.as_deref().cloned())
        .unwrap();
    assert_eq!(
        fan_out,
        json!({"count": 2, "firstValue": "x", "values": ["x", "y"]})
    );
    let iteration_inputs: Vec<Value> = h
        .iter()
        .filter(|e| e.kind == EventKind::IterationEntered)
        .map(|e| e.detail.input.as_deref().cloned().unwrap())
        .collect();
    assert_eq!(
        iteration_inputs,
        vec![
            json!({"value": "x", "total": 41, "from": rec.name}),
            json!({"value": "y", "total": 41, "from": rec.name})
        ]
    );
}

#[tokio::test]
async fn other_actions_fail_states_and_wait_variants() {
    let (mns, b) = scripted("MNS:SendMessage", |_, _| Ok(json!({"MessageId": "m"})));
    let t = with_bindings(vec![b], fast_config());
    let text = r#"
Type: StateMachine
SpecVersion: v1
Name: misc
StartAt: Send
States:
  - Type: Task
    Name: Send
    Action: MNS:SendMessage
    Parameters:
      resourceArn: acs:mns:cn-hangzhou:123:/queues/q/messages
      message.$: $Input.text
    Timeout.$: $Input.limit
    Next: W1
  - Type: Wait
    Name: W1
    Seconds: 2
    Next: W2
  - Type: Wait
    Name: W2
    Timestamp: "2001-01-01T00:00:00Z"
    Next: Stop
  - Type: Fail
    Name: Stop
    Code: FnF.RuntimeError
    Detail: stop here
"#;
    let flow = compile("misc", text);
    assert_canonical_round_trip(&flow);
    let StateKind::Task(task) = &flow.root.states[0].kind else {
        panic!("a task");
    };
    assert_eq!(&*task.resource, "MNS:SendMessage");
    assert!(matches!(task.timeout_seconds, Some(Amount::Expr(_))));
    let StateKind::Fail(fail) = &flow.root.states[3].kind else {
        panic!("a fail");
    };
    assert_eq!(fail.error.as_deref(), Some("sys.Runtime"));
    let flow = deploy(&t, flow, text).await;
    let rec = t.run(&flow, json!({"text": "hi", "limit": 10})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(rec.error.as_deref(), Some("sys.Runtime"));
    assert_eq!(rec.cause.as_deref(), Some("stop here"));
    assert_eq!(
        mns.events(),
        vec![json!({"resourceArn": "acs:mns:cn-hangzhou:123:/queues/q/messages", "message": "hi"})]
    );
    // The MNS result is not wrapped (only FC:InvokeFunction results are).
    assert_eq!(
        entered_inputs(&t, &rec, "W1").await,
        vec![json!({"MessageId": "m"})]
    );
}

#[test]
fn json_and_crlf_text_compile() {
    let json_text = r#"{"Type": "StateMachine", "SpecVersion": "v1", "Name": "j", "StartAt": "P",
        "States": [{"Type": "Pass", "Name": "P", "End": true}]}"#;
    let flow = fdl::compile_definition("j", json_text).unwrap();
    assert_eq!(flow.root.start_at, "P");
    let crlf = fixture!("cf_fc_task.yaml").replace('\n', "\r\n");
    let flow = fdl::compile_definition("fc-demo", &crlf).unwrap();
    assert_eq!(flow.root.states.len(), 3);
    assert_eq!(flow.root.states[0].next.as_deref(), Some("Done"));
    // An empty API name takes the definition's Name.
    assert_eq!(
        cloudflow::compile_text("", fixture!("cf_map.yaml"))
            .unwrap()
            .name,
        "map-demo"
    );
}

// ----- definition errors -----

#[test]
fn structural_problems_are_reported_together_with_vendor_paths() {
    let text = r#"
Type: StateMachine
SpecVersion: v2
Name: other-name
StartAt: Missing
Color: red
States:
  - Type: Pass
    Name: P
    OutputConstructor:
      a.$: $Input.x ==
    InputConstructor:
      b.$: $Output.y
      c.$: $Context.Current.Nope
      d.$: $Item
    Next: Nowhere
  - Type: Parallel
    Name: Par
    Branches:
      - StartAt: A
        States:
          - {Type: Pass, Name: A, Next: B}
          - {Type: Pass, Name: B, End: true, Next: A}
          - {Type: Pass, Name: C, Next: Elsewhere}
    Next: P
  - Type: Task
    Name: T
    Retry: [{MaxAttempts: 2, BackoffRate: 0.5}]
    Catch: [{Errors: [FnF.ALL], Next: Gone}]
  - Type: Choice
    Name: Ch
    Next: P
    Branches:
      - Condition: $.bare
        Next: P
  - Type: Map
    Name: M
    MaxConcurrency: 2
    MaxConcuccency: 2
    ItemReader: {}
    Processor: {StartAt: X, States: [{Type: Pass, Name: X, End: true}]}
    End: true
  - Type: Pass
    Name: P
    End: true
  - Type: Rocket
    Name: R
  - Type: Fail
    Name: F
    Code: E
"#;
    let found = issues(text);
    assert_issue(&found, "SpecVersion", "must be 'v1'");
    assert_issue(
        &found,
        "Name",
        "must equal the flow name given to the API ('wf')",
    );
    assert_issue(&found, "StartAt", "'Missing' does not exist");
    assert_issue(&found, "Color", "unknown field 'Color'");
    assert_issue(
        &found,
        "States[0].OutputConstructor.a.$",
        "invalid expression",
    );
    assert_issue(
        &found,
        "States[0].InputConstructor.b.$",
        "$Output is only available",
    );
    assert_issue(
        &found,
        "States[0].InputConstructor.c.$",
        "unknown field 'Nope'",
    );
    assert_issue(
        &found,
        "States[0].InputConstructor.d.$",
        "$Item is only available",
    );
    assert_issue(&found, "States[0].Next", "'Nowhere' does not exist");
    assert_issue(
        &found,
        "States[1].Branches[0].States[1].End",
        "both Next and End",
    );
    assert_issue(
        &found,
        "States[1].Branches[0].States[2].Next",
        "'Elsewhere' does not exist",
    );
    assert_issue(&found, "States[2].Action", "is required");
    assert_issue(&found, "States[2].Retry[0].Errors", "is required");
    assert_issue(&found, "States[2].Retry[0].BackoffRate", "at least 1.0");
    assert_issue(&found, "States[2].Catch[0].Next", "'Gone' does not exist");
    assert_issue(&found, "States[2].Next", "is required (or End: true)");
    assert_issue(
        &found,
        "States[3].Next",
        "a Choice state has no Next or End",
    );
    assert_issue(&found, "States[3].Branches[0].Condition", "bare '$'");
    assert_issue(&found, "States[3].Default", "is required");
    assert_issue(&found, "States[4].MaxConcuccency", "not both");
    assert_issue(&found, "States[4].ItemReader", "distributed Map");
    assert_issue(&found, "States[4].ItemsPath", "is required");
    assert_issue(&found, "States[5].Name", "duplicate state name 'P'");
    assert_issue(&found, "States[6].Type", "unknown state type 'Rocket'");
    assert_issue(&found, "States[7].Detail", "is required");
}

#[test]
fn task_and_wait_field_errors() {
    let text = r#"
Type: StateMachine
SpecVersion: v1
Name: wf
StartAt: T
States:
  - Type: Task
    Name: T
    Action: FC:InvokeFunction
    TaskMode: Eventually
    Timeout: 9999999
    Parameters:
      resourceArn.$: $Input.arn
      invocationType: Later
      qualifier: LATEST
    Next: U
  - Type: Task
    Name: U
    Action: not an action
    Parameters: [1]
    Next: W
  - Type: Wait
    Name: W
    Seconds: 1
    Seconds.$: $Input.s
    Next: W2
  - Type: Wait
    Name: W2
    Timestamp: later
    End: true
"#;
    let found = issues(text);
    assert_issue(
        &found,
        "States[0].TaskMode",
        "unknown TaskMode 'Eventually'",
    );
    assert_issue(&found, "States[0].Timeout", "between 0 and 604800");
    assert_issue(
        &found,
        "States[0].Parameters.resourceArn.$",
        "must be a constant ARN",
    );
    assert_issue(
        &found,
        "States[0].Parameters.invocationType",
        "Sync or Async",
    );
    assert_issue(
        &found,
        "States[0].Parameters.qualifier",
        "unknown field 'qualifier'",
    );
    assert_issue(
        &found,
        "States[1].Action",
        "not of the form <Service>:<API>",
    );
    assert_issue(&found, "States[1].Parameters", "must be a mapping");
    assert_issue(&found, "States[2]", "exactly one of Seconds");
    assert_issue(&found, "States[3].Timestamp", "not an RFC 3339 timestamp");

    let found = issues("Type: StateMachine\nName: wf\n");
    assert_issue(&found, "SpecVersion", "is required");
    assert_issue(&found, "StartAt", "is required");
    assert_issue(&found, "States", "is required");
    let found = issues("Type: StateMachine\nSpecVersion: v1\nName: wf\nStartAt: A\nStates: []\n");
    assert_issue(&found, "States", "at least one state");
    let found = issues("Type: StateMachine\nSpecVersion: v1\nName: wf\nStartAt: A\nStates:\n  - Type: Pass\n    Name: A\n    OutputConstructor: not-a-map\n    End: true\n");
    assert_issue(&found, "States[0].OutputConstructor", "must be a mapping");
    let found = fdl::compile_definition("wf", "Type: StateMachine\nStates: [\n").unwrap_err();
    assert_eq!(found.len(), 1);
    assert!(found[0].message.contains("line "), "{found:?}");
}

// ----- FNF:StartExecution: the canonical sub-flow target -----

#[tokio::test]
async fn start_execution_in_all_three_task_modes() {
    let text = fixture!("cf_start_execution.yaml");
    let flow = compile("cf-parent", text);
    assert_canonical_round_trip(&flow);
    let tasks: Vec<&TaskSpec> = flow
        .root
        .states
        .iter()
        .map(|s| match &s.kind {
            StateKind::Task(t) => t,
            other => panic!("a task, not {other:?}"),
        })
        .collect();
    assert!(tasks.iter().all(|t| &*t.resource == SUBFLOW_RESOURCE));
    assert_eq!(
        tasks.iter().map(|t| t.mode).collect::<Vec<_>>(),
        vec![
            TaskMode::RequestResponse,
            TaskMode::Sync,
            TaskMode::WaitForCallback
        ]
    );
    assert_eq!(
        serde_json::to_value(tasks[0].parameters.as_ref().unwrap()).unwrap(),
        json!({
            "flow": "cf-child",
            "input": {"value.$": "$input.value"},
            "execution_name.$": "format(\"{}-start\", $input.name)"
        })
    );
    assert_eq!(
        serde_json::to_value(tasks[0].result_selector.as_ref().unwrap()).unwrap(),
        json!({
            "FlowName.$": "$result.flow",
            "ExecutionName.$": "$result.execution_name",
            "RequestID.$": "$result.execution_id"
        })
    );
    // A dynamic ARN: the part after `flow/` at run time.
    assert_eq!(
        serde_json::to_value(tasks[1].parameters.as_ref().unwrap()).unwrap(),
        json!({
            "flow.$": "get(split($input.arn, \"flow/\"), 1) | $input.arn",
            "input": {"value.$": "$input.value"}
        })
    );
    assert!(tasks[1].result_selector.is_none());
    assert!(tasks[2].result_selector.is_none());
    assert!(tasks.iter().all(|t| !t.result_must_be_object));

    let t = with_bindings(vec![], fast_config());
    let child_text = fixture!("cf_child_echo.yaml");
    deploy(&t, compile("cf-child", child_text), child_text).await;
    let rec = run_text(
        &t,
        "cf-parent",
        text,
        json!({"name": "n1", "value": "v", "arn": "acs:fnf:cn-hangzhou::flow/cf-child"}),
    )
    .await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.error);
    let out = output(&rec);
    assert_eq!(out["started"]["FlowName"], json!("cf-child"));
    assert_eq!(out["started"]["ExecutionName"], json!("n1-start"));
    let id = out["started"]["RequestID"].as_str().unwrap().to_string();
    let child = t
        .engine
        .wait_execution(&id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(child.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&child), json!({"echoed": "v"}));
    // WaitForSystemCallback and WaitForCustomCallback: the child's result.
    assert_eq!(out["sync"], json!({"echoed": "v"}));
    assert_eq!(out["callback"], json!({"echoed": "v!"}));
}

#[tokio::test]
async fn start_execution_errors_are_fnf_names() {
    let text = r#"
Type: StateMachine
SpecVersion: v1
Name: starter
StartAt: Start
States:
  - Type: Task
    Name: Start
    Action: FNF:StartExecution
    TaskMode: WaitForSystemCallback
    Parameters:
      resourceArn.$: $Input.arn
      executionName: fixed
    Catch:
      - Errors: [fnf.ExecutionAlreadyExists, fnf.FlowNotExists, AuditUnknown]
        Next: Caught
    End: true
  - Type: Pass
    Name: Caught
    End: true
"#;
    let child = r#"
Type: StateMachine
SpecVersion: v1
Name: failing
StartAt: F
States:
  - Type: Fail
    Name: F
    Code: AuditUnknown
    Detail: no audit
"#;
    let t = with_bindings(vec![], fast_config());
    deploy(&t, compile("cf-child", fixture!("cf_child_echo.yaml")), "").await;
    deploy(&t, compile("failing", child), child).await;
    let flow = deploy(&t, compile("starter", text), text).await;
    // Not an ARN: the value itself is the flow name.
    let rec = t.run(&flow, json!({"arn": "cf-child"})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.error);
    assert_eq!(output(&rec), json!({"echoed": null}));
    // The same name again, a missing flow, a failing child: caught with vendor codes.
    for (arn, code) in [
        ("acs:fnf:::flow/cf-child", "fnf.ExecutionAlreadyExists"),
        ("acs:fnf:::flow/missing", "fnf.FlowNotExists"),
        ("acs:fnf:::flow/failing", "AuditUnknown"),
    ] {
        let rec = t.run(&flow, json!({"arn": arn})).await;
        assert_eq!(rec.status, ExecutionStatus::Succeeded, "{:?}", rec.error);
        assert_eq!(output(&rec)["Code"], json!(code), "{arn}");
    }
}

#[test]
fn start_execution_parameter_errors() {
    let text = r#"
Type: StateMachine
SpecVersion: v1
Name: wf
StartAt: A
States:
  - Type: Task
    Name: A
    Action: FNF:StartExecution
    Parameters:
      resourceArn: acs:fc:::functions/f
      executionName: x
      executionName.$: $Input.n
      Input: {}
    Next: B
  - Type: Task
    Name: B
    Action: FNF:StartExecution
    Parameters:
      input: not-a-map
    End: true
"#;
    let found = issues(text);
    assert_issue(
        &found,
        "States[0].Parameters.resourceArn",
        "is not a flow ARN",
    );
    assert_issue(&found, "States[0].Parameters.executionName.$", "not both");
    assert_issue(
        &found,
        "States[0].Parameters.Input",
        "unknown field 'Input'",
    );
    assert_issue(&found, "States[1].Parameters.resourceArn", "is required");
    assert_issue(&found, "States[1].Parameters.input", "must be a mapping");
}
