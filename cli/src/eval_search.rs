//! `edgerec eval-search`: BM25, semantic, hybrid and learned-re-ranker
//! nDCG@10 on graded judgments (Home Depot), on held-out queries.

use std::path::PathBuf;

use anyhow::{Result, bail};
use edgerec_core::search::Bm25;
use edgerec_core::search::relevance;

use crate::encoding::{EncoderArgs, text_embeddings};

/// `edgerec eval-search` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The judgments CSV (`product_uid, product_title, search_term, relevance`; .gz ok).
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    encoder: EncoderArgs,
    /// Where embeddings are cached.
    #[arg(long, default_value = ".edgerec/work/search")]
    work: PathBuf,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Evaluates and prints the table (or JSON).
pub fn run(args: Args) -> Result<()> {
    let encoder_dir = args.encoder.dir()?;
    let (data, encoder, work, json) = (&args.data, &encoder_dir, &args.work, args.json);
    let judgments = relevance::read_home_depot(data)?;
    if judgments.queries.is_empty() {
        bail!("--data {}: no query has two different grades; nothing to rank", data.display());
    }
    let bm25 = Bm25::build(&judgments.titles);
    let titles: Vec<&str> = judgments.titles.iter().map(String::as_str).collect();
    let queries: Vec<&str> = judgments.queries.iter().map(|q| q.text.as_str()).collect();
    let (title_vectors, info) = text_embeddings(work, "titles", &titles, encoder, 64)?;
    let (query_vectors, _) = text_embeddings(work, "queries", &queries, encoder, 64)?;
    let (report, _) = relevance::evaluate(&judgments, &bm25, &title_vectors, &query_vectors, info.dims)?;
    let table = format!(
        "Home Depot search relevance, nDCG@10 on {} held-out queries ({} used to fit the linear weight and the re-ranker, {} without signal left out)\n\
         {:<38} {:>8}\n{:<38} {:>8.4}\n{:<38} {:>8.4}\n{:<38} {:>8.4}\n{:<38} {:>8.4}\n{:<38} {:>8.4}",
        report.test_queries,
        report.fit_queries,
        report.uninformative_queries,
        "method",
        "nDCG@10",
        "bm25",
        report.bm25,
        format!("semantic ({})", info.name),
        report.semantic,
        "hybrid, RRF (k = 60)",
        report.hybrid_rrf,
        format!("hybrid, linear (w = {:.2})", report.linear_semantic_weight),
        report.hybrid_linear,
        "learned re-ranker (fitted on the rest)",
        report.learned,
    );
    if json {
        eprintln!("{table}");
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{table}");
    }
    Ok(())
}
