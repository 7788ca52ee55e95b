//! edgerec's model code, shared by the WebAssembly functions and the native
//! host: one implementation of the public API types, the bundle format, the
//! item index, ranking, the text encoder and data preparation.
//!
//! It compiles for `wasm32-wasip2` and natively. The heavy parts are cargo
//! features so that a component pulls in only what it runs:
//!
//! | module | feature | used by |
//! |---|---|---|
//! | [`api`], [`bundle`], [`index`], [`score`], [`recommend`] | always | functions, host |
//! | [`encoder`] (tract + tokenizers) | `encoder` | host (`edgerec index`), request-time encoding |
//! | [`data`] (CSV, gzip, dates) | `data` | host (`edgerec prepare`) |

pub mod api;
pub mod bundle;
#[cfg(feature = "data")]
pub mod data;
#[cfg(feature = "encoder")]
pub mod encoder;
mod error;
pub mod index;
pub mod recommend;
pub mod score;

pub use error::{Error, Result};
