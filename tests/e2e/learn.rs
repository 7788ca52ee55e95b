//! The learning loop from the command line, as a new shop would run it:
//! its own CSV and a mapping file → prepare → split → train → eval, and the
//! recommend function serving the trained towers. Then every shared data
//! set with interactions goes through the ingest.

use std::path::Path;
use std::process::Command;

use edgerec_core::coldstart::NewItems;
use edgerec_core::crowd::Crowd;
use edgerec_core::data::mapped::prepare_amazon;
use edgerec_core::data::recbole::prepare_recbole;
use edgerec_core::data::split::leave_one_out;
use edgerec_core::index::ItemIndex;
use edgerec_core::recommend::{Model, RecommendQuery, recommend_with_new};
use edgerec_core::tower::UserTower;
use edgerec_host::config::Settings;
use edgerec_tests::{Host, ai_models_dir, available_or, component, edgerec_bin, encoder_dir, require, shared_data};
use serde_json::json;

const WORDS: [&str; 10] = ["mug", "kettle", "candle", "lamp", "cushion", "vase", "clock", "frame", "basket", "tray"];
const COLOURS: [&str; 6] = ["red", "blue", "green", "white", "black", "pink"];

/// A small shop with a learnable habit: who buys product `p` comes back for
/// `(p + 7) % 60`, which the titles do not reveal (so the test trains ID
/// embeddings; text alone cannot learn an arbitrary pairing). Ids are `SKU-<p>`; the
/// log has the header a mapping must name, plus broken rows.
fn write_shop(dir: &Path) {
    let mut products = String::from("sku;name;category\n");
    for p in 0..60 {
        products +=
            &format!("SKU-{p};{} {};{}\n", COLOURS[p % 6], WORDS[p / 6], if p % 2 == 0 { "home" } else { "kitchen" });
    }
    std::fs::write(dir.join("products.csv"), products.replace(';', ",")).unwrap();
    let mut orders = String::from("order_time,customer,sku,action,qty\n");
    let mut state = 12345u64;
    let mut next = |m: u64| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    for u in 0..300 {
        let mut day = next(20);
        let start = next(60);
        for k in 0..8 {
            day += 1 + next(5);
            orders += &format!("2024-01-01T00:00:00Z+{day},c{u},SKU-{},purchase,1\n", (start + 7 * k) % 60);
        }
    }
    // Real timestamps: replace the day offsets.
    let orders: String = orders
        .lines()
        .map(|l| match l.split_once("Z+") {
            Some((_, rest)) => {
                let (day, tail) = rest.split_once(',').unwrap();
                let t = 1_704_067_200 + day.parse::<i64>().unwrap() * 86_400;
                format!("{t},{tail}\n")
            }
            None => format!("{l}\n"),
        })
        .collect();
    let broken = "not-a-time,c1,SKU-1,purchase,1\n1704067200,,SKU-1,purchase,1\n1704067200,c1,SKU-1,view,1\n";
    std::fs::write(dir.join("orders.csv"), orders + broken).unwrap();
    std::fs::write(
        dir.join("mapping.toml"),
        r#"user = "customer"
item = "sku"
time = "order_time"
event = "action"
keep_events = ["purchase"]
quantity = "qty"

[catalog]
path = "products.csv"
item = "sku"
title = "name"
text = ["name", "category"]
"#,
    )
    .unwrap();
}

/// The shop of [`write_shop`] in `dir`, prepared into `dir/prepared`
/// (returned with what `edgerec prepare` printed).
fn prepared_shop(dir: &Path) -> (String, std::process::Output) {
    write_shop(dir);
    let d = |p: &str| dir.join(p).display().to_string();
    let data = d("prepared");
    let out = edgerec(&[
        "prepare",
        "--format",
        "csv",
        "--mapping",
        &d("mapping.toml"),
        "--input",
        &d("orders.csv"),
        "--out",
        &data,
    ]);
    (data, out)
}

