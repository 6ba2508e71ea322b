//! Engine behaviour, driven with canonical flows so it depends on no dialect.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flowgate::engine::EngineConfig;
use flowgate::invoke::{FunctionBinding, Invocation, InvokeError, Invoker};
use flowgate::model::{ApiError, EventKind, ExecutionStatus};
use flowgate::store::ExecutionFilter;
use serde_json::{json, Value};
use support::{engine, fast_config, kinds, output, request, with_bindings};

fn pass_flow(name: &str) -> Value {
    json!({
        "name": name,
        "root": {"start_at": "A", "states": [
            {"name": "A", "type": "pass", "input": {"greeting.$": "format(\"hello {}\", $input.who)"}, "next": "B"},
            {"name": "B", "type": "pass", "output": {"$merge": [{"$expr": "$input"}, {"step": "B"}]}, "next": "C"},
            {"name": "C", "type": "pass", "end": true}
        ]}
    })
}

#[tokio::test]
async fn pass_states_transform_data_and_record_a_chained_history() {
    let t = engine(json!([]), fast_config());
    let flow = t.deploy(pass_flow("p")).await;
    let rec = t.run(&flow, json!({"who": "ann"})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"greeting": "hello ann", "step": "B"}));
    let h = t.history(&rec).await;
    use EventKind::*;
    let mut expected = vec![ExecutionStarted];
    for _ in 0..3 {
        expected.extend([StateEntered, StateStarted, StateSucceeded, StateExited]);
    }
    expected.push(ExecutionSucceeded);
    assert_eq!(kinds(&h), expected);
    for (i, e) in h.iter().enumerate() {
        assert_eq!(e.id, i as u64 + 1, "ids are 1-based and dense");
        assert_eq!(
            e.cause_id, i as u64,
            "each event is caused by the previous one in a serial flow"
        );
    }
    assert_eq!(&*h[1].state, "A");
    assert_eq!(h[1].detail.input.as_deref(), Some(&json!({"who": "ann"})));
    assert_eq!(
        h[2].detail.input.as_deref(),
        Some(&json!({"greeting": "hello ann"}))
    );
    assert_eq!(rec.event_count, h.len() as u64);
}

#[tokio::test]
async fn choice_jumps_runs_inline_steps_and_falls_back_to_default() {
    let t = engine(json!([]), fast_config());
    let flow = t
        .deploy(json!({
            "name": "c",
            "root": {"start_at": "Route", "states": [
                {"name": "Route", "type": "choice", "rules": [
                    {"condition": "$input.kind == \"a\"", "next": "A"},
                    {"condition": "$input.n > 3 && $input.kind in [\"b\", \"c\"]", "steps": {
                        "start_at": "Inner", "states": [
                            {"name": "Inner", "type": "pass", "output": {"inner": true}, "end": true}]}}
                ], "default": {"next": "Other"}, "next": "After"},
                {"name": "A", "type": "pass", "output": {"route": "a"}, "end": true},
                {"name": "Other", "type": "pass", "output": {"route": "other"}, "end": true},
                {"name": "After", "type": "pass", "output": {"after.$": "$input"}, "end": true}
            ]}
        }))
        .await;
    let a = t.run(&flow, json!({"kind": "a"})).await;
    assert_eq!(output(&a), json!({"route": "a"}));
    let inline = t.run(&flow, json!({"kind": "c", "n": 4})).await;
    assert_eq!(output(&inline), json!({"after": {"inner": true}}));
    let other = t.run(&flow, json!({"kind": "c", "n": 1})).await;
    assert_eq!(output(&other), json!({"route": "other"}));
}

