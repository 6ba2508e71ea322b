//! The Alibaba error envelope: every canonical [`ApiError`] rendered with fnf's HTTP status,
//! code and message template, in one exhaustive match.

use axum::http::StatusCode;

use crate::model::{ApiError, AuthFailure, ResourceKind};

/// An error as fnf sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `Code` field.
    pub code: &'static str,
    /// The `Message` field.
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

    /// `ActionNotSupported` for an unknown action.
    pub fn action_not_supported(action: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ActionNotSupported",
            format!("The requested API operation '{action}' is incorrect. Please check."),
        )
    }

    /// `APIVersionNotSupported` for a version other than 2019-03-15.
    pub fn version_not_supported(version: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "APIVersionNotSupported",
            format!("The requested API version '{version}' is not supported yet. Please check."),
        )
    }
}

/// Renders a canonical error the way fnf does.
pub fn render(err: &ApiError) -> VendorError {
    use StatusCode as S;
    match err {
        ApiError::FlowNotFound { flow } => VendorError::new(
            S::NOT_FOUND,
            "FlowNotExists",
            format!("Flow '{flow}' does not exist."),
        ),
        ApiError::FlowAlreadyExists { flow } => VendorError::new(
            S::CONFLICT,
            "FlowAlreadyExists",
            format!("Flow '{flow}' already exists."),
        ),
        ApiError::ResourceNotFound { kind, name } => match kind {
            ResourceKind::Schedule => VendorError::new(
                S::NOT_FOUND,
                "ScheduleNotExists",
                format!("Schedule {name} does not exist."),
            ),
            ResourceKind::FlowVersion => VendorError::new(
                S::NOT_FOUND,
                "FlowVersionNotExists",
                format!("Flow version {name} does not exist."),
            ),
            ResourceKind::FlowAlias => VendorError::new(
                S::NOT_FOUND,
                "FlowAliasNotExists",
                format!("Flow alias {name} does not exist."),
            ),
        },
        ApiError::ResourceAlreadyExists { kind, name } => match kind {
            ResourceKind::Schedule => VendorError::new(
                S::CONFLICT,
                "ScheduleAlreadyExists",
                format!("Schedule {name} already exists."),
            ),
            ResourceKind::FlowVersion => VendorError::new(
                S::CONFLICT,
                "FlowVersionAlreadyExists",
                format!("Flow version {name} already exists."),
            ),
            ResourceKind::FlowAlias => VendorError::new(
                S::CONFLICT,
                "FlowAliasAlreadyExists",
                format!("Flow alias {name} already exists."),
            ),
        },
        ApiError::ExecutionNotFound { flow, execution } => VendorError::new(
            S::NOT_FOUND,
            "ExecutionNotExists",
            format!("Execution {execution} for flow {flow} does not exist."),
        ),
        ApiError::ExecutionAlreadyExists { flow, execution } => VendorError::new(
            S::BAD_REQUEST,
            "ExecutionAlreadyExists",
            format!("Execution {execution} for flow {flow} already exists."),
        ),
        ApiError::InvalidArgument { message } => {
            VendorError::new(S::BAD_REQUEST, "InvalidArgument", message.clone())
        }
        ApiError::MissingParameter { name } => VendorError::new(
            S::BAD_REQUEST,
            "MissingRequiredParams",
            format!("The HTTP query '{name}' must be specified."),
        ),
        ApiError::InvalidDefinition { issues } => VendorError::new(
            S::BAD_REQUEST,
            "InvalidArgument",
            format!("The flow definition is invalid: {}", issues.join("; ")),
        ),
        ApiError::PayloadTooLarge { limit, .. } => VendorError::new(
            S::BAD_REQUEST,
            "EntityTooLarge",
            format!("The payload size exceeds maximum allowed size ({limit} bytes)."),
        ),
        ApiError::WrongMode { message } => {
            VendorError::new(S::BAD_REQUEST, "ActionNotSupported", message.clone())
        }
        ApiError::InvalidState { message } => {
            VendorError::new(S::BAD_REQUEST, "InvalidArgument", message.clone())
        }
        ApiError::TaskNotFound { token } => VendorError::new(
            S::BAD_REQUEST,
            "InvalidArgument",
            format!("The task token '{token}' is invalid or belongs to no waiting task."),
        ),
        ApiError::TaskAlreadyCompleted { token } => VendorError::new(
            S::BAD_REQUEST,
            "TaskAlreadyCompleted",
            format!("Task {token} has already completed."),
        ),
        ApiError::Unauthenticated(failure) => render_auth(failure),
        ApiError::Throttled => VendorError::new(
            S::TOO_MANY_REQUESTS,
            "ResourceThrottled",
            "The request is throttled. Please try again later.",
        ),
        ApiError::Unsupported { what } => VendorError::new(
            S::BAD_REQUEST,
            "ActionNotSupported",
            format!("The requested API operation '{what}' is incorrect. Please check."),
        ),
        ApiError::Internal { .. } => VendorError::new(
            S::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "An internal error has occurred. Please retry.",
        ),
    }
}

fn render_auth(failure: &AuthFailure) -> VendorError {
    use StatusCode as S;
    match failure {
        AuthFailure::Missing(what) => VendorError::new(
            S::BAD_REQUEST,
            "IncompleteSignature",
            format!("The request signature does not conform to Aliyun standards: {what}"),
        ),
        AuthFailure::UnknownKey(id) => VendorError::new(
            S::FORBIDDEN,
            "InvalidAccessKeyID",
            format!("The AccessKey ID {id} is invalid."),
        ),
        // The text after the first ':' is the server's string-to-sign, so users (and the
        // legacy SDK) can compare it with what the client signed.
        AuthFailure::BadSignature { string_to_sign } => VendorError::new(
            S::FORBIDDEN,
            "SignatureNotMatch",
            format!(
                "The request signature we calculated does not match the signature you provided. Check your access key and signing method. Server string to sign is:{string_to_sign}"
            ),
        ),
        AuthFailure::ClockSkew {
            request_time,
            server_time,
        } => VendorError::new(
            S::FORBIDDEN,
            "RequestTimeTooSkewed",
            format!(
                "The difference between the request time {request_time} and the current time {server_time} is too large."
            ),
        ),
        AuthFailure::NonceReused(nonce) => VendorError::new(
            S::BAD_REQUEST,
            "SignatureNonceUsed",
            format!("Specified signature nonce '{nonce}' was used already."),
        ),
        // Same code and status as a skewed time: the request is too old to be accepted; only
        // the cut-off is nearer than the clock window.
        AuthFailure::ReplayWindowFull {
            request_time,
            oldest_accepted,
            capacity,
        } => VendorError::new(
            S::FORBIDDEN,
            "RequestTimeTooSkewed",
            format!(
                "The request time {request_time} is older than {oldest_accepted}, the oldest request time the replay cache still covers: more than {capacity} signed requests arrived within the replay window. Sign requests with the current time."
            ),
        ),
    }
}
