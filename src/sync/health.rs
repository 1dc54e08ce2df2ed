//! Health readings from the machine: uptime, CPU, memory and temperature from /proc and
//! /sys, disk from statvfs, the network from the routing tables, the outbox from its SQLite
//! file. Each reading is optional: a board without a sensor or a container without /proc
//! still reports the rest.
//!
//! The parsers take the text of the /proc file, so the unit tests feed them recorded
//! tables instead of this machine's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use chrono::{DateTime, Utc};

use super::protocol::{NetworkStatus, OutboxStatus};

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

/// The network the kiosk reaches `broker_host` through: the loopback interface when the
/// broker is on this machine (a bench or a one-machine demo), else the interface of the
/// default route (IPv4, then IPv6). `None` without a route. The round trip is the
/// reporter's to fill in.
pub fn network(broker_host: Option<&str>) -> Option<NetworkStatus> {
    let sys = Path::new("/sys/class/net");
    if let Some(local) = broker_host.and_then(loopback_address) {
        let interface = loopback_interface(sys).unwrap_or_else(|| "lo".into());
        return Some(NetworkStatus {
            kind: interface_kind(&interface, sys).into(),
            interface,
            address: Some(local.to_string()),
            ..NetworkStatus::default()
        });
    }
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let routes = read("/proc/net/route");
    let interface =
        default_route_v4(&routes).or_else(|| default_route_v6(&read("/proc/net/ipv6_route")))?;
    let address = interface_address_v4(&routes, &read("/proc/net/fib_trie"), &interface)
        .map(IpAddr::V4)
        .or_else(|| interface_address_v6(&read("/proc/net/if_inet6"), &interface).map(IpAddr::V6))
        .map(|a| a.to_string());
    Some(NetworkStatus {
        kind: interface_kind(&interface, sys).into(),
        signal_dbm: wifi_signal_dbm(&read("/proc/net/wireless"), &interface),
        interface,
        address,
        broker_rtt_ms: None,
    })
}

/// The host of a broker URL such as `mqtts://city.example:8883`.
pub fn broker_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        // [v6]:port
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then_some(host)
}

/// The loopback address a broker host names, if it names one.
fn loopback_address(host: &str) -> Option<IpAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    host.parse::<IpAddr>().ok().filter(IpAddr::is_loopback)
}

/// The interface whose ARP hardware type is loopback (772).
fn loopback_interface(sys: &Path) -> Option<String> {
    std::fs::read_dir(sys).ok()?.filter_map(Result::ok).find_map(|e| {
        let t = std::fs::read_to_string(e.path().join("type")).ok()?;
        (t.trim() == "772").then(|| e.file_name().to_string_lossy().into_owned())
    })
}

/// `wifi`, `cellular`, `ethernet` or `other`, from /sys/class/net/IF: a `wireless` (or
/// `phy80211`) entry means Wi-Fi; `ww*` (udev's name for WWAN) and `ppp*` names, or the
/// PPP (512) and raw-IP (519) hardware types, mean a cellular modem; type 1 is Ethernet.
pub fn interface_kind(interface: &str, sys: &Path) -> &'static str {
    let dir = sys.join(interface);
    if dir.join("wireless").exists() || dir.join("phy80211").exists() {
        return "wifi";
    }
    let hw_type = std::fs::read_to_string(dir.join("type")).unwrap_or_default();
    match hw_type.trim() {
        _ if interface.starts_with("ww") || interface.starts_with("ppp") => "cellular",
        "512" | "519" => "cellular",
        "1" => "ethernet",
        _ => "other",
    }
}

/// The interface of the IPv4 default route with the lowest metric, from /proc/net/route.
pub fn default_route_v4(route: &str) -> Option<String> {
    route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            let metric: u32 = f.get(6)?.parse().ok()?;
            let default = *f.get(1)? == "00000000" && *f.get(7)? == "00000000";
            (default && flags & RTF_UP != 0).then(|| (metric, f[0].to_string()))
        })
        .min()
        .map(|(_, iface)| iface)
}

const RTF_UP: u32 = 0x0001;
const RTF_REJECT: u32 = 0x0200;

