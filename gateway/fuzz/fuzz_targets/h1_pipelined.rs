//! The HTTP/1 front with many requests pipelined in one buffer (`server/front_check.rs`):
//! the input, repeated up to 64 times, is fed to a real front in one read and again in
//! reads and writes of a few bytes (the 32 KiB output bound and the backlog at work);
//! both runs must give the same answers in the same order and hand hyper the same bytes.
#![no_main]

use std::sync::{Arc, OnceLock};

use gateway::server::front_check;
use gateway::server::pipeline::State;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static STATE: OnceLock<Arc<State>> = OnceLock::new();
    let state = STATE.get_or_init(front_check::empty_state);
    front_check::pipelined(state, data);
});
