//! Integration tests of the function invokers: the HTTP convention against a real local axum
//! server, the per-attempt mock, `[[functions]]` validation, and target resolution.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use flowgate::invoke::binding::{
    function_name, validate, FunctionConfig, InvokerKind, MockResponse,
};
use flowgate::invoke::http::HttpInvoker;
use flowgate::invoke::mock::{parse_attempts, AttemptSpec, MockInvoker};
use flowgate::invoke::{FunctionBinding, FunctionRegistry, Invocation, InvokeError, Invoker};

/// A call of `resource` with `event` (leaked: an invocation borrows its event, and these
/// tests build a few dozen).
fn invocation(resource: &str, event: Value, attempt: u32) -> Invocation<'_> {
    Invocation {
        resource,
        event: Box::leak(Box::new(event)),
        attempt,
        execution_id: "exec-123",
        execution_name: "my-execution",
        flow_name: "trip",
        state_name: "BookFlight",
        task_token: None,
        timeout: None,
    }
}

fn header_json(headers: &HeaderMap) -> Value {
    let mut out = serde_json::Map::new();
    for name in [
        "content-type",
        "authorization",
        "x-flowgate-execution-id",
        "x-flowgate-execution-name",
        "x-flowgate-flow",
        "x-flowgate-state",
        "x-flowgate-attempt",
        "x-flowgate-task-token",
    ] {
        let v = headers
            .get(name)
            .map(|v| Value::String(v.to_str().unwrap().to_string()));
        out.insert(name.to_string(), v.unwrap_or(Value::Null));
    }
    Value::Object(out)
}

