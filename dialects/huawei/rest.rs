//! The REST front end: every route under `/v2/{project_id}/fgs/` and the IAM project lookup,
//! matched by hand so an unknown path or method gets APIG's own `APIGW.0101` answer. Each
//! request is authenticated (SDK-HMAC-SHA256) before it is handled; every answer carries
//! `X-Request-Id`, which is where the SDK reads the request id from.

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::errors::{render, VendorError};
use super::handlers::{executions, iam, metrics, workflows};
use crate::config::AuthMode;
use crate::dialects::RawRequest;
use crate::model::ApiError;
use crate::server::AppState;
use crate::text::split_ascii;

/// Largest request body (FunctionGraph's 6 MB invocation limit); larger is `FSS.0413`.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// A successful answer: status and JSON body (`None` = empty body).
pub type Reply = Result<(StatusCode, Option<Value>), VendorError>;

/// What a handler sees of the request.
pub struct Req<'a> {
    /// Server state.
    pub app: &'a AppState,
    /// The project id from the path.
    pub project: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Body bytes.
    pub body: &'a [u8],
}

impl Req<'_> {
    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as a JSON object (`null` fields treated as absent by the handlers).
    pub fn json(&self) -> Result<Value, VendorError> {
        if self.body.is_empty() {
            return Ok(json!({}));
        }
        let v: Value = serde_json::from_slice(self.body).map_err(|e| {
            VendorError::invalid(format!(
                "Invalid parameters: the body is not valid JSON: {e}."
            ))
        })?;
        if v.is_object() {
            Ok(v)
        } else {
            Err(VendorError::invalid(
                "Invalid parameters: the body must be a JSON object.",
            ))
        }
    }

    /// The namespace of this project's workflows.
    pub fn namespace(&self) -> String {
        format!("huawei/{}", self.project)
    }
}

/// Maps a canonical error.
pub fn api(e: ApiError) -> VendorError {
    render(&e)
}

/// The request id header of every answer (a constant name: a custom `HeaderName` built from
/// a string would allocate per answer).
const X_REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// Handles one request to `/v2/...` or `/v3/projects`.
pub async fn handle(app: AppState, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let (parts, body) = req.into_parts();
    let bytes = match crate::body::read_limited(body, MAX_BODY_BYTES).await {
        Some(b) => b,
        None => {
            // Reading stops past the limit; the declared length tells the real size.
            let declared = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<usize>().ok());
            let e = render(&ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
                actual: declared
                    .filter(|n| *n > MAX_BODY_BYTES)
                    .unwrap_or(MAX_BODY_BYTES + 1),
            });
            return error_response(&e, &request_id);
        }
    };
    let path = parts.uri.path();
    let raw_query = parts.uri.query().unwrap_or("");
    let segments: Vec<Cow<'_, str>> = split_ascii(path.trim_start_matches('/'), b'/')
        .map(|s| match s.contains('%') {
            // Nothing to decode (ids and names as the SDKs send them): already UTF-8.
            false => Cow::Borrowed(s),
            true => percent_encoding::percent_decode_str(s).decode_utf8_lossy(),
        })
        .collect();
    let route = match route(&parts.method, &segments) {
        Some(r) => r,
        None => return error_response(&VendorError::no_such_api(), &request_id),
    };
    if app.config.auth.mode == AuthMode::Verify {
        let raw = RawRequest {
            method: parts.method.as_str(),
            path,
            raw_query,
            headers: &parts.headers,
            body: &bytes,
        };
        let config = &app.config;
        let window = std::time::Duration::from_secs(config.auth.clock_skew_seconds);
        if let Err(failure) = super::signature::authenticate_with(
            &raw,
            |ak: &str| config.secret_for(ak),
            chrono::Utc::now(),
            window,
        ) {
            return error_response(&render(&ApiError::Unauthenticated(failure)), &request_id);
        }
    }
    if !app.limiter.allow("huawei", route.operation()) {
        return error_response(&render(&ApiError::Throttled), &request_id);
    }
    let project = match &route {
        Route::Iam => String::new(),
        _ => project_id(&segments[1], &app),
    };
    let query = form_urlencoded::parse(raw_query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let r = Req {
        app: &app,
        project,
        query,
        headers: &parts.headers,
        body: &bytes,
    };
    let reply = match route {
        Route::StartSync(id) => executions::start_sync(&r, &id).await,
        route => reply(route, &r).await.map(|(status, body)| {
            let bytes = body
                .map(|b| serde_json::to_vec(&b).unwrap_or_default())
                .unwrap_or_default();
            (status, bytes)
        }),
    };
    match reply {
        Ok((status, bytes)) => {
            let mut resp = (status, Body::from(bytes)).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                h.insert(X_REQUEST_ID, v);
            }
            resp
        }
        Err(e) => {
            if e.status == StatusCode::INTERNAL_SERVER_ERROR {
                tracing::error!(path = %path, error = %e.message, "internal error");
            }
            error_response(&e, &request_id)
        }
    }
}

