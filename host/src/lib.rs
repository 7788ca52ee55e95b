//! The `edgerec` command line and the on-prem host.
//!
//! | module | what |
//! |---|---|
//! | [`manifest`] | `spin.toml` (Spin manifest v2): parse raw, validate, route |
//! | [`runtime`] | wasmtime engine, component cache, per-request limits |
//! | [`server`] | `edgerec serve`: HTTP/1.1 → a fresh component instance per request |
//! | [`commands`] | `edgerec prepare` and `edgerec index` over `edgerec-core` |

pub mod commands;
pub mod manifest;
pub mod runtime;
pub mod server;
