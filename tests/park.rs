//! Parked executions: a long top-level Wait gives its run's memory back and wakes up at its
//! deadline, and nothing of it shows (history, answers, timing, stop, long polls, timeouts).

mod support;

use std::time::{Duration, Instant};

use flowgate::engine::EngineConfig;
use flowgate::model::{Event, ExecutionStatus};
use serde_json::{json, Value};
use support::{engine, output, request, TestEngine};

/// Real time, parking every top-level Wait of at least `park_after` seconds.
fn parking(park_after: f64) -> TestEngine {
    engine(
        json!([]),
        EngineConfig {
            time_scale: 1.0,
            park_waits_after_seconds: park_after,
            ..EngineConfig::default()
        },
    )
}

/// A flow whose states around the Wait read `$context`, `$global` and transform data, so a
/// replay that numbered or evaluated anything differently would show in the history.
fn wait_flow(name: &str, seconds: f64) -> Value {
    json!({
        "name": name,
        "root": {"start_at": "A", "states": [
            {"name": "A", "type": "pass", "output": {"n.$": "$input.n", "a": true},
             "global": {"seen.$": "$input.n"}, "next": "W"},
            {"name": "W", "type": "wait", "seconds": seconds,
             "input": {"n.$": "$input.n", "event.$": "$context.state.event_id"},
             "output": {"n.$": "$input.n", "event.$": "$input.event", "g.$": "$global.seen"},
             "next": "B"},
            {"name": "B", "type": "pass", "output": {"done.$": "$input", "at.$": "$context.state.event_id"}, "end": true}
        ]}
    })
}

/// An event with its times left out (the only things two runs may differ in: when it
/// happened, and for a WaitStarted the deadline).
fn timeless(e: &Event) -> Value {
    let mut v = serde_json::to_value(e).unwrap();
    v.as_object_mut().unwrap().remove("time");
    if let Some(detail) = v["detail"].as_object_mut() {
        detail.remove("until");
    }
    v
}

