//! End to end: the real `edgefn` binary with its public listener on one end of a veth
//! pair, clients in a network namespace of this test on the other end. One client address
//! floods connection attempts, another makes polite requests. With XDP (skb mode) the
//! flood's SYNs are dropped before a socket exists; with `enabled = false` the user-space
//! limiter refuses them after accept. Either way the polite client is fully served.
//!
//! Needs root (netns, veth, XDP). Addresses are 10.203.<n>.0/24 and fd00:203:<n>::/64 on
//! interfaces this test creates; a Drop guard deletes them even when an assertion fails. Never skips.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use support::{client, metric_in, repo_root, tempdir, wait_until, write_tree, Gateway};

/// A namespace plus a veth pair: `host` side in the root namespace with `<net>.1` and
/// `<net6>:1`, `peer` side in the namespace with `.2`/`:2` (flooder) and `.3`/`:3` (polite
/// client); `net6` is fd00:203:<n>::/64.
struct Netns {
    ns: String,
    host: String,
    net: String,
    net6: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    fn create(tag: u32) -> Netns {
        let id = std::process::id() % 10_000;
        let n = (std::process::id() * 2 + tag) % 250 + 1;
        let t = Netns {
            ns: format!("edgefn-xdp-{id}-{tag}"),
            host: format!("efx{id}h{tag}"),
            net: format!("10.203.{n}"),
            net6: format!("fd00:203:{n:x}:"),
        };
        let peer = format!("efx{id}p{tag}");
        let (ns, host, net, net6) = (&t.ns, &t.host, &t.net, &t.net6);
        // nodad: the IPv6 addresses are usable at once, no duplicate-detection wait.
        let steps = [
            format!("netns add {ns}"),
            format!("link add {host} type veth peer name {peer}"),
            format!("link set {peer} netns {ns}"),
            format!("addr add {net}.1/24 dev {host}"),
            format!("addr add {net6}:1/64 dev {host} nodad"),
            format!("link set {host} up"),
        ];
        let in_ns = [
            format!("addr add {net}.2/24 dev {peer}"),
            format!("addr add {net}.3/24 dev {peer}"),
            format!("addr add {net6}:2/64 dev {peer} nodad"),
            format!("addr add {net6}:3/64 dev {peer} nodad"),
            format!("link set {peer} up"),
            "link set lo up".to_owned(),
        ];
        for s in &steps {
            let a: Vec<&str> = s.split_whitespace().collect();
            ip(&a).unwrap_or_else(|e| panic!("network setup failed (root needed): {e}"));
        }
        for s in &in_ns {
            let mut a: Vec<&str> = vec!["netns", "exec", ns, "ip"];
            a.extend(s.split_whitespace());
            ip(&a).unwrap_or_else(|e| panic!("network setup failed: {e}"));
        }
        t
    }

    /// `connflood.py flood` from `src` to `dst:port` for `duration` seconds (+ `extra` flags).
    fn flood(&self, src: &str, dst: &str, port: &str, duration: &str, extra: &[&str]) -> Value {
        let mut rest = vec!["--duration", duration];
        rest.extend_from_slice(extra);
        self.connflood("flood", src, dst, port, &rest)
    }

    /// `connflood.py polite`: `count` requests from `src`, `interval` seconds apart.
    fn polite(&self, src: &str, dst: &str, port: &str, count: &str, interval: &str) -> Value {
        let rest = ["--count", count, "--interval", interval];
        self.connflood("polite", src, dst, port, &rest)
    }

    /// Runs `connflood.py <mode>` inside the namespace and returns its JSON report.
    fn connflood(&self, mode: &str, src: &str, dst: &str, port: &str, rest: &[&str]) -> Value {
        let mut args = vec![mode, "--src", src, "--dst", dst, "--port", port];
        args.extend_from_slice(rest);
        let script = repo_root().join("bench/tools/connflood.py");
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "python3"])
            .arg(script)
            .args(&args)
            .output()
            .expect("run connflood.py");
        assert!(
            out.status.success(),
            "connflood {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "connflood output {:?}: {e}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting one end removes the pair; deleting the namespace frees its addresses.
        let _ = ip(&["link", "del", &self.host]);
        let _ = ip(&["netns", "del", &self.ns]);
    }
}

/// One series (`name{labels}`), 0 when not exported yet; a failed scrape fails the test
/// (`Gateway::metrics`).
fn metric(gw: &Gateway, series: &str) -> f64 {
    gw.metric(series).unwrap_or(0.0)
}

