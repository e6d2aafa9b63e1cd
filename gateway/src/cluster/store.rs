//! The Redis connection shared by every request of a node: one `ConnectionManager`
//! (multiplexed, so concurrent calls are pipelined on one socket; it reconnects by itself),
//! the `Health` flag the request path reads before calling, and the probe that brings a
//! node back to shared mode. Calls are bounded by `timeout_ms`; a failure is counted,
//! flips the node to fallback (logged once) and starts the probe, so during an outage
//! requests stop waiting on the store at all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use super::batch::{Ask, Batcher};
use super::config::ClusterConfig;
use super::health::Health;
use super::lease::Leases;
use super::StoreDown;
use crate::metrics::names::{
    CLUSTER_STORE_ERRORS_TOTAL, CLUSTER_STORE_FALLBACK, CLUSTER_STORE_ROUND_TRIP_SECONDS, LABEL_OP,
};

/// How often a node in fallback tries the store again.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// Operation label values.
pub const OP_RATE_LIMIT: &str = "rate_limit";
pub const OP_REPLAY: &str = "replay";
pub const OP_PROBE: &str = "probe";

pub struct ClusterStore {
    conn: ConnectionManager,
    health: Health,
    timeout: Duration,
    pub nodes_hint: u32,
    pub replay_fail_open: bool,
    pub lease_tokens: u32,
    pub lease_window: Duration,
    /// Leased tokens (`lease_tokens` > 1) and refusals this node repeats.
    pub leases: Leases,
    /// Rate-limit calls of concurrent requests, combined.
    pub batcher: Batcher,
    gcra: Script,
}

impl std::fmt::Debug for ClusterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL (it may hold a password).
        f.debug_struct("ClusterStore")
            .field("shared", &self.health.is_shared())
            .field("nodes_hint", &self.nodes_hint)
            .finish()
    }
}

impl ClusterStore {
    /// Builds the (lazy) connection and starts probing; `None` when `[cluster] store` is
    /// unset. Must run inside the Tokio runtime.
    pub fn start(cfg: &ClusterConfig) -> Result<Option<Arc<ClusterStore>>, redis::RedisError> {
        let Some(url) = &cfg.store else {
            return Ok(None);
        };
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let client = redis::Client::open(url.as_str())?;
        let manager_cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(PROBE_EVERY);
        let conn = ConnectionManager::new_lazy_with_config(client, manager_cfg)?;
        let store = Arc::new(ClusterStore {
            conn,
            health: Health::default(),
            timeout,
            nodes_hint: cfg.nodes_hint,
            replay_fail_open: cfg.replay_fail_open,
            lease_tokens: cfg.lease_tokens,
            lease_window: Duration::from_millis(cfg.lease_ms),
            leases: Leases::default(),
            batcher: Batcher::default(),
            gcra: Script::new(include_str!("gcra.lua")),
        });
        metrics::gauge!(CLUSTER_STORE_FALLBACK).set(1.0);
        tokio::spawn(store.clone().probe(true));
        Ok(Some(store))
    }

    pub fn is_shared(&self) -> bool {
        self.health.is_shared()
    }

    /// One script call for a batch's buckets: per bucket, the tokens granted (up to its
    /// `wanted`) and how long until it holds a token again.
    pub async fn gcra(self: &Arc<Self>, asks: &[Ask]) -> Result<Vec<(u32, Duration)>, StoreDown> {
        let mut call = self.gcra.prepare_invoke();
        for a in asks {
            call.key(&a.key)
                .arg(a.interval_us)
                .arg(a.tolerance_us)
                .arg(a.wanted.max(1));
        }
        let reply: Vec<i64> = self
            .timed(OP_RATE_LIMIT, call.invoke_async(&mut self.conn.clone()))
            .await?;
        if reply.len() != 2 * asks.len() {
            self.failed(OP_RATE_LIMIT, "unexpected reply from the rate-limit script");
            return Err(StoreDown);
        }
        Ok(reply
            .chunks_exact(2)
            .zip(asks)
            .map(|(r, a)| {
                let granted = r[0].clamp(0, i64::from(a.wanted)) as u32;
                (granted, Duration::from_micros(r[1].max(0) as u64))
            })
            .collect())
    }

    /// `SET key 1 NX EX ttl`: true when this is the first use of `key`.
    pub async fn claim(self: &Arc<Self>, key: &str, ttl_s: u64) -> Result<bool, StoreDown> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(1).arg("NX").arg("EX").arg(ttl_s.max(1));
        let reply: Value = self.timed(OP_REPLAY, cmd.query_async(&mut conn)).await?;
        Ok(!matches!(reply, Value::Nil))
    }

    /// Runs one store call with the timeout, recording its round trip or its failure.
    async fn timed<T>(
        self: &Arc<Self>,
        op: &'static str,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreDown> {
        if !self.health.is_shared() {
            return Err(StoreDown);
        }
        let start = Instant::now();
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => {
                metrics::histogram!(CLUSTER_STORE_ROUND_TRIP_SECONDS, LABEL_OP => op)
                    .record(start.elapsed().as_secs_f64());
                Ok(v)
            }
            Ok(Err(e)) => {
                self.failed(op, &e.to_string());
                Err(StoreDown)
            }
            Err(_) => {
                self.failed(op, "timed out");
                Err(StoreDown)
            }
        }
    }

    fn failed(self: &Arc<Self>, op: &'static str, detail: &str) {
        metrics::counter!(CLUSTER_STORE_ERRORS_TOTAL, LABEL_OP => op).increment(1);
        if self.health.failed() {
            tracing::warn!(
                op,
                error = detail,
                nodes_hint = self.nodes_hint,
                "cluster store unreachable: rate limits fall back to this node's share (limit / nodes_hint); replay-guarded functions answer 503 unless replay_fail_open"
            );
            metrics::gauge!(CLUSTER_STORE_FALLBACK).set(1.0);
            tokio::spawn(self.clone().probe(false));
        }
    }

    /// PINGs every [`PROBE_EVERY`] until the store answers, then restores shared mode.
    /// `at_start`: the first failure is logged (a failure later was logged by `failed`).
    async fn probe(self: Arc<Self>, mut at_start: bool) {
        loop {
            let mut conn = self.conn.clone();
            let start = Instant::now();
            let ping = tokio::time::timeout(
                self.timeout,
                redis::cmd("PING").query_async::<String>(&mut conn),
            )
            .await;
            if let Ok(Ok(_)) = ping {
                metrics::histogram!(CLUSTER_STORE_ROUND_TRIP_SECONDS, LABEL_OP => OP_PROBE)
                    .record(start.elapsed().as_secs_f64());
                if self.health.recovered() {
                    metrics::gauge!(CLUSTER_STORE_FALLBACK).set(0.0);
                    tracing::info!("cluster store reachable: limits and replay guards are shared");
                }
                return;
            }
            metrics::counter!(CLUSTER_STORE_ERRORS_TOTAL, LABEL_OP => OP_PROBE).increment(1);
            if std::mem::take(&mut at_start) {
                tracing::warn!(
                    nodes_hint = self.nodes_hint,
                    "cluster store unreachable at start: rate limits use this node's share (limit / nodes_hint) until it answers; replay-guarded functions answer 503 unless replay_fail_open"
                );
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }
}
