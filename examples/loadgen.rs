//! Load generator: drives a real `flowgate serve` process with signed requests (flowgate's own
//! signing code, run as a client) at fixed concurrency for a fixed duration, and the same
//! client against a bare axum baseline in the same run, so every figure is also a ratio.
//!
//! Scenarios:
//! 1. `alibaba-sync`: Alibaba StartSyncExecution of a three-state Pass flow (Express), RPC V1;
//! 2. `huawei-sync`: Huawei sync-executions of the equivalent three-state flow whose two
//!    Operation states call a mock function, SDK-HMAC-SHA256;
//! 3. `alibaba-e2e`: Alibaba StartExecution then DescribeExecution with WaitTimeSeconds
//!    (Standard), end to end per execution;
//! 4. `baseline`: the same client against `baseline_server` (a fixed JSON body).
//!
//! Each scenario reports requests, errors, throughput, p50/p99/max latency, the ratio to the
//! baseline of the same run, and the CPU time (user + system, from `/proc`) the server and
//! this client spent per request: on a shared machine those move less than throughput does.
//! It also reports the share of the machine's CPU time the host stole while each scenario ran
//! (`/proc/stat`): on a virtual machine whose host is busy, that share reached 20-60% and the
//! run's ratios meant nothing, so read only runs with little of it.
//!
//! `--scale` adds the memory runs: start-up time and idle RSS, RSS across `--sync-count` sync
//! executions after a warm-up, RSS with `--waiting` Standard executions parked in a Wait state
//! (`--scenario none --scale` runs only those; `--sync-count 0` or `--waiting 0` skips one).
//! Options: `--concurrency N`, `--duration S` or `--count N` (requests per scenario, for
//! profiling under callgrind), `--scenario NAME[,NAME...]`, `--auth verify|off`, `--flowgate PATH`,
//! `--baseline PATH`, `--presign N`, `--rounds N`. Only loopback is used; every loop is
//! bounded by a duration or a count.
//!
//! `--rounds N` runs each scenario in N stretches that take turns (baseline, 1, 2, ...,
//! baseline, 1, 2, ...), each a 1/N share of its duration or count, and reports each scenario
//! over all its stretches. On a host whose load changes during a run (the shared machines
//! this runs on: one scenario's CPU per request can move by 20% from one minute to the next),
//! the baseline and the scenarios then see the same conditions, and the ratio measures the
//! servers. The default, 1, runs each scenario in one piece as before.
//!
//! `--presign N` signs up to N requests of scenarios 1 and 2 before their clock starts (each
//! with its own nonce and a fresh timestamp, exactly as they would be signed on the fly) and
//! sends those, signing more on the fly only if they run out. Client and server share the 2
//! cores, and signing (HMAC, a nonce, percent-encoding) costs this client ~7 µs a request
//! that a baseline request does not: pre-signed, the client does the same work per request
//! in every scenario, so the ratio to the baseline measures the servers. Both modes are
//! reported in BENCHMARKS.md.
//!
//! ```text
//! cargo build --release --bin flowgate --example baseline_server --example loadgen
//! target/release/examples/loadgen --concurrency 64 --duration 8 [--scale]
//! ```

mod common;

use std::future::Future;
use std::net::TcpListener;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Method, Request};
use bytes_body::Full;
use flowgate::dialects::alibaba::signature as ali;
use flowgate::dialects::huawei::signature as hw;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

mod bytes_body {
    pub use http_body_util::Full;
}

/// The client runs on the same 2 cores as the servers it measures, so it uses the allocator
/// they use (glibc malloc would make every scenario's client side needlessly heavier).
#[global_allocator]
static GLOBAL: flowgate::alloc::Allocator = flowgate::alloc::Allocator;

const AK: &str = "testAccessKeyId";
const SK: &str = "testAccessKeySecret";
const PROJECT: &str = "0123456789abcdef0123456789abcdef";

type HttpClient = Client<HttpConnector, Full<axum::body::Bytes>>;

