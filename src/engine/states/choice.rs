//! Choice: ordered rules, first truthy condition wins; a rule either jumps to a sibling state
//! or runs an inline scope.

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::engine::exec::{ExecCtx, Interrupt, StateInfo};
use crate::engine::scope::{run_scope, Frame, KindOutcome};
use crate::model::expr::{Var, Vars};
use crate::model::flow::{ChoiceSpec, ChoiceTarget, State};

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<'a>(
    ctx: &'a ExecCtx,
    _state: &'a State,
    spec: &'a ChoiceSpec,
    input: &Value,
    frame: Frame<'_>,
    info: &StateInfo<'_>,
    cause: &mut u64,
    cancel: &'a CancellationToken,
) -> Result<KindOutcome<'a>, Interrupt> {
    let mut chosen = None;
    for rule in &spec.rules {
        let context = rule
            .condition
            .references(Var::Context)
            .then(|| ctx.context_value(info));
        let global = rule
            .condition
            .references(Var::Global)
            .then(|| ctx.global.lock().expect("global lock").clone());
        let mut vars = Vars::new(input);
        vars.scope_input = Some(frame.scope_input);
        vars.scope_local = frame.scope_local;
        vars.consts = Some(&ctx.flow.constants);
        vars.context = context.as_ref();
        vars.global = global.as_ref();
        let hit = rule
            .condition
            .eval_bool(&vars)
            .map_err(|e| Interrupt::runtime(format!("condition '{}': {e}", rule.condition.text())))?;
        if hit {
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
