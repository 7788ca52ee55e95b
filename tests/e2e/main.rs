//! End-to-end tests, driven as a user would: built components, served by the
//! edgerec host on a free port, called over real HTTP.
//!
//! Run with `scripts/test` (it builds the components, fetches the encoder
//! and indexes the demo data first).

mod bundle;
mod encoder;
mod functions;
mod isolation;
mod learn;
mod lifecycle;
mod manifest;
mod models;
mod prepare;
mod private;
mod recommend;
mod registry;

use std::sync::OnceLock;

use edgerec_host::config::Settings;
use edgerec_tests::{Host, repo};

/// One host for the real `spin.toml`, shared by the tests. Its key-value
/// store lives in a directory of this test run, not in the repository's
/// `.edgerec/kv` (a demo server may hold that one).
fn demo_host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    static KV: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOST.get_or_init(|| {
        let kv = KV.get_or_init(|| tempfile::tempdir().expect("temp dir"));
        let settings = Settings { kv_dir: Some(kv.path().to_path_buf()), ..Default::default() };
        Host::start(&repo().join("spin.toml"), &settings)
    })
}