#[tokio::test]
async fn wait_by_seconds_expression_and_past_timestamp_records_the_wait() {
    let t = engine(json!([]), fast_config());
    let flow = t
        .deploy(json!({
            "name": "w",
            "root": {"start_at": "W1", "states": [
                {"name": "W1", "type": "wait", "seconds": "$input.delay", "next": "W2"},
                {"name": "W2", "type": "wait", "until": "2001-01-01T00:00:00Z", "next": "W3"},
                {"name": "W3", "type": "wait", "until_expr": "$input.when", "end": true}
            ]}
        }))
        .await;
    let rec = t
        .run(
            &flow,
            json!({"delay": 3600, "when": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(
        output(&rec),
        json!({"delay": 3600, "when": "2001-01-01T00:00:00Z"})
    );
    let h = t.history(&rec).await;
    let waits: Vec<_> = h
        .iter()
        .filter(|e| e.kind == EventKind::WaitStarted)
        .collect();
    assert_eq!(waits.len(), 3);
    assert_eq!(waits[0].detail.extra().seconds, Some(3600.0));
    assert_eq!(waits[1].detail.extra().seconds, Some(0.0));
    assert_eq!(
        h.iter().filter(|e| e.kind == EventKind::WaitEnded).count(),
        3
    );

    let bad = t.run(&flow, json!({"delay": "soon"})).await;
    assert_eq!(bad.status, ExecutionStatus::Failed);
    assert_eq!(bad.error.as_deref(), Some("sys.Runtime"));
}

#[tokio::test]
async fn wait_really_waits_when_time_is_not_scaled_away() {
    let t = engine(
        json!([]),
        EngineConfig {
            time_scale: 1.0,
            ..EngineConfig::default()
        },
    );
    let flow = t
        .deploy(json!({"name": "w", "root": {"start_at": "W", "states": [
            {"name": "W", "type": "wait", "seconds": 3600, "end": true}]}}))
        .await;
    let started = t
        .engine
        .start(request(&flow, Some("long"), json!({})))
        .await
        .unwrap();
    let rec = t
        .engine
        .wait_execution(&started.record.id, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(
        rec.status,
        ExecutionStatus::Running,
        "an hour-long wait is still running"
    );
    assert_eq!(
        t.store.timers_len(),
        1,
        "the wait is a timer record in the store"
    );
    let stopped = t.engine.stop(&rec.id, None, None).await.unwrap();
    assert_eq!(stopped.status, ExecutionStatus::Stopped);
    assert_eq!(
        t.store.timers_len(),
        0,
        "a cancelled wait removes its timer"
    );
}

#[tokio::test]
async fn task_calls_the_bound_function_with_built_parameters() {
    let t = engine(
        json!([{"name": "greet", "invoker": "mock", "responses": [
            {"attempts": "*", "return": {"message": "hi"}}]}]),
        fast_config(),
    );
    let flow = t
        .deploy(json!({"name": "t", "root": {"start_at": "T", "states": [
            {"name": "T", "type": "task", "resource": "acs:fc:cn-hangzhou:123:services/demo/functions/greet",
             "parameters": {"who.$": "$input.name", "fixed": 1},
             "output": {"reply.$": "$result.message", "asked.$": "$input.name"}, "end": true}]}}))
        .await;
    let rec = t.run(&flow, json!({"name": "bo"})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{rec:?}");
    assert_eq!(output(&rec), json!({"reply": "hi", "asked": "bo"}));
    let h = t.history(&rec).await;
    let scheduled = h
        .iter()
        .find(|e| e.kind == EventKind::TaskScheduled)
        .unwrap();
    assert_eq!(
        scheduled.detail.input.as_deref(),
        Some(&json!({"who": "bo", "fixed": 1}))
    );
    assert_eq!(scheduled.detail.extra().attempt, Some(0));
    assert!(h.iter().any(|e| e.kind == EventKind::TaskSucceeded
        && e.detail.output.as_deref() == Some(&json!({"message": "hi"}))));
}

#[tokio::test]
async fn retry_backs_off_by_the_policy_and_then_succeeds() {
    let t = engine(
        json!([{"name": "flaky", "invoker": "mock", "responses": [
            {"attempts": "0-2", "throw": {"error": "Busy", "cause": "try later"}},
            {"attempts": "3-", "return": {"ok": true}}]}]),
        fast_config(),
    );
    let flow = t
        .deploy(json!({"name": "r", "root": {"start_at": "T", "states": [
            {"name": "T", "type": "task", "resource": "flaky", "end": true,
             "retry": [
                {"errors": ["Other"], "max_attempts": 9},
                {"errors": ["Busy"], "interval_seconds": 1, "backoff_rate": 3, "max_interval_seconds": 5, "max_attempts": 3}
             ]}]}}))
        .await;
    let rec = t.run(&flow, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"ok": true}));
    let h = t.history(&rec).await;
    let delays: Vec<f64> = h
        .iter()
        .filter(|e| e.kind == EventKind::RetryScheduled)
        .filter_map(|e| e.detail.extra().delay_seconds)
        .collect();
    assert_eq!(delays, vec![1.0, 3.0, 5.0], "1, 1*3, min(9, 5)");
    let attempts: Vec<u32> = h
        .iter()
        .filter(|e| e.kind == EventKind::TaskScheduled)
        .filter_map(|e| e.detail.extra().attempt)
        .collect();
    assert_eq!(attempts, vec![0, 1, 2, 3]);
}

#[tokio::test]
async fn exhausted_retries_fall_through_to_catch_with_the_error_as_data() {
    let t = engine(
        json!([{"name": "bad", "invoker": "mock", "responses": [
            {"attempts": "*", "throw": {"error": "BookFlightError", "cause": "no seats"}}]}]),
        fast_config(),
    );
    let flow = t
        .deploy(json!({"name": "k", "root": {"start_at": "T", "states": [
            {"name": "T", "type": "task", "resource": "bad", "next": "Done",
             "retry": [{"errors": ["*"], "max_attempts": 1}],
             "catch": [
                {"errors": ["Unrelated"], "next": "Done"},
                {"errors": ["BookFlightError"], "next": "Compensate",
                 "output": {"code.$": "$result.error", "why.$": "$context.state.error.cause", "orig.$": "$input.order"}}
             ]},
            {"name": "Compensate", "type": "pass", "end": true},
            {"name": "Done", "type": "pass", "output": {"done": true}, "end": true}
        ]}}))
        .await;
    let rec = t.run(&flow, json!({"order": 7})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(
        output(&rec),
        json!({"code": "BookFlightError", "why": "no seats", "orig": 7})
    );
    let h = t.history(&rec).await;
    assert_eq!(
        h.iter().filter(|e| e.kind == EventKind::TaskFailed).count(),
        2
    );
    assert!(h.iter().any(|e| e.kind == EventKind::ErrorCaught
        && e.detail.extra().next.as_deref() == Some("Compensate")));
}

#[tokio::test]
async fn an_uncaught_error_fails_the_execution_with_its_name_and_cause() {
    let t = engine(
        json!([{"name": "bad", "invoker": "mock", "responses": [
            {"attempts": "*", "throw": {"error": "Boom", "cause": "exploded"}}]}]),
        fast_config(),
    );
    let flow = t
        .deploy(json!({"name": "u", "root": {"start_at": "T", "states": [
            {"name": "T", "type": "task", "resource": "bad", "end": true}]}}))
        .await;
    let rec = t.run(&flow, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(rec.error.as_deref(), Some("Boom"));
    assert_eq!(rec.cause.as_deref(), Some("exploded"));
    assert!(rec.output.is_none());
    let h = t.history(&rec).await;
    let last = h.last().unwrap();
    assert_eq!(last.kind, EventKind::ExecutionFailed);
    assert_eq!(
        last.detail.to_value(),
        json!({"error": "Boom", "cause": "exploded"})
    );
}

#[tokio::test]
async fn fail_and_succeed_states_end_their_scope() {
    let t = engine(json!([]), fast_config());
    let flow = t
        .deploy(json!({"name": "f", "root": {"start_at": "Pick", "states": [
            {"name": "Pick", "type": "choice", "rules": [{"condition": "$input.ok", "next": "Yes"}], "default": {"next": "No"}},
            {"name": "Yes", "type": "succeed", "next": "Never"},
            {"name": "No", "type": "fail", "error": "Rejected", "cause": "not ok"},
            {"name": "Never", "type": "fail"}
        ]}}))
        .await;
    let yes = t.run(&flow, json!({"ok": true})).await;
    assert_eq!(yes.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&yes), json!({"ok": true}));
    let no = t.run(&flow, json!({"ok": false})).await;
    assert_eq!(no.status, ExecutionStatus::Failed);
    assert_eq!(no.error.as_deref(), Some("Rejected"));
    assert_eq!(no.cause.as_deref(), Some("not ok"));
}

#[tokio::test]
async fn parallel_gives_branch_outputs_in_order() {
    let t = engine(
        json!([{"name": "slow", "invoker": "mock", "responses": [{"attempts": "*", "return": {"slow": 1}, "delay_ms": 30}]}]),
        fast_config(),
    );
    let flow = t
        .deploy(json!({"name": "par", "root": {"start_at": "P", "states": [
            {"name": "P", "type": "parallel", "end": true,
             "output": {"Branch0.$": "$result[0]", "Branch1.$": "$result[1]"},
             "branches": [
                {"start_at": "S", "states": [{"name": "S", "type": "task", "resource": "slow", "end": true}]},
                {"start_at": "F", "states": [{"name": "F", "type": "pass", "input": {"fast.$": "$input.x"}, "end": true}]}
             ]}]}}))
        .await;
    let rec = t.run(&flow, json!({"x": 2})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(
        output(&rec),
        json!({"Branch0": {"slow": 1}, "Branch1": {"fast": 2}})
    );
    let h = t.history(&rec).await;
    assert_eq!(
        h.iter()
            .filter(|e| e.kind == EventKind::BranchEntered)
            .count(),
        2
    );
    assert_eq!(
        h.iter()
            .filter(|e| e.kind == EventKind::BranchExited)
            .count(),
        2
    );
}

#[tokio::test]
async fn a_failing_branch_fails_the_parallel_and_cancels_its_siblings() {
    let t = engine(
        json!([
            {"name": "forever", "invoker": "mock", "responses": [{"attempts": "*", "return": {}, "delay_ms": 600000}]},
            {"name": "bad", "invoker": "mock", "responses": [{"attempts": "*", "throw": {"error": "BranchBoom", "cause": "x"}}]}
        ]),
        fast_config(),
    );
    let flow = t
        .deploy(json!({"name": "pf", "root": {"start_at": "P", "states": [
            {"name": "P", "type": "parallel", "next": "Unreached",
             "catch": [{"errors": ["BranchBoom"], "next": "Handled"}],
             "branches": [
                {"start_at": "Slow", "states": [{"name": "Slow", "type": "task", "resource": "forever", "end": true}]},
                {"start_at": "Bad", "states": [{"name": "Bad", "type": "task", "resource": "bad", "end": true}]}
             ]},
            {"name": "Unreached", "type": "pass", "end": true},
            {"name": "Handled", "type": "pass", "output": {"handled.$": "$input.error"}, "end": true}
        ]}}))
        .await;
    let rec = tokio::time::timeout(Duration::from_secs(30), t.run(&flow, json!({})))
        .await
        .expect("the slow sibling is cancelled, not awaited");
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"handled": "BranchBoom"}));
    let h = t.history(&rec).await;
    assert!(
        !h.iter().any(|e| e.kind == EventKind::TaskSucceeded),
        "the slow task never finished"
    );
}

/// Counts calls in flight to check concurrency bounds.
#[derive(Debug, Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

#[async_trait]
impl Invoker for Gauge {
    async fn invoke(&self, call: &Invocation<'_>) -> Result<Value, InvokeError> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(15)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        Ok(json!({"doubled": call.event["n"].as_i64().unwrap_or(0) * 2}))
    }
}

#[tokio::test]
async fn map_respects_its_concurrency_bound_and_keeps_item_order() {
    let gauge = Arc::new(Gauge::default());
    let t = with_bindings(
        vec![FunctionBinding {
            name: "double".into(),
            patterns: vec![],
            invoker: gauge.clone(),
        }],
        fast_config(),
    );
    let flow = t
        .deploy(json!({"name": "m", "root": {"start_at": "M", "states": [
            {"name": "M", "type": "map", "items": "$input.xs", "max_concurrency": 3,
             "item": {"n.$": "$item", "i.$": "$index"},
             "output": {"Items.$": "$result"}, "end": true,
             "processor": {"start_at": "D", "states": [{"name": "D", "type": "task", "resource": "double", "end": true}]}}
        ]}}))
        .await;
    let xs: Vec<i64> = (1..=10).collect();
    let rec = t.run(&flow, json!({"xs": xs})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    let expected: Vec<Value> = (1..=10).map(|n| json!({"doubled": n * 2})).collect();
    assert_eq!(output(&rec), json!({"Items": expected}));
    let max = gauge.max.load(Ordering::SeqCst);
    assert!(max <= 3, "at most 3 iterations ran at once, saw {max}");
    assert!(max >= 2, "iterations did run concurrently, saw {max}");
    let h = t.history(&rec).await;
    assert_eq!(
        h.iter()
            .filter(|e| e.kind == EventKind::IterationEntered)
            .count(),
        10
    );
}

#[tokio::test]
async fn map_without_a_bound_uses_the_engine_default() {
    let gauge = Arc::new(Gauge::default());
    let t = with_bindings(
        vec![FunctionBinding {
            name: "double".into(),
            patterns: vec![],
            invoker: gauge.clone(),
        }],
        EngineConfig {
            default_map_concurrency: 2,
            ..fast_config()
        },
    );
    let flow = t
        .deploy(json!({"name": "m2", "root": {"start_at": "M", "states": [
            {"name": "M", "type": "map", "items": "$input.xs", "item": {"n.$": "$item"}, "end": true,
             "processor": {"start_at": "D", "states": [{"name": "D", "type": "task", "resource": "double", "end": true}]}}
        ]}}))
        .await;
    let rec = t.run(&flow, json!({"xs": [1, 2, 3, 4, 5, 6]})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert!(gauge.max.load(Ordering::SeqCst) <= 2);
    let not_array = t.run(&flow, json!({"xs": {"a": 1}})).await;
    assert_eq!(not_array.status, ExecutionStatus::Failed);
    assert_eq!(not_array.error.as_deref(), Some("sys.Runtime"));
}

fn callback_flow(name: &str) -> Value {
    json!({"name": name, "root": {"start_at": "Ask", "states": [
        {"name": "Ask", "type": "task", "resource": "notify", "mode": "wait_for_callback",
         "parameters": {"token.$": "$context.state.task_token"}, "timeout_seconds": 30,
         "catch": [{"errors": ["Denied"], "next": "Refused"}], "end": true},
        {"name": "Refused", "type": "pass", "output": {"refused.$": "$input.cause"}, "end": true}
    ]}})
}

fn notify_mock() -> Value {
    json!([{"name": "notify", "invoker": "mock", "responses": [{"attempts": "*", "return": {}}]}])
}

#[tokio::test]
async fn a_long_poll_wakes_when_a_callback_completes_the_execution() {
    let t = engine(notify_mock(), fast_config());
    let flow = t.deploy(callback_flow("cb")).await;
    let started = t
        .engine
        .start(request(&flow, Some("e1"), json!({})))
        .await
        .unwrap();
    let token = t.token_of(&started.record).await;
    assert!(
        token.contains('='),
        "tokens look like the clouds' base64 tokens: {token}"
    );
    let engine = t.engine.clone();
    let id = started.record.id.clone();
    let poll =
        tokio::spawn(async move { engine.wait_execution(&id, Duration::from_secs(60)).await });
    let event_id = t
        .engine
        .report_success(&token, json!({"approved": true}))
        .await
        .unwrap();
    let rec = tokio::time::timeout(Duration::from_secs(30), poll)
        .await
        .expect("the long poll returned on completion")
        .unwrap()
        .unwrap();
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"approved": true}));
    let h = t.history(&rec).await;
    let succeeded = h
        .iter()
        .find(|e| e.kind == EventKind::TaskSucceeded)
        .unwrap();
    assert_eq!(
        succeeded.id, event_id,
        "the report answers with the id of the event it recorded"
    );
    assert!(matches!(
        t.engine.report_success(&token, json!({})).await,
        Err(ApiError::TaskAlreadyCompleted { .. })
    ));
    assert!(matches!(
        t.engine.report_success("no-such-token", json!({})).await,
        Err(ApiError::TaskNotFound { .. })
    ));
}

#[tokio::test]
async fn a_reported_failure_is_an_error_that_catch_policies_match() {
    let t = engine(notify_mock(), fast_config());
    let flow = t.deploy(callback_flow("cbf")).await;
    let started = t
        .engine
        .start(request(&flow, None, json!({})))
        .await
        .unwrap();
    let token = t.token_of(&started.record).await;
    t.engine
        .report_failure(&token, "Denied".into(), "manager said no".into())
        .await
        .unwrap();
    let rec = t
        .engine
        .wait_execution(&started.record.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"refused": "manager said no"}));
}

