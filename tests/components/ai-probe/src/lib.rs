//! A test-only component that hands what it is sent to the host's
//! interfaces as a guest would, and answers what the host said:
//!
//! - `POST .../embed` with `{"model": "...", "texts": ["..."]}`: Spin's
//!   `llm::generate_embeddings`; answers `{"embeddings": [[...]],
//!   "prompt_token_count": n}` or `{"error": "..."}` (status 200 either way:
//!   the host's answer is the payload).
//! - `POST .../infer` with `{"model": "...", "prompt": "..."}`: `llm::infer`.
//! - `GET .../variable/<name>`: `variables::get`, `{"value"}` or `{"error"}`.

use serde::Deserialize;
use serde_json::json;
use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::llm::{self, EmbeddingModel, InferencingModel};

/// `#[http_component]` generates `unsafe` C-ABI glue; the `allow` covers it alone.
#[allow(unsafe_code)]
mod entry {
    #[spin_sdk::http_component]
    async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
        super::handle(req).await
    }
}

#[derive(Deserialize)]
struct Embed {
    model: String,
    texts: Vec<String>,
}

#[derive(Deserialize)]
struct Infer {
    model: String,
    prompt: String,
}

async fn handle(req: IncomingRequest) -> Response {
    let path = req.path_with_query().unwrap_or_default();
    let body = req.into_body().await.unwrap_or_default();
    let answer = if let Some((_, name)) = path.rsplit_once("/variable/") {
        match spin_sdk::variables::get(name) {
            Ok(value) => json!({ "value": value }),
            Err(e) => json!({ "error": format!("{e:?}") }),
        }
    } else if path.ends_with("/embed") {
        match serde_json::from_slice::<Embed>(&body) {
            Ok(embed) => match llm::generate_embeddings(EmbeddingModel::Other(&embed.model), &embed.texts) {
                Ok(result) => json!({
                    "embeddings": result.embeddings,
                    "prompt_token_count": result.usage.prompt_token_count,
                }),
                Err(e) => json!({ "error": format!("{e:?}") }),
            },
            Err(e) => return Response::builder().status(400).body(e.to_string()).build(),
        }
    } else if path.ends_with("/infer") {
        match serde_json::from_slice::<Infer>(&body) {
            Ok(infer) => match llm::infer(InferencingModel::Other(&infer.model), &infer.prompt) {
                Ok(result) => json!({ "text": result.text }),
                Err(e) => json!({ "error": format!("{e:?}") }),
            },
            Err(e) => return Response::builder().status(400).body(e.to_string()).build(),
        }
    } else {
        return Response::builder().status(404).body("embed, infer or variable/<name>").build();
    };
    Response::builder().status(200).header("content-type", "application/json").body(answer.to_string()).build()
}
