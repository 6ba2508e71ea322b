//! The RPC front end: one handler on `/` for GET and POST. It reads the parameters, checks the
//! signature, the action and the version, dispatches, and renders the answer or the error in
//! fnf's envelope. Every request gets a JSON answer, even a malformed one.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::actions;
use super::errors::{render, VendorError};
use super::params::Params;
use super::Shared;
use crate::config::AuthMode;
use crate::dialects::RawRequest;
use crate::model::ApiError;
use crate::server::AppState;

/// The only API version fnf speaks.
pub const VERSION: &str = "2019-03-15";

/// Largest request body accepted (fnf's limit, 1 MiB); larger gets `EntityTooLarge`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What an action handler returns: the response fields (without `RequestId`).
pub type ActionResult = Result<Map<String, Value>, ApiError>;

/// Everything an action handler needs.
pub struct Ctx<'a> {
    /// Server state (engine, configuration).
    pub app: &'a AppState,
    /// Dialect state (versions cache, verifier).
    pub shared: &'a Shared,
    /// The parameters.
    pub params: &'a Params,
}

impl Ctx<'_> {
    /// The namespace Alibaba flows live in.
    pub fn namespace(&self) -> &str {
        &self.app.config.flows.alibaba_namespace
    }
}

/// Handles one RPC request.
pub async fn handle(app: AppState, shared: Arc<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("fnf.aliyuncs.com")
        .to_string();
    let mut request_id = uuid::Uuid::new_v4().to_string().to_uppercase();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await {
        Ok(b) if b.len() <= MAX_BODY_BYTES => b,
        _ => {
            let e = render(&ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
                actual: MAX_BODY_BYTES + 1,
            });
            return error_response(&e, &request_id, &host);
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok());
    let raw_query = parts.uri.query().unwrap_or("");
    let params = Params::parse(raw_query, content_type, &bytes);
    if let Some(rid) = params.optional("RequestId") {
        request_id = rid.to_string();
    }
    if app.config.auth.mode == AuthMode::Verify {
        let raw = RawRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            raw_query,
            headers: &parts.headers,
            body: &bytes,
        };
        let config = app.config.clone();
        let secret_for = move |ak: &str| config.secret_for(ak).map(str::to_string);
        if let Err(failure) =
            shared
                .verifier
                .authenticate(&raw, &params.form, &secret_for, chrono::Utc::now())
        {
            let e = render(&ApiError::Unauthenticated(failure));
            return error_response(&e, &request_id, &host);
        }
    }
    let action = params
        .optional("Action")
        .map(str::to_string)
        .or_else(|| header_str(&parts.headers, "x-acs-action"));
    let Some(action) = action else {
        let e = render(&ApiError::MissingParameter {
            name: "Action".into(),
        });
        return error_response(&e, &request_id, &host);
    };
    let version = params
        .optional("Version")
        .map(str::to_string)
        .or_else(|| header_str(&parts.headers, "x-acs-version"));
    match version.as_deref() {
        Some(VERSION) => {}
        Some(other) => {
            return error_response(
                &VendorError::version_not_supported(other),
                &request_id,
                &host,
            )
        }
        None => {
            let e = render(&ApiError::MissingParameter {
                name: "Version".into(),
            });
            return error_response(&e, &request_id, &host);
        }
    }
    if !app.limiter.allow("alibaba", &action) {
        return error_response(&render(&ApiError::Throttled), &request_id, &host);
    }
    let ctx = Ctx {
        app: &app,
        shared: &shared,
        params: &params,
    };
    let result = match actions::dispatch(&ctx, &action).await {
        Some(r) => r,
        None => {
            return error_response(
                &VendorError::action_not_supported(&action),
                &request_id,
                &host,
            )
        }
    };
    match result {
        Ok(mut fields) => {
            fields.insert("RequestId".into(), json!(request_id));
            json_response(StatusCode::OK, &Value::Object(fields))
        }
        Err(e) => {
            if let ApiError::Internal { message } = &e {
                tracing::error!(action = %action, error = %message, "internal error");
            }
            error_response(&render(&e), &request_id, &host)
        }
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The fnf error envelope `{RequestId, HostId, Code, Message}`.
pub fn error_response(e: &VendorError, request_id: &str, host: &str) -> Response {
    let body = json!({
        "RequestId": request_id,
        "HostId": host,
        "Code": e.code,
        "Message": e.message,
    });
    json_response(e.status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, Body::from(bytes)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    resp
}
