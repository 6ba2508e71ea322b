//! The canonical, vendor-neutral model: flows, executions, history events, API errors and
//! the expression language every dialect lowers its data transforms into. No I/O here.

pub mod api_error;
pub mod error_names;
pub mod event;
pub mod execution;
pub mod expr;
pub mod flow;
pub mod time;

pub use api_error::{ApiError, AuthFailure, ResourceKind};
pub use event::{DetailMore, Event, EventDetail, EventKind, StateLabel};
pub use execution::{ExecError, ExecutionMode, ExecutionRecord, ExecutionStatus, RetryPoint};
pub use flow::{Flow, Scope, State, StateKind};
