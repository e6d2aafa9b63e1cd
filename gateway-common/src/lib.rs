//! Map layouts and rate arithmetic shared by the XDP program (`gateway-ebpf`, no_std,
//! bpfel) and the gateway (loader and user-space fallback). Everything here is plain data:
//! `#[repr(C)]` so both sides agree byte for byte, integer-only so the verifier accepts it.
#![no_std]
#![deny(unsafe_code)]

/// Name of the XDP program in the object file.
pub const PROGRAM_NAME: &str = "edgefn_xdp";

/// Map names, as declared in `gateway-ebpf` and looked up by the loader.
pub mod map_names {
    pub const CONFIG: &str = "EDGEFN_CONFIG";
    pub const SOURCES: &str = "EDGEFN_SOURCES";
    pub const ALLOW_V4: &str = "EDGEFN_ALLOW_V4";
    pub const ALLOW_V6: &str = "EDGEFN_ALLOW_V6";
    pub const DENY_V4: &str = "EDGEFN_DENY_V4";
    pub const DENY_V6: &str = "EDGEFN_DENY_V6";
    pub const COUNTERS: &str = "EDGEFN_COUNTERS";
}

/// Capacity of the per-source state map; LRU evicts the coldest source beyond it, so memory
/// stays bounded under a spoofed-source flood.
pub const MAX_SOURCES: u32 = 65_536;
/// Capacity of each allow/deny trie.
pub const MAX_CIDRS: u32 = 4_096;
/// Destination ports the program watches (the gateway's public listeners).
pub const MAX_PORTS: usize = 8;

/// Indices into the per-CPU counter array; also the `action` label values.
pub mod counter {
    /// A SYN to a watched port that was let through by the rate limit.
    pub const PASS: u32 = 0;
    /// A SYN dropped because its source was over the limit.
    pub const DROP: u32 = 1;
    /// A SYN let through because its source is on the allow list (no limit applied).
    pub const ALLOWLISTED: u32 = 2;
    /// A SYN dropped because its source is on the deny list.
    pub const DENYLISTED: u32 = 3;
    pub const COUNT: u32 = 4;
    /// Label values, indexed like the counters.
    pub const LABELS: [&str; COUNT as usize] = ["pass", "drop", "allowlisted", "denylisted"];
}

/// The single entry of the config `ARRAY`; the gateway rewrites it on reload and the program
/// reads it per packet, so limits change without re-attaching.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XdpSettings {
    /// Nanoseconds between admitted connections per source (`1e9 / rate`); 0 = no limit.
    pub interval_ns: u64,
    /// How far ahead of `now` a source's theoretical arrival time may run before SYNs are
    /// dropped: `(burst - 1) * interval_ns`.
    pub tolerance_ns: u64,
    /// Number of valid entries in `ports`.
    pub port_count: u32,
    /// Non-zero when the allow tries hold at least one entry (skips the lookups otherwise).
    pub has_allow: u32,
    /// Non-zero when the deny tries hold at least one entry.
    pub has_deny: u32,
    pub _pad: u32,
    /// Watched destination ports in host byte order.
    pub ports: [u16; MAX_PORTS],
}

impl XdpSettings {
    /// Builds the settings from the `[xdp]` numbers: `rate` new connections per second per
    /// source, `burst` back-to-back connections from an idle source (at least 1).
    pub fn new(rate: u32, burst: u32, ports: &[u16]) -> XdpSettings {
        let (interval_ns, tolerance_ns) = limits(rate, burst);
        let mut s = XdpSettings {
            interval_ns,
            tolerance_ns,
            ..XdpSettings::default()
        };
        for (slot, p) in s.ports.iter_mut().zip(ports.iter()) {
            *slot = *p;
            s.port_count += 1;
        }
        s
    }

    /// True when `port` (host order) is one the gateway listens on.
    #[inline(always)]
    pub fn watches(&self, port: u16) -> bool {
        let mut i = 0;
        while i < MAX_PORTS {
            if (i as u32) < self.port_count && self.ports[i] == port {
                return true;
            }
            i += 1;
        }
        false
    }
}

/// `(interval_ns, tolerance_ns)` for a rate and burst; `(0, 0)` when `rate` is 0 (no limit).
pub fn limits(rate: u32, burst: u32) -> (u64, u64) {
    if rate == 0 {
        return (0, 0);
    }
    let interval = 1_000_000_000u64 / rate as u64;
    let interval = if interval == 0 { 1 } else { interval };
    let extra = burst.max(1) as u64 - 1;
    (interval, extra.saturating_mul(interval))
}

