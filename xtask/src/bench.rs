//! `cargo xtask bench`: criterion benches, the BEAM's skynet, Python and Node benches; one
//! table on stdout and a JSON summary in `target/bench/` (`summary-<ts>.json`, `latest.json`).

mod json;
mod report;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use json::Json;
use report::Row;

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
fn machine() -> (Json, String) {
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
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |k| k.trim().to_string());
    let text = format!("{model}, {cpus} CPUs, {mem} memory, Linux {kernel}");
    let json = Json::obj([
        ("cpu", Json::Str(model)),
        ("nproc", Json::num(cpus as f64)),
        ("memory", Json::Str(mem)),
        ("kernel", Json::Str(kernel)),
    ]);
    (json, text)
}

/// The commit the benches were built from, and whether tracked files differed from it.
fn tree() -> (Json, String) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(util::root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return (Json::Null, "unknown".into());
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let text = if dirty {
        format!("{head} + uncommitted changes")
    } else {
        head.clone()
    };
    (
        Json::obj([("head", Json::Str(head)), ("dirty", Json::Bool(dirty))]),
        text,
    )
}

/// The target directory (`$CARGO_TARGET_DIR`, else `target/` in the workspace).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| util::root().join("target"), PathBuf::from)
}

/// The BEAM's skynet in ms (`benches/skynet.escript`, timed inside the VM). Installs Debian's
/// `erlang-base` when `escript` is missing and we are root; `Err` says why there is none.
fn beam_skynet(o: &Opts) -> Result<f64> {
    if !util::on_path("escript") {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
        if !(root && util::on_path("apt-get")) {
            return Err(
                "escript is not on PATH (install Erlang/OTP, e.g. apt-get install erlang-base)"
                    .into(),
            );
        }
        let install = || {
            let mut c = cmd("apt-get", &["install", "-y", "-q", "erlang-base"]);
            c.env("DEBIAN_FRONTEND", "noninteractive");
            run(&mut c, o.dry_run)
        };
        if install().is_err() {
            run(&mut cmd("apt-get", &["update", "-q"]), o.dry_run)
                .and_then(|()| install())
                .map_err(|e| format!("installing erlang-base failed: {e}"))?;
        }
    }
    let runs = if o.quick { "2" } else { "5" };
    let mut c = cmd("escript", &["benches/skynet.escript", "6", runs]);
    c.current_dir(util::root());
    eprintln!("$ {}", util::show(&c));
    if o.dry_run {
        return Err("dry run".into());
    }
    let out = c
        .output()
        .map_err(|e| format!("could not start escript: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    eprint!("{text}{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!("escript failed with {}", out.status));
    }
    parse_skynet_ms(&text).ok_or_else(|| {
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        format!("no SKYNET_MS line from escript (last line: {last:?})")
    })
}

/// The median of `SKYNET_MS <ms> SUM <sum> RUNS ...`.
fn parse_skynet_ms(text: &str) -> Option<f64> {
    text.split_whitespace()
        .skip_while(|w| *w != "SKYNET_MS")
        .nth(1)?
        .parse()
        .ok()
}

/// Installs the optional Python baselines one by one (one failure does not block the
/// others); returns the ones that failed.
fn python_baselines(dry_run: bool) -> Vec<&'static str> {
    let py = util::venv_python().to_string_lossy().into_owned();
    ["numpy", "uvloop", "pykka", "numba"]
        .into_iter()
        .filter(|pkg| run(&mut cmd(&py, &["-m", "pip", "install", "-q", pkg]), dry_run).is_err())
        .collect()
}

/// Suite files (`{"suite", "rows"}`) the benches wrote under `dir` since `since`, and every
/// JSON file written there (raw, for the summary).
fn collect(dir: &Path, since: Option<SystemTime>) -> (Vec<Row>, Vec<(String, Json)>) {
    let mut rows = Vec::new();
    let mut raw = Vec::new();
    for p in util::files_with_suffix(dir, ".json") {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.starts_with("summary-") || name == "latest.json" {
            continue;
        }
        let fresh = since.is_none_or(|s| {
            std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m >= s)
        });
        let Some(text) = std::fs::read_to_string(&p).ok().filter(|_| fresh) else {
            continue;
        };
        let j = Json::parse(&text).unwrap_or_else(|_| Json::Str(text.trim().to_string()));
        rows.extend(report::suite_rows(&j));
        raw.push((name, j));
    }
    (rows, raw)
}

