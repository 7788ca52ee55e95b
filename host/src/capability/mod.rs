//! What the host gives a component, one module per capability, each with
//! the same lifecycle (Spin's `factor-*` crates are the model):
//!
//! 1. **`new`**, once per host: built from the [`HostConfig`].
//! 2. **`add_to_linker`**, once per engine: links the interfaces it provides.
//! 3. **`configure`**, once per component load (start-up, reload): checks
//!    what the component asks for in `spin.toml` and keeps what every
//!    instance of it will need (its mounts, its granted stores).
//! 4. **`prepare`**, once per instance: that instance's part of the state.
//!
//! [`InstanceState`], the state of one instance, holds each capability's
//! part in a field of its own. Adding a capability means writing its module
//! and adding one line to the `capabilities!` list at the end of this file;
//! nothing else changes.
//!
//! | capability | provides |
//! |---|---|
//! | [`files`] | WASI 0.2 (`wasi:cli`, `wasi:filesystem`, clocks, random): mounted files read-only, environment, stdout/stderr |
//! | [`outbound_http`] | `wasi:http` types for the handler; outgoing requests denied |
//! | [`key_value`] | Spin's `fermyon:spin/key-value@2.0.0`, on redb |
//! | [`variables`] | Spin's `fermyon:spin/variables@2.0.0`: the component's `variables` |
//! | [`models`] | the host's text encoders, per `ai_models`: Spin's `fermyon:spin/llm@2.0.0` embeddings and `wasi:nn` graphs |
//! | [`limits`] | memory limit and deadline of each instance |

pub mod files;
pub mod key_value;
pub mod limits;
pub mod models;
pub mod outbound_http;
pub mod variables;

use anyhow::{Context, Result};
use wasmtime::Store;
use wasmtime::component::Linker;

use crate::config::HostConfig;
use crate::manifest;

/// Why an instance is made: it changes what some capabilities grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// To serve one request.
    Request,
    /// To serve one request from a pre-initialized snapshot: as `Request`,
    /// but its files are not mounted. The function read them in `preinit`,
    /// and the snapshot's file handles belonged to that instance, so it
    /// cannot open them again anyway; mounting costs syscalls per request.
    RequestFromSnapshot,
    /// To run `preinit` once before a snapshot: no stores (the snapshot
    /// keeps memory, not handles), more memory, no deadline.
    Preinit,
}

impl Purpose {
    /// Whether the instance serves a request (either kind).
    pub fn is_request(self) -> bool {
        matches!(self, Purpose::Request | Purpose::RequestFromSnapshot)
    }
}

/// One host capability (see the module docs for the lifecycle).
pub trait Capability: Sized + Send + Sync + 'static {
    /// Name in errors and logs.
    const NAME: &'static str;
    /// What it keeps for one loaded component.
    type ComponentState: Send + Sync + 'static;
    /// Its part of one instance's state.
    type InstanceState: Send + 'static;

    /// Built once per host.
    fn new(config: &HostConfig) -> Result<Self>;

    /// Links the interfaces it provides.
    fn add_to_linker(linker: &mut Linker<InstanceState>) -> Result<()>;

    /// Checks what `component` asks of this capability; an error refuses
    /// the component.
    fn configure(&self, component: &manifest::Component) -> Result<Self::ComponentState>;

    /// The state of one new instance of a component.
    fn prepare(&self, component: &Self::ComponentState, purpose: Purpose) -> Result<Self::InstanceState>;

    /// Sets what it governs on the instance's store (limits, deadlines).
    fn prepare_store(&self, _store: &mut Store<InstanceState>, _purpose: Purpose) {}
}

/// Declares the host's capabilities: one line each, `field: Type`.
macro_rules! capabilities {
    ($($field:ident: $capability:ty),* $(,)?) => {
        /// Every capability of the host.
        pub struct Capabilities {
            $(
                #[doc = concat!("`", stringify!($field), "`")]
                pub $field: $capability,
            )*
        }

        /// What each capability keeps for one loaded component.
        pub struct ComponentStates {
            $(
                #[doc = concat!("`", stringify!($field), "`")]
                pub $field: <$capability as Capability>::ComponentState,
            )*
        }

        /// The state of one instance: each capability's part.
        pub struct InstanceState {
            $(
                #[doc = concat!("`", stringify!($field), "`")]
                pub $field: <$capability as Capability>::InstanceState,
            )*
        }

        impl Capabilities {
            /// Builds every capability from the host's config.
            pub fn new(config: &HostConfig) -> Result<Self> {
                Ok(Self {
                    $(
                        $field: <$capability as Capability>::new(config)
                            .with_context(|| format!("capability `{}`", <$capability as Capability>::NAME))?,
                    )*
                })
            }

            /// Links every capability's interfaces.
            pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> Result<()> {
                $(
                    <$capability as Capability>::add_to_linker(linker)
                        .with_context(|| format!("linking capability `{}`", <$capability as Capability>::NAME))?;
                )*
                Ok(())
            }

            /// Checks `component` against every capability.
            pub fn configure(&self, component: &manifest::Component) -> Result<ComponentStates> {
                Ok(ComponentStates {
                    $(
                        $field: self.$field.configure(component).with_context(|| {
                            format!("component `{}`: {}", component.id, <$capability as Capability>::NAME)
                        })?,
                    )*
                })
            }

            /// A store for one new instance of a configured component.
            pub fn store(
                &self,
                engine: &wasmtime::Engine,
                component: &ComponentStates,
                purpose: Purpose,
            ) -> Result<Store<InstanceState>> {
                let state = InstanceState {
                    $( $field: self.$field.prepare(&component.$field, purpose)?, )*
                };
                let mut store = Store::new(engine, state);
                $( self.$field.prepare_store(&mut store, purpose); )*
                Ok(store)
            }
        }
    };
}

capabilities! {
    files: files::Files,
    outbound_http: outbound_http::OutboundHttp,
    key_value: key_value::KeyValue,
    variables: variables::Variables,
    models: models::Models,
    limits: limits::Limits,
}
