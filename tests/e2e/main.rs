//! End-to-end tests, driven as a user would: built components, served by the
//! edgerec host on a free port, called over real HTTP.
//!
//! Run with `scripts/test` (it builds the components, fetches the encoder
//! and indexes the demo data first).

mod bundle;
mod encoder;
mod isolation;
mod learn;
mod manifest;
mod prepare;
mod recommend;

use std::sync::OnceLock;

use edgerec_host::server::HostConfig;
use edgerec_tests::{Host, repo};

/// One host for the real `spin.toml`, shared by the tests that only read.
fn demo_host() -> Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    *HOST.get_or_init(|| Host::start(&repo().join("spin.toml"), &HostConfig::default()))
}
