//! Process limits: at start-up the open-file soft limit is raised to the hard limit, so one node
//! holds as many charger sockets as the machine allows (every socket is a file descriptor), and
//! the result is logged.
//!
//! The workspace forbids `unsafe` and has no safe rlimit crate, so the limits are read from
//! `/proc/self/limits` and raised with util-linux's `prlimit` on this process (the same
//! `prlimit(2)` call a library would make). Where neither exists (not Linux) it only logs.

use std::process::Command;

/// The open-file limits of this process; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The limit in force.
    pub soft: Option<u64>,
    /// How far the soft limit may be raised without privileges.
    pub hard: Option<u64>,
}

fn limit(value: &str) -> Option<Option<u64>> {
    match value {
        "unlimited" => Some(None),
        number => number.parse().ok().map(Some),
    }
}

/// Reads the `Max open files` line of a `/proc/<pid>/limits` file.
pub fn parse_limits(text: &str) -> Option<OpenFiles> {
    let line = text.lines().find(|line| line.starts_with("Max open files"))?;
    let mut values = line["Max open files".len()..].split_whitespace();
    Some(OpenFiles { soft: limit(values.next()?)?, hard: limit(values.next()?)? })
}

/// This process's open-file limits, where the system tells (Linux).
pub fn open_files() -> Option<OpenFiles> {
    parse_limits(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// Raises the open-file soft limit to the hard limit and logs the outcome; answers the limits
/// now in force. Never fails start-up: a node that cannot raise it runs with what it has.
pub fn raise_open_files() -> Option<OpenFiles> {
    let Some(before) = open_files() else {
        tracing::info!("open-file limit unknown on this system: left as it is");
        return None;
    };
    if before.soft == before.hard {
        tracing::info!(soft = ?before.soft, hard = ?before.hard, "open-file limit already at its maximum");
        return Some(before);
    }
    let hard = before.hard.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    let raised = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={hard}:{hard}"))
        .output();
    let after = open_files().unwrap_or(before);
    match raised {
        Ok(output) if output.status.success() && after.soft == after.hard => {
            tracing::info!(from = ?before.soft, to = ?after.soft, "raised the open-file soft limit to the hard limit");
        }
        Ok(output) => tracing::warn!(
            soft = ?after.soft,
            hard = ?after.hard,
            error = %String::from_utf8_lossy(&output.stderr).trim(),
            "could not raise the open-file soft limit; chargers beyond it will be refused"
        ),
        Err(error) => tracing::warn!(
            soft = ?after.soft,
            hard = ?after.hard,
            %error,
            "could not run prlimit to raise the open-file soft limit; chargers beyond it will be refused"
        ),
    }
    Some(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_open_files_line() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max processes             127431               127431               processes\n\
                    Max open files            1024                 524288               files\n";
        assert_eq!(parse_limits(text), Some(OpenFiles { soft: Some(1024), hard: Some(524_288) }));
        let unlimited = "Max open files            4096                 unlimited            files\n";
        assert_eq!(parse_limits(unlimited), Some(OpenFiles { soft: Some(4096), hard: None }));
        assert_eq!(parse_limits("nothing here"), None);
    }

    #[test]
    fn this_process_has_limits_and_raising_keeps_soft_within_hard() {
        if let Some(after) = raise_open_files() {
            assert!(after.soft.is_some_and(|soft| after.hard.is_none_or(|hard| soft <= hard)) || after.soft.is_none());
        }
    }
}
