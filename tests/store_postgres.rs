//! The PostgreSQL store behaves like the memory store (the shared checks of
//! tests/support/store_checks.rs), and several nodes share one database safely: leases,
//! fencing, claims and notices.
//!
//! Needs a server: see tests/support/postgres.rs (`TEST_PG_URL`; a database per test;
//! skipped without the variable, except on CI).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use flowgate::model::{EventKind, ExecutionStatus};
use flowgate::store::postgres::MIGRATIONS;
use flowgate::store::{
    ExecutionUpdate, InsertOutcome, MemoryStore, Notice, PostgresOptions, PostgresStore, Store,
    StoreError, TokenState,
};
use support::postgres::{with_database, TestDb};
use support::store_checks::{
    behaves_like_a_store, concurrent_writers_keep_every_event, event, exec, insert_and_commit_rate,
    keeps_everything, t0, token, workers,
};
use tokio_postgres::Client;

impl TestDb {
    fn options(&self, node: &str, lease: Duration) -> PostgresOptions {
        PostgresOptions {
            lease,
            ..PostgresOptions::new(self.url.clone(), node)
        }
    }

    /// A node with the default 15 s lease.
    async fn node(&self, node: &str) -> PostgresStore {
        self.node_with(node, Duration::from_secs(15)).await
    }

    async fn node_with(&self, node: &str, lease: Duration) -> PostgresStore {
        PostgresStore::connect(self.options(node, lease))
            .await
            .unwrap()
    }

