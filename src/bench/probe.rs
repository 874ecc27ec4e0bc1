//! What the benchmark reads from the operating system: CPU time and resident memory of a
//! process (`/proc/PID/stat`, `/proc/PID/status`), the clock tick, the open-files limit (raised
//! to the hard limit with `prlimit`, since the workspace forbids `unsafe` and so a direct
//! `setrlimit`), and a description of the machine.

use std::collections::HashMap;
use std::process::Command;

use serde::Serialize;

/// Clock ticks per second of `/proc` CPU times (`getconf CLK_TCK`, 100 when that fails).
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// User plus system CPU time of a process so far, in clock ticks; `None` once it is gone.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat)
}

/// CPU time of this process, in clock ticks.
pub fn own_cpu_ticks() -> u64 {
    cpu_ticks(std::process::id()).unwrap_or(0)
}

/// utime + stime from the text of `/proc/PID/stat`. The command name (field 2) may hold spaces
/// and parentheses, so the fields are counted from the last `)`: state is field 3, utime 14,
/// stime 15.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time of each PostgreSQL process on the machine, in clock ticks, by process ID (the
/// database is shared with anything else using it, so this is an indication, not a
/// measurement of Kilowatt alone).
pub fn postgres_cpu_ticks() -> HashMap<u32, u64> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return HashMap::new() };
    entries
        .flatten()
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse::<u32>().ok()?, entry.path())))
        .filter_map(|(pid, path)| Some((pid, std::fs::read_to_string(path.join("stat")).ok()?)))
        .filter(|(_, stat)| stat.contains("(postgres)"))
        .filter_map(|(pid, stat)| Some((pid, parse_cpu_ticks(&stat)?)))
        .collect()
}

/// PostgreSQL CPU between two readings: what each process still running used since the first
/// (a backend that exited in between takes its time with it, so this errs low).
pub fn postgres_ticks_since(before: &HashMap<u32, u64>) -> u64 {
    postgres_cpu_ticks().into_iter().map(|(pid, now)| now.saturating_sub(before.get(&pid).copied().unwrap_or(0))).sum()
}

/// Resident memory of a process, KiB (`VmRSS`); `None` once it is gone.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kb_field(&status, "VmRSS:")
}

fn kb_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// Files a process has open (its sockets included); `None` once it is gone.
pub fn open_files(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// The soft and hard limits on open files of this process.
pub fn open_files_limit() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    let mut numbers = line["Max open files".len()..].split_whitespace();
    let parse = |value: Option<&str>| match value? {
        "unlimited" => Some(u64::MAX),
        value => value.parse().ok(),
    };
    Some((parse(numbers.next())?, parse(numbers.next())?))
}

/// Raises the soft limit on open files to the hard limit (children such as the server inherit
/// it); answers the soft limit in force afterwards.
pub fn raise_open_files_limit() -> Option<u64> {
    let (soft, hard) = open_files_limit()?;
    if soft < hard {
        let limit = if hard == u64::MAX { "unlimited".to_owned() } else { hard.to_string() };
        let raised = Command::new("prlimit")
            .arg("--pid")
            .arg(std::process::id().to_string())
            .arg(format!("--nofile={limit}:{limit}"))
            .status();
        if !raised.is_ok_and(|status| status.success()) {
            tracing::warn!(soft, hard, "cannot raise the open-files limit with prlimit");
        }
    }
    open_files_limit().map(|(soft, _)| soft)
}

/// The machine the benchmark ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs available to this process (`nproc`).
    pub cpus: usize,
    /// CPU model from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Total memory, MiB.
    pub memory_mb: u64,
    /// Kernel release.
    pub kernel: String,
    /// The kernel's idle driver (`haltpoll` in a KVM guest that may poll before halting).
    pub cpuidle_driver: Option<String>,
    /// How long an idle vCPU polls before it halts, ns (`haltpoll`'s `guest_halt_poll_ns`).
    /// At 0 every wake-up of an idle vCPU goes through the hypervisor: on the benchmark's
    /// machines that made a PostgreSQL round trip take 0.13 ms instead of 0.03 ms.
    pub guest_halt_poll_ns: Option<u64>,
}

impl Machine {
    /// Reads the description from the system.
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|line| line.starts_with("model name"))
            .and_then(|line| line.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, model)| model.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            memory_mb: kb_field(&meminfo, "MemTotal:").unwrap_or(0) / 1024,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
            cpuidle_driver: read_trimmed("/sys/devices/system/cpu/cpuidle/current_driver"),
            guest_halt_poll_ns: read_trimmed("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
                .and_then(|ns| ns.parse().ok()),
        }
    }

    /// How idle vCPUs wait, for the report's header: `None` when the kernel does not say.
    pub fn idle_polling(&self) -> Option<String> {
        let driver = self.cpuidle_driver.as_deref()?;
        Some(match self.guest_halt_poll_ns {
            Some(ns) => format!("idle: {driver}, guest_halt_poll_ns {ns}"),
            None => format!("idle: {driver}"),
        })
    }
}

/// A one-line file's content, if it can be read.
fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|text| text.trim().to_owned()).filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name_even_with_spaces_and_parentheses() {
        let stat = "4242 (kilo watt) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1000 123456 789";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn this_process_has_a_resident_size_cpu_time_and_limits() {
        let pid = std::process::id();
        assert!(rss_kb(pid).is_some_and(|kb| kb > 0));
        assert!(cpu_ticks(pid).is_some());
        let (soft, hard) = open_files_limit().expect("limits");
        assert!(soft <= hard);
        assert!(clock_ticks_per_second() > 0);
    }
}
