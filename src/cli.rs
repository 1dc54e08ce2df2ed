//! The command line: `kiosk` runs the UI; subcommands serve people and scripts.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser, Debug)]
#[command(name = "kiosk", version, about = "政务公开专区 touch kiosk")]
pub struct Cli {
    /// Config file.
    #[arg(long, global = true, default_value = "/etc/kiosk/kiosk.toml")]
    pub config: PathBuf,
    /// Data directory (overrides the config's data_dir).
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the kiosk UI (the default).
    Run,
    /// Verify and activate a bundle directory, as sync does.
    Install { bundle: PathBuf },
    /// Search the installed content (or a given content/bundle directory).
    Search {
        /// A content version directory or a bundle directory; default: the installed content.
        #[arg(long)]
        content: Option<PathBuf>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        /// How many hits to print.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        query: String,
    },
    /// Render one page of the UI with the installed content to a PNG, without a display.
    Screenshot {
        /// home, policies, guides, faqs, reader, reader-repealed, guide, catalog, catalog-item,
        /// search, keyboard, qr, request, request-errors, suggestion, countdown, attract, pin, admin.
        #[arg(long)]
        page: String,
        /// 1080×1920 instead of 1920×1080.
        #[arg(long)]
        portrait: bool,
        /// 关怀模式 (large text, high contrast).
        #[arg(long)]
        care: bool,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the date N working days after a date, from the installed calendar.
    Deadline {
        #[arg(long)]
        from: chrono::NaiveDate,
        #[arg(long = "working-days")]
        working_days: u32,
    },
}

pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let mut config = Config::load(&cli.config)?;
    if let Some(data) = cli.data {
        config.data_dir = data;
    }
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run_ui(&config),
        Command::Install { bundle } => {
            let report = crate::bundle::install_dir(&config, &bundle)?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Search { content, json, limit, query } => {
            crate::search::cli(&config, content.as_deref(), json, limit, &query)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Screenshot { page, portrait, care, out } => {
            screenshot(&config, &page, portrait, care, &out)
        }
        Command::Deadline { from, working_days } => {
            let content = crate::bundle::open_installed(&config)?;
            let due = content.calendar()?.add_working_days(from, working_days)?;
            println!("{due}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(feature = "ui")]
fn run_ui(config: &Config) -> anyhow::Result<ExitCode> {
    crate::ui::run(config)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "ui")]
fn screenshot(
    config: &Config,
    page: &str,
    portrait: bool,
    care: bool,
    out: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    crate::ui::screenshot::render(
        config,
        crate::ui::Content::installed(config),
        page,
        portrait,
        care,
        out,
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "ui"))]
fn screenshot(
    _config: &Config,
    _page: &str,
    _portrait: bool,
    _care: bool,
    _out: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this kiosk was built without the `ui` feature; rebuild with default features to take screenshots")
}

#[cfg(not(feature = "ui"))]
fn run_ui(_config: &Config) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this kiosk was built without the `ui` feature; rebuild with default features to run the UI")
}
