//! Mock test cases: a mock file scripts every task of an execution that names a test case in
//! its input, per attempt; unmapped tasks fail instead of calling anything.

mod support;

use std::time::Duration;

use flowgate::invoke::testcases::TestCases;
use flowgate::model::{ApiError, EventKind, ExecutionStatus};
use serde_json::{json, Value};
use support::{engine, fast_config, output, request};

fn mock_file() -> Value {
    json!({
        "StateMachines": {
            "trip": {"TestCases": {
                "HappyPath": {"BookFlight": "Booked"},
                "FlakyThenBooked": {"BookFlight": "BusyTwiceThenBooked"},
                "FlightFull": {"BookFlight": "NoSeats"},
                "Incomplete": {}
            }}
        },
        "MockedResponses": {
            "Booked": {"*": {"Return": {"seat": "12A"}}},
            "BusyTwiceThenBooked": {
                "0-1": {"Throw": {"Error": "Busy", "Cause": "try later"}},
                "2-": {"Return": {"seat": "14C"}}
            },
            "NoSeats": {"*": {"Throw": {"Error": "BookFlightError", "Cause": "no seats"}}}
        }
    })
}

fn trip() -> Value {
    json!({"name": "trip", "root": {"start_at": "BookFlight", "states": [
        {"name": "BookFlight", "type": "task", "resource": "acs:fc:::services/trip/functions/bookFlight",
         "retry": [{"errors": ["Busy"], "max_attempts": 3}],
         "catch": [{"errors": ["BookFlightError"], "next": "Failed"}], "end": true},
        {"name": "Failed", "type": "pass", "output": {"failed.$": "$input.cause"}, "end": true}
    ]}})
}

#[tokio::test]
async fn each_test_case_scripts_the_tasks_per_attempt_without_any_function_binding() {
    let cases = TestCases::from_value(mock_file()).unwrap();
    let mut t = engine(json!([]), fast_config());
    t.engine = t.engine.with_test_cases(cases);
    let flow = t.deploy(trip()).await;

    let happy = t
        .run(
            &flow,
            json!({"flowgate_test_case": "HappyPath", "who": "ann"}),
        )
        .await;
    assert_eq!(happy.status, ExecutionStatus::Succeeded);
    assert_eq!(output(&happy), json!({"seat": "12A"}));
    assert_eq!(
        *happy.input,
        json!({"who": "ann"}),
        "the selector is taken out of the input"
    );
    assert_eq!(happy.test_case.as_deref(), Some("HappyPath"));

    let flaky = t
        .run(&flow, json!({"flowgate_test_case": "FlakyThenBooked"}))
        .await;
    assert_eq!(output(&flaky), json!({"seat": "14C"}));
    let h = t.history(&flaky).await;
    assert_eq!(
        h.iter().filter(|e| e.kind == EventKind::TaskFailed).count(),
        2,
        "two mocked throws were retried"
    );

    let full = t
        .run(&flow, json!({"flowgate_test_case": "FlightFull"}))
        .await;
    assert_eq!(
        output(&full),
        json!({"failed": "no seats"}),
        "catch matched the mocked error type"
    );

    let incomplete = t
        .run(&flow, json!({"flowgate_test_case": "Incomplete"}))
        .await;
    assert_eq!(incomplete.status, ExecutionStatus::Failed);
    assert_eq!(incomplete.error.as_deref(), Some("sys.Invoke.MockNotFound"));
    assert!(incomplete.cause.unwrap().contains("BookFlight"));

    let unknown = t
        .engine
        .start(request(&flow, None, json!({"flowgate_test_case": "Nope"})))
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, ApiError::InvalidArgument { ref message } if message.contains("Nope"))
    );

    let without = t.run(&flow, json!({})).await;
    assert_eq!(
        without.error.as_deref(),
        Some("sys.FunctionNotFound"),
        "no case, no mock: the real binding rules apply"
    );
}

