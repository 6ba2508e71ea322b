//! Canonical API errors: the ways an API call (not an execution) can fail. Each dialect
//! renders every variant in its own envelope with one exhaustive `match`.

use serde::Serialize;

/// Why a request could not be authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum AuthFailure {
    /// No signature, or a malformed one.
    Missing(String),
    /// The access key id is not configured.
    UnknownKey(String),
    /// The signature does not match; carries the server's string-to-sign for debugging.
    BadSignature {
        /// What the server signed.
        string_to_sign: String,
    },
    /// The request time is too far from the server's clock.
    ClockSkew {
        /// The request's time as sent.
        request_time: String,
        /// The server's time.
        server_time: String,
    },
    /// The request's nonce was already used within the replay window.
    NonceReused(String),
    /// The request time is older than the oldest request time the nonce replay cache still
    /// covers: more than `capacity` signed requests arrived within the replay window, so the
    /// cache forgot the nonces of the oldest request times and refuses requests that old
    /// (a replay of one of them would otherwise pass).
    ReplayWindowFull {
        /// The request's time as sent.
        request_time: String,
        /// The oldest request time still accepted.
        oldest_accepted: String,
        /// How many nonces the cache holds (`auth.nonce_cache_capacity`).
        capacity: usize,
    },
}

/// Secondary resources a dialect keeps beside its flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResourceKind {
    /// A schedule that starts executions on a cron expression.
    Schedule,
    /// A published, immutable flow version.
    FlowVersion,
    /// A named alias routing to flow versions.
    FlowAlias,
}

/// A failed API call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ApiError {
    /// The flow does not exist.
    FlowNotFound {
        /// Flow name.
        flow: String,
    },
    /// A flow with this name already exists.
    FlowAlreadyExists {
        /// Flow name.
        flow: String,
    },
    /// A schedule, flow version or alias does not exist.
    ResourceNotFound {
        /// What kind of resource.
        kind: ResourceKind,
        /// Its name.
        name: String,
    },
    /// A schedule or alias of that name already exists.
    ResourceAlreadyExists {
        /// What kind of resource.
        kind: ResourceKind,
        /// Its name.
        name: String,
    },
    /// The execution does not exist.
    ExecutionNotFound {
        /// Flow name.
        flow: String,
        /// Execution name or id.
        execution: String,
    },
    /// An execution with this name already finished.
    ExecutionAlreadyExists {
        /// Flow name.
        flow: String,
        /// Execution name.
        execution: String,
    },
    /// A parameter has a bad value.
    InvalidArgument {
        /// What is wrong and where.
        message: String,
    },
    /// A required parameter is missing.
    MissingParameter {
        /// The parameter's name.
        name: String,
    },
    /// A flow definition does not compile.
    InvalidDefinition {
        /// Every problem, as `path: message`.
        issues: Vec<String>,
    },
    /// The request or a payload is too large.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
        /// The size seen in bytes.
        actual: usize,
    },
    /// The operation does not apply to this flow's mode (sync start of a Standard flow, ...).
    WrongMode {
        /// What was asked and why it does not apply.
        message: String,
    },
    /// The execution is not in a state that allows the operation.
    InvalidState {
        /// What is wrong.
        message: String,
    },
    /// No waiting task has this token.
    TaskNotFound {
        /// The token.
        token: String,
    },
    /// The task behind this token has already completed.
    TaskAlreadyCompleted {
        /// The token.
        token: String,
    },
    /// Authentication failed.
    Unauthenticated(AuthFailure),
    /// A configured rate limit tripped.
    Throttled,
    /// The operation or version is not supported.
    Unsupported {
        /// What is not supported.
        what: String,
    },
    /// An unexpected server-side failure.
    Internal {
        /// Details for the log.
        message: String,
    },
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::FlowNotFound { flow } => write!(f, "flow '{flow}' does not exist"),
            ApiError::FlowAlreadyExists { flow } => write!(f, "flow '{flow}' already exists"),
            ApiError::ResourceNotFound { kind, name } => {
                write!(f, "{kind:?} '{name}' does not exist")
            }
            ApiError::ResourceAlreadyExists { kind, name } => {
                write!(f, "{kind:?} '{name}' already exists")
            }
            ApiError::ExecutionNotFound { flow, execution } => {
                write!(f, "execution '{execution}' of flow '{flow}' does not exist")
            }
            ApiError::ExecutionAlreadyExists { flow, execution } => {
                write!(f, "execution '{execution}' of flow '{flow}' already exists")
            }
            ApiError::InvalidArgument { message } => write!(f, "invalid argument: {message}"),
            ApiError::MissingParameter { name } => write!(f, "missing parameter '{name}'"),
            ApiError::InvalidDefinition { issues } => {
                write!(f, "invalid definition: {}", issues.join("; "))
            }
            ApiError::PayloadTooLarge { limit, actual } => {
                write!(
                    f,
                    "payload of {actual} bytes exceeds the limit of {limit} bytes"
                )
            }
            ApiError::WrongMode { message } => write!(f, "{message}"),
            ApiError::InvalidState { message } => write!(f, "{message}"),
            ApiError::TaskNotFound { token } => write!(f, "no waiting task has token '{token}'"),
            ApiError::TaskAlreadyCompleted { token } => {
                write!(f, "task '{token}' has already completed")
            }
            ApiError::Unauthenticated(a) => write!(f, "unauthenticated: {a:?}"),
            ApiError::Throttled => write!(f, "throttled"),
            ApiError::Unsupported { what } => write!(f, "unsupported: {what}"),
            ApiError::Internal { message } => write!(f, "internal error: {message}"),
        }
    }
}

impl std::error::Error for ApiError {}