/// A local function server with one route per behaviour of the HTTP convention.
async fn start_server() -> SocketAddr {
    let app = Router::new()
        .route(
            "/echo",
            post(|Json(event): Json<Value>| async move { Json(event) }),
        )
        .route(
            "/headers",
            post(|headers: HeaderMap| async move { Json(header_json(&headers)) }),
        )
        .route(
            "/error-header",
            post(|| async {
                (
                    [("x-flowgate-error-type", "ValidationError")],
                    Json(json!({"errorMessage": "amount must be positive"})),
                )
            }),
        )
        .route(
            "/error-header-text",
            post(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    [("x-flowgate-error-type", "PlainError")],
                    "plain text message",
                )
            }),
        )
        .route(
            "/error-header-message",
            post(|| async {
                (
                    [("x-flowgate-error-type", "OtherError")],
                    Json(json!({"message": "from message"})),
                )
            }),
        )
        .route(
            "/fc-error",
            post(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"errorType": "BookFlightError", "errorMessage": "no seats"})),
                )
            }),
        )
        .route(
            "/throttled",
            post(|| async { (StatusCode::TOO_MANY_REQUESTS, "slow down") }),
        )
        .route(
            "/unavailable",
            post(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance") }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Json(json!({"late": true}))
            }),
        )
        .route("/empty", post(|| async { StatusCode::OK }))
        .route("/text", post(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn http(addr: SocketAddr, path: &str) -> HttpInvoker {
    HttpInvoker::new("fn", &format!("http://{addr}{path}"), client()).unwrap()
}

fn invocation_code(r: Result<Value, InvokeError>) -> String {
    match r {
        Err(InvokeError::Invocation { code, .. }) => code,
        other => panic!("expected an invocation error, got {other:?}"),
    }
}

#[tokio::test]
async fn http_success_bodies() {
    let addr = start_server().await;
    let event = json!({"flight": "MU5100", "seats": [1, 2], "vip": true});
    let out = http(addr, "/echo")
        .invoke(&invocation("f", event.clone(), 0))
        .await;
    assert_eq!(out, Ok(event));
    let out = http(addr, "/empty")
        .invoke(&invocation("f", json!({}), 0))
        .await;
    assert_eq!(out, Ok(json!({})));
    let out = http(addr, "/text")
        .invoke(&invocation("f", json!({}), 0))
        .await;
    assert_eq!(out, Ok(json!("hello")));
}

#[tokio::test]
async fn http_forwards_context_headers() {
    let addr = start_server().await;
    let inv = http(addr, "/headers")
        .with_header("authorization", "Bearer secret")
        .unwrap()
        .with_header("x-flowgate-flow", "configured-value-is-overridden")
        .unwrap();
    let mut call = invocation("f", json!({}), 2);
    call.task_token = Some("tok-42");
    let got = inv.invoke(&call).await.unwrap();
    assert_eq!(
        got,
        json!({
            "content-type": "application/json",
            "authorization": "Bearer secret",
            "x-flowgate-execution-id": "exec-123",
            "x-flowgate-execution-name": "my-execution",
            "x-flowgate-flow": "trip",
            "x-flowgate-state": "BookFlight",
            "x-flowgate-attempt": "2",
            "x-flowgate-task-token": "tok-42",
        })
    );
    // Without a task token the header is absent.
    let got = inv.invoke(&invocation("f", json!({}), 0)).await.unwrap();
    assert_eq!(got["x-flowgate-task-token"], Value::Null);
    assert_eq!(got["x-flowgate-attempt"], json!("0"));
    // Header values are not leaked by Debug.
    assert!(!format!("{inv:?}").contains("secret"));
}

#[tokio::test]
async fn http_function_errors() {
    let addr = start_server().await;
    let call = invocation("f", json!({"amount": -1}), 0);
    assert_eq!(
        http(addr, "/error-header").invoke(&call).await,
        Err(InvokeError::Function {
            error_type: "ValidationError".to_string(),
            message: "amount must be positive".to_string()
        })
    );
    assert_eq!(
        http(addr, "/error-header-text").invoke(&call).await,
        Err(InvokeError::Function {
            error_type: "PlainError".to_string(),
            message: "plain text message".to_string()
        })
    );
    assert_eq!(
        http(addr, "/error-header-message").invoke(&call).await,
        Err(InvokeError::Function {
            error_type: "OtherError".to_string(),
            message: "from message".to_string()
        })
    );
    assert_eq!(
        http(addr, "/fc-error").invoke(&call).await,
        Err(InvokeError::Function {
            error_type: "BookFlightError".to_string(),
            message: "no seats".to_string()
        })
    );
}

#[tokio::test]
async fn http_invocation_errors() {
    let addr = start_server().await;
    let call = invocation("f", json!({}), 0);
    assert_eq!(
        invocation_code(http(addr, "/throttled").invoke(&call).await),
        "ResourceThrottled"
    );
    let unavailable = http(addr, "/unavailable").invoke(&call).await;
    assert!(
        matches!(&unavailable, Err(InvokeError::Invocation { message, .. }) if message.contains("down for maintenance"))
    );
    assert_eq!(invocation_code(unavailable), "InternalServerError");
    assert_eq!(
        invocation_code(http(addr, "/no-such-route").invoke(&call).await),
        "BadRequest"
    );

    // A port nobody listens on any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(
        invocation_code(http(closed, "/echo").invoke(&call).await),
        "Unreachable"
    );
}

#[tokio::test]
async fn http_timeouts() {
    let addr = start_server().await;
    // The task's timeout is shorter than the binding's.
    let mut call = invocation("f", json!({}), 0);
    call.timeout = Some(Duration::from_millis(200));
    assert_eq!(
        invocation_code(http(addr, "/slow").invoke(&call).await),
        "Timeout"
    );
    // The binding's timeout is shorter than the task's (or the task has none).
    let inv = http(addr, "/slow").with_timeout(Duration::from_millis(200));
    assert_eq!(inv.timeout(), Duration::from_millis(200));
    assert_eq!(
        invocation_code(inv.invoke(&invocation("f", json!({}), 0)).await),
        "Timeout"
    );
}

#[test]
fn http_invoker_rejects_bad_urls_and_headers() {
    assert!(HttpInvoker::new("f", "ftp://example.com/f", client()).is_err());
    assert!(HttpInvoker::new("f", "not a url", client()).is_err());
    let ok = HttpInvoker::new("f", "https://example.com/f", client()).unwrap();
    assert_eq!(ok.timeout(), HttpInvoker::DEFAULT_TIMEOUT);
    assert!(ok.with_header("bad header", "x").is_err());
}

fn mock() -> MockInvoker {
    MockInvoker::new(
        "bookFlight",
        vec![
            MockResponse::throwing("0", "FC.ResourceThrottled", "first call throttled"),
            MockResponse::returning("1-2", json!({"seat": "retry"})),
            MockResponse::throwing("3-", "BookFlightError", "no seats"),
        ],
    )
}

#[tokio::test]
async fn mock_selects_response_by_attempt() {
    let m = mock();
    let at = |n| invocation("bookFlight", json!({}), n);
    assert_eq!(
        m.invoke(&at(0)).await,
        Err(InvokeError::Function {
            error_type: "FC.ResourceThrottled".to_string(),
            message: "first call throttled".to_string()
        })
    );
    assert_eq!(m.invoke(&at(1)).await, Ok(json!({"seat": "retry"})));
    assert_eq!(m.invoke(&at(2)).await, Ok(json!({"seat": "retry"})));
    for n in [3, 4, 100] {
        assert_eq!(
            m.invoke(&at(n)).await,
            Err(InvokeError::Function {
                error_type: "BookFlightError".to_string(),
                message: "no seats".to_string()
            })
        );
    }
}

#[tokio::test]
async fn mock_first_match_wins_and_missing_attempts_fail() {
    // "*" after "0": attempt 0 takes the first, every other attempt the wildcard.
    let m = MockInvoker::new(
        "f",
        vec![
            MockResponse::returning("0", json!("first")),
            MockResponse::returning("*", json!("any")),
        ],
    );
    assert_eq!(
        m.invoke(&invocation("f", json!({}), 0)).await,
        Ok(json!("first"))
    );
    assert_eq!(
        m.invoke(&invocation("f", json!({}), 7)).await,
        Ok(json!("any"))
    );
    // A leading "*" shadows everything after it.
    let m = MockInvoker::new(
        "f",
        vec![
            MockResponse::returning("*", json!(1)),
            MockResponse::returning("0", json!(2)),
        ],
    );
    assert_eq!(m.invoke(&invocation("f", json!({}), 0)).await, Ok(json!(1)));
    // No response for attempt 1.
    let m = MockInvoker::new("validate", vec![MockResponse::returning("0", json!(null))]);
    assert_eq!(
        m.invoke(&invocation("f", json!({}), 0)).await,
        Ok(Value::Null)
    );
    assert_eq!(
        m.invoke(&invocation("f", json!({}), 1)).await,
        Err(InvokeError::Invocation {
            code: "MockNotFound".to_string(),
            message: "no mock response for attempt 1 of function validate".to_string()
        })
    );
}

#[tokio::test]
async fn mock_delay_exceeds_shorter_timeout() {
    let slow = MockInvoker::new(
        "f",
        vec![MockResponse::returning("*", json!("late")).delayed(10_000)],
    );
    let call = invocation("f", json!({}), 0);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), slow.invoke(&call))
            .await
            .is_err()
    );
    // A short delay still answers with the scripted value.
    let quick = MockInvoker::new(
        "f",
        vec![MockResponse::returning("*", json!("done")).delayed(10)],
    );
    assert_eq!(quick.invoke(&call).await, Ok(json!("done")));
}