/// One GCRA step for a source. `tat` is its theoretical arrival time (0 for a new source).
/// Returns the new `tat` when the connection is admitted, `None` when it must be dropped.
/// Integer nanoseconds, unsigned and saturating: no floats (the verifier has none) and no
/// overflow panic on the host.
#[inline(always)]
pub fn gcra(now: u64, tat: u64, interval_ns: u64, tolerance_ns: u64) -> Option<u64> {
    if now.saturating_add(tolerance_ns) < tat {
        return None;
    }
    let base = if tat > now { tat } else { now };
    Some(base.saturating_add(interval_ns))
}

/// Key of the per-source map: the source address, IPv4 as v4-mapped IPv6
/// (`::ffff:a.b.c.d`), so one map serves both families.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SourceKey {
    pub addr: [u8; 16],
}

impl SourceKey {
    #[inline(always)]
    pub fn v4(octets: [u8; 4]) -> SourceKey {
        let mut addr = [0u8; 16];
        addr[10] = 0xff;
        addr[11] = 0xff;
        addr[12] = octets[0];
        addr[13] = octets[1];
        addr[14] = octets[2];
        addr[15] = octets[3];
        SourceKey { addr }
    }

    #[inline(always)]
    pub fn v6(octets: [u8; 16]) -> SourceKey {
        SourceKey { addr: octets }
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: both are `#[repr(C)]`, made only of integers and integer arrays, with explicit
    // padding fields, so every bit pattern is valid and there are no hidden padding bytes.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::XdpSettings {}
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::SourceKey {}
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn limits_from_rate_and_burst() {
        assert_eq!(limits(0, 10), (0, 0));
        assert_eq!(limits(10, 1), (S / 10, 0));
        assert_eq!(limits(10, 0), (S / 10, 0), "burst 0 means 1");
        assert_eq!(limits(10, 5), (S / 10, 4 * S / 10));
        assert_eq!(limits(u32::MAX, u32::MAX).0, 1);
    }

    #[test]
    fn burst_then_rate() {
        let (iv, tol) = limits(10, 3);
        let now = 5 * S;
        let mut tat = 0;
        for i in 0..3 {
            tat = gcra(now, tat, iv, tol).unwrap_or_else(|| panic!("burst conn {i}"));
        }
        assert_eq!(
            gcra(now, tat, iv, tol),
            None,
            "4th at once is over the burst"
        );
        // One interval later exactly one more fits.
        let later = now + iv;
        tat = gcra(later, tat, iv, tol).expect("refilled one");
        assert_eq!(gcra(later, tat, iv, tol), None);
        // After a long idle period the source is back to a full burst.
        let idle = later + 10 * S;
        for _ in 0..3 {
            tat = gcra(idle, tat, iv, tol).expect("full burst after idle");
        }
        assert_eq!(gcra(idle, tat, iv, tol), None);
    }

    #[test]
    fn dropped_attempts_do_not_push_tat() {
        let (iv, tol) = limits(1, 1);
        let tat = gcra(S, 0, iv, tol).unwrap();
        for _ in 0..1000 {
            assert_eq!(gcra(S, tat, iv, tol), None);
        }
        assert!(gcra(2 * S, tat, iv, tol).is_some());
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        assert_eq!(gcra(u64::MAX, 0, u64::MAX, u64::MAX), Some(u64::MAX));
        assert_eq!(gcra(0, u64::MAX, 1, 0), None);
        assert_eq!(gcra(u64::MAX - 1, u64::MAX, 5, 0), None);
        assert_eq!(gcra(u64::MAX, u64::MAX, 5, 0), Some(u64::MAX));
    }

    #[test]
    fn settings_watch_ports() {
        let s = XdpSettings::new(5, 2, &[8080, 8443]);
        assert!(s.watches(8080) && s.watches(8443));
        assert!(!s.watches(0) && !s.watches(80));
        let many: [u16; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let s = XdpSettings::new(5, 2, &many);
        assert_eq!(s.port_count, MAX_PORTS as u32);
        assert!(s.watches(8) && !s.watches(9));
    }

    #[test]
    fn v4_keys_are_v4_mapped() {
        let k = SourceKey::v4([10, 203, 0, 2]);
        let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 203, 0, 2];
        assert_eq!(k.addr, mapped);
    }
}