fn edgerec(args: &[&str]) -> std::process::Output {
    let out = Command::new(edgerec_bin())
        .args(args)
        .env("EDGEREC_ENCODERS", encoder_dir().parent().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "edgerec {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A host serving the recommend function with the bundle at `dir/bundle`
/// (a path relative to `dir`, where its `spin.toml` is written).
fn serve_recommend(dir: &Path, bundle: &str) -> Host {
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"shop\"\n[[trigger.http]]\nroute = \"/api/recommend\"\ncomponent = \"recommend\"\n\
         [component.recommend]\nsource = \"{}\"\nfiles = [{{ source = \"{bundle}\", destination = \"/bundle\" }}]\n",
        component("recommend").display()
    );
    std::fs::write(dir.join("spin.toml"), manifest).unwrap();
    Host::start(&dir.join("spin.toml"), &Settings::default())
}

#[test]
fn a_new_shops_csv_is_prepared_split_trained_evaluated_and_served() {
    require!(edgerec_bin(), encoder_dir(), component("recommend"));
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).display().to_string();
    let (data, out) = prepared_shop(dir.path());
    let bundle = d("models/shop/1");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d("prepared/report.json")).unwrap()).unwrap();
    assert_eq!(report["rows_in"], 2403, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        (report["dropped"]["bad_time"].as_u64(), report["dropped"]["missing_user"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(report["dropped"]["filtered_event_type"], 1);
    assert_eq!(report["items_without_text"], 0, "titles come from products.csv");

    edgerec(&["split", "--data", &data, "--by", "leave-one-out"]);
    let out = edgerec(&[
        "train",
        "--data",
        &data,
        "--out",
        &bundle,
        "--dims",
        "32",
        "--epochs",
        "15",
        "--batch-size",
        "128",
        "--learning-rate",
        "0.01",
        // The function must rank with the sequence block as natively.
        "--sequence-block",
        "true",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // `--items auto` (the default) trains text and hybrid item vectors and
    // keeps the better on validation, next to the baselines it must beat.
    assert!(stdout.contains("--items text:") && stdout.contains("--items hybrid:"), "{stdout}");
    assert!(stdout.contains("validation window:") && stdout.contains("item-knn"), "{stdout}");
    assert!(stdout.contains("epoch  1") && stdout.contains("examples/s"), "{stdout}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d("models/shop/1/metrics.json")).unwrap()).unwrap();
    let validation = metrics["validation"].as_array().unwrap();
    let names: Vec<&str> = validation.iter().map(|c| c["name"].as_str().unwrap()).collect();
    // The kept towers first, as served: with the crowd prior when
    // validation chose one (this shop's pairing is item-kNN's home ground).
    let crowd_added = names[0].ends_with("+crowd");
    let towers = &names[usize::from(crowd_added)..];
    assert_eq!(towers.len(), 5, "{names:?}");
    assert!(towers[..2].contains(&"text") && towers[..2].contains(&"hybrid"), "the kept candidate first: {names:?}");
    assert!(validation[0]["recall_20"].as_f64() >= validation[1]["recall_20"].as_f64(), "{validation:?}");
    let kept = towers[0];
    if crowd_added {
        assert_eq!(names[0], format!("{kept}+crowd"));
        for baseline in &validation[1..] {
            assert!(validation[0]["recall_20"].as_f64() >= baseline["recall_20"].as_f64(), "{validation:?}");
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d("models/shop/1/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["metrics"]["items"], kept);
    assert_eq!(metrics["config"]["id_embeddings"], kept == "hybrid");
    assert_eq!(metrics["config"]["sequence_block"], true);
    let epochs = metrics["epochs"].as_array().unwrap();
    let recall = |e: &serde_json::Value| e["valid"]["all"]["recall_20"].as_f64().unwrap();
    let best = &epochs[metrics["best_epoch"].as_u64().unwrap() as usize];
    assert!(
        recall(best) > recall(&epochs[0]) + 0.2,
        "training beats its zero-shot start: {} -> {}\n{stdout}",
        recall(&epochs[0]),
        recall(best)
    );
    // The shipped model trained the kept epochs again on the training and
    // validation windows (the split kept the latter's steps).
    assert!(std::path::Path::new(&d("prepared/split/valid_window.jsonl")).exists());
    assert!(stdout.contains("refit on the training and validation windows"), "{stdout}");
    assert_eq!(metrics["refit"]["epochs"], metrics["best_epoch"]);
    assert!(metrics["refit"]["examples"].as_u64() > metrics["examples"].as_u64(), "{metrics}");
    assert_eq!(manifest["metrics"]["refit_epochs"], metrics["best_epoch"]);
    // The new items' boost the function serves was chosen on validation.
    let boost = manifest["metrics"]["new_item_boost"].as_f64().expect("a boost in the manifest");
    // Up to 0.1, and as much further as a crowd prior can lift warm items.
    let crowd_reach = ["popularity", "neighbors"].iter().filter_map(|w| metrics["crowd"][w].as_f64()).sum::<f64>();
    assert!(
        (0.0..=0.1 + crowd_reach + 1e-6).contains(&boost) && stdout.contains("chosen on validation"),
        "{boost}\n{stdout}"
    );
    assert_eq!(metrics["new_item_boost"].as_f64().map(|b| (b - boost).abs() < 1e-6), Some(true));

    let out = edgerec(&["eval", "--data", &data, "--model", &bundle, "--json"]);
    let scores: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON on stdout");
    for model in ["popularity", "recent-popularity", "item-knn", "zero-shot", "two-tower"] {
        for key in ["recall@10", "recall@20", "ndcg@10", "mrr", "coverage@10", "cold_recall@20"] {
            let v = scores[model][key].as_f64().unwrap_or_else(|| panic!("{model}.{key} in {scores}"));
            assert!((0.0..=1.0).contains(&v), "{model}.{key} = {v}");
        }
    }
    assert!(scores["two-tower"]["recall@20"].as_f64() > scores["zero-shot"]["recall@20"].as_f64(), "{scores}");
    let html = std::fs::read_to_string(d("prepared/eval/report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("two-tower"));

    // The recommend function serves the trained towers.
    let host = serve_recommend(dir.path(), "models/shop/1");
    let history = ["SKU-3", "SKU-10", "SKU-17"];
    let reply = host.post("/api/recommend", json!({"history": history, "k": 5}).to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    let served: Vec<&str> = body["items"].as_array().unwrap().iter().map(|i| i["item_id"].as_str().unwrap()).collect();
    // The same ranking, computed natively from the bundle's files with the
    // trained user tower; the untrained recency tower ranks differently.
    let index = ItemIndex::read(&dir.path().join("models/shop/1/items.bin")).unwrap();
    let trained =
        UserTower::from_bytes(&std::fs::read(dir.path().join("models/shop/1/user_tower.bin")).unwrap()).unwrap();
    let query =
        RecommendQuery { history: history.map(String::from).to_vec(), k: 5, exclude: vec![], exclude_history: true };
    let crowd = crowd_added
        .then(|| Crowd::from_bytes(&std::fs::read(dir.path().join("models/shop/1/crowd.bin")).unwrap()).unwrap());
    let ranked = |tower: &UserTower| -> Vec<String> {
        let model = Model { index: &index, tower, crowd: crowd.as_ref() };
        recommend_with_new(&model, &query, &NewItems::default(), 0.0).items.into_iter().map(|i| i.item_id).collect()
    };
    assert!(trained.block.is_some(), "user_tower.bin carries the sequence block");
    assert_eq!(served, ranked(&trained), "the function ranks with user_tower.bin (and crowd.bin)");
    assert_ne!(ranked(&trained), ranked(&UserTower::recency(index.dims(), 50)), "training changed the ranking");
    assert_eq!(body["model"]["name"], "shop");
}

/// A shop whose log says the crowd knows best (Amazon Gift Cards: 148
/// cards, 458 shoppers who mostly buy the same few): `edgerec train` with
/// its defaults adds popularity and item-kNN to the towers, ships the
/// prior in `crowd.bin`, is then not below either baseline on the test
/// window, and the recommend function ranks with the prior as natively.
#[test]
fn a_shop_where_the_crowd_knows_best_ships_the_crowd_prior_and_the_function_serves_it() {
    require!(edgerec_bin(), encoder_dir(), component("recommend"));
    let gift_cards = shared_data().join("amazon_gift_cards");
    if !available_or(&gift_cards, "the team's shared data folder belongs beside the repository (../shared/data)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).display().to_string();
    let (data, bundle) = (d("data"), d("models/gift-cards/1"));
    edgerec(&["prepare", "--format", "amazon-jsonl", "--input", &gift_cards.display().to_string(), "--out", &data]);
    edgerec(&["split", "--data", &data, "--by", "leave-one-out"]);
    let out = edgerec(&["train", "--data", &data, "--out", &bundle]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("crowd: ") && stdout.contains("added, chosen on validation"), "{stdout}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d("models/gift-cards/1/metrics.json")).unwrap()).unwrap();
    let blend = &metrics["crowd"];
    assert!(blend["popularity"].as_f64() > Some(0.0) || blend["neighbors"].as_f64() > Some(0.0), "{blend}");
    let kept = &metrics["validation"][0];
    assert!(kept["name"].as_str().unwrap().ends_with("+crowd"), "{kept}");
    for baseline in metrics["validation"].as_array().unwrap().iter().skip(1) {
        assert!(kept["recall_20"].as_f64() >= baseline["recall_20"].as_f64(), "{kept} vs {baseline}");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d("models/gift-cards/1/manifest.json")).unwrap()).unwrap();
    assert!(manifest["files"]["crowd.bin"].is_string(), "{manifest}");

    // The test window, the bundle scored as served: never below the crowd.
    let out = edgerec(&["eval", "--data", &data, "--model", &bundle, "--json"]);
    let scores: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for baseline in ["popularity", "item-knn"] {
        for key in ["recall@20", "ndcg@10"] {
            assert!(scores["two-tower"][key].as_f64() >= scores[baseline][key].as_f64(), "{key}: {scores}");
        }
    }

    // The function adds the same prior.
    let host = serve_recommend(dir.path(), "models/gift-cards/1");
    let index = ItemIndex::read(&dir.path().join("models/gift-cards/1/items.bin")).unwrap();
    let tower = UserTower::from_bytes(&std::fs::read(d("models/gift-cards/1/user_tower.bin")).unwrap()).unwrap();
    let crowd = Crowd::from_bytes(&std::fs::read(d("models/gift-cards/1/crowd.bin")).unwrap()).unwrap();
    let history: Vec<String> = (0..2).map(|i| index.id(i).to_string()).collect();
    let query = RecommendQuery { history: history.clone(), k: 10, exclude: vec![], exclude_history: true };
    let ranked = |crowd: Option<&Crowd>| -> Vec<String> {
        let model = Model { index: &index, tower: &tower, crowd };
        recommend_with_new(&model, &query, &NewItems::default(), 0.0).items.into_iter().map(|i| i.item_id).collect()
    };
    let reply = host.post("/api/recommend", json!({"history": history, "k": 10}).to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    let served: Vec<&str> = body["items"].as_array().unwrap().iter().map(|i| i["item_id"].as_str().unwrap()).collect();
    assert_eq!(served, ranked(Some(&crowd)), "the function ranks with crowd.bin");
    assert_ne!(ranked(Some(&crowd)), ranked(None), "the prior changes the ranking");
}

/// Judgments of a shop whose shoppers care about colour first: for each
/// "<colour> <word>" query, the exact product is graded 3, the other
/// products of that colour 2 and the same word in other colours 1. BM25
/// weighs the rarer word more and fusion ranks the kettles first; the
/// re-ranker must learn the shop's order from the grades.
fn write_colour_judgments(path: &Path) {
    let mut csv = String::from("query,item_id,relevance\n");
    for p in 0..60 {
        let query = format!("{} {}", COLOURS[p % 6], WORDS[p / 6]);
        for other in 0..60 {
            let grade = match (other == p, other % 6 == p % 6, other / 6 == p / 6) {
                (true, _, _) => 3,
                (false, true, _) => 2,
                (false, false, true) => 1,
                _ => continue,
            };
            csv += &format!("{query},SKU-{other},{grade}\n");
        }
    }
    csv += "red mug,SKU-NOT-IN-CATALOG,3\n";
    std::fs::write(path, csv).unwrap();
}

#[test]
fn a_shops_judgments_teach_search_its_order_and_the_function_serves_it() {
    require!(edgerec_bin(), encoder_dir(), component("search"), ai_models_dir());
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = prepared_shop(dir.path());
    write_colour_judgments(&dir.path().join("judgments.csv"));
    let d = |p: &str| dir.path().join(p).display().to_string();
    edgerec(&["index", "--data", &data, "--out", &d("models/shop/1")]);
    let out = edgerec(&["index", "--data", &data, "--out", &d("models/shop/2"), "--judgments", &d("judgments.csv")]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("serving the re-ranker"), "{stdout}");
    assert!(stderr.contains("1 rows name items the catalog does not have"), "{stderr}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d("models/shop/2/manifest.json")).unwrap()).unwrap();
    let search = &manifest["metrics"]["search"];
    assert_eq!(search["ranker"], true, "{search}");
    assert!(search["learned_ndcg@10"].as_f64() > search["fused_ndcg@10"].as_f64(), "{search}");
    assert!(manifest["files"]["ranker.bin"].is_string(), "{manifest}");

    // Served: the bundle without judgments ranks by fusion, the one with
    // them by colour, as the grades taught.
    let served = |version: &str| -> Vec<String> {
        let app = format!(
            "spin_manifest_version = 2\n[application]\nname = \"shop\"\n[[trigger.http]]\nroute = \"/api/search\"\ncomponent = \"search\"\n\
             [component.search]\nsource = \"{}\"\nfiles = [{{ source = \"models/shop/{version}\", destination = \"/bundle\" }}]\n\
             ai_models = [\"all-minilm-l6-v2\"]\n",
            component("search").display()
        );
        std::fs::write(d("spin.toml"), app).unwrap();
        let settings = Settings { ai_models_dir: Some(ai_models_dir()), ..Settings::default() };
        let host = Host::start(&dir.path().join("spin.toml"), &settings);
        let reply = host.post("/api/search", json!({"query": "red kettle", "k": 6}).to_string());
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = reply.json();
        body["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap().to_string()).collect()
    };
    let (fused, learned) = (served("1"), served("2"));
    let red = |titles: &[String]| titles[1..].iter().filter(|t| t.starts_with("red ")).count();
    assert_eq!((fused[0].as_str(), learned[0].as_str()), ("red kettle", "red kettle"));
    assert!(red(&learned) >= 4 && red(&learned) > red(&fused), "fused {fused:?}, learned {learned:?}");
}

#[test]
fn an_encoder_tuned_on_a_shops_judgments_embeds_its_bundle_and_the_host_serves_it() {
    require!(edgerec_bin(), encoder_dir(), component("search"));
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = prepared_shop(dir.path());
    write_colour_judgments(&dir.path().join("judgments.csv"));
    let d = |p: &str| dir.path().join(p).display().to_string();
    let out = edgerec(&[
        "tune-encoder",
        "--data",
        &data,
        "--judgments",
        &d("judgments.csv"),
        "--out",
        &d("ai-models/shop-search"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("tuned shop-search from all-MiniLM-L6-v2 on"), "{stdout}");
    let encoder: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d("ai-models/shop-search/encoder.json")).unwrap()).unwrap();
    assert_eq!(encoder["name"], "shop-search");
    assert!(encoder["source"].as_str().unwrap().starts_with("tuned:all-MiniLM-L6-v2@"), "{encoder}");

    // The tuned encoder embeds the bundle, and the host serves it to the
    // function by name through Spin's llm interface, as the pretrained one.
    let bundle = d("models/shop/1");
    edgerec(&["index", "--data", &data, "--model", &d("ai-models/shop-search"), "--out", &bundle]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d("models/shop/1/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["encoder"]["name"], "shop-search");
    let app = format!(
        "spin_manifest_version = 2\n[application]\nname = \"shop\"\n[[trigger.http]]\nroute = \"/api/search\"\ncomponent = \"search\"\n\
         [component.search]\nsource = \"{}\"\nfiles = [{{ source = \"models/shop/1\", destination = \"/bundle\" }}]\n\
         ai_models = [\"shop-search\"]\n",
        component("search").display()
    );
    std::fs::write(d("spin.toml"), app).unwrap();
    let settings = Settings { ai_models_dir: Some(dir.path().join("ai-models")), ..Settings::default() };
    let host = Host::start(&dir.path().join("spin.toml"), &settings);
    let reply = host.post("/api/search", json!({"query": "red kettle", "k": 3}).to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["items"][0]["title"], "red kettle", "{}", reply.body);

    let out = Command::new(edgerec_bin())
        .args(["tune-encoder", "--data", &data, "--judgments", &d("nothing.csv"), "--out", &d("ai-models/x")])
        .env("EDGEREC_ENCODERS", encoder_dir().parent().unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--judgments") && stderr.contains("nothing.csv"), "{stderr}");
    let out = Command::new(edgerec_bin())
        .args(["tune-encoder", "--data", &data, "--judgments", &d("judgments.csv"), "--out", &d("ai-models/x")])
        .args(["--interpolation", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--interpolation 0"), "{stderr}");
}

#[test]
fn bad_mappings_and_commands_name_the_field() {
    require!(edgerec_bin());
    let dir = tempfile::tempdir().unwrap();
    write_shop(dir.path());
    std::fs::write(dir.path().join("bad.toml"), "user = \"client\"\nitem = \"sku\"\n").unwrap();
    let d = |p: &str| dir.path().join(p).display().to_string();
    let out = Command::new(edgerec_bin())
        .args([
            "prepare",
            "--format",
            "csv",
            "--mapping",
            &d("bad.toml"),
            "--input",
            &d("orders.csv"),
            "--out",
            &d("x"),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("`user` names column `client`"), "{stderr}");
    let out = Command::new(edgerec_bin())
        .args(["prepare", "--format", "csv", "--input", &d("orders.csv"), "--out", &d("x")])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mapping"));
    let out =
        Command::new(edgerec_bin()).args(["eval", "--data", &d("nothing"), "--model", &d("nothing")]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("nothing"));
    let two_towers = ["--attention", "true", "--sequence-block", "true"];
    let out = Command::new(edgerec_bin())
        .args(["train", "--data", &d("nothing"), "--out", &d("models/shop/1")])
        .args(two_towers)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("pass one"), "{stderr}");
}

#[test]
fn every_shared_data_set_with_interactions_is_ingested() {
    let shared = shared_data();
    if !available_or(&shared, "the team's shared data folder belongs beside the repository (../shared/data)") {
        return;
    }
    let gift = prepare_amazon(&[shared.join("amazon_gift_cards")]).unwrap();
    let r = &gift.report;
    assert_eq!((r.rows_in, r.rows_kept, r.users, r.items), (2972, 2972, 458, 148), "the README's counts");
    assert!(r.items_without_text < 5, "metadata gives nearly every gift card a text: {}", r.items_without_text);
    let split = leave_one_out(&gift.events);
    assert!(split.test.len() > 100 && split.valid.len() > 100, "{}", split.table());

    let sci = prepare_recbole(&[shared.join("amazon_scientific")]).unwrap();
    let split = sci.split.as_ref().unwrap();
    assert_eq!(split.train.len(), 2928, "one training sequence per user");
    assert!(split.test.len() > 2800 && split.meta.repeat_only_cases < 128, "{}", split.table());
    assert_eq!(sci.report.items, 1585);
    assert_eq!(sci.report.rows_in, sci.report.rows_kept + sci.report.dropped.values().sum::<u64>());
    assert!(sci.catalog.iter().all(|c| c.text.len() > c.title.len() || c.text == c.title));
}