/// The interface of the IPv6 default route (`::/0`, up, not a reject route) with the
/// lowest metric, from /proc/net/ipv6_route.
pub fn default_route_v6(route: &str) -> Option<String> {
    route
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let all_zero = f.first()?.bytes().all(|b| b == b'0');
            let metric = u32::from_str_radix(f.get(5)?, 16).ok()?;
            let flags = u32::from_str_radix(f.get(8)?, 16).ok()?;
            let usable = flags & RTF_UP != 0 && flags & RTF_REJECT == 0;
            let iface = f.get(9)?.to_string();
            (all_zero && *f.get(1)? == "00" && usable).then_some((metric, iface))
        })
        .min()
        .map(|(_, iface)| iface)
}

/// The IPv4 address of `interface`: the local host address (from /proc/net/fib_trie) that
/// lies in one of the interface's own subnets (from /proc/net/route).
pub fn interface_address_v4(route: &str, fib_trie: &str, interface: &str) -> Option<Ipv4Addr> {
    // /proc/net/route prints each address as the integer whose bytes in memory are the
    // address in network order.
    let addr =
        |hex: &str| u32::from_str_radix(hex, 16).ok().map(|v| Ipv4Addr::from(v.to_ne_bytes()));
    let subnets: Vec<(u32, u32)> = route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dest, mask) = (addr(f.get(1)?)?, addr(f.get(7)?)?);
            (*f.first()? == interface && mask != Ipv4Addr::UNSPECIFIED)
                .then(|| (u32::from(dest), u32::from(mask)))
        })
        .collect();
    local_addresses_v4(fib_trie)
        .into_iter()
        .find(|a| subnets.iter().any(|(dest, mask)| u32::from(*a) & mask == *dest))
}

/// The machine's own IPv4 addresses: the `/32 host LOCAL` leaves of /proc/net/fib_trie.
fn local_addresses_v4(fib_trie: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in fib_trie.lines() {
        let t = line.trim();
        if let Some(a) = t.strip_prefix("|-- ") {
            last = a.trim().parse().ok();
        } else if t.starts_with("/32 host LOCAL") {
            if let Some(a) = last.filter(|a| !a.is_loopback() && !out.contains(a)) {
                out.push(a);
            }
        }
    }
    out
}

/// The IPv6 address of `interface` from /proc/net/if_inet6, a global one before a
/// link-local one.
pub fn interface_address_v6(if_inet6: &str, interface: &str) -> Option<Ipv6Addr> {
    if_inet6
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if *f.get(5)? != interface {
                return None;
            }
            let scope = u8::from_str_radix(f.get(3)?, 16).ok()?;
            let bits = u128::from_str_radix(f.first()?, 16).ok()?;
            Some((scope, Ipv6Addr::from(bits)))
        })
        .min_by_key(|(scope, _)| *scope)
        .map(|(_, a)| a)
}

/// The signal level of `interface` in dBm, from /proc/net/wireless.
pub fn wifi_signal_dbm(wireless: &str, interface: &str) -> Option<i32> {
    wireless.lines().find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        if name.trim() != interface {
            return None;
        }
        // status, link quality, signal level, noise; values end with '.' when updated.
        let level: f32 = rest.split_whitespace().nth(2)?.trim_end_matches('.').parse().ok()?;
        // Old drivers report an unsigned byte: 200 means -56 dBm.
        Some(if level > 63.0 { level as i32 - 256 } else { level as i32 })
    })
}