#[test]
fn attempt_specs_parse() {
    assert_eq!(parse_attempts("0"), Ok(AttemptSpec::Exact(0)));
    assert_eq!(parse_attempts("1-2"), Ok(AttemptSpec::Range(1, 2)));
    assert_eq!(parse_attempts("3-"), Ok(AttemptSpec::From(3)));
    assert_eq!(parse_attempts("*"), Ok(AttemptSpec::Any));
    assert!(parse_attempts("2-1").is_err());
    assert!(parse_attempts("first").is_err());
}

fn configs(v: Value) -> Vec<FunctionConfig> {
    serde_json::from_value(v).unwrap()
}

#[test]
fn validation_reports_every_problem_with_its_path() {
    let functions = configs(json!([
        {"name": "", "invoker": "mock", "responses": [{"return": 1}]},
        {"name": "dup", "invoker": "mock", "responses": [
            {"attempts": "2-1", "return": 1},
            {"attempts": "0"},
            {"attempts": "*", "return": 1, "throw": {"error": "E"}}
        ]},
        {"name": "dup", "invoker": "mock"},
        {"name": "h1", "invoker": "http"},
        {"name": "h2", "invoker": "http", "url": "ftp://example.com/f", "timeout_seconds": 0},
        {"name": "h3", "invoker": "http", "url": "http://localhost:9/f", "timeout_seconds": -1, "matches": ["acs:fc:**"]},
        {"name": "fine", "invoker": "http", "url": "https://example.com/f", "timeout_seconds": 2.5,
         "headers": {"authorization": "Bearer x"}, "matches": ["acs:fc:*:*:services/demo/functions/*"]},
        {"name": "bad?*", "invoker": "mock", "responses": [{"throw": {"error": "E"}}]},
    ]));
    let problems = validate(&functions);
    let paths: BTreeSet<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
    let expected: BTreeSet<&str> = [
        "functions[0].name",
        "functions[1].responses[0].attempts",
        "functions[1].responses[1]",
        "functions[1].responses[2]",
        "functions[2].name",
        "functions[2].responses",
        "functions[3].url",
        "functions[4].url",
        "functions[4].timeout_seconds",
        "functions[5].timeout_seconds",
        "functions[5].matches[0]",
        "functions[7].name",
    ]
    .into_iter()
    .collect();
    assert_eq!(paths, expected, "{problems:#?}");
    assert!(problems
        .iter()
        .any(|(p, m)| p == "functions[2].name" && m.contains("duplicate")));
    assert!(problems.iter().all(|(_, m)| !m.is_empty()));
    // from_config refuses the same section with the same problems.
    assert_eq!(
        FunctionRegistry::from_config(&functions).unwrap_err(),
        problems
    );
    // The valid entry alone is accepted.
    assert!(validate(&functions[6..7]).is_empty());
}

