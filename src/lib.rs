//! flowgate: a local gateway that speaks the workflow APIs of Alibaba Cloud (fnf / CloudFlow)
//! and Huawei Cloud (FunctionGraph workflows) and runs every flow on one async engine.
//!
//! Map of the crate:
//! - [`model`]: the canonical, vendor-neutral flow, execution, event, error and expression types;
//! - [`engine`]: the interpreter that runs canonical flows (retries, catches, timers, callbacks);
//! - [`store`]: persistence behind the [`store::Store`] trait (in memory for now);
//! - [`invoke`]: how Task states reach functions (`[[functions]]` bindings: mock, http);
//! - [`canonical`]: the canonical JSON flow format (engine tests, `flowgate validate`);
//! - [`dialects`]: the vendor front ends, one folder each, registered in `dialects/mod.rs`;
//! - [`config`]: figment configuration (defaults < file < `FLOWGATE_*` environment);
//! - [`ratelimit`]: configured API rate limits (token buckets), off by default;
//! - [`deploy`]: deploys the flow files of the configured flows directory at start;
//! - [`server`]: the axum app every dialect mounts its routes on;
//! - [`yaml`]: the one module that parses YAML;
//! - [`body`]: reading a request body within a size limit;
//! - [`text`]: byte-level text helpers for the per-request path;
//! - [`alloc`]: the global allocator of the binary and its benchmarks (mimalloc).

pub mod alloc;
pub mod body;
pub mod canonical;
pub mod config;
pub mod deploy;
#[path = "../dialects/mod.rs"]
pub mod dialects;
pub mod engine;
pub mod invoke;
pub mod model;
pub mod ratelimit;
pub mod server;
pub mod store;
pub mod text;
pub mod yaml;
