//! Helpers the benchmark examples share: command-line numbers, what `/proc` says about a
//! process, and a loopback start-up poll. Each example uses some of them; `tests/cli.rs`
//! uses the poll.
#![allow(dead_code)]

/// The number after `name` on the command line, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    arg_text(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The text after `name` on the command line.
pub fn arg_text(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Resident set size of a process (this one with `"self"`) in MiB, from `/proc/<pid>/status`.
pub fn rss_mib(pid: impl std::fmt::Display) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux this runs on (std has no sysconf).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// CPU time (user + system) a process (this one with `"self"`) has used so far, in seconds
/// (`/proc/<pid>/stat`).
pub fn cpu_seconds(pid: impl std::fmt::Display) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / CLOCK_TICKS_PER_SECOND
}

/// The machine's CPU time so far as `(stolen, total)` ticks, from the first line of
/// `/proc/stat`: on a virtual machine, "stolen" is time its CPUs were ready to run but the
/// host ran something else. A run with much of it measured the host's neighbours, not us.
pub fn cpu_steal_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let total = ticks.iter().take(8).sum();
    (ticks.get(7).copied().unwrap_or(0), total)
}

/// The machine's `(stolen, total)` CPU ticks since an earlier [`cpu_steal_ticks`] reading
/// (zero, not an underflow, when `/proc/stat` could not be read).
pub fn steal_ticks_since(before: (u64, u64)) -> (u64, u64) {
    let now = cpu_steal_ticks();
    (
        now.0.saturating_sub(before.0),
        now.1.saturating_sub(before.1),
    )
}

/// The share of `(stolen, total)` ticks (see [`steal_ticks_since`]) the host stole, in
/// percent.
pub fn steal_percent(ticks: (u64, u64)) -> f64 {
    if ticks.1 == 0 {
        return 0.0;
    }
    ticks.0 as f64 * 100.0 / ticks.1 as f64
}

/// A connection to whatever listens on loopback `port`, or `None` while nothing does.
///
/// Polling a port nobody listens on yet can connect a socket to itself: Linux picks the
/// source port from the same ephemeral range `port` came from, and a connect whose source and
/// destination match opens (TCP simultaneous open). Such a socket echoes the health request
/// back and never closes, so a start-up wait hung on it; it is refused here. Reads time out
/// after `read_timeout`, so a listener that never answers is a failed poll, not a hang.
pub fn connect_to_listener(
    port: u16,
    read_timeout: std::time::Duration,
) -> Option<std::net::TcpStream> {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    if stream.local_addr().ok()? == stream.peer_addr().ok()? {
        return None;
    }
    stream.set_read_timeout(Some(read_timeout)).ok()?;
    Some(stream)
}