struct Args {
    concurrency: usize,
    duration: Duration,
    count: Option<u64>,
    scale: bool,
    sync_count: u64,
    waiting: u64,
    only: Option<String>,
    auth: String,
    flowgate: String,
    baseline: String,
    presign: usize,
    rounds: u64,
}

fn args() -> Args {
    let a: Vec<String> = std::env::args().collect();
    let get = |name: &str| {
        a.iter()
            .position(|x| x == name)
            .and_then(|i| a.get(i + 1))
            .cloned()
    };
    Args {
        concurrency: get("--concurrency")
            .and_then(|v| v.parse().ok())
            .unwrap_or(64),
        duration: Duration::from_secs_f64(
            get("--duration")
                .and_then(|v| v.parse().ok())
                .unwrap_or(10.0),
        ),
        count: get("--count").and_then(|v| v.parse().ok()),
        scale: a.iter().any(|x| x == "--scale"),
        sync_count: get("--sync-count")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000),
        waiting: get("--waiting")
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000),
        only: get("--scenario"),
        auth: get("--auth").unwrap_or_else(|| "verify".into()),
        flowgate: get("--flowgate").unwrap_or_else(|| "target/release/flowgate".into()),
        baseline: get("--baseline")
            .unwrap_or_else(|| "target/release/examples/baseline_server".into()),
        presign: get("--presign").and_then(|v| v.parse().ok()).unwrap_or(0),
        rounds: get("--rounds").and_then(|v| v.parse().ok()).unwrap_or(1),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    port: u16,
    /// The config file written for this server (removed, with its folder once empty, on drop).
    config: Option<std::path::PathBuf>,
}

