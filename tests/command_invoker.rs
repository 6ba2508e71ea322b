//! Integration tests of the `command` invoker: the stdin/stdout convention against real scripts
//! written to a temporary directory, timeouts and cancellation killing the process, the
//! `[[functions]]` validation of command bindings, and the engine calling (and stopping) a
//! command function.

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use flowgate::engine::EngineConfig;
use flowgate::invoke::binding::{validate, FunctionConfig, InvokerKind};
use flowgate::invoke::command::{CommandInvoker, STDOUT_LIMIT};
use flowgate::invoke::{FunctionRegistry, Invocation, InvokeError, Invoker};
use flowgate::model::ExecutionStatus;
use support::{engine, fast_config, output, request};

/// A call with `event` (leaked: an invocation borrows its event, and these tests build a
/// few).
fn invocation(event: Value, attempt: u32) -> Invocation<'static> {
    Invocation {
        resource: "acs:fc:::services/demo/functions/fn",
        event: Box::leak(Box::new(event)),
        attempt,
        execution_id: "exec-123",
        execution_name: "my-execution",
        flow_name: "trip",
        state_name: "BookFlight",
        task_token: None,
        timeout: None,
    }
}

/// Writes an executable script `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn command(path: &Path) -> CommandInvoker {
    CommandInvoker::new("fn", path.to_str().unwrap()).unwrap()
}

fn function_error(error_type: &str, message: &str) -> InvokeError {
    InvokeError::Function {
        error_type: error_type.to_string(),
        message: message.to_string(),
    }
}

fn invocation_code(r: Result<Value, InvokeError>) -> String {
    match r {
        Err(InvokeError::Invocation { code, .. }) => code,
        other => panic!("expected an invocation error, got {other:?}"),
    }
}

/// A script that writes its PID to `pid` and then becomes a long sleep (same PID).
fn sleeper(dir: &Path) -> (PathBuf, PathBuf) {
    let pid = dir.join("pid");
    let path = script(
        dir,
        "sleeper.sh",
        &format!(
            "#!/bin/sh\necho $$ > '{}.tmp' && mv '{}.tmp' '{}'\nexec sleep 30\n",
            pid.display(),
            pid.display(),
            pid.display()
        ),
    );
    (path, pid)
}

