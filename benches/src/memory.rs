//! Resident memory, measured the same way for every system: in a fresh process
//! (`iris-bench-node rss <system> <n>`), so no earlier scenario leaves freed memory behind
//! for the allocator to reuse.

/// Resident set size of this process, from /proc (0 where unavailable).
pub fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Runs `iris-bench-node rss <system> <n>` and returns the bytes of RSS per idle actor.
pub fn per_actor_in_child(bin: &std::path::Path, system: &str, n: usize) -> Result<f64, String> {
    let out = std::process::Command::new(bin)
        .args(["rss", system, &n.to_string()])
        .output()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "rss {system} failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("RSS_PER_ACTOR ")?.trim().parse().ok())
        .ok_or_else(|| format!("rss {system}: no RSS_PER_ACTOR line in {text:?}"))
}
