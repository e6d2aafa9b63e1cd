//! Program tests for the XDP object embedded in the gateway: crafted frames run through
//! BPF_PROG_TEST_RUN (aya's `TestRun`), no interface involved. Each test loads its own
//! copy of the program, so maps (sources, lists, counters) start empty.
//!
//! Needs root (CAP_BPF). If the object is missing or the kernel refuses it, the test FAILS
//! with the reason: a gateway that silently lost its XDP layer must not pass CI.

use gateway::config::xdp::XdpConfig;
use gateway::xdp::loader::{XDP_DROP, XDP_PASS};
use gateway::xdp::XdpProgram;

const PORT: u16 = 8080;
const SRC4: [u8; 4] = [10, 203, 0, 2];
const OTHER4: [u8; 4] = [10, 203, 0, 3];
const DST4: [u8; 4] = [10, 203, 0, 1];
const SRC6: [u8; 16] = [0xfd, 0, 0x02, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const OTHER6: [u8; 16] = [0xfd, 0, 0x02, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];
const DST6: [u8; 16] = [0xfd, 0, 0x02, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const RST: u8 = 0x04;

fn cfg(rate: u32, burst: u32) -> XdpConfig {
    XdpConfig {
        enabled: true,
        new_connections_per_second: rate,
        burst,
        ..XdpConfig::default()
    }
}

/// Loads and configures a fresh program; panics with the reason if it cannot.
fn program(cfg: &XdpConfig) -> XdpProgram {
    let mut p = XdpProgram::load().unwrap_or_else(|e| {
        panic!("the XDP program must load for these tests (run as root, build with the eBPF toolchain): {e}")
    });
    p.configure(cfg, &[PORT]).expect("configure maps");
    p
}

fn run(p: &mut XdpProgram, frame: &[u8]) -> u32 {
    p.test_run(frame).expect("BPF_PROG_TEST_RUN")
}

fn counters(p: &XdpProgram) -> [u64; 4] {
    p.counters().expect("read counters")
}

// ---- frame builders -------------------------------------------------------------------

fn tcp(dport: u16, flags: u8) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
    t
}

fn eth(ethertype: u16, vlans: &[u16]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for tpid in vlans {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&100u16.to_be_bytes()); // VLAN id 100
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// IPv4 with `options` 4-byte words of options and the given flags/fragment-offset field.
fn ipv4(src: [u8; 4], proto: u8, frag: u16, options: usize, payload: &[u8]) -> Vec<u8> {
    let ihl = 5 + options;
    let mut h = vec![0u8; ihl * 4];
    h[0] = 0x40 | ihl as u8;
    h[2..4].copy_from_slice(&((ihl * 4 + payload.len()) as u16).to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&DST4);
    // Options that would look like a SYN to another port if IHL were ignored (NOPs).
    for b in &mut h[20..] {
        *b = 1;
    }
    h.extend_from_slice(payload);
    h
}

/// IPv6 with a chain of extension headers `(type, bytes)` before `payload`.
fn ipv6(src: [u8; 16], exts: &[(u8, Vec<u8>)], last: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (_, bytes)) in exts.iter().enumerate() {
        let mut b = bytes.clone();
        b[0] = exts.get(i + 1).map(|e| e.0).unwrap_or(last);
        body.extend_from_slice(&b);
    }
    body.extend_from_slice(payload);
    let mut h = vec![0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(body.len() as u16).to_be_bytes());
    h[6] = exts.first().map(|e| e.0).unwrap_or(last);
    h[7] = 64;
    h[8..24].copy_from_slice(&src);
    h[24..40].copy_from_slice(&DST6);
    h.extend_from_slice(&body);
    h
}

fn syn4(src: [u8; 4]) -> Vec<u8> {
    [eth(0x0800, &[]), ipv4(src, 6, 0, 0, &tcp(PORT, SYN))].concat()
}

fn syn6(src: [u8; 16]) -> Vec<u8> {
    [eth(0x86dd, &[]), ipv6(src, &[], 6, &tcp(PORT, SYN))].concat()
}

/// Options-style extension header of `units` 8-octet units.
fn ext_opts(units: usize) -> Vec<u8> {
    let mut b = vec![0u8; units * 8];
    b[1] = (units - 1) as u8;
    b
}

fn ext_frag(offset_units: u16, more: bool) -> Vec<u8> {
    let mut b = vec![0u8; 8];
    let field = (offset_units << 3) | u16::from(more);
    b[2..4].copy_from_slice(&field.to_be_bytes());
    b
}

/// Drives `frame` from `src` past its burst: `burst` passes, then drops.
fn assert_burst_then_drop(p: &mut XdpProgram, frame: &[u8], burst: usize) {
    for i in 0..burst {
        assert_eq!(run(p, frame), XDP_PASS, "SYN {i} is within the burst");
    }
    for i in 0..5 {
        assert_eq!(run(p, frame), XDP_DROP, "SYN {i} over the limit is dropped");
    }
}

// ---- tests ----------------------------------------------------------------------------

#[test]
fn ipv4_syn_under_and_over_the_limit() {
    let mut p = program(&cfg(1, 3));
    assert_burst_then_drop(&mut p, &syn4(SRC4), 3);
    assert_eq!(
        counters(&p),
        [3, 5, 0, 0],
        "pass, drop, allowlisted, denylisted"
    );
    assert_eq!(
        run(&mut p, &syn4(OTHER4)),
        XDP_PASS,
        "another source has its own bucket"
    );
    assert_eq!(p.tracked_sources(), 2);
}

#[test]
fn ipv6_syn_under_and_over_the_limit() {
    let mut p = program(&cfg(1, 2));
    assert_burst_then_drop(&mut p, &syn6(SRC6), 2);
    assert_eq!(run(&mut p, &syn6(OTHER6)), XDP_PASS);
    assert_eq!(counters(&p), [3, 5, 0, 0]);
}

#[test]
fn syn_ack_data_and_rst_pass_even_over_the_limit() {
    let mut p = program(&cfg(1, 1));
    assert_burst_then_drop(&mut p, &syn4(SRC4), 1);
    let before = counters(&p);
    for flags in [SYN | ACK, ACK, PSH | ACK, RST, RST | ACK, 0] {
        let f4 = [eth(0x0800, &[]), ipv4(SRC4, 6, 0, 0, &tcp(PORT, flags))].concat();
        let f6 = [eth(0x86dd, &[]), ipv6(SRC6, &[], 6, &tcp(PORT, flags))].concat();
        for _ in 0..3 {
            assert_eq!(run(&mut p, &f4), XDP_PASS, "v4 flags {flags:#x}");
            assert_eq!(run(&mut p, &f6), XDP_PASS, "v6 flags {flags:#x}");
        }
    }
    assert_eq!(counters(&p), before, "non-SYN packets are not counted");
}

#[test]
fn other_ports_protocols_and_ethertypes_pass() {
    let mut p = program(&cfg(1, 1));
    let other_port = [eth(0x0800, &[]), ipv4(SRC4, 6, 0, 0, &tcp(22, SYN))].concat();
    let udp = [eth(0x0800, &[]), ipv4(SRC4, 17, 0, 0, &tcp(PORT, SYN))].concat();
    let arp = [eth(0x0806, &[]), vec![0u8; 28]].concat();
    let v6_other_port = [eth(0x86dd, &[]), ipv6(SRC6, &[], 6, &tcp(443, SYN))].concat();
    for _ in 0..5 {
        for f in [&other_port, &udp, &arp, &v6_other_port] {
            assert_eq!(run(&mut p, f), XDP_PASS);
        }
    }
    assert_eq!(counters(&p), [0, 0, 0, 0]);
}

#[test]
fn vlan_tagged_syns_are_judged() {
    for tags in [&[0x8100u16][..], &[0x88a8, 0x8100], &[0x8100, 0x8100]] {
        let mut p = program(&cfg(1, 2));
        let f4 = [eth(0x0800, tags), ipv4(SRC4, 6, 0, 0, &tcp(PORT, SYN))].concat();
        assert_burst_then_drop(&mut p, &f4, 2);
        let f6 = [eth(0x86dd, tags), ipv6(SRC6, &[], 6, &tcp(PORT, SYN))].concat();
        assert_burst_then_drop(&mut p, &f6, 2);
    }
    // A third tag is beyond what the program walks: the frame passes untouched.
    let mut p = program(&cfg(1, 1));
    let f = [
        eth(0x0800, &[0x88a8, 0x8100, 0x8100]),
        ipv4(SRC4, 6, 0, 0, &tcp(PORT, SYN)),
    ]
    .concat();
    for _ in 0..5 {
        assert_eq!(run(&mut p, &f), XDP_PASS);
    }
}

#[test]
fn ipv4_options_honour_ihl() {
    for options in [1usize, 3, 10] {
        let mut p = program(&cfg(1, 1));
        let f = [eth(0x0800, &[]), ipv4(SRC4, 6, 0, options, &tcp(PORT, SYN))].concat();
        assert_burst_then_drop(&mut p, &f, 1);
    }
    // IHL below 5 is malformed: pass.
    let mut p = program(&cfg(1, 1));
    let mut f = syn4(SRC4);
    f[14] = 0x44;
    for _ in 0..3 {
        assert_eq!(run(&mut p, &f), XDP_PASS);
    }
}

#[test]
fn ipv4_fragments() {
    let mut p = program(&cfg(1, 1));
    // A first fragment (MF set, offset 0) carries the TCP header: judged.
    let first = [eth(0x0800, &[]), ipv4(SRC4, 6, 0x2000, 0, &tcp(PORT, SYN))].concat();
    assert_burst_then_drop(&mut p, &first, 1);
    // Non-first fragments carry payload that merely looks like a SYN: pass.
    for frag in [0x2001u16, 0x0010, 0x1fff] {
        let f = [eth(0x0800, &[]), ipv4(SRC4, 6, frag, 0, &tcp(PORT, SYN))].concat();
        assert_eq!(run(&mut p, &f), XDP_PASS, "fragment field {frag:#x}");
    }
}

#[test]
fn ipv6_extension_headers_and_fragments() {
    let mut p = program(&cfg(1, 1));
    // Hop-by-hop (0), destination options (60), routing (43), then TCP: judged.
    let exts = vec![(0u8, ext_opts(1)), (60, ext_opts(2)), (43, ext_opts(1))];
    let f = [eth(0x86dd, &[]), ipv6(SRC6, &exts, 6, &tcp(PORT, SYN))].concat();
    assert_burst_then_drop(&mut p, &f, 1);

    let mut p = program(&cfg(1, 1));
    // First fragment: judged.
    let first = vec![(44u8, ext_frag(0, true))];
    let f = [eth(0x86dd, &[]), ipv6(SRC6, &first, 6, &tcp(PORT, SYN))].concat();
    assert_burst_then_drop(&mut p, &f, 1);
    // Later fragment: passes.
    let later = vec![(44u8, ext_frag(3, false))];
    let f = [eth(0x86dd, &[]), ipv6(SRC6, &later, 6, &tcp(PORT, SYN))].concat();
    assert_eq!(run(&mut p, &f), XDP_PASS);
    // A chain longer than the bounded walk: passes.
    let long: Vec<(u8, Vec<u8>)> = (0..8).map(|_| (60u8, ext_opts(1))).collect();
    let f = [eth(0x86dd, &[]), ipv6(SRC6, &long, 6, &tcp(PORT, SYN))].concat();
    assert_eq!(run(&mut p, &f), XDP_PASS);
    // No next header (59): passes.
    let f = [eth(0x86dd, &[]), ipv6(SRC6, &[], 59, &tcp(PORT, SYN))].concat();
    assert_eq!(run(&mut p, &f), XDP_PASS);
}

#[test]
fn truncated_frames_pass() {
    // Burst 1 and an exhausted source (one per frame): a SYN parsed in full would be
    // dropped, so any DROP below means a truncated frame was read as a SYN.
    let mut p = program(&cfg(1, 1));
    let exts = vec![(0u8, ext_opts(1)), (44, ext_frag(0, true))];
    let frames = [
        syn4(SRC4),
        [
            eth(0x0800, &[0x88a8, 0x8100]),
            ipv4(OTHER4, 6, 0, 2, &tcp(PORT, SYN)),
        ]
        .concat(),
        syn6(SRC6),
        [
            eth(0x86dd, &[0x8100]),
            ipv6(OTHER6, &exts, 6, &tcp(PORT, SYN)),
        ]
        .concat(),
    ];
    for full in &frames {
        assert_eq!(run(&mut p, full), XDP_PASS);
        assert_eq!(
            run(&mut p, full),
            XDP_DROP,
            "the full frame is over the limit"
        );
        // The kernel refuses test frames shorter than an Ethernet header.
        for len in 14..full.len() {
            assert_eq!(
                run(&mut p, &full[..len]),
                XDP_PASS,
                "frame truncated to {len} of {} bytes",
                full.len()
            );
        }
    }
}

#[test]
fn deny_drops_every_syn_and_allow_bypasses_the_limit() {
    let mut c = cfg(1, 1);
    c.deny = vec![
        "10.203.0.0/30".parse().unwrap(),
        "fd00:203::2/128".parse().unwrap(),
    ];
    c.allow = vec![
        "10.203.0.3/32".parse().unwrap(),
        "fd00:203::/126".parse().unwrap(),
    ];
    let mut p = program(&c);
    for _ in 0..4 {
        assert_eq!(run(&mut p, &syn4(SRC4)), XDP_DROP, "10.203.0.2 is denied");
        assert_eq!(
            run(&mut p, &syn4(OTHER4)),
            XDP_PASS,
            "10.203.0.3 is allowed"
        );
        // fd00:203::2 is in both lists: allow wins (an exception carved out of a denial).
        assert_eq!(run(&mut p, &syn6(SRC6)), XDP_PASS);
    }
    let denied_v6 = [0xfd, 0, 0x02, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
    assert_eq!(
        run(&mut p, &syn6(denied_v6)),
        XDP_PASS,
        "not in the /128 deny"
    );
    assert_eq!(
        run(&mut p, &syn6(denied_v6)),
        XDP_DROP,
        "but still rate limited"
    );
    let non_syn = [eth(0x0800, &[]), ipv4(SRC4, 6, 0, 0, &tcp(PORT, ACK))].concat();
    assert_eq!(
        run(&mut p, &non_syn),
        XDP_PASS,
        "deny applies to new connections only"
    );
    assert_eq!(counters(&p), [1, 1, 8, 4]);
}

#[test]
fn reconfigure_updates_limits_and_lists_in_place() {
    let mut c = cfg(1, 1);
    let mut p = program(&c);
    assert_burst_then_drop(&mut p, &syn4(SRC4), 1);
    // Remove the limit: the same (still loaded) program now passes.
    c.new_connections_per_second = 0;
    p.configure(&c, &[PORT]).unwrap();
    assert_eq!(run(&mut p, &syn4(SRC4)), XDP_PASS);
    // Deny it, then lift the denial again.
    c.deny = vec!["10.203.0.2/32".parse().unwrap()];
    p.configure(&c, &[PORT]).unwrap();
    assert_eq!(run(&mut p, &syn4(SRC4)), XDP_DROP);
    c.deny.clear();
    p.configure(&c, &[PORT]).unwrap();
    assert_eq!(run(&mut p, &syn4(SRC4)), XDP_PASS);
    // Watch a different port only.
    p.configure(&cfg(1, 1), &[9999]).unwrap();
    for _ in 0..3 {
        assert_eq!(run(&mut p, &syn4(OTHER4)), XDP_PASS);
    }
}

#[test]
fn program_cost_per_packet_is_small() {
    // Over-limit SYN (the flood case), a non-SYN on a watched port, an unwatched port.
    let mut p = program(&cfg(1, 1));
    let syn = syn4(SRC4);
    assert_eq!(run(&mut p, &syn), XDP_PASS);
    let ack = [eth(0x0800, &[]), ipv4(SRC4, 6, 0, 0, &tcp(PORT, ACK))].concat();
    let other = [eth(0x0800, &[]), ipv4(SRC4, 6, 0, 0, &tcp(22, SYN))].concat();
    for (what, frame, want) in [
        ("dropped SYN", &syn, XDP_DROP),
        ("ACK", &ack, XDP_PASS),
        ("SYN to another port", &other, XDP_PASS),
    ] {
        let (action, per_run) = p.test_run_repeat(frame, 100_000).expect("test run");
        assert_eq!(action, want, "{what}");
        eprintln!("xdp program, {what}: {} ns per run", per_run.as_nanos());
        // Generous bound for a loaded CI machine; the point is "no runaway loop".
        assert!(per_run.as_micros() < 20, "{what} took {per_run:?} per run");
    }
    assert_eq!(
        counters(&p)[1],
        100_000,
        "every repeated SYN was counted as a drop"
    );
}
