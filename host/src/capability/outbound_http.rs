//! `wasi:http`: the types the incoming handler needs, and outgoing
//! requests, which are always denied. edgerec functions declare no
//! `allowed_outbound_hosts` (the manifest refuses any), so a request a
//! component makes anyway fails with `HTTP-request-denied`, as under Spin.

use anyhow::Result;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::{Capability, InstanceState, Purpose};
use crate::config::HostConfig;
use crate::manifest;

/// The capability.
pub struct OutboundHttp;

/// One instance's HTTP context.
pub struct HttpState {
    ctx: WasiHttpCtx,
    hooks: DenyOutbound,
}

impl Capability for OutboundHttp {
    const NAME: &'static str = "outbound-http";
    type ComponentState = ();
    type InstanceState = HttpState;

    fn new(_: &HostConfig) -> Result<Self> {
        Ok(Self)
    }

    fn add_to_linker(linker: &mut Linker<InstanceState>) -> Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
        Ok(())
    }

    /// Nothing to check: the manifest already refuses `allowed_outbound_hosts`.
    fn configure(&self, _: &manifest::Component) -> Result<()> {
        Ok(())
    }

    fn prepare(&self, _: &(), _: Purpose) -> Result<HttpState> {
        Ok(HttpState { ctx: WasiHttpCtx::new(), hooks: DenyOutbound })
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.outbound_http.ctx,
            table: self.files.table(),
            hooks: &mut self.outbound_http.hooks,
        }
    }
}

/// Refuses every outgoing request.
struct DenyOutbound;

impl WasiHttpHooks for DenyOutbound {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
