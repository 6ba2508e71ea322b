//! The real binary as a test subject: a `flowgate serve` process on a configuration in a
//! temporary directory (auth off), Alibaba RPC calls against it, and a command function
//! (`fn.sh`) that logs every call and behaves by state name. Shared by the crash tests
//! (tests/durability.rs, SQLite) and the several-node tests (tests/multinode.rs, PostgreSQL).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `flowgate serve` process on a configuration and data directory that outlive it.
pub struct Gateway {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    client: reqwest::Client,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Gateway {
    /// Starts the gateway in `dir` (its `flowgate.toml`) and waits until it is healthy.
    pub async fn start(dir: &Path) -> Gateway {
        Gateway::start_with(dir, &dir.join("flowgate.toml")).await
    }

    /// Starts the gateway in `dir` with the configuration file `config` and waits until it
    /// is healthy.
    pub async fn start_with(dir: &Path, config: &Path) -> Gateway {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowgate"));
        // FLOWGATE_* variables would override the test configuration.
        for (k, _) in std::env::vars() {
            if k.starts_with("FLOWGATE_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--config",
            ])
            .arg(config)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start flowgate");
        let mut gw = Gateway {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = gw.child.try_wait().unwrap() {
                panic!("flowgate exited at start-up: {status}");
            }
            if let Ok(r) = gw
                .client
                .get(format!("{}/_flowgate/health", gw.base))
                .send()
                .await
            {
                if r.status().is_success() {
                    return gw;
                }
            }
            assert!(Instant::now() < deadline, "flowgate did not become healthy");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `kill -9`: no shutdown path runs.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    /// `kill -TERM`: the graceful shutdown. Returns once the process has exited (at most
    /// `max`), with whether it exited successfully.
    pub async fn terminate(mut self, max: Duration) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + max;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "flowgate did not shut down");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `/_flowgate/health`.
    pub async fn health(&self) -> Value {
        self.client
            .get(format!("{}/_flowgate/health", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// An Alibaba RPC call (auth is off in these tests); panics unless it succeeds.
    pub async fn rpc(&self, action: &str, params: &[(&str, &str)]) -> Value {
        let (status, body) = self.try_rpc(action, params).await;
        assert!(status < 300, "{action}: {status} {body}");
        body
    }

    /// An Alibaba RPC call: its status and body.
    pub async fn try_rpc(&self, action: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}/?Action={action}&Version=2019-03-15", self.base))
            .form(params)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    pub async fn describe(&self, flow: &str, name: &str) -> Value {
        self.rpc(
            "DescribeExecution",
            &[("FlowName", flow), ("ExecutionName", name)],
        )
        .await
    }

    /// Long-polls until the execution is no longer running (at most `max`).
    pub async fn finish(&self, flow: &str, name: &str, max: Duration) -> Value {
        let deadline = Instant::now() + max;
        loop {
            let d = self
                .rpc(
                    "DescribeExecution",
                    &[
                        ("FlowName", flow),
                        ("ExecutionName", name),
                        ("WaitTimeSeconds", "5"),
                    ],
                )
                .await;
            if d["Status"] != "Running" {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "{flow}/{name} still running: {d}"
            );
        }
    }

    /// The execution's history as the Alibaba API shows it (up to 1000 events).
    pub async fn history(&self, flow: &str, name: &str) -> Vec<Value> {
        let h = self
            .rpc(
                "GetExecutionHistory",
                &[
                    ("FlowName", flow),
                    ("ExecutionName", name),
                    ("Limit", "1000"),
                ],
            )
            .await;
        h["Events"].as_array().cloned().unwrap_or_default()
    }
}

/// The command function every configuration binds as `fn`: it appends
/// `<execution> <state> <attempt>` to `$CALLS` on every call, then, by state name:
/// `Approve` writes its task token to `$TOKENS/<execution>` (and answers 1 s later for
/// executions whose name starts with `h`: a node stopped meanwhile has a call in flight); `Flaky` fails its first attempt
/// (`Transient`); `Slow` takes 2 s; `Step*` answers at once, or after 1 s for executions whose
/// name starts with `k`.
const SCRIPT: &str = r#"#!/bin/sh
echo "$FLOWGATE_EXECUTION_NAME $FLOWGATE_STATE $FLOWGATE_ATTEMPT" >> "$CALLS"
case "$FLOWGATE_STATE" in
  Approve)
    printf '%s' "$FLOWGATE_TASK_TOKEN" > "$TOKENS/$FLOWGATE_EXECUTION_NAME.tmp"
    mv "$TOKENS/$FLOWGATE_EXECUTION_NAME.tmp" "$TOKENS/$FLOWGATE_EXECUTION_NAME"
    case "$FLOWGATE_EXECUTION_NAME" in
      h*) sleep 1 ;;
    esac
    echo '{}' ;;
  Flaky)
    if [ "$FLOWGATE_ATTEMPT" = 0 ]; then
      echo '{"errorType":"Transient","errorMessage":"first try fails"}'
    else
      echo '{"ok":true}'
    fi ;;
  Slow)
    sleep 2
    echo '{"slow":true}' ;;
  Step*)
    case "$FLOWGATE_EXECUTION_NAME" in
      k*) sleep 1 ;;
    esac
    echo "{\"step\":\"$FLOWGATE_STATE\"}" ;;
