//! The city inbox: receives sealed submissions, stores each once, answers with receipts.

#[derive(clap::Args, Debug)]
pub struct InboxArgs {}

pub fn inbox(_: InboxArgs) -> anyhow::Result<()> {
    anyhow::bail!("the city inbox is not implemented yet (issue 6)")
}
