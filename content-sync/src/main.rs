//! The `content-sync` binary: parses the command line and calls the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    match content_sync::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("content-sync: {err:#}");
            ExitCode::FAILURE
        }
    }
}
