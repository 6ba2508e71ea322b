//! Several nodes on one PostgreSQL database, with the real binary: two `flowgate serve`
//! processes ("node-a", "node-b"), each on its own port with its own node id and a short
//! lease, share a fresh database. Executions of a node killed with `kill -9` finish on the
//! other one; long polls, stops and callback reports reach executions held by the other node;
//! and no transition runs twice while both nodes run.
//!
//! Needs a server: see tests/support/postgres.rs (`TEST_PG_URL`, set by
//! `eval "$(scripts/test-postgres.sh start)"`; skipped without it, except on CI).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use flowgate::model::{Event, EventKind};
use serde_json::{json, Value};
use support::gateway::{
    calls_of, create_flow, deploy, head, output, scaffold, start, task, time_of, until_crash_ready,
    wait_for_file, write_config, Gateway, DONE,
};
use support::postgres::TestDb;
use tokio_postgres::Client;

/// Two nodes on a fresh database, with the command function of tests/support/gateway.rs.
struct Cluster {
    /// `None` once killed.
    a: Option<Gateway>,
    b: Gateway,
    /// A connection to the database, to look at the rows.
    sql: Client,
    calls: PathBuf,
    tokens: PathBuf,
    _dir: tempfile::TempDir,
    /// Dropped last, after the nodes.
    _db: TestDb,
}

impl Cluster {
    /// Starts both nodes with a lease of `lease` seconds; `None` when the PostgreSQL tests
    /// are skipped.
    async fn start(lease: f64) -> Option<Cluster> {
        let db = TestDb::create().await?;
        let (dir, calls, tokens) = scaffold();
        let store = |node: &str| {
            format!(
                "kind = \"postgres\"\nurl = {url:?}\nnode_id = \"{node}\"\nlease_seconds = {lease:?}\n",
                url = db.url
            )
        };
        let config_a = write_config(dir.path(), "node-a.toml", &store("node-a"));
        let config_b = write_config(dir.path(), "node-b.toml", &store("node-b"));
        let (a, b) = tokio::join!(
            Gateway::start_with(dir.path(), &config_a),
            Gateway::start_with(dir.path(), &config_b)
        );
        Some(Cluster {
            a: Some(a),
            b,
            sql: db.client().await,
            calls,
            tokens,
            _dir: dir,
            _db: db,
        })
    }

    fn a(&self) -> &Gateway {
        self.a.as_ref().expect("node-a runs")
    }

    /// `kill -9` of node-a; returns when it is dead.
    fn kill_a(&mut self) -> chrono::DateTime<chrono::Utc> {
        self.a.take().expect("node-a runs").kill9();
        chrono::Utc::now()
    }

    /// The full stored history of an execution (by name), with the events the Alibaba API
    /// leaves out (`ExecutionResumed`, `WaitStarted`, `RetryScheduled`...).
    async fn events(&self, name: &str) -> Vec<Event> {
        self.sql
            .query(
                "SELECT e.body FROM events e JOIN executions x ON x.id = e.execution_id \
                 WHERE x.name = $1 ORDER BY e.pos",
                &[&name],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap())
            .collect()
    }

    /// The owner of an execution (by name) now.
    async fn owner(&self, name: &str) -> Option<String> {
        self.sql
            .query_one("SELECT owner FROM executions WHERE name = $1", &[&name])
            .await
            .unwrap()
            .get(0)
    }

