//! The kiosk binary: parses the command line and runs. See `kiosk --help`.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Logs go to stderr, which the unit sends to the journal. `RUST_LOG` overrides the
    // default (tantivy reports every merged file at info); nothing personal is ever logged (submissions are sealed before they are
    // handled, queries are never logged).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tantivy=warn")),
        )
        .init();
    match kiosk::cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kiosk: {err:#}");
            ExitCode::FAILURE
        }
    }
}