    /// The lease columns of an execution: owner, epoch, and whether the lease is live.
    async fn lease_of(&self, id: &str) -> (Option<String>, i64, Option<bool>) {
        let row = self
            .client()
            .await
            .query_one(
                "SELECT owner, epoch, lease_until > now() FROM executions WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    }
}

macro_rules! test_db {
    () => {
        match TestDb::create().await {
            Some(db) => db,
            None => return,
        }
    };
}

fn ids(records: &[flowgate::model::ExecutionRecord]) -> Vec<String> {
    records.iter().map(|r| r.id.to_string()).collect()
}

fn finish(status: ExecutionStatus) -> Option<ExecutionUpdate> {
    Some(ExecutionUpdate {
        status: Some(status),
        stopped: Some(t0()),
        ..Default::default()
    })
}

fn retry() -> Option<ExecutionUpdate> {
    Some(ExecutionUpdate {
        status: Some(ExecutionStatus::Running),
        reopen: true,
        ..Default::default()
    })
}

async fn insert(s: &dyn Store, id: &str) {
    let out = s
        .insert_execution(
            exec(id, "F", id, t0()),
            event(1, t0(), EventKind::ExecutionStarted),
        )
        .await
        .unwrap();
    assert!(matches!(out, InsertOutcome::Inserted));
}

async fn step(s: &dyn Store, id: &str, n: u64) -> Result<(), StoreError> {
    s.commit(id, vec![event(n, t0(), EventKind::StateEntered)], None)
        .await
}

async fn events_of(s: &dyn Store, id: &str) -> usize {
    s.history(id, 0, 1000).await.unwrap().items.len()
}

#[test]
fn database_urls_are_rewritten() {
    assert_eq!(
        with_database("postgres://u:p@127.0.0.1:55432/postgres", "x"),
        "postgres://u:p@127.0.0.1:55432/x"
    );
    assert_eq!(
        with_database("postgresql://h/postgres?sslmode=disable", "x"),
        "postgresql://h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    assert_eq!(
        with_database("host=h user=u", "x"),
        "host=h user=u dbname=x"
    );
}

#[tokio::test]
async fn the_postgres_store_passes_the_contract() {
    let db = test_db!();
    let s = db.node("a").await;
    assert!(s.is_durable());
    behaves_like_a_store(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_do_not_lose_events() {
    let db = test_db!();
    concurrent_writers_keep_every_event(Arc::new(db.node("a").await)).await;
}

#[tokio::test]
async fn a_reopened_store_keeps_everything() {
    let db = test_db!();
    let memory = MemoryStore::default();
    {
        let s = db.node("a").await;
        behaves_like_a_store(&s).await;
        behaves_like_a_store(&memory).await;
    }
    let s = db.node("a").await;
    assert_eq!(s.schema_version().await.unwrap(), MIGRATIONS.len());
    keeps_everything(&memory, &s).await;
}

#[tokio::test]
async fn migrations_are_versioned_and_a_second_connect_is_a_no_op() {
    let db = test_db!();
    let versions = |c: Client| async move {
        c.query("SELECT version FROM schema_version", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, i32>(0) as usize)
            .collect::<Vec<_>>()
    };
    let a = db.node("a").await;
    assert_eq!(a.schema_version().await.unwrap(), MIGRATIONS.len());
    assert_eq!(versions(db.client().await).await, [MIGRATIONS.len()]);
    insert(&a, "e1").await;

    let b = db.node("b").await;
    assert_eq!(b.schema_version().await.unwrap(), MIGRATIONS.len());
    assert_eq!(versions(db.client().await).await, [MIGRATIONS.len()]);
    assert_eq!(events_of(&b, "e1").await, 1);
    assert_eq!(
        db.lease_of("e1").await,
        (Some("a".into()), 1, Some(true)),
        "connecting again leaves the data alone"
    );

    db.client()
        .await
        .execute("UPDATE schema_version SET version = version + 1", &[])
        .await
        .unwrap();
    let err = PostgresStore::connect(db.options("c", Duration::from_secs(15)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend(m) if m.contains("newer")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_migrate_once() {
    let db = test_db!();
    let starts: Vec<_> = (0..4)
        .map(|i| PostgresStore::connect(db.options(&format!("n{i}"), Duration::from_secs(15))))
        .collect();
    for s in futures::future::join_all(starts).await {
        assert_eq!(s.unwrap().schema_version().await.unwrap(), MIGRATIONS.len());
    }
    let n: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM schema_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// (a) A holds what it inserts; B cannot write to it; once A's lease expires B claims it (a
/// new epoch) and from then on A is fenced off and told so when renewing.
#[tokio::test]
async fn a_node_is_fenced_once_another_claims_its_execution() {
    let db = test_db!();
    let lease = Duration::from_secs(1);
    let a = db.node_with("node-a", lease).await;
    let b = db.node_with("node-b", lease).await;
    insert(&a, "e1").await;
    assert_eq!(
        db.lease_of("e1").await,
        (Some("node-a".into()), 1, Some(true))
    );
    step(&a, "e1", 2).await.unwrap();

    assert_eq!(
        step(&b, "e1", 3).await.unwrap_err(),
        StoreError::Fenced("e1".into())
    );
    assert_eq!(
        b.commit("e1", vec![], retry()).await.unwrap_err(),
        StoreError::Fenced("e1".into()),
        "a retry does not take a running execution from its live owner"
    );
    assert_eq!(
        events_of(&b, "e1").await,
        2,
        "a fenced commit writes nothing"
    );
    assert!(b.claim_orphans(lease, 10).await.unwrap().is_empty());
    assert!(a
        .renew_leases(&["e1".into()], lease)
        .await
        .unwrap()
        .is_empty());

    tokio::time::sleep(lease + Duration::from_millis(300)).await;
    let claimed = b.claim_orphans(lease, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["e1"]);
    assert_eq!(claimed[0].event_count, 2);
    assert_eq!(
        db.lease_of("e1").await,
        (Some("node-b".into()), 2, Some(true))
    );
    assert!(b.claim_orphans(lease, 10).await.unwrap().is_empty());

    assert_eq!(
        step(&a, "e1", 3).await.unwrap_err(),
        StoreError::Fenced("e1".into())
    );
    assert_eq!(events_of(&a, "e1").await, 2);
    assert_eq!(a.renew_leases(&["e1".into()], lease).await.unwrap(), ["e1"]);
    assert_eq!(
        a.renew_leases(&["e1".into()], lease).await.unwrap(),
        ["e1"],
        "still not held"
    );

    step(&b, "e1", 3).await.unwrap();
    assert!(b
        .renew_leases(&["e1".into()], lease)
        .await
        .unwrap()
        .is_empty());
    b.commit(
        "e1",
        vec![event(4, t0(), EventKind::ExecutionSucceeded)],
        finish(ExecutionStatus::Succeeded),
    )
    .await
    .unwrap();
    assert_eq!(
        db.lease_of("e1").await,
        (None, 2, None),
        "an ended execution has no owner"
    );
    assert_eq!(events_of(&a, "e1").await, 4);
    tokio::time::sleep(lease + Duration::from_millis(300)).await;
    assert!(
        b.claim_orphans(lease, 10).await.unwrap().is_empty(),
        "ended executions are never orphans"
    );
    assert_eq!(
        step(&b, "e1", 5).await.unwrap_err(),
        StoreError::Fenced("e1".into()),
        "nobody holds an ended execution"
    );
    assert_eq!(
        a.commit("nope", vec![], None).await.unwrap_err(),
        StoreError::NotFound("nope".into())
    );
}

#[tokio::test]
async fn a_retry_takes_a_finished_execution_for_the_retrying_node() {
    let db = test_db!();
    let a = db.node("node-a").await;
    let b = db.node("node-b").await;
    insert(&a, "e1").await;
    a.commit("e1", vec![], finish(ExecutionStatus::Failed))
        .await
        .unwrap();
    b.commit("e1", vec![], retry()).await.unwrap();
    assert_eq!(
        db.lease_of("e1").await,
        (Some("node-b".into()), 2, Some(true))
    );
    assert_eq!(
        b.get_execution("e1").await.unwrap().unwrap().status,
        ExecutionStatus::Running
    );
    assert_eq!(
        step(&a, "e1", 2).await.unwrap_err(),
        StoreError::Fenced("e1".into())
    );
    assert_eq!(
        a.commit("e1", vec![], retry()).await.unwrap_err(),
        StoreError::Fenced("e1".into())
    );
    step(&b, "e1", 2).await.unwrap();
    assert!(b
        .renew_leases(&["e1".into()], Duration::from_secs(15))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn released_leases_are_claimed_at_once() {
    let db = test_db!();
    let a = db.node("node-a").await;
    let b = db.node("node-b").await;
    insert(&a, "e1").await;
    insert(&a, "e2").await;
    a.release_leases(&["e1".into(), "unknown".into()])
        .await
        .unwrap();
    assert_eq!(db.lease_of("e1").await.0, None);
    let claimed = b.claim_orphans(Duration::from_secs(15), 10).await.unwrap();
    assert_eq!(ids(&claimed), ["e1"]);
    assert_eq!(
        db.lease_of("e1").await,
        (Some("node-b".into()), 2, Some(true))
    );
    assert_eq!(
        step(&a, "e1", 2).await.unwrap_err(),
        StoreError::Fenced("e1".into())
    );
    step(&a, "e2", 2).await.unwrap();
    step(&b, "e1", 2).await.unwrap();
    assert_eq!(
        a.renew_leases(&["e1".into(), "e2".into()], Duration::from_secs(15))
            .await
            .unwrap(),
        ["e1"]
    );
}

/// (b) Nodes claiming at once never get the same execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_never_hand_an_execution_to_two_nodes() {
    let db = test_db!();
    let lease = Duration::from_secs(15);
    let seed = db.node("seed").await;
    let all: Vec<String> = (0..200).map(|i| format!("o{i:03}")).collect();
    for id in &all {
        insert(&seed, id).await;
    }
    seed.release_leases(&all).await.unwrap();

    let mut nodes = Vec::new();
    for n in 0..4 {
        let mut o = db.options(&format!("n{n}"), lease);
        o.pool_size = 4;
        nodes.push(Arc::new(PostgresStore::connect(o).await.unwrap()));
    }
    let mut tasks = Vec::new();
    for node in &nodes {
        for _ in 0..3 {
            let node = Arc::clone(node);
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = node.claim_orphans(lease, 7).await.unwrap();
                    if batch.is_empty() {
                        return (node.node_id().to_string(), got);
                    }
                    got.extend(ids(&batch));
                }
            }));
        }
    }
    let mut owner_of: BTreeMap<String, String> = BTreeMap::new();
    for t in tasks {
        let (node, got) = t.await.unwrap();
        for id in got {
            if let Some(other) = owner_of.insert(id.clone(), node.clone()) {
                panic!("{id} claimed by {other} and {node}");
            }
        }
    }
    assert_eq!(
        owner_of.keys().cloned().collect::<BTreeSet<_>>(),
        all.iter().cloned().collect::<BTreeSet<_>>()
    );
    let per_node: BTreeMap<&str, usize> = owner_of.values().fold(BTreeMap::new(), |mut m, n| {
        *m.entry(n.as_str()).or_default() += 1;
        m
    });
    println!("claims per node: {per_node:?}");
    for node in &nodes {
        assert!(node.claim_orphans(lease, 10).await.unwrap().is_empty());
    }
    // Every claim took a new epoch, and only the claimant may write.
    let rows = db
        .client()
        .await
        .query("SELECT id, owner, epoch FROM executions", &[])
        .await
        .unwrap();
    for r in rows {
        let id: String = r.get(0);
        assert_eq!(r.get::<_, Option<String>>(1).as_ref(), owner_of.get(&id));
        assert_eq!(r.get::<_, i64>(2), 2, "{id}");
    }
    for (id, owner) in owner_of.iter().take(20) {
        for node in &nodes {
            let out = step(node.as_ref(), id, 2).await;
            if node.node_id() == owner {
                out.unwrap();
            } else {
                assert_eq!(out.unwrap_err(), StoreError::Fenced(id.clone()));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_completes_once_across_nodes() {
    let db = test_db!();
    let a = Arc::new(db.node("node-a").await);
    let b = Arc::new(db.node("node-b").await);
    a.put_token(token("tok")).await.unwrap();
    let tries: Vec<_> = (0..8)
        .map(|i| {
            let s: Arc<dyn Store> = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                s.complete_token("tok", Some(serde_json::json!({ "output": i })))
                    .await
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tries {
        match t.await.unwrap() {
            Ok(rec) => won.push(rec),
            Err(e) => assert_eq!(e, StoreError::AlreadyCompleted("tok".into())),
        }
    }
    assert_eq!(won.len(), 1);
    let stored = b.get_token("tok").await.unwrap().unwrap();
    assert_eq!(stored.status, TokenState::Completed);
    assert_eq!(stored, won[0]);
}

fn every_notice() -> Vec<Notice> {
    vec![
        Notice::Finished {
            execution_id: "e-1".into(),
        },
        Notice::Stop {
            execution_id: "e \"2\" é".into(),
        },
        Notice::Reported {
            token: "tok/3".into(),
        },
        Notice::Recorded {
            token: "tok/3".into(),
            event_id: u64::MAX,
        },
    ]
}

async fn next_notice(rx: &mut tokio::sync::broadcast::Receiver<Notice>) -> Notice {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a notice within 10 s")
        .unwrap()
}

/// (c) What one node publishes, every node receives (the publisher too), every variant intact.
#[tokio::test]
async fn notices_reach_every_node() {
    let db = test_db!();
    let a = db.node("node-a").await;
    let b = db.node("node-b").await;
    let mut at_a = a.subscribe().unwrap();
    let mut at_b = b.subscribe().unwrap();
    for n in every_notice() {
        a.publish(n).await.unwrap();
    }
    for rx in [&mut at_a, &mut at_b] {
        for n in every_notice() {
            assert_eq!(next_notice(rx).await, n);
        }
    }
    let back = Notice::Stop {
        execution_id: "from-b".into(),
    };
    b.publish(back.clone()).await.unwrap();
    assert_eq!(next_notice(&mut at_a).await, back);
    assert_eq!(next_notice(&mut at_b).await, back);

    // Another database is another group of nodes.
    let other = test_db!();
    let c = other.node("node-c").await;
    let mut at_c = c.subscribe().unwrap();
    a.publish(back.clone()).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), at_c.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_listener_and_the_pool_reconnect() {
    let db = test_db!();
    let a = db.node("node-a").await;
    let mut rx = a.subscribe().unwrap();
    insert(&a, "e1").await;
    // Cut every connection to the test database.
    db.client()
        .await
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let notice = Notice::Finished {
        execution_id: "after".into(),
    };
    let mut received = false;
    for _ in 0..50 {
        // A publish may hit a pooled connection that has not noticed it is gone yet.
        let _ = a.publish(notice.clone()).await;
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            assert_eq!(n, notice);
            received = true;
            break;
        }
    }
    assert!(received, "the listener came back");
    step(&a, "e1", 2).await.unwrap();
    assert_eq!(events_of(&a, "e1").await, 2);
}

/// A rough figure, as for SQLite: inserts plus one commit per execution.
/// `eval "$(scripts/test-postgres.sh)"; cargo test --release --test store_postgres --
/// --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn rough_insert_and_commit_throughput() {
    let db = test_db!();
    let n = 5_000;
    let s = Arc::new(db.node("bench").await);
    let pg = insert_and_commit_rate(s, n).await;
    println!(
        "executions/s: postgres {pg:.0} ({} workers, pool 16, {n} executions)",
        workers()
    );
}
