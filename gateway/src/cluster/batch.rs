//! Concurrent rate-limit calls of one node combined into one script call: while a batch is
//! on the wire, arriving requests queue by bucket key; when it returns, one of them (a
//! request's own task, no task of ours) sends everything queued as the next batch. A key
//! wanted by n requests is asked once for n tokens (plus the lease), so under load Redis
//! runs one script per batch rather than one per request, and a request waits at most one
//! batch plus its own. Granting n tokens at once is what n calls at that instant would
//! grant: batching never admits more.
//!
//! The queue and the split of a grant are plain data ([`Queue`], [`split`]); the IO is
//! [`Batcher::take`]. A request cancelled while queued is skipped; a leader cancelled while
//! its batch is out hands the queue on, and that batch's requests ask again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::store::ClusterStore;
use super::StoreDown;

/// Buckets per script call; more wait for the next batch.
pub const MAX_KEYS: usize = 256;
/// Times a request asks again after its batch's leader went away.
const MAX_ATTEMPTS: usize = 3;

/// A request's verdict: admitted, or refused with the wait until the bucket refills.
pub type Verdict = Result<(), Duration>;

/// Messages to a queued request.
#[derive(Debug)]
enum Msg {
    Done(Result<Verdict, StoreDown>),
    /// Send the next batch (the request stays queued and finds its own verdict in it).
    Lead,
}

type Waiter = (u64, Option<oneshot::Sender<Msg>>);

/// One bucket's queued requests.
#[derive(Debug)]
pub struct Slot {
    pub interval_us: u64,
    pub tolerance_us: u64,
    waiters: Vec<Waiter>,
}

/// One bucket of a batch on the wire.
#[derive(Debug)]
pub struct Ask {
    pub key: String,
    pub interval_us: u64,
    pub tolerance_us: u64,
    /// Tokens for the requests (after any served from the lease) plus the lease.
    pub wanted: u32,
    waiters: Vec<Waiter>,
}

/// Requests waiting for the next batch, and whether one is out.
#[derive(Debug, Default)]
pub struct Queue {
    out: bool,
    next_id: u64,
    pending: HashMap<String, Slot>,
}

impl Queue {
    /// Queues a request for `key`: its id and whether it must send the batch itself.
    fn join(
        &mut self,
        key: &str,
        gcra_us: (u64, u64),
        tx: oneshot::Sender<Msg>,
    ) -> (u64, Option<oneshot::Sender<Msg>>) {
        self.next_id += 1;
        let id = self.next_id;
        let lead = !self.out;
        self.out = true;
        let slot = self.pending.entry(key.to_owned()).or_insert_with(|| Slot {
            interval_us: gcra_us.0,
            tolerance_us: gcra_us.1,
            waiters: Vec::new(),
        });
        // A leader needs no message: it reads its verdict from its own batch.
        let (kept, back) = if lead {
            (None, Some(tx))
        } else {
            (Some(tx), None)
        };
        slot.waiters.push((id, kept));
        (id, back)
    }

    /// Up to [`MAX_KEYS`] buckets for the next batch, without requests that went away.
    fn take(&mut self) -> Vec<(String, Slot)> {
        let keys: Vec<String> = self.pending.keys().take(MAX_KEYS).cloned().collect();
        keys.into_iter()
            .filter_map(|k| {
                let mut slot = self.pending.remove(&k)?;
                slot.waiters
                    .retain(|(_, tx)| tx.as_ref().is_none_or(|tx| !tx.is_closed()));
                (!slot.waiters.is_empty()).then_some((k, slot))
            })
            .collect()
    }

    /// A batch came back (or its leader went away): the next queued request leads, or
    /// nothing is out.
    fn hand_on(&mut self) {
        for slot in self.pending.values_mut() {
            let mut i = 0;
            while i < slot.waiters.len() {
                if let Some(sender) = slot.waiters[i].1.take() {
                    if sender.send(Msg::Lead).is_ok() {
                        return;
                    }
                    // Went away: not a leader, just gone.
                    slot.waiters.remove(i);
                    continue;
                }
                i += 1;
            }
        }
        // Only cancelled requests (or none) are queued.
        self.pending.clear();
        self.out = false;
    }
}

