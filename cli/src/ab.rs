//! `edgerec ab report`: an A/B test of model versions from the feedback the
//! private host stored: impressions, clicks and click-through per version
//! of a model, and whether the two most shown versions differ by more than
//! chance (two-sided two-proportion z-test).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use edgerec_core::ab::{Arm, compare};
use edgerec_core::api::EventType;

/// `edgerec ab` arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Click-through per version of a model, and the significance of the difference.
    Report {
        /// The private host's config (its user store and data key).
        #[arg(long)]
        config: PathBuf,
        /// The model's name.
        #[arg(long)]
        model: String,
        /// Only events at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `edgerec ab`.
pub fn run(args: Args) -> Result<()> {
    let Command::Report { config, model, since, json } = args.command;
    if let Some(since) = &since {
        chrono::DateTime::parse_from_rfc3339(since).with_context(|| format!("--since `{since}` is not RFC 3339"))?;
    }
    let (_, users) = crate::tokens::private_host(&config)?;
    let mut arms: BTreeMap<String, Arm> = BTreeMap::new();
    for (_, event) in users.all_events()? {
        let Some(m) = event.model.as_ref().filter(|m| m.name == model) else { continue };
        // RFC 3339 UTC times as the host writes them compare as text.
        if since.as_deref().is_some_and(|s| event.ts.as_deref().is_some_and(|ts| ts < s)) {
            continue;
        }
        let arm = arms.entry(m.version.clone()).or_default();
        match event.kind {
            EventType::Impression => arm.impressions += 1,
            EventType::Click => arm.clicks += 1,
            _ => {}
        }
    }
    let mut shown: Vec<(&String, &Arm)> = arms.iter().collect();
    shown.sort_by_key(|(_, a)| std::cmp::Reverse(a.impressions));
    let test = match shown[..] {
        [(va, a), (vb, b), ..] => compare(*a, *b).map(|t| (va.clone(), vb.clone(), t)),
        _ => None,
    };
    if json {
        let report = serde_json::json!({
            "model": model,
            "versions": arms.iter().map(|(v, a)| (v.clone(), serde_json::json!({
                "impressions": a.impressions, "clicks": a.clicks, "click_through": a.click_through()
            }))).collect::<serde_json::Map<_, _>>(),
            "test": test.as_ref().map(|(a, b, t)| serde_json::json!({"a": a, "b": b, "result": t})),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    if arms.is_empty() {
        println!("no impressions or clicks name a version of {model} yet (feedback events carry \"model\")");
        return Ok(());
    }
    println!("{:>8}  {:>12}  {:>8}  {:>13}", "version", "impressions", "clicks", "click-through");
    for (version, arm) in &arms {
        println!("{version:>8}  {:>12}  {:>8}  {:>13.4}", arm.impressions, arm.clicks, arm.click_through());
    }
    match test {
        Some((a, b, t)) => println!(
            "version {b} vs {a}: {:+.4} click-through, z = {:.2}, p = {:.4}: {}",
            t.difference,
            t.z,
            t.p_value,
            if t.significant { "significant at 5%" } else { "not significant at 5% (keep the test running)" }
        ),
        None => println!("(a test needs two versions with impressions and at least one click)"),
    }
    Ok(())
}
