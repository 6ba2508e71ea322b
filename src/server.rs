//! The HTTP server: one listener, every registered dialect's routes, flowgate's own routes
//! under `/_flowgate/`. The app is built apart from `main` so tests drive it without a socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::config::{Config, ExpressPlacement, StoreKind, SyncMode};
use crate::dialects::{self, Dialect, PrefixRoute};
use crate::engine::{Engine, Recompile};
use crate::invoke::FunctionRegistry;
use crate::store::memory::{MemoryStore, Retention};
use crate::store::sqlite::{SqliteOptions, Synchronous};
use crate::store::{PostgresOptions, PostgresStore, SqliteStore, Store, TieredStore};

/// What every handler can reach, behind one `Arc`: axum clones the state for every request,
/// and one reference count (instead of one per part) is one write per clone to a cache line
/// that both workers share. Its parts are read through `Deref` (`state.engine`).
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppParts>);

/// The parts of an [`AppState`].
#[derive(Debug)]
pub struct AppParts {
    /// The shared engine.
    pub engine: Engine,
    /// The configuration the server started with.
    pub config: Config,
    /// The configured API rate limits.
    pub limiter: crate::ratelimit::RateLimiter,
}

impl AppState {
    /// The state of a server with this engine, configuration and rate limits.
    pub fn new(engine: Engine, config: Config, limiter: crate::ratelimit::RateLimiter) -> Self {
        AppState(Arc::new(AppParts {
            engine,
            config,
            limiter,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The app: `/_flowgate/health`, `/_flowgate/outbox` (GET lists, DELETE empties) plus every
/// dialect's routes, then (from the fallback) the dialects' prefix routes.
pub fn app(state: AppState, dialects: &[Box<dyn Dialect>]) -> Router {
    let mut router = Router::new()
        .route("/_flowgate/health", get(health))
        .route("/_flowgate/outbox", get(outbox_list).delete(outbox_clear));
    for d in dialects {
        router = d.routes(router);
    }
    let prefixes: Arc<[PrefixRoute]> = dialects.iter().flat_map(|d| d.prefix_routes()).collect();
    router
        .fallback(move |State(app): State<AppState>, req: Request| {
            let route = prefixes
                .iter()
                .find(|r| req.uri().path().starts_with(r.prefix))
                .copied();
            async move {
                match route {
                    Some(route) => (route.handle)(app, req).await,
                    None => not_found(),
                }
            }
        })
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "running_executions": state.engine.running_count(),
    }))
}

/// Filters of `GET /_flowgate/outbox`: exact `resource` and queue/topic `name`.
#[derive(Debug, Default, serde::Deserialize)]
struct OutboxFilter {
    resource: Option<String>,
    name: Option<String>,
}

/// `GET /_flowgate/outbox`: the messages MNS tasks sent, oldest first.
async fn outbox_list(
    State(state): State<AppState>,
    Query(filter): Query<OutboxFilter>,
) -> impl IntoResponse {
    let messages = state
        .engine
        .outbox()
        .list(filter.resource.as_deref(), filter.name.as_deref());
    Json(json!({ "messages": messages }))
}

/// `DELETE /_flowgate/outbox`: empties the outbox.
async fn outbox_clear(State(state): State<AppState>) -> impl IntoResponse {
    Json(json!({ "deleted": state.engine.outbox().clear() }))
}

/// flowgate's own answer for a path no route and no dialect serves.
fn not_found() -> axum::response::Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "not_found", "message": "no route matches this path"})),
    )
        .into_response()
}

/// Opens the store the configuration describes: SQLite (the default) or PostgreSQL, with
/// Express executions in memory unless `store.express = "store"`; or the memory store.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, String> {
    let memory = || {
        MemoryStore::new(Retention {
            express: config.engine.express_retention,
            standard: config.engine.standard_retention,
        })
    };
    let durable: Arc<dyn Store> = match config.store.kind {
        StoreKind::Memory => return Ok(Arc::new(memory())),
        StoreKind::Sqlite => {
            let path = config.store.sqlite_path();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("store.path: cannot create {}: {e}", dir.display()))?;
            }
            let options = SqliteOptions {
                synchronous: match config.store.synchronous {
                    SyncMode::Normal => Synchronous::Normal,
                    SyncMode::Full => Synchronous::Full,
                },
            };
            let store = SqliteStore::open_with(&path, options)
                .map_err(|e| format!("store.path: {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "SQLite store open");
            Arc::new(store)
        }
        StoreKind::Postgres => {
            let url = config.store.url.clone().unwrap_or_default();
            let options = PostgresOptions {
                url,
                node_id: node_id(config),
                lease: lease(config),
                ..PostgresOptions::default()
            };
            let node = options.node_id.clone();
            let store = PostgresStore::connect(options)
                .await
                .map_err(|e| format!("store.url: {e}"))?;
            tracing::info!(node = %node, "PostgreSQL store open");
            Arc::new(store)
        }
    };
    Ok(match config.store.express {
        ExpressPlacement::Memory => Arc::new(TieredStore::new(durable, memory())),
        ExpressPlacement::Store => durable,
    })
}