#[test]
fn config_parsing() {
    // Unknown keys and wrongly-cased invoker kinds are rejected.
    assert!(serde_json::from_value::<FunctionConfig>(
        json!({"name": "f", "invoker": "mock", "respones": []})
    )
    .is_err());
    assert!(
        serde_json::from_value::<FunctionConfig>(json!({"name": "f", "invoker": "HTTP"})).is_err()
    );
    assert!(serde_json::from_value::<FunctionConfig>(json!({"invoker": "mock"})).is_err());
    // `return: null` is a response returning null, not a missing return.
    let f: FunctionConfig = serde_json::from_value(
        json!({"name": "f", "invoker": "mock", "responses": [{"return": null}]}),
    )
    .unwrap();
    assert_eq!(f.responses[0].ret, Some(Value::Null));
    assert_eq!(f.responses[0].attempts, "*");
    assert!(validate(std::slice::from_ref(&f)).is_empty());

    // The TOML form of the configuration file.
    #[derive(serde::Deserialize)]
    struct Root {
        functions: Vec<FunctionConfig>,
    }
    let toml = r#"
        [[functions]]
        name = "bookFlight"
        invoker = "mock"
        responses = [
          { attempts = "0", throw = { error = "FC.ResourceThrottled", cause = "busy" } },
          { attempts = "1-", return = { seat = "12A" }, delay_ms = 5 },
        ]

        [[functions]]
        name = "validate"
        matches = ["urn:fss:*:*:function:default:validate*"]
        invoker = "http"
        url = "http://127.0.0.1:9000/validate"
        timeout_seconds = 5
        headers = { authorization = "Bearer t" }
    "#;
    use figment::providers::Format;
    let root: Root = figment::Figment::from(figment::providers::Toml::string(toml))
        .extract()
        .unwrap();
    assert_eq!(root.functions.len(), 2);
    assert_eq!(root.functions[0].invoker, InvokerKind::Mock);
    assert_eq!(
        root.functions[0].responses[1].ret,
        Some(json!({"seat": "12A"}))
    );
    assert_eq!(
        root.functions[0].responses[0].throw.as_ref().unwrap().cause,
        "busy"
    );
    assert_eq!(root.functions[1].invoker, InvokerKind::Http);
    assert_eq!(root.functions[1].timeout_seconds, Some(5.0));
    assert!(validate(&root.functions).is_empty());
    // Round trip through Serialize.
    let back: Vec<FunctionConfig> =
        serde_json::from_value(serde_json::to_value(&root.functions).unwrap()).unwrap();
    assert_eq!(back, root.functions);
}

