//! `edgerec tokens create|revoke|list`: bearer tokens of a private host.
//! The token is printed once, alone on stdout; only its hash is kept.

use std::path::PathBuf;

use anyhow::{Context, Result};
use edgerec_host::config::{HostConfig, PrivateConfig, Settings};
use edgerec_host::private::{Scope, tokens};
use edgerec_host::users::Users;

/// `edgerec tokens` arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Make a token; prints it once on stdout.
    Create {
        /// The private host's --config file (says where the tokens file is).
        #[arg(long)]
        config: PathBuf,
        /// Comma-separated: feedback:write, users:read, users:delete, users:personalize, metrics:read, admin.
        #[arg(long)]
        scopes: String,
    },
    /// Revoke a token by its id (the 8 hex digits after `edgerec_`).
    Revoke {
        /// The private host's --config file.
        #[arg(long)]
        config: PathBuf,
        /// The token's id.
        id: String,
    },
    /// List the tokens: ids, scopes, dates (no secrets are kept).
    List {
        /// The private host's --config file.
        #[arg(long)]
        config: PathBuf,
    },
}

/// The private-zone settings of a --config file.
pub fn private_config(config: &std::path::Path) -> Result<PrivateConfig> {
    let settings = Settings::read(config)?;
    // Defaults resolve beside the config file; the manifest is not needed.
    PrivateConfig::new(&settings, &config.with_file_name("spin.toml"))
}

/// A private host's whole configuration and its user store, from its
/// --config file (`edgerec update`, `ab report`, `publish --config`:
/// commands that read the feedback). An edge's config is refused.
pub fn private_host(config: &std::path::Path) -> Result<(HostConfig, Users)> {
    let host = HostConfig::new(Settings::read(config)?, config)?;
    let private = host.private.as_ref().with_context(|| {
        format!("--config {}: the feedback lives on the private host; set zone = \"private\"", config.display())
    })?;
    let users = edgerec_host::private::open_store(private)?;
    Ok((host, users))
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Create { config, scopes } => {
            let scopes = Scope::parse_list(&scopes)?;
            let path = private_config(&config)?.tokens_file;
            let (token, entry) = tokens::create(&path, &scopes)?;
            let names: Vec<&str> = entry.scopes.iter().map(|s| s.as_str()).collect();
            eprintln!("token {} ({}) added to {}; it is shown once:", entry.id, names.join(","), path.display());
            println!("{token}");
        }
        Command::Revoke { config, id } => {
            let path = private_config(&config)?.tokens_file;
            let entry = tokens::revoke(&path, &id)?;
            eprintln!("revoked token {} (running hosts stop accepting it within a second)", entry.id);
        }
        Command::List { config } => {
            for entry in tokens::list(&private_config(&config)?.tokens_file)? {
                let names: Vec<&str> = entry.scopes.iter().map(|s| s.as_str()).collect();
                println!("{}  {}  {}", entry.id, entry.created, names.join(","));
            }
        }
    }
    Ok(())
}