#[tokio::test]
async fn a_callback_wait_times_out_and_refuses_late_reports() {
    let t = engine(notify_mock(), fast_config());
    let mut flow = callback_flow("cbt");
    flow["root"]["states"][0]["timeout_seconds"] = json!(0.1);
    let flow = t.deploy(flow).await;
    let started = t
        .engine
        .start(request(&flow, None, json!({})))
        .await
        .unwrap();
    let token = t.token_of(&started.record).await;
    let rec = t
        .engine
        .wait_execution(&started.record.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(rec.error.as_deref(), Some("sys.TaskTimeout"));
    let h = t.history(&rec).await;
    assert!(h.iter().any(|e| e.kind == EventKind::TaskTimedOut));
    assert!(matches!(
        t.engine.report_success(&token, json!({})).await,
        Err(ApiError::TaskAlreadyCompleted { .. })
    ));
}

#[tokio::test]
async fn a_slow_function_times_out_and_the_timeout_can_be_retried() {
    let t = engine(
        json!([{"name": "slow", "invoker": "mock", "responses": [
            {"attempts": "0", "return": {}, "delay_ms": 60000},
            {"attempts": "1-", "return": {"second": true}}]}]),
        fast_config(),
    );
    let flow = t
        .deploy(json!({"name": "to", "root": {"start_at": "T", "states": [
            {"name": "T", "type": "task", "resource": "slow", "timeout_seconds": 0.05, "end": true,
             "retry": [{"errors": ["sys.TaskTimeout"], "max_attempts": 1}]}]}}))
        .await;
    let rec = t.run(&flow, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec), json!({"second": true}));
    let h = t.history(&rec).await;
    assert_eq!(
        h.iter()
            .filter(|e| e.kind == EventKind::TaskTimedOut)
            .count(),
        1
    );
}

