//! edgefn gateway library: everything but argument parsing lives here.
//!
//! Data flow: `catalog` discovers functions and parses their files, `snapshot` compiles
//! them (routes, auth policies, pools) into one immutable value behind `ArcSwap`,
//! `server` loads that value once per request and runs route → auth → limit → pool.

pub mod assets;
pub mod async_queue;
pub mod auth;
pub mod catalog;
pub mod check_table;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod edge;
pub mod error;
pub mod fn_catalog;
pub mod limits;
pub mod log_sink;
pub mod logging;
pub mod metrics;
pub mod net_class;
pub mod openapi;
pub mod openfaas;
pub mod pool;
pub mod reload;
pub mod request_id;
pub mod respond;
pub mod router;
pub mod schedule;
pub mod server;
pub mod snapshot;
pub mod xdp;