/// How a grant of `granted` tokens for `n` requests splits: how many are admitted and how
/// many tokens are left for the lease.
pub fn split(granted: u32, n: u32) -> (u32, u32) {
    let admitted = granted.min(n);
    (admitted, granted - admitted)
}

#[derive(Debug, Default)]
pub struct Batcher {
    queue: Mutex<Queue>,
}

/// Hands the queue on if the leader's future is dropped with its batch out.
struct Leading<'a>(&'a Batcher);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.0.lock().hand_on();
    }
}

/// A queued request; dropped while queued, it passes on the lead it may just have been
/// given.
struct Queued<'a>(&'a Batcher, Option<oneshot::Receiver<Msg>>);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.1.take() {
            rx.close();
            if let Ok(Msg::Lead) = rx.try_recv() {
                self.0.lock().hand_on();
            }
        }
    }
}

impl Batcher {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One token of `key`'s shared bucket, combined with the node's concurrent requests.
    pub async fn take(
        &self,
        store: &Arc<ClusterStore>,
        key: &str,
        gcra_us: (u64, u64),
    ) -> Result<Verdict, StoreDown> {
        for _ in 0..MAX_ATTEMPTS {
            let (tx, rx) = oneshot::channel();
            let (id, lead) = self.lock().join(key, gcra_us, tx);
            if lead.is_none() {
                let mut queued = Queued(self, Some(rx));
                let rx = queued.1.as_mut().expect("just set");
                let msg = rx.await;
                queued.1 = None;
                match msg {
                    Ok(Msg::Done(v)) => return v,
                    Ok(Msg::Lead) => {}
                    // The leader of our batch went away: ask again.
                    Err(_) => continue,
                }
            }
            let leading = Leading(self);
            let mine = self.send(store, id).await;
            drop(leading);
            return mine;
        }
        Err(StoreDown)
    }

    /// Sends the queued buckets as one batch and answers their requests; `id`'s verdict is
    /// returned rather than sent.
    async fn send(&self, store: &Arc<ClusterStore>, id: u64) -> Result<Verdict, StoreDown> {
        let taken = self.lock().take();
        let now = Instant::now();
        let extra = store.lease_tokens - 1;
        let mut asks = Vec::with_capacity(taken.len());
        let mut mine = None;
        for (key, slot) in taken {
            let mut waiters = slot.waiters;
            let n = waiters.len() as u32;
            // A lease granted while these requests queued is spent on them first.
            let leased = if extra > 0 {
                store.leases.take_up_to(&key, n, now)
            } else {
                0
            };
            for w in waiters.drain(..leased as usize) {
                answer(w, Ok(Ok(())), id, &mut mine);
            }
            if waiters.is_empty() {
                continue;
            }
            asks.push(Ask {
                wanted: waiters.len() as u32 + extra,
                key,
                interval_us: slot.interval_us,
                tolerance_us: slot.tolerance_us,
                waiters,
            });
        }
        if !asks.is_empty() {
            let reply = store.gcra(&asks).await;
            let now = Instant::now();
            for (i, ask) in asks.into_iter().enumerate() {
                let Ok(reply) = &reply else {
                    for w in ask.waiters {
                        answer(w, Err(StoreDown), id, &mut mine);
                    }
                    continue;
                };
                let (granted, wait) = reply[i];
                let (admitted, left) = split(granted, ask.waiters.len() as u32);
                if extra > 0 && admitted > 0 {
                    store.leases.keep(&ask.key, left, now, store.lease_window);
                }
                if admitted < ask.waiters.len() as u32 {
                    store.leases.refuse(&ask.key, wait, now);
                }
                for (j, w) in ask.waiters.into_iter().enumerate() {
                    let v = if (j as u32) < admitted {
                        Ok(())
                    } else {
                        Err(wait.max(Duration::from_micros(1)))
                    };
                    answer(w, Ok(v), id, &mut mine);
                }
            }
        }
        // Normally found above; a leader whose own request was cancelled never is.
        mine.unwrap_or(Err(StoreDown))
    }

