//! content-sync: the city side of the kiosk system. It turns admins' sources (Word,
//! Markdown, Excel/CSV, TOML) into signed bundles, inspects and diffs them, and (see the
//! `mqtt` module) publishes them to kiosks.

use clap::{Parser, Subcommand};

pub mod authoring;
pub mod fleet;
pub mod inbox;
pub mod mqtt;

#[derive(Parser, Debug)]
#[command(
    name = "content-sync",
    version,
    about = "Author, sign, publish and serve 政务公开 kiosk content"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a signed bundle from a source folder.
    Build(authoring::BuildArgs),
    /// Generate an Ed25519 signing key and its root file.
    Keygen(authoring::KeygenArgs),
    /// (Re)sign a bundle's manifest.
    Sign(authoring::SignArgs),
    /// Verify a bundle against a root.
    Verify(authoring::VerifyArgs),
    /// Show what a bundle holds.
    Inspect(authoring::InspectArgs),
    /// Show what would change on a kiosk going from OLD to NEW.
    Diff(authoring::DiffArgs),
    /// Store a bundle's blobs for `serve` and publish its manifest, retained.
    Publish(mqtt::PublishArgs),
    /// Answer kiosks' blob requests from a blob store.
    Serve(mqtt::ServeArgs),
    /// Send a signed remote command and wait for its ack.
    Command(mqtt::CommandArgs),
    /// Receive residents' sealed submissions, store each once, send receipts, export registers.
    Inbox(inbox::InboxArgs),
    /// Watch the fleet: dashboard, alerts, metrics and the 五统一 audit.
    Fleet(fleet::FleetArgs),
    /// Run N virtual kiosks speaking the real protocol, for tests and benchmarks.
    Simulate(fleet::SimulateArgs),
}

/// Parses the command line and runs the subcommand.
pub fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    run_with(Cli::parse())
}

pub fn run_with(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(a) => authoring::build(a),
        Command::Keygen(a) => authoring::keygen(a),
        Command::Sign(a) => authoring::sign(a),
        Command::Verify(a) => authoring::verify(a),
        Command::Inspect(a) => authoring::inspect(a),
        Command::Diff(a) => authoring::diff(a),
        Command::Publish(a) => mqtt::publish(a),
        Command::Serve(a) => mqtt::serve(a),
        Command::Command(a) => mqtt::command(a),
        Command::Inbox(a) => inbox::inbox(a),
        Command::Fleet(a) => fleet::fleet(a),
        Command::Simulate(a) => fleet::simulate(a),
    }
}
