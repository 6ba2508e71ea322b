//! Crash tests with the real binary on the default SQLite store: Standard executions that
//! wait, wait for a callback, back off in a retry or are in the middle of a call; `kill -9`;
//! restart; every execution finishes with the right output and history, and nothing that was
//! answered with success is lost (a start, a stop, a report).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A `flowgate serve` process on a configuration and data directory that outlive it.
struct Gateway {
    child: Child,
    base: String,
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
    async fn start(dir: &Path) -> Gateway {
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
            .arg(dir.join("flowgate.toml"))
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
    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    /// An Alibaba RPC call (auth is off in these tests); panics unless it succeeds.
    async fn rpc(&self, action: &str, params: &[(&str, &str)]) -> Value {
        let (status, body) = self.try_rpc(action, params).await;
        assert!(status < 300, "{action}: {status} {body}");
        body
    }

    async fn try_rpc(&self, action: &str, params: &[(&str, &str)]) -> (u16, Value) {
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

    async fn describe(&self, flow: &str, name: &str) -> Value {
        self.rpc(
            "DescribeExecution",
            &[("FlowName", flow), ("ExecutionName", name)],
        )
        .await
    }

    /// Long-polls until the execution is no longer running (at most `max`).
    async fn finish(&self, flow: &str, name: &str, max: Duration) -> Value {
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

    async fn history(&self, flow: &str, name: &str) -> Vec<Value> {
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

/// A data directory with a configuration: real time, auth off, the default SQLite store, and
/// one command function (`fn.sh`) that logs every call and behaves by state name.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls.log");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let script = dir.path().join("fn.sh");
    std::fs::write(
        &script,
        r#"#!/bin/sh
echo "$FLOWGATE_EXECUTION_NAME $FLOWGATE_STATE $FLOWGATE_ATTEMPT" >> "$CALLS"
case "$FLOWGATE_STATE" in
  Approve)
    printf '%s' "$FLOWGATE_TASK_TOKEN" > "$TOKENS/$FLOWGATE_EXECUTION_NAME.tmp"
    mv "$TOKENS/$FLOWGATE_EXECUTION_NAME.tmp" "$TOKENS/$FLOWGATE_EXECUTION_NAME"
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
esac
"#,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = format!(
        "[auth]\nmode = \"off\"\n\n[flows]\ndir = \"\"\n\n[log]\nlevel = \"warn\"\n\n\
         [store]\nkind = \"sqlite\"\npath = \"data/flowgate.db\"\n\n\
         [[functions]]\nname = \"fn\"\ninvoker = \"command\"\ncommand = {script:?}\n\
         env = {{ CALLS = {calls:?}, TOKENS = {tokens:?} }}\n",
        script = script.display().to_string(),
        calls = calls.display().to_string(),
        tokens = tokens.display().to_string(),
    );
    std::fs::write(dir.path().join("flowgate.toml"), config).unwrap();
    (dir, calls, tokens)
}

fn task(name: &str, mode: &str, extra: &str) -> String {
    format!(
        "  - Type: Task\n    Name: {name}\n    Action: FC:InvokeFunction\n    TaskMode: {mode}\n    \
         Parameters:\n      resourceArn: acs:fc:cn-hangzhou:123:functions/fn/LATEST\n      \
         invocationType: Sync\n      body:\n        token.$: $Context.Current.TaskToken\n{extra}"
    )
}

/// The flows of these tests (CloudFlow): each ends in a Pass that marks it done.
fn flows() -> Vec<(&'static str, String)> {
    let head = |name: &str, start: &str| {
        format!("Type: StateMachine\nSpecVersion: v1\nName: {name}\nStartAt: {start}\nStates:\n")
    };
    let done = "  - Type: Pass\n    Name: Done\n    OutputConstructor:\n      done: true\n      \
                seen.$: $Input\n    End: true\n";
    vec![
        (
            "waits",
            format!(
                "{}  - Type: Wait\n    Name: Pause\n    Seconds: 3\n    Next: Done\n{done}",
                head("waits", "Pause")
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

async fn deploy(gw: &Gateway) {
    for (name, definition) in flows() {
        gw.rpc(
            "CreateFlow",
            &[
                ("Name", name),
                ("Type", "FDL"),
                ("Description", "crash test"),
                ("Definition", &definition),
            ],
        )
        .await;
    }
}

async fn start(gw: &Gateway, flow: &str, name: &str) -> Value {
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

async fn wait_for_file(path: &Path, max: Duration) -> String {
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

fn calls_of(calls: &Path, execution: &str) -> Vec<String> {
    std::fs::read_to_string(calls)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split(' ').next() == Some(execution))
        .map(str::to_string)
        .collect()
}

fn output(d: &Value) -> Value {
    serde_json::from_str(d["Output"].as_str().unwrap_or("null")).unwrap()
}

fn time_of(d: &Value, field: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(d[field].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_executions_finish_after_kill_9() {
    let (dir, calls, tokens) = setup();
    let gw = Gateway::start(dir.path()).await;
    deploy(&gw).await;

    let waits = start(&gw, "waits", "w1").await;
    start(&gw, "callback", "c1").await;
    start(&gw, "retries", "r1").await;
    start(&gw, "slow", "s1").await;
    start(&gw, "long", "l1").await;
    let token = wait_for_file(&tokens.join("c1"), Duration::from_secs(10)).await;
    // The retry's first call failed and its 3 s back-off began; the slow call is running.
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls_of(&calls, "r1").is_empty() || calls_of(&calls, "s1").is_empty() {
        assert!(Instant::now() < deadline, "the calls never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A stop answered with success survives the crash.
    gw.rpc(
        "StopExecution",
        &[
            ("FlowName", "long"),
            ("ExecutionName", "l1"),
            ("Error", "Halt"),
            ("Cause", "stopped before the crash"),
        ],
    )
    .await;
    let w1 = gw.describe("waits", "w1").await;
    assert_eq!(waits["Status"], "Running");
    gw.kill9();

    let gw = Gateway::start(dir.path()).await;
    // The Wait keeps its original deadline: 3 s after it started, not after the restart.
    let w = gw.finish("waits", "w1", Duration::from_secs(30)).await;
    assert_eq!(w["Status"], "Succeeded", "{w}");
    assert_eq!(output(&w), json!({"done": true, "seen": {"order": 7}}));
    let waited = time_of(&w, "StoppedTime") - time_of(&w1, "StartedTime");
    assert!(
        waited >= chrono::Duration::milliseconds(2900),
        "the wait ended early: {waited}"
    );

    // The callback task kept its token: a report made after the restart lands.
    let report = gw
        .rpc(
            "ReportTaskSucceeded",
            &[("TaskToken", &token), ("Output", r#"{"approved":true}"#)],
        )
        .await;
    assert!(report["EventId"].as_i64().unwrap_or(0) > 0, "{report}");
    let c = gw.finish("callback", "c1", Duration::from_secs(30)).await;
    assert_eq!(c["Status"], "Succeeded", "{c}");
    assert_eq!(output(&c)["seen"]["approved"], json!(true), "{c}");
    assert_eq!(
        calls_of(&calls, "c1").len(),
        1,
        "a callback task whose call returned is not called again"
    );

    // The retry carried on: attempt 1 ran after the back-off, counted as the first retry.
    let r = gw.finish("retries", "r1", Duration::from_secs(30)).await;
    assert_eq!(r["Status"], "Succeeded", "{r}");
    assert_eq!(output(&r)["seen"]["attempts"], json!(1), "{r}");
    assert_eq!(
        calls_of(&calls, "r1"),
        ["r1 Flaky 0", "r1 Flaky 1"],
        "one failed call, one retry"
    );

    // The call in flight at the crash ran again (at least once), and the history shows it.
    let s = gw.finish("slow", "s1", Duration::from_secs(30)).await;
    assert_eq!(s["Status"], "Succeeded", "{s}");
    assert_eq!(output(&s)["seen"]["Body"]["slow"], json!(true), "{s}");
    assert_eq!(
        calls_of(&calls, "s1").len(),
        2,
        "the interrupted call ran again"
    );
    let scheduled = gw
        .history("slow", "s1")
        .await
        .iter()
        .filter(|e| e["Type"] == "TaskScheduled")
        .count();
    assert_eq!(scheduled, 2, "both calls are in the history");

    // The stop answered before the crash still holds.
    let l = gw.describe("long", "l1").await;
    assert_eq!(l["Status"], "Stopped", "{l}");
    gw.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_answered_is_lost() {
    let (dir, _calls, tokens) = setup();
    let gw = Gateway::start(dir.path()).await;
    deploy(&gw).await;
    // Many starts, the crash right after the last answer.
    let n = 40;
    for i in 0..n {
        start(&gw, "waits", &format!("w{i}")).await;
    }
    start(&gw, "callback", "c2").await;
    let token = wait_for_file(&tokens.join("c2"), Duration::from_secs(10)).await;
    // A report answered with success, then the crash at once.
    gw.rpc(
        "ReportTaskSucceeded",
        &[("TaskToken", &token), ("Output", r#"{"approved":"yes"}"#)],
    )
    .await;
    gw.kill9();

    let gw = Gateway::start(dir.path()).await;
    for i in 0..n {
        let d = gw
            .finish("waits", &format!("w{i}"), Duration::from_secs(30))
            .await;
        assert_eq!(d["Status"], "Succeeded", "w{i}: {d}");
    }
    let c = gw.finish("callback", "c2", Duration::from_secs(30)).await;
    assert_eq!(c["Status"], "Succeeded", "{c}");
    assert_eq!(output(&c)["seen"]["approved"], json!("yes"), "{c}");
    // The token is spent: a second report is refused.
    let (status, body) = gw
        .try_rpc(
            "ReportTaskSucceeded",
            &[("TaskToken", &token), ("Output", "{}")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let listed = gw
        .rpc("ListExecutions", &[("FlowName", "waits"), ("Limit", "100")])
        .await;
    assert_eq!(
        listed["Executions"].as_array().map(Vec::len),
        Some(n),
        "{listed}"
    );
    gw.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_and_finished_executions_survive_a_clean_restart() {
    let (dir, _calls, _tokens) = setup();
    let gw = Gateway::start(dir.path()).await;
    deploy(&gw).await;
    start(&gw, "waits", "done1").await;
    let d = gw.finish("waits", "done1", Duration::from_secs(30)).await;
    assert_eq!(d["Status"], "Succeeded");
    let events = gw.history("waits", "done1").await;
    drop(gw); // SIGKILL too; nothing is running
    let gw = Gateway::start(dir.path()).await;
    let again = gw.describe("waits", "done1").await;
    assert_eq!(again["Status"], "Succeeded");
    assert_eq!(again["Output"], d["Output"]);
    assert_eq!(gw.history("waits", "done1").await, events);
    let flows = gw.rpc("ListFlows", &[("Limit", "100")]).await;
    assert_eq!(flows["Flows"].as_array().map(Vec::len), Some(5), "{flows}");
    // An execution name is still taken after the restart.
    let (status, body) = gw
        .try_rpc(
            "StartExecution",
            &[("FlowName", "waits"), ("ExecutionName", "done1")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
}
