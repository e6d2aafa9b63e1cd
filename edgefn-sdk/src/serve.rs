//! The worker loop: handshake, then the reading thread queues each `req` and `concurrency`
//! threads run them. [`Tracker`] (no IO) decides what a cancel means for a request in each
//! state: queued → dropped and acknowledged at once; running → abandoned, acknowledged when
//! the handler returns (its result is discarded); unknown → acknowledged at once.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};

use serde_json::{json, Value};

use crate::channel::{Reader, Writer};
use crate::{Event, Response, PROTOCOL_VERSION};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Queued,
    Running,
    Abandoned,
}

/// What to do about a cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    AckNow,
    AckWhenDone,
}

/// What to send when a handler returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    Answer,
    Cancelled,
}

#[derive(Debug, Default)]
pub(crate) struct Tracker(HashMap<u64, Slot>);

impl Tracker {
    pub(crate) fn queue(&mut self, id: u64) {
        self.0.insert(id, Slot::Queued);
    }

    pub(crate) fn cancel(&mut self, id: u64) -> Cancel {
        match self.0.get(&id).copied() {
            None => Cancel::AckNow,
            Some(Slot::Queued) => {
                self.0.remove(&id);
                Cancel::AckNow
            }
            Some(Slot::Running | Slot::Abandoned) => {
                self.0.insert(id, Slot::Abandoned);
                Cancel::AckWhenDone
            }
        }
    }

    /// False when the request was cancelled while queued: do not run it.
    pub(crate) fn start(&mut self, id: u64) -> bool {
        match self.0.get_mut(&id) {
            Some(slot @ Slot::Queued) => {
                *slot = Slot::Running;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn finish(&mut self, id: u64) -> Done {
        match self.0.remove(&id) {
            Some(Slot::Abandoned) => Done::Cancelled,
            _ => Done::Answer,
        }
    }
}

struct Job {
    id: u64,
    event: Event,
}

type Shared<F> = (Arc<F>, Arc<Writer>, Arc<Mutex<Tracker>>);

pub fn serve<F>(socket: &str, concurrency: usize, handler: F) -> std::io::Result<()>
where
    F: Fn(Event) -> Result<Response, String> + Send + Sync + 'static,
{
    let stream = UnixStream::connect(socket)?;
    let mut reader = Reader::new(stream.try_clone()?);
    let writer = Arc::new(Writer::new(stream));
    let Some((init, _)) = reader.read()? else {
        return Err(std::io::Error::other("no init frame from the gateway"));
    };
    if init["type"] != "init" {
        return Err(std::io::Error::other("the first frame is not init"));
    }
    if init["version"].as_u64() != Some(PROTOCOL_VERSION) {
        let error = format!(
            "edgefn worker speaks protocol 2; the gateway sent version {}",
            init.get("version").unwrap_or(&Value::Null)
        );
        writer.send(&json!({"type": "fatal", "error": error}), b"")?;
        std::process::exit(1);
    }
    let env: Arc<BTreeMap<String, String>> = Arc::new(match &init["env"] {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect(),
        _ => BTreeMap::new(),
    });
    writer.send(
        &json!({"type": "ready", "version": PROTOCOL_VERSION, "pid": std::process::id()}),
        b"",
    )?;

    let tracker = Arc::new(Mutex::new(Tracker::default()));
    let shared: Shared<F> = (Arc::new(handler), writer.clone(), tracker.clone());
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..concurrency.max(1) {
        let (rx, shared) = (rx.clone(), shared.clone());
        std::thread::spawn(move || run_jobs(&rx, &shared));
    }
    while let Some((header, body)) = reader.read()? {
        let Some(id) = header["id"].as_u64() else {
            continue;
        };
        match header["type"].as_str() {
            Some("req") => {
                let event = Event::from_frame(
                    header["event"].clone(),
                    body,
                    header["binary"] == true,
                    env.clone(),
                );
                lock(&tracker).queue(id);
                if tx.send(Job { id, event }).is_err() {
                    return Err(std::io::Error::other("every handler thread is gone"));
                }
            }
            Some("cancel") => {
                let outcome = lock(&tracker).cancel(id);
                if outcome == Cancel::AckNow {
                    writer.send(&json!({"type": "cancelled", "id": id}), b"")?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn lock(t: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

fn run_jobs<F>(rx: &Mutex<mpsc::Receiver<Job>>, (handler, writer, tracker): &Shared<F>)
where
    F: Fn(Event) -> Result<Response, String> + Send + Sync + 'static,
{
    loop {
        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        if !lock(tracker).start(job.id) {
            continue;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| handler(job.event)));
        let (header, body) = match (lock(tracker).finish(job.id), outcome) {
            (Done::Cancelled, _) => (json!({"type": "cancelled", "id": job.id}), Vec::new()),
            // FastFN's Rust runtime answers a panic with 500 and this text.
            (Done::Answer, Err(_)) => (
                json!({"type": "err", "id": job.id, "kind": "handler_error", "status": 500, "detail": "rust handler panicked"}),
                Vec::new(),
            ),
            (Done::Answer, Ok(Err(detail))) => {
                eprintln!("edgefn: handler returned an invalid response: {detail}");
                let h = json!({"type": "err", "id": job.id, "kind": "bad_response", "status": 500, "detail": detail});
                (h, Vec::new())
            }
            (Done::Answer, Ok(Ok(r))) => match check(&r) {
                Some(detail) => {
                    eprintln!("edgefn: handler returned an invalid response: {detail}");
                    let h = json!({"type": "err", "id": job.id, "kind": "bad_response", "status": 500, "detail": detail});
                    (h, Vec::new())
                }
                None => {
                    let mut h = json!({"type": "res", "id": job.id, "status": r.status, "headers": r.headers});
                    if let Some(p) = r.proxy {
                        h["proxy"] = p;
                    }
                    (h, r.body)
                }
            },
        };
        if writer.send(&header, &body).is_err() {
            std::process::exit(1);
        }
    }
}

fn check(r: &Response) -> Option<&'static str> {
    if !(100..=599).contains(&r.status) {
        return Some("status must be a valid HTTP code");
    }
    let bad = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
    if r.headers
        .iter()
        .any(|(n, v)| n.is_empty() || bad(n) || bad(v))
    {
        return Some("a header name or value is empty or holds a line break");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_in_each_state() {
        let mut t = Tracker::default();
        assert_eq!(t.cancel(1), Cancel::AckNow, "unknown id");
        t.queue(2);
        assert_eq!(t.cancel(2), Cancel::AckNow, "queued");
        assert!(!t.start(2), "a cancelled queued request never runs");
        t.queue(3);
        assert!(t.start(3));
        assert_eq!(t.cancel(3), Cancel::AckWhenDone, "running");
        assert_eq!(t.cancel(3), Cancel::AckWhenDone, "a repeated cancel");
        assert_eq!(t.finish(3), Done::Cancelled);
        t.queue(4);
        assert!(t.start(4));
        assert_eq!(t.finish(4), Done::Answer);
        assert_eq!(t.cancel(4), Cancel::AckNow, "already answered");
    }

    #[test]
    fn invalid_responses_are_named() {
        assert!(check(&Response::new(99)).is_some());
        assert!(check(&Response::new(200).header("x", "a\r\nb")).is_some());
        assert!(check(&Response::text("ok")).is_none());
    }
}
