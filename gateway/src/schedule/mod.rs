//! FastFN's `schedule`: the gateway invokes a function on time. `config` compiles the key
//! at load, `cron` answers "when next", `plan` decides per tick which schedules are due
//! (pure: never two runs of one schedule at once, missed ticks skipped), and `runner`
//! is the thin driver that reads the current snapshot, dispatches to the function's pool
//! and records metrics and log lines.

pub mod config;
pub mod cron;
pub mod keep_warm;
pub mod plan;
mod runner;

pub use config::Schedule;
pub use runner::spawn;
