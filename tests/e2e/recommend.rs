//! `POST /api/recommend` and `GET /api/health` on the demo bundle (the
//! built-in Online Retail sample, encoded with the real encoder).

use edgerec_core::bundle::ITEMS_FILE;
use edgerec_core::index::ItemIndex;
use edgerec_tests::{Host, component, demo_bundle, require, zero_shot_bundle};
use serde_json::{Value, json};

use crate::demo_host;

fn index() -> ItemIndex {
    ItemIndex::read(&demo_bundle().join(ITEMS_FILE)).expect("demo bundle reads")
}

/// Ids of the catalog's most popular items: a history any shop would have.
fn popular_ids(n: usize) -> Vec<String> {
    let index = index();
    let mut order: Vec<usize> = (0..index.len()).collect();
    order.sort_by(|&a, &b| index.popularity()[b].total_cmp(&index.popularity()[a]));
    order.into_iter().take(n).map(|i| index.id(i).to_string()).collect()
}

fn ids(reply: &Value) -> Vec<String> {
    reply["items"].as_array().expect("items").iter().map(|i| i["item_id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn ranks_k_items_best_first_without_the_history() {
    require!(component("recommend"), demo_bundle());
    let history = popular_ids(3);
    let reply = demo_host().post("/api/recommend", json!({"history": history, "k": 7}).to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 7);
    let scores: Vec<f64> = items.iter().map(|i| i["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "scores descend: {scores:?}");
    for item in items {
        assert!(!history.contains(&item["item_id"].as_str().unwrap().to_string()), "history item returned: {item}");
        assert!(!item["title"].as_str().unwrap().is_empty());
        // The demo model's crowd prior names what shoppers took together.
        let reason = item["reason"].as_str().unwrap();
        assert!(reason.starts_with("similar to \"") || reason.starts_with("often bought with \""), "{reason}");
    }
    assert_eq!(body["model"], json!({"name": "online-retail", "version": "2"}));
    assert!(body.get("unknown").is_none(), "no unknown ids: {body}");
    assert_eq!(reply.header("access-control-allow-origin").as_deref(), Some("*"));
    let timing = reply.header("server-timing").unwrap_or_default();
    for part in ["model;dur=", "new-items;dur=", "score;dur=", "guest;dur=", "instantiate;dur=", "host;dur="] {
        assert!(timing.contains(part), "server-timing `{timing}` lacks {part}");
    }
}

/// The zero-shot bundle ranks by text alone: a mug history brings mugs.
/// (The fine-tuned demo model learns what is bought together instead: tea
/// sets, cake tins; `learn.rs` tests that training changes the ranking.)
#[test]
fn zero_shot_ranks_similar_titles_above_unrelated_ones() {
    require!(component("recommend"), zero_shot_bundle());
    let (_dir, host) = Host::serve_bundle(&zero_shot_bundle());
    let index = ItemIndex::read(&zero_shot_bundle().join(ITEMS_FILE)).unwrap();
    let mugs: Vec<String> =
        (0..index.len()).filter(|&i| index.title(i).contains("MUG")).map(|i| index.id(i).to_string()).collect();
    assert!(mugs.len() >= 5, "the catalog sells mugs");
    let reply = host.post("/api/recommend", json!({"history": &mugs[..2], "k": 10}).to_string());
    let body = reply.json();
    let titles: Vec<&str> = body["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap()).collect();
    let mugs_returned = titles.iter().filter(|t| t.contains("MUG") || t.contains("CUP")).count();
    assert!(mugs_returned >= 5, "mostly mugs for a mug history: {titles:?}");
}

#[test]
fn equal_input_gives_an_identical_answer() {
    require!(component("recommend"), demo_bundle());
    let body = json!({"history": popular_ids(5), "k": 50}).to_string();
    let first = demo_host().post("/api/recommend", &body).json();
    let second = demo_host().post("/api/recommend", &body).json();
    assert_eq!(first, second);
}

#[test]
fn exclusions_and_exclude_history() {
    require!(component("recommend"), demo_bundle());
    let history = popular_ids(2);
    let base = demo_host().post("/api/recommend", json!({"history": history, "k": 5}).to_string()).json();
    let first = ids(&base)[0].clone();
    let excluded =
        demo_host().post("/api/recommend", json!({"history": history, "k": 5, "exclude": [first]}).to_string()).json();
    assert!(!ids(&excluded).contains(&first));
    assert_eq!(ids(&excluded)[..4], ids(&base)[1..]);

    // Kept history: the newest history item is the closest match to itself.
    let kept = demo_host()
        .post("/api/recommend", json!({"history": history, "k": 5, "exclude_history": false}).to_string())
        .json();
    assert!(ids(&kept).iter().any(|id| history.contains(id)), "{kept}");
}

#[test]
fn unknown_ids_are_reported_and_do_not_break_ranking() {
    require!(component("recommend"), demo_bundle());
    let known = popular_ids(1);
    let body = json!({"history": ["NO-SUCH-ITEM", known[0], "ALSO-MISSING"], "exclude": ["GONE"], "k": 3});
    let reply = demo_host().post("/api/recommend", body.to_string());
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["unknown"], json!(["NO-SUCH-ITEM", "ALSO-MISSING", "GONE"]));
    assert_eq!(body["items"].as_array().unwrap().len(), 3);
}

#[test]
fn empty_history_falls_back_to_popular_items() {
    require!(component("recommend"), demo_bundle());
    let reply = demo_host().post("/api/recommend", "{}");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    assert_eq!(ids(&body), popular_ids(10));
    assert!(body["items"].as_array().unwrap().iter().all(|i| i["reason"] == "popular"));
}

#[test]
fn k_bounds_are_inclusive() {
    require!(component("recommend"), demo_bundle());
    for k in [1, 200] {
        let reply = demo_host().post("/api/recommend", json!({"k": k}).to_string());
        assert_eq!(reply.json()["items"].as_array().unwrap().len(), k);
    }
}

/// Each bad input gets a 4xx with `{"error": {"code", "message"}}` whose
/// message names the field.
#[test]
fn bad_input_gets_a_json_4xx_naming_the_field() {
    require!(component("recommend"), demo_bundle());
    let host = demo_host();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("malformed JSON", b"{\"history\": [".to_vec(), 400, "invalid JSON"),
        ("not an object", b"[1, 2]".to_vec(), 400, "JSON object"),
        ("empty body", Vec::new(), 400, "empty"),
        ("k as string", br#"{"k": "ten"}"#.to_vec(), 400, "`k`"),
        ("k fractional", br#"{"k": 2.5}"#.to_vec(), 400, "`k`"),
        ("k zero", br#"{"k": 0}"#.to_vec(), 400, "`k`"),
        ("k too large", br#"{"k": 201}"#.to_vec(), 400, "`k`"),
        ("history not a list", br#"{"history": "85123A"}"#.to_vec(), 400, "`history`"),
        ("history element", br#"{"history": ["a", 7]}"#.to_vec(), 400, "`history[1]`"),
        ("exclude_history type", br#"{"exclude_history": "yes"}"#.to_vec(), 400, "`exclude_history`"),
        ("unknown field", br#"{"histroy": []}"#.to_vec(), 400, "histroy"),
        ("not UTF-8", b"{\"history\": [\"\xff\"]}".to_vec(), 400, "UTF-8"),
    ];
    for (what, body, status, needle) in cases {
        let reply = host.post("/api/recommend", &body);
        assert_eq!(reply.status, status, "{what}: {}", reply.body);
        assert_eq!(reply.json()["error"]["code"], "bad_request", "{what}");
        assert!(reply.error_message().contains(needle), "{what}: `{}` lacks {needle}", reply.error_message());
        assert_eq!(reply.header("access-control-allow-origin").as_deref(), Some("*"), "{what}");
    }
}

#[test]
fn oversized_body_is_413() {
    require!(component("recommend"), demo_bundle());
    let mut body = br#"{"history": [""#.to_vec();
    body.resize((1 << 20) + 100, b'x');
    body.extend_from_slice(br#""]}"#);
    let reply = demo_host().post("/api/recommend", &body);
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "payload_too_large");
    // The host keeps serving.
    assert_eq!(demo_host().post("/api/recommend", "{}").status, 200);
}

#[test]
fn wrong_content_type_method_and_route() {
    require!(component("recommend"), demo_bundle());
    let host = demo_host();
    let reply = host.post_as("/api/recommend", "application/x-www-form-urlencoded", "{}");
    assert_eq!(reply.status, 415, "{}", reply.body);
    assert!(reply.error_message().contains("application/json"));
    // A browser fetch that avoids the preflight sends text/plain; still JSON.
    assert_eq!(host.post_as("/api/recommend", "text/plain;charset=UTF-8", "{}").status, 200);
    let reply = host.get("/api/recommend");
    assert_eq!(reply.status, 405);
    assert!(reply.error_message().contains("POST"));
    let reply = host.get("/api/nope");
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "not_found");
}

#[test]
fn preflight_allows_the_routes_from_any_origin() {
    require!(component("recommend"), demo_bundle());
    for path in ["/api/recommend", "/api/health"] {
        let reply = demo_host().preflight(path);
        assert_eq!(reply.status, 204, "{path}");
        assert_eq!(reply.header("access-control-allow-origin").as_deref(), Some("*"));
        assert!(reply.header("access-control-allow-methods").unwrap().contains("POST"));
        assert!(reply.header("access-control-allow-headers").unwrap().contains("content-type"));
    }
}

#[test]
fn health_reports_zone_and_model() {
    require!(component("recommend"), demo_bundle());
    let reply = demo_host().get("/api/health");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json(),
        json!({"status": "ok", "zone": "edge", "models": [{"name": "online-retail", "version": "2"}]})
    );
}

#[test]
fn concurrent_requests_each_get_their_own_instance() {
    require!(component("recommend"), demo_bundle());
    let history = popular_ids(4);
    let body = json!({"history": history, "k": 20}).to_string();
    let expected = demo_host().post("/api/recommend", &body).json();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..24).map(|_| s.spawn(|| demo_host().post("/api/recommend", &body))).collect();
        for h in handles {
            let reply = h.join().unwrap();
            assert_eq!(reply.status, 200);
            assert_eq!(reply.json(), expected);
        }
    });
}
