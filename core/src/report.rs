//! The evaluation report a person opens: one self-contained HTML file with
//! the metrics table and SVG plots (training loss and validation Recall@20
//! per epoch; Recall@20, NDCG@10 and cold Recall@20 per model).

use plotters::prelude::*;

use crate::eval::{Report, columns};
use crate::train::EpochStats;
use crate::{Error, Result};

/// Everything the report shows.
pub struct ReportInput<'a> {
    /// Data set directory (shown as the title).
    pub data: &'a str,
    /// Split description, e.g. `time (edgerec split)`.
    pub protocol: &'a str,
    /// Test metrics per model, in table order.
    pub models: &'a [(String, Report)],
    /// The trained model's epochs, if it was trained.
    pub training: Option<&'a [EpochStats]>,
}

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Data(format!("plotting: {e}"))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A line chart of `(epoch, value)` points.
fn line_chart(title: &str, y_label: &str, points: &[(f64, f64)], color: RGBColor) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let x_max = points.iter().map(|p| p.0).fold(1.0, f64::max);
        let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
        let pad = ((hi - lo) * 0.1).max(1e-3);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, (lo - pad).max(0.0)..hi + pad)
            .map_err(plot_err)?;
        chart.configure_mesh().x_desc("epoch").y_desc(y_label).draw().map_err(plot_err)?;
        chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2))).map_err(plot_err)?;
        chart
            .draw_series(PointSeries::of_element(points.iter().copied(), 4, color.filled(), &|c, s, st| {
                EmptyElement::at(c) + Circle::new((0, 0), s, st)
            }))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// One bar per model.
