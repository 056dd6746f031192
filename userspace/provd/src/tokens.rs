//! `provd token`: the REST API's bearer tokens, written straight to the store (the first admin
//! token has to come from somewhere other than the API).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use provd_store::{Actor, Scope, TokenRole, TokenSpec};

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Makes a token and prints its secret on stdout, once (only its SHA-256 is stored).
    Create {
        #[arg(long, short)]
        config: PathBuf,
        /// A unique name: what the audit log records for its changes.
        #[arg(long)]
        name: String,
        /// admin, operator or read-only.
        #[arg(long)]
        role: TokenRole,
        /// Limit it to devices behind this relay (CMTS); repeatable.
        #[arg(long = "scope-relay")]
        relays: Vec<Ipv4Addr>,
        /// Limit it to devices of this class of service; repeatable.
        #[arg(long = "scope-class")]
        classes: Vec<String>,
    },
    /// Lists the tokens (names, roles, scopes; never secrets) as JSON lines.
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Deletes a token by name.
    Delete {
        #[arg(long, short)]
        config: PathBuf,
        name: String,
    },
}

fn who() -> Actor {
    Actor::Cli(
        std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "root".into()),
    )
}

pub fn run(cmd: TokenCmd) -> Result<ExitCode> {
    match cmd {
        TokenCmd::Create {
            config,
            name,
            role,
            relays,
            classes,
        } => {
            let store = open(&config)?;
            let secret = provd_api::new_secret().context("making a secret")?;
            let spec = TokenSpec {
                name,
                role,
                scope: Scope { relays, classes },
                hash: provd_api::token_hash(&secret),
            };
            store.put_token(&spec, &who())?;
            println!("{secret}");
        }
        TokenCmd::List { config } => {
            for t in open(&config)?.list_tokens()? {
                println!("{}", serde_json::to_string(&t)?);
            }
        }
        TokenCmd::Delete { config, name } => open(&config)?.delete_token(&name, &who())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn open(config: &std::path::Path) -> Result<std::sync::Arc<dyn provd_store::Store>> {
    let policy = crate::load(config)?;
    let loc = crate::control::location(&policy);
    provd_store::open(&loc).with_context(|| format!("opening the store ({loc:?})"))
}