    /// The names of the unfinished executions `node` holds now.
    async fn held_by(&self, node: &str) -> BTreeSet<String> {
        self.sql
            .query(
                "SELECT name FROM executions \
                 WHERE owner = $1 AND status IN ('Starting', 'Running')",
                &[&node],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

impl Cluster {
    /// Stop requests kept in the database (spent ones are deleted).
    async fn stop_requests(&self) -> i64 {
        self.sql
            .query_one(
                "SELECT count(*) FROM records WHERE kind = $1",
                &[&flowgate::store::STOP_REQUEST],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    }

    /// Asserts nothing is left behind once every execution has ended: no timer, no task
    /// token still waiting, no stop request, no lease.
    async fn assert_clean(&self) {
        let count = |sql: &'static str| async move {
            let row = self.sql.query_one(sql, &[]).await.unwrap();
            row.get::<_, i64>(0)
        };
        assert_eq!(count("SELECT count(*) FROM timers").await, 0, "timers left");
        assert_eq!(
            count("SELECT count(*) FROM tokens WHERE status <> 'Completed'").await,
            0,
            "tokens still waiting"
        );
        assert_eq!(self.stop_requests().await, 0, "stop requests left");
        assert_eq!(
            count(
                "SELECT count(*) FROM executions \
                 WHERE owner IS NOT NULL OR status IN ('Starting', 'Running')"
            )
            .await,
            0,
            "executions still held or running"
        );
    }
}

/// A long poll (DescribeExecution with `WaitTimeSeconds`) on the node at `base`, made from a
/// task of its own: the answer and how long it took.
async fn long_poll(base: String, flow: &'static str, name: &'static str) -> (Value, Duration) {
    let asked = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!(
            "{base}/?Action=DescribeExecution&Version=2019-03-15"
        ))
        .form(&[
            ("FlowName", flow),
            ("ExecutionName", name),
            ("WaitTimeSeconds", "60"),
        ])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{resp:?}");
    (resp.json().await.unwrap(), asked.elapsed())
}

/// Asserts a stored history is one unbroken run: ids 1, 2, 3... with no gap or repeat, each
/// event caused by an earlier one, started once and ended once, by its last event.
fn assert_continuous(name: &str, events: &[Event]) {
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(ids, expected, "{name}: event ids");
    for e in events {
        assert!(
            e.cause_id < e.id,
            "{name}: event {} caused later: {e:?}",
            e.id
        );
    }
    for w in events.windows(2) {
        assert!(
            w[0].time <= w[1].time,
            "{name}: time goes back at {}",
            w[1].id
        );
    }
    let ends = [
        EventKind::ExecutionSucceeded,
        EventKind::ExecutionFailed,
        EventKind::ExecutionStopped,
        EventKind::ExecutionTimedOut,
    ];
    assert_eq!(
        events.first().map(|e| e.kind),
        Some(EventKind::ExecutionStarted)
    );
    assert_eq!(
        count(events, |e| e.kind == EventKind::ExecutionStarted),
        1,
        "{name}"
    );
    assert_eq!(count(events, |e| ends.contains(&e.kind)), 1, "{name}: ends");
    assert!(
        events.last().is_some_and(|e| ends.contains(&e.kind)),
        "{name}: the last event ends it"
    );
}

fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

fn entered(events: &[Event], state: &str) -> usize {
    count(events, |e| {
        e.kind == EventKind::StateEntered && &*e.state == state
    })
}

fn resumed(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::ExecutionResumed)
        .collect()
}

/// Waits (at most `max`) until `f` holds.
async fn until(what: &str, max: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + max;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A flow of two sequential command-function tasks.
fn steps_flow() -> String {
    format!(
        "{}{}    Next: StepTwo\n{}    Next: Done\n{DONE}",
        head("steps", "StepOne"),
        task("StepOne", "RequestComplete", ""),
        task("StepTwo", "RequestComplete", ""),
    )
}

/// The states of the steps flow, in order.
const STEPS: [&str; 3] = ["StepOne", "StepTwo", "Done"];

/// Executions waiting, waiting for a callback, backing off and in the middle of a call on
/// node-a finish on node-b after node-a is killed: right statuses and outputs, unbroken
/// histories, the Wait and the back-off keep their deadlines, `$global` carries over, a
/// report made to node-b with the token node-a handed out lands, a stop sent to node-b
/// holds, and a long poll on node-b wakes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_of_a_killed_node_finish_on_another() {
    let Some(mut c) = Cluster::start(1.0).await else {
        return;
    };
    deploy(c.a()).await;
    let w_started = start(c.a(), "waits", "w1").await;
    start(c.a(), "globals", "g1").await;
    start(c.a(), "callback", "c1").await;
    start(c.a(), "retries", "r1").await;
    start(c.a(), "slow", "s1").await;
    start(c.a(), "long", "l1").await;
    let token = wait_for_file(&c.tokens.join("c1"), Duration::from_secs(10)).await;
    // The retry's first call failed and its 3 s back-off began; the slow call is running.
    let calls = c.calls.clone();
    until("the calls start", Duration::from_secs(10), || {
        !calls_of(&calls, "r1").is_empty() && !calls_of(&calls, "s1").is_empty()
    })
    .await;
    // A crash before the retry's failure and the Waits are stored would (rightly) run them
    // again: wait for the store.
    until_crash_ready(c.a()).await;
    // The other node sees them (the store is shared), running and held by node-a.
    let w1 = c.b.describe("waits", "w1").await;
    assert_eq!(w1["Status"], "Running", "{w1}");
    assert_eq!(w_started["Status"], "Running", "{w_started}");
    for name in ["w1", "g1", "c1", "r1", "s1", "l1"] {
        assert_eq!(c.owner(name).await.as_deref(), Some("node-a"), "{name}");
    }
    // A long poll on node-b, made before the crash, is woken by the end on node-b.
    let poll = tokio::spawn(long_poll(c.b.base.clone(), "waits", "w1"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let killed = c.kill_a();

    // At once, most likely before node-b takes c1 over (node-a's lease has not run out): the
    // report is kept with the token and lands when c1 resumes on node-b.
    let report =
        c.b.rpc(
            "ReportTaskSucceeded",
            &[("TaskToken", &token), ("Output", r#"{"approved":true}"#)],
        )
        .await;
    let report_id = report["EventId"].as_i64().unwrap_or(0);
    assert!(report_id > 0, "{report}");

    // A stop sent to node-b while nobody runs l1 is kept until node-b takes l1 over.
    let asked = Instant::now();
    c.b.rpc(
        "StopExecution",
        &[
            ("FlowName", "long"),
            ("ExecutionName", "l1"),
            ("Error", "Halt"),
            ("Cause", "stopped after node-a died"),
        ],
    )
    .await;
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "{:?}",
        asked.elapsed()
    );
    let l = c.b.describe("long", "l1").await;
    assert_eq!(l["Status"], "Stopped", "{l}");
    let end = c.events("l1").await.pop().unwrap();
    assert_eq!(end.kind, EventKind::ExecutionStopped, "{end:?}");
    assert_eq!(end.detail.extra().error.as_deref(), Some("Halt"));
    assert_eq!(
        end.detail.extra().cause.as_deref(),
        Some("stopped after node-a died")
    );

    // The Wait keeps its original deadline: 3 s after it started on node-a; the long poll
    // made on node-b before the crash was woken by its end there.
    let (w, took) = poll.await.unwrap();
    assert_eq!(w["Status"], "Succeeded", "{w}");
    assert!(took < Duration::from_secs(20), "the poll took {took:?}");
    let w = c.b.finish("waits", "w1", Duration::from_secs(30)).await;
    assert_eq!(w["Status"], "Succeeded", "{w}");
    assert_eq!(output(&w), json!({"done": true, "seen": {"order": 7}}));
    let waited = time_of(&w, "StoppedTime") - time_of(&w1, "StartedTime");
    assert!(
        waited >= chrono::Duration::milliseconds(2900),
        "the wait ended early: {waited}"
    );
    let events = c.events("w1").await;
    let deadlines: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::WaitStarted)
        .map(|e| e.detail.extra().until.unwrap())
        .collect();
    assert_eq!(deadlines.len(), 2, "started on node-a, again on node-b");
    assert_eq!(deadlines[0], deadlines[1], "the deadline carried over");
    let ended = events
        .iter()
        .find(|e| e.kind == EventKind::WaitEnded)
        .expect("the wait ended");
    assert!(
        ended.time >= deadlines[0],
        "the wait ended before its deadline"
    );

    // `$global`, set on node-a before the crash, is still there on node-b.
    let g = c.b.finish("globals", "g1", Duration::from_secs(30)).await;
    assert_eq!(g["Status"], "Succeeded", "{g}");
    assert_eq!(output(&g), json!({"remembered": 7}), "{g}");

    // The callback task kept its token; the report made to node-b landed as the event it
    // answered with, and the callee was not called again.
    let cb = c.b.finish("callback", "c1", Duration::from_secs(30)).await;
    assert_eq!(cb["Status"], "Succeeded", "{cb}");
    assert_eq!(output(&cb)["seen"]["approved"], json!(true), "{cb}");
    assert_eq!(
        calls_of(&c.calls, "c1").len(),
        1,
        "the callee has its token"
    );
    let events = c.events("c1").await;
    let landed = events
        .iter()
        .find(|e| e.id == report_id as u64)
        .expect("the reported event id is in the history");
    assert_eq!(landed.kind, EventKind::TaskSucceeded, "{landed:?}");
    let tokens: BTreeSet<_> = events
        .iter()
        .filter_map(|e| e.detail.extra().task_token.clone())
        .collect();
    assert_eq!(
        tokens,
        BTreeSet::from([token.clone()]),
        "one token throughout"
    );

    // The retry carried on after its back-off: attempt 1, counted as the first retry.
    let r = c.b.finish("retries", "r1", Duration::from_secs(30)).await;
    assert_eq!(r["Status"], "Succeeded", "{r}");
    assert_eq!(output(&r)["seen"]["attempts"], json!(1), "{r}");
    assert_eq!(calls_of(&c.calls, "r1"), ["r1 Flaky 0", "r1 Flaky 1"]);
    let events = c.events("r1").await;
    let backoff = events
        .iter()
        .find(|e| e.kind == EventKind::RetryScheduled)
        .expect("a back-off");
    let retried = events
        .iter()
        .rfind(|e| e.kind == EventKind::TaskScheduled)
        .unwrap();
    assert_eq!(retried.detail.extra().attempt, Some(1), "{retried:?}");
    assert!(
        retried.time - backoff.time >= chrono::Duration::milliseconds(2900),
        "the back-off was cut short: {backoff:?} then {retried:?}"
    );

    // The call in flight at the crash ran again on node-b, and the history shows both.
    let s = c.b.finish("slow", "s1", Duration::from_secs(30)).await;
    assert_eq!(s["Status"], "Succeeded", "{s}");
    assert_eq!(output(&s)["seen"]["Body"]["slow"], json!(true), "{s}");
    assert_eq!(
        calls_of(&c.calls, "s1").len(),
        2,
        "the interrupted call ran again"
    );
    let events = c.events("s1").await;
    assert_eq!(count(&events, |e| e.kind == EventKind::TaskScheduled), 2);

    // Each was taken over once, after node-a died, and its history runs on unbroken.
    for name in ["w1", "g1", "c1", "r1", "s1", "l1"] {
        let events = c.events(name).await;
        assert_continuous(name, &events);
        let r = resumed(&events);
        assert_eq!(r.len(), 1, "{name}: resumed once");
        assert!(r[0].time > killed, "{name}: taken over before node-a died");
        assert_eq!(
            c.owner(name).await,
            None,
            "{name}: finished, nobody holds it"
        );
    }
    c.assert_clean().await;
}

/// A long poll on node-b for an execution running on node-a returns as soon as it ends
/// there; a stop sent to node-b stops an execution running on node-a.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_and_stops_reach_the_other_node() {
    let Some(c) = Cluster::start(1.0).await else {
        return;
    };
    deploy(c.a()).await;
    start(c.a(), "waits", "w2").await;
    start(c.a(), "long", "l2").await;
    assert_eq!(c.owner("w2").await.as_deref(), Some("node-a"));

    // The Wait ends on node-a about 3 s after it started; node-b's poll may last 60 s.
    let polled = Instant::now();
    let d =
        c.b.rpc(
            "DescribeExecution",
            &[
                ("FlowName", "waits"),
                ("ExecutionName", "w2"),
                ("WaitTimeSeconds", "60"),
            ],
        )
        .await;
    let took = polled.elapsed();
    assert_eq!(d["Status"], "Succeeded", "{d}");
    assert_eq!(output(&d), json!({"done": true, "seen": {"order": 7}}));
    assert!(
        took < Duration::from_secs(20),
        "the poll on node-b was not woken by the end on node-a: {took:?}"
    );
    let events = c.events("w2").await;
    assert_continuous("w2", &events);
    assert!(resumed(&events).is_empty(), "w2 ran on node-a throughout");

    // The stop is answered by node-b once node-a has ended the execution.
    assert_eq!(c.owner("l2").await.as_deref(), Some("node-a"));
    let asked = Instant::now();
    c.b.rpc(
        "StopExecution",
        &[
            ("FlowName", "long"),
            ("ExecutionName", "l2"),
            ("Error", "Halt"),
            ("Cause", "stopped from node-b"),
        ],
    )
    .await;
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "the stop took {:?}",
        asked.elapsed()
    );
    for node in [c.a(), &c.b] {
        let l = node.describe("long", "l2").await;
        assert_eq!(l["Status"], "Stopped", "{l}");
    }
    let events = c.events("l2").await;
    assert_continuous("l2", &events);
    assert!(resumed(&events).is_empty(), "l2 was stopped where it ran");
    let stopped = events.last().unwrap();
    assert_eq!(stopped.kind, EventKind::ExecutionStopped);
    assert_eq!(stopped.detail.extra().error.as_deref(), Some("Halt"));
    assert_eq!(
        stopped.detail.extra().cause.as_deref(),
        Some("stopped from node-b")
    );
    let history = c.b.history("long", "l2").await;
    let last = history.last().unwrap();
    assert_eq!(last["Type"], "ExecutionStopped", "{last}");
    let detail: Value = serde_json::from_str(last["EventDetail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["error"], "Halt", "{detail}");
    assert_eq!(detail["cause"], "stopped from node-b", "{detail}");
    // Node-a let go of it, and the stop request is spent (node-a deletes it once the stop
    // is committed, just after the answer above).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let health = c.a().health().await;
        let stops = c.stop_requests().await;
        if health["running_executions"] == 0 && stops == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node-a still runs it ({health}) or keeps its stop request ({stops})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) =
        c.b.try_rpc(
            "StopExecution",
            &[("FlowName", "long"), ("ExecutionName", "l2")],
        )
        .await;
    assert_eq!(status, 400, "stopping it again: {body}");
    c.assert_clean().await;
}

/// With both nodes running, every transition runs once; after one node is killed in the
/// middle, the executions it held finish on the other with at most the state in flight run
/// again, and the history shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_transition_runs_twice() {
    let Some(mut c) = Cluster::start(2.0).await else {
        return;
    };
    create_flow(c.a(), "steps", &steps_flow()).await;

    // Both nodes run executions side by side.
    let n = 30;
    let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let node = if i % 2 == 0 { c.a() } else { &c.b };
        start(node, "steps", name).await;
    }
    for (i, name) in names.iter().enumerate() {
        let node = if i % 2 == 0 { &c.b } else { c.a() };
        let d = node.finish("steps", name, Duration::from_secs(30)).await;
        assert_eq!(d["Status"], "Succeeded", "{name}: {d}");
        assert_eq!(output(&d)["seen"]["Body"]["step"], "StepTwo", "{name}: {d}");
    }
    for name in &names {
        assert_eq!(
            calls_of(&c.calls, name),
            [format!("{name} StepOne 0"), format!("{name} StepTwo 0")],
            "{name}: each state called once"
        );
        let events = c.events(name).await;
        assert_continuous(name, &events);
        for state in STEPS {
            assert_eq!(entered(&events, state), 1, "{name}: {state} entered once");
        }
        assert!(resumed(&events).is_empty(), "{name}: nobody took it over");
    }

