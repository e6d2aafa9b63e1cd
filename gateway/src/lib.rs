//! edgefn gateway library: everything but argument parsing lives here.
//!
//! Data flow: `catalog` discovers functions and parses their files, `snapshot` compiles
//! them (routes, auth policies, pools) into one immutable value behind `ArcSwap`,
//! `server` loads that value once per request and runs route → auth → limit → pool.

pub mod auth;
pub mod catalog;
pub mod config;
pub mod limits;
pub mod metrics;
pub mod pool;
pub mod xdp;
