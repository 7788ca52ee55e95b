//! edgerec's model code, shared by the WebAssembly functions and the native
//! host: one implementation of the public API types, the bundle format, the
//! item index, ranking, the text encoder and data preparation.
//!
//! It compiles for `wasm32-wasip2` and natively. The heavy parts are cargo
//! features so that a component pulls in only what it runs:
//!
//! | module | feature | used by |
//! |---|---|---|
//! | [`api`], [`bundle`], [`codec`] (binary files), [`index`], [`score`], [`recommend`], [`search`], [`ads`], [`coldstart`] | always | functions, host |
//! | [`encoder`] (tokenizer, pooling) | `tokenizer` | functions that encode through `wasi:nn` |
//! | `encoder::tract` (ONNX in tract) | `encoder` | functions (in-component encoding) |
//! | `encoder::bert` (candle BERT on safetensors), `encoder::load_native` | `native-encoders` | host (`fermyon:spin/llm`), offline commands |
//! | [`tower`] (user/item towers at serving time) | always | functions, evaluation |
//! | [`data`] (ingest, splits), [`eval`] (metrics, baselines) | `data` | host (`edgerec prepare/split/eval`) |
//! | [`train`] (candle two-tower fine-tuning), [`report`] (HTML) | `train` | host (`edgerec train/eval`) |
//! | `ads::fit` (Upworthy A/B tests: split, fit, metrics), `search::eval` (Home Depot) | `data` | host (`edgerec train-ads`, `eval-search`) |

pub mod ab;
pub mod ads;
pub mod api;
pub mod bundle;
pub mod codec;
pub mod coldstart;
pub mod crowd;
#[cfg(feature = "data")]
pub mod data;
#[cfg(feature = "tokenizer")]
pub mod encoder;
mod error;
#[cfg(feature = "data")]
pub mod eval;
pub mod index;
mod linalg;
pub mod recommend;
#[cfg(feature = "train")]
pub mod report;
pub mod score;
pub mod search;
pub mod tower;
#[cfg(feature = "train")]
pub mod train;
#[cfg(feature = "train")]
pub mod update;
pub mod versions;

pub use error::{Error, Result};
