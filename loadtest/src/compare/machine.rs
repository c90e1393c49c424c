//! What compare finds out before it runs: the machine (CPU, kernel, memory), the zoo and nginx
//! binaries, their versions, and the time stamp of the run's folder.

use crate::compare::results::Machine;
use crate::sys;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// zoo: as given, next to this program (the same cargo target directory), or on PATH.
pub fn find_zoo(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!("--zoo {}: no such file", path.display()))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("zoo"));
    beside
        .into_iter()
        .chain(on_path("zoo"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no zoo binary next to loadtest or on PATH: build it (cargo build --release \
             -p servers) or pass --zoo PATH"
                .to_string()
        })
}

/// nginx: as given, the Debian path, or on PATH.
pub fn find_nginx(given: Option<&Path>, flag: &str) -> Result<PathBuf, String> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!("--nginx {}: no such file", path.display()))
        };
    }
    std::iter::once(PathBuf::from("/usr/sbin/nginx"))
        .chain(on_path("nginx"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "{flag}: nginx is not installed (Debian/Ubuntu: apt-get install nginx-light) \
                 or pass --nginx PATH"
            )
        })
}

/// `name` in each directory of PATH.
pub fn on_path(name: &str) -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
        .unwrap_or_default()
}

/// The first line a tool prints for its version (nginx prints it on stderr).
pub fn tool_version(tool: &Path, flag: &str) -> Option<String> {
    let out = Command::new(tool).arg(flag).output().ok()?;
    let text = [out.stdout, out.stderr].concat();
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// The machine this comparison runs on.
pub fn machine() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once(':')?;
            matches!(key.trim(), "model name" | "Hardware" | "cpu model")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let cpus_online = crate::cli::parse_cpu_list(read("/sys/devices/system/cpu/online").trim())
        .map_or(0, |l| l.len());
    let memory_kb = read("/proc/meminfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    Machine {
        cpu_model,
        cpus_online,
        cpus_allowed: sys::allowed_cpus().unwrap_or_default(),
        kernel: format!(
            "{} {}",
            read("/proc/sys/kernel/ostype").trim(),
            read("/proc/sys/kernel/osrelease").trim()
        ),
        memory_kb,
        hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
        prices: None,
    }
}

/// `20250102T030405Z`: sorts by time and is safe in a path.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn run_folders_sort_by_time() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(timestamp(t), "20231114T221320Z");
    }
}
