//! OpenFaaS compatibility: the `/function/` and `/async-function/` route prefixes (resolved
//! in `routes` before the normal route lookup, so both routes share every policy), the
//! OpenFaaS headers on answers (`headers`), and `edgefn import openfaas` (`import`).

pub mod accept;
pub mod headers;
pub mod import;
pub mod routes;
pub mod secrets;
