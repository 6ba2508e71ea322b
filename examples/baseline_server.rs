//! The load-test baseline: a bare axum handler that answers a fixed JSON body, on the same
//! kind of runtime flowgate uses. `loadgen` measures it in the same run as flowgate so the
//! results are ratios, not absolute figures from a shared, noisy machine.
//!
//! ```text
//! cargo run --release --example baseline_server -- --listen 127.0.0.1:18081
//! ```

use axum::routing::any;
use axum::{Json, Router};
use serde_json::json;

#[global_allocator]
static GLOBAL: flowgate::alloc::Allocator = flowgate::alloc::Allocator;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = args
        .iter()
        .position(|a| a == "--listen")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:18081".to_string());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let app = Router::new().fallback(any(|| async {
            Json(json!({
                "RequestId": "5291AE40-F25B-446C-A348-166B08989800",
                "Name": "bench:00000000-0000-0000-0000-000000000000",
                "FlowName": "bench",
                "Status": "Succeeded",
                "Output": "{\"i\":1}",
                "StartedTime": "2026-01-01T00:00:00.000Z",
                "StoppedTime": "2026-01-01T00:00:00.000Z"
            }))
        }));
        let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
        println!("listening {}", listener.local_addr().expect("addr"));
        axum::serve(listener, app).await.expect("serve");
    });
}
