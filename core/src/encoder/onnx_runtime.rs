//! The ONNX Runtime engine, through the `ort` crate with the library loaded
//! at run time: `libonnxruntime.so` from the `onnxruntime` PyPI wheel (CPU),
//! which `scripts/setup` fetches, or from `onnxruntime-gpu` (then the CUDA
//! execution provider runs the model on an NVIDIA GPU when there is one).
//! Nothing is downloaded or linked at build time, and a machine without
//! the library falls back to the pure-Rust engines ([`super::load_native`]).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::ep::{CUDA, ExecutionProvider};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;

use super::{Device, EncoderConfig, TextEncoder, TextTokenizer, Tokens, read_checked};
use crate::{Error, Result};

/// The environment variable naming the library (`ORT_DYLIB_PATH` is read too).
pub const LIBRARY_ENV: &str = "EDGEREC_ONNXRUNTIME";

/// Where `scripts/setup` puts the library, relative to the repository.
pub const DEFAULT_LIBRARY: &str = ".edgerec/lib/libonnxruntime.so";

/// The library to load: `$EDGEREC_ONNXRUNTIME`, else `$ORT_DYLIB_PATH`,
/// else [`DEFAULT_LIBRARY`] under the current directory, if it exists.
pub fn library_path() -> Option<PathBuf> {
    [LIBRARY_ENV, "ORT_DYLIB_PATH"]
        .iter()
        .find_map(|var| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from))
        .or_else(|| Some(PathBuf::from(DEFAULT_LIBRARY)).filter(|p| p.exists()))
}

/// The process's ONNX Runtime, once loaded (a process holds one).
static LOADED: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

/// Loads ONNX Runtime from `library` once per process; later calls return
/// the first outcome, whatever library they name.
pub fn init(library: &Path) -> Result<&'static Environment> {
    LOADED
        .get_or_init(|| {
            let builder = ort::init_from(library).map_err(|e| format!("loading {}: {e}", library.display()))?;
            builder.with_name("edgerec").build().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Encoder(format!("ONNX Runtime: {e}; run scripts/setup, or set {LIBRARY_ENV}")))
}

/// ONNX Runtime: the one already loaded, else the library at
/// [`library_path`] if it is there and loads.
pub fn environment() -> Option<&'static Environment> {
    match LOADED.get() {
        Some(loaded) => loaded.as_ref().ok(),
        None => library_path().and_then(|path| init(&path).ok()),
    }
}

/// An ONNX encoder run by ONNX Runtime.
pub struct OrtEncoder {
    config: EncoderConfig,
    tokenizer: TextTokenizer,
    // `Session::run` takes `&mut`; one run at a time uses every thread.
    session: Mutex<Session>,
    inputs: Vec<String>,
    output: String,
    device: &'static str,
}

fn ort_err(context: &str) -> impl Fn(ort::Error) -> Error + '_ {
    move |e| Error::Encoder(format!("ONNX Runtime, {context}: {e}"))
}

impl OrtEncoder {
    /// Loads the encoder at `dir` (its ONNX graph, sha256-checked: the
    /// weights or their export) into ONNX Runtime `environment`
    /// ([`environment`]); on the GPU when `device` allows and the library
    /// has the CUDA provider and finds a GPU.
    pub fn load(environment: &Environment, dir: &Path, device: Device) -> Result<Self> {
        let config = EncoderConfig::read(dir)?;
        let graph = config.onnx_graph(dir)?.ok_or_else(|| {
            Error::Encoder(format!(
                "{} has no ONNX graph for ONNX Runtime; run scripts/export-onnx {}",
                config.name,
                dir.display()
            ))
        })?;
        let output = graph.output;
        let onnx = read_checked(&graph.path, &graph.sha256)?;
        let want_gpu = device == Device::Auto && CUDA::is_available().unwrap_or(false);
        // A GPU build of the library on a machine without a usable GPU
        // fails to register CUDA: then the CPU.
        let (session, cuda) = match want_gpu.then(|| session(environment, &onnx, true)) {
            Some(Ok(session)) => (session, true),
            _ => (session(environment, &onnx, false)?, false),
        };
        let inputs: Vec<String> = session.inputs().iter().map(|i| i.name().to_string()).collect();
        for name in &inputs {
            if !matches!(name.as_str(), "input_ids" | "attention_mask" | "token_type_ids") {
                return Err(Error::Encoder(format!("unexpected model input `{name}`")));
            }
        }
        if !session.outputs().iter().any(|o| o.name() == output) {
            return Err(Error::Encoder(format!("{}: the model has no output `{output}`", config.name)));
        }
        let tokenizer = TextTokenizer::load(dir, &config)?;
        Ok(Self {
            config,
            tokenizer,
            session: Mutex::new(session),
            inputs,
            output,
            device: if cuda { "onnxruntime-cuda" } else { "onnxruntime-cpu" },
        })
    }
}

/// A session for `onnx`: every CPU thread, full graph optimization, and
/// the CUDA provider (required) when `cuda`.
fn session(environment: &Environment, onnx: &[u8], cuda: bool) -> Result<Session> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut builder = Session::builder(environment)
        .map_err(ort_err("session options"))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| Error::Encoder(format!("ONNX Runtime, optimization level: {e}")))?
        .with_intra_threads(threads)
        .map_err(|e| Error::Encoder(format!("ONNX Runtime, threads: {e}")))?;
    if cuda {
        builder = builder
            .with_execution_providers([CUDA::default().build().error_on_failure()])
            .map_err(|e| Error::Encoder(format!("ONNX Runtime, CUDA provider: {e}")))?;
    }
    builder.commit_from_memory(onnx).map_err(ort_err("loading the model"))
}

impl TextEncoder for OrtEncoder {
    fn config(&self) -> &EncoderConfig {
        &self.config
    }

    fn engine(&self) -> String {
        self.device.into()
    }

    fn tokenize(&self, texts: &[&str]) -> Result<Tokens> {
        self.tokenizer.tokenize(texts)
    }

    fn hidden(&self, tokens: &Tokens) -> Result<Vec<f32>> {
        let shape = [tokens.batch, tokens.seq];
        let mut feed = Vec::with_capacity(self.inputs.len());
        for name in &self.inputs {
            let values = match name.as_str() {
                "input_ids" => tokens.ids.clone(),
                "attention_mask" => tokens.mask.clone(),
                _ => vec![0i64; tokens.ids.len()],
            };
            let tensor = Tensor::from_array((shape, values)).map_err(ort_err("input tensor"))?;
            feed.push((name.as_str(), tensor));
        }
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(feed).map_err(ort_err("running the model"))?;
        let (_, hidden) =
            outputs[self.output.as_str()].try_extract_tensor::<f32>().map_err(ort_err("reading the output"))?;
        Ok(hidden.to_vec())
    }
}
