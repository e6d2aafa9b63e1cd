//! The embedded queue: one redb file in `data_dir`, written by one thread. Every operation
//! is a message to that thread; it takes all messages waiting, applies them in ONE write
//! transaction, commits it (durably, with an fsync, when it holds an enqueue), and only
//! then answers each one. Enqueues that
//! arrive together therefore share one fsync (group commit), and a 202 is sent only once
//! its call is on disk.
//!
//! Tables: `calls` (id → [`Record`]) and `ready` ((due ms, seq) → id), the queue order.
//! Calls found `running` at open were cut short by a crash and go back to `ready`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::sync::oneshot;

use super::{now_ms, Claimed, Settle, StoreError};
use crate::async_queue::call::{Call, Record};
use crate::async_queue::machine::{CallState, Progress};

const CALLS: TableDefinition<&str, &[u8]> = TableDefinition::new("calls");
const READY: TableDefinition<(u64, u64), &str> = TableDefinition::new("ready");
/// Finished calls in finishing order, so the oldest are forgotten past `KEEP_DONE`.
const DONE: TableDefinition<(u64, u64), &str> = TableDefinition::new("done");
/// Finished calls whose status stays visible.
const KEEP_DONE: u64 = 100_000;
/// Most messages applied in one transaction.
const MAX_BATCH: usize = 8192;

type Tx<T> = oneshot::Sender<Result<T, StoreError>>;

enum Op {
    Enqueue(Box<Call>, Tx<()>),
    Claim(usize, Tx<Vec<Claimed>>),
    Settle(String, Progress, Settle, Tx<()>),
    Get(String, Tx<Option<Progress>>),
    List(CallState, usize, Tx<Vec<(String, Progress)>>),
}

/// An answer computed inside the transaction, sent after its commit.
enum Answer {
    Unit(Tx<()>, Result<(), StoreError>),
    Claimed(Tx<Vec<Claimed>>, Vec<Claimed>),
    Got(Tx<Option<Progress>>, Option<Progress>),
    Listed(Tx<Vec<(String, Progress)>>, Vec<(String, Progress)>),
}

pub struct Embedded {
    tx: mpsc::Sender<Op>,
    pending: Arc<AtomicU64>,
    /// When the first call in `ready` comes due (Unix ms, `u64::MAX`: none), as of the
    /// writer's last batch: an idle dispatcher sleeps until then instead of polling.
    next_due: Arc<AtomicU64>,
}

impl Embedded {
    /// Opens (or creates) `data_dir/queue.redb` and requeues calls a crash left running.
    pub fn open(data_dir: &Path) -> Result<Embedded, StoreError> {
        create_private_dir(data_dir).map_err(|source| StoreError::Open {
            path: data_dir.to_path_buf(),
            source: Arc::new(source),
        })?;
        let db = Database::create(data_dir.join("queue.redb"))?;
        let mut seq = now_ms() << 20;
        let pending = recover(&db, &mut seq)?;
        let pending = Arc::new(AtomicU64::new(pending));
        let (tx, rx) = mpsc::channel();
        let p = pending.clone();
        // Due now: the dispatcher's first claim looks, and its batch sets the real value.
        let next_due = Arc::new(AtomicU64::new(0));
        let due = next_due.clone();
        std::thread::Builder::new()
            .name("edgefn-queue".into())
            .spawn(move || writer(db, rx, p, due, seq))
            .map_err(|source| StoreError::Open {
                path: data_dir.to_path_buf(),
                source: Arc::new(source),
            })?;
        Ok(Embedded {
            tx,
            pending,
            next_due,
        })
    }

    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Acquire)
    }

    /// When the earliest queued call comes due (Unix ms); `None` when nothing is queued.
    /// Fresh as of the last answered operation: the writer sets it before it answers.
    pub fn next_due(&self) -> Option<u64> {
        Some(self.next_due.load(Ordering::Acquire)).filter(|&d| d != u64::MAX)
    }

    async fn ask<T>(&self, op: impl FnOnce(Tx<T>) -> Op) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(op(tx)).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn enqueue(&self, call: Call) -> Result<(), StoreError> {
        self.ask(|tx| Op::Enqueue(Box::new(call), tx)).await
    }

    pub async fn claim(&self, max: usize) -> Result<Vec<Claimed>, StoreError> {
        self.ask(|tx| Op::Claim(max, tx)).await
    }

    pub async fn settle(&self, c: &Claimed, p: Progress, how: Settle) -> Result<(), StoreError> {
        let id = c.call.id.clone();
        self.ask(|tx| Op::Settle(id, p, how, tx)).await
    }

    pub async fn get(&self, id: &str) -> Result<Option<Progress>, StoreError> {
        let id = id.to_owned();
        self.ask(|tx| Op::Get(id, tx)).await
    }

    pub async fn list(
        &self,
        state: CallState,
        limit: usize,
    ) -> Result<Vec<(String, Progress)>, StoreError> {
        self.ask(|tx| Op::List(state, limit, tx)).await
    }
}