/// Submissions waiting in the outbox at `path`, read through a read-only connection so a
/// report never writes to the file the UI and the pump own. `None` when the kiosk has no
/// outbox (yet) or it cannot be read.
pub fn outbox(path: &Path) -> Option<OutboxStatus> {
    use rusqlite::{Connection, OpenFlags};
    if !path.is_file() {
        return None;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).ok()?;
    conn.busy_timeout(std::time::Duration::from_secs(2)).ok()?;
    // Every row is waiting for the city's receipt (a receipted row is deleted), which is
    // what `Outbox::waiting` counts; `created` is in Unix seconds.
    let (waiting, oldest): (i64, Option<i64>) = conn
        .query_row("SELECT count(*), min(created) FROM submissions", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .ok()?;
    Some(OutboxStatus {
        waiting: waiting.max(0) as u64,
        oldest: oldest.and_then(|t| DateTime::<Utc>::from_timestamp(t, 0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded on a kiosk with Ethernet (192.0.2.2/24 via 192.0.2.1) and a Wi-Fi card.
    const ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
wlan0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0
";
    const FIB_TRIE: &str = "\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
     +-- 192.168.1.0/24 2 0 2
           |-- 192.168.1.37
              /32 host LOCAL
";
    const IPV6_ROUTE: &str = "\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     wwan0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";
    const IF_INET6: &str = "\
fe8000000000000000fc00fffe000001 04 40 20 80     wwan0
24080000000000000000000000000002 04 40 00 80     wwan0
00000000000000000000000000000001 01 80 10 80       lo
";
    const WIRELESS: &str = "\
Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE
 face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
 wlan0: 0000   54.  -61.  -256        0      0      0      0     19        0
";

    #[test]
    fn the_default_route_with_the_lowest_metric_names_the_interface_and_its_address() {
        assert_eq!(default_route_v4(ROUTE).as_deref(), Some("eth0"));
        assert_eq!(
            interface_address_v4(ROUTE, FIB_TRIE, "eth0"),
            Some(Ipv4Addr::new(192, 0, 2, 2))
        );
        assert_eq!(
            interface_address_v4(ROUTE, FIB_TRIE, "wlan0"),
            Some(Ipv4Addr::new(192, 168, 1, 37))
        );
        assert_eq!(interface_address_v4(ROUTE, FIB_TRIE, "wwan0"), None);
    }

    #[test]
    fn an_ipv6_only_modem_is_found_and_a_reject_route_is_not_a_default_route() {
        assert_eq!(default_route_v4("Iface\tDestination\n"), None);
        assert_eq!(default_route_v6(IPV6_ROUTE).as_deref(), Some("wwan0"));
        assert_eq!(
            interface_address_v6(IF_INET6, "wwan0"),
            Some("2408::2".parse().expect("an address")),
            "a global address is preferred to the link-local one"
        );
        let reject_only = IPV6_ROUTE.lines().nth(1).expect("the lo line");
        assert_eq!(default_route_v6(reject_only), None);
    }

    #[test]
    fn wifi_signal_and_interface_kinds() {
        assert_eq!(wifi_signal_dbm(WIRELESS, "wlan0"), Some(-61));
        assert_eq!(wifi_signal_dbm(WIRELESS, "eth0"), None);
        let sys = tempfile::tempdir().expect("temp dir");
        for (name, hw, wireless) in [
            ("eth0", "1", false),
            ("wlan0", "1", true),
            ("wwan0", "1", false),
            ("ppp0", "512", false),
            ("lo", "772", false),
        ] {
            std::fs::create_dir_all(sys.path().join(name)).expect("dir");
            std::fs::write(sys.path().join(name).join("type"), format!("{hw}\n")).expect("type");
            if wireless {
                std::fs::create_dir_all(sys.path().join(name).join("wireless")).expect("dir");
            }
        }
        let kinds: Vec<&str> = ["eth0", "wlan0", "wwan0", "ppp0", "lo"]
            .iter()
            .map(|i| interface_kind(i, sys.path()))
            .collect();
        assert_eq!(kinds, ["ethernet", "wifi", "cellular", "cellular", "other"]);
        assert_eq!(loopback_interface(sys.path()).as_deref(), Some("lo"));
    }

    #[test]
    fn broker_hosts_and_loopback() {
        assert_eq!(broker_host("mqtts://city.example.cn:8883"), Some("city.example.cn"));
        assert_eq!(broker_host("mqtt://127.0.0.1:1883/"), Some("127.0.0.1"));
        assert_eq!(broker_host("mqtts://[::1]:8883"), Some("::1"));
        assert_eq!(broker_host("mqtts://broker"), Some("broker"));
        assert_eq!(loopback_address("::1"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(loopback_address("localhost"), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(loopback_address("192.0.2.9"), None);
    }

    #[test]
    fn cpu_line_counts_idle_and_iowait_as_not_busy() {
        let (busy, total) = parse_cpu_line("cpu  100 0 100 700 100 0 0 0 0 0").expect("a cpu line");
        assert_eq!((busy, total), (200, 1000));
        assert_eq!(cpu_percent((0, 0), (busy, total)), 20.0);
        assert!(parse_cpu_line("intr 1 2 3").is_none());
    }
}
