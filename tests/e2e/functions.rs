//! The functions that encode text at request time — `POST /api/search`,
//! `POST /api/ads/score`, `POST /api/items/cold-start` — served from the
//! real `spin.toml` by our host (pre-initialized), plus the pre-initializer
//! itself: its snapshot answers exactly like the component that loads its
//! model per request.

use edgerec_core::bundle::ITEMS_FILE;
use edgerec_core::index::ItemIndex;
use edgerec_host::cache::LoadedFrom;
use edgerec_host::config::{HostConfig, Settings};
use edgerec_host::function;
use edgerec_host::manifest::App;
use edgerec_host::runtime::Runtime;
use edgerec_tests::{
    Host, ads_bundle, ai_models_dir, available, component, demo_bundle, encoder_dir, repo, require, tract_bundle,
};
use serde_json::{Value, json};

use crate::demo_host;

fn ids(reply: &Value, list: &str, key: &str) -> Vec<String> {
    reply[list].as_array().expect("a list").iter().map(|i| i[key].as_str().unwrap().to_string()).collect()
}

fn index() -> ItemIndex {
    ItemIndex::read(&demo_bundle().join(ITEMS_FILE)).expect("demo bundle reads")
}

macro_rules! require_search {
    () => {
        require!(component("search"), demo_bundle(), ai_models_dir());
    };
}

