//! End-to-end suites (owned by the rig work).

#[derive(clap::Args)]
pub struct Args {
    /// Which suite: dhcp
    pub suite: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::bail!("e2e suite {:?} is not written yet", args.suite)
}
