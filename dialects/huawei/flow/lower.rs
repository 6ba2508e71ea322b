//! Lowering a [`WorkflowDefinition`] into the canonical [`Flow`] (the mapping is documented in
//! `dialects/huawei/FLOWS.md`).

use serde_json::Value;

use super::definition::{
    Action, ActionMode, OperationState, StateType, WorkflowDefinition, WorkflowMode,
};
use super::expr::{self, INPUT_SYNTAX, RESULT_SYNTAX};
use super::{BUSINESS_ERROR, FUNCTION_TIMEOUT_SECONDS};
use crate::model::error_names;
use crate::model::execution::ExecutionMode;
use crate::model::expr::Expr;
use crate::model::flow::{
    Amount, CatchPolicy, DefinitionIssue, Flow, ParallelSpec, RetryPolicy, Scope, State, StateKind,
    TaskMode, TaskSpec, WaitSpec,
};

/// Builds the flow, adding every expression problem to `issues`. The result is only
/// meaningful when the definition had no problems at all.
pub fn lower(
    def: &WorkflowDefinition,
    project_id: &str,
    issues: &mut Vec<DefinitionIssue>,
) -> Flow {
    let states = def
        .states
        .iter()
        .enumerate()
        .map(|(i, s)| state(def, project_id, i, s, issues))
        .collect();
    Flow {
        name: def.name.clone(),
        mode: match def.mode {
            WorkflowMode::Normal => ExecutionMode::Standard,
            WorkflowMode::Express => ExecutionMode::Express,
        },
        input: None,
        root: scope(def.start.clone(), states),
        timeout_seconds: None,
        constants: Value::Object(def.constants.clone()),
    }
}

fn scope(start_at: String, states: Vec<State>) -> Scope {
    Scope {
        start_at,
        states,
        accumulate_local: false,
        output: None,
        index: Default::default(),
    }
}

fn state(
    def: &WorkflowDefinition,
    project_id: &str,
    i: usize,
    s: &OperationState,
    issues: &mut Vec<DefinitionIssue>,
) -> State {
    let sp = format!("states[{i}]");
    let filter = s.state_data_filter.clone().unwrap_or_default();
    let input = expr::filter(
        &filter.input,
        &INPUT_SYNTAX,
        &format!("{sp}.state_data_filter.input"),
        issues,
    );
    let output = expr::filter(
        &filter.output,
        &RESULT_SYNTAX,
        &format!("{sp}.state_data_filter.output"),
        issues,
    );

    let conditions: Vec<Option<Expr>> = s
        .on_errors
        .iter()
        .enumerate()
        .map(|(j, e)| {
            expr::condition(
                &e.error,
                &def.constants,
                &format!("{sp}.on_errors[{j}].error"),
                issues,
            )
        })
        .collect();
    let retry: Vec<RetryPolicy> = s
        .on_errors
        .iter()
        .zip(&conditions)
        .filter(|(e, _)| !e.retry_ref.is_empty())
        .filter_map(|(e, c)| {
            let r = def.retry(&e.retry_ref)?;
            Some(RetryPolicy {
                errors: vec![error_names::ALL.to_string()],
                condition: c.clone(),
                interval_seconds: f64::from(r.delay),
                max_attempts: r.max_attempts,
                backoff_rate: 1.0,
                max_interval_seconds: None,
            })
        })
        .collect();
    let catch: Vec<CatchPolicy> = s
        .on_errors
        .iter()
        .zip(&conditions)
        .filter(|(e, _)| !e.transition.is_empty())
        .map(|(e, c)| CatchPolicy {
            errors: vec![error_names::ALL.to_string()],
            condition: c.clone(),
            next: e.transition.clone(),
            output: None,
        })
        .collect();
    let fail_when = expr::fail_when(conditions.iter().flatten());
    let mut tasks: Vec<TaskSpec> = s
        .actions
        .iter()
        .enumerate()
        .map(|(j, a)| {
            task(
                def,
                project_id,
                a,
                &format!("{sp}.actions[{j}]"),
                fail_when.clone(),
                issues,
            )
        })
        .collect();

    let terminal = s.end || s.kind == StateType::End;
    let mut st = State {
        label: Default::default(),
        name: s.id.clone(),
        kind: StateKind::Pass,
        input,
        output,
        global: None,
        next: (!terminal).then(|| s.transition.clone()),
        end: terminal && s.kind != StateType::End,
        retry: Vec::new(),
        catch: Vec::new(),
    };
    match s.kind {
        StateType::End => st.kind = StateKind::Succeed,
        StateType::Sleep => {
            st.kind = StateKind::Wait(WaitSpec {
                seconds: Some(Amount::Fixed(s.duration.unwrap_or(0) as f64)),
                ..WaitSpec::default()
            })
        }
        StateType::Operation if tasks.len() == 1 => {
            st.kind = StateKind::Task(tasks.remove(0));
            st.retry = retry;
            st.catch = catch;
        }
        StateType::Operation => {
            // Several actions: one Parallel branch per action, each retried on its own; the
            // transitions catch at the state level, where the target states live.
            let branches = tasks
                .into_iter()
                .enumerate()
                .map(|(j, t)| {
                    let name = format!("{}.actions[{j}]", s.id);
                    scope(
                        name.clone(),
                        vec![State {
                            label: Default::default(),
                            name,
                            kind: StateKind::Task(t),
                            input: None,
                            output: None,
                            global: None,
                            next: None,
                            end: true,
                            retry: retry.clone(),
                            catch: Vec::new(),
                        }],
                    )
                })
                .collect();
            st.kind = StateKind::Parallel(ParallelSpec {
                branches,
                max_concurrency: match s.action_mode {
                    Some(ActionMode::Parallel) => None,
                    Some(ActionMode::Sequential) | None => Some(1),
                },
            });
            st.catch = catch;
        }
    }
    st
}

