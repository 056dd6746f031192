//! MTA findings (issue 18 item 5): forged and hijacking enrollment INFORMs. The scenario lives
//! with the `mta` suite's rig (a real MTA of dhclient, snmpd and snmpinform behind dhcrelay);
//! this suite runs it too, so `cargo xtask e2e hardening` covers every finding.

use std::path::Path;

use anyhow::{Context, Result};

use super::{Ctx, Scenarios};

pub fn scenarios() -> Scenarios<Ctx> {
    vec![(
        "forged-inform",
        forged_inform as fn(&Ctx, &Path) -> Result<()>,
    )]
}

fn forged_inform(ctx: &Ctx, dir: &Path) -> Result<()> {
    let mta = crate::e2e::mta::Ctx::new(ctx.provd.clone()).context("the mta suite's rig")?;
    crate::e2e::mta::forged_inform(&mta, dir)
}