/// Removes the default queue folders of gateways on port 0 that are gone (their pid no
/// longer runs): no process can ever reopen them. Only siblings of an ephemeral
/// `data_dir` are looked at.
pub fn sweep_ephemeral(data_dir: &Path) {
    use crate::config::openfaas::EPHEMERAL_MARK;
    let Some(name) = data_dir.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    if !name.starts_with("edgefn-async-") || !name.contains(EPHEMERAL_MARK) {
        return;
    }
    let Some(parent) = data_dir.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name();
        let Some(n) = n.to_str() else { continue };
        let pid = n
            .strip_prefix("edgefn-async-")
            .and_then(|rest| rest.rsplit_once(EPHEMERAL_MARK))
            .and_then(|(_, pid)| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn recover(db: &Database, seq: &mut u64) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    {
        let mut calls = txn.open_table(CALLS)?;
        let mut ready = txn.open_table(READY)?;
        txn.open_table(DONE)?;
        let mut cut_short = Vec::new();
        for entry in calls.iter()? {
            let (k, v) = entry?;
            if let Some(mut p) = Record::progress_of(v.value()) {
                if p.state == CallState::Running {
                    p.state = CallState::Queued;
                    if let Some(rec) = Record::with_progress(v.value(), p) {
                        cut_short.push((k.value().to_owned(), rec));
                    }
                }
            }
        }
        let now = now_ms();
        for (id, rec) in cut_short {
            calls.insert(id.as_str(), rec.as_slice())?;
            *seq += 1;
            ready.insert((now, *seq), id.as_str())?;
        }
    }
    txn.commit()?;
    let read = db.begin_read()?;
    let n = read.open_table(READY)?.len()?;
    Ok(n)
}

fn writer(
    db: Database,
    rx: mpsc::Receiver<Op>,
    pending: Arc<AtomicU64>,
    next_due: Arc<AtomicU64>,
    mut seq: u64,
) {
    while let Ok(first) = rx.recv() {
        let mut ops = vec![first];
        while ops.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let mut delta: i64 = 0;
        let (answers, outcome) = apply(&db, ops, &mut seq, &mut delta);
        match outcome {
            Ok(due) => {
                next_due.store(due.unwrap_or(u64::MAX), Ordering::Release);
                if delta >= 0 {
                    pending.fetch_add(delta as u64, Ordering::AcqRel);
                } else {
                    pending.fetch_sub(delta.unsigned_abs(), Ordering::AcqRel);
                }
                for a in answers {
                    a.send();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "async queue: a write transaction failed");
                for a in answers {
                    a.fail(e.clone());
                }
            }
        }
    }
}

impl Answer {
    fn send(self) {
        match self {
            Answer::Unit(tx, r) => drop(tx.send(r)),
            Answer::Claimed(tx, v) => drop(tx.send(Ok(v))),
            Answer::Got(tx, v) => drop(tx.send(Ok(v))),
            Answer::Listed(tx, v) => drop(tx.send(Ok(v))),
        }
    }

    fn fail(self, e: StoreError) {
        match self {
            Answer::Unit(tx, _) => drop(tx.send(Err(e))),
            Answer::Claimed(tx, _) => drop(tx.send(Err(e))),
            Answer::Got(tx, _) => drop(tx.send(Err(e))),
            Answer::Listed(tx, _) => drop(tx.send(Err(e))),
        }
    }
}

/// Applies a batch in one transaction; the answers are valid only if the result is `Ok`,
/// which holds when the first call left in `ready` comes due.
fn apply(
    db: &Database,
    ops: Vec<Op>,
    seq: &mut u64,
    delta: &mut i64,
) -> (Vec<Answer>, Result<Option<u64>, StoreError>) {
    let mut answers = Vec::with_capacity(ops.len());
    let mut ops = ops.into_iter();
    let result = (|| -> Result<Option<u64>, StoreError> {
        let next_due;
        let mut txn = db.begin_write()?;
        let mut changed = false;
        let mut enqueued = false;
        {
            let mut calls = txn.open_table(CALLS)?;
            let mut ready = txn.open_table(READY)?;
            let mut done = txn.open_table(DONE)?;
            let now = now_ms();
            for op in ops.by_ref() {
                match op {
                    Op::Enqueue(call, tx) => {
                        let id = call.id.as_str();
                        let rec = Record::queued(&call);
                        // One lookup: the insert hands back what it replaced, put back
                        // in the rare case of a duplicate id.
                        let old = calls
                            .insert(id, rec.as_slice())?
                            .map(|v| v.value().to_vec());
                        if let Some(old) = old {
                            calls.insert(id, old.as_slice())?;
                            answers.push(Answer::Unit(tx, Err(StoreError::Duplicate)));
                            continue;
                        }
                        *seq += 1;
                        ready.insert((now, *seq), id)?;
                        *delta += 1;
                        changed = true;
                        enqueued = true;
                        answers.push(Answer::Unit(tx, Ok(())));
                    }
                    Op::Claim(max, tx) => {
                        let mut due = Vec::new();
                        for entry in ready.range(..=(now, u64::MAX))?.take(max) {
                            let (k, v) = entry?;
                            due.push((k.value(), v.value().to_owned()));
                        }
                        let mut out = Vec::with_capacity(due.len());
                        for (key, id) in due {
                            ready.remove(key)?;
                            changed = true;
                            let Some((rec, running)) = calls.get(id.as_str())?.and_then(|v| {
                                let rec = Record::decode(v.value())?;
                                let p = rec.progress.start();
                                Some((rec, Record::with_progress(v.value(), p)?))
                            }) else {
                                continue;
                            };
                            let Some(call) = rec.call else { continue };
                            calls.insert(id.as_str(), running.as_slice())?;
                            out.push(Claimed {
                                call,
                                progress: rec.progress.start(),
                                entry: None,
                            });
                        }
                        answers.push(Answer::Claimed(tx, out));
                    }
                    Op::Settle(id, progress, how, tx) => {
                        let rec = match how {
                            // The request is dropped: nothing of the old record is read.
                            Settle::Done if calls.get(id.as_str())?.is_some() => {
                                Some(Record::finished(progress))
                            }
                            Settle::Done => None,
                            _ => calls
                                .get(id.as_str())?
                                .and_then(|v| Record::with_progress(v.value(), progress)),
                        };
                        let Some(rec) = rec else {
                            answers.push(Answer::Unit(tx, Ok(())));
                            continue;
                        };
                        match how {
                            Settle::RetryAt(at) => {
                                *seq += 1;
                                ready.insert((at, *seq), id.as_str())?;
                            }
                            Settle::Done => {
                                *delta -= 1;
                                *seq += 1;
                                done.insert((now, *seq), id.as_str())?;
                            }
                            Settle::Dead => *delta -= 1,
                        }
                        calls.insert(id.as_str(), rec.as_slice())?;
                        changed = true;
                        answers.push(Answer::Unit(tx, Ok(())));
                    }
                    Op::Get(id, tx) => {
                        let p = calls
                            .get(id.as_str())?
                            .and_then(|v| Record::progress_of(v.value()));
                        answers.push(Answer::Got(tx, p));
                    }
                    Op::List(state, limit, tx) => {
                        let mut out = Vec::new();
                        for entry in calls.iter()? {
                            let (k, v) = entry?;
                            if let Some(p) = Record::progress_of(v.value()) {
                                if p.state == state {
                                    out.push((k.value().to_owned(), p));
                                    if out.len() >= limit {
                                        break;
                                    }
                                }
                            }
                        }
                        answers.push(Answer::Listed(tx, out));
                    }
                }
            }
            while done.len()? > KEEP_DONE {
                let Some((_, id)) = done.pop_first()? else {
                    break;
                };
                calls.remove(id.value())?;
            }
            next_due = ready.first()?.map(|(k, _)| k.value().0);
        }
        if changed {
            // Only an enqueue must be on disk before it is answered. A claim or settle
            // lost in a crash only means the call runs again (at least once), and redb
            // makes it durable with the next durable commit anyway.
            txn.set_durability(if enqueued {
                Durability::Immediate
            } else {
                Durability::None
            });
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(next_due)
    })();
    // Messages left unapplied by an early error still need an answer.
    for op in ops {
        answers.push(match op {
            Op::Enqueue(_, tx) | Op::Settle(_, _, _, tx) => Answer::Unit(tx, Ok(())),
            Op::Claim(_, tx) => Answer::Claimed(tx, Vec::new()),
            Op::Get(_, tx) => Answer::Got(tx, None),
            Op::List(_, _, tx) => Answer::Listed(tx, Vec::new()),
        });
    }
    (answers, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> Call {
        Call {
            id: id.into(),
            function: "f".into(),
            method: "POST".into(),
            path: "/".into(),
            query: None,
            params: vec![],
            headers: vec![],
            body: b"x".to_vec(),
            callback: None,
            auth_kind: "none".into(),
            subject: None,
            enqueued_unix_ms: 0,
        }
    }

    #[tokio::test]
    async fn enqueue_claim_settle_and_recover() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Embedded::open(dir.path()).unwrap();
            s.enqueue(call("a")).await.unwrap();
            s.enqueue(call("b")).await.unwrap();
            assert!(matches!(
                s.enqueue(call("a")).await,
                Err(StoreError::Duplicate)
            ));
            assert_eq!(s.pending(), 2);
            let got = s.claim(1).await.unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].call.id, "a");
            assert_eq!(got[0].progress.attempts, 1);
            let (p, _) = got[0].progress.finish(200, 3);
            s.settle(&got[0], p, Settle::Done).await.unwrap();
            assert_eq!(s.get("a").await.unwrap().unwrap().state, CallState::Done);
            assert_eq!(s.pending(), 1);
            let b = s.claim(10).await.unwrap();
            assert_eq!(b.len(), 1);
            assert_eq!(s.get("b").await.unwrap().unwrap().state, CallState::Running);
            // Dropped here while "b" runs: the next open must requeue it.
        }
        // The writer thread ends with its channel; wait until the file is free.
        let s = loop {
            match Embedded::open(dir.path()) {
                Ok(s) => break s,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        assert_eq!(s.pending(), 1);
        let b = s.claim(10).await.unwrap();
        assert_eq!(b[0].call.id, "b");
        assert_eq!(b[0].progress.attempts, 2);
        let (p, _) = b[0].progress.finish(502, 2);
        s.settle(&b[0], p, Settle::Dead).await.unwrap();
        let dead = s.list(CallState::Dead, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].1.last_status, Some(502));
        assert_eq!(s.pending(), 0);
    }

    /// Group commit: many enqueues in flight share fsyncs. Prints the rate; run with
    /// `cargo test --release -p gateway --lib enqueue_rate -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    #[ignore]
    async fn enqueue_rate() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(Embedded::open(dir.path()).unwrap());
        let n = 20_000;
        let started = std::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..256 {
            let s = s.clone();
            tasks.spawn(async move {
                for i in (w..n).step_by(256) {
                    s.enqueue(call(&format!("c{i}"))).await.unwrap();
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let rate = n as f64 / started.elapsed().as_secs_f64();
        println!("embedded store: {rate:.0} durable enqueues/s (256 in flight)");
        assert_eq!(s.pending(), n as u64);
    }

    #[test]
    fn only_dead_ephemeral_folders_are_swept() {
        let parent = tempfile::tempdir().unwrap();
        let me = std::process::id();
        let dead = parent.path().join("edgefn-async-aa-pid999999999");
        let live = parent.path().join(format!("edgefn-async-bb-pid{me}"));
        let kept = parent.path().join("edgefn-async-cc");
        for d in [&dead, &live, &kept] {
            std::fs::create_dir(d).unwrap();
        }
        sweep_ephemeral(&kept);
        assert!(dead.exists(), "a configured data_dir sweeps nothing");
        sweep_ephemeral(&parent.path().join(format!("edgefn-async-dd-pid{me}")));
        assert!(!dead.exists());
        assert!(live.exists() && kept.exists());
    }

    #[tokio::test]
    async fn retries_wait_until_due() {
        let dir = tempfile::tempdir().unwrap();
        let s = Embedded::open(dir.path()).unwrap();
        s.enqueue(call("a")).await.unwrap();
        let a = s.claim(1).await.unwrap();
        let (p, _) = a[0].progress.finish(503, 5);
        s.settle(&a[0], p, Settle::RetryAt(now_ms() + 3_600_000))
            .await
            .unwrap();
        assert!(s.claim(10).await.unwrap().is_empty());
        assert_eq!(s.pending(), 1);
        assert_eq!(s.get("a").await.unwrap().unwrap().state, CallState::Queued);
    }

    /// What an idle dispatcher sleeps on: the earliest due time left in `ready` after each
    /// answered operation, none once everything is claimed.
    #[tokio::test]
    async fn next_due_follows_the_earliest_queued_call() {
        let dir = tempfile::tempdir().unwrap();
        let s = Embedded::open(dir.path()).unwrap();
        let before = now_ms();
        s.enqueue(call("a")).await.unwrap();
        let due = s.next_due().expect("a queued call is due");
        assert!(due >= before && due <= now_ms());
        let a = s.claim(1).await.unwrap();
        assert_eq!(s.next_due(), None, "nothing left in ready");
        let (p, _) = a[0].progress.finish(503, 5);
        let retry = now_ms() + 3_600_000;
        s.settle(&a[0], p, Settle::RetryAt(retry)).await.unwrap();
        assert_eq!(s.next_due(), Some(retry));
        s.enqueue(call("b")).await.unwrap();
        assert!(
            s.next_due().unwrap() < retry,
            "the new call is due before the retry"
        );
    }
}