    // Slow steps (1 s each); node-a is killed once the executions are well under way.
    let names: Vec<String> = (0..16).map(|i| format!("k{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let node = if i % 2 == 0 { c.a() } else { &c.b };
        start(node, "steps", name).await;
    }
    let calls = c.calls.clone();
    until(
        "every execution calls StepOne",
        Duration::from_secs(20),
        || names.iter().all(|n| !calls_of(&calls, n).is_empty()),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.kill_a();
    // Nobody can have claimed them yet: node-a renewed its 2 s lease moments ago.
    let orphaned = c.held_by("node-a").await;
    assert!(
        !orphaned.is_empty(),
        "node-a held nothing when it was killed"
    );
    for name in &orphaned {
        assert!(
            names.iter().step_by(2).any(|n| n == name),
            "{name} ran on node-a, not started there"
        );
    }
    for name in &names {
        let d = c.b.finish("steps", name, Duration::from_secs(30)).await;
        assert_eq!(d["Status"], "Succeeded", "{name}: {d}");
        assert_eq!(output(&d)["seen"]["Body"]["step"], "StepTwo", "{name}: {d}");
    }
    let mut rerun = 0;
    for name in &names {
        let events = c.events(name).await;
        assert_continuous(name, &events);
        let mut called: BTreeMap<String, usize> = BTreeMap::new();
        for line in calls_of(&c.calls, name) {
            let state = line.split(' ').nth(1).unwrap().to_string();
            *called.entry(state).or_default() += 1;
        }
        let r = resumed(&events);
        if !orphaned.contains(name) {
            assert!(
                r.is_empty(),
                "{name}: taken over though node-a did not hold it"
            );
            for state in ["StepOne", "StepTwo"] {
                assert_eq!(called.get(state), Some(&1), "{name}: {state} ran once");
            }
            for state in STEPS {
                assert_eq!(entered(&events, state), 1, "{name}: {state} entered once");
            }
            continue;
        }
        assert_eq!(r.len(), 1, "{name}: taken over once");
        // The state in flight when node-a died runs again; everything else ran once.
        let again = r[0]
            .detail
            .extra()
            .next
            .clone()
            .expect("a state to carry on at");
        for state in STEPS {
            let (calls, times_entered) = (
                called.get(state).copied().unwrap_or(0),
                entered(&events, state),
            );
            if state != "Done" {
                assert!(
                    (1..=2).contains(&calls),
                    "{name}: {state} called {calls} times"
                );
            }
            if state == again {
                assert!(
                    (1..=2).contains(&times_entered) && times_entered >= calls,
                    "{name}: {state} in flight, called {calls}, entered {times_entered} times"
                );
                if times_entered == 2 {
                    rerun += 1;
                    // Entered on node-a before the takeover, and again after it.
                    let positions: Vec<u64> = events
                        .iter()
                        .filter(|e| e.kind == EventKind::StateEntered && &*e.state == state)
                        .map(|e| e.id)
                        .collect();
                    assert!(
                        positions[0] < r[0].id && r[0].id < positions[1],
                        "{name}: {positions:?} around {}",
                        r[0].id
                    );
                }
            } else {
                assert!(
                    calls <= 1,
                    "{name}: {state} ran {calls} times, not in flight"
                );
                assert_eq!(times_entered, 1, "{name}: {state} entered once");
            }
        }
    }
    assert!(rerun > 0, "no state was in flight when node-a died");
    c.assert_clean().await;
}

/// A report sent to node-b for a task waiting on node-a reaches the task: the execution ends
/// with what was reported, and node-b answers with the id of the event it became.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_reach_tasks_waiting_on_the_other_node() {
    let Some(c) = Cluster::start(1.0).await else {
        return;
    };
    deploy(c.a()).await;
    start(c.a(), "callback", "c4").await;
    start(c.a(), "callback", "c5").await;
    let ok = wait_for_file(&c.tokens.join("c4"), Duration::from_secs(10)).await;
    let bad = wait_for_file(&c.tokens.join("c5"), Duration::from_secs(10)).await;
    assert_eq!(c.owner("c4").await.as_deref(), Some("node-a"));

    let asked = Instant::now();
    let report =
        c.b.rpc(
            "ReportTaskSucceeded",
            &[("TaskToken", &ok), ("Output", r#"{"approved":"via-b"}"#)],
        )
        .await;
    // A report nobody answers for is answered with 0 after 10 s.
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );
    let id = report["EventId"].as_u64().unwrap_or(0);
    assert!(id > 0, "{report}");
    let d = c.b.finish("callback", "c4", Duration::from_secs(30)).await;
    assert_eq!(d["Status"], "Succeeded", "{d}");
    assert_eq!(output(&d)["seen"]["approved"], "via-b", "{d}");
    let history = c.b.history("callback", "c4").await;
    let event = history
        .iter()
        .find(|e| e["EventId"] == id)
        .unwrap_or_else(|| panic!("no event {id} in {history:?}"));
    assert_eq!(event["Type"], "TaskSucceeded", "{event}");
    let events = c.events("c4").await;
    assert_continuous("c4", &events);
    assert!(resumed(&events).is_empty(), "c4 ran on node-a throughout");
    // The token is spent, on either node.
    for node in [c.a(), &c.b] {
        let (status, body) = node
            .try_rpc(
                "ReportTaskSucceeded",
                &[("TaskToken", &ok), ("Output", "{}")],
            )
            .await;
        assert_eq!(status, 400, "{body}");
    }

    // A failure reported to node-b fails the task on node-a.
    let report =
        c.b.rpc(
            "ReportTaskFailed",
            &[
                ("TaskToken", &bad),
                ("Error", "Rejected"),
                ("Cause", "reported to node-b"),
            ],
        )
        .await;
    let id = report["EventId"].as_u64().unwrap_or(0);
    assert!(id > 0, "{report}");
    let d = c.b.finish("callback", "c5", Duration::from_secs(30)).await;
    assert_eq!(d["Status"], "Failed", "{d}");
    let events = c.events("c5").await;
    assert_continuous("c5", &events);
    let failed = events
        .iter()
        .find(|e| e.id == id)
        .expect("the reported event");
    assert_eq!(failed.kind, EventKind::TaskFailed, "{failed:?}");
    assert_eq!(failed.detail.extra().error.as_deref(), Some("Rejected"));
    let end = events.last().unwrap();
    assert_eq!(
        end.detail.extra().error.as_deref(),
        Some("Rejected"),
        "{end:?}"
    );
    c.assert_clean().await;
}

/// A node shut down gracefully (SIGTERM) lets go of its executions at once: the other node
/// takes them over well before the lease would have run out, a callback task keeps its
/// token (a report made to the other node lands), and a Wait keeps its deadline. The callee
/// of the callback task is still answering when the node is stopped: its call finishes and
/// is recorded first, so the other node does not call it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_shut_down_hands_its_executions_over() {
    // A long lease: a takeover before it runs out comes from the release.
    let Some(mut c) = Cluster::start(9.0).await else {
        return;
    };
    deploy(c.a()).await;
    start(c.a(), "callback", "h6").await;
    start(c.a(), "waits", "w6").await;
    let token = wait_for_file(&c.tokens.join("h6"), Duration::from_secs(10)).await;
    let w6 = c.b.describe("waits", "w6").await;
    assert_eq!(w6["Status"], "Running", "{w6}");
    let stopping = chrono::Utc::now();
    let a = c.a.take().unwrap();
    assert!(
        a.terminate(Duration::from_secs(20)).await,
        "node-a exits cleanly"
    );

    let w = c.b.finish("waits", "w6", Duration::from_secs(30)).await;
    assert_eq!(w["Status"], "Succeeded", "{w}");
    let waited = time_of(&w, "StoppedTime") - time_of(&w6, "StartedTime");
    assert!(
        waited >= chrono::Duration::milliseconds(2900),
        "the wait ended early: {waited}"
    );
    // Node-b takes h6 over (within its 3 s claim period, not the 9 s lease) and waits for the
    // report with the same token.
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.owner("h6").await.as_deref() != Some("node-b") {
        assert!(
            Instant::now() < deadline,
            "node-b never took h6 over: {:?}",
            c.events("h6").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report =
        c.b.rpc(
            "ReportTaskSucceeded",
            &[
                ("TaskToken", &token),
                ("Output", r#"{"approved":"after-a"}"#),
            ],
        )
        .await;
    let id = report["EventId"].as_u64().unwrap_or(0);
    assert!(id > 0, "{report}");
    let d = c.b.finish("callback", "h6", Duration::from_secs(30)).await;
    assert_eq!(d["Status"], "Succeeded", "{d}");
    assert_eq!(output(&d)["seen"]["approved"], "after-a", "{d}");
    assert_eq!(
        calls_of(&c.calls, "h6").len(),
        1,
        "the callee has its token"
    );
    for name in ["w6", "h6"] {
        let events = c.events(name).await;
        assert_continuous(name, &events);
        let r = resumed(&events);
        assert_eq!(r.len(), 1, "{name}: taken over once");
        let after = r[0].time - stopping;
        assert!(
            after < chrono::Duration::milliseconds(5500),
            "{name}: taken over {after} after node-a was asked to stop"
        );
    }
    c.assert_clean().await;
}