#[test]
fn function_names_from_targets() {
    assert_eq!(
        function_name("acs:fc:::services/trip/functions/bookFlight"),
        "bookFlight"
    );
    assert_eq!(
        function_name("acs:fc:cn-hangzhou:123:services/trip.LATEST/functions/bookFlight"),
        "bookFlight"
    );
    assert_eq!(
        function_name("acs:fc:cn-hangzhou:123456789:functions/myfn/LATEST"),
        "myfn"
    );
    assert_eq!(function_name("acs:fc:::functions/myfn"), "myfn");
    assert_eq!(
        function_name("urn:fss:cn-north-4:0123abcd:function:default:validate:latest"),
        "validate"
    );
    assert_eq!(
        function_name("urn:fss:::function:default:validate"),
        "validate"
    );
    assert_eq!(function_name("charge"), "charge");
    assert_eq!(function_name("acs:fnf:::flow/sub"), "acs:fnf:::flow/sub");
}

fn labelled(name: &str, patterns: &[&str]) -> FunctionBinding {
    FunctionBinding {
        name: name.to_string(),
        patterns: patterns.iter().map(|p| p.to_string()).collect(),
        invoker: Arc::new(MockInvoker::new(
            name,
            vec![MockResponse::returning("*", json!(name))],
        )),
    }
}

