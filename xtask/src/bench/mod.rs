//! Whole-server benchmarks (owned by the load-generator work).

#[derive(clap::Args)]
pub struct Args {
    /// Which protocol: dhcp
    pub what: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::bail!("bench {:?} is not written yet", args.what)
}
