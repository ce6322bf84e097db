//! `cargo xtask bench`: criterion benches, Python and Node benches, and a JSON summary in
//! `target/bench/`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::{self, Result, cmd, run};

/// Options for `bench`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Opts {
    /// Shorter runs (criterion's `--quick`).
    pub(crate) quick: bool,
    /// Only benches matching this name.
    pub(crate) filter: Option<String>,
    /// Print the commands without running them.
    pub(crate) dry_run: bool,
}

/// Parses `bench` arguments.
pub(crate) fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--dry-run" => o.dry_run = true,
            "--filter" => o.filter = Some(it.next().ok_or("--filter needs a name")?.clone()),
            other => return Err(format!("unknown bench option `{other}`")),
        }
    }
    Ok(o)
}

/// Escapes a string for JSON.
pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim())
        .to_string();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    format!(
        "{{\"cpu\": {}, \"nproc\": {cpus}, \"memory\": {}}}",
        json_str(&model),
        json_str(&mem)
    )
}

/// Runs the benches and writes `target/bench/summary-<timestamp>.json`.
pub(crate) fn run_bench(o: &Opts) -> Result {
    let root = util::root();
    let out_dir = root.join("target/bench");
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut results = Vec::new();

    // `--bench *` keeps criterion flags away from the libtest harness of the lib target;
    // `peers` adds the kameo / ractor / actix columns.
    let mut c = cmd(
        "cargo",
        &[
            "bench",
            "-p",
            "iris-benches",
            "--features",
            "peers",
            "--bench",
            "*",
        ],
    );
    if o.quick || o.filter.is_some() {
        c.arg("--");
        if let Some(f) = &o.filter {
            c.arg(f);
        }
        if o.quick {
            c.arg("--quick");
        }
    }
    results.push(util::step("criterion", || run(&mut c, o.dry_run)).0);

    let matches = |p: &Path| {
        o.filter
            .as_deref()
            .is_none_or(|f| p.to_string_lossy().contains(f))
    };
    let py: Vec<_> = util::files_with_suffix(&root.join("crates/iris-py/benches"), ".py")
        .into_iter()
        .filter(|p| matches(p))
        .collect();
    if util::has_py() && !py.is_empty() {
        let (r, res) = util::step("py-setup", || util::setup_python(o.dry_run));
        results.push(r);
        if res.is_ok() {
            for f in &py {
                let name = format!("py:{}", f.file_name().unwrap_or_default().to_string_lossy());
                let mut c = cmd(&util::venv_python().to_string_lossy(), &[]);
                c.arg(f).env("IRIS_BENCH_OUT", &out_dir);
                if o.quick {
                    c.env("IRIS_BENCH_QUICK", "1");
                }
                results.push(util::step(&name, || run(&mut c, o.dry_run)).0);
            }
        }
    }
    let node: Vec<_> = util::files_with_suffix(&root.join("crates/iris-node/benches"), ".mjs")
        .into_iter()
        .filter(|p| matches(p))
        .collect();
    if util::has_node() && !node.is_empty() {
        let (r, res) = util::step("node-setup", || util::setup_node(o.dry_run));
        results.push(r);
        if res.is_ok() {
            for f in &node {
                let name = format!(
                    "node:{}",
                    f.file_name().unwrap_or_default().to_string_lossy()
                );
                let mut c = cmd("node", &[]);
                c.arg(f).env("IRIS_BENCH_OUT", &out_dir);
                if o.quick {
                    c.env("IRIS_BENCH_QUICK", "1");
                }
                results.push(util::step(&name, || run(&mut c, o.dry_run)).0);
            }
        }
    }
    util::summary(&results);

    // Collect JSON files the benches wrote themselves.
    let collected: Vec<String> = util::files_with_suffix(&out_dir, ".json")
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("summary-"))
        })
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let name = p.file_name()?.to_string_lossy().into_owned();
            Some(format!("{}: {}", json_str(&name), text.trim()))
        })
        .collect();
    let suites: Vec<String> = results
        .iter()
        .map(|r| {
            format!(
                "{{\"name\": {}, \"ok\": {}, \"seconds\": {:.3}}}",
                json_str(&r.name),
                r.ok,
                r.secs
            )
        })
        .collect();
    let json = format!(
        "{{\n  \"timestamp\": {ts},\n  \"quick\": {},\n  \"filter\": {},\n  \"machine\": {},\n  \"suites\": [{}],\n  \"results\": {{{}}}\n}}\n",
        o.quick,
        o.filter.as_deref().map_or("null".into(), json_str),
        machine(),
        suites.join(", "),
        collected.join(",\n")
    );
    let path = out_dir.join(format!("summary-{ts}.json"));
    if o.dry_run {
        eprintln!("would write {}", path.display());
    } else {
        std::fs::create_dir_all(&out_dir)
            .and_then(|()| std::fs::write(&path, json))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    match results.iter().find(|r| !r.ok) {
        Some(r) => Err(format!("bench: suite `{}` failed", r.name)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bench_flags() {
        let a: Vec<String> = ["--quick", "--filter", "skynet"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = parse(&a).unwrap();
        assert!(o.quick);
        assert_eq!(o.filter.as_deref(), Some("skynet"));
        assert!(parse(&["--filter".to_string()]).is_err());
    }

    #[test]
    fn escapes_json() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
