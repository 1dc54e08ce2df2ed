//! Health readings from the machine: uptime, CPU, memory and temperature from /proc and
//! /sys, disk from statvfs. Each reading is optional: a board without a sensor or a
//! container without /proc still reports the rest.

use std::path::Path;

/// CPU time counters from the first line of /proc/stat: (busy, total) jiffies.
pub fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(stat.lines().next()?)
}

fn parse_cpu_line(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    // idle + iowait are not busy.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Busy percentage between two [`cpu_times`] readings.
pub fn cpu_percent(before: (u64, u64), after: (u64, u64)) -> f32 {
    let busy = after.0.saturating_sub(before.0) as f32;
    let total = after.1.saturating_sub(before.1) as f32;
    if total == 0.0 {
        0.0
    } else {
        100.0 * busy / total
    }
}

/// Seconds since boot.
pub fn uptime_seconds() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|f| f as u64)
        .unwrap_or(0)
}

/// (MemTotal, MemAvailable) in kB.
pub fn memory_kb() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)?.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
            })
            .unwrap_or(0)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

/// (total, available) bytes of the filesystem holding `path`.
pub fn disk_bytes(path: &Path) -> (u64, u64) {
    fs4::statvfs(path).map(|s| (s.total_space(), s.available_space())).unwrap_or((0, 0))
}

/// The hottest thermal zone in °C, if the board has any.
pub fn temperature_c() -> Option<f32> {
    let zones = std::fs::read_dir("/sys/class/thermal").ok()?;
    zones
        .filter_map(Result::ok)
        .filter(|z| z.file_name().to_string_lossy().starts_with("thermal_zone"))
        .filter_map(|z| {
            std::fs::read_to_string(z.path().join("temp")).ok()?.trim().parse::<f32>().ok()
        })
        .map(|milli| milli / 1000.0)
        .reduce(f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_line_counts_idle_and_iowait_as_not_busy() {
        let (busy, total) = parse_cpu_line("cpu  100 0 100 700 100 0 0 0 0 0").expect("a cpu line");
        assert_eq!((busy, total), (200, 1000));
        assert_eq!(cpu_percent((0, 0), (busy, total)), 20.0);
        assert!(parse_cpu_line("intr 1 2 3").is_none());
    }
}
