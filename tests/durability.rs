//! Crash tests with the real binary on the default SQLite store: Standard executions that
//! wait, wait for a callback, back off in a retry or are in the middle of a call; `kill -9`;
//! restart; every execution finishes with the right output and history, and nothing that was
//! answered with success is lost (a start, a stop, a report).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::gateway::{
    calls_of, deploy, output, setup, start, time_of, until_crash_ready, wait_for_file, Gateway,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_executions_finish_after_kill_9() {
    let (dir, calls, tokens) = setup();
    let gw = Gateway::start(dir.path()).await;
    deploy(&gw).await;

    let waits = start(&gw, "waits", "w1").await;
    start(&gw, "globals", "g1").await;
    start(&gw, "callback", "c1").await;
    start(&gw, "retries", "r1").await;
    start(&gw, "slow", "s1").await;
    start(&gw, "long", "l1").await;
    let token = wait_for_file(&tokens.join("c1"), Duration::from_secs(10)).await;
    // The retry's first call failed and its 3 s back-off began; the slow call is running.
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls_of(&calls, "r1").is_empty() || calls_of(&calls, "s1").is_empty() {
        assert!(Instant::now() < deadline, "the calls never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A crash before the retry's failure and the Waits are stored would (rightly) run them
    // again: wait for the store.
    until_crash_ready(&gw).await;
    // A stop answered with success survives the crash.
    gw.rpc(
        "StopExecution",
        &[
            ("FlowName", "long"),
            ("ExecutionName", "l1"),
            ("Error", "Halt"),
            ("Cause", "stopped before the crash"),
        ],
    )
    .await;
    let w1 = gw.describe("waits", "w1").await;
    assert_eq!(waits["Status"], "Running");
    gw.kill9();

    let gw = Gateway::start(dir.path()).await;
    // The Wait keeps its original deadline: 3 s after it started, not after the restart.
    let w = gw.finish("waits", "w1", Duration::from_secs(30)).await;
    assert_eq!(w["Status"], "Succeeded", "{w}");
    assert_eq!(output(&w), json!({"done": true, "seen": {"order": 7}}));
    let waited = time_of(&w, "StoppedTime") - time_of(&w1, "StartedTime");
    assert!(
        waited >= chrono::Duration::milliseconds(2900),
        "the wait ended early: {waited}"
    );

    // `$global` set before the crash is still there after it.
    let g = gw.finish("globals", "g1", Duration::from_secs(30)).await;
    assert_eq!(g["Status"], "Succeeded", "{g}");
    assert_eq!(output(&g), json!({"remembered": 7}), "{g}");

    // The callback task kept its token: a report made after the restart lands.
    let report = gw
        .rpc(
            "ReportTaskSucceeded",
            &[("TaskToken", &token), ("Output", r#"{"approved":true}"#)],
        )
        .await;
    assert!(report["EventId"].as_i64().unwrap_or(0) > 0, "{report}");
    let c = gw.finish("callback", "c1", Duration::from_secs(30)).await;
    assert_eq!(c["Status"], "Succeeded", "{c}");
    assert_eq!(output(&c)["seen"]["approved"], json!(true), "{c}");
    assert_eq!(
        calls_of(&calls, "c1").len(),
        1,
        "a callback task whose call returned is not called again"
    );

    // The retry carried on: attempt 1 ran after the back-off, counted as the first retry.
    let r = gw.finish("retries", "r1", Duration::from_secs(30)).await;
    assert_eq!(r["Status"], "Succeeded", "{r}");
    assert_eq!(output(&r)["seen"]["attempts"], json!(1), "{r}");
    assert_eq!(
        calls_of(&calls, "r1"),
        ["r1 Flaky 0", "r1 Flaky 1"],
        "one failed call, one retry"
    );

    // The call in flight at the crash ran again (at least once), and the history shows it.
    let s = gw.finish("slow", "s1", Duration::from_secs(30)).await;
    assert_eq!(s["Status"], "Succeeded", "{s}");
    assert_eq!(output(&s)["seen"]["Body"]["slow"], json!(true), "{s}");
    assert_eq!(
        calls_of(&calls, "s1").len(),
        2,
        "the interrupted call ran again"
    );
    let scheduled = gw
        .history("slow", "s1")
        .await
        .iter()
        .filter(|e| e["Type"] == "TaskScheduled")
        .count();
    assert_eq!(scheduled, 2, "both calls are in the history");

    // The stop answered before the crash still holds.
    let l = gw.describe("long", "l1").await;
    assert_eq!(l["Status"], "Stopped", "{l}");
    gw.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_answered_is_lost() {
    let (dir, _calls, tokens) = setup();
    let gw = Gateway::start(dir.path()).await;
    deploy(&gw).await;
    // Many starts, the crash right after the last answer.
    let n = 40;
    for i in 0..n {
        start(&gw, "waits", &format!("w{i}")).await;
    }
    start(&gw, "callback", "c2").await;
    let token = wait_for_file(&tokens.join("c2"), Duration::from_secs(10)).await;
    // A report answered with success, then the crash at once.
    gw.rpc(
        "ReportTaskSucceeded",
        &[("TaskToken", &token), ("Output", r#"{"approved":"yes"}"#)],
    )
    .await;
    gw.kill9();

    let gw = Gateway::start(dir.path()).await;
    for i in 0..n {
        let d = gw
            .finish("waits", &format!("w{i}"), Duration::from_secs(30))
            .await;
        assert_eq!(d["Status"], "Succeeded", "w{i}: {d}");
    }
    let c = gw.finish("callback", "c2", Duration::from_secs(30)).await;
    assert_eq!(c["Status"], "Succeeded", "{c}");
    assert_eq!(output(&c)["seen"]["approved"], json!("yes"), "{c}");
    // The token is spent: a second report is refused.
    let (status, body) = gw
        .try_rpc(
            "ReportTaskSucceeded",
            &[("TaskToken", &token), ("Output", "{}")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let listed = gw
        .rpc("ListExecutions", &[("FlowName", "waits"), ("Limit", "100")])
        .await;
    assert_eq!(
        listed["Executions"].as_array().map(Vec::len),
        Some(n),
        "{listed}"
    );
    gw.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_and_finished_executions_survive_a_clean_restart() {
    let (dir, _calls, _tokens) = setup();
    let gw = Gateway::start(dir.path()).await;
    deploy(&gw).await;
    start(&gw, "waits", "done1").await;
    let d = gw.finish("waits", "done1", Duration::from_secs(30)).await;
    assert_eq!(d["Status"], "Succeeded");
    let events = gw.history("waits", "done1").await;
    drop(gw); // SIGKILL too; nothing is running
    let gw = Gateway::start(dir.path()).await;
    let again = gw.describe("waits", "done1").await;
    assert_eq!(again["Status"], "Succeeded");
    assert_eq!(again["Output"], d["Output"]);
    assert_eq!(gw.history("waits", "done1").await, events);
    let flows = gw.rpc("ListFlows", &[("Limit", "100")]).await;
    assert_eq!(flows["Flows"].as_array().map(Vec::len), Some(6), "{flows}");
    // An execution name is still taken after the restart.
    let (status, body) = gw
        .try_rpc(
            "StartExecution",
            &[("FlowName", "waits"), ("ExecutionName", "done1")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
}
