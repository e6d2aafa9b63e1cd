//! Logged-out session ids, kept until the session would have expired, so a copy of the
//! cookie taken before logout is refused afterwards. Per node and bounded: past
//! [`MAX_ENTRIES`] expired ids are swept, and if still full the id with the nearest expiry
//! is dropped. Multi-node: each node only knows the logouts it served; a deployment with
//! several nodes keeps sessions short (`session_ttl`) so a replay elsewhere is bounded by
//! it, or pins a browser to a node.

use std::sync::Mutex;

use std::collections::HashMap;

pub const MAX_ENTRIES: usize = 100_000;

/// The process's one set: session ids are random, so every OIDC policy shares it, and it
/// outlives reloads (a reload must not bring a logged-out cookie back).
pub fn global() -> &'static Revoked {
    static GLOBAL: std::sync::OnceLock<Revoked> = std::sync::OnceLock::new();
    GLOBAL.get_or_init(Revoked::default)
}

#[derive(Debug, Default)]
pub struct Revoked {
    ids: Mutex<HashMap<String, u64>>,
}

impl Revoked {
    pub fn revoke(&self, sid: &str, until_unix: u64, now_unix: u64) {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        if ids.len() >= MAX_ENTRIES {
            ids.retain(|_, exp| *exp > now_unix);
        }
        if ids.len() >= MAX_ENTRIES {
            if let Some(k) = ids.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone()) {
                ids.remove(&k);
            }
        }
        ids.insert(sid.to_owned(), until_unix);
    }

    pub fn is_revoked(&self, sid: &str, now_unix: u64) -> bool {
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.get(sid).is_some_and(|exp| *exp > now_unix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_until_expiry() {
        let r = Revoked::default();
        r.revoke("a", 100, 10);
        assert!(r.is_revoked("a", 50));
        assert!(!r.is_revoked("a", 100));
        assert!(!r.is_revoked("b", 50));
    }
}
