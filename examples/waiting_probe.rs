//! Memory probe for parked executions: starts `--count` Standard executions of a one-state
//! flow that waits an hour, in process (no HTTP, no signatures), and reports what each one
//! holds while it waits: live heap bytes (a counting allocator around the system allocator,
//! so the figure is exact and `valgrind --tool=dhat` can attribute it) and resident memory.
//!
//! ```text
//! cargo run --release --example waiting_probe -- --count 100000
//! valgrind --tool=dhat target/release/examples/waiting_probe --count 2000   # by call site
//! ```
//!
//! The HTTP figure (`loadgen --scale`) adds the request path's own memory (the signature
//! nonce cache); this one isolates the engine and the memory store.

mod common;

use common::arg;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowgate::engine::{Engine, EngineConfig, StartRequest};
use flowgate::invoke::FunctionRegistry;
use flowgate::model::execution::FlowKey;
use flowgate::store::memory::{MemoryStore, Retention};
use flowgate::store::FlowRecord;
use serde_json::json;

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are only
// statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: same pointer and layout, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same pointer and layout, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The loadgen's parked flow (Alibaba FDL), compiled the way the API compiles it.
const PARKED: &str =
    "version: v1\ntype: flow\nsteps:\n  - type: wait\n    name: park\n    duration: 3600\n";

fn main() {
    let count = arg("--count", 100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let config = EngineConfig::default();
        let store = MemoryStore::new(Retention {
            express: config.express_retention,
            standard: config.standard_retention,
        });
        let engine = Engine::new(config, Arc::new(store), FunctionRegistry::empty());
        let flow = flowgate::dialects::alibaba::compile("parked", PARKED).expect("compiles");
        let now = chrono::Utc::now();
        let flow = FlowRecord {
            id: uuid::Uuid::new_v4().to_string().into(),
            key: FlowKey::new("alibaba", "parked"),
            dialect: "alibaba".into(),
            definition: Arc::from(PARKED),
            flow: Arc::new(flow),
            created: now,
            modified: now,
            metadata: json!({"Type": "FDL", "Description": "", "RoleArn": ""}),
        };
        let engine: Engine = engine;
        let flow = Arc::new(engine.create_flow(flow).await.expect("created"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (heap0, blocks0, rss0) = (
            LIVE.load(Ordering::Relaxed),
            BLOCKS.load(Ordering::Relaxed),
            common::rss_mib("self"),
        );
        let started = Instant::now();
        for i in 0..count {
            // What the Alibaba StartExecution action hands the engine.
            engine
                .start(StartRequest {
                    flow: flow.clone(),
                    name: Some(format!("p{i}")),
                    input: json!({}),
                    metadata: json!({}),
                    callback_token: None,
                })
                .await
                .expect("started");
            if i % 256 == 255 {
                // Let this batch reach its Wait (and park) before the next starts, so the peak
                // a heap profiler reports is the waiting executions, not a burst of runs.
                let deadline = Instant::now() + Duration::from_millis(200);
                while engine.parked_count() <= i && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        // Let every execution reach its Wait state.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (heap1, blocks1, rss1) = (
            LIVE.load(Ordering::Relaxed),
            BLOCKS.load(Ordering::Relaxed),
            common::rss_mib("self"),
        );
        let per = |a: isize, b: isize| (b - a) as f64 / count as f64;
        println!(
            "{count} executions waiting ({:.1} s to start): {:.0} live heap bytes and {:.1} heap \
             blocks each; heap {:.1} MiB -> {:.1} MiB, RSS {:.1} MiB -> {:.1} MiB ({:.0} bytes each)",
            started.elapsed().as_secs_f64(),
            per(heap0, heap1),
            per(blocks0, blocks1),
            heap0 as f64 / 1048576.0,
            heap1 as f64 / 1048576.0,
            rss0,
            rss1,
            (rss1 - rss0) * 1048576.0 / count as f64,
        );
        println!(
            "running executions: {} (parked in their Wait: {})",
            engine.running_count(),
            engine.parked_count()
        );
    });
}