esac
"#;

/// The `[store]` table of a single node on SQLite in the data directory.
pub const SQLITE_STORE: &str = "kind = \"sqlite\"\npath = \"data/flowgate.db\"\n";

/// A data directory with the command function `fn.sh`, its call log (`calls.log`, not yet
/// there) and its token directory (`tokens/`), but no configuration yet.
pub fn scaffold() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls.log");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let script = dir.path().join("fn.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (dir, calls, tokens)
}

/// Writes `dir/<file>`: real time, auth off, no flows directory, the given `[store]` table
/// (its body) and the command function of [`scaffold`]. Returns its path.
pub fn write_config(dir: &Path, file: &str, store: &str) -> PathBuf {
    let path_of = |p: &str| dir.join(p).display().to_string();
    let config = format!(
        "[auth]\nmode = \"off\"\n\n[flows]\ndir = \"\"\n\n[log]\nlevel = \"warn\"\n\n\
         [store]\n{store}\n\
         [[functions]]\nname = \"fn\"\ninvoker = \"command\"\ncommand = {script:?}\n\
         env = {{ CALLS = {calls:?}, TOKENS = {tokens:?} }}\n",
        script = path_of("fn.sh"),
        calls = path_of("calls.log"),
        tokens = path_of("tokens"),
    );
    let path = dir.join(file);
    std::fs::write(&path, config).unwrap();
    path
}

/// [`scaffold`] with a configuration (`flowgate.toml`) on the default SQLite store.
pub fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (dir, calls, tokens) = scaffold();
    write_config(dir.path(), "flowgate.toml", SQLITE_STORE);
    (dir, calls, tokens)
}

/// A CloudFlow task state calling `fn` with its task token in the body; `extra` follows
/// (indented four spaces), and a `Next:` or `End:` line has to.
pub fn task(name: &str, mode: &str, extra: &str) -> String {
    format!(
        "  - Type: Task\n    Name: {name}\n    Action: FC:InvokeFunction\n    TaskMode: {mode}\n    \
         Parameters:\n      resourceArn: acs:fc:cn-hangzhou:123:functions/fn/LATEST\n      \
         invocationType: Sync\n      body:\n        token.$: $Context.Current.TaskToken\n{extra}"
    )
}

/// The head of a CloudFlow definition, up to `States:`.
pub fn head(name: &str, start: &str) -> String {
    format!("Type: StateMachine\nSpecVersion: v1\nName: {name}\nStartAt: {start}\nStates:\n")
}

/// The Pass state every flow ends in: `{"done": true, "seen": <its input>}`.
pub const DONE: &str = "  - Type: Pass\n    Name: Done\n    OutputConstructor:\n      \
                        done: true\n      seen.$: $Input\n    End: true\n";

