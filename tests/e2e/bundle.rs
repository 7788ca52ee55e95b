//! Model bundles are checked where they enter service: a tampered file
//! keeps the host from starting, and the error names the file.

use edgerec_core::bundle::{ITEMS_FILE, Manifest};
use edgerec_host::config::HostConfig;
use edgerec_host::server::Server;
use edgerec_tests::{component, demo_bundle, require};

#[test]
fn demo_bundle_verifies() {
    require!(demo_bundle());
    let m = Manifest::verify(&demo_bundle()).unwrap();
    assert_eq!((m.name.as_str(), m.version.as_str()), ("online-retail", "2"));
    assert_eq!(m.encoder.name, "all-MiniLM-L6-v2", "the model the host serves as `all-minilm-l6-v2`");
    assert_eq!((m.encoder.dims, m.dims), (384, 128), "text embeddings projected by the trained item tower");
    for file in ["user_tower.bin", "item_tower.bin", "metrics.json"] {
        assert!(m.files.contains_key(file), "the trained bundle lists {file}");
    }
    assert!(m.metrics["valid_recall@20"].as_f64().unwrap() > 0.0);
    assert!(m.items > 3000, "the sample sells thousands of products, got {}", m.items);
}

#[test]
fn host_refuses_a_tampered_bundle_naming_the_file() {
    require!(component("recommend"), demo_bundle());
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("models/shop/1");
    std::fs::create_dir_all(&bundle).unwrap();
    for entry in std::fs::read_dir(demo_bundle()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, bundle.join(path.file_name().unwrap())).unwrap();
    }
    let mut items = std::fs::read(bundle.join(ITEMS_FILE)).unwrap();
    items[100] ^= 0x01;
    std::fs::write(bundle.join(ITEMS_FILE), items).unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"r\"\n\
             [component.r]\nsource = \"{}\"\nfiles = [{{ source = \"models/shop/1\", destination = \"/bundle\" }}]\n",
            component("recommend").display()
        ),
    )
    .unwrap();
    let err = Server::new(&manifest, HostConfig::defaults(&manifest)).err().expect("host refuses to start");
    let msg = format!("{err:#}");
    assert!(msg.contains("`items.bin`") && msg.contains("checksum"), "{msg}");
}