/// Waits (bounded) for the sleeper's PID file.
async fn pid_of(file: &Path) -> u32 {
    for _ in 0..1000 {
        if let Ok(s) = std::fs::read_to_string(file) {
            if let Ok(pid) = s.trim().parse() {
                return pid;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the script never wrote {}", file.display());
}

/// Asserts that process `pid` is gone (killed and reaped), polling for a while since
/// reaping a killed process is asynchronous.
async fn assert_gone(pid: u32) {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    for _ in 0..1000 {
        if !proc.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stat = std::fs::read_to_string(proc.join("stat")).unwrap_or_default();
    panic!("process {pid} is still there: {stat}");
}

#[tokio::test]
async fn success_returns_stdout_json_with_the_event_and_context() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        dir.path(),
        "echo.sh",
        r#"#!/bin/sh
event=$(cat)
printf '{"event": %s, "id": "%s", "name": "%s", "flow": "%s", "state": "%s", "attempt": %s, "token": "%s", "extra": "%s", "arg": "%s", "cwd": "%s"}\n' \
  "$event" "$FLOWGATE_EXECUTION_ID" "$FLOWGATE_EXECUTION_NAME" "$FLOWGATE_FLOW" "$FLOWGATE_STATE" \
  "$FLOWGATE_ATTEMPT" "${FLOWGATE_TASK_TOKEN-none}" "$EXTRA" "$1" "$(pwd)"
"#,
    );
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let inv = command(&path)
        .with_args(["first arg"])
        .unwrap()
        .with_env("EXTRA", "extra value")
        .unwrap()
        // Context variables override configured ones.
        .with_env("FLOWGATE_STATE", "configured")
        .unwrap()
        .with_env("FLOWGATE_TASK_TOKEN", "configured")
        .unwrap()
        .with_working_dir(&work);
    let event = json!({"amount": 3, "items": ["a", "b"], "nested": {"k": null}});
    let got = inv.invoke(&invocation(event.clone(), 2)).await.unwrap();
    assert_eq!(
        got,
        json!({
            "event": event, "id": "exec-123", "name": "my-execution", "flow": "trip",
            "state": "BookFlight", "attempt": 2, "token": "none", "extra": "extra value",
            "arg": "first arg", "cwd": work.canonicalize().unwrap().to_str().unwrap()
        })
    );
    let mut call = invocation(json!({}), 0);
    call.task_token = Some("tok-1");
    let got = inv.invoke(&call).await.unwrap();
    assert_eq!(got["token"], json!("tok-1"));
    assert_eq!(got["event"], json!({}));
}

#[tokio::test]
async fn empty_and_non_json_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let empty = script(dir.path(), "empty.sh", "#!/bin/sh\ncat > /dev/null\n");
    assert_eq!(
        command(&empty)
            .invoke(&invocation(json!(1), 0))
            .await
            .unwrap(),
        json!({})
    );
    // A program that does not read its input at all is fine too.
    let text = script(dir.path(), "text.sh", "#!/bin/sh\necho 'hello world'\n");
    assert_eq!(
        command(&text)
            .invoke(&invocation(json!({"big": "x".repeat(1 << 20)}), 0))
            .await
            .unwrap(),
        json!("hello world")
    );
    let scalar = script(dir.path(), "scalar.sh", "#!/bin/sh\necho 42\n");
    assert_eq!(
        command(&scalar)
            .invoke(&invocation(json!(null), 0))
            .await
            .unwrap(),
        json!(42)
    );
}

#[tokio::test]
async fn error_type_convention_with_exit_zero_and_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let zero = script(
        dir.path(),
        "zero.sh",
        "#!/bin/sh\necho '{\"errorType\": \"ValidationError\", \"errorMessage\": \"amount must be positive\"}'\n",
    );
    assert_eq!(
        command(&zero).invoke(&invocation(json!({}), 0)).await,
        Err(function_error("ValidationError", "amount must be positive"))
    );
    let non_zero = script(
        dir.path(),
        "nonzero.sh",
        "#!/bin/sh\necho '{\"errorType\": \"Boom\", \"errorMessage\": \"it broke\"}'\necho noise >&2\nexit 3\n",
    );
    assert_eq!(
        command(&non_zero).invoke(&invocation(json!({}), 0)).await,
        Err(function_error("Boom", "it broke"))
    );
    // Without errorMessage, the message comes from stderr.
    let no_message = script(
        dir.path(),
        "nomessage.sh",
        "#!/bin/sh\necho '{\"errorType\": \"Boom\"}'\necho 'details on stderr' >&2\nexit 1\n",
    );
    assert_eq!(
        command(&no_message).invoke(&invocation(json!({}), 0)).await,
        Err(function_error("Boom", "details on stderr"))
    );
    // An empty errorType is an ordinary result.
    let empty_type = script(
        dir.path(),
        "emptytype.sh",
        "#!/bin/sh\necho '{\"errorType\": \"\"}'\n",
    );
    assert_eq!(
        command(&empty_type)
            .invoke(&invocation(json!({}), 0))
            .await
            .unwrap(),
        json!({"errorType": ""})
    );
}

#[tokio::test]
async fn non_zero_exit_messages_come_from_stderr_or_the_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("#!/bin/sh\necho 'partial output'\n");
    for i in 1..=30 {
        body.push_str(&format!("echo 'line {i}' >&2\n"));
    }
    body.push_str("echo '   ' >&2\nexit 2\n");
    let noisy = script(dir.path(), "noisy.sh", &body);
    let expected: Vec<String> = (21..=30).map(|i| format!("line {i}")).collect();
    assert_eq!(
        command(&noisy).invoke(&invocation(json!({}), 0)).await,
        Err(function_error("CommandFailed", &expected.join("\n")))
    );
    let silent = script(dir.path(), "silent.sh", "#!/bin/sh\nexit 7\n");
    assert_eq!(
        command(&silent).invoke(&invocation(json!({}), 0)).await,
        Err(function_error("CommandFailed", "exit status 7"))
    );
    let killed = script(dir.path(), "killed.sh", "#!/bin/sh\nkill -9 $$\n");
    assert_eq!(
        command(&killed).invoke(&invocation(json!({}), 0)).await,
        Err(function_error("CommandFailed", "killed by signal 9"))
    );
}

