//! [`CommandInvoker`]: calls a function by running a local program once per attempt, with the
//! task's event as JSON on its stdin and its result read from stdout, so that functions can be
//! plain scripts (Python, shell, anything executable). The convention is documented in
//! `docs/functions.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{Invocation, InvokeError, Invoker};

/// Most bytes of stdout a call may produce: 6 MiB, about FC's payload limit. More is an
/// invocation error `BadResponse` (the rest is read and discarded so the program never blocks).
pub const STDOUT_LIMIT: usize = 6 * 1024 * 1024;

/// Most bytes of stderr kept (the last ones); the rest is read and discarded.
pub const STDERR_LIMIT: usize = 64 * 1024;

/// How many of the last stderr lines make an error message.
const STDERR_LINES: usize = 10;

/// Linux's "text file busy" error number.
const ETXTBSY: i32 = 26;

/// Longest error message taken from stderr, in characters (the end is kept).
const STDERR_MESSAGE: usize = 2048;

/// Checks a configured environment variable; the message is a configuration problem.
pub(crate) fn check_env(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("environment variable names must not be empty".to_string());
    }
    if name.contains('=') || name.contains('\0') {
        return Err(format!(
            "invalid environment variable name \"{}\": must not contain `=` or NUL",
            name.escape_debug()
        ));
    }
    if value.contains('\0') {
        return Err(format!(
            "the value of environment variable \"{name}\" must not contain NUL"
        ));
    }
    Ok(())
}

/// Checks a configured program path, argument or working directory: not empty (except
/// arguments) and without NUL; the message is a configuration problem.
pub(crate) fn check_text(what: &str, s: &str, may_be_empty: bool) -> Result<(), String> {
    if !may_be_empty && s.trim().is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if s.contains('\0') {
        return Err(format!("{what} must not contain NUL"));
    }
    Ok(())
}

/// Runs a local program for each call:
///
/// * the event is written as JSON on stdin, which is then closed;
/// * the context is in the environment: `FLOWGATE_EXECUTION_ID`, `FLOWGATE_EXECUTION_NAME`,
///   `FLOWGATE_FLOW`, `FLOWGATE_STATE`, `FLOWGATE_ATTEMPT` and, for callback tasks,
///   `FLOWGATE_TASK_TOKEN`, on top of the gateway's environment and the configured variables;
/// * exit 0 with a JSON object whose `errorType` is a non-empty string → [`InvokeError::Function`]
///   of that type, message `errorMessage` (else `message`, else the end of stderr);
/// * other exit 0 → `Ok`: stdout's JSON value, `{}` for empty output, or the text (without its
///   trailing newline) as a JSON string;
/// * non-zero exit (or death by a signal) → [`InvokeError::Function`] of type `errorType` from a
///   JSON object on stdout, else `CommandFailed`; message `errorMessage`, else the last lines of
///   stderr, else `exit status N`;
/// * the program cannot be started → invocation error `Unreachable`; more than
///   [`STDOUT_LIMIT`] bytes of stdout → `BadResponse`; no exit within the timeout (the shorter
///   of the binding's and the task's) → the process is killed and the code is `Timeout`.
///
/// The call is cancel-safe: dropping the future kills the process (`kill_on_drop`). Only the
/// process itself is killed, not processes it started: scripts that wrap a long-running
/// program should `exec` it.
#[derive(Debug, Clone)]
pub struct CommandInvoker {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    working_dir: Option<PathBuf>,
    timeout: Duration,
}

