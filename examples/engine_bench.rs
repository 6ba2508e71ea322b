//! In-process engine benchmark: a three-state Pass flow run as Express executions, back to
//! back and with many in flight, on a single-threaded runtime (one core).
//!
//! Reports executions per second and resident memory at checkpoints, so a reader can see
//! whether memory stays flat (finished Express executions have bounded retention).
//!
//! ```text
//! cargo run --release --example engine_bench -- [--count 1000000] [--inflight 64]
//! ```

mod common;

use common::arg;
use std::sync::Arc;
use std::time::Instant;

use flowgate::engine::{Engine, EngineConfig, StartRequest};
use flowgate::invoke::FunctionRegistry;
use flowgate::model::execution::FlowKey;
use flowgate::store::memory::{MemoryStore, Retention};
use flowgate::store::FlowRecord;
use serde_json::json;

/// mimalloc (see `flowgate::alloc`): the engine allocates many small JSON values; glibc malloc
/// spent ~45% of the benchmark's time in malloc/free (perf), mimalloc far less.
#[global_allocator]
static GLOBAL: flowgate::alloc::Allocator = flowgate::alloc::Allocator;

const FLOW: &str = r#"{"name": "bench", "mode": "Express", "root": {"start_at": "A", "states": [
    {"name": "A", "type": "pass", "next": "B"},
    {"name": "B", "type": "pass", "next": "C"},
    {"name": "C", "type": "pass", "end": true}]}}"#;

fn setup() -> (Engine, Arc<FlowRecord>) {
    let config = EngineConfig {
        time_scale: 0.0,
        ..EngineConfig::default()
    };
    let store = MemoryStore::new(Retention {
        express: config.express_retention,
        standard: config.standard_retention,
    });
    let engine = Engine::new(config, Arc::new(store), FunctionRegistry::empty());
    let flow = flowgate::canonical::compile(FLOW).expect("bench flow compiles");
    let now = chrono::Utc::now();
    let rec = FlowRecord {
        id: "bench-flow".into(),
        key: FlowKey::new("bench", "bench"),
        dialect: "canonical".into(),
        definition: Arc::from(FLOW),
        flow: Arc::new(flow),
        created: now,
        modified: now,
        metadata: serde_json::Value::Null,
    };
    (engine, Arc::new(rec))
}

async fn one(engine: &Engine, flow: &Arc<FlowRecord>, i: usize) {
    let rec = engine
        .start_sync(
            StartRequest {
                flow: flow.clone(),
                name: Some("bench".into()),
                input: json!({"i": i}),
                metadata: serde_json::Value::Null,
                callback_token: None,
            },
            true,
        )
        .await
        .expect("start_sync");
    assert_eq!(rec.status, flowgate::model::ExecutionStatus::Succeeded);
}

async fn back_to_back(engine: &Engine, flow: &Arc<FlowRecord>, count: usize) -> f64 {
    let t = Instant::now();
    for i in 0..count {
        one(engine, flow, i).await;
    }
    count as f64 / t.elapsed().as_secs_f64()
}

async fn in_flight(engine: &Engine, flow: &Arc<FlowRecord>, count: usize, inflight: usize) -> f64 {
    use futures::StreamExt;
    let t = Instant::now();
    futures::stream::iter(0..count)
        .map(|i| one(engine, flow, i))
        .buffer_unordered(inflight)
        .for_each(|_| async {})
        .await;
    count as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let count = arg("--count", 1_000_000);
    let inflight = arg("--inflight", 64);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (engine, flow) = setup();
        let warm = (count / 20).clamp(1000, 50_000);
        back_to_back(&engine, &flow, warm).await;
        let rss_start = common::rss_mib("self");
        println!("engine_bench: three-state Pass flow, Express, single-threaded runtime");
        println!("rss after warm-up ({warm} executions): {rss_start:.1} MiB");

        let rate = back_to_back(&engine, &flow, count / 2).await;
        let rss_mid = common::rss_mib("self");
        println!(
            "back to back: {} executions, {rate:.0} executions/s, rss {rss_mid:.1} MiB",
            count / 2
        );

        let rate = in_flight(&engine, &flow, count / 2, inflight).await;
        let rss_end = common::rss_mib("self");
        println!(
            "{inflight} in flight: {} executions, {rate:.0} executions/s, rss {rss_end:.1} MiB",
            count / 2
        );
        let growth = (rss_end - rss_start) / rss_start.max(1.0) * 100.0;
        println!("rss growth over {count} executions after warm-up: {growth:+.1}%");
    });
}