    #[cfg(test)]
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.lock()
    }
}

fn answer(
    (wid, tx): Waiter,
    v: Result<Verdict, StoreDown>,
    id: u64,
    mine: &mut Option<Result<Verdict, StoreDown>>,
) {
    if wid == id {
        *mine = Some(v);
    } else if let Some(tx) = tx {
        let _ = tx.send(Msg::Done(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: (u64, u64) = (1_000, 0);

    #[test]
    fn the_first_request_leads_the_rest_queue_by_key() {
        let mut q = Queue::default();
        let (a, rx_a) = oneshot::channel();
        let (id_a, lead) = q.join("k1", G, a);
        assert!(lead.is_some(), "nothing out: the first request sends");
        drop(rx_a);
        let (b, mut rx_b) = oneshot::channel();
        let (_, lead) = q.join("k1", G, b);
        assert!(lead.is_none(), "a batch is out: queued");
        let (c, _rx_c) = oneshot::channel();
        q.join("k2", G, c);
        let mut batch = q.take();
        batch.sort_by(|x, y| x.0.cmp(&y.0));
        let sizes: Vec<_> = batch
            .iter()
            .map(|(k, s)| (k.as_str(), s.waiters.len()))
            .collect();
        assert_eq!(sizes, [("k1", 2), ("k2", 1)], "one ask per key");
        assert!(matches!(batch[0].1.waiters[0], (id, None) if id == id_a));
        assert!(q.take().is_empty());
        // Back with nothing queued: nothing is out any more.
        q.hand_on();
        assert!(!q.out);
        assert!(rx_b.try_recv().is_err());
    }

    #[test]
    fn the_queue_is_handed_to_a_live_request() {
        let mut q = Queue::default();
        let (a, _) = oneshot::channel();
        q.join("k", G, a);
        let (gone, rx_gone) = oneshot::channel();
        q.join("k", G, gone);
        drop(rx_gone);
        let (live, mut rx_live) = oneshot::channel();
        let (live_id, _) = q.join("k", G, live);
        q.hand_on();
        assert!(matches!(rx_live.try_recv(), Ok(Msg::Lead)));
        assert!(q.out, "the new leader's batch is out next");
        let batch = q.take();
        assert_eq!(batch[0].1.waiters.len(), 2, "the cancelled request left");
        assert!(batch[0]
            .1
            .waiters
            .iter()
            .any(|(id, tx)| *id == live_id && tx.is_none()));
    }

    #[test]
    fn only_cancelled_requests_queued_means_nothing_out() {
        let mut q = Queue::default();
        let (a, _) = oneshot::channel();
        q.join("k", G, a);
        let (b, rx_b) = oneshot::channel();
        q.join("k", G, b);
        drop(rx_b);
        q.take();
        q.hand_on();
        assert!(!q.out && q.pending.is_empty());
    }

    #[test]
    fn at_most_max_keys_per_batch() {
        let mut q = Queue::default();
        let mut rxs = Vec::new();
        for i in 0..MAX_KEYS + 3 {
            let (tx, rx) = oneshot::channel();
            rxs.push(rx);
            q.join(&format!("k{i}"), G, tx);
        }
        assert_eq!(q.take().len(), MAX_KEYS);
        assert_eq!(q.take().len(), 3);
    }

    #[test]
    fn a_grant_splits_into_admitted_and_leased() {
        assert_eq!(split(0, 3), (0, 0));
        assert_eq!(split(2, 3), (2, 0), "two of three admitted");
        assert_eq!(split(3, 3), (3, 0));
        assert_eq!(split(7, 3), (3, 4), "the lease keeps the rest");
    }

    #[test]
    fn batcher_starts_idle() {
        let b = Batcher::default();
        assert!(!b.queue().out);
    }
}