impl CommandInvoker {
    /// Timeout of a call when neither the binding nor the task sets one.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    /// Creates an invoker of function `name` (used in messages) running `program`: a name
    /// looked up in `PATH`, or a path. A relative path with a `/` (`./fn.py`,
    /// `examples/functions/greet.py`) is resolved now against the gateway's current directory,
    /// whatever the working directory of the calls.
    pub fn new(name: impl Into<String>, program: &str) -> Result<Self, String> {
        check_text("the command", program, false)?;
        let path = Path::new(program);
        let program = if path.is_relative() && program.contains('/') {
            std::path::absolute(path)
                .map_err(|e| format!("cannot resolve the command path \"{program}\": {e}"))?
        } else {
            path.to_path_buf()
        };
        Ok(CommandInvoker {
            name: name.into(),
            program,
            args: Vec::new(),
            env: BTreeMap::new(),
            working_dir: None,
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// Sets the program's arguments.
    pub fn with_args<I, S>(mut self, args: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        for a in &args {
            check_text("an argument", a, true)?;
        }
        self.args = args;
        Ok(self)
    }

    /// Adds an environment variable. The `FLOWGATE_*` context variables are set per call and
    /// override configured ones.
    pub fn with_env(mut self, name: &str, value: &str) -> Result<Self, String> {
        check_env(name, value)?;
        self.env.insert(name.to_string(), value.to_string());
        Ok(self)
    }

    /// Sets the directory the program runs in (default: the gateway's).
    pub fn with_working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    /// Sets the binding's timeout; a call uses the shorter of it and the task's timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The function name this invoker calls.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The program run for each call.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The binding's timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn command(&self, call: &Invocation<'_>) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .envs(&self.env)
            .env("FLOWGATE_EXECUTION_ID", call.execution_id)
            .env("FLOWGATE_EXECUTION_NAME", call.execution_name)
            .env("FLOWGATE_FLOW", call.flow_name)
            .env("FLOWGATE_STATE", call.state_name)
            .env("FLOWGATE_ATTEMPT", call.attempt.to_string());
        match &call.task_token {
            Some(t) => cmd.env("FLOWGATE_TASK_TOKEN", t),
            None => cmd.env_remove("FLOWGATE_TASK_TOKEN"),
        };
        if let Some(dir) = &self.working_dir {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, call: &Invocation<'_>, timeout: Duration) -> Result<Value, InvokeError> {
        let input = serde_json::to_vec(&call.event).map_err(|e| InvokeError::Invocation {
            code: "BadRequest".to_string(),
            message: format!("cannot serialize the event: {e}"),
        })?;
        let mut command = self.command(call);
        let mut retries = 0;
        let mut child = loop {
            match command.spawn() {
                Ok(child) => break child,
                // ETXTBSY: the program file is still open for writing somewhere (just written,
                // or its descriptor inherited by a process being forked); it passes quickly.
                Err(e) if e.raw_os_error() == Some(ETXTBSY) && retries < 5 => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(10 * retries)).await;
                }
                Err(e) => {
                    return Err(InvokeError::Invocation {
                        code: "Unreachable".to_string(),
                        message: format!(
                            "cannot run function {} ({}): {e}",
                            self.name,
                            self.program.display()
                        ),
                    })
                }
            }
        };
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let finished = tokio::time::timeout(timeout, async {
            let write = async move {
                if let Some(mut stdin) = stdin {
                    // A program that exits without reading its input is not an error.
                    let _ = stdin.write_all(&input).await;
                    let _ = stdin.shutdown().await;
                }
            };
            let (_, out, err, status) = tokio::join!(
                write,
                read_head(stdout, STDOUT_LIMIT),
                read_tail(stderr, STDERR_LIMIT),
                child.wait()
            );
            (out, err, status)
        })
        .await;
        match finished {
            Ok((out, err, Ok(status))) => self.interpret(status, out, &err),
            Ok((_, _, Err(e))) => Err(InvokeError::Invocation {
                code: "Unknown".to_string(),
                message: format!("waiting for function {}: {e}", self.name),
            }),
            Err(_) => {
                // Kills and reaps the process; kill_on_drop covers the case where this future
                // is itself dropped first.
                let _ = child.kill().await;
                Err(InvokeError::Invocation {
                    code: "Timeout".to_string(),
                    message: format!(
                        "function {} ({}) did not exit within {timeout:?} and was killed",
                        self.name,
                        self.program.display()
                    ),
                })
            }
        }
    }

    /// Maps a finished run to the call's outcome (see the type's documentation).
    fn interpret(
        &self,
        status: ExitStatus,
        (stdout, truncated): (Vec<u8>, bool),
        stderr: &[u8],
    ) -> Result<Value, InvokeError> {
        if truncated {
            return Err(InvokeError::Invocation {
                code: "BadResponse".to_string(),
                message: format!(
                    "function {} wrote more than {STDOUT_LIMIT} bytes to stdout",
                    self.name
                ),
            });
        }
        let text = String::from_utf8_lossy(&stdout);
        let json: Option<Value> = if text.trim().is_empty() {
            None
        } else {
            serde_json::from_str(&text).ok()
        };
        let reported = json.as_ref().and_then(|v| match v.get("errorType") {
            Some(Value::String(t)) if !t.is_empty() => Some((
                t.clone(),
                ["errorMessage", "message"]
                    .iter()
                    .find_map(|k| v.get(k))
                    .map(|m| match m {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }),
            )),
            _ => None,
        });
        if status.success() && reported.is_none() {
            return Ok(match json {
                Some(v) => v,
                None if text.trim().is_empty() => Value::Object(Default::default()),
                None => {
                    let t = text.strip_suffix('\n').unwrap_or(&text);
                    Value::String(t.strip_suffix('\r').unwrap_or(t).to_string())
                }
            });
        }
        let (error_type, message) = match reported {
            Some((t, m)) => (t, m),
            None => ("CommandFailed".to_string(), None),
        };
        let message = message
            .or_else(|| stderr_message(stderr))
            .unwrap_or_else(|| {
                if status.success() {
                    String::new()
                } else {
                    describe(status)
                }
            });
        Err(InvokeError::Function {
            error_type,
            message,
        })
    }
}

/// `exit status N`, or `killed by signal N`.
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("killed by signal {sig}");
        }
    }
    status.to_string()
}

/// The last lines of stderr, trimmed and bounded; `None` if there is nothing but whitespace.
fn stderr_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n");
    let tail = tail.trim();
    let n = tail.chars().count();
    Some(if n > STDERR_MESSAGE {
        let kept: String = tail.chars().skip(n - STDERR_MESSAGE).collect();
        format!("...{kept}")
    } else {
        tail.to_string()
    })
}

/// Reads a pipe to its end, keeping the first `limit` bytes; says whether more came.
async fn read_head<R: AsyncRead + Unpin>(pipe: Option<R>, limit: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let Some(mut pipe) = pipe else {
        return (kept, truncated);
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = limit.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
    (kept, truncated)
}

/// Reads a pipe to its end, keeping the last `limit` bytes.
async fn read_tail<R: AsyncRead + Unpin>(pipe: Option<R>, limit: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return kept;
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * limit {
                    kept.drain(..kept.len() - limit);
                }
            }
        }
    }
    if kept.len() > limit {
        kept.drain(..kept.len() - limit);
    }
    kept
}

#[async_trait]
impl Invoker for CommandInvoker {
    async fn invoke(&self, call: &Invocation<'_>) -> Result<Value, InvokeError> {
        let timeout = call.timeout.map_or(self.timeout, |t| t.min(self.timeout));
        self.run(call, timeout).await
    }
}
