//! The store contract, run against every [`Store`]: what the memory store does, any store
//! does (same results, same errors, same paging cursors). Used by tests/store_sqlite.rs and
//! tests/store_postgres.rs.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use flowgate::model::execution::FlowKey;
use flowgate::model::time::Timestamp;
use flowgate::model::{
    Event, EventDetail, EventKind, ExecutionMode, ExecutionRecord, ExecutionStatus, RetryPoint,
};
use flowgate::store::{
    ExecutionFilter, ExecutionUpdate, FlowRecord, InsertOutcome, MemoryStore, PutMode, Store,
    StoreError, TaskTokenRecord, TimerRecord, TokenState,
};
use serde_json::{json, Value};

/// The base time of the checks (with nanoseconds, which every store must keep).
pub fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + Duration::nanoseconds(123_456_789)
}

/// A canonical flow definition exercising most of the model (map, retry, catch, fail).
pub fn flow_text(name: &str) -> String {
    json!({
        "name": name, "mode": "Standard", "timeout_seconds": 10.0,
        "root": {"start_at": "M", "states": [
            {"name": "M", "type": "map", "items": "$input.xs", "max_concurrency": 2,
             "processor": {"start_at": "T", "states": [
                {"name": "T", "type": "task", "resource": "fn", "mode": "wait_for_callback",
                 "parameters": {"token.$": "$context.state.task_token", "k": [1, 2]}, "end": true}]},
             "retry": [{"errors": ["*"], "interval_seconds": 2.0, "max_attempts": 1, "backoff_rate": 1.5}],
             "catch": [{"errors": ["E"], "next": "F"}], "next": "F"},
            {"name": "F", "type": "fail", "error": "Oops", "cause": "because"}
        ]}
    })
    .to_string()
}

/// A deployed flow record named `ns/name` with id `id`.
pub fn flow(ns: &str, name: &str, id: &str) -> FlowRecord {
    let text = flow_text(name);
    let compiled = flowgate::canonical::compile(&text).unwrap();
    FlowRecord {
        id: id.into(),
        key: FlowKey::new(ns, name),
        dialect: "canonical".into(),
        definition: Arc::from(text.as_str()),
        flow: Arc::new(compiled),
        created: t0(),
        modified: t0() + Duration::seconds(1),
        metadata: json!({"description": "d", "n": 1}),
    }
}

/// Asserts two flow records are equal field by field (`FlowRecord` has no `PartialEq`).
pub fn assert_flow_eq(a: &FlowRecord, b: &FlowRecord) {
    assert_eq!(a.id, b.id);
    assert_eq!(a.key, b.key);
    assert_eq!(a.dialect, b.dialect);
    assert_eq!(a.definition, b.definition);
    assert_eq!(*a.flow, *b.flow);
    assert_eq!(a.created, b.created);
    assert_eq!(a.modified, b.modified);
    assert_eq!(a.metadata, b.metadata);
}

/// A running execution record of flow `flow_id`.
pub fn exec(id: &str, flow_id: &str, name: &str, started: Timestamp) -> ExecutionRecord {
    ExecutionRecord {
        id: id.into(),
        name: name.into(),
        flow: FlowKey::new("ns", "f"),
        flow_id: flow_id.into(),
        mode: ExecutionMode::Standard,
        status: ExecutionStatus::Running,
        input: Arc::new(json!({"xs": [1, 2.5, "a"], "nested": {"b": 1, "a": 2}})),
        output: None,
        error: None,
        cause: None,
        started,
        stopped: None,
        updated: started,
        definition: Arc::from("{}"),
        event_count: 1,
        metadata: Arc::new(json!({"qualifier": "LATEST"})),
        retry_point: None,
        callback_token: None,
        test_case: None,
    }
}

/// An event; even ids carry an error detail, odd ids an input.
pub fn event(id: u64, time: Timestamp, kind: EventKind) -> Event {
    Event {
        id,
        cause_id: id.saturating_sub(1),
        time,
        kind,
        state: (if id == 1 { "" } else { "M" }).into(),
        detail: if id.is_multiple_of(2) {
            EventDetail::error("E", "cause")
        } else {
            EventDetail::input(Arc::new(json!({"i": id})))
        },
    }
}

