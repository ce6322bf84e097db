//! Shared helpers: running commands with echo and timing, and the Python/Node setup.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Result type of every task: the error is a message for the user.
pub(crate) type Result<T = ()> = std::result::Result<T, String>;

/// The workspace root (the parent of the xtask crate).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Renders a command like a shell would show it.
pub(crate) fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Echoes and runs `cmd` in the workspace root unless a directory was set; fails with the exit code.
pub(crate) fn run(cmd: &mut Command, dry_run: bool) -> Result {
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(root());
    }
    eprintln!("$ {}", show(cmd));
    if dry_run {
        return Ok(());
    }
    let status = cmd
        .status()
        .map_err(|e| format!("could not start `{}`: {e}", show(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed with exit code {}",
            show(cmd),
            status.code().map_or("(signal)".into(), |c| c.to_string())
        ))
    }
}

/// Runs `cmd` quietly and reports whether it succeeded.
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A `Command` for `program` with `args`.
pub(crate) fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// Outcome of one timed step.
pub(crate) struct StepResult {
    /// Step name.
    pub(crate) name: String,
    /// Whether it passed.
    pub(crate) ok: bool,
    /// Duration in seconds.
    pub(crate) secs: f64,
}

/// Runs one step with a banner and its duration.
pub(crate) fn step(name: &str, f: impl FnOnce() -> Result) -> (StepResult, Result) {
    eprintln!("\n==== {name} ====");
    let start = Instant::now();
    let res = f();
    let secs = start.elapsed().as_secs_f64();
    let ok = res.is_ok();
    eprintln!(
        "==== {name}: {} in {secs:.1}s ====",
        if ok { "ok" } else { "FAILED" }
    );
    (
        StepResult {
            name: name.to_string(),
            ok,
            secs,
        },
        res,
    )
}

/// Prints a summary table of the steps.
pub(crate) fn summary(steps: &[StepResult]) {
    eprintln!("\n{:<12} {:<6} {:>9}", "step", "result", "seconds");
    for s in steps {
        let r = if s.ok { "pass" } else { "FAIL" };
        eprintln!("{:<12} {:<6} {:>9.1}", s.name, r, s.secs);
    }
}

/// Path of the Python package's pyproject, if the Python bindings exist.
pub(crate) fn has_py() -> bool {
    root().join("crates/iris-py/pyproject.toml").exists()
}

/// Whether the Node bindings exist.
pub(crate) fn has_node() -> bool {
    root().join("crates/iris-node/package.json").exists()
}

/// The venv directory.
pub(crate) fn venv() -> PathBuf {
    root().join("target/venv")
}

/// The venv's python.
pub(crate) fn venv_python() -> PathBuf {
    venv().join("bin/python")
}

/// Creates `target/venv` (falling back to virtualenv without ensurepip), installs maturin and
/// pytest when missing, then builds the extension into it with `maturin develop --release`.
pub(crate) fn setup_python(dry_run: bool) -> Result {
    let venv = venv();
    let py = venv_python();
    if !py.exists() {
        let v = venv.to_string_lossy().into_owned();
        if succeeds(&mut cmd("python3", &["-c", "import ensurepip"])) || dry_run {
            run(&mut cmd("python3", &["-m", "venv", &v]), dry_run)?;
        } else {
            eprintln!("ensurepip is missing; falling back to virtualenv");
            run(
                &mut cmd("python3", &["-m", "pip", "install", "--user", "virtualenv"]),
                dry_run,
            )?;
            run(&mut cmd("python3", &["-m", "virtualenv", &v]), dry_run)?;
        }
    }
    let pys = py.to_string_lossy().into_owned();
    // mypy runs the stub check (`mypy.stubtest`) in the Python suite.
    let check = "import importlib.metadata as m, sys; v = m.version('maturin'); m.version('pytest'); \
                 m.version('mypy'); \
                 major, minor = (int(x) for x in v.split('.')[:2]); \
                 sys.exit(0 if major == 1 and minor >= 16 else 1)";
    if dry_run || !succeeds(&mut cmd(&pys, &["-c", check])) {
        run(
            &mut cmd(
                &pys,
                &[
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "maturin>=1.16,<2",
                    "pytest",
                    "mypy",
                ],
            ),
            dry_run,
        )?;
    }
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut m = cmd(
        &venv.join("bin/maturin").to_string_lossy(),
        &["develop", "--release", "-m", "crates/iris-py/Cargo.toml"],
    );
    m.env("VIRTUAL_ENV", &venv).env("PATH", path);
    run(&mut m, dry_run)
}

/// Installs the Node package's dependencies (`npm ci`, or `npm install` without a lockfile) and
/// builds the addon with `npm run build`.
pub(crate) fn setup_node(dry_run: bool) -> Result {
    let dir = root().join("crates/iris-node");
    let install = if dir.join("package-lock.json").exists() {
        "ci"
    } else {
        "install"
    };
    run(cmd("npm", &[install]).current_dir(&dir), dry_run)?;
    run(cmd("npm", &["run", "build"]).current_dir(&dir), dry_run)
}

/// Files in `dir` whose names end with `suffix`, sorted.
pub(crate) fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Whether an executable called `name` is on `PATH`.
pub(crate) fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}