#[tokio::test]
async fn resolution_precedence() {
    let reg = FunctionRegistry::with(vec![
        labelled("book*", &[]),
        labelled("trip-glob", &["acs:fc:*:*:services/trip*/functions/*"]),
        labelled("trip-glob-2", &["acs:fc:*"]),
        labelled(
            "exact-target",
            &["acs:fc:cn-hangzhou:123:services/trip.LATEST/functions/bookFlight"],
        ),
        labelled("bookFlight", &[]),
        labelled("validate", &[]),
        labelled("myfn", &[]),
    ]);
    let resolved = |t: &str| reg.resolve(t).map(|b| b.name.clone());
    // 1. An exact pattern beats an earlier glob pattern.
    assert_eq!(
        resolved("acs:fc:cn-hangzhou:123:services/trip.LATEST/functions/bookFlight").as_deref(),
        Some("exact-target")
    );
    // 2. A glob pattern beats the function name; the first matching glob in config order wins.
    assert_eq!(
        resolved("acs:fc:::services/trip/functions/bookFlight").as_deref(),
        Some("trip-glob")
    );
    assert_eq!(
        resolved("acs:fc:::services/trip.v2/functions/cancel").as_deref(),
        Some("trip-glob")
    );
    assert_eq!(
        resolved("acs:fc:::services/other/functions/bookFlight").as_deref(),
        Some("trip-glob-2")
    );
    // 3./4. By name (here with no pattern matching), an exact name beats an earlier glob name.
    let reg = FunctionRegistry::with(vec![
        labelled("book*", &[]),
        labelled("bookFlight", &[]),
        labelled("validate", &[]),
        labelled("myfn", &[]),
    ]);
    let resolved = |t: &str| reg.resolve(t).map(|b| b.name.clone());
    assert_eq!(
        resolved("acs:fc:::services/trip/functions/bookFlight").as_deref(),
        Some("bookFlight")
    );
    assert_eq!(
        resolved("acs:fc:cn-shanghai:42:services/trip.LATEST/functions/bookFlight").as_deref(),
        Some("bookFlight")
    );
    assert_eq!(
        resolved("acs:fc:cn-hangzhou:123456789:functions/myfn/LATEST").as_deref(),
        Some("myfn")
    );
    assert_eq!(resolved("acs:fc:::functions/myfn").as_deref(), Some("myfn"));
    assert_eq!(
        resolved("urn:fss:cn-north-4:0123abcd:function:default:validate:latest").as_deref(),
        Some("validate")
    );
    assert_eq!(
        resolved("urn:fss:::function:default:bookFlight").as_deref(),
        Some("bookFlight")
    );
    assert_eq!(
        resolved("acs:fc:::services/trip/functions/bookHotel").as_deref(),
        Some("book*")
    );
    assert_eq!(resolved("bookTrain").as_deref(), Some("book*"));
    assert_eq!(resolved("validate").as_deref(), Some("validate"));
    // Unbound targets.
    assert_eq!(resolved("acs:fnf:::flow/sub"), None);
    assert_eq!(
        resolved("urn:fss:cn-north-4:p:function:default:charge:latest"),
        None
    );
    assert_eq!(
        FunctionRegistry::empty()
            .resolve("validate")
            .map(|b| b.name.clone()),
        None
    );
    // The resolved invoker is the binding's.
    let b = reg.resolve("acs:fc:::functions/myfn").unwrap();
    assert_eq!(
        b.invoker
            .invoke(&invocation("acs:fc:::functions/myfn", json!({}), 0))
            .await,
        Ok(json!("myfn"))
    );
}

#[tokio::test]
async fn registry_from_config_calls_bound_functions() {
    let addr = start_server().await;
    let functions = configs(json!([
        {"name": "bookFlight", "invoker": "mock", "responses": [
            {"attempts": "0", "throw": {"error": "FC.ResourceThrottled", "cause": "busy"}},
            {"attempts": "1-", "return": {"seat": "12A"}}
        ]},
        {"name": "echo", "invoker": "http", "url": format!("http://{addr}/echo"), "timeout_seconds": 5,
         "matches": ["urn:fss:*:*:function:default:echo*"]},
    ]));
    let reg = FunctionRegistry::from_config(&functions).unwrap();
    assert_eq!(reg.len(), 2);
    assert!(format!("{reg:?}").contains("bookFlight"));

    let target = "acs:fc:::services/trip/functions/bookFlight";
    let b = reg.resolve(target).unwrap();
    assert!(matches!(
        b.invoker.invoke(&invocation(target, json!({}), 0)).await,
        Err(InvokeError::Function { error_type, .. }) if error_type == "FC.ResourceThrottled"
    ));
    assert_eq!(
        b.invoker.invoke(&invocation(target, json!({}), 1)).await,
        Ok(json!({"seat": "12A"}))
    );

    let target = "urn:fss:cn-north-4:p:function:default:echo_v2:latest";
    let b = reg.resolve(target).unwrap();
    assert_eq!(b.name, "echo");
    assert_eq!(
        b.invoker
            .invoke(&invocation(target, json!({"x": 1}), 0))
            .await,
        Ok(json!({"x": 1}))
    );
}
