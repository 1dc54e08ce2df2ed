//! Printing through CUPS: the kiosk's one print queue (`config.printer`), jobs submitted
//! with `lp` on a background thread, and the queue's state from `lpstat` for the health
//! report.
//!
//! CUPS is reached through its command-line clients rather than libcups, so the kiosk
//! links nothing from CUPS and a missing or hung scheduler can only ever cost a child
//! process, which is killed after [`CUPS_DEADLINE`]. The scheduler is the one the
//! clients find by themselves (`CUPS_SERVER`, `~/.cups/client.conf`, the local socket)
//! unless a [`Printer`] names one.

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::sync::protocol::PrinterStatus;

/// The longest any CUPS client may take before it is killed and the answer is "unknown".
pub const CUPS_DEADLINE: Duration = Duration::from_secs(10);

/// The state of the CUPS queue `name`, from `lpstat`; `unknown` when the queue does not
/// exist or CUPS does not answer in time. Blocks for at most twice [`CUPS_DEADLINE`]:
/// call it off the UI thread.
pub fn status(name: &str) -> PrinterStatus {
    status_at(name, None)
}

/// [`status`] against the scheduler `server` (`host:port` or a socket path); None means
/// the one the CUPS clients find by themselves.
pub fn status_at(name: &str, server: Option<&str>) -> PrinterStatus {
    let unknown = || PrinterStatus {
        name: name.to_string(),
        state: "unknown".into(),
        reasons: Vec::new(),
        queued_jobs: 0,
    };
    let printers = match run(cups_command("lpstat", server).args(["-l", "-p", name]), None) {
        Ok(out) => out,
        Err(e) => {
            tracing::debug!("lpstat -p {name}: {e:#}");
            return unknown();
        }
    };
    // Queued jobs are a detail: a scheduler that answered the first question but not this
    // one still gives a useful state.
    let jobs = run(cups_command("lpstat", server).args(["-o", name]), None).unwrap_or_default();
    parse_status(name, &printers, &jobs).unwrap_or_else(unknown)
}

/// Reads `lpstat -l -p NAME` and `lpstat -o NAME` output (in the C locale). None when
/// the printer line is not there.
pub fn parse_status(name: &str, printers: &str, jobs: &str) -> Option<PrinterStatus> {
    let head = format!("printer {name} ");
    let mut lines = printers.lines().skip_while(|l| !l.starts_with(&head));
    let first = lines.next()?;
    let rest = &first[head.len()..];
    let state = if rest.starts_with("disabled") {
        "stopped"
    } else if rest.starts_with("now printing") {
        "printing"
    } else if rest.starts_with("is idle") {
        "idle"
    } else {
        "unknown"
    };
    let mut reasons = Vec::new();
    // The long listing's detail lines are indented; the next printer's line is not.
    for line in lines.take_while(|l| l.starts_with('\t') || l.starts_with(' ')) {
        if let Some(alerts) = line.trim().strip_prefix("Alerts:") {
            reasons.extend(alerts.split_whitespace().filter(|r| *r != "none").map(String::from));
        }
    }
    let job_prefix = format!("{name}-");
    let queued_jobs = jobs.lines().filter(|l| l.starts_with(&job_prefix)).count();
    Some(PrinterStatus {
        name: name.to_string(),
        state: state.to_string(),
        reasons,
        queued_jobs: u32::try_from(queued_jobs).unwrap_or(u32::MAX),
    })
}

/// A CUPS client command in the C locale (its output is parsed), aimed at `server`.
fn cups_command(program: &str, server: Option<&str>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("LC_ALL", "C").env("LANG", "C");
    if let Some(server) = server {
        cmd.env("CUPS_SERVER", server);
    }
    cmd
}

/// Runs `cmd` with `input` on its stdin, killing it after [`CUPS_DEADLINE`]; its stdout
/// when it exits with success, otherwise an error with its stderr.
fn run(cmd: &mut Command, input: Option<Vec<u8>>) -> anyhow::Result<String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program} (is cups-client installed?)"))?;
    // Feed stdin and drain stdout/stderr from threads: a large document or a chatty
    // client would otherwise fill a pipe and stall both sides.
    let writer = match (input, child.stdin.take()) {
        (Some(bytes), Some(mut stdin)) => Some(std::thread::spawn(move || stdin.write_all(&bytes))),
        _ => None,
    };
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().with_context(|| format!("waiting for {program}"))? {
            break status;
        }
        if started.elapsed() > CUPS_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("{program} did not finish in {} s", CUPS_DEADLINE.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(writer) = writer {
        if let Ok(Err(e)) = writer.join() {
            anyhow::bail!("writing to {program}: {e}");
        }
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        anyhow::bail!("{program} failed ({status}): {}", String::from_utf8_lossy(&stderr).trim());
    }
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_printer_with_no_alerts() {
        let p = "printer kt is idle.  enabled since Mon Nov 23 16:24:51 2026\n\tForm mounted:\n\tAlerts: none\n\tLocation: \n";
        let s = parse_status("kt", p, "").expect("printer line");
        assert_eq!(s.state, "idle");
        assert!(s.reasons.is_empty());
        assert_eq!(s.queued_jobs, 0);
    }

    #[test]
    fn stopped_printer_with_reasons_and_jobs() {
        let p = "printer kt disabled since Mon Nov 23 16:24:56 2026 -\n\tpaper out\n\tForm mounted:\n\tAlerts: paused media-empty-error media-jam\nprinter other is idle.  enabled since x\n\tAlerts: toner-low\n";
        let jobs = "kt-2                    root              2048   Mon Nov 23 16:24:56 2026\nkt-3   root  10  Mon\n";
        let s = parse_status("kt", p, jobs).expect("printer line");
        assert_eq!(s.state, "stopped");
        assert_eq!(s.reasons, ["paused", "media-empty-error", "media-jam"]);
        assert_eq!(s.queued_jobs, 2);
    }

    #[test]
    fn printing_and_missing_printers() {
        let p = "printer kt now printing kt-7.  enabled since Mon Nov 23 2026\n";
        assert_eq!(
            parse_status("kt", p, "kt-7 root 1 Mon\n").map(|s| s.state),
            Some("printing".into())
        );
        // A queue whose name is a prefix of another's is not confused with it.
        assert_eq!(parse_status("k", p, ""), None);
        assert_eq!(parse_status("kt", "", ""), None);
    }

    #[test]
    fn a_missing_client_or_scheduler_is_unknown() {
        // A port nobody listens on: lpstat fails (or is absent), never hangs the caller.
        let s = status_at("kiosk-none", Some("127.0.0.1:1"));
        assert_eq!(s.state, "unknown");
        assert_eq!(s.name, "kiosk-none");
    }
}