/// This node's name in a shared store: configured, or host name, process id and a random
/// suffix (new at each start, so a restarted node never mistakes old leases for its own).
fn node_id(config: &Config) -> String {
    if let Some(n) = &config.store.node_id {
        return n.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "flowgate".to_string());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &suffix[..8])
}

/// How long this node's claims on running executions last without renewal.
pub fn lease(config: &Config) -> Duration {
    Duration::from_secs_f64(config.store.lease_seconds.max(1.0))
}

/// Builds the engine the configuration describes (store, function bindings, limits).
pub async fn build_engine(config: &Config) -> Result<Engine, String> {
    let store = open_store(config).await?;
    let functions = FunctionRegistry::from_config(&config.functions).map_err(|problems| {
        problems
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let compilers = dialects::registry(config);
    let recompile = Recompile(Box::new(move |dialect: &str, name: &str, text: &str| {
        compilers
            .iter()
            .find(|d| d.name() == dialect)
            .and_then(|d| d.compile(name, text).ok())
    }));
    let engine =
        Engine::new(config.engine.clone(), store, functions).with_recompiler(Arc::new(recompile));
    match &config.mock_file {
        None => Ok(engine),
        Some(path) => {
            let cases = crate::invoke::testcases::TestCases::load(path)
                .map_err(|problems| problems.join("\n"))?;
            Ok(engine.with_test_cases(cases))
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The engine could not be built from the configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A flow file under the flows directory did not deploy.
    #[error("flows directory:\n{0}")]
    Deploy(String),
    /// The listener could not be bound or failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Prepares the state: engine, dialects, flows deployed from the flows directory.
pub async fn prepare(config: Config) -> Result<(AppState, Vec<Box<dyn Dialect>>), ServeError> {
    let engine = build_engine(&config).await.map_err(ServeError::Config)?;
    let dialects = dialects::registry(&config);
    if let Some(dir) = config.flows.dir.as_deref().filter(|d| d.is_dir()) {
        let cfg = &config;
        let namespace_of = |d: &dyn Dialect| match d.name() {
            "alibaba" => cfg.flows.alibaba_namespace.clone(),
            "huawei" => format!("huawei/{}", cfg.flows.huawei_project),
            _ => d.default_namespace(),
        };
        let keys = crate::deploy::deploy_dir(&engine, &dialects, dir, &namespace_of)
            .await
            .map_err(|problems| {
                ServeError::Deploy(
                    problems
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })?;
        tracing::info!(count = keys.len(), dir = %dir.display(), "deployed flows from the flows directory");
    }
    let limiter = crate::ratelimit::RateLimiter::new(config.rate_limits.clone());
    let state = AppState::new(engine, config, limiter);
    let resumed = state.engine.start_background(lease(&state.config)).await;
    if resumed > 0 {
        tracing::info!(count = resumed, "resumed running executions from the store");
    }
    for d in &dialects {
        d.start_background(&state);
    }
    Ok((state, dialects))
}

/// Runs the server on `addr` until SIGINT or SIGTERM, then drains in-flight requests.
pub async fn serve(config: Config, addr: SocketAddr) -> Result<(), ServeError> {
    let started = Instant::now();
    let (state, dialects) = prepare(config).await?;
    let state_engine = state.engine.clone();
    let app = app(state, &dialects);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(
        listen = %listener.local_addr()?,
        startup_ms = started.elapsed().as_secs_f64() * 1000.0,
        "flowgate is listening"
    );
    let engine = state_engine;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // Running executions stay in a durable store and resume at the next start; on a shared
    // store, other nodes take them over at once.
    engine.release().await;
    tracing::info!("flowgate stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
