//! The XDP program: for every frame, find a TCP SYN (without ACK) to one of the gateway's
//! ports, and decide per source address whether it may open a connection now. Everything
//! else — other protocols, other ports, SYN-ACKs, data, non-first fragments, frames too
//! short to parse — passes untouched, so the program can only ever refuse new connections.
//!
//! Order for a watched SYN: allow list (pass, no limit) → deny list (drop) → GCRA per source
//! in an LRU map (pass or drop). Settings come from a one-entry `ARRAY` the gateway rewrites
//! on reload; counters are per-CPU so the hot path takes no lock and no atomic.
//!
//! Every read goes through [`load`], which checks the bound right before the read, because
//! LLVM may otherwise merge checks the verifier needs to see per access.
#![no_std]
#![no_main]

use core::mem::size_of;

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_ktime_get_ns,
    macros::{map, xdp},
    maps::{lpm_trie::Key, Array, LpmTrie, LruHashMap, PerCpuArray},
    programs::XdpContext,
};
use gateway_common::{counter, gcra, SourceKey, XdpSettings, MAX_CIDRS, MAX_SOURCES};

#[map]
static EDGEFN_CONFIG: Array<XdpSettings> = Array::with_max_entries(1, 0);
#[map]
static EDGEFN_SOURCES: LruHashMap<SourceKey, u64> = LruHashMap::with_max_entries(MAX_SOURCES, 0);
#[map]
static EDGEFN_ALLOW_V4: LpmTrie<[u8; 4], u8> = LpmTrie::with_max_entries(MAX_CIDRS, 0);
#[map]
static EDGEFN_ALLOW_V6: LpmTrie<[u8; 16], u8> = LpmTrie::with_max_entries(MAX_CIDRS, 0);
#[map]
static EDGEFN_DENY_V4: LpmTrie<[u8; 4], u8> = LpmTrie::with_max_entries(MAX_CIDRS, 0);
#[map]
static EDGEFN_DENY_V6: LpmTrie<[u8; 16], u8> = LpmTrie::with_max_entries(MAX_CIDRS, 0);
#[map]
static EDGEFN_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;
/// IPv6 extension headers walked before giving up (and passing).
const MAX_EXT_HEADERS: usize = 6;
/// Transport offsets beyond this pass: keeps every offset bounded for the verifier.
const MAX_L4_OFFSET: usize = 512;

const PASS: u32 = xdp_action::XDP_PASS;
const DROP: u32 = xdp_action::XDP_DROP;

#[xdp]
pub fn edgefn_xdp(ctx: XdpContext) -> u32 {
    classify(&ctx).unwrap_or(PASS)
}

/// Reads a `T` at `off` bytes into the frame, or `None` when the frame is shorter.
#[inline(always)]
fn load<T: Copy>(ctx: &XdpContext, off: usize) -> Option<T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + size_of::<T>() > end {
        return None;
    }
    // SAFETY: the range [start+off, start+off+size) was just checked to lie in the frame.
    Some(unsafe { core::ptr::read_unaligned((start + off) as *const T) })
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

enum Source {
    V4([u8; 4]),
    V6([u8; 16]),
}

#[inline(always)]
fn classify(ctx: &XdpContext) -> Option<u32> {
    let cfg = EDGEFN_CONFIG.get(0)?;
    if cfg.port_count == 0 {
        return Some(PASS);
    }
    let mut proto = be16(load(ctx, 12)?);
    let mut off = ETH_HLEN;
    // Up to two VLAN tags (802.1Q inside 802.1AD, or either alone).
    if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
        proto = be16(load(ctx, off + 2)?);
        off += 4;
        if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
            proto = be16(load(ctx, off + 2)?);
            off += 4;
        }
    }
    match proto {
        ETH_P_IP => ipv4(ctx, off, cfg),
        ETH_P_IPV6 => ipv6(ctx, off, cfg),
        _ => Some(PASS),
    }
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, off: usize, cfg: &XdpSettings) -> Option<u32> {
    let vihl: u8 = load(ctx, off)?;
    let ihl = (vihl & 0x0f) as usize;
    if vihl >> 4 != 4 || ihl < 5 {
        return Some(PASS);
    }
    // Non-first fragments carry no TCP header: pass them (the first one is judged).
    let frag = be16(load(ctx, off + 6)?);
    if frag & 0x1fff != 0 {
        return Some(PASS);
    }
    let proto: u8 = load(ctx, off + 9)?;
    if proto != IPPROTO_TCP {
        return Some(PASS);
    }
    let src: [u8; 4] = load(ctx, off + 12)?;
    tcp(ctx, off + ihl * 4, cfg, Source::V4(src))
}

