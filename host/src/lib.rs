//! The edgerec host: serves the Spin components of a `spin.toml` on
//! wasmtime, on-prem, with the host capabilities our functions use.
//!
//! | module | what |
//! |---|---|
//! | [`config`] | [`config::Zone`] and the host's settings (file, environment, flags), validated once |
//! | [`manifest`] | `spin.toml` (Spin manifest v2): parse raw, validate, route |
//! | [`capability`] | what a component gets, one module each: [`capability::files`], [`capability::outbound_http`], [`capability::key_value`], [`capability::limits`] |
//! | [`runtime`] | the one wasmtime engine (pooling, copy-on-write images, epochs), the linker, the capabilities |
//! | [`cache`] | compiled components, snapshots and file digests on disk |
//! | [`preinit`] | snapshots of components with their model already loaded (wasmtime-wizer) |
//! | [`function`] | loading one component: verify, compile or take from the cache, pre-initialize, pre-instantiate |
//! | [`registry`] | the served functions behind an atomic swap; reload while serving |
//! | [`server`] | HTTP/1.1 → a fresh instance per request; errors as JSON in one place |
//! | [`private`] | the private zone: its routes, tokens and scopes, `user_id` → history, placement on an edge |
//! | [`users`] | the user store: pseudonyms and sealed events on SQLite or PostgreSQL |
//! | [`metrics`] | Prometheus metrics of requests, models and feedback |
//!
//! How a request flows: [`server::Server::handle`] takes the registry's
//! current app, finds the route's [`function::Function`], asks every
//! capability for its part of a new instance's state
//! ([`capability::Capabilities::store`]), instantiates the pre-instantiated
//! component (its memory a copy-on-write image, for a pre-initialized
//! function with the model already loaded) and calls
//! `wasi:http/incoming-handler`; the component answers through `wasi:http`,
//! reading its key-value store through [`capability::key_value`] if granted.

pub mod cache;
pub mod capability;
pub mod config;
pub mod function;
pub mod lifecycle;
pub mod manifest;
pub mod metrics;
pub mod preinit;
pub mod private;
pub mod registry;
pub mod runtime;
pub mod server;
pub mod users;