#[test]
fn search_puts_the_named_product_first_and_reports_where_the_time_went() {
    require_search!();
    let reply = demo_host().post("/api/search", json!({"query": "jumbo bag red retrospot", "k": 5}).to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    let found = ids(&body, "items", "item_id");
    assert_eq!(found.len(), 5);
    assert_eq!(found[0], "85099B", "the exact title wins: {body}");
    let scores: Vec<f64> = body["items"].as_array().unwrap().iter().map(|i| i["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(body["truncated"], false);
    assert_eq!(body["model"], json!({"name": "online-retail", "version": "2"}));
    let timing = reply.header("server-timing").unwrap_or_default();
    for part in ["instantiate;dur=", "model;dur=", "encode;dur=", "score;dur="] {
        assert!(timing.contains(part), "server-timing `{timing}` lacks {part}");
    }
}

#[test]
fn search_understands_words_the_titles_do_not_use() {
    require_search!();
    // No title says "mug" and "coffee" together; the semantic side still
    // brings drinkware before anything else.
    let reply =
        demo_host().post("/api/search", json!({"query": "something to drink coffee from", "k": 10}).to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let titles = ids(&reply.json(), "items", "title").join(" | ");
    assert!(["MUG", "CUP", "BEAKER"].iter().any(|w| titles.contains(w)), "{titles}");
}

#[test]
fn search_history_changes_the_order_of_matching_products() {
    require_search!();
    let index = index();
    // Two shoppers: one of red retrospot things, one of pink polkadot things.
    let pick = |word: &str| -> Vec<String> {
        (0..index.len()).filter(|&i| index.title(i).contains(word)).take(5).map(|i| index.id(i).to_string()).collect()
    };
    let (red, pink) = (pick("RED RETROSPOT"), pick("PINK POLKADOT"));
    assert!(red.len() == 5 && pink.len() == 5);
    let ask = |history: &[String]| {
        let reply = demo_host().post("/api/search", json!({"query": "bag", "history": history, "k": 10}).to_string());
        assert_eq!(reply.status, 200, "{}", reply.body);
        ids(&reply.json(), "items", "item_id")
    };
    let (for_red, for_pink, anonymous) = (ask(&red), ask(&pink), ask(&[]));
    assert_ne!(for_red, for_pink);
    assert_ne!(for_red, anonymous);
    let reply = demo_host().post("/api/search", json!({"query": "bag", "history": ["NOPE"]}).to_string());
    assert_eq!(reply.json()["unknown"], json!(["NOPE"]));
}

#[test]
fn search_refuses_blank_queries_and_bad_bodies_and_flags_long_ones() {
    require_search!();
    let host = demo_host();
    for (body, field) in [
        (json!({"query": ""}).to_string(), "`query`"),
        (json!({"query": " \n\t "}).to_string(), "`query`"),
        (json!({"k": 3}).to_string(), "query"),
        (json!({"query": "mug", "k": 0}).to_string(), "`k`"),
        (json!({"query": 7}).to_string(), "`query`"),
    ] {
        let reply = host.post("/api/search", &body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(reply.error_message().contains(field), "{body}: {}", reply.error_message());
    }
    let reply = host.post("/api/search", b"{\"query\": \"mug \xff\"}");
    assert_eq!(reply.status, 400);
    assert!(reply.error_message().contains("UTF-8"), "{}", reply.error_message());
    // Longer than the encoder's 128-token window: answered, and flagged.
    let long = "red retrospot mug ".repeat(100);
    let reply = host.post("/api/search", json!({"query": long}).to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["truncated"], true);
    assert_eq!(host.get("/api/search").status, 405);
    assert_eq!(host.preflight("/api/search").status, 204);
}

macro_rules! require_ads {
    () => {
        require!(component("ad-score"), ads_bundle(), demo_bundle(), ai_models_dir());
    };
}

#[test]
fn ads_get_click_probabilities_best_first() {
    require_ads!();
    let ads = json!([
        {"id": "plain", "text": "Product catalogue, page 12"},
        {"id": "story", "text": "She Thought Nobody Would Notice. Then 3 Million People Did."},
        {"id": "gift", "text": "Christmas gifts she will love"},
    ]);
    let reply = demo_host().post("/api/ads/score", json!({"ads": ads}).to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    let scored = body["ads"].as_array().unwrap();
    assert_eq!(scored.len(), 3);
    let scores: Vec<f64> = scored.iter().map(|a| a["score"].as_f64().unwrap()).collect();
    assert!(scores.iter().all(|&s| (0.0..=1.0).contains(&s)), "{scores:?}");
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "best first: {scores:?}");
    let mut returned = ids(&body, "ads", "id");
    returned.sort();
    assert_eq!(returned, ["gift", "plain", "story"]);
    assert_eq!(body["model"], json!({"name": "upworthy", "version": "1"}));
}

#[test]
fn ads_that_match_the_shoppers_search_score_higher() {
    require_ads!();
    let score = |body: Value| -> f64 {
        let reply = demo_host().post("/api/ads/score", body.to_string());
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["ads"].as_array().unwrap().iter().find(|a| a["id"] == "lights").unwrap()["score"].as_f64().unwrap()
    };
    let ads =
        json!([{"id": "lights", "text": "Fairy lights for your Christmas tree"}, {"id": "bags", "text": "Lunch bags"}]);
    let alone = score(json!({"ads": ads}));
    let searching = score(json!({"ads": ads, "query": "christmas tree lights"}));
    assert!(searching > alone, "{searching} vs {alone}");
}

#[test]
fn ads_requests_outside_the_limits_are_refused_by_field() {
    require_ads!();
    let host = demo_host();
    let many: Vec<Value> = (0..101).map(|i| json!({"id": format!("a{i}"), "text": "headline"})).collect();
    let hundred: Vec<Value> = many[..100].to_vec();
    for (body, field) in [
        (json!({"ads": []}), "`ads`"),
        (json!({"ads": many}), "`ads`"),
        (json!({"ads": [{"id": "a", "text": "x"}, {"id": "b", "text": "  "}]}), "`ads[1].text`"),
        (json!({"ads": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}), "`ads[1].id`"),
        (json!({"ads": [{"id": "a"}]}), "ads[0]"),
        (json!({"ads": [{"id": "a", "text": "x"}], "query": " "}), "`query`"),
    ] {
        let reply = host.post("/api/ads/score", body.to_string());
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(reply.error_message().contains(field), "{body}: {}", reply.error_message());
    }
    let reply = host.post("/api/ads/score", json!({"ads": hundred}).to_string());
    assert_eq!(reply.status, 200, "100 ads is the limit, not over it: {}", reply.body);
    assert_eq!(reply.json()["ads"].as_array().unwrap().len(), 100);
}

macro_rules! require_cold_start {
    () => {
        require!(component("cold-start"), component("recommend"), demo_bundle(), ai_models_dir());
    };
}

#[test]
fn a_new_item_gets_neighbours_and_then_shows_up_in_recommendations() {
    require_cold_start!();
    let host = demo_host();
    let item = json!({"item_id": "TEST-NEW-HAMPER", "title": "RED RETROSPOT PICNIC HAMPER", "category": "bags", "price": 12.5});
    let reply = host.post("/api/items/cold-start", json!({"items": [item]}).to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    let entry = &body["items"][0];
    assert_eq!(entry["item_id"], "TEST-NEW-HAMPER");
    assert_eq!(entry["indexed"], true);
    let neighbours = ids(entry, "neighbors", "item_id");
    assert_eq!(neighbours.len(), 5);
    let index = index();
    let titles: Vec<&str> = neighbours.iter().map(|id| index.title(index.find(id).unwrap())).collect();
    assert!(titles.iter().any(|t| t.contains("RETROSPOT") || t.contains("PICNIC")), "{titles:?}");
    // A shopper of those neighbours now gets the new hamper recommended.
    let reply = host.post("/api/recommend", json!({"history": neighbours, "k": 10}).to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let rec = reply.json();
    let hamper = rec["items"].as_array().unwrap().iter().find(|i| i["item_id"] == "TEST-NEW-HAMPER");
    let hamper = hamper.unwrap_or_else(|| panic!("the new item is recommended: {rec}"));
    assert_eq!(hamper["reason"], "new item");
    assert_eq!(hamper["title"], "RED RETROSPOT PICNIC HAMPER");
    // The storefront's "new arrivals" shelf lists it.
    let listed = host.get("/api/items/cold-start");
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(ids(&listed.json(), "items", "item_id").contains(&"TEST-NEW-HAMPER".to_string()), "{}", listed.body);
    // A warm catalog id is answered but not stored again.
    let reply =
        host.post("/api/items/cold-start", json!({"items": [{"item_id": "85099B", "title": "JUMBO BAG"}]}).to_string());
    assert_eq!(reply.json()["items"][0]["indexed"], false);
}

/// A client that hangs up does not stop the function half-way: the items
/// it sent are stored all the same.
#[test]
fn a_cold_start_whose_client_hangs_up_still_stores_its_items() {
    use std::io::Write;
    require_cold_start!();
    let host = demo_host();
    let body = json!({"items": [{"item_id": "HUNG-UP-LANTERN", "title": "RED RETROSPOT PAPER LANTERN"}]}).to_string();
    let mut socket = std::net::TcpStream::connect(host.addr).unwrap();
    write!(
        socket,
        "POST /api/items/cold-start HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    drop(socket);
    let red: Vec<String> = {
        let index = index();
        (0..index.len())
            .filter(|&i| index.title(i).contains("RED RETROSPOT"))
            .take(5)
            .map(|i| index.id(i).to_string())
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let reply = host.post("/api/recommend", json!({"history": red, "k": 200}).to_string());
        if ids(&reply.json(), "items", "item_id").iter().any(|id| id == "HUNG-UP-LANTERN") {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the item was never stored");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn cold_start_takes_up_to_a_thousand_items_and_names_bad_fields() {
    require_cold_start!();
    let host = demo_host();
    let items = |n: usize| -> Vec<Value> {
        (0..n).map(|i| json!({"item_id": format!("BULK-{i}"), "title": format!("gift {i}")})).collect()
    };
    for (body, field) in [
        (json!({"items": []}), "`items`"),
        (json!({"items": items(1001)}), "`items`"),
        (json!({"items": [{"item_id": "x", "title": " "}]}), "`items[0].title`"),
        (json!({"items": [{"item_id": "x", "title": "a"}, {"item_id": "x", "title": "b"}]}), "`items[1].item_id`"),
        (json!({"items": [{"item_id": "x", "title": "a", "price": -2}]}), "`items[0].price`"),
        (json!({"items": [{"item_id": "x", "title": "a", "colour": "red"}]}), "colour"),
    ] {
        let reply = host.post("/api/items/cold-start", body.to_string());
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(reply.error_message().contains(field), "{field}: {}", reply.error_message());
    }
    let reply = host.post("/api/items/cold-start", json!({"items": items(1000)}).to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    let all = body["items"].as_array().unwrap();
    assert_eq!(all.len(), 1000);
    assert!(all.iter().all(|i| i["indexed"] == true && i["neighbors"].as_array().unwrap().len() == 5));
}

/// The snapshot the host serves answers exactly like the plain component,
/// which loads its model inside every request.
#[test]
fn a_pre_initialized_component_answers_like_the_plain_one() {
    require_search!();
    require!(component("misbehave"));
    let manifest = repo().join("spin.toml");
    let app = App::load(&manifest).unwrap();
    let search = &app.components["search"];
    let (cache, kv) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let runtime = |memory_limit_mib: Option<usize>| {
        let settings = Settings {
            cache_dir: Some(cache.path().to_path_buf()),
            kv_dir: Some(kv.path().to_path_buf()),
            memory_limit_mib,
            ..Default::default()
        };
        Runtime::new(HostConfig::new(settings, &manifest).unwrap()).unwrap()
    };
    let host = runtime(None);
    let loaded = function::load(&host, search).unwrap();
    assert!(loaded.preinitialized, "search exports `preinit`");
    assert_eq!(loaded.compiled_from, LoadedFrom::Compiled);
    // Served from the cache the second time, snapshot and compiled code alike.
    let again = function::load(&host, search).unwrap();
    assert_eq!((again.compiled_from, again.fingerprint.as_str()), (LoadedFrom::Cache, loaded.fingerprint.as_str()));
    // A component without the export is served as it is.
    let mut plain = search.clone();
    plain.id = "misbehave".into();
    plain.source = component("misbehave");
    plain.files.clear();
    assert!(!function::load(&host, &plain).unwrap().preinitialized);
    // Too little memory for the loaded model (the in-component encoder's
    // variant holds it in linear memory): refused with the reason.
    if available(&component("search_tract")) && available(&tract_bundle()) && available(&encoder_dir()) {
        let mut inside = search.clone();
        inside.source = component("search_tract");
        inside.files = vec![(tract_bundle(), "/bundle".into()), (encoder_dir(), "/encoder".into())];
        inside.variables.insert("encoder".into(), "tract".into());
        let err = function::load(&runtime(Some(64)), &inside).err().expect("refused");
        assert!(format!("{err:#}").contains("memory_limit_mib"), "{err:#}");
    }

    let settings = Settings { preinit: Some(false), kv_dir: Some(kv.path().to_path_buf()), ..Default::default() };
    let plain_host = Host::start(&manifest, &settings);
    let body = json!({"query": "vintage christmas decoration", "history": ["85099B"], "k": 8}).to_string();
    let (a, b) = (demo_host().post("/api/search", &body), plain_host.post("/api/search", &body));
    assert_eq!((a.status, b.status), (200, 200), "{} / {}", a.body, b.body);
    assert_eq!(a.json()["items"], b.json()["items"]);
}

#[test]
fn ads_rank_by_the_stats_a_caller_sends_and_refuse_impossible_ones() {
    require_ads!();
    let host = demo_host();
    let ads = json!([{"id": "a", "text": "Christmas gifts she will love"}, {"id": "b", "text": "Lunch bags"}]);
    let reply = host.post(
        "/api/ads/score",
        json!({"ads": ads, "stats": {"a": {"impressions": 10_000, "clicks": 100}, "b": {"impressions": 10_000, "clicks": 900}}})
            .to_string(),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    assert_eq!(ids(&body, "ads", "id"), ["b", "a"], "9% measured beats 1% whatever the text says: {body}");
    let b = &body["ads"][0];
    assert!((b["mean"].as_f64().unwrap() - 0.09).abs() < 0.001, "{body}");
    assert!(b["prior"].as_f64().unwrap() < 0.05, "{body}");
    // A copy never shown is explored: its bound is wide.
    let reply = host.post(
        "/api/ads/score",
        json!({"ads": ads, "stats": {"b": {"impressions": 10_000, "clicks": 200}}}).to_string(),
    );
    assert_eq!(ids(&reply.json(), "ads", "id"), ["a", "b"], "{}", reply.body);
    for (stats, field) in [
        (json!({"a": {"impressions": 1, "clicks": 2}}), "`stats.a.clicks`"),
        (json!({"zz": {"impressions": 1, "clicks": 0}}), "`stats.zz`"),
        (json!({"a": {"impressions": -1, "clicks": 0}}), "stats"),
    ] {
        let reply = host.post("/api/ads/score", json!({"ads": ads, "stats": stats}).to_string());
        assert_eq!(reply.status, 400, "{stats}: {}", reply.body);
        assert!(reply.error_message().contains(field), "{stats}: {}", reply.error_message());
    }
}

#[test]
fn the_storefront_serves_web_on_its_own_origin_and_nothing_outside_it() {
    require!(component("storefront"));
    let host = demo_host();
    let page = host.get("/");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.header("content-type").as_deref(), Some("text/html; charset=utf-8"));
    assert!(page.body.contains("<script type=\"module\" src=\"/storefront.js\">"), "index.html at /");
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.contains("default-src 'self'") && policy.contains("connect-src 'self'"), "{policy}");
    let script = host.get("/storefront.js");
    assert_eq!(script.header("content-type").as_deref(), Some("text/javascript; charset=utf-8"));
    assert_eq!(script.body, std::fs::read_to_string(repo().join("web/storefront.js")).unwrap());
    // Unchanged since the browser's copy: 304, no body.
    let etag = script.header("etag").unwrap();
    let again = host.get_with("/storefront.js", &[("if-none-match", &etag)]);
    assert_eq!((again.status, again.body.as_str()), (304, ""));
    // The function routes keep their components; unknown pages and paths
    // out of web/ are 404s in the JSON shape; writes are refused.
    assert_eq!(host.get("/api/health").json()["status"], "ok");
    for path in ["/nope.html", "/%2e%2e/Cargo.toml", "/.gitignore", "/a//b"] {
        let reply = host.get(path);
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
        assert!(reply.error_message().contains("no page at"), "{path}: {}", reply.body);
    }
    let post = host.post("/index.html", "{}");
    assert_eq!((post.status, post.header("allow").as_deref()), (405, Some("GET, HEAD")));
}
