//! Spin's component variables (`fermyon:spin/variables@2.0.0`, what
//! spin-sdk's `variables::get` imports): the `variables` of the component in
//! `spin.toml`, templates over `[variables]` resolved when the manifest is
//! read (values from `SPIN_VARIABLE_<NAME>`, else the default).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use wasmtime::component::{HasSelf, Linker};

use super::{Capability, InstanceState, Purpose};
use crate::config::HostConfig;
use crate::manifest;

/// Generated from `host/wit/variables.wit`.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/variables.wit",
        world: "variables-host",
        imports: { default: trappable },
    });
}

use bindings::fermyon::spin::variables::{self as variables, Error, Host};

/// The capability (it keeps nothing of its own).
pub struct Variables;

/// One component's variables (shared by its instances).
#[derive(Clone, Default)]
pub struct ComponentVariables {
    values: Arc<BTreeMap<String, String>>,
}

impl Capability for Variables {
    const NAME: &'static str = "variables";
    type ComponentState = ComponentVariables;
    type InstanceState = ComponentVariables;

    fn new(_: &HostConfig) -> Result<Self> {
        Ok(Self)
    }

    fn add_to_linker(linker: &mut Linker<InstanceState>) -> Result<()> {
        variables::add_to_linker::<InstanceState, HasSelf<ComponentVariables>>(linker, |s| &mut s.variables)?;
        Ok(())
    }

    fn configure(&self, component: &manifest::Component) -> Result<ComponentVariables> {
        Ok(ComponentVariables { values: Arc::new(component.variables.clone()) })
    }

    fn prepare(&self, component: &ComponentVariables, _: Purpose) -> Result<ComponentVariables> {
        // `preinit` reads them too: what it loads may depend on them, and the
        // snapshot is keyed by their values (see `function::fingerprint`).
        Ok(component.clone())
    }
}

impl Host for ComponentVariables {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Ok(Err(Error::InvalidName(format!("`{name}`: variable names are lower_snake_case"))));
        }
        Ok(self.values.get(&name).cloned().ok_or(Error::Undefined(format!("no variable `{name}` in spin.toml"))))
    }
}
