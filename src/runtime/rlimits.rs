//! Process resource limits ringway depends on, checked (and raised where allowed) at startup.
//!
//! Owns the startup check of `RLIMIT_NOFILE` (every client connection and every backend
//! connection is a descriptor) and `RLIMIT_MEMLOCK` (io_uring rings and registered buffers are
//! locked memory on kernels before 5.12; later kernels charge them to the memory cgroup). The
//! soft open-files limit is raised towards the hard limit when it is too low, as HAProxy does;
//! what cannot be raised is reported with the setting to change.

use std::io;

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLimit {
    /// The soft limit before the check.
    pub before: u64,
    /// The soft limit after the check.
    pub after: u64,
    /// Descriptors the configuration may use at most.
    pub needed: u64,
}

/// Descriptors needed for `connections` client connections in all: one per client, one per
/// backend connection in use or pooled, plus listeners, rings and slack.
pub fn files_needed(connections: u64, pooled: u64, listeners: u64) -> u64 {
    connections
        .saturating_mul(2)
        .saturating_add(pooled)
        .saturating_add(listeners)
        .saturating_add(64)
}

/// Raises the soft open-files limit to `needed` (or as far as the hard limit allows).
pub fn ensure_open_files(needed: u64) -> io::Result<FileLimit> {
    let (soft, hard) = get(libc::RLIMIT_NOFILE)?;
    let target = needed.min(hard);
    if soft < target {
        set(libc::RLIMIT_NOFILE, target, hard)?;
    }
    let (after, _) = get(libc::RLIMIT_NOFILE)?;
    Ok(FileLimit {
        before: soft,
        after,
        needed,
    })
}

/// The soft locked-memory limit in bytes (`u64::MAX` when unlimited).
pub fn memlock_limit() -> io::Result<u64> {
    get(libc::RLIMIT_MEMLOCK).map(|(soft, _)| soft)
}

/// True when the running kernel charges io_uring memory to RLIMIT_MEMLOCK (before 5.12).
pub fn kernel_counts_uring_memlock() -> bool {
    counts_uring_memlock(&std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default())
}

/// Whether a kernel of this release (`uname -r`) charges io_uring memory to RLIMIT_MEMLOCK.
fn counts_uring_memlock(release: &str) -> bool {
    let mut parts = release.trim().split(['.', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) < (5, 12)
}

fn get(resource: libc::__rlimit_resource_t) -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the valid, exclusively borrowed `lim`.
    let rc = unsafe { libc::getrlimit(resource, &mut lim) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

fn set(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the `rlimit` passed by reference.
    let rc = unsafe { libc::setrlimit(resource, &lim) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needed_counts_both_sides() {
        assert_eq!(files_needed(100, 10, 2), 200 + 10 + 2 + 64);
        assert_eq!(files_needed(u64::MAX, 1, 1), u64::MAX);
    }

    #[test]
    fn raising_to_the_current_soft_limit_is_a_no_op() {
        let (soft, _) = get(libc::RLIMIT_NOFILE).unwrap();
        let got = ensure_open_files(soft).unwrap();
        assert_eq!(got.before, soft);
        assert_eq!(got.after, soft);
    }

    #[test]
    fn kernels_before_5_12_count_uring_memory_as_locked() {
        assert!(counts_uring_memlock("5.11.22-generic"));
        assert!(counts_uring_memlock("4.19.0"));
        assert!(!counts_uring_memlock("5.12.0"));
        assert!(!counts_uring_memlock("6.18.1-cloud-amd64"));
        // Unreadable: assume an old kernel, which only adds a warning.
        assert!(counts_uring_memlock(""));
    }
}