/// The gateway's address (`.1`), the flooder's (`.2`) and the polite client's (`.3`).
fn addrs(net: &Netns, v6: bool) -> [String; 3] {
    if v6 {
        [1, 2, 3].map(|i| format!("{}:{i}", net.net6))
    } else {
        [1, 2, 3].map(|i| format!("{}.{i}", net.net))
    }
}

/// How a test starts edgefn: where it listens and the `[xdp]` table of its `edgefn.toml`.
struct XdpStart<'a> {
    /// Runs edgefn through this, e.g. `setpriv …`.
    wrapper: &'a [&'a str],
    listen: String,
    interface: &'a str,
    enabled: bool,
    mode: &'a str,
    /// Both `new_connections_per_second` and `burst`.
    rate: u32,
    /// With the `hello` function; else the tree has none.
    hello: bool,
}

impl<'a> XdpStart<'a> {
    /// On the namespace's gateway address (`.1`), XDP in skb mode on its host side at 20
    /// new connections a second, serving `hello`.
    fn on(net: &'a Netns, v6: bool) -> XdpStart<'a> {
        let [gateway, _, _] = addrs(net, v6);
        XdpStart {
            wrapper: &[],
            listen: if v6 {
                format!("[{gateway}]:0")
            } else {
                format!("{gateway}:0")
            },
            interface: &net.host,
            enabled: true,
            mode: "skb",
            rate: 20,
            hello: true,
        }
    }

    /// On loopback, XDP in driver mode on `interface` at 1 new connection a second, no
    /// function.
    fn loopback(interface: &'a str) -> XdpStart<'a> {
        XdpStart {
            wrapper: &[],
            listen: "127.0.0.1:0".into(),
            interface,
            enabled: true,
            mode: "driver",
            rate: 1,
            hello: false,
        }
    }

    /// Writes the tree (`edgefn.toml`, `functions/`) and starts edgefn on it.
    fn start(self) -> (Gateway, tempfile::TempDir) {
        let dir = tempdir();
        let XdpStart {
            wrapper,
            listen,
            interface,
            enabled,
            mode,
            rate,
            hello,
        } = self;
        let config = format!(
            "[xdp]\nenabled = {enabled}\ninterface = \"{interface}\"\nmode = \"{mode}\"\n\
             new_connections_per_second = {rate}\nburst = {rate}\n"
        );
        let function = if hello {
            (
                "functions/hello/handler.py",
                "def handler(event):\n    return {\"status\": 200, \"body\": \"hi\"}\n",
            )
        } else {
            ("functions/.keep", "")
        };
        write_tree(dir.path(), &[function, ("edgefn.toml", &config)]);
        let config = dir.path().join("edgefn.toml");
        let functions = dir.path().join("functions");
        let args = [
            "--config",
            config.to_str().unwrap(),
            "--functions",
            functions.to_str().unwrap(),
        ];
        let gw = Gateway::try_start_wrapped(wrapper, &listen, &args, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        (gw, dir)
    }
}

/// Floods from `<net>.2` while `<net>.3` makes 15 polite requests; returns the flood report.
fn flood_and_polite(net: &Netns, gw: &Gateway, v6: bool) -> Value {
    let port = gw.public.port().to_string();
    let [dst, flood_src, polite_src] = addrs(net, v6);
    std::thread::scope(|s| {
        let flood = s.spawn(|| net.flood(&flood_src, &dst, &port, "3", &[]));
        let polite = net.polite(&polite_src, &dst, &port, "15", "0.15");
        let statuses: Vec<u64> = polite["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert!(
            statuses.iter().all(|s| *s == 200),
            "the polite address must be fully served during the flood: {statuses:?}\n{}",
            gw.logs()
        );
        flood.join().unwrap()
    })
}

#[test]
fn xdp_drops_a_connection_flood_and_serves_a_polite_client() {
    xdp_flood(0, false, "skb");
}

/// veth has native XDP: this one runs in driver mode.
#[test]
fn xdp_drops_an_ipv6_connection_flood_and_serves_a_polite_client() {
    xdp_flood(2, true, "driver");
}

fn xdp_flood(tag: u32, v6: bool, mode: &str) {
    let net = Netns::create(tag);
    let (gw, _dir) = XdpStart {
        mode,
        ..XdpStart::on(&net, v6)
    }
    .start();
    let layer = format!("xdp ({mode} mode on {})", net.host);
    let ready = gw.connection_limit();
    assert!(
        ready.contains(&layer),
        "XDP must attach (no skipping): /readyz says {ready}\n{}",
        gw.logs()
    );

    let report = flood_and_polite(&net, &gw, v6);
    let attempts = report["attempts"].as_f64().unwrap();
    assert!(
        attempts > 1000.0,
        "the flood is too small to judge: {report}"
    );

    let drop = r#"edgefn_xdp_packets_total{action="drop"}"#;
    let pass = r#"edgefn_xdp_packets_total{action="pass"}"#;
    // Every flood SYN (plus the polite ones) is counted once the poller has caught up.
    let seen = wait_until(Duration::from_secs(10), || {
        metric(&gw, drop) + metric(&gw, pass) >= attempts
    });
    let (dropped, passed) = (metric(&gw, drop), metric(&gw, pass));
    eprintln!("xdp (v6 {v6}): flood {report}; dropped {dropped}, passed {passed}");
    assert!(
        seen,
        "XDP saw {dropped} drops + {passed} passes of {attempts} attempts"
    );
    assert!(
        dropped >= 0.9 * attempts,
        "most of the flood must be dropped at XDP: {dropped} of {attempts} ({report})"
    );
    // Passed: the flood's burst and refill (≈ 20 + 20/s × 3 s) and the polite client.
    assert!(passed < 200.0, "too many SYNs passed: {passed} ({report})");
    // Connection refusals at XDP are exactly its drops plus deny-list hits (one scrape, one
    // poller snapshot).
    let text = gw.metrics();
    let read = |series: &str| metric_in(&text, series).unwrap_or(0.0);
    assert_eq!(
        read(r#"edgefn_rate_limited_total{function="_connection",layer="xdp"}"#),
        read(drop) + read(r#"edgefn_xdp_packets_total{action="denylisted"}"#)
    );
    // The source table is walked every few polls: wait for the next walk.
    assert!(wait_until(Duration::from_secs(15), || {
        metric(&gw, "edgefn_xdp_tracked_sources") >= 2.0
    }));

    // A clean stop detaches the program from the interface.
    assert!(xdp_attached(&net.host), "attached while running");
    let mut gw = gw;
    gw.signal("TERM");
    assert!(
        gw.wait_exit(Duration::from_secs(15)).is_some(),
        "edgefn stops"
    );
    assert!(gw.logs().contains("XDP program detached"), "{}", gw.logs());
    assert!(
        !xdp_attached(&net.host),
        "no XDP program left on {}",
        net.host
    );
}

/// Whether `ip link` shows an XDP program on `dev`.
fn xdp_attached(dev: &str) -> bool {
    xdp_prog_id(dev).is_some()
}

/// The id of the XDP program attached to `dev` (`prog/xdp… id N` in `ip -d link`).
fn xdp_prog_id(dev: &str) -> Option<u64> {
    let out = Command::new("ip")
        .args(["-d", "link", "show", "dev", dev])
        .output()
        .expect("ip link show");
    let text = String::from_utf8_lossy(&out.stdout);
    let after = &text[text.find("prog/xdp")?..];
    let mut words = after.split_whitespace().skip_while(|w| *w != "id");
    words.nth(1)?.parse().ok()
}

#[test]
fn reload_updates_the_xdp_deny_list_without_reattaching() {
    let net = Netns::create(3);
    let (gw, dir) = XdpStart::on(&net, false).start();
    let [dst, _, polite_src] = addrs(&net, false);
    let port = gw.public.port().to_string();
    let denied = r#"edgefn_xdp_packets_total{action="denylisted"}"#;
    assert_eq!(
        net.polite(&polite_src, &dst, &port, "1", "0")["statuses"][0],
        200
    );
    let prog = xdp_prog_id(&net.host).expect("XDP attached at start");

    // Deny the polite address: the next reload rewrites the trie in the live program.
    let config = dir.path().join("edgefn.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}deny = [\"{polite_src}/32\"]\n")).unwrap();
    gw.signal("HUP");
    assert!(
        gw.wait_log_count("XDP limits updated", 2, Duration::from_secs(10)),
        "{}",
        gw.logs()
    );
    // Its SYNs are now dropped at XDP; flood briefly from it and watch the counter.
    let report = net.flood(&polite_src, &dst, &port, "0.5", &["--inflight", "16"]);
    assert_eq!(
        report["connected"], 0,
        "denied: no handshake completes ({report})"
    );
    assert!(
        wait_until(Duration::from_secs(5), || metric(&gw, denied) >= 16.0),
        "denylisted counter: {}",
        metric(&gw, denied)
    );
    assert_eq!(
        xdp_prog_id(&net.host),
        Some(prog),
        "the same program stays attached: the reload only rewrote its maps"
    );
}

#[test]
fn user_space_fallback_limits_a_connection_flood_when_xdp_is_disabled() {
    let net = Netns::create(1);
    let (gw, _dir) = XdpStart {
        enabled: false,
        ..XdpStart::on(&net, false)
    }
    .start();
    let ready = gw.connection_limit();
    assert!(
        ready.contains("user-space (xdp.enabled = false)"),
        "{ready}"
    );

    let report = flood_and_polite(&net, &gw, false);
    let connected = report["connected"].as_f64().unwrap();
    assert!(
        connected > 500.0,
        "the flood is too small to judge: {report}"
    );
    let refused = r#"edgefn_rate_limited_total{function="_connection",layer="user_space"}"#;
    // Handshakes complete in the kernel; the gateway refuses them as it accepts them.
    let limited = wait_until(Duration::from_secs(10), || {
        metric(&gw, refused) >= 0.8 * connected
    });
    eprintln!(
        "user space: flood {report}; refused {}",
        metric(&gw, refused)
    );
    assert!(
        limited,
        "the user-space limiter refused {} of {connected} connections ({report})",
        metric(&gw, refused)
    );
    assert_eq!(
        metric(&gw, r#"edgefn_xdp_packets_total{action="drop"}"#),
        0.0,
        "no XDP program is involved"
    );
    assert!(metric(&gw, "edgefn_xdp_tracked_sources") >= 2.0);
}

#[test]
fn without_privilege_xdp_falls_back_to_user_space_and_says_why() {
    // Root without any capability: the kernel refuses to create the maps.
    let (gw, _dir) = XdpStart {
        wrapper: &["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"],
        ..XdpStart::loopback("lo")
    }
    .start();
    let ready = gw.connection_limit();
    assert!(
        ready.contains("user-space (cannot load the XDP object")
            && ready.contains("needs root, or CAP_BPF + CAP_NET_ADMIN"),
        "the fallback must name its reason: {ready}"
    );
}

#[test]
fn unattachable_xdp_falls_back_to_user_space_and_says_why() {
    let (gw, _dir) = XdpStart::loopback("efx-missing0").start();
    let ready = gw.connection_limit();
    assert!(
        ready.contains("user-space (cannot attach XDP to efx-missing0"),
        "the fallback must name its reason: {ready}"
    );
    assert!(gw
        .logs()
        .contains("XDP unavailable, using the user-space limiter"));
    // The fallback enforces the same limit: burst 1, so the second connection is refused.
    let url = gw.url("/_fn/health");
    let first = client().get(&url).send().map(|r| r.status().as_u16());
    assert_eq!(first.ok(), Some(200));
    let second = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .get(&url)
        .send();
    assert!(second.is_err(), "over the limit the connection is closed");
    let refused = r#"edgefn_rate_limited_total{function="_connection",layer="user_space"}"#;
    assert!(wait_until(Duration::from_secs(5), || metric(&gw, refused) >= 1.0));
}

/// A bridge has no native XDP: `mode = "driver"` warns and attaches in skb mode.
#[test]
fn driver_mode_falls_back_to_skb_with_a_warning() {
    struct Bridge(String);
    impl Drop for Bridge {
        fn drop(&mut self) {
            let _ = ip(&["link", "del", &self.0]);
        }
    }
    let bridge = Bridge(format!("efx{}br", std::process::id() % 10_000));
    ip(&["link", "add", &bridge.0, "type", "bridge"]).unwrap_or_else(|e| panic!("{e}"));
    let (gw, _dir) = XdpStart::loopback(&bridge.0).start();
    let ready = gw.connection_limit();
    assert!(
        ready.contains(&format!("xdp (skb mode on {})", bridge.0)),
        "{ready}\n{}",
        gw.logs()
    );
    assert!(gw.logs().contains("falling back to skb (generic) mode"));
    assert!(xdp_attached(&bridge.0));
}