#[inline(always)]
fn ipv6(ctx: &XdpContext, off: usize, cfg: &XdpSettings) -> Option<u32> {
    let vtc: u8 = load(ctx, off)?;
    if vtc >> 4 != 6 {
        return Some(PASS);
    }
    let mut next: u8 = load(ctx, off + 6)?;
    let src: [u8; 16] = load(ctx, off + 8)?;
    let mut l4 = off + 40;
    let mut i = 0;
    while i < MAX_EXT_HEADERS {
        match next {
            IPPROTO_TCP => return tcp(ctx, l4, cfg, Source::V6(src)),
            // Hop-by-hop, routing, destination options: length in 8-octet units, minus one.
            0 | 43 | 60 => {
                let h: [u8; 2] = load(ctx, l4)?;
                next = h[0];
                l4 += (h[1] as usize + 1) * 8;
            }
            // Authentication header: length in 4-octet units, minus two.
            51 => {
                let h: [u8; 2] = load(ctx, l4)?;
                next = h[0];
                l4 += (h[1] as usize + 2) * 4;
            }
            // Fragment header: only the first fragment holds the TCP header.
            44 => {
                let h: [u8; 4] = load(ctx, l4)?;
                if be16([h[2], h[3]]) & 0xfff8 != 0 {
                    return Some(PASS);
                }
                next = h[0];
                l4 += 8;
            }
            _ => return Some(PASS),
        }
        if l4 > MAX_L4_OFFSET {
            return Some(PASS);
        }
        i += 1;
    }
    if next == IPPROTO_TCP {
        return tcp(ctx, l4, cfg, Source::V6(src));
    }
    Some(PASS)
}

#[inline(always)]
fn tcp(ctx: &XdpContext, l4: usize, cfg: &XdpSettings, src: Source) -> Option<u32> {
    if l4 > MAX_L4_OFFSET {
        return Some(PASS);
    }
    // The whole fixed header must be there: a frame cut inside it is not a SYN we judge.
    let th: [u8; 20] = load(ctx, l4)?;
    let dport = be16([th[2], th[3]]);
    let flags = th[13];
    if flags & (TCP_SYN | TCP_ACK) != TCP_SYN || !cfg.watches(dport) {
        return Some(PASS);
    }
    Some(decide(cfg, src))
}

#[inline(always)]
fn listed(src: &Source, v4: &LpmTrie<[u8; 4], u8>, v6: &LpmTrie<[u8; 16], u8>) -> bool {
    match src {
        Source::V4(a) => v4.get(Key::new(32, *a)).is_some(),
        Source::V6(a) => v6.get(Key::new(128, *a)).is_some(),
    }
}

#[inline(always)]
fn decide(cfg: &XdpSettings, src: Source) -> u32 {
    if cfg.has_allow != 0 && listed(&src, &EDGEFN_ALLOW_V4, &EDGEFN_ALLOW_V6) {
        return count(counter::ALLOWLISTED, PASS);
    }
    if cfg.has_deny != 0 && listed(&src, &EDGEFN_DENY_V4, &EDGEFN_DENY_V6) {
        return count(counter::DENYLISTED, DROP);
    }
    if cfg.interval_ns == 0 {
        return count(counter::PASS, PASS);
    }
    let key = match src {
        Source::V4(a) => SourceKey::v4(a),
        Source::V6(a) => SourceKey::v6(a),
    };
    // SAFETY: a helper without arguments or side effects.
    let now = unsafe { bpf_ktime_get_ns() };
    match EDGEFN_SOURCES.get_ptr_mut(key) {
        Some(slot) => {
            // SAFETY: the pointer comes from a successful map lookup and stays valid for this
            // program run. Two CPUs may race on one source; the worst case is one extra SYN.
            let tat = unsafe { *slot };
            match gcra(now, tat, cfg.interval_ns, cfg.tolerance_ns) {
                Some(next) => {
                    unsafe { *slot = next };
                    count(counter::PASS, PASS)
                }
                None => count(counter::DROP, DROP),
            }
        }
        None => {
            let next = gcra(now, 0, cfg.interval_ns, cfg.tolerance_ns).unwrap_or(now);
            // A full map evicts the least recently used source; a failed insert only means
            // this SYN is not remembered, so it still passes.
            let _ = EDGEFN_SOURCES.insert(key, next, 0);
            count(counter::PASS, PASS)
        }
    }
}

#[inline(always)]
fn count(index: u32, verdict: u32) -> u32 {
    if let Some(c) = EDGEFN_COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot from a successful lookup; no other CPU writes it.
        unsafe { *c += 1 };
    }
    verdict
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
