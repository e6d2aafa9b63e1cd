//! The shared queue: Redis Streams with one consumer group, so several edgefn nodes take
//! calls from one stream. `XADD` at enqueue (with the record under its own key, both in
//! one script so a call is never half-stored), `XREADGROUP` to take new calls,
//! `XAUTOCLAIM` to take calls whose node went quiet for `visibility_timeout_ms`, and
//! `XACK` + `XDEL` when a call is settled. A node refreshes the calls it holds (`XCLAIM`
//! to itself) so a live node's long call is not taken from it. Retries wait in a sorted set by due time and
//! are moved back into the stream when due.
//!
//! The connection is a `ConnectionManager`: commands time out, and after an outage it
//! reconnects by itself; meanwhile enqueues fail and are answered 503.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use super::{now_ms, record, Claimed, Settle, StoreError};
use crate::async_queue::call::{Call, Record};
use crate::async_queue::machine::{CallState, Progress};

const STREAM: &str = "edgefn:async:stream";
const DELAYED: &str = "edgefn:async:delayed";
const DEAD: &str = "edgefn:async:dead";
const GROUP: &str = "edgefn";
const CALL_PREFIX: &str = "edgefn:async:call:";
/// How long a finished call's status stays readable.
const DONE_TTL_S: u64 = 86_400;
const TIMEOUT: Duration = Duration::from_secs(3);

const ENQUEUE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('XADD', KEYS[2], '*', 'id', ARGV[2])
  return 1
end
return 0";

const PROMOTE: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('XADD', KEYS[2], '*', 'id', id)
end
return #ids";

pub struct RedisStore {
    conn: ConnectionManager,
    consumer: String,
    visibility_ms: u64,
    enqueue: Script,
    promote: Script,
}

/// Stops a [`RedisStore::hold`] heartbeat when dropped.
pub struct Hold(tokio::task::JoinHandle<()>);

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn err(e: redis::RedisError) -> StoreError {
    StoreError::Redis {
        source: Arc::new(e),
    }
}

fn key(id: &str) -> String {
    format!("{CALL_PREFIX}{id}")
}