impl Drop for Server {
    /// Stops the server the way an operator would, with SIGTERM, so a profiler wrapped
    /// around it (`--flowgate` naming a script that `exec`s valgrind or perf) writes its
    /// output; SIGKILL only if it has not exited within 30 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(config) = &self.config {
            let _ = std::fs::remove_file(config);
            if let Some(dir) = config.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// Starts `flowgate serve` with auth `auth` (`verify` or `off`) and the memory store (the
/// issue-7 figures are for the memory store; durable stores have `examples/durable_bench.rs`)
/// and waits until it is healthy.
fn start_flowgate(path: &str, auth: &str, time_scale: f64) -> (Server, Duration) {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("flowgate-loadgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join(format!("flowgate-{port}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:{port}"
[auth]
mode = "{auth}"
[[credentials]]
access_key_id = "{AK}"
secret = "{SK}"
[engine]
time_scale = {time_scale}
[store]
kind = "memory"
[flows]
dir = ""
[log]
level = "warn"
[[functions]]
name = "bench"
invoker = "mock"
responses = [{{ attempts = "*", return = {{ ok = true }} }}]
"#
        ),
    )
    .unwrap();
    let started = Instant::now();
    let child = Command::new(path)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {path}: {e} (build it with cargo build --release)")
        });
    let server = Server {
        child,
        port,
        config: Some(config),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(mut s) = common::connect_to_listener(port, Duration::from_secs(30)) {
            use std::io::{Read, Write};
            let _ = s.write_all(
                b"GET /_flowgate/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            );
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.1 200") {
                return (server, started.elapsed());
            }
        }
        assert!(Instant::now() < deadline, "flowgate did not become healthy");
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn start_baseline(path: &str) -> Server {
    let port = free_port();
    let child = Command::new(path)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {path}: {e}"));
    let server = Server {
        child,
        port,
        config: None,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::connect_to_listener(port, Duration::from_secs(1)).is_none() {
        assert!(Instant::now() < deadline, "baseline did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    server
}

/// A signed Alibaba RPC V1 request (business parameters in a form body for POST).
fn alibaba(
    port: u16,
    method: Method,
    action: &str,
    business: &[(&str, String)],
) -> Request<Full<axum::body::Bytes>> {
    let mut query: Vec<(String, String)> = vec![
        ("Action".into(), action.into()),
        ("Format".into(), "json".into()),
        ("Version".into(), "2019-03-15".into()),
    ];
    let pairs: Vec<(String, String)> = business
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    // One host value per port and thread (formatting it costs as much as a small signature).
    thread_local! {
        static HOST: std::cell::RefCell<Option<(u16, HeaderValue)>> = const { std::cell::RefCell::new(None) };
    }
    let host = HOST.with(|h| {
        let mut h = h.borrow_mut();
        match &*h {
            Some((p, v)) if *p == port => v.clone(),
            _ => {
                let v = HeaderValue::from_str(&format!("127.0.0.1:{port}")).expect("ASCII host");
                *h = Some((port, v.clone()));
                v
            }
        }
    });
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let now = chrono::Utc::now();
    let mut builder = Request::builder().header("host", host);
    let body = if method == Method::GET {
        query.extend(pairs);
        ali::sign_rpc_v1(method.as_str(), &mut query, AK, SK, now, &nonce);
        Vec::new()
    } else {
        ali::sign_rpc_v1_split(method.as_str(), &mut query, &pairs, AK, SK, now, &nonce);
        builder = builder.header("content-type", "application/x-www-form-urlencoded");
        ali::encode_form(&pairs).into_bytes()
    };
    builder
        .method(method)
        .uri(format!(
            "http://127.0.0.1:{port}/?{}",
            ali::encode_form(&query)
        ))
        .body(Full::new(body.into()))
        .unwrap()
}

/// A signed Huawei request.
fn huawei(
    port: u16,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Request<Full<axum::body::Bytes>> {
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "host",
        HeaderValue::from_str(&format!("127.0.0.1:{port}")).unwrap(),
    );
    hw::sign(
        method.as_str(),
        path,
        "",
        &mut headers,
        &bytes,
        AK,
        SK,
        chrono::Utc::now(),
        &["content-type", "host", "x-sdk-date"],
    );
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .body(Full::new(bytes.into()))
        .unwrap();
    *req.headers_mut() = headers;
    req
}

/// Sends a request; the HTTP status and the whole answer body.
async fn send_raw(
    client: &HttpClient,
    req: Request<Full<axum::body::Bytes>>,
) -> Result<(u16, axum::body::Bytes), String> {
    let resp = client.request(req).await.map_err(|e| error_chain(&e))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, bytes))
}

/// An error with its causes (hyper's own text is only the kind, such as "client error
/// (SendRequest)"; the cause says what happened to the connection).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Sends a request; the HTTP status and the answer as JSON (`null` when it is not).
async fn send(
    client: &HttpClient,
    req: Request<Full<axum::body::Bytes>>,
) -> Result<(u16, Value), String> {
    let (status, bytes) = send_raw(client, req).await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// The status field of an answer (`Status` in fnf's, `status` in FunctionGraph's), read
/// without building the whole document: every scenario, the baseline included, checks its
/// answers this way, so the client's share of the 2 cores is the same kind of work.
#[derive(serde::Deserialize)]
struct Answer<'a> {
    #[serde(rename = "Status", borrow, default)]
    upper: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "status", borrow, default)]
    lower: Option<std::borrow::Cow<'a, str>>,
}

/// Prints the first failed request of the run (to stderr), so that an error count comes
/// with its cause.
fn show_first_error(what: &str) {
    static SHOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SHOWN.swap(true, Ordering::Relaxed) {
        eprintln!("  first error: {what}");
    }
}

/// Sends a request; the HTTP status and the answer's status field.
async fn send_status(
    client: &HttpClient,
    req: Request<Full<axum::body::Bytes>>,
) -> Result<(u16, Option<String>), String> {
    let (status, bytes) = match send_raw(client, req).await {
        Ok(answer) => answer,
        Err(e) => {
            show_first_error(&format!("request failed: {e}"));
            return Err(e);
        }
    };
    if status >= 300 {
        show_first_error(&format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(400)])
        ));
    }
    let field = serde_json::from_slice::<Answer<'_>>(&bytes)
        .ok()
        .and_then(|a| a.upper.or(a.lower))
        .map(|s| s.into_owned());
    Ok((status, field))
}

