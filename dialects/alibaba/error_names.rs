//! Alibaba error names ↔ canonical engine error names (`crate::model::error_names`).
//!
//! Both flow compilers translate the `errors` / `Errors` lists of retry and catch policies and
//! the error codes of fail states with [`to_canonical`]; the API layer renders execution errors
//! and history with [`to_vendor`]. Names that are neither (a function's own error type such as
//! `BookFlightError`, a Fail `Code`) pass through unchanged.
//!
//! | Alibaba                      | canonical                  |
//! |------------------------------|----------------------------|
//! | `FnF.ALL`                    | `*`                        |
//! | `FnF.TaskTimeout`            | `sys.TaskTimeout`          |
//! | `FnF.RuntimeError`           | `sys.Runtime`              |
//! | `FnF.InvalidLocal`           | `sys.InvalidOutput`        |
//! | `FnF.PayloadTooLarge`        | `sys.PayloadTooLarge`      |
//! | `FnF.Timeout`                | `sys.ExecutionTimeout`     |
//! | `FnF.HistoryLimitExceeded`   | `sys.HistoryLimitExceeded` |
//! | `FnF.Stopped`                | `sys.Stopped`              |
//! | `FnF.Failed`                 | `sys.Fail`                 |
//! | `FC.FunctionNotFound`        | `sys.FunctionNotFound`     |
//! | `FC.<Code>`                  | `sys.Invoke.<Code>`        |
//! | `fnf.<Code>`                 | `sys.Flow.<Code>`          |
//!
//! `fnf.<Code>` (lower-case `fnf.`, as the samples write `fnf.ExecutionAlreadyExists`) names a
//! failure to start a sub-flow (`fnf:StartExecution`, `acs:fnf:::flow/...`, CloudFlow
//! `FNF:StartExecution`): `sys.Flow.FlowNotExists`, `sys.Flow.ExecutionAlreadyExists`, ...
//!
//! `FnF.PayloadTooLarge`, `FnF.HistoryLimitExceeded`, `FnF.Stopped` and `FnF.Failed` are this
//! emulator's choices: the service documents no names for these conditions.

use std::borrow::Cow;

use crate::model::error_names as canonical;

/// Prefix of Function Compute invocation errors (`FC.ResourceThrottled`).
pub const FC_PREFIX: &str = "FC.";

/// Prefix of sub-flow start failures (`fnf.ExecutionAlreadyExists`).
pub const FNF_PREFIX: &str = "fnf.";

/// The fixed pairs (vendor, canonical); `FC.<Code>` ↔ `sys.Invoke.<Code>` and `fnf.<Code>` ↔
/// `sys.Flow.<Code>` are handled by prefix.
pub const FIXED: [(&str, &str); 10] = [
    ("FnF.ALL", canonical::ALL),
    ("FnF.TaskTimeout", canonical::TASK_TIMEOUT),
    ("FnF.RuntimeError", canonical::RUNTIME),
    ("FnF.InvalidLocal", canonical::INVALID_OUTPUT),
    ("FnF.PayloadTooLarge", canonical::PAYLOAD_TOO_LARGE),
    ("FnF.Timeout", canonical::EXECUTION_TIMEOUT),
    ("FnF.HistoryLimitExceeded", canonical::HISTORY_LIMIT),
    ("FnF.Stopped", canonical::STOPPED),
    ("FnF.Failed", canonical::FAIL),
    ("FC.FunctionNotFound", canonical::FUNCTION_NOT_FOUND),
];

/// The canonical name of an Alibaba error name (as written in a definition or reported by
/// `ReportTaskFailed`).
pub fn to_canonical(name: &str) -> Cow<'_, str> {
    if let Some((_, c)) = FIXED.iter().find(|(v, _)| *v == name) {
        return Cow::Borrowed(c);
    }
    if let Some(code) = name.strip_prefix(FC_PREFIX).filter(|c| !c.is_empty()) {
        return Cow::Owned(format!("{}{code}", canonical::INVOKE_PREFIX));
    }
    match name.strip_prefix(FNF_PREFIX) {
        Some(code) if !code.is_empty() => Cow::Owned(format!("{}{code}", canonical::FLOW_PREFIX)),
        _ => Cow::Borrowed(name),
    }
}

/// The Alibaba name of a canonical error name (for DescribeExecution, history, `$Context`).
pub fn to_vendor(name: &str) -> Cow<'_, str> {
    if let Some((v, _)) = FIXED.iter().find(|(_, c)| *c == name) {
        return Cow::Borrowed(v);
    }
    if let Some(code) = name
        .strip_prefix(canonical::INVOKE_PREFIX)
        .filter(|c| !c.is_empty())
    {
        return Cow::Owned(format!("{FC_PREFIX}{code}"));
    }
    match name.strip_prefix(canonical::FLOW_PREFIX) {
        Some(code) if !code.is_empty() => Cow::Owned(format!("{FNF_PREFIX}{code}")),
        _ => Cow::Borrowed(name),
    }
}

