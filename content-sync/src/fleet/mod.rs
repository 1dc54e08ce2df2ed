//! Fleet operations: the operators' dashboard, alerts, metrics and the 五统一 audit.

#[derive(clap::Args, Debug)]
pub struct FleetArgs {}

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {}

pub fn fleet(_: FleetArgs) -> anyhow::Result<()> {
    anyhow::bail!("the fleet dashboard is not implemented yet (issue 7)")
}

pub fn simulate(_: SimulateArgs) -> anyhow::Result<()> {
    anyhow::bail!("the fleet simulator is not implemented yet (issue 7)")
}