async fn wait_until_parked(t: &TestEngine, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.engine.parked_count() < n {
        assert!(Instant::now() < deadline, "the execution did not park");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_parked_wait_keeps_the_history_output_and_timing_of_one_that_sleeps() {
    let never = parking(1e9);
    let park = parking(0.2);
    let mut histories = Vec::new();
    for t in [&never, &park] {
        let flow = t.deploy(wait_flow("w", 0.6)).await;
        let began = Instant::now();
        let started = t
            .engine
            .start(request(&flow, Some("one"), json!({"n": 7})))
            .await
            .unwrap();
        if std::ptr::eq(t, &park) {
            wait_until_parked(t, 1).await;
            assert_eq!(t.engine.running_count(), 1, "a parked execution still runs");
            assert_eq!(t.store.timers_len(), 1, "the parked wait is a timer record");
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(
                t.engine.parked_count(),
                0,
                "an infinite threshold never parks"
            );
        }
        let rec = t
            .engine
            .wait_execution(&started.record.id, Duration::from_secs(5))
            .await
            .unwrap();
        let took = began.elapsed();
        assert_eq!(rec.status, ExecutionStatus::Succeeded);
        assert!(
            took >= Duration::from_millis(600),
            "the wait lasted its 0.6 s ({took:?})"
        );
        assert!(
            took < Duration::from_secs(3),
            "and not much longer ({took:?})"
        );
        assert_eq!(
            output(&rec),
            json!({"done": {"n": 7, "event": 6, "g": 7}, "at": 13})
        );
        assert_eq!(t.engine.running_count(), 0);
        assert_eq!(t.engine.parked_count(), 0);
        assert_eq!(t.store.timers_len(), 0, "no timer record is left behind");
        let h = t.history(&rec).await;
        histories.push(h.iter().map(timeless).collect::<Vec<_>>());
    }
    assert_eq!(
        histories[0], histories[1],
        "the parked run recorded exactly what the sleeping run did"
    );
}

#[tokio::test]
async fn stopping_a_parked_execution_ends_it_at_once_as_a_sleeping_one_would() {
    let never = parking(1e9);
    let park = parking(0.0);
    let mut histories = Vec::new();
    let mut last_id = String::new();
    for t in [&never, &park] {
        let flow = t.deploy(wait_flow("w", 3600.0)).await;
        let started = t
            .engine
            .start(request(&flow, Some("s"), json!({"n": 1})))
            .await
            .unwrap();
        if std::ptr::eq(t, &park) {
            wait_until_parked(t, 1).await;
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let began = Instant::now();
        let stopped = t
            .engine
            .stop(
                &started.record.id,
                Some("Halt".into()),
                Some("by test".into()),
            )
            .await
            .unwrap();
        assert!(began.elapsed() < Duration::from_secs(2));
        assert_eq!(stopped.status, ExecutionStatus::Stopped);
        assert_eq!(stopped.error.as_deref(), Some("Halt"));
        assert_eq!(t.engine.running_count(), 0);
        assert_eq!(
            t.store.timers_len(),
            0,
            "the stopped wait's timer is removed"
        );
        histories.push(
            t.history(&stopped)
                .await
                .iter()
                .map(timeless)
                .collect::<Vec<_>>(),
        );
        last_id = stopped.id.to_string();
    }
    assert_eq!(histories[0], histories[1]);
    let again = park.engine.stop(&last_id, None, None).await;
    assert!(
        again.is_err(),
        "a stopped execution cannot be stopped again"
    );
}

#[tokio::test]
async fn long_polls_wake_when_a_parked_execution_ends() {
    let t = parking(0.0);
    let flow = t.deploy(wait_flow("w", 0.3)).await;
    let started = t
        .engine
        .start(request(&flow, None, json!({"n": 2})))
        .await
        .unwrap();
    wait_until_parked(&t, 1).await;
    let began = Instant::now();
    let rec = t
        .engine
        .wait_execution(&started.record.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "the long poll woke at the end, not at its 30 s limit"
    );
}

#[tokio::test]
async fn a_sync_start_answers_after_its_parked_wait() {
    let t = parking(0.0);
    let mut flow = wait_flow("x", 0.3);
    flow["mode"] = json!("Express");
    let flow = t.deploy(flow).await;
    let engine = t.engine.clone();
    let sync = tokio::spawn(async move {
        engine
            .start_sync(request(&flow, Some("sync"), json!({"n": 3})), true)
            .await
    });
    wait_until_parked(&t, 1).await;
    assert!(
        !sync.is_finished(),
        "the sync start waits while its execution is parked"
    );
    let rec = sync.await.unwrap().unwrap();
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec)["done"]["n"], json!(3));
    let stored = t.engine.execution(&rec.id).await.unwrap();
    assert_eq!(rec, stored, "the answer is the record the store holds");
}

#[tokio::test]
async fn the_execution_timeout_ends_a_parked_execution_on_time() {
    let t = parking(0.0);
    let mut flow = wait_flow("t", 3600.0);
    flow["timeout_seconds"] = json!(0.3);
    let flow = t.deploy(flow).await;
    let began = Instant::now();
    let rec = t.run(&flow, json!({"n": 4})).await;
    assert_eq!(rec.status, ExecutionStatus::TimedOut);
    assert!(began.elapsed() < Duration::from_secs(5));
    assert_eq!(t.engine.parked_count(), 0);
    assert_eq!(t.store.timers_len(), 0);
}

#[tokio::test]
async fn waits_inside_a_parallel_and_short_waits_do_not_park() {
    let t = parking(0.5);
    let flow = t
        .deploy(json!({"name": "p", "root": {"start_at": "Short", "states": [
            {"name": "Short", "type": "wait", "seconds": 0.1, "next": "P"},
            {"name": "P", "type": "parallel", "branches": [
                {"start_at": "W", "states": [{"name": "W", "type": "wait", "seconds": 1, "end": true}]}
            ], "end": true}
        ]}}))
        .await;
    let started = t
        .engine
        .start(request(&flow, None, json!({})))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_millis(700);
    while Instant::now() < deadline {
        assert_eq!(t.engine.parked_count(), 0, "a nested Wait never parks");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rec = t
        .engine
        .wait_execution(&started.record.id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
}

#[tokio::test]
async fn deleting_the_flow_stops_its_parked_executions() {
    let t = parking(0.0);
    let flow = t.deploy(wait_flow("d", 3600.0)).await;
    for i in 0..3 {
        t.engine
            .start(request(&flow, Some(&format!("e{i}")), json!({"n": i})))
            .await
            .unwrap();
    }
    wait_until_parked(&t, 3).await;
    t.engine.delete_flow(&flow.key).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.engine.running_count() > 0 {
        assert!(
            Instant::now() < deadline,
            "the parked executions were not stopped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(t.store.timers_len(), 0);
}

#[tokio::test]
async fn a_sync_start_whose_caller_goes_away_still_runs_to_its_end() {
    // Not parked (the threshold is never reached): the run is on the caller's task, and
    // dropping that task must hand the rest of the run to a task of its own.
    let t = parking(1e9);
    let mut flow = wait_flow("gone", 0.3);
    flow["mode"] = json!("Express");
    let flow = t.deploy(flow).await;
    let engine = t.engine.clone();
    let request_flow = flow.clone();
    let caller = tokio::spawn(async move {
        engine
            .start_sync(request(&request_flow, Some("left"), json!({"n": 5})), false)
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    let rec = t.engine.find_execution(&flow, "left").await.unwrap();
    assert_eq!(rec.status, ExecutionStatus::Running, "it was mid-Wait");
    let rec = t
        .engine
        .wait_execution(&rec.id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(rec.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&rec)["done"]["n"], json!(5));
}
