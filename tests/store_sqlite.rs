//! The SQLite store behaves like the memory store, and a reopened file keeps everything.
//! The checks themselves are shared with the PostgreSQL store: tests/support/store_checks.rs.

mod support;

use std::sync::Arc;

use flowgate::model::EventKind;
use flowgate::store::sqlite::{SqliteOptions, Synchronous, MIGRATIONS};
use flowgate::store::{MemoryStore, PutMode, SqliteStore, Store, StoreError};
use serde_json::json;
use support::store_checks::{
    behaves_like_a_store, concurrent_writers_keep_every_event, event, exec, insert_and_commit_rate,
    keeps_everything, t0,
};

#[tokio::test]
async fn the_memory_store_passes_the_contract() {
    behaves_like_a_store(&MemoryStore::default()).await;
}

#[tokio::test]
async fn the_sqlite_store_passes_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("flowgate.db")).unwrap();
    behaves_like_a_store(&s).await;
}

#[tokio::test]
async fn the_sqlite_store_passes_the_contract_with_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open_with(
        dir.path().join("flowgate.db"),
        SqliteOptions {
            synchronous: Synchronous::Full,
        },
    )
    .unwrap();
    behaves_like_a_store(&s).await;
}

#[tokio::test]
async fn a_reopened_file_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flowgate.db");
    let memory = MemoryStore::default();
    {
        let s = SqliteStore::open(&path).unwrap();
        behaves_like_a_store(&s).await;
        behaves_like_a_store(&memory).await;
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());

    keeps_everything(&memory, &s).await;
}

#[tokio::test]
async fn concurrent_writers_do_not_lose_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteStore::open(dir.path().join("flowgate.db")).unwrap());
    concurrent_writers_keep_every_event(s).await;
}

#[test]
fn a_file_from_a_newer_flowgate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flowgate.db");
    let s = SqliteStore::open(&path).unwrap();
    drop(s);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE schema_version SET version = version + 1", [])
            .unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Backend(m) if m.contains("newer")));
}

/// A rough figure for the next step (not the benchmark): inserts plus one commit per
/// execution, on each store. `cargo test --release --test store_sqlite -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn rough_insert_and_commit_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let n = 5_000;
    let mem = insert_and_commit_rate(Arc::new(MemoryStore::default()), n).await;
    let lite = insert_and_commit_rate(
        Arc::new(SqliteStore::open(dir.path().join("normal.db")).unwrap()),
        n,
    )
    .await;
    let full = insert_and_commit_rate(
        Arc::new(
            SqliteStore::open_with(
                dir.path().join("full.db"),
                SqliteOptions {
                    synchronous: Synchronous::Full,
                },
            )
            .unwrap(),
        ),
        n,
    )
    .await;
    println!("executions/s: memory {mem:.0}, sqlite normal {lite:.0}, sqlite full {full:.0}");
}

#[tokio::test]
#[ignore]
async fn rough_op_latency() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("ops.db")).unwrap();
    let base = t0();
    s.insert_execution(
        exec("x", "F", "x", base),
        event(1, base, EventKind::ExecutionStarted),
    )
    .await
    .unwrap();
    let n = 2000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        s.get_execution("x").await.unwrap();
    }
    println!("get_execution {:?}/op", t.elapsed() / n);
    let t = std::time::Instant::now();
    for i in 0..n {
        s.put_record("k", &i.to_string(), json!(i), PutMode::Upsert)
            .await
            .unwrap();
    }
    println!("put_record {:?}/op", t.elapsed() / n);
    let t = std::time::Instant::now();
    for _ in 0..n {
        s.delete_timer("none").await.unwrap();
    }
    println!("delete_timer (autocommit no-op) {:?}/op", t.elapsed() / n);
}

/// A sync start answers from the record it inserted and what the end wrote, without reading
/// the record back: that answer is the record the SQLite store holds, for a flow that
/// succeeds and one that fails.
#[tokio::test]
async fn a_sync_answer_is_the_record_sqlite_holds() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("flowgate.db")).unwrap());
    let engine = flowgate::engine::Engine::new(
        support::fast_config(),
        store,
        flowgate::invoke::FunctionRegistry::with(vec![]),
    );
    let flow = support::deploy_canonical(
        &engine,
        json!({"name": "f", "root": {"start_at": "Pick", "states": [
            {"name": "Pick", "type": "choice", "rules": [{"condition": "$input.ok", "next": "Yes"}], "default": {"next": "No"}},
            {"name": "Yes", "type": "pass", "end": true},
            {"name": "No", "type": "fail", "error": "Rejected", "cause": "not ok"}
        ]}}),
    )
    .await;
    for ok in [true, false] {
        let answer = engine
            .start_sync(support::request(&flow, None, json!({"ok": ok})), true)
            .await
            .unwrap();
        assert!(answer.is_terminal(), "{answer:?}");
        assert_eq!(answer, engine.execution(&answer.id).await.unwrap());
    }
}

/// Which executions outlive the process: the engine commits what leads to a task call before
/// the call only for those (and for Standard executions, whose history is read while they
/// run).
#[test]
fn stores_say_which_executions_are_durable() {
    use flowgate::model::ExecutionMode::{Express, Standard};
    use flowgate::store::TieredStore;
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("d.db")).unwrap());
    assert!(sqlite.durable(Express) && sqlite.durable(Standard));
    let memory = MemoryStore::default();
    assert!(!memory.durable(Express) && !memory.durable(Standard));
    let tiered = TieredStore::new(sqlite, MemoryStore::default());
    assert!(
        !tiered.durable(Express),
        "Express executions live in the memory tier"
    );
    assert!(tiered.durable(Standard));
}