/// Runs the benches, prints one table and writes `target/bench/summary-<timestamp>.json` and
/// `target/bench/latest.json`.
pub(crate) fn run_bench(o: &Opts) -> Result {
    let root = util::root();
    let out_dir = root.join("target/bench");
    let criterion_dir = target_dir().join("criterion");
    let started = SystemTime::now();
    let ts = started
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut results = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let (tree_json, tree_text) = tree();

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
    c.env("CRITERION_HOME", &criterion_dir)
        .env("IRIS_BENCH_OUT", &out_dir);
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

    // The BEAM is a baseline, not a suite: without Erlang the table says so and goes on.
    let mut beam = None;
    if o.filter.as_deref().is_none_or(|f| "skynet".contains(f)) {
        let (_, r) = util::step("beam", || {
            beam = Some(beam_skynet(o)?);
            Ok(())
        });
        if let Err(e) = r {
            notes.push(format!("no BEAM skynet baseline: {e}"));
        }
    }

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
            let failed = python_baselines(o.dry_run);
            if !failed.is_empty() {
                let n = format!(
                    "optional Python baselines not installed: {}",
                    failed.join(", ")
                );
                eprintln!("{n}");
                notes.push(n);
            }
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

    // A dry run renders whatever earlier runs left, to preview the table.
    let since = (!o.dry_run).then_some(started);
    let mut rows = report::criterion_rows(&criterion_dir, since);
    let (suite_rows, raw) = collect(&out_dir, since);
    rows.extend(suite_rows);
    let skynet = rows
        .iter_mut()
        .find(|r| r.suite == "rust" && r.scenario.starts_with("skynet"));
    if let (Some(ms), Some(sky)) = (beam, skynet) {
        sky.peers.push(("beam".into(), ms));
    }
    report::order(&mut rows);
    let (machine_json, machine_text) = machine();
    let described = format!("{machine_text}; tree {tree_text}");
    println!("\n{}", report::render(&rows, &described));
    for n in &notes {
        println!("note: {n}");
    }

    let suites = results.iter().map(|r| {
        Json::obj([
            ("name", Json::Str(r.name.clone())),
            ("ok", Json::Bool(r.ok)),
            ("seconds", Json::num((r.secs * 1000.0).round() / 1000.0)),
        ])
    });
    let summary = Json::obj([
        ("timestamp", Json::num(ts as f64)),
        ("quick", Json::Bool(o.quick)),
        ("filter", o.filter.clone().map_or(Json::Null, Json::Str)),
        ("machine", machine_json),
        ("tree", tree_json),
        ("suites", Json::Arr(suites.collect())),
        (
            "notes",
            Json::Arr(notes.into_iter().map(Json::Str).collect()),
        ),
        ("rows", Json::Arr(rows.iter().map(Row::to_json).collect())),
        ("results", Json::obj(raw)),
    ])
    .render()
        + "\n";
    let path = out_dir.join(format!("summary-{ts}.json"));
    if o.dry_run {
        eprintln!("would write {} and latest.json", path.display());
    } else {
        std::fs::create_dir_all(&out_dir)
            .and_then(|()| std::fs::write(&path, &summary))
            .and_then(|()| std::fs::write(out_dir.join("latest.json"), &summary))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        eprintln!("wrote {} and latest.json", path.display());
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
    fn reads_the_beam_figure() {
        let out = "SKYNET_MS 812.500 SUM 499999500000 RUNS 800.1,812.5,830.0\n";
        assert_eq!(parse_skynet_ms(out), Some(812.5));
        assert_eq!(parse_skynet_ms("nothing"), None);
    }
}
