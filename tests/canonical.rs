//! The canonical flow format: compile errors carry field paths; the model round-trips.

use flowgate::canonical;
use serde_json::json;

#[test]
fn structural_problems_are_all_reported_with_their_paths() {
    let text = json!({
        "name": "bad",
        "root": {"start_at": "Nope", "states": [
            {"name": "A", "type": "pass", "next": "Missing"},
            {"name": "A", "type": "pass", "end": true},
            {"name": "T", "type": "task", "resource": "f", "catch": [{"errors": ["*"], "next": "Gone"}],
             "retry": [{"errors": [], "backoff_rate": 0.5}]},
            {"name": "P", "type": "parallel", "branches": [{"start_at": "X", "states": []}]},
            {"name": "W", "type": "wait"}
        ]}
    })
    .to_string();
    let issues = canonical::compile(&text).unwrap_err();
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    for expected in [
        "root.start_at",
        "root.states[0].next",
        "root.states[1].name",
        "root.states[2].catch[0].next",
        "root.states[2].retry[0].errors",
        "root.states[2].retry[0].backoff_rate",
        "root.states[3].branches[0].states",
        "root.states[4]",
    ] {
        assert!(paths.contains(&expected), "missing {expected} in {paths:?}");
    }
}

#[test]
fn a_bad_expression_names_the_field_that_holds_it() {
    let text = r#"{"name": "x", "root": {"start_at": "C", "states": [
        {"name": "C", "type": "choice", "rules": [{"condition": "$input.a ==", "next": "C"}]}]}}"#;
    let issues = canonical::compile(text).unwrap_err();
    assert_eq!(issues.len(), 1);
    assert!(issues[0].path.contains("root.states[0]"), "{issues:?}");
    assert!(issues[0].message.contains("$input.a =="), "{issues:?}");
    assert!(issues[0].message.contains("offset 11"), "{issues:?}");
}

#[test]
fn unknown_fields_and_kinds_are_rejected() {
    let unknown_kind = r#"{"name": "x", "root": {"start_at": "A", "states": [{"name": "A", "type": "teleport"}]}}"#;
    let issues = canonical::compile(unknown_kind).unwrap_err();
    assert!(issues[0].message.contains("teleport"), "{issues:?}");
    let typo = r#"{"name": "x", "rooot": {}}"#;
    let issues = canonical::compile(typo).unwrap_err();
    assert!(issues[0].message.contains("rooot"), "{issues:?}");
}

#[test]
fn the_canonical_model_round_trips_through_json() {
    let text = json!({
        "name": "rt", "mode": "Express", "timeout_seconds": 10.0,
        "root": {"start_at": "M", "states": [
            {"name": "M", "type": "map", "items": "$input.xs", "max_concurrency": 2,
             "processor": {"start_at": "T", "states": [
                {"name": "T", "type": "task", "resource": "fn", "mode": "wait_for_callback",
                 "parameters": {"token.$": "$context.state.task_token", "k": [1, 2]}, "end": true}]},
             "retry": [{"errors": ["*"], "interval_seconds": 2.0, "max_attempts": 1, "backoff_rate": 1.5}],
             "catch": [{"errors": ["E"], "next": "F"}], "next": "F"},
            {"name": "F", "type": "fail", "error": "Oops", "cause": "because"}
        ]}
    })
    .to_string();
    let flow = canonical::compile(&text).unwrap();
    let again = serde_json::to_string(&flow).unwrap();
    let flow2 = canonical::compile(&again).unwrap();
    assert_eq!(flow, flow2);
}
