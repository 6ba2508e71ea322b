//! The RPC front end: one handler on `/` for GET and POST. It reads the parameters, checks the
//! signature, the action and the version, dispatches, and renders the answer or the error in
//! fnf's envelope. Every request gets a JSON answer, even a malformed one.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::actions;
use super::errors::{render, VendorError};
use super::params::Params;
use super::signature::is_form_content_type;
use super::Shared;
use crate::config::AuthMode;
use crate::dialects::{JsonObject, RawRequest};
use crate::model::ApiError;
use crate::server::AppState;

/// The only API version fnf speaks.
pub const VERSION: &str = "2019-03-15";

/// Largest request body accepted (fnf's limit, 1 MiB); larger gets `EntityTooLarge`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What an action handler returns: the response fields (without `RequestId`).
pub type ActionResult = Result<Map<String, Value>, ApiError>;

/// A successful answer: fields to render, or (for the actions on the hot path) an object
/// already written as JSON text.
#[derive(Debug)]
pub enum Answer {
    /// The response fields (without `RequestId`).
    Fields(Map<String, Value>),
    /// The response object written as it goes (without `RequestId`).
    Object(JsonObject),
}

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

/// A fresh request id as fnf writes them: an upper-case hyphenated UUID.
fn new_request_id() -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::new_v4()
        .hyphenated()
        .encode_upper(&mut buf)
        .to_owned()
}

/// Handles one RPC request.
pub async fn handle(app: AppState, shared: Arc<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("fnf.aliyuncs.com");
    let mut request_id = new_request_id();
    let bytes = match crate::body::read_limited(body, MAX_BODY_BYTES).await {
        Some(b) => b,
        None => {
            let e = render(&ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
                actual: MAX_BODY_BYTES + 1,
            });
            return error_response(&e, &request_id, host);
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
        // The verifier signs the body's pairs only for a form content type (a body without
        // one is still read for the business parameters).
        let signed_form = is_form_content_type(&parts.headers);
        let pairs = params
            .query_pairs()
            .chain(params.form_pairs().filter(|_| signed_form));
        let config = &app.config;
        if let Err(failure) = shared.verifier.authenticate_decoded(
            &raw,
            pairs,
            |ak: &str| config.secret_for(ak),
            chrono::Utc::now(),
        ) {
            let e = render(&ApiError::Unauthenticated(failure));
            return error_response(&e, &request_id, host);
        }
    }
    let action = match params.optional("Action") {
        Some(a) => Cow::Borrowed(a),
        None => match header_str(&parts.headers, "x-acs-action") {
            Some(a) => Cow::Owned(a),
            None => {
                let e = render(&ApiError::MissingParameter {
                    name: "Action".into(),
                });
                return error_response(&e, &request_id, host);
            }
        },
    };
    let header_version;
    let version = match params.optional("Version") {
        Some(v) => Some(v),
        None => {
            header_version = header_str(&parts.headers, "x-acs-version");
            header_version.as_deref()
        }
    };
    match version {
        Some(VERSION) => {}
        Some(other) => {
            return error_response(
                &VendorError::version_not_supported(other),
                &request_id,
                host,
            )
        }
        None => {
            let e = render(&ApiError::MissingParameter {
                name: "Version".into(),
            });
            return error_response(&e, &request_id, host);
        }
    }
    if !app.limiter.allow("alibaba", &action) {
        return error_response(&render(&ApiError::Throttled), &request_id, host);
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
                host,
            )
        }
    };
    match result {
        Ok(Answer::Fields(mut fields)) => {
            fields.insert("RequestId".into(), Value::String(request_id));
            json_response(StatusCode::OK, &Value::Object(fields))
        }
        Ok(Answer::Object(mut object)) => {
            object.string("RequestId", &request_id);
            bytes_response(StatusCode::OK, object.into_bytes())
        }
        Err(e) => {
            if let ApiError::Internal { message } = &e {
                tracing::error!(action = %action, error = %message, "internal error");
            }
            error_response(&render(&e), &request_id, host)
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
    bytes_response(status, serde_json::to_vec(body).unwrap_or_default())
}

fn bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut resp = (status, Body::from(bytes)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    resp
}
