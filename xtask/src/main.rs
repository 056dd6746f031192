//! Project chores: `cargo xtask e2e dhcp` runs the end-to-end suites against real clients in
//! network namespaces; `cargo xtask bench dhcp --vs kea,...` runs provd and peer servers under the
//! same load in one run and prints RESULT/RATIO lines; `cargo xtask package` builds the .deb.

mod bench;
mod e2e;
mod package;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "provd project tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// End-to-end suites against real peers (needs root: makes network namespaces).
    E2e(e2e::Args),
    /// Whole-server benchmarks against peer servers, side by side in one run.
    Bench(bench::Args),
    /// provd as a Debian package (.deb in target/debian): binary, default config, systemd unit.
    Package(package::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::E2e(args) => e2e::run(args),
        Cmd::Bench(args) => bench::run(args),
        Cmd::Package(args) => package::run(&args),
    }
}