/// The flows of these tests (CloudFlow): each but `globals` ends in a Pass that marks it done;
/// `globals` keeps its input's `order` in `$global` across a 3 s Wait and outputs
/// `{"remembered": <order>}`.
pub fn flows() -> Vec<(&'static str, String)> {
    let done = DONE;
    vec![
        (
            "waits",
            format!(
                "{}  - Type: Wait\n    Name: Pause\n    Seconds: 3\n    Next: Done\n{done}",
                head("waits", "Pause")
            ),
        ),
        (
            "globals",
            format!(
                "{}  - Type: Pass\n    Name: Remember\n    GlobalConstructor:\n      \
                 kept.$: $Input.order\n    Next: Pause\n  \
                 - Type: Wait\n    Name: Pause\n    Seconds: 3\n    Next: Recall\n  \
                 - Type: Pass\n    Name: Recall\n    OutputConstructor:\n      \
                 remembered.$: $Global.kept\n    End: true\n",
                head("globals", "Remember")
            ),
        ),
        (
            "callback",
            format!(
                "{}{}    Next: Done\n{done}",
                head("callback", "Approve"),
                task("Approve", "WaitForCustomCallback", "")
            ),
        ),
        (
            "retries",
            format!(
                "{}{}    Retry:\n      - Errors: [Transient]\n        MaxAttempts: 2\n        \
                 IntervalSeconds: 3\n    OutputConstructor:\n      attempts.$: $Context.Current.RetryCount\n    \
                 Next: Done\n{done}",
                head("retries", "Flaky"),
                task("Flaky", "RequestComplete", "")
            ),
        ),
        (
            "slow",
            format!(
                "{}{}    Next: Done\n{done}",
                head("slow", "Slow"),
                task("Slow", "RequestComplete", "")
            ),
        ),
        (
            "long",
            format!(
                "{}  - Type: Wait\n    Name: Pause\n    Seconds: 600\n    Next: Done\n{done}",
                head("long", "Pause")
            ),
        ),
    ]
}

/// Creates one flow (FDL).
pub async fn create_flow(gw: &Gateway, name: &str, definition: &str) {
    gw.rpc(
        "CreateFlow",
        &[
            ("Name", name),
            ("Type", "FDL"),
            ("Description", "crash test"),
            ("Definition", definition),
        ],
    )
    .await;
}

/// Creates every flow of [`flows`].
pub async fn deploy(gw: &Gateway) {
    for (name, definition) in flows() {
        create_flow(gw, name, &definition).await;
    }
}

/// Starts an execution with the input `{"order":7}`.
pub async fn start(gw: &Gateway, flow: &str, name: &str) -> Value {
    gw.rpc(
        "StartExecution",
        &[
            ("FlowName", flow),
            ("ExecutionName", name),
            ("Input", r#"{"order":7}"#),
        ],
    )
    .await
}

/// The non-empty content of a file once it appears (at most `max`).
pub async fn wait_for_file(path: &Path, max: Duration) -> String {
    let deadline = Instant::now() + max;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.is_empty() {
                return s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until what the crash tests kill a gateway over is stored: the retry's failed call
/// with its back-off (`r1`) and both Waits (`w1`, `g1`), so a test does not race the commit.
pub async fn until_crash_ready(gw: &Gateway) {
    for (flow, name, kind, step) in [
        ("retries", "r1", "TaskFailed", "Flaky"),
        ("waits", "w1", "StepEntered", "Pause"),
        ("globals", "g1", "StepEntered", "Pause"),
    ] {
        until_recorded(gw, flow, name, kind, step).await;
    }
}

/// Waits until the stored history of `flow`/`name` (GetExecutionHistory reads the store) holds
/// an event of vendor type `kind` in step `step`: what a crash test needs stored before it
/// kills a gateway, so the test does not race the engine's commit.
pub async fn until_recorded(gw: &Gateway, flow: &str, name: &str, kind: &str, step: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stored = gw.history(flow, name).await;
        if stored
            .iter()
            .any(|e| e["Type"] == kind && e["StepName"] == step)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: no {kind} of {step} stored: {stored:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The lines of the call log for one execution, in order.
pub fn calls_of(calls: &Path, execution: &str) -> Vec<String> {
    std::fs::read_to_string(calls)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split(' ').next() == Some(execution))
        .map(str::to_string)
        .collect()
}

/// The parsed `Output` of a DescribeExecution answer (`null` when absent).
pub fn output(d: &Value) -> Value {
    serde_json::from_str(d["Output"].as_str().unwrap_or("null")).unwrap()
}

/// A time field of an answer.
pub fn time_of(d: &Value, field: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(d[field].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
}