const PASS3: &str = "version: v1\ntype: flow\nsteps:\n  - type: pass\n    name: a\n  - type: pass\n    name: b\n  - type: pass\n    name: c\n";

async fn setup(client: &HttpClient, port: u16) -> String {
    for (name, mode) in [("bench_sync", "Express"), ("bench_std", "Standard")] {
        let (s, v) = send(
            client,
            alibaba(
                port,
                Method::POST,
                "CreateFlow",
                &[
                    ("Name", name.into()),
                    ("Definition", PASS3.into()),
                    ("Description", "loadgen".into()),
                    ("Type", "FDL".into()),
                    ("ExecutionMode", mode.into()),
                ],
            ),
        )
        .await
        .unwrap();
        assert_eq!(s, 200, "CreateFlow {name}: {v}");
    }
    let urn = format!("urn:fss:cn-north-4:{PROJECT}:function:default:bench:latest");
    let wf = json!({
        "name": "bench-sync", "mode": "EXPRESS", "start": "a",
        "functions": [{"name": "bench", "operation": urn}],
        "constants": {}, "retries": [],
        "states": [
            {"id": "a", "name": "a", "type": "Operation", "end": false, "transition": "b",
             "actions": [{"function_ref": {"ref_name": "bench", "arguments": {"i": "$.i"}}}]},
            {"id": "b", "name": "b", "type": "Operation", "end": false, "transition": "c",
             "actions": [{"function_ref": {"ref_name": "bench", "arguments": {"i": "$.i"}}}]},
            {"id": "c", "name": "c", "type": "End", "end": true, "transition": "", "actions": []}
        ]
    });
    let path = format!("/v2/{PROJECT}/fgs/workflows");
    let (s, v) = send(client, huawei(port, Method::POST, &path, Some(&wf)))
        .await
        .unwrap();
    assert_eq!(s, 201, "CreateWorkflow: {v}");
    v["id"].as_str().unwrap().to_string()
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    errors: AtomicU64,
}

struct Report {
    name: String,
    server_us: f64,
    client_us: f64,
    /// Share of the machine's CPU time the host stole during the run (see
    /// `common::cpu_steal_ticks`).
    steal: f64,
    requests: u64,
    errors: u64,
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

/// One request of a scenario: `one(i)` sends request number `i` and says whether it worked.
type Call = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// A scenario to drive: its name, the server process it loads, and its request.
struct Scenario {
    name: &'static str,
    server_pid: u32,
    call: Call,
}

/// Wraps a scenario's request function as a [`Call`] (one boxed future per request, the
/// same cost for every scenario, the baseline's too).
fn call<F, Fut>(one: F) -> Call
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    Arc::new(move |i| Box::pin(one(i)))
}

/// What one stretch of a scenario measured; a scenario's [`Report`] merges its stretches.
#[derive(Default)]
struct Slice {
    latencies_us: Vec<u32>,
    ok: u64,
    errors: u64,
    seconds: f64,
    server_cpu: f64,
    client_cpu: f64,
    steal_ticks: (u64, u64),
}