/// Translates a whole policy error list.
pub fn list_to_canonical<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    for n in names {
        let canonical = to_canonical(n).into_owned();
        // Keep the vendor spelling too (except the wildcard): a function or mock that raises
        // `FC.ResourceThrottled` as its own error type must match `FC.ResourceThrottled` as on
        // the cloud, as well as the engine's `sys.Invoke.ResourceThrottled`.
        if canonical != n && canonical != crate::model::error_names::ALL {
            out.push(n.to_string());
        }
        out.push(canonical);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_list_matches_both_the_engine_name_and_the_vendor_spelling() {
        assert_eq!(
            list_to_canonical(["FC.ResourceThrottled", "FnF.ALL", "MyError"]),
            vec![
                "FC.ResourceThrottled",
                "sys.Invoke.ResourceThrottled",
                "*",
                "MyError"
            ]
        );
    }

    #[test]
    fn every_fixed_pair_maps_both_ways() {
        for (v, c) in FIXED {
            assert_eq!(to_canonical(v), c, "{v}");
            assert_eq!(to_vendor(c), v, "{c}");
        }
        assert_eq!(to_canonical("FnF.ALL"), "*");
        assert_eq!(to_canonical("FnF.TaskTimeout"), "sys.TaskTimeout");
        assert_eq!(to_canonical("FnF.RuntimeError"), "sys.Runtime");
        assert_eq!(to_canonical("FnF.InvalidLocal"), "sys.InvalidOutput");
        assert_eq!(to_canonical("FC.FunctionNotFound"), "sys.FunctionNotFound");
        assert_eq!(to_canonical("FnF.Timeout"), "sys.ExecutionTimeout");
        assert_eq!(to_canonical("FnF.PayloadTooLarge"), "sys.PayloadTooLarge");
        assert_eq!(
            to_canonical("FnF.HistoryLimitExceeded"),
            "sys.HistoryLimitExceeded"
        );
        assert_eq!(to_canonical("FnF.Stopped"), "sys.Stopped");
        assert_eq!(to_canonical("FnF.Failed"), "sys.Fail");
    }

    #[test]
    fn fc_codes_map_by_prefix() {
        assert_eq!(
            to_canonical("FC.ResourceThrottled"),
            "sys.Invoke.ResourceThrottled"
        );
        assert_eq!(to_canonical("FC.Unknown"), "sys.Invoke.Unknown");
        assert_eq!(
            to_vendor("sys.Invoke.ResourceExhausted"),
            "FC.ResourceExhausted"
        );
        assert_eq!(to_vendor("sys.Invoke.Unreachable"), "FC.Unreachable");
        // An empty code is not an FC error.
        assert_eq!(to_canonical("FC."), "FC.");
        assert_eq!(to_vendor("sys.Invoke."), "sys.Invoke.");
    }

    #[test]
    fn fnf_codes_map_to_sub_flow_errors_by_prefix() {
        assert_eq!(
            to_canonical("fnf.ExecutionAlreadyExists"),
            "sys.Flow.ExecutionAlreadyExists"
        );
        assert_eq!(to_canonical("fnf.FlowNotExists"), "sys.Flow.FlowNotExists");
        assert_eq!(
            to_vendor("sys.Flow.ExecutionAlreadyExists"),
            "fnf.ExecutionAlreadyExists"
        );
        assert_eq!(to_vendor("sys.Flow.FlowNotExists"), "fnf.FlowNotExists");
        // Only the lower-case product prefix; an empty code is not a sub-flow error.
        assert_eq!(to_canonical("fnf."), "fnf.");
        assert_eq!(to_vendor("sys.Flow."), "sys.Flow.");
        assert_eq!(
            to_canonical("FNF.ExecutionAlreadyExists"),
            "FNF.ExecutionAlreadyExists"
        );
        assert_eq!(
            list_to_canonical(["fnf.ExecutionAlreadyExists", "FnF.ALL"]),
            vec![
                "fnf.ExecutionAlreadyExists",
                "sys.Flow.ExecutionAlreadyExists",
                "*"
            ]
        );
    }

    #[test]
    fn other_names_pass_through_borrowed() {
        for n in [
            "BookFlightError",
            "Fnf.ExecutionAlreadyExists",
            "AuditUnknown",
            "FnF.Other",
            "fc.lowercase",
            "",
        ] {
            assert!(matches!(to_canonical(n), Cow::Borrowed(b) if b == n), "{n}");
            assert!(matches!(to_vendor(n), Cow::Borrowed(b) if b == n), "{n}");
        }
    }

    #[test]
    fn round_trips() {
        for n in [
            "FnF.ALL",
            "FC.ResourceThrottled",
            "FC.FunctionNotFound",
            "MyError",
            "FnF.Failed",
            "fnf.ExecutionAlreadyExists",
        ] {
            assert_eq!(to_vendor(&to_canonical(n)), n);
        }
        for n in [
            "*",
            "sys.Invoke.X",
            "sys.Flow.FlowNotExists",
            "sys.Fail",
            "sys.Stopped",
            "MyError",
            "sys.Unknown",
        ] {
            assert_eq!(to_canonical(&to_vendor(n)), n);
        }
        assert_eq!(
            list_to_canonical(["FnF.ALL", "X", "FC.A"]),
            vec!["*", "X", "FC.A", "sys.Invoke.A"]
        );
    }
}
