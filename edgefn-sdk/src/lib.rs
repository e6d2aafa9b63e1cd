//! The edgefn Rust SDK: a function author writes
//!
//! ```no_run
//! use edgefn_sdk::{Event, Response};
//!
//! fn handler(event: Event) -> Response {
//!     Response::text(format!("hello {}", event.query("name").unwrap_or("world")))
//! }
//!
//! fn main() {
//!     edgefn_sdk::run(handler)
//! }
//! ```
//!
//! and the gateway builds it into a worker binary (for a bare `handler.rs` the gateway writes
//! the `main` itself). [`run`] speaks the worker protocol v2 (runtimes/PROTOCOL.md): it connects
//! to the socket named on the command line, checks the init frame's version, then serves
//! requests on `concurrency` threads. Data flow: [`channel`] reads frames → [`serve`] tracks
//! each request (queued, running, abandoned) and runs the handler → [`Response`] is written
//! back as one frame. A handler cannot be interrupted, so a cancelled running request is
//! acknowledged when it returns, and its result is dropped.
#![forbid(unsafe_code)]

mod adapt;
mod base64;
mod channel;
mod event;
mod response;
mod serve;

pub use adapt::{FromEvent, IntoResponse};
pub use event::Event;
pub use response::Response;

/// The protocol version this SDK speaks.
pub const PROTOCOL_VERSION: u64 = 2;

/// Serves `handler` until the gateway closes the socket. Takes the process arguments
/// `<socket> <handler path> <concurrency>`; exits the process with status 1 when the gateway
/// speaks another protocol version or the arguments are wrong.
///
/// The handler is `fn(Event) -> Response`, or FastFN's
/// `fn(serde_json::Value) -> serde_json::Value` (see [`FromEvent`] and [`IntoResponse`]).
pub fn run<I, O, F>(handler: F) -> !
where
    I: FromEvent,
    O: IntoResponse,
    F: Fn(I) -> O + Send + Sync + 'static,
{
    let handler = move |event: Event| handler(I::from_event(event)).into_response();
    let args: Vec<String> = std::env::args().collect();
    let (socket, concurrency) = match &args[..] {
        [_, socket, _handler, concurrency, ..] => {
            (socket.clone(), concurrency.parse().unwrap_or(1))
        }
        [_, socket, ..] => (socket.clone(), 1),
        _ => {
            eprintln!("usage: {} <socket> <handler path> <concurrency>", args[0]);
            std::process::exit(2)
        }
    };
    let code = match serve::serve(&socket, concurrency, handler) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("edgefn worker: {e}");
            1
        }
    };
    std::process::exit(code)
}
