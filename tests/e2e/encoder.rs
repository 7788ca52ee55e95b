//! Our tract encoder against an ONNX Runtime reference: 50 catalog titles,
//! cosine ≥ 0.99 each. The reference embeddings were produced by
//! `scripts/make-parity-fixture` (onnxruntime + the Python tokenizers
//! package) and are stored in `tests/fixtures/parity.json`.

use edgerec_core::encoder::{TextEncoder, TractEncoder};
use edgerec_core::score::dot;
use edgerec_tests::{encoder_dir, repo, require};

#[derive(serde::Deserialize)]
struct Fixture {
    encoder: String,
    onnx_sha256: String,
    titles: Vec<String>,
    embeddings: Vec<Vec<f32>>,
}

#[test]
fn tract_matches_onnx_runtime_on_50_titles() {
    require!(encoder_dir());
    let fixture: Fixture =
        serde_json::from_str(&std::fs::read_to_string(repo().join("tests/fixtures/parity.json")).unwrap()).unwrap();
    assert_eq!(fixture.titles.len(), 50);
    let encoder = TractEncoder::load(&encoder_dir()).unwrap();
    assert_eq!(encoder.config().name, fixture.encoder);
    assert_eq!(encoder.config().weights_sha256, fixture.onnx_sha256, "fixture made with this model file");

    let titles: Vec<&str> = fixture.titles.iter().map(String::as_str).collect();
    // In batches (padded) and one by one: both must match the reference.
    let batched = encoder.encode_batch(&titles).unwrap();
    let mut worst = 1f32;
    for (i, reference) in fixture.embeddings.iter().enumerate() {
        let single = encoder.encode(titles[i]).unwrap();
        for ours in [&batched[i], &single] {
            let norm = dot(reference, reference).sqrt() * dot(ours, ours).sqrt();
            let cosine = dot(reference, ours) / norm;
            worst = worst.min(cosine);
            assert!(cosine >= 0.99, "title {i} `{}`: cosine {cosine}", titles[i]);
        }
    }
    eprintln!("parity: worst cosine {worst:.6} over 50 titles");
}
