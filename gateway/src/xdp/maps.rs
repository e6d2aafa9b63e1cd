//! Map contents: turns an `[xdp]` section into the settings entry and the allow/deny tries,
//! and reads the per-CPU counters and the size of the source table back out. Updates happen
//! in place on the live maps, so a reload changes limits without re-attaching.

use std::collections::BTreeSet;

use aya::maps::lpm_trie::Key;
use aya::maps::{LpmTrie, MapData, MapError};
use gateway_common::{counter, map_names, XdpSettings};
use ipnet::IpNet;

use super::loader::{XdpError, XdpProgram};
use crate::config::xdp::XdpConfig;

/// Totals across CPUs, indexed like [`counter::LABELS`].
pub type Counters = [u64; counter::COUNT as usize];

/// The settings entry for `cfg` watching `ports`.
pub fn settings(cfg: &XdpConfig, ports: &[u16]) -> XdpSettings {
    let mut s = XdpSettings::new(cfg.new_connections_per_second, cfg.burst, ports);
    s.has_allow = u32::from(!cfg.allow.is_empty());
    s.has_deny = u32::from(!cfg.deny.is_empty());
    s
}

fn map_err(name: &'static str) -> impl Fn(MapError) -> XdpError {
    move |source| XdpError::Map { name, source }
}

/// Makes one trie hold exactly `want` (prefix length, network-order address): new entries are
/// inserted before stale ones are removed, so a reload never opens a gap in the list.
fn sync_trie<const N: usize>(
    trie: &mut LpmTrie<MapData, [u8; N], u8>,
    want: &Entries<N>,
    name: &'static str,
) -> Result<(), XdpError> {
    for (len, addr) in want {
        trie.insert(&Key::new(*len, *addr), 1, 0)
            .map_err(map_err(name))?;
    }
    let mut stale = Vec::new();
    for key in trie.keys() {
        let key = key.map_err(map_err(name))?;
        if !want.contains(&(key.prefix_len(), key.data())) {
            stale.push(key);
        }
    }
    for key in stale {
        trie.remove(&key).map_err(map_err(name))?;
    }
    Ok(())
}

/// Wanted trie entries: (prefix length, network-order address).
type Entries<const N: usize> = BTreeSet<(u32, [u8; N])>;

fn split(nets: &[IpNet]) -> (Entries<4>, Entries<16>) {
    let mut v4 = BTreeSet::new();
    let mut v6 = BTreeSet::new();
    for net in nets.iter().map(IpNet::trunc) {
        match net {
            IpNet::V4(n) => v4.insert((u32::from(n.prefix_len()), n.addr().octets())),
            IpNet::V6(n) => v6.insert((u32::from(n.prefix_len()), n.addr().octets())),
        };
    }
    (v4, v6)
}

impl XdpProgram {
    /// Writes `cfg` into the live maps: lists first, then the settings entry that turns the
    /// lists on, so the program never consults a half-written list.
    pub fn configure(&mut self, cfg: &XdpConfig, ports: &[u16]) -> Result<(), XdpError> {
        let (allow4, allow6) = split(&cfg.allow);
        let (deny4, deny6) = split(&cfg.deny);
        let m = &mut self.maps;
        sync_trie(&mut m.allow_v4, &allow4, map_names::ALLOW_V4)?;
        sync_trie(&mut m.allow_v6, &allow6, map_names::ALLOW_V6)?;
        sync_trie(&mut m.deny_v4, &deny4, map_names::DENY_V4)?;
        sync_trie(&mut m.deny_v6, &deny6, map_names::DENY_V6)?;
        m.config
            .set(0, settings(cfg, ports), 0)
            .map_err(map_err(map_names::CONFIG))
    }

    /// Per-action totals summed over CPUs.
    pub fn counters(&self) -> Result<Counters, XdpError> {
        let mut out = [0u64; counter::COUNT as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            let per_cpu = self
                .maps
                .counters
                .get(&(i as u32), 0)
                .map_err(map_err(map_names::COUNTERS))?;
            *slot = per_cpu.iter().sum();
        }
        Ok(out)
    }

    /// Number of source addresses in the LRU table (one syscall per entry: call it at
    /// metrics cadence, not per packet).
    pub fn tracked_sources(&self) -> usize {
        self.maps.sources.keys().filter(Result::is_ok).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_truncates_host_bits_and_separates_families() {
        let nets: Vec<IpNet> = ["10.1.2.3/8", "192.0.2.7/32", "fd00:203::9/64"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let (v4, v6) = split(&nets);
        assert!(v4.contains(&(8, [10, 0, 0, 0])));
        assert!(v4.contains(&(32, [192, 0, 2, 7])));
        let mut want6 = [0u8; 16];
        want6[..4].copy_from_slice(&[0xfd, 0, 0x02, 0x03]);
        assert!(v6.contains(&(64, want6)));
    }

    #[test]
    fn settings_flag_lists() {
        let cfg = XdpConfig {
            new_connections_per_second: 10,
            burst: 20,
            deny: vec!["10.0.0.0/8".parse().unwrap()],
            ..XdpConfig::default()
        };
        let s = settings(&cfg, &[8080]);
        assert_eq!((s.has_allow, s.has_deny, s.port_count), (0, 1, 1));
        assert_eq!(s.interval_ns, 100_000_000);
        assert_eq!(s.tolerance_ns, 19 * 100_000_000);
    }
}
