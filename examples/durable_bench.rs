//! Durable StartExecution benchmark: the same load against the memory store, the SQLite store
//! and (when `--pg-url` is given) the PostgreSQL store, in one run, so the figures are ratios.
//!
//! Each store gets a fresh gateway (the real router, in this process, on loopback), a
//! three-state Pass Standard flow, and `--connections` clients sending Alibaba
//! `StartExecution` (auth off: signing costs the same for every store and is measured by
//! `loadgen`) for `--seconds`. Every execution runs to its end, and its transitions are
//! committed to the store under test as well. Reported per store: starts per second,
//! p50/p99/max latency, errors, and how long the last executions took to finish after the
//! load stopped.
//!
//! ```text
//! cargo run --release --example durable_bench -- [--seconds 10] [--connections 64] \
//!     [--pg-url postgres://flowgate:flowgate@127.0.0.1:55432/flowgate_bench] [--stores memory,sqlite]
//! ```
//!
//! The PostgreSQL database must exist and belong to the URL's role (PostgreSQL 15 lets no
//! one else create tables in `public`); with `scripts/test-postgres.sh` running:
//!
//! ```text
//! psql postgres://flowgate:flowgate@127.0.0.1:55432/postgres -c "CREATE DATABASE flowgate_bench"
//! ```

mod common;

use common::arg_text;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowgate::config::{AuthMode, Config, StoreConfig, StoreKind};

#[global_allocator]
static GLOBAL: flowgate::alloc::Allocator = flowgate::alloc::Allocator;

const DEFINITION: &str =
    "Type: StateMachine\nSpecVersion: v1\nName: bench\nStartAt: A\nStates:\n  \
    - Type: Pass\n    Name: A\n    Next: B\n  - Type: Pass\n    Name: B\n    Next: C\n  \
    - Type: Pass\n    Name: C\n    End: true\n";

/// One store's figures.
struct Figures {
    name: String,
    starts_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
    drain_ms: f64,
    /// Process CPU time (server, store threads and the client) per start, in microseconds:
    /// steadier than throughput on a shared machine.
    cpu_us_per_start: f64,
}

/// Serves the gateway for `store` on a loopback port; returns its base URL.
async fn gateway(store: StoreConfig) -> String {
    let mut config = Config::default();
    config.auth.mode = AuthMode::Off;
    config.credentials.clear();
    config.flows.dir = None;
    config.store = store;
    let (state, dialects) = flowgate::server::prepare(config).await.expect("prepare");
    let app = flowgate::server::app(state, &dialects);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn post(client: &reqwest::Client, base: &str, action: &str, form: &[(&str, &str)]) -> bool {
    match client
        .post(format!("{base}/?Action={action}&Version=2019-03-15"))
        .form(form)
        .send()
        .await
    {
        Ok(r) => {
            let ok = r.status().is_success();
            let _ = r.bytes().await;
            ok
        }
        Err(_) => false,
    }
}

async fn run(name: &str, store: StoreConfig, seconds: f64, connections: usize) -> Figures {
    let base = gateway(store).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();
    assert!(
        post(
            &client,
            &base,
            "CreateFlow",
            &[
                ("Name", "bench"),
                ("Type", "FDL"),
                ("Description", "bench"),
                ("Definition", DEFINITION),
            ],
        )
        .await,
        "CreateFlow failed"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let cpu_start = common::cpu_seconds("self");
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (client, base, stop, errors) =
            (client.clone(), base.clone(), stop.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = post(
                    &client,
                    &base,
                    "StartExecution",
                    &[("FlowName", "bench"), ("Input", "{\"n\":1}")],
                )
                .await;
                lat.push(t.elapsed());
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<Duration> = Vec::new();
    for w in workers {
        lat.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Wait until every execution has finished: the last one's end is committed.
    let drain = Instant::now();
    loop {
        let resp = client
            .post(format!("{base}/?Action=ListExecutions&Version=2019-03-15"))
            .form(&[("FlowName", "bench"), ("Status", "Running"), ("Limit", "1")])
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = resp.json().await.unwrap();
        if body["Executions"].as_array().is_none_or(|a| a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = common::cpu_seconds("self") - cpu_start;
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Figures {
        name: name.to_string(),
        starts_per_second: lat.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        errors: errors.load(Ordering::Relaxed),
        drain_ms: drain.elapsed().as_secs_f64() * 1000.0,
        cpu_us_per_start: cpu * 1e6 / lat.len().max(1) as f64,
    }
}

#[tokio::main]
async fn main() {
    let seconds: f64 = arg_text("--seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let connections: usize = arg_text("--connections")
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let dir = tempfile_dir();
    let mut stores = vec![
        ("memory".to_string(), StoreConfig::memory()),
        (
            "sqlite".to_string(),
            StoreConfig {
                kind: StoreKind::Sqlite,
                path: Some(dir.join("bench.db")),
                ..StoreConfig::default()
            },
        ),
    ];
    if let Some(url) = arg_text("--pg-url") {
        stores.push((
            "postgres".to_string(),
            StoreConfig {
                kind: StoreKind::Postgres,
                url: Some(url),
                ..StoreConfig::default()
            },
        ));
    }
    if let Some(only) = arg_text("--stores") {
        let wanted: Vec<&str> = only.split(',').collect();
        stores.retain(|(name, _)| wanted.contains(&name.as_str()));
    }
    println!(
        "durable StartExecution, {connections} connections, {seconds} s per store, Standard 3-Pass flow"
    );
    let mut all = Vec::new();
    for (name, store) in stores {
        let f = run(&name, store, seconds, connections).await;
        all.push(f);
    }
    let memory = all
        .iter()
        .find(|f| f.name == "memory")
        .map_or(f64::NAN, |f| f.starts_per_second);
    println!(
        "{:<10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>10} {:>12}",
        "store",
        "starts/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "ratio",
        "drain ms",
        "cpu us/start"
    );
    for f in &all {
        println!(
            "{:<10} {:>10.0} {:>8.2} {:>8.2} {:>8.1} {:>8} {:>6.0}% {:>10.0} {:>12.0}",
            f.name,
            f.starts_per_second,
            f.p50_ms,
            f.p99_ms,
            f.max_ms,
            f.errors,
            100.0 * f.starts_per_second / memory,
            f.drain_ms,
            f.cpu_us_per_start
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory for the SQLite file.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flowgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