/// Runs a route's handler (every route but `StartSync`, which renders its own answer).
async fn reply(route: Route, r: &Req<'_>) -> Reply {
    match route {
        Route::Iam => iam::list_projects(r).await,
        Route::CreateWorkflow => workflows::create(r).await,
        Route::ListWorkflows => workflows::list(r).await,
        Route::DeleteWorkflows => workflows::batch_delete(r).await,
        Route::ShowWorkflow(id) => workflows::show(r, &id).await,
        Route::UpdateWorkflow(id) => workflows::update(r, &id).await,
        Route::StartExecution(id) => executions::start(r, &id).await,
        Route::StartSync(id) => executions::start_sync(r, &id)
            .await
            .map(|(status, bytes)| (status, serde_json::from_slice(&bytes).ok())),
        Route::ListExecutions(id) => executions::list(r, &id).await,
        Route::ExecutionsHistory(id) => executions::history_page(r, &id).await,
        Route::ShowExecution(id, ex) => executions::show(r, &id, &ex).await,
        Route::Terminate(id, ex) => executions::terminate(r, &id, &ex).await,
        Route::Retry(id, ex) => executions::retry(r, &id, &ex).await,
        Route::Callback(id) => executions::callback(r, &id).await,
        Route::TenantMetric => metrics::tenant(r).await,
        Route::WorkflowMetric(urn) => metrics::workflow(r, &urn).await,
    }
}

/// The project id from the path; SDK users who give neither a project id nor a region send
/// the literal `{project_id}`, which means the configured default project.
fn project_id(segment: &str, app: &AppState) -> String {
    if segment == "{project_id}" || segment.is_empty() {
        app.config.flows.huawei_project.clone()
    } else {
        segment.to_string()
    }
}

/// The routes, by method and decoded path segments.
enum Route {
    Iam,
    CreateWorkflow,
    ListWorkflows,
    DeleteWorkflows,
    ShowWorkflow(String),
    UpdateWorkflow(String),
    StartExecution(String),
    StartSync(String),
    ListExecutions(String),
    ExecutionsHistory(String),
    ShowExecution(String, String),
    Terminate(String, String),
    Retry(String, String),
    Callback(String),
    TenantMetric,
    WorkflowMetric(String),
}

impl Route {
    /// The SDK operation name, as `[[rate_limits]]` entries name it.
    fn operation(&self) -> &'static str {
        match self {
            Route::Iam => "KeystoneListProjects",
            Route::CreateWorkflow => "CreateWorkflow",
            Route::ListWorkflows => "ListWorkflow",
            Route::DeleteWorkflows => "BatchDeleteWorkflows",
            Route::ShowWorkflow(_) => "ShowWorkFlow",
            Route::UpdateWorkflow(_) => "UpdateWorkFlow",
            Route::StartExecution(_) => "StartWorkflowExecution",
            Route::StartSync(_) => "StartSyncWorkflowExecution",
            Route::ListExecutions(_) => "ListWorkflowExecutions",
            Route::ExecutionsHistory(_) => "ShowWorkflowExecutionForPage",
            Route::ShowExecution(_, _) => "ShowWorkflowExecution",
            Route::Terminate(_, _) => "StopWorkFlow",
            Route::Retry(_, _) => "RetryWorkFlow",
            Route::Callback(_) => "CreateCallbackWorkflow",
            Route::TenantMetric => "ShowTenantMetric",
            Route::WorkflowMetric(_) => "ShowWorkFlowMetric",
        }
    }
}

fn route(method: &Method, s: &[Cow<'_, str>]) -> Option<Route> {
    let seg: Vec<&str> = s.iter().map(|c| c.as_ref()).collect();
    let m = method.as_str();
    if seg == ["v3", "projects"] {
        return (m == "GET").then_some(Route::Iam);
    }
    let rest = match seg.as_slice() {
        ["v2", _project, "fgs", rest @ ..] => rest,
        _ => return None,
    };
    let own = |x: &&str| x.to_string();
    Some(match (m, rest) {
        ("POST", ["workflows"]) => Route::CreateWorkflow,
        ("GET", ["workflows"]) => Route::ListWorkflows,
        ("DELETE", ["workflows"]) => Route::DeleteWorkflows,
        ("GET", ["workflows", id]) => Route::ShowWorkflow(own(id)),
        ("PUT", ["workflows", id]) => Route::UpdateWorkflow(own(id)),
        ("POST", ["workflows", id, "executions"]) => Route::StartExecution(own(id)),
        ("GET", ["workflows", id, "executions"]) => Route::ListExecutions(own(id)),
        ("POST", ["workflows", id, "sync-executions"]) => Route::StartSync(own(id)),
        ("GET", ["workflows", id, "executions-history"]) => Route::ExecutionsHistory(own(id)),
        ("GET", ["workflows", id, "executions", ex]) => Route::ShowExecution(own(id), own(ex)),
        ("POST", ["workflows", id, "executions", ex, "terminate"]) => {
            Route::Terminate(own(id), own(ex))
        }
        ("POST", ["workflows", id, "executions", ex, "retry"]) => Route::Retry(own(id), own(ex)),
        ("POST", ["workflows", id, "callback"]) => Route::Callback(own(id)),
        ("GET", ["workflow-statistic"]) => Route::TenantMetric,
        ("GET", ["workflow-statistic", urn]) => Route::WorkflowMetric(own(urn)),
        _ => return None,
    })
}

/// The error envelope, with the request id in the body and in `X-Request-Id`.
pub fn error_response(e: &VendorError, request_id: &str) -> Response {
    let body = json!({"error_code": e.code, "error_msg": e.message, "request_id": request_id});
    let mut resp = (
        e.status,
        Body::from(serde_json::to_vec(&body).unwrap_or_default()),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(X_REQUEST_ID, v);
    }
    resp
}