/// Runs `scenario` from `concurrency` workers for `duration` (or until `count` calls were
/// made in all, when given). Request numbers start at `first` (plus a billion per worker), so
/// the stretches of one scenario never reuse a number (scenario 3 names executions by it).
async fn run_slice(
    scenario: &Scenario,
    concurrency: usize,
    duration: Duration,
    count: Option<u64>,
    first: u64,
) -> Slice {
    let tally = Arc::new(Tally::default());
    let issued = Arc::new(AtomicU64::new(0));
    let (server_cpu, client_cpu) = (
        common::cpu_seconds(scenario.server_pid),
        common::cpu_seconds(std::process::id()),
    );
    let steal = common::cpu_steal_ticks();
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let one = scenario.call.clone();
        let tally = tally.clone();
        let issued = issued.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut i = w as u64 * 1_000_000_000 + first;
            while Instant::now() < deadline
                && count.is_none_or(|n| issued.fetch_add(1, Ordering::Relaxed) < n)
            {
                let t = Instant::now();
                let ok = one(i).await;
                lat.push(t.elapsed().as_micros() as u32);
                i += 1;
                if ok {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    let mut latencies_us = Vec::new();
    for w in workers {
        latencies_us.extend(w.await.unwrap());
    }
    Slice {
        latencies_us,
        ok: tally.ok.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        seconds: start.elapsed().as_secs_f64(),
        server_cpu: common::cpu_seconds(scenario.server_pid) - server_cpu,
        client_cpu: common::cpu_seconds(std::process::id()) - client_cpu,
        steal_ticks: common::steal_ticks_since(steal),
    }
}

impl Report {
    /// The scenario's figures over all its stretches.
    fn from_slices(name: &str, slices: Vec<Slice>) -> Report {
        let mut all = Slice::default();
        for s in slices {
            all.latencies_us.extend(s.latencies_us);
            all.ok += s.ok;
            all.errors += s.errors;
            all.seconds += s.seconds;
            all.server_cpu += s.server_cpu;
            all.client_cpu += s.client_cpu;
            all.steal_ticks.0 += s.steal_ticks.0;
            all.steal_ticks.1 += s.steal_ticks.1;
        }
        let lat = &mut all.latencies_us;
        lat.sort_unstable();
        let pct = |p: f64| -> f64 {
            if lat.is_empty() {
                0.0
            } else {
                lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0
            }
        };
        let per_request = |cpu: f64| cpu * 1e6 / (lat.len().max(1) as f64);
        Report {
            name: name.to_string(),
            server_us: per_request(all.server_cpu),
            client_us: per_request(all.client_cpu),
            steal: common::steal_percent(all.steal_ticks),
            requests: all.ok + all.errors,
            errors: all.errors,
            rate: all.ok as f64 / all.seconds.max(f64::EPSILON),
            p50: pct(0.50),
            p99: pct(0.99),
            max: lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        }
    }
}

type SignedRequest = Request<Full<axum::body::Bytes>>;

/// Requests signed before a scenario's clock starts (`--presign`), handed out once each;
/// `build(i)` signs request `i` on the fly when they run out (or when none were made).
struct Presigned<B> {
    pool: std::sync::Mutex<Vec<SignedRequest>>,
    build: B,
}

impl<B: Fn(u64) -> SignedRequest> Presigned<B> {
    fn new(n: usize, build: B) -> Arc<Self> {
        let started = Instant::now();
        // Popped from the end: signed in index order, then reversed, so requests go out in
        // index order and in the order of their signature times. Signed in reverse, the
        // oldest went out last, after Alibaba's replay cache (full at 262 144 nonces) had
        // forgotten their second and refused it as too old: thousands of errors a run.
        let mut pool: Vec<SignedRequest> = (0..n as u64).map(&build).collect();
        pool.reverse();
        if n > 0 {
            println!(
                "  ({n} requests signed ahead in {:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
        Arc::new(Presigned {
            pool: std::sync::Mutex::new(pool),
            build,
        })
    }

    fn take(&self, i: u64) -> SignedRequest {
        let ready = self.pool.lock().expect("pool lock").pop();
        ready.unwrap_or_else(|| (self.build)(i))
    }
}

fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build(connector)
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let want = |s: &str| a.only.as_deref().is_none_or(|o| o.split(',').any(|o| o == s));
        let (fg, startup) = start_flowgate(&a.flowgate, &a.auth, 0.0);
        let idle = common::rss_mib(fg.child.id());
        println!("flowgate start-up to healthy: {:.1} ms, idle RSS {:.1} MiB", startup.as_secs_f64() * 1000.0, idle);
        let c = client();
        let wf = setup(&c, fg.port).await;
        let mut scenarios = Vec::new();
        let port = fg.port;
        // Kept until the end: the scenarios run after all of them are set up.
        let mut baseline_server = None;
        if want("baseline") {
            let base = baseline_server.insert(start_baseline(&a.baseline));
            let bport = base.port;
            let cl = c.clone();
            scenarios.push(Scenario { name: "baseline (bare axum, fixed JSON)", server_pid: base.child.id(), call: call(move |_| {
                let cl = cl.clone();
                async move {
                    let req = Request::builder().uri(format!("http://127.0.0.1:{bport}/")).body(Full::new(axum::body::Bytes::new())).unwrap();
                    matches!(send_status(&cl, req).await, Ok((200, _)))
                }
            }) });
        }
        let presign = a.count.map_or(a.presign, |n| (n as usize).min(a.presign));
        if want("alibaba-sync") {
            let cl = c.clone();
            let requests = Presigned::new(presign, move |i| {
                alibaba(port, Method::POST, "StartSyncExecution", &[
                    ("FlowName", "bench_sync".into()),
                    ("ExecutionName", "run".into()),
                    ("Input", format!("{{\"i\":{i}}}")),
                ])
            });
            scenarios.push(Scenario { name: "1 alibaba StartSyncExecution (Express, 3 Pass)", server_pid: fg.child.id(), call: call(move |i| {
                let cl = cl.clone();
                let req = requests.take(i);
                async move {
                    matches!(send_status(&cl, req).await, Ok((200, Some(s))) if s == "Succeeded")
                }
            }) });
        }
        if want("huawei-sync") {
            let cl = c.clone();
            let path = format!("/v2/{PROJECT}/fgs/workflows/{wf}/sync-executions");
            let requests = Presigned::new(presign, move |i| {
                huawei(port, Method::POST, &path, Some(&json!({"input": {"i": i}})))
            });
            scenarios.push(Scenario { name: "2 huawei sync-executions (EXPRESS, 2 Operation + End, mock)", server_pid: fg.child.id(), call: call(move |i| {
                let cl = cl.clone();
                let req = requests.take(i);
                async move {
                    matches!(send_status(&cl, req).await, Ok((200, Some(s))) if s == "success")
                }
            }) });
        }
        if want("alibaba-e2e") {
            let cl = c.clone();
            scenarios.push(Scenario { name: "3 alibaba StartExecution + DescribeExecution(WaitTimeSeconds) (Standard)", server_pid: fg.child.id(), call: call(move |i| {
                let cl = cl.clone();
                async move {
                    let name = format!("e{i}");
                    let req = alibaba(port, Method::POST, "StartExecution", &[
                        ("FlowName", "bench_std".into()),
                        ("ExecutionName", name.clone()),
                        ("Input", format!("{{\"i\":{i}}}")),
                    ]);
                    if !matches!(send_status(&cl, req).await, Ok((200, _))) {
                        return false;
                    }
                    for _ in 0..10 {
                        let req = alibaba(port, Method::GET, "DescribeExecution", &[
                            ("FlowName", "bench_std".into()),
                            ("ExecutionName", name.clone()),
                            ("WaitTimeSeconds", "5".into()),
                        ]);
                        match send_status(&cl, req).await {
                            Ok((200, Some(s))) if s == "Succeeded" => return true,
                            Ok((200, Some(s))) if s == "Running" => continue,
                            _ => return false,
                        }
                    }
                    false
                }
            }) });
        }
        // Each scenario runs in `rounds` stretches, taking turns, so a change in the host's
        // load in the middle of a run weighs on every scenario alike.
        let rounds = a.rounds.max(1);
        let stretch = a.duration.div_f64(rounds as f64);
        let mut slices: Vec<Vec<Slice>> = scenarios.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            for (s, scenario) in scenarios.iter().enumerate() {
                let count = a.count.map(|n| n / rounds + u64::from(round < n % rounds));
                let first = round * 10_000_000;
                slices[s].push(run_slice(scenario, a.concurrency, stretch, count, first).await);
            }
        }
        let reports: Vec<Report> = scenarios
            .iter()
            .zip(slices)
            .map(|(s, slices)| Report::from_slices(s.name, slices))
            .collect();
        let base = reports.iter().find(|r| r.name.starts_with("baseline")).map(|r| r.rate);
        let signing = if a.presign > 0 { format!("scenarios 1-2 pre-signed (up to {} each)", a.presign) } else { "signed on the fly".to_string() };
        let turns = if rounds > 1 { format!(" in {rounds} turns") } else { String::new() };
        println!("\nconcurrency {}, {:.0} s per scenario{turns}, auth {}, memory store, {signing}", a.concurrency, a.duration.as_secs_f64(), a.auth);
        println!("{:<72} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8} {:>9}", "scenario", "requests", "errors", "per s", "p50 ms", "p99 ms", "max ms", "vs base");
        for r in &reports {
            let ratio = base.map(|b| format!("{:.0}%", r.rate / b * 100.0)).unwrap_or_default();
            println!("{:<72} {:>9} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>8.1} {:>9}", r.name, r.requests, r.errors, r.rate, r.p50, r.p99, r.max, ratio);
        }
        // A table of its own: bench/moto_side_by_side.py parses the lines above.
        // Stolen: CPU time the host gave to other machines while the scenario ran; a run with
        // more than a few percent says more about the neighbours than about flowgate.
        println!("\n{:<72} {:>10} {:>10} {:>8}", "CPU per request (user + system)", "server µs", "client µs", "stolen");
        for r in &reports {
            println!("{:<72} {:>10.1} {:>10.1} {:>7.1}%", r.name, r.server_us, r.client_us, r.steal);
        }
        println!("flowgate RSS after the scenarios: {:.1} MiB", common::rss_mib(fg.child.id()));
        if a.scale {
            scale(&a, &c).await;
        }
    });
}

