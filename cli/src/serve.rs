//! `edgerec serve`: the functions of a Spin manifest on the edgerec host.
//! Every host setting is a flag here, with an environment fallback, and a
//! key of the `--config` file (see `edgerec_host::config`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use edgerec_host::config::{HostConfig, Settings};
use edgerec_host::server::Server;

/// `edgerec serve` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The Spin manifest.
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "EDGEREC_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Host settings (TOML), with the same keys as the flags below (memory_limit_mib = 128, ...); flags and environment win.
    #[arg(long, env = "EDGEREC_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
}

/// Loads the app and serves until Ctrl-C.
pub fn run(args: Args) -> Result<()> {
    let file = args.config.as_deref().map(Settings::read).transpose()?.unwrap_or_default();
    let config = HostConfig::new(args.settings.or(file), &args.manifest)?;
    let zone = config.zone;
    let server = Arc::new(Server::new(&args.manifest, config)?);
    let app_dir =
        args.manifest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")).to_path_buf();
    let encoders = std::env::var_os("EDGEREC_ENCODERS").map_or_else(|| app_dir.join("models/encoders"), PathBuf::from);
    server.set_updater(Arc::new(move |job| crate::update::run_job(job, &encoders)));
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("--listen {}", args.listen))?;
        println!("edgerec serving {} on http://{} (zone {})", args.manifest.display(), args.listen, zone.as_str());
        for route in server.routes() {
            println!("  {route}");
        }
        server.run(listener).await
    })
}
