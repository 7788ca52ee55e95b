//! `wasi:nn` (the WIT `wasmtime-wasi-nn` implements) onto the host's models.
//! Each model a component may use (its `ai_models`) is a graph preloaded
//! under its name, for `load-by-name`; loading a graph from bytes (`load`)
//! is not offered: models are the host's, checked by sha256 when it loaded
//! them. `wasmtime-wasi-nn` supplies the interface; the backend is ours
//! (its `onnx` backend does not build as published).
//!
//! A graph takes `input_ids` and optionally `attention_mask` and
//! `token_type_ids` (i64, `[batch, sequence]`, zero type ids assumed) and
//! gives `last_hidden_state` (f32, `[batch, sequence, dims]`, row-major):
//! the guest tokenizes and pools, the host runs the model.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use edgerec_core::encoder::Tokens;
use wasmtime_wasi_nn::backend::{BackendError, BackendExecutionContext, BackendGraph, Id, NamedTensor};
use wasmtime_wasi_nn::wit::{TensorType, WasiNnCtx};
use wasmtime_wasi_nn::{ExecutionContext, Graph, GraphRegistry, Registry, Tensor};

use super::{Allowed, SharedModel};

/// The name of the output tensor.
pub const OUTPUT: &str = "last_hidden_state";

/// Most tokens (batch × sequence) in one `compute`.
pub const MAX_TOKENS_PER_CALL: usize = 1 << 16;

/// The graphs of the models a component may use, by name.
#[derive(Clone, Default)]
pub struct Graphs(Arc<BTreeMap<String, Graph>>);

impl Graphs {
    /// One graph per model of `models`.
    pub fn new(models: &BTreeMap<String, SharedModel>) -> Self {
        let graphs = models
            .iter()
            .map(|(name, model)| {
                let graph: Box<dyn BackendGraph> = Box::new(HeldGraph { model: model.clone() });
                (name.clone(), Graph::from(graph))
            })
            .collect();
        Self(Arc::new(graphs))
    }
}

impl GraphRegistry for Graphs {
    fn get(&self, name: &str) -> Option<&Graph> {
        self.0.get(name)
    }

    fn get_mut(&mut self, _: &str) -> Option<&mut Graph> {
        None // shared by every instance; nothing changes a graph
    }
}

/// A new instance's `wasi:nn` state: no backends to load bytes with, the
/// component's graphs by name.
pub fn context(allowed: &Allowed) -> WasiNnCtx {
    WasiNnCtx::new([], Registry::from(allowed.graphs.clone()))
}

/// A host model as a `wasi:nn` graph.
struct HeldGraph {
    model: SharedModel,
}

impl BackendGraph for HeldGraph {
    fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
        let context: Box<dyn BackendExecutionContext> =
            Box::new(Context { model: self.model.clone(), inputs: Vec::new(), output: None });
        Ok(ExecutionContext::from(context))
    }
}

/// One execution context: inputs set so far (the WITX-style calls) and the
/// last output.
struct Context {
    model: SharedModel,
    inputs: Vec<NamedTensor>,
    output: Option<Tensor>,
}

/// A failure for the guest (wasi-nn reports it as a runtime error with this text).
fn access(e: anyhow::Error) -> BackendError {
    BackendError::BackendAccess(wasmtime::Error::from_anyhow(e))
}

/// Input names by position, for inputs set by index.
const INPUTS: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];

fn i64s(tensor: &Tensor, name: &str) -> anyhow::Result<Vec<i64>> {
    if tensor.ty != TensorType::I64 {
        bail!("`{name}` must be i64, not {:?}", tensor.ty);
    }
    Ok(tensor.data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect())
}

impl Context {
    /// The model's output for `inputs`.
    fn run(&self, inputs: &[NamedTensor]) -> anyhow::Result<Tensor> {
        let find = |name: &str| inputs.iter().find(|t| t.name == name).map(|t| &t.tensor);
        let ids = find("input_ids").ok_or_else(|| anyhow!("no `input_ids` tensor"))?;
        let &[batch, seq] = ids.dimensions.as_slice() else {
            bail!("`input_ids` must be [batch, sequence], not {:?}", ids.dimensions);
        };
        let (batch, seq) = (batch as usize, seq as usize);
        if batch == 0 || seq == 0 {
            bail!("`input_ids` is empty ({batch} x {seq}); send at least one token");
        }
        let max_tokens = self.model.config().max_tokens;
        if seq > max_tokens {
            bail!("{seq} tokens per text; the model reads at most {max_tokens}");
        }
        if batch * seq > MAX_TOKENS_PER_CALL {
            bail!("{batch} x {seq} tokens in one call; at most {MAX_TOKENS_PER_CALL}: split the batch");
        }
        let ids_values = i64s(ids, "input_ids")?;
        if ids_values.len() != batch * seq {
            bail!("`input_ids` holds {} values for [{batch}, {seq}]", ids_values.len());
        }
        let mask = match find("attention_mask") {
            Some(mask) => {
                let values = i64s(mask, "attention_mask")?;
                if mask.dimensions != ids.dimensions || values.len() != ids_values.len() {
                    bail!("`attention_mask` must have the shape of `input_ids`");
                }
                values
            }
            None => vec![1; ids_values.len()],
        };
        let tokens = Tokens { batch, seq, ids: ids_values, mask, truncated: vec![false; batch] };
        let hidden = self.model.hidden(&tokens)?;
        let dims = self.model.config().dims;
        Ok(Tensor {
            dimensions: vec![batch as u32, seq as u32, dims as u32],
            ty: TensorType::Fp32,
            data: hidden.iter().flat_map(|v| v.to_le_bytes()).collect(),
        })
    }
}

impl BackendExecutionContext for Context {
    fn set_input(&mut self, id: Id, tensor: &Tensor) -> Result<(), BackendError> {
        let name = match id {
            Id::Name(name) => name,
            Id::Index(i) => {
                INPUTS.get(i as usize).ok_or_else(|| access(anyhow!("no input {i}; inputs: {INPUTS:?}")))?.to_string()
            }
        };
        self.inputs.retain(|t| t.name != name);
        self.inputs.push(NamedTensor { name, tensor: tensor.clone() });
        Ok(())
    }

    fn get_output(&mut self, id: Id) -> Result<Tensor, BackendError> {
        match (&id, &self.output) {
            (Id::Index(0), Some(out)) => Ok(out.clone()),
            (Id::Name(name), Some(out)) if name == OUTPUT => Ok(out.clone()),
            (_, None) => Err(access(anyhow!("no output yet: call compute first"))),
            _ => Err(access(anyhow!("no output {id:?}; the output is `{OUTPUT}`"))),
        }
    }

    fn compute(&mut self, inputs: Option<Vec<NamedTensor>>) -> Result<Option<Vec<NamedTensor>>, BackendError> {
        match inputs {
            // The WIT interface: inputs in, outputs out.
            Some(inputs) => {
                let tensor = self.run(&inputs).map_err(access)?;
                Ok(Some(vec![NamedTensor { name: OUTPUT.into(), tensor }]))
            }
            // The WITX interface: inputs set before, the output read after.
            None => {
                self.output = Some(self.run(&self.inputs).map_err(access)?);
                Ok(None)
            }
        }
    }
}