fn bar_chart(title: &str, names: &[String], values: &[f64], color: RGBColor) -> Result<String> {
    let mut svg = String::new();
    {
        // Room for one readable label per model.
        let width = (names.len() as u32 * 100).clamp(520, 1000);
        let root = SVGBackend::with_string(&mut svg, (width, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let top = values.iter().copied().fold(0.0, f64::max).max(1e-3) * 1.15;
        let n = names.len() as i32;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0f64..top)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(names.len())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    names.get(*i as usize).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(color.filled())
                    .margin(12)
                    .data(values.iter().enumerate().map(|(i, v)| (i as i32, *v))),
            )
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Renders the report.
pub fn render(input: &ReportInput) -> Result<String> {
    let names: Vec<String> = input.models.iter().map(|(n, _)| n.clone()).collect();
    let mut plots = Vec::new();
    if let Some(epochs) = input.training {
        let loss: Vec<(f64, f64)> = epochs.iter().filter_map(|e| e.loss.map(|l| (e.epoch as f64, l))).collect();
        if !loss.is_empty() {
            plots.push(line_chart("Training loss", "sampled softmax loss", &loss, RGBColor(200, 80, 40))?);
        }
        let recall: Vec<(f64, f64)> = epochs.iter().map(|e| (e.epoch as f64, e.valid.all.recall_20)).collect();
        plots.push(line_chart(
            "Validation Recall@20 (epoch 0 = zero-shot)",
            "Recall@20",
            &recall,
            RGBColor(40, 90, 200),
        )?);
    }
    if !names.is_empty() {
        let pick = |f: fn(&Report) -> f64| input.models.iter().map(|(_, r)| f(r)).collect::<Vec<f64>>();
        plots.push(bar_chart("Test Recall@20", &names, &pick(|r| r.all.recall_20), RGBColor(40, 90, 200))?);
        plots.push(bar_chart("Test NDCG@10", &names, &pick(|r| r.all.ndcg_10), RGBColor(60, 150, 90))?);
        plots.push(bar_chart("Cold items: Recall@20", &names, &pick(|r| r.cold.recall_20), RGBColor(150, 90, 160))?);
    }
    let mut rows = String::new();
    for (name, r) in input.models {
        rows += &format!("<tr><td>{}</td>", html_escape(name));
        for (_, value, decimals) in columns() {
            rows += &format!("<td>{:.decimals$}</td>", value(r));
        }
        rows += "</tr>\n";
    }
    let headers: String = columns().iter().map(|(h, _, _)| format!("<th>{h}</th>")).collect();
    let figures: String = plots.iter().map(|svg| format!("<figure>{svg}</figure>\n")).collect();
    Ok(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgerec evaluation: {data}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
figure {{ display: inline-block; margin: .5rem; }}
</style></head><body>
<h1>edgerec evaluation</h1>
<p>Data: <code>{data}</code>. Protocol: {protocol}. Full ranking over every catalog item, the user's history removed.
Cold: cases with targets that have no training event, counting only those targets.</p>
<table><tr><th>model</th>{headers}</tr>
{rows}</table>
{figures}</body></html>
"#,
        data = html_escape(input.data),
        protocol = html_escape(input.protocol),
    ))
}

/// The ad-click report: a table of metrics per model and a reliability
/// diagram (predicted vs observed CTR per decile of impressions).
pub fn render_ads(data: &str, models: &[(String, crate::ads::fit::AdMetrics)]) -> Result<String> {
    let colors = [RGBColor(40, 90, 200), RGBColor(200, 80, 40), RGBColor(60, 150, 90), RGBColor(150, 90, 160)];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let top = models
            .iter()
            .flat_map(|(_, m)| m.calibration.iter().flat_map(|b| [b.predicted, b.observed]))
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption("Calibration: observed vs predicted CTR (deciles of impressions)", ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..top, 0f64..top)
            .map_err(plot_err)?;
        chart.configure_mesh().x_desc("predicted CTR").y_desc("observed CTR").draw().map_err(plot_err)?;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (top, top)], BLACK.mix(0.3))).map_err(plot_err)?;
        for (i, (name, m)) in models.iter().enumerate() {
            let color = colors[i % colors.len()];
            let points: Vec<(f64, f64)> = m.calibration.iter().map(|b| (b.predicted, b.observed)).collect();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(plot_err)?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(plot_err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    let mut rows = String::new();
    for (name, m) in models {
        rows += &format!(
            "<tr><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.5}</td><td>{:.5}</td><td>{}</td></tr>\n",
            html_escape(name),
            m.pairwise_accuracy,
            m.auc,
            m.log_loss,
            m.calibration_error,
            m.pairs
        );
    }
    Ok(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgerec ad scoring: {data}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
</style></head><body>
<h1>edgerec ad scoring</h1>
<p>Data: <code>{data}</code>, held-out tests. Pairwise: within-test pairs of different headlines, weighted by impressions.
AUC: a click's copy vs an unclicked impression's copy. Calibration error: impression-weighted |predicted − observed| over deciles.</p>
<table><tr><th>model</th><th>pairwise accuracy</th><th>AUC</th><th>log loss</th><th>calibration error</th><th>pairs</th></tr>
{rows}</table>
<figure>{svg}</figure>
</body></html>
"#,
        data = html_escape(data),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Metrics;

    #[test]
    fn the_report_has_the_table_and_one_plot_per_view() {
        let r = |x| Report {
            all: Metrics { recall_20: x, ndcg_10: x / 2.0, cases: 10, ..Default::default() },
            ..Default::default()
        };
        let models = vec![("popularity".to_string(), r(0.1)), ("two-tower <new>".to_string(), r(0.3))];
        let epochs: Vec<EpochStats> = (0..3)
            .map(|e| EpochStats {
                epoch: e,
                loss: (e > 0).then_some(5.0 - e as f64),
                valid: r(0.1 * e as f64),
                seconds: 1.0,
                examples_per_second: 100.0,
            })
            .collect();
        let html =
            render(&ReportInput { data: "d", protocol: "time", models: &models, training: Some(&epochs) }).unwrap();
        assert_eq!(html.matches("<svg").count(), 5);
        assert!(html.contains("two-tower &lt;new&gt;") && html.contains("<td>0.3000</td>"));
        assert!(html.contains("Training loss"));
    }

    #[test]
    fn the_ad_report_has_the_table_and_the_reliability_diagram() {
        use crate::ads::fit::{AdMetrics, CalibrationBin};
        let m = AdMetrics {
            pairwise_accuracy: 0.55,
            pairs: 10,
            auc: 0.6,
            log_loss: 0.08,
            calibration_error: 0.001,
            calibration: vec![CalibrationBin { predicted: 0.01, observed: 0.012, impressions: 100.0 }],
        };
        let html = render_ads("u", &[("ours".into(), m)]).unwrap();
        assert_eq!(html.matches("<svg").count(), 1);
        assert!(html.contains("<td>0.5500</td>") && html.contains("predicted CTR"));
    }
}