#[tokio::test]
async fn an_unbound_function_fails_the_task() {
    let t = engine(json!([]), fast_config());
    let flow = t
        .deploy(json!({"name": "nf", "root": {"start_at": "T", "states": [
            {"name": "T", "type": "task", "resource": "acs:fc:::services/s/functions/missing", "end": true}]}}))
        .await;
    let rec = t.run(&flow, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(rec.error.as_deref(), Some("sys.FunctionNotFound"));
    assert!(rec.cause.unwrap().contains("missing"));
}

#[tokio::test]
async fn business_error_conditions_turn_results_into_errors() {
    let t = engine(
        json!([{"name": "pay", "invoker": "mock", "responses": [
            {"attempts": "0", "return": {"errorCode": 500}},
            {"attempts": "1-", "return": {"errorCode": 0, "paid": true}}]}]),
        fast_config(),
    );
    let flow = t
        .deploy(json!({"name": "biz", "root": {"start_at": "T", "states": [
            {"name": "T", "type": "task", "resource": "pay", "fail_when": "$result.errorCode != 0",
             "fail_error": "BusinessError", "end": true,
             "retry": [{"errors": ["*"], "condition": "$result.errorCode == 500", "max_attempts": 2}]}]}}))
        .await;
    let rec = t.run(&flow, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{rec:?}");
    assert_eq!(output(&rec)["paid"], json!(true));
}

#[tokio::test]
async fn stop_ends_a_running_execution_with_error_and_cause() {
    let t = engine(
        json!([]),
        EngineConfig {
            time_scale: 1.0,
            ..fast_config()
        },
    );
    let flow = t
        .deploy(json!({"name": "s", "root": {"start_at": "W", "states": [
            {"name": "W", "type": "wait", "seconds": 3600, "end": true}]}}))
        .await;
    let started = t
        .engine
        .start(request(&flow, Some("to-stop"), json!({})))
        .await
        .unwrap();
    assert_eq!(started.record.status, ExecutionStatus::Running);
    let rec = t
        .engine
        .stop(
            &started.record.id,
            Some("UserAbort".into()),
            Some("changed my mind".into()),
        )
        .await
        .unwrap();
    assert_eq!(rec.status, ExecutionStatus::Stopped);
    assert_eq!(rec.error.as_deref(), Some("UserAbort"));
    assert_eq!(rec.cause.as_deref(), Some("changed my mind"));
    assert!(rec.stopped.is_some());
    let h = t.history(&rec).await;
    assert_eq!(h.last().unwrap().kind, EventKind::ExecutionStopped);
    assert!(matches!(
        t.engine.stop(&rec.id, None, None).await,
        Err(ApiError::InvalidState { .. })
    ));
    assert_eq!(t.engine.running_count(), 0);
}

#[tokio::test]
async fn an_execution_past_its_timeout_is_timed_out() {
    let t = engine(
        json!([]),
        EngineConfig {
            time_scale: 1.0,
            ..fast_config()
        },
    );
    let flow = t
        .deploy(json!({"name": "slowflow", "timeout_seconds": 0.05, "root": {"start_at": "W", "states": [
            {"name": "W", "type": "wait", "seconds": 3600, "end": true}]}}))
        .await;
    let rec = t.run(&flow, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::TimedOut);
    assert_eq!(rec.error.as_deref(), Some("sys.ExecutionTimeout"));
    let h = t.history(&rec).await;
    assert_eq!(h.last().unwrap().kind, EventKind::ExecutionTimedOut);
}

#[tokio::test]
async fn express_executions_are_capped_by_the_express_timeout() {
    let t = engine(
        json!([]),
        EngineConfig {
            time_scale: 1.0,
            express_timeout_seconds: 0.05,
            ..fast_config()
        },
    );
    let flow = t
        .deploy(
            json!({"name": "ex", "mode": "Express", "root": {"start_at": "W", "states": [
            {"name": "W", "type": "wait", "seconds": 3600, "end": true}]}}),
        )
        .await;
    let rec = t.run(&flow, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::TimedOut);
}

#[tokio::test]
async fn names_are_idempotent_while_running_and_unique_once_finished() {
    let t = engine(
        json!([]),
        EngineConfig {
            time_scale: 1.0,
            ..fast_config()
        },
    );
    let flow = t
        .deploy(json!({"name": "idem", "root": {"start_at": "W", "states": [
            {"name": "W", "type": "wait", "seconds": 3600, "end": true}]}}))
        .await;
    let first = t
        .engine
        .start(request(&flow, Some("n1"), json!({"a": 1})))
        .await
        .unwrap();
    assert!(!first.existing);
    let again = t
        .engine
        .start(request(&flow, Some("n1"), json!({"a": 2})))
        .await
        .unwrap();
    assert!(again.existing);
    assert_eq!(again.record.id, first.record.id);
    t.engine.stop(&first.record.id, None, None).await.unwrap();
    let err = t
        .engine
        .start(request(&flow, Some("n1"), json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ApiError::ExecutionAlreadyExists {
            flow: "idem".into(),
            execution: "n1".into()
        }
    );

    let quick = t.deploy(pass_flow("quick")).await;
    let a = t
        .engine
        .start_sync(request(&quick, Some("same"), json!({"who": 1})), true)
        .await
        .unwrap();
    let b = t
        .engine
        .start_sync(request(&quick, Some("same"), json!({"who": 2})), true)
        .await
        .unwrap();
    assert!(a.name.starts_with("same:") && b.name.starts_with("same:"));
    assert_ne!(a.name, b.name, "sync starts add a unique suffix");
    let generated = t
        .engine
        .start(request(&quick, None, json!({"who": 3})))
        .await
        .unwrap();
    assert_eq!(
        generated.record.name.len(),
        36,
        "a generated name is a UUID"
    );
}

#[tokio::test]
async fn payload_limits_apply_to_inputs_and_state_outputs() {
    let t = engine(
        json!([]),
        EngineConfig {
            max_payload_bytes: 100,
            ..fast_config()
        },
    );
    let flow = t
        .deploy(json!({"name": "big", "root": {"start_at": "Grow", "states": [
            {"name": "Grow", "type": "pass", "output": {"a.$": "$input.s", "b.$": "$input.s", "c.$": "$input.s"}, "end": true}]}}))
        .await;
    let huge = "x".repeat(200);
    let err = t
        .engine
        .start(request(&flow, None, json!({"s": huge})))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::PayloadTooLarge { limit: 100, actual } if actual > 200));
    let rec = t.run(&flow, json!({"s": "y".repeat(30)})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(rec.error.as_deref(), Some("sys.PayloadTooLarge"));
    assert!(rec.cause.unwrap().contains("Grow"));
}

#[tokio::test]
async fn globals_and_local_accumulation_carry_data_across_states() {
    let t = engine(json!([]), fast_config());
    let flow = t
        .deploy(json!({"name": "g", "root": {"start_at": "A", "accumulate_local": true,
            "output": {"$expr": "$scope_local"}, "states": [
            {"name": "A", "type": "pass", "global": {"seen.$": "$input.v"}, "output": {"a": 1}, "next": "B"},
            {"name": "B", "type": "pass", "output": {"b.$": "$global.seen", "a_again.$": "$scope_local.a"}, "end": true}
        ]}}))
        .await;
    let rec = t.run(&flow, json!({"v": "kept"})).await;
    assert_eq!(output(&rec), json!({"a": 1, "b": "kept", "a_again": 1}));
}

#[tokio::test]
async fn history_and_listings_page_with_cursors_and_filters() {
    let t = engine(json!([]), fast_config());
    let flow = t.deploy(pass_flow("pg")).await;
    let rec = t.run(&flow, json!({"who": "x"})).await;
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = t.engine.history(&rec, after, 5).await.unwrap();
        assert!(page.items.len() <= 5);
        all.extend(page.items);
        match page.next {
            Some(n) => after = n.parse().unwrap(),
            None => break,
        }
    }
    assert_eq!(all.len() as u64, rec.event_count);

    for i in 0..5 {
        t.engine
            .start(request(&flow, Some(&format!("job-{i}")), json!({"who": i})))
            .await
            .unwrap();
    }
    for i in 0..5 {
        let r = t
            .engine
            .find_execution(&flow, &format!("job-{i}"))
            .await
            .unwrap();
        t.engine
            .wait_execution(&r.id, Duration::from_secs(10))
            .await
            .unwrap();
    }
    let filter = ExecutionFilter {
        name_prefix: Some("job-".into()),
        ..Default::default()
    };
    let p1 = t
        .engine
        .list_executions(&flow, &filter, None, 3)
        .await
        .unwrap();
    assert_eq!(p1.items.len(), 3);
    let p2 = t
        .engine
        .list_executions(&flow, &filter, p1.next.as_deref(), 3)
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 2);
    assert!(p2.next.is_none());
    let names: Vec<String> = p1
        .items
        .iter()
        .chain(&p2.items)
        .map(|r| r.name.to_string())
        .collect();
    assert_eq!(
        names,
        (0..5).map(|i| format!("job-{i}")).collect::<Vec<_>>()
    );
    let running = ExecutionFilter {
        status: Some(ExecutionStatus::Running),
        ..Default::default()
    };
    assert!(t
        .engine
        .list_executions(&flow, &running, None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(matches!(
        t.engine
            .list_executions(&flow, &filter, Some("bogus"), 3)
            .await,
        Err(ApiError::InvalidArgument { .. })
    ));
}

#[tokio::test]
async fn a_runaway_loop_fails_at_the_history_limit() {
    let t = engine(
        json!([]),
        EngineConfig {
            max_history_events: 40,
            ..fast_config()
        },
    );
    let flow = t
        .deploy(json!({"name": "loop", "root": {"start_at": "Again", "states": [
            {"name": "Again", "type": "choice", "rules": [{"condition": "true", "next": "Again"}]}]}}))
        .await;
    let rec = t.run(&flow, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed);
    assert_eq!(rec.error.as_deref(), Some("sys.HistoryLimitExceeded"));
    assert!(rec.event_count <= 41);
    let stored = t.engine.execution(&rec.id).await.unwrap();
    assert_eq!(rec, stored, "the sync answer counts only the events stored");
}

#[tokio::test]
async fn finished_express_executions_have_bounded_retention() {
    let t = engine(
        json!([]),
        EngineConfig {
            express_retention: 5,
            ..fast_config()
        },
    );
    let mut f = pass_flow("ret");
    f["mode"] = json!("Express");
    let flow = t.deploy(f).await;
    let mut last = None;
    for i in 0..50 {
        last = Some(t.run(&flow, json!({"who": i})).await);
    }
    assert_eq!(t.store.execution_count(), 5);
    let last = last.unwrap();
    assert_eq!(
        t.engine.execution(&last.id).await.unwrap().status,
        ExecutionStatus::Succeeded
    );
}

#[tokio::test]
async fn deleting_a_flow_stops_its_running_executions() {
    let t = engine(
        json!([]),
        EngineConfig {
            time_scale: 1.0,
            ..fast_config()
        },
    );
    let flow = t
        .deploy(json!({"name": "del", "root": {"start_at": "W", "states": [
            {"name": "W", "type": "wait", "seconds": 3600, "end": true}]}}))
        .await;
    let s = t
        .engine
        .start(request(&flow, None, json!({})))
        .await
        .unwrap();
    t.engine.delete_flow(&flow.key).await.unwrap();
    let rec = t
        .engine
        .wait_execution(&s.record.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(rec.status, ExecutionStatus::Stopped);
    assert!(matches!(
        t.engine.flow(&flow.key).await,
        Err(ApiError::FlowNotFound { .. })
    ));
}

/// Fails its first call, then echoes.
#[derive(Debug, Default)]
struct FailsOnce {
    calls: AtomicUsize,
}

#[async_trait]
impl Invoker for FailsOnce {
    async fn invoke(&self, call: &Invocation<'_>) -> Result<Value, InvokeError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(InvokeError::Function {
                error_type: "Flaky".into(),
                message: "first call fails".into(),
            });
        }
        Ok(json!({"echo": call.event}))
    }
}