#[tokio::test]
async fn spawn_failures_and_oversized_output_are_invocation_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = command(&dir.path().join("does-not-exist"));
    assert_eq!(
        invocation_code(missing.invoke(&invocation(json!({}), 0)).await),
        "Unreachable"
    );
    let not_executable = dir.path().join("plain.sh");
    std::fs::write(&not_executable, "#!/bin/sh\necho 1\n").unwrap();
    assert_eq!(
        invocation_code(
            command(&not_executable)
                .invoke(&invocation(json!({}), 0))
                .await
        ),
        "Unreachable"
    );
    let huge = script(
        dir.path(),
        "huge.sh",
        &format!("#!/bin/sh\nhead -c {} /dev/zero\n", STDOUT_LIMIT + 1),
    );
    assert_eq!(
        invocation_code(command(&huge).invoke(&invocation(json!({}), 0)).await),
        "BadResponse"
    );
    assert!(CommandInvoker::new("fn", "").is_err());
    assert!(command(&huge).with_env("A=B", "x").is_err());
    assert!(command(&huge).with_args(["a\0b"]).is_err());
}

#[tokio::test]
async fn a_timeout_kills_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let (path, pid_file) = sleeper(dir.path());
    // The binding's timeout.
    let inv = command(&path).with_timeout(Duration::from_millis(300));
    let r = inv.invoke(&invocation(json!({}), 0)).await;
    assert_eq!(invocation_code(r), "Timeout");
    assert_gone(pid_of(&pid_file).await).await;

    // The task's timeout, when shorter.
    std::fs::remove_file(&pid_file).unwrap();
    let inv = command(&path);
    assert_eq!(inv.timeout(), CommandInvoker::DEFAULT_TIMEOUT);
    let mut call = invocation(json!({}), 0);
    call.timeout = Some(Duration::from_millis(300));
    assert_eq!(invocation_code(inv.invoke(&call).await), "Timeout");
    assert_gone(pid_of(&pid_file).await).await;
}

#[tokio::test]
async fn dropping_the_call_kills_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let (path, pid_file) = sleeper(dir.path());
    let inv = command(&path);
    let call = invocation(json!({}), 0);
    let pid = tokio::select! {
        r = inv.invoke(&call) => panic!("the sleeper returned {r:?}"),
        pid = pid_of(&pid_file) => pid,
    };
    // The invoke future is dropped at the end of the select (as when an execution is stopped).
    assert_gone(pid).await;
}

fn configs(v: Value) -> Vec<FunctionConfig> {
    serde_json::from_value(v).unwrap()
}

#[test]
fn validation_reports_command_problems_with_their_paths() {
    let functions = configs(json!([
        {"name": "c0", "invoker": "command"},
        {"name": "c1", "invoker": "command", "command": " ", "args": ["ok", "a\u{0}b"],
         "env": {"A=B": "x", "OK": "v\u{0}", "FINE": "y"}, "working_dir": "", "timeout_seconds": 0,
         "url": "http://127.0.0.1:1/f", "headers": {"a": "b"}, "responses": [{"return": 1}]},
        {"name": "m", "invoker": "mock", "responses": [{"return": 1}], "command": "x",
         "args": ["a"], "env": {"K": "v"}, "working_dir": "/tmp", "timeout_seconds": 1},
        {"name": "h", "invoker": "http", "url": "http://127.0.0.1:1/f", "command": "x", "args": ["a"]},
        {"name": "fine", "invoker": "command", "command": "/bin/true", "args": ["-x", ""],
         "env": {"K": "v"}, "working_dir": "/tmp", "timeout_seconds": 2.5},
        {"name": "c5", "invoker": "command", "command": "fn", "timeout_seconds": -1},
    ]));
    let problems = validate(&functions);
    let paths: BTreeSet<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
    let expected: BTreeSet<&str> = [
        "functions[0].command",
        "functions[1].command",
        "functions[1].args[1]",
        "functions[1].env.A=B",
        "functions[1].env.OK",
        "functions[1].working_dir",
        "functions[1].timeout_seconds",
        "functions[1].url",
        "functions[1].headers",
        "functions[1].responses",
        "functions[2].command",
        "functions[2].args",
        "functions[2].env",
        "functions[2].working_dir",
        "functions[2].timeout_seconds",
        "functions[3].command",
        "functions[3].args",
        "functions[5].timeout_seconds",
    ]
    .into_iter()
    .collect();
    assert_eq!(paths, expected, "{problems:#?}");
    assert!(problems
        .iter()
        .any(|(p, m)| p == "functions[0].command" && m == "required by a command invoker"));
    assert!(problems
        .iter()
        .any(|(p, m)| p == "functions[2].env" && m == "only used by a command invoker"));
    assert!(problems.iter().all(|(_, m)| !m.is_empty()));
    assert_eq!(
        FunctionRegistry::from_config(&functions).unwrap_err(),
        problems
    );
    assert!(validate(&functions[4..5]).is_empty());

    // Unknown keys and wrongly-cased kinds are rejected.
    assert!(serde_json::from_value::<FunctionConfig>(
        json!({"name": "f", "invoker": "command", "cmd": "x"})
    )
    .is_err());
    assert!(serde_json::from_value::<FunctionConfig>(
        json!({"name": "f", "invoker": "Command", "command": "x"})
    )
    .is_err());
}

