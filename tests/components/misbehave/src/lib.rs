//! A test-only component that misbehaves on purpose, to prove that one bad
//! request costs the host one 500/503 and nothing more.
//!
//! `GET .../ok` answers 200; `.../trap` panics (a wasm trap); `.../loop` spins
//! forever (stopped by the host's deadline); `.../oom` allocates until the
//! host's memory limit stops it.

use spin_sdk::http::{IncomingRequest, Response};

/// `#[http_component]` generates `unsafe` C-ABI glue; the `allow` covers it alone.
#[allow(unsafe_code)]
mod entry {
    #[spin_sdk::http_component]
    fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
        super::handle(req)
    }
}

fn handle(req: IncomingRequest) -> Response {
    let path = req.path_with_query().unwrap_or_default();
    // Mounted under any route prefix: act on the last path segment.
    match path.rsplit('/').next().unwrap_or_default() {
        "trap" => panic!("misbehave: trapping on purpose"),
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "oom" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 16 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        _ => Response::builder().status(200).body("ok").build(),
    }
}
