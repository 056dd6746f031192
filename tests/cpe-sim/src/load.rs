//! Load mode: complete Inform sessions over keep-alive connections.
pub fn run(_a: Args) -> anyhow::Result<()> {
    anyhow::bail!("load mode: not yet")
}
#[derive(Debug, clap::Args)]
pub struct Args {}
