//! `tls-load ADDR [--connections N] [--duration S] [--group x25519|p256]
//! [--provider aws-lc|ring] [--request PATH] [--server-name NAME] [--verify-signature]`:
//! full TLS 1.3 handshakes against one server, a new TCP connection for each, from `N`
//! closed-loop connections on one thread (the `tls-handshake` scenario pins it to the load
//! core). Prints one JSON line. The client's crypto is aws-lc-rs by default (its X25519 is
//! the cheaper one); the server's is whatever it uses.
//!
//! Why not `openssl s_time -new`: each s_time client does as much work per handshake as
//! the server (it verifies the signature, and OpenSSL's client is not cheap), so eight of
//! them on one load core were the ceiling, not the server. Here the client does the least
//! a real handshake needs (`client.rs`): no chain check, no signature check unless asked.
//!
//! A connection counts once the server has shown it finished its side: without
//! `--request` the client sends `close_notify` after its `Finished` and reads until the
//! server closes (the server's session tickets arrive first); with `--request PATH` it
//! sends one `GET PATH` with `Connection: close` and reads the whole answer. The socket
//! is then reset (zero linger), so no TIME_WAIT piles up on the load side. Every handshake
//! is checked to be a full one (rustls' `handshake_kind`); a resumed one would be counted
//! apart, and cannot happen with no session store.

mod client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::HandshakeKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use client::{Group, Provider};

struct Args {
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    group: Group,
    provider: Provider,
    request: Option<String>,
    server_name: ServerName<'static>,
    check_signature: bool,
}

fn usage(why: &str) -> ! {
    eprintln!("tls-load: {why}");
    eprintln!(
        "usage: tls-load ADDR [--connections N] [--duration S] [--group x25519|p256] \
         [--provider aws-lc|ring] [--request PATH] [--server-name NAME] [--verify-signature]"
    );
    std::process::exit(2);
}

fn bad<T>(flag: &str, value: &str) -> T {
    usage(&format!("{flag}: bad value {value}"))
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let addr = it.next().unwrap_or_else(|| usage("no address"));
    let addr = addr
        .parse()
        .unwrap_or_else(|_| usage(&format!("not an address: {addr}")));
    let mut args = Args {
        addr,
        connections: 64,
        duration: Duration::from_secs(10),
        group: Group::X25519,
        provider: Provider::AwsLc,
        request: None,
        server_name: ServerName::try_from("localhost").expect("a valid name"),
        check_signature: false,
    };
    while let Some(flag) = it.next() {
        if flag == "--verify-signature" {
            args.check_signature = true;
            continue;
        }
        let value = it
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--connections" => {
                args.connections = value.parse().unwrap_or_else(|_| bad(&flag, &value))
            }
            "--duration" => {
                let s: f64 = value.parse().unwrap_or_else(|_| bad(&flag, &value));
                args.duration = Duration::from_secs_f64(s);
            }
            "--group" => args.group = Group::parse(&value).unwrap_or_else(|| bad(&flag, &value)),
            "--provider" => {
                args.provider = Provider::parse(&value).unwrap_or_else(|| bad(&flag, &value))
            }
            "--request" => args.request = Some(value),
            "--server-name" => {
                args.server_name =
                    ServerName::try_from(value.clone()).unwrap_or_else(|_| bad(&flag, &value))
            }
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    if args.connections == 0 {
        usage("--connections must be at least 1");
    }
    args
}

/// What one closed-loop connection slot did.
#[derive(Default)]
struct Tally {
    full: u64,
    retried: u64,
    resumed: u64,
    errors: u64,
    first_error: Option<String>,
    /// Status codes of the answers in `--request` mode.
    statuses: Vec<(u16, u64)>,
    /// Microseconds from connect to done, per completed connection.
    micros: Vec<u32>,
}

impl Tally {
    fn status(&mut self, code: u16, count: u64) {
        match self.statuses.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += count,
            None => self.statuses.push((code, count)),
        }
    }
}

struct Setup {
    args: Args,
    connector: TlsConnector,
    request: Option<Vec<u8>>,
}