#[tokio::test]
async fn a_failed_execution_is_retried_from_the_state_that_failed() {
    let t = with_bindings(
        vec![FunctionBinding {
            name: "flaky".into(),
            patterns: vec![],
            invoker: Arc::new(FailsOnce::default()),
        }],
        fast_config(),
    );
    let flow = t
        .deploy(
            json!({"name": "rf", "root": {"start_at": "Prep", "states": [
            {"name": "Prep", "type": "pass", "output": {"n.$": "$input.n"}, "next": "Call"},
            {"name": "Call", "type": "task", "resource": "flaky", "end": true}]}}),
        )
        .await;
    let started = t
        .engine
        .start(request(&flow, Some("r1"), json!({"n": 5})))
        .await
        .unwrap();
    let failed = t
        .engine
        .wait_execution(&started.record.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(failed.status, ExecutionStatus::Failed);
    let point = failed.retry_point.clone().expect("a retry point");
    assert_eq!(point.state, "Call");
    assert_eq!(*point.input, json!({"n": 5}));
    let events_before = failed.event_count;

    let reopened = t.engine.retry(&failed.id).await.unwrap();
    assert_eq!(reopened.status, ExecutionStatus::Running);
    assert!(reopened.error.is_none());
    let done = t
        .engine
        .wait_execution(&failed.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&done), json!({"echo": {"n": 5}}));
    let h = t.history(&done).await;
    assert!(done.event_count > events_before);
    let entered_prep = h
        .iter()
        .filter(|e| e.kind == EventKind::StateEntered && &*e.state == "Prep")
        .count();
    assert_eq!(
        entered_prep, 1,
        "the retry starts at the failed state, not the start"
    );
    assert_eq!(
        h.iter()
            .filter(|e| e.kind == EventKind::ExecutionFailed)
            .count(),
        1
    );
    assert_eq!(h.last().unwrap().kind, EventKind::ExecutionSucceeded);
    for w in h.windows(2) {
        assert!(w[1].id > w[0].id, "ids keep increasing across the retry");
    }
    assert!(matches!(
        t.engine.retry(&done.id).await,
        Err(ApiError::InvalidState { .. })
    ));
}

