//! The kiosk binary: parses the command line and runs. See `kiosk --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match kiosk::cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kiosk: {err:#}");
            ExitCode::FAILURE
        }
    }
}
