//! The Huawei error envelope `{error_code, error_msg, request_id}`: every canonical
//! [`ApiError`] rendered with an HTTP status and code in one exhaustive match.
//!
//! Huawei documents only example codes for the workflow API (`FGS.3002` invalid parameters,
//! `FGS.5002` not found) and the FunctionGraph-wide `FSS.*` table; where the vendor is silent
//! the choice is written down in `dialects/huawei/API.md`.

use axum::http::StatusCode;

use crate::model::{ApiError, AuthFailure, ResourceKind};

/// An error as FunctionGraph sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorError {
    /// HTTP status.
    pub status: StatusCode,
    /// `error_code`.
    pub code: &'static str,
    /// `error_msg`.
    pub message: String,
}

impl VendorError {
    /// An error from its parts.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        VendorError {
            status,
            code,
            message: message.into(),
        }
    }

    /// `FGS.3002` with a message naming what is wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "FGS.3002", message)
    }

    /// The gateway's answer for an unknown path or method.
    pub fn no_such_api() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "APIGW.0101",
            "The API does not exist or has not been published in the environment.",
        )
    }
}

/// Renders a canonical error the way FunctionGraph does.
pub fn render(err: &ApiError) -> VendorError {
    use StatusCode as S;
    match err {
        ApiError::FlowNotFound { flow } => VendorError::new(
            S::NOT_FOUND,
            "FGS.5002",
            format!("Function flow not found: {flow}."),
        ),
        ApiError::FlowAlreadyExists { flow } => VendorError::new(
            S::CONFLICT,
            "FSS.0409",
            format!("The specified resource already exists: workflow {flow}."),
        ),
        ApiError::ResourceNotFound { kind, name } => VendorError::new(
            S::NOT_FOUND,
            "FGS.5002",
            format!("{} not found: {name}.", resource(*kind)),
        ),
        ApiError::ResourceAlreadyExists { kind, name } => VendorError::new(
            S::CONFLICT,
            "FSS.0409",
            format!(
                "The specified resource already exists: {} {name}.",
                resource(*kind)
            ),
        ),
        ApiError::ExecutionNotFound { execution, .. } => VendorError::new(
            S::NOT_FOUND,
            "FGS.5002",
            format!("Function flow execution not found: {execution}."),
        ),
        ApiError::ExecutionAlreadyExists { execution, .. } => VendorError::new(
            S::CONFLICT,
            "FSS.0409",
            format!("The specified resource already exists: execution {execution}."),
        ),
        ApiError::InvalidArgument { message } => {
            VendorError::invalid(format!("Invalid parameters: {message}"))
        }
        ApiError::MissingParameter { name } => {
            VendorError::invalid(format!("Invalid parameters: {name} is required."))
        }
        ApiError::InvalidDefinition { issues } => {
            VendorError::invalid(format!("Invalid parameters: {}", issues.join("; ")))
        }
        ApiError::PayloadTooLarge { limit, actual } => VendorError::new(
            S::PAYLOAD_TOO_LARGE,
            "FSS.0413",
            format!("The request body is too large: {actual} bytes, the limit is {limit} bytes."),
        ),
        ApiError::WrongMode { message } | ApiError::InvalidState { message } => {
            VendorError::invalid(message.clone())
        }
        ApiError::TaskNotFound { token } => VendorError::new(
            S::NOT_FOUND,
            "FGS.5002",
            format!("No node is waiting for a callback: {token}."),
        ),
        ApiError::TaskAlreadyCompleted { token } => {
            VendorError::invalid(format!("The node has already completed: {token}."))
        }
        ApiError::Unauthenticated(failure) => render_auth(failure),
        ApiError::Throttled => {
            VendorError::new(S::TOO_MANY_REQUESTS, "FSS.0429", "Too many requests.")
        }
        ApiError::Unsupported { what } => VendorError::invalid(format!("Not supported: {what}.")),
        ApiError::Internal { .. } => VendorError::new(
            S::INTERNAL_SERVER_ERROR,
            "FSS.0500",
            "Internal server error.",
        ),
    }
}

fn resource(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Schedule => "Schedule",
        ResourceKind::FlowVersion => "Workflow version",
        ResourceKind::FlowAlias => "Workflow alias",
    }
}

/// APIG's answers for failed AK/SK authentication (all 401 `APIGW.0301`).
fn render_auth(failure: &AuthFailure) -> VendorError {
    let msg = match failure {
        AuthFailure::Missing(what) => {
            format!("Incorrect IAM authentication information: {what}")
        }
        AuthFailure::UnknownKey(ak) => format!(
            "Incorrect IAM authentication information: Get secretKey failed,ak:{ak},err:ak not exist"
        ),
        AuthFailure::BadSignature { string_to_sign } => format!(
            "Incorrect IAM authentication information: verify aksk signature fail, string to sign:{}",
            string_to_sign.replace('\n', "|")
        ),
        AuthFailure::ClockSkew {
            request_time,
            server_time,
        } => format!(
            "Incorrect IAM authentication information: verify aksk signature fail, X-Sdk-Date {request_time} is more than 15 minutes away from the server time {server_time}"
        ),
        AuthFailure::NonceReused(nonce) => {
            format!("Incorrect IAM authentication information: replayed request {nonce}")
        }
        // Huawei requests carry no nonce, so this dialect never produces it.
        AuthFailure::ReplayWindowFull {
            request_time,
            oldest_accepted,
            capacity,
        } => format!(
            "Incorrect IAM authentication information: verify aksk signature fail, X-Sdk-Date {request_time} is older than {oldest_accepted}, the oldest request time the replay cache still covers (more than {capacity} signed requests arrived within the replay window)"
        ),
    };
    VendorError::new(StatusCode::UNAUTHORIZED, "APIGW.0301", msg)
}