#[tokio::test]
async fn a_result_selector_reshapes_the_task_result_before_the_output() {
    let t = engine(
        json!([{"name": "fn", "invoker": "mock", "responses": [{"attempts": "*", "return": {"greeting": "hi"}}]}]),
        fast_config(),
    );
    let flow = t
        .deploy(json!({"name": "sel", "root": {"start_at": "T", "states": [
            {"name": "T", "type": "task", "resource": "fn", "result_selector": {"Body.$": "$result"},
             "output": {"g.$": "$result.Body.greeting"}, "end": true}]}}))
        .await;
    let rec = t.run(&flow, json!({})).await;
    assert_eq!(output(&rec), json!({"g": "hi"}));
}

#[tokio::test]
async fn a_waiting_callback_task_can_be_found_by_execution_and_state() {
    let t = engine(notify_mock(), fast_config());
    let flow = t.deploy(callback_flow("bystate")).await;
    let started = t
        .engine
        .start(request(&flow, None, json!({})))
        .await
        .unwrap();
    let token = t.token_of(&started.record).await;
    assert_eq!(
        t.engine.waiting_token(&started.record.id, "Ask"),
        Some(token.clone())
    );
    assert_eq!(t.engine.waiting_token(&started.record.id, "Other"), None);
    t.engine
        .report_success(&token, json!({"ok": 1}))
        .await
        .unwrap();
    assert_eq!(t.engine.waiting_token(&started.record.id, "Ask"), None);
}

