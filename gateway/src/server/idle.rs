//! Idle tracking for one connection, at request boundaries: the service stamps the start
//! and end of every request and counts those in flight, and [`expired`] resolves once no
//! request has started or ended for the idle timeout and none is in flight (a slow
//! function is not idle). IO is deliberately not counted: h2 keep-alive pings would
//! otherwise keep an unused connection open for ever.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[derive(Debug)]
pub struct Activity {
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            last_ms: AtomicU64::new(now_ms()),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        self.last_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Marks a request in flight until the returned guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }
}

pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// Resolves when the connection has been idle for `timeout`.
pub async fn expired(activity: &Activity, timeout: Duration) {
    let timeout_ms = timeout.as_millis() as u64;
    loop {
        let idle_for = now_ms().saturating_sub(activity.last_ms.load(Ordering::Relaxed));
        if idle_for >= timeout_ms && activity.in_flight.load(Ordering::Relaxed) == 0 {
            return;
        }
        let wait = timeout_ms
            .saturating_sub(idle_for)
            .max(timeout_ms / 4)
            .max(1);
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}