/// Runs `StartSyncExecution` of the bench flow for sequence numbers `from..to` from
/// `concurrency` workers; the number that did not succeed.
async fn sync_batch(c: &HttpClient, port: u16, concurrency: usize, from: u64, to: u64) -> u64 {
    numbered_batch(c, concurrency, from, to, move |cl, i| async move {
        let req = alibaba(
            port,
            Method::POST,
            "StartSyncExecution",
            &[
                ("FlowName", "bench_sync".into()),
                ("Input", format!("{{\"i\":{i}}}")),
            ],
        );
        matches!(send_status(&cl, req).await, Ok((200, Some(s))) if s == "Succeeded")
    })
    .await
}

/// Calls `one(client, i)` for every `i` in `from..to`, spread over `concurrency` workers that
/// each take the next number; the number of calls that returned `false`.
async fn numbered_batch<F, Fut>(
    c: &HttpClient,
    concurrency: usize,
    from: u64,
    to: u64,
    one: F,
) -> u64
where
    F: Fn(HttpClient, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let one = Arc::new(one);
    let counter = Arc::new(AtomicU64::new(from));
    let failed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (cl, one, counter, failed) = (c.clone(), one.clone(), counter.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                if i >= to {
                    break;
                }
                if !one(cl.clone(), i).await {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    failed.load(Ordering::Relaxed)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Memory and scale runs, each on a fresh process: start-up and idle RSS (median of 5
/// starts), RSS across `--sync-count` sync executions (after a warm-up of at least 300 000
/// executions and 10 s that fills the bounded caches: the Express retention window, 100 by
/// default, and the Alibaba replay cache, 262 144 nonces or the last 5 s of them), RSS with
/// `--waiting` Standard executions parked in a Wait.
async fn scale(a: &Args, c: &HttpClient) {
    let mut startups = Vec::new();
    let mut idles = Vec::new();
    for _ in 0..5 {
        let (fg, startup) = start_flowgate(&a.flowgate, &a.auth, 0.0);
        startups.push(startup.as_secs_f64() * 1000.0);
        idles.push(common::rss_mib(fg.child.id()));
    }
    println!(
        "\nscale: start-up to a healthy /_flowgate/health {:.1} ms (median of 5: {:?}), idle RSS {:.1} MiB",
        median(startups.clone()),
        startups.iter().map(|s| (s * 10.0).round() / 10.0).collect::<Vec<_>>(),
        median(idles)
    );

    if a.sync_count > 0 {
        let (fg, _) = start_flowgate(&a.flowgate, &a.auth, 0.0);
        setup(c, fg.port).await;
        let pid = fg.child.id();
        let idle = common::rss_mib(pid);
        // At least 300 000 executions, and at least 10 s: the replay cache keeps every nonce
        // of the last 5 s by the server's clock even past its capacity (a soft cap, see
        // `FLOOR_LAG_SECONDS` in dialects/alibaba/signature.rs), so at 70 000 requests/s it
        // is still growing when 300 000 are done in 4 s.
        const WARM_UP_MIN: u64 = 300_000;
        const WARM_UP_SECONDS: f64 = 10.0;
        let warm_started = Instant::now();
        let mut warm_up = 0;
        let mut failed = 0;
        while warm_up < WARM_UP_MIN || warm_started.elapsed().as_secs_f64() < WARM_UP_SECONDS {
            failed += sync_batch(c, fg.port, a.concurrency, warm_up, warm_up + 100_000).await;
            warm_up += 100_000;
        }
        let warm = common::rss_mib(pid);
        let started = Instant::now();
        let total = a.sync_count;
        let step = (total / 10).max(1);
        let mut samples = Vec::new();
        let mut done = 0;
        while done < total {
            let next = (done + step).min(total);
            failed += sync_batch(c, fg.port, a.concurrency, warm_up + done, warm_up + next).await;
            done = next;
            samples.push(common::rss_mib(pid));
        }
        let after = common::rss_mib(pid);
        println!(
            "scale: {total} sync executions (auth {}) in {:.0} s, {failed} failed; RSS idle {idle:.1} MiB, \
             after {warm_up} warm-up ({:.0} s) {warm:.1} MiB, after {total} more {after:.1} MiB ({:+.1}% from warm-up); \
             every {step}: {:?}",
            a.auth,
            started.elapsed().as_secs_f64(),
            (started - warm_started).as_secs_f64(),
            (after - warm) / warm * 100.0,
            samples.iter().map(|s| (s * 10.0).round() / 10.0).collect::<Vec<_>>(),
        );
    }

    if a.waiting > 0 {
        let (fg, _) = start_flowgate(&a.flowgate, &a.auth, 1.0);
        let port = fg.port;
        let wait_flow =
            "version: v1\ntype: flow\nsteps:\n  - type: wait\n    name: park\n    duration: 3600\n";
        let (s, v) = send(
            c,
            alibaba(
                port,
                Method::POST,
                "CreateFlow",
                &[
                    ("Name", "parked".into()),
                    ("Definition", wait_flow.into()),
                    ("Description", "loadgen".into()),
                    ("Type", "FDL".into()),
                ],
            ),
        )
        .await
        .unwrap();
        assert_eq!(s, 200, "{v}");
        let idle = common::rss_mib(fg.child.id());
        let total = a.waiting;
        let started = Instant::now();
        let failed = numbered_batch(c, a.concurrency, 0, total, move |cl, i| async move {
            let req = alibaba(
                port,
                Method::POST,
                "StartExecution",
                &[
                    ("FlowName", "parked".into()),
                    ("ExecutionName", format!("p{i}")),
                ],
            );
            matches!(send_status(&cl, req).await, Ok((200, _)))
        })
        .await;
        let elapsed = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let parked = common::rss_mib(fg.child.id());
        println!(
            "scale: {total} Standard executions waiting at once (auth {}; started in {elapsed:.0} s, {} failed): \
             RSS {parked:.1} MiB (idle {idle:.1} MiB, {:.0} bytes per waiting execution)",
            a.auth,
            failed,
            (parked - idle) * 1048576.0 / total as f64
        );
    }
}