#[tokio::test]
async fn a_child_execution_reports_its_result_to_the_parent_task_token() {
    let t = engine(notify_mock(), fast_config());
    let parent_flow = t.deploy(callback_flow("parent")).await;
    let child_flow = t.deploy(pass_flow("child")).await;
    let failing_child = t
        .deploy(
            json!({"name": "bad_child", "root": {"start_at": "F", "states": [
            {"name": "F", "type": "fail", "error": "Denied", "cause": "child says no"}]}}),
        )
        .await;

    let parent = t
        .engine
        .start(request(&parent_flow, None, json!({})))
        .await
        .unwrap();
    let token = t.token_of(&parent.record).await;
    let mut child = request(&child_flow, None, json!({"who": "kid"}));
    child.callback_token = Some(token);
    t.engine.start(child).await.unwrap();
    let done = t
        .engine
        .wait_execution(&parent.record.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&done), json!({"greeting": "hello kid", "step": "B"}));

    let parent = t
        .engine
        .start(request(&parent_flow, None, json!({})))
        .await
        .unwrap();
    let token = t.token_of(&parent.record).await;
    let mut child = request(&failing_child, None, json!({}));
    child.callback_token = Some(token);
    t.engine.start(child).await.unwrap();
    let done = t
        .engine
        .wait_execution(&parent.record.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        done.status,
        ExecutionStatus::Succeeded,
        "the parent caught the child's error"
    );
    assert_eq!(output(&done), json!({"refused": "child says no"}));
}

fn subflow_parent(name: &str, mode: &str, child: &str) -> Value {
    json!({"name": name, "root": {"start_at": "Call", "states": [
        {"name": "Call", "type": "task", "resource": "flow", "mode": mode,
         "parameters": {"flow": child, "input.$": "$input", "execution_name.$": "$input.run"},
         "catch": [{"errors": ["Denied"], "next": "Refused"},
                   {"errors": ["sys.Flow.FlowNotExists", "sys.Flow.ExecutionAlreadyExists"], "next": "StartFailed"}],
         "end": true},
        {"name": "Refused", "type": "pass", "output": {"refused.$": "$input.cause"}, "end": true},
        {"name": "StartFailed", "type": "pass", "output": {"start_failed.$": "$input.error"}, "end": true}
    ]}})
}