#[test]
fn a_broken_mock_file_reports_every_problem_with_its_path() {
    let problems = TestCases::from_value(json!({
        "StateMachines": {"f": {"TestCases": {"C": {"S": "Missing"}}}},
        "MockedResponses": {"R": {"x-y": {"Return": 1}, "0": {"Return": 1, "Throw": {"Error": "E"}}}}
    }))
    .unwrap_err();
    let joined = problems.join("\n");
    assert!(joined.contains("MockedResponses.R.x-y"), "{joined}");
    assert!(
        joined.contains("MockedResponses.R.0: needs exactly one of Return and Throw"),
        "{joined}"
    );
    assert!(
        joined.contains("StateMachines.f.TestCases.C.S: no MockedResponses entry named 'Missing'"),
        "{joined}"
    );
}

#[tokio::test]
async fn the_official_api_selects_a_test_case_through_the_input() {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mocks.yaml");
    std::fs::write(
        &path,
        "StateMachines:\n  trip_fdl:\n    TestCases:\n    FlightFull:\n      BookFlight: NoSeats\n",
    )
    .unwrap();
    // The YAML above is wrong on purpose (TestCases is empty, FlightFull a sibling): the
    // gateway must refuse to start and say where.
    let mut config = flowgate::config::Config::default();
    config.store = flowgate::config::StoreConfig::memory();
    config.flows.dir = None;
    config.mock_file = Some(path.clone());
    let err = flowgate::server::prepare(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("mocks.yaml"), "{err}");

    std::fs::write(
        &path,
        "StateMachines:\n  trip_fdl:\n    TestCases:\n      FlightFull:\n        BookFlight: NoSeats\nMockedResponses:\n  NoSeats:\n    '0':\n      Throw: {Error: BookFlightError, Cause: no seats}\n",
    )
    .unwrap();
    let mut config = flowgate::config::Config::default();
    config.store = flowgate::config::StoreConfig::memory();
    config.flows.dir = None;
    config.auth.mode = flowgate::config::AuthMode::Off;
    config.engine.time_scale = 0.0;
    config.mock_file = Some(path);
    let (state, dialects) = flowgate::server::prepare(config).await.unwrap();
    let router = flowgate::server::app(state, &dialects);
    let post = |query: String| {
        let router = router.clone();
        async move {
            let resp = router
                .oneshot(
                    Request::post(format!("/?{query}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        }
    };
    let enc = |pairs: &[(&str, &str)]| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().copied())
            .finish()
    };
    let def = "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: BookFlight\n    resourceArn: acs:fc:::services/trip/functions/bookFlight\n    catch:\n      - errors: [BookFlightError]\n        goto: Failed\n  - type: succeed\n    name: Done\n  - type: fail\n    name: Failed\n    error: OrderFailed\n    cause: no seats left\n";
    let v = post(enc(&[
        ("Action", "CreateFlow"),
        ("Version", "2019-03-15"),
        ("Name", "trip_fdl"),
        ("Definition", def),
        ("Description", "d"),
        ("Type", "FDL"),
    ]))
    .await;
    assert_eq!(v["Name"], "trip_fdl", "{v}");
    let v = post(enc(&[
        ("Action", "StartExecution"),
        ("Version", "2019-03-15"),
        ("FlowName", "trip_fdl"),
        ("ExecutionName", "t1"),
        ("Input", "{\"flowgate_test_case\": \"FlightFull\"}"),
    ]))
    .await;
    assert_eq!(v["Name"], "t1", "{v}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = post(enc(&[
            ("Action", "DescribeExecution"),
            ("Version", "2019-03-15"),
            ("FlowName", "trip_fdl"),
            ("ExecutionName", "t1"),
            ("WaitTimeSeconds", "5"),
        ]))
        .await;
        if v["Status"] != "Running" || std::time::Instant::now() > deadline {
            assert_eq!(v["Status"], "Failed", "{v}");
            break;
        }
    }
}
