//! Alibaba schedules fire for real: a 6-field cron (seconds first) starts executions with the
//! schedule's Payload as input, and a disabled schedule starts none.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use flowgate::config::{AuthMode, Config};
use flowgate::server::{app, prepare};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn call(router: &axum::Router, action: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("Action", action), ("Version", "2019-03-15")];
    all.extend_from_slice(params);
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(all)
        .finish();
    let req = Request::post(format!("/?{query}"))
        .body(Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

const FLOW: &str = "version: v1\ntype: flow\nsteps:\n  - type: pass\n    name: p\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enabled_schedule_starts_executions_with_its_payload_and_a_disabled_one_does_not() {
    let mut config = Config::default();
    config.store = flowgate::config::StoreConfig::memory();
    config.flows.dir = None;
    config.auth.mode = AuthMode::Off;
    config.engine.time_scale = 0.0;
    let (state, dialects) = prepare(config).await.unwrap();
    let router = app(state, &dialects);
    for name in ["ticking", "quiet"] {
        let (s, v) = call(
            &router,
            "CreateFlow",
            &[
                ("Name", name),
                ("Definition", FLOW),
                ("Description", "d"),
                ("Type", "FDL"),
            ],
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, v) = call(
        &router,
        "CreateSchedule",
        &[
            ("FlowName", "ticking"),
            ("ScheduleName", "every_second"),
            ("CronExpression", "* * * * * *"),
            ("Enable", "True"),
            ("Payload", "{\"tick\": true}"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["Enable"], true);
    let (s, v) = call(
        &router,
        "CreateSchedule",
        &[
            ("FlowName", "quiet"),
            ("ScheduleName", "off"),
            ("CronExpression", "* * * * * *"),
            ("Enable", "false"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let executions = loop {
        let (_, v) = call(&router, "ListExecutions", &[("FlowName", "ticking")]).await;
        let list = v["Executions"].as_array().cloned().unwrap_or_default();
        if list.len() >= 2 || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        executions.len() >= 2,
        "the schedule fired at least twice in 10 s: {executions:?}"
    );
    assert_eq!(executions[0]["Input"], "{\"tick\":true}");
    let (_, v) = call(&router, "ListExecutions", &[("FlowName", "quiet")]).await;
    assert_eq!(
        v["Executions"],
        Value::Array(vec![]),
        "a disabled schedule starts nothing"
    );

    let (s, _) = call(
        &router,
        "UpdateSchedule",
        &[
            ("FlowName", "ticking"),
            ("ScheduleName", "every_second"),
            ("Enable", "false"),
        ],
    )
    .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (_, before) = call(&router, "ListExecutions", &[("FlowName", "ticking")]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, after) = call(&router, "ListExecutions", &[("FlowName", "ticking")]).await;
    assert_eq!(
        before["Executions"].as_array().map(Vec::len),
        after["Executions"].as_array().map(Vec::len),
        "a disabled schedule stops firing"
    );
}
