//! What the host counts, in the Prometheus text format (`GET /metrics` on
//! the private host), with `prometheus-client`.
//!
//! | metric | labels |
//! |---|---|
//! | `edgerec_requests_total` | route, zone, status |
//! | `edgerec_request_duration_seconds` (histogram) | route, zone, status |
//! | `edgerec_model_info` (1 per served bundle) | function, name, version |
//! | `edgerec_feedback_events_total` | type |
//! | `edgerec_model_impressions_total`, `edgerec_model_clicks_total` | name, version |
//! | `edgerec_model_click_through_rate` (clicks / impressions) | name, version |
//! | `edgerec_model_ab_p_value` (two-sided z-test of the two versions with the most impressions) | name, versions |
//! | `edgerec_model_updates_total` | name, decision (`promoted`, `rejected`) |
//!
//! Labels only take values the host knows (route patterns of the manifest,
//! served model versions), never what a client sends, so a caller cannot
//! grow the metrics without bound.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use edgerec_core::api::{EventType, ModelRef};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    zone: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionModelLabels {
    function: String,
    name: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    name: String,
    version: String,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs to about 1.6 s, doubling.
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

/// The host's metrics.
pub struct Metrics {
    registry: Registry,
    zone: String,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    models: Family<FunctionModelLabels, Gauge>,
    feedback: Family<TypeLabels, Counter>,
    impressions: Family<ModelLabels, Counter>,
    clicks: Family<ModelLabels, Counter>,
    click_through: Family<ModelLabels, Gauge<f64, AtomicU64>>,
    ab_p_value: Family<AbLabels, Gauge<f64, AtomicU64>>,
    updates: Family<UpdateLabels, Counter>,
    arms: std::sync::Mutex<std::collections::BTreeMap<(String, String), edgerec_core::ab::Arm>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AbLabels {
    name: String,
    versions: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpdateLabels {
    name: String,
    decision: String,
}

impl Metrics {
    /// Metrics of a host in `zone`.
    pub fn new(zone: &str) -> Self {
        let mut registry = Registry::with_prefix("edgerec");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "HTTP requests answered", requests.clone());
        let latency = HistogramFamily::new_with_constructor(latency_histogram);
        registry.register("request_duration_seconds", "Time from request to response head", latency.clone());
        let models = Family::<FunctionModelLabels, Gauge>::default();
        registry.register("model_info", "The model bundle each function serves (1)", models.clone());
        let feedback = Family::<TypeLabels, Counter>::default();
        registry.register(
            "feedback_events",
            "Feedback events stored, by type (a repeated event id once)",
            feedback.clone(),
        );
        let impressions = Family::<ModelLabels, Counter>::default();
        registry.register("model_impressions", "Impressions that name the model version", impressions.clone());
        let clicks = Family::<ModelLabels, Counter>::default();
        registry.register("model_clicks", "Clicks that name the model version", clicks.clone());
        let click_through = Family::<ModelLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "model_click_through_rate",
            "Clicks over impressions per model version",
            click_through.clone(),
        );
        let ab_p_value = Family::<AbLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "model_ab_p_value",
            "Two-sided p-value of the click-through difference between the two most shown versions",
            ab_p_value.clone(),
        );
        let updates = Family::<UpdateLabels, Counter>::default();
        registry.register("model_updates", "Model updates run by this host, by the gate's decision", updates.clone());
        Self {
            ab_p_value,
            updates,
            arms: Default::default(),
            registry,
            zone: zone.to_string(),
            requests,
            latency,
            models,
            feedback,
            impressions,
            clicks,
            click_through,
        }
    }

    /// Counts a model update by its gate's decision.
    pub fn update(&self, name: &str, promoted: bool) {
        let decision = if promoted { "promoted" } else { "rejected" };
        self.updates.get_or_create(&UpdateLabels { name: name.into(), decision: decision.into() }).inc();
    }

    /// One answered request on `route` (a route pattern, or `unmatched`).
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels { route: route.to_string(), zone: self.zone.clone(), status: status.to_string() };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// The bundles each function serves, replacing what was set before.
    pub fn set_models<'a>(&self, served: impl IntoIterator<Item = (&'a str, &'a ModelRef)>) {
        self.models.clear();
        for (function, model) in served {
            let labels = FunctionModelLabels {
                function: function.to_string(),
                name: model.name.clone(),
                version: model.version.clone(),
            };
            self.models.get_or_create(&labels).set(1);
        }
    }

    /// Stored feedback events. `known` says whether a model version is one
    /// the host serves; others are counted under `other`.
    pub fn feedback(&self, kind: EventType, model: Option<&ModelRef>, known: impl Fn(&ModelRef) -> bool) {
        self.feedback.get_or_create(&TypeLabels { r#type: kind.as_str().to_string() }).inc();
        let Some(model) = model else { return };
        if !matches!(kind, EventType::Impression | EventType::Click) {
            return;
        }
        let labels = if known(model) {
            ModelLabels { name: model.name.clone(), version: model.version.clone() }
        } else {
            ModelLabels { name: "other".into(), version: "other".into() }
        };
        let (shown, clicked) = match kind {
            EventType::Impression => {
                (self.impressions.get_or_create(&labels).inc() + 1, self.clicks.get_or_create(&labels).get())
            }
            _ => (self.impressions.get_or_create(&labels).get(), self.clicks.get_or_create(&labels).inc() + 1),
        };
        if shown > 0 {
            self.click_through.get_or_create(&labels).set(clicked as f64 / shown as f64);
        }
        if labels.name == "other" {
            return;
        }
        let mut arms = self.arms.lock().unwrap_or_else(|p| p.into_inner());
        arms.insert(
            (labels.name.clone(), labels.version.clone()),
            edgerec_core::ab::Arm { impressions: shown, clicks: clicked },
        );
        let mut versions: Vec<(&String, &edgerec_core::ab::Arm)> =
            arms.iter().filter(|((name, _), _)| *name == labels.name).map(|((_, v), arm)| (v, arm)).collect();
        versions.sort_by_key(|(_, arm)| std::cmp::Reverse(arm.impressions));
        if let [(va, a), (vb, b), ..] = versions[..]
            && let Some(test) = edgerec_core::ab::compare(*a, *b)
        {
            let (first, second) = if va < vb { (va, vb) } else { (vb, va) };
            let key = AbLabels { name: labels.name.clone(), versions: format!("{first},{second}") };
            self.ab_p_value.get_or_create(&key).set(test.p_value);
        }
    }

    /// Everything, in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_feedback_and_click_through_show_up_in_the_text_format() {
        let m = Metrics::new("private");
        m.request("/api/recommend", 200, Duration::from_micros(300));
        m.request("/api/recommend", 200, Duration::from_micros(500));
        let v2 = ModelRef { name: "shop".into(), version: "2".into() };
        m.set_models([("recommend", &v2)]);
        for _ in 0..4 {
            m.feedback(EventType::Impression, Some(&v2), |_| true);
        }
        m.feedback(EventType::Click, Some(&v2), |_| true);
        m.feedback(EventType::Click, Some(&ModelRef { name: "x".into(), version: "9".into() }), |_| false);
        let text = m.encode();
        for line in [
            r#"edgerec_requests_total{route="/api/recommend",zone="private",status="200"} 2"#,
            r#"edgerec_request_duration_seconds_count{route="/api/recommend",zone="private",status="200"} 2"#,
            r#"edgerec_model_info{function="recommend",name="shop",version="2"} 1"#,
            r#"edgerec_feedback_events_total{type="impression"} 4"#,
            r#"edgerec_feedback_events_total{type="click"} 2"#,
            r#"edgerec_model_click_through_rate{name="shop",version="2"} 0.25"#,
            r#"edgerec_model_clicks_total{name="other",version="other"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
