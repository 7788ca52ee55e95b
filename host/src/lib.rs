//! The `edgerec` command line and the on-prem host.
//!
//! | module | what |
//! |---|---|
//! | [`manifest`] | `spin.toml` (Spin manifest v2): parse raw, validate, route |
//! | [`runtime`] | wasmtime engine, component cache, per-request limits |
//! | [`kv`] | Spin's key-value interface on embedded redb stores |
//! | [`preinit`] | snapshots of components with their model already loaded (wasmtime-wizer) |
//! | [`server`] | `edgerec serve`: HTTP/1.1 → a fresh component instance per request |
//! | [`text_tasks`] | `edgerec eval-search`, `train-ads`, `eval-ads` |
//! | [`commands`] | `edgerec prepare` and `edgerec index` over `edgerec-core` |

pub mod commands;
pub mod kv;
pub mod manifest;
pub mod preinit;
pub mod runtime;
pub mod server;
pub mod text_tasks;
