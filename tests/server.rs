//! The axum app, driven without a socket, and config-driven flow deployment.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use flowgate::config::Config;
use flowgate::server::{app, prepare};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get(app: axum::Router, path: &str) -> (StatusCode, serde_json::Value) {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

/// Sends one request through the app; the answer's status and JSON body.
async fn send(app: axum::Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn health_answers_ok_and_unknown_paths_get_json_404() {
    let mut config = Config::default();
    config.store = flowgate::config::StoreConfig::memory();
    config.flows.dir = None;
    let (state, dialects) = prepare(config).await.unwrap();
    let router = app(state, &dialects);
    let (status, body) = get(router.clone(), "/_flowgate/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let (status, body) = get(router, "/_flowgate/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn flows_in_the_flows_directory_are_deployed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("canonical")).unwrap();
    std::fs::write(
        dir.path().join("canonical/greet.json"),
        r#"{"name": "ignored", "root": {"start_at": "A", "states": [{"name": "A", "type": "pass", "end": true}]}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("top.json"),
        r#"{"name": "top", "root": {"start_at": "A", "states": [{"name": "A", "type": "succeed"}]}}"#,
    )
    .unwrap();
    let mut config = Config::default();
    config.store = flowgate::config::StoreConfig::memory();
    config.flows.dir = Some(dir.path().to_path_buf());
    let (state, _) = prepare(config).await.unwrap();
    let key = flowgate::model::execution::FlowKey::new("canonical", "greet");
    let flow = state.engine.flow(&key).await.unwrap();
    assert_eq!(flow.flow.name, "greet", "the file name names the flow");
    let top = flowgate::model::execution::FlowKey::new("canonical", "top");
    assert!(
        state.engine.flow(&top).await.is_ok(),
        "a top-level file is recognised by content"
    );
}

#[tokio::test]
async fn a_broken_flow_file_stops_start_up_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("canonical")).unwrap();
    std::fs::write(
        dir.path().join("canonical/bad.json"),
        r#"{"name": "bad", "root": {"start_at": "Z", "states": [{"name": "A", "type": "pass", "next": "Q"}]}}"#,
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("klingon")).unwrap();
    std::fs::write(dir.path().join("klingon/x.json"), "{}").unwrap();
    let mut config = Config::default();
    config.store = flowgate::config::StoreConfig::memory();
    config.flows.dir = Some(dir.path().to_path_buf());
    let err = prepare(config).await.unwrap_err().to_string();
    assert!(err.contains("bad.json: root.start_at"), "{err}");
    assert!(err.contains("bad.json: root.states[0].next"), "{err}");
    assert!(err.contains("no dialect is named 'klingon'"), "{err}");
}

/// The dialects read bodies themselves within their own limits (Huawei 6 MiB, Alibaba
/// 1 MiB): a body past axum's 2 MB default reaches them and is answered in the vendor's
/// envelope, never with axum's bare 413.
#[tokio::test]
async fn bodies_past_axums_default_limit_reach_the_dialects() {
    let mut config = Config::default();
    config.store = flowgate::config::StoreConfig::memory();
    config.flows.dir = None;
    config.auth.mode = flowgate::config::AuthMode::Off;
    let (state, dialects) = prepare(config).await.unwrap();
    let router = app(state, &dialects);
    let post = |path: &str, content_type: &str, body: Vec<u8>| {
        Request::post(path)
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let padded = |n: usize| format!(r#"{{"input":{{"pad":"{}"}}}}"#, "x".repeat(n)).into_bytes();
    let path = "/v2/p1/fgs/workflows/wf-none/sync-executions";

    // 3 MiB: within Huawei's limit, so the workflow is looked up (and is not there).
    let req = post(path, "application/json", padded(3 << 20));
    let (status, body) = send(router.clone(), req).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error_code"].is_string(), "{body}");

    // 7 MiB: past Huawei's limit, refused in its envelope.
    let req = post(path, "application/json", padded(7 << 20));
    let (status, body) = send(router.clone(), req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error_code"], "FSS.0413", "{body}");

    // 3 MiB to Alibaba: past its 1 MiB limit, refused as fnf refuses it.
    let form = format!("Action=ListFlows&Pad={}", "x".repeat(3 << 20)).into_bytes();
    let (status, body) = send(router, post("/", "application/x-www-form-urlencoded", form)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["Code"], "EntityTooLarge", "{body}");
}