#[test]
fn command_bindings_parse_from_toml() {
    #[derive(serde::Deserialize)]
    struct Root {
        functions: Vec<FunctionConfig>,
    }
    let toml = r#"
        [[functions]]
        name = "greet"
        invoker = "command"
        command = "examples/functions/greet.py"
        args = ["--verbose"]
        env = { GREETING = "hello" }
        working_dir = "/tmp"
        timeout_seconds = 10
    "#;
    use figment::providers::Format;
    let root: Root = figment::Figment::from(figment::providers::Toml::string(toml))
        .extract()
        .unwrap();
    let f = &root.functions[0];
    assert_eq!(f.invoker, InvokerKind::Command);
    assert_eq!(f.command.as_deref(), Some("examples/functions/greet.py"));
    assert_eq!(f.args, vec!["--verbose".to_string()]);
    assert_eq!(f.env.get("GREETING").map(String::as_str), Some("hello"));
    assert_eq!(f.working_dir.as_deref(), Some("/tmp"));
    assert_eq!(f.timeout_seconds, Some(10.0));
    assert!(validate(&root.functions).is_empty());
    let back: Vec<FunctionConfig> =
        serde_json::from_value(serde_json::to_value(&root.functions).unwrap()).unwrap();
    assert_eq!(back, root.functions);
}

fn example() -> String {
    format!("{}/examples/functions/greet.py", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn registry_from_config_runs_the_example_function() {
    let functions = configs(json!([
        {"name": "greet", "invoker": "command", "command": example(), "timeout_seconds": 30}
    ]));
    let reg = FunctionRegistry::from_config(&functions).unwrap();
    let b = reg
        .resolve("urn:fss:cn-north-4:p:function:default:greet:latest")
        .unwrap();
    assert_eq!(
        b.invoker
            .invoke(&invocation(json!({"name": "bo"}), 1))
            .await
            .unwrap(),
        json!({"message": "hello bo", "execution": "my-execution", "state": "BookFlight", "attempt": 1})
    );
    assert_eq!(
        b.invoker.invoke(&invocation(json!({}), 0)).await,
        Err(function_error("ValidationError", "name is required"))
    );
}

#[tokio::test]
async fn a_task_calls_a_command_function() {
    let t = engine(
        json!([{"name": "greet", "invoker": "command", "command": example()}]),
        fast_config(),
    );
    let flow = t
        .deploy(json!({"name": "cmd", "root": {"start_at": "T", "states": [
            {"name": "T", "type": "task", "resource": "acs:fc:cn-hangzhou:123:services/demo/functions/greet",
             "parameters": {"name.$": "$input.who"},
             "output": {"reply.$": "$result.message", "state.$": "$result.state"}, "end": true}]}}))
        .await;
    let rec = t.run(&flow, json!({"who": "bo"})).await;
    assert_eq!(rec.status, ExecutionStatus::Succeeded, "{rec:?}");
    assert_eq!(output(&rec), json!({"reply": "hello bo", "state": "T"}));

    let rec = t.run(&flow, json!({})).await;
    assert_eq!(rec.status, ExecutionStatus::Failed, "{rec:?}");
    assert_eq!(rec.error.as_deref(), Some("ValidationError"));
    assert_eq!(rec.cause.as_deref(), Some("name is required"));
}

#[tokio::test]
async fn stopping_an_execution_kills_its_running_command() {
    let dir = tempfile::tempdir().unwrap();
    let (path, pid_file) = sleeper(dir.path());
    let t = engine(
        json!([{"name": "slow", "invoker": "command", "command": path.to_str().unwrap()}]),
        EngineConfig {
            time_scale: 1.0,
            ..fast_config()
        },
    );
    let flow = t
        .deploy(
            json!({"name": "stoppable", "root": {"start_at": "T", "states": [
            {"name": "T", "type": "task", "resource": "slow", "end": true}]}}),
        )
        .await;
    let started = t
        .engine
        .start(request(&flow, Some("to-stop"), json!({})))
        .await
        .unwrap();
    let pid = pid_of(&pid_file).await;
    let rec = t.engine.stop(&started.record.id, None, None).await.unwrap();
    assert_eq!(rec.status, ExecutionStatus::Stopped);
    assert_gone(pid).await;
}
