//! Choice: ordered rules, first truthy condition wins; a rule either jumps to a sibling state
//! or runs an inline scope.

use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::engine::exec::{ExecCtx, Interrupt, StateInfo};
use crate::engine::scope::{eval_expr, run_scope, Frame, KindOutcome};
use crate::model::expr::is_truthy;
use crate::model::flow::{ChoiceSpec, ChoiceTarget};

pub(crate) async fn run<'a>(
    ctx: &'a ExecCtx,
    spec: &'a ChoiceSpec,
    input: &Arc<Value>,
    frame: Frame<'_>,
    info: &StateInfo<'_>,
    cause: &mut u64,
    cancel: &'a CancellationToken,
) -> Result<KindOutcome<'a>, Interrupt> {
    let mut chosen = None;
    for rule in &spec.rules {
        let v = eval_expr(ctx, &rule.condition, frame.vars(ctx, input), Some(info))?;
        if is_truthy(&v) {
            chosen = Some(&rule.target);
            break;
        }
    }
    match chosen.or(spec.default.as_ref()) {
        None => Ok(KindOutcome::value(input.clone())),
        Some(ChoiceTarget::Next(n)) => Ok(KindOutcome {
            result: input.clone(),
            jump: Some(n.as_str()),
            ends_scope: false,
        }),
        Some(ChoiceTarget::Steps(scope)) => {
            let (out, last) = run_scope(ctx, scope, input.clone(), *cause, cancel).await?;
            *cause = last;
            Ok(KindOutcome::value(out))
        }
    }
}
