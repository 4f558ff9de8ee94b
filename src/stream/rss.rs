//! The process's resident memory from its own counters (`/proc/self/status` on Linux): the
//! current resident set (`VmRSS`) and its peak (`VmHWM`), which [`reset_peak`] sets back to
//! the current size (`/proc/self/clear_refs`), so a peak can be measured for one piece of work.
//! Elsewhere the counters are unknown (`None`).

/// A field of `/proc/self/status` in bytes (the file gives kB).
fn status_bytes(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// The resident set size now, in bytes.
pub fn current() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// The peak resident set size since the process started or the last [`reset_peak`], in bytes.
pub fn peak() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// Sets the peak back to the current resident size; `false` when the system does not allow it.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_touched_page_by_page_is_resident_and_below_the_peak() {
        let Some(start) = current() else {
            return; // not Linux: nothing to read
        };
        // 64 MiB written page by page is resident until dropped (other tests run alongside
        // and may free memory meanwhile, hence only half of it is asked for)
        let mut v = vec![0u8; 64 << 20];
        for i in (0..v.len()).step_by(4096) {
            v[i] = 1;
        }
        let during = current().unwrap();
        std::hint::black_box(&v);
        assert!(during >= start + (32 << 20), "{start} → {during}");
        assert!(peak().unwrap() >= during);
    }
}