/// A timer of execution `e1`.
pub fn timer(id: &str, due: Timestamp) -> TimerRecord {
    TimerRecord {
        id: id.to_string(),
        execution_id: "e1".into(),
        state: "W".into(),
        due,
    }
}

/// A waiting task token of execution `e1`.
pub fn token(tok: &str) -> TaskTokenRecord {
    TaskTokenRecord {
        token: tok.to_string(),
        execution_id: "e1".into(),
        flow: FlowKey::new("ns", "f"),
        execution_name: "one".into(),
        state: "T".into(),
        status: TokenState::Waiting,
        created: t0(),
        outcome: None,
    }
}

/// Flows: create, replace, get, list with a cursor, delete.
pub async fn flows_behave(s: &dyn Store) {
    s.create_flow(flow("ns", "b", "fb")).await.unwrap();
    s.create_flow(flow("ns", "a", "fa")).await.unwrap();
    s.create_flow(flow("ns", "c", "fc")).await.unwrap();
    s.create_flow(flow("other", "a", "oa")).await.unwrap();
    assert_eq!(
        s.create_flow(flow("ns", "a", "fa2")).await.unwrap_err(),
        StoreError::AlreadyExists("ns/a".into())
    );
    assert_flow_eq(
        &s.get_flow(&FlowKey::new("ns", "a")).await.unwrap().unwrap(),
        &flow("ns", "a", "fa"),
    );
    assert_flow_eq(
        &s.get_flow_by_id("oa").await.unwrap().unwrap(),
        &flow("other", "a", "oa"),
    );
    assert!(s.get_flow_by_id("nope").await.unwrap().is_none());
    assert!(s
        .get_flow(&FlowKey::new("ns", "zz"))
        .await
        .unwrap()
        .is_none());
    // By namespace and name (no key built): the same flows, and nothing across namespaces.
    assert_flow_eq(
        &s.get_flow_named("other", "a").await.unwrap().unwrap(),
        &flow("other", "a", "oa"),
    );
    assert_flow_eq(
        &s.get_flow_named("ns", "c").await.unwrap().unwrap(),
        &flow("ns", "c", "fc"),
    );
    assert!(s.get_flow_named("ns", "zz").await.unwrap().is_none());
    assert!(s.get_flow_named("nsa", "").await.unwrap().is_none());

    // Replace (a new id moves the id index).
    let mut r = flow("ns", "a", "fa-new");
    r.metadata = json!({"replaced": true});
    s.replace_flow(r.clone()).await.unwrap();
    assert!(s.get_flow_by_id("fa").await.unwrap().is_none());
    assert_flow_eq(&s.get_flow_by_id("fa-new").await.unwrap().unwrap(), &r);
    assert_eq!(
        s.replace_flow(flow("ns", "zz", "z")).await.unwrap_err(),
        StoreError::NotFound("ns/zz".into())
    );

    // Listing in name order with a cursor.
    let p = s.list_flows("ns", None, 2).await.unwrap();
    let names: Vec<_> = p.items.iter().map(|f| f.key.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(p.next.as_deref(), Some("b"));
    let p = s.list_flows("ns", p.next.as_deref(), 2).await.unwrap();
    let names: Vec<_> = p.items.iter().map(|f| f.key.name.as_str()).collect();
    assert_eq!(names, ["c"]);
    assert_eq!(p.next, None);
    let p = s.list_flows("ns", None, 3).await.unwrap();
    assert_eq!(p.items.len(), 3);
    assert_eq!(p.next, None);

    // Delete.
    assert!(s.delete_flow(&FlowKey::new("ns", "c")).await.unwrap());
    assert!(!s.delete_flow(&FlowKey::new("ns", "c")).await.unwrap());
    assert!(s.get_flow_by_id("fc").await.unwrap().is_none());
    assert_eq!(s.list_flows("ns", None, 10).await.unwrap().items.len(), 2);
}

/// Executions: insert (and the duplicate name), commit, retry (reopen), history pages.
pub async fn executions_behave(s: &dyn Store) {
    let base = t0();
    let r1 = exec("e1", "F", "one", base);
    assert!(matches!(
        s.insert_execution(r1.clone(), event(1, base, EventKind::ExecutionStarted))
            .await
            .unwrap(),
        InsertOutcome::Inserted
    ));
    // Same name in the same flow: the existing record, nothing written.
    match s
        .insert_execution(
            exec("e1-dup", "F", "one", base),
            event(1, base, EventKind::ExecutionStarted),
        )
        .await
        .unwrap()
    {
        InsertOutcome::Existing(r) => assert_eq!(*r, r1),
        InsertOutcome::Inserted => panic!("duplicate name inserted"),
    }
    assert!(s.get_execution("e1-dup").await.unwrap().is_none());
    // Same name in another flow is fine.
    assert!(matches!(
        s.insert_execution(
            exec("x1", "G", "one", base),
            event(1, base, EventKind::ExecutionStarted)
        )
        .await
        .unwrap(),
        InsertOutcome::Inserted
    ));
    assert_eq!(s.get_execution("e1").await.unwrap().unwrap(), r1);
    assert_eq!(s.find_execution("F", "one").await.unwrap().unwrap(), r1);
    assert!(s.find_execution("F", "two").await.unwrap().is_none());
    assert!(s.get_execution("nope").await.unwrap().is_none());

    // Commit appends events and applies the update together.
    let evs: Vec<Event> = (2..=6)
        .map(|i| {
            event(
                i,
                base + Duration::seconds(i as i64),
                EventKind::StateEntered,
            )
        })
        .collect();
    s.commit("e1", evs.clone(), None).await.unwrap();
    let r = s.get_execution("e1").await.unwrap().unwrap();
    assert_eq!(r.event_count, 6);
    assert_eq!(r.updated, base + Duration::seconds(6));
    assert_eq!(r.status, ExecutionStatus::Running);

    let point = RetryPoint {
        state: "M".into(),
        input: Arc::new(json!({"xs": []})),
    };
    s.commit(
        "e1",
        vec![event(
            7,
            base + Duration::seconds(7),
            EventKind::ExecutionFailed,
        )],
        Some(ExecutionUpdate {
            status: Some(ExecutionStatus::Failed),
            error: Some("E".into()),
            cause: Some("bad".into()),
            stopped: Some(base + Duration::seconds(7)),
            retry_point: Some(point.clone()),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let r = s.get_execution("e1").await.unwrap().unwrap();
    assert_eq!(r.status, ExecutionStatus::Failed);
    assert_eq!(r.error.as_deref(), Some("E"));
    assert_eq!(r.cause.as_deref(), Some("bad"));
    assert_eq!(r.stopped, Some(base + Duration::seconds(7)));
    assert_eq!(r.retry_point, Some(point));
    assert_eq!(r.event_count, 7);

    // Reopen clears the end fields before the update applies.
    s.commit(
        "e1",
        vec![],
        Some(ExecutionUpdate {
            status: Some(ExecutionStatus::Running),
            reopen: true,
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let r = s.get_execution("e1").await.unwrap().unwrap();
    assert_eq!(r.status, ExecutionStatus::Running);
    assert_eq!(
        (&r.error, &r.cause, &r.stopped, &r.retry_point, &r.output),
        (&None, &None, &None, &None, &None)
    );
    assert_eq!(r.event_count, 7);
    assert_eq!(r.updated, base + Duration::seconds(7));

    s.commit(
        "e1",
        vec![event(
            8,
            base + Duration::seconds(8),
            EventKind::ExecutionSucceeded,
        )],
        Some(ExecutionUpdate {
            status: Some(ExecutionStatus::Succeeded),
            output: Some(Arc::new(json!({"out": [1, 2]}))),
            stopped: Some(base + Duration::seconds(8)),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let r = s.get_execution("e1").await.unwrap().unwrap();
    assert_eq!(r.output.as_deref(), Some(&json!({"out": [1, 2]})));
    assert_eq!(
        s.commit("nope", vec![], None).await.unwrap_err(),
        StoreError::NotFound("nope".into())
    );

    // History pages by event id.
    let p = s.history("e1", 0, 3).await.unwrap();
    assert_eq!(p.items.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(p.items[0], event(1, base, EventKind::ExecutionStarted));
    assert_eq!(p.items[1], evs[0]);
    assert_eq!(p.next.as_deref(), Some("3"));
    let p = s.history("e1", 3, 3).await.unwrap();
    assert_eq!(p.items.iter().map(|e| e.id).collect::<Vec<_>>(), [4, 5, 6]);
    assert_eq!(p.next.as_deref(), Some("6"));
    let p = s.history("e1", 6, 3).await.unwrap();
    assert_eq!(p.items.iter().map(|e| e.id).collect::<Vec<_>>(), [7, 8]);
    assert_eq!(p.next, None);
    let p = s.history("e1", 8, 3).await.unwrap();
    assert!(p.items.is_empty());
    assert_eq!(p.next, None);
    let p = s.history("e1", 0, 8).await.unwrap();
    assert_eq!(p.items.len(), 8);
    assert_eq!(p.next, None);
    assert_eq!(
        s.history("nope", 0, 10).await.unwrap_err(),
        StoreError::NotFound("nope".into())
    );
}

/// Execution listings: start order, cursors, filters.
pub async fn listing_behaves(s: &dyn Store) {
    let base = t0();
    // Inserted out of time order: the listing follows insertion (start) order.
    let names = ["run-a", "run-b", "other-c", "run-d", "run-e"];
    for (i, n) in names.iter().enumerate() {
        let started = base + Duration::seconds(10 - i as i64);
        s.insert_execution(
            exec(&format!("L{i}"), "LF", n, started),
            event(1, started, EventKind::ExecutionStarted),
        )
        .await
        .unwrap();
    }
    s.commit(
        "L1",
        vec![],
        Some(ExecutionUpdate {
            status: Some(ExecutionStatus::Succeeded),
            ..Default::default()
        }),
    )
    .await
    .unwrap();

    let all = ExecutionFilter::default();
    let ids = |p: &flowgate::store::Page<ExecutionRecord>| {
        p.items.iter().map(|r| r.id.to_string()).collect::<Vec<_>>()
    };
    let p = s.list_executions("LF", &all, None, 2).await.unwrap();
    assert_eq!(ids(&p), ["L0", "L1"]);
    let p2 = s
        .list_executions("LF", &all, p.next.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(ids(&p2), ["L2", "L3"]);
    let p3 = s
        .list_executions("LF", &all, p2.next.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(ids(&p3), ["L4"]);
    assert_eq!(p3.next, None);
    let p = s.list_executions("LF", &all, None, 5).await.unwrap();
    assert_eq!(p.items.len(), 5);
    assert_eq!(p.next, None);

    let f = ExecutionFilter {
        status: Some(ExecutionStatus::Running),
        name_prefix: Some("run-".into()),
        ..Default::default()
    };
    let p = s.list_executions("LF", &f, None, 2).await.unwrap();
    assert_eq!(ids(&p), ["L0", "L3"]);
    assert!(p.next.is_some());
    let p = s
        .list_executions("LF", &f, p.next.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(ids(&p), ["L4"]);
    assert_eq!(p.next, None);

    // Time bounds are inclusive, to the nanosecond.
    let f = ExecutionFilter {
        started_after: Some(base + Duration::seconds(7)),
        started_before: Some(base + Duration::seconds(9)),
        ..Default::default()
    };
    let p = s.list_executions("LF", &f, None, 10).await.unwrap();
    assert_eq!(ids(&p), ["L1", "L2", "L3"]);
    let f = ExecutionFilter {
        started_after: Some(base + Duration::seconds(9) + Duration::nanoseconds(1)),
        ..Default::default()
    };
    let p = s.list_executions("LF", &f, None, 10).await.unwrap();
    assert_eq!(ids(&p), ["L0"]);
    let f = ExecutionFilter {
        status: Some(ExecutionStatus::Succeeded),
        ..Default::default()
    };
    assert_eq!(
        ids(&s.list_executions("LF", &f, None, 10).await.unwrap()),
        ["L1"]
    );
    assert!(s
        .list_executions("nope", &all, None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(matches!(
        s.list_executions("LF", &all, Some("junk"), 10).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Timers, and task tokens completed once with their report.
pub async fn timers_and_tokens_behave(s: &dyn Store) {
    let base = t0();
    s.put_timer(timer("t2", base + Duration::seconds(2)))
        .await
        .unwrap();
    s.put_timer(timer("t1", base + Duration::seconds(1)))
        .await
        .unwrap();
    s.put_timer(timer("t2", base + Duration::seconds(3)))
        .await
        .unwrap();
    let mut ts = s.timers().await.unwrap();
    ts.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        ts,
        [
            timer("t1", base + Duration::seconds(1)),
            timer("t2", base + Duration::seconds(3))
        ]
    );
    s.delete_timer("t1").await.unwrap();
    s.delete_timer("t-unknown").await.unwrap();
    assert_eq!(
        s.timers().await.unwrap(),
        [timer("t2", base + Duration::seconds(3))]
    );

    s.put_token(token("tok")).await.unwrap();
    assert_eq!(s.get_token("tok").await.unwrap().unwrap(), token("tok"));
    assert!(s.get_token("nope").await.unwrap().is_none());
    let report = serde_json::json!({"output": {"ok": true}});
    let done = s.complete_token("tok", Some(report.clone())).await.unwrap();
    assert_eq!(done.status, TokenState::Completed);
    let read = s.get_token("tok").await.unwrap().unwrap();
    assert_eq!(read.status, TokenState::Completed);
    assert_eq!(
        read.outcome,
        Some(report),
        "the report is kept with the token"
    );
    assert_eq!(
        s.complete_token("tok", None).await.unwrap_err(),
        StoreError::AlreadyCompleted("tok".into())
    );
    assert_eq!(
        s.complete_token("nope", None).await.unwrap_err(),
        StoreError::NotFound("nope".into())
    );
    s.put_token(token("tok2")).await.unwrap();
}

/// Dialect records: put modes, get, list by prefix with a cursor, delete.
pub async fn records_behave(s: &dyn Store) {
    s.put_record("sched", "a/1", json!(1), PutMode::Create)
        .await
        .unwrap();
    assert_eq!(
        s.put_record("sched", "a/1", json!(2), PutMode::Create)
            .await
            .unwrap_err(),
        StoreError::AlreadyExists("sched/a/1".into())
    );
    assert_eq!(
        s.put_record("sched", "a/9", json!(2), PutMode::Replace)
            .await
            .unwrap_err(),
        StoreError::NotFound("sched/a/9".into())
    );
    s.put_record("sched", "a/1", json!({"v": 1}), PutMode::Replace)
        .await
        .unwrap();
    for k in ["a/2", "a/3", "b/1", "a/0"] {
        s.put_record("sched", k, json!(k), PutMode::Upsert)
            .await
            .unwrap();
    }
    s.put_record("alias", "a/1", json!("other kind"), PutMode::Upsert)
        .await
        .unwrap();
    assert_eq!(
        s.get_record("sched", "a/1").await.unwrap(),
        Some(json!({"v": 1}))
    );
    assert_eq!(s.get_record("sched", "zz").await.unwrap(), None);

    let keys = |p: &flowgate::store::Page<(String, Value)>| {
        p.items.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
    };
    let p = s.list_records("sched", "a/", None, 2).await.unwrap();
    assert_eq!(keys(&p), ["a/0", "a/1"]);
    assert_eq!(p.next.as_deref(), Some("a/1"));
    let p = s
        .list_records("sched", "a/", p.next.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(keys(&p), ["a/2", "a/3"]);
    assert_eq!(p.next, None);
    let p = s.list_records("sched", "", None, 10).await.unwrap();
    assert_eq!(keys(&p), ["a/0", "a/1", "a/2", "a/3", "b/1"]);
    assert_eq!(p.items[1].1, json!({"v": 1}));
    let p = s.list_records("alias", "", None, 10).await.unwrap();
    assert_eq!(keys(&p), ["a/1"]);

    assert!(s.delete_record("sched", "a/0").await.unwrap());
    assert!(!s.delete_record("sched", "a/0").await.unwrap());
    assert_eq!(
        keys(&s.list_records("sched", "a/", None, 10).await.unwrap()),
        ["a/1", "a/2", "a/3"]
    );
}

/// Everything the memory store does, on any store.
pub async fn behaves_like_a_store(s: &dyn Store) {
    flows_behave(s).await;
    executions_behave(s).await;
    listing_behaves(s).await;
    timers_and_tokens_behave(s).await;
    records_behave(s).await;
}

/// After [`behaves_like_a_store`] ran on both `memory` and `s` (`s` possibly reopened since),
/// `s` holds the same flows, executions, history, timers, tokens and records; and the start
/// order carries on: an execution inserted now lists last.
pub async fn keeps_everything(memory: &MemoryStore, s: &dyn Store) {
    // Flows.
    for ns in ["ns", "other"] {
        let a = memory.list_flows(ns, None, 100).await.unwrap().items;
        let b = s.list_flows(ns, None, 100).await.unwrap().items;
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_flow_eq(x, y);
        }
    }
    // Executions and history.
    for flow_id in ["F", "G", "LF"] {
        let all = ExecutionFilter::default();
        let a = memory
            .list_executions(flow_id, &all, None, 100)
            .await
            .unwrap();
        let b = s.list_executions(flow_id, &all, None, 100).await.unwrap();
        assert_eq!(a.items, b.items);
        for r in &b.items {
            let ha = memory.history(&r.id, 0, 1000).await.unwrap().items;
            let hb = s.history(&r.id, 0, 1000).await.unwrap().items;
            assert_eq!(ha, hb);
        }
    }
    assert_eq!(s.history("e1", 0, 100).await.unwrap().items.len(), 8);
    // Timers, tokens, records.
    assert_eq!(memory.timers().await.unwrap(), s.timers().await.unwrap());
    for t in ["tok", "tok2"] {
        assert_eq!(
            memory.get_token(t).await.unwrap(),
            s.get_token(t).await.unwrap()
        );
    }
    assert_eq!(
        s.complete_token("tok", None).await.unwrap_err(),
        StoreError::AlreadyCompleted("tok".into())
    );
    for kind in ["sched", "alias"] {
        let a = memory
            .list_records(kind, "", None, 100)
            .await
            .unwrap()
            .items;
        let b = s.list_records(kind, "", None, 100).await.unwrap().items;
        assert_eq!(a, b);
    }

    // The start order carries on after the reopen: new executions list last.
    s.insert_execution(
        exec("L9", "LF", "after-reopen", t0()),
        event(1, t0(), EventKind::ExecutionStarted),
    )
    .await
    .unwrap();
    let p = s
        .list_executions("LF", &ExecutionFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(&*p.items.last().unwrap().id, "L9");
}

/// Executions per second for `n` inserts plus one commit each, by [`workers`] concurrent
/// tasks (ids `p0..pn` of flow `PF`).
pub async fn insert_and_commit_rate(s: Arc<dyn Store>, n: usize) -> f64 {
    let base = t0();
    let start = std::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers() {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(workers()) {
                let id = format!("p{i}");
                s.insert_execution(
                    exec(&id, "PF", &id, base),
                    event(1, base, EventKind::ExecutionStarted),
                )
                .await
                .unwrap();
                s.commit(&id, vec![event(2, base, EventKind::StateEntered)], None)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Concurrent tasks of the throughput figures: `$WORKERS`, 16 by default.
pub fn workers() -> usize {
    std::env::var("WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

/// Eight tasks insert an execution each and commit 19 events to it one by one: every event
/// is kept, in order.
pub async fn concurrent_writers_keep_every_event(s: Arc<dyn Store>) {
    let base = t0();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let id = format!("c{i}");
            s.insert_execution(
                exec(&id, "CF", &id, base),
                event(1, base, EventKind::ExecutionStarted),
            )
            .await
            .unwrap();
            for n in 2..=20 {
                s.commit(&id, vec![event(n, base, EventKind::StateEntered)], None)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for i in 0..8 {
        let id = format!("c{i}");
        assert_eq!(s.get_execution(&id).await.unwrap().unwrap().event_count, 20);
        let h = s.history(&id, 0, 100).await.unwrap().items;
        assert_eq!(
            h.iter().map(|e| e.id).collect::<Vec<_>>(),
            (1..=20).collect::<Vec<_>>()
        );
    }
}