impl RedisStore {
    /// Connects (an unreachable server is an error here, at start) and creates the group.
    pub async fn connect(url: &str, visibility: Duration) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(err)?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let mut conn = client
            .get_connection_manager_with_config(cfg)
            .await
            .map_err(err)?;
        create_group(&mut conn).await?;
        let consumer = format!(
            "{}-{}-{:08x}",
            hostname(),
            std::process::id(),
            rand::random::<u32>()
        );
        Ok(RedisStore {
            conn,
            consumer,
            visibility_ms: visibility.as_millis() as u64,
            enqueue: Script::new(ENQUEUE),
            promote: Script::new(PROMOTE),
        })
    }

    pub async fn enqueue(&self, call: Call) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let id = call.id.clone();
        let stored: i64 = self
            .enqueue
            .key(key(&id))
            .key(STREAM)
            .arg(record(call).encode())
            .arg(&id)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        if stored == 1 {
            Ok(())
        } else {
            Err(StoreError::Duplicate)
        }
    }

    pub async fn claim(&self, max: usize) -> Result<Vec<Claimed>, StoreError> {
        match self.claim_once(max).await {
            // A Redis restarted without persistence lost the group: make it again.
            Err(StoreError::Redis { source }) if source.code() == Some("NOGROUP") => {
                let mut conn = self.conn.clone();
                create_group(&mut conn).await?;
                self.claim_once(max).await
            }
            other => other,
        }
    }

    async fn claim_once(&self, max: usize) -> Result<Vec<Claimed>, StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .promote
            .key(DELAYED)
            .key(STREAM)
            .arg(now_ms())
            .arg(max.max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        let stolen: Value = redis::cmd("XAUTOCLAIM")
            .arg(STREAM)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(self.visibility_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(max.max(1))
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        let mut entries = match &stolen {
            Value::Array(parts) if parts.len() >= 2 => stream_entries(&parts[1]),
            _ => Vec::new(),
        };
        if entries.len() < max {
            let fresh: Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(&self.consumer)
                .arg("COUNT")
                .arg(max - entries.len())
                .arg("STREAMS")
                .arg(STREAM)
                .arg(">")
                .query_async(&mut conn)
                .await
                .map_err(err)?;
            if let Value::Array(streams) = &fresh {
                for s in streams {
                    if let Value::Array(pair) = s {
                        if pair.len() == 2 {
                            entries.extend(stream_entries(&pair[1]));
                        }
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(entries.len());
        for (entry, id) in entries {
            let raw: Option<Vec<u8>> = redis::cmd("GET")
                .arg(key(&id))
                .query_async(&mut conn)
                .await
                .map_err(err)?;
            let rec = raw.as_deref().and_then(Record::decode);
            let Some(Record {
                call: Some(call),
                progress,
            }) = rec.filter(|r| matches!(r.progress.state, CallState::Queued | CallState::Running))
            else {
                // Settled already (a node died between its settle and ack), or gone.
                self.ack(&mut conn, &entry).await?;
                continue;
            };
            let progress = progress.start();
            let running = Record {
                call: Some(call),
                progress,
            };
            let _: () = redis::cmd("SET")
                .arg(key(&id))
                .arg(running.encode())
                .query_async(&mut conn)
                .await
                .map_err(err)?;
            out.push(Claimed {
                call: running.call.expect("just set"),
                progress,
                entry: Some(entry),
            });
        }
        Ok(out)
    }

    /// While this node holds `entry` (waiting for a worker, or running), its idle time is
    /// reset every third of the visibility timeout, so only a node that stopped is
    /// relieved of its calls. The task ends when the returned guard drops.
    pub fn hold(&self, entry: &str) -> Hold {
        let mut conn = self.conn.clone();
        let (entry, consumer) = (entry.to_owned(), self.consumer.clone());
        let every = Duration::from_millis((self.visibility_ms / 3).max(100));
        Hold(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let _: Result<Value, _> = redis::cmd("XCLAIM")
                    .arg(STREAM)
                    .arg(GROUP)
                    .arg(&consumer)
                    .arg(0)
                    .arg(&entry)
                    .arg("JUSTID")
                    .query_async(&mut conn)
                    .await;
            }
        }))
    }

    async fn ack(&self, conn: &mut ConnectionManager, entry: &str) -> Result<(), StoreError> {
        let _: Value = redis::pipe()
            .atomic()
            .cmd("XACK")
            .arg(STREAM)
            .arg(GROUP)
            .arg(entry)
            .cmd("XDEL")
            .arg(STREAM)
            .arg(entry)
            .query_async(conn)
            .await
            .map_err(err)?;
        Ok(())
    }

    pub async fn settle(
        &self,
        c: &Claimed,
        progress: Progress,
        how: Settle,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let id = &c.call.id;
        let rec = Record {
            call: (how != Settle::Done).then(|| c.call.clone()),
            progress,
        };
        let mut pipe = redis::pipe();
        pipe.atomic();
        match how {
            Settle::Done => {
                pipe.cmd("SET")
                    .arg(key(id))
                    .arg(rec.encode())
                    .arg("EX")
                    .arg(DONE_TTL_S);
            }
            Settle::Dead => {
                pipe.cmd("SET").arg(key(id)).arg(rec.encode());
                pipe.cmd("SADD").arg(DEAD).arg(id);
            }
            Settle::RetryAt(at) => {
                pipe.cmd("SET").arg(key(id)).arg(rec.encode());
                pipe.cmd("ZADD").arg(DELAYED).arg(at).arg(id);
            }
        }
        if let Some(entry) = &c.entry {
            pipe.cmd("XACK").arg(STREAM).arg(GROUP).arg(entry);
            pipe.cmd("XDEL").arg(STREAM).arg(entry);
        }
        let _: Value = pipe.query_async(&mut conn).await.map_err(err)?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Progress>, StoreError> {
        let mut conn = self.conn.clone();
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg(key(id))
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(raw.as_deref().and_then(Record::decode).map(|r| r.progress))
    }

    pub async fn list(
        &self,
        state: CallState,
        limit: usize,
    ) -> Result<Vec<(String, Progress)>, StoreError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = if state == CallState::Dead {
            redis::cmd("SRANDMEMBER")
                .arg(DEAD)
                .arg(limit)
                .query_async(&mut conn)
                .await
                .map_err(err)?
        } else {
            let mut ids = Vec::new();
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{CALL_PREFIX}*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await
                    .map_err(err)?;
                ids.extend(keys.iter().map(|k| k[CALL_PREFIX.len()..].to_owned()));
                cursor = next;
                if cursor == 0 || ids.len() >= 100_000 {
                    break;
                }
            }
            ids
        };
        let mut out = Vec::new();
        for id in ids {
            if let Some(p) = self.get(&id).await? {
                if p.state == state {
                    out.push((id, p));
                    if out.len() >= limit {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Stream entries (queued or running) plus retries waiting.
    pub async fn pending(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let (len, delayed): (u64, u64) = redis::pipe()
            .cmd("XLEN")
            .arg(STREAM)
            .cmd("ZCARD")
            .arg(DELAYED)
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(len + delayed)
    }
}

/// `[[entry-id, [field, value, ...]], ...]` → (entry id, call id); deleted entries
/// (nil fields) are skipped.
fn stream_entries(v: &Value) -> Vec<(String, String)> {
    let Value::Array(list) = v else {
        return Vec::new();
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    list.iter()
        .filter_map(|e| {
            let Value::Array(pair) = e else { return None };
            let entry = text(pair.first()?)?;
            let Value::Array(fields) = pair.get(1)? else {
                return None;
            };
            let id = fields
                .chunks(2)
                .find(|kv| text(&kv[0]).as_deref() == Some("id"))
                .and_then(|kv| kv.get(1).and_then(text))?;
            Some((entry, id))
        })
        .collect()
}

async fn create_group(conn: &mut ConnectionManager) -> Result<(), StoreError> {
    let created: Result<Value, _> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(STREAM)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() != Some("BUSYGROUP") => Err(err(e)),
        _ => Ok(()),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "edgefn".into())
}
