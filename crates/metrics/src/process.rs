//! The standard `process_*` metrics (the names the Prometheus process
//! collector exports), read by hand from `/proc/self` at scrape time.
//!
//! Owns the parsing of `/proc/self/{stat,status,limits,fd}` and `/proc/stat`
//! and nothing else. Each file is read once per scrape; a file that cannot be
//! read or parsed leaves its metrics out rather than failing the scrape
//! (off Linux there is no `/proc`, and the families are simply empty).

use std::path::Path;

/// Clock ticks per second of the times in `/proc/<pid>/stat`. The kernel
/// reports them in `USER_HZ`, which is 100 on every architecture Linux
/// exports to user space (the Prometheus `procfs` library assumes the same),
/// so no `sysconf` call is needed.
const USER_HZ: f64 = 100.0;

/// What the scrape reports about this process.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, in bytes.
    pub resident_memory_bytes: Option<u64>,
    /// Virtual memory size, in bytes.
    pub virtual_memory_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors (`RLIMIT_NOFILE`).
    pub max_fds: Option<u64>,
    /// OS threads.
    pub threads: Option<u64>,
    /// Start time since the Unix epoch, in seconds.
    pub start_time_seconds: Option<f64>,
}

/// The fields of `/proc/<pid>/stat` the scrape uses.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    utime_ticks: u64,
    stime_ticks: u64,
    threads: u64,
    starttime_ticks: u64,
    vsize_bytes: u64,
}

/// Parses `/proc/<pid>/stat`. The second field (the command name) is in
/// parentheses and may itself hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let after_comm = &text[text.rfind(')')? + 1..];
    // Fields from the third (state) on; `proc(5)` numbers them from 1.
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(Stat {
        utime_ticks: field(14)?,
        stime_ticks: field(15)?,
        threads: field(20)?,
        starttime_ticks: field(22)?,
        vsize_bytes: field(23)?,
    })
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS:   1234 kB`), in bytes.
fn parse_status_kb(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.split(':').next() == Some(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// The soft limit of `Max open files` in `/proc/<pid>/limits`; `None` for
/// `unlimited` (Prometheus's collector leaves the metric out too).
fn parse_max_open_files(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Boot time (`btime`) from `/proc/stat`, in seconds since the epoch.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Reads this process's figures from `/proc`.
pub fn read() -> ProcessStats {
    read_from(Path::new("/proc/self"), Path::new("/proc/stat"))
}

fn read_from(proc_self: &Path, proc_stat: &Path) -> ProcessStats {
    let read = |path: &Path| std::fs::read_to_string(path).ok();
    let stat = read(&proc_self.join("stat")).and_then(|t| parse_stat(&t));
    let status = read(&proc_self.join("status"));
    let boot_time = read(proc_stat).and_then(|t| parse_boot_time(&t));
    let open_fds = std::fs::read_dir(proc_self.join("fd"))
        .ok()
        // The directory handle itself is one of the entries while it is
        // open; Prometheus's collector counts it too.
        .map(|entries| entries.count() as u64);
    ProcessStats {
        cpu_seconds: stat.map(|s| (s.utime_ticks + s.stime_ticks) as f64 / USER_HZ),
        // Status's VmRSS is in kB, so no page-size lookup is needed.
        resident_memory_bytes: status.as_deref().and_then(|t| parse_status_kb(t, "VmRSS")),
        virtual_memory_bytes: stat.map(|s| s.vsize_bytes),
        open_fds,
        max_fds: read(&proc_self.join("limits")).and_then(|t| parse_max_open_files(&t)),
        threads: stat.map(|s| s.threads),
        start_time_seconds: stat
            .zip(boot_time)
            .map(|(s, boot)| boot as f64 + s.starttime_ticks as f64 / USER_HZ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with spaces and a `)` must not shift the fields.
        let text = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1500 0 0 0 \
                    250 130 0 0 20 0 7 0 123456 987654321 2048 18446744073709551615";
        let stat = parse_stat(text).expect("parses");
        assert_eq!(
            stat,
            Stat {
                utime_ticks: 250,
                stime_ticks: 130,
                threads: 7,
                starttime_ticks: 123_456,
                vsize_bytes: 987_654_321,
            }
        );
        assert_eq!(parse_stat("4242 (truncated) S 1 2"), None);
    }

    #[test]
    fn status_limits_and_boot_time_parse() {
        let status = "Name:\tsluice\nVmSize:\t  200 kB\nVmRSS:\t   1234 kB\nThreads:\t7\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(1234 * 1024));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63000                63000                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_max_open_files(unlimited), None);
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1764650000\nprocesses 9\n"),
            Some(1_764_650_000)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads_plausible_figures() {
        let before = read();
        let threads = before.threads.expect("threads");
        assert!(threads >= 1, "{threads}");
        let rss = before.resident_memory_bytes.expect("rss");
        let vsize = before.virtual_memory_bytes.expect("vsize");
        assert!(rss > 0 && vsize >= rss, "rss {rss} vsize {vsize}");
        // Opening a file shows up in the count.
        let file = std::fs::File::open("/proc/self/stat").expect("open");
        let after = read();
        drop(file);
        assert!(after.open_fds.expect("fds") >= 1);
        let start = before.start_time_seconds.expect("start");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0 * 365.0,
            "{start} vs {now}"
        );
        assert!(after.cpu_seconds.expect("cpu") >= before.cpu_seconds.expect("cpu"));
    }
}