/// One connection: connect, full handshake, then the close or the request; the
/// handshake's kind and, with a request, the answer's status.
async fn once(s: &Setup) -> std::io::Result<(HandshakeKind, Option<u16>)> {
    let tcp = TcpStream::connect(s.args.addr).await?;
    tcp.set_nodelay(true)?;
    let mut tls = s.connector.connect(s.args.server_name.clone(), tcp).await?;
    let kind = tls
        .get_ref()
        .1
        .handshake_kind()
        .ok_or_else(|| std::io::Error::other("handshake finished without a kind"))?;
    match &s.request {
        Some(req) => tls.write_all(req).await?,
        None => tls.shutdown().await?,
    }
    let mut answer = Vec::new();
    match tls.read_to_end(&mut answer).await {
        Ok(_) => {}
        // The server closed without its own close_notify: the end all the same.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(e),
    }
    let status = match s.request {
        None => None,
        Some(_) => Some(status_of(&answer).ok_or_else(|| {
            std::io::Error::other(format!(
                "no HTTP/1.1 answer: {:?}",
                String::from_utf8_lossy(&answer[..answer.len().min(80)])
            ))
        })?),
    };
    tls.get_ref().0.set_zero_linger()?;
    Ok((kind, status))
}

fn status_of(answer: &[u8]) -> Option<u16> {
    let rest = answer.strip_prefix(b"HTTP/1.1 ")?;
    std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()
}

/// A run of failures this long with no success stops the slot (the server is gone).
const GIVE_UP_AFTER: u32 = 1000;

async fn slot(s: Arc<Setup>, deadline: Instant) -> Tally {
    let mut t = Tally::default();
    let mut failing = 0;
    while Instant::now() < deadline {
        let start = Instant::now();
        match once(&s).await {
            Ok((kind, status)) => {
                failing = 0;
                match kind {
                    HandshakeKind::Full => t.full += 1,
                    HandshakeKind::FullWithHelloRetryRequest => t.retried += 1,
                    HandshakeKind::Resumed => t.resumed += 1,
                }
                if let Some(code) = status {
                    t.status(code, 1);
                }
                let us = start.elapsed().as_micros();
                t.micros.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            Err(e) => {
                t.errors += 1;
                t.first_error.get_or_insert_with(|| e.to_string());
                failing += 1;
                if failing >= GIVE_UP_AFTER {
                    break;
                }
            }
        }
    }
    t
}

fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() {
    let args = parse_args();
    let request = args.request.as_ref().map(|path| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            args.server_name.to_str()
        )
        .into_bytes()
    });
    let connector = TlsConnector::from(client::config(
        args.provider,
        args.group,
        args.check_signature,
    ));
    let setup = Arc::new(Setup {
        args,
        connector,
        request,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();
    let deadline = started + setup.args.duration;
    let tallies = rt.block_on(async {
        let tasks: Vec<_> = (0..setup.args.connections)
            .map(|_| tokio::spawn(slot(setup.clone(), deadline)))
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await.expect("a load task panicked"));
        }
        out
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut all = Tally::default();
    for t in tallies {
        all.full += t.full;
        all.retried += t.retried;
        all.resumed += t.resumed;
        all.errors += t.errors;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
        for (code, n) in t.statuses {
            all.status(code, n);
        }
        all.micros.extend(t.micros);
    }
    all.micros.sort_unstable();
    let done = all.full + all.retried + all.resumed;
    let statuses: Vec<String> = all
        .statuses
        .iter()
        .map(|(c, n)| format!("\"{c}\":{n}"))
        .collect();
    let a = &setup.args;
    println!(
        "{{\"handshakes\":{done},\"seconds\":{seconds:.3},\"rate\":{:.1},\"full\":{},\
         \"full_with_retry\":{},\"resumed\":{},\"errors\":{},\"first_error\":{},\
         \"statuses\":{{{}}},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"connections\":{},\
         \"group\":\"{}\",\"provider\":\"{}\",\"mode\":\"{}\",\"verify_signature\":{}}}",
        done as f64 / seconds,
        all.full,
        all.retried,
        all.resumed,
        all.errors,
        all.first_error.as_deref().map_or("null".into(), json_str),
        statuses.join(","),
        percentile_ms(&all.micros, 0.5),
        percentile_ms(&all.micros, 0.99),
        a.connections,
        a.group.name(),
        a.provider.name(),
        if a.request.is_some() {
            "request"
        } else {
            "handshake"
        },
        a.check_signature,
    );
}