#[tokio::test]
async fn a_subflow_runs_to_its_end_and_its_output_or_error_comes_back() {
    let t = engine(notify_mock(), fast_config());
    t.deploy(pass_flow("kid")).await;
    t.deploy(
        json!({"name": "bad_kid", "root": {"start_at": "F", "states": [
        {"name": "F", "type": "fail", "error": "Denied", "cause": "kid says no"}]}}),
    )
    .await;
    let sync = t.deploy(subflow_parent("p_sync", "sync", "kid")).await;
    let rec = t.run(&sync, json!({"who": "ann", "run": "r1"})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{rec:?}");
    assert_eq!(output(&rec), json!({"greeting": "hello ann", "step": "B"}));

    let again = t.run(&sync, json!({"who": "ann", "run": "r1"})).await;
    assert_eq!(
        output(&again),
        json!({"start_failed": "sys.Flow.ExecutionAlreadyExists"})
    );

    let failing = t.deploy(subflow_parent("p_bad", "sync", "bad_kid")).await;
    let rec = t.run(&failing, json!({"run": "r2"})).await;
    assert_eq!(
        output(&rec),
        json!({"refused": "kid says no"}),
        "the child's error is catchable by name"
    );

    let missing = t
        .deploy(subflow_parent("p_missing", "sync", "nobody"))
        .await;
    let rec = t.run(&missing, json!({"run": "r3"})).await;
    assert_eq!(
        output(&rec),
        json!({"start_failed": "sys.Flow.FlowNotExists"})
    );
}

#[tokio::test]
async fn a_subflow_can_answer_at_once_or_complete_the_parent_through_its_token() {
    let t = engine(notify_mock(), fast_config());
    let kid = t.deploy(pass_flow("kid2")).await;
    let rr = t
        .deploy(subflow_parent("p_rr", "request_response", "kid2"))
        .await;
    let rec = t.run(&rr, json!({"who": "bo", "run": "k1"})).await;
    assert_eq!(output(&rec)["flow"], json!("kid2"));
    assert_eq!(output(&rec)["execution_name"], json!("k1"));
    let child = t.engine.find_execution(&kid, "k1").await.unwrap();
    let child = t
        .engine
        .wait_execution(&child.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(child.status, ExecutionStatus::Succeeded);
    assert_eq!(child.metadata["ParentExecutionId"], json!(rec.id));

    let cb = t
        .deploy(subflow_parent("p_cb", "wait_for_callback", "kid2"))
        .await;
    let rec = t.run(&cb, json!({"who": "cy", "run": "k2"})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(
        output(&rec),
        json!({"greeting": "hello cy", "step": "B"}),
        "the child completed the parent's task"
    );
}

#[tokio::test]
async fn a_subflow_of_another_namespace_runs_on_the_same_engine() {
    let t = engine(json!([]), fast_config());
    let text = pass_flow("hw").to_string();
    let flow = flowgate::canonical::compile(&text).unwrap();
    t.deploy_compiled(flow, &text, "huawei/p1", "huawei").await;
    let parent = t
        .deploy(subflow_parent("p_x", "sync", "huawei/p1/hw"))
        .await;
    let rec = t.run(&parent, json!({"who": "dee", "run": "x1"})).await;
    assert_eq!(output(&rec), json!({"greeting": "hello dee", "step": "B"}));
}

#[tokio::test]
async fn stopping_a_parent_that_waits_for_a_subflow_stops_the_child() {
    let t = engine(
        json!([]),
        EngineConfig {
            time_scale: 1.0,
            ..fast_config()
        },
    );
    let slow = t
        .deploy(
            json!({"name": "slow_kid", "root": {"start_at": "W", "states": [
            {"name": "W", "type": "wait", "seconds": 3600, "end": true}]}}),
        )
        .await;
    let parent = t.deploy(subflow_parent("p_stop", "sync", "slow_kid")).await;
    let started = t
        .engine
        .start(request(&parent, None, json!({"run": "s1"})))
        .await
        .unwrap();
    let child = loop {
        if let Ok(c) = t.engine.find_execution(&slow, "s1").await {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    t.engine.stop(&started.record.id, None, None).await.unwrap();
    let child = t
        .engine
        .wait_execution(&child.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        child.status,
        ExecutionStatus::Stopped,
        "the child was stopped with its parent"
    );
}

/// A sync start answers with exactly the record the store holds once the execution ended:
/// status, output or error, end time, event count and last update, for a flow that
/// succeeds, one that fails and one that calls a function.
#[tokio::test]
async fn a_sync_answer_is_the_stored_record() {
    let t = engine(
        json!([{"name": "greet", "invoker": "mock", "responses": [
            {"attempts": "*", "return": {"message": "hi"}}]}]),
        fast_config(),
    );
    let flows = [
        t.deploy(pass_flow("ok")).await,
        t.deploy(json!({"name": "no", "root": {"start_at": "No", "states": [
            {"name": "No", "type": "fail", "error": "Rejected", "cause": "not ok"}]}}))
            .await,
        t.deploy(json!({"name": "call", "root": {"start_at": "T", "states": [
            {"name": "T", "type": "task", "resource": "greet", "end": true}]}}))
            .await,
    ];
    for flow in &flows {
        let answer = t.run(flow, json!({"who": "x"})).await;
        assert!(answer.is_terminal(), "{answer:?}");
        let stored = t.engine.execution(&answer.id).await.unwrap();
        assert_eq!(answer, stored, "flow {}", flow.key.name);
        assert_eq!(answer.event_count, t.history(&answer).await.len() as u64);
    }
}

/// With a retention of one finished execution, 64 sync starts ending together all get
/// their answer, though the store has dropped most of their records by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_starts_answer_after_their_record_is_dropped() {
    let t = Arc::new(engine(
        json!([]),
        EngineConfig {
            express_retention: 1,
            standard_retention: 1,
            ..fast_config()
        },
    ));
    let flow = t.deploy(pass_flow("many")).await;
    let runs: Vec<_> = (0..64)
        .map(|i| {
            let (t, flow) = (t.clone(), flow.clone());
            tokio::spawn(async move {
                t.engine
                    .start_sync(request(&flow, None, json!({"who": i})), true)
                    .await
            })
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        let rec = run.await.unwrap().expect("a sync start answers");
        assert_eq!(rec.status, ExecutionStatus::Succeeded);
        assert_eq!(output(&rec)["greeting"], json!(format!("hello {i}")));
    }
    assert!(
        t.store.execution_count() <= 2,
        "retention keeps one of each mode"
    );
}

/// A function that holds every call until the test lets it go, so the test can look at the
/// store while a call is in progress.
#[derive(Debug, Default)]
struct Held {
    called: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[async_trait]
impl Invoker for Held {
    async fn invoke(&self, _call: &Invocation<'_>) -> Result<Value, InvokeError> {
        self.called.notify_one();
        self.release.notified().await;
        Ok(json!({"done": true}))
    }
}

/// A Standard execution has stored everything that led to a call before the call is made
/// (a restart finds it in the history); an Express one, kept in memory only, commits its
/// history at its end. Both end with the same complete history.
#[tokio::test]
async fn a_call_follows_its_stored_events_in_standard_mode_only() {
    let held = Arc::new(Held::default());
    let t = with_bindings(
        vec![FunctionBinding {
            name: "held".into(),
            patterns: vec![],
            invoker: held.clone(),
        }],
        fast_config(),
    );
    for (mode, stored_before_call) in [("Standard", 5), ("Express", 1)] {
        let flow = t
            .deploy(json!({"name": format!("held-{mode}"), "mode": mode, "root": {"start_at": "T", "states": [
                {"name": "T", "type": "task", "resource": "held", "end": true}]}}))
            .await;
        let started = t
            .engine
            .start(request(&flow, None, json!({})))
            .await
            .unwrap();
        held.called.notified().await;
        let during = t.history(&started.record).await;
        assert_eq!(
            kinds(&during).len(),
            stored_before_call,
            "{mode}: {:?}",
            kinds(&during)
        );
        held.release.notify_one();
        let end = t
            .engine
            .wait_execution(&started.record.id, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(end.status, ExecutionStatus::Succeeded, "{mode}");
        let after = kinds(&t.history(&end).await);
        assert_eq!(
            after,
            [
                EventKind::ExecutionStarted,
                EventKind::StateEntered,
                EventKind::StateStarted,
                EventKind::TaskScheduled,
                EventKind::TaskStarted,
                EventKind::TaskSucceeded,
                EventKind::StateSucceeded,
                EventKind::StateExited,
                EventKind::ExecutionSucceeded,
            ],
            "{mode}"
        );
    }
}