fn task(
    def: &WorkflowDefinition,
    project_id: &str,
    a: &Action,
    path: &str,
    fail_when: Option<Expr>,
    issues: &mut Vec<DefinitionIssue>,
) -> TaskSpec {
    let fr = &a.function_ref;
    let resource = def
        .function(&fr.ref_name)
        .map(|f| resource(&f.operation, project_id))
        .unwrap_or_default();
    let parameters = (!fr.arguments.is_empty()).then(|| {
        expr::arguments(
            &Value::Object(fr.arguments.clone()),
            &format!("{path}.function_ref.arguments"),
            issues,
        )
    });
    TaskSpec {
        resource: resource.into(),
        parameters,
        mode: TaskMode::RequestResponse,
        result_selector: None,
        timeout_seconds: Some(Amount::Fixed(FUNCTION_TIMEOUT_SECONDS)),
        fail_error: fail_when.as_ref().map(|_| BUSINESS_ERROR.to_string()),
        fail_when,
        result_must_be_object: true,
    }
}

/// The function URN as the task's resource, with an empty or `{placeholder}` project segment
/// (`urn:fss:cn-north-4:{project_id}:function:...`) filled in with the workflow's project.
pub fn resource(operation: &str, project_id: &str) -> String {
    let Some(rest) = operation.strip_prefix("urn:fss:") else {
        return operation.to_string();
    };
    let mut parts: Vec<&str> = rest.split(':').collect();
    if parts.len() >= 3 && parts[2] == "function" {
        let p = parts[1];
        if p.is_empty() || (p.starts_with('{') && p.ends_with('}')) {
            parts[1] = project_id;
            return format!("urn:fss:{}", parts.join(":"));
        }
    }
    operation.to_string()
}

#[cfg(test)]
mod tests {
    use super::resource;

    #[test]
    fn project_placeholders_are_filled() {
        assert_eq!(
            resource(
                "urn:fss:cn-north-4:{project_id}:function:default:f:latest",
                "p1"
            ),
            "urn:fss:cn-north-4:p1:function:default:f:latest"
        );
        assert_eq!(
            resource("urn:fss:cn-north-4::function:default:f:latest", "p1"),
            "urn:fss:cn-north-4:p1:function:default:f:latest"
        );
        assert_eq!(
            resource("urn:fss:cn-north-4:abc:function:default:f:latest", "p1"),
            "urn:fss:cn-north-4:abc:function:default:f:latest"
        );
        assert_eq!(resource("plain", "p1"), "plain");
    }
}
